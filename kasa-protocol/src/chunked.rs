//! Streaming `Transfer-Encoding: chunked` decoder.
//!
//! KD110, KC401 and KC420WS send a chunked body on an HTTP/1.0 response (protocols.md
//! section 1). The decoder keeps no data of its own: it copies chunk payload straight
//! into the caller's buffer, so its memory is a few bytes of state whatever the input.

use bytes::BytesMut;
use std::fmt;

/// A chunk-size line longer than this is garbage (hex digits plus extensions).
const MAX_SIZE_LINE: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// The chunk-size line is not hexadecimal or is too long.
    BadSize(String),
    /// Chunk data was not followed by a line end.
    MissingCrlf,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::BadSize(s) => write!(f, "invalid chunk size line {s:?}"),
            ChunkError::MissingCrlf => write!(f, "chunk data not followed by CRLF"),
        }
    }
}

impl std::error::Error for ChunkError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Size {
        line: Vec<u8>,
    },
    Data {
        remaining: u64,
    },
    /// After the data: expect `\r\n` (or a bare `\n`).
    DataEnd {
        seen_cr: bool,
    },
    /// After the zero-size chunk: trailers, ignored, until the stream ends.
    Done,
}

#[derive(Debug, Clone)]
pub struct Dechunker {
    state: State,
}

impl Default for Dechunker {
    fn default() -> Self {
        Self::new()
    }
}

impl Dechunker {
    pub fn new() -> Self {
        Dechunker {
            state: State::Size { line: Vec::new() },
        }
    }

    /// True once the terminating zero-size chunk was read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decode all of `input`, appending the payload to `out`.
    pub fn decode(&mut self, mut input: &[u8], out: &mut BytesMut) -> Result<(), ChunkError> {
        while !input.is_empty() {
            match &mut self.state {
                State::Size { line } => {
                    let Some(nl) = memchr::memchr(b'\n', input) else {
                        if line.len() + input.len() > MAX_SIZE_LINE {
                            return Err(ChunkError::BadSize(lossy(line)));
                        }
                        line.extend_from_slice(input);
                        return Ok(());
                    };
                    if line.len() + nl > MAX_SIZE_LINE {
                        return Err(ChunkError::BadSize(lossy(line)));
                    }
                    line.extend_from_slice(&input[..nl]);
                    input = &input[nl + 1..];
                    let text = String::from_utf8_lossy(line);
                    let text = text.trim();
                    if text.is_empty() {
                        // Tolerate a stray blank line between chunks.
                        line.clear();
                        continue;
                    }
                    let hex = text.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(hex, 16)
                        .map_err(|_| ChunkError::BadSize(text.chars().take(40).collect()))?;
                    self.state = if size == 0 {
                        State::Done
                    } else {
                        State::Data { remaining: size }
                    };
                }
                State::Data { remaining } => {
                    let n = (*remaining).min(input.len() as u64) as usize;
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::DataEnd { seen_cr: false };
                    }
                }
                State::DataEnd { seen_cr } => match input[0] {
                    b'\r' if !*seen_cr => {
                        *seen_cr = true;
                        input = &input[1..];
                    }
                    b'\n' => {
                        input = &input[1..];
                        self.state = State::Size { line: Vec::new() };
                    }
                    _ => return Err(ChunkError::MissingCrlf),
                },
                State::Done => return Ok(()),
            }
        }
        Ok(())
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned()
}

/// Encode `data` as one chunk (for the simulator).
pub fn encode_chunk(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], step: usize) -> Result<Vec<u8>, ChunkError> {
        let mut d = Dechunker::new();
        let mut out = BytesMut::new();
        for c in input.chunks(step.max(1)) {
            d.decode(c, &mut out)?;
        }
        Ok(out.to_vec())
    }

    #[test]
    fn roundtrip_any_split() {
        let mut enc = Vec::new();
        encode_chunk(b"hello ", &mut enc);
        encode_chunk(&[7u8; 300], &mut enc);
        enc.extend_from_slice(b"1;ext=1\nZ\n0\r\n\r\n");
        let mut want = b"hello ".to_vec();
        want.extend_from_slice(&[7u8; 300]);
        want.push(b'Z');
        for step in [1, 2, 3, 7, 64, 10_000] {
            assert_eq!(decode_all(&enc, step).unwrap(), want, "step {step}");
        }
    }

    #[test]
    fn errors() {
        assert!(matches!(
            decode_all(b"zz\r\n", 1),
            Err(ChunkError::BadSize(_))
        ));
        assert!(matches!(
            decode_all(b"2\r\nabX", 1),
            Err(ChunkError::MissingCrlf)
        ));
        assert!(matches!(
            decode_all(&[b'1'; 1000], 1000),
            Err(ChunkError::BadSize(_))
        ));
        // A huge size is fine as a number; it is never allocated.
        let mut d = Dechunker::new();
        let mut out = BytesMut::new();
        d.decode(b"ffffffffffff\r\nab", &mut out).unwrap();
        assert_eq!(&out[..], b"ab");
        assert!(matches!(
            decode_all(b"fffffffffffffffffffff\r\n", 5),
            Err(ChunkError::BadSize(_))
        ));
    }
}
