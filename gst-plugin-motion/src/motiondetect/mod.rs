//! `motiondetect`: a pass-through video filter that posts motion events.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct MotionDetect(ObjectSubclass<imp::MotionDetect>) @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "motiondetect",
        gst::Rank::NONE,
        MotionDetect::static_type(),
    )
}
