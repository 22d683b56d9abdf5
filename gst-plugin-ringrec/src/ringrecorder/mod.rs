//! `ringrecorder`: a sink bin that splits a camera's H.264 (and audio) into segments
//! named by camera and wall-clock time, keeps them playable after a crash, and
//! enforces retention.

use gst::glib;
use gst::prelude::*;
use std::sync::LazyLock;

mod imp;

/// The element's debug category (its files' writers log under `recwriter`).
static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "ringrecorder",
        gst::DebugColorFlags::empty(),
        Some("Crash-safe ring recorder"),
    )
});

glib::wrapper! {
    pub struct RingRecorder(ObjectSubclass<imp::RingRecorder>) @extends gst::Bin, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "ringrecorder",
        gst::Rank::NONE,
        RingRecorder::static_type(),
    )
}
