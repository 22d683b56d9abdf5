//! objectdetect with the real model in real pipelines: people in real surveillance footage
//! (Debian's opencv-doc `vtest.avi`), a cat walking into a garden, and foliage in the wind.

mod common;

use common::scenes;
use gst::prelude::*;
use std::path::Path;
use std::sync::Once;

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstmotion::plugin_register_static().unwrap();
    });
}

const VTEST: &str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

/// Runs `pipeline` to EOS (or `limit` seconds), collecting the element messages.
fn run(
    p: &gst::Pipeline,
    feed: impl FnOnce(&gst::Pipeline) + Send + 'static,
    limit: u64,
) -> Vec<gst::Structure> {
    let msgs = common::element_messages(p);
    p.set_state(gst::State::Playing).unwrap();
    let p2 = p.clone();
    let feeder = std::thread::spawn(move || feed(&p2));
    let bus = p.bus().unwrap();
    let end = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(limit),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    p.set_state(gst::State::Null).unwrap();
    feeder.join().unwrap();
    let msgs = msgs.lock().unwrap().clone();
    match end.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(e)) => panic!("error: {} ({:?})", e.error(), e.debug()),
        _ => panic!("no EOS within {limit} s; messages: {msgs:#?}"),
    }
    msgs
}

fn of<'a>(msgs: &'a [gst::Structure], name: &str, kind: &str) -> Vec<&'a gst::Structure> {
    msgs.iter()
        .filter(|s| s.name() == name && s.get::<&str>("type") == Ok(kind))
        .collect()
}

fn objects(s: &gst::Structure) -> Vec<gst::Structure> {
    s.get::<gst::Array>("objects")
        .unwrap()
        .iter()
        .map(|v| v.get::<gst::Structure>().unwrap())
        .collect()
}

/// Pushes `frames` RGB frames made by `make` into the appsrc named `src`, then EOS.
fn feeder(
    n: u64,
    fps: u32,
    make: impl Fn(u64) -> scenes::Rgb + Send + 'static,
) -> impl FnOnce(&gst::Pipeline) + Send + 'static {
    move |p| {
        let src = p
            .by_name("src")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        for i in 0..n {
            if src.push_buffer(scenes::buffer(&make(i), i, fps)).is_err() {
                return;
            }
        }
        let _ = src.end_of_stream();
    }
}

#[test]
fn the_model_is_the_documented_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/nanodet-g-416.onnx");
    let out = std::process::Command::new("sha256sum")
        .arg(&path)
        .output()
        .unwrap();
    let sum = String::from_utf8_lossy(&out.stdout);
    assert!(
        sum.starts_with("eedbfe01cd86a3e9c9356e273b29595fe0667c1b4a50e1d989bb42d555de7939"),
        "{sum}"
    );
    let labels: Vec<&str> = gstmotion::nanodet::LABELS.lines().collect();
    assert_eq!(labels.len(), 80);
    assert_eq!(
        (labels[0], labels[15], labels[16]),
        ("person", "cat", "dog")
    );
}

#[test]
fn walkers_in_surveillance_footage_are_confirmed_people() {
    init();
    assert!(
        Path::new(VTEST).exists(),
        "{VTEST} is missing: it comes with Debian's opencv-doc (scripts/setup --tests installs it)"
    );
    // The first 30 s; each analysed frame waits for its inference so that the result does
    // not depend on the machine's speed.
    let p = gst::parse::launch(&format!(
        "filesrc location={VTEST} ! decodebin ! videoconvert ! video/x-raw,format=I420 \
         ! motiondetect ! objectdetect drop-frames=false max-rate=1 ! fakesink sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    p.set_state(gst::State::Paused).unwrap();
    let _ = p.state(gst::ClockTime::from_seconds(10));
    p.seek(
        1.0,
        gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
        gst::SeekType::Set,
        gst::ClockTime::ZERO,
        gst::SeekType::Set,
        gst::ClockTime::from_seconds(30),
    )
    .unwrap();
    let msgs = run(&p, |_| {}, 300);
    let confirmed = of(&msgs, "objectdetect", "confirmed");
    assert!(!confirmed.is_empty(), "no confirmed event: {msgs:#?}");
    for c in &confirmed {
        assert_eq!(c.get::<&str>("label").unwrap(), "person", "{c}");
        assert!(c.get::<f32>("score").unwrap() >= 0.5, "{c}");
    }
    let ends = of(&msgs, "objectdetect", "end");
    assert!(
        ends.iter()
            .any(|e| e.get::<&str>("verdict") == Ok("confirmed")),
        "{ends:#?}"
    );
    // Boxes on the walkers: people-shaped (taller than wide), inside the frame, and
    // several people in one frame at times.
    let analysed = of(&msgs, "objectdetect", "objects");
    assert!(analysed.len() >= 10, "{} inferences", analysed.len());
    let mut most = 0;
    for a in &analysed {
        let people: Vec<_> = objects(a)
            .into_iter()
            .filter(|o| o.get::<&str>("label") == Ok("person"))
            .collect();
        most = most.max(people.len());
        for o in people {
            let f = |k| o.get::<f32>(k).unwrap();
            let (x, y, w, h) = (f("x"), f("y"), f("w"), f("h"));
            assert!(
                x >= 0.0 && y >= 0.0 && x + w <= 1.0001 && y + h <= 1.0001,
                "{o}"
            );
            // 768x576: a walker is taller than wide, and from 5 % to 60 % of the height.
            assert!(h * 576.0 > w * 768.0, "not person-shaped: {o}");
            assert!((0.05..0.6).contains(&h), "{o}");
        }
    }
    assert!(most >= 2, "never two people at once");
}

#[test]
fn a_cat_walking_into_the_garden_is_an_animal() {
    init();
    // Live, at the default settings: frames are never held back for the detector.
    let (w, h, fps) = (640, 360, 10);
    let p = gst::parse::launch(
        "appsrc name=src format=time is-live=true ! identity sync=true ! videoconvert \
         ! video/x-raw,format=I420 ! motiondetect ! objectdetect name=od snapshot=true ! fakesink sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    p.by_name("src")
        .unwrap()
        .set_property("caps", scenes::caps(w, h, fps));
    let cat = scenes::cat();
    // 1 s of garden, the cat walks in from the right for 2 s and sits 3 s.
    let msgs = run(
        &p,
        feeder(60, fps, move |i| {
            let mut f = scenes::garden(w, h, i);
            let t = i as f64 / fps as f64;
            if t >= 1.0 {
                let x = w as f64 - 330.0 * ((t - 1.0) / 2.0).min(1.0);
                scenes::paste(&mut f, &cat, x as i64, 80, 0.9);
            }
            f
        }),
        60,
    );
    let confirmed = of(&msgs, "objectdetect", "confirmed");
    assert_eq!(confirmed.len(), 1, "{msgs:#?}");
    assert_eq!(
        confirmed[0].get::<&str>("group"),
        Ok("animal"),
        "{}",
        confirmed[0]
    );
    let ends = of(&msgs, "objectdetect", "end");
    assert_eq!(ends.len(), 1, "{ends:#?}");
    assert_eq!(ends[0].get::<&str>("verdict"), Ok("confirmed"));
    assert!(ends[0].get::<gst::Sample>("snapshot").is_ok());
    // The confirming frame too, at the frame's size.
    let s = confirmed[0]
        .get::<gst::Sample>("snapshot")
        .expect("the confirming frame");
    let info = gst_video::VideoInfo::from_caps(s.caps().unwrap()).unwrap();
    assert_eq!((info.width() as usize, info.height() as usize), (w, h));
    let stats = p.by_name("od").unwrap().property::<gst::Structure>("stats");
    assert!(stats.get::<u64>("inferences").unwrap() >= 2, "{stats}");
}

#[test]
fn foliage_in_the_wind_is_dismissed() {
    init();
    let (w, h, fps) = (640, 360, 10);
    let p = gst::parse::launch(
        "appsrc name=src format=time ! videoconvert ! video/x-raw,format=I420 \
         ! motiondetect ! objectdetect drop-frames=false ! fakesink sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    p.by_name("src")
        .unwrap()
        .set_property("caps", scenes::caps(w, h, fps));
    // Calm, then two gusts.
    let msgs = run(
        &p,
        feeder(200, fps, move |i| {
            let t = i as f64 / fps as f64;
            let wind = if (3.0..8.0).contains(&t) || (12.0..16.0).contains(&t) {
                1.0
            } else {
                0.0
            };
            scenes::foliage(w, h, i, t, wind)
        }),
        300,
    );
    let starts = of(&msgs, "motion", "start");
    assert!(!starts.is_empty(), "the wind moved nothing: {msgs:#?}");
    let ends = of(&msgs, "objectdetect", "end");
    assert_eq!(ends.len(), starts.len(), "{ends:#?}");
    for e in ends {
        assert_eq!(e.get::<&str>("verdict"), Ok("dismissed"), "{e}");
        assert!(e.get::<u32>("inferences").unwrap() >= 1, "{e}");
        assert!(
            !e.has_field("snapshot"),
            "a frame in the message without snapshot=true"
        );
    }
    assert!(of(&msgs, "objectdetect", "confirmed").is_empty());
}

/// A small cat far off in a wide frame, with the cheapest model: looking only around the
/// motion, the model sees it large enough, and the box comes back in frame coordinates.
#[test]
fn the_motion_region_finds_a_small_cat_the_whole_frame_hides() {
    init();
    let (w, h, fps) = (1280, 720, 10);
    let cat = scenes::cat();
    let run_with = |region: bool| {
        let p = gst::parse::launch(&format!(
            "appsrc name=src format=time ! videoconvert ! video/x-raw,format=I420 \
             ! motiondetect ! objectdetect name=od drop-frames=false model=nanodet-g-224 \
             motion-region={region} ! fakesink sync=false"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        p.by_name("src")
            .unwrap()
            .set_property("caps", scenes::caps(w, h, fps));
        let cat = scenes::Rgb {
            w: cat.w,
            h: cat.h,
            data: cat.data.clone(),
        };
        // 1 s of garden, then the cat (about 160x105 px) walks in from the right.
        let msgs = run(
            &p,
            feeder(40, fps, move |i| {
                let mut f = scenes::garden(w, h, i);
                let t = i as f64 / fps as f64;
                if t >= 1.0 {
                    let x = w as f64 - 400.0 * ((t - 1.0) / 2.0).min(1.0);
                    scenes::paste(&mut f, &cat, x as i64, 560, 0.35);
                }
                f
            }),
            120,
        );
        assert_eq!(
            p.by_name("od").unwrap().property::<bool>("motion-region"),
            region
        );
        msgs
    };
    let msgs = run_with(true);
    let confirmed = of(&msgs, "objectdetect", "confirmed");
    assert_eq!(confirmed.len(), 1, "{msgs:#?}");
    let b = confirmed[0].get::<gst::Structure>("box").unwrap();
    let x = b.get::<f32>("x").unwrap() * w as f32;
    let y = b.get::<f32>("y").unwrap() * h as f32;
    assert!(x > 800.0 && (520.0..700.0).contains(&y), "{b}");
    // The same frames, whole (the cat about 28 px wide in the model's input): not seen.
    let whole = run_with(false);
    assert!(
        of(&whole, "objectdetect", "confirmed").is_empty(),
        "{whole:#?}"
    );
}
