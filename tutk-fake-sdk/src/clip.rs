//! The fake camera's video: an Annex B H.264 file cut into access units, encoded once
//! with `gst-launch-1.0 ... x264enc` when no file is given.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Frame {
    pub data: Vec<u8>,
    pub key: bool,
}

/// NAL units of an Annex B stream as (start offset of the start code, NAL type, first
/// payload byte).
fn nals(b: &[u8]) -> Vec<(usize, u8, u8)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 < b.len() {
        if b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1 {
            let start = if i > 0 && b[i - 1] == 0 { i - 1 } else { i };
            out.push((start, b[i + 3] & 0x1f, b.get(i + 4).copied().unwrap_or(0)));
            i += 3;
        } else {
            i += 1;
        }
    }
    out
}

/// Cut an Annex B stream into access units: a new one starts at an AUD, SPS, PPS or SEI
/// after a slice, or at a slice whose `first_mb_in_slice` is 0 (its first bit is 1).
pub fn access_units(b: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut cur_start = None;
    let mut has_vcl = false;
    let mut key = false;
    for (off, t, first) in nals(b) {
        let vcl = t == 1 || t == 5;
        let begins = has_vcl && (matches!(t, 6..=9) || (vcl && first & 0x80 != 0));
        if begins {
            if let Some(s) = cur_start {
                out.push(Frame {
                    data: b[s..off].to_vec(),
                    key,
                });
            }
            cur_start = Some(off);
            has_vcl = false;
            key = false;
        }
        cur_start.get_or_insert(off);
        has_vcl |= vcl;
        key |= t == 5;
    }
    if let (Some(s), true) = (cur_start, has_vcl) {
        out.push(Frame {
            data: b[s..].to_vec(),
            key,
        });
    }
    out
}

/// Encode `seconds` of test pattern (cached in `dir` by its parameters).
pub fn encode(
    dir: &Path,
    width: u32,
    height: u32,
    fps: u32,
    gop_seconds: u32,
    seconds: u32,
) -> Result<PathBuf, String> {
    let path = dir.join(format!(
        "clip-{width}x{height}-{fps}fps-gop{gop_seconds}-{seconds}s.h264"
    ));
    if path.exists() {
        return Ok(path);
    }
    // Unique per caller: several threads of one process may encode at once.
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    let out = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(format!(
            "videotestsrc num-buffers={} pattern=ball ! video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 ! x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max={} ! video/x-h264,stream-format=byte-stream,alignment=au,profile=main ! filesink",
            fps * seconds,
            fps * gop_seconds
        ).split(' '))
        .arg(format!("location={}", tmp.display()))
        .output()
        .map_err(|e| format!("gst-launch-1.0: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "encoding the fake camera's clip failed (x264enc is in gstreamer1.0-plugins-ugly): {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_first_slices_and_parameter_sets() {
        let mut b = Vec::new();
        for n in [7u8, 8, 5] {
            b.extend_from_slice(&[0, 0, 0, 1, 0x60 | n, 0x88, 1]);
        }
        b.extend_from_slice(&[0, 0, 1, 0x41, 0x9a, 2]);
        b.extend_from_slice(&[0, 0, 1, 0x41, 0x9a, 3]);
        let aus = access_units(&b);
        assert_eq!(aus.len(), 3);
        assert!(aus[0].key && !aus[1].key && !aus[2].key);
        assert_eq!(aus[0].data.len(), 21);
        assert!(access_units(&[0, 0, 1]).is_empty());
        assert!(access_units(&[]).is_empty());
    }
}
