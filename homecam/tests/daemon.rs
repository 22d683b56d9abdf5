//! The `homecam` binary against simulated Tapo cameras (real RTSP): `check` validates with
//! line numbers and probes; `run` records, serves, detects motion, publishes events and
//! `/metrics`, and keeps running while a camera is down.

mod common;
use common::free_port;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_homecam");

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("homecam-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sim(pattern: &str) -> tapo_sim::TapoSim {
    tapo_sim::TapoSim::start(tapo_sim::TapoConfig {
        pattern: pattern.into(),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn check_reports_line_numbers_and_probes_cameras() {
    let dir = tmpdir("check");
    let cam = sim("pattern=smpte");
    let cfg = dir.join("homecam.toml");
    std::fs::write(
        &cfg,
        format!(
            "[general]\ndata-dir = \"{}\"\n\n[[camera]]\nname = \"good\"\nuri = \"rtsp://admin@127.0.0.1:{}/stream2\"\npassword-env = \"GOOD_PW\"\n\n[[camera]]\nname = \"gone\"\nuri = \"rtsp://admin@127.0.0.1:{}/stream2\"\npassword-env = \"GOOD_PW\"\n",
            dir.display(),
            cam.port(),
            free_port()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", cfg.to_str().unwrap(), "--timeout", "25"])
        .env("GOOD_PW", tapo_sim::TapoConfig::default().password)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("good: ok: first frame"), "{text}");
    assert!(text.contains("video/x-h264"), "{text}");
    assert!(text.contains("gone: FAILED"), "{text}");
    assert!(
        !text.contains(&tapo_sim::TapoConfig::default().password),
        "{text}"
    );

    // A bad file: every error with its line, no probing.
    std::fs::write(
        &cfg,
        "[[camera]]\nname = \"a b\"\nuri = \"rtsp://admin:pw@10.0.0.1/stream1\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("line 2: camera name \"a b\""), "{text}");
    assert!(
        text.contains("line 3: camera \"a b\": the uri holds a password"),
        "{text}"
    );
    assert!(!text.contains(":pw@"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn run_records_serves_detects_and_survives_a_camera_outage() {
    let dir = tmpdir("run");
    let ball = sim("pattern=ball motion=wavy");
    let (metrics, web) = (free_port(), free_port());
    let cfg = dir.join("homecam.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[general]
status-interval = 2
metrics = "127.0.0.1:{metrics}"
data-dir = "{}"

[[camera]]
name = "yard"
location = "Back yard"
uri = "rtsp://admin@127.0.0.1:{}/stream2"
password-file = "{}"
record = {{ segment = "2s" }}
mjpeg = {{ port = {web}, bind = "127.0.0.1" }}
motion = {{ record = "all", pre-roll = 1, post-roll = 1 }}
"#,
            dir.display(),
            ball.port(),
            dir.join("pw").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("pw"),
        tapo_sim::TapoConfig::default().password + "\n",
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    sim_process::die_with_parent(&mut cmd);
    let mut child = cmd
        .args(["run", cfg.to_str().unwrap(), "--seconds", "40"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let l2 = lines.clone();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            l2.lock().unwrap().push(l);
        }
    });
    let wait_for = |what: &str, f: &dyn Fn(&str) -> bool, secs: u64| {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(secs) {
            if lines.lock().unwrap().iter().any(|l| f(l)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no {what} within {secs} s: {:#?}", lines.lock().unwrap());
    };
    wait_for(
        "online status",
        &|l| l.starts_with("status ") && l.contains("\"online\""),
        20,
    );
    wait_for(
        "motion event",
        &|l| l.starts_with("event ") && l.contains("\"type\":\"new\""),
        20,
    );
    let m = http_get(metrics, "/metrics");
    assert!(m.contains("homecam_camera_up{camera=\"yard\"} 1"), "{m}");
    assert!(m.contains("# TYPE homecam_events_total counter"), "{m}");
    // The memory figures a soak reads: resident size, and the heap in use under it.
    let figure = |prefix: &str| -> f64 {
        common::metric(&m, prefix).unwrap_or_else(|| panic!("no {prefix} in {m}"))
    };
    let rss = figure("process_resident_memory_bytes ");
    let in_use = figure("homecam_heap_bytes{kind=\"in_use\"} ");
    assert!(
        in_use > 1e6 && in_use < rss,
        "heap in use {in_use} B should be under the resident {rss} B"
    );
    let page = http_get(web, "/snapshot.jpg");
    assert!(
        page.starts_with("HTTP/1.1 200"),
        "{}",
        &page[..page.len().min(200)]
    );

    // The camera goes away for a while: the daemon reports it and carries on.
    let port = ball.port();
    drop(ball);
    wait_for(
        "offline status",
        &|l| l.starts_with("status ") && l.contains("\"offline\""),
        20,
    );
    let back = tapo_sim::TapoSim::start(tapo_sim::TapoConfig {
        pattern: "pattern=ball motion=wavy".into(),
        port,
        ..Default::default()
    })
    .unwrap();
    let t0 = Instant::now();
    loop {
        let n = lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("status ") && l.contains("\"online\""))
            .count();
        if n >= 2 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(25),
            "not back online: {:#?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // By now the daemon has trimmed its heap (15 s after start): the resident size right
    // after that trim is in /metrics, and it is a real process's size.
    let t0 = Instant::now();
    let floor = loop {
        let m = http_get(metrics, "/metrics");
        if let Some(f) = common::metric(&m, "homecam_resident_after_trim_bytes ") {
            break f;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "no homecam_resident_after_trim_bytes in {m}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        floor > 10e6 && floor < 4e9,
        "resident after the trim: {floor} B"
    );
    let status = child.wait().unwrap();
    reader.join().unwrap();
    drop(back);
    let lines = lines.lock().unwrap().clone();
    assert!(status.success(), "{lines:#?}");
    // Events: JSON with the Frigate fields; ends with a verdict.
    let events: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("event "))
        .map(|j| serde_json::from_str(j).unwrap())
        .collect();
    let ends: Vec<_> = events.iter().filter(|e| e["type"] == "end").collect();
    assert!(!ends.is_empty(), "{lines:#?}");
    for e in &ends {
        assert_eq!(e["camera"], "yard");
        assert_eq!(e["location"], "Back yard");
        assert!(
            e["verdict"] == "dismissed" || e["verdict"] == "confirmed",
            "{e}"
        );
        assert!(e["end_time"].as_f64().unwrap() >= e["start_time"].as_f64().unwrap());
    }
    assert!(
        events.iter().any(|e| e["has_clip"] == true),
        "no clip in {events:#?}"
    );
    // Status lines with the counters; recordings on disk.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("homecam: yard: online fps=") && l.contains("recorded=")),
        "{lines:#?}"
    );
    // Segments under a folder per day.
    let ring: Vec<_> = std::fs::read_dir(dir.join("yard/ring"))
        .unwrap()
        .flatten()
        .flat_map(|day| std::fs::read_dir(day.path()).unwrap().flatten())
        .map(|f| f.path())
        .filter(|p| p.extension().is_some_and(|e| e == "mp4" || e == "mkv"))
        .collect();
    assert!(ring.len() >= 2, "{ring:?}");
    let secret = tapo_sim::TapoConfig::default().password;
    assert!(
        lines.iter().all(|l| !l.contains(&secret)),
        "password in the output"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM with three recording cameras (audio to the recorders, motion clips on one):
/// the daemon ends quickly, every camera's end of stream gets through (no 10 s wait per
/// camera, as when an unlinked audio sink never got its EOS), and every file is complete.
#[test]
fn sigterm_finishes_every_recording_and_exits_at_once() {
    let dir = tmpdir("sigterm");
    let cams: Vec<tapo_sim::TapoSim> = (0..3).map(|_| sim("pattern=ball")).collect();
    let mut cfg = format!(
        "[general]\nmetrics = \"\"\nstatus-interval = 1\ndata-dir = \"{}\"\n",
        dir.display()
    );
    for (i, c) in cams.iter().enumerate() {
        cfg.push_str(&format!(
            "\n[[camera]]\nname = \"c{i}\"\nuri = \"rtsp://admin@127.0.0.1:{}/stream2\"\npassword-env = \"PW\"\nrecord = {{ segment = \"60s\" }}\n{}",
            c.port(),
            if i == 0 { "motion = { record = \"all\" }\n" } else { "" }
        ));
    }
    let path = dir.join("homecam.toml");
    std::fs::write(&path, cfg).unwrap();
    let d = common::Homecam::start(
        BIN,
        &["run", path.to_str().unwrap()],
        &[("PW", &tapo_sim::TapoConfig::default().password)],
    );
    // Every camera recording (its first segment file has a name).
    let t0 = Instant::now();
    let ring = |i: usize| dir.join(format!("c{i}/ring"));
    let files = |i: usize| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(ring(i))
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
            .map(|f| f.path())
            .collect()
    };
    while !(0..3).all(|i| {
        files(i)
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "mp4"))
    }) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "not every camera records: {}",
            d.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let (took, status, text) = d.stop();
    eprintln!(
        "SIGTERM to exit with 3 recording cameras: {:.2} s",
        took.as_secs_f64()
    );
    assert!(status.success(), "{status}: {text}");
    assert!(text.contains("homecam: stopped in"), "{text}");
    assert!(
        !text.contains("did not get through"),
        "an end of stream timed out: {text}"
    );
    // The bound is the issue's 2 s with room for a loaded machine; before the fix it
    // was 10 s per recording camera, one after the other.
    assert!(took < Duration::from_secs(5), "{took:?}: {text}");
    for i in 0..3 {
        let f = files(i);
        assert!(
            !f.iter().any(|p| p.to_string_lossy().ends_with(".partial")),
            "c{i}: a segment left unfinished: {f:?}"
        );
        for p in f {
            let src = mp4_export::segment::FileSource::open(&p).unwrap();
            let seg = mp4_export::parse(&src).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert!(!seg.cut_short, "{}: its last fragment is torn", p.display());
            let tl = seg.timeline(1.5).unwrap();
            assert!(tl.frames > 20, "{}: {tl:?}", p.display());
            assert!(
                seg.tracks
                    .iter()
                    .any(|t| t.kind == mp4_export::segment::Kind::Audio),
                "{}: the camera's audio",
                p.display()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
