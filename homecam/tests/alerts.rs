//! Alerts through a real SMTP conversation (a small SMTP sink written here, spoken to by
//! lettre) and a webhook (a small HTTP server here), and insights per period, from the
//! `homecam` binary watching a simulated camera.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

const BIN: &str = env!("CARGO_BIN_EXE_homecam");

/// Accepts SMTP sessions on a free port; each mail's DATA (headers and body) is kept.
fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let m2 = mails.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut w = conn.try_clone().unwrap();
            let mut r = BufReader::new(conn);
            let _ = w.write_all(b"220 sink ESMTP\r\n");
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let cmd = line.trim_end().to_ascii_uppercase();
                if cmd.starts_with("EHLO") {
                    let _ = w.write_all(b"250-sink\r\n250 8BITMIME\r\n");
                } else if cmd.starts_with("DATA") {
                    let _ = w.write_all(b"354 go on\r\n");
                    let mut data = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 || line == ".\r\n" {
                            break;
                        }
                        data.push_str(&line);
                    }
                    m2.lock().unwrap().push(data);
                    let _ = w.write_all(b"250 queued\r\n");
                } else if cmd.starts_with("QUIT") {
                    let _ = w.write_all(b"221 bye\r\n");
                    break;
                } else {
                    let _ = w.write_all(b"250 ok\r\n");
                }
            }
        }
    });
    (port, mails)
}

/// Answers every HTTP request 204 and keeps the bodies.
fn webhook_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let b2 = bodies.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut w = conn.try_clone().unwrap();
            let mut r = BufReader::new(conn);
            let mut len = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len.min(1 << 20)];
            let _ = r.read_exact(&mut body);
            b2.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            let _ = w.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (port, bodies)
}

#[test]
fn motion_alerts_arrive_by_mail_and_webhook_and_insights_are_published() {
    let dir = std::env::temp_dir().join(format!("homecam-alerts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (smtp, mails) = smtp_sink();
    let (hook, bodies) = webhook_sink();
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

[insights]
period = 6
medium = 1
high = 10

[smtp]
port = {smtp}
from = "homecam@localhost"
tls = "none"

[[alert]]
name = "any motion"
email = ["owner@localhost"]
webhook = "http://127.0.0.1:{hook}/hooks/homecam"

[[alert]]
name = "people at night"
labels = ["person"]
hours = "02:00-06:00"
email = ["owner@localhost"]

[[camera]]
name = "yard"
location = "Back yard"
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
    // One alert (the ball keeps moving: one event; the rule fires once), none for people.
    let alerts: Vec<&str> = stdout.lines().filter(|l| l.starts_with("alert ")).collect();
    assert_eq!(alerts.len(), 1, "{stdout}");
    assert!(alerts[0].contains("\"rule\":\"any motion\""), "{stdout}");
    assert!(
        stdout.contains("alert \"any motion\" mailed to owner@localhost"),
        "{stdout}"
    );
    assert!(
        stdout.contains("posted to the webhook: HTTP 204"),
        "{stdout}"
    );
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(
        mails[0].contains("Subject: [homecam] any motion: 1 motion events"),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("To: owner@localhost"), "{}", mails[0]);
    assert!(
        mails[0].contains("camera: yard (Back yard)"),
        "{}",
        mails[0]
    );
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let hook: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(hook["rule"], "any motion");
    assert_eq!(hook["camera"], "yard");
    // Insights every 6 s, plus the partial period at exit.
    let insights: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("insight "))
        .map(|j| serde_json::from_str(j).unwrap())
        .collect();
    assert!(insights.len() >= 2, "{stdout}");
    let busy = insights
        .iter()
        .find(|i| i["total_events"].as_u64() >= Some(1))
        .unwrap_or_else(|| panic!("{insights:#?}"));
    assert_eq!(busy["most_active_location"], "Back yard");
    assert_eq!(busy["cameras"][0]["activity"], "medium");
    let _ = std::fs::remove_dir_all(&dir);
}
