//! Blocking, cancellable I/O to one Kasa camera: TCP connect, TLS handshake, request,
//! response head, then parts. Every failure names the step it happened in.
//!
//! No GStreamer here: the element maps [`ClientError`] to GStreamer errors.

use kasa_protocol::auth::{authorization_header, Secret};
use kasa_protocol::http::build_request;
use kasa_protocol::multipart::{FramingError, Part};
use kasa_protocol::stream::{ChunkedPolicy, StreamDecoder, StreamError, StreamEvent};
use kasa_protocol::tls::{client_connector, Fingerprint};
use openssl::ssl::{HandshakeError, SslStream};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

/// Where and how to reach a camera.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
    pub username: String,
    pub password: Secret,
    pub fingerprint: Option<Fingerprint>,
    /// Connect, handshake and stall timeout.
    pub timeout: Duration,
    pub max_part_size: usize,
}

/// The step a failure happened in, as users and bus messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    TcpConnect,
    TlsHandshake,
    HttpStatus,
    Authentication,
    Framing,
    Stream,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::TcpConnect => "tcp-connect",
            Step::TlsHandshake => "tls-handshake",
            Step::HttpStatus => "http-status",
            Step::Authentication => "authentication",
            Step::Framing => "framing",
            Step::Stream => "stream",
        }
    }
}

#[derive(Debug)]
pub enum ClientError {
    Resolve(String, io::Error),
    Connect(SocketAddr, io::Error),
    ConnectTimeout(SocketAddr),
    /// The handshake failed on the wire (reset, EOF): often a camera rebooting.
    TlsIo(String),
    /// The peer refused our parameters (alert, no shared cipher).
    TlsProtocol(String),
    FingerprintMismatch {
        expected: Fingerprint,
        got: Fingerprint,
    },
    Unauthorized {
        realm: Option<String>,
    },
    NotFound(String),
    Status(u16, String),
    Head(String),
    Chunked(String),
    /// No bytes for the timeout.
    Stall(Duration),
    /// The camera closed the connection.
    Closed,
    Io(io::Error),
    Cancelled,
}

impl ClientError {
    pub fn step(&self) -> Step {
        use ClientError::*;
        match self {
            Resolve(..) | Connect(..) | ConnectTimeout(_) => Step::TcpConnect,
            TlsIo(_) | TlsProtocol(_) | FingerprintMismatch { .. } => Step::TlsHandshake,
            Unauthorized { .. } => Step::Authentication,
            NotFound(_) | Status(..) => Step::HttpStatus,
            Head(_) | Chunked(_) => Step::Framing,
            Stall(_) | Closed | Io(_) | Cancelled => Step::Stream,
        }
    }

    /// Errors that retrying cannot fix: wrong credentials, wrong path, a refused TLS
    /// profile, a certificate that is not the pinned one, a 4xx status.
    pub fn is_fatal(&self) -> bool {
        use ClientError::*;
        match self {
            TlsProtocol(_) | FingerprintMismatch { .. } | Unauthorized { .. } | NotFound(_) => true,
            Status(s, _) => (400..500).contains(s),
            _ => false,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ClientError::*;
        match self {
            Resolve(h, e) => write!(f, "TCP connect: cannot resolve {h:?}: {e}"),
            Connect(a, e) => write!(f, "TCP connect to {a} failed: {e}"),
            ConnectTimeout(a) => write!(f, "TCP connect to {a} timed out"),
            TlsIo(e) => write!(f, "TLS handshake failed (connection dropped): {e}"),
            TlsProtocol(e) => write!(f, "TLS handshake refused: {e}"),
            FingerprintMismatch { expected, got } => write!(
                f,
                "TLS handshake: the camera certificate's SHA-256 fingerprint {got} does not match tls-fingerprint {expected}"
            ),
            Unauthorized { realm } => write!(
                f,
                "authentication failed: HTTP 401 from realm {:?}; check username (the Kasa account e-mail) and password",
                realm.as_deref().unwrap_or("(none)")
            ),
            NotFound(p) => write!(f, "HTTP status 404: the camera has no stream at {p:?}"),
            Status(s, r) => write!(f, "HTTP status {s} {r}"),
            Head(e) => write!(f, "framing: {e}"),
            Chunked(e) => write!(f, "framing: {e}"),
            Stall(d) => write!(f, "stream stalled: no data for {:.1} s", d.as_secs_f64()),
            Closed => write!(f, "stream: the camera closed the connection"),
            Io(e) => write!(f, "stream: read failed: {e}"),
            Cancelled => write!(f, "cancelled"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Lets another thread abort blocking connects, handshakes, reads and waits: the one
/// stop handle of every camera session (`cam_session::Cancel`); here it shuts the
/// connection's socket down, which ends a blocked read or TLS handshake at once.
pub use cam_session::Cancel;

/// The socket a cancel shuts down, from now until [`Cancel::clear_abort`].
fn register(cancel: &Cancel, s: &TcpStream) {
    let registered = s.try_clone().is_ok_and(|c| {
        cancel.set_abort(move || {
            let _ = c.shutdown(Shutdown::Both);
        })
    });
    if !registered && cancel.is_cancelled() {
        let _ = s.shutdown(Shutdown::Both);
    }
}

/// TCP connect that polls in short slices so [`Cancel::cancel`] takes effect at once.
fn connect(addr: SocketAddr, timeout: Duration, cancel: &Cancel) -> Result<TcpStream, ClientError> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2); the fd is owned by the TcpStream below.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(ClientError::Connect(addr, io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh, valid socket we own.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let (storage, len) = sockaddr(addr);
    // SAFETY: storage holds a valid sockaddr of length len.
    let rc = unsafe { libc::connect(fd, &storage as *const _ as *const libc::sockaddr, len) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(ClientError::Connect(addr, e));
        }
        let deadline = Instant::now() + timeout;
        loop {
            if cancel.is_cancelled() {
                return Err(ClientError::Cancelled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::ConnectTimeout(addr));
            }
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            let slice = left.min(Duration::from_millis(50)).as_millis() as i32;
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut p, 1, slice.max(1)) };
            if n > 0 {
                break;
            }
        }
        if let Some(e) = stream
            .take_error()
            .map_err(|e| ClientError::Connect(addr, e))?
        {
            return Err(ClientError::Connect(addr, e));
        }
    }
    stream
        .set_nonblocking(false)
        .map_err(|e| ClientError::Connect(addr, e))?;
    Ok(stream)
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// What the TLS session negotiated, for logs and `online` messages (nothing secret).
#[derive(Debug, Clone)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
    pub fingerprint: Option<Fingerprint>,
}

/// One open stream from a camera.
pub struct Connection {
    tls: SslStream<TcpStream>,
    decoder: StreamDecoder,
    buf: Vec<u8>,
    timeout: Duration,
    pub tls_info: TlsInfo,
    /// Body bytes received.
    pub bytes: u64,
}

impl Connection {
    /// Connect, handshake, authenticate; returns once a `200` head was read.
    pub fn open(ep: &Endpoint, cancel: &Cancel) -> Result<Connection, ClientError> {
        let r = Self::open_inner(ep, cancel);
        if r.is_err() {
            cancel.clear_abort();
        }
        match r {
            Err(_) if cancel.is_cancelled() => Err(ClientError::Cancelled),
            r => r,
        }
    }

    fn open_inner(ep: &Endpoint, cancel: &Cancel) -> Result<Connection, ClientError> {
        let host = ep.host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = (host, ep.port)
            .to_socket_addrs()
            .map_err(|e| ClientError::Resolve(ep.host.clone(), e))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for a in addrs {
            match connect(a, ep.timeout, cancel) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(ClientError::Cancelled) => return Err(ClientError::Cancelled),
                Err(e) => last = Some(e),
            }
        }
        let tcp = match tcp {
            Some(t) => t,
            None => {
                return Err(last.unwrap_or_else(|| {
                    ClientError::Resolve(
                        ep.host.clone(),
                        io::Error::new(io::ErrorKind::NotFound, "no address"),
                    )
                }))
            }
        };
        register(cancel, &tcp);
        tcp.set_nodelay(true).ok();
        tcp.set_read_timeout(Some(ep.timeout))
            .map_err(ClientError::Io)?;
        tcp.set_write_timeout(Some(ep.timeout))
            .map_err(ClientError::Io)?;

        let connector = client_connector().map_err(|e| ClientError::TlsProtocol(e.to_string()))?;
        let mut cfg = connector
            .configure()
            .map_err(|e| ClientError::TlsProtocol(e.to_string()))?;
        // Cameras are addressed by IP and present CN=TPRI-DEVICE: no SNI, no name check.
        cfg.set_use_server_name_indication(false);
        cfg.set_verify_hostname(false);
        let mut tls = match cfg.connect(host, tcp) {
            Ok(s) => s,
            Err(HandshakeError::SetupFailure(e)) => {
                return Err(ClientError::TlsProtocol(e.to_string()))
            }
            Err(HandshakeError::Failure(m)) | Err(HandshakeError::WouldBlock(m)) => {
                let e = m.error();
                let detail = match (e.ssl_error(), e.io_error()) {
                    (Some(stack), _) => return Err(ClientError::TlsProtocol(stack.to_string())),
                    (None, Some(io)) => io.to_string(),
                    (None, None) => "connection closed during the handshake".to_string(),
                };
                return Err(ClientError::TlsIo(detail));
            }
        };
        let ssl = tls.ssl();
        let fingerprint = ssl
            .peer_certificate()
            .and_then(|c| Fingerprint::of(&c).ok());
        let tls_info = TlsInfo {
            version: ssl.version_str().to_string(),
            cipher: ssl
                .current_cipher()
                .map(|c| c.name().to_string())
                .unwrap_or_default(),
            fingerprint,
        };
        if let Some(expected) = ep.fingerprint {
            match fingerprint {
                Some(got) if got == expected => {}
                got => {
                    return Err(ClientError::FingerprintMismatch {
                        expected,
                        got: got.unwrap_or(Fingerprint([0; 32])),
                    })
                }
            }
        }

        let auth = authorization_header(&ep.username, &ep.password);
        let req = build_request(host, ep.port, &ep.path, &auth);
        tls.write_all(req.expose().as_bytes())
            .map_err(|e| io_error(e, ep.timeout))?;
        tls.flush().map_err(|e| io_error(e, ep.timeout))?;

        let mut conn = Connection {
            tls,
            decoder: StreamDecoder::new(ep.max_part_size, ChunkedPolicy::Auto),
            buf: vec![0u8; 64 * 1024],
            timeout: ep.timeout,
            tls_info,
            bytes: 0,
        };
        let head = loop {
            // The decoder yields the head before any part.
            if let Some(StreamEvent::Head(h)) = conn.decoder.poll() {
                break h;
            }
            conn.fill()?;
        };
        match head.status {
            200..=299 => {}
            401 => {
                return Err(ClientError::Unauthorized {
                    realm: head.realm(),
                })
            }
            404 => {
                return Err(ClientError::NotFound(
                    ep.path.split('?').next().unwrap_or("").to_string(),
                ))
            }
            s => return Err(ClientError::Status(s, head.reason.clone())),
        }
        Ok(conn)
    }

    /// Read more bytes into the decoder.
    fn fill(&mut self) -> Result<(), ClientError> {
        let n = match self.tls.read(&mut self.buf) {
            Ok(0) => return Err(ClientError::Closed),
            Ok(n) => n,
            Err(e) => return Err(io_error(e, self.timeout)),
        };
        self.bytes += n as u64;
        self.decoder.push(&self.buf[..n]).map_err(|e| match e {
            StreamError::Head(e) => ClientError::Head(e.to_string()),
            StreamError::Chunk(e) => ClientError::Chunked(e.to_string()),
        })
    }

    /// The next part (or framing problem the decoder resynchronised past).
    pub fn next_part(&mut self) -> Result<Result<Part, FramingError>, ClientError> {
        loop {
            match self.decoder.poll() {
                Some(StreamEvent::Part(p)) => return Ok(Ok(p)),
                Some(StreamEvent::Corrupt(e)) => return Ok(Err(e)),
                Some(StreamEvent::Head(_)) => continue,
                None => self.fill()?,
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.tls.get_ref().shutdown(Shutdown::Both);
    }
}

fn io_error(e: io::Error, timeout: Duration) -> ClientError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Stall(timeout),
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted => ClientError::Closed,
        _ => ClientError::Io(e),
    }
}
