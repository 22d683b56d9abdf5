//! The `tutksrc` element: a live push source. One thread of its own makes every SDK
//! call (connect, START, `avRecvFrameData2`, reconnect with backoff, see
//! `tutk::client`) and queues frames; `create()` hands them downstream. Stopping or
//! flushing aborts a blocked connect at once through `IOTC_Connect_Stop_BySID` and
//! `avClientExit`.

use crate::uri::parse as parse_uri;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;
use gst_cam_common::uri::percent_encode;
use kasa_protocol::timing::{PtsMapper, Stream};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tutk::client::{self, Event, Flow, StreamOptions};
use tutk::{ffi, Cancel, ConnectRequest, Error, ErrorKind, Secret};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "tutksrc",
        gst::DebugColorFlags::empty(),
        Some("TUTK/Kalay camera source"),
    )
});

const DEFAULT_USERNAME: &str = "admin";
const DEFAULT_CHANNEL: u32 = 0;
const DEFAULT_TIMEOUT_S: u32 = 10;
const DEFAULT_MAX_RECONNECTS: i32 = -1;
const DEFAULT_RECONNECT_DELAY_MS: u32 = 1000;
const DEFAULT_MAX_RECONNECT_DELAY_MS: u32 = 30_000;
const DEFAULT_LATENCY_MS: u32 = 200;
/// Frames queued for `create()`: ~4 s at 15 fps. Beyond it downstream is stuck; the
/// queue is emptied and refilled from the next key frame.
const MAX_QUEUED: usize = 60;
/// Environment fallbacks that keep secrets out of command lines and parser logs.
const ENV_PASSWORD: &str = "TUTK_PASSWORD";
const ENV_LICENSE_KEY: &str = "TUTK_LICENSE_KEY";

#[derive(Debug, Clone)]
struct Settings {
    uid: Option<String>,
    username: String,
    password: Option<Secret>,
    channel: u32,
    library_path: Option<String>,
    license_key: Option<Secret>,
    allow_remote: bool,
    timeout: u32,
    max_reconnects: i32,
    reconnect_delay: u32,
    max_reconnect_delay: u32,
    latency: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            uid: None,
            username: DEFAULT_USERNAME.into(),
            password: None,
            channel: DEFAULT_CHANNEL,
            library_path: None,
            license_key: None,
            allow_remote: false,
            timeout: DEFAULT_TIMEOUT_S,
            max_reconnects: DEFAULT_MAX_RECONNECTS,
            reconnect_delay: DEFAULT_RECONNECT_DELAY_MS,
            max_reconnect_delay: DEFAULT_MAX_RECONNECT_DELAY_MS,
            latency: DEFAULT_LATENCY_MS,
        }
    }
}

struct Frame {
    data: Vec<u8>,
    codec: u16,
    key: bool,
    pts: u64,
    discont: bool,
}

enum Item {
    Frame(Frame),
    /// The stream ended with an error (already posted).
    Failed,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    flushing: bool,
    /// Downstream fell behind: wait for a key frame before queueing again.
    wait_key: bool,
    overflows: u64,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    cv: Condvar,
    stats: Mutex<client::Stats>,
    playing: AtomicBool,
}

struct Running {
    thread: JoinHandle<()>,
    cancel: Arc<Cancel>,
}

#[derive(Default)]
pub struct TutkSrc {
    settings: Mutex<Settings>,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
    /// The caps last set, by codec id.
    codec: Mutex<Option<u16>>,
}

#[glib::object_subclass]
impl ObjectSubclass for TutkSrc {
    const NAME: &'static str = "GstTutkSrc";
    type Type = super::TutkSrc;
    type ParentType = gst_base::PushSrc;
    type Interfaces = (gst::URIHandler,);
}

fn caps_for(codec: u16) -> Option<gst::Caps> {
    Some(match codec {
        ffi::CODEC_H264 => gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build(),
        ffi::CODEC_H265 => gst::Caps::builder("video/x-h265")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build(),
        ffi::CODEC_MJPEG => gst::Caps::builder("image/jpeg").build(),
        _ => return None,
    })
}

impl ObjectImpl for TutkSrc {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_live(true);
        obj.set_format(gst::Format::Time);
        obj.set_do_timestamp(false);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("uid")
                    .nick("UID")
                    .blurb("The camera's 20-character TUTK UID (on its label, or from `tutk scan`)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("username")
                    .nick("User name")
                    .blurb("Camera account user name")
                    .default_value(Some(DEFAULT_USERNAME))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("password")
                    .nick("Password")
                    .blurb("Camera account password, write-only and never logged. When not set, the TUTK_PASSWORD environment variable is used, which keeps it out of command lines and GStreamer's parser logs")
                    .write_only()
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("channel")
                    .nick("Channel")
                    .blurb("AV channel (camera index on multi-camera devices)")
                    .maximum(255)
                    .default_value(DEFAULT_CHANNEL)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("library-path")
                    .nick("SDK library path")
                    .blurb("The vendor SDK (never shipped with this plugin): libIOTCAPIs_ALL.so, or the folder holding it or libIOTCAPIs.so + libAVAPIs.so. Unset: TUTK_LIBRARY_PATH, then the system library paths")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("license-key")
                    .nick("SDK licence key")
                    .blurb("Licence key for SDK 4.x (TUTK_SDK_Set_License_Key, called only if the SDK has it), write-only and never logged. Unset: TUTK_LICENSE_KEY")
                    .write_only()
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("allow-remote")
                    .nick("Allow remote sessions")
                    .blurb("Accept a P2P or relay session through the vendor's servers. Off: only a camera reached on the LAN is used, because older SDKs send the password through those servers in near-cleartext (CVE-2021-28372)")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("timeout")
                    .nick("Timeout")
                    .blurb("Seconds to connect (avClientStart2), and without frames before the session is re-established")
                    .minimum(1)
                    .maximum(3600)
                    .default_value(DEFAULT_TIMEOUT_S)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("max-reconnects")
                    .nick("Maximum reconnects")
                    .blurb("Consecutive failed reconnection attempts before giving up with an error (-1 = never give up)")
                    .minimum(-1)
                    .default_value(DEFAULT_MAX_RECONNECTS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("reconnect-delay")
                    .nick("Reconnect delay")
                    .blurb("Milliseconds before the first reconnection attempt; doubles on each failure")
                    .maximum(600_000)
                    .default_value(DEFAULT_RECONNECT_DELAY_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-reconnect-delay")
                    .nick("Maximum reconnect delay")
                    .blurb("Cap in milliseconds on the delay between reconnection attempts")
                    .maximum(3_600_000)
                    .default_value(DEFAULT_MAX_RECONNECT_DELAY_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("latency")
                    .nick("Latency")
                    .blurb("Latency in milliseconds reported to the pipeline, covering network jitter")
                    .maximum(10_000)
                    .default_value(DEFAULT_LATENCY_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("What `tutk stream` reports: connected, frames, bytes, fps, dropped (lost or incomplete in the SDK), skipped (waiting for a key frame), last-frame-size, last-frame-time (Unix s), codec, mode (LAN, P2P, relay), reconnects, last-error")
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
                .unwrap()
                .filter(|v| !v.is_empty())
        };
        match pspec.name() {
            "uid" => s.uid = text(),
            "username" => s.username = text().unwrap_or_default(),
            "password" => {
                s.password = text().map(Secret::new);
                // Never the value, at any level.
                gst::debug!(CAT, imp = self, "password set");
            }
            "channel" => s.channel = value.get().unwrap(),
            "library-path" => s.library_path = text(),
            "license-key" => {
                s.license_key = text().map(Secret::new);
                gst::debug!(CAT, imp = self, "licence key set");
            }
            "allow-remote" => s.allow_remote = value.get().unwrap(),
            "timeout" => s.timeout = value.get().unwrap(),
            "max-reconnects" => s.max_reconnects = value.get().unwrap(),
            "reconnect-delay" => s.reconnect_delay = value.get().unwrap(),
            "max-reconnect-delay" => s.max_reconnect_delay = value.get().unwrap(),
            "latency" => s.latency = value.get().unwrap(),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "uid" => s.uid.to_value(),
            "username" => s.username.to_value(),
            "channel" => s.channel.to_value(),
            "library-path" => s.library_path.to_value(),
            "allow-remote" => s.allow_remote.to_value(),
            "timeout" => s.timeout.to_value(),
            "max-reconnects" => s.max_reconnects.to_value(),
            "reconnect-delay" => s.reconnect_delay.to_value(),
            "max-reconnect-delay" => s.max_reconnect_delay.to_value(),
            "latency" => s.latency.to_value(),
            "stats" => stats_structure(&self.shared.stats.lock().unwrap()).to_value(),
            // "password" and "license-key" are write-only; GObject never asks.
            other => unreachable!("unknown or unreadable property {other}"),
        }
    }
}

fn stats_structure(s: &client::Stats) -> gst::Structure {
    gst::Structure::builder("tutksrc-stats")
        .field("connected", s.connected)
        .field("frames", s.frames)
        .field("bytes", s.bytes)
        .field("fps", s.fps)
        .field("dropped", s.dropped)
        .field("skipped", s.skipped)
        .field("last-frame-size", s.last_frame_size as u64)
        .field("last-frame-time", s.last_frame_epoch())
        .field("codec", s.codec.map(client::codec_name).unwrap_or_default())
        .field("mode", s.mode.map(|m| m.to_string()).unwrap_or_default())
        .field("reconnects", s.reconnects)
        .field("last-error", &s.last_error)
        .build()
}

impl GstObjectImpl for TutkSrc {}

impl ElementImpl for TutkSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "TUTK/Kalay camera source",
                "Source/Network",
                "Live H.264, H.265 or MJPEG from a TUTK/Kalay P2P camera through the vendor SDK loaded at run time (LAN sessions only unless allow-remote)",
                "homecam-gst developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let mut caps = gst::Caps::new_empty();
            for c in [ffi::CODEC_H264, ffi::CODEC_H265, ffi::CODEC_MJPEG] {
                caps.merge(caps_for(c).unwrap());
            }
            vec![gst::PadTemplate::new(
                "src",
                gst::PadDirection::Src,
                gst::PadPresence::Always,
                &caps,
            )
            .unwrap()]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            gst::StateChange::PausedToPlaying => self.shared.playing.store(true, Ordering::SeqCst),
            gst::StateChange::PlayingToPaused => self.shared.playing.store(false, Ordering::SeqCst),
            _ => {}
        }
        self.parent_change_state(transition)
    }
}

impl URIHandlerImpl for TutkSrc {
    const URI_TYPE: gst::URIType = gst::URIType::Src;

    fn protocols() -> &'static [&'static str] {
        &["tutk"]
    }

    /// The URI without the password: `tutk://user@UID`.
    fn uri(&self) -> Option<String> {
        let s = self.settings.lock().unwrap();
        let uid = s.uid.as_ref()?;
        let mut u = format!("tutk://{}@{uid}", percent_encode(&s.username));
        let mut q = Vec::new();
        if s.channel != 0 {
            q.push(format!("channel={}", s.channel));
        }
        if s.allow_remote {
            q.push("allow-remote=true".to_string());
        }
        if !q.is_empty() {
            u = format!("{u}?{}", q.join("&"));
        }
        Some(u)
    }

    fn set_uri(&self, uri: &str) -> Result<(), glib::Error> {
        let p = parse_uri(uri).map_err(|e| glib::Error::new(gst::URIError::BadUri, &e))?;
        let mut s = self.settings.lock().unwrap();
        s.uid = Some(p.uid);
        if let Some(u) = p.username {
            s.username = u;
        }
        if let Some(pw) = p.password {
            s.password = Some(pw);
        }
        if let Some(c) = p.channel {
            s.channel = c;
        }
        if let Some(r) = p.allow_remote {
            s.allow_remote = r;
        }
        Ok(())
    }
}

impl BaseSrcImpl for TutkSrc {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let Some(uid) = settings.uid.clone() else {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ("No camera: set 'uid' (or a tutk://user:pass@UID URI)")
            ));
        };
        let password = settings
            .password
            .clone()
            .or_else(|| std::env::var(ENV_PASSWORD).ok().map(Secret::new))
            .unwrap_or_default();
        let license = settings.license_key.clone().or_else(|| {
            std::env::var(ENV_LICENSE_KEY)
                .ok()
                .filter(|k| !k.is_empty())
                .map(Secret::new)
        });
        let sdk = tutk::Sdk::load(
            settings
                .library_path
                .as_deref()
                .map(PathBuf::from)
                .as_deref(),
        )
        .map_err(|e| gst::error_msg!(gst::LibraryError::Init, ("{e}")))?;
        gst::debug!(CAT, imp = self, "TUTK SDK from {}", sdk.origin);
        if license.is_some() && !sdk.takes_license_key() {
            gst::info!(CAT, imp = self, "a licence key is set, but this SDK (pre-4.0) has no TUTK_SDK_Set_License_Key: not used");
        }
        let backend = sdk.acquire(license.as_ref()).map_err(|e| {
            gst::error_msg!(
                gst::LibraryError::Init,
                ("Cannot initialise the TUTK SDK: {e}")
            )
        })?;
        let opts = StreamOptions {
            request: ConnectRequest {
                uid: uid.clone(),
                username: settings.username.clone(),
                password,
                channel: settings.channel as u8,
                allow_remote: settings.allow_remote,
                timeout: Duration::from_secs(settings.timeout as u64),
            },
            max_reconnects: settings.max_reconnects,
            reconnect_delay: Duration::from_millis(settings.reconnect_delay as u64),
            max_reconnect_delay: Duration::from_millis(settings.max_reconnect_delay as u64),
            stall_timeout: Duration::from_secs(settings.timeout as u64),
        };
        *self.shared.queue.lock().unwrap() = Queue::default();
        *self.shared.stats.lock().unwrap() = client::Stats::default();
        *self.codec.lock().unwrap() = None;
        let cancel = Arc::new(Cancel::new());
        let (c2, shared) = (cancel.clone(), self.shared.clone());
        let element = self.obj().clone();
        gst::info!(
            CAT,
            imp = self,
            "connecting to {uid} as {}",
            settings.username
        );
        let thread = std::thread::Builder::new()
            .name("tutksrc-sdk".into())
            .spawn(move || sdk_thread(element, backend, opts, c2, shared))
            .map_err(|e| gst::error_msg!(gst::CoreError::Failed, ["thread: {e}"]))?;
        *self.running.lock().unwrap() = Some(Running { thread, cancel });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(r) = self.running.lock().unwrap().take() {
            r.cancel.cancel();
            self.unlock_queue(true);
            let _ = r.thread.join();
        }
        self.shared.stats.lock().unwrap().connected = false;
        gst::debug!(CAT, imp = self, "stopped");
        Ok(())
    }

    fn is_seekable(&self) -> bool {
        false
    }

    fn query(&self, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Latency(q) => {
                let latency = self.settings.lock().unwrap().latency;
                q.set(
                    true,
                    gst::ClockTime::from_mseconds(latency as u64),
                    gst::ClockTime::NONE,
                );
                true
            }
            gst::QueryViewMut::Uri(q) => {
                q.set_uri(self.obj().uri().as_deref());
                true
            }
            _ => BaseSrcImplExt::parent_query(self, query),
        }
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        self.unlock_queue(true);
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.unlock_queue(false);
        Ok(())
    }
}

impl TutkSrc {
    fn unlock_queue(&self, flushing: bool) {
        let mut q = self.shared.queue.lock().unwrap();
        q.flushing = flushing;
        if flushing {
            q.items.clear();
            q.wait_key = true;
        }
        self.shared.cv.notify_all();
    }
}

impl PushSrcImpl for TutkSrc {
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        let item = {
            let mut q = self.shared.queue.lock().unwrap();
            loop {
                if q.flushing {
                    return Err(gst::FlowError::Flushing);
                }
                if let Some(i) = q.items.pop_front() {
                    break i;
                }
                q = self.shared.cv.wait(q).unwrap();
            }
        };
        let f = match item {
            Item::Failed => return Err(gst::FlowError::Error),
            Item::Frame(f) => f,
        };
        let mut codec = self.codec.lock().unwrap();
        if *codec != Some(f.codec) {
            let caps = caps_for(f.codec).ok_or(gst::FlowError::NotNegotiated)?;
            gst::info!(
                CAT,
                imp = self,
                "camera sends {}: {caps}",
                client::codec_name(f.codec)
            );
            drop(codec);
            self.obj()
                .set_caps(&caps)
                .map_err(|_| gst::FlowError::NotNegotiated)?;
            codec = self.codec.lock().unwrap();
            *codec = Some(f.codec);
        }
        drop(codec);
        let mut buf = gst::Buffer::from_mut_slice(f.data);
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_nseconds(f.pts));
            if !f.key {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
            if f.discont {
                b.set_flags(gst::BufferFlags::DISCONT);
            }
        }
        Ok(CreateSuccess::NewBuffer(buf))
    }
}

/// The element's running time now, if it is playing.
fn running_time(element: &super::TutkSrc) -> Option<u64> {
    let clock = element.clock()?;
    let base = element.base_time()?;
    Some(clock.time().nseconds().saturating_sub(base.nseconds()))
}

fn error_message(e: &Error) -> gst::ErrorMessage {
    match e.kind() {
        ErrorKind::Auth => gst::error_msg!(
            gst::ResourceError::NotAuthorized,
            ("Authentication failed: {e}")
        ),
        ErrorKind::NotFound => {
            gst::error_msg!(gst::ResourceError::NotFound, ("Camera not found: {e}"))
        }
        _ => match e {
            Error::Library(_)
            | Error::Sdk {
                step: "TUTK_SDK_Set_License_Key" | "IOTC_Initialize2",
                ..
            } => {
                gst::error_msg!(gst::LibraryError::Init, ("{e}"))
            }
            Error::RemoteRefused(_) => gst::error_msg!(gst::ResourceError::OpenRead, ("{e}")),
            _ => gst::error_msg!(gst::ResourceError::Read, ("Camera stream failed: {e}")),
        },
    }
}

/// The thread making every SDK call for one start/stop cycle.
fn sdk_thread(
    element: super::TutkSrc,
    backend: tutk::sdk::SdkBackend,
    opts: StreamOptions,
    cancel: Arc<Cancel>,
    shared: Arc<Shared>,
) {
    let uid = opts.request.uid.clone();
    let mut mapper = PtsMapper::new();
    let post = |s: gst::Structure| {
        let _ = element.post_message(gst::message::Element::builder(s).src(&element).build());
    };
    let r = client::stream(&backend, &opts, &cancel, &shared.stats, |ev| {
        match ev {
            Event::Online { info, restart } => {
                mapper.new_session();
                gst::info!(
                    CAT,
                    obj = element,
                    "camera {uid} online: {} session with {}:{}",
                    info.mode,
                    info.remote_ip,
                    info.remote_port
                );
                post(
                    gst::Structure::builder("tutksrc-online")
                        .field("uid", &uid)
                        .field("mode", info.mode.to_string())
                        .field("restart", restart)
                        .build(),
                );
            }
            Event::Offline {
                reason,
                attempt,
                retry_in,
            } => {
                gst::warning!(
                    CAT,
                    obj = element,
                    "camera {uid} offline: {reason}; retry {attempt} in {} ms",
                    retry_in.as_millis()
                );
                post(
                    gst::Structure::builder("tutksrc-offline")
                        .field("uid", &uid)
                        .field("reason", reason.to_string())
                        .field("attempt", attempt)
                        .field("retry-in-ms", retry_in.as_millis() as u64)
                        .build(),
                );
            }
            Event::Frame(f) => {
                let mut q = shared.queue.lock().unwrap();
                // A live source produces nothing while paused; start again at a key frame.
                let arrival =
                    running_time(&element).filter(|_| shared.playing.load(Ordering::SeqCst));
                let Some(arrival) = arrival else {
                    q.wait_key = true;
                    return Flow::Continue;
                };
                if q.wait_key && !f.info.is_key() {
                    return Flow::Continue;
                }
                q.wait_key = false;
                if q.items.len() >= MAX_QUEUED {
                    q.items.clear();
                    q.overflows += 1;
                    q.wait_key = true;
                    gst::warning!(CAT, obj = element, "downstream too slow: dropped {MAX_QUEUED} frames, resuming at the next key frame");
                    return Flow::Continue;
                }
                let m = mapper.map(
                    Stream::Video,
                    Some(f.info.timestamp_ms as f64 / 1000.0),
                    arrival,
                );
                q.items.push_back(Item::Frame(Frame {
                    data: f.data.to_vec(),
                    codec: f.info.codec_id,
                    key: f.info.is_key(),
                    pts: m.pts,
                    discont: f.discont || m.discont,
                }));
                shared.cv.notify_all();
            }
        }
        Flow::Continue
    });
    if let Err(e) = r {
        // Posted from here, so it is seen in PAUSED too (a live source's create() only
        // runs in PLAYING); create() then ends the streaming thread.
        gst::debug!(CAT, obj = element, "stream ended: {e}");
        element.post_error_message(error_message(&e));
        let mut q = shared.queue.lock().unwrap();
        q.items.push_back(Item::Failed);
        shared.cv.notify_all();
    }
    drop(backend);
}
