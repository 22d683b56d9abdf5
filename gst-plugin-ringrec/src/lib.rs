//! GStreamer plugin `ringrec`: the `ringrecorder` element.

pub mod h264;
mod ringrecorder;
pub mod store;
pub mod writer;

pub use ringrecorder::RingRecorder;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    ringrecorder::register(plugin)
}

gst::plugin_define!(
    ringrec,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
