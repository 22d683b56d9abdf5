//! TUTK/Kalay P2P cameras through the vendor SDK, loaded at run time.
//!
//! - [`ffi`]: the C ABI subset, with compile-time layout checks.
//! - [`sdk`]: finding and loading the library, one reference-counted initialisation.
//! - [`backend`]: the small trait the element and the tool use, so another way to reach
//!   cameras (a native LAN protocol) can slot in.
//! - [`client`]: a camera's stream with reconnection, dropped-frame handling and stats.
//! - [`payload`]: IOCtrl payloads byte for byte.

pub mod backend;
pub mod client;
pub mod ffi;
pub mod payload;
pub mod sdk;

pub use backend::{
    Backend, Cancel, ConnectRequest, Device, Error, ErrorKind, Mode, Recv, Secret, Session,
    SessionInfo,
};
pub use sdk::Sdk;
