//! What every camera session shares, whatever protocol the camera speaks (Kasa's HTTPS
//! multipart, TUTK's P2P, RTSP): no GStreamer here and no TLS, so that the elements which
//! need only these (camsrc, tutksrc) do not link OpenSSL through the Kasa crate.
//!
//! * [`timing`]: camera timestamps mapped onto running time (`docs/timestamps.md`), and
//!   the reconnect backoff every source uses;
//! * [`Secret`]: a password, licence key or derived credential that never prints.

pub mod secret;
pub mod timing;

pub use secret::Secret;
