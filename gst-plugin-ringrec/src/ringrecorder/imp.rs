//! The `ringrecorder` bin:
//!
//! ```text
//! video ─▶ h264parse ─▶ appsink ─┐  key frame after max-size-time, or new caps:
//!                                ├▶ close the segment, open the next
//! audio ─────────────▶ appsink ─┘  every frame goes at once into the open segment
//! ```
//!
//! Each segment is its own small pipeline (see `writer.rs`): `appsrc ! mp4mux
//! (fragmented, 1 s) | matroskamux ! filesink`, fed frame by frame, so nothing waits
//! for a whole GOP before reaching the disk (splitmuxsink holds one). A segment's
//! timestamps start at 0. A write error (disk full) ends that segment only: a warning
//! and a `ringrecorder-error` message, then a new segment is tried every 2 s.
//!
//! At start the folder is scanned: files a crash left behind are cut back to their
//! last complete fragment or removed, then retention runs; it runs again after each
//! closed segment, never touching the segment being written.

use crate::h264;
use crate::store::{self, Limits, Repair};
use crate::writer::{self, Writer};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::CAT;

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

/// Recording state, shared by the video and audio streaming threads and the writers'
/// report threads. Never held while waiting for a writer to finish.
#[derive(Default)]
struct State {
    writer: Option<Writer>,
    /// Segments still finishing on their threads (joined at stop).
    closing: Vec<JoinHandle<()>>,
    video_caps: Option<gst::Caps>,
    /// From the avcC `codec_data` of the video caps.
    nal_length_size: usize,
    audio_caps: Option<gst::Caps>,
    /// Caps changed: the next key frame starts a new segment.
    split: bool,
    /// Video from a key frame, held while the audio caps are awaited (<= AUDIO_WAIT).
    pending: Vec<gst::Buffer>,
    /// After a write error, no new segment before this.
    retry_at: Option<Instant>,
    /// A write error was reported and recording has not resumed yet.
    failing: bool,
    /// Dropping up to the next key frame (the disk fell behind).
    dropping: bool,
    /// Video frames that reached the recorder (after its h264parse).
    received: u64,
    frames: u64,
    dropped: u64,
    segments: u64,
    bytes: u64,
    errors: u64,
}

impl State {
    /// Close the segment being written without waiting for it.
    fn close_writer(&mut self) {
        self.closing.retain(|h| !h.is_finished());
        if let Some(h) = self.writer.take().and_then(Writer::close) {
            self.closing.push(h);
        }
    }
}

pub struct RingRecorder {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    video_sink: gst::GhostPad,
    video_appsink: gst_app::AppSink,
    audio_appsink: Mutex<Option<gst_app::AppSink>>,
}

/// How long video waits for the audio caps before a segment starts without audio.
const AUDIO_WAIT: gst::ClockTime = gst::ClockTime::from_seconds(1);
const MAX_PENDING: usize = 64;
/// A key frame this close to `max-size-time` starts the next segment: camera timestamps
/// jitter, and a GOP that divides the segment length must not double it.
const SPLIT_TOLERANCE: gst::ClockTime = gst::ClockTime::from_mseconds(250);
/// After a write error (disk full), the next attempt at a new segment.
const RETRY_DELAY: Duration = Duration::from_secs(2);

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
            state: Mutex::new(State::default()),
            video_sink,
            video_appsink: appsink(
                "video-sink",
                &gst::Caps::builder("video/x-h264")
                    .field("stream-format", "avc")
                    .field("alignment", "au")
                    .build(),
            ),
            audio_appsink: Mutex::new(None),
        }
    }
}

/// The end of a branch inside the bin: no clock sync, no preroll wait (a live camera,
/// or an audio pad that never gets data, must not hold the pipeline).
fn appsink(name: &str, caps: &gst::Caps) -> gst_app::AppSink {
    gst_app::AppSink::builder()
        .name(name)
        .caps(caps)
        .sync(false)
        .async_(false)
        .max_buffers(1)
        .build()
}

/// A sample's buffer with its timestamps as running times.
fn running_time_buffer(sample: &gst::Sample) -> Option<gst::Buffer> {
    let mut buf = sample.buffer_owned()?;
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?.clone();
    let pts = segment.to_running_time(buf.pts()?)?;
    let dts = buf.dts().and_then(|d| segment.to_running_time(d));
    let b = buf.make_mut();
    b.set_pts(pts);
    b.set_dts(dts);
    Some(buf)
}

impl ObjectImpl for RingRecorder {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        let parse = gst::ElementFactory::make("h264parse")
            .build()
            .expect("h264parse (gstreamer1.0-plugins-bad)");
        obj.add_many([&parse, self.video_appsink.upcast_ref()])
            .unwrap();
        parse.link(&self.video_appsink).unwrap();
        self.video_sink
            .set_target(Some(&parse.static_pad("sink").unwrap()))
            .unwrap();
        obj.add_pad(&self.video_sink).unwrap();
        let weak = obj.downgrade();
        let weak_eos = obj.downgrade();
        self.video_appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(rec) = weak.upgrade() {
                        rec.imp().on_video(&sample);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .eos(move |_| {
                    // Before the bin posts EOS: the last segment is complete on disk
                    // when the application sees it.
                    if let Some(rec) = weak_eos.upgrade() {
                        rec.imp().close_segment();
                        rec.imp().end_unlinked_audio();
                    }
                })
                .build(),
        );
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
                    .blurb("Length of each segment: 60s, 5m, 1h, or nanoseconds; a segment ends at the first IDR frame from 250 ms before this length on")
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
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("frames-in, frames-recorded, frames-dropped, segments, bytes (closed segments), errors, writing (false while waiting for disk space), current-location, current-start-time (Unix s of its first frame)")
                    .read_only()
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
            "stats" => {
                drop(s);
                self.stats().to_value()
            }
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
            let audio = writer::audio_caps();
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
        let mut audio = self.audio_appsink.lock().unwrap();
        if audio.is_some() {
            gst::warning!(CAT, imp = self, "only one audio stream is recorded");
            return None;
        }
        let sink = appsink("audio-sink", templ.caps());
        let weak = self.obj().downgrade();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(rec) = weak.upgrade() {
                        rec.imp().on_audio(&sample);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let obj = self.obj();
        obj.add(&sink).ok()?;
        sink.sync_state_with_parent().ok()?;
        let ghost = gst::GhostPad::builder_from_template(templ)
            .name("audio")
            .build();
        ghost.set_target(Some(&sink.static_pad("sink")?)).ok()?;
        ghost.set_active(true).ok()?;
        obj.add_pad(&ghost).ok()?;
        *audio = Some(sink);
        Some(ghost.upcast())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let obj = self.obj();
        let _ = obj.remove_pad(pad);
        if let Some(sink) = self.audio_appsink.lock().unwrap().take() {
            let _ = sink.set_state(gst::State::Null);
            let _ = obj.remove(&sink);
        }
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::NullToReady {
            self.prepare()?;
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            self.close_segment();
            // The counters stay readable after a stop (reset at the next start).
            let mut st = self.state.lock().unwrap();
            *st = State {
                received: st.received,
                frames: st.frames,
                dropped: st.dropped,
                segments: st.segments,
                bytes: st.bytes,
                errors: st.errors,
                ..State::default()
            };
        }
        Ok(ret)
    }
}

impl BinImpl for RingRecorder {}

impl RingRecorder {
    /// An audio pad that was requested but never linked (a camera that sent no audio)
    /// gets no EOS of its own: end it with the video, or the bin never posts EOS.
    fn end_unlinked_audio(&self) {
        let Some(sink) = self.audio_appsink.lock().unwrap().clone() else {
            return;
        };
        let unlinked = self
            .obj()
            .static_pad("audio")
            .is_some_and(|p| p.peer().is_none());
        if unlinked {
            gst::debug!(
                CAT,
                imp = self,
                "audio pad unlinked: ending it with the video"
            );
            if let Some(pad) = sink.static_pad("sink") {
                pad.send_event(gst::event::Eos::new());
            }
        }
    }

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
        for partial in store::scan_partial(&location, &camera) {
            match store::finish_partial(&partial) {
                Ok(kept) => gst::warning!(
                    CAT,
                    imp = self,
                    "{}: left by a crash: {}",
                    partial.display(),
                    kept.map(|p| format!("kept as {}", p.display()))
                        .unwrap_or_else(|| "nothing playable, removed".into())
                ),
                Err(e) => gst::warning!(CAT, imp = self, "{}: {e}", partial.display()),
            }
        }
        for seg in store::scan(&location, &camera) {
            match store::repair(&seg.path) {
                Ok(Repair::Intact) | Ok(Repair::Skipped) => {}
                Ok(r) => {
                    gst::warning!(
                        CAT,
                        imp = self,
                        "{}: left by a crash: {r:?}",
                        seg.path.display()
                    );
                    if let Some(dir) = seg.path.parent().filter(|_| r == Repair::Removed) {
                        // Only removes the day folder once it is empty.
                        let _ = std::fs::remove_dir(dir);
                    }
                }
                Err(e) => {
                    gst::warning!(CAT, imp = self, "{}: cannot check: {e}", seg.path.display())
                }
            }
        }
        self.prune(&location, &camera, s.limits, None);
        *self.state.lock().unwrap() = State::default();
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

    fn audio_expected(&self) -> bool {
        self.audio_appsink.lock().unwrap().is_some()
    }

    /// A video frame (one access unit) from h264parse.
    fn on_video(&self, sample: &gst::Sample) {
        self.state.lock().unwrap().received += 1;
        let Some(buf) = running_time_buffer(sample) else {
            gst::debug!(CAT, imp = self, "frame without timestamp dropped");
            self.state.lock().unwrap().dropped += 1;
            return;
        };
        let Some(rt) = buf.pts() else { return };
        let max_size_time = self.settings.lock().unwrap().max_size_time;
        let max_size_time = gst::ClockTime::from_nseconds(max_size_time.as_nanos() as u64);
        let audio_expected = self.audio_expected();
        let mut st = self.state.lock().unwrap();
        let caps = sample.caps_owned();
        if caps.is_some() && caps != st.video_caps {
            // New SPS/PPS (a camera restart with other settings): new file.
            st.split |= st.writer.is_some();
            st.nal_length_size = h264::caps_nal_length_size(caps.as_deref());
            st.video_caps = caps;
        }
        // Segments start at IDR frames: h264parse also flags non-IDR I frames as key.
        let key = !buf.flags().contains(gst::BufferFlags::DELTA_UNIT)
            && buf
                .map_readable()
                .is_ok_and(|m| h264::has_idr(&m, st.nal_length_size));
        if st.writer.as_ref().is_some_and(|w| w.failed()) {
            // Its thread reports the error; try a new segment a little later.
            st.close_writer();
            st.retry_at = Some(Instant::now() + RETRY_DELAY);
        }
        let due = match &st.writer {
            None => true,
            Some(w) => st.split || w.elapsed(rt) + SPLIT_TOLERANCE >= max_size_time,
        };
        // (Frames held for the audio caps stay held, key frames too: the first one
        // starts the segment. Dropping them lost one frame per camera in the benchmark.)
        if due && key && st.pending.is_empty() {
            // Close the current segment (it finishes on its own thread) and start the
            // next one with this key frame.
            st.close_writer();
            st.split = false;
            st.dropping = false;
            if st.retry_at.is_some_and(|t| Instant::now() < t) {
                st.dropped += 1;
                return;
            }
            st.pending.push(buf);
            if !audio_expected || st.audio_caps.is_some() {
                self.open_segment(&mut st);
            }
            return;
        }
        if st.writer.is_none() {
            if st.pending.is_empty() {
                // Waiting for the first key frame.
                st.dropped += 1;
                return;
            }
            let waited = rt.saturating_sub(st.pending[0].pts().unwrap_or(rt));
            st.pending.push(buf);
            if waited >= AUDIO_WAIT || st.pending.len() >= MAX_PENDING {
                gst::info!(
                    CAT,
                    imp = self,
                    "no audio caps yet: segment starts with video only"
                );
                self.open_segment(&mut st);
            }
            return;
        }
        if st.split && !key {
            // New caps but no key frame yet: the old segment cannot take these frames.
            st.dropped += 1;
            return;
        }
        let queued = st.writer.as_ref().map(|w| w.queued_bytes()).unwrap_or(0);
        if (st.dropping && !key) || queued > writer::MAX_QUEUED_BYTES {
            if !st.dropping {
                gst::warning!(
                    CAT,
                    imp = self,
                    "the disk is not keeping up ({queued} bytes queued): dropping frames up to the next key frame"
                );
            }
            st.dropping = true;
            st.dropped += 1;
            return;
        }
        st.dropping = false;
        let pushed = st.writer.as_mut().is_some_and(|w| w.push_video(buf));
        if pushed {
            st.frames += 1;
        } else {
            st.dropped += 1;
        }
    }

    fn on_audio(&self, sample: &gst::Sample) {
        let Some(buf) = running_time_buffer(sample) else {
            return;
        };
        let mut st = self.state.lock().unwrap();
        let caps = sample.caps_owned();
        if caps.is_some() && caps != st.audio_caps {
            st.split |= st.writer.as_ref().is_some_and(|w| w.has_audio());
            st.audio_caps = caps;
        }
        if st.writer.is_none() && !st.pending.is_empty() {
            // The video waited for these caps.
            self.open_segment(&mut st);
        }
        let split = st.split;
        if let Some(w) = st.writer.as_mut().filter(|_| !split) {
            w.push_audio(buf);
        }
    }

    /// Start a segment with the held frames (the first is a key frame).
    fn open_segment(&self, st: &mut State) {
        let pending = std::mem::take(&mut st.pending);
        let (Some(first), Some(video_caps)) = (pending.first(), st.video_caps.clone()) else {
            return;
        };
        let start = first.pts().unwrap_or(gst::ClockTime::ZERO);
        let s = self.settings.lock().unwrap().clone();
        let location = s.location.clone().unwrap_or_else(|| PathBuf::from("."));
        // Date the file by its first frame: now minus how long ago that frame ran.
        let lag = match self.obj().current_running_time() {
            Some(now) if now > start => Duration::from_nanos((now - start).nseconds()),
            _ => Duration::ZERO,
        };
        let started = SystemTime::now() - lag;
        let path = store::new_segment_path(&location, &s.camera(), s.ext(), started);
        if let Some(dir) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                gst::warning!(CAT, imp = self, "cannot create {}: {e}", dir.display());
            }
        }
        let audio_caps = if self.audio_expected() {
            st.audio_caps.clone()
        } else {
            None
        };
        let weak = self.obj().downgrade();
        let opened = Writer::open(
            path.clone(),
            &s.format,
            start,
            started,
            &video_caps,
            audio_caps.as_ref(),
            move |report| {
                if let Some(rec) = weak.upgrade() {
                    rec.imp().segment_ended(report);
                }
            },
        );
        match opened {
            Ok(mut w) => {
                gst::debug!(CAT, imp = self, "new segment {}", path.display());
                if audio_caps.is_some() && !w.has_audio() {
                    gst::warning!(
                        CAT,
                        imp = self,
                        "{} cannot hold {:?}: recording video only",
                        s.format,
                        audio_caps
                    );
                }
                for b in pending {
                    if w.push_video(b) {
                        st.frames += 1;
                    } else {
                        st.dropped += 1;
                    }
                }
                st.writer = Some(w);
            }
            Err(e) => {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("Cannot record into {}: {e}", path.display())
                );
                st.retry_at = Some(Instant::now() + RETRY_DELAY);
            }
        }
    }

    /// Close the segment being written and wait until it is on disk (EOS, stop).
    fn close_segment(&self) {
        let closing = {
            let mut st = self.state.lock().unwrap();
            if st.writer.is_none() && !st.pending.is_empty() {
                self.open_segment(&mut st);
            }
            st.close_writer();
            std::mem::take(&mut st.closing)
        };
        // Not under the lock: the writers' threads report through it.
        for h in closing {
            let _ = h.join();
        }
    }

    /// On a writer's thread: the segment is complete, or was cut short by an error.
    fn segment_ended(&self, r: writer::Report) {
        let settings = self.settings.lock().unwrap().clone();
        let camera = settings.camera();
        let start = r
            .started
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let (first_error, resumed, current) = {
            let mut st = self.state.lock().unwrap();
            st.segments += u64::from(r.bytes > 0);
            st.bytes += r.bytes;
            let first = r.error.is_some() && !st.failing;
            // A complete segment after a write error: recording works again.
            let resumed = r.error.is_none() && r.bytes > 0 && st.failing;
            if r.error.is_some() {
                st.failing = true;
                st.errors += 1;
            } else if resumed {
                st.failing = false;
            }
            (first, resumed, st.writer.as_ref().map(|w| w.path.clone()))
        };
        if resumed {
            self.resumed(&r.path);
        }
        if let Some((err, debug)) = &r.error {
            let no_space = err.matches(gst::ResourceError::NoSpaceLeft);
            if first_error {
                // A warning, not an error: recording goes on as soon as it can.
                let domain = if no_space {
                    gst::ResourceError::NoSpaceLeft
                } else {
                    gst::ResourceError::Write
                };
                gst::element_imp_warning!(
                    self,
                    domain,
                    (
                        "Cannot write {}: {}; earlier segments are kept, recording resumes when writing works again",
                        r.path.display(),
                        err.message()
                    ),
                    ["{debug}"]
                );
            }
            gst::warning!(
                CAT,
                imp = self,
                "{}: {err} ({:?})",
                r.path.display(),
                r.repair
            );
            let _ = self.obj().post_message(
                gst::message::Element::builder(
                    gst::Structure::builder("ringrecorder-error")
                        .field("path", r.path.to_string_lossy().as_ref())
                        .field("error", err.message())
                        .field("no-space", no_space)
                        .field("kept-bytes", r.bytes)
                        .build(),
                )
                .src(&*self.obj())
                .build(),
            );
        }
        if r.bytes > 0 {
            let duration = r.duration.nseconds() as f64 / 1e9;
            gst::info!(
                CAT,
                imp = self,
                "segment closed: {} ({} bytes, {} frames, {duration:.2} s)",
                r.path.display(),
                r.bytes,
                r.frames
            );
            let _ = self.obj().post_message(
                gst::message::Element::builder(
                    gst::Structure::builder("ringrecorder-segment")
                        .field("path", r.path.to_string_lossy().as_ref())
                        .field("camera", &camera)
                        .field("start", start)
                        .field(
                            "start-time",
                            r.started
                                .duration_since(UNIX_EPOCH)
                                .unwrap_or_default()
                                .as_secs_f64(),
                        )
                        .field("duration", duration)
                        .field("bytes", r.bytes)
                        .field("frames", r.frames)
                        .field("complete", r.error.is_none())
                        .build(),
                )
                .src(&*self.obj())
                .build(),
            );
        }
        if let Some(loc) = settings.location {
            self.prune(&loc, &camera, settings.limits, current.as_deref());
        }
    }

    fn resumed(&self, path: &Path) {
        gst::info!(
            CAT,
            imp = self,
            "writing again: {} is complete",
            path.display()
        );
        let _ = self.obj().post_message(
            gst::message::Element::builder(
                gst::Structure::builder("ringrecorder-resumed")
                    .field("path", path.to_string_lossy().as_ref())
                    .build(),
            )
            .src(&*self.obj())
            .build(),
        );
    }

    fn stats(&self) -> gst::Structure {
        let st = self.state.lock().unwrap();
        gst::Structure::builder("ringrecorder-stats")
            .field("frames-in", st.received)
            .field("frames-recorded", st.frames)
            .field("frames-dropped", st.dropped)
            .field("segments", st.segments)
            .field("bytes", st.bytes)
            .field("errors", st.errors)
            .field("writing", !st.failing)
            .field(
                "current-location",
                st.writer
                    .as_ref()
                    .map(|w| w.path.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
            .field(
                "current-start-time",
                st.writer
                    .as_ref()
                    .map(|w| {
                        w.started
                            .duration_since(UNIX_EPOCH)
                            .unwrap_or_default()
                            .as_secs_f64()
                    })
                    .unwrap_or(0.0),
            )
            .build()
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
                    // For indexes of the recordings (homecam's).
                    let _ = self.obj().post_message(
                        gst::message::Element::builder(
                            gst::Structure::builder("ringrecorder-deleted")
                                .field("path", p.to_string_lossy().as_ref())
                                .field("camera", camera)
                                .build(),
                        )
                        .src(&*self.obj())
                        .build(),
                    );
                }
                Err(e) => gst::warning!(CAT, imp = self, "cannot delete {}: {e}", p.display()),
            }
        }
    }
}
