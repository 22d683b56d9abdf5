//! The `camsrc` element.
//!
//! The camera is read by an *inner pipeline* that camsrc owns, separate from the
//! pipeline camsrc lives in: `source ! parsebin ! h264parse config-interval=-1 !
//! appsink` (and an audio branch). A supervisor thread watches it and, on an error, an
//! EOS, or no buffer for `stall-timeout`, throws the whole inner pipeline away and
//! builds a new one after a capped exponential backoff. The outer pipeline never sees
//! any of that: camsrc's own pads stay, buffers are re-timestamped onto one monotonic
//! timeline, the first buffer after a restart is DISCONT and preceded by a GAP event
//! covering the outage. See `docs/camsrc.md`.

use crate::uri::CamUri;
use cam_session::timing::Backoff;
use cam_session::Cancel;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_cam_common::livesrc::{self, Handled, Kind, LiveSrc};
use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "camsrc",
        gst::DebugColorFlags::empty(),
        Some("Camera source that restarts its inner source"),
    )
});

const DEFAULT_STALL_TIMEOUT_S: u32 = 10;
const DEFAULT_RESTART_DELAY_MS: u32 = 500;
/// A refused connection to a LAN camera costs nothing: retry often enough that a
/// rebooted camera is back within a few seconds of answering.
const DEFAULT_MAX_RESTART_DELAY_MS: u32 = 5000;
const DEFAULT_MAX_RESTARTS: i32 = -1;
const DEFAULT_LATENCY_MS: u32 = 200;
const DEFAULT_RTSP_TRANSPORT: &str = "tcp";
const DEFAULT_AUDIO: bool = true;
/// How often the supervisor looks at the inner pipeline.
const TICK: Duration = Duration::from_millis(50);
/// Window for the fps and bitrate figures in `stats`.
const RATE_WINDOW: Duration = Duration::from_secs(3);
/// The least time a new session gets for its first buffer (see `stall-timeout`).
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Without audio this long after the first buffer, the camera has none: expose video.
const AUDIO_GRACE: Duration = Duration::from_secs(1);
/// Buffers held while deciding the pads (~1 s of video and audio).
const MAX_HELD: usize = 128;

#[derive(Clone)]
struct Settings {
    uri: Option<CamUri>,
    username: Option<String>,
    password: Option<String>,
    stall_timeout: u32,
    restart_delay: u32,
    max_restart_delay: u32,
    max_restarts: i32,
    latency: u32,
    rtsp_transport: String,
    audio: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            uri: None,
            username: None,
            password: None,
            stall_timeout: DEFAULT_STALL_TIMEOUT_S,
            restart_delay: DEFAULT_RESTART_DELAY_MS,
            max_restart_delay: DEFAULT_MAX_RESTART_DELAY_MS,
            max_restarts: DEFAULT_MAX_RESTARTS,
            latency: DEFAULT_LATENCY_MS,
            rtsp_transport: DEFAULT_RTSP_TRANSPORT.into(),
            audio: DEFAULT_AUDIO,
        }
    }
}

impl Settings {
    /// Credentials: properties first, then the URI, then `CAMSRC_PASSWORD`.
    fn credentials(&self, uri: &CamUri) -> (Option<String>, Option<String>) {
        let user = self.username.clone().or_else(|| uri.username.clone());
        let pass = self
            .password
            .clone()
            .or_else(|| uri.password.as_ref().map(|p| p.expose().to_string()))
            .or_else(|| std::env::var("CAMSRC_PASSWORD").ok());
        (user, pass)
    }
}

#[derive(Default)]
struct Stats {
    state: &'static str,
    started: Option<Instant>,
    online_since: Option<Instant>,
    restarts: u32,
    last_error: String,
    video_frames: u64,
    audio_buffers: u64,
    bytes: u64,
    /// (arrival, bytes, is_video) over the last [`RATE_WINDOW`].
    recent: VecDeque<(Instant, usize, bool)>,
}

impl Stats {
    fn count(&mut self, now: Instant, bytes: usize, video: bool) {
        if video {
            self.video_frames += 1;
        } else {
            self.audio_buffers += 1;
        }
        self.bytes += bytes as u64;
        self.recent.push_back((now, bytes, video));
        while let Some(&(t, _, _)) = self.recent.front() {
            if now.duration_since(t) > RATE_WINDOW {
                self.recent.pop_front();
            } else {
                break;
            }
        }
    }

    fn to_structure(&self, uri: &str) -> gst::Structure {
        let now = Instant::now();
        let recent: Vec<_> = self
            .recent
            .iter()
            .filter(|(t, _, _)| now.duration_since(*t) <= RATE_WINDOW)
            .collect();
        let secs = RATE_WINDOW.as_secs_f64();
        let frames = recent.iter().filter(|(_, _, v)| *v).count();
        let bits: usize = recent.iter().map(|(_, b, _)| b * 8).sum();
        gst::Structure::builder("camsrc-stats")
            .field("uri", uri)
            .field(
                "state",
                if self.state.is_empty() {
                    "stopped"
                } else {
                    self.state
                },
            )
            .field(
                "uptime",
                self.online_since
                    .map(|t| t.elapsed().as_secs_f64())
                    .unwrap_or(0.0),
            )
            .field(
                "running-time",
                self.started
                    .map(|t| t.elapsed().as_secs_f64())
                    .unwrap_or(0.0),
            )
            .field("restarts", self.restarts)
            .field("last-error", &self.last_error)
            .field("fps", frames as f64 / secs)
            .field("bitrate", (bits as f64 / secs) as u64)
            .field("video-frames", self.video_frames)
            .field("audio-buffers", self.audio_buffers)
            .field("bytes", self.bytes)
            .build()
    }
}

/// Where buffers go: the timeline camsrc's pads share across sessions (the pads
/// themselves are the [`LiveSrc`]'s).
struct Output {
    /// The caps each pad carries now.
    caps: [Option<gst::Caps>; 2],
    /// Last PTS and end (PTS + duration) pushed per pad, on camsrc's timeline.
    last_pts: [Option<u64>; 2],
    last_end: [Option<u64>; 2],
    /// Pads decided: buffers go straight out. Before that they are held.
    decided: bool,
    held: Vec<(Kind, gst::Sample, Instant)>,
    /// The current inner session.
    session: u64,
    /// inner PTS + offset = camsrc PTS, fixed at the session's first buffer.
    offset: Option<i128>,
    /// Video started (first key frame pushed) in this session.
    video_started: bool,
    /// This session has a video / audio branch.
    branches: [bool; 2],
    /// First buffer of the session per pad still to come (DISCONT, GAP).
    first: [bool; 2],
    last_arrival: Option<Instant>,
    /// The last video buffer from the inner pipeline: audio alone is not a working camera.
    last_video: Option<Instant>,
}

impl Output {
    fn new() -> Self {
        Output {
            caps: [None, None],
            last_pts: [None, None],
            last_end: [None, None],
            decided: false,
            held: Vec::new(),
            session: 0,
            offset: None,
            video_started: false,
            branches: [false, false],
            first: [true, true],
            last_arrival: None,
            last_video: None,
        }
    }
}

pub struct CamSrc {
    settings: Mutex<Settings>,
    stats: Mutex<Stats>,
    output: Mutex<Output>,
    /// The supervisor thread (its backoff waits end at once when stopped), the pads,
    /// the playing flag.
    live: LiveSrc,
}

#[glib::object_subclass]
impl ObjectSubclass for CamSrc {
    const NAME: &'static str = "GstCamSrc";
    type Type = super::CamSrc;
    type ParentType = gst::Element;
    type Interfaces = (gst::URIHandler,);

    fn new() -> Self {
        CamSrc {
            settings: Mutex::new(Settings::default()),
            stats: Mutex::new(Stats::default()),
            output: Mutex::new(Output::new()),
            live: LiveSrc::new("camsrc"),
        }
    }
}

impl ObjectImpl for CamSrc {
    fn constructed(&self) {
        self.parent_constructed();
        self.obj().set_element_flags(gst::ElementFlags::SOURCE);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("uri")
                    .nick("URI")
                    .blurb("Camera URI: rtsp://user:pass@host:554/stream1 (Tapo and other RTSP cameras), kasa://user:pass@host, tutk://user:pass@UID. Read back without the password")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("username")
                    .nick("User name")
                    .blurb("Camera account user name (overrides the one in the URI)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("password")
                    .nick("Password")
                    .blurb("Camera account password (write-only; overrides the URI; else CAMSRC_PASSWORD from the environment). Never logged")
                    .write_only()
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("stall-timeout")
                    .nick("Stall timeout")
                    .blurb("Seconds without any buffer from the camera before the source is rebuilt; a new session gets at least 5 s for its first buffer")
                    .minimum(1)
                    .maximum(3600)
                    .default_value(DEFAULT_STALL_TIMEOUT_S)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("restart-delay")
                    .nick("Restart delay")
                    .blurb("Minimum milliseconds between connection attempts after a failure; doubles after each failed attempt")
                    .maximum(600_000)
                    .default_value(DEFAULT_RESTART_DELAY_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-restart-delay")
                    .nick("Maximum restart delay")
                    .blurb("Cap of the restart backoff, in milliseconds")
                    .maximum(3_600_000)
                    .default_value(DEFAULT_MAX_RESTART_DELAY_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("max-restarts")
                    .nick("Maximum restarts")
                    .blurb("Restarts in a row without data before giving up with an error (-1 = never give up)")
                    .minimum(-1)
                    .default_value(DEFAULT_MAX_RESTARTS)
                    .mutable_ready()
                    .build(),
                // kasasrc's and tutksrc's names for the same four settings, so that one
                // vocabulary works on the three sources (docs/camsrc.md has the table).
                glib::ParamSpecUInt::builder("timeout")
                    .nick("Timeout")
                    .blurb("Same as stall-timeout (kasasrc's and tutksrc's name): seconds without data before the source is rebuilt")
                    .minimum(1)
                    .maximum(3600)
                    .default_value(DEFAULT_STALL_TIMEOUT_S)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("reconnect-delay")
                    .nick("Reconnect delay")
                    .blurb("Same as restart-delay (kasasrc's and tutksrc's name): milliseconds before the first new attempt, doubled per failure")
                    .maximum(600_000)
                    .default_value(DEFAULT_RESTART_DELAY_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-reconnect-delay")
                    .nick("Maximum reconnect delay")
                    .blurb("Same as max-restart-delay (kasasrc's and tutksrc's name): cap of the backoff, in milliseconds")
                    .maximum(3_600_000)
                    .default_value(DEFAULT_MAX_RESTART_DELAY_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("max-reconnects")
                    .nick("Maximum reconnects")
                    .blurb("Same as max-restarts (kasasrc's and tutksrc's name): attempts in a row without data before an error (-1 = never give up)")
                    .minimum(-1)
                    .default_value(DEFAULT_MAX_RESTARTS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("latency")
                    .nick("Latency")
                    .blurb("Latency in milliseconds: the RTSP jitter buffer, and what camsrc reports to the pipeline")
                    .maximum(10_000)
                    .default_value(DEFAULT_LATENCY_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("rtsp-transport")
                    .nick("RTSP transport")
                    .blurb("RTSP lower transport: tcp (interleaved, works through NAT and firewalls), udp, or auto (UDP then TCP)")
                    .default_value(Some(DEFAULT_RTSP_TRANSPORT))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("audio")
                    .nick("Audio")
                    .blurb("Expose the camera's audio on an 'audio' pad when it has one")
                    .default_value(DEFAULT_AUDIO)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("state (connecting/online/offline/stopped), uptime (s online), running-time, restarts, last-error, fps, bitrate (bit/s), video-frames, audio-buffers, bytes")
                    .read_only()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "uri" => {
                let v: Option<String> = value.get().unwrap();
                drop(s);
                if let Err(e) = self.set_uri_str(v.as_deref()) {
                    gst::warning!(CAT, imp = self, "{e}");
                }
            }
            "username" => {
                s.username = value
                    .get::<Option<String>>()
                    .unwrap()
                    .filter(|u| !u.is_empty())
            }
            "password" => s.password = value.get().unwrap(),
            "stall-timeout" | "timeout" => s.stall_timeout = value.get().unwrap(),
            "restart-delay" | "reconnect-delay" => s.restart_delay = value.get().unwrap(),
            "max-restart-delay" | "max-reconnect-delay" => {
                s.max_restart_delay = value.get().unwrap()
            }
            "max-restarts" | "max-reconnects" => s.max_restarts = value.get().unwrap(),
            "latency" => s.latency = value.get().unwrap(),
            "rtsp-transport" => {
                let v: Option<String> = value.get().unwrap();
                match v.as_deref() {
                    Some(t @ ("tcp" | "udp" | "auto")) => s.rtsp_transport = t.into(),
                    other => gst::warning!(
                        CAT,
                        imp = self,
                        "rtsp-transport must be tcp, udp or auto, not {other:?}; keeping {}",
                        s.rtsp_transport
                    ),
                }
            }
            "audio" => s.audio = value.get().unwrap(),
            _ => unreachable!("no property {}", pspec.name()),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "uri" => s.uri.as_ref().map(CamUri::redacted).to_value(),
            "username" => s.username.to_value(),
            "password" => None::<String>.to_value(),
            "stall-timeout" | "timeout" => s.stall_timeout.to_value(),
            "restart-delay" | "reconnect-delay" => s.restart_delay.to_value(),
            "max-restart-delay" | "max-reconnect-delay" => s.max_restart_delay.to_value(),
            "max-restarts" | "max-reconnects" => s.max_restarts.to_value(),
            "latency" => s.latency.to_value(),
            "rtsp-transport" => s.rtsp_transport.to_value(),
            "audio" => s.audio.to_value(),
            "stats" => {
                let uri = s.uri.as_ref().map(CamUri::redacted).unwrap_or_default();
                drop(s);
                self.stats.lock().unwrap().to_structure(&uri).to_value()
            }
            _ => unreachable!("no property {}", pspec.name()),
        }
    }
}

impl GstObjectImpl for CamSrc {}

impl ElementImpl for CamSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Camera source with restarts",
                "Source/Network",
                "Parsed H.264/H.265 and audio from an RTSP (Tapo), Kasa or TUTK camera; rebuilds the camera source on stalls, errors and EOS while the pipeline keeps running",
                "homecam-gst developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let video = gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build();
            let mut video = video;
            video.merge(
                gst::Caps::builder("video/x-h265")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build(),
            );
            video.merge(gst::Caps::new_empty_simple("image/jpeg"));
            let mut audio = gst::Caps::new_empty();
            for name in [
                "audio/x-alaw",
                "audio/x-mulaw",
                "audio/mpeg",
                "audio/x-opus",
                "audio/x-raw",
            ] {
                audio.merge(gst::Caps::new_empty_simple(name));
            }
            livesrc::templates(&video, &audio)
        });
        TEMPLATES.as_ref()
    }

    /// EOS sent to the pipeline (`gst-launch-1.0 -e`, an application finishing a
    /// recording): stop the camera and end every pad so muxers finalise their files.
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

impl URIHandlerImpl for CamSrc {
    const URI_TYPE: gst::URIType = gst::URIType::Src;

    fn protocols() -> &'static [&'static str] {
        crate::uri::SCHEMES
    }

    fn uri(&self) -> Option<String> {
        self.settings
            .lock()
            .unwrap()
            .uri
            .as_ref()
            .map(CamUri::redacted)
    }

    fn set_uri(&self, uri: &str) -> Result<(), glib::Error> {
        self.set_uri_str(Some(uri))
    }
}

/// Why an inner session ended.
enum Ended {
    Stop,
    /// Restart after this reason.
    Restart(String),
    /// Give up: an error no restart can fix (bad credentials, wrong path).
    Fatal(gst::ResourceError, String),
}

impl CamSrc {
    fn set_uri_str(&self, uri: Option<&str>) -> Result<(), glib::Error> {
        let parsed =
            match uri {
                None | Some("") => None,
                Some(u) => Some(CamUri::parse(u).map_err(|e| {
                    glib::Error::new(gst::URIError::BadUri, &format!("camsrc: {e}"))
                })?),
            };
        if let Some(p) = &parsed {
            gst::debug!(CAT, imp = self, "uri set to {}", p.redacted());
        }
        self.settings.lock().unwrap().uri = parsed;
        Ok(())
    }
}

impl livesrc::Source for CamSrc {
    fn check(&self) -> Result<(), gst::StateChangeError> {
        if self.settings.lock().unwrap().uri.is_none() {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Settings,
                ("No camera: set the 'uri' property (rtsp://, kasa:// or tutk://)")
            );
            return Err(gst::StateChangeError);
        }
        Ok(())
    }

    fn start(&self) -> Result<(), gst::StateChangeError> {
        let settings = self.settings.lock().unwrap().clone();
        {
            let mut st = self.stats.lock().unwrap();
            *st = Stats::default();
            st.state = "connecting";
            st.started = Some(Instant::now());
        }
        *self.output.lock().unwrap() = Output::new();
        let element = self.obj().clone();
        self.live.spawn(self.obj().upcast_ref(), move |control| {
            element.imp().supervise(settings, &control)
        })
    }

    fn stopped(&self) {
        self.stats.lock().unwrap().state = "stopped";
    }
}

impl CamSrc {
    fn post(&self, s: gst::Structure) {
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }

    /// The supervisor: build, watch, tear down, back off, again.
    fn supervise(&self, settings: Settings, control: &Cancel) {
        let Some(uri) = settings.uri.clone() else {
            return;
        };
        let redacted = uri.redacted();
        let mut backoff = Backoff::new(
            Duration::from_millis(settings.restart_delay as u64),
            Duration::from_millis(settings.max_restart_delay.max(settings.restart_delay) as u64),
        );
        let mut failures: u32 = 0;
        let mut offline_since: Option<Instant> = None;
        let mut reapers: Vec<std::sync::mpsc::Receiver<()>> = Vec::new();
        let mut session: u64 = 0;
        loop {
            session += 1;
            {
                let mut o = self.output.lock().unwrap();
                o.session = session;
                o.offset = None;
                o.video_started = false;
                o.branches = [false, false];
                o.first = [true, true];
                o.last_arrival = None;
                o.last_video = None;
                o.held.clear();
            }
            self.stats.lock().unwrap().state = "connecting";
            gst::debug!(CAT, imp = self, "session {session}: opening {redacted}");
            let attempt_started = Instant::now();
            let ended = match self.build_inner(&settings, &uri, session) {
                Err(e) => Ended::Fatal(gst::ResourceError::NotFound, e),
                Ok(inner) => {
                    let ended = self.watch(
                        &inner,
                        &settings,
                        session,
                        control,
                        &mut offline_since,
                        &mut backoff,
                        &mut failures,
                    );
                    // Tear down off this thread: an RTSP TEARDOWN to a frozen camera may
                    // take a while, and the next session should not wait for it.
                    let (tx, rx) = std::sync::mpsc::channel();
                    let _ = std::thread::Builder::new()
                        .name("camsrc-teardown".into())
                        .spawn(move || {
                            let _ = inner.set_state(gst::State::Null);
                            let _ = tx.send(());
                        });
                    reapers.push(rx);
                    ended
                }
            };
            reapers.retain(|r| matches!(r.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty)));
            match ended {
                Ended::Stop => break,
                Ended::Fatal(kind, msg) => {
                    {
                        let mut st = self.stats.lock().unwrap();
                        st.last_error = msg.clone();
                        st.state = "offline";
                    }
                    gst::element_imp_error!(self, kind, ("{msg}"), ["camera {redacted}"]);
                    break;
                }
                Ended::Restart(reason) => {
                    failures += 1;
                    if offline_since.is_none() {
                        offline_since = Some(Instant::now());
                    }
                    // Attempts start at most every `delay`: one that already waited
                    // (a camera that accepts but does not answer) is retried at once,
                    // so a camera coming back is picked up by a pending attempt.
                    let delay = backoff
                        .next_delay()
                        .saturating_sub(attempt_started.elapsed());
                    {
                        let mut st = self.stats.lock().unwrap();
                        st.last_error = reason.clone();
                        st.state = "offline";
                        st.online_since = None;
                    }
                    gst::warning!(
                        CAT,
                        imp = self,
                        "camera {redacted} offline: {reason}; restart {failures} in {} ms",
                        delay.as_millis()
                    );
                    // One offline message when the camera goes away, then one retry
                    // message per failed attempt.
                    self.post(
                        gst::Structure::builder(if failures == 1 {
                            "camsrc-offline"
                        } else {
                            "camsrc-retry"
                        })
                        .field("uri", &redacted)
                        .field("reason", &reason)
                        .field("attempt", failures)
                        .field("retry-in-ms", delay.as_millis() as u64)
                        .build(),
                    );
                    if settings.max_restarts >= 0 && failures > settings.max_restarts as u32 {
                        gst::element_imp_error!(
                            self,
                            gst::ResourceError::OpenRead,
                            (
                                "Camera {redacted} still offline after {} restarts: {reason}",
                                settings.max_restarts
                            )
                        );
                        break;
                    }
                    if !control.sleep(delay) {
                        break;
                    }
                    self.stats.lock().unwrap().restarts += 1;
                }
            }
        }
        // Give pending teardowns a moment so sockets close before we return.
        let deadline = Instant::now() + Duration::from_secs(3);
        for r in reapers {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = r.recv_timeout(left);
        }
        gst::debug!(CAT, imp = self, "supervisor done");
    }

    /// Watch one inner pipeline until it ends, stalls, or we are told to stop.
    #[allow(clippy::too_many_arguments)]
    fn watch(
        &self,
        inner: &gst::Pipeline,
        settings: &Settings,
        session: u64,
        control: &Cancel,
        offline_since: &mut Option<Instant>,
        backoff: &mut Backoff,
        failures: &mut u32,
    ) -> Ended {
        let started = Instant::now();
        let stall = Duration::from_secs(settings.stall_timeout as u64);
        // A new session needs the RTSP exchange and the camera's next IDR before its
        // first buffer: with a short stall-timeout on a loaded machine, every attempt
        // failed that way once (a test flake). The first buffer gets at least this.
        let connect = stall.max(MIN_CONNECT_TIMEOUT);
        if let Err(e) = inner.set_state(gst::State::Playing) {
            // The bus holds the reason.
            gst::debug!(CAT, imp = self, "inner pipeline failed to start: {e}");
        }
        let bus = inner.bus().expect("pipeline bus");
        let mut online = false;
        loop {
            if control.is_cancelled() {
                return Ended::Stop;
            }
            if let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(TICK.as_millis() as u64),
                &[
                    gst::MessageType::Error,
                    gst::MessageType::Eos,
                    gst::MessageType::Warning,
                ],
            ) {
                match msg.view() {
                    gst::MessageView::Error(e) => {
                        let err = e.error();
                        // rtspsrc's debug text names the failed step ("Failed to
                        // connect", "Unauthorized"); its location holds no credentials.
                        let detail = e
                            .debug()
                            .and_then(|d| d.lines().last().map(|l| l.trim().to_string()))
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default();
                        let text = format!("{} ({}{detail})", err.message(), source_name(&msg));
                        gst::debug!(
                            CAT,
                            imp = self,
                            "inner error: {text}; debug: {:?}",
                            e.debug()
                        );
                        if let Some(
                            kind @ (gst::ResourceError::NotAuthorized
                            | gst::ResourceError::NotFound),
                        ) = err.kind::<gst::ResourceError>()
                        {
                            let what = if kind == gst::ResourceError::NotAuthorized {
                                "Authentication failed (check the camera account user name and password)"
                            } else {
                                "Stream not found on the camera (check the path, e.g. /stream1)"
                            };
                            return Ended::Fatal(kind, format!("{what}: {text}"));
                        }
                        return Ended::Restart(format!("error: {text}"));
                    }
                    gst::MessageView::Eos(_) => {
                        return Ended::Restart("end of stream from the camera".into())
                    }
                    gst::MessageView::Warning(w) => {
                        gst::debug!(
                            CAT,
                            imp = self,
                            "inner warning: {} ({})",
                            w.error().message(),
                            source_name(&msg)
                        );
                    }
                    _ => {}
                }
            }
            let (last, last_video) = {
                let o = self.output.lock().unwrap();
                (o.last_arrival, o.last_video)
            };
            let now = Instant::now();
            match last {
                Some(t) => {
                    if !online {
                        online = true;
                        self.went_online(session, offline_since.take(), *failures);
                        backoff.reset();
                        *failures = 0;
                    }
                    if now.duration_since(t) > stall {
                        return Ended::Restart(format!(
                            "stall: no data for {} s",
                            settings.stall_timeout
                        ));
                    }
                    // Audio flowing without video is a broken session too (seen in
                    // tests: an RTSP session whose video stream never started while
                    // its audio ran for 20 s).
                    let (since, limit) = match last_video {
                        Some(v) => (v, stall),
                        None => (started, connect),
                    };
                    let audio_flows = now.duration_since(t) < Duration::from_secs(1);
                    if audio_flows && now.duration_since(since) > limit {
                        return Ended::Restart(format!(
                            "no video for {} s while audio flows",
                            limit.as_secs()
                        ));
                    }
                }
                None => {
                    if now.duration_since(started) > connect {
                        return Ended::Restart(format!(
                            "no data within {} s of connecting",
                            connect.as_secs()
                        ));
                    }
                }
            }
            // Downstream refused data for good.
            let flows: Vec<_> = [Kind::Video, Kind::Audio]
                .into_iter()
                .filter_map(|k| self.live.pads().get(k))
                .map(|q| q.flow())
                .collect();
            if let Some(Err(e)) = flows.iter().find(|f| {
                matches!(
                    f,
                    Err(gst::FlowError::Error | gst::FlowError::NotNegotiated)
                )
            }) {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ("Downstream refused the camera's data: {e:?}")
                );
                return Ended::Stop;
            }
        }
    }

    fn went_online(&self, session: u64, offline_since: Option<Instant>, attempts: u32) {
        let redacted = self.obj().uri().map(|u| u.to_string()).unwrap_or_default();
        let down_ms = offline_since
            .map(|t| t.elapsed().as_millis() as u64)
            .unwrap_or(0);
        {
            let mut st = self.stats.lock().unwrap();
            st.state = "online";
            st.online_since = Some(Instant::now());
        }
        gst::info!(
            CAT,
            imp = self,
            "camera {redacted} online (session {session}, offline for {down_ms} ms)"
        );
        self.post(
            gst::Structure::builder("camsrc-online")
                .field("uri", &redacted)
                .field("session", session)
                .field("restart", session > 1)
                .field("attempts", attempts)
                .field("offline-for-ms", down_ms)
                .build(),
        );
    }

    /// `source ! parsebin ! (h26xparse config-interval=-1 !) appsink` for each stream.
    fn build_inner(
        &self,
        settings: &Settings,
        uri: &CamUri,
        session: u64,
    ) -> Result<gst::Pipeline, String> {
        let pipeline = gst::Pipeline::with_name(&format!("camsrc-inner{session}"));
        let (user, pass) = settings.credentials(uri);
        let src = if uri.is_rtsp() {
            let src = gst::ElementFactory::make("rtspsrc")
                .property("location", uri.bare())
                .property("latency", settings.latency)
                .build()
                .map_err(|_| "rtspsrc is missing: install gstreamer1.0-plugins-good".to_string())?;
            if let Some(u) = &user {
                src.set_property("user-id", u);
            }
            if let Some(p) = &pass {
                src.set_property("user-pw", p);
            }
            let protocols = match settings.rtsp_transport.as_str() {
                "udp" => "udp",
                "auto" => "udp+udp-mcast+tcp",
                _ => "tcp",
            };
            src.set_property_from_str("protocols", protocols);
            // A frozen camera must not hold a RTSP request for 20 s.
            src.set_property("tcp-timeout", 1_000_000u64 * settings.stall_timeout as u64);
            let audio = settings.audio;
            // Only audio and video: Tapo's extra m=application track cannot be set up.
            src.connect("select-stream", false, move |args| {
                let caps = args[2].get::<gst::Caps>().ok();
                let media = caps
                    .as_ref()
                    .and_then(|c| c.structure(0))
                    .and_then(|s| s.get::<String>("media").ok())
                    .unwrap_or_default();
                Some((media == "video" || (audio && media == "audio")).to_value())
            });
            src
        } else {
            let missing = || {
                let hint = match uri.scheme.as_str() {
                    "kasa" => "kasasrc, from gst-plugin-kasasrc",
                    "tutk" => "tutksrc, from gst-plugin-tutksrc",
                    _ => "the plugin for this camera kind",
                };
                format!(
                    "No GStreamer source handles {}:// URIs: install {hint} (gst-inspect-1.0 shows what is installed)",
                    uri.scheme
                )
            };
            let src = gst::Element::make_from_uri(gst::URIType::Src, &uri.bare(), None)
                .map_err(|_| missing())?;
            if src.is::<super::CamSrc>() {
                return Err(missing());
            }
            for (name, value) in [("username", &user), ("password", &pass)] {
                if let Some(v) = value {
                    if src.find_property(name).is_some() {
                        src.set_property(name, v);
                    } else {
                        return Err(format!(
                            "{} has no '{name}' property to take the credentials",
                            src.factory()
                                .map(|f| f.name().to_string())
                                .unwrap_or_default()
                        ));
                    }
                }
            }
            if src.find_property("audio").is_some() {
                src.set_property("audio", settings.audio);
            }
            // One supervisor: camsrc alone decides when to reconnect (stall-timeout, its
            // backoff). The inner source reports its first failure as an error instead of
            // reconnecting by itself, and its own timeout comes after camsrc's (a
            // session that camsrc restarts must not be restarted again from inside).
            if src.find_property("max-reconnects").is_some() {
                src.set_property("max-reconnects", 0i32);
            }
            if let Some(spec) = src
                .find_property("timeout")
                .and_then(|p| p.downcast::<glib::ParamSpecUInt>().ok())
            {
                let after = settings
                    .stall_timeout
                    .max(MIN_CONNECT_TIMEOUT.as_secs() as u32)
                    + 5;
                src.set_property("timeout", after.min(spec.maximum()));
            }
            src
        };
        pipeline.add(&src).map_err(|e| e.to_string())?;
        let weak = self.obj().downgrade();
        let audio = settings.audio;
        let link = move |src_pad: &gst::Pad| {
            let Some(element) = weak.upgrade() else {
                return;
            };
            let Some(pipeline) = src_pad
                .parent_element()
                .and_then(|e| e.parent())
                .and_then(|p| p.downcast::<gst::Pipeline>().ok())
            else {
                return;
            };
            if let Err(e) = element
                .imp()
                .link_branch(&pipeline, src_pad, session, audio)
            {
                gst::warning!(CAT, obj = element, "cannot handle a camera stream: {e}");
            }
        };
        for pad in src.src_pads() {
            link(&pad);
        }
        src.connect_pad_added(move |_, pad| link(pad));
        Ok(pipeline)
    }

    fn link_branch(
        &self,
        pipeline: &gst::Pipeline,
        src_pad: &gst::Pad,
        session: u64,
        audio: bool,
    ) -> Result<(), String> {
        let parsebin = gst::ElementFactory::make("parsebin")
            .build()
            .map_err(|_| "parsebin is missing: install gstreamer1.0-plugins-base")?;
        pipeline.add(&parsebin).map_err(|e| e.to_string())?;
        let weak = self.obj().downgrade();
        let pl = pipeline.downgrade();
        parsebin.connect_pad_added(move |_, pad| {
            let (Some(element), Some(pipeline)) = (weak.upgrade(), pl.upgrade()) else {
                return;
            };
            if let Err(e) = element.imp().link_tail(&pipeline, pad, session, audio) {
                gst::warning!(CAT, obj = element, "cannot handle a camera stream: {e}");
            }
        });
        parsebin
            .sync_state_with_parent()
            .map_err(|e| e.to_string())?;
        src_pad
            .link(&parsebin.static_pad("sink").unwrap())
            .map_err(|e| format!("link to parsebin: {e:?}"))?;
        Ok(())
    }

    fn link_tail(
        &self,
        pipeline: &gst::Pipeline,
        pad: &gst::Pad,
        session: u64,
        audio: bool,
    ) -> Result<(), String> {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let name = caps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let make = |f: &str| {
            gst::ElementFactory::make(f)
                .build()
                .map_err(|_| format!("{f} is missing (gstreamer1.0-plugins-bad/-good/-base)"))
        };
        let kind = if name.starts_with("video/") || name == "image/jpeg" {
            Kind::Video
        } else if name.starts_with("audio/") && audio {
            Kind::Audio
        } else {
            gst::debug!(CAT, imp = self, "ignoring stream {name}");
            let sink = make("fakesink")?;
            sink.set_property("sync", false);
            pipeline.add(&sink).map_err(|e| e.to_string())?;
            sink.sync_state_with_parent().map_err(|e| e.to_string())?;
            pad.link(&sink.static_pad("sink").unwrap())
                .map_err(|e| format!("{e:?}"))?;
            return Ok(());
        };
        let mut chain: Vec<gst::Element> = Vec::new();
        let parser = match name.as_str() {
            "video/x-h264" => Some("h264parse"),
            "video/x-h265" => Some("h265parse"),
            _ => None,
        };
        if let Some(p) = parser {
            let parse = make(p)?;
            // SPS/PPS (and VPS) before every IDR, whatever the camera or SDP did.
            parse.set_property("config-interval", -1i32);
            chain.push(parse);
            let filter = make("capsfilter")?;
            filter.set_property(
                "caps",
                gst::Caps::builder(name.as_str())
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build(),
            );
            chain.push(filter);
        }
        let appsink = gst_app::AppSink::builder()
            .sync(false)
            .async_(false)
            .max_buffers(64)
            .drop(true)
            .build();
        let weak = self.obj().downgrade();
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(element) = weak.upgrade() {
                        element.imp().on_sample(session, kind, sample);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        chain.push(appsink.upcast());
        pipeline.add_many(&chain).map_err(|e| e.to_string())?;
        gst::Element::link_many(&chain).map_err(|e| e.to_string())?;
        for e in &chain {
            e.sync_state_with_parent().map_err(|e| e.to_string())?;
        }
        pad.link(&chain[0].static_pad("sink").unwrap())
            .map_err(|e| format!("link {name}: {e:?}"))?;
        let mut o = self.output.lock().unwrap();
        if o.session == session {
            o.branches[kind as usize] = true;
        }
        Ok(())
    }

    /// A buffer from the inner pipeline. Until the pads are decided (both kinds seen,
    /// or [`AUDIO_GRACE`] passed), buffers are held, so that every pad is added before
    /// any data flows: muxers write their headers once.
    fn on_sample(&self, session: u64, kind: Kind, sample: gst::Sample) {
        let Some(size) = sample.buffer().map(|b| b.size()) else {
            return;
        };
        let now = Instant::now();
        let mut o = self.output.lock().unwrap();
        if o.session != session {
            return; // a pipeline being torn down
        }
        o.last_arrival = Some(now);
        if kind == Kind::Video {
            o.last_video = Some(now);
        }
        self.stats
            .lock()
            .unwrap()
            .count(now, size, kind == Kind::Video);
        if o.decided {
            self.process(&mut o, kind, sample);
            return;
        }
        if o.held.len() >= MAX_HELD {
            o.held.remove(0);
        }
        o.held.push((kind, sample, now));
        let has = |k: Kind| o.held.iter().any(|(h, _, _)| *h == k);
        let waited = o
            .held
            .first()
            .is_some_and(|(_, _, t)| t.elapsed() > AUDIO_GRACE);
        let audio_wanted = self.settings.lock().unwrap().audio;
        // Video decides: pads exposed without it would leave gst-launch's delayed
        // links unmade for good (a video pad added after no-more-pads links nowhere).
        // A session that sends only audio is restarted by the supervisor instead.
        if !(has(Kind::Video) && (has(Kind::Audio) || !audio_wanted || waited)) {
            return;
        }
        o.decided = true;
        let held = std::mem::take(&mut o.held);
        for k in [Kind::Video, Kind::Audio] {
            if self.live.pads().get(k).is_none() {
                if let Some((_, s, _)) = held.iter().find(|(h, _, _)| *h == k) {
                    if let Some(caps) = s.caps() {
                        self.add_pad(&mut o, k, caps.to_owned());
                    }
                }
            }
        }
        for (k, s, _) in held {
            self.process(&mut o, k, s);
        }
        drop(o);
        self.live.pads().announce(self.obj().upcast_ref());
    }

    /// Gate (key frame first, nothing while paused), re-timestamp and push one buffer.
    fn process(&self, o: &mut Output, kind: Kind, sample: gst::Sample) {
        let Some(buffer) = sample.buffer_owned() else {
            return;
        };
        let Some(caps) = sample.caps().map(|c| c.to_owned()) else {
            return;
        };
        let k = kind as usize;
        let Some(running) = self.obj().current_running_time() else {
            return;
        };
        if !self.live.is_playing() {
            // Paused: a live source produces nothing; start again at a key frame.
            o.video_started = false;
            return;
        }
        match kind {
            Kind::Video => {
                if !o.video_started {
                    if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                        return;
                    }
                    o.video_started = true;
                }
            }
            Kind::Audio => {
                if o.branches[Kind::Video as usize] && !o.video_started {
                    return;
                }
            }
        }
        // One offset for audio and video keeps them in sync; anchor it so the first
        // buffer of a session is stamped with its arrival time.
        let now_rt = running.nseconds() as i128;
        let inner_pts = buffer.pts().map(|p| p.nseconds() as i128);
        let offset = *o.offset.get_or_insert(match inner_pts {
            Some(p) => now_rt - p,
            None => 0,
        });
        let mut pts = match inner_pts {
            Some(p) => (p + offset).clamp(0, u64::MAX as i128) as u64,
            None => now_rt as u64,
        };
        if let Some(last) = o.last_pts[k] {
            if pts <= last {
                pts = last + 1;
            }
        }
        let duration = buffer.duration();
        let first = std::mem::replace(&mut o.first[k], false);
        let mut buffer = buffer;
        {
            let b = buffer.make_mut();
            b.set_pts(gst::ClockTime::from_nseconds(pts));
            b.set_dts(if kind == Kind::Video {
                b.dts()
                    .map(|d| (d.nseconds() as i128 + offset).clamp(0, pts as i128) as u64)
                    .map(gst::ClockTime::from_nseconds)
            } else {
                None
            });
            if first {
                b.set_flags(gst::BufferFlags::DISCONT);
            }
        }
        let q = match self.live.pads().get(kind) {
            Some(q) => {
                if o.caps[k].as_ref() != Some(&caps) {
                    q.push_event(gst::event::Caps::new(&caps));
                    o.caps[k] = Some(caps);
                }
                if first {
                    // The outage, as a gap, so live mixers and muxers move on.
                    if let Some(end) = o.last_end[k] {
                        if pts > end {
                            q.push_event(
                                gst::event::Gap::builder(gst::ClockTime::from_nseconds(end))
                                    .duration(gst::ClockTime::from_nseconds(pts - end))
                                    .build(),
                            );
                        }
                    }
                }
                q
            }
            None => self.add_pad(o, kind, caps),
        };
        o.last_pts[k] = Some(pts);
        o.last_end[k] = Some(pts + duration.map(|d| d.nseconds()).unwrap_or(0));
        if let gst_cam_common::padqueue::Enqueued::Overflow(n) = q.push(buffer, kind == Kind::Video)
        {
            gst::warning!(
                CAT,
                imp = self,
                "downstream too slow: dropped {n} {kind:?} buffers"
            );
            if kind == Kind::Video {
                o.video_started = false;
            }
        }
    }

    fn add_pad(
        &self,
        o: &mut Output,
        kind: Kind,
        caps: gst::Caps,
    ) -> Arc<gst_cam_common::padqueue::PadQueue> {
        gst::info!(
            CAT,
            imp = self,
            "exposing {} pad with {caps}",
            kind.pad_name()
        );
        let q = self.live.pads().add(self.obj().upcast_ref(), kind, &caps);
        o.caps[kind as usize] = Some(caps);
        q
    }
}

fn source_name(msg: &gst::Message) -> String {
    msg.src()
        .map(|s| s.name().to_string())
        .unwrap_or_else(|| "?".into())
}
