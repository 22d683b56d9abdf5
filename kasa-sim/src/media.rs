//! The simulator's media: a real H.264 clip encoded once with x264enc, and G.711 mu-law.

use bytes::Bytes;
use gst::prelude::*;
use kasa_protocol::h264::AccessUnitInfo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// One encoded access unit.
#[derive(Clone, Debug)]
pub struct Frame {
    pub data: Bytes,
    pub key: bool,
}

/// A loopable clip: starts with SPS+PPS+IDR, GOP of `fps * gop_seconds` frames.
#[derive(Clone, Debug)]
pub struct Clip {
    pub frames: Arc<Vec<Frame>>,
    pub fps: u32,
    pub width: u32,
    pub height: u32,
}

/// What to encode.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClipSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub gop_seconds: u32,
    pub seconds: u32,
    /// `videotestsrc` properties.
    pub pattern: String,
}

static CLIPS: OnceLock<Mutex<HashMap<ClipSpec, Clip>>> = OnceLock::new();

/// Encode (or reuse) a clip: one IDR every `gop_seconds` (Kasa cameras: ~15 fps, ~2 s
/// GOP, SPS/PPS only with IDRs).
pub fn clip(spec: &ClipSpec) -> Result<Clip, String> {
    let cache = CLIPS.get_or_init(Default::default);
    if let Some(c) = cache.lock().unwrap().get(spec) {
        return Ok(c.clone());
    }
    let c = encode(spec)?;
    cache.lock().unwrap().insert(spec.clone(), c.clone());
    Ok(c)
}

fn encode(spec: &ClipSpec) -> Result<Clip, String> {
    let ClipSpec {
        width,
        height,
        fps,
        seconds,
        ..
    } = *spec;
    let pattern = spec.pattern.replace(['!', '\''], "");
    gst::init().map_err(|e| e.to_string())?;
    // `file=PATH seconds=N [hold=H]`: the first N seconds of a video file (a real scene,
    // e.g. opencv-doc's vtest.avi with people walking) instead of a test pattern, then for
    // H seconds the place without the people (the scene goes quiet: motion events end).
    let mut file = None;
    let mut seconds = seconds;
    let mut hold = 0;
    if pattern.starts_with("file=") {
        for w in pattern.split_whitespace() {
            if let Some(f) = w.strip_prefix("file=") {
                file = Some(f.to_string());
            } else if let Some(v) = w.strip_prefix("seconds=") {
                seconds = v
                    .parse()
                    .map_err(|_| format!("bad seconds in {pattern:?}"))?;
            } else if let Some(v) = w.strip_prefix("hold=") {
                hold = v.parse().map_err(|_| format!("bad hold in {pattern:?}"))?;
            }
        }
    }
    if let (Some(f), true) = (&file, hold > 0) {
        return encode_held(f, spec, seconds, hold);
    }
    let n = fps * seconds;
    let source = match &file {
        Some(f) => {
            format!("filesrc location=\"{f}\" ! decodebin ! videoconvert ! videoscale ! videorate")
        }
        None => format!("videotestsrc num-buffers={n} {pattern}"),
    };
    // x264enc needs I420 upstream, or it emits High 4:4:4 that many decoders refuse.
    let desc = format!(
        "{source} ! video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 \
         ! {} ! appsink name=sink sync=false",
        encoder(spec)
    );
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| format!("simulator encoder pipeline: {e} (x264enc comes with gstreamer1.0-plugins-ugly, videotestsrc with gstreamer1.0-plugins-base)"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let mut frames = Vec::with_capacity(n as usize);
    while frames.len() < n as usize {
        let Ok(sample) = sink.pull_sample() else {
            break;
        };
        let buf = sample.buffer().unwrap();
        let map = buf.map_readable().unwrap();
        let data = Bytes::copy_from_slice(&map);
        let info = AccessUnitInfo::of(&data);
        frames.push(Frame {
            data,
            key: info.idr,
        });
    }
    let _ = pipeline.set_state(gst::State::Null);
    if frames.len() != n as usize
        || !frames
            .first()
            .map(|f| AccessUnitInfo::of(&f.data).is_decodable_start())
            .unwrap_or(false)
    {
        return Err(format!(
            "encoder produced {} frames, expected {n} starting with SPS+PPS+IDR",
            frames.len()
        ));
    }
    Ok(Clip {
        frames: Arc::new(frames),
        fps,
        width,
        height,
    })
}

/// x264enc settings of every clip: the camera-like stream the simulators send.
fn encoder(spec: &ClipSpec) -> String {
    format!(
        "x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max={} bitrate={} \
         ! video/x-h264,stream-format=byte-stream,alignment=au,profile=main",
        spec.fps * spec.gop_seconds,
        (spec.width * spec.height / 1000).clamp(200, 4000),
    )
}

/// `seconds` of `file`, then its still background for `hold` seconds: decoded by one
/// pipeline, fed frame by frame (then the background again and again) into an encoding
/// one.
fn encode_held(file: &str, spec: &ClipSpec, seconds: u32, hold: u32) -> Result<Clip, String> {
    let ClipSpec {
        width, height, fps, ..
    } = *spec;
    let raw_caps =
        format!("video/x-raw,format=I420,width={width},height={height},framerate={fps}/1");
    let decode = gst::parse::launch(&format!(
        "filesrc location=\"{file}\" ! decodebin ! videoconvert ! videoscale ! videorate ! {raw_caps} ! appsink name=raw sync=false max-buffers=4"
    ))
    .map_err(|e| format!("simulator decoder pipeline: {e}"))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline".to_string())?;
    let encode = gst::parse::launch(&format!(
        "appsrc name=src format=time caps={raw_caps} ! {} ! appsink name=sink sync=false",
        encoder(spec)
    ))
    .map_err(|e| format!("simulator encoder pipeline: {e}"))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline".to_string())?;
    let raw = decode
        .by_name("raw")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let src = encode
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let sink = encode
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    encode
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    decode
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let n = (fps * (seconds + hold)) as usize;
    let collector = std::thread::spawn(move || {
        let mut frames = Vec::with_capacity(n);
        while let Ok(sample) = sink.pull_sample() {
            let map = sample.buffer().unwrap().map_readable().unwrap();
            let data = Bytes::copy_from_slice(&map);
            let key = AccessUnitInfo::of(&data).idr;
            frames.push(Frame { data, key });
        }
        frames
    });
    // The quiet picture: the pixel-wise median of frames sampled across the footage,
    // which keeps what stands still (the place) and loses what moves (the people).
    let footage = u64::from(fps * seconds);
    let every = (footage / 15).max(1);
    let mut samples: Vec<Vec<u8>> = Vec::new();
    let mut last: Option<gst::Buffer> = None;
    for i in 0..n as u64 {
        if i < footage {
            if let Ok(s) = raw.pull_sample() {
                last = s.buffer_owned();
                if i % every == 0 {
                    if let Some(m) = last.as_ref().and_then(|b| b.map_readable().ok()) {
                        samples.push(m.to_vec());
                    }
                }
            }
        } else if i == footage && !samples.is_empty() {
            last = Some(gst::Buffer::from_mut_slice(median(&samples)));
            samples.clear();
        }
        let Some(b) = &last else { break };
        let mut b = b.copy();
        {
            let b = b.make_mut();
            b.set_pts(gst::ClockTime::SECOND.mul_div_floor(i, u64::from(fps)));
            b.set_duration(gst::ClockTime::SECOND.mul_div_floor(1, u64::from(fps)));
        }
        if src.push_buffer(b).is_err() {
            break;
        }
    }
    let _ = src.end_of_stream();
    let frames = collector.join().map_err(|_| "encoder thread failed")?;
    let _ = decode.set_state(gst::State::Null);
    let _ = encode.set_state(gst::State::Null);
    if frames.len() != n
        || !frames
            .first()
            .is_some_and(|f| AccessUnitInfo::of(&f.data).is_decodable_start())
    {
        return Err(format!(
            "{file}: {} frames encoded, expected {n}",
            frames.len()
        ));
    }
    Ok(Clip {
        frames: Arc::new(frames),
        fps,
        width,
        height,
    })
}

/// Byte by byte, the median of equally long frames.
fn median(frames: &[Vec<u8>]) -> Vec<u8> {
    let len = frames.iter().map(Vec::len).min().unwrap_or(0);
    let mut column = vec![0u8; frames.len()];
    (0..len)
        .map(|i| {
            for (c, f) in column.iter_mut().zip(frames) {
                *c = f[i];
            }
            let mid = column.len() / 2;
            *column.select_nth_unstable(mid).1
        })
        .collect()
}

/// Encode one linear 16-bit sample as G.711 mu-law.
pub fn linear_to_mulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while s & mask == 0 && exponent > 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// 60 ms of a 440 Hz tone at 8 kHz as mu-law (480 bytes), continuing from sample `start`.
pub fn tone_part(start: u64) -> Vec<u8> {
    (0..480u64)
        .map(|i| {
            let t = (start + i) as f64 / 8000.0;
            linear_to_mulaw((f64::sin(2.0 * std::f64::consts::PI * 440.0 * t) * 8000.0) as i16)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_keeps_what_stands_still() {
        // A bright dot moving across a grey row: the median is the grey row.
        let frames: Vec<Vec<u8>> = (0..5)
            .map(|k| (0..5).map(|i| if i == k { 255 } else { 100 }).collect())
            .collect();
        assert_eq!(median(&frames), vec![100; 5]);
    }

    #[test]
    fn mulaw_known_values() {
        assert_eq!(linear_to_mulaw(0), 0xff);
        assert_eq!(linear_to_mulaw(-1), 0x7f);
        assert_eq!(linear_to_mulaw(32767), 0x80);
        assert_eq!(linear_to_mulaw(-32768), 0x00);
    }
}
