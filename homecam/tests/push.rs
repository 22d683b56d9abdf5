//! Alerts to phones: the `homecam` binary watching a simulated Tapo camera that shows
//! people (opencv-doc's vtest.avi) sends each alert to a local HTTPS server (test CA,
//! trusted through `ca-file`) that plays ntfy, Pushover, Telegram, Discord, Slack and a
//! Home Assistant style webhook, field by field as each service documents its API, and by
//! e-mail with the snapshot inline. Then the faults: 429 with Retry-After, 5xx, 401, a
//! server that never answers, a restart with alerts in the outbox. No secret appears in
//! any output or file.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_homecam");

mod common;
use common::push::{PushServer, Reply, Req};
use common::*;

const NTFY_TOKEN: &str = "tk_ntfysecret0123456789abcdef";
const PUSHOVER_TOKEN: &str = "azGDORePK8gMaC0QOYAMyEEuzJnyUi";
const PUSHOVER_USER: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";
const TELEGRAM_TOKEN: &str = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const DISCORD_SECRET: &str = "discordWebhookTokenSecret-4242";
const SLACK_SECRET: &str = "slackHookSecretXXXXXXXXXXXX";
const HOOK_SECRET: &str = "hookPathSecret-31337";

fn secrets() -> [&'static str; 7] {
    [
        NTFY_TOKEN,
        PUSHOVER_TOKEN,
        PUSHOVER_USER,
        TELEGRAM_TOKEN,
        DISCORD_SECRET,
        SLACK_SECRET,
        HOOK_SECRET,
    ]
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("homecam-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn is_jpeg(b: &[u8]) -> bool {
    b.len() > 1000 && b.starts_with(&[0xff, 0xd8]) && b.ends_with(&[0xff, 0xd9])
}

/// No secret in `text`.
fn assert_no_secret(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(s), "{what} holds a secret ({s}):\n{text}");
    }
}

/// No secret in any file under `dir` (the outboxes, the index, the clips...).
fn assert_no_secret_in_files(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            assert_no_secret_in_files(&p);
        } else if let Ok(bytes) = std::fs::read(&p) {
            let text = String::from_utf8_lossy(&bytes);
            for s in secrets() {
                assert!(!text.contains(s), "{} holds a secret ({s})", p.display());
            }
        }
    }
}

/// `HH:MM` of the local time `minutes` from now.
fn local_hhmm(minutes: i64) -> String {
    let t = (homecam::event::now() as i64 + minutes * 60) as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&t, &mut tm) };
    format!("{:02}:{:02}", tm.tm_hour, tm.tm_min)
}

fn camera(port: u16, motion: &str) -> String {
    format!(
        r#"
[[camera]]
name = "porch"
location = "Porch"
uri = "rtsp://admin@127.0.0.1:{port}/stream2"
password-env = "PORCH_PW"
motion = {{ {motion} }}
"#
    )
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("PORCH_PW", tapo_sim::TapoConfig::default().password.leak()),
        ("NTFY_TOKEN", NTFY_TOKEN),
        ("PUSHOVER_TOKEN", PUSHOVER_TOKEN),
        ("PUSHOVER_USER", PUSHOVER_USER),
        ("TELEGRAM_TOKEN", TELEGRAM_TOKEN),
    ]
}

#[test]
fn every_service_gets_one_alert_with_the_picture() {
    let dir = temp_dir("push");
    let server = PushServer::start(&dir.join("tls"), 0, |r: &Req, _| match r.path() {
        "/1/messages.json" => {
            Reply::ok(r#"{"status":1,"request":"647d2300-702c-4b38-8b2f-d56326ae460b"}"#)
        }
        p if p.ends_with("/sendPhoto") => Reply::ok(r#"{"ok":true,"result":{"message_id":7}}"#),
        p if p.starts_with("/api/webhooks/") => Reply::status(204, ""),
        p if p.starts_with("/services/") => Reply::ok("ok"),
        _ => Reply::ok(r#"{"id":"sGhtV2nmNh4f"}"#),
    });
    let (smtp, mails) = smtp_sink();
    let cam = people_camera(0);
    std::fs::write(
        dir.join("slack-url"),
        server.url(&format!("/services/T0001/B0001/{SLACK_SECRET}")) + "\n",
    )
    .unwrap();
    let metrics = free_port();
    let ca = server.ca_file.display().to_string();
    let cfg = dir.join("homecam.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[general]
metrics = "127.0.0.1:{metrics}"
data-dir = "{dir}"

[web]
listen = "127.0.0.1:0"
auth = "none"
public-url = "https://nvr.example:8443"

[smtp]
port = {smtp}
from = "homecam@localhost"
tls = "none"

[[alert]]
name = "person at the porch"
labels = ["person"]
email = ["owner@localhost"]

[[alert.target]]
kind = "ntfy"
url = "{ntfy}"
token-env = "NTFY_TOKEN"
ca-file = "{ca}"

[[alert.target]]
kind = "pushover"
api-url = "{base}"
token-env = "PUSHOVER_TOKEN"
user-env = "PUSHOVER_USER"
ca-file = "{ca}"

[[alert.target]]
kind = "telegram"
api-url = "{base}"
token-env = "TELEGRAM_TOKEN"
chat-id = "-1001234567890"
ca-file = "{ca}"

[[alert.target]]
kind = "discord"
url-env = "DISCORD_URL"
ca-file = "{ca}"

[[alert.target]]
kind = "slack"
url-file = "{dir}/slack-url"
ca-file = "{ca}"

[[alert.target]]
kind = "webhook"
name = "home-assistant"
url-env = "HOOK_URL"
ca-file = "{ca}"

[[alert.target]]
kind = "webhook"
name = "cats only"
url = "{cats}"
labels = ["cat"]
ca-file = "{ca}"

[[alert.target]]
kind = "ntfy"
name = "night phone"
url = "{quiet}"
quiet-hours = "{q0}-{q1}"
ca-file = "{ca}"
{camera}"#,
            dir = dir.display(),
            ntfy = server.url("/homecam-porch"),
            base = server.url(""),
            cats = server.url("/cats"),
            quiet = server.url("/quiet"),
            q0 = local_hhmm(-60),
            q1 = local_hhmm(60),
            camera = camera(cam.port(), "pre-roll = 1, post-roll = 1"),
        ),
    )
    .unwrap();
    let discord_url = server.url(&format!("/api/webhooks/4242/{DISCORD_SECRET}"));
    let hook_url = server.url(&format!("/api/webhook/{HOOK_SECRET}"));
    let mut env = env();
    env.push(("DISCORD_URL", &discord_url));
    env.push(("HOOK_URL", &hook_url));
    let d = Homecam::start(BIN, &["run", cfg.to_str().unwrap()], &env);

    let paths = [
        "/homecam-porch".to_string(),
        "/1/messages.json".to_string(),
        format!("/bot{TELEGRAM_TOKEN}/sendPhoto"),
        format!("/api/webhooks/4242/{DISCORD_SECRET}"),
        format!("/services/T0001/B0001/{SLACK_SECRET}"),
        format!("/api/webhook/{HOOK_SECRET}"),
    ];
    server.wait(
        "one alert to each service",
        Duration::from_secs(120),
        |reqs| paths.iter().all(|p| reqs.iter().any(|r| r.path() == p)),
    );
    // Time for a second one, which must not come (one alert per cooldown).
    std::thread::sleep(Duration::from_secs(4));
    let alert_line = d.wait_line("alert {", Duration::from_secs(1));
    let alert: serde_json::Value =
        serde_json::from_str(alert_line.strip_prefix("alert ").unwrap()).unwrap();
    let event_id = alert["event_id"].as_str().unwrap().to_string();
    let link = format!("https://nvr.example:8443/#events/{event_id}");
    let one = |p: &str| {
        let r = server.to(p);
        assert_eq!(r.len(), 1, "{p}: {} requests", r.len());
        r.into_iter().next().unwrap()
    };

    // ntfy: PUT of the picture, the text in the query, the access token as a bearer.
    let r = one(&paths[0]);
    assert_eq!(r.method, "PUT");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {NTFY_TOKEN}").as_str())
    );
    assert_eq!(r.header("filename"), Some("snapshot.jpg"));
    assert_eq!(r.header("click"), Some(link.as_str()));
    assert!(r.query("title").unwrap().contains("person"), "{r:?}");
    assert!(r.query("message").unwrap().contains("Porch"), "{r:?}");
    assert!(is_jpeg(&r.body), "ntfy: the body is not a JPEG");

    // Pushover: a form with token, user, message, url and the picture as `attachment`.
    let r = one(&paths[1]);
    assert_eq!(r.method, "POST");
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("multipart/form-data; boundary="));
    let parts = r.multipart();
    let field = |n: &str| parts.iter().find(|p| p.name == n).map(|p| p.text());
    assert_eq!(field("token").as_deref(), Some(PUSHOVER_TOKEN));
    assert_eq!(field("user").as_deref(), Some(PUSHOVER_USER));
    assert!(field("message").unwrap().contains("person"));
    assert_eq!(field("url").as_deref(), Some(link.as_str()));
    let a = parts
        .iter()
        .find(|p| p.name == "attachment")
        .expect("attachment");
    assert_eq!(a.content_type, "image/jpeg");
    assert!(is_jpeg(&a.data), "pushover: the attachment is not a JPEG");

    // Telegram: sendPhoto with the token in the path, chat_id, caption and `photo`.
    let r = one(&paths[2]);
    assert_eq!(r.method, "POST");
    let parts = r.multipart();
    let field = |n: &str| parts.iter().find(|p| p.name == n).map(|p| p.text());
    assert_eq!(field("chat_id").as_deref(), Some("-1001234567890"));
    let caption = field("caption").unwrap();
    assert!(
        caption.contains("person") && caption.contains(&link),
        "{caption}"
    );
    let photo = parts.iter().find(|p| p.name == "photo").expect("photo");
    assert_eq!(photo.content_type, "image/jpeg");
    assert!(photo.filename.is_some() && is_jpeg(&photo.data));

    // Discord: payload_json with an embed showing attachment://snapshot.jpg, and files[0].
    let r = one(&paths[3]);
    assert_eq!(r.method, "POST");
    let parts = r.multipart();
    let payload: serde_json::Value = serde_json::from_str(
        &parts
            .iter()
            .find(|p| p.name == "payload_json")
            .expect("payload_json")
            .text(),
    )
    .unwrap();
    assert_eq!(
        payload["embeds"][0]["image"]["url"],
        "attachment://snapshot.jpg"
    );
    assert!(payload["embeds"][0]["title"]
        .as_str()
        .unwrap()
        .contains("person"));
    let f = parts
        .iter()
        .find(|p| p.name == "files[0]")
        .expect("files[0]");
    assert_eq!(f.filename.as_deref(), Some("snapshot.jpg"));
    assert!(is_jpeg(&f.data));

    // Slack: JSON text with the link (incoming webhooks take no files).
    let r = one(&paths[4]);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("person") && text.contains(&link), "{text}");

    // The webhook: the alert, the event (without file paths) and the JPEG in base64.
    let r = one(&paths[5]);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["alert"]["rule"], "person at the porch");
    assert_eq!(v["event"]["label"], "person");
    assert_eq!(v["event"]["id"].as_str(), Some(event_id.as_str()));
    assert!(
        v["event"].get("snapshot").is_none() && v["event"].get("clip").is_none(),
        "{v}"
    );
    assert_eq!(v["link"].as_str(), Some(link.as_str()));
    assert_eq!(v["snapshot_type"], "image/jpeg");
    use base64::Engine;
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(v["snapshot_base64"].as_str().unwrap())
        .unwrap();
    assert!(is_jpeg(&jpeg));

    // The label filter and the quiet hours hold back the others.
    assert!(
        server.to("/cats").is_empty(),
        "the cats-only target got a person"
    );
    assert!(
        server.to("/quiet").is_empty(),
        "the quiet target was not quiet"
    );

    // The mail: text, and HTML with the picture inline by Content-ID.
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let m = &mails[0];
    assert!(
        m.contains("multipart/alternative") && m.contains("multipart/related"),
        "{m}"
    );
    assert!(
        m.contains("Content-ID: <snapshot>") && m.contains("image/jpeg"),
        "{m}"
    );
    assert!(m.contains("cid:snapshot"), "{m}");

    // /metrics: one sent per target, and the latency summary.
    let text = http(metrics, "GET", "/metrics", &[], b"").text();
    for (target, kind) in [
        ("ntfy", "ntfy"),
        ("pushover", "pushover"),
        ("telegram", "telegram"),
        ("discord", "discord"),
        ("slack", "slack"),
        ("home-assistant", "webhook"),
    ] {
        let l = format!("rule=\"person at the porch\",target=\"{target}\",kind=\"{kind}\"");
        assert_eq!(
            metric(
                &text,
                &format!("homecam_alert_deliveries_total{{{l},result=\"sent\"}}")
            ),
            Some(1.0),
            "{target}:\n{text}"
        );
        assert!(
            metric(
                &text,
                &format!("homecam_alert_delivery_seconds{{{l},quantile=\"0.5\"}}")
            )
            .is_some_and(|s| s >= 0.0),
            "{text}"
        );
    }
    let (_, status, out) = d.stop();
    assert!(status.success(), "{out}");
    assert!(
        out.contains(
            "alert \"person at the porch\" delivered to Telegram target \"telegram\" (HTTP 200"
        ),
        "{out}"
    );
    assert_no_secret("the daemon's output", &out);
    assert_no_secret_in_files(&dir.join("alerts"));
    assert_no_secret_in_files(&dir.join("index"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failed_deliveries_are_retried_as_each_answer_says() {
    let dir = temp_dir("push-faults");
    let server = PushServer::start(&dir.join("tls"), 0, |r: &Req, earlier| match r.path() {
        "/busy" if earlier == 0 => Reply::Answer(
            429,
            vec![("Retry-After".into(), "2".into())],
            r#"{"error":"slow down"}"#.into(),
        ),
        "/flaky" if earlier < 3 => Reply::status(500, r#"{"error":"database is locked"}"#),
        p if p.ends_with("/sendPhoto") => Reply::status(
            401,
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        ),
        "/stuck" => Reply::Hang,
        _ => Reply::ok("{}"),
    });
    let cam = people_camera(0);
    let metrics = free_port();
    let ca = server.ca_file.display().to_string();
    let cfg = dir.join("homecam.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[general]
metrics = "127.0.0.1:{metrics}"
data-dir = "{dir}"

[[alert]]
name = "faults"
labels = ["person"]

[[alert.target]]
kind = "webhook"
name = "busy"
url = "{busy}"
ca-file = "{ca}"

[[alert.target]]
kind = "webhook"
name = "flaky"
url = "{flaky}"
ca-file = "{ca}"

[[alert.target]]
kind = "telegram"
name = "denied"
api-url = "{base}"
token-env = "TELEGRAM_TOKEN"
chat-id = "42"
ca-file = "{ca}"

[[alert.target]]
kind = "webhook"
name = "stuck"
url = "{stuck}"
timeout = "5s"
ca-file = "{ca}"

[[alert.target]]
kind = "ntfy"
name = "prompt"
url = "{prompt}"
ca-file = "{ca}"
{camera}"#,
            dir = dir.display(),
            busy = server.url("/busy"),
            flaky = server.url("/flaky"),
            stuck = server.url("/stuck"),
            prompt = server.url("/prompt"),
            base = server.url(""),
            camera = camera(cam.port(), "clips = true"),
        ),
    )
    .unwrap();
    let d = Homecam::start(BIN, &["run", cfg.to_str().unwrap()], &env());
    let denied = format!("/bot{TELEGRAM_TOKEN}/sendPhoto");
    server.wait("the alert", Duration::from_secs(120), |reqs| {
        reqs.iter().any(|r| r.path() == "/prompt")
    });
    // 1 + 2 + 4 s of backoff (±25 %) for the 500s; the stuck one timed out and retried.
    server.wait("the retries", Duration::from_secs(60), |reqs| {
        let n = |p: &str| reqs.iter().filter(|r| r.path() == p).count();
        n("/busy") >= 2 && n("/flaky") >= 4 && n("/stuck") >= 2
    });
    std::thread::sleep(Duration::from_secs(3));

    // 429 with Retry-After: 2: sent again after (not before) those 2 s, and delivered.
    let busy = server.to("/busy");
    assert_eq!(busy.len(), 2);
    assert!(busy[1].at.duration_since(busy[0].at) >= Duration::from_millis(1900));
    // 500 three times, then 200: four attempts, delivered once.
    assert_eq!(server.to("/flaky").len(), 4);
    // 401: reported once, never retried.
    assert_eq!(server.to(&denied).len(), 1);
    // The stuck server held its first request until the client gave up; the prompt target
    // was served meanwhile, not after it.
    let stuck = server.to("/stuck");
    let prompt = server.to("/prompt");
    assert_eq!(prompt.len(), 1);
    let gave_up = server.hang_ends("/stuck");
    assert!(!gave_up.is_empty(), "the stuck request was never given up");
    assert!(
        prompt[0].at < gave_up[0] && stuck[0].at < gave_up[0],
        "the prompt target waited for the stuck one"
    );

    let text = http(metrics, "GET", "/metrics", &[], b"").text();
    let m = |target: &str, kind: &str, result: &str| {
        metric(
            &text,
            &format!("homecam_alert_deliveries_total{{rule=\"faults\",target=\"{target}\",kind=\"{kind}\",result=\"{result}\"}}"),
        )
        .unwrap_or(-1.0)
    };
    assert_eq!(
        (
            m("busy", "webhook", "sent"),
            m("busy", "webhook", "retried")
        ),
        (1.0, 1.0),
        "{text}"
    );
    assert_eq!(
        (
            m("flaky", "webhook", "sent"),
            m("flaky", "webhook", "retried")
        ),
        (1.0, 3.0),
        "{text}"
    );
    assert_eq!(
        (
            m("denied", "telegram", "sent"),
            m("denied", "telegram", "failed")
        ),
        (0.0, 1.0),
        "{text}"
    );
    assert!(
        m("stuck", "webhook", "retried") >= 1.0 && m("stuck", "webhook", "sent") == 0.0,
        "{text}"
    );
    let (_, _, out) = d.stop();
    assert!(
        out.contains("Webhook target \"busy\": HTTP 429: slow down; trying again in 2.0 s"),
        "{out}"
    );
    assert!(
        out.contains("delivered to Webhook target \"busy\" (HTTP 200")
            && out.contains("after 1 retry)"),
        "{out}"
    );
    assert!(
        out.contains("delivered to Webhook target \"flaky\" (HTTP 200")
            && out.contains("after 3 retries)"),
        "{out}"
    );
    assert!(
        out.contains(
            "Telegram target \"denied\": HTTP 401: Unauthorized; alert \"faults\" not delivered"
        ),
        "{out}"
    );
    assert!(
        out.contains("Webhook target \"stuck\": no answer in time; trying again"),
        "{out}"
    );
    assert_no_secret("the daemon's output", &out);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn alerts_in_the_outbox_are_delivered_once_after_a_restart() {
    let dir = temp_dir("push-restart");
    let up = Arc::new(AtomicBool::new(false));
    let up2 = up.clone();
    // Down for maintenance (503) until `up`.
    let server = PushServer::start(&dir.join("tls"), 0, move |_: &Req, _| {
        if up2.load(Ordering::SeqCst) {
            Reply::ok("{}")
        } else {
            Reply::status(503, "maintenance")
        }
    });
    let cam = people_camera(0);
    let ca = server.ca_file.display().to_string();
    let hook_url = server.url(&format!("/later/{HOOK_SECRET}"));
    let config = |motion: &str| {
        format!(
            r#"[general]
metrics = ""
data-dir = "{dir}"

[[alert]]
name = "later"
labels = ["person"]

[[alert.target]]
kind = "webhook"
name = "phone"
url-env = "HOOK_URL"
ca-file = "{ca}"
{camera}"#,
            dir = dir.display(),
            camera = camera(cam.port(), motion),
        )
    };
    let cfg = dir.join("homecam.toml");
    std::fs::write(&cfg, config("clips = false")).unwrap();
    let mut env = env();
    env.push(("HOOK_URL", &hook_url));
    let path = format!("/later/{HOOK_SECRET}");

    // The first run: the alert fires, the server is down, the alert stays in the outbox.
    let d = Homecam::start(BIN, &["run", cfg.to_str().unwrap()], &env);
    server.wait("a first attempt", Duration::from_secs(120), |reqs| {
        !reqs.is_empty()
    });
    let (_, status, out1) = d.stop();
    assert!(status.success(), "{out1}");
    assert!(
        out1.contains("Webhook target \"phone\": HTTP 503: maintenance; trying again"),
        "{out1}"
    );
    let attempts = server.to(&path).len();

    // The second, without motion (no new alert), the server up, every debug category at
    // LOG level into a file: delivered once, from the outbox.
    up.store(true, Ordering::SeqCst);
    std::fs::write(&cfg, config("enabled = false")).unwrap();
    let debug_log = dir.join("gst-debug.log");
    let mut env2 = env.clone();
    let debug_file = debug_log.display().to_string();
    env2.push(("GST_DEBUG", "*:6"));
    env2.push(("GST_DEBUG_FILE", &debug_file));
    let d = Homecam::start(BIN, &["run", cfg.to_str().unwrap()], &env2);
    server.wait(
        "the delivery after the restart",
        Duration::from_secs(60),
        |reqs| reqs.len() > attempts,
    );
    // The outbox is sent before the pipelines start: wait for the camera too, so that the
    // debug log below has GStreamer's output in it (a loaded machine stopped the daemon
    // before GStreamer had written anything).
    d.wait_line("homecam: porch:", Duration::from_secs(30));
    // And for the debug file to fill (CI once stopped the daemon, with other test binaries
    // running, before it held 10 kB).
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let t0 = std::time::Instant::now();
    while size(&debug_log) <= 100_000 && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let (_, _, out2) = d.stop();
    let reqs = server.to(&path);
    assert_eq!(reqs.len(), attempts + 1, "{out2}");
    let v: serde_json::Value = serde_json::from_slice(&reqs.last().unwrap().body).unwrap();
    assert_eq!(v["alert"]["rule"], "later");
    assert_eq!(v["event"]["label"], "person");
    assert!(
        out2.contains("left by an earlier run, delivering"),
        "{out2}"
    );
    assert!(
        out2.contains("alert \"later\" delivered to Webhook target \"phone\" (HTTP 200"),
        "{out2}"
    );

    // A third run has nothing left to send.
    let d = Homecam::start(BIN, &["run", cfg.to_str().unwrap()], &env);
    d.wait_line("homecam: porch:", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    let (_, _, out3) = d.stop();
    assert_eq!(server.to(&path).len(), attempts + 1, "{out3}");

    // Bytes, not a String: a LOG line may quote bytes that are not UTF-8 (read_to_string
    // would then give nothing at all).
    let debug =
        String::from_utf8_lossy(&std::fs::read(&debug_log).unwrap_or_default()).into_owned();
    assert!(
        debug.len() > 10_000,
        "GST_DEBUG_FILE holds {} bytes ({} on disk); run 2 said:\n{out2}",
        debug.len(),
        size(&debug_log)
    );
    for (what, text) in [
        ("run 1", &out1),
        ("run 2", &out2),
        ("run 3", &out3),
        ("the debug log", &debug),
    ] {
        assert_no_secret(what, text);
    }
    std::fs::remove_file(&debug_log).unwrap();
    assert_no_secret_in_files(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The benchmark (`bash scripts/bench-alerts`, release build): two cameras showing people
/// for 6 s and the empty place for 5 s, over and over; every confirmed person is an alert
/// (cooldown 0) to a webhook with the picture. The latency is from the event's confirmed
/// `update` line on the daemon's output to the HTTPS server receiving the request.
#[test]
#[ignore]
fn bench_alert_latency() {
    let events: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = temp_dir("push-bench");
    let server = PushServer::start(&dir.join("tls"), 0, |_: &Req, _| Reply::ok("{}"));
    let cams: Vec<tapo_sim::TapoSim> = (0..2)
        .map(|_| {
            tapo_sim::TapoSim::start(tapo_sim::TapoConfig {
                pattern: format!("file={VTEST} seconds=6 hold=5"),
                main_size: (640, 480),
                sub_size: (640, 480),
                fps: 10,
                ..Default::default()
            })
            .unwrap()
        })
        .collect();
    let mut cfg_text = format!(
        r#"[general]
metrics = ""
data-dir = "{dir}"

[[alert]]
name = "bench"
labels = ["person"]
cooldown = 0

[[alert.target]]
kind = "webhook"
name = "bench"
url = "{url}"
ca-file = "{ca}"
"#,
        dir = dir.display(),
        url = server.url("/bench"),
        ca = server.ca_file.display(),
    );
    for (i, c) in cams.iter().enumerate() {
        cfg_text.push_str(&format!(
            r#"
[[camera]]
name = "cam{i}"
uri = "rtsp://admin@127.0.0.1:{}/stream2"
password-env = "PORCH_PW"
motion = {{ calm-time = 1, pre-roll = 1, post-roll = 1 }}
"#,
            c.port()
        ));
    }
    let cfg = dir.join("homecam.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let d = Homecam::start(BIN, &["run", cfg.to_str().unwrap()], &env());
    // Confirmation times by event id, from the output as it comes.
    let mut confirmed: std::collections::HashMap<String, std::time::Instant> = Default::default();
    let mut seen_lines = 0;
    let t0 = std::time::Instant::now();
    let mut latencies: Vec<f64> = Vec::new();
    while latencies.len() < events && t0.elapsed() < Duration::from_secs(60 * 30) {
        {
            let lines = d.lines.lock().unwrap();
            let now = std::time::Instant::now();
            for l in &lines[seen_lines..] {
                if let Some(j) = l.strip_prefix("event ") {
                    let v: serde_json::Value = serde_json::from_str(j).unwrap_or_default();
                    if v["type"] == "update" && v["verdict"] == "confirmed" {
                        if let Some(id) = v["id"].as_str() {
                            confirmed.entry(id.to_string()).or_insert(now);
                        }
                    }
                }
            }
            seen_lines = lines.len();
        }
        latencies = server
            .to("/bench")
            .iter()
            .filter_map(|r| {
                let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
                let at = confirmed.get(v["event"]["id"].as_str()?)?;
                Some(r.at.saturating_duration_since(*at).as_secs_f64())
            })
            .collect();
        std::thread::sleep(Duration::from_millis(5));
    }
    let (_, _, out) = d.stop();
    let with_picture = server
        .to("/bench")
        .iter()
        .filter(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body)
                .is_ok_and(|v| v["snapshot_base64"].is_string())
        })
        .count();
    assert!(!latencies.is_empty(), "no alert arrived:\n{out}");
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "alert latency, confirmed event -> HTTPS request received, over {} events: median {:.3} s, p90 {:.3} s, p99 {:.3} s, max {:.3} s ({} alerts received, {} with the picture)",
        latencies.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        latencies[latencies.len() - 1],
        server.to("/bench").len(),
        with_picture,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
