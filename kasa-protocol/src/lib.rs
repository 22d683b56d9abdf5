//! The TP-Link Kasa camera stream protocol, apart from any GStreamer glue.
//!
//! A Kasa camera (EC60, KC1xx/KC4xx, KD110...) serves its live stream at
//! `https://<ip>:19443/https/stream/mixed` as an HTTP/1.0 `multipart/x-mixed-replace`
//! body carrying one H.264 access unit or one 60 ms G.711 mu-law chunk per part.
//! Nothing in that exchange is standard enough for a stock HTTP client, so each step
//! is implemented here by hand, sans I/O, so it can be unit-tested and fuzzed alone:
//!
//! * [`tls`]: the OpenSSL client profile that still negotiates static-RSA suites;
//! * [`auth`]: the `Basic base64(email:base64(password))` header, with a secret type
//!   that never prints;
//! * [`http`]: the response head parser (LF-only lines, `Content-Length: -1`...);
//! * [`chunked`]: a streaming de-chunker;
//! * [`multipart`]: the part framer with bounded buffering and resynchronisation;
//! * [`h264`]: just enough Annex-B inspection to find key frames and parameter sets;
//! * [`discovery`]: the UDP 9999 device discovery (XOR "autokey" JSON).
//!
//! See `docs/kasa-protocol.md` in the repository for the facts these follow.

pub mod auth;
pub mod chunked;
pub mod discovery;
pub mod h264;
pub mod http;
pub mod multipart;
pub mod stream;
pub mod tls;

/// The TCP port of the camera's HTTPS stream server.
pub const DEFAULT_PORT: u16 = 19443;

/// The path every client (official app, go2rtc, Scrypted) requests; the bare path
/// `/https/stream/mixed` also works and still carries audio.
pub const DEFAULT_PATH: &str = "/https/stream/mixed?video=h264&audio=g711&resolution=hd";

/// The realm a Kasa camera names in its 401 answer.
pub const REALM: &str = "smarthome@tp-link.com";
