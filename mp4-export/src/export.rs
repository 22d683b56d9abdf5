//! One progressive MP4 of a wall-clock range, assembled from consecutive segments.
//!
//! ```text
//! ftyp │ moov (one video and one audio track; sample tables; edit lists) │ mdat header │
//!      chunk, chunk, ...   ← byte ranges of the segment files, in time order
//! ```
//!
//! - Video starts at the key frame at or before the requested start; the edit list
//!   starts playback at the requested start itself, so the file's duration is the range
//!   asked for (within a frame), and it still decodes from its first frame.
//! - Each sample keeps its wall-clock place: a gap between segments, or inside one, is
//!   the previous frame held for the length of the gap, and the gaps are reported in
//!   [`Export::missing`].
//! - Nothing is decoded or re-encoded; the segments' sample descriptions (`avc1` with its
//!   SPS/PPS, `mp4a`) are copied, several when the camera's settings changed.
//! - The size and the place of every byte are known before the first is sent.

use crate::bmff::Writer;
use crate::segment::{Kind, Sample, Segment};
use crate::Error;

/// Samples in one export at most (both tracks): about 24 h of a 15 fps camera with audio.
pub const MAX_EXPORT_SAMPLES: usize = 2_500_000;

/// A segment and where it sits on the wall clock.
pub struct Input<'a> {
    /// Wall-clock time (Unix seconds) of the segment's time 0, its first frame.
    pub start: f64,
    pub segment: &'a Segment,
    /// The caller's number for the segment's file: [`Piece::File`] refers to it.
    pub file: usize,
}

/// A part of the output file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Bytes of [`Export::header`].
    Header { offset: u64, len: u64 },
    /// Bytes of the caller's file number `file`.
    File { file: usize, offset: u64, len: u64 },
}

/// The assembled file.
#[derive(Debug)]
pub struct Export {
    /// `ftyp`, `moov` and the `mdat` header.
    pub header: Vec<u8>,
    /// The media data after the header: (file, offset, length), in output order.
    pub data: Vec<(usize, u64, u64)>,
    /// Start of each `data` entry in the output.
    starts: Vec<u64>,
    /// Total size in bytes.
    pub size: u64,
    /// Wall-clock start and end of what plays.
    pub start: f64,
    pub end: f64,
    /// Parts of the requested range without recorded video (wall clock, from, to).
    pub missing: Vec<(f64, f64)>,
    pub video_frames: usize,
    pub audio_frames: usize,
}

impl Export {
    /// The pieces covering `len` bytes from `offset` (clamped to the file).
    pub fn pieces(&self, offset: u64, len: u64) -> Vec<Piece> {
        let end = offset.saturating_add(len).min(self.size);
        let mut out = Vec::new();
        let mut pos = offset;
        let hlen = self.header.len() as u64;
        if pos < hlen && pos < end {
            let n = hlen.min(end) - pos;
            out.push(Piece::Header {
                offset: pos,
                len: n,
            });
            pos += n;
        }
        if pos >= end {
            return out;
        }
        let mut i = match self.starts.binary_search(&pos) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        while pos < end && i < self.data.len() {
            let (file, off, l) = self.data[i];
            let within = pos - self.starts[i];
            let n = (l - within).min(end - pos);
            out.push(Piece::File {
                file,
                offset: off + within,
                len: n,
            });
            pos += n;
            i += 1;
        }
        out
    }
}

/// A selected sample and where it comes from.
#[derive(Clone, Copy)]
struct Sel {
    /// Wall-clock decode time.
    w: f64,
    s: Sample,
    input: usize,
    /// 1-based description index in the output track.
    desc: u32,
    /// Source timescale.
    ts: u32,
}

struct OutTrack {
    kind: Kind,
    timescale: u32,
    hdlr: Vec<u8>,
    media_header: Vec<u8>,
    descriptions: Vec<Vec<u8>>,
    width: u32,
    height: u32,
    samples: Vec<Sel>,
}

fn first_track(seg: &Segment, kind: Kind) -> Option<&crate::segment::Track> {
    seg.tracks.iter().find(|t| t.kind == kind)
}

/// The samples of `kind` from every input with `keep(wall time, sample)`, in time order,
/// each later than the one before (segments that overlap by a few milliseconds).
///
/// Descriptions are compared without their `btrt` box: the muxer writes each segment's
/// own bit rates there, so every segment of one unchanged stream would otherwise count
/// as a new description, and an export of more than 16 segments was refused.
fn collect(
    inputs: &[Input],
    order: &[usize],
    kind: Kind,
    mut keep: impl FnMut(f64, &Sample) -> bool,
    budget: &mut usize,
) -> Result<Option<OutTrack>, Error> {
    let mut out: Option<OutTrack> = None;
    let mut last = f64::NEG_INFINITY;
    for &i in order {
        let Some(t) = first_track(inputs[i].segment, kind) else {
            continue;
        };
        let ts = f64::from(t.timescale);
        let o = out.get_or_insert_with(|| OutTrack {
            kind,
            timescale: t.timescale,
            hdlr: t.hdlr.clone(),
            media_header: t.media_header.clone(),
            descriptions: Vec::new(),
            width: t.width,
            height: t.height,
            samples: Vec::new(),
        });
        // Output description index of each of this track's descriptions.
        let mut map = Vec::with_capacity(t.descriptions.len());
        for d in &t.descriptions {
            let key = without_btrt(d, kind);
            let idx = match o
                .descriptions
                .iter()
                .position(|x| without_btrt(x, kind) == key)
            {
                Some(p) => p,
                None => {
                    if o.descriptions.len() >= crate::segment::MAX_DESCRIPTIONS {
                        return Err(Error::TooLarge("too many sample descriptions".into()));
                    }
                    o.descriptions.push(d.clone());
                    o.descriptions.len() - 1
                }
            };
            map.push(idx as u32 + 1);
        }
        for s in &t.samples {
            let w = inputs[i].start + s.dts as f64 / ts;
            if w <= last || !keep(w, s) {
                continue;
            }
            if *budget == 0 {
                return Err(Error::TooLarge(format!(
                    "more than {MAX_EXPORT_SAMPLES} samples: ask for a shorter range"
                )));
            }
            *budget -= 1;
            last = w;
            o.samples.push(Sel {
                w,
                s: *s,
                input: i,
                desc: map.get(s.desc as usize - 1).copied().unwrap_or(1),
                ts: t.timescale,
            });
        }
    }
    Ok(out.filter(|o| !o.samples.is_empty()))
}

/// The range `[start, end)` (Unix seconds) of `inputs` as one MP4. Gaps longer than `gap`
/// seconds are reported in [`Export::missing`].
pub fn build(inputs: &[Input], start: f64, end: f64, gap: f64) -> Result<Export, Error> {
    if start.is_nan() || end.is_nan() || start >= end {
        return Err(Error::Empty);
    }
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by(|a, b| inputs[*a].start.total_cmp(&inputs[*b].start));
    // The key frame to start from: the last one at or before `start` with no gap between
    // it and `start`, else the first one after `start`.
    let mut key: Option<f64> = None;
    let mut first_after: Option<f64> = None;
    let mut last = f64::NEG_INFINITY;
    'scan: for &i in &order {
        let Some(t) = first_track(inputs[i].segment, Kind::Video) else {
            continue;
        };
        let ts = f64::from(t.timescale);
        for s in &t.samples {
            let w = inputs[i].start + s.dts as f64 / ts;
            if w <= last {
                continue;
            }
            if w - last > gap && w > start + 1e-6 {
                // A gap reaches past `start`: the key frame before it does not lead there.
                if last <= start + 1e-6 {
                    key = None;
                }
            }
            last = w;
            if !s.sync {
                continue;
            }
            if w <= start + 1e-6 {
                key = Some(w);
            } else if w < end {
                first_after = Some(w);
                break 'scan;
            } else {
                break 'scan;
            }
        }
    }
    // A key frame before `start` counts only if the recording still runs at `start`.
    if key.is_some() && last + gap < start && first_after.is_none() {
        key = None;
    }
    let from = key.or(first_after).ok_or(Error::Empty)?;
    let mut budget = MAX_EXPORT_SAMPLES;
    let video = collect(
        inputs,
        &order,
        Kind::Video,
        |w, _| w >= from - 1e-9 && w < end,
        &mut budget,
    )?
    .ok_or(Error::Empty)?;
    // What plays: from the requested start (or the first frame, when the recording
    // begins later) to the requested end (or the end of the last frame).
    let vts = f64::from(video.timescale);
    let normal = {
        let mut d: Vec<f64> = video
            .samples
            .windows(2)
            .take(1000)
            .map(|w| w[1].w - w[0].w)
            .collect();
        if d.is_empty() {
            video
                .samples
                .first()
                .map_or(0.04, |s| f64::from(s.s.duration) / f64::from(s.ts))
        } else {
            let mid = d.len() / 2;
            *d.select_nth_unstable_by(mid, f64::total_cmp).1
        }
    };
    let first_w = video.samples[0].w;
    let last_w = video.samples.last().map_or(first_w, |s| s.w);
    let play_start = start.max(first_w);
    let play_end = end.min(last_w + normal);
    if play_end <= play_start {
        return Err(Error::Empty);
    }
    // Audio frames decode on their own: from the start of play.
    let audio = collect(
        inputs,
        &order,
        Kind::Audio,
        |w, _| w >= play_start - 1e-6 && w < end,
        &mut budget,
    )?;
    // Unrecorded parts of the range.
    let mut missing = Vec::new();
    if first_w - start > gap {
        missing.push((start, first_w));
    }
    for w in video.samples.windows(2) {
        if w[1].w - w[0].w > gap {
            missing.push(((w[0].w + normal).max(start), w[1].w));
        }
    }
    if end - (last_w + normal) > gap {
        missing.push((last_w + normal, end));
    }
    // The video from the key frame before the start is presented from the start: the
    // edit list begins that far (the lead) into the media, so the frames before the start
    // decode but are not shown. Browsers (FFmpeg's demuxer), VLC and ISO players follow
    // it. GStreamer 1.22's qtdemux ends playback early by the lead (it compares media
    // time with the movie's duration); making the edit longer to suit it would make the
    // file report a longer duration everywhere else, so the file follows the standard.
    let lead = ((play_start - first_w) * vts).round().max(0.0) as i64;
    let tracks: Vec<&OutTrack> = std::iter::once(&video).chain(audio.as_ref()).collect();
    let layout = Layout::new(&tracks, normal, gap);
    let edits: Vec<Vec<(f64, i64)>> = tracks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let t0 = t.samples[0].w;
            let cts0 = i64::from(t.samples[0].s.cts) * i64::from(t.timescale)
                / i64::from(t.samples[0].ts.max(1));
            if i == 0 {
                vec![(play_end - play_start, cts0 + lead)]
            } else if t0 > play_start + 0.5 / vts {
                // Starts later (audio a moment after the video): an empty edit first.
                vec![(t0 - play_start, -1), (play_end - t0, cts0)]
            } else {
                vec![(play_end - play_start, cts0)]
            }
        })
        .collect();
    // The header's length does not depend on the offsets in it (co64 entries are fixed
    // size): build it once to measure, once for real.
    let data_len: u64 = layout.chunks.iter().map(|c| c.len).sum();
    let mdat_header = if data_len + 8 <= u64::from(u32::MAX) {
        8
    } else {
        16
    };
    let probe = write_header(&tracks, &layout, &edits, 0, data_len, mdat_header);
    let base = probe.len() as u64;
    let header = write_header(&tracks, &layout, &edits, base, data_len, mdat_header);
    debug_assert_eq!(header.len() as u64, base);
    let mut data: Vec<(usize, u64, u64)> = Vec::new();
    for c in &layout.chunks {
        let file = inputs[c.input].file;
        match data.last_mut() {
            Some((f, o, l)) if *f == file && *o + *l == c.offset => *l += c.len,
            _ => data.push((file, c.offset, c.len)),
        }
    }
    let mut starts = Vec::with_capacity(data.len());
    let mut pos = base;
    for (_, _, l) in &data {
        starts.push(pos);
        pos += l;
    }
    Ok(Export {
        header,
        data,
        starts,
        size: pos,
        start: play_start,
        end: play_end,
        missing,
        video_frames: video.samples.len(),
        audio_frames: audio.as_ref().map_or(0, |a| a.samples.len()),
    })
}

/// A run of samples of one track stored together in one source file.
struct Chunk {
    track: usize,
    first: usize,
    count: usize,
    input: usize,
    offset: u64,
    len: u64,
    desc: u32,
    w: f64,
}

/// Per track: each sample's output decode time and duration; the chunks in file order.
struct Layout {
    times: Vec<Vec<(u64, u32)>>,
    chunks: Vec<Chunk>,
}

impl Layout {
    fn new(tracks: &[&OutTrack], normal: f64, gap: f64) -> Layout {
        let mut times = Vec::new();
        let mut chunks = Vec::new();
        for (ti, t) in tracks.iter().enumerate() {
            let ts = f64::from(t.timescale);
            let t0 = t.samples[0].w;
            let mut v: Vec<(u64, u32)> = Vec::with_capacity(t.samples.len());
            let mut prev: Option<u64> = None;
            for s in &t.samples {
                let mut d = ((s.w - t0) * ts).round().max(0.0) as u64;
                if let Some(p) = prev {
                    d = d.max(p + 1);
                }
                prev = Some(d);
                v.push((d, 0));
            }
            for i in 0..v.len() {
                let dur = if i + 1 < v.len() {
                    v[i + 1].0 - v[i].0
                } else {
                    let s = &t.samples[i];
                    let own = f64::from(s.s.duration) / f64::from(s.ts.max(1));
                    let own = if own > gap || own <= 0.0 {
                        if t.kind == Kind::Video {
                            normal
                        } else {
                            0.0
                        }
                    } else {
                        own
                    };
                    (own * ts).round().max(1.0) as u64
                };
                v[i].1 = dur.min(u64::from(u32::MAX)) as u32;
            }
            times.push(v);
            let mut i = 0;
            while i < t.samples.len() {
                let s = &t.samples[i];
                let mut c = Chunk {
                    track: ti,
                    first: i,
                    count: 1,
                    input: s.input,
                    offset: s.s.offset,
                    len: u64::from(s.s.size),
                    desc: s.desc,
                    w: s.w,
                };
                i += 1;
                while i < t.samples.len() {
                    let n = &t.samples[i];
                    if n.input != c.input
                        || n.desc != c.desc
                        || n.s.offset != c.offset + c.len
                        || c.count >= 1024
                    {
                        break;
                    }
                    c.len += u64::from(n.s.size);
                    c.count += 1;
                    i += 1;
                }
                chunks.push(c);
            }
        }
        // Interleave the tracks by time, so players read the file front to back.
        chunks.sort_by(|a, b| a.w.total_cmp(&b.w).then(a.track.cmp(&b.track)));
        Layout { times, chunks }
    }
}

fn write_header(
    tracks: &[&OutTrack],
    layout: &Layout,
    edits: &[Vec<(f64, i64)>],
    base: u64,
    data_len: u64,
    mdat_header: u64,
) -> Vec<u8> {
    const MOVIE_TS: f64 = 1000.0;
    let mut w = Writer::new();
    w.open(b"ftyp");
    w.bytes(b"isom");
    w.u32(0x200);
    w.bytes(b"isomiso2avc1mp41");
    w.close();
    // Output offset of each chunk.
    let mut chunk_offsets: Vec<Vec<u64>> = vec![Vec::new(); tracks.len()];
    let mut chunk_ranges: Vec<Vec<(usize, usize, u32)>> = vec![Vec::new(); tracks.len()];
    let mut pos = base;
    for c in &layout.chunks {
        chunk_offsets[c.track].push(pos);
        chunk_ranges[c.track].push((c.first, c.count, c.desc));
        pos += c.len;
    }
    // Chunks are sorted by time within a track already (samples are in time order).
    let movie_duration = edits
        .iter()
        .map(|e| {
            e.iter()
                .map(|(d, _)| (d * MOVIE_TS).round().max(0.0) as u64)
                .sum::<u64>()
        })
        .max()
        .unwrap_or(0);
    w.open(b"moov");
    let long = movie_duration > u64::from(u32::MAX);
    w.open_full(b"mvhd", u8::from(long), 0);
    if long {
        w.zeros(16);
        w.u32(MOVIE_TS as u32);
        w.u64(movie_duration);
    } else {
        w.zeros(8);
        w.u32(MOVIE_TS as u32);
        w.u32(movie_duration as u32);
    }
    w.u32(0x0001_0000);
    w.u16(0x0100);
    w.zeros(10);
    w.matrix();
    w.zeros(24);
    w.u32(tracks.len() as u32 + 1);
    w.close();
    for (ti, t) in tracks.iter().enumerate() {
        let times = &layout.times[ti];
        let track_duration = edits[ti]
            .iter()
            .map(|(d, _)| (d * MOVIE_TS).round().max(0.0) as u64)
            .sum::<u64>();
        let media_duration: u64 = times.iter().map(|(_, d)| u64::from(*d)).sum();
        w.open(b"trak");
        let long = track_duration > u64::from(u32::MAX);
        w.open_full(b"tkhd", u8::from(long), 3);
        if long {
            w.zeros(16);
            w.u32(ti as u32 + 1);
            w.zeros(4);
            w.u64(track_duration);
        } else {
            w.zeros(8);
            w.u32(ti as u32 + 1);
            w.zeros(4);
            w.u32(track_duration as u32);
        }
        w.zeros(8);
        w.u16(0);
        w.u16(0);
        w.u16(if t.kind == Kind::Audio { 0x0100 } else { 0 });
        w.zeros(2);
        w.matrix();
        w.u32(t.width);
        w.u32(t.height);
        w.close();
        // Edit list: where playback starts in the media, empty edits for a late start.
        w.open(b"edts");
        let long = edits[ti]
            .iter()
            .any(|(d, m)| (d * MOVIE_TS) as u64 > u64::from(u32::MAX) || *m > i64::from(i32::MAX));
        w.open_full(b"elst", u8::from(long), 0);
        w.u32(edits[ti].len() as u32);
        for (d, m) in &edits[ti] {
            let d = (d * MOVIE_TS).round().max(0.0) as u64;
            if long {
                w.u64(d);
                w.u64(*m as u64);
            } else {
                w.u32(d as u32);
                w.i32(*m as i32);
            }
            w.u16(1);
            w.u16(0);
        }
        w.close();
        w.close();
        w.open(b"mdia");
        let long = media_duration > u64::from(u32::MAX);
        w.open_full(b"mdhd", u8::from(long), 0);
        if long {
            w.zeros(16);
            w.u32(t.timescale);
            w.u64(media_duration);
        } else {
            w.zeros(8);
            w.u32(t.timescale);
            w.u32(media_duration as u32);
        }
        w.u16(0x55c4); // 'und'
        w.u16(0);
        w.close();
        w.bytes(&t.hdlr);
        w.open(b"minf");
        w.bytes(&t.media_header);
        w.open(b"dinf");
        w.open_full(b"dref", 0, 0);
        w.u32(1);
        w.open_full(b"url ", 0, 1);
        w.close();
        w.close();
        w.close();
        w.open(b"stbl");
        w.open_full(b"stsd", 0, 0);
        w.u32(t.descriptions.len() as u32);
        for d in &t.descriptions {
            w.bytes(d);
        }
        w.close();
        // stts: run-length coded durations.
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for (_, d) in times {
            match runs.last_mut() {
                Some((n, x)) if *x == *d => *n += 1,
                _ => runs.push((1, *d)),
            }
        }
        w.open_full(b"stts", 0, 0);
        w.u32(runs.len() as u32);
        for (n, d) in runs {
            w.u32(n);
            w.u32(d);
        }
        w.close();
        // ctts, only when some sample is presented later than it is decoded.
        let cts: Vec<i32> = t
            .samples
            .iter()
            .map(|s| {
                let c = i64::from(s.s.cts) * i64::from(t.timescale) / i64::from(s.ts.max(1));
                c.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
            })
            .collect();
        if cts.iter().any(|c| *c != 0) {
            let negative = cts.iter().any(|c| *c < 0);
            let mut runs: Vec<(u32, i32)> = Vec::new();
            for c in &cts {
                match runs.last_mut() {
                    Some((n, x)) if *x == *c => *n += 1,
                    _ => runs.push((1, *c)),
                }
            }
            w.open_full(b"ctts", u8::from(negative), 0);
            w.u32(runs.len() as u32);
            for (n, c) in runs {
                w.u32(n);
                w.i32(c);
            }
            w.close();
        }
        if t.kind == Kind::Video && t.samples.iter().any(|s| !s.s.sync) {
            let sync: Vec<u32> = t
                .samples
                .iter()
                .enumerate()
                .filter(|(_, s)| s.s.sync)
                .map(|(i, _)| i as u32 + 1)
                .collect();
            w.open_full(b"stss", 0, 0);
            w.u32(sync.len() as u32);
            for s in sync {
                w.u32(s);
            }
            w.close();
        }
        // stsc: chunks with the same count and description share an entry.
        let mut stsc: Vec<(u32, u32, u32)> = Vec::new();
        for (ci, (_, count, desc)) in chunk_ranges[ti].iter().enumerate() {
            if stsc
                .last()
                .is_none_or(|(_, n, d)| *n != *count as u32 || *d != *desc)
            {
                stsc.push((ci as u32 + 1, *count as u32, *desc));
            }
        }
        w.open_full(b"stsc", 0, 0);
        w.u32(stsc.len() as u32);
        for (f, n, d) in stsc {
            w.u32(f);
            w.u32(n);
            w.u32(d);
        }
        w.close();
        w.open_full(b"stsz", 0, 0);
        w.u32(0);
        w.u32(t.samples.len() as u32);
        for s in &t.samples {
            w.u32(s.s.size);
        }
        w.close();
        w.open_full(b"co64", 0, 0);
        w.u32(chunk_offsets[ti].len() as u32);
        for o in &chunk_offsets[ti] {
            w.u64(*o);
        }
        w.close();
        w.close(); // stbl
        w.close(); // minf
        w.close(); // mdia
        w.close(); // trak
    }
    w.close(); // moov
    if mdat_header == 8 {
        w.u32((data_len + 8) as u32);
        w.bytes(b"mdat");
    } else {
        w.u32(1);
        w.bytes(b"mdat");
        w.u64(data_len + 16);
    }
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bmff::Reader;
    use crate::segment::{parse, tests::Fake};

    /// The whole output file.
    fn assemble(e: &Export, files: &[&[u8]]) -> Vec<u8> {
        read(e, files, 0, e.size)
    }

    /// `len` bytes of the output file from `offset`, from its pieces.
    fn read(e: &Export, files: &[&[u8]], offset: u64, len: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for p in e.pieces(offset, len) {
            match p {
                Piece::Header { offset, len } => {
                    out.extend_from_slice(&e.header[offset as usize..(offset + len) as usize])
                }
                Piece::File { file, offset, len } => {
                    out.extend_from_slice(&files[file][offset as usize..(offset + len) as usize])
                }
            }
        }
        out
    }

    /// The output's video track, read back.
    struct Video {
        sizes: Vec<u32>,
        sync: Vec<u32>,
        /// Sum of the stts durations.
        total: u64,
        elst: Vec<(u32, i32)>,
        chunk_offsets: Vec<u64>,
    }

    fn read_video(file: &[u8]) -> Video {
        let mut r = Reader::new(file);
        let mut moov = None;
        while let Some(b) = r.next_box().unwrap() {
            if &b.kind == b"moov" {
                moov = Some(b);
            }
        }
        let trak = moov.unwrap().child(b"trak").unwrap();
        let stbl = trak
            .child(b"mdia")
            .unwrap()
            .child(b"minf")
            .unwrap()
            .child(b"stbl")
            .unwrap();
        let mut z = stbl.child(b"stsz").unwrap().reader();
        z.version_flags().unwrap();
        z.u32().unwrap();
        let n = z.u32().unwrap();
        let sizes = (0..n).map(|_| z.u32().unwrap()).collect();
        let mut s = stbl.child(b"stss").unwrap().reader();
        s.version_flags().unwrap();
        let n = s.u32().unwrap();
        let sync = (0..n).map(|_| s.u32().unwrap()).collect();
        let mut t = stbl.child(b"stts").unwrap().reader();
        t.version_flags().unwrap();
        let n = t.u32().unwrap();
        let mut total = 0u64;
        for _ in 0..n {
            let c = t.u32().unwrap();
            total += u64::from(c) * u64::from(t.u32().unwrap());
        }
        let mut e = trak
            .child(b"edts")
            .unwrap()
            .child(b"elst")
            .unwrap()
            .reader();
        e.version_flags().unwrap();
        let n = e.u32().unwrap();
        let elst = (0..n)
            .map(|_| {
                let d = e.u32().unwrap();
                let m = e.u32().unwrap() as i32;
                e.u32().unwrap();
                (d, m)
            })
            .collect();
        let mut c = stbl.child(b"co64").unwrap().reader();
        c.version_flags().unwrap();
        let n = c.u32().unwrap();
        let chunk_offsets = (0..n).map(|_| c.u64().unwrap()).collect();
        Video {
            sizes,
            sync,
            total,
            elst,
            chunk_offsets,
        }
    }

    #[test]
    fn a_range_across_two_segments_starts_at_a_key_frame_and_plays_the_range() {
        // Two 10 s segments back to back at t = 1000 and 1010, key frames every 2 s.
        let a = Fake::default().build();
        let b = Fake::default().build();
        let (sa, sb) = (parse(a.as_slice()).unwrap(), parse(b.as_slice()).unwrap());
        let inputs = [
            Input {
                start: 1010.0,
                segment: &sb,
                file: 1,
            },
            Input {
                start: 1000.0,
                segment: &sa,
                file: 0,
            },
        ];
        let e = build(&inputs, 1005.0, 1015.0, 1.0).unwrap();
        assert!(e.missing.is_empty(), "{:?}", e.missing);
        assert_eq!((e.start, e.end), (1005.0, 1015.0));
        // From the key frame at 1004 (frame 40 of the first) to 1014.9.
        assert_eq!(e.video_frames, 60 + 50);
        let out = assemble(&e, &[&a, &b]);
        assert_eq!(out.len() as u64, e.size);
        let Video {
            sizes,
            sync,
            total,
            elst,
            chunk_offsets: co,
        } = read_video(&out);
        assert_eq!(sizes.len(), 110);
        assert_eq!(sync, vec![1, 21, 41, 61, 81, 101]);
        assert_eq!(total, 110 * 9000);
        // Playback starts 1 s into the media and lasts the 10 s asked for.
        assert_eq!(elst, vec![(10_000, 90_000)]);
        // The first chunk's bytes are frame 40's.
        assert_eq!(out[co[0] as usize], 40);
        // Ranges: any slice equals the same slice of the whole.
        for (off, len) in [
            (0, 10),
            (5, 3000),
            (e.header.len() as u64 - 3, 500),
            (e.size - 7, 100),
        ] {
            let part = read(&e, &[&a, &b], off, len);
            let end = (off + len).min(e.size) as usize;
            assert_eq!(part, out[off as usize..end], "range {off}+{len}");
        }
    }

    #[test]
    fn gaps_and_unrecorded_ends_are_reported() {
        let a = Fake::default().build();
        let b = Fake::default().build();
        let (sa, sb) = (parse(a.as_slice()).unwrap(), parse(b.as_slice()).unwrap());
        // 5 s of nothing between the segments.
        let inputs = [
            Input {
                start: 1000.0,
                segment: &sa,
                file: 0,
            },
            Input {
                start: 1015.0,
                segment: &sb,
                file: 1,
            },
        ];
        let e = build(&inputs, 995.0, 1030.0, 1.0).unwrap();
        assert_eq!(e.missing.len(), 3, "{:?}", e.missing);
        assert_eq!(e.missing[0], (995.0, 1000.0));
        assert!((e.missing[1].0 - 1010.0).abs() < 1e-6 && e.missing[1].1 == 1015.0);
        assert!((e.missing[2].0 - 1025.0).abs() < 1e-6 && e.missing[2].1 == 1030.0);
        assert_eq!((e.start, e.end), (1000.0, 1025.0));
        let out = assemble(&e, &[&a, &b]);
        let Video {
            sizes, total, elst, ..
        } = read_video(&out);
        assert_eq!(sizes.len(), 200);
        // The last frame before the gap is held through it.
        assert_eq!(total, (25 * 90000) as u64);
        assert_eq!(elst, vec![(25_000, 0)]);
    }

    #[test]
    fn nothing_recorded_is_an_error() {
        let a = Fake::default().build();
        let sa = parse(a.as_slice()).unwrap();
        let inputs = [Input {
            start: 1000.0,
            segment: &sa,
            file: 0,
        }];
        assert!(matches!(
            build(&inputs, 2000.0, 2010.0, 1.0),
            Err(Error::Empty)
        ));
        assert!(matches!(
            build(&inputs, 1005.0, 1005.0, 1.0),
            Err(Error::Empty)
        ));
        assert!(matches!(build(&[], 1005.0, 1006.0, 1.0), Err(Error::Empty)));
    }

    #[test]
    fn audio_is_interleaved_and_complete() {
        let a = Fake::default().build();
        let sa = parse(a.as_slice()).unwrap();
        let inputs = [Input {
            start: 1000.0,
            segment: &sa,
            file: 0,
        }];
        let e = build(&inputs, 1000.0, 1010.0, 1.0).unwrap();
        assert_eq!(e.video_frames, 100);
        assert_eq!(
            e.audio_frames,
            sa.tracks[1].samples.len(),
            "every audio frame of the segment"
        );
        // Video and audio of one fragment are contiguous in the source: one piece per
        // fragment (the moof of the next one lies between them).
        assert_eq!(e.data.len(), 10, "{:?}", &e.data[..e.data.len().min(5)]);
    }
}

/// A sample description (a whole sample entry box) without its `btrt` child, for
/// comparisons; the bytes as they are where they do not parse as expected.
fn without_btrt(d: &[u8], kind: Kind) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    // Box header, SampleEntry (8), then VisualSampleEntry (70) or AudioSampleEntry (20).
    let start = match kind {
        Kind::Video => 8 + 8 + 70,
        Kind::Audio => 8 + 8 + 20,
        Kind::Other => return Cow::Borrowed(d),
    };
    let Some(head) = d.get(..start) else {
        return Cow::Borrowed(d);
    };
    let mut out = head.to_vec();
    let mut i = start;
    while i < d.len() {
        let Some(n) = d
            .get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        else {
            return Cow::Borrowed(d);
        };
        let Some(child) = d.get(i..i.saturating_add(n)).filter(|_| n >= 8) else {
            return Cow::Borrowed(d);
        };
        if &child[4..8] != b"btrt" {
            out.extend_from_slice(child);
        }
        i += n;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod btrt_tests {
    use super::*;

    fn entry(kind: Kind, btrt: u32) -> Vec<u8> {
        let head = match kind {
            Kind::Video => 8 + 8 + 70,
            _ => 8 + 8 + 20,
        };
        let mut d = vec![0u8; head];
        d[4..8].copy_from_slice(if kind == Kind::Video {
            b"avc1"
        } else {
            b"mp4a"
        });
        d.extend_from_slice(&[0, 0, 0, 12, b'a', b'v', b'c', b'C', 1, 2, 3, 4]);
        d.extend_from_slice(&[0, 0, 0, 20, b'b', b't', b'r', b't']);
        d.extend_from_slice(&[0; 4]);
        d.extend_from_slice(&btrt.to_be_bytes());
        d.extend_from_slice(&btrt.to_be_bytes());
        let n = d.len() as u32;
        d[..4].copy_from_slice(&n.to_be_bytes());
        d
    }

    #[test]
    fn descriptions_that_differ_only_in_bit_rate_are_one() {
        for kind in [Kind::Video, Kind::Audio] {
            let (a, b) = (entry(kind, 1000), entry(kind, 2000));
            assert_ne!(a, b);
            assert_eq!(without_btrt(&a, kind), without_btrt(&b, kind));
            let mut c = entry(kind, 1000);
            let at = c.len() - 21;
            c[at] ^= 1; // in avcC
            assert_ne!(without_btrt(&a, kind), without_btrt(&c, kind));
        }
        // Truncated or odd input is compared as it is, without a panic.
        let a = entry(Kind::Video, 1);
        for n in 0..a.len() {
            let _ = without_btrt(&a[..n], Kind::Video);
        }
    }
}
