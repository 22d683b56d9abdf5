//! GStreamer plugin `kasasrc`: live video and audio from TP-Link Kasa cameras.

pub mod client;
mod kasasrc;

pub use kasasrc::KasaSrc;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    kasasrc::register(plugin)
}

gst::plugin_define!(
    kasasrc,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
