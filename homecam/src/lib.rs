//! `homecam`: the daemon that runs every camera's jobs from one configuration file. The
//! binary is `src/main.rs`; the pieces are here so that tests can drive them.

pub mod alerts;
pub mod arlo;
pub mod config;
pub mod daemon;
pub mod dashboard;
pub mod event;
pub mod index;
pub mod insights;
pub mod kafka;
pub mod metrics;
pub mod mqtt;
pub mod notify;
pub mod spool;
pub mod web;
