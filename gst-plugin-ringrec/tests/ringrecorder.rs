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

/// Video frames of a segment as (PTS, key frame), through its real demuxer and a
/// decoder (so a file that does not decode fails here).
fn frames(path: &Path) -> Vec<(u64, bool)> {
    let demux = if path.extension().unwrap() == "mkv" {
        "matroskademux"
    } else {
        "qtdemux"
    };
    let desc = format!(
        "filesrc location={} ! {demux} ! h264parse ! tee name=t \
         t. ! queue ! avdec_h264 ! fakesink \
         t. ! queue ! appsink name=s sync=false",
        path.display()
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = p
        .by_name("s")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let mut out = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        let b = s.buffer().unwrap();
        out.push((
            b.pts().map(|t| t.nseconds()).unwrap_or(0),
            !b.flags().contains(gst::BufferFlags::DELTA_UNIT),
        ));
    }
    let bus = p.bus().unwrap();
    let err = bus.pop_filtered(&[gst::MessageType::Error]);
    p.set_state(gst::State::Null).unwrap();
    assert!(err.is_none(), "{}: {err:?}", path.display());
    out
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
    let desc = format!(
        "camsrc name=c uri={} audio=false ! ringrecorder location={} max-size-time=2s",
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
        assert!(fr[0].1, "{} does not start with a key frame", f.display());
        total += fr.len() as u64;
    }
    let sent = sent.load(Ordering::SeqCst);
    assert_eq!(total, sent, "frames in files vs frames camsrc pushed");
    let _ = std::fs::remove_dir_all(&dir);
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
    // Once the second segment is being written (the first gst-launch may scan the
    // plugin registry for a while), kill it mid-segment, mid-fragment.
    let deadline = Instant::now() + Duration::from_secs(30);
    while files(&loc).len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1600));
    // with-local-plugins execs gst-launch: this is its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let killed_at = std::time::SystemTime::now();
    let _ = child.wait();
    let before = files(&loc);
    assert!(before.len() >= 2, "{before:?}");
    // The next start repairs what the crash left.
    let r = gst::ElementFactory::make("ringrecorder")
        .property("location", loc.to_str().unwrap())
        .build()
        .unwrap();
    r.set_state(gst::State::Ready).unwrap();
    r.set_state(gst::State::Null).unwrap();
    let after = files(&loc);
    assert!(!after.is_empty());
    let mut total = 0;
    for f in &after {
        let out = Command::new("gst-discoverer-1.0").arg(f).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("H.264"), "{}: {text}", f.display());
        let fr = frames(f);
        assert!(!fr.is_empty() && fr[0].1, "{}", f.display());
        eprintln!("{}: {} frames", f.display(), fr.len());
        total += fr.len();
    }
    // From the first segment's start (its name, to the second) to the kill, at 15 fps.
    // Lost: the fragment mp4mux was filling (<= 1 s) and the GOP splitmuxsink holds
    // before writing (<= 2 s here), plus the name's rounding (< 1 s).
    let first = before[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let start = gstringrec::store::start_of("door", &first).unwrap();
    let killed = killed_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let recorded = killed - start as f64;
    eprintln!("recorded ~{recorded:.1} s before the kill, {total} frames survive");
    assert!(
        total as f64 >= 15.0 * (recorded - 4.0),
        "only {total} frames survived of ~{recorded:.1} s"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
