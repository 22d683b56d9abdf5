//! The `tutksrc` element: a live source with a `video` and (optionally) an `audio`
//! sometimes pad. One thread of its own makes every SDK call (connect, START, receive,
//! reconnect with backoff: `tutk::client`) and only enqueues; each pad pushes from its
//! own bounded queue (`gst_cam_common::padqueue`), so a stuck downstream never blocks
//! the SDK. Stopping aborts a blocked connect at once through `IOTC_Connect_Stop_BySID`
//! and `avClientExit`.

use crate::uri::parse as parse_uri;
use cam_session::timing::{PtsMapper, Stream};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_cam_common::livesrc::{self, Handled, Kind, LiveSrc, Outputs, Pushed};
use gst_cam_common::uri::percent_encode;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
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
const DEFAULT_AUDIO: bool = true;
const DEFAULT_TIMEOUT_S: u32 = 10;
const DEFAULT_MAX_RECONNECTS: i32 = -1;
const DEFAULT_RECONNECT_DELAY_MS: u32 = 1000;
const DEFAULT_MAX_RECONNECT_DELAY_MS: u32 = 30_000;
const DEFAULT_LATENCY_MS: u32 = 200;
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
    audio: bool,
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
            audio: DEFAULT_AUDIO,
            timeout: DEFAULT_TIMEOUT_S,
            max_reconnects: DEFAULT_MAX_RECONNECTS,
            reconnect_delay: DEFAULT_RECONNECT_DELAY_MS,
            max_reconnect_delay: DEFAULT_MAX_RECONNECT_DELAY_MS,
            latency: DEFAULT_LATENCY_MS,
        }
    }
}

pub struct TutkSrc {
    settings: Mutex<Settings>,
    stats: Arc<Mutex<client::Stats>>,
    /// The SDK thread, the pads, the playing flag.
    live: LiveSrc,
}

#[glib::object_subclass]
impl ObjectSubclass for TutkSrc {
    const NAME: &'static str = "GstTutkSrc";
    type Type = super::TutkSrc;
    type ParentType = gst::Element;
    type Interfaces = (gst::URIHandler,);

    fn new() -> Self {
        TutkSrc {
            settings: Mutex::default(),
            stats: Arc::default(),
            live: LiveSrc::new("tutksrc"),
        }
    }
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
        ffi::CODEC_G711U => gst::Caps::builder("audio/x-mulaw")
            .field("rate", 8000i32)
            .field("channels", 1i32)
            .build(),
        ffi::CODEC_G711A => gst::Caps::builder("audio/x-alaw")
            .field("rate", 8000i32)
            .field("channels", 1i32)
            .build(),
        _ => return None,
    })
}

impl ObjectImpl for TutkSrc {
    fn constructed(&self) {
        self.parent_constructed();
        // Bins find their sources by this flag: EOS from `gst-launch-1.0 -e` and
        // pipeline.send_event() reach the element only with it.
        self.obj().set_element_flags(gst::ElementFlags::SOURCE);
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
                glib::ParamSpecBoolean::builder("audio")
                    .nick("Audio")
                    .blurb("Ask for the camera's audio (G.711) and expose it on an 'audio' pad")
                    .default_value(DEFAULT_AUDIO)
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
            "audio" => s.audio = value.get().unwrap(),
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
            "audio" => s.audio.to_value(),
            "timeout" => s.timeout.to_value(),
            "max-reconnects" => s.max_reconnects.to_value(),
            "reconnect-delay" => s.reconnect_delay.to_value(),
            "max-reconnect-delay" => s.max_reconnect_delay.to_value(),
            "latency" => s.latency.to_value(),
            "stats" => stats_structure(&self.stats.lock().unwrap()).to_value(),
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
        .field("audio-frames", s.audio_frames)
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
                "Live H.264, H.265 or MJPEG video and G.711 audio from a TUTK/Kalay P2P camera through the vendor SDK loaded at run time (LAN sessions only unless allow-remote)",
                "homecam-gst developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = |codecs: &[u16]| {
                let mut caps = gst::Caps::new_empty();
                for &c in codecs {
                    caps.merge(caps_for(c).unwrap());
                }
                caps
            };
            livesrc::templates(
                &caps(&[ffi::CODEC_H264, ffi::CODEC_H265, ffi::CODEC_MJPEG]),
                &caps(&[ffi::CODEC_G711U, ffi::CODEC_G711A]),
            )
        });
        TEMPLATES.as_ref()
    }

    /// EOS sent to the pipeline (`gst-launch-1.0 -e`, an application finishing a
    /// recording): stop the camera stream and end every pad, so muxers finalise files.
    fn send_event(&self, event: gst::Event) -> bool {
        let audio = self.settings.lock().unwrap().audio;
        let handled = self.live.send_event(self.obj().upcast_ref(), &event, audio);
        if handled == Handled::EosWithEmptyPads {
            gst::info!(CAT, imp = self, "EOS before any data: empty pads carry it");
        }
        handled.handled()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        gst::debug!(CAT, imp = self, "changing state {transition:?}");
        self.live
            .change_state(self.obj().upcast_ref(), transition, self, |t| {
                self.parent_change_state(t)
            })
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

impl livesrc::Source for TutkSrc {
    fn start(&self) -> Result<(), gst::StateChangeError> {
        let fail = |kind: gst::LibraryError, msg: String| {
            gst::element_imp_error!(self, kind, ("{msg}"));
            gst::StateChangeError
        };
        let settings = self.settings.lock().unwrap().clone();
        let Some(uid) = settings.uid.clone() else {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Settings,
                ("No camera: set 'uid' (or a tutk://user:pass@UID URI)")
            );
            return Err(gst::StateChangeError);
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
        .map_err(|e| fail(gst::LibraryError::Init, e.to_string()))?;
        gst::debug!(CAT, imp = self, "TUTK SDK from {}", sdk.origin);
        if license.is_some() && !sdk.takes_license_key() {
            gst::info!(CAT, imp = self, "a licence key is set, but this SDK (pre-4.0) has no TUTK_SDK_Set_License_Key: not used");
        }
        let backend = sdk.acquire(license.as_ref()).map_err(|e| {
            fail(
                gst::LibraryError::Init,
                format!("Cannot initialise the TUTK SDK: {e}"),
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
            audio: settings.audio,
        };
        *self.stats.lock().unwrap() = client::Stats::default();
        gst::info!(
            CAT,
            imp = self,
            "connecting to {uid} as {}",
            settings.username
        );
        let element = self.obj().clone();
        let outputs = Outputs::new(element.upcast_ref(), &self.live, settings.audio);
        self.live.spawn(self.obj().upcast_ref(), move |cancel| {
            Streamer::new(element, opts, outputs).run(backend, &cancel)
        })
    }

    fn stopped(&self) {
        self.stats.lock().unwrap().connected = false;
        gst::debug!(CAT, imp = self, "stopped");
    }
}

impl TutkSrc {
    fn post(&self, s: gst::Structure) {
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }
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

/// The SDK thread's state for one start/stop cycle.
struct Streamer {
    element: super::TutkSrc,
    opts: StreamOptions,
    mapper: PtsMapper,
    outputs: Outputs,
    /// Output restarts at a key frame (after a pause or an overflow).
    need_key: bool,
    discont: [bool; 2],
}

impl Streamer {
    fn new(element: super::TutkSrc, opts: StreamOptions, outputs: Outputs) -> Streamer {
        Streamer {
            element,
            opts,
            mapper: PtsMapper::new(),
            outputs,
            need_key: true,
            discont: [true, true],
        }
    }

    fn imp(&self) -> &TutkSrc {
        self.element.imp()
    }

    fn run(mut self, backend: tutk::sdk::SdkBackend, cancel: &Cancel) {
        let stats = self.imp().stats.clone();
        let opts = self.opts.clone();
        let r = client::stream(&backend, &opts, cancel, &stats, |ev| self.on_event(ev));
        if let Err(e) = r {
            gst::debug!(CAT, obj = self.element, "stream ended: {e}");
            self.element.post_error_message(error_message(&e));
            // Downstream learns it from an EOS after the error, as from any failed source.
            self.outputs.eos();
        }
        drop(backend);
    }

    /// The running time now, if the element is playing.
    fn arrival(&self) -> Option<u64> {
        if !self.imp().live.is_playing() {
            return None;
        }
        let clock = self.element.clock()?;
        let base = self.element.base_time()?;
        Some(clock.time().nseconds().saturating_sub(base.nseconds()))
    }
    fn on_event(&mut self, ev: Event) -> Flow {
        let uid = self.opts.request.uid.clone();
        match ev {
            Event::Online { info, restart } => {
                self.mapper.new_session();
                self.need_key = true;
                gst::info!(
                    CAT,
                    obj = self.element,
                    "camera {uid} online: {} session with {}:{}",
                    info.mode,
                    info.remote_ip,
                    info.remote_port
                );
                self.imp().post(
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
                    obj = self.element,
                    "camera {uid} offline: {reason}; retry {attempt} in {} ms",
                    retry_in.as_millis()
                );
                self.discont = [true, true];
                self.imp().post(
                    gst::Structure::builder("tutksrc-offline")
                        .field("uid", &uid)
                        .field("reason", reason.to_string())
                        .field("attempt", attempt)
                        .field("retry-in-ms", retry_in.as_millis() as u64)
                        .build(),
                );
            }
            Event::Frame(f) => self.frame(false, f),
            Event::Audio(f) => self.frame(true, f),
        }
        Flow::Continue
    }

    fn frame(&mut self, audio: bool, f: client::Frame) {
        let k = audio as usize;
        if !audio && f.discont {
            self.discont[0] = true;
        }
        // A live source produces nothing while paused; video starts again at a key frame.
        let Some(arrival) = self.arrival() else {
            self.need_key = true;
            // Enough to expose the pads while paused, so they can be linked then.
            if audio || f.info.is_key() {
                if let Some(caps) = caps_for(f.info.codec_id) {
                    let kind = if audio { Kind::Audio } else { Kind::Video };
                    self.outputs.seen(kind, &caps);
                }
            }
            return;
        };
        if !audio {
            if self.need_key && !f.info.is_key() {
                return;
            }
            self.need_key = false;
        } else if self.need_key {
            // Audio waits for the video it goes with.
            return;
        }
        let Some(caps) = caps_for(f.info.codec_id) else {
            gst::debug!(
                CAT,
                obj = self.element,
                "frame with codec 0x{:02X} not supported: skipped",
                f.info.codec_id
            );
            return;
        };
        let stream = if audio { Stream::Audio } else { Stream::Video };
        let m = self
            .mapper
            .map(stream, Some(f.info.timestamp_ms as f64 / 1000.0), arrival);
        let mut buffer = gst::Buffer::from_mut_slice(f.data.to_vec());
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_nseconds(m.pts));
            if !audio {
                b.set_dts(gst::ClockTime::from_nseconds(m.pts));
                if !f.info.is_key() {
                    b.set_flags(gst::BufferFlags::DELTA_UNIT);
                }
            }
            if std::mem::take(&mut self.discont[k]) || m.discont {
                b.set_flags(gst::BufferFlags::DISCONT);
            }
        }
        let kind = if audio { Kind::Audio } else { Kind::Video };
        match self.outputs.push(kind, &caps, buffer) {
            Pushed::Queued | Pushed::NoPad => {}
            Pushed::Overflow(n) => {
                // Downstream stuck for seconds: what was queued is gone.
                gst::warning!(
                    CAT,
                    obj = self.element,
                    "downstream too slow: dropped {n} {} buffers",
                    kind.pad_name()
                );
                if !audio {
                    self.need_key = true;
                    self.discont[0] = true;
                }
            }
        }
    }
}
