//! `camsrc`: parsed H.264/H.265 access units (and audio) from any camera URI, with
//! stall detection and restarts that downstream never sees as a failure.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct CamSrc(ObjectSubclass<imp::CamSrc>) @extends gst::Element, gst::Object, @implements gst::URIHandler;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // Rank none: playbin keeps using rtspsrc/kasasrc for plain playback; camsrc is
    // asked for by name.
    gst::Element::register(
        Some(plugin),
        "camsrc",
        gst::Rank::NONE,
        CamSrc::static_type(),
    )
}
