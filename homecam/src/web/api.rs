//! The API's handlers. Answers are JSON; errors are `{"error": "..."}` with 400 (bad
//! parameters), 401 (no session), 404 (unknown camera, id or route), 416 (bad range),
//! 429 (too many failed logins), 503 (busy).

use super::auth::{Refused, COOKIE, MAX_FIELD};
use super::files::{self, Content};
use super::{CachedExport, State};
use crate::index::{self, EventQuery, EventRow, Record, GAP};
use axum::extract::{ConnectInfo, Path, Query, RawQuery, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures_util::StreamExt;
use mp4_export::segment::FileSource;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events per page at most.
pub const MAX_LIMIT: usize = 500;
/// The longest export.
pub const MAX_EXPORT: f64 = 24.0 * 3600.0;
/// The longest range of `/api/recordings` and `/api/stats`.
pub const MAX_SPAN: f64 = 400.0 * 86400.0;
const MAX_VALUE: usize = 256;

pub fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "error": msg }))).into_response()
}

/// A refused request: its status and the reason given to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    msg: String,
    retry_after: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = error(self.status, &self.msg);
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

fn err(status: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError {
        status,
        msg: msg.into(),
        retry_after: None,
    }
}

type Q = Query<HashMap<String, String>>;
type ApiResult = Result<Response, ApiError>;

fn bad(msg: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, msg)
}

/// Refuses unknown and oversized parameters.
fn check(q: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    for (k, v) in q {
        if !allowed.contains(&k.as_str()) {
            return Err(bad(format!(
                "unknown parameter {:?}: this route takes {}",
                k.chars().take(40).collect::<String>(),
                allowed.join(", ")
            )));
        }
        if v.len() > MAX_VALUE {
            return Err(bad(format!(
                "parameter {k} is longer than {MAX_VALUE} bytes"
            )));
        }
    }
    Ok(())
}

/// A time: Unix seconds, or ISO 8601 UTC (`2026-11-30T08:00:00Z`, fractions allowed).
pub fn parse_time(s: &str) -> Option<f64> {
    if let Ok(t) = s.parse::<f64>() {
        return t
            .is_finite()
            .then_some(t)
            .filter(|t| (0.0..1e11).contains(t));
    }
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let (y, mo, day) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let mut t = time.split(':');
    let (h, mi) = (
        t.next()?.parse::<u32>().ok()?,
        t.next()?.parse::<u32>().ok()?,
    );
    let sec: f64 = t.next().unwrap_or("0").parse().ok()?;
    if d.next().is_some()
        || t.next().is_some()
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&day)
        || h > 23
        || mi > 59
        || !(0.0..61.0).contains(&sec)
        || !(1970..=9999).contains(&y)
    {
        return None;
    }
    Some(gstringrec::store::unix_of(y, mo, day, h, mi, 0) as f64 + sec)
}

fn time(q: &HashMap<String, String>, k: &str) -> Result<Option<f64>, ApiError> {
    match q.get(k) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => parse_time(v).map(Some).ok_or_else(|| {
            bad(format!(
                "{k}: {v:?} is not Unix seconds or YYYY-MM-DDTHH:MM:SSZ"
            ))
        }),
    }
}

fn camera(
    st: &State,
    q: &HashMap<String, String>,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match q.get("camera").filter(|c| !c.is_empty()) {
        None if required => Err(bad("camera is required")),
        None => Ok(None),
        Some(c) if st.cameras.names().iter().any(|n| n == c) => Ok(Some(c.clone())),
        Some(_) => Err(err(StatusCode::NOT_FOUND, "no such camera")),
    }
}

/// Runs a blocking index read off the async threads.
async fn read<T: Send + 'static>(
    st: &Arc<State>,
    f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let index = st.index.clone();
    tokio::task::spawn_blocking(move || index.read(f))
        .await
        .map_err(|_| err(StatusCode::INTERNAL_SERVER_ERROR, "index read failed"))?
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, format!("index: {e}")))
}

/// An event as the API shows it: the event JSON, with links instead of file paths. `local`:
/// files without an origin are here (a daemon), or nowhere to be had (a dashboard).
pub fn event_json(e: &EventRow, local: bool) -> Value {
    let mut v = e.v.clone();
    // A daemon's own events link here; a dashboard's to the daemon that made them.
    let base = if local {
        String::new()
    } else {
        e.origin.trim_end_matches('/').to_string()
    };
    let reachable = local || !e.origin.is_empty();
    let id = urlencode(&e.id);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "clip_url".into(),
            if e.has_clip && reachable {
                json!(format!("{base}/api/events/{id}/clip.mp4"))
            } else {
                Value::Null
            },
        );
        o.insert(
            "snapshot_url".into(),
            if e.has_snapshot && reachable {
                json!(format!("{base}/api/events/{id}/snapshot.jpg"))
            } else {
                Value::Null
            },
        );
    }
    v
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !id.starts_with('.')
}

// ---- Login ----------------------------------------------------------------------------

pub async fn login(
    AxState(st): AxState<Arc<State>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let Some(auth) = &st.auth else {
        return Json(json!({"user": null, "auth": "none"})).into_response();
    };
    // JSON {"user", "password"} or a form (user=...&password=...).
    let (user, password) = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => (
            v.get("user").and_then(Value::as_str).map(str::to_string),
            v.get("password")
                .and_then(Value::as_str)
                .map(str::to_string),
        ),
        Err(_) => {
            let f: HashMap<String, String> = form_pairs(&body);
            (f.get("user").cloned(), f.get("password").cloned())
        }
    };
    let (Some(user), Some(password)) = (user, password) else {
        return bad("give user and password").into_response();
    };
    if user.len() > MAX_FIELD || password.len() > MAX_FIELD {
        return bad("user or password too long").into_response();
    }
    let ip = peer.ip();
    if let Some(w) = auth.must_wait(ip) {
        return too_many(w);
    }
    // One argon2 check at a time: a flood of logins cannot take the cameras' CPU.
    let Ok(_slot) = st.login_slots.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "stopping");
    };
    let st2 = st.clone();
    let r = tokio::task::spawn_blocking(move || {
        st2.auth.as_ref().map(|a| a.login(ip, &user, &password))
    })
    .await;
    match r {
        Ok(Some(Ok(token))) => {
            let mut r = Json(json!({"ok": true})).into_response();
            let secure = if st.secure_cookie { "; Secure" } else { "" };
            let cookie = format!(
                "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
                auth.session_len().as_secs()
            );
            r.headers_mut()
                .insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).unwrap());
            r
        }
        Ok(Some(Err(Refused::Wait(w)))) => too_many(w),
        Ok(Some(Err(Refused::NoUsers))) => error(
            StatusCode::UNAUTHORIZED,
            "no user is set up yet: run homecam passwd CONFIG USER on the server",
        ),
        _ => error(StatusCode::UNAUTHORIZED, "wrong user or password"),
    }
}

fn too_many(w: Duration) -> Response {
    let secs = w.as_secs().max(1);
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("too many failed logins: try again in {secs} s"),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

fn form_pairs(body: &[u8]) -> HashMap<String, String> {
    let dec = |s: &str| -> String {
        let s = s.replace('+', " ");
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                let hex = |c: u8| (c as char).to_digit(16);
                if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (dec(k), dec(v)))
        .collect()
}

pub async fn logout(AxState(st): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    if let (Some(auth), Some(t)) = (
        &st.auth,
        headers
            .get(header::COOKIE)
            .and_then(|c| c.to_str().ok())
            .and_then(super::auth::cookie_token),
    ) {
        auth.logout(t);
    }
    let mut r = Json(json!({"ok": true})).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
        ))
        .unwrap(),
    );
    r
}

pub async fn me(AxState(st): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    let user = st.auth.as_ref().and_then(|a| {
        headers
            .get(header::COOKIE)
            .and_then(|c| c.to_str().ok())
            .and_then(super::auth::cookie_token)
            .and_then(|t| a.session(t))
    });
    Json(json!({
        "user": user,
        "auth": if st.auth.is_some() { "password" } else { "none" },
        "recordings": st.cameras.has_recordings(),
    }))
    .into_response()
}

// ---- Cameras, events ------------------------------------------------------------------

pub async fn cameras(AxState(st): AxState<Arc<State>>) -> Response {
    let st2 = st.clone();
    let list = tokio::task::spawn_blocking(move || st2.cameras.list())
        .await
        .unwrap_or_default();
    Json(json!({ "cameras": list })).into_response()
}

pub async fn events(AxState(st): AxState<Arc<State>>, Query(q): Q) -> ApiResult {
    check(
        &q,
        &[
            "camera", "label", "verdict", "since", "until", "limit", "before",
        ],
    )?;
    let limit = match q.get("limit") {
        None => 50,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| bad(format!("limit must be 1-{MAX_LIMIT}")))?,
    };
    let before = match q.get("before").filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => {
            let (t, id) = b
                .split_once('_')
                .and_then(|(t, id)| Some((t.parse::<f64>().ok()?, id.to_string())))
                .filter(|(t, id)| t.is_finite() && valid_id(id))
                .ok_or_else(|| bad("before: not a cursor from an earlier page's next"))?;
            Some((t, id))
        }
    };
    let verdict = q.get("verdict").filter(|v| !v.is_empty()).cloned();
    if let Some(v) = &verdict {
        if !matches!(
            v.as_str(),
            "pending" | "confirmed" | "dismissed" | "unknown"
        ) {
            return Err(bad("verdict: pending, confirmed, dismissed or unknown"));
        }
    }
    let (since, until) = (time(&q, "since")?, time(&q, "until")?);
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            return Err(bad("until is before since"));
        }
    }
    let query = EventQuery {
        camera: camera(&st, &q, false)?,
        label: q.get("label").filter(|v| !v.is_empty()).cloned(),
        verdict,
        since,
        until,
        before,
        limit,
    };
    let rows = read(&st, move |c| index::events(c, &query)).await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| format!("{:?}_{}", r.start_time, r.id)))
        .flatten();
    let local = st.cameras.has_recordings();
    let events: Vec<Value> = rows.iter().map(|e| event_json(e, local)).collect();
    Ok(Json(json!({ "events": events, "next": next })).into_response())
}

pub async fn event(AxState(st): AxState<Arc<State>>, Path(id): Path<String>) -> ApiResult {
    if !valid_id(&id) {
        return Err(err(StatusCode::NOT_FOUND, "no such event"));
    }
    match read(&st, move |c| index::event(c, &id)).await? {
        Some(e) => Ok(Json(event_json(&e, st.cameras.has_recordings())).into_response()),
        None => Err(err(StatusCode::NOT_FOUND, "no such event")),
    }
}

pub async fn event_file(
    AxState(st): AxState<Arc<State>>,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let (what, ctype) = match file.as_str() {
        "clip.mp4" => ("clip", "video/mp4"),
        "snapshot.jpg" => ("snapshot", "image/jpeg"),
        _ => {
            return Err(err(
                StatusCode::NOT_FOUND,
                "no such file: clip.mp4 or snapshot.jpg",
            ))
        }
    };
    if !valid_id(&id) {
        return Err(err(StatusCode::NOT_FOUND, "no such event"));
    }
    let id2 = id.clone();
    let (row, path) = read(&st, move |c| {
        Ok((index::event(c, &id2)?, index::event_file(c, &id2, what)?))
    })
    .await?;
    let Some(row) = row else {
        return Err(err(StatusCode::NOT_FOUND, "no such event"));
    };
    if !st.cameras.has_recordings() && !row.origin.is_empty() {
        // A dashboard: the clip is on the daemon that made the event.
        let url = format!(
            "{}/api/events/{}/{file}",
            row.origin.trim_end_matches('/'),
            urlencode(&id)
        );
        let mut r = StatusCode::FOUND.into_response();
        if let Ok(v) = HeaderValue::from_str(&url) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(r);
    }
    let Some(path) = path.filter(|_| st.cameras.has_recordings()) else {
        return Err(err(
            StatusCode::NOT_FOUND,
            format!("this event has no {what} here"),
        ));
    };
    let opened = tokio::task::spawn_blocking(move || FileSource::open(std::path::Path::new(&path)))
        .await
        .map_err(|_| err(StatusCode::INTERNAL_SERVER_ERROR, "open failed"))?;
    match opened {
        Ok(f) => Ok(files::serve(
            Arc::new(Content::File(f)),
            &headers,
            ctype,
            &[],
        )),
        Err(_) => Err(err(
            StatusCode::NOT_FOUND,
            format!("the {what} file is gone"),
        )),
    }
}

// ---- Recordings -----------------------------------------------------------------------

fn range(q: &HashMap<String, String>, a: &str, b: &str, max: f64) -> Result<(f64, f64), ApiError> {
    let now = crate::event::now();
    let start = time(q, a)?.ok_or_else(|| bad(format!("{a} is required")))?;
    let end = time(q, b)?.unwrap_or(now);
    if end <= start {
        return Err(bad(format!("{b} must be after {a}")));
    }
    if end - start > max {
        return Err(bad(format!("the range is longer than {} h", max / 3600.0)));
    }
    Ok((start, end))
}

/// The segments of `camera` in `[start, end)`, with the one being recorded now.
async fn segments_with_current(
    st: &Arc<State>,
    camera: &str,
    start: f64,
    end: f64,
) -> Result<Vec<index::SegmentRow>, ApiError> {
    let cam = camera.to_string();
    let mut segs = read(st, move |c| index::segments(c, &cam, start, end)).await?;
    if let Some((path, s0)) = st.cameras.current_segment(camera) {
        if s0 < end && !segs.iter().any(|s| s.path == path) {
            let cam = camera.to_string();
            let row = tokio::task::spawn_blocking(move || {
                index::read_segment(&cam, std::path::Path::new(&path), s0, None, 0)
            })
            .await
            .ok()
            .flatten();
            if let Some(r) = row.filter(|r| r.end > start) {
                segs.push(r);
            }
        }
    }
    segs.sort_by(|a, b| a.start.total_cmp(&b.start));
    Ok(segs)
}

pub async fn recordings(AxState(st): AxState<Arc<State>>, Query(q): Q) -> ApiResult {
    check(&q, &["camera", "start", "end"])?;
    if !st.cameras.has_recordings() {
        return Err(err(
            StatusCode::NOT_FOUND,
            "recordings are served by the daemon that holds them, not by the dashboard",
        ));
    }
    let camera = camera(&st, &q, true)?.unwrap_or_default();
    let (start, end) = range(&q, "start", "end", MAX_SPAN)?;
    let segs = segments_with_current(&st, &camera, start, end).await?;
    let (spans, gaps) = index::spans(&segs, start, end);
    let bytes: u64 = segs.iter().map(|s| s.bytes).sum();
    let segments: Vec<Value> = segs
        .iter()
        .map(|s| json!({"start": s.start, "end": s.end, "bytes": s.bytes, "frames": s.frames}))
        .collect();
    Ok(Json(json!({
        "camera": camera,
        "start": start,
        "end": end,
        "spans": spans,
        "gaps": gaps,
        "segments": segments,
        "bytes": bytes,
    }))
    .into_response())
}

pub async fn export(
    AxState(st): AxState<Arc<State>>,
    Query(q): Q,
    headers: HeaderMap,
) -> ApiResult {
    check(&q, &["camera", "start", "end", "download"])?;
    if !st.cameras.has_recordings() {
        return Err(err(
            StatusCode::NOT_FOUND,
            "recordings are served by the daemon that holds them",
        ));
    }
    let camera = camera(&st, &q, true)?.unwrap_or_default();
    if q.get("end").is_none_or(|e| e.is_empty()) {
        return Err(bad("end is required"));
    }
    let (start, end) = range(&q, "start", "end", MAX_EXPORT)?;
    let key = (
        camera.clone(),
        (start * 1000.0) as i64,
        (end * 1000.0) as i64,
    );
    let cached = {
        let mut c = st.exports.lock().unwrap();
        c.retain(|e| e.made.elapsed() < e.ttl);
        c.iter()
            .find(|e| e.key == key)
            .map(|e| (e.content.clone(), e.missing.clone()))
    };
    let (content, missing) = match cached {
        Some(x) => x,
        None => {
            let Ok(_slot) = st.export_slots.try_acquire() else {
                return Err(ApiError {
                    retry_after: Some(2),
                    ..err(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "two exports are being prepared: try again",
                    )
                });
            };
            // A GOP before the start: the key frame to begin with may be there.
            let segs = segments_with_current(&st, &camera, start - 60.0, end).await?;
            let index = st.index.clone();
            let built = tokio::task::spawn_blocking(move || assemble(&index, segs, start, end))
                .await
                .map_err(|_| err(StatusCode::INTERNAL_SERVER_ERROR, "export failed"))?;
            let (content, missing) = match built {
                Ok(x) => x,
                Err(mp4_export::Error::Empty) => {
                    return Err(err(
                        StatusCode::NOT_FOUND,
                        "nothing was recorded in that range",
                    ))
                }
                Err(mp4_export::Error::TooLarge(m)) => return Err(bad(m)),
                Err(e) => return Err(err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
            };
            let content = Arc::new(content);
            let live = end > crate::event::now() - 120.0;
            let mut c = st.exports.lock().unwrap();
            if c.len() >= 8 {
                c.remove(0);
            }
            c.push(CachedExport {
                key,
                made: Instant::now(),
                ttl: Duration::from_secs(if live { 20 } else { 600 }),
                content: content.clone(),
                missing: missing.clone(),
            });
            (content, missing)
        }
    };
    let (y, mo, d, h, mi, s) = gst_cam_common::time::civil(start as u64);
    let name = format!(
        "{camera}-{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z-{}s.mp4",
        (end - start).round() as u64
    );
    let mut extra = vec![
        (
            "content-disposition",
            format!(
                "{}; filename=\"{name}\"",
                if q.get("download").is_some_and(|d| d == "1" || d == "true") {
                    "attachment"
                } else {
                    "inline"
                }
            ),
        ),
        ("x-homecam-complete", (missing.is_empty()).to_string()),
    ];
    if !missing.is_empty() {
        extra.push((
            "x-homecam-missing",
            missing
                .iter()
                .map(|(a, b)| format!("{a:.3}-{b:.3}"))
                .collect::<Vec<_>>()
                .join(","),
        ));
    }
    Ok(files::serve(content, &headers, "video/mp4", &extra))
}

/// The export of `[start, end)` from `segs`: opens and reads each file (a file that is
/// gone is a missing part, and leaves the index).
fn assemble(
    index: &crate::index::Index,
    segs: Vec<index::SegmentRow>,
    start: f64,
    end: f64,
) -> Result<(Content, Vec<(f64, f64)>), mp4_export::Error> {
    let mut files = Vec::new();
    let mut parsed = Vec::new();
    let mut missing_files = Vec::new();
    for s in &segs {
        match FileSource::open(std::path::Path::new(&s.path)) {
            Ok(f) => match mp4_export::parse(&f) {
                Ok(p) => {
                    parsed.push((s.start, p, files.len()));
                    files.push(Arc::new(f));
                }
                Err(_) => missing_files.push((s.start.max(start), s.end.min(end))),
            },
            Err(e) => {
                if e.kind() == std::io::ErrorKind::NotFound {
                    index.record(Record::SegmentDeleted {
                        path: s.path.clone(),
                    });
                }
                missing_files.push((s.start.max(start), s.end.min(end)));
            }
        }
    }
    let inputs: Vec<mp4_export::Input> = parsed
        .iter()
        .map(|(s, p, f)| mp4_export::Input {
            start: *s,
            segment: p,
            file: *f,
        })
        .collect();
    let export = mp4_export::build(&inputs, start, end, GAP)?;
    let mut missing = export.missing.clone();
    missing.extend(missing_files.into_iter().filter(|(a, b)| b > a));
    missing.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Overlapping reports (a missing file inside a gap the samples show) become one.
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for (a, b) in missing {
        match merged.last_mut() {
            Some(l) if a <= l.1 => l.1 = l.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    Ok((Content::Export { export, files }, merged))
}

// ---- Statistics, insights -------------------------------------------------------------

pub async fn stats(AxState(st): AxState<Arc<State>>, Query(q): Q) -> ApiResult {
    check(&q, &["bucket", "since", "until"])?;
    let bucket = match q.get("bucket").map(String::as_str).unwrap_or("hour") {
        "hour" => 3600.0,
        "day" => 86400.0,
        _ => return Err(bad("bucket: hour or day")),
    };
    let now = crate::event::now();
    let since = time(&q, "since")?.unwrap_or(now - 86400.0);
    let until = time(&q, "until")?.unwrap_or(now + 1.0);
    if until <= since {
        return Err(bad("until must be after since"));
    }
    if until - since > MAX_SPAN {
        return Err(bad("the range is longer than 400 days"));
    }
    let rows = read(&st, move |c| index::stats(c, bucket, since, until)).await?;
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(t, camera, label, verdict, n)| {
            json!({"time": t, "camera": camera, "label": label, "verdict": verdict, "count": n})
        })
        .collect();
    Ok(
        Json(json!({"bucket": bucket, "since": since, "until": until, "rows": rows}))
            .into_response(),
    )
}

pub async fn insights(AxState(st): AxState<Arc<State>>, Query(q): Q) -> ApiResult {
    check(&q, &["since"])?;
    let since = time(&q, "since")?.unwrap_or(crate::event::now() - 7.0 * 86400.0);
    let rows = read(&st, move |c| index::insights(c, since)).await?;
    Ok(Json(json!({ "insights": rows })).into_response())
}

/// Server-sent events: `event`, `status` and `insight`, each a JSON object.
pub async fn stream(AxState(st): AxState<Arc<State>>) -> Response {
    let rx = st.live.subscribe();
    let s = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(|m| async move {
        // A client too slow for the broadcast skips what it missed.
        let (kind, json) = m.ok()?;
        Some(Ok::<_, std::convert::Infallible>(
            SseEvent::default().event(kind).data(json),
        ))
    });
    Sse::new(s)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

// ---- Live -----------------------------------------------------------------------------

/// Live MP4 viewers one camera may have at once.
pub const MAX_LIVE_VIEWERS: usize = 16;

/// Fragments that may wait for a viewer's connection (about 8 s of 30 fps video and its
/// audio) before the viewer is cut off; its player connects again.
const LIVE_BACKLOG: usize = 512;

/// `/live/CAMERA.mp4`: the camera's own H.264 and its audio as AAC, in fragmented MP4
/// from the next key frame on, for the page's Media Source Extensions player;
/// `?audio=0`: the video alone (a muted tile).
async fn live_mp4(st: &State, cam: &str, audio: bool) -> Response {
    let Some(feed) = st.lives.get(cam).cloned() else {
        return error(StatusCode::NOT_FOUND, "no live view of that camera");
    };
    // A page opened as the daemon starts waits for the camera's first video (up to 10 s)
    // rather than falling back to MJPEG.
    for _ in 0..100 {
        if feed.feed.caps().0.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if feed.viewers() >= MAX_LIVE_VIEWERS {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live viewers of that camera",
        );
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(LIVE_BACKLOG);
    let tx = std::sync::Mutex::new(Some(tx));
    // On a streaming thread: never waits. A viewer that falls behind, or has gone, ends
    // its stream (dropping the sender ends the body, which drops the viewer's pipeline).
    let viewer = feed.viewer(audio, move |b| {
        let mut tx = tx.lock().unwrap();
        let ok = tx
            .as_ref()
            .is_some_and(|t| t.try_send(Bytes::copy_from_slice(b)).is_ok());
        if !ok {
            *tx = None;
        }
        ok
    });
    let viewer = match viewer {
        Ok(v) => v,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx).map(
        move |b| {
            let _viewer = &viewer;
            Ok::<_, std::convert::Infallible>(b)
        },
    ));
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    r
}

/// `/live/CAMERA.mjpeg` and `/live/CAMERA.jpg`, from the frames the camera's live job
/// encodes (one encoder per camera, whatever the number of viewers); `/live/CAMERA.mp4`
/// (see [`live_mp4`]).
pub async fn live(
    AxState(st): AxState<Arc<State>>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let (cam, kind) = match file.rsplit_once('.') {
        Some((c, "mjpeg")) => (c, "mjpeg"),
        Some((c, "jpg")) => (c, "jpg"),
        Some((c, "mp4")) => {
            let audio = !query.is_some_and(|q| q.split('&').any(|kv| kv == "audio=0"));
            return live_mp4(&st, c, audio).await;
        }
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "live views are CAMERA.mp4, CAMERA.mjpeg and CAMERA.jpg",
            )
        }
    };
    let Some(hub) = st.hubs.get(cam).cloned() else {
        return error(StatusCode::NOT_FOUND, "no live view of that camera");
    };
    let no_cache = HeaderValue::from_static("no-cache, no-store, must-revalidate");
    if kind == "jpg" {
        return match hub.latest() {
            Some(f) => {
                let mut r = f.into_response();
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
                r.headers_mut().insert(header::CACHE_CONTROL, no_cache);
                r
            }
            None => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no picture from the camera yet",
            ),
        };
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    tokio::spawn(async move {
        hub.feed(tx, Duration::from_secs(10), |_, _| {}).await;
    });
    let body = axum::body::Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>),
    );
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!(
            "multipart/x-mixed-replace; boundary={}",
            gstmjpeghttp::server::BOUNDARY
        ))
        .unwrap(),
    );
    h.insert(header::CACHE_CONTROL, no_cache);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_unix_or_iso() {
        assert_eq!(parse_time("1764489600"), Some(1764489600.0));
        assert_eq!(parse_time("1764489600.5"), Some(1764489600.5));
        assert_eq!(parse_time("2026-11-22T01:30:00Z"), Some(1795311000.0));
        assert_eq!(parse_time("2026-11-22T01:30:00.25Z"), Some(1795311000.25));
        for bad in [
            "",
            "x",
            "-5",
            "NaN",
            "inf",
            "2026-13-01T00:00:00Z",
            "2026-11-22T01:30:00",
            "2026-11-22T25:00:00Z",
            "1e300",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_are_checked_before_any_lookup() {
        assert!(valid_id("front-1764489600-3"));
        assert!(valid_id("file-front-20261122-013000-7"));
        for bad in [
            "",
            "../etc/passwd",
            "a/b",
            ".hidden",
            "a b",
            &"x".repeat(201),
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn forms_decode() {
        let f = form_pairs(b"user=ann+a&password=p%40ss%3D1&x");
        assert_eq!(f["user"], "ann a");
        assert_eq!(f["password"], "p@ss=1");
        // Bytes that are not UTF-8, and a % at the end, never panic.
        let f = form_pairs("user=\u{e9}%&password=%e9%zz%".as_bytes());
        assert_eq!(f["user"], "\u{e9}%");
    }
}
