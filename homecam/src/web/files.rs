//! Files served with `Range` support and bounded memory: a clip or snapshot on disk, or
//! an export assembled from recording segments. Both are a list of pieces (bytes in
//! memory, ranges of open files); a response reads them 256 KiB at a time, off the async
//! threads, and at most two chunks wait for a slow client.
//!
//! The files are opened when the content is made, so a segment that retention deletes
//! while it is being sent keeps its bytes until the answer is complete.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mp4_export::segment::FileSource;
use mp4_export::{Export, Piece};
use std::sync::Arc;

const CHUNK: u64 = 256 * 1024;

/// What can be served.
pub enum Content {
    File(FileSource),
    Export {
        export: Export,
        files: Vec<Arc<FileSource>>,
    },
}

impl Content {
    pub fn size(&self) -> u64 {
        match self {
            Content::File(f) => f.len,
            Content::Export { export, .. } => export.size,
        }
    }

    /// Reads `len` bytes at `offset` (blocking).
    fn read(&self, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        use mp4_export::Source;
        let mut out = vec![0u8; len as usize];
        match self {
            Content::File(f) => f.read_exact_at(&mut out, offset)?,
            Content::Export { export, files } => {
                let mut at = 0usize;
                for p in export.pieces(offset, len) {
                    match p {
                        Piece::Header { offset, len } => {
                            let (o, l) = (offset as usize, len as usize);
                            out[at..at + l].copy_from_slice(&export.header[o..o + l]);
                            at += l;
                        }
                        Piece::File { file, offset, len } => {
                            let l = len as usize;
                            let f = files.get(file).ok_or(std::io::ErrorKind::NotFound)?;
                            f.read_exact_at(&mut out[at..at + l], offset)?;
                            at += l;
                        }
                    }
                }
                out.truncate(at);
            }
        }
        Ok(out)
    }
}

/// A `Range` header that is malformed or outside the file.
#[derive(Debug, PartialEq)]
pub struct BadRange;

/// A `Range` header, as (first byte, last byte) of a file of `size` bytes. `Ok(None)`: no
/// range or one to ignore (several ranges: the whole file is sent, as RFC 9110 allows).
pub fn parse_range(h: Option<&HeaderValue>, size: u64) -> Result<Option<(u64, u64)>, BadRange> {
    let Some(h) = h else { return Ok(None) };
    let s = h.to_str().map_err(|_| BadRange)?.trim();
    let spec = s.strip_prefix("bytes=").ok_or(BadRange)?;
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(BadRange)?;
    let (a, b) = (a.trim(), b.trim());
    let num = |x: &str| -> Result<u64, BadRange> {
        if x.is_empty() || x.len() > 19 || !x.bytes().all(|c| c.is_ascii_digit()) {
            return Err(BadRange);
        }
        x.parse().map_err(|_| BadRange)
    };
    let (first, last) = if a.is_empty() {
        // The last N bytes.
        let n = num(b)?;
        if n == 0 {
            return Err(BadRange);
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let first = num(a)?;
        let last = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            num(b)?.min(size.saturating_sub(1))
        };
        (first, last)
    };
    if first >= size || last < first {
        return Err(BadRange);
    }
    Ok(Some((first, last)))
}

/// The response for `content`: 200 with all of it, 206 with the range asked for, or 416.
pub fn serve(
    content: Arc<Content>,
    headers: &HeaderMap,
    ctype: &str,
    extra: &[(&str, String)],
) -> Response {
    let size = content.size();
    let range = match parse_range(headers.get(header::RANGE), size) {
        Ok(r) => r,
        Err(BadRange) => {
            let mut r = (
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("416 the range is malformed or outside the {size} bytes\n"),
            )
                .into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).unwrap(),
            );
            return r;
        }
    };
    let (status, first, len) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, size),
    };
    let stream = futures_util::stream::unfold(
        (content, first, first + len),
        |(content, pos, end)| async move {
            if pos >= end {
                return None;
            }
            let n = CHUNK.min(end - pos);
            let c = content.clone();
            let read = tokio::task::spawn_blocking(move || c.read(pos, n))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            match read {
                Ok(b) if b.len() as u64 == n => Some((
                    Ok::<_, std::io::Error>(Bytes::from(b)),
                    (content, pos + n, end),
                )),
                Ok(_) => Some((
                    Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
                    (content, end, end),
                )),
                Err(e) => Some((Err(e), (content, end, end))),
            }
        },
    );
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ctype).unwrap());
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=60"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {first}-{}/{size}", first + len - 1)).unwrap(),
        );
    }
    for (k, v) in extra {
        if let (Ok(k), Ok(v)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(k, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str, size: u64) -> Result<Option<(u64, u64)>, BadRange> {
        parse_range(Some(&HeaderValue::from_str(s).unwrap()), size)
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(r("bytes=0-", 10), Ok(Some((0, 9))));
        assert_eq!(r("bytes=2-4", 10), Ok(Some((2, 4))));
        assert_eq!(r("bytes=2-400", 10), Ok(Some((2, 9))));
        assert_eq!(r("bytes=-3", 10), Ok(Some((7, 9))));
        assert_eq!(r("bytes=-30", 10), Ok(Some((0, 9))));
        assert_eq!(r("bytes=0-1,4-5", 10), Ok(None));
        for bad in [
            "bytes=10-",
            "bytes=5-2",
            "bytes=-0",
            "bytes=a-b",
            "items=0-1",
            "bytes=0",
            "bytes=99999999999999999999-",
            "bytes=+1-2",
        ] {
            assert_eq!(r(bad, 10), Err(BadRange), "{bad}");
        }
    }
}
