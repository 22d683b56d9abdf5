//! `objectdetect`: a pass-through video filter that runs NanoDet while motion is going on
//! and turns each motion event into `confirmed` or `dismissed`.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct ObjectDetect(ObjectSubclass<imp::ObjectDetect>) @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "objectdetect",
        gst::Rank::NONE,
        ObjectDetect::static_type(),
    )
}
