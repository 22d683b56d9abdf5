//! homecam's MQTT topics through a real broker (Debian's mosquitto on loopback): Frigate's
//! `<prefix>/events` with before/after, motion ON/OFF, retained camera status and
//! availability with a last will.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_homecam");

mod common;
use common::*;

#[test]
fn events_motion_status_and_availability_reach_the_broker() {
    let dir = std::env::temp_dir().join(format!("homecam-mqtt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let _broker = mosquitto(&dir, port);
    let seen = subscribe(port, "watcher", "hc/#");
    let cam = tapo_sim::TapoSim::start(tapo_sim::TapoConfig {
        pattern: "pattern=ball".into(),
        ..Default::default()
    })
    .unwrap();
    let cfg = dir.join("homecam.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[general]
metrics = ""
data-dir = "{}"

[mqtt]
port = {port}
prefix = "hc"

[[camera]]
name = "yard"
uri = "rtsp://admin@127.0.0.1:{}/stream2"
password-env = "YARD_PW"
motion = {{ clips = false }}
"#,
            dir.display(),
            cam.port()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["run", cfg.to_str().unwrap(), "--seconds", "20"])
        .env("YARD_PW", tapo_sim::TapoConfig::default().password)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("mqtt: connected"), "{stdout}");
    wait_for(&seen, "available online", |(t, p, _)| {
        t == "hc/available" && p == "online"
    });
    // (A broker clears the retain flag of what it forwards to existing subscribers.)
    wait_for(&seen, "status online", |(t, p, _)| {
        t == "hc/yard/status" && p == "online"
    });
    wait_for(&seen, "motion ON", |(t, p, _)| {
        t == "hc/yard/motion" && p == "ON"
    });
    wait_for(&seen, "an event", |(t, _, _)| t == "hc/events");
    // The daemon said goodbye: availability goes offline.
    wait_for(&seen, "available offline", |(t, p, _)| {
        t == "hc/available" && p == "offline"
    });
    let seen_now = seen.lock().unwrap().clone();
    let events: Vec<serde_json::Value> = seen_now
        .iter()
        .filter(|(t, _, _)| t == "hc/events")
        .map(|(_, p, _)| serde_json::from_str(p).unwrap())
        .collect();
    let new = events
        .iter()
        .find(|e| e["type"] == "new")
        .expect("a new event");
    assert_eq!(new["after"]["camera"], "yard");
    assert_eq!(new["after"]["label"], "motion");
    assert!(new["before"].is_object());
    // Ended at the daemon's stop (EOS): OFF and a verdict.
    let end = events
        .iter()
        .find(|e| e["type"] == "end")
        .expect("an end event");
    assert_eq!(end["before"]["id"], end["after"]["id"]);
    assert_eq!(end["after"]["verdict"], "dismissed");
    wait_for(&seen, "motion OFF", |(t, p, _)| {
        t == "hc/yard/motion" && p == "OFF"
    });

    // A newcomer gets the retained state: camera online, daemon offline.
    let late = subscribe(port, "late", "hc/+/status");
    wait_for(&late, "retained status", |(t, p, r)| {
        t == "hc/yard/status" && p == "online" && *r
    });
    let _ = std::fs::remove_dir_all(&dir);
}
