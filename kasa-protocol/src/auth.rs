//! Kasa's HTTP Basic authentication: `Authorization: Basic base64(email ":" base64(password))`.
//!
//! The user types the plain Kasa-account password; the client does the inner base64
//! (seed 000, protocols.md section 1). Every derived form is a secret.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
pub use cam_session::Secret;

/// The inner form the camera expects as the Basic password: `base64(password)`.
pub fn inner_password(password: &Secret) -> Secret {
    Secret::new(STANDARD.encode(password.expose()))
}

/// The full `Authorization` header value for a Kasa camera.
pub fn authorization_header(username: &str, password: &Secret) -> Secret {
    let inner = inner_password(password);
    let creds = format!("{}:{}", username, inner.expose());
    Secret::new(format!("Basic {}", STANDARD.encode(creds)))
}

/// Every form of the password that could leak: plain, inner base64, and the whole
/// Basic credential. Tests grep logs for each of these.
pub fn secret_forms(username: &str, password: &Secret) -> Vec<String> {
    let inner = inner_password(password);
    let header = authorization_header(username, password);
    let cred = header.expose().trim_start_matches("Basic ").to_string();
    vec![
        password.expose().to_string(),
        inner.expose().to_string(),
        cred,
    ]
}

/// Server side (the simulator): decode `Basic xxx` into `(user, password-as-sent)`.
/// Returns `None` for anything that is not well-formed Basic credentials.
pub fn decode_basic(value: &str) -> Option<(String, Secret)> {
    let rest = value.trim();
    let (scheme, b64) = rest.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), Secret::new(pass.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_inner_base64() {
        let h = authorization_header("me@example.com", &Secret::new("pa:ss"));
        // base64("pa:ss") = "cGE6c3M=", base64("me@example.com:cGE6c3M=")
        assert_eq!(h.expose(), "Basic bWVAZXhhbXBsZS5jb206Y0dFNmMzTT0=");
        let (u, p) = decode_basic(h.expose()).unwrap();
        assert_eq!(u, "me@example.com");
        assert_eq!(p.expose(), "cGE6c3M=");
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        let h = authorization_header("u", &s);
        assert!(!format!("{h:?}").contains("aHVudGVyMg"));
    }

    #[test]
    fn decode_rejects_junk() {
        assert!(decode_basic("Digest abc").is_none());
        assert!(decode_basic("Basic !!!").is_none());
        assert!(decode_basic("Basic").is_none());
        assert!(decode_basic("Basic bm9jb2xvbg==").is_none()); // "nocolon"
    }
}
