//! Recordings as a player wants them, without GStreamer and without re-encoding.
//!
//! - [`segment::parse`] reads one fragmented MP4 segment as `ringrecorder` writes it
//!   (`moov` with `mvex`, then `moof` + `mdat` pairs, one a second): its tracks, and per
//!   sample the decode time, duration, size, file offset and key-frame flag. A file cut
//!   short by a crash reads up to its last complete fragment. Every length comes from the
//!   file and is checked against the file's size and fixed bounds before anything is
//!   allocated: this is the code that reads what the disk holds, fuzzed
//!   (`fuzz/fuzz_targets/mp4_export.rs`).
//! - [`segment::Segment::timeline`] gives the recorded duration and the gaps inside a
//!   segment (a camera outage shorter than a segment continues the same file after a
//!   jump in its timestamps), for the recordings index.
//! - [`export::build`] selects a wall-clock range from consecutive segments, from the key
//!   frame at or before its start, and lays out one progressive MP4 (`moov` first, then
//!   one `mdat`) whose edit list starts playback at the requested time. The result is a
//!   list of pieces: the header in memory and byte ranges of the segment files. Its size
//!   is known before a byte is sent, so an HTTP server can answer `Range` requests on it
//!   and stream it with bounded memory.

pub mod bmff;
pub mod export;
pub mod segment;

pub use export::{build, Export, Input, Piece};
pub use segment::{parse, Segment, Source};

/// What went wrong reading a segment or building an export.
#[derive(Debug)]
pub enum Error {
    Io(std::io::Error),
    /// The file is not what ringrecorder writes, or is damaged before its first fragment.
    Format(String),
    /// Nothing to export: no recorded frame in the range.
    Empty,
    /// A bound was hit (too many samples for one export, a box larger than allowed).
    TooLarge(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "read error: {e}"),
            Error::Format(m) => write!(f, "not a readable MP4 segment: {m}"),
            Error::Empty => f.write_str("no recorded video in that range"),
            Error::TooLarge(m) => write!(f, "too large: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}
