//! The TLS profile that still talks to Kasa cameras.
//!
//! Kasa firmware offers TLS 1.2 with static-RSA key exchange only (`AES256-GCM-SHA384`,
//! `AES128-GCM-SHA256`), often with a 1024-bit self-signed `CN=TPRI-DEVICE` certificate;
//! newer firmware went ECDHE-only. rustls implements no RSA key exchange at all, hence
//! OpenSSL with `@SECLEVEL=0` (Debian's default level 2 refuses both the suites and the
//! key size). go2rtc issue #1172 is the same story in Go.

use openssl::hash::MessageDigest;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::X509Ref;
use std::fmt;

/// ECDHE first (newer firmware), then the static-RSA GCM suites every Kasa camera
/// offers, then CBC fallbacks seen on older models.
pub const KASA_CIPHERS: &str = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA256:AES128-SHA256:AES256-SHA:AES128-SHA:@SECLEVEL=0";

/// A SHA-256 certificate fingerprint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(cert: &X509Ref) -> Result<Self, openssl::error::ErrorStack> {
        let d = cert.digest(MessageDigest::sha256())?;
        let mut out = [0u8; 32];
        out.copy_from_slice(&d);
        Ok(Fingerprint(out))
    }
}

impl fmt::Display for Fingerprint {
    /// Colon-separated upper-case hex, as `openssl x509 -fingerprint -sha256` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = String;

    /// Hex with or without `:` separators, any case, optionally prefixed `sha256:`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let s = s
            .strip_prefix("sha256:")
            .or_else(|| s.strip_prefix("SHA256:"))
            .unwrap_or(s);
        let hex: String = s.chars().filter(|c| *c != ':' && *c != ' ').collect();
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "expected a SHA-256 fingerprint (64 hex digits, colons allowed), got {} characters",
                hex.len()
            ));
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        Ok(Fingerprint(out))
    }
}

/// The client connector: no verification (nobody can verify a TPRI-CA certificate),
/// TLS 1.0 to 1.3, [`KASA_CIPHERS`]. Identity comes from an optional fingerprint pin
/// checked after the handshake.
pub fn client_connector() -> Result<SslConnector, openssl::error::ErrorStack> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.set_verify(SslVerifyMode::NONE);
    // One single-source write-up reports TLS 1.0/1.1 on a KC410S; allow them.
    b.set_min_proto_version(Some(SslVersion::TLS1))?;
    b.set_cipher_list(KASA_CIPHERS)?;
    Ok(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_parse_roundtrip() {
        let f = Fingerprint([0xab; 32]);
        let s = f.to_string();
        assert_eq!(s.parse::<Fingerprint>().unwrap(), f);
        assert_eq!(
            s.replace(':', "")
                .to_lowercase()
                .parse::<Fingerprint>()
                .unwrap(),
            f
        );
        assert!("abc".parse::<Fingerprint>().is_err());
        assert!("zz".repeat(32).parse::<Fingerprint>().is_err());
    }

    #[test]
    fn connector_builds() {
        client_connector().unwrap();
    }
}
