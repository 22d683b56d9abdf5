//! Arlo cameras through the cloud API: the `homecam` binary polls a local Arlo API
//! simulator (HTTPS on loopback with a test CA, trusted through `ca-file`) that serves
//! login, the device list and the recordings library as the open-source Arlo clients
//! document them, and can expire the session, answer 429 or 500, or send a malformed
//! body. Each new recording becomes one homecam event (new, then end) on standard output,
//! MQTT and the alert rules; device state becomes camera status; a restart publishes
//! nothing twice; the password and the token appear nowhere.

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_homecam");
const PASSWORD: &str = "arlo-Pass-word-777";
const EMAIL: &str = "owner@example.com";

mod common;
use common::push::{PushServer, Reply, Req};
use common::*;

#[derive(Clone, Debug)]
enum Fault {
    /// The session token stops being accepted (it expired).
    Expire,
    Status(u16),
    /// 429 with Retry-After: 1.
    RateLimit,
    Malformed,
}

#[derive(Default)]
struct Sim {
    token: String,
    logins: usize,
    recordings: Vec<Value>,
    faults: VecDeque<Fault>,
}

fn now_ms() -> f64 {
    homecam::event::now() * 1000.0
}

fn recording(id: &str, device: &str, age_s: f64, category: &str) -> Value {
    json!({
        "uniqueId": id, "deviceId": device, "name": id,
        "utcCreatedDate": (now_ms() - age_s * 1000.0).round(),
        "mediaDurationSecond": 12, "contentType": "video/mp4", "reason": "motionRecord",
        "presignedContentUrl": format!("https://arlos3-prod.example/{id}.mp4?Signature=s3sig"),
        "presignedThumbnailUrl": format!("https://arlos3-prod.example/{id}_thumb.jpg"),
        "objCategory": category,
    })
}

fn handle(sim: &Mutex<Sim>, r: &Req) -> Reply {
    let mut s = sim.lock().unwrap();
    let path = r.path().to_string();
    if path == "/hmsweb/login/v2" {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        if body["email"] != EMAIL || body["password"] != PASSWORD {
            return Reply::status(
                401,
                r#"{"success":false,"data":{"message":"Invalid credentials"}}"#,
            );
        }
        s.logins += 1;
        s.token = format!("2_sessionToken{}xyz", s.logins);
        return Reply::ok(
            &json!({"success": true, "data": {"userId": "ABC-123", "token": s.token}}).to_string(),
        );
    }
    if r.header("authorization") != Some(s.token.as_str()) || s.token.is_empty() {
        return Reply::status(
            401,
            r#"{"success":false,"data":{"message":"Session expired"}}"#,
        );
    }
    if path == "/hmsweb/users/devices" || path == "/hmsweb/users/library" {
        if let Some(f) = s.faults.pop_front() {
            match f {
                Fault::Expire => {
                    s.token.clear();
                    return Reply::status(
                        401,
                        r#"{"success":false,"data":{"message":"Session expired"}}"#,
                    );
                }
                Fault::Status(code) => return Reply::status(code, "<html>oops</html>"),
                Fault::RateLimit => {
                    return Reply::Answer(
                        429,
                        vec![("Retry-After".into(), "1".into())],
                        "{}".into(),
                    )
                }
                Fault::Malformed => return Reply::ok(r#"{"success":true,"data":[{"deviceId": "#),
            }
        }
    }
    match path.as_str() {
        "/hmsweb/users/devices" => Reply::ok(
            &json!({"success": true, "data": [
                {"deviceId": "BS1", "deviceName": "Base", "deviceType": "basestation", "state": "provisioned"},
                {"deviceId": "CAM1", "deviceName": "Front Door", "deviceType": "camera", "state": "provisioned", "parentId": "BS1"},
                {"deviceId": "CAM2", "deviceName": "Yard", "deviceType": "camera", "state": "provisioned", "parentId": "BS1",
                 "properties": {"connectionState": "unavailable"}},
            ]})
            .to_string(),
        ),
        "/hmsweb/users/library" => {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            assert!(
                body["dateFrom"].as_str().is_some_and(|d| d.len() == 8)
                    && body["dateTo"].as_str().is_some_and(|d| d.len() == 8),
                "the library is asked for a date range: {body}"
            );
            Reply::ok(&json!({"success": true, "data": s.recordings}).to_string())
        }
        _ => Reply::status(404, "{}"),
    }
}

fn config(dir: &Path, server: &PushServer, mqtt: u16) -> std::path::PathBuf {
    let path = dir.join("homecam.toml");
    std::fs::write(
        &path,
        format!(
            r#"[general]
data-dir = "{data}"
status-interval = 60

[mqtt]
host = "127.0.0.1"
port = {mqtt}

[[alert]]
name = "person at the door"
labels = ["person"]
rate = 1
window = 60

[[arlo]]
email = "{EMAIL}"
password-env = "ARLO_TEST_PASSWORD"
poll-interval = 2
api-url = "{api}"
ca-file = "{ca}"
locations = {{ "Front Door" = "Porch" }}
"#,
            data = dir.join("data").display(),
            api = server.url("/hmsweb"),
            ca = server.ca_file.display(),
        ),
    )
    .unwrap();
    path
}

fn events(out: &str, kind: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| l.strip_prefix("event "))
        .filter_map(|j| serde_json::from_str::<Value>(j).ok())
        .filter(|e| e["type"] == kind)
        .collect()
}

fn wait_output(h: &Homecam, what: &str, f: impl Fn(&str) -> bool) {
    let t0 = std::time::Instant::now();
    while !f(&h.output()) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{what}: not within 60 s:\n{}",
            h.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn arlo_recordings_become_events_once_through_faults_and_restarts() {
    let dir = std::env::temp_dir().join(format!("homecam-arlo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sim = Arc::new(Mutex::new(Sim::default()));
    {
        let mut s = sim.lock().unwrap();
        // Before the first start: an old recording (not published) and a recent one.
        s.recordings.push(recording("CAM1_old", "CAM1", 7200.0, ""));
        s.recordings
            .push(recording("CAM1_r1", "CAM1", 60.0, "Person"));
        // A recording of a device that is not a camera of the account is ignored.
        s.recordings.push(recording("BS1_x", "BS1", 30.0, ""));
    }
    let s2 = sim.clone();
    let server = PushServer::start(&dir.join("tls"), 0, move |r, _| handle(&s2, r));
    let mqtt_port = free_port();
    let _mosquitto = mosquitto(&dir, mqtt_port);
    let seen = subscribe(mqtt_port, "arlo-test", "homecam/#");
    let cfg = config(&dir, &server, mqtt_port);
    let cfg_s = cfg.to_str().unwrap();
    let env = [("ARLO_TEST_PASSWORD", PASSWORD)];

    let h = Homecam::start(BIN, &["run", cfg_s], &env);
    wait_output(&h, "the recent recording's end", |o| {
        events(o, "end").iter().any(|e| e["id"] == "arlo-CAM1_r1")
    });
    h.wait_line(
        "first start: 1 earlier recording marked as seen",
        Duration::from_secs(10),
    );
    h.wait_line(
        "alert {\"rule\":\"person at the door\"",
        Duration::from_secs(10),
    );
    let out = h.output();
    let new = events(&out, "new");
    let e = new
        .iter()
        .find(|e| e["id"] == "arlo-CAM1_r1")
        .expect("a new record");
    assert_eq!(e["source"], "arlo", "{e}");
    assert_eq!(e["camera"], "front-door", "{e}");
    assert_eq!(e["camera_name"], "Front Door", "{e}");
    assert_eq!(e["location"], "Porch", "{e}");
    assert_eq!(e["label"], "person", "{e}");
    assert_eq!(e["confirmed"], true, "{e}");
    assert!(
        e["media_url"]
            .as_str()
            .unwrap()
            .ends_with("CAM1_r1.mp4?Signature=s3sig"),
        "{e}"
    );
    let start = e["start_time"].as_f64().unwrap();
    assert!(
        (homecam::event::now() - 90.0..homecam::event::now()).contains(&start),
        "{e}"
    );
    let end = events(&out, "end")
        .into_iter()
        .find(|e| e["id"] == "arlo-CAM1_r1")
        .unwrap();
    assert!(
        (end["end_time"].as_f64().unwrap() - start - 12.0).abs() < 0.01,
        "{end}"
    );
    assert!(!out.contains("CAM1_old") && !out.contains("BS1_x"), "{out}");
    // Device state as camera status.
    assert!(
        out.lines().any(|l| l.starts_with("status ")
            && l.contains(r#""camera":"front-door""#)
            && l.contains(r#""status":"online""#)),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("status ")
            && l.contains(r#""camera":"yard""#)
            && l.contains(r#""status":"offline""#)),
        "{out}"
    );
    // MQTT carries the event like any other camera's.
    wait_for(&seen, "the Arlo event on MQTT", |(t, p, _)| {
        t.starts_with("homecam/") && p.contains("arlo-CAM1_r1")
    });

    // Faults, then a new recording: the session expires (log in again at once), 429, 500
    // and a malformed body each delay it; it comes exactly once.
    {
        let mut s = sim.lock().unwrap();
        s.faults.extend([
            Fault::Expire,
            Fault::RateLimit,
            Fault::Status(500),
            Fault::Malformed,
        ]);
        s.recordings.push(recording("CAM1_r2", "CAM1", 5.0, ""));
    }
    wait_output(&h, "the recording after the faults", |o| {
        events(o, "end").iter().any(|e| e["id"] == "arlo-CAM1_r2")
    });
    let out = h.output();
    for said in [
        "the session was refused (expired?): logging in again",
        "logged in",
        "rate limited (429)",
        "HTTP 500: trying again with backoff",
        "warning: a malformed answer",
        "polling goes on",
    ] {
        assert!(out.contains(said), "no {said:?} in:\n{out}");
    }
    assert_eq!(
        sim.lock().unwrap().logins,
        2,
        "one login at the start, one after the expiry"
    );
    let r2 = events(&out, "new")
        .into_iter()
        .filter(|e| e["id"] == "arlo-CAM1_r2")
        .count();
    assert_eq!(r2, 1, "{out}");
    let r2 = events(&out, "new")
        .into_iter()
        .find(|e| e["id"] == "arlo-CAM1_r2")
        .unwrap();
    assert_eq!(r2["label"], "motion", "{r2}");
    assert_eq!(r2["verdict"], "pending", "{r2}");
    let (_, status, first_out) = h.stop();
    assert!(status.success(), "{first_out}");

    // A restart publishes nothing already published; a new recording comes.
    sim.lock()
        .unwrap()
        .recordings
        .push(recording("CAM1_r3", "CAM1", 1.0, "Animal"));
    let h = Homecam::start(BIN, &["run", cfg_s], &env);
    wait_output(&h, "the recording made while homecam was stopped", |o| {
        events(o, "end").iter().any(|e| e["id"] == "arlo-CAM1_r3")
    });
    std::thread::sleep(Duration::from_secs(3));
    let (_, _, second_out) = h.stop();
    let again: Vec<_> = events(&second_out, "new")
        .into_iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(again, ["arlo-CAM1_r3"], "{second_out}");
    assert!(!second_out.contains("first start"), "{second_out}");

    // A wrong password: said plainly, retried with backoff, never printed.
    let h = Homecam::start(
        BIN,
        &["run", cfg_s],
        &[("ARLO_TEST_PASSWORD", "wrong-password-x")],
    );
    h.wait_line(
        "the login was refused: check the e-mail and password",
        Duration::from_secs(30),
    );
    let (_, _, wrong_out) = h.stop();

    // A two-factor account: no password, a token from a login by hand in token-file.
    let logins_before = {
        let mut s = sim.lock().unwrap();
        s.token = "2_handMadeTokenFromTheBrowser".into();
        s.recordings
            .push(recording("CAM1_r4", "CAM1", 1.0, "Person"));
        s.logins
    };
    let token_file = dir.join("arlo.token");
    std::fs::write(&token_file, "2_handMadeTokenFromTheBrowser\n").unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "password-env = \"ARLO_TEST_PASSWORD\"",
        &format!("token-file = \"{}\"", token_file.display()),
    );
    let cfg2 = dir.join("homecam-2fa.toml");
    std::fs::write(&cfg2, text).unwrap();
    let h = Homecam::start(BIN, &["run", cfg2.to_str().unwrap()], &[]);
    wait_output(&h, "the recording seen with the token file", |o| {
        events(o, "end").iter().any(|e| e["id"] == "arlo-CAM1_r4")
    });
    let (_, _, token_out) = h.stop();
    assert_eq!(
        sim.lock().unwrap().logins,
        logins_before,
        "no login with a token file"
    );
    assert!(
        !token_out.contains("2_handMadeTokenFromTheBrowser"),
        "{token_out}"
    );

    // No password or token in any output or file.
    let tokens: Vec<String> = (1..=sim.lock().unwrap().logins)
        .map(|i| format!("2_sessionToken{i}xyz"))
        .collect();
    for (what, text) in [
        ("first run", &first_out),
        ("second run", &second_out),
        ("wrong password", &wrong_out),
    ] {
        assert!(
            !text.contains(PASSWORD) && !text.contains("wrong-password-x"),
            "{what} printed a password:\n{text}"
        );
        for t in &tokens {
            assert!(
                !text.contains(t.as_str()),
                "{what} printed a token:\n{text}"
            );
        }
    }
    let mut files = vec![dir.join("data")];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
            assert!(
                !text.contains(PASSWORD),
                "{} holds the password",
                p.display()
            );
            for t in &tokens {
                assert!(!text.contains(t.as_str()), "{} holds a token", p.display());
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
