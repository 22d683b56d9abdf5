//! ringrecorder in real pipelines: camsrc reading the simulated Tapo camera (a separate
//! process) into segments on disk, read back with real demuxers and decoders.

use gst::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstcamsrc::plugin_register_static().unwrap();
        gstringrec::plugin_register_static().unwrap();
        let f = gst::ElementFactory::find("ringrecorder").unwrap();
        assert_eq!(f.plugin().and_then(|p| p.filename()), None);
    });
}

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

type Tapo = tapo_sim::process::TapoProcess;

fn tapo() -> Tapo {
    Tapo::start(&target_dir().join("tapo-sim"), "pw", &[])
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ringrec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|day| {
            std::fs::read_dir(day.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|f| f.path())
        .collect();
    out.sort();
    out
}

/// Video frames of a segment as (PTS, IDR) as its real demuxer gives them, while a
/// real decoder decodes them (an error fails here). IDR is read from the H.264 data,
/// not from flags.
fn frames(path: &Path) -> Vec<(u64, bool)> {
    let demux = if path.extension().unwrap() == "mkv" {
        "matroskademux"
    } else {
        "qtdemux"
    };
    let desc = format!(
        "filesrc location={} ! {demux} ! queue name=q ! h264parse ! avdec_h264 ! fakesink sync=false",
        path.display()
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let out = Arc::new(std::sync::Mutex::new(Vec::new()));
    let out2 = out.clone();
    let pad = p.by_name("q").unwrap().static_pad("sink").unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let nls = pad
            .current_caps()
            .and_then(|c| {
                let s = c.structure(0)?;
                let d = s.get::<gst::Buffer>("codec_data").ok()?;
                let m = d.map_readable().ok()?;
                Some(gstringrec::h264::nal_length_size(&m))
            })
            .unwrap_or(4);
        if let Some(b) = info.buffer() {
            let idr = b
                .map_readable()
                .is_ok_and(|m| gstringrec::h264::has_idr(&m, nls));
            out2.lock()
                .unwrap()
                .push((b.pts().map(|t| t.nseconds()).unwrap_or(0), idr));
        }
        gst::PadProbeReturn::Ok
    });
    p.set_state(gst::State::Playing).unwrap();
    let msg = p.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    p.set_state(gst::State::Null).unwrap();
    assert!(
        matches!(
            msg.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "{}: {msg:?}",
        path.display()
    );
    let v = out.lock().unwrap().clone();
    v
}

#[test]
fn segments_are_named_announced_complete_and_pruned() {
    init();
    let tapo = tapo();
    let dir = temp("segments");
    let loc = dir.join("front");
    let desc = format!(
        "camsrc name=c uri={} ! ringrecorder name=r location={} format=mkv max-size-time=2s max-files=3 c.audio ! r.audio",
        tapo.uri("pw"),
        loc.display()
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut announced = Vec::new();
    let mut problems = Vec::new();
    let until = Instant::now() + Duration::from_secs(11);
    while Instant::now() < until {
        let Some(m) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) else {
            continue;
        };
        match m.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "ringrecorder-segment") {
                    announced.push(s.to_owned());
                }
            }
            gst::MessageView::Error(e) => problems.push(e.error().to_string()),
            _ => {}
        }
    }
    pipeline.send_event(gst::event::Eos::new());
    let _ = bus.timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos]);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert!(announced.len() >= 3, "{announced:?}");
    for s in &announced {
        assert!(s.get::<u64>("bytes").unwrap() > 0);
        assert!(s
            .get::<&str>("path")
            .unwrap()
            .starts_with(loc.to_str().unwrap()));
        assert!(s.get::<u64>("start").unwrap() > 1_700_000_000);
    }
    let segs = files(&loc);
    assert!(segs.len() <= 3, "max-files=3 kept {segs:?}");
    for f in &segs {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("front-2") && name.contains('T') && name.ends_with(".mkv"),
            "{name}"
        );
    }
    let total_kept: usize = segs.iter().map(|f| frames(f).len()).sum();
    assert!(total_kept > 0);

    // A restart never overwrites, and retention counts the earlier run's files.
    let sizes: Vec<(PathBuf, u64)> = segs
        .iter()
        .map(|f| (f.clone(), std::fs::metadata(f).unwrap().len()))
        .collect();
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    pipeline.send_event(gst::event::Eos::new());
    let _ = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos]);
    pipeline.set_state(gst::State::Null).unwrap();
    let after = files(&loc);
    assert!(after.len() <= 3, "{after:?}");
    assert!(
        after.iter().any(|f| !segs.contains(f)),
        "nothing new recorded"
    );
    for (f, size) in sizes {
        if f.exists() {
            assert_eq!(
                std::fs::metadata(&f).unwrap().len(),
                size,
                "{} changed",
                f.display()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_frame_lost_or_duplicated_at_boundaries() {
    init();
    let tapo = tapo();
    let dir = temp("frames");
    let loc = dir.join("cam");
    // MP4 with the camera's A-law audio, transcoded to AAC inside each segment.
    let desc = format!(
        "camsrc name=c uri={} ! ringrecorder name=r location={} max-size-time=2s c.audio ! r.audio",
        tapo.uri("pw"),
        loc.display()
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let s2 = sent.clone();
    pipeline
        .by_name("c")
        .unwrap()
        .connect_pad_added(move |_, pad| {
            if pad.name() != "video" {
                return;
            }
            let s3 = s2.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                s3.fetch_add(1, Ordering::SeqCst);
                gst::PadProbeReturn::Ok
            });
        });
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    std::thread::sleep(Duration::from_secs(9));
    pipeline.send_event(gst::event::Eos::new());
    let eos = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(10),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        matches!(
            eos.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "{eos:?}"
    );
    let segs = files(&loc);
    assert!(segs.len() >= 3, "{segs:?}");
    let mut total = 0u64;
    for f in &segs {
        let fr = frames(f);
        assert!(!fr.is_empty(), "{} is empty", f.display());
        assert!(
            fr[0].1,
            "{} does not start with a key frame: {:?}",
            f.display(),
            &fr[..fr.len().min(3)]
        );
        total += fr.len() as u64;
        let out = Command::new("gst-discoverer-1.0").arg(f).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("H.264") && text.contains("AAC"),
            "{}: {text}",
            f.display()
        );
    }
    let sent = sent.load(Ordering::SeqCst);
    assert_eq!(total, sent, "frames in files vs frames camsrc pushed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Checks a recording folder right after a crash: every finished name plays and
/// decodes from a key frame. Returns the frames in files not in `seen`.
fn check_playable(loc: &Path, seen: &[PathBuf]) -> usize {
    let mut total = 0;
    for f in files(loc) {
        if f.to_string_lossy().ends_with(".partial") || seen.contains(&f) {
            continue;
        }
        let out = Command::new("gst-discoverer-1.0").arg(&f).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("H.264"), "{}: {text}", f.display());
        let fr = frames(&f);
        assert!(!fr.is_empty() && fr[0].1, "{}", f.display());
        eprintln!("{}: {} frames", f.display(), fr.len());
        total += fr.len();
    }
    total
}

#[test]
fn kill_9_leaves_only_playable_files() {
    init();
    let tapo = tapo();
    let dir = temp("kill9");
    let loc = dir.join("door");
    let plugin_dir = target_dir();
    assert!(
        plugin_dir.join("libgstringrec.so").exists(),
        "cargo build first"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/with-local-plugins");
    // Kill early in a segment (before its first fragment is complete) and late.
    for into_segment in [Duration::from_millis(300), Duration::from_millis(1700)] {
        let before: Vec<PathBuf> = files(&loc);
        let mut child = Command::new("bash")
            .arg(script)
            .arg(&plugin_dir)
            .args(["gst-launch-1.0", "camsrc", "audio=false"])
            .arg(format!("uri={}", tapo.uri("pw")))
            .args(["!", "ringrecorder", "max-size-time=3s"])
            .arg(format!("location={}", loc.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let new_files = || {
            files(&loc)
                .into_iter()
                .filter(|f| !before.contains(f))
                .count()
        };
        // The first segment appears (as .partial) with its first frame.
        let deadline = Instant::now() + Duration::from_secs(30);
        while new_files() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let first_frame = Instant::now();
        // Into the second segment (the first gst-launch may scan the registry first).
        while new_files() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(into_segment);
        // with-local-plugins execs gst-launch: this is its pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let recorded = first_frame.elapsed().as_secs_f64();
        let _ = child.wait();
        // As the crash left it, before any repair: every finished name plays.
        let total = check_playable(&loc, &before);
        // The next start finishes what the crash left: no .partial remains.
        let r = gst::ElementFactory::make("ringrecorder")
            .property("location", loc.to_str().unwrap())
            .build()
            .unwrap();
        r.set_state(gst::State::Ready).unwrap();
        r.set_state(gst::State::Null).unwrap();
        let after = files(&loc);
        assert!(
            after
                .iter()
                .all(|f| !f.to_string_lossy().ends_with(".partial")),
            "{after:?}"
        );
        let total_after = check_playable(&loc, &before);
        assert!(total_after >= total);
        // 15 fps. Lost: the MP4 fragment being filled (<= 1 s) and what was in
        // flight; 0.6 s of slack for the polling above and a loaded machine.
        let lost = 15.0 * recorded - total_after as f64;
        eprintln!(
            "killed {into_segment:?} into a segment: ~{recorded:.2} s recorded, \
             {total_after} frames kept ({total} before repair), ~{:.2} s lost",
            lost / 15.0
        );
        assert!(
            lost <= 15.0 * 1.6,
            "lost {:.2} s of {recorded:.2} s",
            lost / 15.0
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
