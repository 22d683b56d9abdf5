//! GStreamer plugin `motion`: `motiondetect`, motion detection on a downscaled luma plane
//! (`detector` holds the algorithm, without GStreamer).

pub mod detector;
mod motiondetect;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    motiondetect::register(plugin)
}

gst::plugin_define!(
    motion,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
