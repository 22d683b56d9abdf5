//! ONVIF WS-Discovery: the multicast probe Tapo and most RTSP cameras answer.
//!
//! A client sends a SOAP `Probe` for `dn:NetworkVideoTransmitter` to
//! 239.255.255.250:3702; each camera answers the sender directly with a `ProbeMatches`
//! whose `RelatesTo` names the probe's `MessageID`. A match carries the device's
//! endpoint (`urn:uuid:...`), its service addresses (`XAddrs`, space separated) and
//! its scopes: `onvif://www.onvif.org/name/...`, `.../hardware/...`,
//! `.../location/...`, percent-encoded.

use std::net::Ipv4Addr;

pub const MULTICAST: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
pub const PORT: u16 = 3702;

/// The largest answer read (a UDP datagram cannot be longer).
pub const MAX_REPLY: usize = 65_507;
/// Bounds on what one answer may hold.
const MAX_NODES: u32 = 4096;
const MAX_MATCHES: usize = 16;
const MAX_ADDRS: usize = 8;
const MAX_FIELD: usize = 128;

const NS_DISCOVERY: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery";
const NS_ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";

/// The probe, with `message_id` (a `urn:uuid:`) as its MessageID.
pub fn probe(message_id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="{NS_ADDRESSING}" xmlns:d="{NS_DISCOVERY}" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
<s:Header><a:Action s:mustUnderstand="1">{NS_DISCOVERY}/Probe</a:Action><a:MessageID>{message_id}</a:MessageID><a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header>
<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>
</s:Envelope>"#
    )
}

/// One device in a `ProbeMatches`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Match {
    /// The endpoint reference (`urn:uuid:...`): the device's identity.
    pub endpoint: String,
    pub xaddrs: Vec<String>,
    /// From the scopes; empty when not given.
    pub name: String,
    pub hardware: String,
    pub location: String,
    pub types: String,
}

impl Match {
    /// A Tapo camera (its scopes say `name/TP-IPC` or a C-series hardware model).
    pub fn is_tapo(&self) -> bool {
        let n = self.name.to_ascii_uppercase();
        let h = self.hardware.to_ascii_uppercase();
        n.contains("TP-IPC")
            || n.contains("TAPO")
            || (h.starts_with('C') && h[1..].starts_with(|c: char| c.is_ascii_digit()))
    }
}

/// Reads a `ProbeMatches` answering the probe `message_id` (`None`: any). Never
/// panics; an error says what was wrong.
pub fn parse_matches(xml: &[u8], message_id: Option<&str>) -> Result<Vec<Match>, String> {
    if xml.len() > MAX_REPLY {
        return Err(format!("{} bytes, more than a datagram holds", xml.len()));
    }
    let text = std::str::from_utf8(xml).map_err(|e| format!("not UTF-8 text: {e}"))?;
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
    };
    let doc =
        roxmltree::Document::parse_with_options(text, opts).map_err(|e| format!("not XML: {e}"))?;
    let elem = |n: &roxmltree::Node, ns: &str, name: &str| {
        n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == Some(ns)
    };
    let root = doc.root_element();
    if let Some(want) = message_id {
        let relates = root
            .descendants()
            .find(|n| elem(n, NS_ADDRESSING, "RelatesTo"))
            .and_then(|n| n.text())
            .map(str::trim);
        if relates != Some(want) {
            return Err(format!(
                "an answer to another probe (RelatesTo {:?})",
                relates.map(|r| clean(r, MAX_FIELD)).unwrap_or_default()
            ));
        }
    }
    let matches = root
        .descendants()
        .find(|n| elem(n, NS_DISCOVERY, "ProbeMatches"))
        .ok_or("no ProbeMatches in the answer")?;
    let mut out = Vec::new();
    for m in matches
        .children()
        .filter(|n| elem(n, NS_DISCOVERY, "ProbeMatch"))
        .take(MAX_MATCHES)
    {
        let child_text = |ns: &str, name: &str| {
            m.descendants()
                .find(|n| elem(n, ns, name))
                .and_then(|n| n.text())
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let endpoint = clean(&child_text(NS_ADDRESSING, "Address"), MAX_FIELD);
        let xaddrs: Vec<String> = child_text(NS_DISCOVERY, "XAddrs")
            .split_whitespace()
            .filter(|a| a.starts_with("http://") || a.starts_with("https://"))
            .take(MAX_ADDRS)
            .map(|a| clean(a, MAX_FIELD))
            .collect();
        if endpoint.is_empty() && xaddrs.is_empty() {
            continue;
        }
        let mut d = Match {
            endpoint,
            xaddrs,
            types: clean(&child_text(NS_DISCOVERY, "Types"), MAX_FIELD),
            ..Match::default()
        };
        for scope in child_text(NS_DISCOVERY, "Scopes").split_whitespace() {
            let Some(rest) = scope.strip_prefix("onvif://www.onvif.org/") else {
                continue;
            };
            let (key, value) = rest.split_once('/').unwrap_or((rest, ""));
            let value = clean(&percent_decode(value), MAX_FIELD);
            let slot = match key {
                "name" => &mut d.name,
                "hardware" => &mut d.hardware,
                "location" => &mut d.location,
                _ => continue,
            };
            if slot.is_empty() {
                *slot = value;
            }
        }
        out.push(d);
    }
    if out.is_empty() {
        return Err("a ProbeMatches with no device in it".into());
    }
    Ok(out)
}

/// The host of a service address (`http://HOST[:PORT]/...`), when it is an IPv4 one.
pub fn xaddr_host(xaddr: &str) -> Option<Ipv4Addr> {
    let rest = xaddr.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?;
    host.parse().ok()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Printable characters of `s`, at most `max`: what a device says reaches a terminal and
/// configuration files.
pub(crate) fn clean(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// For fuzzing: any bytes, with or without a probe id, never panic and keep the bounds.
pub fn fuzz_one(data: &[u8]) {
    for id in [None, Some("urn:uuid:0")] {
        if let Ok(ms) = parse_matches(data, id) {
            assert!(ms.len() <= MAX_MATCHES);
            for m in ms {
                assert!(m.xaddrs.len() <= MAX_ADDRS);
                let _ = m.is_tapo();
                m.xaddrs.iter().for_each(|a| {
                    let _ = xaddr_host(a);
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Tapo C200's answer, shaped like those published in ONVIF client issue threads.
    pub const TAPO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsdd="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:tdn="http://www.onvif.org/ver10/network/wsdl">
<SOAP-ENV:Header><wsa:MessageID>uuid:9f0e6a6c-0000-4000-8000-00aabbccddee</wsa:MessageID><wsa:RelatesTo>urn:uuid:1234</wsa:RelatesTo><wsa:To SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To><wsa:Action SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action></SOAP-ENV:Header>
<SOAP-ENV:Body><wsdd:ProbeMatches><wsdd:ProbeMatch><wsa:EndpointReference><wsa:Address>uuid:3fa1fe68-b915-4053-a3e1-c006c3afec0e</wsa:Address></wsa:EndpointReference><wsdd:Types>tdn:NetworkVideoTransmitter</wsdd:Types><wsdd:Scopes>onvif://www.onvif.org/name/TP-IPC onvif://www.onvif.org/hardware/C200 onvif://www.onvif.org/Profile/Streaming onvif://www.onvif.org/location/Living%20room</wsdd:Scopes><wsdd:XAddrs>http://192.168.1.20:2020/onvif/device_service</wsdd:XAddrs><wsdd:MetadataVersion>1</wsdd:MetadataVersion></wsdd:ProbeMatch></wsdd:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;

    #[test]
    fn a_tapo_answer_gives_its_address_model_and_name() {
        let ms = parse_matches(TAPO.as_bytes(), Some("urn:uuid:1234")).unwrap();
        assert_eq!(ms.len(), 1);
        let m = &ms[0];
        assert_eq!(m.endpoint, "uuid:3fa1fe68-b915-4053-a3e1-c006c3afec0e");
        assert_eq!(m.xaddrs, ["http://192.168.1.20:2020/onvif/device_service"]);
        assert_eq!(m.name, "TP-IPC");
        assert_eq!(m.hardware, "C200");
        assert_eq!(m.location, "Living room");
        assert!(m.is_tapo());
        assert_eq!(
            xaddr_host(&m.xaddrs[0]),
            Some(Ipv4Addr::new(192, 168, 1, 20))
        );
    }

    #[test]
    fn the_probe_is_well_formed_and_names_video_transmitters() {
        let p = probe("urn:uuid:abcd");
        let doc = roxmltree::Document::parse(&p).unwrap();
        let id = doc
            .descendants()
            .find(|n| n.tag_name().name() == "MessageID")
            .and_then(|n| n.text());
        assert_eq!(id, Some("urn:uuid:abcd"));
        assert!(p.contains("dn:NetworkVideoTransmitter"));
    }

    #[test]
    fn bad_answers_are_errors_that_say_why() {
        let e = parse_matches(TAPO.as_bytes(), Some("urn:uuid:other")).unwrap_err();
        assert!(e.contains("another probe"), "{e}");
        let e = parse_matches(&TAPO.as_bytes()[..TAPO.len() / 2], None).unwrap_err();
        assert!(e.contains("not XML"), "{e}");
        let e = parse_matches(b"\xff\xfe<x/>", None).unwrap_err();
        assert!(e.contains("UTF-8"), "{e}");
        let e = parse_matches(b"<x/>", None).unwrap_err();
        assert!(e.contains("no ProbeMatches"), "{e}");
        // An entity bomb is refused (no DTD), a flood of elements by the node limit.
        let bomb = r#"<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>"#;
        assert!(parse_matches(bomb.as_bytes(), None).is_err());
        let flood = format!("<x>{}</x>", "<y/>".repeat(10_000));
        assert!(parse_matches(flood.as_bytes(), None).is_err());
        // Many matches and addresses are cut to the bounds.
        let one = TAPO.split("<wsdd:ProbeMatch>").nth(1).unwrap();
        let one = one.split("</wsdd:ProbeMatch>").next().unwrap();
        let many = TAPO.replacen(
            &format!("<wsdd:ProbeMatch>{one}</wsdd:ProbeMatch>"),
            &format!("<wsdd:ProbeMatch>{one}</wsdd:ProbeMatch>").repeat(40),
            1,
        );
        assert_eq!(
            parse_matches(many.as_bytes(), None).unwrap().len(),
            MAX_MATCHES
        );
    }

    #[test]
    fn percent_decoding_survives_truncated_escapes() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("é%C3%A9"), "éé");
    }

    #[test]
    fn mutated_answers_never_panic() {
        let good = TAPO.as_bytes().to_vec();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for i in 0..5_000 {
            let mut d = good.clone();
            for _ in 0..=(i % 6) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % d.len();
                match seed % 4 {
                    0 => d[at] = b"<>/%\"= x:"[(seed >> 33) as usize % 9],
                    1 => d[at] = (seed >> 32) as u8,
                    2 => d.truncate(at.max(1)),
                    _ => d.insert(at, b'<'),
                }
            }
            fuzz_one(&d);
        }
    }
}
