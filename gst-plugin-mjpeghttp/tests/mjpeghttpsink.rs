//! mjpeghttpsink in real pipelines (videotestsrc ! jpegenc), talked to over real TCP
//! with hand-written HTTP/1.1, so every byte on the wire is checked.

use gst::prelude::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Once;
use std::time::{Duration, Instant};

const BOUNDARY: &str = gstmjpeghttp::server::BOUNDARY;

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstmjpeghttp::plugin_register_static().unwrap();
    });
}

struct Served {
    pipeline: gst::Pipeline,
    sink: gst::Element,
    addr: SocketAddr,
}

impl Served {
    fn start(size: (u32, u32), props: &str) -> Served {
        init();
        let desc = format!(
            "videotestsrc is-live=true pattern=ball ! video/x-raw,width={},height={},framerate=15/1 \
             ! jpegenc quality=80 ! mjpeghttpsink name=s port=0 address=127.0.0.1 {props}",
            size.0, size.1
        );
        let pipeline = gst::parse::launch(&desc)
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let sink = pipeline.by_name("s").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            let p = sink.property::<u32>("bound-port");
            if p != 0 {
                break p;
            }
            assert!(Instant::now() < deadline, "never started serving");
            std::thread::sleep(Duration::from_millis(20));
        };
        // A first frame, so snapshots exist.
        while sink
            .property::<gst::Structure>("stats")
            .get::<u64>("frames-in")
            .unwrap()
            == 0
        {
            assert!(Instant::now() < deadline, "no frame reached the sink");
            std::thread::sleep(Duration::from_millis(20));
        }
        Served {
            pipeline,
            sink,
            addr: SocketAddr::from(([127, 0, 0, 1], port as u16)),
        }
    }

    fn clients(&self) -> u32 {
        self.sink
            .property::<gst::Structure>("stats")
            .get::<u32>("clients")
            .unwrap()
    }

    /// Element messages from the sink so far.
    fn messages(&self) -> Vec<gst::Structure> {
        let bus = self.pipeline.bus().unwrap();
        let mut out = Vec::new();
        while let Some(m) = bus.pop_filtered(&[gst::MessageType::Element]) {
            if let Some(s) = m.structure() {
                out.push(s.to_owned());
            }
        }
        out
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// A raw HTTP/1.1 exchange: status, headers (lower-case names), and the connection
/// with whatever of the body was read along with the head.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    /// Body bytes read so far (de-chunked when the body is chunked).
    rest: Vec<u8>,
    /// Bytes of a chunked body not decoded yet.
    raw: Vec<u8>,
    chunked: bool,
    conn: TcpStream,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Decode the complete chunks in `raw` (HTTP/1.1 chunked transfer coding).
    fn dechunk(&mut self) {
        loop {
            let Some(p) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size_line = String::from_utf8_lossy(&self.raw[..p]).into_owned();
            let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size line {size_line:?}"));
            if self.raw.len() < p + 2 + size + 2 {
                return;
            }
            assert_eq!(&self.raw[p + 2 + size..p + 4 + size], b"\r\n");
            self.rest.extend_from_slice(&self.raw[p + 2..p + 2 + size]);
            self.raw.drain(..p + 4 + size);
        }
    }

    /// Read until `n` bytes of body are buffered.
    fn fill(&mut self, n: usize) {
        let mut buf = [0u8; 65536];
        while self.rest.len() < n {
            let k = self.conn.read(&mut buf).unwrap();
            assert!(k > 0, "connection closed after {} bytes", self.rest.len());
            if self.chunked {
                self.raw.extend_from_slice(&buf[..k]);
                self.dechunk();
            } else {
                self.rest.extend_from_slice(&buf[..k]);
            }
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        self.fill(n);
        self.rest.drain(..n).collect()
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(p) = self.rest.windows(2).position(|w| w == b"\r\n") {
                let l: Vec<u8> = self.rest.drain(..p + 2).collect();
                return String::from_utf8_lossy(&l[..p]).into_owned();
            }
            let have = self.rest.len();
            self.fill(have + 1);
        }
    }

    /// One multipart part: (headers, body). Checks the boundary right after the body.
    fn part(&mut self) -> (Vec<String>, Vec<u8>) {
        let mut headers = Vec::new();
        loop {
            let l = self.line();
            if l.is_empty() {
                break;
            }
            headers.push(l);
        }
        let len: usize = headers
            .iter()
            .find_map(|h| h.strip_prefix("Content-Length: "))
            .expect("part without Content-Length")
            .parse()
            .unwrap();
        let body = self.take(len);
        // The boundary follows the frame at once, so a browser shows it now.
        let after = self.take(4 + BOUNDARY.len() + 2);
        assert_eq!(after, format!("\r\n--{BOUNDARY}\r\n").as_bytes());
        (headers, body)
    }
}

fn request(addr: SocketAddr, raw: &str) -> Reply {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(raw.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let k = conn.read(&mut chunk).unwrap();
        assert!(k > 0, "closed before a response head: {buf:?}");
        buf.extend_from_slice(&chunk[..k]);
        assert!(buf.len() < 64 * 1024);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let headers: Vec<(String, String)> = headers;
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let mut r = Reply {
        status,
        headers,
        rest: Vec::new(),
        raw: Vec::new(),
        chunked,
        conn,
    };
    if chunked {
        r.raw = buf[head_end + 4..].to_vec();
        r.dechunk();
    } else {
        r.rest = buf[head_end + 4..].to_vec();
    }
    r
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> Reply {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: cam\r\n{extra}\r\n"),
    )
}

fn is_jpeg(b: &[u8]) -> bool {
    b.len() > 4 && b[..2] == [0xFF, 0xD8] && b[b.len() - 2..] == [0xFF, 0xD9]
}

#[test]
fn stream_snapshot_index_and_errors() {
    let s = Served::start((320, 240), "");
    // The stream: status line, headers, parts with their own headers, boundaries.
    let mut r = get(s.addr, "/stream.mjpeg", "");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some(format!("multipart/x-mixed-replace; boundary={BOUNDARY}").as_str())
    );
    assert!(r.header("cache-control").unwrap().contains("no-cache"));
    assert_eq!(r.line(), format!("--{BOUNDARY}"));
    let started = Instant::now();
    for _ in 0..10 {
        let (h, body) = r.part();
        assert!(h.contains(&"Content-Type: image/jpeg".to_string()), "{h:?}");
        assert!(is_jpeg(&body));
    }
    // 10 frames of a 15 fps source: well under 2 s.
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(r);

    let mut snap = get(s.addr, "/snapshot.jpg", "");
    assert_eq!(snap.status, 200);
    assert_eq!(snap.header("content-type"), Some("image/jpeg"));
    let len: usize = snap.header("content-length").unwrap().parse().unwrap();
    let body = snap.take(len);
    assert!(is_jpeg(&body));

    let mut index = get(s.addr, "/", "");
    assert_eq!(index.status, 200);
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let len: usize = index.header("content-length").unwrap().parse().unwrap();
    let page = String::from_utf8(index.take(len)).unwrap();
    assert!(page.contains("src=\"stream.mjpeg\""), "{page}");

    // HEAD: the same headers, no body.
    let mut head = request(s.addr, "HEAD /snapshot.jpg HTTP/1.1\r\nHost: cam\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(
        head.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 0
    );
    head.conn
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 16];
    assert!(
        head.rest.is_empty() && !matches!(head.conn.read(&mut b), Ok(n) if n > 0),
        "HEAD sent a body"
    );
    let head = request(s.addr, "HEAD /stream.mjpeg HTTP/1.1\r\nHost: cam\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head
        .header("content-type")
        .unwrap()
        .starts_with("multipart/x-mixed-replace"));

    assert_eq!(get(s.addr, "/nope", "").status, 404);
    let post = request(
        s.addr,
        "POST /stream.mjpeg HTTP/1.1\r\nHost: cam\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    // Malformed and oversized requests: 4xx, and the server goes on.
    assert_eq!(request(s.addr, "GARBAGE\r\n\r\n").status, 400);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: cam\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let mut conn = TcpStream::connect(s.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = conn.write_all(big.as_bytes());
    let mut resp = Vec::new();
    let _ = conn.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 4"),
        "oversized head answered {text}"
    );
    assert_eq!(get(s.addr, "/snapshot.jpg", "").status, 200);
}

#[test]
fn basic_auth() {
    let s = Served::start((160, 120), "auth=viewer:s3cret-pw");
    let r = get(s.addr, "/stream.mjpeg", "");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    // viewer:wrong
    assert_eq!(
        get(
            s.addr,
            "/snapshot.jpg",
            "Authorization: Basic dmlld2VyOndyb25n\r\n"
        )
        .status,
        401
    );
    // viewer:s3cret-pw
    let mut ok = get(
        s.addr,
        "/snapshot.jpg",
        "Authorization: Basic dmlld2VyOnMzY3JldC1wdw==\r\n",
    );
    assert_eq!(ok.status, 200);
    let len: usize = ok.header("content-length").unwrap().parse().unwrap();
    assert!(is_jpeg(&ok.take(len)));
    // Write-only: it cannot be read back.
    let pspec = s.sink.find_property("auth").unwrap();
    assert!(!pspec.flags().contains(gst::glib::ParamFlags::READABLE));
}

#[test]
fn max_clients_slow_and_vanishing_viewers() {
    let s = Served::start((1280, 720), "max-clients=3 timeout=2");
    // A viewer that never reads.
    let slow = get(s.addr, "/stream.mjpeg", "");
    assert_eq!(slow.status, 200);
    // A viewer that leaves in the middle of a frame.
    let mut gone = get(s.addr, "/stream.mjpeg", "");
    assert_eq!(gone.line(), format!("--{BOUNDARY}"));
    let _ = gone.line();
    let _ = gone.take(100);
    let mut fast = get(s.addr, "/stream.mjpeg", "");
    assert_eq!(fast.status, 200);
    // A fourth: 503.
    let over = get(s.addr, "/stream.mjpeg", "");
    assert_eq!(over.status, 503);
    assert!(over.header("retry-after").is_some());
    drop(gone);
    // The fast viewer gets the full rate while the slow one takes nothing.
    assert_eq!(fast.line(), format!("--{BOUNDARY}"));
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed() < Duration::from_secs(3) {
        let (_, body) = fast.part();
        assert!(is_jpeg(&body));
        n += 1;
    }
    let fps = n as f64 / t.elapsed().as_secs_f64();
    assert!(
        fps > 12.0,
        "fast viewer got {fps:.1} fps beside a stalled one"
    );
    // The vanished viewer is gone at once; the stalled one after its socket buffers
    // fill and the 2 s timeout.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut left = Vec::new();
    while left.len() < 2 && Instant::now() < deadline {
        for m in s.messages() {
            if m.get::<&str>("event") == Ok("left") {
                left.push(m.get::<String>("reason").unwrap());
            }
        }
        let _ = fast.part();
    }
    assert!(
        left.iter().any(|r| r.contains("too slow")),
        "the stalled viewer was never dropped: {left:?}"
    );
    assert_eq!(s.clients(), 1, "{left:?}");
    drop(slow);
}

#[test]
fn connect_cycles_leak_nothing_and_stop_frees_the_port() {
    let s = Served::start((160, 120), "");
    let threads = || {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("Threads:")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            })
            .unwrap()
    };
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    // Warm up (the runtime's worker threads exist from the start).
    let mut r = get(s.addr, "/stream.mjpeg", "");
    let _ = r.line();
    drop(r);
    std::thread::sleep(Duration::from_millis(300));
    let (t0, f0) = (threads(), fds());
    for _ in 0..200 {
        let mut r = get(s.addr, "/stream.mjpeg", "");
        assert_eq!(r.status, 200);
        let _ = r.line();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.clients() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.clients(), 0);
    let connected = s
        .messages()
        .iter()
        .filter(|m| m.get::<&str>("event") == Ok("connected"))
        .count();
    assert!(connected >= 200);
    let (t1, f1) = (threads(), fds());
    assert!(t1 <= t0 + 2, "threads {t0} -> {t1}");
    assert!(f1 <= f0 + 4, "file descriptors {f0} -> {f1}");
    // NULL stops the server: the port is free at once.
    let addr = s.addr;
    s.pipeline.set_state(gst::State::Null).unwrap();
    assert!(TcpStream::connect(addr).is_err(), "still listening");
    let again = std::net::TcpListener::bind(addr);
    assert!(again.is_ok(), "port not freed: {again:?}");
}

/// gst-launch-1.0 at GST_DEBUG=*:7 with the credentials in MJPEGHTTPSINK_AUTH: viewers
/// log in (and a wrong password is refused), and neither the password nor its Base64
/// form appears in the log.
#[test]
fn credentials_never_logged_at_debug_level_7() {
    let exe = std::env::current_exe().unwrap();
    let plugin_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    assert!(
        plugin_dir.join("libgstmjpeghttp.so").exists(),
        "cargo build first (scripts/test does)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/with-local-plugins");
    let log = std::env::temp_dir().join(format!("mjpeg-debug-{}.log", std::process::id()));
    let mut child = std::process::Command::new("bash")
        .arg(script)
        .arg(&plugin_dir)
        .args([
            "gst-launch-1.0",
            "videotestsrc",
            "is-live=true",
            "!",
            "video/x-raw,width=64,height=48,framerate=5/1",
            "!",
            "jpegenc",
            "!",
            "mjpeghttpsink",
            "address=127.0.0.1",
        ])
        .arg(format!("port={port}"))
        .env("GST_DEBUG", "*:7")
        .env("GST_DEBUG_NO_COLOR", "1")
        .env("GST_DEBUG_FILE", &log)
        .env("MJPEGHTTPSINK_AUTH", "watcher:Hunter2-secret")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "gst-launch never served");
        std::thread::sleep(Duration::from_millis(100));
    }
    // watcher:Hunter2-secret, then watcher:wrong
    let mut status = 0;
    while status != 200 && Instant::now() < deadline {
        status = get(
            addr,
            "/snapshot.jpg",
            "Authorization: Basic d2F0Y2hlcjpIdW50ZXIyLXNlY3JldA==\r\n",
        )
        .status;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 200);
    assert_eq!(
        get(addr, "/", "Authorization: Basic d2F0Y2hlcjp3cm9uZw==\r\n").status,
        401
    );
    assert_eq!(get(addr, "/", "").status, 401);
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let _ = child.wait();
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    let _ = std::fs::remove_file(&log);
    assert!(text.lines().count() > 1000, "the debug log is nearly empty");
    assert!(
        text.contains("mjpeghttpsink"),
        "no mjpeghttpsink lines in the log"
    );
    for secret in ["Hunter2-secret", "d2F0Y2hlcjpIdW50ZXIyLXNlY3JldA"] {
        assert!(!text.contains(secret), "{secret} appears in the debug log");
    }
}
