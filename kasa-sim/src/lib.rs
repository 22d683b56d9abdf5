//! A simulated TP-Link Kasa camera, faithful to what is known of the real devices
//! (protocols.md section 1): TLS 1.2 with static-RSA `AES256-GCM-SHA384` only and a
//! 1024-bit certificate issued by `CN=TPRI-CA` (or ECDHE-only, like newer firmware),
//! Basic auth with the inner-base64 password, 401 with the realm, 404 elsewhere, an
//! HTTP/1.0 multipart body in one of the three field variants, real x264 access units at
//! 15 fps interleaved with 60 ms mu-law parts at real-time pace, one client at a time
//! (a new client replaces the old one), and fault injection.

pub mod discovery;
pub mod media;
mod tls;

use bytes::Bytes;
use kasa_protocol::auth::{decode_basic, inner_password, Secret};
use kasa_protocol::chunked::encode_chunk;
use kasa_protocol::http::parse_request_head;
use kasa_protocol::multipart::PartWriter;
use media::Clip;
use openssl::ssl::SslStream;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The key exchange the camera offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS 1.2, `AES256-GCM-SHA384` only (static RSA): every Kasa camera seen so far.
    StaticRsa,
    /// TLS 1.2, ECDHE-RSA GCM suites only: newer TP-Link firmware.
    Ecdhe,
}

/// The three body variants seen in the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyVariant {
    /// `Transfer-Encoding: chunked` on HTTP/1.0 (KD110, KC401, KC420WS).
    Chunked,
    /// No length, no chunking (KC200).
    Plain,
    /// `Content-Length: -1` (KC120/KC200 firmwares).
    NegativeLength,
}

macro_rules! named_enum {
    ($t:ty { $($name:literal => $v:expr),* $(,)? }) => {
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s { $($name => Ok($v),)* _ => Err(format!("unknown value {s:?}; expected one of: {}", [$($name),*].join(", "))) }
            }
        }
    };
}
named_enum!(TlsMode { "static-rsa" => TlsMode::StaticRsa, "ecdhe" => TlsMode::Ecdhe });
named_enum!(BodyVariant { "chunked" => BodyVariant::Chunked, "plain" => BodyVariant::Plain, "negative-length" => BodyVariant::NegativeLength });

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Loopback only by default; the simulator is a test fixture.
    pub bind: SocketAddr,
    pub username: String,
    /// The plain password the user would type; the camera checks its base64 form.
    pub password: Secret,
    pub tls: TlsMode,
    /// A self-signed device certificate instead of one issued by `CN=TPRI-CA`.
    pub self_signed: bool,
    pub body: BodyVariant,
    pub audio: bool,
    /// Send `X-Timestamp` (KC410S captures show none).
    pub x_timestamp: bool,
    /// End header lines with LF only.
    pub lf_only: bool,
    /// Put blank lines between parts.
    pub blank_lines: bool,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub gop_seconds: u32,
    /// `videotestsrc` properties for the picture, e.g. `pattern=ball` (the default,
    /// cheap to encode) or `pattern=zone-plate kx2=20 ky2=20 kt=1` (moving detail at a
    /// real camera's bitrate, for benchmarks).
    pub pattern: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            username: "admin".into(),
            password: Secret::new("admin"),
            tls: TlsMode::StaticRsa,
            self_signed: false,
            body: BodyVariant::Chunked,
            audio: true,
            x_timestamp: true,
            lf_only: false,
            blank_lines: false,
            width: 1920,
            height: 1080,
            fps: 15,
            gop_seconds: 2,
            pattern: "pattern=ball".into(),
        }
    }
}

/// Damage to inflict on the current connection (or the whole camera for `Restart`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Keep the socket open and send nothing more on this connection.
    Stall,
    /// Close the connection now.
    Close,
    /// Drop every connection and stop listening for the given time (a reboot).
    Restart(Duration),
    /// Write junk into the stream, then carry on.
    Garbage(GarbageKind),
    /// A part header claiming a terabyte, followed by a little data, then carry on.
    OversizedLength,
    /// Dribble bytes (100 bytes every 2 ms) for the given time.
    Trickle(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GarbageKind {
    /// Random binary bytes between parts.
    Random,
    /// A part whose header block is nonsense.
    Header,
    /// A part whose Content-Length is not a number.
    Length,
    /// An invalid chunk-size line (chunked variant only; plain bytes otherwise).
    Chunk,
}

named_enum!(GarbageKind { "random" => GarbageKind::Random, "header" => GarbageKind::Header, "length" => GarbageKind::Length, "chunk" => GarbageKind::Chunk });

impl FromStr for Fault {
    type Err = String;
    /// `stall`, `close`, `restart [seconds]`, `garbage <kind>`, `oversize`, `trickle [seconds]`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut w = s.split_whitespace();
        let secs = |v: Option<&str>, d: f64| -> Result<Duration, String> {
            let f: f64 = v
                .map(|v| v.parse().map_err(|_| format!("bad seconds {v:?}")))
                .transpose()?
                .unwrap_or(d);
            Ok(Duration::from_secs_f64(f.clamp(0.0, 3600.0)))
        };
        match w.next() {
            Some("stall") => Ok(Fault::Stall),
            Some("close") => Ok(Fault::Close),
            Some("restart") => Ok(Fault::Restart(secs(w.next(), 2.0)?)),
            Some("garbage") => Ok(Fault::Garbage(w.next().unwrap_or("random").parse()?)),
            Some("oversize") => Ok(Fault::OversizedLength),
            Some("trickle") => Ok(Fault::Trickle(secs(w.next(), 3.0)?)),
            _ => Err(format!("unknown fault {s:?}; try stall, close, restart [s], garbage random|header|length|chunk, oversize, trickle [s]")),
        }
    }
}

/// Counters, as the camera would see its clients.
#[derive(Debug, Clone, Default)]
pub struct SimStats {
    pub tcp_connections: u64,
    pub tls_handshakes: u64,
    pub auth_failures: u64,
    pub not_found: u64,
    pub streams_started: u64,
    pub video_frames: u64,
    pub audio_parts: u64,
    pub bytes: u64,
}

struct Inner {
    cfg: SimConfig,
    clip: Clip,
    acceptor: openssl::ssl::SslAcceptor,
    fingerprint: String,
    addr: SocketAddr,
    start: Instant,
    stats: Mutex<SimStats>,
    faults: Mutex<VecDeque<Fault>>,
    /// Bumped to kick the current client.
    generation: AtomicU64,
    restart_for: Mutex<Option<Duration>>,
    stop: AtomicBool,
    /// When the last byte of each video part of the current stream was written.
    video_writes: Mutex<Vec<Instant>>,
    wake: Condvar,
    wake_lock: Mutex<()>,
}

/// A running simulator; dropping it stops it.
pub struct Simulator {
    inner: Arc<Inner>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl Simulator {
    pub fn start(cfg: SimConfig) -> Result<Simulator, String> {
        let clip = media::clip(&media::ClipSpec {
            width: cfg.width,
            height: cfg.height,
            fps: cfg.fps,
            gop_seconds: cfg.gop_seconds,
            seconds: cfg.gop_seconds * 2,
            pattern: cfg.pattern.clone(),
        })?;
        let (acceptor, fingerprint) =
            tls::acceptor(cfg.tls, cfg.self_signed).map_err(|e| format!("TLS setup: {e}"))?;
        let listener =
            TcpListener::bind(cfg.bind).map_err(|e| format!("bind {}: {e}", cfg.bind))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let inner = Arc::new(Inner {
            cfg,
            clip,
            acceptor,
            fingerprint,
            addr,
            start: Instant::now(),
            stats: Default::default(),
            faults: Default::default(),
            generation: AtomicU64::new(0),
            restart_for: Mutex::new(None),
            stop: AtomicBool::new(false),
            video_writes: Default::default(),
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
        });
        let i = inner.clone();
        let acceptor = thread::Builder::new()
            .name("kasa-sim-accept".into())
            .spawn(move || accept_loop(i, listener))
            .map_err(|e| e.to_string())?;
        Ok(Simulator {
            inner,
            acceptor: Some(acceptor),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    pub fn port(&self) -> u16 {
        self.inner.addr.port()
    }

    /// SHA-256 fingerprint of the camera certificate, colon-separated hex.
    pub fn fingerprint(&self) -> &str {
        &self.inner.fingerprint
    }

    pub fn clip(&self) -> &Clip {
        &self.inner.clip
    }

    pub fn stats(&self) -> SimStats {
        self.inner.stats.lock().unwrap().clone()
    }

    /// Write-completion instants of the video parts of the current (latest) stream.
    pub fn video_write_times(&self) -> Vec<Instant> {
        self.inner.video_writes.lock().unwrap().clone()
    }

    pub fn inject(&self, fault: Fault) {
        match fault {
            Fault::Restart(d) => {
                *self.inner.restart_for.lock().unwrap() = Some(d);
                self.inner.generation.fetch_add(1, Ordering::SeqCst);
            }
            f => self.inner.faults.lock().unwrap().push_back(f),
        }
        self.inner.wake.notify_all();
    }

    pub fn stop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.wake.notify_all();
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    let mut listener = Some(listener);
    let mut clients: Vec<thread::JoinHandle<()>> = Vec::new();
    while !inner.stop.load(Ordering::SeqCst) {
        if let Some(d) = inner.restart_for.lock().unwrap().take() {
            // A reboot: connections reset, port closed, then back.
            drop(listener.take());
            let until = Instant::now() + d;
            while Instant::now() < until && !inner.stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(10));
            }
            match TcpListener::bind(inner.addr) {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    eprintln!("kasa-sim: rebind {} failed: {e}", inner.addr);
                    return;
                }
            }
        }
        let Some(l) = &listener else { break };
        l.set_nonblocking(true).ok();
        match l.accept() {
            Ok((sock, _)) => {
                sock.set_nonblocking(false).ok();
                inner.stats.lock().unwrap().tcp_connections += 1;
                // One client at a time: the newcomer replaces whoever was streaming.
                let gen = inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
                inner.wake.notify_all();
                let i = inner.clone();
                clients.retain(|h| !h.is_finished());
                if let Ok(h) = thread::Builder::new()
                    .name("kasa-sim-client".into())
                    .spawn(move || serve(i, sock, gen))
                {
                    clients.push(h);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
    for h in clients {
        let _ = h.join();
    }
}

fn serve(inner: Arc<Inner>, sock: TcpStream, gen: u64) {
    let raw = match sock.try_clone() {
        Ok(r) => r,
        Err(_) => return,
    };
    sock.set_read_timeout(Some(Duration::from_secs(5))).ok();
    sock.set_write_timeout(Some(Duration::from_secs(5))).ok();
    sock.set_nodelay(true).ok();
    let mut tls = match inner.acceptor.accept(sock) {
        Ok(s) => s,
        Err(_) => return,
    };
    inner.stats.lock().unwrap().tls_handshakes += 1;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let req = loop {
        match parse_request_head(&buf) {
            Ok(Some((r, _))) => break r,
            Ok(None) => {}
            Err(_) => return,
        }
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    if req.path() != "/https/stream/mixed" {
        inner.stats.lock().unwrap().not_found += 1;
        let _ = tls.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    let authorized = req
        .header("authorization")
        .and_then(decode_basic)
        .map(|(u, p)| u == inner.cfg.username && p == inner_password(&inner.cfg.password))
        .unwrap_or(false);
    if !authorized {
        inner.stats.lock().unwrap().auth_failures += 1;
        let _ = tls.write_all(
            format!(
                "HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"{}\"\r\nContent-Length: 0\r\n\r\n",
                kasa_protocol::REALM
            )
            .as_bytes(),
        );
        let _ = tls.shutdown();
        return;
    }
    inner.stats.lock().unwrap().streams_started += 1;
    inner.video_writes.lock().unwrap().clear();
    let e = if inner.cfg.lf_only { "\n" } else { "\r\n" };
    let framing = match inner.cfg.body {
        BodyVariant::Chunked => format!("Transfer-Encoding: chunked{e}"),
        BodyVariant::Plain => String::new(),
        BodyVariant::NegativeLength => format!("Content-Length: -1{e}"),
    };
    let head = format!(
        "HTTP/1.0 200 OK{e}Content-Type: multipart/x-mixed-replace;boundary=data-boundary--{e}{framing}Connection: close{e}{e}"
    );
    let mut s = Streamer {
        inner: &inner,
        tls: &mut tls,
        raw: &raw,
        gen,
        trickle_until: None,
    };
    if s.write_raw(head.as_bytes()).is_err() {
        return;
    }
    let _ = s.stream();
    let _ = raw.shutdown(Shutdown::Both);
}

struct Streamer<'a> {
    inner: &'a Inner,
    tls: &'a mut SslStream<TcpStream>,
    raw: &'a TcpStream,
    gen: u64,
    trickle_until: Option<Instant>,
}

#[derive(Debug)]
struct Kicked;

impl Streamer<'_> {
    fn alive(&self) -> bool {
        !self.inner.stop.load(Ordering::SeqCst)
            && self.inner.generation.load(Ordering::SeqCst) == self.gen
    }

    /// Sleep until `t`, waking early when kicked or a fault arrives.
    fn sleep_until(&self, t: Instant) -> Result<(), Kicked> {
        let mut g = self.inner.wake_lock.lock().unwrap();
        loop {
            if !self.alive() {
                return Err(Kicked);
            }
            let now = Instant::now();
            if now >= t || !self.inner.faults.lock().unwrap().is_empty() {
                return Ok(());
            }
            g = self.inner.wake.wait_timeout(g, t - now).unwrap().0;
        }
    }

    fn write_raw(&mut self, data: &[u8]) -> Result<(), Kicked> {
        let trickle = self
            .trickle_until
            .map(|t| Instant::now() < t)
            .unwrap_or(false);
        if trickle {
            for piece in data.chunks(100) {
                self.tls.write_all(piece).map_err(|_| Kicked)?;
                self.tls.flush().map_err(|_| Kicked)?;
                thread::sleep(Duration::from_millis(2));
                if !self.alive() {
                    return Err(Kicked);
                }
            }
        } else {
            self.tls.write_all(data).map_err(|_| Kicked)?;
            self.tls.flush().map_err(|_| Kicked)?;
        }
        self.inner.stats.lock().unwrap().bytes += data.len() as u64;
        Ok(())
    }

    /// Write body bytes, chunk-encoded when the variant says so. Parts are split over
    /// two chunks so chunk and part boundaries do not line up, as on real cameras.
    fn write_body(&mut self, data: &[u8]) -> Result<(), Kicked> {
        if self.inner.cfg.body == BodyVariant::Chunked {
            let mut out = Vec::with_capacity(data.len() + 32);
            let cut = data.len() / 3;
            for piece in [&data[..cut], &data[cut..]] {
                if !piece.is_empty() {
                    encode_chunk(piece, &mut out);
                }
            }
            self.write_raw(&out)
        } else {
            self.write_raw(data)
        }
    }

    fn part(&self, content_type: &str, cam_time: Duration, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 160);
        if self.inner.cfg.blank_lines {
            out.extend_from_slice(b"\r\n");
        }
        PartWriter {
            content_type,
            timestamp: self.inner.cfg.x_timestamp.then_some(cam_time.as_secs_f64()),
            utc_time: Some(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            ),
            line_end: if self.inner.cfg.lf_only { "\n" } else { "\r\n" },
        }
        .write(body, &mut out);
        out
    }

    fn apply_fault(&mut self, f: Fault) -> Result<(), Kicked> {
        match f {
            Fault::Stall => {
                // Socket stays open; nothing flows until this client is replaced.
                while self.alive() {
                    self.sleep_until(Instant::now() + Duration::from_millis(200))?;
                }
                Err(Kicked)
            }
            Fault::Close => {
                let _ = self.raw.shutdown(Shutdown::Both);
                Err(Kicked)
            }
            Fault::Restart(_) => Ok(()),
            Fault::Garbage(kind) => {
                let junk: Vec<u8> = match kind {
                    GarbageKind::Random => (0..997u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect(),
                    GarbageKind::Header => b"--data-boundary--\r\n\x00\x01\x02 this is not a header\r\n\r\nxyz\r\n".to_vec(),
                    GarbageKind::Length => b"--data-boundary--\r\nContent-Type: video/x-h264\r\nContent-Length: twelve\r\n\r\nxyz\r\n".to_vec(),
                    GarbageKind::Chunk => {
                        if self.inner.cfg.body == BodyVariant::Chunked {
                            return self.write_raw(b"zzzz\r\n");
                        }
                        b"zzzz\r\n".to_vec()
                    }
                };
                self.write_body(&junk)
            }
            Fault::OversizedLength => self.write_body(
                b"--data-boundary--\r\nContent-Type: video/x-h264\r\nContent-Length: 1099511627776\r\n\r\n\x00\x00\x00\x01\x41\x9a\x00\x00\r\n",
            ),
            Fault::Trickle(d) => {
                self.trickle_until = Some(Instant::now() + d);
                Ok(())
            }
        }
    }

    fn stream(&mut self) -> Result<(), Kicked> {
        let clip = self.inner.clip.clone();
        let frame_dur = Duration::from_secs_f64(1.0 / clip.fps as f64);
        let audio_dur = Duration::from_millis(60);
        let t0 = Instant::now();
        // The camera's media clock runs from its boot, across client connections.
        let cam0 = t0 - self.inner.start;
        let (mut v, mut a) = (0u64, 0u64);
        loop {
            let next_v = t0 + frame_dur * v as u32;
            let next_a = t0 + audio_dur * a as u32;
            // Audio first on ties: audio parts may arrive before the first video part.
            let audio_due = self.inner.cfg.audio && next_a <= next_v;
            let due = if audio_due { next_a } else { next_v };
            self.sleep_until(due)?;
            let fault = self.inner.faults.lock().unwrap().pop_front();
            if let Some(f) = fault {
                self.apply_fault(f)?;
                continue;
            }
            if Instant::now() < due {
                continue;
            }
            if audio_due {
                let body = media::tone_part(a * 480);
                let p = self.part("audio/g711u", cam0 + audio_dur * a as u32, &body);
                self.write_body(&p)?;
                self.inner.stats.lock().unwrap().audio_parts += 1;
                a += 1;
            } else {
                let f = &clip.frames[(v % clip.frames.len() as u64) as usize];
                let data: &Bytes = &f.data;
                let p = self.part("video/x-h264", cam0 + frame_dur * v as u32, data);
                self.write_body(&p)?;
                let mut w = self.inner.video_writes.lock().unwrap();
                if w.len() < 100_000 {
                    w.push(Instant::now());
                }
                drop(w);
                self.inner.stats.lock().unwrap().video_frames += 1;
                v += 1;
            }
        }
    }
}
