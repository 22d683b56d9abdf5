//! Pieces shared by the camera elements (`kasasrc`, `tutksrc`, `camsrc`).

pub mod decodequeue;
pub mod livesrc;
pub mod padqueue;
pub mod srcpad;
pub mod time;
pub mod uri;
