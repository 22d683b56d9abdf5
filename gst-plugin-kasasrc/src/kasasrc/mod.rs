//! `kasasrc`: live H.264 video and G.711 mu-law audio from a TP-Link Kasa camera.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct KasaSrc(ObjectSubclass<imp::KasaSrc>) @extends gst::Element, gst::Object, @implements gst::URIHandler;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "kasasrc",
        gst::Rank::PRIMARY,
        KasaSrc::static_type(),
    )
}
