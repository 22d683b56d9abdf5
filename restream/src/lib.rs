//! RTSP re-streaming of a camera from the one connection the daemon already has.
//!
//! ```text
//! camera pipeline:  camsrc ─ tee ─ … ─ queue(leaky) ─ appsink ┐        (Feed::attach)
//!                        └ audio tee ─ queue(leaky) ─ appsink ┤
//!                                                             │ Feed: one copy of each
//!                                                             │ buffer per client, no
//! per RTSP client:  appsrc ─ h264parse ─ rtph264pay (pay0)  ◄─┤ re-encode, timestamps
//!                   appsrc ─ rtppcmupay / rtppcmapay (pay1) ◄─┘ re-based per client
//! ```
//!
//! - **One camera session**, however many clients: every client's media is fed from the
//!   camera pipeline's tee through a [`Feed`].
//! - **The camera's own streams**: H.264 (or H.265) as it came, SPS/PPS in front of every
//!   key frame and in the SDP (`sprop-parameter-sets`); the audio as it came (PCMU, PCMA,
//!   AAC...). The payloaders are the ones GStreamer ranks best for the camera's caps.
//! - **Late joiners** start at the next key frame. **Slow clients** never hold anything
//!   up: a client with more than [`feed::CLIENT_BACKLOG`] bytes waiting is skipped to the
//!   next key frame; the feed's own queue in the camera pipeline is leaky.
//! - **Camera outages** do not end sessions: the clients see a pause, then the stream
//!   goes on, its timestamps continuing from where they were.
//! - [`RtspServer`]: gst-rtsp-server on a GLib main loop of its own; RTSP over TCP
//!   (interleaved) and UDP; digest authentication (users from the configuration or an
//!   htdigest file); a bound on sessions; silent sessions expired.

pub mod feed;
pub mod htdigest;
pub mod live;
pub mod server;

pub use feed::{Feed, FeedStats};
pub use live::{LiveFeed, Viewer};
pub use server::{RtspConfig, RtspServer, User};
