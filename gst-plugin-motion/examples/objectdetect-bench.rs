//! Object filter figures, printed (a benchmark, not a test):
//! - inference time per analysed frame (1080p frame: letterbox + NanoDet), median of runs;
//! - what `objectdetect` costs the video thread per frame while motion goes on;
//! - events per hour on a windy garden (a hedge and a tree swaying in gusts, a branch shadow
//!   on the lawn, no person or animal): motion events without the filter (each would be an
//!   alert), confirmed events with it.
//!
//! `cargo run --release -p gst-plugin-motion --example objectdetect-bench [minutes]`
//! (minutes of windy stream to analyse, default 10).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{element_messages, scenes};
use gst::prelude::*;
use gstmotion::nanodet::{self, Detector, Frame, Image};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn inference() {
    let t0 = Instant::now();
    let det = Detector::builtin().unwrap();
    println!(
        "model load + optimisation: {:.0} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let (w, h) = (1920, 1080);
    let mut f = scenes::garden(w, h, 1);
    scenes::paste(&mut f, &scenes::cat(), 1100, 300, 2.0);
    let frame = Frame {
        image: Image::Packed {
            data: &f.data,
            stride: w * 3,
            bpp: 3,
            r: 0,
            g: 1,
            b: 2,
        },
        width: w,
        height: h,
    };
    let (mut pre, mut total) = (Vec::new(), Vec::new());
    let mut found = String::new();
    for i in 0..21 {
        let t0 = Instant::now();
        let (input, lb) = nanodet::preprocess(&frame, det.side());
        let t1 = Instant::now();
        let dets = det.detect_tensor(input, &lb, 0.5).unwrap();
        let t2 = Instant::now();
        if i > 0 {
            pre.push((t1 - t0).as_secs_f64() * 1e3);
            total.push((t2 - t0).as_secs_f64() * 1e3);
        }
        found = dets
            .iter()
            .map(|d| format!("{} {:.2}", d.label, d.score))
            .collect::<Vec<_>>()
            .join(", ");
    }
    println!(
        "inference on a 1080p frame: {:.1} ms median of 20 (letterbox {:.1} ms + model {:.1} ms); found: {found}",
        median(total.clone()),
        median(pre.clone()),
        median(total) - median(pre)
    );
}

/// Runs `frames` foliage frames through motiondetect ! objectdetect (waiting for each
/// inference, so the figures do not depend on this machine's load); returns the messages.
fn windy(minutes: f64) -> (Vec<gst::Structure>, gst::Structure, f64) {
    let (w, h, fps) = (640usize, 360usize, 10u32);
    let p = gst::parse::launch(
        "appsrc name=src format=time ! videoconvert ! video/x-raw,format=I420 \
         ! motiondetect ! objectdetect name=od drop-frames=false ! fakesink sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = p
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    src.set_caps(Some(&scenes::caps(w, h, fps)));
    src.set_max_bytes(50_000_000);
    let msgs = element_messages(&p);
    p.set_state(gst::State::Playing).unwrap();
    let n = (minutes * 60.0 * fps as f64) as u64;
    let t0 = Instant::now();
    // Gusts: 4 to 12 s of wind every 15 to 45 s (a fixed pseudo-random sequence).
    let mut gusts = Vec::new();
    let (mut t, mut s) = (5.0f64, 12345u64);
    while t < minutes * 60.0 {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = 4.0 + (s >> 33) as f64 / (1u64 << 31) as f64 * 8.0;
        gusts.push((t, t + len));
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        t += len + 15.0 + (s >> 33) as f64 / (1u64 << 31) as f64 * 30.0;
    }
    for i in 0..n {
        let t = i as f64 / fps as f64;
        let wind = if gusts.iter().any(|(a, b)| (*a..*b).contains(&t)) {
            1.0
        } else {
            0.0
        };
        src.push_buffer(scenes::buffer(&scenes::foliage(w, h, i, t, wind), i, fps))
            .unwrap();
    }
    src.end_of_stream().unwrap();
    p.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::NONE,
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let stats = p.by_name("od").unwrap().property::<gst::Structure>("stats");
    p.set_state(gst::State::Null).unwrap();
    let wall = t0.elapsed().as_secs_f64();
    let msgs = msgs.lock().unwrap().clone();
    (msgs, stats, wall)
}

/// The video thread's cost of objectdetect per frame while motion goes on (copying a
/// frame for the worker at most max-rate times a second), against a plain identity.
fn thread_cost() {
    let run = |element: &str| {
        let p = gst::parse::launch(&format!(
            "videotestsrc num-buffers=450 pattern=ball ! video/x-raw,format=I420,width=1920,height=1080,framerate=15/1 \
             ! motiondetect min-area=0.0001 ! {element} ! fakesink sync=false"
        ))
        .unwrap();
        let t0 = Instant::now();
        p.set_state(gst::State::Playing).unwrap();
        p.bus().unwrap().timed_pop_filtered(
            gst::ClockTime::NONE,
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        p.set_state(gst::State::Null).unwrap();
        t0.elapsed().as_secs_f64()
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        a.push(run("identity"));
        b.push(run("objectdetect"));
    }
    let (a, b) = (median(a), median(b));
    // What the video thread does for an analysed frame: one copy of it for the worker.
    let frame = gst::Buffer::from_mut_slice(vec![7u8; 1920 * 1080 * 3 / 2]);
    let mut copies = Vec::new();
    for _ in 0..50 {
        let t0 = Instant::now();
        let mut out = gst::Buffer::with_size(frame.size()).unwrap();
        {
            let mut m = out.get_mut().unwrap().map_writable().unwrap();
            frame.copy_to_slice(0, &mut m).unwrap();
        }
        std::hint::black_box(&out);
        copies.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "video thread, 450 frames 1080p15 with motion: identity {a:.2} s, objectdetect {b:.2} s ({:+.2} ms per frame, within the noise); one 1080p I420 frame copy for the worker: {:.2} ms median, at most max-rate (2.5) times a second",
        (b - a) / 450.0 * 1e3,
        median(copies)
    );
}

fn main() {
    gst::init().unwrap();
    gstmotion::plugin_register_static().unwrap();
    let minutes: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10.0);
    inference();
    thread_cost();
    let (msgs, stats, wall) = windy(minutes);
    let count = |name: &str, kind: &str| {
        msgs.iter()
            .filter(|s| s.name() == name && s.get::<&str>("type") == Ok(kind))
            .count()
    };
    let (events, confirmed, dismissed) = (
        count("motion", "start"),
        count("objectdetect", "confirmed"),
        msgs.iter()
            .filter(|s| {
                s.name() == "objectdetect"
                    && s.get::<&str>("type") == Ok("end")
                    && s.get::<&str>("verdict") == Ok("dismissed")
            })
            .count(),
    );
    let per_hour = |n: usize| n as f64 * 60.0 / minutes;
    println!(
        "windy garden, {minutes} min of 640x360 10 fps ({wall:.0} s to analyse): motion events {events} ({:.0}/hour) without the filter; with it {confirmed} confirmed ({:.0}/hour), {dismissed} dismissed",
        per_hour(events),
        per_hour(confirmed)
    );
    println!("objectdetect stats: {stats}");
}
