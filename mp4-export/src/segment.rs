//! One fragmented MP4 segment as ringrecorder (mp4mux `fragment-duration=1000`) writes it:
//! `ftyp`, `moov` (tracks, `mvex`/`trex` defaults), then `moof` + `mdat` pairs. Read with
//! the box headers only: the media data is never read here.

use crate::bmff::{fourcc, header_of, Box as Mp4Box, Reader};
use crate::Error;
use std::io;

/// `moov` is a few KiB for a camera's two tracks; this is far above it.
pub const MAX_MOOV: u64 = 4 << 20;
/// One `moof` (a second of samples, 16 bytes each at most) stays far below this.
pub const MAX_MOOF: u64 = 16 << 20;
/// Samples in one segment at most: an hour of 60 fps video plus audio is ~400,000.
pub const MAX_SAMPLES: usize = 2_000_000;
/// Tracks in one segment at most.
pub const MAX_TRACKS: usize = 16;
/// Sample descriptions per track at most.
pub const MAX_DESCRIPTIONS: usize = 16;

/// Random access to a file's bytes: a [`std::fs::File`] (read with `pread`, so one open
/// file serves many readers) or bytes in memory.
pub trait Source {
    fn len(&self) -> u64;
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Source for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let end = start
            .checked_add(buf.len())
            .filter(|e| *e <= <[u8]>::len(self))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(&self[start..end]);
        Ok(())
    }
}

/// A file and the size it had when it was opened (a segment still being written grows;
/// what is read is what was there).
pub struct FileSource {
    pub file: std::fs::File,
    pub len: u64,
}

impl FileSource {
    pub fn open(path: &std::path::Path) -> io::Result<FileSource> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        Ok(FileSource { file, len })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Video,
    Audio,
    Other,
}

/// One sample (a video access unit, an audio frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Decode time in the track's timescale, from the segment's start.
    pub dts: u64,
    pub duration: u32,
    pub size: u32,
    /// Where its bytes are in the file.
    pub offset: u64,
    /// Composition (presentation) time minus decode time.
    pub cts: i32,
    /// A sync sample (for H.264 from ringrecorder: an IDR or other key frame).
    pub sync: bool,
    /// 1-based index into the track's sample descriptions.
    pub desc: u32,
}

#[derive(Clone, Debug)]
pub struct Track {
    pub id: u32,
    pub kind: Kind,
    pub timescale: u32,
    /// The `hdlr` box, whole.
    pub hdlr: Vec<u8>,
    /// `vmhd`/`smhd`/... whole.
    pub media_header: Vec<u8>,
    /// The sample entries of `stsd` (`avc1`, `mp4a`...), each a whole box.
    pub descriptions: Vec<Vec<u8>>,
    /// 16.16 fixed point, from `tkhd`.
    pub width: u32,
    pub height: u32,
    pub samples: Vec<Sample>,
    defaults: Defaults,
    next_dts: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Defaults {
    desc: u32,
    duration: u32,
    size: u32,
    flags: u32,
}

/// What a segment holds.
#[derive(Clone, Debug)]
pub struct Segment {
    pub tracks: Vec<Track>,
    /// Complete fragments read.
    pub fragments: usize,
    /// The file ends inside a box (a crash, or a segment still being written): what
    /// follows the last complete fragment was left out.
    pub cut_short: bool,
}

/// The recorded span of a segment and the gaps in it, in seconds from its start.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    /// First frame and end of the last one.
    pub start: f64,
    pub end: f64,
    pub frames: usize,
    /// (from, to): no frame in between (a camera outage).
    pub gaps: Vec<(f64, f64)>,
}

const NON_SYNC: u32 = 0x0001_0000;

impl Segment {
    /// The video track (or the first track when there is no video).
    pub fn main_track(&self) -> Option<&Track> {
        self.tracks
            .iter()
            .find(|t| t.kind == Kind::Video)
            .or(self.tracks.first())
    }

    /// The recorded span and the gaps longer than `gap` seconds, from the main track.
    pub fn timeline(&self, gap: f64) -> Option<Timeline> {
        let t = self.main_track()?;
        let first = t.samples.first()?;
        let ts = f64::from(t.timescale);
        let normal = t.typical_duration();
        let mut gaps = Vec::new();
        for w in t.samples.windows(2) {
            let (a, b) = (w[0].dts as f64 / ts, w[1].dts as f64 / ts);
            if b - a > gap {
                gaps.push((a + f64::from(normal) / ts, b));
            }
        }
        let last = t.samples.last()?;
        let mut d = f64::from(last.duration) / ts;
        if d > gap {
            d = f64::from(normal) / ts;
        }
        Some(Timeline {
            start: first.dts as f64 / ts,
            end: last.dts as f64 / ts + d,
            frames: t.samples.len(),
            gaps,
        })
    }
}

impl Track {
    /// The median sample duration: a frame's length, whatever gaps there are.
    pub fn typical_duration(&self) -> u32 {
        let mut d: Vec<u32> = self.samples.iter().take(1000).map(|s| s.duration).collect();
        if d.is_empty() {
            return 0;
        }
        let mid = d.len() / 2;
        *d.select_nth_unstable(mid).1
    }
}

fn read_vec<S: Source + ?Sized>(src: &S, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; len as usize];
    src.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// Reads a segment's tracks and samples (not the media data).
pub fn parse<S: Source + ?Sized>(src: &S) -> Result<Segment, Error> {
    let len = src.len();
    let mut seg = Segment {
        tracks: Vec::new(),
        fragments: 0,
        cut_short: false,
    };
    let mut have_moov = false;
    let mut total = 0usize;
    let mut off = 0u64;
    while off < len {
        let mut head = [0u8; 16];
        let n = (len - off).min(16) as usize;
        src.read_exact_at(&mut head[..n], off)?;
        let Ok((size, kind, hlen)) = header_of(&head[..n]) else {
            seg.cut_short = true;
            break;
        };
        let size = if size == 0 { len - off } else { size };
        if size < hlen as u64 {
            if have_moov {
                seg.cut_short = true;
                break;
            }
            return Err(Error::Format(format!(
                "box {} at {off} has a size of {size}",
                fourcc(&kind)
            )));
        }
        if size > len - off {
            // Torn by a crash, or still being written.
            seg.cut_short = true;
            break;
        }
        match &kind {
            b"moov" => {
                if size > MAX_MOOV {
                    return Err(Error::TooLarge(format!("moov of {size} bytes")));
                }
                let data = read_vec(src, off, size)?;
                let b = Reader::new(&data)
                    .next_box()?
                    .ok_or_else(|| Error::Format("empty moov".into()))?;
                seg.tracks = parse_moov(&b)?;
                have_moov = true;
            }
            b"moof" => {
                if !have_moov {
                    return Err(Error::Format("moof before moov".into()));
                }
                if size > MAX_MOOF {
                    return Err(Error::TooLarge(format!("moof of {size} bytes")));
                }
                let data = read_vec(src, off, size)?;
                let b = Reader::new(&data)
                    .next_box()?
                    .ok_or_else(|| Error::Format("empty moof".into()))?;
                let mut added = Vec::new();
                match parse_moof(&b, off, &mut seg.tracks, &mut added, total) {
                    Ok(()) => {}
                    Err(e) if seg.fragments > 0 => {
                        // A damaged fragment after good ones: keep what came before.
                        let _ = e;
                        seg.cut_short = true;
                        break;
                    }
                    Err(e) => return Err(e),
                }
                // A fragment counts only when all of its data is in the file.
                if added
                    .iter()
                    .any(|(_, s): &(usize, Sample)| s.offset + u64::from(s.size) > len)
                {
                    seg.cut_short = true;
                    break;
                }
                total += added.len();
                for (t, s) in added {
                    seg.tracks[t].next_dts = s.dts + u64::from(s.duration);
                    seg.tracks[t].samples.push(s);
                }
                seg.fragments += 1;
            }
            _ => {}
        }
        off += size;
    }
    if !have_moov {
        return Err(Error::Format("no moov".into()));
    }
    Ok(seg)
}

fn parse_moov(moov: &Mp4Box) -> Result<Vec<Track>, Error> {
    let mut tracks = Vec::new();
    let mut r = moov.reader();
    let mut trex = Vec::new();
    while let Some(b) = r.next_box()? {
        match &b.kind {
            b"trak" => {
                if tracks.len() >= MAX_TRACKS {
                    return Err(Error::TooLarge("more than 16 tracks".into()));
                }
                tracks.push(parse_trak(&b)?);
            }
            b"mvex" => {
                let mut m = b.reader();
                while let Some(x) = m.next_box()? {
                    if &x.kind == b"trex" {
                        let mut t = x.reader();
                        t.version_flags()?;
                        let id = t.u32()?;
                        let d = Defaults {
                            desc: t.u32()?,
                            duration: t.u32()?,
                            size: t.u32()?,
                            flags: t.u32()?,
                        };
                        trex.push((id, d));
                    }
                }
            }
            _ => {}
        }
    }
    for (id, d) in trex {
        if let Some(t) = tracks.iter_mut().find(|t| t.id == id) {
            t.defaults = d;
        }
    }
    if tracks.is_empty() {
        return Err(Error::Format("moov has no track".into()));
    }
    Ok(tracks)
}

fn parse_trak(trak: &Mp4Box) -> Result<Track, Error> {
    let tkhd = trak.child(b"tkhd")?;
    let mut r = tkhd.reader();
    let (version, _) = r.version_flags()?;
    let id = if version == 1 {
        r.skip(16)?;
        let id = r.u32()?;
        r.skip(4 + 8)?;
        id
    } else {
        r.skip(8)?;
        let id = r.u32()?;
        r.skip(4 + 4)?;
        id
    };
    r.skip(8 + 2 + 2 + 2 + 2 + 36)?;
    let width = r.u32()?;
    let height = r.u32()?;
    let mdia = trak.child(b"mdia")?;
    let mdhd = mdia.child(b"mdhd")?;
    let mut r = mdhd.reader();
    let (version, _) = r.version_flags()?;
    r.skip(if version == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?;
    if timescale == 0 {
        return Err(Error::Format(format!("track {id} has a timescale of 0")));
    }
    let hdlr = mdia.child(b"hdlr")?;
    let mut r = hdlr.reader();
    r.skip(8)?;
    let kind = match r.bytes(4)? {
        b"vide" => Kind::Video,
        b"soun" => Kind::Audio,
        _ => Kind::Other,
    };
    let minf = mdia.child(b"minf")?;
    let mut media_header = Vec::new();
    let mut r = minf.reader();
    while let Some(b) = r.next_box()? {
        if matches!(&b.kind, b"vmhd" | b"smhd" | b"nmhd" | b"sthd") {
            media_header = b.whole.to_vec();
            break;
        }
    }
    let stsd = minf.child(b"stbl")?.child(b"stsd")?;
    let mut r = stsd.reader();
    r.version_flags()?;
    let count = r.u32()?;
    let mut descriptions = Vec::new();
    for _ in 0..count {
        let Some(b) = r.next_box()? else { break };
        if descriptions.len() >= MAX_DESCRIPTIONS {
            return Err(Error::TooLarge("too many sample descriptions".into()));
        }
        descriptions.push(b.whole.to_vec());
    }
    if descriptions.is_empty() {
        return Err(Error::Format(format!(
            "track {id} has no sample description"
        )));
    }
    Ok(Track {
        id,
        kind,
        timescale,
        hdlr: hdlr.whole.to_vec(),
        media_header,
        descriptions,
        width,
        height,
        samples: Vec::new(),
        defaults: Defaults {
            desc: 1,
            ..Default::default()
        },
        next_dts: 0,
    })
}

/// The samples of one `moof` at file offset `moof_at`, as (track index, sample).
fn parse_moof(
    moof: &Mp4Box,
    moof_at: u64,
    tracks: &mut [Track],
    out: &mut Vec<(usize, Sample)>,
    before: usize,
) -> Result<(), Error> {
    let mut r = moof.reader();
    // Where the previous track fragment's data ended (the default base of the next).
    let mut data_end = moof_at;
    let mut first_traf = true;
    while let Some(traf) = r.next_box()? {
        if &traf.kind != b"traf" {
            continue;
        }
        let tfhd = traf.child(b"tfhd")?;
        let mut h = tfhd.reader();
        let (_, flags) = h.version_flags()?;
        let track_id = h.u32()?;
        let Some(ti) = tracks.iter().position(|t| t.id == track_id) else {
            return Err(Error::Format(format!("traf of unknown track {track_id}")));
        };
        let mut d = tracks[ti].defaults;
        let base = if flags & 0x1 != 0 {
            h.u64()?
        } else if flags & 0x2_0000 != 0 || first_traf {
            moof_at
        } else {
            data_end
        };
        if flags & 0x2 != 0 {
            d.desc = h.u32()?;
        }
        if flags & 0x8 != 0 {
            d.duration = h.u32()?;
        }
        if flags & 0x10 != 0 {
            d.size = h.u32()?;
        }
        if flags & 0x20 != 0 {
            d.flags = h.u32()?;
        }
        first_traf = false;
        let mut dts = tracks[ti].next_dts;
        let mut tr = traf.reader();
        let mut pos = base;
        while let Some(b) = tr.next_box()? {
            match &b.kind {
                b"tfdt" => {
                    let mut t = b.reader();
                    let (v, _) = t.version_flags()?;
                    dts = if v == 1 {
                        t.u64()?
                    } else {
                        u64::from(t.u32()?)
                    };
                }
                b"trun" => {
                    let mut t = b.reader();
                    let (v, f) = t.version_flags()?;
                    let count = t.u32()? as usize;
                    if f & 0x1 != 0 {
                        let rel = t.u32()? as i32;
                        pos = base
                            .checked_add_signed(i64::from(rel))
                            .ok_or_else(|| Error::Format("data offset before the file".into()))?;
                    }
                    let first_flags = if f & 0x4 != 0 { Some(t.u32()?) } else { None };
                    let per = [0x100, 0x200, 0x400, 0x800]
                        .iter()
                        .filter(|b| f & **b != 0)
                        .count()
                        * 4;
                    if count.saturating_mul(per) > t.remaining()
                        || before + out.len() + count > MAX_SAMPLES
                    {
                        return Err(Error::TooLarge(format!(
                            "trun of {count} samples in {} bytes",
                            t.remaining()
                        )));
                    }
                    for i in 0..count {
                        let duration = if f & 0x100 != 0 { t.u32()? } else { d.duration };
                        let size = if f & 0x200 != 0 { t.u32()? } else { d.size };
                        let mut sflags = if f & 0x400 != 0 { t.u32()? } else { d.flags };
                        if i == 0 {
                            if let Some(ff) = first_flags {
                                sflags = ff;
                            }
                        }
                        let cts = if f & 0x800 != 0 {
                            let c = t.u32()?;
                            if v == 0 {
                                c.min(i32::MAX as u32) as i32
                            } else {
                                c as i32
                            }
                        } else {
                            0
                        };
                        out.push((
                            ti,
                            Sample {
                                dts,
                                duration,
                                size,
                                offset: pos,
                                cts,
                                sync: sflags & NON_SYNC == 0,
                                desc: d.desc.max(1),
                            },
                        ));
                        dts = dts
                            .checked_add(u64::from(duration))
                            .ok_or_else(|| Error::Format("decode time overflows".into()))?;
                        pos = pos
                            .checked_add(u64::from(size))
                            .ok_or_else(|| Error::Format("data offset overflows".into()))?;
                    }
                    data_end = pos;
                }
                _ => {}
            }
        }
        tracks[ti].next_dts = dts;
    }
    for (ti, s) in out.iter() {
        if s.desc as usize > tracks[*ti].descriptions.len() {
            return Err(Error::Format(format!(
                "sample description {} of {}",
                s.desc,
                tracks[*ti].descriptions.len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bmff::Writer;

    /// A fragmented MP4 in the shape mp4mux writes: a video track (timescale 90000) and
    /// an audio track (8000), fragments of `per_frag` video frames at `fps`, a key frame
    /// every `gop` frames. `gap_after` (frame index, seconds) moves later frames forward.
    pub struct Fake {
        pub fps: u32,
        pub frames: u32,
        pub per_frag: u32,
        pub gop: u32,
        pub audio: bool,
        pub gap_after: Option<(u32, f64)>,
    }

    impl Default for Fake {
        fn default() -> Self {
            Fake {
                fps: 10,
                frames: 100,
                per_frag: 10,
                gop: 20,
                audio: true,
                gap_after: None,
            }
        }
    }

    fn trak(w: &mut Writer, id: u32, video: bool) {
        w.open(b"trak");
        w.open_full(b"tkhd", 0, 3);
        w.zeros(8);
        w.u32(id);
        w.zeros(4 + 4 + 8 + 2 + 2);
        w.u16(if video { 0 } else { 0x100 });
        w.zeros(2);
        w.matrix();
        w.u32(if video { 640 << 16 } else { 0 });
        w.u32(if video { 480 << 16 } else { 0 });
        w.close();
        w.open(b"mdia");
        w.open_full(b"mdhd", 0, 0);
        w.zeros(8);
        w.u32(if video { 90000 } else { 8000 });
        w.zeros(4);
        w.u16(0x55c4);
        w.zeros(2);
        w.close();
        w.open_full(b"hdlr", 0, 0);
        w.zeros(4);
        w.bytes(if video { b"vide" } else { b"soun" });
        w.zeros(12);
        w.bytes(b"x\0");
        w.close();
        w.open(b"minf");
        if video {
            w.open_full(b"vmhd", 0, 1);
            w.zeros(8);
        } else {
            w.open_full(b"smhd", 0, 0);
            w.zeros(4);
        }
        w.close();
        w.open(b"stbl");
        w.open_full(b"stsd", 0, 0);
        w.u32(1);
        w.open(if video { b"avc1" } else { b"mp4a" });
        w.zeros(16);
        w.close();
        w.close();
        w.close();
        w.close();
        w.close();
        w.close();
    }

    impl Fake {
        /// The file, and each video frame's payload byte (its index, mod 251).
        pub fn build(&self) -> Vec<u8> {
            let mut w = Writer::new();
            w.open(b"ftyp");
            w.bytes(b"iso6\0\0\0\0iso6mp41");
            w.close();
            w.open(b"moov");
            w.open_full(b"mvhd", 0, 0);
            w.zeros(96);
            w.close();
            trak(&mut w, 1, true);
            if self.audio {
                trak(&mut w, 2, false);
            }
            w.open(b"mvex");
            for id in [1u32, 2] {
                w.open_full(b"trex", 0, 0);
                w.u32(id);
                w.u32(1);
                w.zeros(8);
                w.u32(NON_SYNC);
                w.close();
            }
            w.close();
            w.close();
            let step = 90000 / self.fps;
            let mut frame = 0u32;
            let mut seq = 1;
            let mut adts = 0u64;
            let time_of = |f: u32| -> u64 {
                let mut t = u64::from(f) * u64::from(step);
                if let Some((after, secs)) = self.gap_after {
                    if f > after {
                        t += (secs * 90000.0) as u64;
                    }
                }
                t
            };
            while frame < self.frames {
                let n = self.per_frag.min(self.frames - frame);
                let moof_at = w.buf.len();
                w.open(b"moof");
                w.open_full(b"mfhd", 0, 0);
                w.u32(seq);
                w.close();
                seq += 1;
                // video traf
                w.open(b"traf");
                w.open_full(b"tfhd", 0, 0x2_0000);
                w.u32(1);
                w.close();
                w.open_full(b"tfdt", 1, 0);
                w.u64(time_of(frame));
                w.close();
                w.open_full(b"trun", 0, 0x1 | 0x100 | 0x200 | 0x400);
                w.u32(n);
                let vdata_off_pos = w.buf.len();
                w.u32(0);
                for i in 0..n {
                    let f = frame + i;
                    let next = time_of(f + 1);
                    w.u32((next - time_of(f)) as u32);
                    w.u32(100 + f % 7);
                    w.u32(if f % self.gop == 0 { 0 } else { NON_SYNC });
                }
                w.close();
                w.close();
                // audio traf: 1024-sample frames at 8000 Hz cover the same second.
                let mut na = 0;
                let mut adata_off_pos = 0;
                if self.audio {
                    let end = time_of(frame + n) * 8000 / 90000;
                    while adts + (na as u64) * 1024 < end {
                        na += 1;
                    }
                    w.open(b"traf");
                    w.open_full(b"tfhd", 0, 0x2_0000 | 0x8 | 0x10 | 0x20);
                    w.u32(2);
                    w.u32(1024);
                    w.u32(50);
                    w.u32(0);
                    w.close();
                    w.open_full(b"tfdt", 1, 0);
                    w.u64(adts);
                    w.close();
                    w.open_full(b"trun", 0, 0x1);
                    w.u32(na);
                    adata_off_pos = w.buf.len();
                    w.u32(0);
                    w.close();
                    w.close();
                }
                w.close();
                let mdat_at = w.buf.len();
                w.open(b"mdat");
                let vstart = w.buf.len();
                for i in 0..n {
                    let f = frame + i;
                    let sz = 100 + f % 7;
                    w.buf
                        .extend(std::iter::repeat_n((f % 251) as u8, sz as usize));
                }
                let astart = w.buf.len();
                w.zeros(50 * na as usize);
                w.close();
                let _ = mdat_at;
                let v = (vstart - moof_at) as u32;
                w.buf[vdata_off_pos..vdata_off_pos + 4].copy_from_slice(&v.to_be_bytes());
                if self.audio {
                    let a = (astart - moof_at) as u32;
                    w.buf[adata_off_pos..adata_off_pos + 4].copy_from_slice(&a.to_be_bytes());
                }
                adts += na as u64 * 1024;
                frame += n;
            }
            w.buf
        }
    }

    #[test]
    fn samples_offsets_and_key_frames_are_read() {
        let data = Fake::default().build();
        let seg = parse(data.as_slice()).unwrap();
        assert!(!seg.cut_short);
        assert_eq!(seg.fragments, 10);
        let v = seg.main_track().unwrap();
        assert_eq!(v.kind, Kind::Video);
        assert_eq!(v.width >> 16, 640);
        assert_eq!(v.samples.len(), 100);
        for (i, s) in v.samples.iter().enumerate() {
            assert_eq!(s.dts, i as u64 * 9000);
            assert_eq!(s.sync, i % 20 == 0, "frame {i}");
            let b = data[s.offset as usize];
            assert_eq!(b, (i % 251) as u8, "frame {i} data");
            assert_eq!(s.size, 100 + (i as u32) % 7);
        }
        let a = &seg.tracks[1];
        assert_eq!(a.kind, Kind::Audio);
        assert!(a
            .samples
            .iter()
            .all(|s| s.size == 50 && s.duration == 1024 && s.sync));
        let tl = seg.timeline(1.0).unwrap();
        assert_eq!((tl.start, tl.end, tl.frames), (0.0, 10.0, 100));
        assert!(tl.gaps.is_empty());
    }

    #[test]
    fn a_gap_inside_a_segment_is_found() {
        let data = Fake {
            gap_after: Some((49, 5.0)),
            ..Default::default()
        }
        .build();
        let tl = parse(data.as_slice()).unwrap().timeline(1.0).unwrap();
        assert_eq!(tl.gaps.len(), 1, "{tl:?}");
        let (a, b) = tl.gaps[0];
        assert!((a - 5.0).abs() < 1e-9 && (b - 10.0).abs() < 1e-9, "{tl:?}");
        assert!((tl.end - 15.0).abs() < 1e-9, "{tl:?}");
    }

    #[test]
    fn a_torn_file_reads_up_to_its_last_complete_fragment() {
        let data = Fake::default().build();
        let full = parse(data.as_slice()).unwrap();
        let mut last = usize::MAX;
        for cut in (0..data.len()).rev().step_by(97) {
            match parse(&data[..cut]) {
                Ok(seg) => {
                    let n = seg.main_track().map(|t| t.samples.len()).unwrap_or(0);
                    assert!(n <= last, "more samples in a shorter file");
                    assert_eq!(n % 10, 0, "a partial fragment was read at {cut}");
                    assert!(seg.cut_short || cut == data.len());
                    for s in seg.main_track().unwrap().samples.iter() {
                        assert!(s.offset + u64::from(s.size) <= cut as u64);
                    }
                    assert_eq!(
                        seg.main_track().unwrap().samples[..],
                        full.main_track().unwrap().samples[..n]
                    );
                    last = n;
                }
                Err(_) => assert!(cut < 800, "no moov yet only before {cut}"),
            }
        }
    }

    #[test]
    fn damaged_bytes_never_panic() {
        let data = Fake::default().build();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            let mut d = data.clone();
            for _ in 0..(x % 6 + 1) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % d.len();
                d[i] = (x >> 32) as u8;
            }
            if let Ok(seg) = parse(d.as_slice()) {
                let _ = seg.timeline(1.0);
                let inputs = [crate::Input {
                    start: 0.0,
                    segment: &seg,
                    file: 0,
                }];
                if let Ok(e) = crate::build(&inputs, 0.0, 1e6, 1.0) {
                    let total: u64 = e
                        .pieces(0, e.size)
                        .iter()
                        .map(|p| match p {
                            crate::Piece::Header { len, .. } => *len,
                            crate::Piece::File { offset, len, .. } => {
                                assert!(offset + len <= d.len() as u64);
                                *len
                            }
                        })
                        .sum();
                    assert_eq!(total, e.size);
                }
            }
        }
    }
}
