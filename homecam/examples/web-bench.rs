//! The web app's figures, printed (no assertions): `bash scripts/bench-web` runs it.
//!
//! 1. API latency (median, p99) with 100,000 events in the index: the first events page,
//!    a filtered page, a page deep in the cursor chain, one event, and a day of one
//!    camera's recordings (1,440 one-minute segments), through the real server over
//!    loopback, one request at a time on a kept-alive connection.
//! 2. Export throughput: the MP4 of 5 minutes of recordings (real fragmented MP4 segments
//!    made by ringrecorder from 720p H.264) read over HTTP, against `cat` of the same
//!    segment files, both from the page cache, alternated, median of 5.
//! 3. The daemon (the `homecam` binary next to this example) with one simulated camera
//!    (1280x720, 15 fps), ring recording and the web app: its CPU and memory with no
//!    viewer, then with 4 headless Chromium browsers on the live wall.
//!
//! ```text
//! cargo run --release -p homecam --example web-bench
//! ```

use gst::prelude::*;
use homecam::index::{self, Index, Record, SegmentRow};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Cams;

impl homecam::web::Cameras for Cams {
    fn list(&self) -> Vec<Value> {
        Vec::new()
    }
    fn names(&self) -> Vec<String> {
        (0..4).map(|i| format!("cam{i}")).collect()
    }
    fn current_segment(&self, _: &str) -> Option<(String, f64)> {
        None
    }
    fn has_recordings(&self) -> bool {
        true
    }
}

/// One GET on a kept-alive connection: (status, body).
fn get(s: &mut BufReader<TcpStream>, path: &str) -> (u16, Vec<u8>) {
    // One write: a request in pieces meets Nagle and delayed ACKs (40 ms each).
    s.get_mut()
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())
        .unwrap();
    let mut line = String::new();
    s.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut len = 0usize;
    let mut chunked = false;
    loop {
        line.clear();
        s.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        let l = line.to_ascii_lowercase();
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
        if l.starts_with("transfer-encoding:") && l.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            s.read_line(&mut line).unwrap();
            let n = usize::from_str_radix(line.trim(), 16).unwrap();
            let mut part = vec![0u8; n + 2];
            s.read_exact(&mut part).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&part[..n]);
        }
    } else {
        body.resize(len, 0);
        s.read_exact(&mut body).unwrap();
    }
    (status, body)
}

/// The web app over `index` (no login), on a runtime of its own: the runtime and port.
fn serve(index: Arc<Index>) -> (tokio::runtime::Runtime, u16) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let state = homecam::web::State::new(
        index,
        Arc::new(Cams),
        Default::default(),
        Default::default(),
        None,
        false,
    );
    let port = homecam::web::start(&rt, "127.0.0.1:0", state)
        .unwrap()
        .port();
    (rt, port)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn latency(port: u16, what: &str, path: &str, n: usize) {
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_nodelay(true).unwrap();
    let mut s = BufReader::new(c);
    let mut times = Vec::with_capacity(n);
    let mut bytes = 0;
    for i in 0..n + 5 {
        let t = Instant::now();
        let (status, body) = get(&mut s, path);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        if i >= 5 {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        bytes = body.len();
    }
    println!(
        "  {what:<44} median {:6.2} ms  p99 {:6.2} ms  ({bytes} bytes)",
        percentile(&mut times, 0.5),
        percentile(&mut times, 0.99)
    );
}

fn api_latency(dir: &Path) {
    println!("1. API latency, 100,000 events and a day of 1-minute segments in the index");
    let db = dir.join("index/homecam.db");
    let layout = index::Layout {
        journal: dir.join("index/journal"),
        events_max_age: 400.0 * 86400.0,
        ..Default::default()
    };
    let index = Index::open(&db, layout, |m| eprintln!("{m}")).unwrap();
    let now = homecam::event::now();
    let t0 = Instant::now();
    let labels = ["person", "motion", "cat", "dog", "car"];
    for i in 0..100_000u64 {
        // A week of events, newest last.
        let start = now - 7.0 * 86400.0 + i as f64 * 6.048;
        let label = labels[(i % 5) as usize];
        let v = json!({
            "type": "end", "id": format!("cam{}-1-{i}", i % 4), "camera": format!("cam{}", i % 4),
            "camera_name": format!("cam{}", i % 4), "location": "Bench", "label": label,
            "group": if label == "cat" || label == "dog" { "animal" } else if label == "person" { "person" } else { "" },
            "score": 0.8, "top_score": 0.8, "box": [0.1, 0.2, 0.3, 0.4], "zones": ["door"],
            "start_time": start, "end_time": start + 20.0, "has_clip": true, "has_snapshot": true,
            "clip": format!("/nonexistent/{i}.mp4"), "snapshot": format!("/nonexistent/{i}.jpg"),
            "event_type": "motion", "motion_score": 0.1,
            "verdict": if i % 3 == 0 { "dismissed" } else { "confirmed" },
            "confirmed": i % 3 != 0, "dismissed": i % 3 == 0, "origin": "",
        });
        index.record(Record::Event { v });
    }
    let day0 = now - 86400.0;
    for i in 0..1440u64 {
        let start = day0 + i as f64 * 60.0;
        index.record(Record::Segment(SegmentRow {
            camera: "cam0".into(),
            path: format!("/nonexistent/seg-{i}.mp4"),
            start,
            end: start + 60.0 - if i % 97 == 0 { 20.0 } else { 0.0 },
            bytes: 15_000_000,
            frames: 900,
            gaps: Vec::new(),
        }));
    }
    assert!(index.flush(Duration::from_secs(120)));
    println!(
        "  (100,000 events and 1,440 segments indexed in {:.1} s through the writer)",
        t0.elapsed().as_secs_f64()
    );
    let (rt, port) = serve(index.clone());
    latency(port, "events, first page (50)", "/api/events", 300);
    latency(
        port,
        "events, cam2 + person + confirmed (50)",
        "/api/events?camera=cam2&label=person&verdict=confirmed",
        300,
    );
    // A cursor 60,000 events deep.
    let mut s = BufReader::new(TcpStream::connect(("127.0.0.1", port)).unwrap());
    let (_, body) = get(
        &mut s,
        &format!("/api/events?limit=1&until={}", now - 4.0 * 86400.0),
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    let e = &v["events"][0];
    let cursor = format!(
        "{:?}_{}",
        e["start_time"].as_f64().unwrap(),
        e["id"].as_str().unwrap()
    );
    latency(
        port,
        "events, a page 4 days back (cursor)",
        &format!("/api/events?limit=50&before={cursor}"),
        300,
    );
    latency(port, "one event", "/api/events/cam1-1-77777", 300);
    latency(
        port,
        "a day of recordings (1,440 segments)",
        &format!("/api/recordings?camera=cam0&start={day0}&end={now}"),
        100,
    );
    latency(
        port,
        "events per hour over 7 days",
        &format!("/api/stats?since={}", now - 7.0 * 86400.0),
        50,
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// 5 minutes of 720p15 H.264 as ringrecorder segments of 60 s: the files, oldest first.
fn make_segments(dir: &Path) -> Vec<PathBuf> {
    gst::init().unwrap();
    gstringrec::plugin_register_static().unwrap();
    let ring = dir.join("ring");
    let p = gst::parse::launch(&format!(
        "videotestsrc num-buffers=4500 pattern=snow \
         ! video/x-raw,format=I420,width=1280,height=720,framerate=15/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=2000 \
         ! h264parse ! ringrecorder location={} camera-name=bench max-size-time=60s",
        ring.display()
    ))
    .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    // Made faster than real time, several within a second: their order is the order
    // ringrecorder closes them in, not their names.
    let bus = p.bus().unwrap();
    let mut files = Vec::new();
    while let Some(m) = bus.timed_pop(gst::ClockTime::from_seconds(600)) {
        match m.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "ringrecorder-segment") {
                    files.push(PathBuf::from(s.get::<String>("path").unwrap()));
                }
            }
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("recording: {}", e.error()),
            _ => {}
        }
    }
    p.set_state(gst::State::Null).unwrap();
    files
}

fn export_throughput(dir: &Path) {
    println!(
        "2. Export throughput: 5 minutes of 720p15 H.264 (ringrecorder segments), page cache warm"
    );
    let files = make_segments(dir);
    let db = dir.join("exp-index/homecam.db");
    let layout = index::Layout {
        journal: dir.join("exp-index/journal"),
        events_max_age: 400.0 * 86400.0,
        ..Default::default()
    };
    let index = Index::open(&db, layout, |m| eprintln!("{m}")).unwrap();
    // The files were made faster than real time: their times are chained from their
    // samples, as one continuous recording.
    let mut t = 1_700_000_000.0;
    let mut total = 0u64;
    for f in &files {
        let row = index::read_segment("cam0", f, t, None, 0).expect("a readable segment");
        total += row.bytes;
        t = row.end;
        index.record(Record::Segment(row));
    }
    assert!(index.flush(Duration::from_secs(30)));
    let (start, end) = (1_700_000_000.0, t);
    println!(
        "  {} segments, {:.1} MB, {:.0} s",
        files.len(),
        total as f64 / 1e6,
        end - start
    );
    let (rt, port) = serve(index.clone());
    let path = format!("/api/export.mp4?camera=cam0&start={start}&end={end}");
    let mut http = Vec::new();
    let mut cat = Vec::new();
    let mut size = 0;
    for round in 0..6 {
        let t0 = Instant::now();
        let mut s = BufReader::new(TcpStream::connect(("127.0.0.1", port)).unwrap());
        let (status, body) = get(&mut s, &path);
        assert_eq!(
            status,
            200,
            "{}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
        let dt = t0.elapsed().as_secs_f64();
        size = body.len();
        let t0 = Instant::now();
        let out = std::process::Command::new("cat")
            .args(&files)
            .stdout(std::process::Stdio::piped())
            .output()
            .unwrap();
        let dc = t0.elapsed().as_secs_f64();
        assert!(out.stdout.len() as u64 == total);
        // The first round warms the cache and the export's header.
        if round > 0 {
            http.push(size as f64 / dt / 1e6);
            cat.push(total as f64 / dc / 1e6);
        }
    }
    let (h, c) = (percentile(&mut http, 0.5), percentile(&mut cat, 0.5));
    println!(
        "  export over HTTP: {h:.0} MB/s ({size} bytes); cat of the segments: {c:.0} MB/s; ratio {:.2}",
        h / c
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// utime + stime of `pid`, in seconds.
fn cpu(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn mem(pid: u32, key: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn daemon_with_viewers(dir: &Path) {
    println!("3. The daemon with one 1280x720 15 fps camera, ring recording and the web app");
    let cam = tapo_sim::TapoSim::start(tapo_sim::TapoConfig {
        main_size: (1280, 720),
        fps: 15,
        pattern: "pattern=ball motion=wavy".into(),
        ..Default::default()
    })
    .unwrap();
    let cfg = dir.join("homecam.toml");
    std::fs::write(
        &cfg,
        format!(
            "[general]\nmetrics = \"\"\ndata-dir = \"{}\"\n\n[web]\nlisten = \"127.0.0.1:0\"\nauth = \"none\"\n\n[[camera]]\nname = \"c\"\nuri = \"rtsp://admin@127.0.0.1:{}/stream1\"\npassword-env = \"PW\"\nrecord = {{ segment = \"60s\" }}\n",
            dir.join("daemon").display(),
            cam.port()
        ),
    )
    .unwrap();
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("homecam");
    let mut child = std::process::Command::new(bin)
        .args(["run", cfg.to_str().unwrap()])
        .env("PW", tapo_sim::TapoConfig::default().password)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let port = loop {
        let mut l = String::new();
        if out.read_line(&mut l).unwrap() == 0 {
            panic!("the daemon ended");
        }
        if let Some(p) = l
            .strip_prefix("homecam: web app at http://127.0.0.1:")
            .and_then(|r| r.split('/').next())
            .and_then(|p| p.parse::<u16>().ok())
        {
            break p;
        }
    };
    std::thread::spawn(move || for _ in out.lines() {});
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(8));
    let secs = 20.0;
    let measure = |what: &str| {
        let (c0, t0) = (cpu(pid), Instant::now());
        std::thread::sleep(Duration::from_secs_f64(secs));
        let c = (cpu(pid) - c0) / t0.elapsed().as_secs_f64() * 100.0;
        println!(
            "  {what:<28} CPU {c:5.1} % of one core, RSS {:.0} MiB (peak {:.0} MiB)",
            mem(pid, "VmRSS:"),
            mem(pid, "VmHWM:")
        );
    };
    measure("no viewer");
    let mut browsers = Vec::new();
    for _ in 0..4 {
        let mut b = test_browser::Browser::launch(1280, 800);
        let s = b.open(&format!("http://127.0.0.1:{port}/"));
        b.wait_for(&s, "document.querySelector('#wall img') && document.querySelector('#wall img').naturalWidth", Duration::from_secs(30), "the live wall");
        browsers.push(b);
    }
    measure("4 browsers on the live wall");
    drop(browsers);
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
}

fn main() {
    let dir = std::env::temp_dir().join(format!("homecam-web-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    homecam::daemon::init().unwrap();
    api_latency(&dir);
    export_throughput(&dir);
    daemon_with_viewers(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}
