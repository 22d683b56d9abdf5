//! `tutk://` URIs, apart from the element so they can be fuzzed.

use cam_session::uri::CamUri;
use tutk::Secret;

#[derive(Debug)]
pub struct TutkUri {
    pub uid: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub channel: Option<u32>,
    pub allow_remote: Option<bool>,
}

/// `tutk://[user[:password]@]UID[?channel=N&allow-remote=true]`. Errors never quote the
/// URI (it may hold the password).
pub fn parse(uri: &str) -> Result<TutkUri, String> {
    let u = CamUri::parse(uri).map_err(|e| format!("tutk:// URI: {e}"))?;
    if u.scheme != "tutk" {
        return Err("not a tutk:// URI".into());
    }
    // After the UID only a query: `tutk://UID`, `tutk://UID/`, `tutk://UID?channel=1`.
    let after = u.rest.strip_prefix('/').unwrap_or(&u.rest);
    let query = match after.strip_prefix('?') {
        Some(q) => Some(q),
        None if after.is_empty() => None,
        None => return Err("tutk:// URI: the host must be the camera's 20-character UID".into()),
    };
    let uid = u.hostport.as_str();
    if uid.len() != 20 || !uid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("tutk:// URI: the host must be the camera's 20-character UID".into());
    }
    let (username, password): (Option<String>, Option<Secret>) = (u.username, u.password);
    let (mut channel, mut allow_remote) = (None, None);
    for kv in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        match kv.split_once('=').unwrap_or((kv, "")) {
            ("channel", v) => {
                channel = Some(
                    v.parse::<u32>()
                        .ok()
                        .filter(|c| *c <= 255)
                        .ok_or("tutk:// URI: channel must be 0-255")?,
                )
            }
            ("allow-remote", v) => allow_remote = Some(matches!(v, "true" | "1" | "yes")),
            (k, _) => return Err(format!("tutk:// URI: unknown parameter {k:?}")),
        }
    }
    Ok(TutkUri {
        uid: uid.to_ascii_uppercase(),
        username,
        password,
        channel,
        allow_remote,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_forms() {
        let u =
            parse("tutk://admin:p%40ss@hbnaslscfc1mn4y9221a?channel=2&allow-remote=true").unwrap();
        assert_eq!(u.uid, "HBNASLSCFC1MN4Y9221A");
        assert_eq!(u.username.as_deref(), Some("admin"));
        assert_eq!(u.password.unwrap().expose(), "p@ss");
        assert_eq!((u.channel, u.allow_remote), (Some(2), Some(true)));
        let u = parse("TUTK://HBNASLSCFC1MN4Y9221A/").unwrap();
        assert!(u.username.is_none() && u.password.is_none());
        for bad in [
            "tutk://admin:secretpw@SHORT",
            "kasa://HBNASLSCFC1MN4Y9221A",
            "tutk://HBNASLSCFC1MN4Y9221A?channel=999",
            "tutk://HBNASLSCFC1MN4Y9221A?bogus=1",
            "tutk://a:%zz@HBNASLSCFC1MN4Y9221A",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(!e.contains("secretpw"), "{e}");
        }
    }

    #[test]
    fn random_input_never_panics_or_echoes() {
        // A small deterministic generator: 20,000 strings from URI-ish pieces.
        let pieces = [
            "tutk://",
            "TUTK://",
            "@",
            ":",
            "%",
            "%4",
            "%zz",
            "%41",
            "?",
            "&",
            "=",
            "channel",
            "allow-remote",
            "HBNASLSCFC1MN4Y9221A",
            "é",
            "/",
            "secretpw",
            "1",
            "999",
            "",
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(x % 9) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push_str(pieces[(x % pieces.len() as u64) as usize]);
            }
            x = x.wrapping_add(1);
            if let Err(e) = parse(&s) {
                assert!(!e.contains("secretpw"), "{e}");
            }
        }
    }
}
