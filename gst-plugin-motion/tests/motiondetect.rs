//! motiondetect in real pipelines: synthetic scenes pushed through appsrc, and a
//! videotestsrc scene from gst-launch syntax.

use gst::prelude::*;
use std::sync::{Arc, Mutex, Once};

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstmotion::plugin_register_static().unwrap();
    });
}

const W: usize = 320;
const H: usize = 240;
const FPS: u64 = 15;

/// An I420 frame: mid-grey with sensor noise, `brightness` added, and a dark 40x40
/// square at `square`.
fn frame(n: u64, square: Option<(usize, usize)>, brightness: i32) -> Vec<u8> {
    lit(n, square, |_| brightness)
}

/// The same with the light as a function of x (a lamp on one side, IR night mode).
fn lit(n: u64, square: Option<(usize, usize)>, light: impl Fn(usize) -> i32) -> Vec<u8> {
    let mut f = vec![128u8; W * H * 3 / 2];
    let mut s = (n + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for (i, p) in f[..W * H].iter_mut().enumerate() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let noise = (s % 17) as i32 - 8;
        let (x, y) = (i % W, i / W);
        let inside =
            square.is_some_and(|(sx, sy)| (sx..sx + 40).contains(&x) && (sy..sy + 40).contains(&y));
        let v = if inside { 30 } else { 128 + light(x) } + noise;
        *p = v.clamp(0, 255) as u8;
    }
    f
}

/// Push `frames` through `appsrc ! motiondetect <props> ! fakesink`; the motion messages.
fn run(props: &str, frames: impl Iterator<Item = Vec<u8>>) -> Vec<gst::Structure> {
    run_at(
        props,
        frames
            .enumerate()
            .map(|(n, f)| (n as u64 * 1_000_000_000 / FPS, f)),
    )
}

/// The same with each frame's PTS (ns) given.
fn run_at(props: &str, frames: impl Iterator<Item = (u64, Vec<u8>)>) -> Vec<gst::Structure> {
    init();
    let p = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=I420,width={W},height={H},framerate={FPS}/1 \
         ! motiondetect name=m {props} ! fakesink sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let msgs = Arc::new(Mutex::new(Vec::new()));
    let m2 = msgs.clone();
    p.bus().unwrap().set_sync_handler(move |_, m| {
        if let gst::MessageView::Element(e) = m.view() {
            if let Some(s) = e.structure().filter(|s| s.name() == "motion") {
                m2.lock().unwrap().push(s.to_owned());
            }
        }
        gst::BusSyncReply::Pass
    });
    let src = p
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    for (pts, f) in frames {
        let mut b = gst::Buffer::from_mut_slice(f);
        b.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_nseconds(pts));
        src.push_buffer(b).unwrap();
    }
    src.end_of_stream().unwrap();
    let bus = p.bus().unwrap();
    let end = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    assert!(
        matches!(
            end.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "{end:?}"
    );
    p.set_state(gst::State::Null).unwrap();
    let v = msgs.lock().unwrap().clone();
    v
}

fn kinds(m: &[gst::Structure]) -> Vec<String> {
    m.iter().map(|s| s.get::<String>("type").unwrap()).collect()
}

fn secs(s: &gst::Structure, field: &str) -> f64 {
    s.get::<u64>(field).unwrap() as f64 / 1e9
}

#[test]
fn a_static_noisy_scene_gives_no_event() {
    let m = run("", (0..150).map(|n| frame(n, None, 0)));
    assert!(m.is_empty(), "{m:?}");
}

#[test]
fn a_moving_object_gives_one_event_with_start_and_end_at_the_right_times() {
    // The square crosses from 2 s to 6 s; calm-time 2 s ends the event at about 8 s.
    let m = run(
        "calm-time=2",
        (0..180).map(|n| {
            frame(
                n,
                (30..90).contains(&n).then(|| ((n as usize - 30) * 4, 100)),
                0,
            )
        }),
    );
    let k = kinds(&m);
    assert_eq!(k.first().map(String::as_str), Some("start"), "{k:?}");
    assert_eq!(k.last().map(String::as_str), Some("end"), "{k:?}");
    assert_eq!(k.iter().filter(|k| *k == "start").count(), 1, "{k:?}");
    assert!(
        k.iter().any(|k| k == "update"),
        "updates every second: {k:?}"
    );
    let (start, end) = (&m[0], m.last().unwrap());
    let t0 = secs(start, "stream-time");
    assert!((2.0..2.3).contains(&t0), "start at {t0} s");
    let t1 = secs(end, "stream-time");
    assert!((7.9..8.3).contains(&t1), "end at {t1} s");
    assert_eq!(
        start.get::<u64>("id").unwrap(),
        end.get::<u64>("id").unwrap()
    );
    assert!((end.get::<f64>("duration").unwrap() - (t1 - t0)).abs() < 0.01);
    let boxes = start.get::<gst::Array>("boxes").unwrap();
    let b = boxes.first().unwrap().get::<gst::Structure>().unwrap();
    let (x, y, w, h) = (
        b.get::<f32>("x").unwrap(),
        b.get::<f32>("y").unwrap(),
        b.get::<f32>("w").unwrap(),
        b.get::<f32>("h").unwrap(),
    );
    // The square is at x 0..0.15, y 0.42..0.58 when the event starts.
    assert!(x < 0.1 && y > 0.3 && y < 0.5 && w < 0.4 && h < 0.4, "{b}");
    assert!(start.get::<f32>("score").unwrap() > 0.004);
    let wall = start.get::<f64>("wall-time").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - wall).abs() < 60.0);
}

#[test]
fn a_sudden_global_brightness_change_gives_no_event() {
    // Uniform: taken out as a brightness shift.
    let m = run(
        "",
        (0..120).map(|n| frame(n, None, if n >= 40 { 80 } else { 0 })),
    );
    assert!(m.is_empty(), "{m:?}");
    // A lamp switched on at the left: every cell changes, unevenly (0 to +160).
    let lamp = |n: u64| {
        lit(n, None, move |x| {
            if n >= 40 {
                (160 * (W - x) / W) as i32
            } else {
                0
            }
        })
    };
    let m = run("", (0..120).map(lamp));
    assert!(m.is_empty(), "{m:?}");
    // The same scene with the suppression turned off is an event: the test can fail.
    let m = run("global-change=1.0", (0..120).map(lamp));
    assert_eq!(
        kinds(&m).first().map(String::as_str),
        Some("start"),
        "{m:?}"
    );
}

#[test]
fn motion_in_a_masked_area_gives_none_and_zones_are_named() {
    let moving = || (0..120).map(|n| frame(n, (30..90).contains(&n).then_some((20, 100)), 0));
    let m = run("mask=\"0,0 0.4,0 0.4,1 0,1\"", moving());
    assert!(m.is_empty(), "{m:?}");
    let m = run(
        "zones=\"door:0,0 0.4,0 0.4,1 0,1; gate:0.6,0 1,0 1,1 0.6,1\"",
        moving(),
    );
    let zones = m[0].get::<gst::Array>("zones").unwrap();
    let names: Vec<String> = zones.iter().map(|v| v.get::<String>().unwrap()).collect();
    assert_eq!(names, vec!["door"]);
}

#[test]
fn a_bad_mask_is_a_clear_error() {
    init();
    let p = gst::parse::launch(
        "videotestsrc num-buffers=5 ! motiondetect mask=\"0,0 2,2 1,1\" ! fakesink",
    )
    .unwrap();
    let p = p.downcast::<gst::Pipeline>().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let m = p
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
        .expect("an error");
    let gst::MessageView::Error(e) = m.view() else {
        unreachable!()
    };
    assert!(
        e.error().message().contains("outside 0..1"),
        "{}",
        e.error()
    );
    p.set_state(gst::State::Null).unwrap();
}

#[test]
fn full_hd_and_nv12_from_videotestsrc() {
    init();
    // A ball bouncing on a black background, 1080p NV12: motion from the start (the
    // ball covers about 0.2 % of the frame, under the default min-area).
    let p = gst::parse::launch(
        "videotestsrc pattern=ball num-buffers=40 ! video/x-raw,format=NV12,width=1920,height=1080,framerate=15/1 \
         ! motiondetect calm-time=0.5 min-area=0.001 ! fakesink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    let mut starts = 0;
    for m in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match m.view() {
            gst::MessageView::Element(e)
                if e.structure().is_some_and(|s| {
                    s.name() == "motion" && s.get::<&str>("type").unwrap() == "start"
                }) =>
            {
                starts += 1;
            }
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            _ => {}
        }
    }
    p.set_state(gst::State::Null).unwrap();
    assert_eq!(starts, 1);
}

#[test]
fn a_gap_in_the_stream_ends_the_event_and_motion_after_it_is_a_new_one() {
    // The square moves for 4 s, the stream stops for 10 s (a camera outage), and comes
    // back with the square still moving.
    let moving = |n: u64| frame(n, Some(((n as usize * 4) % 260, 100)), 0);
    let before = (0..60).map(|n| (n * 1_000_000_000 / FPS, moving(n)));
    let after = (60..120).map(|n| (10_000_000_000 + n * 1_000_000_000 / FPS, moving(n)));
    let m = run_at("calm-time=2", before.chain(after));
    let starts_ends: Vec<(String, u64)> = m
        .iter()
        .filter(|s| s.get::<&str>("type") != Ok("update"))
        .map(|s| {
            (
                s.get::<String>("type").unwrap(),
                s.get::<u64>("id").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        starts_ends,
        vec![
            ("start".to_string(), 1),
            ("end".to_string(), 1),
            ("start".to_string(), 2),
            ("end".to_string(), 2)
        ],
        "{m:#?}"
    );
    let end = m
        .iter()
        .find(|s| s.get::<&str>("type") == Ok("end"))
        .unwrap();
    assert_eq!(end.get::<&str>("reason"), Ok("gap"));
    assert!(secs(end, "stream-time") < 4.1, "{end}");
}
