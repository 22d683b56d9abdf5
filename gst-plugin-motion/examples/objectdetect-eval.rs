//! Object filter accuracy and cost, every model variant side by side in one run (a benchmark,
//! not a test):
//! - people: the labelled frames of opencv-doc's `vtest.avi` (`tests/data/vtest-people.txt`):
//!   person recall and precision at the threshold;
//! - animals: scikit-image's cat pasted into the garden scene at several sizes and places:
//!   animal recall (any of the `animal` group counts);
//! - wind: frames of the swaying-foliage scene: frames with a person or an animal past the
//!   threshold (each would confirm an event);
//! - cost: median model time per inference on a 640x480 frame, and the letterbox time.
//!
//! `cargo run --release -p gst-plugin-motion --example objectdetect-eval [THRESHOLD]`
//! (default 0.5, objectdetect's default).
//!
//! `... objectdetect-eval propose MODEL` prints the people MODEL finds at 0.3 in the labelled
//! frames, in the labels file's format: how the labels were first drafted before being
//! checked by eye on each frame.

#[path = "../tests/common/scenes.rs"]
mod scenes;

use gst::prelude::*;
use gstmotion::nanodet::{self, Detection, Detector, Frame, Image, Model, Region};
use scenes::Rgb;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const VTEST: &str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";
/// A labelled person is found by a person box overlapping it this much (IoU).
const MATCH_IOU: f32 = 0.4;

/// Labels: frame number -> boxes (x, y, w, h in pixels of the 768x576 frame).
fn labels() -> BTreeMap<u64, Vec<[f32; 4]>> {
    let text = include_str!("../tests/data/vtest-people.txt");
    let mut out: BTreeMap<u64, Vec<[f32; 4]>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let v: Vec<f32> = line
            .split_whitespace()
            .map(|s| s.parse().expect("a number"))
            .collect();
        assert!(v.len() == 1 || v.len() == 5, "bad label line: {line}");
        let boxes = out.entry(v[0] as u64).or_default();
        if v.len() == 5 {
            boxes.push([v[1], v[2], v[3], v[4]]);
        }
    }
    out
}

/// A labelled frame and the moving areas motiondetect saw by then (its latest boxes while
/// an event is open; none otherwise).
struct Labelled {
    rgb: Rgb,
    motion: Vec<[f32; 4]>,
}

/// The frames of `path` whose numbers are in `wanted`, as packed RGB, with motiondetect
/// (at its defaults) run over the whole video.
fn frames(path: &str, wanted: &[u64]) -> BTreeMap<u64, Labelled> {
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{path}\" ! decodebin ! videoconvert ! motiondetect ! videoconvert \
         ! video/x-raw,format=RGB ! appsink name=s sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = p
        .by_name("s")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    // (stream time, open, boxes) of each motion message, as they come.
    type Seen = Vec<(u64, bool, Vec<[f32; 4]>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s2 = seen.clone();
    p.bus().unwrap().set_sync_handler(move |_, m| {
        if let Some(s) = m.structure().filter(|s| s.name() == "motion") {
            let boxes = gstmotion::motion_boxes(s);
            s2.lock().unwrap().push((
                s.get::<u64>("stream-time").unwrap_or(0),
                s.get::<&str>("type") != Ok("end"),
                boxes,
            ));
        }
        gst::BusSyncReply::Drop
    });
    p.set_state(gst::State::Playing).unwrap();
    let mut out = BTreeMap::new();
    let mut n = 0u64;
    let last = wanted.iter().copied().max().unwrap_or(0);
    while n <= last {
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) else {
            break;
        };
        if wanted.contains(&n) {
            // The frame's own motion message is posted before the frame reaches the sink.
            let t = sample
                .buffer()
                .unwrap()
                .pts()
                .map(|t| t.nseconds())
                .unwrap_or(0);
            let motion = seen
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|(st, ..)| *st <= t)
                .filter(|(_, open, _)| *open)
                .map(|(_, _, b)| b.clone())
                .unwrap_or_default();
            out.insert(
                n,
                Labelled {
                    rgb: scenes::rgb_of(&sample),
                    motion,
                },
            );
        }
        n += 1;
    }
    p.set_state(gst::State::Null).unwrap();
    assert_eq!(
        out.len(),
        wanted.len(),
        "{path} has fewer frames than labelled"
    );
    out
}

fn view(f: &Rgb) -> Frame<'_> {
    Frame {
        image: Image::Packed {
            data: &f.data,
            stride: f.w * 3,
            bpp: 3,
            r: 0,
            g: 1,
            b: 2,
        },
        width: f.w,
        height: f.h,
    }
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let ix = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let iy = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)
}

fn pixels(d: &Detection, f: &Rgb) -> [f32; 4] {
    let (w, h) = (f.w as f32, f.h as f32);
    [d.x * w, d.y * h, d.w * w, d.h * h]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// (found, labelled, true positives, person boxes) over the labelled frames.
fn people(
    det: &Detector,
    crop: bool,
    frames: &BTreeMap<u64, Labelled>,
    labels: &BTreeMap<u64, Vec<[f32; 4]>>,
    threshold: f32,
) -> (usize, usize, usize, usize) {
    let (mut found, mut total, mut tp, mut boxes) = (0, 0, 0, 0);
    for (n, l) in frames {
        let f = &l.rgb;
        let truth = &labels[n];
        let region = if crop {
            Region::around(&l.motion, f.w, f.h, det.side())
        } else {
            None
        };
        let dets: Vec<[f32; 4]> = det
            .detect_region(&view(f), region, threshold)
            .unwrap()
            .iter()
            .filter(|d| d.label == "person" && d.score >= threshold)
            .map(|d| pixels(d, f))
            .collect();
        // Greedy one-to-one matching, best overlap first.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (i, t) in truth.iter().enumerate() {
            for (j, d) in dets.iter().enumerate() {
                let o = iou(*t, *d);
                if o >= MATCH_IOU {
                    pairs.push((o, i, j));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut ti, mut dj) = (vec![false; truth.len()], vec![false; dets.len()]);
        for (_, i, j) in pairs {
            if !ti[i] && !dj[j] {
                ti[i] = true;
                dj[j] = true;
            }
        }
        let m = ti.iter().filter(|x| **x).count();
        found += m;
        tp += m;
        total += truth.len();
        boxes += dets.len();
    }
    (found, total, tp, boxes)
}

/// The cat at several sizes and places in the garden (640x480): frames where an animal
/// passes the threshold, of all.
fn animals(det: &Detector, cat: &Rgb, threshold: f32) -> (usize, usize) {
    let mut hits = 0;
    let mut total = 0;
    for (i, scale) in [0.25f32, 0.35, 0.5, 0.7].iter().enumerate() {
        for (j, x) in [40i64, 260, 420].iter().enumerate() {
            let mut f = scenes::garden(640, 480, (i * 3 + j) as u64);
            let cw = (cat.w as f32 * scale) as i64;
            let y = 470 - (cat.h as f32 * scale) as i64;
            scenes::paste(&mut f, cat, (*x).min(630 - cw), y, *scale);
            total += 1;
            if det
                .detect(&view(&f), threshold)
                .unwrap()
                .iter()
                .any(|d| d.score >= threshold && nanodet::ANIMALS.contains(&d.label.as_str()))
            {
                hits += 1;
            }
        }
    }
    (hits, total)
}

/// Frames of the foliage scene in gusts with a person or an animal past the threshold.
fn wind(det: &Detector, threshold: f32) -> (usize, usize) {
    let mut bad = 0;
    let n = 40;
    for i in 0..n {
        let f = scenes::foliage(640, 360, i, i as f64 * 0.25, 1.0);
        if det.detect(&view(&f), threshold).unwrap().iter().any(|d| {
            d.score >= threshold
                && (d.label == "person" || nanodet::ANIMALS.contains(&d.label.as_str()))
        }) {
            bad += 1;
        }
    }
    (bad, n as usize)
}

/// Median model and letterbox time on a 640x480 frame.
fn cost(det: &Detector, f: &Rgb) -> (f64, f64) {
    let (mut pre, mut model) = (Vec::new(), Vec::new());
    for i in 0..16 {
        let t0 = Instant::now();
        let (input, lb) = nanodet::preprocess(&view(f), det.side());
        let t1 = Instant::now();
        det.detect_tensor(input, &lb, 0.5).unwrap();
        let t2 = Instant::now();
        if i > 0 {
            pre.push((t1 - t0).as_secs_f64() * 1e3);
            model.push((t2 - t1).as_secs_f64() * 1e3);
        }
    }
    (median(model), median(pre))
}

fn main() {
    gst::init().unwrap();
    gstmotion::plugin_register_static().unwrap();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let labels = labels();
    let numbers: Vec<u64> = labels.keys().copied().collect();
    let frames = frames(VTEST, &numbers);
    if args.first().map(String::as_str) == Some("propose") {
        let model: Model = args.get(1).and_then(|m| m.parse().ok()).unwrap_or_default();
        let det = Detector::load(model).unwrap();
        for (n, l) in &frames {
            let f = &l.rgb;
            println!("{n}");
            for d in det.detect(&view(f), 0.3).unwrap() {
                if d.label == "person" {
                    let b = pixels(&d, f);
                    println!(
                        "{n} {:.0} {:.0} {:.0} {:.0}  # {:.2}",
                        b[0], b[1], b[2], b[3], d.score
                    );
                }
            }
        }
        return;
    }
    let threshold: f32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0.5);
    let cat = scenes::cat();
    let labelled: usize = labels.values().map(Vec::len).sum();
    println!(
        "{} labelled frames of vtest.avi with {labelled} people; threshold {threshold}; IoU {MATCH_IOU} to match",
        frames.len()
    );
    let moving = frames.values().filter(|l| !l.motion.is_empty()).count();
    let mean_region: f64 = frames
        .values()
        .filter_map(|l| Region::around(&l.motion, l.rgb.w, l.rgb.h, 0))
        .map(|r| (r.w * r.h) as f64 / (768.0 * 576.0))
        .sum::<f64>()
        / moving.max(1) as f64;
    println!(
        "motiondetect saw motion in {moving} of them; the region around it covers {:.0} % of the frame on average",
        mean_region * 100.0
    );
    println!(
        "{:<20} {:>9} {:>10} {:>8} {:>10} {:>8} {:>10} {:>10}",
        "model",
        "model ms",
        "letterbox",
        "recall",
        "precision",
        "animal",
        "wind hits",
        "vs default"
    );
    let mut base = None;
    for (model, crop) in Model::ALL.iter().flat_map(|m| [(*m, false), (*m, true)]) {
        let det = Detector::load(model).unwrap();
        let (ms, pre) = cost(&det, &frames[&numbers[0]].rgb);
        let (found, total, tp, boxes) = people(&det, crop, &frames, &labels, threshold);
        let (cats, cat_total) = animals(&det, &cat, threshold);
        let (bad, wind_total) = wind(&det, threshold);
        let base_ms = *base.get_or_insert(ms);
        println!(
            "{:<20} {:>9.1} {:>10.1} {:>8} {:>10} {:>8} {:>10} {:>10}",
            format!("{}{}", model.name(), if crop { " motion" } else { "" }),
            ms,
            pre,
            format!("{:.3}", found as f64 / total.max(1) as f64),
            format!("{:.3}", tp as f64 / boxes.max(1) as f64),
            format!("{cats}/{cat_total}"),
            format!("{bad}/{wind_total}"),
            format!("{:.2}x", ms / base_ms),
        );
    }
}
