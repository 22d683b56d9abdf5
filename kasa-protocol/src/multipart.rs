//! The Kasa `multipart/x-mixed-replace` part framer.
//!
//! What real cameras send (protocols.md section 1):
//!
//! ```text
//! --data-boundary--\r\n
//! Content-Type: video/x-h264\r\n
//! Content-Length: 48213\r\n
//! X-UtcTime: 1763775000\r\n
//! X-Timestamp: 1234.567\r\n
//! \r\n
//! <48213 bytes>\r\n
//! ```
//!
//! with these deviations, each handled here: the delimiter line `--data-boundary--` looks
//! like an RFC 2046 *closing* delimiter (it is not: the declared boundary is
//! `data-boundary--`, and every part starts with it); header lines may end in LF only;
//! blank lines may appear between parts; `X-Timestamp` may be missing (KC410S).
//!
//! Memory is bounded: the parser holds at most one part (`max_part_size`) plus its
//! header block ([`MAX_PART_HEAD`]) beyond what the caller pushed since the last poll.
//! A claimed length above the bound is never allocated; the parser skips to the next
//! delimiter instead (resynchronisation), reporting a [`FramingError`].

use bytes::{Bytes, BytesMut};
use std::fmt;

/// The most bytes a part's header block may take.
pub const MAX_PART_HEAD: usize = 8 * 1024;
/// The longest delimiter line accepted (boundary plus padding).
const MAX_DELIMITER_LINE: usize = 256;
/// The default bound on one part: a 1440p KC420WS key frame is a few hundred KiB.
pub const DEFAULT_MAX_PART_SIZE: usize = 4 * 1024 * 1024;
/// The boundary every Kasa camera declares.
pub const KASA_BOUNDARY: &str = "data-boundary--";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    Video,
    Audio,
    Other,
}

/// One part of the stream, with the headers the camera may send.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub kind: PartKind,
    pub content_type: String,
    /// `X-Timestamp`: camera media time in seconds (a float).
    pub timestamp: Option<f64>,
    /// `X-UtcTime`: camera wall-clock time in Unix seconds.
    pub utc_time: Option<u64>,
    /// `X-FrameType` as sent (KC410S), e.g. `I` or `P`.
    pub frame_type: Option<String>,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramingError {
    /// Bytes where a `--boundary` line was expected.
    ExpectedBoundary { found: String },
    /// A part header block larger than [`MAX_PART_HEAD`].
    HeadersTooLarge,
    /// A header line that is not `Name: value`.
    BadHeaderLine(String),
    /// `Content-Length` that is not a non-negative integer.
    BadContentLength(String),
    /// A part claiming (or, without a length, running to) more than the bound.
    PartTooLarge { claimed: Option<u64>, max: usize },
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::ExpectedBoundary { found } => {
                write!(f, "expected the multipart delimiter, found {found:?}")
            }
            FramingError::HeadersTooLarge => {
                write!(f, "part headers larger than {MAX_PART_HEAD} bytes")
            }
            FramingError::BadHeaderLine(l) => write!(f, "malformed part header line {l:?}"),
            FramingError::BadContentLength(v) => write!(f, "invalid part Content-Length {v:?}"),
            FramingError::PartTooLarge {
                claimed: Some(n),
                max,
            } => write!(f, "part claims {n} bytes, above the limit of {max} bytes"),
            FramingError::PartTooLarge { claimed: None, max } => {
                write!(f, "part without Content-Length ran past {max} bytes")
            }
        }
    }
}

impl std::error::Error for FramingError {}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Part(Part),
    /// The stream was damaged; the parser is skipping to the next delimiter.
    Corrupt(FramingError),
}

#[derive(Debug, Clone)]
struct PendingPart {
    kind: PartKind,
    content_type: String,
    timestamp: Option<f64>,
    utc_time: Option<u64>,
    frame_type: Option<String>,
    length: Option<usize>,
}

#[derive(Debug, Clone)]
enum State {
    Delimiter,
    Headers,
    Body(PendingPart),
    Resync,
}

#[derive(Debug)]
pub struct MultipartParser {
    buf: BytesMut,
    /// `--` + boundary without its trailing dashes: the line prefix of every delimiter.
    delimiter: Vec<u8>,
    /// `\n` + delimiter, to find a delimiter at a line start.
    nl_delimiter: Vec<u8>,
    max_part_size: usize,
    state: State,
    skipped_bytes: u64,
    /// How far the current state already searched the buffer, so that data arriving
    /// in small reads is not rescanned from the start (linear, not quadratic, time).
    scanned: usize,
}

impl MultipartParser {
    /// `boundary` as declared in `Content-Type` (for Kasa, [`KASA_BOUNDARY`]).
    pub fn new(boundary: &str, max_part_size: usize) -> Self {
        // Quirk: Kasa's declared boundary ends in `--`, so every delimiter line reads like
        // a closing delimiter, and some firmwares could declare it without the dashes.
        // Matching on the boundary stripped of trailing dashes, and accepting any run of
        // dashes after it, frames both, and never mistakes a delimiter for the end.
        let core = boundary.trim_end_matches('-');
        let core = if core.is_empty() { boundary } else { core };
        let mut delimiter = b"--".to_vec();
        delimiter.extend_from_slice(core.as_bytes());
        let mut nl_delimiter = b"\n".to_vec();
        nl_delimiter.extend_from_slice(&delimiter);
        MultipartParser {
            buf: BytesMut::with_capacity(8 * 1024),
            delimiter,
            nl_delimiter,
            max_part_size,
            state: State::Delimiter,
            skipped_bytes: 0,
            scanned: 0,
        }
    }

    /// Add received body bytes. Call [`MultipartParser::poll`] until it returns `None`
    /// after each push: that is what keeps the buffer bounded.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The internal buffer, for callers that decode (de-chunk) straight into it.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes currently held.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes discarded while resynchronising, since creation.
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped_bytes
    }

    /// Forget everything buffered (a new connection).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.scanned = 0;
        self.state = State::Delimiter;
    }

    fn corrupt(&mut self, e: FramingError) -> Option<Event> {
        self.state = State::Resync;
        self.scanned = 0;
        Some(Event::Corrupt(e))
    }

    /// The next event, or `None` when more bytes are needed.
    pub fn poll(&mut self) -> Option<Event> {
        loop {
            match &self.state {
                State::Delimiter => {
                    let ws = self
                        .buf
                        .iter()
                        .position(|b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
                        .unwrap_or(self.buf.len());
                    let _ = self.buf.split_to(ws);
                    if self.buf.is_empty() {
                        return None;
                    }
                    let Some(nl) = memchr::memchr(b'\n', &self.buf) else {
                        let n = self.buf.len().min(self.delimiter.len());
                        if self.buf[..n] != self.delimiter[..n]
                            || self.buf.len() > MAX_DELIMITER_LINE
                        {
                            let found = preview(&self.buf);
                            // Drop at least a byte so resynchronisation always progresses.
                            self.skipped_bytes += 1;
                            let _ = self.buf.split_to(1);
                            return self.corrupt(FramingError::ExpectedBoundary { found });
                        }
                        return None;
                    };
                    let line = trim_line(&self.buf[..nl]);
                    let ok = line.starts_with(&self.delimiter)
                        && line[self.delimiter.len()..].iter().all(|&b| b == b'-');
                    if !ok {
                        let found = preview(line);
                        self.skipped_bytes += (nl + 1) as u64;
                        let _ = self.buf.split_to(nl + 1);
                        return self.corrupt(FramingError::ExpectedBoundary { found });
                    }
                    let _ = self.buf.split_to(nl + 1);
                    self.state = State::Headers;
                }
                State::Headers => {
                    // A header block ends at a blank line; an empty block is a blank
                    // line right away.
                    let complete = self.buf.first() == Some(&b'\n')
                        || self.buf.starts_with(b"\r\n")
                        || crate::http::blank_line_end(&self.buf, self.scanned.saturating_sub(2))
                            .is_some();
                    if !complete && self.buf.len() < MAX_PART_HEAD {
                        self.scanned = self.buf.len();
                        return None;
                    }
                    self.scanned = 0;
                    let (pending, used) = match self.parse_headers() {
                        Ok(p) => p?,
                        Err(e) => return self.corrupt(e),
                    };
                    let _ = self.buf.split_to(used);
                    self.state = State::Body(pending);
                }
                State::Body(p) => {
                    let end = match p.length {
                        Some(len) => {
                            if self.buf.len() < len {
                                self.buf.reserve(len - self.buf.len());
                                return None;
                            }
                            (len, len)
                        }
                        None => match memchr::memmem::find(
                            &self.buf[self.scanned.saturating_sub(self.nl_delimiter.len())..],
                            &self.nl_delimiter,
                        )
                        .map(|i| i + self.scanned.saturating_sub(self.nl_delimiter.len()))
                        {
                            Some(i) => {
                                let body_end = if i > 0 && self.buf[i - 1] == b'\r' {
                                    i - 1
                                } else {
                                    i
                                };
                                (body_end, i + 1)
                            }
                            None if self.buf.len() > self.max_part_size => {
                                return self.corrupt(FramingError::PartTooLarge {
                                    claimed: None,
                                    max: self.max_part_size,
                                });
                            }
                            None => {
                                self.scanned = self.buf.len();
                                return None;
                            }
                        },
                    };
                    self.scanned = 0;
                    // This arm runs only in `State::Body`; the other case is impossible
                    // and handled without a panic all the same.
                    let p = match std::mem::replace(&mut self.state, State::Delimiter) {
                        State::Body(p) => p,
                        _ => return None,
                    };
                    let mut chunk = self.buf.split_to(end.1);
                    chunk.truncate(end.0);
                    return Some(Event::Part(Part {
                        kind: p.kind,
                        content_type: p.content_type,
                        timestamp: p.timestamp,
                        utc_time: p.utc_time,
                        frame_type: p.frame_type,
                        body: chunk.freeze(),
                    }));
                }
                State::Resync => {
                    if self.buf.starts_with(&self.delimiter) {
                        self.state = State::Delimiter;
                        continue;
                    }
                    match memchr::memmem::find(&self.buf, &self.nl_delimiter) {
                        Some(i) => {
                            self.skipped_bytes += (i + 1) as u64;
                            let _ = self.buf.split_to(i + 1);
                            self.state = State::Delimiter;
                        }
                        None => {
                            let keep = self.nl_delimiter.len() - 1;
                            let drop = self.buf.len().saturating_sub(keep);
                            self.skipped_bytes += drop as u64;
                            let _ = self.buf.split_to(drop);
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// Parse the header block at the start of the buffer, if complete.
    fn parse_headers(&self) -> Result<Option<(PendingPart, usize)>, FramingError> {
        let mut pos = 0;
        let mut p = PendingPart {
            kind: PartKind::Other,
            content_type: String::new(),
            timestamp: None,
            utc_time: None,
            frame_type: None,
            length: None,
        };
        loop {
            let window = &self.buf[pos..self.buf.len().min(MAX_PART_HEAD)];
            let Some(nl) = memchr::memchr(b'\n', window) else {
                if self.buf.len() >= MAX_PART_HEAD {
                    return Err(FramingError::HeadersTooLarge);
                }
                return Ok(None);
            };
            let line = trim_line(&window[..nl]);
            pos += nl + 1;
            if line.is_empty() {
                return Ok(Some((p, pos)));
            }
            let text = String::from_utf8_lossy(line);
            let Some((name, value)) = text.split_once(':') else {
                return Err(FramingError::BadHeaderLine(text.chars().take(60).collect()));
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-type" => {
                    let lower = value.to_ascii_lowercase();
                    p.kind = if lower.starts_with("video/") {
                        PartKind::Video
                    } else if lower.starts_with("audio/") {
                        PartKind::Audio
                    } else {
                        PartKind::Other
                    };
                    p.content_type = value.chars().take(80).collect();
                }
                "content-length" => {
                    let n: u64 = value.parse().map_err(|_| {
                        FramingError::BadContentLength(value.chars().take(30).collect())
                    })?;
                    if n > self.max_part_size as u64 {
                        return Err(FramingError::PartTooLarge {
                            claimed: Some(n),
                            max: self.max_part_size,
                        });
                    }
                    p.length = Some(n as usize);
                }
                "x-timestamp" => p.timestamp = value.parse().ok().filter(|t: &f64| t.is_finite()),
                "x-utctime" => p.utc_time = value.parse().ok(),
                "x-frametype" => p.frame_type = Some(value.chars().take(16).collect()),
                _ => {}
            }
        }
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\r' | b' ' | b'\t') {
        end -= 1;
    }
    &line[..end]
}

fn preview(b: &[u8]) -> String {
    let n = b.len().min(32);
    b[..n]
        .iter()
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                (c as char).to_string()
            } else {
                format!("\\x{c:02x}")
            }
        })
        .collect()
}

/// Build one part as a Kasa camera does (for the simulator and tests).
pub struct PartWriter<'a> {
    pub content_type: &'a str,
    pub timestamp: Option<f64>,
    pub utc_time: Option<u64>,
    pub line_end: &'a str,
}

impl PartWriter<'_> {
    pub fn write(&self, body: &[u8], out: &mut Vec<u8>) {
        let e = self.line_end;
        out.extend_from_slice(
            format!(
                "--{KASA_BOUNDARY}{e}Content-Type: {}{e}Content-Length: {}{e}",
                self.content_type,
                body.len()
            )
            .as_bytes(),
        );
        if let Some(u) = self.utc_time {
            out.extend_from_slice(format!("X-UtcTime: {u}{e}").as_bytes());
        }
        if let Some(t) = self.timestamp {
            out.extend_from_slice(format!("X-Timestamp: {t:.3}{e}").as_bytes());
        }
        out.extend_from_slice(e.as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(ct: &str, ts: Option<f64>, body: &[u8], le: &str) -> Vec<u8> {
        let mut v = Vec::new();
        PartWriter {
            content_type: ct,
            timestamp: ts,
            utc_time: Some(1_763_775_000),
            line_end: le,
        }
        .write(body, &mut v);
        v
    }

    fn collect(input: &[u8], step: usize, max: usize) -> Vec<Event> {
        let mut p = MultipartParser::new(KASA_BOUNDARY, max);
        let mut out = Vec::new();
        for c in input.chunks(step.max(1)) {
            p.push(c);
            while let Some(e) = p.poll() {
                out.push(e);
            }
            assert!(p.buffered() <= max + MAX_PART_HEAD + step + 64);
        }
        out
    }

    fn parts(ev: &[Event]) -> Vec<&Part> {
        ev.iter()
            .filter_map(|e| match e {
                Event::Part(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn crlf_lf_blank_lines_any_split() {
        let mut s = part("audio/g711u", Some(1.0), &[0xffu8; 480], "\r\n");
        s.extend(part("video/x-h264", Some(1.02), b"\0\0\0\x01\x67abc", "\n"));
        s.extend_from_slice(b"\r\n\r\n\n");
        s.extend(part(
            "video/x-h264",
            None,
            b"\r\n--data-boundary--\r\n",
            "\r\n",
        ));
        for step in [1, 2, 5, 17, 100, 100_000] {
            let ev = collect(&s, step, 1 << 20);
            assert_eq!(ev.len(), 3, "step {step}: {ev:?}");
            let p = parts(&ev);
            assert_eq!(p[0].kind, PartKind::Audio);
            assert_eq!(p[0].body.len(), 480);
            assert_eq!(p[1].kind, PartKind::Video);
            assert_eq!(p[1].timestamp, Some(1.02));
            assert_eq!(&p[1].body[..], b"\0\0\0\x01\x67abc");
            // A body that contains the delimiter is framed by its length.
            assert_eq!(&p[2].body[..], b"\r\n--data-boundary--\r\n");
            assert_eq!(p[2].timestamp, None);
        }
    }

    #[test]
    fn garbage_then_resync() {
        let mut s = b"GARBAGE\x00\x01\x02 more junk\n".to_vec();
        s.extend(part("video/x-h264", Some(2.0), b"frame", "\r\n"));
        let ev = collect(&s, 3, 1 << 20);
        assert!(matches!(
            ev[0],
            Event::Corrupt(FramingError::ExpectedBoundary { .. })
        ));
        assert_eq!(parts(&ev).len(), 1);
    }

    #[test]
    fn oversized_length_is_not_allocated() {
        let mut s = b"--data-boundary--\r\nContent-Type: video/x-h264\r\nContent-Length: 999999999999\r\n\r\n".to_vec();
        s.extend(vec![0u8; 5000]);
        s.extend_from_slice(b"\r\n");
        s.extend(part("video/x-h264", Some(3.0), b"ok", "\r\n"));
        let ev = collect(&s, 4096, 4096);
        assert!(matches!(
            ev[0],
            Event::Corrupt(FramingError::PartTooLarge {
                claimed: Some(999999999999),
                ..
            })
        ));
        let p = parts(&ev);
        assert_eq!(p.len(), 1);
        assert_eq!(&p[0].body[..], b"ok");
    }

    #[test]
    fn bad_length_and_header_junk() {
        let s = b"--data-boundary--\r\nContent-Length: -1\r\n\r\nxx\r\n--data-boundary--\r\nno colon here\r\n\r\n";
        let ev = collect(s, 7, 1024);
        assert!(matches!(
            ev[0],
            Event::Corrupt(FramingError::BadContentLength(_))
        ));
        assert!(matches!(
            ev[1],
            Event::Corrupt(FramingError::BadHeaderLine(_))
        ));
        let endless_headers = [b"--data-boundary--\r\n".as_slice(), &[b'A'; 20000]].concat();
        let ev = collect(&endless_headers, 999, 1024);
        assert!(matches!(
            ev[0],
            Event::Corrupt(FramingError::HeadersTooLarge)
        ));
    }

    #[test]
    fn missing_length_uses_next_delimiter() {
        let mut s = b"--data-boundary--\r\nContent-Type: audio/g711u\r\n\r\nabc\r\n".to_vec();
        s.extend(part("video/x-h264", Some(3.0), b"v", "\r\n"));
        let ev = collect(&s, 1, 1024);
        let p = parts(&ev);
        assert_eq!(&p[0].body[..], b"abc");
        assert_eq!(&p[1].body[..], b"v");
    }

    #[test]
    fn boundary_without_dashes_declared() {
        let mut p = MultipartParser::new("data-boundary", 1024);
        p.push(&part("video/x-h264", Some(1.0), b"x", "\r\n"));
        assert!(matches!(p.poll(), Some(Event::Part(_))));
    }
}
