//! A local HTTPS server that plays the push services' APIs for the alert tests: a test CA
//! (rcgen) whose PEM file the daemon trusts through `ca-file`, a server certificate for
//! 127.0.0.1, rustls, HTTP/1.1 with keep-alive. Each request is kept (method, path,
//! headers, body, arrival time); a handler decides the answer, or to never answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    /// The path with its query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| percent_decode(v))
        })
    }

    /// The parts of a `multipart/form-data` body: (name, filename, content type, bytes).
    pub fn multipart(&self) -> Vec<Part> {
        let ct = self.header("content-type").unwrap_or("");
        let Some(b) = ct.split("boundary=").nth(1) else {
            return vec![];
        };
        let boundary = format!("--{}", b.trim_matches('"'));
        let mut parts = Vec::new();
        let body = &self.body;
        let mut pos = 0;
        let find = |from: usize, pat: &[u8]| {
            body[from..]
                .windows(pat.len())
                .position(|w| w == pat)
                .map(|i| i + from)
        };
        while let Some(start) = find(pos, boundary.as_bytes()) {
            let after = start + boundary.len();
            if body[after..].starts_with(b"--") {
                break;
            }
            let head_start = after + 2;
            let Some(head_end) = find(head_start, b"\r\n\r\n") else {
                break;
            };
            let Some(next) = find(head_end, format!("\r\n{boundary}").as_bytes()) else {
                break;
            };
            let head = String::from_utf8_lossy(&body[head_start..head_end]).into_owned();
            let mut p = Part::default();
            for line in head.lines() {
                let l = line.to_ascii_lowercase();
                if l.starts_with("content-disposition:") {
                    p.name = attr(line, "name").unwrap_or_default();
                    p.filename = attr(line, "filename");
                } else if let Some(v) = l.strip_prefix("content-type:") {
                    p.content_type = v.trim().to_string();
                }
            }
            p.data = body[head_end + 4..next].to_vec();
            parts.push(p);
            pos = next + 2;
        }
        parts
    }
}

#[derive(Clone, Debug, Default)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: String,
    pub data: Vec<u8>,
}

impl Part {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

fn attr(line: &str, key: &str) -> Option<String> {
    let pat = format!("{key}=\"");
    let i = line
        .match_indices(&pat)
        .find(|(i, _)| *i == 0 || !line.as_bytes()[i - 1].is_ascii_alphanumeric())?
        .0
        + pat.len();
    let end = line[i..].find('"')? + i;
    Some(line[i..end].to_string())
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match h.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the server answers.
pub enum Reply {
    /// Status, extra headers, JSON or text body.
    Answer(u16, Vec<(String, String)>, String),
    /// Nothing: the connection stays open, unanswered, for a minute.
    Hang,
}

impl Reply {
    pub fn ok(body: &str) -> Reply {
        Reply::Answer(200, vec![], body.to_string())
    }
    pub fn status(code: u16, body: &str) -> Reply {
        Reply::Answer(code, vec![], body.to_string())
    }
}

type Handler = dyn Fn(&Req, usize) -> Reply + Send + Sync;

/// The server; requests in arrival order.
pub struct PushServer {
    pub port: u16,
    /// The test CA's certificate (PEM), for `ca-file`.
    pub ca_file: PathBuf,
    pub reqs: Arc<Mutex<Vec<Req>>>,
    /// When each request held unanswered ([`Reply::Hang`]) was given up by the client.
    pub hang_ended: Arc<Mutex<Vec<(String, Instant)>>>,
}

impl PushServer {
    /// Listens on 127.0.0.1 (`port`, or any with 0); writes the CA to `dir/ca.pem`.
    /// `handler` gets each request and how many earlier ones had its path.
    pub fn start(
        dir: &Path,
        port: u16,
        handler: impl Fn(&Req, usize) -> Reply + Send + Sync + 'static,
    ) -> PushServer {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "homecam test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        leaf.distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![leaf_cert.der().clone()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
                )
                .unwrap(),
        );
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let reqs: Arc<Mutex<Vec<Req>>> = Arc::default();
        let hanging: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let (r2, h2) = (reqs.clone(), hanging.clone());
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (config, reqs, hanging, handler) =
                    (config.clone(), r2.clone(), h2.clone(), handler.clone());
                std::thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(90)));
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let tls = rustls::StreamOwned::new(conn, tcp);
                    serve(tls, &reqs, &hanging, &*handler);
                });
            }
        });
        PushServer {
            port,
            ca_file,
            reqs,
            hang_ended: hanging,
        }
    }

    /// When the held requests to `path` were given up, in order.
    pub fn hang_ends(&self, path: &str) -> Vec<Instant> {
        self.hang_ended
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, t)| *t)
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// The requests to `path` (without query) so far.
    pub fn to(&self, path: &str) -> Vec<Req> {
        self.reqs
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path() == path)
            .cloned()
            .collect()
    }

    /// Waits until `f` holds of the requests, at most `timeout`.
    pub fn wait(&self, what: &str, timeout: Duration, f: impl Fn(&[Req]) -> bool) {
        let t0 = Instant::now();
        loop {
            if f(&self.reqs.lock().unwrap()) {
                return;
            }
            assert!(
                t0.elapsed() < timeout,
                "{what}: not within {timeout:?}; requests: {:?}",
                self.reqs
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|r| format!("{} {}", r.method, r.path()))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn serve<S: Read + Write>(
    stream: S,
    reqs: &Mutex<Vec<Req>>,
    hang_ended: &Mutex<Vec<(String, Instant)>>,
    handler: &Handler,
) {
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut it = line.split_whitespace();
        let (Some(method), Some(target)) = (it.next(), it.next()) else {
            return;
        };
        let (method, target) = (method.to_string(), target.to_string());
        let mut headers = Vec::new();
        for _ in 0..100 {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.resize(len.min(16 << 20), 0);
            if r.read_exact(&mut body).is_err() {
                return;
            }
        } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                if r.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                    .unwrap_or(0);
                let mut chunk = vec![0u8; n.min(16 << 20) + 2];
                if r.read_exact(&mut chunk).is_err() {
                    return;
                }
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        let req = Req {
            method,
            target,
            headers,
            body,
            at: Instant::now(),
        };
        let earlier = {
            let mut all = reqs.lock().unwrap();
            let n = all.iter().filter(|x| x.path() == req.path()).count();
            all.push(req.clone());
            n
        };
        match handler(&req, earlier) {
            Reply::Hang => {
                // Until the client gives up: its read ends when it closes.
                let mut sink = [0u8; 1];
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_secs(60) {
                    match r.read(&mut sink) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                hang_ended
                    .lock()
                    .unwrap()
                    .push((req.path().to_string(), Instant::now()));
                return;
            }
            Reply::Answer(code, extra, text) => {
                let ct = if text.starts_with('{') {
                    "application/json"
                } else {
                    "text/plain"
                };
                let mut head = format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n",
                    text.len()
                );
                for (k, v) in extra {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let w = r.get_mut();
                if w.write_all(head.as_bytes()).is_err()
                    || w.write_all(text.as_bytes()).is_err()
                    || w.flush().is_err()
                {
                    return;
                }
            }
        }
    }
}
