//! The `kasasrc` element: a live source with a `video` and (optionally) an `audio`
//! sometimes pad, fed by one streaming thread that owns the camera connection and
//! reconnects on its own. See `docs/kasasrc.md` for the reconnect state machine and
//! `docs/timestamps.md` for how PTS are derived.

use crate::client::{Cancel, ClientError, Connection, Endpoint};
use bytes::Bytes;
use cam_session::reconnect::{self, Attempt, Policy};
use cam_session::timing::{PtsMapper, Stream};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_cam_common::livesrc::{self, Handled, Kind, LiveSrc, Outputs, Pushed};
use gst_cam_common::uri::percent_encode;
use kasa_protocol::auth::Secret;
use kasa_protocol::h264::{parameter_sets, AccessUnitInfo};
use kasa_protocol::multipart::{Part, PartKind, DEFAULT_MAX_PART_SIZE};
use kasa_protocol::tls::Fingerprint;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "kasasrc",
        gst::DebugColorFlags::empty(),
        Some("TP-Link Kasa camera source"),
    )
});

const DEFAULT_PORT: u32 = kasa_protocol::DEFAULT_PORT as u32;
const DEFAULT_USERNAME: &str = "admin";
const DEFAULT_PASSWORD: &str = "admin";
const DEFAULT_AUDIO: bool = true;
const DEFAULT_TIMEOUT_S: u32 = 10;
const DEFAULT_MAX_RECONNECTS: i32 = -1;
const DEFAULT_RECONNECT_DELAY_MS: u32 = 1000;
const DEFAULT_MAX_RECONNECT_DELAY_MS: u32 = 30_000;
const DEFAULT_LATENCY_MS: u32 = 200;

#[derive(Debug, Clone)]
struct Settings {
    ip: Option<String>,
    port: u32,
    path: String,
    username: String,
    password: Secret,
    audio: bool,
    timeout: u32,
    max_reconnects: i32,
    reconnect_delay: u32,
    max_reconnect_delay: u32,
    max_part_size: u32,
    tls_fingerprint: Option<String>,
    latency: u32,
    /// Whether `password` was set explicitly (else `KASA_PASSWORD` may supply it).
    password_set: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ip: None,
            port: DEFAULT_PORT,
            path: kasa_protocol::DEFAULT_PATH.to_string(),
            username: DEFAULT_USERNAME.to_string(),
            password: Secret::new(DEFAULT_PASSWORD),
            audio: DEFAULT_AUDIO,
            timeout: DEFAULT_TIMEOUT_S,
            max_reconnects: DEFAULT_MAX_RECONNECTS,
            reconnect_delay: DEFAULT_RECONNECT_DELAY_MS,
            max_reconnect_delay: DEFAULT_MAX_RECONNECT_DELAY_MS,
            max_part_size: DEFAULT_MAX_PART_SIZE as u32,
            tls_fingerprint: None,
            latency: DEFAULT_LATENCY_MS,
            password_set: false,
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    frames: u64,
    audio_parts: u64,
    bytes: u64,
    dropped: u64,
    corrupt: u64,
    reconnects: u64,
    connected: bool,
    last_frame_time: Option<f64>,
    fps: f64,
    bitrate: f64,
    window_start: Option<Instant>,
    window_frames: u64,
    window_bytes: u64,
    tls_version: String,
    tls_cipher: String,
    fingerprint: String,
}

impl Stats {
    fn count_frame(&mut self) {
        self.frames += 1;
        self.window_frames += 1;
        self.last_frame_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs_f64());
        let now = Instant::now();
        let start = *self.window_start.get_or_insert(now);
        let el = now.duration_since(start).as_secs_f64();
        if el >= 1.0 {
            self.fps = self.window_frames as f64 / el;
            self.bitrate = self.window_bytes as f64 * 8.0 / el;
            self.window_start = Some(now);
            self.window_frames = 0;
            self.window_bytes = 0;
        }
    }

    fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder("kasasrc-stats")
            .field("connected", self.connected)
            .field("frames", self.frames)
            .field("audio-parts", self.audio_parts)
            .field("bytes", self.bytes)
            .field("fps", self.fps)
            .field("bitrate", self.bitrate)
            .field("dropped", self.dropped)
            .field("corrupt", self.corrupt)
            .field("reconnects", self.reconnects)
            .field("last-frame-time", self.last_frame_time.unwrap_or(0.0))
            .field("tls-version", &self.tls_version)
            .field("tls-cipher", &self.tls_cipher)
            .field("tls-fingerprint", &self.fingerprint)
            .build()
    }
}

pub struct KasaSrc {
    settings: Mutex<Settings>,
    stats: Mutex<Stats>,
    /// The reading thread, the pads, the playing flag.
    live: LiveSrc,
}

#[glib::object_subclass]
impl ObjectSubclass for KasaSrc {
    const NAME: &'static str = "GstKasaSrc";
    type Type = super::KasaSrc;
    type ParentType = gst::Element;
    type Interfaces = (gst::URIHandler,);

    fn new() -> Self {
        KasaSrc {
            settings: Mutex::default(),
            stats: Mutex::default(),
            live: LiveSrc::new("kasasrc"),
        }
    }
}

impl ObjectImpl for KasaSrc {
    fn constructed(&self) {
        self.parent_constructed();
        // Bins find their sources by this flag: EOS from `gst-launch-1.0 -e` and
        // pipeline.send_event() reach the element only with it.
        self.obj().set_element_flags(gst::ElementFlags::SOURCE);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("ip")
                    .nick("Camera address")
                    .blurb("IP address or host name of the camera")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("port")
                    .nick("Port")
                    .blurb("HTTPS stream port of the camera")
                    .minimum(1)
                    .maximum(65535)
                    .default_value(DEFAULT_PORT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("path")
                    .nick("Path")
                    .blurb("Request path and query of the stream")
                    .default_value(Some(kasa_protocol::DEFAULT_PATH))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("username")
                    .nick("User name")
                    .blurb("Kasa account e-mail (an unconfigured camera accepts admin)")
                    .default_value(Some(DEFAULT_USERNAME))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("password")
                    .nick("Password")
                    .blurb("Plain Kasa account password, write-only (the element does the inner base64). When not set, the KASA_PASSWORD environment variable is used if present, which keeps the password out of command lines and GStreamer's parser logs; an unconfigured camera accepts admin")
                    .default_value(Some(DEFAULT_PASSWORD))
                    .write_only()
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("audio")
                    .nick("Audio")
                    .blurb("Expose the camera's G.711 mu-law audio on an 'audio' pad")
                    .default_value(DEFAULT_AUDIO)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("timeout")
                    .nick("Timeout")
                    .blurb("Seconds without data (or to connect) before the camera is considered stalled and the connection is re-established")
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
                glib::ParamSpecUInt::builder("max-part-size")
                    .nick("Maximum part size")
                    .blurb("Largest multipart part accepted, in bytes; a larger claim is a framing error, never an allocation")
                    .minimum(4096)
                    .maximum(256 * 1024 * 1024)
                    .default_value(DEFAULT_MAX_PART_SIZE as u32)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("tls-fingerprint")
                    .nick("TLS certificate fingerprint")
                    .blurb("SHA-256 fingerprint (hex, colons optional) the camera certificate must have; unset accepts any certificate, as every Kasa client does. The observed value is in 'stats'")
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
                    .blurb("Stream statistics: frames, audio-parts, bytes, fps, bitrate (bit/s), dropped, corrupt, reconnects, last-frame-time (Unix s), connected, TLS version, cipher and certificate fingerprint")
                    .read_only()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "ip" => {
                s.ip = value
                    .get::<Option<String>>()
                    .unwrap()
                    .filter(|v| !v.is_empty())
            }
            "port" => s.port = value.get().unwrap(),
            "path" => {
                s.path = value
                    .get::<Option<String>>()
                    .unwrap()
                    .unwrap_or_else(|| kasa_protocol::DEFAULT_PATH.to_string())
            }
            "username" => s.username = value.get::<Option<String>>().unwrap().unwrap_or_default(),
            "password" => {
                s.password =
                    Secret::new(value.get::<Option<String>>().unwrap().unwrap_or_default());
                s.password_set = true;
                // Never the value, at any level.
                gst::debug!(CAT, imp = self, "password set");
            }
            "audio" => s.audio = value.get().unwrap(),
            "timeout" => s.timeout = value.get().unwrap(),
            "max-reconnects" => s.max_reconnects = value.get().unwrap(),
            "reconnect-delay" => s.reconnect_delay = value.get().unwrap(),
            "max-reconnect-delay" => s.max_reconnect_delay = value.get().unwrap(),
            "max-part-size" => s.max_part_size = value.get().unwrap(),
            "tls-fingerprint" => {
                s.tls_fingerprint = value
                    .get::<Option<String>>()
                    .unwrap()
                    .filter(|v| !v.is_empty())
            }
            "latency" => s.latency = value.get().unwrap(),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "ip" => s.ip.to_value(),
            "port" => s.port.to_value(),
            "path" => s.path.to_value(),
            "username" => s.username.to_value(),
            "audio" => s.audio.to_value(),
            "timeout" => s.timeout.to_value(),
            "max-reconnects" => s.max_reconnects.to_value(),
            "reconnect-delay" => s.reconnect_delay.to_value(),
            "max-reconnect-delay" => s.max_reconnect_delay.to_value(),
            "max-part-size" => s.max_part_size.to_value(),
            "tls-fingerprint" => s.tls_fingerprint.to_value(),
            "latency" => s.latency.to_value(),
            "stats" => self.stats.lock().unwrap().to_structure().to_value(),
            // "password" is write-only; GObject never asks for it.
            other => unreachable!("unknown or unreadable property {other}"),
        }
    }
}

impl GstObjectImpl for KasaSrc {}

impl ElementImpl for KasaSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "TP-Link Kasa camera source",
                "Source/Network",
                "Live H.264 video and G.711 audio from a TP-Link Kasa camera's HTTPS stream (port 19443)",
                "homecam-gst developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
            LazyLock::new(|| livesrc::templates(&video_caps(), &audio_caps()));
        TEMPLATES.as_ref()
    }

    /// EOS sent to the pipeline (`gst-launch-1.0 -e`, an application finishing a
    /// recording): stop reading and end every pad, so muxers can finalise their files.
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

impl URIHandlerImpl for KasaSrc {
    const URI_TYPE: gst::URIType = gst::URIType::Src;

    fn protocols() -> &'static [&'static str] {
        &["kasa"]
    }

    /// The URI without the password: `kasa://user@host:port/path`.
    fn uri(&self) -> Option<String> {
        let s = self.settings.lock().unwrap();
        let ip = s.ip.as_ref()?;
        let host = if ip.contains(':') && !ip.starts_with('[') {
            format!("[{ip}]")
        } else {
            ip.clone()
        };
        Some(format!(
            "kasa://{}@{host}:{}{}",
            percent_encode(&s.username),
            s.port,
            s.path
        ))
    }

    fn set_uri(&self, uri: &str) -> Result<(), glib::Error> {
        let parsed = parse_uri(uri).map_err(|e| glib::Error::new(gst::URIError::BadUri, &e))?;
        let mut s = self.settings.lock().unwrap();
        s.ip = Some(parsed.host);
        s.port = parsed.port.map(u32::from).unwrap_or(DEFAULT_PORT);
        if let Some(p) = parsed.path {
            s.path = p;
        }
        if let Some(u) = parsed.username {
            s.username = u;
        }
        if let Some(p) = parsed.password {
            s.password = p;
            s.password_set = true;
        }
        Ok(())
    }
}

fn video_caps() -> gst::Caps {
    gst::Caps::builder("video/x-h264")
        .field("stream-format", "byte-stream")
        .field("alignment", "au")
        .build()
}

fn audio_caps() -> gst::Caps {
    gst::Caps::builder("audio/x-mulaw")
        .field("rate", 8000i32)
        .field("channels", 1i32)
        .build()
}

/// A `kasa://` URI, split.
#[derive(Debug, PartialEq)]
pub(crate) struct KasaUri {
    pub host: String,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// `kasa://[user[:password]@]host[:port][/path[?query]]`, user and password
/// percent-encoded (`me%40example.com`). Errors never quote the URI: it may hold the
/// password.
pub(crate) fn parse_uri(uri: &str) -> Result<KasaUri, String> {
    let u = cam_session::uri::CamUri::parse(uri)?;
    if u.scheme != "kasa" {
        return Err("not a kasa:// URI".into());
    }
    let (username, password, hostport) = (u.username, u.password, u.hostport.as_str());
    let path = Some(u.rest.as_str()).filter(|p| !p.is_empty());
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let end = v6.find(']').ok_or("unterminated IPv6 address")?;
        let port = v6[end + 1..].strip_prefix(':');
        (v6[..end].to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("no camera address in the URI".into());
    }
    let port = match port {
        Some("") | None => None,
        Some(p) => Some(p.parse::<u16>().map_err(|_| "invalid port in the URI")?),
    };
    let path = path.filter(|p| *p != "/").map(|p| {
        if p.starts_with('?') {
            format!("/https/stream/mixed{p}")
        } else {
            p.to_string()
        }
    });
    Ok(KasaUri {
        host,
        port,
        path,
        username,
        password,
    })
}

impl livesrc::Source for KasaSrc {
    fn check(&self) -> Result<(), gst::StateChangeError> {
        let s = self.settings.lock().unwrap().clone();
        if s.ip.is_none() {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Settings,
                ("No camera address: set the 'ip' property or a kasa:// URI")
            );
            return Err(gst::StateChangeError);
        }
        if let Some(fp) = &s.tls_fingerprint {
            if let Err(e) = fp.parse::<Fingerprint>() {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Settings,
                    ("Invalid tls-fingerprint: {e}")
                );
                return Err(gst::StateChangeError);
            }
        }
        Ok(())
    }

    fn start(&self) -> Result<(), gst::StateChangeError> {
        let mut s = self.settings.lock().unwrap().clone();
        if !s.password_set {
            if let Ok(p) = std::env::var("KASA_PASSWORD") {
                gst::debug!(CAT, imp = self, "password taken from KASA_PASSWORD");
                s.password = Secret::new(p);
            }
        }
        *self.stats.lock().unwrap() = Stats::default();
        let ep = Endpoint {
            host: s.ip.clone().unwrap_or_default(),
            port: s.port as u16,
            path: s.path.clone(),
            username: s.username.clone(),
            password: s.password.clone(),
            fingerprint: s.tls_fingerprint.as_deref().and_then(|f| f.parse().ok()),
            timeout: Duration::from_secs(s.timeout as u64),
            max_part_size: s.max_part_size as usize,
        };
        let element = self.obj().clone();
        let outputs = Outputs::new(element.upcast_ref(), &self.live, s.audio);
        self.live.spawn(self.obj().upcast_ref(), move |cancel| {
            Streamer::new(element.imp(), s, ep, cancel, outputs).run();
        })
    }

    fn stopped(&self) {
        self.stats.lock().unwrap().connected = false;
    }
}

impl KasaSrc {
    fn post(&self, s: gst::Structure) {
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }
}

/// Why a session ended.
enum End {
    Cancelled,
    /// Downstream refused data: stop (flushing/EOS) or fail.
    Flow(gst::FlowError),
    Client(ClientError),
}

/// The streaming thread: connection loop, pad creation, timestamping, pushing.
struct Streamer<'a> {
    imp: &'a KasaSrc,
    settings: Settings,
    ep: Endpoint,
    cancel: Arc<Cancel>,
    outputs: Outputs,
    video_caps: gst::Caps,
    audio_caps: gst::Caps,
    seen_audio: bool,
    need_key: bool,
    discont: [bool; 2],
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    mapper: PtsMapper,
    started: Instant,
    framing_warned: bool,
}

impl<'a> Streamer<'a> {
    fn new(
        imp: &'a KasaSrc,
        settings: Settings,
        ep: Endpoint,
        cancel: Arc<Cancel>,
        outputs: Outputs,
    ) -> Self {
        Streamer {
            imp,
            settings,
            ep,
            cancel,
            outputs,
            video_caps: video_caps(),
            audio_caps: audio_caps(),
            seen_audio: false,
            need_key: true,
            discont: [true, true],
            sps: None,
            pps: None,
            mapper: PtsMapper::new(),
            started: Instant::now(),
            framing_warned: false,
        }
    }

    fn run(&mut self) {
        let imp = self.imp;
        let policy = Policy {
            max_reconnects: self.settings.max_reconnects,
            delay: Duration::from_millis(self.settings.reconnect_delay as u64),
            max_delay: Duration::from_millis(self.settings.max_reconnect_delay as u64),
        };
        let cancel = self.cancel.clone();
        let host = self.ep.host.clone();
        let mut connected_before = false;
        let end = reconnect::run(
            &policy,
            &cancel,
            |p| {
                gst::debug!(
                    CAT,
                    imp = imp,
                    "connecting to {}:{} as {:?}",
                    self.ep.host,
                    self.ep.port,
                    self.ep.username
                );
                match Connection::open(&self.ep, &self.cancel) {
                    Ok(mut conn) => {
                        self.online(&conn, p.failures, p.offline_since, connected_before);
                        if connected_before {
                            imp.stats.lock().unwrap().reconnects += 1;
                        }
                        connected_before = true;
                        let end = self.session(&mut conn);
                        drop(conn);
                        self.cancel.clear_abort();
                        match end {
                            End::Cancelled => Attempt::Stop,
                            End::Flow(gst::FlowError::Flushing)
                            | End::Flow(gst::FlowError::Eos) => {
                                gst::debug!(CAT, imp = imp, "downstream stopped the stream");
                                Attempt::Stop
                            }
                            End::Flow(err) => {
                                gst::element_imp_error!(
                                    imp,
                                    gst::StreamError::Failed,
                                    ("Internal data stream error"),
                                    ["streaming stopped, reason {err:?}"]
                                );
                                self.send_eos();
                                Attempt::Stop
                            }
                            // A connection was made: the count and the backoff start over.
                            End::Client(e) => Attempt::Retry {
                                reason: e,
                                progress: true,
                            },
                        }
                    }
                    Err(ClientError::Cancelled) => Attempt::Stop,
                    Err(e) if e.is_fatal() => {
                        self.fatal(&e);
                        Attempt::Stop
                    }
                    Err(e) => Attempt::Retry {
                        reason: e,
                        progress: false,
                    },
                }
            },
            |o| {
                imp.stats.lock().unwrap().connected = false;
                let (reason, attempt) = (o.reason, o.attempt);
                gst::info!(
                    CAT,
                    imp = imp,
                    "camera offline ({}): {reason}; attempt {attempt}, retrying in {} ms",
                    reason.step().as_str(),
                    o.retry_in.as_millis()
                );
                if attempt == 1 {
                    gst::element_imp_warning!(
                        imp,
                        gst::ResourceError::Read,
                        ("Camera {host} offline: {reason}; reconnecting"),
                        ["step: {}", reason.step().as_str()]
                    );
                }
                imp.post(
                    gst::Structure::builder("kasasrc-offline")
                        .field("reason", reason.to_string())
                        .field("step", reason.step().as_str())
                        .field("attempt", attempt)
                        .field("retry-in-ms", o.retry_in.as_millis() as u64)
                        .field("offline-for-ms", o.offline_for.as_millis() as u64)
                        .build(),
                );
                true
            },
        );
        if let reconnect::End::GaveUp { reason, .. } = end {
            imp.stats.lock().unwrap().connected = false;
            let max = self.settings.max_reconnects;
            // max 0: under camsrc (its supervisor reconnects), or asked not to.
            let what = if max == 0 {
                "connection lost (max-reconnects=0: no reconnection here)".to_string()
            } else {
                format!("unreachable: gave up after {max} reconnection attempts")
            };
            gst::element_imp_error!(
                imp,
                gst::ResourceError::OpenRead,
                ("Camera {} {what}", self.ep.host),
                ["last error ({}): {reason}", reason.step().as_str()]
            );
            self.send_eos();
        }
        gst::debug!(CAT, imp = imp, "streaming thread done");
    }

    fn online(
        &mut self,
        conn: &Connection,
        attempt: u32,
        offline_since: Option<Instant>,
        reconnect: bool,
    ) {
        let imp = self.imp;
        let fp = conn
            .tls_info
            .fingerprint
            .map(|f| f.to_string())
            .unwrap_or_default();
        gst::info!(
            CAT,
            imp = imp,
            "connected to {}:{} ({} {}, certificate SHA-256 {fp})",
            self.ep.host,
            self.ep.port,
            conn.tls_info.version,
            conn.tls_info.cipher
        );
        {
            let mut st = imp.stats.lock().unwrap();
            st.connected = true;
            st.tls_version = conn.tls_info.version.clone();
            st.tls_cipher = conn.tls_info.cipher.clone();
            st.fingerprint = fp.clone();
        }
        imp.post(
            gst::Structure::builder("kasasrc-online")
                .field("reconnect", reconnect)
                .field("attempt", attempt)
                .field(
                    "offline-for-ms",
                    offline_since
                        .map(|t| t.elapsed().as_millis() as u64)
                        .unwrap_or(0),
                )
                .field("tls-version", &conn.tls_info.version)
                .field("tls-cipher", &conn.tls_info.cipher)
                .field("tls-fingerprint", fp)
                .build(),
        );
        self.mapper.new_session();
        self.need_key = true;
        self.discont = [true, true];
        self.framing_warned = false;
    }

    fn fatal(&self, e: &ClientError) {
        let imp = self.imp;
        let step = e.step().as_str();
        match e {
            ClientError::Unauthorized { .. } => gst::element_imp_error!(
                imp,
                gst::ResourceError::NotAuthorized,
                ("{e}"),
                ["step: {step}"]
            ),
            ClientError::NotFound(_) => {
                gst::element_imp_error!(
                    imp,
                    gst::ResourceError::NotFound,
                    ("{e}"),
                    ["step: {step}"]
                )
            }
            _ => gst::element_imp_error!(
                imp,
                gst::ResourceError::OpenRead,
                ("{e}"),
                ["step: {step}"]
            ),
        }
        self.send_eos();
    }

    fn send_eos(&self) {
        self.outputs.eos();
    }

    fn session(&mut self, conn: &mut Connection) -> End {
        let mut last_bytes = 0;
        loop {
            let ev = match conn.next_part() {
                Ok(ev) => ev,
                Err(_) if self.cancel.is_cancelled() => return End::Cancelled,
                Err(e) => return End::Client(e),
            };
            {
                let mut st = self.imp.stats.lock().unwrap();
                st.bytes += conn.bytes - last_bytes;
                st.window_bytes += conn.bytes - last_bytes;
            }
            last_bytes = conn.bytes;
            let res = match ev {
                Ok(part) => self.handle_part(part),
                Err(framing) => {
                    self.imp.stats.lock().unwrap().corrupt += 1;
                    gst::warning!(CAT, imp = self.imp, "framing: {framing}; resynchronising");
                    if !self.framing_warned {
                        self.framing_warned = true;
                        gst::element_imp_warning!(
                            self.imp,
                            gst::StreamError::Demux,
                            ("Camera stream damaged (framing): {framing}"),
                            ["skipping to the next part; further damage is counted in stats.corrupt"]
                        );
                    }
                    // The damaged part may have been a reference frame.
                    self.need_key = true;
                    Ok(())
                }
            };
            if let Err(e) = res {
                return End::Flow(e);
            }
        }
    }

    fn running_time(&self) -> u64 {
        self.imp
            .obj()
            .current_running_time()
            .map(|t| t.nseconds())
            .unwrap_or_else(|| self.started.elapsed().as_nanos() as u64)
    }

    fn handle_part(&mut self, part: Part) -> Result<(), gst::FlowError> {
        let playing = self.imp.live.is_playing();
        match part.kind {
            PartKind::Video => self.handle_video(part, playing),
            PartKind::Audio => {
                if !self.seen_audio {
                    gst::debug!(
                        CAT,
                        imp = self.imp,
                        "camera sends audio: {}",
                        part.content_type
                    );
                }
                self.seen_audio = true;
                self.imp.stats.lock().unwrap().audio_parts += 1;
                if !self.settings.audio {
                    return Ok(());
                }
                if !playing || self.need_key {
                    // Audio starts with the first pushed key frame, to start in sync;
                    // that it comes decides the pads all the same.
                    self.outputs.seen(Kind::Audio, &self.audio_caps);
                    return Ok(());
                }
                let m = self
                    .mapper
                    .map(Stream::Audio, part.timestamp, self.running_time());
                let mut buf = gst::Buffer::from_slice(part.body);
                {
                    let b = buf.get_mut().unwrap();
                    b.set_pts(gst::ClockTime::from_nseconds(m.pts));
                    let samples = b.size() as u64;
                    b.set_duration(gst::ClockTime::from_nseconds(
                        samples * 1_000_000_000 / 8000,
                    ));
                    if std::mem::take(&mut self.discont[1]) || m.discont {
                        b.set_flags(gst::BufferFlags::DISCONT);
                    }
                }
                if let Pushed::Overflow(n) = self.outputs.push(Kind::Audio, &self.audio_caps, buf) {
                    self.imp.stats.lock().unwrap().dropped += n as u64;
                }
                self.flow()
            }
            PartKind::Other => {
                gst::log!(
                    CAT,
                    imp = self.imp,
                    "ignoring part of type {:?}",
                    part.content_type
                );
                Ok(())
            }
        }
    }

    fn handle_video(&mut self, part: Part, playing: bool) -> Result<(), gst::FlowError> {
        let info = AccessUnitInfo::of(&part.body);
        if info.sps || info.pps {
            let (sps, pps) = parameter_sets(&part.body);
            self.sps = sps.or(self.sps.take());
            self.pps = pps.or(self.pps.take());
        }
        if !info.vcl {
            // Parameter sets on their own: kept and put in front of the next IDR, so
            // every buffer is one whole access unit.
            return Ok(());
        }
        let have_params = (info.sps || self.sps.is_some()) && (info.pps || self.pps.is_some());
        if self.need_key && !(info.idr && have_params) {
            self.imp.stats.lock().unwrap().dropped += 1;
            return Ok(());
        }
        let data = if info.idr && !(info.sps && info.pps) {
            let mut v = Vec::with_capacity(part.body.len() + 64);
            for ps in [&self.sps, &self.pps].into_iter().flatten() {
                v.extend_from_slice(&[0, 0, 0, 1]);
                v.extend_from_slice(ps);
            }
            v.extend_from_slice(&part.body);
            Bytes::from(v)
        } else {
            part.body
        };
        self.imp.stats.lock().unwrap().count_frame();
        if !playing {
            // A live source drops what it captures while paused. A key frame seen then
            // is enough to expose the pads, so they can be linked while paused.
            self.need_key = true;
            self.imp.stats.lock().unwrap().dropped += 1;
            if info.idr {
                self.outputs.seen(Kind::Video, &self.video_caps);
            }
            return Ok(());
        }
        let pts = self
            .mapper
            .map(Stream::Video, part.timestamp, self.running_time())
            .pts;
        self.need_key = false;
        let mut buf = gst::Buffer::from_slice(data);
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_nseconds(pts));
            b.set_dts(gst::ClockTime::from_nseconds(pts));
            if !info.idr {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
            if std::mem::take(&mut self.discont[0]) {
                b.set_flags(gst::BufferFlags::DISCONT);
            }
        }
        gst::trace!(CAT, imp = self.imp, "pushing video {buf:?}");
        if let Pushed::Overflow(n) = self.outputs.push(Kind::Video, &self.video_caps, buf) {
            // Downstream stuck for seconds: what was queued is gone, restart at a key frame.
            gst::warning!(CAT, imp = self.imp, "video queue full, dropped {n} frames");
            self.imp.stats.lock().unwrap().dropped += n as u64;
            self.need_key = true;
        }
        self.flow()
    }

    /// The combined flow of the pads: NOT_LINKED only when every pad is unlinked.
    fn flow(&mut self) -> Result<(), gst::FlowError> {
        self.outputs.flow().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_forms() {
        let u = parse_uri("kasa://me%40example.com:p%3Ass@192.168.1.209").unwrap();
        assert_eq!(u.host, "192.168.1.209");
        assert_eq!(u.port, None);
        assert_eq!(u.username.as_deref(), Some("me@example.com"));
        assert_eq!(u.password.unwrap().expose(), "p:ss");
        let u = parse_uri("KASA://[::1]:1234/https/stream/mixed?video=h264").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", Some(1234)));
        assert_eq!(u.path.as_deref(), Some("/https/stream/mixed?video=h264"));
        assert!(u.username.is_none());
        let u = parse_uri("kasa://admin@cam.local:19443/").unwrap();
        assert_eq!(u.path, None);
        assert!(parse_uri("http://x").is_err());
        assert!(parse_uri("kasa://u:secret@").is_err());
        assert!(parse_uri("kasa://h:notaport").is_err());
        let e = parse_uri("kasa://u:s%zzecret@h").unwrap_err();
        assert!(!e.contains("secret"));
    }
}
