//! The camera's TLS profile: a device certificate with a 1024-bit key issued by a
//! private `CN=TPRI-CA`, TLS 1.2 only, and either static RSA or ECDHE suites.

use crate::TlsMode;
use kasa_protocol::tls::Fingerprint;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{SslAcceptor, SslMethod, SslOptions, SslVersion};
use openssl::x509::{X509Name, X509};
use std::sync::OnceLock;

fn name(cn: &str) -> Result<X509Name, ErrorStack> {
    let mut n = X509Name::builder()?;
    n.append_entry_by_text("CN", cn)?;
    n.append_entry_by_text("O", "TP-LINK")?;
    Ok(n.build())
}

fn cert(
    subject: &str,
    issuer: &str,
    key: &PKey<Private>,
    signer: &PKey<Private>,
    serial: u32,
) -> Result<X509, ErrorStack> {
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let serial = BigNum::from_u32(serial)?.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    let (subject, issuer) = (name(subject)?, name(issuer)?);
    b.set_subject_name(&subject)?;
    b.set_issuer_name(&issuer)?;
    b.set_pubkey(key)?;
    let (from, until) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(3650)?);
    b.set_not_before(&from)?;
    b.set_not_after(&until)?;
    b.sign(signer, MessageDigest::sha256())?;
    Ok(b.build())
}

/// The device key and its certificate: issued by `CN=TPRI-CA` (what protocols.md reports),
/// or self-signed. Key generation is slow; one identity per kind per process.
fn identity(self_signed: bool) -> Result<&'static (PKey<Private>, X509), ErrorStack> {
    static CA_SIGNED: OnceLock<(PKey<Private>, X509)> = OnceLock::new();
    static SELF_SIGNED: OnceLock<(PKey<Private>, X509)> = OnceLock::new();
    let cell = if self_signed {
        &SELF_SIGNED
    } else {
        &CA_SIGNED
    };
    if let Some(id) = cell.get() {
        return Ok(id);
    }
    let dev = PKey::from_rsa(Rsa::generate(1024)?)?;
    let c = if self_signed {
        cert("TPRI-DEVICE", "TPRI-DEVICE", &dev, &dev, 1)?
    } else {
        let ca = PKey::from_rsa(Rsa::generate(2048)?)?;
        cert("TPRI-DEVICE", "TPRI-CA", &dev, &ca, 2)?
    };
    Ok(cell.get_or_init(|| (dev, c)))
}

pub fn acceptor(mode: TlsMode, self_signed: bool) -> Result<(SslAcceptor, String), ErrorStack> {
    let (key, cert) = identity(self_signed)?;
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_max_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_options(SslOptions::NO_TLSV1_3 | SslOptions::CIPHER_SERVER_PREFERENCE);
    // SECLEVEL=0: OpenSSL 3 on Debian refuses a 1024-bit key and static RSA otherwise.
    b.set_cipher_list(match mode {
        TlsMode::StaticRsa => "AES256-GCM-SHA384:@SECLEVEL=0",
        TlsMode::Ecdhe => "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0",
    })?;
    b.set_private_key(key)?;
    b.set_certificate(cert)?;
    b.check_private_key()?;
    Ok((b.build(), Fingerprint::of(cert)?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_like_certificates() {
        for self_signed in [false, true] {
            let (key, cert) = identity(self_signed).unwrap();
            assert_eq!(key.bits(), 1024);
            let cn = |n: &openssl::x509::X509NameRef| {
                n.entries_by_nid(openssl::nid::Nid::COMMONNAME)
                    .next()
                    .unwrap()
                    .data()
                    .to_string()
                    .unwrap()
            };
            assert_eq!(cn(cert.subject_name()), "TPRI-DEVICE");
            let issuer = if self_signed {
                "TPRI-DEVICE"
            } else {
                "TPRI-CA"
            };
            assert_eq!(cn(cert.issuer_name()), issuer);
            assert!(acceptor(TlsMode::StaticRsa, self_signed).is_ok());
        }
    }
}
