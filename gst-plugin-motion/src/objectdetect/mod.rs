//! `objectdetect`: a pass-through video filter that runs NanoDet while motion is going on
//! and turns each motion event into `confirmed` or `dismissed`.

use gst::glib;
use gst::prelude::*;

mod imp;

/// The `model` property: the built-in NanoDet-g at one input size (`nanodet::Model`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstObjectDetectModel")]
pub enum ObjectDetectModel {
    #[default]
    #[enum_value(
        name = "NanoDet-g at 416x416, its training size: the most accurate (about 80 ms an inference on one core)",
        nick = "nanodet-g-416"
    )]
    NanodetG416 = 0,
    #[enum_value(
        name = "NanoDet-g at 320x320: about 0.6 of the cost; misses more small people and animals",
        nick = "nanodet-g-320"
    )]
    NanodetG320 = 1,
    #[enum_value(
        name = "NanoDet-g at 256x256: about 0.4 of the cost; for large subjects (close cameras, motion-region)",
        nick = "nanodet-g-256"
    )]
    NanodetG256 = 2,
    #[enum_value(
        name = "NanoDet-g at 224x224: about 0.3 of the cost; for large subjects only",
        nick = "nanodet-g-224"
    )]
    NanodetG224 = 3,
}

impl From<ObjectDetectModel> for crate::nanodet::Model {
    fn from(m: ObjectDetectModel) -> Self {
        use crate::nanodet::Model;
        match m {
            ObjectDetectModel::NanodetG416 => Model::NanodetG416,
            ObjectDetectModel::NanodetG320 => Model::NanodetG320,
            ObjectDetectModel::NanodetG256 => Model::NanodetG256,
            ObjectDetectModel::NanodetG224 => Model::NanodetG224,
        }
    }
}

glib::wrapper! {
    pub struct ObjectDetect(ObjectSubclass<imp::ObjectDetect>) @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    ObjectDetectModel::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "objectdetect",
        gst::Rank::NONE,
        ObjectDetect::static_type(),
    )
}
