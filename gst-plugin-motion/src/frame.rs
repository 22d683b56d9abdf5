//! Raw video frames for the detector and for snapshots: a read-only view of a mapped
//! frame in any of the supported layouts, and JPEG snapshots with the object's box drawn.

use crate::nanodet::{Frame, Image};
use gst_video::prelude::*;
use gst_video::VideoFormat as F;
use std::path::Path;

/// The raw formats `objectdetect` reads in place (4:2:0 YUV and packed RGB).
pub const FORMATS: &[F] = &[
    F::I420,
    F::Yv12,
    F::Nv12,
    F::Nv21,
    F::Rgb,
    F::Bgr,
    F::Rgbx,
    F::Bgrx,
    F::Xrgb,
    F::Xbgr,
    F::Rgba,
    F::Bgra,
    F::Argb,
    F::Abgr,
];

/// A read-only view of a mapped frame, or `None` for a format not in [`FORMATS`].
pub fn view<'a>(frame: &'a gst_video::VideoFrameRef<&'a gst::BufferRef>) -> Option<Frame<'a>> {
    let packed = |bpp, r, g, b| {
        Some(Image::Packed {
            data: frame.plane_data(0).ok()?,
            stride: frame.plane_stride()[0] as usize,
            bpp,
            r,
            g,
            b,
        })
    };
    let image = match frame.format() {
        F::I420 | F::Yv12 => Image::I420 {
            y: frame.comp_data(0).ok()?,
            ys: frame.comp_stride(0) as usize,
            u: frame.comp_data(1).ok()?,
            us: frame.comp_stride(1) as usize,
            v: frame.comp_data(2).ok()?,
            vs: frame.comp_stride(2) as usize,
        },
        f @ (F::Nv12 | F::Nv21) => Image::Nv12 {
            y: frame.plane_data(0).ok()?,
            ys: frame.plane_stride()[0] as usize,
            uv: frame.plane_data(1).ok()?,
            uvs: frame.plane_stride()[1] as usize,
            v_first: f == F::Nv21,
        },
        F::Rgb => packed(3, 0, 1, 2)?,
        F::Bgr => packed(3, 2, 1, 0)?,
        F::Rgbx | F::Rgba => packed(4, 0, 1, 2)?,
        F::Bgrx | F::Bgra => packed(4, 2, 1, 0)?,
        F::Xrgb | F::Argb => packed(4, 1, 2, 3)?,
        F::Xbgr | F::Abgr => packed(4, 3, 2, 1)?,
        _ => return None,
    };
    Some(Frame {
        image,
        width: frame.width() as usize,
        height: frame.height() as usize,
    })
}

/// Draws the outline of a box given in fractions of the frame on packed RGB.
pub fn draw_box(rgb: &mut [u8], width: usize, height: usize, b: [f32; 4], color: [u8; 3]) {
    if width == 0 || height == 0 {
        return;
    }
    let px = |v: f32, n: usize| ((v.clamp(0.0, 1.0) * n as f32) as usize).min(n - 1);
    let (x0, y0) = (px(b[0], width), px(b[1], height));
    let (x1, y1) = (px(b[0] + b[2], width), px(b[1] + b[3], height));
    let t = (width.max(height) / 320).max(2);
    let mut put = |x: usize, y: usize| {
        let o = (y * width + x) * 3;
        if let Some(p) = rgb.get_mut(o..o + 3) {
            p.copy_from_slice(&color);
        }
    };
    for k in 0..t {
        for x in x0..=x1 {
            put(x, (y0 + k).min(height - 1));
            put(x, y1.saturating_sub(k));
        }
        for y in y0..=y1 {
            put((x0 + k).min(width - 1), y);
            put(x1.saturating_sub(k), y);
        }
    }
}

/// Writes `sample`'s frame as a JPEG with `bbox` (x, y, w, h in fractions) drawn on it.
pub fn write_snapshot(
    sample: &gst::Sample,
    bbox: Option<[f32; 4]>,
    path: &Path,
) -> Result<(), String> {
    let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
        return Err("the snapshot has no frame".into());
    };
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| e.to_string())?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .map_err(|e| e.to_string())?;
    let view = view(&frame).ok_or("unsupported frame format")?;
    let (w, h) = (view.width, view.height);
    if w > u16::MAX as usize || h > u16::MAX as usize {
        return Err(format!("{w}x{h} is too large for JPEG"));
    }
    let mut rgb = view.to_rgb();
    if let Some(b) = bbox {
        draw_box(&mut rgb, w, h, b, [255, 40, 40]);
    }
    let tmp = path.with_extension("jpg.part");
    let enc = jpeg_encoder::Encoder::new_file(&tmp, 85).map_err(|e| e.to_string())?;
    enc.encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}
