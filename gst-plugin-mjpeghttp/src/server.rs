//! The HTTP side, without GStreamer: a hyper server on its own tokio runtime that serves
//! the latest JPEG frame to every client.
//!
//! - `GET /`: a page showing the stream; `GET /stream.mjpeg`: `multipart/x-mixed-replace`;
//!   `GET /snapshot.jpg`: the latest frame. `HEAD` for each; 404 elsewhere; 405 for other
//!   methods.
//! - Encode once, serve many: frames go into a `watch` channel that holds only the latest
//!   one. Each viewer has a task that takes the newest frame when its socket can take
//!   more, so a slow viewer skips frames and never queues them, and memory is one frame
//!   per viewer at most.
//! - A viewer that takes no frame for `send_timeout` is disconnected. Requests have a
//!   bounded head (8 KiB) and must arrive within `header_timeout`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame as BodyFrame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

pub const BOUNDARY: &str = "homecamframe";
const MAX_HEAD: usize = 8 * 1024;

/// Viewer credentials, kept only as a salted SHA-256.
#[derive(Clone)]
pub struct Auth {
    salt: [u8; 16],
    digest: [u8; 32],
}

impl Auth {
    /// From `user:password`.
    pub fn new(user_pass: &str) -> Auth {
        let mut salt = [0u8; 16];
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            use std::io::Read;
            let _ = f.read_exact(&mut salt);
        }
        let digest = Self::hash(&salt, user_pass.as_bytes());
        Auth { salt, digest }
    }

    fn hash(salt: &[u8; 16], creds: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(salt);
        h.update(creds);
        h.finalize().into()
    }

    /// Whether an `Authorization` header carries these credentials (constant time in
    /// the comparison).
    pub fn check(&self, header: Option<&HeaderValue>) -> bool {
        use base64::Engine;
        let Some(v) = header.and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let Some(b64) = v
            .strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
        else {
            return false;
        };
        let Ok(creds) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
            return false;
        };
        let d = Self::hash(&self.salt, &creds);
        d.iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(<redacted>)")
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub addr: SocketAddr,
    pub auth: Option<Auth>,
    pub max_clients: usize,
    /// A request head must arrive within this; a viewer must take a frame within it.
    pub timeout: Duration,
    pub title: String,
}

/// What happened to a viewer, for bus messages.
#[derive(Clone, Debug)]
pub enum Event {
    Connected {
        peer: SocketAddr,
        clients: usize,
    },
    Left {
        peer: SocketAddr,
        clients: usize,
        sent: u64,
        dropped: u64,
        reason: &'static str,
    },
}

/// One viewer of the stream, as `stats` shows it.
#[derive(Clone, Debug, Default)]
pub struct ClientStats {
    pub peer: String,
    pub sent: u64,
    pub dropped: u64,
    pub connected_ms: u64,
}

#[derive(Clone)]
struct Frame {
    seq: u64,
    data: Bytes,
}

/// The newest JPEG frame, shared by every viewer: encode once, serve many. The server
/// below feeds its viewers from one; another HTTP server (homecam's web app) can feed
/// its own from one too.
pub struct Hub {
    frames: watch::Sender<Option<Frame>>,
    frames_in: AtomicU64,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            frames: watch::channel(None).0,
            frames_in: AtomicU64::new(0),
        }
    }
}

impl Hub {
    pub fn new() -> Hub {
        Hub::default()
    }

    /// A new frame for every viewer (never blocks).
    pub fn publish(&self, data: Bytes) {
        let seq = self.frames_in.fetch_add(1, Ordering::Relaxed) + 1;
        self.frames.send_replace(Some(Frame { seq, data }));
    }

    /// The newest frame.
    pub fn latest(&self) -> Option<Bytes> {
        self.frames.borrow().as_ref().map(|f| f.data.clone())
    }

    pub fn frames_in(&self) -> u64 {
        self.frames_in.load(Ordering::Relaxed)
    }

    /// Feeds one viewer the `multipart/x-mixed-replace` parts of [`BOUNDARY`]: the
    /// newest frame whenever `tx` has room, so a slow viewer skips frames and never
    /// queues them. Ends when the viewer leaves, or takes no frame within `timeout`.
    /// `progress` gets (sent, skipped) after each frame. Returns (sent, skipped, why).
    pub async fn feed(
        &self,
        tx: mpsc::Sender<Bytes>,
        timeout: Duration,
        mut progress: impl FnMut(u64, u64),
    ) -> (u64, u64, &'static str) {
        let mut rx = self.frames.subscribe();
        let mut last_seq = None;
        let (mut sent, mut dropped) = (0u64, 0u64);
        // The first boundary now; each part ends with the next boundary, so a browser
        // shows a frame as soon as it has arrived, not when the following one starts.
        let mut reason = "disconnected";
        if tx
            .send(Bytes::from(format!("--{BOUNDARY}\r\n")))
            .await
            .is_err()
        {
            return (0, 0, reason);
        }
        // A frame may already be there: show it at once.
        rx.mark_changed();
        loop {
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        reason = "server stopped";
                        break;
                    }
                }
                _ = tx.closed() => break,
            }
            let Some(frame) = rx.borrow_and_update().clone() else {
                continue;
            };
            if let Some(l) = last_seq {
                dropped += frame.seq.saturating_sub(l + 1);
            }
            last_seq = Some(frame.seq);
            let mut part = Vec::with_capacity(frame.data.len() + 128);
            part.extend_from_slice(
                format!(
                    "Content-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                    frame.data.len()
                )
                .as_bytes(),
            );
            part.extend_from_slice(&frame.data);
            part.extend_from_slice(format!("\r\n--{BOUNDARY}\r\n").as_bytes());
            match tokio::time::timeout(timeout, tx.send(Bytes::from(part))).await {
                Ok(Ok(())) => sent += 1,
                Ok(Err(_)) => break,
                Err(_) => {
                    reason = "too slow: took no frame within the timeout";
                    break;
                }
            }
            progress(sent, dropped);
        }
        (sent, dropped, reason)
    }
}

type EventFn = Box<dyn Fn(Event) + Send + Sync>;

struct Shared {
    config: Config,
    hub: Hub,
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, (ClientStats, Instant)>>,
    on_event: EventFn,
}

pub struct Server {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    local: SocketAddr,
}

impl Server {
    /// Bind (errors come back at once: port in use, bad address) and start serving.
    pub fn start(
        config: Config,
        on_event: impl Fn(Event) + Send + Sync + 'static,
    ) -> std::io::Result<Server> {
        let listener = std::net::TcpListener::bind(config.addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mjpeghttp")
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared {
            config,
            hub: Hub::new(),
            next_id: AtomicU64::new(0),
            clients: Mutex::new(BTreeMap::new()),
            on_event: Box::new(on_event),
        });
        let s2 = shared.clone();
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        runtime.spawn(accept_loop(listener, s2));
        Ok(Server {
            shared,
            runtime: Some(runtime),
            local,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A new JPEG frame for every viewer (never blocks).
    pub fn publish(&self, data: Bytes) {
        self.shared.hub.publish(data);
    }

    pub fn frames_in(&self) -> u64 {
        self.shared.hub.frames_in()
    }

    pub fn clients(&self) -> Vec<ClientStats> {
        self.shared
            .clients
            .lock()
            .unwrap()
            .values()
            .map(|(c, t)| ClientStats {
                connected_ms: t.elapsed().as_millis() as u64,
                ..c.clone()
            })
            .collect()
    }

    /// Stop serving: every connection is closed and the port is free on return.
    pub fn stop(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                // Out of descriptors and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let timeout = shared.config.timeout;
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(req, peer, shared)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Response bodies: a fixed buffer, or the stream of parts of one viewer.
pub enum Out {
    Full(Full<Bytes>),
    Stream(ViewerBody),
}

impl Body for Out {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Out::Full(f) => Pin::new(f).poll_frame(cx),
            Out::Stream(s) => {
                s.rx.poll_recv(cx)
                    .map(|o| o.map(|b| Ok(BodyFrame::data(b))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Out::Full(f) => f.is_end_stream(),
            Out::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Out::Full(f) => f.size_hint(),
            Out::Stream(_) => SizeHint::default(),
        }
    }
}

/// The parts for one viewer, fed by its task; dropped when the connection ends.
pub struct ViewerBody {
    rx: mpsc::Receiver<Bytes>,
}

fn full(status: StatusCode, ctype: &str, body: impl Into<Bytes>, head: bool) -> Response<Out> {
    let body: Bytes = body.into();
    let len = body.len();
    let mut r = Response::new(Out::Full(Full::new(if head { Bytes::new() } else { body })));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ctype).unwrap());
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    r
}

fn index_page(title: &str) -> String {
    let t: String = title
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            c => c.to_string(),
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<style>html,body{{margin:0;background:#111;height:100%}}\
img{{display:block;width:100%;height:100%;object-fit:contain}}</style></head>\
<body><img id=\"live\" src=\"stream.mjpeg\" alt=\"{t}\"></body></html>\n"
    )
}

fn handle(req: Request<Incoming>, peer: SocketAddr, shared: Arc<Shared>) -> Response<Out> {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        let mut r = full(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "405 method not allowed: GET or HEAD\n",
            false,
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if let Some(auth) = &shared.config.auth {
        if !auth.check(req.headers().get(header::AUTHORIZATION)) {
            let mut r = full(
                StatusCode::UNAUTHORIZED,
                "text/plain; charset=utf-8",
                "401 authentication required\n",
                head,
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"camera\", charset=\"UTF-8\""),
            );
            return r;
        }
    }
    match req.uri().path() {
        "/" | "/index.html" => full(
            StatusCode::OK,
            "text/html; charset=utf-8",
            index_page(&shared.config.title),
            head,
        ),
        "/snapshot.jpg" => match shared.hub.latest() {
            Some(f) => full(StatusCode::OK, "image/jpeg", f, head),
            None => full(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "503 no frame yet\n",
                head,
            ),
        },
        "/stream.mjpeg" => stream(peer, shared, head),
        _ => full(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "404 not found: try /, /stream.mjpeg or /snapshot.jpg\n",
            head,
        ),
    }
}

fn stream(peer: SocketAddr, shared: Arc<Shared>, head: bool) -> Response<Out> {
    let ctype = format!("multipart/x-mixed-replace; boundary={BOUNDARY}");
    let mut r = if head {
        Response::new(Out::Full(Full::new(Bytes::new())))
    } else {
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let clients = {
            let mut c = shared.clients.lock().unwrap();
            if c.len() >= shared.config.max_clients {
                let mut r = full(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    "503 too many viewers\n",
                    false,
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return r;
            }
            c.insert(
                id,
                (
                    ClientStats {
                        peer: peer.to_string(),
                        ..Default::default()
                    },
                    Instant::now(),
                ),
            );
            c.len()
        };
        (shared.on_event)(Event::Connected { peer, clients });
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(feed(id, peer, shared, tx));
        Response::new(Out::Stream(ViewerBody { rx }))
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(&ctype).unwrap());
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// One viewer's task: the hub's frames, with the viewer's statistics kept.
async fn feed(id: u64, peer: SocketAddr, shared: Arc<Shared>, tx: mpsc::Sender<Bytes>) {
    let timeout = shared.config.timeout;
    let (sent, dropped, reason) = shared
        .hub
        .feed(tx, timeout, |sent, dropped| {
            if let Some((c, _)) = shared.clients.lock().unwrap().get_mut(&id) {
                c.sent = sent;
                c.dropped = dropped;
            }
        })
        .await;
    let clients = {
        let mut c = shared.clients.lock().unwrap();
        c.remove(&id);
        c.len()
    };
    (shared.on_event)(Event::Left {
        peer,
        clients,
        sent,
        dropped,
        reason,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(creds: &str) -> HeaderValue {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(creds);
        HeaderValue::from_str(&format!("Basic {b}")).unwrap()
    }

    #[test]
    fn auth_accepts_only_the_credentials() {
        let a = Auth::new("viewer:pa:ss");
        assert!(a.check(Some(&basic("viewer:pa:ss"))));
        assert!(!a.check(Some(&basic("viewer:pa:sS"))));
        assert!(!a.check(Some(&basic("viewer"))));
        assert!(!a.check(None));
        assert!(!a.check(Some(&HeaderValue::from_static("Bearer xyz"))));
        assert!(!a.check(Some(&HeaderValue::from_static("Basic !!!not-base64"))));
        // The same credentials hash differently under another salt; nothing readable.
        let b = Auth::new("viewer:pa:ss");
        assert_ne!(a.digest, b.digest);
        assert_eq!(format!("{a:?}"), "Auth(<redacted>)");
    }

    #[test]
    fn index_page_escapes_the_title() {
        let p = index_page("<script>\"x\"&");
        assert!(p.contains("&lt;script&gt;&quot;x&quot;&amp;"));
        assert!(!p.contains("<script>"));
    }
}
