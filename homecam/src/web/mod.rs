//! The web app: its pages, its HTTP API and the live views, on one port (axum on the
//! daemon's tokio runtime). Routes, limits and security are in `docs/web.md`.
//!
//! - Every route but the login page and the static assets needs a session (or
//!   `auth = "none"`, allowed on loopback only). No GET changes anything.
//! - Files are reached by event id or by camera and time, looked up in the index; no path
//!   ever comes from a request.
//! - Every request is bounded: its head (16 KiB, 10 s to arrive), its body (16 KiB), its
//!   parameters (known names, 256 bytes each), its results (`limit` at most 500, exports
//!   at most 24 h and 2 at a time), the connections (512).

pub mod api;
pub mod auth;
pub mod files;

use crate::index::Index;
use axum::extract::{ConnectInfo, Request, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gstmjpeghttp::server::Hub;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, Semaphore};

const MAX_CONNECTIONS: usize = 512;
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 16 * 1024;

/// What the API needs to know of the cameras: the daemon's pipelines, or (for
/// `homecam dashboard`) the status records from Kafka.
pub trait Cameras: Send + Sync {
    /// The cameras as `/api/cameras` shows them.
    fn list(&self) -> Vec<Value>;
    /// Names of the cameras this app knows.
    fn names(&self) -> Vec<String>;
    /// The segment being recorded now: (path, wall-clock start).
    fn current_segment(&self, camera: &str) -> Option<(String, f64)>;
    /// Whether recordings (timeline, export) are served here.
    fn has_recordings(&self) -> bool;
}

/// A built export, kept a while for the `Range` requests that follow.
struct CachedExport {
    key: (String, i64, i64),
    made: std::time::Instant,
    ttl: Duration,
    content: Arc<files::Content>,
    missing: Vec<(f64, f64)>,
}

pub struct State {
    pub index: Arc<Index>,
    pub cameras: Arc<dyn Cameras>,
    /// The live JPEG frames per camera.
    pub hubs: HashMap<String, Arc<Hub>>,
    /// The live MP4 streams per camera (the camera's H.264 and its audio as AAC).
    pub lives: HashMap<String, Arc<restream::LiveFeed>>,
    /// Server-sent events: (kind, JSON).
    pub live: broadcast::Sender<(&'static str, String)>,
    /// None with `auth = "none"`.
    pub auth: Option<auth::Auth>,
    pub secure_cookie: bool,
    exports: Mutex<Vec<CachedExport>>,
    export_slots: Semaphore,
    login_slots: Semaphore,
}

impl State {
    pub fn new(
        index: Arc<Index>,
        cameras: Arc<dyn Cameras>,
        hubs: HashMap<String, Arc<Hub>>,
        lives: HashMap<String, Arc<restream::LiveFeed>>,
        auth: Option<auth::Auth>,
        secure_cookie: bool,
    ) -> Arc<State> {
        Arc::new(State {
            index,
            cameras,
            hubs,
            lives,
            live: broadcast::channel(256).0,
            auth,
            secure_cookie,
            exports: Mutex::new(Vec::new()),
            export_slots: Semaphore::new(2),
            login_slots: Semaphore::new(1),
        })
    }

    /// Tells the pages about a new event, status or insight (never blocks).
    pub fn push(&self, kind: &'static str, json: String) {
        let _ = self.live.send((kind, json));
    }
}

const INDEX_HTML: &str = include_str!("../../web/index.html");
const LOGIN_HTML: &str = include_str!("../../web/login.html");
const APP_JS: &str = include_str!("../../web/app.js");
const APP_CSS: &str = include_str!("../../web/app.css");

fn asset(ctype: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Headers on every answer: no framing by other sites, no sniffing, a strict CSP (the
/// pages load only their own script and style, and media from this origin).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: http: https:; media-src 'self' blob: http: https:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    r
}

/// Routes that need no session.
fn public(path: &str) -> bool {
    matches!(
        path,
        "/login" | "/api/login" | "/assets/app.css" | "/assets/app.js" | "/favicon.ico"
    )
}

/// The session check, and the same-origin check of requests that change state.
async fn require_login(AxState(st): AxState<Arc<State>>, req: Request, next: Next) -> Response {
    if req.method() == axum::http::Method::POST {
        // SameSite=Strict keeps the cookie off other sites' requests; a foreign Origin is
        // refused as well.
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|o| o.to_str().ok());
        if let (Some(o), Some(h)) = (origin, host) {
            let o = o.split_once("://").map(|(_, x)| x).unwrap_or(o);
            if o != h {
                return api::error(StatusCode::FORBIDDEN, "cross-origin request refused");
            }
        }
    }
    let Some(auth) = &st.auth else {
        return next.run(req).await;
    };
    if public(req.uri().path()) {
        return next.run(req).await;
    }
    let user = req
        .headers()
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(auth::cookie_token)
        .and_then(|t| auth.session(t));
    if user.is_some() {
        return next.run(req).await;
    }
    let path = req.uri().path();
    if path.starts_with("/api/") || path.starts_with("/live/") {
        api::error(StatusCode::UNAUTHORIZED, "log in first (POST /api/login)")
    } else {
        let mut r = StatusCode::SEE_OTHER.into_response();
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/login"));
        r
    }
}

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/login",
            get(|| async { asset("text/html; charset=utf-8", LOGIN_HTML) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route("/api/login", post(api::login))
        .route("/api/logout", post(api::logout))
        .route("/api/me", get(api::me))
        .route("/api/cameras", get(api::cameras))
        .route("/api/events", get(api::events))
        .route("/api/events/{id}", get(api::event))
        .route("/api/events/{id}/{file}", get(api::event_file))
        .route("/api/recordings", get(api::recordings))
        .route("/api/export.mp4", get(api::export))
        .route("/api/stats", get(api::stats))
        .route("/api/insights", get(api::insights))
        .route("/api/stream", get(api::stream))
        .route("/live/{file}", get(api::live))
        .fallback(|| async { api::error(StatusCode::NOT_FOUND, "no such page or API route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_login,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Listens on `listen` and serves `state` on `rt`; the bound address.
pub fn start(
    rt: &tokio::runtime::Runtime,
    listen: &str,
    state: Arc<State>,
) -> Result<SocketAddr, String> {
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| format!("web: cannot listen on {listen}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let listener = {
        let _g = rt.enter();
        tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?
    };
    let app = router(state);
    rt.spawn(accept_loop(listener, app));
    Ok(local)
}

async fn accept_loop(listener: tokio::net::TcpListener, app: Router) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                // Out of descriptors and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Beyond the bound, new connections are closed at once.
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    let app = app.clone();
                    async move {
                        use tower::ServiceExt;
                        app.oneshot(req.map(axum::body::Body::new)).await
                    }
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
            drop(permit);
        });
    }
}
