//! Pieces shared by the camera elements (`kasasrc`, `camsrc`).

pub mod padqueue;
