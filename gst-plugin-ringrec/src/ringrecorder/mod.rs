//! `ringrecorder`: a sink bin that splits a camera's H.264 (and audio) into segments
//! named by camera and wall-clock time, keeps them playable after a crash, and
//! enforces retention.

use gst::glib;
use gst::prelude::*;

mod imp;
mod writer;

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
