//! homecam's MQTT topics through a real broker (Debian's mosquitto on loopback): Frigate's
//! `<prefix>/events` with before/after, motion ON/OFF, retained camera status and
//! availability with a last will.

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_homecam");

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mosquitto(dir: &std::path::Path, port: u16) -> Broker {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto (Debian package mosquitto; scripts/setup --tests installs it)");
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "mosquitto does not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Broker(child)
}

type Seen = Arc<Mutex<Vec<(String, String, bool)>>>;

/// Subscribes to `filter`; every publish received as (topic, payload, retain).
fn subscribe(port: u16, id: &str, filter: &str) -> Seen {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let (client, mut conn) = Client::new(MqttOptions::new(id, "127.0.0.1", port), 100);
    let s2 = seen.clone();
    let filter = filter.to_string();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client.subscribe(&filter, QoS::AtLeastOnce).unwrap();
                }
                Ok(Event::Incoming(Packet::Publish(p))) => s2.lock().unwrap().push((
                    p.topic.clone(),
                    String::from_utf8_lossy(&p.payload).into_owned(),
                    p.retain,
                )),
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    seen
}

fn wait_for(seen: &Seen, what: &str, f: impl Fn(&(String, String, bool)) -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if seen.lock().unwrap().iter().any(&f) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no {what}: {:#?}", seen.lock().unwrap());
}

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
