//! TP-Link's UDP 9999 device discovery, as Kasa plugs, bulbs and cameras answer it.
//!
//! A client sends `{"system":{"get_sysinfo":{}}}` to port 9999 (a broadcast, or one
//! datagram per address), XOR-encoded with the "autokey" cipher: the key starts at 171
//! and each cipher byte is the key of the next. Every device answers with its
//! `get_sysinfo` object, encoded the same way and with no length prefix (the TCP
//! variant of the protocol has a 4-byte length; UDP has none).
//!
//! Where the fields sit differs by family: plugs and bulbs put `model`, `alias`, `mac`
//! and `type` (or `mic_type`, `mic_mac`) directly in `get_sysinfo`; cameras nest them
//! one level down, in `get_sysinfo.system`. Both shapes are read. No capture of a
//! camera's answer is public, so what makes a device a camera is judged from its type
//! (`IOT.IPCAMERA`) or, failing that, from the model names of the Kasa camera range.

use serde_json::Value;

/// The UDP port devices listen on.
pub const PORT: u16 = 9999;

/// The request every client sends.
pub const PROBE: &[u8] = br#"{"system":{"get_sysinfo":{}}}"#;

/// The largest answer read: a UDP datagram cannot be longer.
pub const MAX_REPLY: usize = 65_507;

/// Longest text kept from a field of an answer (aliases are at most 31 characters in
/// the Kasa app; anything longer is cut, not trusted).
const MAX_FIELD: usize = 64;

/// XOR "autokey" encoding: key 171, then each output byte keys the next.
pub fn encrypt(plain: &[u8]) -> Vec<u8> {
    let mut key = 171u8;
    plain
        .iter()
        .map(|&b| {
            key ^= b;
            key
        })
        .collect()
}

/// The inverse of [`encrypt`]: each input byte keys the next.
pub fn decrypt(cipher: &[u8]) -> Vec<u8> {
    let mut key = 171u8;
    cipher
        .iter()
        .map(|&c| {
            let p = c ^ key;
            key = c;
            p
        })
        .collect()
}

/// What a device says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysInfo {
    pub model: String,
    pub alias: String,
    /// `AA:BB:CC:DD:EE:FF` when the device gave twelve hex digits, else as given.
    pub mac: String,
    /// `IOT.IPCAMERA`, `IOT.SMARTPLUGSWITCH`... (empty when not given).
    pub device_type: String,
    pub device_id: String,
    /// A camera that `kasasrc` can stream (port 19443).
    pub camera: bool,
}

/// Decodes and reads one answer. Never panics; an error says what was wrong with it.
pub fn parse_reply(datagram: &[u8]) -> Result<SysInfo, String> {
    if datagram.is_empty() {
        return Err("an empty datagram".into());
    }
    if datagram.len() > MAX_REPLY {
        return Err(format!(
            "{} bytes, more than a datagram holds",
            datagram.len()
        ));
    }
    let plain = decrypt(datagram);
    let v: Value = serde_json::from_slice(&plain).map_err(|e| {
        format!(
            "not the encoded JSON of a sysinfo answer ({e}); {} bytes",
            datagram.len()
        )
    })?;
    let info = v
        .get("system")
        .and_then(|s| s.get("get_sysinfo"))
        .ok_or("JSON without system.get_sysinfo")?;
    // Cameras: get_sysinfo.system.{model,...}; plugs and bulbs: get_sysinfo.{model,...}.
    let fields = match info.get("system") {
        Some(inner) if inner.is_object() => inner,
        _ => info,
    };
    if let Some(code) = info.get("err_code").and_then(Value::as_i64) {
        if code != 0 {
            return Err(format!("the device answered with err_code {code}"));
        }
    }
    let text = |keys: &[&str]| -> String {
        keys.iter()
            .find_map(|k| fields.get(*k).and_then(Value::as_str))
            .map(clean)
            .unwrap_or_default()
    };
    let model = text(&["model"]);
    if model.is_empty() {
        return Err("a sysinfo answer without a model".into());
    }
    let device_type = text(&["type", "mic_type"]);
    let camera = device_type.to_ascii_uppercase().contains("CAMERA") || camera_model(&model);
    Ok(SysInfo {
        alias: text(&["alias", "dev_name"]),
        mac: mac(&text(&["mac", "mic_mac"])),
        device_id: text(&["deviceId", "device_id"]),
        device_type,
        camera,
        model,
    })
}

/// The Kasa camera range: EC60/EC70/EC71, KC100-KC420, KD110 (a doorbell).
fn camera_model(model: &str) -> bool {
    let m = model.to_ascii_uppercase();
    ["EC", "KC", "KD"].iter().any(|p| {
        m.strip_prefix(p)
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// Printable characters only, at most [`MAX_FIELD`] of them: these are shown in a
/// terminal and written into configuration files.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD)
        .collect()
}

fn mac(s: &str) -> String {
    let hex: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let separators_only = s
        .chars()
        .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '-');
    if hex.len() == 12 && separators_only {
        hex.to_ascii_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":")
    } else {
        s.to_string()
    }
}

/// The answer a camera gives, as a simulator sends it (encoded).
pub fn camera_reply(model: &str, alias: &str, mac: &str, device_id: &str) -> Vec<u8> {
    device_reply(model, alias, mac, device_id, "IOT.IPCAMERA")
}

/// The answer of any device, as a simulator sends it (encoded): cameras nest their
/// fields in `get_sysinfo.system`, plugs and bulbs do not (and name their type
/// `mic_type`).
pub fn device_reply(
    model: &str,
    alias: &str,
    mac: &str,
    device_id: &str,
    device_type: &str,
) -> Vec<u8> {
    let v = if device_type.contains("CAMERA") {
        serde_json::json!({"system": {"get_sysinfo": {
            "err_code": 0,
            "system": {
                "sw_ver": "2.3.11 Build 201026 rel.35622",
                "hw_ver": "1.0",
                "model": model,
                "hwId": "00000000000000000000000000000000",
                "oemId": "00000000000000000000000000000000",
                "deviceId": device_id,
                "dev_name": "Kasa Cam",
                "alias": alias,
                "type": device_type,
                "mac": mac,
                "is_cal": 1,
            }
        }}})
    } else {
        serde_json::json!({"system": {"get_sysinfo": {
            "err_code": 0,
            "sw_ver": "1.5.4 Build 180815 Rel.121440",
            "hw_ver": "2.0",
            "model": model,
            "deviceId": device_id,
            "alias": alias,
            "mic_type": device_type,
            "mac": mac,
            "relay_state": 0,
        }}})
    };
    encrypt(v.to_string().as_bytes())
}

/// For fuzzing: decoding and reading arbitrary bytes must neither panic nor keep more
/// than the bounded fields.
pub fn fuzz_one(data: &[u8]) {
    if let Ok(info) = parse_reply(data) {
        for f in [&info.model, &info.alias, &info.device_type, &info.device_id] {
            assert!(f.chars().count() <= MAX_FIELD);
        }
        assert!(info.mac.chars().count() <= MAX_FIELD);
    }
    assert_eq!(decrypt(&encrypt(data)), data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_encodes_to_the_bytes_every_client_sends() {
        // The broadcast payload python-kasa and Scrypted send, as published.
        let expected = "d0f281f88bff9af7d5ef94b6d1b4c09fec95e68fe187e8caf08bf68bf6";
        let got: String = encrypt(PROBE).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, expected);
        assert_eq!(decrypt(&encrypt(PROBE)), PROBE);
    }

    #[test]
    fn a_camera_answer_is_read_from_its_nested_system_object() {
        let r = camera_reply("EC60(US)", "Front door", "50c7bf0a1b2c", "8012ABCD");
        let i = parse_reply(&r).unwrap();
        assert_eq!(i.model, "EC60(US)");
        assert_eq!(i.alias, "Front door");
        assert_eq!(i.mac, "50:C7:BF:0A:1B:2C");
        assert_eq!(i.device_type, "IOT.IPCAMERA");
        assert_eq!(i.device_id, "8012ABCD");
        assert!(i.camera);
    }

    #[test]
    fn a_plug_answer_is_flat_and_not_a_camera() {
        let plug = br#"{"system":{"get_sysinfo":{"sw_ver":"1.5.4","model":"HS100(UK)","alias":"Lamp","mic_type":"IOT.SMARTPLUGSWITCH","mac":"50:C7:BF:01:02:03","deviceId":"80061","err_code":0}}}"#;
        let i = parse_reply(&encrypt(plug)).unwrap();
        assert_eq!(i.model, "HS100(UK)");
        assert_eq!(i.device_type, "IOT.SMARTPLUGSWITCH");
        assert_eq!(i.mac, "50:C7:BF:01:02:03");
        assert!(!i.camera);
        // A camera that gives no type is known by its model.
        let kc = br#"{"system":{"get_sysinfo":{"model":"KC120(US)","alias":"Yard"}}}"#;
        assert!(parse_reply(&encrypt(kc)).unwrap().camera);
    }

    #[test]
    fn bad_answers_are_errors_that_say_why() {
        let good = camera_reply("EC60(US)", "a", "50c7bf0a1b2c", "1");
        // Cut short.
        let e = parse_reply(&good[..good.len() / 2]).unwrap_err();
        assert!(e.contains("not the encoded JSON"), "{e}");
        // The right JSON under the wrong key (a plain, unencoded answer).
        let e = parse_reply(&decrypt(&good)).unwrap_err();
        assert!(e.contains("not the encoded JSON"), "{e}");
        assert!(parse_reply(b"").unwrap_err().contains("empty"));
        let e = parse_reply(&encrypt(br#"{"system":{}}"#)).unwrap_err();
        assert!(e.contains("get_sysinfo"), "{e}");
        let e =
            parse_reply(&encrypt(br#"{"system":{"get_sysinfo":{"err_code":-1}}}"#)).unwrap_err();
        assert!(e.contains("err_code -1"), "{e}");
        // Huge fields are cut, control characters dropped.
        let long = format!(
            r#"{{"system":{{"get_sysinfo":{{"model":"EC60","alias":"{}\u001b[2J"}}}}}}"#,
            "x".repeat(5000)
        );
        let i = parse_reply(&encrypt(long.as_bytes())).unwrap();
        assert_eq!(i.alias.len(), MAX_FIELD);
        assert!(!i.alias.contains('\u{1b}'));
        // Deep nesting is refused by the JSON reader's own limit, without a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_reply(&encrypt(&deep.as_bytes()[..MAX_REPLY])).is_err());
    }

    #[test]
    fn mutated_answers_never_panic() {
        let good = camera_reply("KC120(US)", "Garden", "50c7bf0a1b2c", "80");
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..20_000 {
            let mut d = good.clone();
            for _ in 0..=(i % 8) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % d.len();
                match seed % 3 {
                    0 => d[at] = (seed >> 32) as u8,
                    1 => d.truncate(at.max(1)),
                    _ => d.insert(at, (seed >> 40) as u8),
                }
            }
            fuzz_one(&d);
        }
    }
}
