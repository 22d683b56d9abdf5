//! The `objectdetect` element. Frames pass through untouched. While a motion event is open
//! (the `motion` custom events `motiondetect` sends downstream), a copy of a frame is handed
//! to a worker thread at most `max-rate` times a second; frames arriving while it is busy
//! are not analysed (they are never queued or delayed) unless `drop-frames` is false. The
//! worker posts `objectdetect` messages: `objects` after each inference, `confirmed` when a
//! watched label first passes the threshold, and `end` with the event's verdict and a
//! snapshot of its best frame.

use super::ObjectDetectModel;
use crate::frame::view;
use crate::nanodet::{self, Detection, Detector, Model, Region};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::BaseTransformMode;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, LazyLock, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "objectdetect",
        gst::DebugColorFlags::empty(),
        Some("Object detection (NanoDet)"),
    )
});

use crate::frame::FORMATS;

const DEFAULT_LABELS: &str = "person,animal";
const DEFAULT_THRESHOLD: f32 = 0.5;
const DEFAULT_MAX_RATE: f64 = 2.5;

#[derive(Clone, Debug)]
struct Settings {
    labels: String,
    threshold: f32,
    max_rate: f64,
    always: bool,
    drop_frames: bool,
    model_location: Option<String>,
    model: ObjectDetectModel,
    motion_region: bool,
    snapshot: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            labels: DEFAULT_LABELS.into(),
            threshold: DEFAULT_THRESHOLD,
            max_rate: DEFAULT_MAX_RATE,
            always: false,
            drop_frames: true,
            model_location: None,
            model: ObjectDetectModel::default(),
            motion_region: false,
            snapshot: false,
        }
    }
}

impl Settings {
    /// The group name `label` counts under, if it is watched: the label itself, or
    /// `animal` for the animals when that group is watched.
    fn watched(&self, label: &str) -> Option<String> {
        let mut found = None;
        for w in self.labels.split(',').map(str::trim) {
            if w == label {
                return Some(label.to_string());
            }
            if w == "animal" && nanodet::ANIMALS.contains(&label) {
                found = Some("animal".to_string());
            }
        }
        found
    }
}

#[derive(Clone, Debug, Default)]
struct Stats {
    inferences: u64,
    skipped: u64,
    total_ms: f64,
    last_ms: f64,
}

enum Job {
    Start {
        id: u64,
        start: f64,
    },
    Frame {
        id: u64,
        buffer: gst::Buffer,
        info: gst_video::VideoInfo,
        t: f64,
        /// The moving areas to look at (normalised x, y, w, h); empty: the whole frame.
        motion: Vec<[f32; 4]>,
    },
    End {
        id: u64,
        t: f64,
        reason: String,
    },
}

/// Jobs sent and not yet done, to wait for the worker: all of them, and the frames.
#[derive(Default)]
struct Pending {
    n: Mutex<(usize, usize)>,
    cond: Condvar,
}

impl Pending {
    fn add(&self, frame: bool) {
        let mut n = self.n.lock().unwrap();
        n.0 += 1;
        n.1 += usize::from(frame);
    }
    fn done(&self, frame: bool) {
        let mut n = self.n.lock().unwrap();
        n.0 = n.0.saturating_sub(1);
        if frame {
            n.1 = n.1.saturating_sub(1);
        }
        self.cond.notify_all();
    }
    /// A frame is waiting for, or in, an inference. (The model still loading, or an
    /// event's start or end being handled, is not busy: the event's first frame then
    /// waits in line instead of being dropped, so that an event the stream ends soon
    /// after its start, or during the model's load, still gets an inference.)
    fn busy(&self) -> bool {
        self.n.lock().unwrap().1 > 0
    }
    fn wait_idle(&self) {
        let mut n = self.n.lock().unwrap();
        while n.0 > 0 {
            n = self.cond.wait(n).unwrap();
        }
    }
}

struct Worker {
    tx: mpsc::Sender<Job>,
    pending: Arc<Pending>,
    handle: JoinHandle<()>,
}

impl Worker {
    fn send(&self, job: Job) {
        let frame = matches!(job, Job::Frame { .. });
        self.pending.add(frame);
        if self.tx.send(job).is_err() {
            self.pending.done(frame);
        }
    }
}

#[derive(Default)]
struct State {
    info: Option<gst_video::VideoInfo>,
    /// The open motion event (id, start in stream seconds).
    event: Option<u64>,
    /// Stream time of the last frame handed to the worker.
    last_infer: Option<f64>,
    /// The open event's latest motion boxes (normalised x, y, w, h).
    motion: Vec<[f32; 4]>,
}

#[derive(Default)]
pub struct ObjectDetect {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    worker: Mutex<Option<Worker>>,
    stats: Arc<Mutex<Stats>>,
}

#[glib::object_subclass]
impl ObjectSubclass for ObjectDetect {
    const NAME: &'static str = "GstObjectDetect";
    type Type = super::ObjectDetect;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for ObjectDetect {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("labels")
                    .nick("Watched labels")
                    .blurb("Comma-separated COCO labels that confirm an event; 'animal' stands for bird, cat, dog, horse, sheep, cow and bear (NanoDet confuses small animals among them)")
                    .default_value(Some(DEFAULT_LABELS))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("threshold")
                    .nick("Score threshold")
                    .blurb("Score (0-1) a watched object needs to confirm an event; objects below it are not reported")
                    .minimum(0.25)
                    .maximum(1.0)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("max-rate")
                    .nick("Maximum rate")
                    .blurb("Inferences per second of stream at most (one takes about 80 ms on one core at the default model)")
                    .minimum(0.01)
                    .maximum(100.0)
                    .default_value(DEFAULT_MAX_RATE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("always")
                    .nick("Always")
                    .blurb("Analyse frames without motion too (posting only 'objects' messages); by default only during motion events from an upstream motiondetect")
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("drop-frames")
                    .nick("Drop frames")
                    .blurb("Leave frames unanalysed while an inference runs, never delaying the video (live); false waits for each inference (files, reproducible results)")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder::<ObjectDetectModel>("model")
                    .nick("Model")
                    .blurb("The detector and its input size: smaller inputs cost less and miss more small objects (docs/objectdetect.md has the figures)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("motion-region")
                    .nick("Motion region")
                    .blurb("Look only at a square around motiondetect's moving areas (at least the model's input size, else the whole frame): moving objects are seen larger when the motion is in one part of the frame")
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("model-location")
                    .nick("Model location")
                    .blurb("A NanoDet-g COCO ONNX file (the built-in one's layout) to use instead of the built-in one, run at the input size of 'model'")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("snapshot")
                    .nick("Snapshot")
                    .blurb("Attach a copy of the confirming frame to 'confirmed' and of each event's best frame to its 'end' message, as 'snapshot' (a GstSample); motionclips turns it on")
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("inferences, skipped (frames left unanalysed while busy), mean-ms and last-ms per inference")
                    .read_only()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "labels" => s.labels = value.get::<Option<String>>().unwrap().unwrap_or_default(),
            "threshold" => s.threshold = value.get().unwrap(),
            "max-rate" => s.max_rate = value.get().unwrap(),
            "always" => s.always = value.get().unwrap(),
            "drop-frames" => s.drop_frames = value.get().unwrap(),
            "model-location" => s.model_location = value.get().unwrap(),
            "model" => s.model = value.get().unwrap(),
            "motion-region" => s.motion_region = value.get().unwrap(),
            "snapshot" => s.snapshot = value.get().unwrap(),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "labels" => s.labels.to_value(),
            "threshold" => s.threshold.to_value(),
            "max-rate" => s.max_rate.to_value(),
            "always" => s.always.to_value(),
            "drop-frames" => s.drop_frames.to_value(),
            "model-location" => s.model_location.to_value(),
            "model" => s.model.to_value(),
            "motion-region" => s.motion_region.to_value(),
            "snapshot" => s.snapshot.to_value(),
            "stats" => {
                let st = self.stats.lock().unwrap();
                gst::Structure::builder("objectdetect-stats")
                    .field("inferences", st.inferences)
                    .field("skipped", st.skipped)
                    .field(
                        "mean-ms",
                        if st.inferences > 0 {
                            st.total_ms / st.inferences as f64
                        } else {
                            0.0
                        },
                    )
                    .field("last-ms", st.last_ms)
                    .build()
                    .to_value()
            }
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for ObjectDetect {}

impl ElementImpl for ObjectDetect {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Object detection",
                "Filter/Analyzer/Video",
                "Pass-through filter running the NanoDet-g COCO detector during motion events (from motiondetect): posts 'objectdetect' messages with the objects, and each event's verdict, confirmed (person, animal...) or dismissed (wind, shadows)",
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

/// The built-in model at `model`'s size, loaded once per process and shared by every
/// element.
fn builtin(model: Model) -> Result<Arc<Detector>, String> {
    static MODELS: [OnceLock<Result<Arc<Detector>, String>>; Model::ALL.len()] =
        [const { OnceLock::new() }; Model::ALL.len()];
    let i = Model::ALL.iter().position(|m| *m == model).unwrap_or(0);
    MODELS[i]
        .get_or_init(|| {
            Detector::load(model)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
}

fn object(d: &Detection) -> gst::Structure {
    gst::Structure::builder("object")
        .field("label", &d.label)
        .field("score", d.score)
        .field("x", d.x)
        .field("y", d.y)
        .field("w", d.w)
        .field("h", d.h)
        .build()
}

/// One motion event as the worker sees it.
struct Event {
    id: u64,
    start: f64,
    inferences: u32,
    /// The first watched object past the threshold (the confirmation), then the best one.
    best_watched: Option<(Detection, String, gst::Buffer, gst_video::VideoInfo)>,
    /// The best object of any label, or none with the first analysed frame.
    best_any: Option<(Option<Detection>, gst::Buffer, gst_video::VideoInfo)>,
}

/// The worker thread: loads the model, runs the jobs in order, posts the messages.
fn work(weak: glib::WeakRef<super::ObjectDetect>, rx: mpsc::Receiver<Job>, pending: Arc<Pending>) {
    let model = {
        let Some(obj) = weak.upgrade() else { return };
        let (location, which) = {
            let s = obj.imp().settings.lock().unwrap();
            (s.model_location.clone(), Model::from(s.model))
        };
        let t0 = Instant::now();
        let model = match location {
            Some(p) => Detector::from_file(std::path::Path::new(&p), which.side())
                .map(Arc::new)
                .map_err(|e| e.to_string()),
            None => builtin(which),
        };
        match &model {
            Ok(_) => gst::info!(CAT, obj = obj, "model ready in {:?}", t0.elapsed()),
            Err(e) => gst::element_error!(
                obj,
                gst::LibraryError::Init,
                ("Cannot load the object detection model"),
                ["{e}"]
            ),
        }
        model.ok()
    };
    let mut event: Option<Event> = None;
    for job in rx {
        let frame = matches!(job, Job::Frame { .. });
        if let (Some(obj), Some(model)) = (weak.upgrade(), model.as_ref()) {
            obj.imp().run(job, model, &mut event);
        }
        pending.done(frame);
    }
}

impl ObjectDetect {
    fn post(&self, s: gst::Structure) {
        if s.has_field("snapshot") {
            let mut logged = s.clone();
            logged.remove_field("snapshot");
            gst::debug!(CAT, imp = self, "{logged} (with a snapshot)");
        } else {
            gst::debug!(CAT, imp = self, "{s}");
        }
        let obj = self.obj();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
    }

    fn run(&self, job: Job, model: &Detector, event: &mut Option<Event>) {
        match job {
            Job::Start { id, start } => {
                *event = Some(Event {
                    id,
                    start,
                    inferences: 0,
                    best_watched: None,
                    best_any: None,
                })
            }
            Job::Frame {
                id,
                buffer,
                info,
                t,
                motion,
            } => {
                let settings = self.settings.lock().unwrap().clone();
                let t0 = Instant::now();
                let dets = {
                    let Ok(frame) =
                        gst_video::VideoFrameRef::from_buffer_ref_readable(&buffer, &info)
                    else {
                        return;
                    };
                    let Some(view) = view(&frame) else { return };
                    let region = Region::around(&motion, view.width, view.height, model.side());
                    match model.detect_region(&view, region, settings.threshold) {
                        Ok(d) => d,
                        Err(e) => {
                            gst::warning!(CAT, imp = self, "{e}");
                            return;
                        }
                    }
                };
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                {
                    let mut st = self.stats.lock().unwrap();
                    st.inferences += 1;
                    st.total_ms += ms;
                    st.last_ms = ms;
                }
                self.post(
                    gst::Structure::builder("objectdetect")
                        .field("type", "objects")
                        .field("id", id)
                        .field("stream-time", (t * 1e9) as u64)
                        .field("inference-ms", ms)
                        .field(
                            "objects",
                            gst::Array::new(dets.iter().map(|d| object(d).to_send_value())),
                        )
                        .build(),
                );
                let Some(ev) = event.as_mut().filter(|e| e.id == id) else {
                    return;
                };
                ev.inferences += 1;
                let best = dets.first().cloned();
                if ev.best_any.as_ref().is_none_or(|(b, ..)| {
                    b.as_ref().map(|b| b.score) < best.as_ref().map(|b| b.score)
                }) {
                    ev.best_any = Some((best, buffer.clone(), info.clone()));
                }
                let watched = dets
                    .iter()
                    .find_map(|d| settings.watched(&d.label).map(|g| (d.clone(), g)));
                if let Some((d, group)) = watched {
                    let first = ev.best_watched.is_none();
                    if first {
                        let mut s = gst::Structure::builder("objectdetect")
                            .field("type", "confirmed")
                            .field("id", id)
                            .field("label", &d.label)
                            .field("group", &group)
                            .field("score", d.score)
                            .field("box", object(&d))
                            .field("stream-time", (t * 1e9) as u64)
                            .field("start-stream-time", (ev.start * 1e9) as u64)
                            .build();
                        // The confirming frame too: an alert can carry the picture at once.
                        if self.settings.lock().unwrap().snapshot {
                            if let Ok(caps) = info.to_caps() {
                                s.set(
                                    "snapshot",
                                    gst::Sample::builder().buffer(&buffer).caps(&caps).build(),
                                );
                            }
                        }
                        self.post(s);
                    }
                    if first
                        || ev
                            .best_watched
                            .as_ref()
                            .is_some_and(|(b, ..)| b.score < d.score)
                    {
                        ev.best_watched = Some((d, group, buffer, info));
                    }
                }
            }
            Job::End { id, t, reason } => {
                let Some(ev) = event.take().filter(|e| e.id == id) else {
                    return;
                };
                let confirmed = ev.best_watched.is_some();
                let (det, group, snapshot) = match (ev.best_watched, ev.best_any) {
                    (Some((d, g, b, i)), _) => (Some(d), g, Some((b, i))),
                    (None, Some((d, b, i))) => (d, String::new(), Some((b, i))),
                    (None, None) => (None, String::new(), None),
                };
                let mut s = gst::Structure::builder("objectdetect")
                    .field("type", "end")
                    .field("id", id)
                    .field("verdict", if confirmed { "confirmed" } else { "dismissed" })
                    .field(
                        "label",
                        det.as_ref().map(|d| d.label.clone()).unwrap_or_default(),
                    )
                    .field("group", group)
                    .field("score", det.as_ref().map(|d| d.score).unwrap_or(0.0))
                    .field("inferences", ev.inferences)
                    .field("start-stream-time", (ev.start * 1e9) as u64)
                    .field("end-stream-time", (t * 1e9) as u64)
                    .field("reason", reason)
                    .build();
                if let Some(d) = &det {
                    s.set("box", object(d));
                }
                let wanted = self.settings.lock().unwrap().snapshot;
                if let Some((buffer, info)) = snapshot.filter(|_| wanted) {
                    if let Ok(caps) = info.to_caps() {
                        s.set(
                            "snapshot",
                            gst::Sample::builder().buffer(&buffer).caps(&caps).build(),
                        );
                    }
                }
                self.post(s);
            }
        }
    }

    fn send(&self, job: Job) {
        if let Some(w) = self.worker.lock().unwrap().as_ref() {
            w.send(job);
        }
    }

    fn wait_idle(&self) {
        let pending = self
            .worker
            .lock()
            .unwrap()
            .as_ref()
            .map(|w| w.pending.clone());
        if let Some(p) = pending {
            p.wait_idle();
        }
    }

    fn stream_seconds(&self, pts: Option<gst::ClockTime>) -> f64 {
        let segment = self.obj().segment();
        let seg = segment.downcast_ref::<gst::ClockTime>();
        pts.and_then(|p| seg.and_then(|s| s.to_stream_time(p)))
            .or(pts)
            .map(|t| t.nseconds() as f64 / 1e9)
            .unwrap_or(0.0)
    }

    fn on_motion(&self, s: &gst::StructureRef) {
        let (Ok(kind), Ok(id)) = (s.get::<&str>("type"), s.get::<u64>("id")) else {
            return;
        };
        let secs = |f: &str| s.get::<u64>(f).map(|t| t as f64 / 1e9).unwrap_or(0.0);
        let mut st = self.state.lock().unwrap();
        match kind {
            "start" => {
                st.event = Some(id);
                st.last_infer = None;
                st.motion = crate::motion_boxes(s);
                drop(st);
                self.send(Job::Start {
                    id,
                    start: secs("start-stream-time"),
                });
            }
            "update" if st.event == Some(id) => st.motion = crate::motion_boxes(s),
            "end" if st.event.take().is_some() => {
                st.motion.clear();
                drop(st);
                let reason = s.get::<&str>("reason").unwrap_or("calm").to_string();
                self.send(Job::End {
                    id,
                    t: secs("stream-time"),
                    reason,
                });
            }
            _ => {}
        }
    }
}

impl BaseTransformImpl for ObjectDetect {
    const MODE: BaseTransformMode = BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = true;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let (tx, rx) = mpsc::channel();
        let pending = Arc::new(Pending::default());
        let weak = self.obj().downgrade();
        let p = pending.clone();
        let handle = std::thread::Builder::new()
            .name("objectdetect".into())
            .spawn(move || work(weak, rx, p))
            .map_err(|e| gst::error_msg!(gst::CoreError::Failed, ["cannot start a thread: {e}"]))?;
        *self.worker.lock().unwrap() = Some(Worker {
            tx,
            pending,
            handle,
        });
        *self.state.lock().unwrap() = State::default();
        *self.stats.lock().unwrap() = Stats::default();
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(w) = self.worker.lock().unwrap().take() {
            drop(w.tx);
            let _ = w.handle.join();
        }
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::CustomDownstream(c) => {
                if let Some(s) = c.structure().filter(|s| s.name() == "motion") {
                    self.on_motion(s);
                }
            }
            gst::EventView::Eos(_) => {
                // An event left open ends with the stream, and every verdict is posted
                // before the EOS goes on.
                let open = self.state.lock().unwrap().event.take();
                if let Some(id) = open {
                    let t = self.stream_seconds(None);
                    self.send(Job::End {
                        id,
                        t,
                        reason: "eos".into(),
                    });
                }
                self.wait_idle();
            }
            gst::EventView::FlushStop(_) => {
                self.state.lock().unwrap().event = None;
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }
}

impl VideoFilterImpl for ObjectDetect {
    fn set_info(
        &self,
        _incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        _outcaps: &gst::Caps,
        _out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        self.state.lock().unwrap().info = Some(in_info.clone());
        Ok(())
    }

    fn transform_frame_ip_passthrough(
        &self,
        frame: &gst_video::VideoFrameRef<&gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.settings.lock().unwrap().clone();
        let t = self.stream_seconds(frame.buffer().pts());
        let (id, info, motion) = {
            let mut st = self.state.lock().unwrap();
            let id = match (st.event, settings.always) {
                (Some(id), _) => id,
                (None, true) => 0,
                (None, false) => return Ok(gst::FlowSuccess::Ok),
            };
            if st
                .last_infer
                .is_some_and(|l| t >= l && t - l < 1.0 / settings.max_rate)
            {
                return Ok(gst::FlowSuccess::Ok);
            }
            let busy = self
                .worker
                .lock()
                .unwrap()
                .as_ref()
                .is_none_or(|w| w.pending.busy());
            if busy && settings.drop_frames {
                self.stats.lock().unwrap().skipped += 1;
                return Ok(gst::FlowSuccess::Ok);
            }
            let Some(info) = st.info.clone() else {
                return Ok(gst::FlowSuccess::Ok);
            };
            st.last_infer = Some(t);
            let motion = if settings.motion_region {
                st.motion.clone()
            } else {
                Vec::new()
            };
            (id, info, motion)
        };
        if !settings.drop_frames {
            self.wait_idle();
        }
        // A private copy: the worker reads it later, and a snapshot may keep it.
        let mut buffer =
            gst::Buffer::with_size(frame.buffer().size()).map_err(|_| gst::FlowError::Error)?;
        {
            let out = buffer.get_mut().expect("new buffer");
            let mut map = out.map_writable().map_err(|_| gst::FlowError::Error)?;
            frame
                .buffer()
                .copy_to_slice(0, &mut map)
                .map_err(|_| gst::FlowError::Error)?;
        }
        {
            let out = buffer.get_mut().expect("new buffer");
            out.set_pts(frame.buffer().pts());
            if let Some(meta) = frame.buffer().meta::<gst_video::VideoMeta>() {
                let _ = gst_video::VideoMeta::add_full(
                    out,
                    meta.video_frame_flags(),
                    meta.format(),
                    meta.width(),
                    meta.height(),
                    meta.offset(),
                    meta.stride(),
                );
            }
        }
        self.send(Job::Frame {
            id,
            buffer,
            info,
            t,
            motion,
        });
        if !settings.drop_frames {
            self.wait_idle();
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
