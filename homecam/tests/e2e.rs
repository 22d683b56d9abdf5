//! End to end: a simulated Tapo camera showing a real scene (people walking in opencv-doc's
//! vtest.avi), the homecam binary with ring recording, motion + object filter + clips,
//! MQTT (mosquitto), Kafka (tansu) and alerts by mail (an SMTP sink here). The Kafka broker
//! is killed in the middle and a new one started on the same port: the daemon creates the
//! topics again and delivers what waited in its spool, so the new broker holds, in order,
//! every record made from before the kill to the end.

mod common;
use common::*;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_homecam");
const TOPICS: [&str; 3] = ["e2e_events", "e2e_status", "e2e_insights"];

/// `got` must be a run of consecutive records of `want` (what the daemon printed, in order)
/// that holds every record from index `from` on. Duplicates are removed from both: the
/// spool delivers at least once, and an event's update for its second (best) snapshot
/// repeats the first one's record.
fn assert_suffix(topic: &str, got: &[String], want: &[String], from: usize) {
    let mut seen = HashSet::new();
    let got: Vec<&String> = got.iter().filter(|s| seen.insert(*s)).collect();
    let mut seen = HashSet::new();
    let mut kept = Vec::new();
    let mut kept_before = 0;
    for (i, w) in want.iter().enumerate() {
        if seen.insert(w) {
            kept.push(w);
            kept_before += usize::from(i < from);
        }
    }
    let (want, from) = (kept, kept_before);
    let start = want.len() - got.len();
    assert!(
        start <= from,
        "{topic}: the new broker has {} records; the daemon made {} from the kill on:\n{got:#?}\n{:#?}",
        got.len(),
        want.len() - from,
        &want[from..]
    );
    for (i, g) in got.iter().enumerate() {
        assert_eq!(
            *g,
            want[start + i],
            "{topic}: record {i} out of order or missing"
        );
    }
}

#[test]
fn a_day_in_the_hallway_with_a_broker_restart() {
    let dir = std::env::temp_dir().join(format!("homecam-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The camera loops the first 20 s of the footage: people walk in and out.
    let cam = people_camera(0);
    let mqtt_port = free_port();
    let _mqtt = mosquitto(&dir, mqtt_port);
    let mqtt_seen = subscribe(mqtt_port, "e2e-watcher", "e2e/#");
    let kafka_port = free_port();
    let broker = tansu(&dir.join("first"), kafka_port);
    let (smtp_port, mails) = smtp_sink();
    let cfg = dir.join("homecam.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[general]
metrics = ""
status-interval = 2
data-dir = "{dir}"

[insights]
period = 4

[mqtt]
port = {mqtt_port}
prefix = "e2e"
client-id = "homecam-e2e"

[kafka]
brokers = "127.0.0.1:{kafka_port}"
events-topic = "{}"
status-topic = "{}"
insights-topic = "{}"
partitions = 1
delivery-timeout = 3

[smtp]
port = {smtp_port}
from = "homecam@example.com"
tls = "none"

[[alert]]
name = "people in the hall"
labels = ["person"]
cooldown = 600
email = ["owner@example.com"]

[[camera]]
name = "hall"
location = "Hallway"
uri = "rtsp://admin@127.0.0.1:{}/stream2"
password-env = "HALL_PW"
record = {{ segment = "4s" }}
motion = {{ record = "confirmed", pre-roll = 2, post-roll = 2 }}
"#,
            TOPICS[0],
            TOPICS[1],
            TOPICS[2],
            cam.port(),
            dir = dir.display(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    sim_process::die_with_parent(&mut cmd);
    let mut child = cmd
        .args(["run", cfg.to_str().unwrap(), "--seconds", "36"])
        .env("HALL_PW", tapo_sim::TapoConfig::default().password)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Each stdout line with the moment it came.
    let lines: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let l2 = lines.clone();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            l2.lock().unwrap().push((Instant::now(), l));
        }
    });

    // 14 s in, the broker dies (its storage is in memory: what it held is gone). 6 s later
    // a new one listens on the same port.
    std::thread::sleep(Duration::from_secs(14));
    let killed_at = Instant::now();
    drop(broker);
    std::thread::sleep(Duration::from_secs(6));
    let _broker2 = tansu(&dir.join("second"), kafka_port);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let lines = lines.lock().unwrap().clone();
    let out: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    assert!(status.success(), "{out}");

    // The daemon's own account: the outage seen, and everything delivered at the end.
    assert!(out.contains("records wait in the spool"), "{out}");
    assert!(out.contains("reachable again"), "{out}");
    let last = out
        .lines()
        .rev()
        .find(|l| l.starts_with("homecam: kafka: ") && l.contains("delivered="))
        .unwrap();
    assert!(
        last.contains(" spooled=0B ") && last.contains(" lost=0"),
        "{last}"
    );

    // Kafka: from (at the latest) the kill on, every record, in order.
    let after_kill = |prefix: &str| -> (Vec<String>, usize) {
        let all: Vec<(Instant, String)> = lines
            .iter()
            .filter_map(|(t, l)| l.strip_prefix(prefix).map(|p| (*t, p.to_string())))
            .collect();
        let from = all
            .iter()
            .position(|(t, _)| *t >= killed_at)
            .unwrap_or(all.len());
        (all.into_iter().map(|(_, p)| p).collect(), from)
    };
    for l in out.lines().filter(|l| l.starts_with("homecam: kafka")) {
        eprintln!("{l}");
    }
    let events = read_topic(kafka_port, TOPICS[0]);
    let insights = read_topic(kafka_port, TOPICS[2]);
    let status = read_topic(kafka_port, TOPICS[1]);
    assert!(events.iter().chain(&status).all(|(k, _)| k == "hall"));
    let (want_ev, from_ev) = after_kill("event ");
    let (want_ins, from_ins) = after_kill("insight ");
    assert!(want_ins.len() - from_ins >= 3, "{out}");
    let got_ev: Vec<String> = events.into_iter().map(|(_, v)| v).collect();
    let got_ins: Vec<String> = insights.into_iter().map(|(_, v)| v).collect();
    assert_suffix(TOPICS[0], &got_ev, &want_ev, from_ev);
    assert_suffix(TOPICS[2], &got_ins, &want_ins, from_ins);
    let updates = status
        .iter()
        .filter(|(_, v)| v.contains("\"status_update\""))
        .count();
    assert!(updates >= 5, "{updates} status updates on the new broker");

    // The scene: people confirmed, a clip and a snapshot, announced everywhere.
    let parsed: Vec<serde_json::Value> = want_ev
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let confirmed = parsed
        .iter()
        .find(|e| e["label"] == "person" && e["confirmed"] == true)
        .unwrap_or_else(|| panic!("no confirmed person: {out}"));
    let id = confirmed["id"].as_str().unwrap().to_string();
    assert_eq!(confirmed["location"], "Hallway");
    let clip = parsed
        .iter()
        .find_map(|e| e["clip"].as_str().filter(|_| e["has_clip"] == true))
        .unwrap_or_else(|| panic!("no clip: {out}"));
    // The clip holds the camera's video and its sound (G.711 made AAC), as ffprobe
    // (Debian's ffmpeg) sees them.
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name",
        ])
        .args(["-of", "csv=p=0"])
        .arg(clip)
        .output()
        .expect("ffprobe (Debian package ffmpeg; scripts/setup --tests installs it)");
    let streams = String::from_utf8_lossy(&probe.stdout).to_string();
    assert!(
        streams.contains("h264,video") && streams.contains("aac,audio"),
        "{clip}: {streams:?} {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert!(parsed.iter().any(|e| e["has_snapshot"] == true
        && e["snapshot"]
            .as_str()
            .is_some_and(|s| { std::fs::read(s).is_ok_and(|b| b.starts_with(&[0xff, 0xd8])) })));
    // MQTT (its broker stayed up): the same event, and motion ON.
    wait_for(&mqtt_seen, "the confirmed event over MQTT", |(t, p, _)| {
        t == "e2e/events" && p.contains(&id) && p.contains("\"label\":\"person\"")
    });
    wait_for(&mqtt_seen, "motion ON", |(t, p, _)| {
        t == "e2e/hall/motion" && p == "ON"
    });
    // Home Assistant's binary sensor and camera: person ON at the confirmation, OFF at the
    // event's end, and the event's JPEG on the snapshot topic.
    let t0 = Instant::now();
    loop {
        let person: Vec<String> = mqtt_seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, _)| t == "e2e/hall/person")
            .map(|(_, p, _)| p.clone())
            .collect();
        let on = person.iter().position(|p| p == "ON");
        if on.is_some_and(|i| person[i..].iter().any(|p| p == "OFF")) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "person states: {person:?}\n{:#?}",
            mqtt_seen
                .lock()
                .unwrap()
                .iter()
                .map(|(t, p, r)| format!("{t} {r} {}", &p[..p.len().min(120)]))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for(&mqtt_seen, "the snapshot JPEG", |(t, p, _)| {
        t == "e2e/hall/snapshot" && p.ends_with("bytes [ff, d8]>")
    });
    // Mail: one alert for people in the hall (the cooldown holds back the rest).
    let t0 = Instant::now();
    while mails.lock().unwrap().is_empty() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("To: owner@example.com"), "{}", mails[0]);
    assert!(mails[0].contains("people in the hall"), "{}", mails[0]);
    assert!(mails[0].contains("Hallway"), "{}", mails[0]);
    // Ring recording went on through all of it.
    let ring = dir.join("hall").join("ring");
    let segments = walk(&ring);
    assert!(segments.len() >= 4, "{segments:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
