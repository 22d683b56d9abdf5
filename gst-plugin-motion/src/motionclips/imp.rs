//! The `motionclips` bin.
//!
//! ```text
//! sink ─ h264parse ─ tee ─ queue ─ appsink ·········· ring of encoded frames ─→ clip writers
//!                        └ queue(drops whole GOPs) ─ avdec_h264 ─ tee ─ queue ─ videoconvert ─ motion ─ objects ─ fakesink
//!                                                                   └ queue(leaky) ─ raw (request pad)
//! audio (request pad) ···································· ring of audio buffers ─→ clip writers
//! ```
//!
//! The `raw` request pad gives the decoded frames to whoever else wants pictures of the
//! camera (homecam's live view and MJPEG), so that a camera is decoded once. Its leaky
//! queue (2 frames) runs it on its own thread: the analysis never waits for it.
//!
//! The encoded frames of the last `pre-roll` seconds (longer while an event awaits its
//! verdict) stay in a ring. When an event qualifies (confirmed, or any with `record=all`),
//! a writer gets the ring from the last key frame at or before the motion start minus the
//! pre-roll, then the live frames until `post-roll` seconds after the motion ends. Events
//! that overlap a running clip join it.
//!
//! The writer is ringrecorder's ([`gstringrec::writer`]): fragmented MP4 (a fragment a
//! second, written through unbuffered) or Matroska, under a `.partial` name until it holds
//! something playable. A clip being written when the process dies is cut back to its last
//! complete fragment and given its name when the element next starts.
//!
//! The camera's audio, on the `audio` request pad, is kept in a ring beside the video and
//! goes into the clips from the same instant (G.711 transcoded to AAC for MP4, as the
//! recorder does). The pad is the bin's own, not a ghost of a child sink: the bin's end of
//! stream stays the video's.

use super::{Format, Record};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gstringrec::store::Repair;
use gstringrec::writer::{Report, Writer};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, LazyLock, Mutex};
use std::thread::JoinHandle;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "motionclips",
        gst::DebugColorFlags::empty(),
        Some("Motion-triggered clips"),
    )
});

const DEFAULT_PRE_ROLL: f64 = 5.0;
const DEFAULT_POST_ROLL: f64 = 10.0;
const DEFAULT_MAX_BUFFER: u64 = 64 * 1024 * 1024;

#[derive(Clone, Debug)]
struct Settings {
    location: String,
    camera: String,
    pre_roll: f64,
    post_roll: f64,
    record: Record,
    format: Format,
    snapshots: bool,
    max_buffer: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            location: ".".into(),
            camera: "camera".into(),
            pre_roll: DEFAULT_PRE_ROLL,
            post_roll: DEFAULT_POST_ROLL,
            record: Record::Confirmed,
            format: Format::Mp4,
            snapshots: true,
            max_buffer: DEFAULT_MAX_BUFFER,
        }
    }
}

/// What is known of one motion event.
#[derive(Clone, Debug, Default)]
struct Ev {
    start: f64,
    start_wall: f64,
    end: Option<f64>,
    /// The verdict arrived (objectdetect's `end`).
    decided: bool,
    confirmed: bool,
    label: String,
    score: f32,
    snapshot: Option<PathBuf>,
    in_clip: bool,
}

struct Clip {
    ids: Vec<u64>,
    path: PathBuf,
    /// Opened at the clip's first key frame, whose timestamp becomes the file's 0.
    writer: Option<Writer>,
    /// The writer's report once the file is complete.
    report: Option<mpsc::Receiver<Report>>,
    first: f64,
    last: f64,
    stop_at: Option<f64>,
    bytes: u64,
    /// The audio caps the writer was opened with (None: a clip without sound).
    audio: Option<gst::Caps>,
}

#[derive(Default)]
struct State {
    ring: VecDeque<(gst::Buffer, f64)>,
    ring_bytes: u64,
    caps: Option<gst::Caps>,
    now: f64,
    events: BTreeMap<u64, Ev>,
    clip: Option<Clip>,
    finishing: Vec<JoinHandle<()>>,
    warned_ring: bool,
    /// Which branches have seen the end of stream (the clips are finished after both).
    clips_ended: bool,
    analysis_ended: bool,
    /// The video's segment: the audio's running times are turned into its timestamps.
    video_segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    audio_caps: Option<gst::Caps>,
    audio_segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    /// Audio buffers, timestamped like the video, from the ring's first frame on.
    audio_ring: VecDeque<gst::Buffer>,
    audio_ring_bytes: u64,
}

pub struct MotionClips {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Held while a detector's message and what it causes here (a snapshot) go on the
    /// bus, and while a clip is announced: a clip finished at the end of stream would
    /// otherwise be announced between an event's verdict and its snapshot, and the event
    /// would get news after its clip, its last.
    announce: Mutex<()>,
    motion: gst::Element,
    objects: gst::Element,
    /// The decoded frames' tee (the `raw` request pad's source).
    raw: gst::Element,
}

fn is_key(b: &gst::BufferRef) -> bool {
    !b.flags().contains(gst::BufferFlags::DELTA_UNIT)
}

fn secs(s: &gst::StructureRef, f: &str) -> f64 {
    s.get::<u64>(f)
        .ok()
        .filter(|t| *t != u64::MAX)
        .map(|t| t as f64 / 1e9)
        .unwrap_or(0.0)
}

fn ns(t: f64) -> u64 {
    (t.max(0.0) * 1e9) as u64
}

/// The camera's name as it starts its clips' file names.
fn file_camera(camera: &str) -> String {
    camera
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `camera-YYYYmmdd-HHMMSS-id` from the event's wall-clock start (UTC).
fn clip_name(camera: &str, wall: f64, id: u64) -> String {
    let (y, mo, d, h, mi, s) = gst_cam_common::time::civil(wall.max(0.0) as u64);
    let camera = file_camera(camera);
    format!("{camera}-{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{id}")
}

/// This camera's clips in `dir`: those a crash left under their `.partial` name, and the
/// newest MP4 clip with its final name (the only one a crash can have cut short after
/// its first fragment: one clip is written at a time). Names sort by time.
fn crash_candidates(dir: &Path, camera: &str) -> (Vec<PathBuf>, Option<PathBuf>) {
    let prefix = format!("{}-", file_camera(camera));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    names.sort();
    let partial = names
        .iter()
        .filter(|n| {
            n.ends_with(&format!(".mp4{}", gstringrec::store::PARTIAL))
                || n.ends_with(&format!(".mkv{}", gstringrec::store::PARTIAL))
        })
        .map(|n| dir.join(n))
        .collect();
    let newest = names
        .iter()
        .rev()
        .find(|n| n.ends_with(".mp4"))
        .map(|n| dir.join(n));
    (partial, newest)
}

#[glib::object_subclass]
impl ObjectSubclass for MotionClips {
    const NAME: &'static str = "GstMotionClips";
    type Type = super::MotionClips;
    type ParentType = gst::Bin;

    fn with_class(_klass: &Self::Class) -> Self {
        let make = |f: &str, n: &str| {
            gst::ElementFactory::make(f)
                .name(n)
                .build()
                .unwrap_or_else(|_| panic!("element {f} is missing"))
        };
        MotionClips {
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(State::default()),
            announce: Mutex::new(()),
            motion: make("motiondetect", "motion"),
            objects: make("objectdetect", "objects"),
            raw: make("tee", "raw"),
        }
    }
}

impl ObjectImpl for MotionClips {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb("Folder for the clips and snapshots (created if missing)")
                    .default_value(Some("."))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("camera")
                    .nick("Camera")
                    .blurb("Camera name: starts the file names and goes into the messages")
                    .default_value(Some("camera"))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("pre-roll")
                    .nick("Pre-roll")
                    .blurb("Seconds before the motion start a clip begins at least (from the key frame at or before)")
                    .minimum(0.0)
                    .maximum(120.0)
                    .default_value(DEFAULT_PRE_ROLL)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("post-roll")
                    .nick("Post-roll")
                    .blurb("Seconds a clip goes on after the motion ends")
                    .minimum(0.0)
                    .maximum(600.0)
                    .default_value(DEFAULT_POST_ROLL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("record", Record::Confirmed)
                    .nick("Record")
                    .blurb("Which events get clips")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("format", Format::Mp4)
                    .nick("Format")
                    .blurb("Clip container")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("snapshots")
                    .nick("Snapshots")
                    .blurb("Write a JPEG of the best detection of each recorded event, its box drawn")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("max-buffer-size")
                    .nick("Maximum buffer size")
                    .blurb("Bytes of encoded video kept for pre-roll and undecided events at most; beyond it the oldest go and clips start later")
                    .minimum(1024 * 1024)
                    .default_value(DEFAULT_MAX_BUFFER)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "location" => {
                s.location = value
                    .get::<Option<String>>()
                    .unwrap()
                    .unwrap_or_else(|| ".".into())
            }
            "camera" => {
                s.camera = value
                    .get::<Option<String>>()
                    .unwrap()
                    .unwrap_or_else(|| "camera".into())
            }
            "pre-roll" => s.pre_roll = value.get().unwrap(),
            "post-roll" => s.post_roll = value.get().unwrap(),
            "record" => s.record = value.get().unwrap(),
            "format" => s.format = value.get().unwrap(),
            "snapshots" => s.snapshots = value.get().unwrap(),
            "max-buffer-size" => s.max_buffer = value.get().unwrap(),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "location" => s.location.to_value(),
            "camera" => s.camera.to_value(),
            "pre-roll" => s.pre_roll.to_value(),
            "post-roll" => s.post_roll.to_value(),
            "record" => s.record.to_value(),
            "format" => s.format.to_value(),
            "snapshots" => s.snapshots.to_value(),
            "max-buffer-size" => s.max_buffer.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        let make = |f: &str| {
            gst::ElementFactory::make(f)
                .build()
                .unwrap_or_else(|_| panic!("element {f} is missing"))
        };
        self.objects.set_property("snapshot", true);
        let parse = make("h264parse");
        parse.set_property("config-interval", -1i32);
        let tee = make("tee");
        let q1 = make("queue");
        // The writer's muxers take H.264 in AVC form, one frame per buffer.
        let sink = gst_app::AppSink::builder()
            .name("clips")
            .caps(
                &gst::Caps::builder("video/x-h264")
                    .field("stream-format", "avc")
                    .field("alignment", "au")
                    .build(),
            )
            .sync(false)
            .async_(false)
            .max_buffers(0)
            .build();
        // Analysis may fall behind; the clips never wait for it. What it cannot take is
        // dropped a GOP at a time, so the decoder never paints the garbage of a frame
        // whose reference was dropped (which the motion detector took for motion).
        let (q2, _) = gst_cam_common::decodequeue::decoder_queue(
            None,
            gst::ClockTime::from_mseconds(1500),
            3 * gst::ClockTime::SECOND,
        )
        .expect("element queue is missing");
        let dec = make("avdec_h264");
        // The decoded frames' tee: the analysis, and the `raw` pad when requested. The
        // analysis runs on a thread of its own behind a short queue: its sink waits in
        // PAUSED, and the `raw` consumer must get its first frame meanwhile to preroll.
        self.raw.set_property("allow-not-linked", true);
        let q3 = make("queue");
        q3.set_property("max-size-buffers", 3u32);
        q3.set_property("max-size-bytes", 0u32);
        q3.set_property("max-size-time", 0u64);
        let conv = make("videoconvert");
        let fake = make("fakesink");
        fake.set_property("sync", false);
        fake.set_property("async", false);
        obj.add_many([
            &parse,
            &tee,
            &q1,
            sink.upcast_ref(),
            &q2,
            &dec,
            &self.raw,
            &q3,
            &conv,
            &self.motion,
            &self.objects,
            &fake,
        ])
        .expect("add");
        gst::Element::link_many([&parse, &tee, &q1, sink.upcast_ref()]).expect("link");
        gst::Element::link_many([
            &tee,
            &q2,
            &dec,
            &self.raw,
            &q3,
            &conv,
            &self.motion,
            &self.objects,
            &fake,
        ])
        .expect("link");
        let pad = parse.static_pad("sink").expect("sink pad");
        let ghost = gst::GhostPad::builder_from_template_with_target(
            &obj.pad_template("sink").expect("template"),
            &pad,
        )
        .expect("ghost pad")
        .build();
        obj.add_pad(&ghost).expect("pad");

        let weak = obj.downgrade();
        let weak2 = obj.downgrade();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(obj) = weak.upgrade() {
                        obj.imp().on_sample(&sample);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .eos(move |_| {
                    if let Some(obj) = weak2.upgrade() {
                        obj.imp().branch_ended(true);
                    }
                })
                .build(),
        );
        // The analysis's end: its last verdicts and snapshots are on the bus by then.
        let weak3 = obj.downgrade();
        let probes = [
            (fake.static_pad("sink"), false),
            (sink.static_pad("sink"), true),
        ];
        for (pad, clips) in probes {
            let weak = weak3.clone();
            pad.expect("sink pad").add_probe(
                gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::EVENT_FLUSH,
                move |_, info| {
                    let Some(obj) = weak.upgrade() else {
                        return gst::PadProbeReturn::Ok;
                    };
                    match info.event().map(|e| e.type_()) {
                        Some(gst::EventType::Eos) if !clips => obj.imp().branch_ended(false),
                        Some(gst::EventType::FlushStop) => {
                            let mut st = obj.imp().state.lock().unwrap();
                            st.clips_ended = false;
                            st.analysis_ended = false;
                        }
                        _ => {}
                    }
                    gst::PadProbeReturn::Ok
                },
            );
        }
    }
}

impl GstObjectImpl for MotionClips {}

impl ElementImpl for MotionClips {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Motion-triggered clips",
                "Sink/Video",
                "Detects motion (motiondetect) and objects (objectdetect) in a camera's H.264 and writes clips of the events from the encoded stream, without re-encoding, with pre-roll and post-roll, plus a JPEG snapshot; posts 'motionclips' messages (children: 'motion', 'objects')",
                "homecam-gst developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::builder("video/x-h264").build();
            // What the clip writer takes, as ringrecorder's audio pad does.
            let audio = gstringrec::writer::audio_caps();
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "audio",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &audio,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "raw",
                    gst::PadDirection::Src,
                    gst::PadPresence::Request,
                    &gst::Caps::builder("video/x-raw").build(),
                )
                .unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }

    /// `audio`: the bin's own sink pad (the audio's end is not the bin's). `raw`: one
    /// branch of the decoded frames' tee behind a leaky queue of its own (its own thread
    /// too: a consumer still prerolling, or slow, never waits for the analysis, nor the
    /// analysis for it).
    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        _name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        if templ.name_template() == "audio" {
            return self.request_audio_pad(templ);
        }
        let obj = self.obj();
        if obj.static_pad("raw").is_some() {
            gst::warning!(CAT, imp = self, "the raw pad is already taken");
            return None;
        }
        let queue = gst::ElementFactory::make("queue")
            .name("raw-queue")
            .property("max-size-buffers", 2u32)
            .property("max-size-bytes", 0u32)
            .property("max-size-time", 0u64)
            .property_from_str("leaky", "downstream")
            .build()
            .ok()?;
        obj.add(&queue).ok()?;
        let undo = |queue: &gst::Element| {
            let _ = queue.set_state(gst::State::Null);
            let _ = obj.remove(queue);
        };
        let Some(tee_pad) = self.raw.request_pad_simple("src_%u") else {
            undo(&queue);
            return None;
        };
        let sink = queue.static_pad("sink").expect("queue sink");
        let src = queue.static_pad("src").expect("queue src");
        let ghost = tee_pad
            .link(&sink)
            .ok()
            .and_then(|_| gst::GhostPad::builder_from_template_with_target(templ, &src).ok())
            .map(|b| b.name("raw").build());
        let Some(ghost) = ghost.filter(|g| {
            let _ = queue.sync_state_with_parent();
            if obj.current_state() > gst::State::Null {
                let _ = g.set_active(true);
            }
            obj.add_pad(g).is_ok()
        }) else {
            gst::warning!(CAT, imp = self, "cannot make the raw pad");
            self.raw.release_request_pad(&tee_pad);
            undo(&queue);
            return None;
        };
        Some(ghost.upcast())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        if pad.direction() == gst::PadDirection::Sink {
            return self.release_audio_pad(pad);
        }
        let obj = self.obj();
        let _ = pad.set_active(false);
        let _ = obj.remove_pad(pad);
        if let Some(queue) = obj.by_name("raw-queue") {
            if let Some(tee_pad) = queue.static_pad("sink").and_then(|s| s.peer()) {
                self.raw.release_request_pad(&tee_pad);
            }
            let _ = queue.set_state(gst::State::Null);
            let _ = obj.remove(&queue);
        }
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::NullToReady {
            let dir = PathBuf::from(&self.settings.lock().unwrap().location);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::OpenWrite,
                    ("Cannot create the clip folder {}", dir.display()),
                    ["{e}"]
                );
                return Err(gst::StateChangeError);
            }
            self.recover(&dir);
        }
        if transition == gst::StateChange::PausedToReady {
            // Stopped without EOS: what was recorded is still closed properly.
            self.finish_all("stopped");
            let mut st = self.state.lock().unwrap();
            st.clips_ended = false;
            st.analysis_ended = false;
        }
        let r = self.parent_change_state(transition);
        if transition == gst::StateChange::ReadyToNull {
            *self.state.lock().unwrap() = State::default();
        }
        r
    }
}

impl BinImpl for MotionClips {
    fn handle_message(&self, msg: gst::Message) {
        let ours = match msg.view() {
            gst::MessageView::Element(e) => e
                .structure()
                .filter(|s| matches!(s.name().as_str(), "motion" | "objectdetect"))
                .map(|s| s.to_owned()),
            _ => None,
        };
        let Some(s) = ours else {
            return self.parent_handle_message(msg);
        };
        // The children's message goes on first, so that what it causes here (snapshot,
        // clip) follows it on the bus. The frame in a snapshot field was for the file.
        let _announcing = self.announce.lock().unwrap();
        if s.has_field("snapshot") {
            let mut stripped = s.clone();
            stripped.remove_field("snapshot");
            let mut b = gst::message::Element::builder(stripped);
            if let Some(src) = msg.src() {
                b = b.src(src);
            }
            self.parent_handle_message(b.build());
        } else {
            self.parent_handle_message(msg);
        }
        match s.name().as_str() {
            "motion" => self.on_motion(&s),
            _ => self.on_objects(&s),
        }
    }
}

impl MotionClips {
    /// The `audio` request pad.
    fn request_audio_pad(&self, templ: &gst::PadTemplate) -> Option<gst::Pad> {
        let obj = self.obj();
        if obj.static_pad("audio").is_some() {
            gst::warning!(CAT, imp = self, "a clip takes one audio stream");
            return None;
        }
        let pad = gst::Pad::builder_from_template(templ)
            .name("audio")
            .chain_function(|_, parent, buffer| {
                MotionClips::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| {
                        imp.on_audio(buffer);
                        Ok(gst::FlowSuccess::Ok)
                    },
                )
            })
            .event_function(|_, parent, event| {
                MotionClips::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.audio_event(event),
                )
            })
            .build();
        if obj.current_state() > gst::State::Ready {
            pad.set_active(true).ok()?;
        }
        obj.add_pad(&pad).ok()?;
        Some(pad)
    }

    fn release_audio_pad(&self, pad: &gst::Pad) {
        let _ = pad.set_active(false);
        let _ = self.obj().remove_pad(pad);
        let mut st = self.state.lock().unwrap();
        st.audio_caps = None;
        st.audio_segment = None;
        st.audio_ring.clear();
        st.audio_ring_bytes = 0;
    }

    /// Clips that a crash cut short: cut back to their last complete fragment and given
    /// their names (or removed when nothing in them plays), each announced.
    fn recover(&self, dir: &Path) {
        let camera = self.settings.lock().unwrap().camera.clone();
        let recovered = |path: &Path, how: String| {
            gst::warning!(
                CAT,
                imp = self,
                "{}: left by a crash: {how}",
                path.display()
            );
            self.post(
                gst::Structure::builder("motionclips")
                    .field("type", "recovered")
                    .field("camera", &camera)
                    .field("location", path.to_string_lossy().to_string())
                    .build(),
            );
        };
        let (partials, newest) = crash_candidates(dir, &camera);
        if let Some(path) = newest {
            match gstringrec::store::repair(&path) {
                Ok(Repair::Intact) | Ok(Repair::Skipped) => {}
                Ok(Repair::Removed) => gst::warning!(
                    CAT,
                    imp = self,
                    "{}: left by a crash with nothing playable, removed",
                    path.display()
                ),
                Ok(r) => recovered(&path, format!("{r:?}")),
                Err(e) => gst::warning!(CAT, imp = self, "{}: cannot check: {e}", path.display()),
            }
        }
        for partial in partials {
            match gstringrec::store::finish_partial(&partial) {
                Ok(Some(path)) => recovered(&path, "cut back to its last fragment".into()),
                Ok(None) => gst::info!(
                    CAT,
                    imp = self,
                    "{}: nothing playable, removed",
                    partial.display()
                ),
                Err(e) => gst::warning!(CAT, imp = self, "{}: {e}", partial.display()),
            }
        }
    }

    fn post(&self, s: gst::Structure) {
        gst::info!(CAT, imp = self, "{s}");
        let obj = self.obj();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
    }

    fn on_motion(&self, s: &gst::StructureRef) {
        let (Ok(kind), Ok(id)) = (s.get::<&str>("type"), s.get::<u64>("id")) else {
            return;
        };
        let settings = self.settings.lock().unwrap().clone();
        let mut st = self.state.lock().unwrap();
        match kind {
            "start" => {
                st.events.insert(
                    id,
                    Ev {
                        start: secs(s, "start-stream-time"),
                        start_wall: s.get::<f64>("start-wall-time").unwrap_or(0.0),
                        ..Ev::default()
                    },
                );
                if settings.record == Record::All {
                    self.start_clip(&mut st, &settings, id);
                }
            }
            "end" => {
                if let Some(ev) = st.events.get_mut(&id) {
                    ev.end = Some(secs(s, "stream-time"));
                }
                self.update_stop(&mut st, &settings);
            }
            _ => {}
        }
    }

    fn on_objects(&self, s: &gst::StructureRef) {
        let (Ok(kind), Ok(id)) = (s.get::<&str>("type"), s.get::<u64>("id")) else {
            return;
        };
        let settings = self.settings.lock().unwrap().clone();
        match kind {
            "confirmed" => {
                let wall = {
                    let mut st = self.state.lock().unwrap();
                    let Some(ev) = st.events.get_mut(&id) else {
                        return;
                    };
                    ev.confirmed = true;
                    ev.label = s.get::<String>("label").unwrap_or_default();
                    ev.score = s.get::<f32>("score").unwrap_or(0.0);
                    let wall = ev.start_wall;
                    if !ev.in_clip {
                        self.start_clip(&mut st, &settings, id);
                    }
                    wall
                };
                // The snapshot now, from the confirming frame (an alert can carry it at
                // once); the event's end replaces it with the best frame.
                if settings.snapshots {
                    self.snapshot(s, &settings, id, wall, true);
                }
            }
            "end" => {
                let confirmed = s.get::<&str>("verdict") == Ok("confirmed");
                let (wall, keep) = {
                    let mut st = self.state.lock().unwrap();
                    let Some(ev) = st.events.get_mut(&id) else {
                        return;
                    };
                    ev.decided = true;
                    ev.confirmed = confirmed;
                    ev.label = s.get::<String>("label").unwrap_or_default();
                    ev.score = s.get::<f32>("score").unwrap_or(0.0);
                    let keep = ev.in_clip || settings.record == Record::All || confirmed;
                    let wall = ev.start_wall;
                    if !keep {
                        // Dismissed and not recorded: nothing more to do for it.
                        st.events.remove(&id);
                    }
                    (wall, keep)
                };
                if !keep || !settings.snapshots {
                    return;
                }
                self.snapshot(s, &settings, id, wall, confirmed);
            }
            _ => {}
        }
    }

    /// Writes the frame in `s` (an objectdetect `confirmed` or `end` message) as the
    /// event's JPEG snapshot, with the object's box, and announces it.
    fn snapshot(
        &self,
        s: &gst::StructureRef,
        settings: &Settings,
        id: u64,
        wall: f64,
        confirmed: bool,
    ) {
        let Ok(sample) = s.get::<gst::Sample>("snapshot") else {
            return;
        };
        let bbox = s.get::<gst::Structure>("box").ok().map(|b| {
            let f = |k: &str| b.get::<f32>(k).unwrap_or(0.0);
            [f("x"), f("y"), f("w"), f("h")]
        });
        let path = Path::new(&settings.location)
            .join(clip_name(&settings.camera, wall, id))
            .with_extension("jpg");
        match crate::frame::write_snapshot(&sample, bbox, &path) {
            Ok(()) => {
                if let Some(ev) = self.state.lock().unwrap().events.get_mut(&id) {
                    ev.snapshot = Some(path.clone());
                }
                let mut m = gst::Structure::builder("motionclips")
                    .field("type", "snapshot")
                    .field("id", id)
                    .field("camera", &settings.camera)
                    .field("label", s.get::<String>("label").unwrap_or_default())
                    .field("score", s.get::<f32>("score").unwrap_or(0.0))
                    .field("verdict", if confirmed { "confirmed" } else { "dismissed" })
                    .field("location", path.to_string_lossy().to_string())
                    .build();
                if let Ok(b) = s.get::<gst::Structure>("box") {
                    m.set("box", b);
                }
                self.post(m);
            }
            Err(e) => gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                ("Cannot write the snapshot {}", path.display()),
                ["{e}"]
            ),
        }
    }

    /// Starts a clip for event `id`, or adds the event to the clip being written.
    fn start_clip(&self, st: &mut State, settings: &Settings, id: u64) {
        let Some(ev) = st.events.get_mut(&id) else {
            return;
        };
        ev.in_clip = true;
        let (start, wall) = (ev.start, ev.start_wall);
        if let Some(clip) = st.clip.as_mut() {
            clip.ids.push(id);
            clip.stop_at = None;
            gst::debug!(CAT, imp = self, "event {id} joins the clip {:?}", clip.path);
            self.update_stop(st, settings);
            return;
        }
        if st.caps.is_none() {
            gst::warning!(CAT, imp = self, "event {id}: no video yet");
            return;
        }
        let name = clip_name(&settings.camera, wall, id);
        let path = Path::new(&settings.location).join(format!("{name}.{}", settings.format.ext()));
        let clip = Clip {
            ids: vec![id],
            path,
            writer: None,
            report: None,
            first: f64::NAN,
            last: f64::NAN,
            stop_at: None,
            bytes: 0,
            audio: None,
        };
        gst::info!(CAT, imp = self, "event {id}: clip {}", clip.path.display());
        // From the last key frame at or before the motion start minus the pre-roll (or
        // the oldest key frame kept).
        let target = start - settings.pre_roll;
        let from = st
            .ring
            .iter()
            .rposition(|(b, t)| is_key(b) && *t <= target)
            .or_else(|| st.ring.iter().position(|(b, _)| is_key(b)));
        st.clip = Some(clip);
        if let Some(from) = from {
            let buffered: Vec<_> = st.ring.iter().skip(from).cloned().collect();
            for (b, t) in buffered {
                if !self.feed(st, &b, t) {
                    break;
                }
            }
        }
        self.update_stop(st, settings);
    }

    /// Opens the clip's file at its first key frame `key` (its timestamp is the file's 0).
    fn open_writer(
        &self,
        clip: &mut Clip,
        caps: &gst::Caps,
        audio: Option<&gst::Caps>,
        format: Format,
        key: &gst::Buffer,
        wall: f64,
    ) {
        let Some(start) = key.pts() else { return };
        let started = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(wall.max(0.0));
        let (tx, rx) = mpsc::channel();
        match Writer::open(
            clip.path.clone(),
            format.ext(),
            start,
            started,
            caps,
            audio,
            move |r| {
                let _ = tx.send(r);
            },
        ) {
            Ok(w) => {
                clip.audio = audio.filter(|_| w.has_audio()).cloned();
                clip.writer = Some(w);
                clip.report = Some(rx);
            }
            Err(e) => {
                // Remembered so that the clip is not tried again at every key frame.
                clip.report = Some(rx);
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::OpenWrite,
                    ("Cannot write the clip {}", clip.path.display()),
                    ["{e}"]
                )
            }
        }
    }

    /// Sends one encoded frame to the clip; false once the clip has reached its end.
    fn feed(&self, st: &mut State, b: &gst::Buffer, t: f64) -> bool {
        let Some(clip) = st.clip.as_ref() else {
            return false;
        };
        if clip.stop_at.is_some_and(|s| t >= s) {
            return false;
        }
        if clip.writer.is_none() {
            if clip.report.is_some() {
                // Its writer could not open the file: the clip ends here.
                return false;
            }
            if !is_key(b) {
                return true;
            }
            let Some(caps) = st.caps.clone() else {
                return true;
            };
            // The wall-clock time of this frame: the first event's, moved back by the
            // time between this frame and the event's start.
            let wall = clip
                .ids
                .first()
                .and_then(|id| st.events.get(id))
                .map(|e| e.start_wall - (e.start - t))
                .unwrap_or(0.0);
            let format = self.settings.lock().unwrap().format;
            let audio = st.audio_caps.clone();
            let clip = st.clip.as_mut().expect("checked above");
            self.open_writer(clip, &caps, audio.as_ref(), format, b, wall);
            if clip.writer.is_none() {
                return false;
            }
            clip.first = t;
            // The sound kept from this frame on; what comes next goes in live.
            if let (Some(w), Some(_)) = (clip.writer.as_mut(), clip.audio.as_ref()) {
                for a in st.audio_ring.iter() {
                    w.push_audio(a.clone());
                }
            }
        }
        let Some(clip) = st.clip.as_mut() else {
            return false;
        };
        clip.bytes += b.size() as u64;
        clip.last = t;
        if let Some(w) = clip.writer.as_mut() {
            w.push_video(b.clone());
        }
        true
    }

    /// The clip ends `post-roll` after its last event ends, once all of them have ended.
    fn update_stop(&self, st: &mut State, settings: &Settings) {
        let Some(clip) = st.clip.as_ref() else { return };
        let mut end = f64::MIN;
        for id in &clip.ids {
            match st.events.get(id).and_then(|e| e.end) {
                Some(e) => end = end.max(e),
                None => return,
            }
        }
        let stop = end + settings.post_roll;
        if let Some(clip) = st.clip.as_mut() {
            clip.stop_at = Some(stop);
        }
        if st.now >= stop {
            self.finish_clip(st, "post-roll reached");
        }
    }

    fn on_sample(&self, sample: &gst::Sample) {
        let Some(buffer) = sample.buffer_owned() else {
            return;
        };
        let settings = self.settings.lock().unwrap().clone();
        let pts = buffer.pts().or(buffer.dts());
        let t = pts
            .and_then(|p| {
                sample
                    .segment()
                    .and_then(|s| s.downcast_ref::<gst::ClockTime>())
                    .and_then(|s| s.to_stream_time(p))
            })
            .or(pts)
            .map(|t| t.nseconds() as f64 / 1e9)
            .unwrap_or(0.0);
        let mut st = self.state.lock().unwrap();
        if let Some(caps) = sample.caps() {
            if st.caps.as_ref().is_none_or(|c| c != caps) {
                st.caps = Some(caps.to_owned());
            }
        }
        if let Some(seg) = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>())
        {
            if st.video_segment.as_ref() != Some(seg) {
                st.video_segment = Some(seg.clone());
            }
        }
        st.now = t;
        // A writer that failed (disk full, folder gone) is closed, not fed for ever: its
        // report says why when the clip is finished.
        if st
            .clip
            .as_ref()
            .and_then(|c| c.writer.as_ref())
            .is_some_and(|w| w.failed())
        {
            self.finish_clip(&mut st, "the writer failed");
        }
        if st.clip.is_some() && !self.feed(&mut st, &buffer, t) {
            self.finish_clip(&mut st, "post-roll reached");
        }
        st.ring_bytes += buffer.size() as u64;
        st.ring.push_back((buffer, t));
        // Keep from the last key frame before the pre-roll of the oldest event that may
        // still want a clip.
        let oldest = st
            .events
            .values()
            .filter(|e| !e.decided && !e.in_clip)
            .map(|e| e.start)
            .fold(t, f64::min);
        let horizon = oldest - settings.pre_roll;
        loop {
            let next_key = st
                .ring
                .iter()
                .skip(1)
                .position(|(b, _)| is_key(b))
                .map(|p| p + 1);
            let over = st.ring_bytes > settings.max_buffer;
            match next_key {
                Some(k) if st.ring[k].1 <= horizon || over => {
                    if over && !st.warned_ring {
                        st.warned_ring = true;
                        gst::warning!(
                            CAT,
                            imp = self,
                            "max-buffer-size reached: clips may start later than the pre-roll"
                        );
                    }
                    let gone: u64 = st.ring.drain(..k).map(|(b, _)| b.size() as u64).sum();
                    st.ring_bytes -= gone;
                }
                _ => break,
            }
        }
        self.trim_audio(&mut st, settings.max_buffer);
    }

    /// The audio ring keeps what the video ring covers, within a share of its bytes.
    fn trim_audio(&self, st: &mut State, max_buffer: u64) {
        let from = st.ring.front().and_then(|(b, _)| b.pts());
        while let Some(a) = st.audio_ring.front() {
            let old = match (a.pts(), from) {
                (Some(p), Some(f)) => p < f,
                _ => false,
            };
            if !old && st.audio_ring_bytes <= max_buffer / 8 {
                break;
            }
            st.audio_ring_bytes -= a.size() as u64;
            st.audio_ring.pop_front();
        }
    }

    /// A buffer of the camera's audio: timestamped like the video, into the clip being
    /// written and the ring.
    fn on_audio(&self, mut buffer: gst::Buffer) {
        let max_buffer = self.settings.lock().unwrap().max_buffer;
        let mut st = self.state.lock().unwrap();
        let (Some(aseg), Some(vseg)) = (st.audio_segment.as_ref(), st.video_segment.as_ref())
        else {
            return;
        };
        let Some(pts) = buffer
            .pts()
            .and_then(|p| aseg.to_running_time(p))
            .and_then(|rt| vseg.position_from_running_time(rt))
        else {
            return;
        };
        {
            let b = buffer.make_mut();
            b.set_pts(pts);
            b.set_dts(gst::ClockTime::NONE);
        }
        let caps = st.audio_caps.clone();
        if let Some(clip) = st.clip.as_mut() {
            if clip.audio.is_some() && clip.audio == caps {
                if let Some(w) = clip.writer.as_mut() {
                    w.push_audio(buffer.clone());
                }
            }
        }
        st.audio_ring_bytes += buffer.size() as u64;
        st.audio_ring.push_back(buffer);
        self.trim_audio(&mut st, max_buffer);
    }

    fn audio_event(&self, event: gst::Event) -> bool {
        let mut st = self.state.lock().unwrap();
        match event.view() {
            gst::EventView::Caps(c) => {
                let caps = c.caps_owned();
                if st.audio_caps.as_ref() != Some(&caps) {
                    gst::debug!(CAT, imp = self, "audio caps {caps}");
                    // Buffers of other caps cannot go into the same track.
                    st.audio_ring.clear();
                    st.audio_ring_bytes = 0;
                    st.audio_caps = Some(caps);
                }
            }
            gst::EventView::Segment(e) => {
                st.audio_segment = e.segment().downcast_ref::<gst::ClockTime>().cloned();
            }
            gst::EventView::FlushStop(_) => {
                st.audio_ring.clear();
                st.audio_ring_bytes = 0;
            }
            // The end of the audio ends nothing: the bin's end is the video's.
            _ => {}
        }
        true
    }

    /// Ends the clip being written: EOS to its writer, then, on another thread, wait for
    /// the file to be complete, rename it and announce it.
    fn finish_clip(&self, st: &mut State, why: &str) {
        let Some(clip) = st.clip.take() else { return };
        let settings = self.settings.lock().unwrap().clone();
        let evs: Vec<(u64, Ev)> = clip
            .ids
            .iter()
            .filter_map(|id| st.events.get(id).map(|e| (*id, e.clone())))
            .collect();
        // Events fully handled are forgotten; the clip message carries what is known.
        for (id, e) in &evs {
            if e.decided {
                st.events.remove(id);
            }
        }
        gst::debug!(CAT, imp = self, "clip {} ends: {why}", clip.path.display());
        let Some(report) = clip.report else {
            return;
        };
        let has_audio = clip.audio.is_some();
        let done = clip.writer.and_then(Writer::close);
        let weak = self.obj().downgrade();
        let handle = std::thread::spawn(move || {
            // The writer's own thread finishes the file (within its 10 s timeout).
            if let Some(h) = done {
                let _ = h.join();
            }
            let Ok(r) = report.recv_timeout(std::time::Duration::from_secs(30)) else {
                return;
            };
            let Some(obj) = weak.upgrade() else { return };
            let imp = obj.imp();
            if let Some((e, debug)) = &r.error {
                gst::element_warning!(
                    obj,
                    gst::ResourceError::Write,
                    ("Clip {} is incomplete", r.path.display()),
                    ["{e} ({debug}); repair: {:?}", r.repair]
                );
            }
            if r.bytes == 0 {
                // Nothing playable was written: there is no clip to announce.
                return;
            }
            let Some((first_id, first)) = evs.first().cloned() else {
                return;
            };
            let best = evs
                .iter()
                .filter(|(_, e)| e.confirmed)
                .max_by(|a, b| a.1.score.total_cmp(&b.1.score))
                .or(evs.first())
                .map(|(_, e)| e.clone())
                .unwrap_or_default();
            let snapshot = evs
                .iter()
                .find_map(|(_, e)| e.snapshot.clone())
                .map(|p| p.to_string_lossy().to_string())
                .unwrap_or_default();
            let end = evs
                .iter()
                .filter_map(|(_, e)| e.end)
                .fold(first.start, f64::max);
            let verdict = if best.confirmed {
                "confirmed"
            } else if evs.iter().all(|(_, e)| e.decided) {
                "dismissed"
            } else {
                ""
            };
            let _announcing = imp.announce.lock().unwrap();
            imp.post(
                gst::Structure::builder("motionclips")
                    .field("type", "clip")
                    .field("id", first_id)
                    .field(
                        "events",
                        gst::Array::new(evs.iter().map(|(id, _)| id.to_send_value())),
                    )
                    .field("camera", &settings.camera)
                    .field("label", &best.label)
                    .field("score", best.score)
                    .field("verdict", verdict)
                    .field("location", r.path.to_string_lossy().to_string())
                    .field("snapshot", snapshot)
                    .field("start-stream-time", ns(first.start))
                    .field("end-stream-time", ns(end))
                    .field("clip-start-stream-time", ns(clip.first))
                    .field("clip-end-stream-time", ns(clip.last))
                    .field("duration", clip.last - clip.first)
                    .field("start-wall-time", first.start_wall)
                    .field("bytes", clip.bytes)
                    .field("audio", has_audio)
                    .build(),
            );
        });
        st.finishing.retain(|h| !h.is_finished());
        st.finishing.push(handle);
    }

    /// One branch (the clips' or the analysis's) reached the end of stream. The clips are
    /// finished when both have: a clip finished at the encoded branch's end, while the
    /// analysis (on its own thread, behind) still had frames to judge, lost its events'
    /// verdicts and snapshots. The bin posts its EOS after both, so after the clips.
    fn branch_ended(&self, clips: bool) {
        let both = {
            let mut st = self.state.lock().unwrap();
            if clips {
                st.clips_ended = true;
            } else {
                st.analysis_ended = true;
            }
            st.clips_ended && st.analysis_ended
        };
        gst::debug!(
            CAT,
            imp = self,
            "end of stream on the {} branch",
            if clips { "clips" } else { "analysis" }
        );
        if both {
            self.finish_all("end of stream");
        }
    }

    /// Closes the clip in progress and waits until every clip is on disk.
    fn finish_all(&self, why: &str) {
        // The analysis branch reaches the end after the encoded one: give the clip's events
        // a moment to get their verdicts and snapshots.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            let st = self.state.lock().unwrap();
            let undecided = st.clip.as_ref().is_some_and(|c| {
                c.ids
                    .iter()
                    .any(|id| st.events.get(id).is_some_and(|e| !e.decided))
            });
            drop(st);
            if !undecided {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let handles = {
            let mut st = self.state.lock().unwrap();
            self.finish_clip(&mut st, why);
            std::mem::take(&mut st.finishing)
        };
        for h in handles {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_camera_time_and_id() {
        assert_eq!(
            clip_name("front door", 951_782_400.5, 7),
            "front_door-20000229-000000-7"
        );
    }
}
