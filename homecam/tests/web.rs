//! The web app against the real daemon: a simulated Tapo camera showing people walking in
//! a hallway (opencv-doc's vtest.avi, with quiet spells so that events end), recording,
//! motion clips and `[web]`, with a camera outage in the middle.
//!
//! - The API: login (argon2 users file from `homecam passwd`), events with clip and
//!   snapshot, the recordings with exactly one gap where the outage was, a 20 s export
//!   across a segment boundary that plays for 20 s (gst-discoverer and a decode), Range
//!   requests, server-sent events, the live views, statistics.
//! - Bad input: path traversal, huge limits, inverted ranges, unknown ids and cameras, a
//!   segment file deleted from under an export, logins without or with a wrong password
//!   and their slowing down, foreign origins, oversized bodies.
//! - Headless Chromium: log in, the live wall moves, an event's clip plays, the timeline
//!   draws and a range selected on it downloads a playable file, the charts have data.
//!   Screenshots go to target/test-artifacts/web/.
//! - The database deleted while the daemon is stopped: rebuilt at the next start with
//!   every event and segment.

mod common;
use common::*;

use serde_json::Value;
use std::io::{BufRead, Read};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_homecam");
const USER: &str = "anna";
const PASSWORD: &str = "correct horse battery";

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The daemon and its web port.
struct Daemon {
    p: Homecam,
    port: u16,
}

impl Daemon {
    fn start(cfg: &std::path::Path) -> Daemon {
        let p = Homecam::start(
            BIN,
            &["run", cfg.to_str().unwrap()],
            &[("HALL_PW", &tapo_sim::TapoConfig::default().password)],
        );
        let port = p.port("web app");
        Daemon { p, port }
    }

    fn output(&self) -> String {
        self.p.output()
    }

    fn wait_line(&self, what: &str) {
        self.p.wait_line(what, Duration::from_secs(10));
    }

    /// SIGTERM; the time until the process has exited, and its output.
    fn stop(self) -> (Duration, String) {
        let (took, status, out) = self.p.stop();
        assert!(status.success(), "homecam exited with {status}: {out}");
        (took, out)
    }
}

fn login(port: u16) -> String {
    let body = format!(r#"{{"user":"{USER}","password":"{PASSWORD}"}}"#);
    let r = http(
        port,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "login: {}", r.text());
    let c = r
        .header("set-cookie")
        .expect("a session cookie")
        .to_string();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict"),
        "{c}"
    );
    c.split(';').next().unwrap().to_string()
}

fn events(port: u16, cookie: &str) -> Vec<Value> {
    let r = get(port, "/api/events?limit=500", cookie);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["events"].as_array().unwrap().clone()
}

fn fetch_to(port: u16, path: &str, cookie: &str, file: &std::path::Path) -> Resp {
    let r = get(port, path, cookie);
    std::fs::write(file, &r.body).unwrap();
    r
}

/// Whether GStreamer decodes every video frame of an MP4 without an error.
fn decodes(file: &std::path::Path) -> usize {
    use gst::prelude::*;
    gst::init().unwrap();
    let p = gst::parse::launch(&format!(
        "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! appsink name=s sync=false",
        file.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = p
        .by_name("s")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let mut n = 0;
    while sink
        .try_pull_sample(gst::ClockTime::from_seconds(10))
        .is_some()
    {
        n += 1;
    }
    let errors = p.bus().unwrap().pop_filtered(&[gst::MessageType::Error]);
    p.set_state(gst::State::Null).unwrap();
    assert!(
        errors.is_none(),
        "{} does not decode: {errors:?}",
        file.display()
    );
    n
}

#[test]
fn the_web_app_shows_a_day_in_the_hallway() {
    let dir = std::env::temp_dir().join(format!("homecam-web-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let artifacts = test_browser::artifacts("web");
    // 20 s of people walking, then 12 s of a still hallway, looped.
    let cam = people_camera(12);
    let cfg = dir.join("homecam.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[general]
metrics = ""
status-interval = 5
data-dir = "{dir}"

[web]
listen = "127.0.0.1:0"

[insights]
period = 10

[[camera]]
name = "hall"
location = "Hallway"
uri = "rtsp://admin@127.0.0.1:{port}/stream2"
password-env = "HALL_PW"
record = {{ segment = "6s" }}
motion = {{ record = "confirmed", pre-roll = 2, post-roll = 2 }}
"#,
            port = cam.port(),
            dir = dir.display(),
        ),
    )
    .unwrap();

    // homecam passwd: the password from the environment, kept as an argon2 hash.
    let out = Command::new(BIN)
        .args(["passwd", cfg.to_str().unwrap(), USER])
        .env("HOMECAM_WEB_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let users = std::fs::read_to_string(dir.join("web-users")).unwrap();
    assert!(
        users.starts_with("anna:$argon2id$") && !users.contains(PASSWORD),
        "{users}"
    );

    let started = now();
    let d = Daemon::start(&cfg);
    let port = d.port;

    // ---- Logins ------------------------------------------------------------------------
    let r = http(port, "GET", "/api/events", &[], b"");
    assert_eq!(r.status, 401, "no session: {}", r.text());
    let r = http(port, "GET", "/", &[], b"");
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    let r = http(port, "GET", "/live/hall.jpg", &[], b"");
    assert_eq!(r.status, 401, "the live view needs a login too");
    let r = http(
        port,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        br#"{"user":"anna"}"#,
    );
    assert_eq!(r.status, 400, "no password: {}", r.text());
    let r = http(port, "POST", "/api/login", &[], b"user=anna&password=wrong");
    assert_eq!(r.status, 401, "wrong password: {}", r.text());
    assert!(r.header("set-cookie").is_none());
    let cookie = login(port);
    let r = http(
        port,
        "POST",
        "/api/logout",
        &[("Cookie", &cookie), ("Origin", "http://evil.example")],
        b"",
    );
    assert_eq!(r.status, 403, "a foreign origin: {}", r.text());
    let r = http(port, "POST", "/api/login", &[], &vec![b'x'; 100_000]);
    assert_eq!(r.status, 413, "a huge body");

    // Server-sent events from now on.
    let (mut sse, head) = open_stream(port, "/api/stream", &cookie);
    assert!(head.contains("text/event-stream"), "{head}");
    let sse_lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let s2 = sse_lines.clone();
    std::thread::spawn(move || loop {
        let mut l = String::new();
        match sse.read_line(&mut l) {
            Ok(0) => return,
            Ok(_) => s2.lock().unwrap().push(l.trim_end().to_string()),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    });

    // ---- Live views --------------------------------------------------------------------
    let t0 = Instant::now();
    let jpg = loop {
        let r = get(port, "/live/hall.jpg", &cookie);
        if r.status == 200 {
            break r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no live picture: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(jpg.header("content-type"), Some("image/jpeg"));
    assert_eq!(&jpg.body[..2], &[0xff, 0xd8]);
    let (mut mjpeg, head) = open_stream(port, "/live/hall.mjpeg", &cookie);
    assert!(head.contains("multipart/x-mixed-replace"), "{head}");
    let mut part = vec![0u8; 64 * 1024];
    mjpeg.read_exact(&mut part).unwrap();
    assert!(
        part.windows(2).any(|w| w == [0xff, 0xd8]),
        "no JPEG in the MJPEG stream"
    );
    drop(mjpeg);
    let cams = get(port, "/api/cameras", &cookie).json();
    assert_eq!(cams["cameras"][0]["name"], "hall");
    assert_eq!(cams["cameras"][0]["live"]["mjpeg"], "/live/hall.mjpeg");
    assert_eq!(cams["cameras"][0]["live"]["mp4"], "/live/hall.mp4");
    // The live MP4, read by ffprobe (not ours): the camera's H.264 as it came, and AAC.
    let r = http(port, "GET", "/live/hall.mp4", &[], b"");
    assert_eq!(r.status, 401, "the MP4 live view needs a login too");
    let ffprobe = |path: &str| {
        let out = Command::new("timeout")
            .args(["30", "ffprobe", "-v", "error", "-headers"])
            .arg(format!("Cookie: {cookie}\r\n"))
            .args(["-show_streams", "-of", "json"])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .unwrap();
        let probe: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let codecs: Vec<String> = probe["streams"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s["codec_name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (probe, codecs, err)
    };
    let (probe, codecs, err) = ffprobe("/live/hall.mp4");
    assert_eq!(
        codecs,
        ["h264", "aac"],
        "ffprobe of /live/hall.mp4: {probe} {err}"
    );
    let (probe2, codecs, err) = ffprobe("/live/hall.mp4?audio=0");
    assert_eq!(codecs, ["h264"], "ffprobe of ?audio=0: {probe2} {err}");
    assert!(
        probe["streams"][0]["width"].as_u64().unwrap_or(0) >= 320,
        "{probe}"
    );

    // ---- A confirmed person with clip and snapshot --------------------------------------
    let t0 = Instant::now();
    let event = loop {
        let e = events(port, &cookie).into_iter().find(|e| {
            e["type"] == "end" && e["verdict"] == "confirmed" && e["clip_url"].is_string()
        });
        if let Some(e) = e {
            break e;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no ended event with a clip: {:#?}\n{}",
            events(port, &cookie),
            d.output()
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(event["label"], "person", "{event}");
    assert!(
        event.get("clip").is_none(),
        "no file paths in the API: {event}"
    );
    let id = event["id"].as_str().unwrap().to_string();
    let one = get(port, &format!("/api/events/{id}"), &cookie);
    assert_eq!(one.json()["id"], id.as_str());
    let clip = dir.join("clip.mp4");
    let r = fetch_to(port, event["clip_url"].as_str().unwrap(), &cookie, &clip);
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("video/mp4"))
    );
    let (dur, report) = discover(&clip);
    assert!(dur > 3.0, "the clip: {report}");
    let r = get(port, event["snapshot_url"].as_str().unwrap(), &cookie);
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("image/jpeg"))
    );
    assert_eq!(&r.body[..2], &[0xff, 0xd8]);

    // ---- An outage: the camera reboots and is away for 6 s ------------------------------
    let outage = now();
    cam.restart(Duration::from_secs(6));
    std::thread::sleep(Duration::from_secs(24));

    // ---- Recordings: exactly one gap, where the outage was ------------------------------
    let rec = get(
        port,
        &format!("/api/recordings?camera=hall&start={}", started - 5.0),
        &cookie,
    );
    assert_eq!(rec.status, 200, "{}", rec.text());
    let rec = rec.json();
    let gaps = rec["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "one gap: {rec}");
    let (g0, g1) = (gaps[0][0].as_f64().unwrap(), gaps[0][1].as_f64().unwrap());
    assert!(
        (outage - 2.0..outage + 2.0).contains(&g0) && (outage + 5.0..outage + 16.0).contains(&g1),
        "the gap {g0}-{g1} is not the outage at {outage} (6 s)"
    );
    let segs = rec["segments"].as_array().unwrap().clone();
    assert!(segs.len() >= 5, "{rec}");

    // ---- A 20 s export across a segment boundary, before the outage --------------------
    let first = segs[0]["start"].as_f64().unwrap();
    let boundary = segs
        .windows(2)
        .map(|w| {
            (
                w[0]["end"].as_f64().unwrap(),
                w[1]["start"].as_f64().unwrap(),
            )
        })
        .find(|(end, next)| (next - end).abs() < 0.5 && end - 10.0 >= first && end + 10.0 <= g0)
        .map(|(end, _)| end)
        .unwrap_or_else(|| panic!("no segment boundary with 10 s recorded on each side: {rec}"));
    let (a, b) = (boundary - 10.0, boundary + 10.0);
    let export = dir.join("export.mp4");
    let path = format!("/api/export.mp4?camera=hall&start={a:.3}&end={b:.3}");
    let full = fetch_to(port, &path, &cookie, &export);
    assert_eq!(full.status, 200, "{}", full.text());
    assert_eq!(
        full.header("x-homecam-complete"),
        Some("true"),
        "{:?}",
        full.headers
    );
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    let (dur, report) = discover(&export);
    assert!(
        report.contains("video #") && report.contains("H.264"),
        "{report}"
    );
    assert!(report.contains("audio #"), "the camera's audio: {report}");
    assert!(
        (dur - 20.0).abs() <= 0.1,
        "20 s within a frame (0.1 s): {dur}\n{report}"
    );
    let decoded = decodes(&export);
    assert!(decoded > 150, "GStreamer decoded {decoded} frames");
    // What a player presents (a browser, below): every frame from the start to the end.
    let fps = {
        let (f, t): (f64, f64) = segs.iter().fold((0.0, 0.0), |(f, t), s| {
            (
                f + s["frames"].as_f64().unwrap(),
                t + s["end"].as_f64().unwrap() - s["start"].as_f64().unwrap(),
            )
        });
        f / t
    };
    eprintln!(
        "export {a:.3}-{b:.3}: {} bytes, {dur:.3} s, camera at {fps:.2} fps",
        full.body.len()
    );

    // Range requests.
    let size = full.body.len();
    let r = http(
        port,
        "GET",
        &path,
        &[("Cookie", &cookie), ("Range", "bytes=100-199")],
        b"",
    );
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 100-199/{size}").as_str())
    );
    assert_eq!(r.body, full.body[100..200]);
    let r = http(
        port,
        "GET",
        &path,
        &[("Cookie", &cookie), ("Range", "bytes=-16")],
        b"",
    );
    assert_eq!((r.status, &r.body[..]), (206, &full.body[size - 16..]));
    let from = size / 2;
    let r = http(
        port,
        "GET",
        &path,
        &[("Cookie", &cookie), ("Range", &format!("bytes={from}-"))],
        b"",
    );
    assert_eq!((r.status, r.body.len()), (206, size - from));
    assert_eq!(r.body, full.body[from..]);
    for bad in [
        format!("bytes={size}-"),
        "bytes=abc".into(),
        "bytes=9-3".into(),
    ] {
        let r = http(
            port,
            "GET",
            &path,
            &[("Cookie", &cookie), ("Range", &bad)],
            b"",
        );
        assert_eq!(r.status, 416, "{bad}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes */{size}").as_str())
        );
    }
    // Across the outage: the missing part is said.
    let r = get(
        port,
        &format!(
            "/api/export.mp4?camera=hall&start={:.3}&end={:.3}",
            g0 - 4.0,
            g1 + 4.0
        ),
        &cookie,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-homecam-complete"), Some("false"));
    let missing = r
        .header("x-homecam-missing")
        .expect("x-homecam-missing")
        .to_string();
    let (m0, m1) = missing.split(',').next().unwrap().split_once('-').unwrap();
    let (m0, m1): (f64, f64) = (m0.parse().unwrap(), m1.parse().unwrap());
    assert!(
        (m0 - g0).abs() < 1.0 && (m1 - g1).abs() < 1.0,
        "{missing} vs {g0}-{g1}"
    );

    // ---- Statistics, insights, server-sent events --------------------------------------
    let st = get(
        port,
        &format!("/api/stats?bucket=hour&since={}", started - 3600.0),
        &cookie,
    )
    .json();
    let counted: u64 = st["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert!(counted >= 2, "{st}");
    let ins = get(port, "/api/insights", &cookie).json();
    assert!(!ins["insights"].as_array().unwrap().is_empty(), "{ins}");
    {
        let l = sse_lines.lock().unwrap();
        assert!(
            l.iter().any(|x| x == "event: status"),
            "the outage on the stream: {l:?}"
        );
        assert!(
            l.iter().any(|x| x == "event: event"),
            "events on the stream: {l:?}"
        );
        assert!(
            !l.iter().any(|x| x.contains("/clips/")),
            "no file paths on the stream"
        );
    }

    // ---- Bad input ---------------------------------------------------------------------
    for (path, want) in [
        ("/api/events/..%2F..%2Fetc%2Fpasswd/clip.mp4", 404),
        ("/api/events/../../etc/passwd", 404),
        ("/api/events/%2e%2e/snapshot.jpg", 404),
        ("/api/events/nosuchevent", 404),
        ("/api/events/nosuchevent/clip.mp4", 404),
        (&format!("/api/events/{id}/..%2F..%2Fhomecam.toml"), 404),
        ("/live/..%2F..%2Fetc%2Fpasswd", 404),
        ("/live/nocam.jpg", 404),
        ("/api/events?limit=100000", 400),
        ("/api/events?limit=0", 400),
        ("/api/events?limit=-1", 400),
        ("/api/events?camera=nocam", 404),
        ("/api/events?verdict=maybe", 400),
        ("/api/events?since=yesterday", 400),
        ("/api/events?since=2000&until=1000", 400),
        ("/api/events?before=garbage", 400),
        ("/api/events?path=/etc/passwd", 400),
        ("/api/recordings?camera=hall&start=2000&end=1000", 400),
        ("/api/recordings?camera=hall", 400),
        ("/api/recordings?start=1000", 400),
        ("/api/export.mp4?camera=hall&start=2000&end=1000", 400),
        ("/api/export.mp4?camera=hall&start=1000&end=999999", 400),
        ("/api/export.mp4?camera=hall&start=1000&end=1020", 404),
        ("/api/export.mp4?camera=nocam&start=1000&end=1020", 404),
        ("/api/stats?bucket=minute", 400),
        ("/etc/passwd", 404),
    ] {
        let r = get(port, path, &cookie);
        assert_eq!(r.status, want, "{path}: {}", r.text());
        if r.status >= 400 && r.header("content-type") == Some("application/json") {
            assert!(r.json()["error"].is_string(), "{path}");
        }
    }
    let long = format!("/api/events?camera={}", "x".repeat(300));
    assert_eq!(get(port, &long, &cookie).status, 400);
    // Cursor paging: page 2 continues page 1.
    let all = events(port, &cookie);
    if all.len() >= 2 {
        let p1 = get(port, "/api/events?limit=1", &cookie).json();
        let next = p1["next"].as_str().unwrap().to_string();
        let p2 = get(port, &format!("/api/events?limit=1&before={next}"), &cookie).json();
        assert_eq!(p2["events"][0]["id"], all[1]["id"], "page 2 of 1: {p2}");
    }

    // ---- The browser --------------------------------------------------------------------
    browser_checks(port, &dir, &artifacts, started, &path, 20.0 * fps);

    // ---- A segment file deleted from under an export -----------------------------------
    let victim = segs[1].clone();
    let ring = dir.join("hall/ring");
    let victim_file = std::fs::read_dir(&ring)
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|f| f.path())
        .find(|p| {
            // The file whose name (to the second) is the segment's start.
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            let t = victim["start"].as_f64().unwrap() as u64;
            let (y, mo, dd, h, mi, s) = gst_cam_common::time::civil(t);
            n.contains(&format!("{y:04}{mo:02}{dd:02}T{h:02}{mi:02}{s:02}Z"))
        })
        .unwrap_or_else(|| panic!("no file for {victim}"));
    std::fs::remove_file(&victim_file).unwrap();
    let (v0, v1) = (
        victim["start"].as_f64().unwrap(),
        victim["end"].as_f64().unwrap(),
    );
    let r = fetch_to(
        port,
        &format!(
            "/api/export.mp4?camera=hall&start={:.3}&end={:.3}",
            v0 - 3.0,
            v1 + 3.0
        ),
        &cookie,
        &export,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let missing = r
        .header("x-homecam-missing")
        .unwrap_or_default()
        .to_string();
    assert!(
        missing.contains(&format!("{v0:.0}"))
            || missing.split(',').any(|m| {
                let (a, b) = m.split_once('-').unwrap();
                a.parse::<f64>().unwrap() <= v0 + 0.5 && b.parse::<f64>().unwrap() >= v1 - 0.5
            }),
        "the deleted segment {v0}-{v1} is missing: {missing}"
    );
    let (dur, report) = discover(&export);
    assert!(dur > 1.0, "the rest still plays: {report}");

    // Repeated failed logins are slowed down; the session already open keeps working.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = http(port, "POST", "/api/login", &[], b"user=anna&password=guess");
        statuses.push((r.status, r.header("retry-after").map(str::to_string)));
    }
    assert!(
        statuses.iter().take(3).all(|(s, _)| *s == 401),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .skip(3)
            .all(|(s, r)| *s == 429 && r.is_some()),
        "{statuses:?}"
    );
    assert_eq!(get(port, "/api/me", &cookie).json()["user"], USER);

    // The index as it stands, before the stop.
    let before_ids: Vec<String> = events(port, &cookie)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let stop_at = now();

    // ---- Stop: quick, every file finished ----------------------------------------------
    let r = Command::new(BIN)
        .args(["reindex", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        !r.status.success(),
        "reindex while the daemon runs must refuse"
    );
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("another homecam"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let (took, output) = d.stop();
    eprintln!("SIGTERM to exit: {:.2} s", took.as_secs_f64());
    assert!(output.contains("homecam: stopped in"), "{output}");
    assert!(!output.contains("did not get through"), "{output}");
    assert!(!output.contains(PASSWORD));

    // ---- The database is lost while the daemon is stopped ------------------------------
    let index_dir = dir.join("index");
    for f in ["homecam.db", "homecam.db-wal", "homecam.db-shm"] {
        let _ = std::fs::remove_file(index_dir.join(f));
    }
    let d = Daemon::start(&cfg);
    let cookie = login(d.port);
    let after: Vec<String> = events(d.port, &cookie)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    for id in &before_ids {
        assert!(
            after.contains(id),
            "event {id} lost with the database: {after:?}"
        );
    }
    let rec2 = get(
        d.port,
        &format!(
            "/api/recordings?camera=hall&start={}&end={stop_at}",
            started - 5.0
        ),
        &cookie,
    )
    .json();
    let before_segs: Vec<f64> = rec["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_f64().unwrap())
        .filter(|s| (*s - v0).abs() > 0.01)
        .collect();
    let after_segs: Vec<f64> = rec2["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_f64().unwrap())
        .collect();
    for s in &before_segs {
        assert!(
            after_segs.iter().any(|a| (a - s).abs() < 0.01),
            "segment at {s} lost with the database: {after_segs:?}"
        );
    }
    d.wait_line("rebuilding it from the journal");
    let _ = d.stop();
    drop(cam);
    let _ = std::fs::remove_dir_all(&dir);
}

fn browser_checks(
    port: u16,
    dir: &std::path::Path,
    artifacts: &std::path::Path,
    started: f64,
    export: &str,
    export_frames: f64,
) {
    let mut b = test_browser::Browser::launch(1280, 900);
    let s = b.open(&format!("http://127.0.0.1:{port}/"));
    // Redirected to the login page; log in through the form.
    b.wait_for(
        &s,
        "location.pathname == '/login' && !!document.querySelector('#login')",
        Duration::from_secs(15),
        "the login page",
    );
    b.eval(
        &s,
        &format!(
            "document.querySelector('[name=user]').value = '{USER}'; \
             document.querySelector('[name=password]').value = '{PASSWORD}'; \
             document.querySelector('#login').requestSubmit(); true"
        ),
    );
    b.wait_for(
        &s,
        "location.pathname == '/' && document.querySelectorAll('#wall .picture').length",
        Duration::from_secs(15),
        "the app after the login",
    );
    // The 20 s export plays for 20 s in the browser, every frame of the range presented.
    let r = b.eval(
        &s,
        &format!(
            "new Promise(done => {{ const v = document.createElement('video'); v.muted = true; \
               v.onended = () => done(JSON.stringify({{t: v.currentTime, d: v.duration, f: v.getVideoPlaybackQuality().totalVideoFrames}})); \
               v.onerror = () => done(JSON.stringify({{error: v.error && v.error.code}})); \
               v.src = '{export}'; v.playbackRate = 4; v.play(); }})"
        ),
    );
    let r: Value = serde_json::from_str(r.as_str().unwrap()).unwrap();
    eprintln!("the export in Chromium: {r}");
    let (t, d, f) = (
        r["t"].as_f64().unwrap_or(-1.0),
        r["d"].as_f64().unwrap_or(-1.0),
        r["f"].as_f64().unwrap_or(-1.0),
    );
    // Within about a frame (10 fps): the range's cut points are the frames nearest them.
    assert!((d - 20.0).abs() <= 0.15 && (t - 20.0).abs() <= 0.15, "{r}");
    assert!(
        (f - export_frames).abs() <= 3.0,
        "{f} frames presented, {export_frames:.0} expected"
    );
    // The live wall plays the camera's H.264 through MSE, muted and without audio at
    // first; the sound button brings the camera's sound (AAC), close behind the newest
    // frame.
    b.wait_for(
        &s,
        "(() => { const v = document.querySelector('#wall [data-live=mp4] video'); \
           return v && v.currentTime > 2 && v.videoWidth > 0 && v.muted && v.webkitAudioDecodedByteCount == 0; })()",
        Duration::from_secs(30),
        "the muted MP4 live view",
    );
    b.eval(&s, "document.querySelector('#wall .sound').click(); true");
    let played = b.wait_for(
        &s,
        "(() => { const v = document.querySelector('#wall [data-live=mp4] video'); \
           return v && !v.muted && v.currentTime > 3 && v.webkitAudioDecodedByteCount > 0 && v.videoWidth \
             && JSON.stringify({t: v.currentTime, w: v.videoWidth, audio: v.webkitAudioDecodedByteCount, \
               lag: v.buffered.end(v.buffered.length - 1) - v.currentTime, \
               frames: v.getVideoPlaybackQuality().totalVideoFrames}); })()",
        Duration::from_secs(30),
        "the MP4 live view with sound",
    );
    eprintln!("the MP4 live view in Chromium: {played}");
    let played: Value = serde_json::from_str(played.as_str().unwrap()).unwrap();
    assert!(played["w"].as_u64().unwrap_or(0) >= 320, "{played}");
    assert!(
        // The player jumps ahead past 1 s behind; a loaded machine may catch it just before.
        played["lag"].as_f64().unwrap() < 2.5,
        "the player is far behind the newest frame: {played}"
    );
    // Where the MP4 stream fails, the wall falls back to MJPEG.
    b.eval(
        &s,
        "document.querySelector('#wall').append(livePicture({name: 'nope', live: {mp4: '/live/nope.mp4', mjpeg: '/live/hall.mjpeg'}})); true",
    );
    b.wait_for(
        &s,
        "(() => { const i = document.querySelector('#wall [data-live=mjpeg] img'); return i && i.naturalWidth; })()",
        Duration::from_secs(20),
        "the MJPEG fallback",
    );
    b.eval(&s, "(() => { const p = document.querySelector('#wall [data-live=mjpeg]'); stopPicture(p); p.remove(); return true; })()");
    b.wait_for(
        &s,
        "document.querySelector('#wall .badge').textContent == 'online'",
        Duration::from_secs(20),
        "the online badge",
    );
    // The camera's picture: not blank, and moving (within the 12 s the scene holds
    // still in each loop).
    let rect = b.eval(
        &s,
        "JSON.stringify([document.querySelector('#wall video').getBoundingClientRect(), devicePixelRatio])",
    );
    let rect: Value = serde_json::from_str(rect.as_str().unwrap()).unwrap();
    let f = |k: &str| rect[0][k].as_f64().unwrap();
    let dpr = rect[1].as_f64().unwrap();
    let picture =
        |shot: &test_browser::Shot| shot.region(f("left"), f("top"), f("width"), f("height"), dpr);
    let first = b.screenshot(&s);
    first.save(&artifacts.join("live-1.png"));
    let a = picture(&first);
    let (colours, lit) = a.colours_and_lit();
    assert!(
        a.pixels() > 10_000 && colours > 50 && lit * 2 > a.pixels(),
        "a blank live picture: {colours} colours, {lit} of {} pixels lit",
        a.pixels()
    );
    let t0 = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(1500));
        let shot = b.screenshot(&s);
        let changed = a.changed(&picture(&shot), 24);
        if changed * 1000 > a.pixels() {
            shot.save(&artifacts.join("live-2.png"));
            eprintln!("the live picture moved: {changed} pixels changed");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(18),
            "the live picture did not move: {changed} pixels"
        );
    }
    // Events: clicking one plays its clip.
    b.eval(&s, "location.hash = 'events'; true");
    b.wait_for(
        &s,
        "[...document.querySelectorAll('.event')].some(e => e.textContent.includes('clip'))",
        Duration::from_secs(15),
        "events with clips",
    );
    b.eval(&s, "[...document.querySelectorAll('.event')].find(e => e.textContent.includes('clip')).click(); true");
    let t = b.wait_for(&s, "document.querySelector('#clip').currentTime > 0.5 && document.querySelector('#clip').currentTime", Duration::from_secs(20), "the clip plays");
    b.screenshot(&s).save(&artifacts.join("events-clip.png"));
    eprintln!("clip played to {t} s");
    b.eval(&s, "document.querySelector('#modal-close').click(); true");
    // An alert's link (`#events/ID`), loaded afresh, opens the event.
    let id = b.eval(&s, "[...document.querySelectorAll('.event')].find(e => e.textContent.includes('clip')).dataset.id");
    let id = id.as_str().unwrap().to_string();
    // Page.navigate returns once the new document is committed; its elements may still
    // be on their way.
    let origin = b.eval(&s, "location.origin");
    b.cdp(
        Some(&s),
        "Page.navigate",
        serde_json::json!({"url": format!("{}/?from=alert#events/{id}", origin.as_str().unwrap())}),
    );
    b.wait_for(
        &s,
        "location.search == '?from=alert' && document.querySelector('#modal')?.hidden === false && document.querySelector('#clip')?.currentTime > 0.3",
        Duration::from_secs(20),
        "the linked event's clip plays",
    );
    b.eval(&s, "document.querySelector('#modal-close').click(); true");
    // The timeline: spans drawn; a range dragged on it downloads a playable MP4.
    b.eval(&s, "location.hash = 'timeline'; true");
    b.wait_for(&s, "document.querySelector('#timeline svg') && document.querySelectorAll('#timeline rect.span').length", Duration::from_secs(15), "the timeline's spans");
    b.screenshot(&s).save(&artifacts.join("timeline.png"));
    let rect = b.eval(
        &s,
        "JSON.stringify(document.querySelector('#timeline svg').getBoundingClientRect())",
    );
    let rect: Value = serde_json::from_str(rect.as_str().unwrap()).unwrap();
    let (x0, w, y) = (
        rect["left"].as_f64().unwrap(),
        rect["width"].as_f64().unwrap(),
        rect["top"].as_f64().unwrap() + 40.0,
    );
    // Local midnight, as the page counts the day.
    let day0 = b.eval(&s, "(() => { const d = new Date(); return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() / 1000; })()").as_f64().unwrap();
    let x = |t: f64| x0 + (t - day0) / 86400.0 * w;
    let (from, to) = (x(started - 300.0), x(now() + 60.0));
    for (kind, px) in [
        ("mousePressed", from),
        ("mouseMoved", (from + to) / 2.0),
        ("mouseReleased", to),
    ] {
        b.cdp(
            Some(&s),
            "Input.dispatchMouseEvent",
            serde_json::json!({"type": kind, "x": px, "y": y, "button": "left", "buttons": if kind == "mouseReleased" { 0 } else { 1 }, "clickCount": 1}),
        );
    }
    let href = b.wait_for(&s, "!document.querySelector('#selection').hidden && document.querySelector('#download').getAttribute('href')", Duration::from_secs(10), "a selected range");
    // A click plays the recording from that moment (an export, in the page's player).
    let at = x(started + 15.0);
    for kind in ["mousePressed", "mouseReleased"] {
        b.cdp(
            Some(&s),
            "Input.dispatchMouseEvent",
            serde_json::json!({"type": kind, "x": at, "y": y, "button": "left", "buttons": if kind == "mouseReleased" { 0 } else { 1 }, "clickCount": 1}),
        );
    }
    let t = b.wait_for(&s, "document.querySelector('#player').currentTime > 1 && document.querySelector('#player').currentTime", Duration::from_secs(20), "the recording plays from the moment clicked");
    eprintln!("timeline player reached {t} s");
    b.screenshot(&s)
        .save(&artifacts.join("timeline-playing.png"));
    let href = href.as_str().unwrap().to_string();
    assert!(
        href.starts_with("/api/export.mp4?camera=hall&") && href.contains("download=1"),
        "{href}"
    );
    let cookie = login(port);
    let file = dir.join("selected.mp4");
    let r = fetch_to(port, &href, &cookie, &file);
    assert_eq!(r.status, 200, "{href}: {}", r.text());
    assert!(r
        .header("content-disposition")
        .unwrap_or("")
        .starts_with("attachment"));
    let (dur, report) = discover(&file);
    assert!(dur > 10.0, "the selected range plays: {report}");
    // Charts with data.
    b.eval(&s, "location.hash = 'charts'; true");
    b.wait_for(&s, "Number((document.querySelector('#chart-day-camera svg') || {getAttribute: () => 0}).getAttribute('data-total')) > 0", Duration::from_secs(15), "the events chart");
    b.screenshot(&s).save(&artifacts.join("charts.png"));
    b.eval(&s, "location.hash = 'health'; true");
    b.wait_for(
        &s,
        "document.querySelectorAll('#health tbody tr').length",
        Duration::from_secs(10),
        "the health table",
    );
    b.screenshot(&s).save(&artifacts.join("health.png"));
}
