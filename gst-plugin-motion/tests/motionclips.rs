//! motionclips on a live H.264 camera stream (a scene encoded by x264enc in real time): the
//! clip of a confirmed event starts at a key frame before the pre-roll, plays, and comes
//! with a JPEG snapshot; dismissed events leave no clip unless `record=all`.

mod common;

use common::{element_messages, scenes};
use gst::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstmotion::plugin_register_static().unwrap();
    });
}

const W: usize = 640;
const H: usize = 360;
const FPS: u32 = 10;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("motionclips-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Encodes `n` frames of `make` live (in real time, key frame every 2 s) into a
/// `motionclips` with `props`; returns its messages and those of its children.
fn record(
    dir: &Path,
    props: &str,
    n: u64,
    make: impl Fn(u64) -> scenes::Rgb + Send + 'static,
) -> Vec<gst::Structure> {
    record_with(dir, props, "", n, make)
}

/// [`record`], with `extra` in the pipeline's description (the audio, to `clips.audio`).
fn record_with(
    dir: &Path,
    props: &str,
    extra: &str,
    n: u64,
    make: impl Fn(u64) -> scenes::Rgb + Send + 'static,
) -> Vec<gst::Structure> {
    init();
    let p = gst::parse::launch(&format!(
        "appsrc name=src format=time is-live=true ! identity sync=true ! videoconvert \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=20 \
         ! motionclips name=clips location={} camera=garden {props} {extra}",
        dir.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    p.by_name("src")
        .unwrap()
        .set_property("caps", scenes::caps(W, H, FPS));
    let msgs = element_messages(&p);
    p.set_state(gst::State::Playing).unwrap();
    let src = p
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 0..n {
            if src.push_buffer(scenes::buffer(&make(i), i, FPS)).is_err() {
                return;
            }
        }
        let _ = src.end_of_stream();
    });
    let end = p.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(n / FPS as u64 + 60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    p.set_state(gst::State::Null).unwrap();
    feeder.join().unwrap();
    let msgs = msgs.lock().unwrap().clone();
    match end.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => msgs,
        Some(gst::MessageView::Error(e)) => panic!("error: {} ({:?})", e.error(), e.debug()),
        _ => panic!("no EOS; messages: {msgs:#?}"),
    }
}

fn of<'a>(msgs: &'a [gst::Structure], name: &str, kind: &str) -> Vec<&'a gst::Structure> {
    msgs.iter()
        .filter(|s| s.name() == name && s.get::<&str>("type") == Ok(kind))
        .collect()
}

fn secs(s: &gst::Structure, f: &str) -> f64 {
    s.get::<u64>(f).unwrap() as f64 / 1e9
}

/// The clip's video frames, demuxed: (pts seconds, key frame), and how many decode.
fn inspect(path: &Path) -> (Vec<(f64, bool)>, usize) {
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! qtdemux ! tee name=t \
         t. ! queue ! appsink name=raw sync=false \
         t. ! queue ! h264parse ! avdec_h264 ! appsink name=dec sync=false",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let raw = p
        .by_name("raw")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let dec = p
        .by_name("dec")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let frames = Arc::new(Mutex::new(Vec::new()));
    let decoded = Arc::new(Mutex::new(0usize));
    let (f2, d2) = (frames.clone(), decoded.clone());
    raw.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let s = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let b = s.buffer().unwrap();
                f2.lock().unwrap().push((
                    b.pts().map(|t| t.nseconds() as f64 / 1e9).unwrap_or(-1.0),
                    !b.flags().contains(gst::BufferFlags::DELTA_UNIT),
                ));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    dec.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                *d2.lock().unwrap() += 1;
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    play_to_end(&p, path);
    let frames = frames.lock().unwrap().clone();
    let decoded = *decoded.lock().unwrap();
    (frames, decoded)
}

#[test]
fn a_confirmed_event_gets_a_clip_with_pre_roll_and_a_snapshot() {
    init();
    let dir = tmpdir("cat");
    let cat = scenes::cat();
    // 7 s of garden; the cat walks in for 2 s, sits 1.5 s, walks out in 2 s; 7.5 s more.
    let msgs = record(&dir, "pre-roll=3 post-roll=2", 200, move |i| {
        let mut f = scenes::garden(W, H, i);
        let t = i as f64 / FPS as f64;
        let shown = if t < 7.0 {
            None
        } else if t < 10.5 {
            Some(((t - 7.0) / 2.0).min(1.0))
        } else {
            Some(1.0 - (t - 10.5) / 2.0).filter(|k| *k > 0.0)
        };
        if let Some(k) = shown {
            scenes::paste(&mut f, &cat, (W as f64 - 330.0 * k) as i64, 80, 0.9);
        }
        f
    });
    let starts = of(&msgs, "motion", "start");
    assert_eq!(starts.len(), 1, "{msgs:#?}");
    let motion_start = secs(starts[0], "start-stream-time");
    assert!(
        (6.9..7.8).contains(&motion_start),
        "motion at {motion_start}"
    );

    let clips = of(&msgs, "motionclips", "clip");
    assert_eq!(clips.len(), 1, "{msgs:#?}");
    let clip = clips[0];
    assert_eq!(clip.get::<&str>("verdict"), Ok("confirmed"), "{clip}");
    assert_eq!(clip.get::<&str>("camera"), Ok("garden"));
    let clip_start = secs(clip, "clip-start-stream-time");
    // Key frames every 2 s: the last one at or before 7 - 3 = 4 s.
    assert!(
        clip_start <= motion_start - 3.0,
        "clip starts at {clip_start}, motion at {motion_start}"
    );
    assert!(
        clip_start >= motion_start - 3.0 - 2.1,
        "clip starts at {clip_start}"
    );
    let end = secs(clip, "end-stream-time");
    let clip_end = secs(clip, "clip-end-stream-time");
    assert!(
        clip_end >= end + 1.8,
        "clip ends at {clip_end}, motion at {end}"
    );

    let path = PathBuf::from(clip.get::<&str>("location").unwrap());
    assert!(
        path.starts_with(&dir) && path.extension().unwrap() == "mp4",
        "{path:?}"
    );
    assert!(!path.with_extension("mp4.part").exists());
    let (frames, decoded) = inspect(&path);
    assert!(
        frames[0].1,
        "the first frame is not a key frame: {:?}",
        &frames[..3]
    );
    assert!(
        frames[0].0.abs() < 0.01,
        "the clip starts at {}",
        frames[0].0
    );
    let expected = ((clip_end - clip_start) * FPS as f64) as usize;
    assert!(
        frames.len().abs_diff(expected) <= 2 && decoded == frames.len(),
        "{} frames, {decoded} decoded, {expected} expected",
        frames.len()
    );

    let snap = PathBuf::from(clip.get::<&str>("snapshot").unwrap());
    let jpeg = std::fs::read(&snap).unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "{snap:?} is no JPEG");
    let img = scenes::load_rgb(&snap);
    assert_eq!((img.w, img.h), (W, H));
    // One snapshot at the confirmation (for the alerts), replaced by the event's best
    // frame at its end, in the same file.
    let snaps = of(&msgs, "motionclips", "snapshot");
    assert_eq!(snaps.len(), 2, "{snaps:#?}");
    assert!(snaps
        .iter()
        .all(|s| s.get::<&str>("location") == Ok(snap.to_str().unwrap())));
    let last = snaps.last().unwrap();
    assert_eq!(last.get::<&str>("label"), clip.get::<&str>("label"));
    // The box is drawn in red on the snapshot, at the box's place.
    let b = last.get::<gst::Structure>("box").unwrap();
    let (bx, by) = (
        (b.get::<f32>("x").unwrap() * W as f32) as usize + 1,
        (b.get::<f32>("y").unwrap() * H as f32) as usize + 1,
    );
    let o = (by * W + bx) * 3;
    let px = &img.data[o..o + 3];
    assert!(
        px[0] > 200 && px[1] < 90 && px[2] < 90,
        "no red box corner: {px:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Plays the pipeline reading `path` to its end (30 s at most); panics on an error.
fn play_to_end(p: &gst::Pipeline, path: &Path) {
    p.set_state(gst::State::Playing).unwrap();
    let end = p.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    p.set_state(gst::State::Null).unwrap();
    if let Some(gst::MessageView::Error(e)) = end.as_ref().map(|m| m.view()) {
        panic!(
            "{} does not play: {} ({:?})",
            path.display(),
            e.error(),
            e.debug()
        );
    }
    assert!(end.is_some(), "{} does not play to the end", path.display());
}

/// The clip's decoded tracks: video frame times (s), audio (first time, seconds of sound).
fn tracks(path: &Path) -> (Vec<f64>, Option<(f64, f64)>) {
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! qtdemux name=d \
         d.video_0 ! queue ! appsink name=v sync=false \
         d.audio_0 ! queue ! avdec_aac ! appsink name=a sync=false",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let times = |name: &str| {
        let out = Arc::new(Mutex::new(Vec::new()));
        let o2 = out.clone();
        p.by_name(name)
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap()
            .set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |s| {
                        let s = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let b = s.buffer().unwrap();
                        let secs = |t: Option<gst::ClockTime>| {
                            t.map(|t| t.nseconds() as f64 / 1e9).unwrap_or(0.0)
                        };
                        o2.lock().unwrap().push((secs(b.pts()), secs(b.duration())));
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
        out
    };
    let (video, audio) = (times("v"), times("a"));
    play_to_end(&p, path);
    let video = video.lock().unwrap().iter().map(|(t, _)| *t).collect();
    let audio = audio.lock().unwrap();
    let sound = audio
        .first()
        .map(|(t, _)| (*t, audio.iter().map(|(_, d)| d).sum()));
    (video, sound)
}

#[test]
fn a_clip_carries_the_cameras_audio_from_its_first_frame_to_its_last() {
    init();
    let dir = tmpdir("audio");
    let cat = scenes::cat();
    // G.711 A-law as the cameras send it, live beside the video; the cat from 5 s to 8 s.
    let msgs = record_with(
        &dir,
        "pre-roll=2 post-roll=1",
        "audiotestsrc is-live=true samplesperbuffer=400 wave=ticks \
         ! audio/x-raw,rate=8000,channels=1 ! alawenc ! clips.audio",
        110,
        move |i| {
            let mut f = scenes::garden(W, H, i);
            let t = i as f64 / FPS as f64;
            if (5.0..8.0).contains(&t) {
                let k = ((t - 5.0) / 1.0).min(1.0);
                scenes::paste(&mut f, &cat, (W as f64 - 330.0 * k) as i64, 80, 0.9);
            }
            f
        },
    );
    let clips = of(&msgs, "motionclips", "clip");
    assert_eq!(clips.len(), 1, "{msgs:#?}");
    assert_eq!(clips[0].get::<bool>("audio"), Ok(true), "{}", clips[0]);
    let path = PathBuf::from(clips[0].get::<&str>("location").unwrap());
    let (video, sound) = tracks(&path);
    let (first, seconds) = sound.unwrap_or_else(|| panic!("{path:?} has no sound"));
    let span = video.last().unwrap() - video[0] + 1.0 / FPS as f64;
    assert!(span > 4.0, "{} s of video", span);
    // The sound starts with the first frame (the pre-roll's too) and lasts as long.
    assert!(
        first <= video[0] + 0.3,
        "sound from {first} s, video from {}",
        video[0]
    );
    assert!(
        (seconds - span).abs() < 0.5,
        "{seconds} s of sound for {span} s of video"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_event_cut_by_the_end_of_stream_has_its_clip_as_its_last_news() {
    init();
    let dir = tmpdir("cut");
    let cat = scenes::cat();
    // The cat walks in at 3 s and is still there when the stream ends at 7 s: the event's
    // verdict, its best snapshot and its clip all come at the end of stream, and a clip
    // announced between the verdict and the snapshot made the event's news come after
    // its clip (the daemon sent an update after the event's end).
    let msgs = record(&dir, "pre-roll=1 post-roll=2", 70, move |i| {
        let mut f = scenes::garden(W, H, i);
        let t = i as f64 / FPS as f64;
        if t >= 3.0 {
            let k = ((t - 3.0) / 1.5).min(1.0);
            scenes::paste(&mut f, &cat, (W as f64 - 330.0 * k) as i64, 80, 0.9);
        }
        f
    });
    let ours: Vec<&gst::Structure> = msgs
        .iter()
        .filter(|s| matches!(s.name().as_str(), "objectdetect" | "motionclips"))
        .collect();
    let end = ours
        .iter()
        .position(|s| s.name() == "objectdetect" && s.get::<&str>("type") == Ok("end"))
        .unwrap_or_else(|| panic!("no verdict: {msgs:#?}"));
    assert_eq!(ours[end].get::<&str>("verdict"), Ok("confirmed"));
    let last = ours.last().unwrap();
    assert_eq!(last.get::<&str>("type"), Ok("clip"), "{ours:#?}");
    let snaps: Vec<usize> = (0..ours.len())
        .filter(|i| ours[*i].get::<&str>("type") == Ok("snapshot"))
        .collect();
    assert!(
        snaps.iter().any(|i| *i > end),
        "no snapshot after the verdict: {ours:#?}"
    );
    assert!(
        !last.get::<&str>("snapshot").unwrap_or("").is_empty(),
        "{last}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dismissed_events_get_clips_only_when_all_are_recorded() {
    for (record_all, clips_wanted) in [(false, 0), (true, 1)] {
        let dir = tmpdir(if record_all { "all" } else { "confirmed" });
        let props = format!(
            "pre-roll=1 post-roll=1 record={}",
            if record_all { "all" } else { "confirmed" }
        );
        // A gust of wind in the hedge from 3 s to 6 s.
        let msgs = record(&dir, &props, 100, move |i| {
            let t = i as f64 / FPS as f64;
            scenes::foliage(W, H, i, t, if (3.0..6.0).contains(&t) { 1.0 } else { 0.0 })
        });
        assert!(!of(&msgs, "motion", "start").is_empty(), "{msgs:#?}");
        let ends = of(&msgs, "objectdetect", "end");
        assert!(
            ends.iter()
                .all(|e| e.get::<&str>("verdict") == Ok("dismissed")),
            "{ends:#?}"
        );
        let clips = of(&msgs, "motionclips", "clip");
        assert_eq!(
            clips.len(),
            clips_wanted,
            "record_all={record_all}: {msgs:#?}"
        );
        let files: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let mp4 = files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "mp4"))
            .count();
        assert_eq!(mp4, clips_wanted, "{files:?}");
        if record_all {
            assert_eq!(
                clips[0].get::<&str>("verdict"),
                Ok("dismissed"),
                "{}",
                clips[0]
            );
            let (frames, decoded) = inspect(Path::new(clips[0].get::<&str>("location").unwrap()));
            assert!(frames[0].1 && decoded == frames.len() && decoded > 20);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_clip_folder_that_cannot_be_made_is_a_clear_error() {
    init();
    let file = std::env::temp_dir().join(format!("motionclips-file-{}", std::process::id()));
    std::fs::write(&file, b"not a folder").unwrap();
    let p = gst::parse::launch(&format!(
        "videotestsrc num-buffers=1 ! x264enc ! motionclips location={}/clips",
        file.display()
    ))
    .unwrap();
    assert!(p.set_state(gst::State::Playing).is_err());
    let msg = p
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error message");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    assert!(
        e.error()
            .to_string()
            .contains("Cannot create the clip folder"),
        "{}",
        e.error()
    );
    p.set_state(gst::State::Null).unwrap();
    let _ = std::fs::remove_file(&file);
}

/// A clip being written when the process is killed (`kill -9`): what was written before
/// plays (the writer is ringrecorder's: a fragment a second, unbuffered), and the next
/// start of the element cuts the file back to its last complete fragment and announces
/// it.
#[test]
fn a_clip_cut_by_kill_9_plays_and_is_recovered_at_the_next_start() {
    init();
    let dir = tmpdir("kill9");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap();
    assert!(target.join("libgstmotion.so").exists(), "cargo build first");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/with-local-plugins");
    // A ball in motion all the time: one event, recorded whatever its verdict, with a
    // post-roll longer than the test.
    let mut child = std::process::Command::new("bash")
        .arg(script)
        .arg(target)
        .args([
            "gst-launch-1.0",
            "videotestsrc",
            "is-live=true",
            "pattern=ball",
            "!",
            "video/x-raw,width=320,height=240,framerate=10/1",
            "!",
            "x264enc",
            "tune=zerolatency",
            "speed-preset=ultrafast",
            "key-int-max=10",
            "!",
            "motionclips",
            "camera=yard",
            "record=all",
            "pre-roll=1",
            "post-roll=60",
        ])
        .arg(format!("location={}", dir.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let clips = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains(".mp4"))
            .collect();
        v.sort();
        v
    };
    // The clip gets its final name once it holds a complete fragment; then 3 s more.
    let t0 = std::time::Instant::now();
    while !clips()
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "mp4"))
    {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "no clip in 60 s: {:?}",
            clips()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    // with-local-plugins execs gst-launch: this is its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    let found = clips();
    assert_eq!(found.len(), 1, "{found:?}");
    let clip = found[0].clone();
    assert!(clip.to_string_lossy().ends_with(".mp4"), "{clip:?}");
    // As the kill left it: at least the 3 s written since it got its name play.
    let (frames, decoded) = inspect(&clip);
    assert!(frames.len() >= 25, "{} frames: {frames:?}", frames.len());
    assert_eq!(decoded, frames.len());
    // Where the kill came does not depend on the test: add what a kill in the middle of
    // a fragment leaves (a `moof` whose rest never reached the file).
    let left = std::fs::metadata(&clip).unwrap().len();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&clip)
            .unwrap();
        f.write_all(&[0, 0, 0x10, 0, b'm', b'o', b'o', b'f', 0, 0, 0, 16])
            .unwrap();
    }
    // The next start: the clip is cut back to its last complete fragment, plays, and is
    // announced.
    let p = gst::parse::launch(&format!(
        "fakesrc num-buffers=0 ! video/x-h264 ! motionclips camera=yard location={}",
        dir.display()
    ))
    .unwrap();
    let msgs = element_messages(&p);
    p.set_state(gst::State::Ready).unwrap();
    p.set_state(gst::State::Null).unwrap();
    let after = std::fs::metadata(&clip).unwrap().len();
    let recovered = of(&msgs.lock().unwrap(), "motionclips", "recovered")
        .iter()
        .map(|s| s.get::<String>("location").unwrap())
        .collect::<Vec<_>>();
    assert_eq!(after, left, "cut back to what the kill left");
    assert_eq!(recovered, [clip.to_string_lossy().to_string()]);
    let (frames2, decoded2) = inspect(&clip);
    assert_eq!(frames2.len(), frames.len());
    assert_eq!(decoded2, frames2.len());
    eprintln!(
        "killed: {} frames playable as left ({left} bytes), {} after the repair",
        frames.len(),
        frames2.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The decoded frames go out of the `raw` request pad too, up to the end of the stream, as
/// decoded pictures at the stream's size.
#[test]
fn the_raw_pad_gives_the_decoded_frames() {
    init();
    let dir = tmpdir("raw");
    let p = gst::parse::launch(&format!(
        "videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240,framerate=10/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 \
         ! motionclips name=clips location={} \
         clips.raw ! appsink name=frames sync=false",
        dir.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let clips = p.by_name("clips").unwrap();
    assert!(clips.static_pad("raw").is_some_and(|r| r.is_linked()));
    let sink = p
        .by_name("frames")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let frames: Arc<Mutex<Vec<(u32, u32)>>> = Arc::default();
    let f2 = frames.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
                f2.lock().unwrap().push((info.width(), info.height()));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    p.set_state(gst::State::Playing).unwrap();
    let end = p.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let state = p.state(gst::ClockTime::ZERO);
    p.set_state(gst::State::Null).unwrap();
    let frames = frames.lock().unwrap();
    assert!(
        matches!(
            end.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "{end:?}; {} frames; {state:?}",
        frames.len()
    );
    // Its queue is leaky: a busy machine may drop some, never add any.
    assert!((1..=30).contains(&frames.len()), "{} frames", frames.len());
    assert!(frames.iter().all(|f| *f == (320, 240)), "{frames:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
