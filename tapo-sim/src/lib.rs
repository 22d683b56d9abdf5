//! A simulated TP-Link Tapo camera (C100/C200/C210 family) speaking real RTSP.
//!
//! Built on gst-rtsp-server as the real cameras' behaviour is documented in
//! `docs/camsrc.md` and the shared protocol notes:
//! - `/stream1` (1920x1080) and `/stream2` (640x360), H.264 as RTP payload 96 and
//!   G.711 A-law as payload 8 (`a=rtpmap:8 PCMA/8000`), 15 fps, a key frame every 2 s;
//! - digest authentication with realm "TP-LINK Streaming Media";
//! - at most two concurrent sessions (the third SETUP gets 503);
//! - faults: [`TapoSim::restart`] (the camera reboots: every connection is closed and
//!   the port refuses connections for a while); a freeze is a SIGSTOP of the process
//!   (connections stay open, nothing is sent, nothing answers);
//! - firmware quirks ([`Quirks`]): keep-alives answered with 400 and the previous CSeq,
//!   `sprop-parameter-sets` missing or `(null),(null)`, an extra `m=application` track.
//!
//! Video is a clip encoded once by x264enc and looped at real-time pace (encoding
//! 1080p live would eat a core of this two-core machine); audio is a live A-law tone.

/// The simulator as a separate process (the `sim-process` crate).
pub use sim_process as process;
pub mod onvif;
mod quirks;

use gst::glib;
use gst::prelude::*;
use gst_rtsp_server::prelude::*;
use kasa_sim::media::{self, Clip, ClipSpec};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use quirks::{Quirks, SpropQuirk};

/// The realm every Tapo camera uses for digest authentication.
pub const REALM: &str = "TP-LINK Streaming Media";

#[derive(Clone, Debug)]
pub struct TapoConfig {
    /// Address to bind (loopback by default).
    pub bind: String,
    /// 0 picks a free port.
    pub port: u16,
    pub username: String,
    pub password: String,
    /// `/stream1` size.
    pub main_size: (u32, u32),
    /// `/stream2` size.
    pub sub_size: (u32, u32),
    pub fps: u32,
    pub audio: bool,
    /// Session timeout announced in the `Session:` header, seconds (cameras: 60).
    pub session_timeout: u32,
    pub max_sessions: u32,
    /// `videotestsrc` properties for the picture, or `file=PATH seconds=N [hold=H]`: the
    /// first N seconds of a video file (a real scene), then H seconds of the place without
    /// what moves in it, looped.
    pub pattern: String,
    pub quirks: Quirks,
}

impl Default for TapoConfig {
    fn default() -> Self {
        TapoConfig {
            bind: "127.0.0.1".into(),
            port: 0,
            username: "admin".into(),
            password: "tapo-secret".into(),
            main_size: (1920, 1080),
            sub_size: (640, 360),
            fps: 15,
            audio: true,
            session_timeout: 60,
            max_sessions: 2,
            pattern: "pattern=ball".into(),
            quirks: Quirks::default(),
        }
    }
}

/// Counters the tests read.
#[derive(Default, Debug)]
pub struct Counters {
    /// Video frames handed to the RTP payloader, all streams.
    pub video_frames: AtomicU64,
    /// Keep-alive requests (GET_PARAMETER / SET_PARAMETER) received.
    pub keepalives: AtomicU64,
    /// RTSP connections accepted.
    pub clients_connected: AtomicU64,
}

struct Shared {
    cfg: TapoConfig,
    counters: Counters,
    clips: [Clip; 2],
    /// Set while rebooting: feeders stop.
    down: AtomicBool,
    /// Until then the video feeders send nothing while audio goes on (a camera whose
    /// encoder hangs).
    video_stalled_until: std::sync::Mutex<Option<Instant>>,
}

/// A running simulator: a GLib main loop on its own thread serving RTSP.
pub struct TapoSim {
    shared: Arc<Shared>,
    server: gst_rtsp_server::RTSPServer,
    ctx: glib::MainContext,
    main_loop: glib::MainLoop,
    source: Arc<Mutex<Option<glib::SourceId>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    port: u16,
}

impl TapoSim {
    pub fn start(cfg: TapoConfig) -> Result<TapoSim, String> {
        gst::init().map_err(|e| e.to_string())?;
        let spec = |(width, height): (u32, u32)| ClipSpec {
            width,
            height,
            fps: cfg.fps,
            gop_seconds: 2,
            seconds: 4,
            pattern: cfg.pattern.clone(),
        };
        let clips = [
            media::clip(&spec(cfg.main_size))?,
            media::clip(&spec(cfg.sub_size))?,
        ];
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            counters: Counters::default(),
            clips,
            down: AtomicBool::new(false),
            video_stalled_until: std::sync::Mutex::new(None),
        });

        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address(&cfg.bind);
        server.set_service(&cfg.port.to_string());
        if let Some(pool) = server.session_pool() {
            pool.set_max_sessions(cfg.max_sessions);
        }
        let auth = gst_rtsp_server::RTSPAuth::new();
        auth.set_supported_methods(gst_rtsp::RTSPAuthMethod::Digest);
        auth.set_realm(Some(REALM));
        let token = gst_rtsp_server::RTSPToken::builder()
            .field(gst_rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
            .build();
        auth.add_digest(&cfg.username, &cfg.password, &token);
        server.set_auth(Some(&auth));

        let mounts = server
            .mount_points()
            .ok_or("the RTSP server has no mount points")?;
        for (i, path) in ["/stream1", "/stream2"].into_iter().enumerate() {
            mounts.add_factory(path, make_factory(&shared, i));
        }

        let sh = shared.clone();
        server.connect_client_connected(move |_, client| {
            sh.counters
                .clients_connected
                .fetch_add(1, Ordering::Relaxed);
            quirks::install(client, sh.clone());
        });

        let ctx = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let source = Arc::new(Mutex::new(None));
        let attached = ctx
            .with_thread_default(|| server.attach(Some(&ctx)))
            .map_err(|e| e.to_string())?
            .map_err(|e| {
                format!(
                    "cannot listen on {}:{}: {e} (is the port in use?)",
                    cfg.bind, cfg.port
                )
            })?;
        *source.lock().unwrap() = Some(attached);
        let port = u16::try_from(server.bound_port()).map_err(|_| "no bound port")?;
        // Expire sessions whose client went silent (UDP viewers, frozen clients), as the
        // cameras do after their session timeout; gst-rtsp-server only does it on request.
        if let Some(pool) = server.session_pool() {
            let tick = glib::timeout_source_new(
                Duration::from_secs(1),
                Some("tapo-sim-session-cleanup"),
                glib::Priority::DEFAULT,
                move || {
                    pool.cleanup();
                    glib::ControlFlow::Continue
                },
            );
            tick.attach(Some(&ctx));
        }
        let ml = main_loop.clone();
        let c2 = ctx.clone();
        let thread = std::thread::Builder::new()
            .name("tapo-sim".into())
            .spawn(move || {
                c2.with_thread_default(|| ml.run()).ok();
            })
            .map_err(|e| e.to_string())?;
        Ok(TapoSim {
            shared,
            server,
            ctx,
            main_loop,
            source,
            thread: Some(thread),
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtsp://user:pass@host:port/streamN` (N = 1 or 2).
    pub fn url(&self, stream: u32) -> String {
        let c = &self.shared.cfg;
        format!(
            "rtsp://{}:{}@{}:{}/stream{stream}",
            c.username, c.password, c.bind, self.port
        )
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    pub fn clip(&self, stream: u32) -> &Clip {
        &self.shared.clips[if stream == 2 { 1 } else { 0 }]
    }

    /// Reboot: close every connection and session, stop listening for `down`, then
    /// serve again (new sessions, streams restart at a key frame).
    /// The video stops for `d` while the audio goes on.
    pub fn stall_video(&self, d: Duration) {
        *self.shared.video_stalled_until.lock().unwrap() = Some(Instant::now() + d);
    }

    pub fn restart(&self, down: Duration) {
        let server = self.server.clone();
        let source = self.source.clone();
        let shared = self.shared.clone();
        shared.down.store(true, Ordering::SeqCst);
        let ctx = self.ctx.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        self.ctx.invoke(move || {
            remove_source(&ctx, source.lock().unwrap().take());
            server.client_filter(Some(&mut |_, client| {
                client.close();
                gst_rtsp_server::RTSPFilterResult::Remove
            }));
            if let Some(pool) = server.session_pool() {
                pool.filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
            }
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(Duration::from_secs(5));
        std::thread::sleep(down);
        shared.down.store(false, Ordering::SeqCst);
        let server = self.server.clone();
        let source = self.source.clone();
        let ctx = self.ctx.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        self.ctx.invoke(move || {
            let r = match server.attach(Some(&ctx)) {
                Ok(id) => {
                    *source.lock().unwrap() = Some(id);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            };
            let _ = tx.send(r);
        });
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("tapo-sim: restart: cannot listen again: {e}"),
            Err(_) => eprintln!("tapo-sim: restart: main loop did not answer"),
        }
    }
}

impl Drop for TapoSim {
    fn drop(&mut self) {
        self.shared.down.store(true, Ordering::SeqCst);
        let server = self.server.clone();
        let source = self.source.clone();
        let ml = self.main_loop.clone();
        let ctx = self.ctx.clone();
        self.ctx.invoke(move || {
            remove_source(&ctx, source.lock().unwrap().take());
            server.client_filter(Some(&mut |_, client| {
                client.close();
                gst_rtsp_server::RTSPFilterResult::Remove
            }));
            ml.quit();
        });
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Stop listening: the server's socket source lives on our own context, not the default.
fn remove_source(ctx: &glib::MainContext, id: Option<glib::SourceId>) {
    if let Some(src) = id.and_then(|id| ctx.find_source_by_id(&id)) {
        src.destroy();
    }
}

fn make_factory(shared: &Arc<Shared>, index: usize) -> gst_rtsp_server::RTSPMediaFactory {
    let factory = gst_rtsp_server::RTSPMediaFactory::new();
    let audio = if shared.cfg.audio {
        // 20 ms A-law packets, as the cameras send.
        " audiotestsrc is-live=true wave=sine freq=440 volume=0.3 samplesperbuffer=160 \
         ! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8"
    } else {
        ""
    };
    // SPS/PPS go in front of each IDR frame, inserted by h264parse per access unit. The
    // payloader's own config-interval inserts them in front of every IDR *slice*, and the
    // clips have two slices per frame (x264's sliced threads): parameter sets between
    // the slices of a picture start a new access unit, which split every IDR frame in two
    // downstream (GStreamer's decoder coped; browsers painted half of every picture
    // green until the next IDR).
    factory.set_launch(&format!(
        "( appsrc name=video is-live=true format=time do-timestamp=true \
           caps=video/x-h264,stream-format=byte-stream,alignment=au \
         ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=0 aggregate-mode=zero-latency{audio} )"
    ));
    // One pipeline for every viewer of the stream, as the camera encodes once.
    factory.set_shared(true);
    factory.set_latency(0);
    factory.add_role_from_structure(
        &gst::Structure::builder("user")
            .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
            .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
            .build(),
    );
    let sh = shared.clone();
    factory.connect_media_configure(move |_, media| {
        let Some(bin) = media.element().downcast::<gst::Bin>().ok() else {
            return;
        };
        let Some(appsrc) = bin
            .by_name("video")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        else {
            return;
        };
        let sh = sh.clone();
        let clip = sh.clips[index].clone();
        let _ = std::thread::Builder::new()
            .name(format!("tapo-feed{}", index + 1))
            .spawn(move || feed(&sh, &clip, &appsrc));
    });
    factory
}

/// Push the clip in a loop at real-time pace until the media goes away.
///
/// `media-configure` comes before the media's pipeline has started: until it has, the
/// appsrc answers FLUSHING. Giving up there left a media with audio and no video for
/// as long as it lived (a client then saw audio only, or nothing with audio off: a test
/// flake, one run in a few under load). So FLUSHING before the first accepted frame
/// means "not started yet", and the pacing starts with the first accepted frame.
fn feed(shared: &Shared, clip: &Clip, appsrc: &gst_app::AppSrc) {
    let period_ns = 1_000_000_000 / u64::from(clip.fps.max(1));
    let configured = Instant::now();
    let mut start: Option<Instant> = None;
    let mut n: u64 = 0;
    loop {
        if let Some(start) = start {
            let due = start + Duration::from_nanos(period_ns * n);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        if shared.down.load(Ordering::SeqCst) {
            let _ = appsrc.end_of_stream();
            return;
        }
        let stalled = *shared.video_stalled_until.lock().unwrap();
        if start.is_some() && stalled.is_some_and(|t| Instant::now() < t) {
            // Frames are skipped, not queued: the clip goes on in time.
            n += 1;
            continue;
        }
        let frame = &clip.frames[(n as usize) % clip.frames.len()];
        let mut buf = gst::Buffer::from_slice(frame.data.clone());
        if !frame.key {
            buf.get_mut()
                .unwrap()
                .set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        match appsrc.push_buffer(buf) {
            Ok(_) => {
                start.get_or_insert_with(Instant::now);
            }
            Err(gst::FlowError::Flushing)
                if start.is_none() && configured.elapsed() < Duration::from_secs(30) =>
            {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(_) => return,
        }
        shared.counters.video_frames.fetch_add(1, Ordering::Relaxed);
        n += 1;
    }
}
