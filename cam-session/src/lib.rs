//! What every camera session shares, whatever protocol the camera speaks (Kasa's HTTPS
//! multipart, TUTK's P2P, RTSP): no GStreamer here and no TLS, so that the elements which
//! need only these (camsrc, tutksrc) do not link OpenSSL through the Kasa crate.
//!
//! * [`timing`]: camera timestamps mapped onto running time (`docs/timestamps.md`), and
//!   the reconnect backoff every source uses;
//! * [`uri`]: one splitter for camera URIs (credentials out, a redacted form);
//! * [`Cancel`]: the one stop handle (a flag, a wait it ends, an abort for the blocking
//!   call);
//! * [`reconnect`]: the reconnect loop (backoff, give-up, offline reports, stops);
//! * [`Secret`]: a password, licence key or derived credential that never prints.

pub mod cancel;
pub mod reconnect;
pub mod secret;
pub mod timing;
pub mod uri;

pub use cancel::Cancel;
pub use secret::Secret;
