//! The `ringrecorder` bin:
//!
//! ```text
//! video ─▶ h264parse ─▶ queue ─▶ ┐
//!                                 splitmuxsink (mp4mux fragment-duration=1000 | matroskamux)
//! audio ─▶ [to AAC for MP4] ─▶ queue ─▶ ┘
//! ```
//!
//! Segment names come from `format-location-full` (camera + UTC start time, never an
//! existing file); on `splitmuxsink-fragment-closed` the segment is announced and
//! retention runs. At start the folder is scanned: files a crash left behind are cut
//! back to their last complete fragment or removed, then retention runs.

use crate::store::{self, Limits, Repair};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "ringrecorder",
        gst::DebugColorFlags::empty(),
        Some("Crash-safe ring recorder"),
    )
});

const DEFAULT_MAX_SIZE_TIME: &str = "60s";
const DEFAULT_FORMAT: &str = "mp4";

#[derive(Clone)]
struct Settings {
    location: Option<PathBuf>,
    camera_name: Option<String>,
    max_size_time: Duration,
    limits: Limits,
    format: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            location: None,
            camera_name: None,
            max_size_time: Duration::from_secs(60),
            limits: Limits::default(),
            format: DEFAULT_FORMAT.into(),
        }
    }
}

impl Settings {
    fn camera(&self) -> String {
        self.camera_name.clone().unwrap_or_else(|| {
            self.location
                .as_ref()
                .and_then(|l| l.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "camera".into())
        })
    }

    fn ext(&self) -> &'static str {
        if self.format == "mkv" {
            "mkv"
        } else {
            "mp4"
        }
    }
}

pub struct RingRecorder {
    settings: Mutex<Settings>,
    /// The segment being written: retention never deletes it.
    current: Mutex<Option<PathBuf>>,
    splitmux: gst::Element,
    video_sink: gst::GhostPad,
    video_queue: Mutex<Option<gst::Element>>,
    /// The audio branch's last element, linked to splitmuxsink at start.
    audio_tail: Mutex<Option<gst::Element>>,
}

#[glib::object_subclass]
impl ObjectSubclass for RingRecorder {
    const NAME: &'static str = "GstRingRecorder";
    type Type = super::RingRecorder;
    type ParentType = gst::Bin;

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("video").unwrap();
        let video_sink = gst::GhostPad::builder_from_template(&templ)
            .name("video")
            .build();
        RingRecorder {
            settings: Mutex::new(Settings::default()),
            current: Mutex::new(None),
            splitmux: gst::ElementFactory::make("splitmuxsink")
                .name("splitmux")
                .build()
                .expect("splitmuxsink (gstreamer1.0-plugins-good)"),
            video_sink,
            video_queue: Mutex::new(None),
            audio_tail: Mutex::new(None),
        }
    }
}

impl ObjectImpl for RingRecorder {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        let parse = gst::ElementFactory::make("h264parse").build().unwrap();
        let queue = gst::ElementFactory::make("queue").build().unwrap();
        obj.add_many([&parse, &queue, &self.splitmux]).unwrap();
        parse.link(&queue).unwrap();
        // Linked to splitmuxsink at start, once the container is known.
        *self.video_queue.lock().unwrap() = Some(queue);
        self.video_sink
            .set_target(Some(&parse.static_pad("sink").unwrap()))
            .unwrap();
        obj.add_pad(&self.video_sink).unwrap();
        self.splitmux.set_property("send-keyframe-requests", false);
        // filesink buffers 64 KiB in the process by default: a kill -9 would lose it.
        // Unbuffered, each muxer write reaches the kernel, which survives the process.
        let sink = gst::ElementFactory::make("filesink")
            .build()
            .expect("filesink (GStreamer core)");
        sink.set_property_from_str("buffer-mode", "unbuffered");
        self.splitmux.set_property("sink", &sink);
        let weak = obj.downgrade();
        self.splitmux
            .connect("format-location-full", false, move |args| {
                let rec = weak.upgrade()?;
                // splitmuxsink asks once it holds a whole GOP: date the file by its
                // first frame, not by the time of asking.
                let first_pts = args
                    .get(2)
                    .and_then(|v| v.get::<gst::Sample>().ok())
                    .and_then(|s| s.buffer().and_then(|b| b.pts()));
                Some(rec.imp().next_location(first_pts).to_value())
            });
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb("Folder for this camera's recordings, e.g. /var/lib/cams/front; segments go to <location>/<YYYY-MM-DD>/<camera>-<YYYYMMDDTHHMMSSZ>.mp4")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("camera-name")
                    .nick("Camera name")
                    .blurb("Name used in file names (default: the last part of location)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("max-size-time")
                    .nick("Segment duration")
                    .blurb("Length of each segment: 60s, 5m, 1h, or nanoseconds; splits happen at the next key frame")
                    .default_value(Some(DEFAULT_MAX_SIZE_TIME))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("max-bytes")
                    .nick("Maximum bytes")
                    .blurb("Delete the oldest segments while all of them take more than this: 20GB, 500MB, 2GiB (0 = no limit)")
                    .default_value(Some("0"))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("max-age")
                    .nick("Maximum age")
                    .blurb("Delete segments that started longer ago than this: 7d, 12h (0 = keep forever)")
                    .default_value(Some("0"))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-files")
                    .nick("Maximum files")
                    .blurb("Delete the oldest segments beyond this many (0 = no limit)")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("format")
                    .nick("Container")
                    .blurb("mp4 (fragmented, 1 s fragments, audio as AAC) or mkv (Matroska, audio as the camera sends it); both stay playable after a crash")
                    .default_value(Some(DEFAULT_FORMAT))
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        let text = || {
            value
                .get::<Option<String>>()
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let result: Result<(), String> = match pspec.name() {
            "location" => {
                s.location = value.get::<Option<String>>().unwrap().map(PathBuf::from);
                Ok(())
            }
            "camera-name" => {
                s.camera_name = value
                    .get::<Option<String>>()
                    .unwrap()
                    .filter(|n| !n.is_empty());
                Ok(())
            }
            "max-size-time" => store::parse_duration(&text()).map(|d| s.max_size_time = d),
            "max-bytes" => store::parse_bytes(&text()).map(|b| s.limits.max_bytes = b),
            "max-age" => store::parse_duration(&text()).map(|d| s.limits.max_age = d),
            "max-files" => {
                s.limits.max_files = value.get().unwrap();
                Ok(())
            }
            "format" => match text().as_str() {
                f @ ("mp4" | "mkv") => {
                    s.format = f.into();
                    Ok(())
                }
                other => Err(format!("format must be mp4 or mkv, not {other:?}")),
            },
            _ => unreachable!(),
        };
        if let Err(e) = result {
            gst::warning!(CAT, imp = self, "{}: {e}", pspec.name());
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "location" => s
                .location
                .as_ref()
                .map(|l| l.to_string_lossy().into_owned())
                .to_value(),
            "camera-name" => s.camera().to_value(),
            "max-size-time" => format!("{}s", s.max_size_time.as_secs_f64()).to_value(),
            "max-bytes" => s.limits.max_bytes.to_string().to_value(),
            "max-age" => format!("{}s", s.limits.max_age.as_secs()).to_value(),
            "max-files" => s.limits.max_files.to_value(),
            "format" => s.format.to_value(),
            _ => unreachable!(),
        }
    }
}

impl GstObjectImpl for RingRecorder {}

impl ElementImpl for RingRecorder {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Ring recorder",
                "Sink/Video",
                "Records a camera's H.264 (never re-encoded) and audio into crash-safe segments named by wall-clock time, deleting the oldest by count, size and age",
                "homecam-gst developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let mut audio = gst::Caps::new_empty();
            for name in [
                "audio/x-alaw",
                "audio/x-mulaw",
                "audio/mpeg",
                "audio/x-opus",
            ] {
                audio.merge(gst::Caps::new_empty_simple(name));
            }
            vec![
                gst::PadTemplate::new(
                    "video",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &gst::Caps::new_empty_simple("video/x-h264"),
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "audio",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &audio,
                )
                .unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        _name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        if self.audio_tail.lock().unwrap().is_some() {
            gst::warning!(CAT, imp = self, "only one audio stream is recorded");
            return None;
        }
        let mp4 = self.settings.lock().unwrap().format != "mkv";
        if mp4 {
            // Not yet: mp4mux (GStreamer 1.22) takes no G.711, and the AAC transcode
            // branch below still stalls the muxer. Matroska keeps the audio as sent.
            gst::warning!(
                CAT,
                imp = self,
                "format=mp4 records video only for now; use format=mkv to keep the audio"
            );
            return None;
        }
        // mp4mux (GStreamer 1.22) takes no G.711: transcode the audio to AAC for MP4.
        let desc = if mp4 {
            "decodebin ! audioconvert ! audioresample ! avenc_aac ! aacparse ! queue"
        } else {
            "queue"
        };
        let bin = gst::parse::bin_from_description(desc, true).ok()?;
        let obj = self.obj();
        obj.add(&bin).ok()?;
        bin.sync_state_with_parent().ok()?;
        *self.audio_tail.lock().unwrap() = Some(bin.clone().upcast());
        // Already started (a source exposing its pads while playing, as camsrc does
        // before any data flows): link to splitmuxsink now.
        let started = self
            .video_queue
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|q| q.static_pad("src"))
            .is_some_and(|p| p.is_linked());
        if started {
            let pad = self.splitmux.request_pad_simple("audio_%u")?;
            bin.static_pad("src")?.link(&pad).ok()?;
        }
        // decodebin answers caps queries with EMPTY until it has typefound, which would
        // refuse every link: answer with what this pad takes.
        let ghost = gst::GhostPad::builder_from_template(templ)
            .name("audio")
            .query_function(|pad, parent, query| {
                if let gst::QueryViewMut::Caps(q) = query.view_mut() {
                    let templ = pad.pad_template_caps();
                    let caps = match q.filter() {
                        Some(f) => f.intersect_with_mode(&templ, gst::CapsIntersectMode::First),
                        None => templ,
                    };
                    q.set_result(&caps);
                    return true;
                }
                if let gst::QueryViewMut::AcceptCaps(q) = query.view_mut() {
                    let ok = q.caps().is_subset(&pad.pad_template_caps());
                    q.set_result(ok);
                    return true;
                }
                gst::Pad::query_default(pad, parent, query)
            })
            .build();
        ghost.set_target(Some(&bin.static_pad("sink")?)).ok()?;
        ghost.set_active(true).ok()?;
        obj.add_pad(&ghost).ok()?;
        Some(ghost.upcast())
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::NullToReady {
            self.prepare()?;
        }
        self.parent_change_state(transition)
    }
}

impl BinImpl for RingRecorder {
    fn handle_message(&self, msg: gst::Message) {
        if let gst::MessageView::Element(e) = msg.view() {
            if let Some(s) = e.structure() {
                if s.name() == "splitmuxsink-fragment-closed" {
                    self.segment_closed(s);
                }
            }
        }
        self.parent_handle_message(msg)
    }
}

impl RingRecorder {
    /// Create the folder, repair what a crash left, apply retention, set up splitmuxsink.
    fn prepare(&self) -> Result<(), gst::StateChangeError> {
        let s = self.settings.lock().unwrap().clone();
        let Some(location) = s.location.clone() else {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Settings,
                ("No location: set 'location' to the folder for this camera's recordings")
            );
            return Err(gst::StateChangeError);
        };
        if let Err(e) = std::fs::create_dir_all(&location) {
            gst::element_imp_error!(
                self,
                gst::ResourceError::OpenWrite,
                (
                    "Cannot create the recording folder {}: {e}",
                    location.display()
                )
            );
            return Err(gst::StateChangeError);
        }
        let camera = s.camera();
        for seg in store::scan(&location, &camera) {
            match store::repair(&seg.path) {
                Ok(Repair::Intact) | Ok(Repair::Skipped) => {}
                Ok(r) => gst::warning!(
                    CAT,
                    imp = self,
                    "{}: left by a crash: {r:?}",
                    seg.path.display()
                ),
                Err(e) => {
                    gst::warning!(CAT, imp = self, "{}: cannot check: {e}", seg.path.display())
                }
            }
        }
        self.prune(&location, &camera, s.limits, None);
        self.splitmux
            .set_property("max-size-time", s.max_size_time.as_nanos() as u64);
        self.link_muxer(&s.format)?;
        *self.current.lock().unwrap() = None;
        gst::info!(
            CAT,
            imp = self,
            "recording {camera} into {} ({}, {} s segments)",
            location.display(),
            s.format,
            s.max_size_time.as_secs_f64()
        );
        Ok(())
    }

    /// Choose the container and link the branches to splitmuxsink (first start only).
    fn link_muxer(&self, format: &str) -> Result<(), gst::StateChangeError> {
        let Some(queue) = self.video_queue.lock().unwrap().clone() else {
            return Ok(());
        };
        if queue.static_pad("src").is_some_and(|p| p.is_linked()) {
            return Ok(());
        }
        self.set_muxer(format);
        let fail = |what: &str| {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("Cannot link the {what} branch to splitmuxsink for {format}")
            );
            gst::StateChangeError
        };
        queue
            .link_pads(Some("src"), &self.splitmux, Some("video"))
            .map_err(|_| fail("video"))?;
        if let Some(tail) = self.audio_tail.lock().unwrap().clone() {
            let pad = self
                .splitmux
                .request_pad_simple("audio_%u")
                .ok_or_else(|| fail("audio"))?;
            tail.static_pad("src")
                .ok_or_else(|| fail("audio"))?
                .link(&pad)
                .map_err(|_| fail("audio"))?;
        }
        Ok(())
    }

    fn set_muxer(&self, format: &str) {
        let mux = if format == "mkv" {
            gst::ElementFactory::make("matroskamux").build()
        } else {
            // Fragmented MP4: a moof every second, so a crash loses at most ~1 s.
            gst::ElementFactory::make("mp4mux")
                .property("fragment-duration", 1000u32)
                .build()
        };
        match mux {
            Ok(m) => self.splitmux.set_property("muxer", &m),
            Err(_) => gst::error!(CAT, imp = self, "no muxer for {format}"),
        }
    }

    /// splitmuxsink asks for the next file name.
    fn next_location(&self, first_pts: Option<gst::ClockTime>) -> String {
        let s = self.settings.lock().unwrap().clone();
        let location = s.location.clone().unwrap_or_else(|| PathBuf::from("."));
        // PTS are running times upstream (live sources, segment from 0).
        let lag = match (first_pts, self.obj().current_running_time()) {
            (Some(pts), Some(now)) if now > pts => Duration::from_nanos((now - pts).nseconds()),
            _ => Duration::ZERO,
        };
        let now = SystemTime::now() - lag;
        let path = store::new_segment_path(&location, &s.camera(), s.ext(), now);
        if let Some(dir) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                gst::warning!(CAT, imp = self, "cannot create {}: {e}", dir.display());
            }
        }
        gst::debug!(CAT, imp = self, "new segment {}", path.display());
        *self.current.lock().unwrap() = Some(path.clone());
        path.to_string_lossy().into_owned()
    }

    fn segment_closed(&self, s: &gst::StructureRef) {
        let Ok(location) = s.get::<&str>("location") else {
            return;
        };
        let path = PathBuf::from(location);
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let settings = self.settings.lock().unwrap().clone();
        let camera = settings.camera();
        let start = path
            .file_name()
            .and_then(|n| store::start_of(&camera, &n.to_string_lossy()))
            .unwrap_or(0);
        let current = self.current.lock().unwrap().clone();
        let now = SystemTime::now();
        let end = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let duration = (end - start as f64).max(0.0);
        gst::info!(
            CAT,
            imp = self,
            "segment closed: {} ({bytes} bytes, ~{duration:.1} s)",
            path.display()
        );
        let _ = self.obj().post_message(
            gst::message::Element::builder(
                gst::Structure::builder("ringrecorder-segment")
                    .field("path", location)
                    .field("camera", &camera)
                    .field("start", start)
                    .field("duration", duration)
                    .field("bytes", bytes)
                    .build(),
            )
            .src(&*self.obj())
            .build(),
        );
        if let Some(loc) = settings.location {
            // The file being written is the next one, never the one just closed.
            let keep = current.filter(|c| c != &path);
            self.prune(&loc, &camera, settings.limits, keep.as_deref());
        }
    }

    fn prune(&self, location: &Path, camera: &str, limits: Limits, keep: Option<&Path>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let segments = store::scan(location, camera);
        for p in store::to_delete(&segments, limits, now, keep) {
            match std::fs::remove_file(&p) {
                Ok(()) => {
                    gst::info!(CAT, imp = self, "retention: deleted {}", p.display());
                    if let Some(dir) = p.parent() {
                        // Only removes the day folder once it is empty.
                        let _ = std::fs::remove_dir(dir);
                    }
                }
                Err(e) => gst::warning!(CAT, imp = self, "cannot delete {}: {e}", p.display()),
            }
        }
    }
}
