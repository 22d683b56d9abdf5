//! What motion detection costs: the detector on 1080p frames (time per frame and share
//! of one core at 15 fps), and the whole element in a pipeline, as CPU with and without
//! it on the same prepared frames.
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

/// CPU seconds to push `bufs` (cycled to `frames` buffers) through
/// `appsrc ! <middle> ! fakesink`. The frames are made beforehand, so the pipeline's
/// own cost is small and the difference with and without the element is its cost.
fn pipeline_cpu(middle: &str, bufs: &[gst::Buffer], frames: usize) -> f64 {
    let p = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=I420,width=1920,height=1080,framerate=15/1 {middle} ! fakesink"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = p
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let c0 = cpu_seconds();
    for n in 0..frames {
        let mut b = bufs[n % bufs.len()].copy();
        b.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_nseconds(n as u64 * 1_000_000_000 / 15));
        src.push_buffer(b).unwrap();
    }
    src.end_of_stream().unwrap();
    let bus = p.bus().unwrap();
    let _ = bus.timed_pop_filtered(
        gst::ClockTime::NONE,
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let cpu = cpu_seconds() - c0;
    p.set_state(gst::State::Null).unwrap();
    cpu
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

    // 30 I420 frames with the block at 30 places, made once.
    let bufs: Vec<gst::Buffer> = (0..30)
        .map(|n| {
            let mut f = vec![128u8; w * h * 3 / 2];
            f[..w * h].copy_from_slice(&luma);
            let x0 = (n * 40) % (w - 200);
            for y in 400..600 {
                f[y * w + x0..y * w + x0 + 200].fill(240);
            }
            gst::Buffer::from_mut_slice(f)
        })
        .collect();
    // Alternate the two pipelines and take the median of each: the machine is shared.
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        without.push(pipeline_cpu("", &bufs, frames));
        with.push(pipeline_cpu("! motiondetect", &bufs, frames));
    }
    let (without, with) = (median(without), median(with));
    let per = (with - without) / frames as f64;
    println!(
        "element in a pipeline (appsrc with prepared 1080p I420 frames, {frames} frames, median of 5 alternated runs): CPU {without:.2} s without, {with:.2} s with motiondetect: {:.2} ms per frame = {:.1} % of one core at 15 fps",
        per * 1e3,
        per * 15.0 * 100.0
    );
}
