//! Pieces shared by the camera elements (`kasasrc`, `camsrc`).

pub mod decodequeue;
pub mod padqueue;
pub mod srcpad;
pub mod time;
pub mod uri;
