//! tutksrc in real pipelines against the fake TUTK SDK (`tutk-fake-sdk`, a cdylib with
//! the vendor ABI), loaded through the same run-time loader a real SDK goes through.

use gst::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};
use tutk_fake_sdk::config::{self, Camera};

const PASSWORD: &str = "Tutk-S3cret!pw";

fn fake_dir() -> PathBuf {
    std::env::temp_dir().join(format!("tutksrc-test-{}", std::process::id()))
}

fn library() -> PathBuf {
    let l = tutk_fake_sdk::built_library();
    assert!(
        l.exists(),
        "no {}: build it first (cargo build -p tutk-fake-sdk; scripts/test does)",
        l.display()
    );
    l
}

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gsttutksrc::plugin_register_static().unwrap();
        std::fs::create_dir_all(fake_dir()).unwrap();
        // SAFETY (env): set once, before any thread of ours reads it.
        std::env::set_var(config::ENV_DIR, fake_dir());
        std::env::remove_var("TUTK_LIBRARY_PATH");
        std::env::remove_var("TUTK_PASSWORD");
    });
}

/// A fresh camera with a UID of its own (faults count per UID).
fn camera(tweak: impl FnOnce(&mut Camera)) -> Camera {
    init();
    static N: AtomicU32 = AtomicU32::new(0);
    let uid = format!(
        "TEST{:08}{:08}",
        std::process::id() % 100_000_000,
        N.fetch_add(1, Ordering::SeqCst)
    );
    let mut c = Camera::new(&uid, "admin", PASSWORD);
    tweak(&mut c);
    c.write(&fake_dir()).unwrap();
    c
}

#[derive(Clone, Debug)]
struct Buf {
    pts: u64,
    flags: gst::BufferFlags,
    idr: bool,
}

fn has_idr(au: &[u8]) -> bool {
    au.windows(4)
        .any(|w| w[0] == 0 && w[1] == 0 && w[2] == 1 && w[3] & 0x1f == 5)
}

#[derive(Default)]
struct Seen {
    bufs: Vec<Buf>,
    audio: Vec<Buf>,
    decoded: usize,
    messages: Vec<gst::Structure>,
    errors: Vec<gst::glib::Error>,
    eos: bool,
}

struct Run {
    pipeline: gst::Pipeline,
    src: gst::Element,
    seen: Arc<Mutex<Seen>>,
}

/// `tutksrc ! h264parse ! avdec_h264 ! fakesink` (audio, if any, into a decoder and a
/// fakesink), every buffer of tutksrc recorded.
fn run(cam: &Camera, props: &[(&str, &dyn ToValue)]) -> Run {
    run_desc(
        cam,
        props,
        "tutksrc name=src src.video ! h264parse ! avdec_h264 ! fakesink name=sink sync=false",
    )
}

fn run_desc(cam: &Camera, props: &[(&str, &dyn ToValue)], desc: &str) -> Run {
    let pipeline = gst::parse::launch(desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let src = pipeline.by_name("src").unwrap();
    src.set_property("uid", &cam.uid);
    src.set_property("password", PASSWORD);
    src.set_property("library-path", library().to_str().unwrap());
    src.set_property("reconnect-delay", 200u32);
    for (k, v) in props {
        src.set_property(k, v.to_value());
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    src.connect_pad_added(move |_, pad| {
        let s = s.clone();
        let audio = pad.name() == "audio";
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                let m = b.map_readable().unwrap();
                let buf = Buf {
                    pts: b.pts().map(|p| p.nseconds()).unwrap_or(u64::MAX),
                    flags: b.flags(),
                    idr: has_idr(&m),
                };
                let mut g = s.lock().unwrap();
                if audio {
                    g.audio.push(buf);
                } else {
                    g.bufs.push(buf);
                }
            }
            gst::PadProbeReturn::Ok
        });
    });
    let s = seen.clone();
    let sink = pipeline.by_name("sink").unwrap();
    sink.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            s.lock().unwrap().decoded += 1;
            gst::PadProbeReturn::Ok
        });
    let s = seen.clone();
    let bus = pipeline.bus().unwrap();
    bus.set_sync_handler(move |_, m| {
        let mut g = s.lock().unwrap();
        match m.view() {
            gst::MessageView::Element(e) => {
                if let Some(st) = e.structure() {
                    g.messages.push(st.to_owned());
                }
            }
            gst::MessageView::Error(e) => g.errors.push(e.error()),
            gst::MessageView::Eos(_) => g.eos = true,
            _ => {}
        }
        gst::BusSyncReply::Drop
    });
    let _ = pipeline.set_state(gst::State::Playing);
    Run {
        pipeline,
        src,
        seen,
    }
}

impl Run {
    fn expect(&self, timeout: Duration, what: &str, f: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if f(&self.seen.lock().unwrap()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let g = self.seen.lock().unwrap();
        panic!(
            "{what} within {timeout:?}: {} buffers, {} decoded, messages {:?}, errors {:?}, stats {}",
            g.bufs.len(),
            g.decoded,
            g.messages,
            g.errors,
            self.stats()
        );
    }

    fn stats(&self) -> gst::Structure {
        self.src.property::<gst::Structure>("stats")
    }

    fn stop(self) -> Arc<Mutex<Seen>> {
        self.pipeline.set_state(gst::State::Null).unwrap();
        self.seen
    }
}

fn assert_monotonic(bufs: &[Buf]) {
    for w in bufs.windows(2) {
        assert!(w[1].pts > w[0].pts, "PTS {} then {}", w[0].pts, w[1].pts);
    }
}

#[test]
fn decodes_h264_with_key_flags_timestamps_and_latency() {
    let cam = camera(|_| {});
    let r = run(&cam, &[]);
    r.expect(Duration::from_secs(20), "45 decoded frames", |g| {
        g.decoded >= 45
    });
    let video = r.src.static_pad("video").unwrap();
    let mut q = gst::query::Latency::new();
    assert!(video.query(&mut q));
    let (live, min, _) = q.result();
    assert!(live);
    assert_eq!(min, gst::ClockTime::from_mseconds(200));
    let caps = video.current_caps().unwrap();
    let st = caps.structure(0).unwrap();
    assert_eq!(st.name(), "video/x-h264");
    assert_eq!(st.get::<&str>("stream-format").unwrap(), "byte-stream");
    assert_eq!(st.get::<&str>("alignment").unwrap(), "au");
    let stats = r.stats();
    let seen = r.stop();
    let g = seen.lock().unwrap();
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    assert!(g.bufs[0].idr && !g.bufs[0].flags.contains(gst::BufferFlags::DELTA_UNIT));
    for b in &g.bufs {
        assert_eq!(
            b.idr,
            !b.flags.contains(gst::BufferFlags::DELTA_UNIT),
            "key flag from the frame info"
        );
    }
    assert_monotonic(&g.bufs);
    // 15 fps camera timestamps: ~66.7 ms apart.
    let span = (g.bufs.last().unwrap().pts - g.bufs[0].pts) as f64 / 1e9;
    let fps = (g.bufs.len() - 1) as f64 / span;
    assert!((13.0..17.0).contains(&fps), "PTS spacing gives {fps} fps");
    assert_eq!(stats.get::<&str>("codec").unwrap(), "H.264");
    assert_eq!(stats.get::<&str>("mode").unwrap(), "LAN");
    assert!(stats.get::<u64>("frames").unwrap() >= 45);
    assert_eq!(stats.get::<u64>("dropped").unwrap(), 0);
    let online: Vec<_> = g
        .messages
        .iter()
        .filter(|m| m.name() == "tutksrc-online")
        .collect();
    assert_eq!(online.len(), 1);
    assert!(!online[0].get::<bool>("restart").unwrap());
    // The START request, byte for byte: IOTYPE_USER_IPCAM_START, {u32 channel 0; 4 x 0},
    // then AUDIOSTART with the same payload.
    let sent = config::read_ioctl_log(&fake_dir(), &cam.uid);
    assert_eq!(sent, vec![(0x01FF, vec![0u8; 8]), (0x0300, vec![0u8; 8])]);
}

#[test]
fn start_request_names_the_channel() {
    let cam = camera(|_| {});
    let r = run(&cam, &[("channel", &2u32), ("audio", &false)]);
    r.expect(Duration::from_secs(20), "frames", |g| g.decoded >= 5);
    assert!(
        r.src.static_pad("audio").is_none(),
        "audio=false: no audio pad"
    );
    r.stop();
    assert_eq!(
        config::read_ioctl_log(&fake_dir(), &cam.uid),
        vec![(0x01FF, vec![2, 0, 0, 0, 0, 0, 0, 0])],
        "no AUDIOSTART with audio=false"
    );
}

#[test]
fn wrong_password_is_not_authorized_at_once() {
    let cam = camera(|_| {});
    let started = Instant::now();
    let r = run(&cam, &[("password", &"not-the-password")]);
    r.expect(Duration::from_secs(10), "an error", |g| {
        !g.errors.is_empty()
    });
    let elapsed = started.elapsed();
    let stats = r.stats();
    let seen = r.stop();
    let g = seen.lock().unwrap();
    let e = &g.errors[0];
    assert_eq!(
        e.kind::<gst::ResourceError>(),
        Some(gst::ResourceError::NotAuthorized),
        "{e}"
    );
    assert!(e.message().contains("AV_ER_WRONG_VIEWACCorPWD"), "{e}");
    assert!(!e.message().contains("not-the-password"));
    assert_eq!(stats.get::<u64>("reconnects").unwrap(), 0);
    assert!(
        g.messages.iter().all(|m| m.name() != "tutksrc-offline"),
        "no retry"
    );
    eprintln!("wrong password reported after {elapsed:?}");
}

#[test]
fn unknown_device_is_not_found() {
    init();
    let cam = Camera::new("NOSUCHCAMERA00000000", "admin", PASSWORD);
    let r = run(&cam, &[]);
    r.expect(Duration::from_secs(10), "an error", |g| {
        !g.errors.is_empty()
    });
    let seen = r.stop();
    let e = seen.lock().unwrap().errors[0].clone();
    assert_eq!(
        e.kind::<gst::ResourceError>(),
        Some(gst::ResourceError::NotFound),
        "{e}"
    );
    assert!(e.message().contains("IOTC_ER_CAN_NOT_FIND_DEVICE"), "{e}");
}

#[test]
fn missing_library_says_what_was_searched_and_how_to_point() {
    init();
    let cam = camera(|_| {});
    let empty = fake_dir().join("no-sdk-here");
    std::fs::create_dir_all(&empty).unwrap();
    let r = run(&cam, &[("library-path", &empty.to_str().unwrap())]);
    r.expect(Duration::from_secs(5), "an error", |g| !g.errors.is_empty());
    let seen = r.stop();
    let e = seen.lock().unwrap().errors[0].clone();
    assert_eq!(
        e.kind::<gst::LibraryError>(),
        Some(gst::LibraryError::Init),
        "{e}"
    );
    for s in [
        "libIOTCAPIs_ALL.so",
        "libIOTCAPIs.so",
        "libAVAPIs.so",
        "TUTK_LIBRARY_PATH",
        "library-path",
    ] {
        assert!(e.message().contains(s), "{s} not in {e}");
    }
}

#[test]
fn remote_sessions_are_refused_before_the_password_is_sent() {
    let cam = camera(|c| c.mode = 1);
    let r = run(&cam, &[]);
    r.expect(Duration::from_secs(10), "an error", |g| {
        !g.errors.is_empty()
    });
    let seen = r.stop();
    let e = seen.lock().unwrap().errors[0].clone();
    assert_eq!(
        e.kind::<gst::ResourceError>(),
        Some(gst::ResourceError::OpenRead),
        "{e}"
    );
    assert!(
        e.message().contains("relay") && e.message().contains("allow-remote=true"),
        "{e}"
    );
    let log = std::fs::read_to_string(config::ioctl_log(&fake_dir(), &cam.uid)).unwrap_or_default();
    assert!(!log.contains("LOGIN"), "avClientStart2 was called: {log}");

    let r = run(&cam, &[("allow-remote", &true)]);
    r.expect(Duration::from_secs(20), "frames over relay", |g| {
        g.decoded >= 5
    });
    assert_eq!(r.stats().get::<&str>("mode").unwrap(), "relay");
    r.stop();
}

#[test]
fn lost_and_incomplete_frames_are_counted_and_the_stream_resumes_at_a_key_frame() {
    // GOP of 15 frames (1 s at 15 fps): frame 20 lost, frame 40 incomplete. The stream
    // goes on at frames 30 and 45: 9 + 4 frames skipped.
    let cam = camera(|c| {
        c.lost = vec![20];
        c.incomplete = vec![40];
    });
    let r = run(&cam, &[]);
    r.expect(Duration::from_secs(20), "frames past the faults", |g| {
        g.bufs.len() >= 55
    });
    let stats = r.stats();
    let seen = r.stop();
    let g = seen.lock().unwrap();
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    assert_eq!(stats.get::<u64>("dropped").unwrap(), 2, "{stats}");
    assert_eq!(stats.get::<u64>("skipped").unwrap(), 13, "{stats}");
    let disconts: Vec<&Buf> = g
        .bufs
        .iter()
        .skip(1)
        .filter(|b| b.flags.contains(gst::BufferFlags::DISCONT))
        .collect();
    assert_eq!(disconts.len(), 2, "{:?}", g.bufs);
    for b in disconts {
        assert!(b.idr, "resumed on a frame that is not a key frame");
    }
    assert_monotonic(&g.bufs);
    assert!(g.decoded >= 50, "{} decoded", g.decoded);
}

#[test]
fn remote_close_and_remote_timeout_reconnect() {
    let cam = camera(|c| {
        c.close_at = Some(25);
        c.timeout_at = Some(60);
    });
    let r = run(&cam, &[]);
    r.expect(
        Duration::from_secs(30),
        "two reconnections and frames after",
        |g| {
            g.messages
                .iter()
                .filter(|m| m.name() == "tutksrc-online")
                .count()
                >= 3
                && g.decoded >= 60
        },
    );
    let stats = r.stats();
    let seen = r.stop();
    let g = seen.lock().unwrap();
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    let offline: Vec<String> = g
        .messages
        .iter()
        .filter(|m| m.name() == "tutksrc-offline")
        .map(|m| m.get::<String>("reason").unwrap())
        .collect();
    assert_eq!(offline.len(), 2, "{offline:?}");
    assert!(
        offline[0].contains("AV_ER_SESSION_CLOSE_BY_REMOTE"),
        "{offline:?}"
    );
    assert!(
        offline[1].contains("AV_ER_REMOTE_TIMEOUT_DISCONNECT"),
        "{offline:?}"
    );
    assert_eq!(stats.get::<u64>("reconnects").unwrap(), 2);
    assert_monotonic(&g.bufs);
    let restarts = g
        .bufs
        .iter()
        .skip(1)
        .filter(|b| b.flags.contains(gst::BufferFlags::DISCONT));
    for b in restarts {
        assert!(b.idr);
    }
    // Each session asked for the video again.
    let starts = config::read_ioctl_log(&fake_dir(), &cam.uid)
        .iter()
        .filter(|(t, _)| *t == 0x01FF)
        .count();
    assert_eq!(starts, 3);
}

/// Set the pipeline to NULL (or flush) while the SDK call blocks; return how long it took.
fn time_stop_while_blocked(cam: &Camera, flush: bool) -> Duration {
    let r = run(cam, &[]);
    // Let the SDK thread enter the blocking call.
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    if flush {
        assert!(r.pipeline.send_event(gst::event::FlushStart::new()));
        assert!(r.pipeline.send_event(gst::event::FlushStop::new(true)));
    }
    r.pipeline.set_state(gst::State::Null).unwrap();
    t.elapsed()
}

#[test]
fn stop_while_connecting_returns_promptly() {
    let blocked_login = camera(|c| c.start_blocks = true);
    let blocked_connect = camera(|c| c.connect_blocks = true);
    for (cam, what) in [
        (&blocked_login, "avClientStart2"),
        (&blocked_connect, "IOTC_Connect_ByUID_Parallel"),
    ] {
        for flush in [false, true] {
            let took = time_stop_while_blocked(cam, flush);
            eprintln!("stop during {what} (flush first: {flush}): {took:?}");
            assert!(
                took < Duration::from_secs(1),
                "stop during {what} took {took:?}"
            );
        }
    }
}

#[test]
fn uri_handler_and_playbin() {
    init();
    let cam = camera(|_| {});
    let uri = format!("tutk://admin:{}@{}", PASSWORD.replace('!', "%21"), cam.uid);
    let src = gst::Element::make_from_uri(gst::URIType::Src, &uri, None).unwrap();
    assert_eq!(src.factory().unwrap().name(), "tutksrc");
    let back = src
        .dynamic_cast_ref::<gst::URIHandler>()
        .unwrap()
        .uri()
        .unwrap();
    assert_eq!(back, format!("tutk://admin@{}", cam.uid));
    assert!(!back.contains("S3cret"));
    std::env::set_var("TUTK_LIBRARY_PATH", library());
    let pb = gst::ElementFactory::make("playbin")
        .property("uri", &uri)
        .build()
        .unwrap();
    let sink = gst::ElementFactory::make("fakesink")
        .property("signal-handoffs", true)
        .build()
        .unwrap();
    let n = Arc::new(AtomicU32::new(0));
    let n2 = n.clone();
    sink.connect("handoff", false, move |_| {
        n2.fetch_add(1, Ordering::SeqCst);
        None
    });
    pb.set_property("video-sink", &sink);
    pb.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while n.load(Ordering::SeqCst) < 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    pb.set_state(gst::State::Null).unwrap();
    assert!(
        n.load(Ordering::SeqCst) >= 20,
        "playbin decoded {} frames",
        n.load(Ordering::SeqCst)
    );
}

#[test]
fn password_and_licence_key_never_logged_at_debug_level_7() {
    init();
    let cam = camera(|c| c.lost = vec![10]);
    let key = "LK-Secret-Licence-42";
    let plugin_dir = library().parent().unwrap().to_path_buf();
    assert!(
        plugin_dir.join("libgsttutksrc.so").exists(),
        "build the plugin first (cargo build): no {}/libgsttutksrc.so",
        plugin_dir.display()
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/with-local-plugins");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(&plugin_dir)
        .args([
            "timeout",
            "-s",
            "INT",
            "5",
            "gst-launch-1.0",
            "-e",
            "-m",
            "tutksrc",
            "name=s",
        ])
        .arg(format!("uid={}", cam.uid))
        .args([
            "s.video",
            "!",
            "h264parse",
            "!",
            "avdec_h264",
            "!",
            "fakesink",
        ])
        .args(["s.audio", "!", "mulawdec", "!", "fakesink"])
        .env("GST_DEBUG", "*:7")
        .env("GST_DEBUG_NO_COLOR", "1")
        .env("TUTK_PASSWORD", PASSWORD)
        .env("TUTK_LICENSE_KEY", key)
        .env("TUTK_FAKE_LICENSE", key)
        .env("TUTK_LIBRARY_PATH", library())
        .output()
        .expect("gst-launch-1.0");
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    assert!(
        log.contains("tutksrc-online") && log.contains("Got EOS"),
        "did not stream: {}",
        &log[log.len().saturating_sub(3000)..]
    );
    assert!(
        log.lines().filter(|l| l.contains("tutksrc")).count() > 20,
        "few tutksrc lines"
    );
    assert!(
        log.lines().count() > 1000,
        "GST_DEBUG=*:7 produced little output"
    );
    assert!(!log.contains(PASSWORD), "the password is in the log");
    assert!(!log.contains(key), "the licence key is in the log");
}

#[test]
fn g711_audio_on_its_own_pad_in_step_with_video() {
    let cam = camera(|c| c.audio = 0x8A);
    let r = run_desc(
        &cam,
        &[],
        "tutksrc name=src src.video ! h264parse ! avdec_h264 ! fakesink name=sink sync=false \
         src.audio ! alawdec ! audioconvert ! fakesink sync=false",
    );
    r.expect(Duration::from_secs(20), "video and 50 audio parts", |g| {
        g.decoded >= 30 && g.audio.len() >= 50
    });
    let caps = r.src.static_pad("audio").unwrap().current_caps().unwrap();
    let st = caps.structure(0).unwrap().to_owned();
    let stats = r.stats();
    let seen = r.stop();
    let g = seen.lock().unwrap();
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    assert_eq!(st.name(), "audio/x-alaw");
    assert_eq!(st.get::<i32>("rate").unwrap(), 8000);
    assert_monotonic(&g.audio);
    // 40 ms parts, stamped from the camera's clock like the video.
    let span = (g.audio.last().unwrap().pts - g.audio[0].pts) as f64 / 1e6;
    let per_part = span / (g.audio.len() - 1) as f64;
    assert!((35.0..45.0).contains(&per_part), "{per_part} ms per part");
    let (a0, v0) = (g.audio[0].pts as i64, g.bufs[0].pts as i64);
    assert!(
        (a0 - v0).abs() < 500_000_000,
        "audio starts {} ms from video",
        (a0 - v0) / 1_000_000
    );
    assert!(stats.get::<u64>("audio-frames").unwrap() >= 50);
}

#[test]
fn eos_while_still_connecting_reaches_the_sinks() {
    // `gst-launch-1.0 -e` stopped before the camera answered: no pads existed yet.
    let cam = camera(|c| c.connect_blocks = true);
    let r = run(&cam, &[]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(r.pipeline.send_event(gst::event::Eos::new()));
    r.expect(Duration::from_secs(10), "EOS at the sink", |g| g.eos);
    r.stop();
}
