//! Arlo cameras, through Arlo's cloud API: their motion recordings become homecam events,
//! their state becomes camera status. (Arlo cameras stream only through Arlo's servers;
//! what the seed did, and what this does, is read the recordings list.)
//!
//! The API, as the open-source clients (jeffreydwalter/arlo, pyaarlo) document it:
//! - `POST {api}/login/v2` `{"email","password"}` → `{"success":true,"data":{"token",...}}`;
//!   later requests carry the token as `Authorization`. Accounts with two-factor login
//!   (all of them since late 2020) log in by hand and give the token in `token-file`.
//! - `GET {api}/users/devices` → `data`: devices with `deviceId`, `deviceName`,
//!   `deviceType` (`camera`, `basestation`, `doorbell`...), `state` (`provisioned`) and,
//!   on some, `properties.connectionState` (`available`).
//! - `POST {api}/users/library` `{"dateFrom":"YYYYMMDD","dateTo":"YYYYMMDD"}` → `data`:
//!   recordings with `uniqueId`, `deviceId`, `utcCreatedDate` (ms), `mediaDurationSecond`,
//!   `presignedContentUrl`, `presignedThumbnailUrl`, `reason` (`motionRecord`) and, with
//!   Arlo's object detection, `objCategory` (`Person`, `Animal`, `Vehicle`...).
//!
//! The library is asked for the last two days on every poll; a recording already seen
//! (by `uniqueId`, kept in `DATA-DIR/arlo/NAME.seen` across restarts) is not published
//! again. 401: log in again once, then back off; 429 and 5xx: back off with jitter
//! (honouring `Retry-After`); a malformed body: a warning, and polling goes on.
//! Passwords and tokens are never logged: errors name the request, not its headers.

use crate::config;
use crate::daemon::Record;
use crate::event::{Event, Status};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// The largest answer read.
const MAX_BODY: u64 = 8 * 1024 * 1024;
/// Recordings read from one answer at most.
const MAX_RECORDINGS: usize = 10_000;
/// Ids remembered (a few months of a busy account).
const MAX_SEEN: usize = 200_000;
/// On the first start, recordings older than this are marked seen, not published.
const FIRST_START_WINDOW: f64 = 600.0;
const TIMEOUT: Duration = Duration::from_secs(20);

/// A device of the account.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub online: bool,
}

/// One recording in the library.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    pub unique_id: String,
    pub device_id: String,
    /// Unix seconds.
    pub start: f64,
    pub duration: f64,
    pub content_url: Option<String>,
    pub category: String,
}

fn field(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => clip(s, 256),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn clip(s: &str, n: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(n).collect()
}

/// The `data` of a `{"success":true,"data":...}` answer.
fn data(body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("success").and_then(Value::as_bool) != Some(true) {
        let why = v
            .get("data")
            .and_then(|d| d.get("message").or_else(|| d.get("reason")))
            .and_then(Value::as_str)
            .map(|m| clip(m, 120))
            .unwrap_or_else(|| "no reason given".into());
        return Err(format!("success is not true ({why})"));
    }
    v.get("data").cloned().ok_or_else(|| "no data".into())
}

/// The token of a login answer.
pub fn parse_login(body: &[u8]) -> Result<String, String> {
    let d = data(body)?;
    let token = d
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.len() <= 4096)
        .ok_or("no token in the login answer")?;
    Ok(token.to_string())
}

pub fn parse_devices(body: &[u8]) -> Result<Vec<Device>, String> {
    let d = data(body)?;
    let list = d.as_array().ok_or("data is not a list of devices")?;
    Ok(list
        .iter()
        .take(1000)
        .filter_map(|v| {
            let id = field(v, "deviceId");
            if id.is_empty() {
                return None;
            }
            let connection = v
                .get("properties")
                .and_then(|p| p.get("connectionState"))
                .and_then(Value::as_str);
            let state = field(v, "state");
            Some(Device {
                name: Some(field(v, "deviceName"))
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| id.clone()),
                kind: field(v, "deviceType"),
                online: (state.is_empty() || state == "provisioned")
                    && connection.is_none_or(|c| c == "available"),
                id,
            })
        })
        .collect())
}

/// The recordings of a library answer, and how many entries could not be read.
pub fn parse_library(body: &[u8]) -> Result<(Vec<Recording>, usize), String> {
    let d = data(body)?;
    let list = d.as_array().ok_or("data is not a list of recordings")?;
    let mut bad = 0;
    let mut out = Vec::new();
    for v in list.iter().take(MAX_RECORDINGS) {
        let ms = v.get("utcCreatedDate").and_then(Value::as_f64);
        let device_id = field(v, "deviceId");
        let unique_id = Some(field(v, "uniqueId"))
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| {
                let name = field(v, "name");
                if name.is_empty() {
                    String::new()
                } else {
                    format!("{device_id}:{name}")
                }
            });
        let (Some(ms), false, false) = (ms, device_id.is_empty(), unique_id.is_empty()) else {
            bad += 1;
            continue;
        };
        out.push(Recording {
            unique_id,
            device_id,
            start: ms / 1000.0,
            duration: v
                .get("mediaDurationSecond")
                .and_then(Value::as_f64)
                .filter(|d| (0.0..86_400.0).contains(d))
                .unwrap_or(0.0),
            content_url: v
                .get("presignedContentUrl")
                .and_then(Value::as_str)
                .filter(|u| u.starts_with("https://") && u.len() <= 4096)
                .map(str::to_string),
            category: field(v, "objCategory"),
        });
    }
    Ok((out, bad))
}

/// homecam's label and group for Arlo's object category.
fn label(category: &str) -> (&'static str, &'static str) {
    match category.to_ascii_lowercase().as_str() {
        "person" | "people" => ("person", "person"),
        "animal" | "pet" => ("animal", "animal"),
        "vehicle" | "car" => ("vehicle", ""),
        "package" => ("package", ""),
        _ => ("motion", ""),
    }
}

/// A camera name homecam uses in topics and files, from the device's name (the rule
/// `scan --config` names cameras by).
pub fn camera_name(device_name: &str) -> String {
    let out = cam_discovery::camera_name(device_name, 48);
    if out.is_empty() {
        "arlo".into()
    } else {
        out
    }
}

/// The recordings already published, by id, kept in a file of `MS ID` lines.
struct Seen {
    path: PathBuf,
    ids: HashSet<String>,
    order: std::collections::VecDeque<String>,
    file: Option<std::fs::File>,
    first_start: bool,
}

impl Seen {
    fn open(path: PathBuf) -> Result<Seen, String> {
        let first_start = !path.exists();
        let mut lines: Vec<(f64, String)> = Vec::new();
        if !first_start {
            let mut text = String::new();
            std::fs::File::open(&path)
                .and_then(|f| f.take(64 * 1024 * 1024).read_to_string(&mut text))
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            for l in text.lines() {
                if let Some((t, id)) = l.split_once(' ') {
                    if let Ok(t) = t.parse() {
                        lines.push((t, id.to_string()));
                    }
                }
            }
        }
        let keep = lines.len().saturating_sub(MAX_SEEN);
        let lines = &lines[keep..];
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        // Rewritten whole (compacted), then appended to.
        let tmp = path.with_extension("seen.tmp");
        let mut text = String::new();
        for (t, id) in lines {
            text.push_str(&format!("{t} {id}\n"));
        }
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok(Seen {
            ids: lines.iter().map(|(_, id)| id.clone()).collect(),
            order: lines.iter().map(|(_, id)| id.clone()).collect(),
            path,
            file: Some(file),
            first_start,
        })
    }

    fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Remembers `id`, on disk before anything is published of it.
    fn insert(&mut self, id: &str, t: f64) -> Result<(), String> {
        if !self.ids.insert(id.to_string()) {
            return Ok(());
        }
        self.order.push_back(id.to_string());
        if self.order.len() > MAX_SEEN {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        if let Some(f) = &mut self.file {
            f.write_all(format!("{t} {id}\n").as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        }
        Ok(())
    }
}

enum Failure {
    Unauthorized,
    RateLimited(Option<Duration>),
    Unavailable(String),
    Malformed(String),
}

struct Account {
    cfg: config::Arlo,
    client: reqwest::blocking::Client,
    token: Option<String>,
    /// The last token the API refused.
    refused: Option<String>,
    tx: mpsc::Sender<Record>,
    seen: Seen,
    started: f64,
    online: HashMap<String, bool>,
}

use crate::event::now;

/// `YYYYMMDD` of a Unix time (UTC).
fn ymd(t: f64) -> String {
    let (y, m, d, ..) = gst_cam_common::time::civil(t.max(0.0) as u64);
    format!("{y:04}{m:02}{d:02}")
}

impl Account {
    fn log(&self, msg: String) {
        let _ = self
            .tx
            .send(Record::Log(format!("arlo {}: {msg}", self.cfg.name)));
    }

    /// One request; the body (bounded) of a 2xx answer.
    fn call(
        &self,
        post: Option<Value>,
        path: &str,
        token: Option<&str>,
    ) -> Result<Vec<u8>, Failure> {
        let url = format!("{}{path}", self.cfg.api_url.trim_end_matches('/'));
        let mut req = match &post {
            Some(body) => self.client.post(&url).json(body),
            None => self.client.get(&url),
        };
        req = req.header("Accept", "application/json");
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        let what = format!("{} {path}", if post.is_some() { "POST" } else { "GET" });
        let resp = req
            .send()
            .map_err(|e| Failure::Unavailable(format!("{what}: {}", e.without_url())))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(3600)));
        let mut body = Vec::new();
        resp.take(MAX_BODY + 1)
            .read_to_end(&mut body)
            .map_err(|e| Failure::Unavailable(format!("{what}: reading the answer: {e}")))?;
        match status {
            200..=299 if body.len() as u64 > MAX_BODY => Err(Failure::Malformed(format!(
                "{what}: an answer over {} MiB",
                MAX_BODY >> 20
            ))),
            200..=299 => Ok(body),
            401 | 403 => Err(Failure::Unauthorized),
            429 => Err(Failure::RateLimited(retry_after)),
            _ => Err(Failure::Unavailable(format!("{what}: HTTP {status}"))),
        }
    }

    fn login(&mut self) -> Result<(), Failure> {
        if let Some(f) = &self.cfg.token_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| Failure::Unavailable(format!("token-file {}: {e}", f.display())))?;
            let t = text.lines().next().unwrap_or("").trim().to_string();
            if t.is_empty() {
                return Err(Failure::Unavailable(format!(
                    "token-file {} is empty: log in to Arlo by hand and put the token there",
                    f.display()
                )));
            }
            // The file's token, unless it is the one just refused and a password can
            // log in instead.
            let has_password = self.cfg.password_env.is_some() || self.cfg.password_file.is_some();
            if !has_password || self.refused.as_deref() != Some(t.as_str()) {
                self.token = Some(t);
                return Ok(());
            }
        }
        let password = self
            .cfg
            .password()
            .map_err(Failure::Unavailable)?
            .ok_or(Failure::Unauthorized)?;
        let body = serde_json::json!({"email": self.cfg.email, "password": password});
        let answer = self.call(Some(body), "/login/v2", None)?;
        let token =
            parse_login(&answer).map_err(|e| Failure::Malformed(format!("POST /login/v2: {e}")))?;
        self.token = Some(token);
        self.log("logged in".into());
        Ok(())
    }

    fn included(&self, d: &Device) -> bool {
        matches!(d.kind.as_str(), "camera" | "doorbell" | "arloq" | "arloqs")
            && (self.cfg.cameras.is_empty()
                || self.cfg.cameras.iter().any(|c| *c == d.name || *c == d.id))
    }

    fn location(&self, d: &Device) -> String {
        self.cfg
            .locations
            .get(&d.name)
            .or_else(|| self.cfg.locations.get(&d.id))
            .cloned()
            .unwrap_or_default()
    }

    fn poll(&mut self) -> Result<(), Failure> {
        if self.token.is_none() {
            self.login()?;
        }
        let token = self.token.clone().unwrap_or_default();
        let body = self.call(None, "/users/devices", Some(&token))?;
        let devices = parse_devices(&body)
            .map_err(|e| Failure::Malformed(format!("GET /users/devices: {e}")))?;
        let cams: Vec<Device> = devices.into_iter().filter(|d| self.included(d)).collect();
        for d in &cams {
            if self.online.get(&d.id) != Some(&d.online) {
                self.online.insert(d.id.clone(), d.online);
                let mut s = Status::new(
                    &camera_name(&d.name),
                    &self.location(d),
                    if d.online { "online" } else { "offline" },
                    if d.online {
                        String::new()
                    } else {
                        "Arlo reports the camera unavailable".into()
                    },
                );
                s.camera_name = d.name.clone();
                let _ = self.tx.send(Record::Status(Box::new(s)));
            }
        }
        let t = now();
        let window = serde_json::json!({"dateFrom": ymd(t - 36.0 * 3600.0), "dateTo": ymd(t + 14.0 * 3600.0)});
        let body = self.call(Some(window), "/users/library", Some(&token))?;
        let (mut recs, bad) = parse_library(&body)
            .map_err(|e| Failure::Malformed(format!("POST /users/library: {e}")))?;
        if bad > 0 {
            self.log(format!(
                "{bad} recording{} without an id, device or time: skipped",
                if bad == 1 { "" } else { "s" }
            ));
        }
        recs.sort_by(|a, b| a.start.total_cmp(&b.start));
        let by_id: HashMap<&str, &Device> = cams.iter().map(|d| (d.id.as_str(), d)).collect();
        let mut skipped_old = 0;
        for r in &recs {
            let Some(d) = by_id.get(r.device_id.as_str()) else {
                continue;
            };
            if self.seen.contains(&r.unique_id) {
                continue;
            }
            let old = self.seen.first_start && r.start < self.started - FIRST_START_WINDOW;
            // Remembered before it is published: a crash between the two loses one
            // event rather than publishing it twice.
            if let Err(e) = self.seen.insert(&r.unique_id, r.start) {
                self.log(e);
            }
            if old {
                skipped_old += 1;
                continue;
            }
            self.publish(d, r);
        }
        if skipped_old > 0 {
            self.log(format!(
                "first start: {skipped_old} earlier recording{} marked as seen, not published",
                if skipped_old == 1 { "" } else { "s" }
            ));
        }
        self.seen.first_start = false;
        Ok(())
    }

    fn publish(&self, d: &Device, r: &Recording) {
        let (label, group) = label(&r.category);
        let confirmed = label != "motion";
        let id: String = crate::notify::safe(&r.unique_id).chars().take(96).collect();
        let mut e = Event {
            kind: "new",
            id: format!("arlo-{id}"),
            camera: camera_name(&d.name),
            camera_name: d.name.clone(),
            location: self.location(d),
            label: label.into(),
            group: group.into(),
            score: if confirmed { 1.0 } else { 0.0 },
            top_score: if confirmed { 1.0 } else { 0.0 },
            bbox: None,
            zones: Vec::new(),
            start_time: r.start,
            end_time: None,
            has_clip: false,
            has_snapshot: false,
            clip: None,
            snapshot: None,
            event_type: "motion",
            motion_score: 0.0,
            verdict: if confirmed { "confirmed" } else { "pending" },
            confirmed,
            dismissed: false,
            origin: String::new(),
            source: "arlo",
            media_url: r.content_url.clone(),
        };
        let _ = self.tx.send(Record::Event(Box::new(e.clone())));
        e.kind = "end";
        e.end_time = Some(r.start + r.duration);
        let _ = self.tx.send(Record::Event(Box::new(e)));
    }
}

/// Polls one account on a thread of its own until stopped.
pub struct Poller {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    pub fn start(
        cfg: &config::Arlo,
        data_dir: &Path,
        tx: mpsc::Sender<Record>,
    ) -> Result<Poller, String> {
        let what = format!("arlo {}", cfg.name);
        let client = crate::notify::https_client(TIMEOUT, cfg.ca_file.as_deref())
            .map_err(|e| format!("{what}: {e}"))?;
        let seen = Seen::open(data_dir.join("arlo").join(format!("{}.seen", cfg.name)))
            .map_err(|e| format!("{what}: {e}"))?;
        let mut acct = Account {
            cfg: cfg.clone(),
            client,
            token: None,
            refused: None,
            tx,
            seen,
            started: now(),
            online: HashMap::new(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("arlo-{}", cfg.name))
            .spawn(move || run(&mut acct, &s))
            .map_err(|e| format!("{what}: {e}"))?;
        Ok(Poller {
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sleep(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
    }
}

fn run(a: &mut Account, stop: &AtomicBool) {
    let poll = Duration::from_secs(a.cfg.poll_interval);
    let mut attempt = 0u32;
    let mut relogin = true;
    let mut failing = false;
    while !stop.load(Ordering::SeqCst) {
        let wait = match a.poll() {
            Ok(()) => {
                if failing {
                    a.log("polling again".into());
                }
                failing = false;
                attempt = 0;
                relogin = true;
                poll
            }
            Err(Failure::Unauthorized) => {
                a.refused = a.token.take();
                if relogin {
                    // Tokens expire: log in again at once, once.
                    relogin = false;
                    a.log("the session was refused (expired?): logging in again".into());
                    continue;
                }
                a.log("the login was refused: check the e-mail and password (or token-file); trying again later".into());
                attempt += 1;
                crate::notify::backoff(attempt + 2).max(poll)
            }
            Err(Failure::RateLimited(after)) => {
                attempt += 1;
                let w = after
                    .unwrap_or_default()
                    .max(crate::notify::backoff(attempt + 1));
                a.log(format!(
                    "rate limited (429): waiting {:.0} s",
                    w.as_secs_f64()
                ));
                w
            }
            Err(Failure::Unavailable(why)) => {
                attempt += 1;
                let w = crate::notify::backoff(attempt + 1);
                if !failing {
                    a.log(format!("{why}: trying again with backoff"));
                }
                failing = true;
                w
            }
            Err(Failure::Malformed(why)) => {
                a.log(format!(
                    "warning: a malformed answer: {why}; polling goes on"
                ));
                poll
            }
        };
        sleep(stop, wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_the_clients_document_them() {
        let t = parse_login(br#"{"success":true,"data":{"userId":"X","token":"2_abc"}}"#).unwrap();
        assert_eq!(t, "2_abc");
        assert!(
            parse_login(br#"{"success":false,"data":{"message":"bad"}}"#)
                .unwrap_err()
                .contains("bad")
        );
        let d = parse_devices(br#"{"success":true,"data":[
            {"deviceId":"A1","deviceName":"Front Door","deviceType":"camera","state":"provisioned"},
            {"deviceId":"B1","deviceName":"Base","deviceType":"basestation","state":"provisioned"},
            {"deviceId":"C1","deviceName":"Yard","deviceType":"camera","state":"provisioned","properties":{"connectionState":"unavailable"}},
            {"deviceName":"no id"}]}"#).unwrap();
        assert_eq!(d.len(), 3);
        assert!(d[0].online && !d[2].online);
        let (r, bad) = parse_library(br#"{"success":true,"data":[
            {"uniqueId":"A1_1","deviceId":"A1","utcCreatedDate":1796000000123,"mediaDurationSecond":12,"presignedContentUrl":"https://s3/x.mp4","objCategory":"Person"},
            {"name":"1796000100000","deviceId":"A1","utcCreatedDate":1796000100000},
            {"deviceId":"A1"}]}"#).unwrap();
        assert_eq!(bad, 1);
        assert_eq!(r[0].unique_id, "A1_1");
        assert!((r[0].start - 1_796_000_000.123).abs() < 1e-6);
        assert_eq!(r[1].unique_id, "A1:1796000100000");
        assert_eq!(label(&r[0].category), ("person", "person"));
        for bad in [
            &b"[]"[..],
            b"{",
            b"{\"success\":true}",
            b"{\"success\":true,\"data\":{}}",
        ] {
            assert!(parse_library(bad).is_err());
        }
    }

    #[test]
    fn names_and_dates() {
        assert_eq!(camera_name("Front Door (2)"), "front-door-2");
        assert_eq!(camera_name("!!"), "arlo");
        assert_eq!(ymd(0.0), "19700101");
        assert_eq!(ymd(1_796_083_071.0), "20261130");
        assert_eq!(ymd(951_782_400.0), "20000229");
    }

    #[test]
    fn seen_ids_survive_a_restart_and_the_file_is_compacted() {
        let dir = std::env::temp_dir().join(format!("arlo-seen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = dir.join("a.seen");
        let mut s = Seen::open(p.clone()).unwrap();
        assert!(s.first_start);
        s.insert("x", 1.0).unwrap();
        s.insert("x", 1.0).unwrap();
        s.insert("y", 2.0).unwrap();
        drop(s);
        let s = Seen::open(p.clone()).unwrap();
        assert!(!s.first_start && s.contains("x") && s.contains("y") && !s.contains("z"));
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
