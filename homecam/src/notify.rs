//! Alerts to the push services people use and to HTTPS webhooks, with the snapshot
//! attached where the service allows it (`docs/alerts.md`).
//!
//! - **One worker per target**, with its own HTTPS client (reqwest over rustls, the
//!   system's CA roots plus an optional `ca-file`; redirects limited, timeouts set, answers
//!   read up to 64 KiB). A target that hangs delays no other.
//! - **An outbox per target on disk** (the bounded, CRC-checked spool the Kafka output
//!   uses): an alert stays until it is delivered, across restarts. Network errors, 429
//!   (after its `Retry-After`) and 5xx are retried with backoff and jitter; another 4xx is
//!   reported once, with the status and the service's own error text, and not retried.
//!   An alert older than `max-delay` is dropped and counted, never delivered late.
//! - **Secrets** (tokens, webhook URLs) are read from `*-env` / `*-file` at start and
//!   never appear in a log line or error: errors name the target and the HTTP status.

use crate::alerts::Alert;
use crate::config::{Config, Target};
use crate::spool::Spool;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Outbox bound per target: alerts are small, the snapshots stay on disk.
const OUTBOX_BYTES: u64 = 4 << 20;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Answers read at most (error texts, confirmations).
const MAX_ANSWER: u64 = 64 * 1024;
/// Snapshots sent at most (every service takes this much).
const MAX_IMAGE: u64 = 4 << 20;

/// What a target delivers: the alert, the event it is about, its snapshot.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delivery {
    pub alert: Alert,
    /// The event's JSON (without file paths).
    pub event: Value,
    /// The snapshot file, when there is one.
    pub snapshot: Option<String>,
    /// A link to the event in the web app (`[web] public-url`), when there is one.
    pub link: Option<String>,
    /// Unix seconds when the alert was raised.
    pub created: f64,
}

/// Counters of one target, for `/metrics`.
#[derive(Default)]
pub struct TargetStats {
    pub sent: AtomicU64,
    pub retried: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
    /// Seconds from the alert to its delivery, the last 1,000.
    pub latencies: Mutex<VecDeque<f64>>,
    pub latency_sum: Mutex<f64>,
}

impl TargetStats {
    fn delivered(&self, seconds: f64) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let mut l = self.latencies.lock().unwrap();
        if l.len() >= 1000 {
            l.pop_front();
        }
        l.push_back(seconds);
        *self.latency_sum.lock().unwrap() += seconds;
    }

    /// The `q` quantile of the recent latencies.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let mut v: Vec<f64> = self.latencies.lock().unwrap().iter().copied().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[((v.len() - 1) as f64 * q).round() as usize])
    }
}

struct TargetRun {
    rule: String,
    name: String,
    kind: String,
    labels: Vec<String>,
    quiet: Option<(u32, u32)>,
    tx: Option<mpsc::Sender<Delivery>>,
    stats: Arc<TargetStats>,
}

/// Every rule's targets.
pub struct Notifier {
    targets: Vec<TargetRun>,
    pending: Arc<AtomicUsize>,
}

/// A target's secrets and addresses, read once at start.
struct Resolved {
    url: Option<String>,
    token: Option<String>,
    user: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Delivered, with this status.
    Sent(u16),
    /// Worth another attempt: after this long, or by the backoff.
    Retry(String, Option<Duration>),
    /// Not worth another (a 4xx other than 429): reported once.
    Failed(String),
}

impl Notifier {
    /// Opens each target's outbox (delivering what an earlier run left) and starts its
    /// worker. `log` gets the lines for the daemon's log.
    pub fn start(cfg: &Config, log: mpsc::Sender<String>) -> Result<Notifier, String> {
        let pending = Arc::new(AtomicUsize::new(0));
        let mut targets = Vec::new();
        for rule in &cfg.alerts {
            // A rule's plain `webhook` is a webhook target without a snapshot.
            let mut list: Vec<(Target, bool)> =
                rule.targets.iter().map(|t| (t.clone(), false)).collect();
            if let Some(w) = &rule.webhook {
                let t: Target = toml::from_str(&format!(
                    "kind = \"webhook\"\nname = \"webhook\"\nurl = {}\nsnapshot = \"none\"\n",
                    toml::Value::String(w.clone())
                ))
                .map_err(|e| format!("alert {:?}: webhook: {e}", rule.name))?;
                list.push((t, true));
            }
            for (t, plain) in list {
                let name = t.name();
                let resolved = Resolved {
                    url: t.url()?,
                    token: t.token()?,
                    user: t.user()?,
                };
                let client = client(&t)
                    .map_err(|e| format!("alert {:?}: target {name:?}: {e}", rule.name))?;
                let dir = cfg
                    .general
                    .data_dir
                    .join("alerts")
                    .join(safe(&rule.name))
                    .join(safe(&name));
                let outbox = Spool::open(&dir, OUTBOX_BYTES)?;
                if !outbox.is_empty() {
                    let _ = log.send(format!(
                        "alert target {name:?}: {} bytes of alerts left by an earlier run, delivering",
                        outbox.pending_bytes()
                    ));
                }
                let stats = Arc::new(TargetStats::default());
                let (tx, rx) = mpsc::channel();
                let w = Worker {
                    kind: t.kind.get_ref().clone(),
                    name: name.clone(),
                    target: t.clone(),
                    plain,
                    resolved,
                    client,
                    outbox,
                    stats: stats.clone(),
                    log: log.clone(),
                    pending: pending.clone(),
                };
                std::thread::Builder::new()
                    .name(format!("alert-{name}"))
                    .spawn(move || w.run(rx))
                    .map_err(|e| e.to_string())?;
                targets.push(TargetRun {
                    rule: rule.name.clone(),
                    name,
                    kind: t.kind.get_ref().clone(),
                    labels: t.labels.clone(),
                    quiet: t.quiet_hours(),
                    tx: Some(tx),
                    stats,
                });
            }
        }
        Ok(Notifier { targets, pending })
    }

    /// Hands `d` to the targets of its rule that want it (labels, quiet hours at
    /// `minute`, the local time of day); never blocks.
    pub fn send_at(&self, d: &Delivery, minute: u32) -> usize {
        let mut n = 0;
        for t in self.targets.iter().filter(|t| t.rule == d.alert.rule) {
            let label = &d.alert.label;
            let group = d.event.get("group").and_then(Value::as_str).unwrap_or("");
            if !t.labels.is_empty() && !t.labels.iter().any(|l| l == label || l == group) {
                continue;
            }
            if t.quiet.is_some_and(|q| crate::alerts::within(minute, q)) {
                continue;
            }
            if let Some(tx) = &t.tx {
                self.pending.fetch_add(1, Ordering::SeqCst);
                if tx.send(d.clone()).is_err() {
                    self.pending.fetch_sub(1, Ordering::SeqCst);
                } else {
                    n += 1;
                }
            }
        }
        n
    }

    pub fn send(&self, d: &Delivery) -> usize {
        self.send_at(d, crate::alerts::local_minutes(d.created))
    }

    /// (rule, target, kind, counters) of every target.
    pub fn stats(&self) -> Vec<(String, String, String, Arc<TargetStats>)> {
        self.targets
            .iter()
            .map(|t| {
                (
                    t.rule.clone(),
                    t.name.clone(),
                    t.kind.clone(),
                    t.stats.clone(),
                )
            })
            .collect()
    }

    /// Nothing handed over is still waiting for its first attempt.
    pub fn idle(&self) -> bool {
        self.pending.load(Ordering::SeqCst) == 0
    }

    /// Stops the workers; what is undelivered stays in the outboxes for the next start.
    pub fn close(&mut self) {
        for t in &mut self.targets {
            t.tx = None;
        }
    }
}

/// A file-name-safe form of a rule or target name (and of an Arlo recording's id).
pub(crate) fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn client(t: &Target) -> Result<reqwest::blocking::Client, String> {
    https_client(t.timeout(), t.ca_file.as_deref())
}

/// A blocking client on rustls with the system's CA roots plus `ca_file`'s, timeouts
/// set and redirects limited: for the alert targets and the Arlo API.
pub(crate) fn https_client(
    timeout: Duration,
    ca_file: Option<&std::path::Path>,
) -> Result<reqwest::blocking::Client, String> {
    let mut b = reqwest::blocking::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("homecam/", env!("CARGO_PKG_VERSION")))
        .use_rustls_tls();
    if let Some(f) = ca_file {
        let pem = std::fs::read(f).map_err(|e| format!("ca-file {}: {e}", f.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("ca-file {}: {}", f.display(), e.without_url()))?;
        if certs.is_empty() {
            return Err(format!("ca-file {}: no certificate in it", f.display()));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| e.without_url().to_string())
}

struct Worker {
    kind: String,
    name: String,
    target: Target,
    /// A rule's plain `webhook`: the alert's JSON as the body, as before targets existed.
    plain: bool,
    resolved: Resolved,
    client: reqwest::blocking::Client,
    outbox: Spool,
    stats: Arc<TargetStats>,
    log: mpsc::Sender<String>,
    pending: Arc<AtomicUsize>,
}

/// Exponential backoff with jitter: 1, 2, 4... s up to [`MAX_BACKOFF`], each ±25 %.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_secs(1 << attempt.min(8)).min(MAX_BACKOFF);
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let jitter = 0.75 + f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX) * 0.5;
    base.mul_f64(jitter)
}

impl Worker {
    fn label(&self) -> String {
        let kind = match self.kind.as_str() {
            "ntfy" => "ntfy",
            "pushover" => "Pushover",
            "telegram" => "Telegram",
            "discord" => "Discord",
            "slack" => "Slack",
            _ => "Webhook",
        };
        format!("{kind} target {:?}", self.name)
    }

    fn run(mut self, rx: mpsc::Receiver<Delivery>) {
        let max_delay = self.target.max_delay_secs();
        let mut next_attempt = Instant::now();
        let mut attempts = 0u32;
        loop {
            let wait = if self.outbox.is_empty() {
                Duration::from_secs(1)
            } else {
                next_attempt
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_secs(1))
            };
            match rx.recv_timeout(wait) {
                Ok(d) => self.keep(&d),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // The daemon stops: what is left stays in the outbox.
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            while let Ok(d) = rx.try_recv() {
                self.keep(&d);
            }
            if self.outbox.is_empty() || Instant::now() < next_attempt {
                continue;
            }
            let head = self.outbox.head();
            let entry = match self.outbox.read_at(head) {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(e) => {
                    let _ = self.log.send(format!("{}: outbox: {e}", self.label()));
                    next_attempt = Instant::now() + Duration::from_secs(5);
                    continue;
                }
            };
            let Ok(d) = serde_json::from_slice::<Delivery>(&entry.payload) else {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                let _ = self.outbox.advance(entry.end);
                continue;
            };
            let age = crate::event::now() - d.created;
            if age > max_delay {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                let _ = self.log.send(format!(
                    "{}: alert {:?} dropped: not delivered within {:.0} s (max-delay)",
                    self.label(),
                    d.alert.rule,
                    max_delay
                ));
                let _ = self.outbox.advance(entry.end);
                attempts = 0;
                continue;
            }
            match self.deliver(&d) {
                Outcome::Sent(code) => {
                    let took = crate::event::now() - d.created;
                    self.stats.delivered(took);
                    let _ = self.outbox.advance(entry.end);
                    let retries = match attempts {
                        0 => String::new(),
                        1 => ", after 1 retry".into(),
                        n => format!(", after {n} retries"),
                    };
                    let _ = self.log.send(format!(
                        "alert {:?} delivered to {} (HTTP {code}, {took:.2} s{retries})",
                        d.alert.rule,
                        self.label(),
                    ));
                    attempts = 0;
                }
                Outcome::Retry(why, after) => {
                    self.stats.retried.fetch_add(1, Ordering::Relaxed);
                    attempts += 1;
                    let wait = after
                        .unwrap_or_else(|| backoff(attempts - 1))
                        .min(MAX_BACKOFF);
                    next_attempt = Instant::now() + wait;
                    // The first failure and then 2, 4, 8...: no flood of lines.
                    if attempts.is_power_of_two() {
                        let _ = self.log.send(format!(
                            "{}: {why}; trying again in {:.1} s",
                            self.label(),
                            wait.as_secs_f64()
                        ));
                    }
                }
                Outcome::Failed(why) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    let _ = self.log.send(format!(
                        "{}: {why}; alert {:?} not delivered",
                        self.label(),
                        d.alert.rule
                    ));
                    let _ = self.outbox.advance(entry.end);
                    attempts = 0;
                }
            }
        }
    }

    /// Into the outbox.
    fn keep(&mut self, d: &Delivery) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
        let json = serde_json::to_vec(d).unwrap_or_default();
        if let Err(e) = self.outbox.append(0, b"", &json) {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            let _ = self.log.send(format!("{}: outbox: {e}", self.label()));
        }
    }

    /// The snapshot's bytes, when it is there and a JPEG.
    fn image(d: &Delivery) -> Option<Vec<u8>> {
        crate::alerts::read_jpeg(Path::new(d.snapshot.as_ref()?), MAX_IMAGE)
    }

    fn title(d: &Delivery) -> String {
        let where_ = if d.alert.location.is_empty() {
            d.alert.camera.clone()
        } else {
            format!("{} ({})", d.alert.location, d.alert.camera)
        };
        format!("{}: {} at {where_}", d.alert.rule, d.alert.label)
    }

    fn deliver(&self, d: &Delivery) -> Outcome {
        use reqwest::blocking::multipart::{Form, Part};
        let title = Self::title(d);
        let message = match &d.link {
            Some(l) => format!("{}\n{l}", d.alert.message),
            None => d.alert.message.clone(),
        };
        let image = Self::image(d);
        let photo = |bytes: Vec<u8>| {
            Part::bytes(bytes)
                .file_name("snapshot.jpg")
                .mime_str("image/jpeg")
                .expect("a valid mime type")
        };
        let api = |default: &str| {
            self.target
                .api_url
                .clone()
                .unwrap_or_else(|| default.to_string())
                .trim_end_matches('/')
                .to_string()
        };
        let url = self.resolved.url.clone().unwrap_or_default();
        let token = self.resolved.token.clone().unwrap_or_default();
        let req = match self.kind.as_str() {
            // ntfy: the image is the body (an attachment), the text in the query.
            "ntfy" => {
                let mut r = match image {
                    Some(bytes) => self
                        .client
                        .put(&url)
                        .header("Filename", "snapshot.jpg")
                        .query(&[("title", title.as_str()), ("message", message.as_str())])
                        .body(bytes),
                    None => self
                        .client
                        .post(&url)
                        .query(&[("title", title.as_str())])
                        .body(message.clone()),
                };
                r = r.header("Tags", "rotating_light");
                if let Some(l) = &d.link {
                    r = r.header("Click", l.as_str());
                }
                if !token.is_empty() {
                    r = r.bearer_auth(&token);
                }
                r
            }
            "pushover" => {
                let mut form = Form::new()
                    .text("token", token)
                    .text("user", self.resolved.user.clone().unwrap_or_default())
                    .text("title", title)
                    .text("message", d.alert.message.clone());
                if let Some(l) = &d.link {
                    form = form.text("url", l.clone());
                }
                if let Some(bytes) = image {
                    form = form.part("attachment", photo(bytes));
                }
                self.client
                    .post(format!(
                        "{}/1/messages.json",
                        api("https://api.pushover.net")
                    ))
                    .multipart(form)
            }
            "telegram" => {
                let base = format!("{}/bot{token}", api("https://api.telegram.org"));
                let chat = self.target.chat_id.clone().unwrap_or_default();
                match image {
                    // A photo's caption is at most 1,024 characters.
                    Some(bytes) => self.client.post(format!("{base}/sendPhoto")).multipart(
                        Form::new()
                            .text("chat_id", chat)
                            .text("caption", clip_chars(&format!("{title}\n{message}"), 1024))
                            .part("photo", photo(bytes)),
                    ),
                    None => self
                        .client
                        .post(format!("{base}/sendMessage"))
                        .json(&json!({"chat_id": chat, "text": format!("{title}\n{message}")})),
                }
            }
            "discord" => {
                let mut embed = json!({"title": title, "description": message});
                match image {
                    Some(bytes) => {
                        embed["image"] = json!({"url": "attachment://snapshot.jpg"});
                        let payload = json!({"embeds": [embed]}).to_string();
                        self.client.post(&url).multipart(
                            Form::new()
                                .part(
                                    "payload_json",
                                    Part::text(payload)
                                        .mime_str("application/json")
                                        .expect("a valid mime type"),
                                )
                                .part("files[0]", photo(bytes)),
                        )
                    }
                    None => self.client.post(&url).json(&json!({"embeds": [embed]})),
                }
            }
            // Incoming webhooks take no files: the text, and the link to the event.
            "slack" => self
                .client
                .post(&url)
                .json(&json!({"text": format!("*{title}*\n{message}")})),
            _ if self.plain => self.client.post(&url).json(&d.alert),
            _ => {
                let mut body = json!({
                    "alert": d.alert,
                    "event": d.event,
                    "title": title,
                    "link": d.link,
                });
                match self.target.snapshot.get_ref().as_str() {
                    "base64" => {
                        use base64::Engine;
                        if let Some(bytes) = image {
                            body["snapshot_base64"] =
                                json!(base64::engine::general_purpose::STANDARD.encode(bytes));
                            body["snapshot_type"] = json!("image/jpeg");
                        }
                    }
                    "url" => {
                        if let (Some(l), Some(id)) =
                            (&d.link, d.event.get("id").and_then(Value::as_str))
                        {
                            if let Some(base) = l.split("/#").next() {
                                body["snapshot_url"] =
                                    json!(format!("{base}/api/events/{id}/snapshot.jpg"));
                            }
                        }
                    }
                    _ => {}
                }
                self.client.post(&url).json(&body)
            }
        };
        match req.send() {
            Ok(resp) => outcome(resp),
            Err(e) => Outcome::Retry(network_error(&e), None),
        }
    }
}

/// `s` cut to at most `n` characters.
fn clip_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// A transport error, without the URL (it may hold the secret).
fn network_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer in time".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        // reqwest's text names the URL: only its kind is kept.
        let mut s = error_chain(e);
        s.truncate(200);
        s
    }
}

/// An error's text and its sources', without the URL (reqwest's own text names it).
fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut parts = Vec::new();
    let mut src = e.source();
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    if parts.is_empty() {
        "request failed".into()
    } else {
        parts.join(": ")
    }
}

/// A response as an outcome: 2xx sent; 429 and 5xx retried (429 after its Retry-After);
/// other statuses failed with the service's own error text.
fn outcome(resp: reqwest::blocking::Response) -> Outcome {
    use std::io::Read;
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(MAX_BACKOFF.as_secs_f64())));
    let mut body = Vec::new();
    let _ = resp.take(MAX_ANSWER).read_to_end(&mut body);
    if status.is_success() {
        // Telegram and Pushover answer 200 with a failure inside.
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            if v.get("ok") == Some(&Value::Bool(false)) || v.get("status") == Some(&json!(0)) {
                return Outcome::Failed(format!("refused: {}", error_text(&body)));
            }
        }
        return Outcome::Sent(status.as_u16());
    }
    let code = status.as_u16();
    // Telegram and Discord give the wait in the body too.
    let body_wait = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("retry_after")
            .or_else(|| v.get("parameters").and_then(|p| p.get("retry_after")))
            .and_then(Value::as_f64)
    });
    let text = error_text(&body);
    let why = if text.is_empty() {
        format!("HTTP {code}")
    } else {
        format!("HTTP {code}: {text}")
    };
    if code == 429 {
        let wait = retry_after.or(body_wait.map(Duration::from_secs_f64));
        Outcome::Retry(why, wait)
    } else if status.is_server_error() {
        Outcome::Retry(why, None)
    } else {
        Outcome::Failed(why)
    }
}

/// The service's error text from an answer: JSON `description` (Telegram), `errors`
/// (Pushover), `message` (Discord), `error` (ntfy), else the text itself; one line, short.
fn error_text(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            if let Some(d) = v.get("description").and_then(Value::as_str) {
                d.to_string()
            } else if let Some(e) = v.get("errors").and_then(Value::as_array) {
                e.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            } else if let Some(m) = v.get("message").and_then(Value::as_str) {
                m.to_string()
            } else if let Some(e) = v.get("error").and_then(Value::as_str) {
                e.to_string()
            } else {
                String::new()
            }
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let mut one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.len() > 200 {
        one.truncate(200);
        one.push('…');
    }
    one
}

/// The alerts outbox folder of a configuration, for tests.
pub fn outbox_dir(cfg: &Config, rule: &str, target: &str) -> PathBuf {
    cfg.general
        .data_dir
        .join("alerts")
        .join(safe(rule))
        .join(safe(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_come_from_each_service() {
        assert_eq!(
            error_text(br#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#),
            "Unauthorized"
        );
        assert_eq!(
            error_text(br#"{"status":0,"errors":["application token is invalid"]}"#),
            "application token is invalid"
        );
        assert_eq!(
            error_text(br#"{"message": "Unknown Webhook", "code": 10015}"#),
            "Unknown Webhook"
        );
        assert_eq!(error_text(b"invalid_token\n"), "invalid_token");
        assert!(error_text(&[b'x'; 5000]).len() < 210);
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let b0 = backoff(0).as_secs_f64();
        assert!((0.75..=1.25).contains(&b0), "{b0}");
        let b3 = backoff(3).as_secs_f64();
        assert!((6.0..=10.0).contains(&b3), "{b3}");
        assert!(backoff(30) <= MAX_BACKOFF.mul_f64(1.25));
    }
}
