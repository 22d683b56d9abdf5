//! What an element or tool needs from a TUTK camera, behind one small trait, so a second
//! way to reach cameras (a native LAN implementation of the wire protocol) can slot in
//! beside the vendor SDK.

use crate::ffi;
use std::fmt;
use std::time::Duration;

/// A password or licence key: never printed, not even by `{:?}` (the one type every
/// camera session uses).
pub use cam_session::Secret;

/// A camera answering a LAN search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub uid: String,
    pub ip: String,
    pub port: u16,
    pub name: String,
}

/// How the session reaches the camera (`st_SInfo.Mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Hole-punched through the vendor's servers.
    P2p,
    /// Relayed through the vendor's servers.
    Relay,
    /// Directly on the local network.
    Lan,
    Unknown(i8),
}

impl Mode {
    pub fn from_c(m: i8) -> Mode {
        match m {
            0 => Mode::P2p,
            1 => Mode::Relay,
            2 => Mode::Lan,
            m => Mode::Unknown(m),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::P2p => f.write_str("P2P"),
            Mode::Relay => f.write_str("relay"),
            Mode::Lan => f.write_str("LAN"),
            Mode::Unknown(m) => write!(f, "unknown ({m})"),
        }
    }
}

/// An open session as `IOTC_Session_Check` describes it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub mode: Mode,
    pub remote_ip: String,
    pub remote_port: u16,
}

/// What to connect to, and how.
#[derive(Clone, Debug)]
pub struct ConnectRequest {
    pub uid: String,
    pub username: String,
    pub password: Secret,
    pub channel: u8,
    /// Accept a P2P or relay session (credentials then cross the vendor's servers).
    pub allow_remote: bool,
    /// `avClientStart2`'s timeout.
    pub timeout: Duration,
}

/// What went wrong, naming the failed step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The vendor library is missing, or lacks a symbol.
    Library(String),
    /// An SDK call returned an error code.
    Sdk { step: &'static str, code: i32 },
    /// The session is not on the LAN and `allow-remote` is off.
    RemoteRefused(Mode),
    /// Stopped from another thread.
    Cancelled,
    /// A request the SDK cannot take (bad UID, oversized payload).
    Invalid(String),
}

/// How a caller should react to an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Wrong user name or password: retrying cannot help.
    Auth,
    /// No such device.
    NotFound,
    /// The camera went away or did not answer: reconnect with backoff.
    Transient,
    /// Configuration or installation: report and stop.
    Fatal,
    Cancelled,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Sdk { code, .. } => match *code {
                ffi::AV_ER_WRONG_VIEWACC_OR_PWD => ErrorKind::Auth,
                ffi::IOTC_ER_CAN_NOT_FIND_DEVICE => ErrorKind::NotFound,
                ffi::IOTC_ER_UNLICENSE | ffi::TUTK_ER_INVALID_LICENSE_KEY => ErrorKind::Fatal,
                ffi::AV_ER_INVALID_ARG => ErrorKind::Fatal,
                _ => ErrorKind::Transient,
            },
            Error::Library(_) | Error::RemoteRefused(_) | Error::Invalid(_) => ErrorKind::Fatal,
            Error::Cancelled => ErrorKind::Cancelled,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Library(s) | Error::Invalid(s) => f.write_str(s),
            Error::Sdk { step, code } => {
                write!(f, "{step} failed: {} ({code})", ffi::error_name(*code))?;
                match *code {
                    ffi::AV_ER_WRONG_VIEWACC_OR_PWD => {
                        f.write_str(": wrong user name or password for the camera")
                    }
                    ffi::IOTC_ER_CAN_NOT_FIND_DEVICE => {
                        f.write_str(": no camera with this UID answered (is it on, and on this network?)")
                    }
                    ffi::IOTC_ER_UNLICENSE | ffi::TUTK_ER_INVALID_LICENSE_KEY => {
                        f.write_str(": this SDK needs a valid licence key (license-key / TUTK_LICENSE_KEY)")
                    }
                    _ => Ok(()),
                }
            }
            Error::RemoteRefused(mode) => write!(
                f,
                "refusing a {mode} session: the camera was not reached on the LAN, and on older SDKs the password crosses the vendor's servers in near-cleartext (CVE-2021-28372); put the camera on this network, or set allow-remote=true (tutk --allow-remote) to accept the risk"
            ),
            Error::Cancelled => f.write_str("stopped"),
        }
    }
}

impl std::error::Error for Error {}

/// A stop request that can reach into a blocking SDK call: the backend registers how to
/// abort what it is blocked in (`IOTC_Connect_Stop_BySID`, `avClientExit`). The one stop
/// handle every camera session uses.
pub use cam_session::Cancel;

/// The result of one `recv_frame`.
#[derive(Debug, PartialEq, Eq)]
pub enum Recv {
    /// `len` bytes of frame in the buffer.
    Frame {
        len: usize,
        info: ffi::FrameInfo,
        index: u32,
    },
    /// Nothing yet: wait ~10 ms and ask again.
    NotReady,
    /// The SDK lost or could not complete a frame (`code` says which).
    Dropped(i32),
    /// The session is over.
    Closed(Error),
}

/// One way to reach TUTK cameras.
pub trait Backend: Send + Sync {
    /// The cameras answering on the LAN within `wait`, at most `max`.
    fn search(&self, wait: Duration, max: usize) -> Result<Vec<Device>, Error>;
    /// Open a session and an AV channel (blocking; `cancel` aborts it).
    fn connect(&self, req: &ConnectRequest, cancel: &Cancel) -> Result<Box<dyn Session>, Error>;
}

/// An open AV channel. Dropping it closes the channel and the session.
pub trait Session: Send {
    fn info(&self) -> &SessionInfo;
    fn send_ioctrl(&mut self, io_type: u32, payload: &[u8]) -> Result<(), Error>;
    /// The next frame into `buf`, its header into `info_buf` (never blocks for long).
    fn recv_frame(&mut self, buf: &mut [u8], info_buf: &mut [u8]) -> Recv;
    /// The next audio frame (after `IOTYPE_USER_IPCAM_AUDIOSTART`); `NotReady` for ever
    /// when the SDK has no audio call.
    fn recv_audio(&mut self, buf: &mut [u8], info_buf: &mut [u8]) -> Recv;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        let r = ConnectRequest {
            uid: "U".into(),
            username: "admin".into(),
            password: s,
            channel: 0,
            allow_remote: false,
            timeout: Duration::from_secs(1),
        };
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn errors_name_the_step_and_kind() {
        let e = Error::Sdk {
            step: "avClientStart2",
            code: ffi::AV_ER_WRONG_VIEWACC_OR_PWD,
        };
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(e
            .to_string()
            .starts_with("avClientStart2 failed: AV_ER_WRONG_VIEWACCorPWD (-20009)"));
        let e = Error::Sdk {
            step: "IOTC_Connect_ByUID_Parallel",
            code: ffi::IOTC_ER_CAN_NOT_FIND_DEVICE,
        };
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            Error::Sdk {
                step: "x",
                code: ffi::AV_ER_SESSION_CLOSE_BY_REMOTE
            }
            .kind(),
            ErrorKind::Transient
        );
        assert!(Error::RemoteRefused(Mode::Relay)
            .to_string()
            .contains("allow-remote"));
    }

    #[test]
    fn cancel_aborts_once_and_refuses_after() {
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::Arc;
        let c = Cancel::new();
        let n = Arc::new(AtomicU32::new(0));
        let n2 = n.clone();
        assert!(c.set_abort(move || {
            n2.fetch_add(1, Ordering::SeqCst);
        }));
        c.cancel();
        c.cancel();
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert!(!c.set_abort(|| {}));
        c.reset();
        assert!(!c.is_cancelled());
    }
}
