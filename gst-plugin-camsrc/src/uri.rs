//! The camera URIs camsrc opens. The splitting (credentials out, so that they never reach
//! a log line, and a redacted form for messages) is `cam_session::uri`'s, shared with
//! kasasrc, tutksrc and homecam.

pub use cam_session::uri::CamUri;

/// The schemes camsrc opens (its URI handler's protocols).
pub const SCHEMES: &[&str] = &["rtsp", "rtspt", "rtsps", "kasa", "tutk"];

/// Parses `uri` and checks that camsrc opens its scheme. Errors never echo the URI
/// (it may hold a password).
pub fn parse_supported(uri: &str) -> Result<CamUri, String> {
    let u = CamUri::parse(uri)?;
    if !SCHEMES.contains(&u.scheme.as_str()) {
        return Err(format!(
            "{}:// is not a camera URI camsrc opens ({})",
            u.scheme,
            SCHEMES
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_schemes_camsrc_opens() {
        assert!(parse_supported("rtsp://cam/stream1").is_ok());
        assert!(parse_supported("KASA://10.0.0.2").is_ok());
        let e = parse_supported("http://u:secret@cam/").unwrap_err();
        assert!(e.contains("http://") && !e.contains("secret"), "{e}");
    }
}
