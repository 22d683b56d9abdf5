//! The camera's answer to an ONVIF WS-Discovery probe (multicast 239.255.255.250:3702),
//! shaped as Tapo firmware sends it: the `TP-IPC` name and the hardware model in the
//! scopes, the ONVIF service on port 2020.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
const PORT: u16 = 3702;

#[derive(Clone, Debug)]
pub struct OnvifConfig {
    /// The camera's address: the multicast group is joined on the interface holding it,
    /// and answers come from it.
    pub ip: Ipv4Addr,
    /// The model (`C200`).
    pub hardware: String,
    /// The location scope (what the Tapo app calls the camera's place).
    pub location: String,
    /// The endpoint id, `uuid:...`.
    pub endpoint: String,
}

impl Default for OnvifConfig {
    fn default() -> Self {
        OnvifConfig {
            ip: Ipv4Addr::LOCALHOST,
            hardware: "C200".into(),
            location: "Living room".into(),
            endpoint: "uuid:3fa1fe68-b915-4053-a3e1-c006c3afec0e".into(),
        }
    }
}

/// Answers probes from a thread of its own until the process ends. The port is shared
/// (SO_REUSEADDR), so several simulated cameras can answer in one network namespace.
pub fn serve_onvif(cfg: OnvifConfig) -> std::io::Result<()> {
    let sock = kasa_sim::discovery::shared_udp(SocketAddr::from((Ipv4Addr::UNSPECIFIED, PORT)))?;
    sock.join_multicast_v4(&GROUP, &cfg.ip)?;
    let sock: UdpSocket = sock.into();
    let out = UdpSocket::bind((cfg.ip, 0))?;
    std::thread::Builder::new()
        .name("onvif-discovery".into())
        .spawn(move || {
            let mut buf = vec![0u8; 8192];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&buf[..n]);
                if !text.contains("Probe") {
                    continue;
                }
                let Some(id) = element_text(&text, "MessageID") else {
                    continue;
                };
                let _ = out.send_to(matches(&cfg, id).as_bytes(), from);
            }
        })?;
    Ok(())
}

/// The text of the first element named `local` (any prefix), without an XML parser:
/// the simulator only needs the probe's MessageID.
fn element_text<'a>(xml: &'a str, local: &str) -> Option<&'a str> {
    let mut rest = xml;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>')?;
        let tag = &rest[..end];
        let name = tag.split_whitespace().next().unwrap_or("");
        if name.rsplit(':').next() == Some(local) && !tag.starts_with('/') {
            let body = &rest[end + 1..];
            return body.find('<').map(|j| body[..j].trim());
        }
    }
    None
}

fn matches(cfg: &OnvifConfig, relates_to: &str) -> String {
    let location = cfg.location.replace(' ', "%20");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsdd="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:tdn="http://www.onvif.org/ver10/network/wsdl"><SOAP-ENV:Header><wsa:MessageID>uuid:{ep}-reply</wsa:MessageID><wsa:RelatesTo>{relates_to}</wsa:RelatesTo><wsa:To SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To><wsa:Action SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action></SOAP-ENV:Header><SOAP-ENV:Body><wsdd:ProbeMatches><wsdd:ProbeMatch><wsa:EndpointReference><wsa:Address>{ep}</wsa:Address></wsa:EndpointReference><wsdd:Types>tdn:NetworkVideoTransmitter</wsdd:Types><wsdd:Scopes>onvif://www.onvif.org/name/TP-IPC onvif://www.onvif.org/hardware/{hw} onvif://www.onvif.org/Profile/Streaming onvif://www.onvif.org/location/{location}</wsdd:Scopes><wsdd:XAddrs>http://{ip}:2020/onvif/device_service</wsdd:XAddrs><wsdd:MetadataVersion>1</wsdd:MetadataVersion></wsdd:ProbeMatch></wsdd:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>"#,
        ep = cfg.endpoint,
        hw = cfg.hardware,
        ip = cfg.ip,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_id_is_found_whatever_the_prefix() {
        let p = r#"<s:Envelope><s:Header><a:Action>x</a:Action><a:MessageID>urn:uuid:42</a:MessageID></s:Header></s:Envelope>"#;
        assert_eq!(element_text(p, "MessageID"), Some("urn:uuid:42"));
        assert_eq!(
            element_text("<MessageID>7</MessageID>", "MessageID"),
            Some("7")
        );
        assert_eq!(element_text("<a:MessageID", "MessageID"), None);
        let m = matches(&OnvifConfig::default(), "urn:uuid:42");
        assert!(m.contains("<wsa:RelatesTo>urn:uuid:42</wsa:RelatesTo>"));
        assert!(m.contains("location/Living%20room"));
    }
}
