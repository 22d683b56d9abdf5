//! A deliberately small, lenient HTTP/1.x response-head parser.
//!
//! Kasa cameras answer `HTTP/1.0 200 OK` with headers that stock clients reject:
//! `Transfer-Encoding: chunked` on HTTP/1.0 (KD110, KC401, KC420WS), `Content-Length: -1`
//! (KC120/KC200 firmwares) and, in some captures, LF-only line ends. This parser accepts
//! all of them, bounds what it buffers, and never panics.

use crate::auth::Secret;
use std::fmt;

/// The most bytes a response head may take before it is a framing error.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most header lines accepted in one head.
pub const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// `(major, minor)`, e.g. `(1, 0)`.
    pub version: (u8, u8),
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// The first line is not `HTTP/x.y NNN reason`.
    BadStatusLine(String),
    /// A header line without a colon.
    BadHeaderLine(String),
    /// More than [`MAX_HEAD_BYTES`] or [`MAX_HEADERS`] without the blank line.
    TooLarge,
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::BadStatusLine(l) => write!(f, "malformed status line {l:?}"),
            HeadError::BadHeaderLine(l) => write!(f, "malformed header line {l:?}"),
            HeadError::TooLarge => write!(
                f,
                "response head larger than {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} headers"
            ),
        }
    }
}

impl std::error::Error for HeadError {}

/// How the body is delimited, after applying the camera quirks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Transfer-Encoding: chunked`, honoured even on HTTP/1.0 (KD110, KC401, KC420WS).
    Chunked,
    /// Anything else: the body runs until the connection closes. `Content-Length`
    /// is ignored on purpose: KC120/KC200 firmwares send `-1`, and the stream is endless.
    UntilClose,
}

impl ResponseHead {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_framing(&self) -> BodyFraming {
        match self.header("transfer-encoding") {
            Some(te) if te.to_ascii_lowercase().contains("chunked") => BodyFraming::Chunked,
            _ => BodyFraming::UntilClose,
        }
    }

    /// The `realm` of a `WWW-Authenticate` challenge, if any.
    pub fn realm(&self) -> Option<String> {
        let v = self.header("www-authenticate")?;
        let idx = v.to_ascii_lowercase().find("realm=")?;
        let rest = &v[idx + 6..];
        let realm = if let Some(q) = rest.strip_prefix('"') {
            q.split('"').next().unwrap_or("")
        } else {
            rest.split([',', ' ']).next().unwrap_or("")
        };
        Some(realm.to_string())
    }

    /// The multipart boundary from `Content-Type`, e.g. `data-boundary--`.
    pub fn boundary(&self) -> Option<String> {
        let ct = self.header("content-type")?;
        ct.split(';').map(str::trim).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            if k.trim().eq_ignore_ascii_case("boundary") {
                Some(v.trim().trim_matches('"').to_string())
            } else {
                None
            }
        })
    }
}

/// The index just past the first blank line (`\n\n` or `\r\n\r\n`, or any mix of the
/// two) that starts at or after `from`. Callers that receive a head in pieces pass how far they already looked
/// (minus two bytes), so that a head arriving byte by byte costs linear time.
pub fn blank_line_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut from = from.min(buf.len());
    while let Some(i) = memchr::memchr(b'\n', &buf[from..]) {
        let nl = from + i;
        let next = &buf[nl + 1..];
        if next.first() == Some(&b'\n') {
            return Some(nl + 2);
        }
        if next.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        from = nl + 1;
    }
    None
}

/// Parse a response head from the start of `buf`.
///
/// `Ok(None)` means more bytes are needed; `Ok(Some((head, n)))` gives the head and
/// the number of bytes it used (the body starts at `buf[n..]`).
pub fn parse_response_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let Some((status_line, headers, end)) = split_head(buf)? else {
        return Ok(None);
    };
    let bad = || HeadError::BadStatusLine(truncate(&status_line));
    let mut parts = status_line.splitn(3, ' ');
    let proto = parts.next().ok_or_else(bad)?;
    let version = proto
        .strip_prefix("HTTP/")
        .and_then(|v| v.split_once('.'))
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(bad)?;
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or_else(bad)?;
    let reason = parts.next().unwrap_or("").to_string();
    Ok(Some((
        ResponseHead {
            version,
            status,
            reason,
            headers,
        },
        end,
    )))
}

/// A complete head at the start of `buf`: its first line, its headers, and the index
/// just past the blank line. `Ok(None)` until the blank line has arrived.
type SplitHead = (String, Vec<(String, String)>, usize);

fn split_head(buf: &[u8]) -> Result<Option<SplitHead>, HeadError> {
    let window = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    let end = match blank_line_end(window, 0) {
        Some(e) => e,
        None if buf.len() >= MAX_HEAD_BYTES => return Err(HeadError::TooLarge),
        None => return Ok(None),
    };
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let first = lines.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| HeadError::BadHeaderLine(truncate(line)))?;
        if headers.len() == MAX_HEADERS {
            return Err(HeadError::TooLarge);
        }
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    Ok(Some((first, headers, end)))
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The request a Kasa client sends. The result holds the credential: write it to the
/// socket, never to a log.
pub fn build_request(host: &str, port: u16, path: &str, authorization: &Secret) -> Secret {
    Secret::new(format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {}\r\nUser-Agent: kasasrc/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        authorization.expose(),
        env!("CARGO_PKG_VERSION"),
    ))
}

/// Server side (the simulator): a parsed request line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// Parse a request head (for the simulator); same conventions as [`parse_response_head`].
pub fn parse_request_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let Some((first, headers, end)) = split_head(buf)? else {
        return Ok(None);
    };
    let mut parts = first.split(' ');
    let (method, target) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v)) if v.starts_with("HTTP/") => (m.to_string(), t.to_string()),
        _ => return Err(HeadError::BadStatusLine(truncate(&first))),
    };
    Ok(Some((
        RequestHead {
            method,
            target,
            headers,
        },
        end,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kasa_head_crlf_chunked() {
        let raw = b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=data-boundary--\r\nTransfer-Encoding: chunked\r\n\r\n--data";
        let (h, n) = parse_response_head(raw).unwrap().unwrap();
        assert_eq!(h.version, (1, 0));
        assert_eq!(h.status, 200);
        assert_eq!(&raw[n..], b"--data");
        assert_eq!(h.body_framing(), BodyFraming::Chunked);
        assert_eq!(h.boundary().as_deref(), Some("data-boundary--"));
    }

    #[test]
    fn lf_only_and_negative_length() {
        let raw = b"HTTP/1.0 200 OK\nContent-Length: -1\ncontent-type: multipart/x-mixed-replace; boundary=\"data-boundary--\"\n\nX";
        let (h, n) = parse_response_head(raw).unwrap().unwrap();
        assert_eq!(h.body_framing(), BodyFraming::UntilClose);
        assert_eq!(h.boundary().as_deref(), Some("data-boundary--"));
        assert_eq!(&raw[n..], b"X");
    }

    #[test]
    fn realm_from_401() {
        let raw = b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"smarthome@tp-link.com\"\r\n\r\n";
        let (h, _) = parse_response_head(raw).unwrap().unwrap();
        assert_eq!(h.status, 401);
        assert_eq!(h.realm().as_deref(), Some("smarthome@tp-link.com"));
    }

    #[test]
    fn partial_and_bad() {
        assert_eq!(parse_response_head(b"HTTP/1.0 200 OK\r\n").unwrap(), None);
        assert!(matches!(
            parse_response_head(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(HeadError::BadStatusLine(_))
        ));
        assert!(matches!(
            parse_response_head(b"HTTP/1.0 200 OK\r\nnocolon\r\n\r\n"),
            Err(HeadError::BadHeaderLine(_))
        ));
        let big = vec![b'a'; MAX_HEAD_BYTES + 10];
        assert_eq!(parse_response_head(&big), Err(HeadError::TooLarge));
    }

    #[test]
    fn request_roundtrip() {
        let req = build_request(
            "10.0.0.1",
            19443,
            crate::DEFAULT_PATH,
            &Secret::new("Basic x"),
        );
        let (r, _) = parse_request_head(req.expose().as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path(), "/https/stream/mixed");
        assert_eq!(r.header("authorization"), Some("Basic x"));
    }
}
