//! Alerts through a real SMTP conversation (a small SMTP sink written here, spoken to by
//! lettre) and a webhook (a small HTTP server here), and insights per period, from the
//! `homecam` binary watching a simulated camera.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_homecam");

mod common;
use common::*;

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
        stdout.contains("alert \"any motion\" delivered to Webhook target \"webhook\" (HTTP 204"),
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
