//! The `motiondetect` element: reads the luma plane of each frame (never writes it), runs
//! [`crate::detector`], and posts `motion` element messages.

use crate::detector::{self, Change, Config, Detector};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::BaseTransformMode;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;
use std::sync::{LazyLock, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "motiondetect",
        gst::DebugColorFlags::empty(),
        Some("Motion detection"),
    )
});

/// Formats whose first plane is 8-bit luma.
const FORMATS: &[gst_video::VideoFormat] = &[
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Yv12,
    gst_video::VideoFormat::Nv12,
    gst_video::VideoFormat::Nv21,
    gst_video::VideoFormat::Y42b,
    gst_video::VideoFormat::Y444,
    gst_video::VideoFormat::Gray8,
];

const DEFAULT_UPDATE_INTERVAL: f64 = 1.0;

#[derive(Clone, Debug)]
struct Settings {
    cfg: Config,
    mask: String,
    zones: String,
    update_interval: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cfg: Config::default(),
            mask: String::new(),
            zones: String::new(),
            update_interval: DEFAULT_UPDATE_INTERVAL,
        }
    }
}

struct State {
    detector: Detector,
    /// The current event: id, start (stream time s, wall time s), last update (stream s).
    event: Option<(u64, f64, f64, f64)>,
    next_id: u64,
    /// Stream time of the last frame (s).
    last_t: f64,
}

#[derive(Default)]
pub struct MotionDetect {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for MotionDetect {
    const NAME: &'static str = "GstMotionDetect";
    type Type = super::MotionDetect;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for MotionDetect {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let d = Config::default();
            vec![
                glib::ParamSpecFloat::builder("threshold")
                    .nick("Sensitivity threshold")
                    .blurb("Luma difference (0-255) from the background that makes a cell changed; lower is more sensitive")
                    .minimum(1.0)
                    .maximum(255.0)
                    .default_value(d.threshold)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("min-area")
                    .nick("Minimum area")
                    .blurb("Fraction of the watched frame (0-1) that must change to count as motion")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.min_area)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("trigger-frames")
                    .nick("Trigger frames")
                    .blurb("Frames in a row with motion needed to start an event")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(d.trigger_frames)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("calm-time")
                    .nick("Calm time")
                    .blurb("Seconds without motion that end an event")
                    .minimum(0.0)
                    .maximum(3600.0)
                    .default_value(d.calm)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("global-change")
                    .nick("Global change")
                    .blurb("Fraction of the frame changing at once that is a lighting change (lights, IR night mode, exposure), not motion; the background restarts from that frame")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.global_change)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("learning-rate")
                    .nick("Learning rate")
                    .blurb("How fast the background follows the scene, per frame (0-1)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.learning_rate)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("grid-width")
                    .nick("Grid width")
                    .blurb("Analysis cells across the frame, whatever its size (the luma plane is averaged into them)")
                    .minimum(16)
                    .maximum(640)
                    .default_value(d.width as u32)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("mask")
                    .nick("Mask")
                    .blurb("Areas to ignore: polygons in fractions of the frame, 'x,y x,y x,y; x,y ...' (e.g. a tree: '0.7,0 1,0 1,0.5 0.7,0.5')")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("zones")
                    .nick("Zones")
                    .blurb("Named areas reported with each event: 'name:x,y x,y x,y; name2:...' in fractions of the frame")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("update-interval")
                    .nick("Update interval")
                    .blurb("Seconds between 'update' messages during an event")
                    .minimum(0.0)
                    .maximum(3600.0)
                    .default_value(DEFAULT_UPDATE_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("active")
                    .nick("Active")
                    .blurb("Whether motion is going on now")
                    .read_only()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "threshold" => s.cfg.threshold = value.get().unwrap(),
            "min-area" => s.cfg.min_area = value.get().unwrap(),
            "trigger-frames" => s.cfg.trigger_frames = value.get().unwrap(),
            "calm-time" => s.cfg.calm = value.get().unwrap(),
            "global-change" => s.cfg.global_change = value.get().unwrap(),
            "learning-rate" => s.cfg.learning_rate = value.get().unwrap(),
            "grid-width" => s.cfg.width = value.get::<u32>().unwrap() as usize,
            "mask" => s.mask = value.get::<Option<String>>().unwrap().unwrap_or_default(),
            "zones" => s.zones = value.get::<Option<String>>().unwrap().unwrap_or_default(),
            "update-interval" => s.update_interval = value.get().unwrap(),
            other => unreachable!("unknown property {other}"),
        }
        // Thresholds apply at once to a running detector; the grid, mask and zones at
        // the next caps.
        if let Some(st) = self.state.lock().unwrap().as_mut() {
            st.detector.tune(&s.cfg);
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "threshold" => s.cfg.threshold.to_value(),
            "min-area" => s.cfg.min_area.to_value(),
            "trigger-frames" => s.cfg.trigger_frames.to_value(),
            "calm-time" => s.cfg.calm.to_value(),
            "global-change" => s.cfg.global_change.to_value(),
            "learning-rate" => s.cfg.learning_rate.to_value(),
            "grid-width" => (s.cfg.width as u32).to_value(),
            "mask" => s.mask.to_value(),
            "zones" => s.zones.to_value(),
            "update-interval" => s.update_interval.to_value(),
            "active" => self
                .state
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|st| st.detector.active())
                .to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for MotionDetect {}

impl ElementImpl for MotionDetect {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Motion detection",
                "Filter/Analyzer/Video",
                "Pass-through filter posting 'motion' messages (start, update, end, with score, boxes and zones); ignores sensor noise, lighting changes and masked areas",
                "homecam-gst developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(FORMATS.iter().copied())
                .build();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for MotionDetect {
    const MODE: BaseTransformMode = BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = true;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Eos(_) = event.view() {
            self.end_open("eos");
        }
        self.parent_sink_event(event)
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // An event still open ends with the stream.
        self.state.lock().unwrap().take();
        Ok(())
    }
}

impl VideoFilterImpl for MotionDetect {
    fn set_info(
        &self,
        _incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        _outcaps: &gst::Caps,
        _out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        let s = self.settings.lock().unwrap().clone();
        let mut cfg = s.cfg.clone();
        cfg.mask = detector::parse_mask(&s.mask).map_err(|e| {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Bad mask: {e}"));
            gst::loggable_error!(CAT, "bad mask")
        })?;
        cfg.zones = detector::parse_zones(&s.zones).map_err(|e| {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Bad zones: {e}"));
            gst::loggable_error!(CAT, "bad zones")
        })?;
        let detector = Detector::new(cfg, in_info.width() as usize, in_info.height() as usize);
        gst::info!(
            CAT,
            imp = self,
            "analysing {}x{} as a {:?} grid",
            in_info.width(),
            in_info.height(),
            detector.grid()
        );
        let mut st = self.state.lock().unwrap();
        let (event, next_id) = st
            .as_ref()
            .map(|s| (s.event, s.next_id))
            .unwrap_or((None, 1));
        *st = Some(State {
            detector,
            event,
            next_id,
            last_t: 0.0,
        });
        Ok(())
    }

    fn transform_frame_ip_passthrough(
        &self,
        frame: &gst_video::VideoFrameRef<&gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Ok(luma) = frame.plane_data(0) else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let stride = frame.plane_stride()[0] as usize;
        let pts = frame.buffer().pts();
        let segment = self.obj().segment();
        let seg = segment.downcast_ref::<gst::ClockTime>();
        let stream_time = pts.and_then(|p| seg.and_then(|s| s.to_stream_time(p)));
        let running_time = pts.and_then(|p| seg.and_then(|s| s.to_running_time(p)));
        let t = stream_time
            .or(pts)
            .map(|t| t.nseconds() as f64 / 1e9)
            .unwrap_or(0.0);
        let (update_interval, calm) = {
            let s = self.settings.lock().unwrap();
            (s.update_interval, s.cfg.calm)
        };
        // A gap in the stream longer than the calm time (a camera that went away and came
        // back) ends the open event there; the detector starts afresh.
        let gap = self.state.lock().unwrap().as_ref().is_some_and(|st| {
            st.event.is_some() && (t - st.last_t > calm.max(1.0) || t < st.last_t)
        });
        if gap {
            self.end_open("gap");
            if let Some(st) = self.state.lock().unwrap().as_mut() {
                st.detector.restart();
            }
        }
        let mut guard = self.state.lock().unwrap();
        let Some(st) = guard.as_mut() else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let r = st.detector.process(luma, w, h, stride, t);
        st.last_t = t;
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let kind = match r.change {
            Some(Change::Start) => {
                st.event = Some((st.next_id, t, wall, t));
                st.next_id += 1;
                "start"
            }
            Some(Change::Update) => match st.event.as_mut() {
                Some(e) if t - e.3 >= update_interval => {
                    e.3 = t;
                    "update"
                }
                _ => return Ok(gst::FlowSuccess::Ok),
            },
            Some(Change::End) => "end",
            None => return Ok(gst::FlowSuccess::Ok),
        };
        let Some((id, start, start_wall, _)) = st.event else {
            return Ok(gst::FlowSuccess::Ok);
        };
        if kind == "end" {
            st.event = None;
        }
        let peak = st.detector.peak;
        drop(guard);
        let boxes = gst::Array::new(r.boxes.iter().map(|b| {
            gst::Structure::builder("box")
                .field("x", b.x)
                .field("y", b.y)
                .field("w", b.w)
                .field("h", b.h)
                .build()
                .to_send_value()
        }));
        let zones = gst::Array::new(r.zones.iter().map(|z| z.to_send_value()));
        let mut s = gst::Structure::builder("motion")
            .field("type", kind)
            .field("id", id)
            .field("score", peak)
            .field("area", r.area)
            .field("boxes", boxes)
            .field("zones", zones)
            .field(
                "stream-time",
                stream_time.map(|t| t.nseconds()).unwrap_or(u64::MAX),
            )
            .field(
                "running-time",
                running_time.map(|t| t.nseconds()).unwrap_or(u64::MAX),
            )
            .field("wall-time", wall)
            .field("start-stream-time", (start * 1e9) as u64)
            .field("start-wall-time", start_wall)
            .build();
        if kind == "end" {
            s.set("duration", t - start);
        }
        self.emit(s);
        Ok(gst::FlowSuccess::Ok)
    }
}

impl MotionDetect {
    /// Posts a `motion` message and sends the same structure downstream, ahead of the
    /// frame, as a custom event (`objectdetect` follows the events with it).
    fn emit(&self, s: gst::Structure) {
        gst::debug!(CAT, imp = self, "{s}");
        let obj = self.obj();
        let _ = obj.post_message(gst::message::Element::builder(s.clone()).src(&*obj).build());
        obj.src_pad()
            .push_event(gst::event::CustomDownstream::new(s));
    }

    /// Ends an open event at its last frame (the stream ended, or a gap in it), so that
    /// nobody waits for its `end`.
    fn end_open(&self, reason: &str) {
        let mut guard = self.state.lock().unwrap();
        let Some(st) = guard.as_mut() else { return };
        let Some((id, start, start_wall, _)) = st.event.take() else {
            return;
        };
        let (t, peak) = (st.last_t, st.detector.peak);
        drop(guard);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let s = gst::Structure::builder("motion")
            .field("type", "end")
            .field("id", id)
            .field("score", peak)
            .field("area", 0f32)
            .field("boxes", gst::Array::new(Vec::<glib::SendValue>::new()))
            .field("zones", gst::Array::new(Vec::<glib::SendValue>::new()))
            .field("stream-time", (t * 1e9) as u64)
            .field("running-time", u64::MAX)
            .field("wall-time", wall)
            .field("start-stream-time", (start * 1e9) as u64)
            .field("start-wall-time", start_wall)
            .field("duration", t - start)
            .field("reason", reason)
            .build();
        self.emit(s);
    }
}
