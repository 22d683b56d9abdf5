//! `tutksrc`: live video from a TUTK/Kalay camera through the vendor SDK.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct TutkSrc(ObjectSubclass<imp::TutkSrc>) @extends gst::Element, gst::Object, @implements gst::URIHandler;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "tutksrc",
        gst::Rank::PRIMARY,
        TutkSrc::static_type(),
    )
}
