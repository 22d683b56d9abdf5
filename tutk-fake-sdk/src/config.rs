//! The fake cameras: one `<UID>.conf` file per camera in the folder named by
//! `TUTK_FAKE_DIR`, `key = value` lines. The fake writes what it was sent beside it
//! (`<UID>.ioctl`), so a test in another process can read it.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable naming the fake cameras' folder.
pub const ENV_DIR: &str = "TUTK_FAKE_DIR";
/// If set, the licence key `TUTK_SDK_Set_License_Key` must be given before
/// `IOTC_Initialize2` (SDK 4.x behaviour).
pub const ENV_LICENSE: &str = "TUTK_FAKE_LICENSE";

/// One fake camera.
#[derive(Clone, Debug, PartialEq)]
pub struct Camera {
    pub uid: String,
    pub ip: String,
    pub port: u16,
    pub name: String,
    pub username: String,
    pub password: String,
    /// `st_SInfo.Mode`: 0 P2P, 1 relay, 2 LAN.
    pub mode: i8,
    pub fps: u32,
    pub gop_seconds: u32,
    pub seconds: u32,
    pub width: u32,
    pub height: u32,
    /// An Annex B H.264 file to serve instead of an encoded test pattern.
    pub clip: Option<PathBuf>,
    /// Frame-info size the camera reports (16; Wyze firmware 40).
    pub info_size: usize,
    /// Audio codec id after `IOTYPE_USER_IPCAM_AUDIOSTART` (0x89 G.711 mu-law, 0x8A
    /// A-law), 40 ms parts at 8 kHz; 0 for none.
    pub audio: u16,
    /// Frames (counted from 0 over every session of this camera in this process)
    /// answered with `AV_ER_INCOMPLETE_FRAME`.
    pub incomplete: Vec<u64>,
    /// ... with `AV_ER_LOSED_THIS_FRAME`.
    pub lost: Vec<u64>,
    /// At this frame the camera closes the session (`AV_ER_SESSION_CLOSE_BY_REMOTE`), once.
    pub close_at: Option<u64>,
    /// At this frame the session times out (`AV_ER_REMOTE_TIMEOUT_DISCONNECT`), once.
    pub timeout_at: Option<u64>,
    /// `IOTC_Connect_ByUID_Parallel` blocks until `IOTC_Connect_Stop_BySID`.
    pub connect_blocks: bool,
    /// `avClientStart2` blocks until `avClientExit` (or its timeout).
    pub start_blocks: bool,
    /// Delay of a normal connection (the LAN handshake).
    pub connect_delay: Duration,
}

impl Camera {
    pub fn new(uid: &str, username: &str, password: &str) -> Camera {
        Camera {
            uid: uid.into(),
            ip: "127.0.0.1".into(),
            port: 32761,
            name: format!("fake-{}", &uid[..uid.len().min(6)]),
            username: username.into(),
            password: password.into(),
            mode: 2,
            fps: 15,
            gop_seconds: 1,
            seconds: 4,
            width: 320,
            height: 240,
            clip: None,
            info_size: 16,
            audio: 0x89,
            incomplete: Vec::new(),
            lost: Vec::new(),
            close_at: None,
            timeout_at: None,
            connect_blocks: false,
            start_blocks: false,
            connect_delay: Duration::from_millis(20),
        }
    }

    pub fn to_text(&self) -> String {
        let list = |v: &[u64]| {
            v.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut s = format!(
            "uid = {}\nip = {}\nport = {}\nname = {}\nusername = {}\npassword = {}\nmode = {}\nfps = {}\ngop = {}\nseconds = {}\nwidth = {}\nheight = {}\ninfo_size = {}\naudio = {}\nincomplete = {}\nlost = {}\nconnect_blocks = {}\nstart_blocks = {}\nconnect_delay_ms = {}\n",
            self.uid,
            self.ip,
            self.port,
            self.name,
            self.username,
            self.password,
            self.mode,
            self.fps,
            self.gop_seconds,
            self.seconds,
            self.width,
            self.height,
            self.info_size,
            match self.audio {
                0x89 => "g711u",
                0x8A => "g711a",
                _ => "none",
            },
            list(&self.incomplete),
            list(&self.lost),
            self.connect_blocks,
            self.start_blocks,
            self.connect_delay.as_millis(),
        );
        if let Some(c) = &self.clip {
            s += &format!("clip = {}\n", c.display());
        }
        if let Some(n) = self.close_at {
            s += &format!("close_at = {n}\n");
        }
        if let Some(n) = self.timeout_at {
            s += &format!("timeout_at = {n}\n");
        }
        s
    }

    /// Write `<dir>/<UID>.conf` (and forget what an earlier camera of this UID was sent).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let _ = std::fs::remove_file(ioctl_log(dir, &self.uid));
        std::fs::write(dir.join(format!("{}.conf", self.uid)), self.to_text())
    }

    pub fn parse(text: &str) -> Result<Camera, String> {
        let mut c = Camera::new("", "admin", "");
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: no '='", n + 1))?;
            let (k, v) = (k.trim(), v.trim());
            let bad = |_| format!("line {}: bad value for {k}", n + 1);
            let list = |v: &str| -> Result<Vec<u64>, String> {
                v.split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| {
                        s.trim()
                            .parse()
                            .map_err(|_| format!("line {}: bad list", n + 1))
                    })
                    .collect()
            };
            match k {
                "uid" => c.uid = v.into(),
                "ip" => c.ip = v.into(),
                "port" => c.port = v.parse().map_err(bad)?,
                "name" => c.name = v.into(),
                "username" => c.username = v.into(),
                "password" => c.password = v.into(),
                "mode" => {
                    c.mode = match v {
                        "p2p" => 0,
                        "relay" => 1,
                        "lan" => 2,
                        v => v.parse().map_err(bad)?,
                    }
                }
                "fps" => c.fps = v.parse::<u32>().map_err(bad)?.clamp(1, 60),
                "gop" => c.gop_seconds = v.parse::<u32>().map_err(bad)?.clamp(1, 10),
                "seconds" => c.seconds = v.parse::<u32>().map_err(bad)?.clamp(1, 60),
                "width" => c.width = v.parse::<u32>().map_err(bad)?.clamp(16, 3840),
                "height" => c.height = v.parse::<u32>().map_err(bad)?.clamp(16, 2160),
                "clip" => c.clip = Some(PathBuf::from(v)),
                "info_size" => c.info_size = v.parse::<usize>().map_err(bad)?.clamp(16, 64),
                "audio" => {
                    c.audio = match v {
                        "g711u" => 0x89,
                        "g711a" => 0x8A,
                        "none" => 0,
                        _ => return Err(format!("line {}: audio is g711u, g711a or none", n + 1)),
                    }
                }
                "incomplete" => c.incomplete = list(v)?,
                "lost" => c.lost = list(v)?,
                "close_at" => c.close_at = Some(v.parse().map_err(bad)?),
                "timeout_at" => c.timeout_at = Some(v.parse().map_err(bad)?),
                "connect_blocks" => c.connect_blocks = v == "true",
                "start_blocks" => c.start_blocks = v == "true",
                "connect_delay_ms" => {
                    c.connect_delay = Duration::from_millis(v.parse().map_err(bad)?)
                }
                _ => return Err(format!("line {}: unknown key {k}", n + 1)),
            }
        }
        if c.uid.is_empty() {
            return Err("no uid".into());
        }
        Ok(c)
    }
}

/// Where the fake records the IOCtrl requests a camera was sent: one line each,
/// `<type in hex> <payload in hex>`, and `LOGIN` for each `avClientStart2`.
pub fn ioctl_log(dir: &Path, uid: &str) -> PathBuf {
    dir.join(format!("{uid}.ioctl"))
}

/// The IOCtrl requests recorded for `uid`, as (type, payload).
pub fn read_ioctl_log(dir: &Path, uid: &str) -> Vec<(u32, Vec<u8>)> {
    std::fs::read_to_string(ioctl_log(dir, uid))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (t, p) = l.split_once(' ')?;
            let t = u32::from_str_radix(t.trim_start_matches("0x"), 16).ok()?;
            let p = (0..p.len() / 2)
                .map(|i| u8::from_str_radix(&p[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .ok()?;
            Some((t, p))
        })
        .collect()
}

/// Every camera in `dir`, sorted by UID; unreadable files are skipped.
pub fn cameras(dir: &Path) -> Vec<Camera> {
    let mut out: Vec<Camera> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "conf"))
        .filter_map(|e| Camera::parse(&std::fs::read_to_string(e.path()).ok()?).ok())
        .collect();
    out.sort_by(|a, b| a.uid.cmp(&b.uid));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let mut c = Camera::new("ABCDEFGHIJKLMNOPQRST", "admin", "pw");
        c.lost = vec![3, 9];
        c.close_at = Some(40);
        c.mode = 1;
        c.clip = Some("/tmp/x.h264".into());
        assert_eq!(Camera::parse(&c.to_text()).unwrap(), c);
        assert!(Camera::parse("uid = X\nbogus = 1").is_err());
    }
}
