//! What motion detection costs: the detector on 1080p frames (ns per frame and share of
//! one core at 15 fps), and the whole element in a pipeline, as CPU with and without it.
//! Run: `cargo run --release -p gst-plugin-motion --example motion-bench [-- --frames N]`.

use gst::prelude::*;
use gstmotion::detector::{Config, Detector};
use std::time::Instant;

/// CPU time of this process so far (user + system), seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes only into `u`.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn pipeline_cpu(desc: &str) -> f64 {
    let p = gst::parse::launch(desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let c0 = cpu_seconds();
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    let _ = bus.timed_pop_filtered(
        gst::ClockTime::NONE,
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    p.set_state(gst::State::Null).unwrap();
    cpu_seconds() - c0
}

fn main() {
    let frames: usize = std::env::args()
        .skip_while(|a| a != "--frames")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(450);
    gst::init().unwrap();
    gstmotion::plugin_register_static().unwrap();
    let (w, h) = (1920usize, 1080usize);
    // Two frames alternating a moving bright block on noise: every cell is compared.
    let mut luma = vec![0u8; w * h];
    let mut s: u64 = 1;
    for p in luma.iter_mut() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        *p = 100 + (s % 20) as u8;
    }
    let mut d = Detector::new(Config::default(), w, h);
    let t = Instant::now();
    for n in 0..frames {
        let x0 = (n * 8) % (w - 200);
        for y in 400..600 {
            luma[y * w + x0..y * w + x0 + 200].fill(240);
        }
        d.process(&luma, w, h, w, n as f64 / 15.0);
        for y in 400..600 {
            luma[y * w + x0..y * w + x0 + 200].fill(100);
        }
    }
    let per = t.elapsed().as_secs_f64() / frames as f64;
    println!(
        "detector, 1920x1080 luma, grid {:?}: {:.2} ms per frame = {:.1} % of one core at 15 fps",
        d.grid(),
        per * 1e3,
        per * 15.0 * 100.0
    );

    let src = format!("videotestsrc pattern=ball num-buffers={frames} ! video/x-raw,format=I420,width=1920,height=1080,framerate=15/1");
    let without = pipeline_cpu(&format!("{src} ! fakesink"));
    let with = pipeline_cpu(&format!("{src} ! motiondetect ! fakesink"));
    let per = (with - without) / frames as f64;
    println!(
        "element in a pipeline (videotestsrc 1080p I420, {frames} frames): CPU {without:.2} s without, {with:.2} s with motiondetect: {:.2} ms per frame = {:.1} % of one core at 15 fps",
        per * 1e3,
        per * 15.0 * 100.0
    );
}
