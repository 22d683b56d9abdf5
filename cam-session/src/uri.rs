//! Camera URIs, one splitter for every source and the daemon:
//! `scheme://[user[:password]@]host[:port][/path][?query][#fragment]`, the user and password
//! percent-encoded (`me%40example.com`). The password becomes a [`Secret`] at once, the
//! `Debug` form is the redacted URI, and errors never quote the URI (it may hold the
//! password).

use crate::Secret;

/// Decode `%XX` escapes; `None` for a bad escape or invalid UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(s.get(i + 1..i + 3)?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Encode everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.bytes() {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// A camera URI split into its parts.
#[derive(Clone, PartialEq, Eq)]
pub struct CamUri {
    /// Lower-case scheme: `rtsp`, `rtsps`, `rtspt`, `kasa`, `tutk`, ...
    pub scheme: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// `host[:port]` as written.
    pub hostport: String,
    /// Path, query and fragment as written (may be empty).
    pub rest: String,
}

impl std::fmt::Debug for CamUri {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl CamUri {
    pub fn parse(uri: &str) -> Result<CamUri, String> {
        let (scheme, after) = uri
            .split_once("://")
            .ok_or_else(|| "not a URI: expected scheme://host/...".to_string())?;
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err("invalid URI scheme".into());
        }
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(end);
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        if hostport.is_empty() {
            return Err("no camera address in the URI".into());
        }
        let (username, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                let dec = |s: &str| {
                    percent_decode(s).ok_or_else(|| {
                        "invalid percent-encoding in the URI credentials".to_string()
                    })
                };
                (
                    Some(dec(u)?).filter(|u| !u.is_empty()),
                    p.map(dec).transpose()?.map(Secret::new),
                )
            }
        };
        Ok(CamUri {
            scheme: scheme.to_ascii_lowercase(),
            username,
            password,
            hostport: hostport.to_string(),
            rest: rest.to_string(),
        })
    }

    pub fn is_rtsp(&self) -> bool {
        matches!(
            self.scheme.as_str(),
            "rtsp" | "rtsps" | "rtspt" | "rtspu" | "rtsph"
        )
    }

    /// The URI with no credentials at all (what rtspsrc gets as `location`).
    pub fn bare(&self) -> String {
        format!("{}://{}{}", self.scheme, self.hostport, self.rest)
    }

    /// For logs and messages: the user name but never the password.
    pub fn redacted(&self) -> String {
        match &self.username {
            Some(u) => format!(
                "{}://{}@{}{}",
                self.scheme,
                percent_encode(u),
                self.hostport,
                self.rest
            ),
            None => self.bare(),
        }
    }

    /// The full URI with the given credentials, percent-encoded.
    pub fn with_credentials(&self, username: Option<&str>, password: Option<&str>) -> String {
        let mut s = format!("{}://", self.scheme);
        if let Some(u) = username {
            s.push_str(&percent_encode(u));
            if let Some(p) = password {
                s.push(':');
                s.push_str(&percent_encode(p));
            }
            s.push('@');
        }
        s.push_str(&self.hostport);
        s.push_str(&self.rest);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = "me@example.com:p w%/é";
        assert_eq!(percent_decode(&percent_encode(s)).as_deref(), Some(s));
        assert_eq!(percent_encode("a-b_c.d~"), "a-b_c.d~");
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%FF"), None, "not UTF-8");
    }

    #[test]
    fn forms() {
        let u = CamUri::parse("rtsp://admin:p%40ss:w@192.168.1.20:554/stream1").unwrap();
        assert_eq!(u.scheme, "rtsp");
        assert_eq!(u.username.as_deref(), Some("admin"));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("p@ss:w"));
        assert_eq!(u.bare(), "rtsp://192.168.1.20:554/stream1");
        assert_eq!(u.redacted(), "rtsp://admin@192.168.1.20:554/stream1");
        assert!(!format!("{u:?}").contains("p@ss"));
        assert_eq!(
            u.with_credentials(Some("admin"), Some("p@ss:w")),
            "rtsp://admin:p%40ss%3Aw@192.168.1.20:554/stream1"
        );
        let k = CamUri::parse("KASA://10.0.0.2").unwrap();
        assert_eq!((k.scheme.as_str(), k.rest.as_str()), ("kasa", ""));
        assert!(k.username.is_none() && !k.is_rtsp());
        // '@' in a path is not userinfo.
        let p = CamUri::parse("rtsp://cam/a@b").unwrap();
        assert_eq!((p.hostport.as_str(), p.rest.as_str()), ("cam", "/a@b"));
        for bad in ["", "cam", "rtsp://", "://x", "rtsp://u:%zz@h/", "rt sp://h"] {
            assert!(CamUri::parse(bad).is_err(), "{bad}");
        }
    }
}
