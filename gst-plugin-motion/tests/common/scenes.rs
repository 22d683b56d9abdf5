//! Synthetic scenes in packed RGB, shared by the tests and the benchmark: a garden with a
//! house, sensor noise, a cat (scikit-image's `chelsea.png`) that can walk in, and foliage
//! that sways in the wind.

#![allow(dead_code)]

use gst::prelude::*;
use std::path::Path;

pub struct Rgb {
    pub w: usize,
    pub h: usize,
    pub data: Vec<u8>,
}

/// Decodes an image file to packed RGB with GStreamer.
pub fn load_rgb(path: &Path) -> Rgb {
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink name=s",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = p
        .by_name("s")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(10))
        .unwrap_or_else(|| panic!("cannot decode {}", path.display()));
    p.set_state(gst::State::Null).unwrap();
    rgb_of(&sample)
}

/// An RGB sample's pixels, packed (without the rows' padding).
pub fn rgb_of(sample: &gst::Sample) -> Rgb {
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let map = sample.buffer().unwrap().map_readable().unwrap();
    let (w, h) = (info.width() as usize, info.height() as usize);
    let stride = info.stride()[0] as usize;
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        data.extend_from_slice(&map[y * stride..y * stride + w * 3]);
    }
    Rgb { w, h, data }
}

pub fn cat() -> Rgb {
    load_rgb(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/chelsea.png"))
}

fn noise(seed: u64) -> impl FnMut() -> i32 {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 9) as i32 - 4
    }
}

/// A still garden: sky, lawn, a house with a door; `n` seeds the sensor noise.
pub fn garden(w: usize, h: usize, n: u64) -> Rgb {
    let mut data = vec![0u8; w * h * 3];
    let mut rnd = noise(n + 1);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let mut c: [i32; 3] = if fy < 0.35 {
                [150, 180, 215]
            } else {
                [70 + (fx * 30.0) as i32, 120, 60]
            };
            if (0.08..0.45).contains(&fx) && (0.2..0.65).contains(&fy) {
                c = [170, 150, 130];
                if (0.22..0.3).contains(&fx) && (0.42..0.65).contains(&fy) {
                    c = [90, 60, 40];
                }
            }
            let k = rnd();
            let o = (y * w + x) * 3;
            for i in 0..3 {
                data[o + i] = (c[i] + k).clamp(0, 255) as u8;
            }
        }
    }
    Rgb { w, h, data }
}

/// Pastes `img` scaled by `scale` with its top-left at (x, y), clipped to the frame.
pub fn paste(dst: &mut Rgb, img: &Rgb, x: i64, y: i64, scale: f32) {
    let (sw, sh) = ((img.w as f32 * scale) as i64, (img.h as f32 * scale) as i64);
    for dy in 0..sh {
        for dx in 0..sw {
            let (tx, ty) = (x + dx, y + dy);
            if tx < 0 || ty < 0 || tx >= dst.w as i64 || ty >= dst.h as i64 {
                continue;
            }
            let sx = ((dx as f32 / scale) as usize).min(img.w - 1);
            let sy = ((dy as f32 / scale) as usize).min(img.h - 1);
            let s = (sy * img.w + sx) * 3;
            let d = (ty as usize * dst.w + tx as usize) * 3;
            dst.data[d..d + 3].copy_from_slice(&img.data[s..s + 3]);
        }
    }
}

/// The garden with a hedge and a tree whose leaves sway with `wind` (0 still, 1 a gale) at
/// time `t` seconds, and a branch shadow moving on the lawn.
pub fn foliage(w: usize, h: usize, n: u64, t: f64, wind: f64) -> Rgb {
    let mut f = garden(w, h, n);
    let mut leaves = noise(7);
    // Leaves: fixed positions and shades, displaced by the wind.
    for i in 0..600 {
        let bx = (leaves().unsigned_abs() as f64 * 97.0 + i as f64 * 37.0) % (w as f64 * 0.45);
        let by = (leaves().unsigned_abs() as f64 * 53.0 + i as f64 * 11.0) % (h as f64 * 0.6);
        let (cx0, cy0) = (w as f64 * 0.52 + bx, h as f64 * 0.05 + by);
        let phase = i as f64 * 0.7;
        let sway = wind * (8.0 + 4.0 * (phase * 0.3).sin());
        let cx = cx0 + sway * (t * 2.1 + phase).sin();
        let cy = cy0 + sway * 0.4 * (t * 2.9 + phase).cos();
        let shade = 60 + (i % 7) * 15;
        let r = 5.0 + (i % 4) as f64;
        for y in (cy - r) as i64..=(cy + r) as i64 {
            for x in (cx - r * 1.6) as i64..=(cx + r * 1.6) as i64 {
                if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
                    continue;
                }
                let (dx, dy) = ((x as f64 - cx) / 1.6, y as f64 - cy);
                if dx * dx + dy * dy <= r * r {
                    let o = (y as usize * w + x as usize) * 3;
                    f.data[o] = (shade / 3) as u8;
                    f.data[o + 1] = shade as u8;
                    f.data[o + 2] = (shade / 4) as u8;
                }
            }
        }
    }
    // The shadow of a branch, swaying across the lawn.
    let sx = w as f64 * (0.55 + 0.08 * wind * (t * 1.3).sin());
    for y in (h as f64 * 0.7) as usize..h {
        for x in 0..w {
            let d = x as f64 - (sx + (y as f64 - h as f64 * 0.7) * 0.5);
            if d.abs() < w as f64 * 0.03 {
                let o = (y * w + x) * 3;
                for i in 0..3 {
                    f.data[o + i] = (f.data[o + i] as f64 * 0.55) as u8;
                }
            }
        }
    }
    f
}

/// `appsrc` caps for these frames.
pub fn caps(w: usize, h: usize, fps: u32) -> gst::Caps {
    gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, w as u32, h as u32)
        .fps(gst::Fraction::new(fps as i32, 1))
        .build()
        .unwrap()
        .to_caps()
        .unwrap()
}

/// A buffer for frame `n` at `fps`, packed RGB rows padded to GStreamer's 4-byte stride.
pub fn buffer(f: &Rgb, n: u64, fps: u32) -> gst::Buffer {
    let stride = (f.w * 3).div_ceil(4) * 4;
    let mut v = vec![0u8; stride * f.h];
    for y in 0..f.h {
        v[y * stride..y * stride + f.w * 3]
            .copy_from_slice(&f.data[y * f.w * 3..(y + 1) * f.w * 3]);
    }
    let mut b = gst::Buffer::from_mut_slice(v);
    {
        let b = b.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(
            n * 1_000_000_000 / fps as u64,
        ));
        b.set_duration(gst::ClockTime::from_nseconds(1_000_000_000 / fps as u64));
    }
    b
}
