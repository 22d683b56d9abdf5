//! GStreamer plugin `motion`: `motiondetect`, motion detection on a downscaled luma plane
//! (`detector` holds the algorithm, without GStreamer), and `objectdetect`, NanoDet object
//! detection during motion (`nanodet` holds the model code, without GStreamer).

pub mod detector;
mod frame;
mod motionclips;
mod motiondetect;
pub mod nanodet;
mod objectdetect;

/// The `boxes` of a `motion` structure (motiondetect's messages and events): normalised
/// x, y, w, h of each moving area; empty without the field.
pub fn motion_boxes(s: &gst::StructureRef) -> Vec<[f32; 4]> {
    let Ok(a) = s.get::<gst::ArrayRef>("boxes") else {
        return Vec::new();
    };
    a.iter()
        .filter_map(|v| v.get::<gst::Structure>().ok())
        .map(|b| {
            let f = |k: &str| b.get::<f32>(k).unwrap_or(0.0);
            [f("x"), f("y"), f("w"), f("h")]
        })
        .collect()
}

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    motiondetect::register(plugin)?;
    objectdetect::register(plugin)?;
    motionclips::register(plugin)
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
