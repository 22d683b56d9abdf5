//! The RTSP re-stream: `homecam` with `[rtsp]` in front of a simulated Tapo camera, read by
//! clients that are not ours (Debian's ffprobe and ffmpeg over TCP and UDP, GStreamer's
//! rtspsrc), 20 at once with one that stops reading, across a camera reboot, with digest
//! logins, and bad input (garbage, unknown paths, an OPTIONS flood, 1,000 connections).

use gst::prelude::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_homecam");

mod common;
use common::*;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("homecam-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn camera_config(dir: &std::path::Path, cam_port: u16, rtsp: &str) -> String {
    format!(
        r#"[general]
metrics = "127.0.0.1:{metrics}"
status-interval = 2
data-dir = "{dir}"

{rtsp}

[[camera]]
name = "front"
uri = "rtsp://admin@127.0.0.1:{cam_port}/stream2"
password-env = "FRONT_PW"
record = {{ segment = "2s" }}
"#,
        dir = dir.display(),
        metrics = free_port(),
    )
}

/// `GET path` on the daemon's metrics port (from its config).
fn metrics(cfg: &str) -> String {
    let port: u16 = cfg
        .split("metrics = \"127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn start(dir: &std::path::Path, cfg: &str, env: &[(&str, &str)]) -> (Homecam, u16) {
    let path = dir.join("homecam.toml");
    std::fs::write(&path, cfg).unwrap();
    let pw = tapo_sim::TapoConfig::default().password;
    let mut all = vec![("FRONT_PW", pw.as_str())];
    all.extend_from_slice(env);
    let d = Homecam::start(BIN, &["run", path.to_str().unwrap()], &all);
    let line = d.wait_line("homecam: RTSP at rtsp://", Duration::from_secs(30));
    let port = line
        .split("rtsp://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    d.wait_line("\"status\":\"online\"", Duration::from_secs(30));
    (d, port)
}

/// A GStreamer client: rtspsrc, depayloaded video and audio counted, video PTS kept.
struct GstClient {
    pipeline: gst::Pipeline,
    video: Arc<AtomicU64>,
    audio: Arc<AtomicU64>,
    pts: Arc<Mutex<Vec<u64>>>,
    /// When each video frame (by a hash of its bytes) arrived, for latency comparisons.
    /// The simulated camera loops one clip: the same frame comes back every loop.
    arrivals: Arc<Mutex<std::collections::HashMap<u64, Vec<Instant>>>>,
}

impl GstClient {
    fn start(url: &str, protocols: &str, login: Option<(&str, &str)>) -> GstClient {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::new();
        let src = gst::ElementFactory::make("rtspsrc")
            .property("location", url)
            .property("latency", 200u32)
            .property_from_str("protocols", protocols)
            .build()
            .unwrap();
        if let Some((u, p)) = login {
            src.set_property("user-id", u);
            src.set_property("user-pw", p);
        }
        pipeline.add(&src).unwrap();
        let (video, audio) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let pts: Arc<Mutex<Vec<u64>>> = Arc::default();
        let arrivals: Arc<Mutex<std::collections::HashMap<u64, Vec<Instant>>>> = Arc::default();
        let (v2, a2, p2, t2) = (video.clone(), audio.clone(), pts.clone(), arrivals.clone());
        let weak = pipeline.downgrade();
        src.connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            let caps = pad.current_caps().unwrap();
            let media = caps
                .structure(0)
                .unwrap()
                .get::<String>("media")
                .unwrap_or_default();
            let chain = if media == "video" {
                "rtph264depay ! h264parse"
            } else {
                "rtppcmadepay"
            };
            let bin =
                gst::parse::bin_from_description(&format!("{chain} ! fakesink sync=false"), true)
                    .unwrap();
            pipeline.add(&bin).unwrap();
            bin.sync_state_with_parent().unwrap();
            pad.link(&bin.static_pad("sink").unwrap()).unwrap();
            let sink = bin.iterate_sinks().next().ok().flatten().unwrap();
            let (v, a, p, arr) = (v2.clone(), a2.clone(), p2.clone(), t2.clone());
            let is_video = media == "video";
            sink.static_pad("sink").unwrap().add_probe(
                gst::PadProbeType::BUFFER,
                move |_, info| {
                    if let Some(b) = info.buffer() {
                        if is_video {
                            v.fetch_add(1, Ordering::Relaxed);
                            if let Some(t) = b.pts() {
                                p.lock().unwrap().push(t.nseconds());
                            }
                            let now = Instant::now();
                            let mut arrivals = arr.lock().unwrap();
                            if arrivals.len() < 100_000 {
                                if let Ok(m) = b.map_readable() {
                                    use std::hash::{Hash, Hasher};
                                    let mut h = std::collections::hash_map::DefaultHasher::new();
                                    m.as_slice().hash(&mut h);
                                    arrivals.entry(h.finish()).or_default().push(now);
                                }
                            }
                        } else {
                            a.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    gst::PadProbeReturn::Ok
                },
            );
        });
        pipeline.set_state(gst::State::Playing).unwrap();
        GstClient {
            pipeline,
            video,
            audio,
            pts,
            arrivals,
        }
    }

    fn error(&self) -> Option<String> {
        self.pipeline
            .bus()
            .unwrap()
            .pop_filtered(&[gst::MessageType::Error])
            .map(|m| format!("{m:?}"))
    }
}

impl Drop for GstClient {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// ffprobe's video frames of `seconds` of `url`: (pts_time, key frame).
fn ffprobe_frames(url: &str, transport: &str, seconds: u32) -> std::process::Child {
    Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            transport,
            "-read_intervals",
            &format!("%+{seconds}"),
            "-show_frames",
            "-show_entries",
            "frame=media_type,pts_time,key_frame",
            "-of",
            "csv=p=0",
            url,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ffprobe (Debian package ffmpeg; scripts/setup --tests installs it)")
}

/// (video frames (pts, key), audio frames, stderr) of a finished ffprobe.
fn ffprobe_result(c: std::process::Child) -> (Vec<(f64, bool)>, usize, String) {
    let out = c.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut video = Vec::new();
    let mut audio = 0;
    for l in text.lines() {
        let f: Vec<&str> = l.split(',').collect();
        match f.first() {
            Some(&"video") => video.push((
                f.get(2).and_then(|t| t.parse().ok()).unwrap_or(f64::NAN),
                f.get(1) == Some(&"1"),
            )),
            Some(&"audio") => audio += 1,
            _ => {}
        }
    }
    // ffmpeg's RTP demuxer leaves the first packet's time unset ("N/A"): only that one
    // may be untimed, and it is left out of the times compared.
    assert!(
        video.iter().skip(1).all(|f| !f.0.is_nan()),
        "ffprobe: untimed frames past the first:\n{text}"
    );
    (
        video,
        audio,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The timed frames' times.
fn times(video: &[(f64, bool)]) -> Vec<f64> {
    video.iter().map(|f| f.0).filter(|t| !t.is_nan()).collect()
}

/// An RTSP request on `s`, its answer's head (status line and headers) and body.
fn rtsp(s: &mut TcpStream, req: &str) -> (String, String) {
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0usize);
    let mut body = vec![0u8; len];
    let _ = s.read_exact(&mut body);
    (head, String::from_utf8_lossy(&body).into_owned())
}

/// A client that sets up the stream over TCP (interleaved), plays it, and never reads.
fn stalled_client(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let url = format!("rtsp://127.0.0.1:{port}/front");
    let (h, _) = rtsp(
        &mut s,
        &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"),
    );
    assert!(h.starts_with("RTSP/1.0 200"), "{h}");
    let (h, _) = rtsp(
        &mut s,
        &format!("SETUP {url}/stream=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"),
    );
    assert!(h.starts_with("RTSP/1.0 200"), "{h}");
    let session = h
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    s.write_all(format!("PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n").as_bytes())
        .unwrap();
    s
}

/// Open descriptors and threads of process `pid`.
fn fds_and_threads(pid: u32) -> (usize, usize) {
    let n = |p: String| std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0);
    (n(format!("/proc/{pid}/fd")), n(format!("/proc/{pid}/task")))
}

#[test]
fn clients_that_are_not_ours_share_the_one_camera_session() {
    let dir = temp_dir("rtsp");
    let cam = tapo_sim::TapoSim::start(tapo_sim::TapoConfig {
        fps: 15,
        ..Default::default()
    })
    .unwrap();
    let cfg = camera_config(
        &dir,
        cam.port(),
        "[rtsp]\nlisten = \"127.0.0.1:0\"\nauth = \"none\"",
    );
    let (d, port) = start(&dir, &cfg, &[]);
    let url = format!("rtsp://127.0.0.1:{port}/front");

    // ffprobe over TCP and over UDP, 10 s each, and 20 GStreamer clients, one of them a
    // client that stops reading, all at once.
    let probe_tcp = ffprobe_frames(&url, "tcp", 10);
    let probe_udp = ffprobe_frames(&url, "udp", 10);
    let stalled = stalled_client(port);
    let clients: Vec<GstClient> = (0..19)
        .map(|i| GstClient::start(&url, if i % 2 == 0 { "tcp" } else { "udp" }, None))
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    // Over a 10 s window: frames the camera sent, and what each client got.
    let cam_frames0 = cam.counters().video_frames.load(Ordering::Relaxed);
    let got0: Vec<u64> = clients
        .iter()
        .map(|c| c.video.load(Ordering::Relaxed))
        .collect();
    std::thread::sleep(Duration::from_secs(10));
    let sent = cam.counters().video_frames.load(Ordering::Relaxed) - cam_frames0;
    for (i, c) in clients.iter().enumerate() {
        let got = c.video.load(Ordering::Relaxed) - got0[i];
        assert!(
            got as f64 >= sent as f64 * 0.9,
            "client {i} got {got} of the {sent} frames the camera sent: {:?}",
            c.error()
        );
        assert!(c.audio.load(Ordering::Relaxed) > 0, "client {i}: no audio");
        assert!(c.error().is_none(), "client {i}: {:?}", c.error());
    }
    eprintln!("19 clients (and one that does not read) each got >= 90 % of {sent} frames");
    for (transport, probe) in [("tcp", probe_tcp), ("udp", probe_udp)] {
        let (video, audio, err) = ffprobe_result(probe);
        assert!(
            video.len() >= 100,
            "ffprobe over {transport}: {} video frames\n{err}",
            video.len()
        );
        assert!(
            video[0].1,
            "ffprobe over {transport}: the first frame is not a key frame"
        );
        assert!(audio > 0, "ffprobe over {transport}: no audio\n{err}");
        assert!(
            times(&video).windows(2).all(|w| w[1] > w[0]),
            "ffprobe over {transport}: timestamps go back"
        );
    }
    // One camera session for all of them.
    assert_eq!(cam.counters().clients_connected.load(Ordering::Relaxed), 1);
    let m = metrics(&cfg);
    let fed = m
        .lines()
        .find_map(|l| l.strip_prefix("homecam_rtsp_clients{camera=\"front\"} "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{m}"));
    assert!(fed >= 19.0, "{fed} RTSP clients in /metrics: {m}");
    drop(stalled);
    drop(clients);

    // ffmpeg decodes 10 s without an error.
    let out = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-i",
            &url,
            "-t",
            "10",
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The camera reboots mid-stream: the sessions go on, the frames come back, the
    // timestamps keep going up.
    let probe = ffprobe_frames(&url, "tcp", 18);
    let client = GstClient::start(&url, "tcp", None);
    std::thread::sleep(Duration::from_secs(5));
    let lines_before = d.lines.lock().unwrap().len();
    cam.restart(Duration::from_secs(3));
    let back = {
        let t0 = Instant::now();
        loop {
            let l = d.lines.lock().unwrap();
            if l[lines_before..]
                .iter()
                .any(|l| l.contains("\"status\":\"online\""))
            {
                break Instant::now();
            }
            drop(l);
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the camera did not come back:\n{}",
                d.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let n_back = client.video.load(Ordering::Relaxed);
    let t0 = Instant::now();
    while client.video.load(Ordering::Relaxed) < n_back + 5 {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "no frames after the reboot: {:?}",
            client.error()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "frames again {:.2} s after the camera's return",
        t0.elapsed().as_secs_f64().max(0.0) + (t0 - back).as_secs_f64()
    );
    let (video, _, err) = ffprobe_result(probe);
    assert!(err.is_empty() || !err.contains("Connection"), "{err}");
    let gaps: Vec<f64> = times(&video).windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| *g > 0.0),
        "ffprobe: timestamps go back across the reboot"
    );
    let outage = gaps.iter().cloned().fold(0.0, f64::max);
    assert!(
        outage >= 2.0,
        "ffprobe saw no pause ({outage:.2} s): was the camera rebooted?"
    );
    let t = times(&video);
    let after = t.iter().filter(|x| **x > t[0] + 12.0).count();
    assert!(after > 20, "ffprobe: {after} frames after the reboot");
    let pts = client.pts.lock().unwrap().clone();
    assert!(
        pts.windows(2).all(|w| w[1] >= w[0]),
        "rtspsrc: timestamps go back"
    );
    assert!(client.error().is_none(), "{:?}", client.error());
    drop(client);

    // Bad input: garbage, an unknown path, an OPTIONS flood, 1,000 connections; nothing
    // leaks and the recording goes on.
    let pid = d.child.id();
    let before = fds_and_threads(pid);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (h, _) = rtsp(
        &mut s,
        &format!("DESCRIBE rtsp://127.0.0.1:{port}/nothing RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
    );
    assert!(h.starts_with("RTSP/1.0 404"), "{h}");
    for i in 0..2000 {
        s.write_all(format!("OPTIONS * RTSP/1.0\r\nCSeq: {i}\r\n\r\n").as_bytes())
            .unwrap();
    }
    drop(s);
    for junk in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        &[b'A'; 100_000][..],
        b"DESCRIBE\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = s.write_all(junk);
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let _ = s.read(&mut [0u8; 1024]);
    }
    for _ in 0..1000 {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        drop(s);
    }
    // Still serving.
    let (video, _, err) = ffprobe_result(ffprobe_frames(&url, "tcp", 3));
    assert!(video.len() > 10, "{err}");
    std::thread::sleep(Duration::from_secs(2));
    let after = fds_and_threads(pid);
    assert!(
        after.0 <= before.0 + 2 && after.1 <= before.1 + 2,
        "descriptors and threads before {before:?}, after {after:?}"
    );
    let (_, status, out) = d.stop();
    assert!(status.success(), "{out}");
    // The recording went on: segments every 2 s, none missing but the reboot's.
    let files = walk(&dir.join("front").join("ring"));
    assert!(files >= 15, "{files} segments recorded");
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(p: &std::path::Path) -> usize {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        usize::from(e.path().extension().is_some_and(|x| x == "mp4"))
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn digest_logins_and_no_password_in_the_debug_log() {
    let dir = temp_dir("rtsp-auth");
    let cam = tapo_sim::TapoSim::start(tapo_sim::TapoConfig::default()).unwrap();
    // One user from the environment, one from `homecam rtsp-passwd` (htdigest file).
    let cfg = camera_config(
        &dir,
        cam.port(),
        "[rtsp]\nlisten = \"127.0.0.1:0\"\n\n[[rtsp.user]]\nname = \"ha\"\npassword-env = \"RTSP_HA_PW\"",
    );
    std::fs::write(dir.join("homecam.toml"), &cfg).unwrap();
    let out = Command::new(BIN)
        .args([
            "rtsp-passwd",
            dir.join("homecam.toml").to_str().unwrap(),
            "vlc",
        ])
        .env("HOMECAM_RTSP_PASSWORD", "vlc-Secret-77")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let users = std::fs::read_to_string(dir.join("rtsp-users")).unwrap();
    assert!(
        users.starts_with("vlc:homecam:") && !users.contains("vlc-Secret-77"),
        "{users}"
    );

    let log = dir.join("gst.log");
    let log_s = log.display().to_string();
    let (d, port) = start(
        &dir,
        &cfg,
        &[
            ("RTSP_HA_PW", "ha-Secret-42"),
            ("GST_DEBUG", "*:7"),
            ("GST_DEBUG_FILE", &log_s),
        ],
    );
    let url = format!("rtsp://127.0.0.1:{port}/front");
    // No login, a wrong one: 401 with a digest challenge.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (h, _) = rtsp(
        &mut s,
        &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
    );
    assert!(
        h.starts_with("RTSP/1.0 401") && h.contains("WWW-Authenticate: Digest realm=\"homecam\""),
        "{h}"
    );
    let wrong = GstClient::start(&url, "tcp", Some(("ha", "wrong")));
    let t0 = Instant::now();
    let err = loop {
        if let Some(e) = wrong.error() {
            break e;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "a wrong password was let in"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        err.contains("Unauthorized") || err.contains("401") || err.contains("authenticat"),
        "{err}"
    );
    assert_eq!(wrong.video.load(Ordering::Relaxed), 0);
    drop(wrong);
    // Both users get the stream. Under GST_DEBUG=*:7 on a loaded machine the camera's
    // first frames can take longer to reach the re-stream than the 10 s a DESCRIBE waits
    // for them; the server then answers 400 (once seen in CI), so a client may try once
    // more. What is checked here is the login, not the first frame's delay.
    for (user, pw) in [("ha", "ha-Secret-42"), ("vlc", "vlc-Secret-77")] {
        let mut c = GstClient::start(&url, "tcp", Some((user, pw)));
        let mut t0 = Instant::now();
        let mut retried = false;
        let mut err = None;
        while c.video.load(Ordering::Relaxed) < 10 {
            err = c.error().or(err);
            if !retried
                && err
                    .as_deref()
                    .is_some_and(|e| e.contains("Bad Request (400)"))
            {
                retried = true;
                err = None;
                c = GstClient::start(&url, "tcp", Some((user, pw)));
                t0 = Instant::now();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "{user}: no video: {err:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let (_, _, out) = d.stop();
    let debug = std::fs::read(&log).unwrap();
    assert!(debug.len() > 100_000, "the debug log was not written");
    let debug = String::from_utf8_lossy(&debug);
    for secret in [
        "ha-Secret-42",
        "vlc-Secret-77",
        &tapo_sim::TapoConfig::default().password,
    ] {
        assert!(!debug.contains(secret), "the debug log holds a password");
        assert!(!out.contains(secret), "the output holds a password");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn auth_none_is_refused_off_loopback_and_users_are_required() {
    let dir = temp_dir("rtsp-config");
    for (rtsp, want) in [
        (
            "[rtsp]\nlisten = \"0.0.0.0:8554\"\nauth = \"none\"",
            "only allowed on a loopback address",
        ),
        ("[rtsp]\nlisten = \"8554\"", "is not host:port"),
        (
            "[rtsp]\n[[rtsp.user]]\nname = \"a:b\"\npassword-env = \"X\"",
            "a name without ':'",
        ),
    ] {
        let path = dir.join("bad.toml");
        std::fs::write(&path, camera_config(&dir, 9, rtsp)).unwrap();
        let out = Command::new(BIN)
            .args(["check", path.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success() && text.contains(want),
            "{rtsp}: {text}"
        );
    }
    // Digest without any user: the daemon says how to add one.
    let path = dir.join("nousers.toml");
    std::fs::write(
        &path,
        camera_config(&dir, 9, "[rtsp]\nlisten = \"127.0.0.1:0\""),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["run", path.to_str().unwrap(), "--seconds", "1"])
        .env("FRONT_PW", "x")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("rtsp: no users: add one with `homecam rtsp-passwd"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// CPU time (user + system) of process `pid`, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// `scripts/bench-restream`: the daemon's CPU and memory with 0, 1, 10 and 50 RTSP clients
/// of one 1080p camera (which it also records), and how long a client that joins waits
/// for its first frame.
#[test]
#[ignore]
fn bench_restream() {
    let dir = temp_dir("rtsp-bench");
    let cam = tapo_sim::TapoSim::start(tapo_sim::TapoConfig::default()).unwrap();
    let cfg = camera_config(
        &dir,
        cam.port(),
        "[rtsp]\nlisten = \"127.0.0.1:0\"\nauth = \"none\"\nmax-sessions = 100",
    )
    .replace("/stream2", "/stream1")
    .replace("segment = \"2s\"", "segment = \"60s\"");
    let (d, port) = start(&dir, &cfg, &[]);
    let url = format!("rtsp://127.0.0.1:{port}/front");
    let pid = d.child.id();
    // The camera's second session: a client reading the camera directly, whose frames'
    // arrival times are compared with the same frames' through homecam.
    let pw = tapo_sim::TapoConfig::default().password;
    let direct = GstClient::start(
        &format!("rtsp://127.0.0.1:{}/stream1", cam.port()),
        "tcp",
        Some(("admin", pw.as_str())),
    );
    std::thread::sleep(Duration::from_secs(3));
    let window = Duration::from_secs(
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(15),
    );
    println!("| RTSP clients | homecam CPU (2 cores = 200 %) | RSS | frames each (of the camera's) | first frame after joining, median / max | latency added by homecam, median / p90 |");
    println!("|---|---|---|---|---|---|");
    let mut base = None;
    for n in [0usize, 1, 10, 50] {
        let t_join = Instant::now();
        let clients: Vec<GstClient> = (0..n)
            .map(|i| GstClient::start(&url, if i % 2 == 0 { "tcp" } else { "udp" }, None))
            .collect();
        let mut joined: Vec<Option<f64>> = vec![None; n];
        while joined.iter().any(|j| j.is_none()) && t_join.elapsed() < Duration::from_secs(30) {
            for (i, c) in clients.iter().enumerate() {
                if joined[i].is_none() && c.video.load(Ordering::Relaxed) > 0 {
                    joined[i] = Some(t_join.elapsed().as_secs_f64());
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_secs(2));
        let (cpu0, frames0) = (
            cpu_seconds(pid),
            cam.counters().video_frames.load(Ordering::Relaxed),
        );
        let got0: Vec<u64> = clients
            .iter()
            .map(|c| c.video.load(Ordering::Relaxed))
            .collect();
        let t0 = Instant::now();
        std::thread::sleep(window);
        let cpu = (cpu_seconds(pid) - cpu0) / t0.elapsed().as_secs_f64() * 100.0;
        let sent = cam.counters().video_frames.load(Ordering::Relaxed) - frames0;
        let least = clients
            .iter()
            .zip(&got0)
            .map(|(c, g)| c.video.load(Ordering::Relaxed) - g)
            .min();
        let rss = rss_mib(pid);
        let mut j: Vec<f64> = joined.iter().flatten().copied().collect();
        j.sort_by(f64::total_cmp);
        let join = if j.is_empty() {
            "n/a".to_string()
        } else {
            format!("{:.2} / {:.2} s", j[j.len() / 2], j[j.len() - 1])
        };
        let (b_cpu, b_rss) = *base.get_or_insert((cpu, rss));
        // The same frames, through homecam and straight from the camera (TCP both).
        let mut added: Vec<f64> = Vec::new();
        if let Some(c) = clients.first() {
            let direct = direct.arrivals.lock().unwrap();
            for (h, times) in c.arrivals.lock().unwrap().iter() {
                let Some(d) = direct.get(h) else { continue };
                for t in times {
                    // The same frame's arrival straight from the camera: the nearest one
                    // (the clip loops every several seconds).
                    let gap = |x: &Instant| {
                        t.saturating_duration_since(*x)
                            .max(x.saturating_duration_since(*t))
                    };
                    if let Some(x) = d.iter().min_by_key(|x| gap(x)) {
                        let ms = t.saturating_duration_since(*x).as_secs_f64() * 1000.0
                            - x.saturating_duration_since(*t).as_secs_f64() * 1000.0;
                        added.push(ms);
                    }
                }
            }
        }
        added.sort_by(f64::total_cmp);
        let latency = if added.len() < 10 {
            "n/a".to_string()
        } else {
            format!(
                "{:.1} / {:.1} ms ({} frames)",
                added[added.len() / 2],
                added[added.len() * 9 / 10],
                added.len()
            )
        };
        println!(
            "| {n} | {cpu:.1} % ({:.2}x the camera alone) | {rss:.0} MiB (+{:.2} MiB per client) | {} of {sent} | {join} | {latency} |",
            cpu / b_cpu,
            if n > 0 { (rss - b_rss) / n as f64 } else { 0.0 },
            least.map_or("n/a".into(), |l| l.to_string()),
        );
        drop(clients);
        std::thread::sleep(Duration::from_secs(3));
    }
    let _ = d.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
