//! One recording file (a ringrecorder segment, a motionclips clip): a small pipeline of
//! its own,
//! `appsrc ! mux ! filesink` (plus `appsrc ! [audio to AAC] ! mux` when there is audio),
//! fed frame by frame by its owner as frames arrive. Nothing is held back for a
//! whole GOP, so a crash loses only what the muxer has not written yet (one MP4
//! fragment, ~1 s).
//!
//! A thread per writer watches its bus: at EOS (the recorder closed the segment) or at
//! an error (disk full, folder removed) it stops the pipeline, repairs a file cut short,
//! and hands a [`Report`] to the recorder.

use crate::store::{self, Repair};
use gst::glib;
use gst::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

static CAT: std::sync::LazyLock<gst::DebugCategory> = std::sync::LazyLock::new(|| {
    gst::DebugCategory::new(
        "recwriter",
        gst::DebugColorFlags::empty(),
        Some("Crash-safe recording files (ringrecorder segments, motionclips clips)"),
    )
});

/// Above this many bytes queued in front of the muxer (a disk slower than the camera),
/// frames are dropped until the next key frame instead of growing memory.
pub const MAX_QUEUED_BYTES: u64 = 32 * 1024 * 1024;
const MIN_FRAME_STEP: gst::ClockTime = gst::ClockTime::from_mseconds(1);
/// A frame this far behind the previous one is dropped rather than moved forward.
const MAX_BACKSTEP: gst::ClockTime = gst::ClockTime::from_mseconds(100);
/// How long a closing segment may take to finish writing before it is cut off.
const FINISH_TIMEOUT: Duration = Duration::from_secs(10);

/// What became of a segment, once its pipeline has stopped.
#[derive(Debug)]
pub struct Report {
    pub path: PathBuf,
    /// Wall-clock time of the first frame.
    pub started: SystemTime,
    /// From the first frame to the end of the last one.
    pub duration: gst::ClockTime,
    pub frames: u64,
    /// File size after any repair; 0 when the file was removed.
    pub bytes: u64,
    /// The error that ended the segment early (disk full...), if any.
    pub error: Option<(glib::Error, String)>,
    pub repair: Option<Repair>,
}

/// The part of a writer shared with its bus thread.
struct Shared {
    finish_requested: Mutex<Option<Instant>>,
    failed: AtomicBool,
    frames: std::sync::atomic::AtomicU64,
    /// End (first-frame relative) of the last video frame pushed, in ns.
    end: std::sync::atomic::AtomicU64,
    first_frame_bytes: std::sync::atomic::AtomicU64,
}

pub struct Writer {
    pub path: PathBuf,
    /// Running time of the segment's first frame: file timestamps start at 0 from here.
    pub start: gst::ClockTime,
    /// Wall-clock time of that frame.
    pub started: SystemTime,
    pipeline: gst::Pipeline,
    video: gst_app::AppSrc,
    audio: Option<gst_app::AppSrc>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    last_video_pts: Option<gst::ClockTime>,
}

/// The AAC encoder: voaacenc (plugins-bad) costs a sixth of avenc_aac's CPU on 8 kHz
/// camera audio (0.25 % vs 1.6 % of a core per camera on this machine).
fn aac_encoder() -> &'static str {
    static ENC: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    ENC.get_or_init(|| {
        if gst::ElementFactory::find("voaacenc").is_some() {
            "voaacenc bitrate=32000"
        } else {
            "avenc_aac"
        }
    })
}

/// The camera audio a writer takes (the audio pads of ringrecorder and motionclips):
/// G.711 A-law and µ-law, MPEG audio and Opus.
pub fn audio_caps() -> gst::Caps {
    let mut audio = gst::Caps::new_empty();
    for name in [
        "audio/x-alaw",
        "audio/x-mulaw",
        "audio/mpeg",
        "audio/x-opus",
    ] {
        audio.merge(gst::Caps::new_empty_simple(name));
    }
    audio
}

/// The branch that takes the camera's audio into `format`, as a launch description,
/// or None when this container cannot hold it.
fn audio_branch(format: &str, caps: &gst::Caps) -> Option<String> {
    let name = caps.structure(0)?.name().as_str();
    if format == "mkv" {
        // Matroska keeps G.711, AAC and Opus as they are (appsrc has its own thread).
        return Some("identity".into());
    }
    // mp4mux (GStreamer 1.22) has no G.711 mapping: transcode to AAC.
    let decoder = match name {
        "audio/x-alaw" => "alawdec",
        "audio/x-mulaw" => "mulawdec",
        "audio/mpeg" => return Some("aacparse".into()),
        "audio/x-opus" => return Some("opusparse".into()),
        _ => return None,
    };
    Some(format!(
        "{decoder} ! audioconvert ! audioresample ! {} ! aacparse",
        aac_encoder()
    ))
}

fn appsrc(name: &str, caps: &gst::Caps) -> gst_app::AppSrc {
    gst_app::AppSrc::builder()
        .name(name)
        .caps(caps)
        .format(gst::Format::Time)
        .is_live(false)
        .block(false)
        // Bounded by the recorder (MAX_QUEUED_BYTES), which drops up to a key frame.
        .max_bytes(0)
        .build()
}

/// Link to the muxer's pad of that kind (plain linking may pick an audio pad for video).
fn link_to_mux(from: &gst::Element, mux: &gst::Element, template: &str) -> Result<(), ()> {
    let sink = mux.request_pad_simple(template).ok_or(())?;
    let src = from.static_pad("src").ok_or(())?;
    src.link(&sink).map(|_| ()).map_err(|_| ())
}

impl Writer {
    /// Build and start the segment's pipeline. `on_end` runs on the writer's thread
    /// once the file is complete (or cut short by an error).
    pub fn open(
        path: PathBuf,
        format: &str,
        start: gst::ClockTime,
        started: SystemTime,
        video_caps: &gst::Caps,
        audio_caps: Option<&gst::Caps>,
        on_end: impl FnOnce(Report) + Send + 'static,
    ) -> Result<Writer, String> {
        let pipeline = gst::Pipeline::with_name("recwriter");
        let mux = if format == "mkv" {
            gst::ElementFactory::make("matroskamux").build()
        } else {
            // Fragmented MP4: a moof every second, so a crash loses at most ~1 s.
            gst::ElementFactory::make("mp4mux")
                .property("fragment-duration", 1000u32)
                .build()
        }
        .map_err(|e| format!("muxer for {format}: {e}"))?;
        // filesink buffers 64 KiB in the process by default: a kill -9 would lose it.
        // Unbuffered, each muxer write reaches the kernel, which survives the process.
        let sink = gst::ElementFactory::make("filesink")
            .property(
                "location",
                store::partial_path(&path).to_string_lossy().as_ref(),
            )
            .property_from_str("buffer-mode", "unbuffered")
            .property("sync", false)
            .property("async", false)
            .build()
            .map_err(|e| format!("filesink: {e}"))?;
        let video = appsrc("video", video_caps);
        pipeline
            .add_many([video.upcast_ref(), &mux, &sink])
            .map_err(|e| e.to_string())?;
        mux.link(&sink).map_err(|e| e.to_string())?;
        link_to_mux(video.upcast_ref(), &mux, "video_%u")
            .map_err(|_| format!("the muxer for {format} refuses {video_caps}"))?;
        let audio = match audio_caps.and_then(|c| audio_branch(format, c).map(|b| (c, b))) {
            Some((caps, desc)) => {
                let src = appsrc("audio", caps);
                let branch = gst::parse::bin_from_description(&desc, true)
                    .map_err(|e| format!("audio branch {desc:?}: {e}"))?;
                pipeline
                    .add_many([src.upcast_ref::<gst::Element>(), branch.upcast_ref()])
                    .map_err(|e| e.to_string())?;
                src.link(&branch).map_err(|e| e.to_string())?;
                link_to_mux(branch.upcast_ref(), &mux, "audio_%u")
                    .map_err(|_| format!("the muxer for {format} refuses the audio {caps}"))?;
                Some(src)
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            finish_requested: Mutex::new(None),
            failed: AtomicBool::new(false),
            frames: Default::default(),
            end: Default::default(),
            first_frame_bytes: Default::default(),
        });
        let bus = pipeline.bus().expect("a pipeline has a bus");
        let (p2, s2, path2) = (pipeline.clone(), shared.clone(), path.clone());
        let thread = std::thread::Builder::new()
            .name("recwriter".into())
            .spawn(move || watch(p2, bus, s2, path2, started, on_end))
            .map_err(|e| format!("writer thread: {e}"))?;
        let mut w = Writer {
            path,
            start,
            started,
            pipeline,
            video,
            audio,
            shared,
            thread: Some(thread),
            last_video_pts: None,
        };
        if w.pipeline.set_state(gst::State::Playing).is_err() {
            // The bus carries the reason (the file cannot be opened...): the thread
            // reports it.
            w.shared.failed.store(true, Ordering::SeqCst);
            w.finish();
        }
        Ok(w)
    }

    pub fn has_audio(&self) -> bool {
        self.audio.is_some()
    }

    /// The segment's pipeline reported an error: nothing more can go into it.
    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::SeqCst)
    }

    /// Bytes waiting in front of the muxer.
    pub fn queued_bytes(&self) -> u64 {
        let level = |e: &gst_app::AppSrc| e.current_level_bytes();
        level(&self.video) + self.audio.as_ref().map(level).unwrap_or(0)
    }

    /// Time covered from the first frame to `running_time`.
    pub fn elapsed(&self, running_time: gst::ClockTime) -> gst::ClockTime {
        running_time.saturating_sub(self.start)
    }

    /// Push a video frame, its timestamps already running times. False when the frame
    /// is dropped (before the segment, or far behind the previous frame).
    pub fn push_video(&mut self, mut buf: gst::Buffer) -> bool {
        let Some(pts) = buf.pts() else { return false };
        if pts < self.start {
            return false;
        }
        let mut rel = pts - self.start;
        if let Some(last) = self.last_video_pts {
            // Muxers refuse time going back, and Matroska keeps milliseconds: frames
            // bunched up after a reconnection are spread to 1 ms apart.
            if rel + MAX_BACKSTEP < last {
                return false;
            }
            rel = rel.max(last + MIN_FRAME_STEP);
        }
        self.last_video_pts = Some(rel);
        let end = rel + buf.duration().unwrap_or(gst::ClockTime::ZERO);
        {
            let b = buf.make_mut();
            b.set_pts(rel);
            let dts = b
                .dts()
                .map(|d| d.saturating_sub(self.start))
                .filter(|d| *d <= rel);
            b.set_dts(dts);
        }
        gst::trace!(
            CAT,
            "{}: video {} dts {:?} key {} {} bytes",
            self.path.display(),
            rel,
            buf.dts(),
            !buf.flags().contains(gst::BufferFlags::DELTA_UNIT),
            buf.size()
        );
        if self.shared.frames.fetch_add(1, Ordering::Relaxed) == 0 {
            let size = buf.size() as u64;
            self.shared.first_frame_bytes.store(size, Ordering::Relaxed);
        }
        self.shared.end.store(end.nseconds(), Ordering::Relaxed);
        let _ = self.video.push_buffer(buf);
        true
    }

    /// Push an audio buffer; dropped when it starts before the segment or there is no
    /// audio branch.
    pub fn push_audio(&mut self, mut buf: gst::Buffer) {
        let Some(audio) = &self.audio else { return };
        let Some(pts) = buf.pts().filter(|p| *p >= self.start) else {
            return;
        };
        {
            let b = buf.make_mut();
            b.set_pts(pts - self.start);
            b.set_dts(gst::ClockTime::NONE);
        }
        gst::trace!(CAT, "{}: audio {:?}", self.path.display(), buf.pts());
        let _ = audio.push_buffer(buf);
    }

    /// Close the segment: the muxer writes what it holds, then the thread reports.
    pub fn finish(&mut self) {
        let mut req = self.shared.finish_requested.lock().unwrap();
        if req.is_some() {
            return;
        }
        *req = Some(Instant::now());
        drop(req);
        let _ = self.video.end_of_stream();
        if let Some(a) = &self.audio {
            let _ = a.end_of_stream();
        }
    }

    /// Close the segment; its thread finishes the file. Join the handle to wait.
    pub fn close(mut self) -> Option<JoinHandle<()>> {
        self.finish();
        self.thread.take()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing without waiting: the thread finishes the file on its own.
        self.finish();
    }
}

/// The bus thread of one segment.
fn watch(
    pipeline: gst::Pipeline,
    bus: gst::Bus,
    shared: Arc<Shared>,
    path: PathBuf,
    started: SystemTime,
    on_end: impl FnOnce(Report),
) {
    let mut error = None;
    let partial = store::partial_path(&path);
    let mut renamed = false;
    loop {
        if !renamed {
            // The final name only once the file holds something playable.
            let min = shared.first_frame_bytes.load(Ordering::Relaxed).max(1);
            if store::has_media(&partial, min).unwrap_or(false)
                && std::fs::rename(&partial, &path).is_ok()
            {
                renamed = true;
            }
        }
        // Often until the file has its final name, then rarely: EOS and errors wake
        // this up at once anyway.
        let wait = if renamed { 1000 } else { 100 };
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(wait),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => break,
            Some(gst::MessageView::Error(e)) => {
                shared.failed.store(true, Ordering::SeqCst);
                let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
                error = Some((e.error(), debug));
                break;
            }
            _ => {}
        }
        let req = *shared.finish_requested.lock().unwrap();
        if req.is_some_and(|t| t.elapsed() > FINISH_TIMEOUT) {
            error = Some((
                glib::Error::new(
                    gst::ResourceError::Write,
                    "the segment did not finish writing in time",
                ),
                String::new(),
            ));
            break;
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    // Cut a file ended by an error back to its last complete fragment, or remove it.
    let repair = if renamed {
        error.as_ref().and_then(|_| store::repair(&path).ok())
    } else {
        match store::finish_partial(&partial) {
            Ok(Some(_)) => None,
            _ => Some(Repair::Removed),
        }
    };
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    on_end(Report {
        path,
        started,
        duration: gst::ClockTime::from_nseconds(shared.end.load(Ordering::Relaxed)),
        frames: shared.frames.load(Ordering::Relaxed),
        bytes,
        error,
        repair,
    });
}
