//! NanoDet-g (COCO, 416x416) with `tract-onnx`, without GStreamer: letterboxing a frame of
//! any size and pixel layout into the model's input, decoding its three output scales, and
//! non-maximum suppression. See `models/NOTICE.md` for the model's origin and layout.

use std::fmt;
use tract_onnx::prelude::*;

/// The model shipped with the project, built into the plugin.
pub const MODEL: &[u8] = include_bytes!("../models/nanodet-g-416.onnx");
/// The 80 COCO labels, one a line, index = class id.
pub const LABELS: &str = include_str!("../models/coco80.txt");

/// The input side the model was trained at, in pixels.
pub const SIZE: usize = 416;
const STRIDES: [usize; 3] = [8, 16, 32];
const BINS: usize = 11;
const MEAN_BGR: [f32; 3] = [103.53, 116.28, 123.675];
const STD_BGR: [f32; 3] = [57.375, 57.12, 58.395];
/// Scores below this are never decoded (far below any useful threshold).
const MIN_SCORE: f32 = 0.25;
const NMS_IOU: f32 = 0.5;
/// Detections kept per frame at most.
const MAX_DETECTIONS: usize = 100;

/// The built-in model at one input size: the same NanoDet-g weights run on a smaller square
/// cost less (the work goes with the pixel count) and see small objects worse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Model {
    /// 416x416, the size NanoDet-g was trained at.
    #[default]
    NanodetG416,
    NanodetG320,
    NanodetG256,
    NanodetG224,
}

impl Model {
    /// Every variant, the largest first.
    pub const ALL: &[Model] = &[
        Model::NanodetG416,
        Model::NanodetG320,
        Model::NanodetG256,
        Model::NanodetG224,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Model::NanodetG416 => "nanodet-g-416",
            Model::NanodetG320 => "nanodet-g-320",
            Model::NanodetG256 => "nanodet-g-256",
            Model::NanodetG224 => "nanodet-g-224",
        }
    }

    /// The side of the square input in pixels.
    pub fn side(self) -> usize {
        match self {
            Model::NanodetG416 => 416,
            Model::NanodetG320 => 320,
            Model::NanodetG256 => 256,
            Model::NanodetG224 => 224,
        }
    }
}

impl std::str::FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Model, String> {
        if s == "nanodet-g" {
            return Ok(Model::NanodetG416);
        }
        Model::ALL
            .iter()
            .copied()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Model::ALL.iter().map(|m| m.name()).collect();
                format!("unknown model '{s}' (known: {})", names.join(", "))
            })
    }
}

/// Labels that make up the `animal` group: NanoDet confuses small animals among these.
pub const ANIMALS: &[&str] = &["bird", "cat", "dog", "horse", "sheep", "cow", "bear"];

/// One detected object; the box is in normalised frame coordinates (0-1).
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub class: usize,
    pub label: String,
    pub score: f32,
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl Detection {
    fn iou(&self, o: &Detection) -> f32 {
        let ix = (self.x + self.w).min(o.x + o.w) - self.x.max(o.x);
        let iy = (self.y + self.h).min(o.y + o.h) - self.y.max(o.y);
        if ix <= 0.0 || iy <= 0.0 {
            return 0.0;
        }
        let inter = ix * iy;
        inter / (self.w * self.h + o.w * o.h - inter)
    }
}

/// Why the model could not be used.
#[derive(Debug)]
pub struct ModelError(pub String);

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModelError {}

/// A frame to detect in: 8-bit pixels in one of the layouts below, read in place.
pub enum Image<'a> {
    /// Packed 3 or 4 bytes a pixel; `r`, `g`, `b` are the byte offsets in a pixel.
    Packed {
        data: &'a [u8],
        stride: usize,
        bpp: usize,
        r: usize,
        g: usize,
        b: usize,
    },
    /// Planar Y, U, V at half resolution both ways (I420, YV12).
    I420 {
        y: &'a [u8],
        ys: usize,
        u: &'a [u8],
        us: usize,
        v: &'a [u8],
        vs: usize,
    },
    /// Y plane and interleaved chroma at half resolution (NV12: U first; NV21: V first).
    Nv12 {
        y: &'a [u8],
        ys: usize,
        uv: &'a [u8],
        uvs: usize,
        v_first: bool,
    },
}

/// A frame view with its size.
pub struct Frame<'a> {
    pub image: Image<'a>,
    pub width: usize,
    pub height: usize,
}

fn clamp8(v: f32) -> u8 {
    v.clamp(0.0, 255.0) as u8
}

fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    // BT.601, limited range: what cameras and decoders give.
    let c = 1.164 * (y as f32 - 16.0);
    let d = u as f32 - 128.0;
    let e = v as f32 - 128.0;
    [
        clamp8(c + 1.596 * e),
        clamp8(c - 0.392 * d - 0.813 * e),
        clamp8(c + 2.017 * d),
    ]
}

fn at(data: &[u8], i: usize) -> u8 {
    data.get(i).copied().unwrap_or(0)
}

impl Frame<'_> {
    /// The pixel at (x, y) as RGB; out-of-range reads (a short buffer) give black.
    pub fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        match &self.image {
            Image::Packed {
                data,
                stride,
                bpp,
                r,
                g,
                b,
            } => {
                let o = y * stride + x * bpp;
                [at(data, o + r), at(data, o + g), at(data, o + b)]
            }
            Image::I420 {
                y: yp,
                ys,
                u,
                us,
                v,
                vs,
            } => yuv_to_rgb(
                at(yp, y * ys + x),
                at(u, (y / 2) * us + x / 2),
                at(v, (y / 2) * vs + x / 2),
            ),
            Image::Nv12 {
                y: yp,
                ys,
                uv,
                uvs,
                v_first,
            } => {
                let o = (y / 2) * uvs + (x / 2) * 2;
                let (a, b) = (at(uv, o), at(uv, o + 1));
                let (u, v) = if *v_first { (b, a) } else { (a, b) };
                yuv_to_rgb(at(yp, y * ys + x), u, v)
            }
        }
    }

    /// The whole frame as packed RGB, for snapshots.
    pub fn to_rgb(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.width * self.height * 3);
        for y in 0..self.height {
            for x in 0..self.width {
                out.extend_from_slice(&self.rgb(x, y));
            }
        }
        out
    }
}

/// A rectangle of a frame in pixels: the part given to the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

impl Region {
    /// A square (as far as the frame allows) around the union of `boxes` (normalised
    /// x, y, w, h), grown by a margin of a quarter of its size, and at least `min_side`
    /// pixels a side: the model sees moving objects larger than in the whole frame, and
    /// enough around them to tell what they are. None without boxes.
    pub fn around(
        boxes: &[[f32; 4]],
        width: usize,
        height: usize,
        min_side: usize,
    ) -> Option<Region> {
        let mut boxes = boxes
            .iter()
            .filter(|b| b.iter().all(|v| v.is_finite()))
            .peekable();
        if boxes.peek().is_none() || width == 0 || height == 0 {
            return None;
        }
        let (fw, fh) = (width as f32, height as f32);
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for b in boxes {
            x0 = x0.min(b[0] * fw);
            y0 = y0.min(b[1] * fh);
            x1 = x1.max((b[0] + b[2]) * fw);
            y1 = y1.max((b[1] + b[3]) * fh);
        }
        let side = ((x1 - x0).max(y1 - y0) * 1.25)
            .max(min_side as f32)
            .max(1.0);
        let (w, h) = (side.min(fw), side.min(fh));
        let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        let x = (cx - w / 2.0).clamp(0.0, fw - w);
        let y = (cy - h / 2.0).clamp(0.0, fh - h);
        Some(Region {
            x: x as usize,
            y: y as usize,
            w: (w as usize).clamp(1, width - x as usize),
            h: (h as usize).clamp(1, height - y as usize),
        })
    }
}

/// Where the region sits in the square input: scale and padding, and where the region
/// is in the frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
    /// The region's size in pixels.
    pub width: usize,
    pub height: usize,
    /// The side of the square input.
    pub side: usize,
    /// The region's place and the frame's size, to map boxes back to the frame.
    pub x0: usize,
    pub y0: usize,
    pub frame_width: usize,
    pub frame_height: usize,
}

impl Letterbox {
    /// The whole `width` x `height` frame.
    pub fn new(width: usize, height: usize, side: usize) -> Letterbox {
        Letterbox::region(
            Region {
                x: 0,
                y: 0,
                w: width,
                h: height,
            },
            width,
            height,
            side,
        )
    }

    /// `r` of a `width` x `height` frame.
    pub fn region(r: Region, width: usize, height: usize, side: usize) -> Letterbox {
        let s = side as f32;
        let scale = (s / r.w.max(1) as f32).min(s / r.h.max(1) as f32);
        let (nw, nh) = (r.w as f32 * scale, r.h as f32 * scale);
        Letterbox {
            scale,
            pad_x: ((s - nw) / 2.0).floor(),
            pad_y: ((s - nh) / 2.0).floor(),
            width: r.w,
            height: r.h,
            side,
            x0: r.x,
            y0: r.y,
            frame_width: width,
            frame_height: height,
        }
    }
}

/// The model's input for `frame`: 1x3xSIDExSIDE, BGR, normalised, the frame scaled to fit
/// (aspect kept, bilinear) and centred on black.
pub fn preprocess(frame: &Frame, side: usize) -> (Tensor, Letterbox) {
    preprocess_region(frame, None, side)
}

/// As [`preprocess`], for `region` of the frame (all of it when None).
pub fn preprocess_region(
    frame: &Frame,
    region: Option<Region>,
    side: usize,
) -> (Tensor, Letterbox) {
    let full = Region {
        x: 0,
        y: 0,
        w: frame.width,
        h: frame.height,
    };
    let mut r = region.unwrap_or(full);
    // Within the frame, whatever the caller gave.
    r.x = r.x.min(frame.width.saturating_sub(1));
    r.y = r.y.min(frame.height.saturating_sub(1));
    r.w = r.w.min(frame.width - r.x.min(frame.width));
    r.h = r.h.min(frame.height - r.y.min(frame.height));
    let lb = Letterbox::region(r, frame.width, frame.height, side);
    let plane = side * side;
    let mut data = vec![0f32; 3 * plane];
    for (c, v) in data.chunks_mut(plane).enumerate() {
        v.fill(-MEAN_BGR[c] / STD_BGR[c]);
    }
    if r.w == 0 || r.h == 0 {
        return (
            Tensor::from_shape(&[1, 3, side, side], &data).expect("shape"),
            lb,
        );
    }
    let (maxx, maxy) = (r.w - 1, r.h - 1);
    for oy in 0..side {
        let sy = (oy as f32 + 0.5 - lb.pad_y) / lb.scale - 0.5;
        if sy < -0.5 || sy > maxy as f32 + 0.5 {
            continue;
        }
        let sy = sy.clamp(0.0, maxy as f32);
        let (y0, fy) = (sy.floor() as usize, sy.fract());
        let y1 = (y0 + 1).min(maxy);
        for ox in 0..side {
            let sx = (ox as f32 + 0.5 - lb.pad_x) / lb.scale - 0.5;
            if sx < -0.5 || sx > maxx as f32 + 0.5 {
                continue;
            }
            let sx = sx.clamp(0.0, maxx as f32);
            let (x0, fx) = (sx.floor() as usize, sx.fract());
            let x1 = (x0 + 1).min(maxx);
            let (x0, x1, y0, y1) = (x0 + r.x, x1 + r.x, y0 + r.y, y1 + r.y);
            let (p00, p01) = (frame.rgb(x0, y0), frame.rgb(x1, y0));
            let (p10, p11) = (frame.rgb(x0, y1), frame.rgb(x1, y1));
            let o = oy * side + ox;
            for c in 0..3 {
                // Channel c of BGR is RGB index 2 - c.
                let k = 2 - c;
                let top = p00[k] as f32 * (1.0 - fx) + p01[k] as f32 * fx;
                let bottom = p10[k] as f32 * (1.0 - fx) + p11[k] as f32 * fx;
                let v = top * (1.0 - fy) + bottom * fy;
                data[c * plane + o] = (v - MEAN_BGR[c]) / STD_BGR[c];
            }
        }
    }
    (
        Tensor::from_shape(&[1, 3, side, side], &data).expect("shape"),
        lb,
    )
}

/// The expected value of one side's 11-bin distribution (softmax, then the mean bin).
fn side(bins: &[f32]) -> f32 {
    let max = bins.iter().copied().fold(f32::MIN, f32::max);
    let (mut sum, mut acc) = (0.0, 0.0);
    for (i, b) in bins.iter().enumerate() {
        let e = (b - max).exp();
        sum += e;
        acc += e * i as f32;
    }
    if sum > 0.0 {
        acc / sum
    } else {
        0.0
    }
}

/// Decodes one scale: `scores` is N x 80, `dist` N x 44, N = (416 / stride)^2 cells row by row.
pub fn decode_scale(
    scores: &[f32],
    dist: &[f32],
    stride: usize,
    min_score: f32,
    lb: &Letterbox,
    labels: &[String],
    out: &mut Vec<Detection>,
) {
    let cols = lb.side.div_ceil(stride);
    let classes = labels.len();
    let cells = (scores.len() / classes.max(1)).min(dist.len() / (4 * BINS));
    for cell in 0..cells {
        let row = &scores[cell * classes..(cell + 1) * classes];
        let (class, &score) = row
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("80 classes");
        // NaN scores fail the comparison too.
        if score.partial_cmp(&min_score) == Some(std::cmp::Ordering::Less) || score.is_nan() {
            continue;
        }
        let d = &dist[cell * 4 * BINS..(cell + 1) * 4 * BINS];
        let cx = ((cell % cols) as f32 + 0.5) * stride as f32;
        let cy = ((cell / cols) as f32 + 0.5) * stride as f32;
        let s = stride as f32;
        let (l, t) = (side(&d[0..BINS]) * s, side(&d[BINS..2 * BINS]) * s);
        let (r, b) = (side(&d[2 * BINS..3 * BINS]) * s, side(&d[3 * BINS..]) * s);
        // Back from the letterboxed square to the frame, normalised and clipped.
        let fx = |v: f32| {
            let x = ((v - lb.pad_x) / lb.scale).clamp(0.0, lb.width as f32);
            (x + lb.x0 as f32) / lb.frame_width.max(1) as f32
        };
        let fy = |v: f32| {
            let y = ((v - lb.pad_y) / lb.scale).clamp(0.0, lb.height as f32);
            (y + lb.y0 as f32) / lb.frame_height.max(1) as f32
        };
        let (x0, y0, x1, y1) = (fx(cx - l), fy(cy - t), fx(cx + r), fy(cy + b));
        if x1 <= x0 || y1 <= y0 {
            continue;
        }
        out.push(Detection {
            class,
            label: labels[class].clone(),
            score,
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        });
    }
}

/// Greedy per-class non-maximum suppression, best first.
pub fn nms(mut dets: Vec<Detection>, iou: f32, max: usize) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        if kept.len() >= max {
            break;
        }
        if kept.iter().all(|k| k.class != d.class || k.iou(&d) <= iou) {
            kept.push(d);
        }
    }
    kept
}

type Plan = Arc<TypedSimplePlan>;

/// The loaded model, ready to run. One inference at a time per `Detector`.
pub struct Detector {
    plan: Plan,
    side: usize,
    labels: Vec<String>,
    /// Output index of (scores, distributions) per stride 8, 16, 32.
    outputs: [(usize, usize); 3],
}

impl Detector {
    /// The model built into the plugin, at its training size.
    pub fn builtin() -> Result<Detector, ModelError> {
        Detector::load(Model::default())
    }

    /// The model built into the plugin, at `model`'s input size.
    pub fn load(model: Model) -> Result<Detector, ModelError> {
        Detector::from_bytes(MODEL, model.side())
    }

    /// A NanoDet ONNX file with the same layout (80 classes, 3 scales), run at `side`.
    pub fn from_file(path: &std::path::Path, side: usize) -> Result<Detector, ModelError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ModelError(format!("cannot read model {}: {e}", path.display())))?;
        Detector::from_bytes(&bytes, side)
    }

    /// The model in `bytes`, run at `side` x `side` (a multiple of 32).
    pub fn from_bytes(bytes: &[u8], side: usize) -> Result<Detector, ModelError> {
        let err = |what: &str, e: TractError| ModelError(format!("{what}: {e:#}"));
        let labels: Vec<String> = LABELS.lines().map(|l| l.trim().to_string()).collect();
        let model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(bytes))
            .map_err(|e| err("not an ONNX model", e))?
            .with_input_fact(0, f32::fact([1, 3, side, side]).into())
            .map_err(|e| err("model input", e))?
            .into_optimized()
            .map_err(|e| err("model optimisation", e))?;
        // Tell the outputs apart by shape: [1, cells, 80] scores, [1, cells, 44] distributions.
        let mut outputs = [(usize::MAX, usize::MAX); 3];
        for (i, outlet) in model
            .output_outlets()
            .map_err(|e| err("outputs", e))?
            .iter()
            .enumerate()
        {
            let fact = model.outlet_fact(*outlet).map_err(|e| err("output", e))?;
            let dims: Vec<usize> = fact
                .shape
                .as_concrete()
                .ok_or_else(|| ModelError(format!("output {i} has no fixed shape")))?
                .to_vec();
            let (cells, width) = match dims.as_slice() {
                [1, c, w] => (*c, *w),
                _ => return Err(ModelError(format!("output {i} has shape {dims:?}"))),
            };
            let Some(scale) = STRIDES
                .iter()
                .position(|s| side.div_ceil(*s).pow(2) == cells)
            else {
                return Err(ModelError(format!(
                    "output {i}: {cells} cells fit no stride"
                )));
            };
            if width == labels.len() {
                outputs[scale].0 = i;
            } else if width == 4 * BINS {
                outputs[scale].1 = i;
            } else {
                return Err(ModelError(format!("output {i} has shape {dims:?}")));
            }
        }
        if outputs
            .iter()
            .any(|(a, b)| *a == usize::MAX || *b == usize::MAX)
        {
            return Err(ModelError(
                "the model lacks NanoDet's six outputs (scores and boxes at strides 8, 16, 32)"
                    .into(),
            ));
        }
        let plan = model.into_runnable().map_err(|e| err("model plan", e))?;
        Ok(Detector {
            plan,
            side,
            labels,
            outputs,
        })
    }

    /// The side of the square input.
    pub fn side(&self) -> usize {
        self.side
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Objects in `frame` scoring at least `min_score` (never below 0.25), best first.
    pub fn detect(&self, frame: &Frame, min_score: f32) -> Result<Vec<Detection>, ModelError> {
        self.detect_region(frame, None, min_score)
    }

    /// As [`Detector::detect`], looking at `region` of the frame only (all of it when None);
    /// the boxes are still in whole-frame coordinates.
    pub fn detect_region(
        &self,
        frame: &Frame,
        region: Option<Region>,
        min_score: f32,
    ) -> Result<Vec<Detection>, ModelError> {
        let (input, lb) = preprocess_region(frame, region, self.side);
        self.detect_tensor(input, &lb, min_score)
    }

    /// As [`Detector::detect`], on an input made by [`preprocess`].
    pub fn detect_tensor(
        &self,
        input: Tensor,
        lb: &Letterbox,
        min_score: f32,
    ) -> Result<Vec<Detection>, ModelError> {
        let out = self
            .plan
            .run(tvec!(input.into()))
            .map_err(|e| ModelError(format!("inference failed: {e:#}")))?;
        let min_score = min_score.max(MIN_SCORE);
        let mut dets = Vec::new();
        for (k, (si, di)) in self.outputs.iter().enumerate() {
            let view = |i: usize| {
                out[i]
                    .try_as_plain_ram()
                    .and_then(|v| v.as_slice::<f32>())
                    .map_err(|e| ModelError(format!("output {i}: {e:#}")))
            };
            decode_scale(
                view(*si)?,
                view(*di)?,
                STRIDES[k],
                min_score,
                lb,
                &self.labels,
                &mut dets,
            );
        }
        Ok(nms(dets, NMS_IOU, MAX_DETECTIONS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_centres_a_wide_frame() {
        let lb = Letterbox::new(1920, 1080, 416);
        assert!((lb.scale - 416.0 / 1920.0).abs() < 1e-6);
        assert_eq!(lb.pad_x, 0.0);
        assert_eq!(lb.pad_y, ((416.0 - 1080.0 * lb.scale) / 2.0f32).floor());
    }

    #[test]
    fn the_motion_region_is_a_square_around_the_boxes_within_the_frame() {
        // Two boxes on the left of a 640x480 frame: their union is 64x96 px, grown by a
        // quarter to 120, then to the model's 256.
        let boxes = [[0.05, 0.4, 0.05, 0.1], [0.1, 0.45, 0.05, 0.15]];
        let r = Region::around(&boxes, 640, 480, 256).unwrap();
        assert_eq!((r.w, r.h), (256, 256));
        // Centred on the union (x 32-96) but pushed inside the frame.
        assert_eq!(r.x, 0);
        assert!(r.y <= 192 && r.y + r.h >= 264, "{r:?}");
        // A region larger than the frame is the frame; none without
        // boxes, and boxes with NaNs are left out.
        let big = Region::around(&[[0.0, 0.0, 1.0, 1.0]], 640, 480, 256).unwrap();
        assert_eq!(
            big,
            Region {
                x: 0,
                y: 0,
                w: 640,
                h: 480
            }
        );
        assert_eq!(Region::around(&[], 640, 480, 256), None);
        assert_eq!(
            Region::around(&[[f32::NAN, 0.0, 0.1, 0.1]], 640, 480, 256),
            None
        );
    }

    #[test]
    fn a_box_in_a_region_maps_back_to_the_whole_frame() {
        let labels: Vec<String> = (0..80).map(|i| i.to_string()).collect();
        let side = 256;
        let cols = side / 8;
        let mut scores = vec![0.0f32; cols * cols * 80];
        let mut dist = vec![-50.0f32; cols * cols * 44];
        // Cell (x 10, y 20): centre (84, 164) in the input; 2 bins = 16 px each side.
        let cell = 20 * cols + 10;
        scores[cell * 80] = 0.9;
        for s in 0..4 {
            dist[cell * 44 + s * BINS + 2] = 50.0;
        }
        // A 256x256 region at (300, 100) of a 640x480 frame: scale 1, no padding.
        let r = Region {
            x: 300,
            y: 100,
            w: 256,
            h: 256,
        };
        let lb = Letterbox::region(r, 640, 480, side);
        let mut out = Vec::new();
        decode_scale(&scores, &dist, 8, 0.5, &lb, &labels, &mut out);
        let d = &out[0];
        assert!((d.x * 640.0 - 368.0).abs() < 0.01, "{d:?}");
        assert!((d.y * 480.0 - 248.0).abs() < 0.01, "{d:?}");
        assert!((d.w * 640.0 - 32.0).abs() < 0.01, "{d:?}");
    }

    #[test]
    fn model_names_parse_and_the_old_name_means_416() {
        assert_eq!("nanodet-g".parse::<Model>(), Ok(Model::NanodetG416));
        for m in Model::ALL {
            assert_eq!(m.name().parse::<Model>(), Ok(*m));
            assert_eq!(m.side() % 32, 0);
        }
        assert!("yolo"
            .parse::<Model>()
            .unwrap_err()
            .contains("nanodet-g-320"));
    }

    #[test]
    fn side_is_the_expected_bin() {
        let mut bins = [-50.0f32; BINS];
        bins[3] = 50.0;
        assert!((side(&bins) - 3.0).abs() < 1e-4);
        assert!((side(&[0.0; BINS]) - 5.0).abs() < 1e-4);
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes_per_class() {
        let d = |class, score, x| Detection {
            class,
            label: String::new(),
            score,
            x,
            y: 0.1,
            w: 0.2,
            h: 0.2,
        };
        let kept = nms(
            vec![
                d(0, 0.6, 0.1),
                d(0, 0.9, 0.12),
                d(15, 0.5, 0.1),
                d(0, 0.7, 0.6),
            ],
            0.5,
            10,
        );
        let scores: Vec<f32> = kept.iter().map(|k| k.score).collect();
        assert_eq!(scores, vec![0.9, 0.7, 0.5]);
    }

    #[test]
    fn decode_maps_a_cell_back_to_the_frame() {
        let labels: Vec<String> = (0..80).map(|i| i.to_string()).collect();
        let cells = 52 * 52;
        let mut scores = vec![0.0f32; cells * 80];
        let mut dist = vec![-50.0f32; cells * 44];
        // Cell (x 10, y 20) at stride 8: centre (84, 164); 2 bins = 16 px on each side.
        let cell = 20 * 52 + 10;
        scores[cell * 80 + 15] = 0.8;
        for s in 0..4 {
            dist[cell * 44 + s * BINS + 2] = 50.0;
        }
        let lb = Letterbox::new(416, 416, 416);
        let mut out = Vec::new();
        decode_scale(&scores, &dist, 8, 0.5, &lb, &labels, &mut out);
        assert_eq!(out.len(), 1);
        let d = &out[0];
        assert_eq!(d.class, 15);
        assert!((d.x * 416.0 - 68.0).abs() < 0.01, "{d:?}");
        assert!((d.y * 416.0 - 148.0).abs() < 0.01, "{d:?}");
        assert!((d.w * 416.0 - 32.0).abs() < 0.01, "{d:?}");
    }

    #[test]
    fn short_buffers_read_black_instead_of_panicking() {
        let f = Frame {
            image: Image::Packed {
                data: &[1, 2, 3],
                stride: 300,
                bpp: 3,
                r: 0,
                g: 1,
                b: 2,
            },
            width: 100,
            height: 100,
        };
        assert_eq!(f.rgb(0, 0), [1, 2, 3]);
        assert_eq!(f.rgb(99, 99), [0, 0, 0]);
        let _ = preprocess(&f, SIZE);
        let r = Region {
            x: 90,
            y: 90,
            w: 50,
            h: 50,
        };
        let _ = preprocess_region(&f, Some(r), 224);
    }
}
