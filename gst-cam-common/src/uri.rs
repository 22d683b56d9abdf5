//! Percent-encoding of the user and password parts of camera URIs (`cam_session::uri`'s).

pub use cam_session::uri::{percent_decode, percent_encode};
