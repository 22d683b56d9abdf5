//! GStreamer plugin `tutksrc`: live video from TUTK/Kalay P2P cameras through the
//! vendor SDK, loaded at run time.

mod tutksrc;
pub mod uri;

pub use tutksrc::TutkSrc;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    tutksrc::register(plugin)
}

gst::plugin_define!(
    tutksrc,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
