//! The camera's answer to TP-Link's UDP 9999 discovery, with the faults a scanner must
//! survive: an answer cut short, one in the wrong encoding, and one as large as a
//! datagram can be.

use kasa_protocol::discovery as kd;
use std::net::{SocketAddr, UdpSocket};

/// How the simulated camera answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DiscoveryFault {
    #[default]
    None,
    /// The first half of the answer.
    Truncated,
    /// The answer's JSON sent as is, not XOR-encoded.
    WrongKey,
    /// A valid answer of about 60 KB (a huge alias).
    Huge,
}

impl std::str::FromStr for DiscoveryFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "none" => DiscoveryFault::None,
            "truncated" => DiscoveryFault::Truncated,
            "wrong-key" => DiscoveryFault::WrongKey,
            "huge" => DiscoveryFault::Huge,
            _ => {
                return Err(format!(
                    "discovery fault {s:?}: none|truncated|wrong-key|huge"
                ))
            }
        })
    }
}

/// What the camera says about itself.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    pub model: String,
    pub alias: String,
    pub mac: String,
    pub device_id: String,
    /// `IOT.IPCAMERA`; another type (`IOT.SMARTPLUGSWITCH`) answers as a plug does.
    pub device_type: String,
    pub fault: DiscoveryFault,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            model: "EC60(US)".into(),
            alias: "Kasa Cam".into(),
            mac: "50:C7:BF:00:00:01".into(),
            device_id: "8012A0B1C2D3E4F5".into(),
            device_type: "IOT.IPCAMERA".into(),
            fault: DiscoveryFault::None,
        }
    }
}

/// Answers discovery on `bind` (port 9999 for a real scanner; `0.0.0.0` to hear
/// broadcasts) from a thread of its own; returns the bound address. The socket shares
/// its port (SO_REUSEADDR), so several simulated cameras can listen in one network
/// namespace, each on an address of its own.
pub fn serve_discovery(bind: SocketAddr, cfg: DiscoveryConfig) -> std::io::Result<SocketAddr> {
    let sock: UdpSocket = shared_udp(bind)?.into();
    let addr = sock.local_addr()?;
    let reply = answer(&cfg);
    std::thread::Builder::new()
        .name("kasa-discovery".into())
        .spawn(move || {
            let mut buf = vec![0u8; 2048];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                // Answer a get_sysinfo request, as the devices do; ignore anything else.
                let plain = kd::decrypt(&buf[..n]);
                if !String::from_utf8_lossy(&plain).contains("get_sysinfo") {
                    continue;
                }
                let _ = sock.send_to(&reply, from);
            }
        })?;
    Ok(addr)
}

/// A UDP socket bound to `bind` that shares its port (SO_REUSEADDR): how a simulated
/// device listens for discovery beside others in one network namespace.
pub fn shared_udp(bind: SocketAddr) -> std::io::Result<socket2::Socket> {
    let sock = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    sock.set_reuse_address(true)?;
    sock.bind(&bind.into())?;
    Ok(sock)
}

fn answer(cfg: &DiscoveryConfig) -> Vec<u8> {
    let reply = |alias: &str| {
        kd::device_reply(
            &cfg.model,
            alias,
            &cfg.mac,
            &cfg.device_id,
            &cfg.device_type,
        )
    };
    match cfg.fault {
        DiscoveryFault::None => reply(&cfg.alias),
        DiscoveryFault::Truncated => {
            let mut r = reply(&cfg.alias);
            r.truncate(r.len() / 2);
            r
        }
        DiscoveryFault::WrongKey => kd::decrypt(&reply(&cfg.alias)),
        DiscoveryFault::Huge => reply(&"x".repeat(60_000)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_on_loopback_gets_the_camera_answer_and_faults_are_what_they_say() {
        let addr =
            serve_discovery("127.0.0.1:0".parse().unwrap(), DiscoveryConfig::default()).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        c.send_to(&kd::encrypt(kd::PROBE), addr).unwrap();
        let mut buf = vec![0u8; 65_536];
        let (n, _) = c.recv_from(&mut buf).unwrap();
        let info = kd::parse_reply(&buf[..n]).unwrap();
        assert_eq!(info.model, "EC60(US)");
        assert!(info.camera);
        for (fault, says) in [
            (DiscoveryFault::Truncated, "not the encoded JSON"),
            (DiscoveryFault::WrongKey, "not the encoded JSON"),
        ] {
            let cfg = DiscoveryConfig {
                fault,
                ..DiscoveryConfig::default()
            };
            let e = kd::parse_reply(&answer(&cfg)).unwrap_err();
            assert!(e.contains(says), "{fault:?}: {e}");
        }
        let huge = answer(&DiscoveryConfig {
            fault: DiscoveryFault::Huge,
            ..DiscoveryConfig::default()
        });
        assert!(huge.len() > 60_000 && huge.len() <= kd::MAX_REPLY);
        assert_eq!(kd::parse_reply(&huge).unwrap().alias.len(), 64);
    }
}
