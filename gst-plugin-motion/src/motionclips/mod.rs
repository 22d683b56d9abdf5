//! `motionclips`: a sink bin for a camera's H.264 that detects motion and objects on the
//! decoded frames and cuts clips of the events from the encoded stream, without
//! re-encoding, with pre-roll and post-roll, plus a JPEG snapshot of the best detection.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct MotionClips(ObjectSubclass<imp::MotionClips>) @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstMotionClipsRecord")]
pub enum Record {
    #[default]
    #[enum_value(name = "Events confirmed by a watched object", nick = "confirmed")]
    Confirmed = 0,
    #[enum_value(name = "Every motion event", nick = "all")]
    All = 1,
}

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstMotionClipsFormat")]
pub enum Format {
    #[default]
    #[enum_value(name = "MP4 (mp4mux)", nick = "mp4")]
    Mp4 = 0,
    #[enum_value(
        name = "Matroska (matroskamux), readable even if cut short",
        nick = "mkv"
    )]
    Mkv = 1,
}

impl Format {
    /// The clip files' extension, which is also the writer's format name.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Mp4 => "mp4",
            Format::Mkv => "mkv",
        }
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "motionclips",
        gst::Rank::NONE,
        MotionClips::static_type(),
    )
}
