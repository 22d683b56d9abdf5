//! The whole client-side byte stream after TLS: response head, optional de-chunking,
//! multipart framing. Bytes in, events out; this is what the fuzz target drives.

use crate::chunked::{ChunkError, Dechunker};
use crate::http::{self, BodyFraming, HeadError, ResponseHead};
use crate::multipart::{Event, FramingError, MultipartParser, Part, KASA_BOUNDARY};
use bytes::BytesMut;
use std::fmt;

/// How to treat a body announced as chunked.
///
/// `Auto` (the default) de-chunks only when the header says so *and* the body does not
/// start with `--`: go2rtc peeks the same way, because a camera that announces chunking
/// but sends a bare multipart body would otherwise be unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChunkedPolicy {
    #[default]
    Auto,
    /// Trust the header.
    Header,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The response head; the caller checks the status.
    Head(ResponseHead),
    Part(Part),
    Corrupt(FramingError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    Head(HeadError),
    Chunk(ChunkError),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Head(e) => write!(f, "HTTP response: {e}"),
            StreamError::Chunk(e) => write!(f, "chunked body: {e}"),
        }
    }
}

impl std::error::Error for StreamError {}

enum State {
    Head(BytesMut),
    /// Head parsed; waiting for two body bytes to decide on chunking.
    Peek {
        chunked: bool,
        buf: BytesMut,
    },
    Body(Option<Dechunker>),
}

pub struct StreamDecoder {
    state: State,
    parser: MultipartParser,
    policy: ChunkedPolicy,
    head_event: Option<ResponseHead>,
    max_part_size: usize,
}

impl StreamDecoder {
    pub fn new(max_part_size: usize, policy: ChunkedPolicy) -> Self {
        StreamDecoder {
            state: State::Head(BytesMut::new()),
            parser: MultipartParser::new(KASA_BOUNDARY, max_part_size),
            policy,
            head_event: None,
            max_part_size,
        }
    }

    /// Bytes held across all stages (bounded by the head limit plus the part limit).
    pub fn buffered(&self) -> usize {
        let s = match &self.state {
            State::Head(b) | State::Peek { buf: b, .. } => b.len(),
            State::Body(_) => 0,
        };
        s + self.parser.buffered()
    }

    pub fn skipped_bytes(&self) -> u64 {
        self.parser.skipped_bytes()
    }

    /// Feed received bytes; then call [`StreamDecoder::poll`] until `Ok(None)`.
    pub fn push(&mut self, data: &[u8]) -> Result<(), StreamError> {
        match &mut self.state {
            State::Head(buf) => {
                let scanned = buf.len().saturating_sub(2);
                buf.extend_from_slice(data);
                if buf.len() < http::MAX_HEAD_BYTES && http::blank_line_end(buf, scanned).is_none()
                {
                    return Ok(());
                }
                let parsed = http::parse_response_head(buf).map_err(StreamError::Head)?;
                if let Some((head, used)) = parsed {
                    let rest = buf.split_off(used);
                    if let Some(b) = head.boundary() {
                        // Trust a declared boundary; Kasa always declares data-boundary--.
                        if !b.is_empty() && b.len() < 128 {
                            self.parser = MultipartParser::new(&b, self.max_part_size);
                        }
                    }
                    let chunked = head.body_framing() == BodyFraming::Chunked;
                    self.head_event = Some(head);
                    self.state = State::Peek {
                        chunked,
                        buf: BytesMut::new(),
                    };
                    if !rest.is_empty() {
                        return self.push(&rest);
                    }
                }
                Ok(())
            }
            State::Peek { chunked, buf } => {
                buf.extend_from_slice(data);
                if buf.len() < 2 {
                    return Ok(());
                }
                let dechunk =
                    *chunked && !(self.policy == ChunkedPolicy::Auto && buf.starts_with(b"--"));
                let pending = std::mem::take(buf);
                self.state = State::Body(dechunk.then(Dechunker::new));
                self.push(&pending)
            }
            State::Body(Some(d)) => d
                .decode(data, self.parser.buffer_mut())
                .map_err(StreamError::Chunk),
            State::Body(None) => {
                self.parser.push(data);
                Ok(())
            }
        }
    }

    pub fn poll(&mut self) -> Option<StreamEvent> {
        if let Some(h) = self.head_event.take() {
            return Some(StreamEvent::Head(h));
        }
        match self.parser.poll()? {
            Event::Part(p) => Some(StreamEvent::Part(p)),
            Event::Corrupt(e) => Some(StreamEvent::Corrupt(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunked::encode_chunk;
    use crate::multipart::PartWriter;

    fn body() -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..5 {
            PartWriter {
                content_type: if i % 2 == 0 {
                    "audio/g711u"
                } else {
                    "video/x-h264"
                },
                timestamp: Some(i as f64 * 0.06),
                utc_time: None,
                line_end: "\r\n",
            }
            .write(&vec![i as u8; 100 + i * 50], &mut v);
        }
        v
    }

    fn run(raw: &[u8], step: usize) -> Vec<StreamEvent> {
        let mut d = StreamDecoder::new(1 << 20, ChunkedPolicy::Auto);
        let mut ev = Vec::new();
        for c in raw.chunks(step) {
            d.push(c).unwrap();
            while let Some(e) = d.poll() {
                ev.push(e);
            }
        }
        ev
    }

    #[test]
    fn three_body_variants() {
        let b = body();
        let mut chunked = Vec::new();
        // Chunks that do not line up with parts, as a camera's writes would not.
        for c in b.chunks(77) {
            encode_chunk(c, &mut chunked);
        }
        let heads = [
            ("HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=data-boundary--\r\nTransfer-Encoding: chunked\r\n\r\n", &chunked),
            ("HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=data-boundary--\r\n\r\n", &b),
            ("HTTP/1.0 200 OK\nContent-Type: multipart/x-mixed-replace;boundary=data-boundary--\nContent-Length: -1\n\n", &b),
            // Announced chunked, sent bare: the peek quirk.
            ("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &b),
        ];
        for (h, body) in heads {
            let raw = [h.as_bytes(), body.as_slice()].concat();
            for step in [1, 3, 64, 4096] {
                let ev = run(&raw, step);
                assert!(matches!(ev[0], StreamEvent::Head(_)));
                let n = ev
                    .iter()
                    .filter(|e| matches!(e, StreamEvent::Part(_)))
                    .count();
                assert_eq!(n, 5, "{h:?} step {step}");
            }
        }
    }
}

/// The fuzz harness, shared by `fuzz/fuzz_targets/stream_decoder.rs` and the
/// regression test that replays `testdata/` and pseudo-random inputs in CI.
///
/// The first byte picks the read size, so one input exercises every way the socket
/// could split the stream. Panics (the fuzzer's finding) if the decoder panics or holds
/// more than its bound.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    const MAX_PART: usize = 64 * 1024;
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let step = 1 + first as usize * 7;
    let policy = if first & 1 == 0 {
        ChunkedPolicy::Auto
    } else {
        ChunkedPolicy::Header
    };
    let mut d = StreamDecoder::new(MAX_PART, policy);
    for c in rest.chunks(step) {
        if d.push(c).is_err() {
            return;
        }
        while let Some(ev) = d.poll() {
            if let StreamEvent::Part(p) = ev {
                assert!(p.body.len() <= MAX_PART);
                let _ = crate::h264::AccessUnitInfo::of(&p.body);
                let _ = crate::h264::parameter_sets(&p.body);
            }
        }
        let bound = crate::http::MAX_HEAD_BYTES
            + MAX_PART
            + crate::multipart::MAX_PART_HEAD
            + 2 * step
            + 64;
        assert!(
            d.buffered() <= bound,
            "decoder holds {} bytes",
            d.buffered()
        );
    }
}

#[cfg(test)]
mod fuzz_regression {
    /// Replays the seed transcripts, then mutations of them from a fixed-seed PRNG.
    #[test]
    fn seeds_and_mutations_never_panic() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert!(seeds.len() >= 5);
        seeds.sort();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for s in &seeds {
            super::fuzz_one(s);
        }
        for _ in 0..20_000 {
            let mut s = seeds[(rnd() % seeds.len() as u64) as usize].clone();
            for _ in 0..(1 + rnd() % 8) {
                if s.is_empty() {
                    break;
                }
                let i = (rnd() % s.len() as u64) as usize;
                match rnd() % 4 {
                    0 => s[i] = rnd() as u8,
                    1 => {
                        s.remove(i);
                    }
                    2 => s.insert(i, b"-\r\n0:9f"[(rnd() % 7) as usize]),
                    _ => s.truncate(i.max(1)),
                }
            }
            super::fuzz_one(&s);
        }
    }
}
