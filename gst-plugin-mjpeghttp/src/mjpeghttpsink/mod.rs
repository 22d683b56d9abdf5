//! `mjpeghttpsink`: serves the JPEG frames it receives over HTTP, to any number of
//! viewers, without ever blocking the pipeline on one of them.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct MjpegHttpSink(ObjectSubclass<imp::MjpegHttpSink>) @extends gst_base::BaseSink, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "mjpeghttpsink",
        gst::Rank::NONE,
        MjpegHttpSink::static_type(),
    )
}
