//! GStreamer plugin `mjpeghttp`: the `mjpeghttpsink` element, an MJPEG-over-HTTP server
//! for browsers, VLC, Home Assistant and Frigate.

mod mjpeghttpsink;
pub mod server;

pub use mjpeghttpsink::MjpegHttpSink;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    mjpeghttpsink::register(plugin)
}

gst::plugin_define!(
    mjpeghttp,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
