//! GStreamer plugin `camsrc`: one source element for every home camera, which rebuilds
//! its inner source whenever the camera stalls, errors out or ends, while the rest of
//! the pipeline keeps running.

mod camsrc;
pub mod uri;

pub use camsrc::CamSrc;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    camsrc::register(plugin)
}

gst::plugin_define!(
    camsrc,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
