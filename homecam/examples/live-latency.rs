//! Glass-to-glass latency of the web app's live views, printed (no assertions):
//! `bash scripts/bench-live` runs it.
//!
//! The camera is an RTSP server in this program (gst-rtsp-server: videotestsrc, x264,
//! A-law audio) that writes the wall clock, in milliseconds, into each picture as 40
//! black or white blocks along its top edge when the picture is made. The daemon (the
//! `homecam` binary next to this example) reads the camera as it reads a Tapo, and a
//! headless Chromium shows the web app's live wall. In the page, each presented frame is
//! drawn into a canvas, its blocks read back, and the time it was shown compared with the
//! time in the picture: the whole path, camera encoder, RTSP, homecam, HTTP, the browser's
//! demuxer, decoder and compositor. The same for the MJPEG view, for comparison.
//!
//! ```text
//! cargo run --release -p homecam --example live-latency [-- FRAMES]
//! ```

use gst::prelude::*;
use gst_rtsp_server::prelude::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BITS: usize = 40;
const BLOCK: usize = 16;

/// The wall clock in ms (mod 2^40) into the top 32 rows of an I420 picture, grey (no
/// colour, so that it reads back the same in RGB).
fn stamp(buf: &mut gst::BufferRef, width: usize, height: usize) {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        % (1u64 << BITS);
    let Ok(mut map) = buf.map_writable() else {
        return;
    };
    for row in 0..2 * BLOCK {
        for bit in 0..BITS {
            let on = (ms >> (BITS - 1 - bit)) & 1 == 1;
            let start = row * width + bit * BLOCK;
            if let Some(px) = map.get_mut(start..start + BLOCK) {
                px.fill(if on { 235 } else { 16 });
            }
        }
    }
    let (cw, ch) = (width / 2, height / 2);
    for plane in 0..2 {
        let start = width * height + plane * cw * ch;
        if let Some(px) = map.get_mut(start..start + BLOCK * cw) {
            px.fill(128);
        }
    }
}

/// The camera: rtsp://127.0.0.1:PORT/cam, on a GLib main loop of its own.
fn camera() -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ctx = gst::glib::MainContext::new();
        let _guard = ctx.acquire().unwrap();
        let ml = gst::glib::MainLoop::new(Some(&ctx), false);
        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service("0");
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        let audio = if std::env::var_os("LIVE_LATENCY_NO_AUDIO").is_some() {
            ""
        } else {
            "audiotestsrc is-live=true wave=sine samplesperbuffer=160 ! audio/x-raw,rate=8000,channels=1 \
             ! alawenc ! rtppcmapay name=pay1 pt=8"
        };
        factory.set_launch(&format!(
            "( videotestsrc is-live=true pattern=smpte \
               ! video/x-raw,format=I420,width=640,height=360,framerate=15/1 ! identity name=stamp \
               ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=1500 \
               ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 \
               ! rtph264pay name=pay0 pt=96 aggregate-mode=zero-latency {audio} )"
        ));
        factory.set_shared(true);
        factory.set_latency(0);
        factory.connect_media_configure(|_, media| {
            let bin = media.element().downcast::<gst::Bin>().unwrap();
            let pad = bin.by_name("stamp").unwrap().static_pad("src").unwrap();
            pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
                if let Some(gst::PadProbeData::Buffer(b)) = &mut info.data {
                    stamp(b.make_mut(), 640, 360);
                }
                gst::PadProbeReturn::Ok
            });
        });
        server.mount_points().unwrap().add_factory("/cam", factory);
        let _id = server.attach(Some(&ctx)).unwrap();
        tx.send(server.bound_port() as u16).unwrap();
        ml.run();
    });
    rx.recv().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Median and 90th percentile of `v` (ms).
fn summary(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!(
        "median {:.0} ms, p90 {:.0} ms, min {:.0} ms ({} frames)",
        q(0.5),
        q(0.9),
        v[0],
        v.len()
    )
}

/// The page's code: reads the time out of `el` (a video or an image) each time it shows
/// a new picture; resolves with [shown - stamped] per picture.
const MEASURE: &str = r#"
window.measure = (el, n) => new Promise((done) => {
  const c = document.createElement("canvas");
  c.width = 640; c.height = 32;
  const g = c.getContext("2d", { willReadFrequently: true });
  const read = () => {
    g.drawImage(el, 0, 0, 640, 32, 0, 0, 640, 32);
    const d = g.getImageData(0, 0, 640, 32).data;
    let ms = 0;
    const at = (i) => (16 * 640 + i * 16 + 8) * 4;
    for (let i = 0; i < 40; i++) ms = ms * 2 + (d[at(i)] + d[at(i) + 1] + d[at(i) + 2] > 384 ? 1 : 0);
    return ms;
  };
  const out = [];
  const wall = (t) => (performance.timeOrigin + t) % 2 ** 40;
  if (el.requestVideoFrameCallback) {
    const cb = (now, meta) => {
      const r = read();
      window.pair = [wall(meta.expectedDisplayTime), r];
      out.push(wall(meta.expectedDisplayTime) - r);
      if (out.length < n) el.requestVideoFrameCallback(cb); else done(out);
    };
    el.requestVideoFrameCallback(cb);
  } else {
    let last = -1;
    const tick = () => {
      const t = read();
      if (t !== last) { last = t; out.push(wall(performance.now()) - t); }
      if (out.length < n) setTimeout(tick, 5); else done(out);
    };
    tick();
  }
});
true"#;

/// One daemon with camsrc's jitter buffer at `latency` ms, one page: the figures of the
/// MP4 and MJPEG views.
fn run(cam: u16, latency: u32, frames: usize) -> (String, String, String, Value) {
    let web = free_port();
    let dir = std::env::temp_dir().join(format!("live-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("homecam.toml");
    std::fs::write(
        &cfg,
        format!(
            "[general]\nmetrics = \"\"\ndata-dir = \"{}\"\n\n[web]\nlisten = \"127.0.0.1:{web}\"\nauth = \"none\"\n\n\
             [[camera]]\nname = \"cam\"\nuri = \"rtsp://127.0.0.1:{cam}/cam\"\nlatency = {latency}\n",
            dir.display()
        ),
    )
    .unwrap();
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("homecam");
    let mut daemon = Command::new(&bin)
        .args(["run", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo build -p homecam)", bin.display()));
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", web)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(20), "no web app");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut b = test_browser::Browser::launch(1280, 800);
    let s = b.open(&format!("http://127.0.0.1:{web}/"));
    b.wait_for(
        &s,
        "(() => { const v = document.querySelector('#wall [data-live=mp4] video'); return v && v.currentTime > 3; })()",
        Duration::from_secs(30),
        "the MP4 live view",
    );
    b.eval(&s, MEASURE);
    let muted: Vec<f64> = serde_json::from_value(b.eval(
        &s,
        &format!("measure(document.querySelector('#wall video'), {frames})"),
    ))
    .unwrap();
    // With the sound on (the tile reconnects with the audio track).
    b.eval(&s, "document.querySelector('#wall .sound').click(); true");
    b.wait_for(
        &s,
        "(() => { const v = document.querySelector('#wall video'); return !v.muted && v.currentTime > 3 && v.webkitAudioDecodedByteCount > 0; })()",
        Duration::from_secs(30),
        "the MP4 live view with sound",
    );
    let mp4: Vec<f64> = serde_json::from_value(b.eval(
        &s,
        &format!("measure(document.querySelector('#wall video'), {frames})"),
    ))
    .unwrap();
    let info = b.eval(&s, "(() => { const v = document.querySelector('#wall video'); return JSON.stringify({lag: v.buffered.end(v.buffered.length - 1) - v.currentTime, audio: v.webkitAudioDecodedByteCount, dropped: v.getVideoPlaybackQuality().droppedVideoFrames}); })()");
    // The MJPEG view (5 pictures a second) of the same camera, in the same page.
    b.eval(
        &s,
        "(() => { const i = new Image(); i.id = 'mj'; i.src = '/live/cam.mjpeg'; document.body.append(i); return true; })()",
    );
    b.wait_for(
        &s,
        "document.querySelector('#mj').naturalWidth > 0",
        Duration::from_secs(20),
        "the MJPEG view",
    );
    let mjpeg: Vec<f64> = serde_json::from_value(b.eval(
        &s,
        &format!(
            "measure(document.querySelector('#mj'), {})",
            (frames / 3).max(10)
        ),
    ))
    .unwrap();
    let info: Value = serde_json::from_str(info.as_str().unwrap_or("{}")).unwrap_or_default();
    drop(b);
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&dir);
    (summary(muted), summary(mp4), summary(mjpeg), info)
}

/// The same camera read by camsrc in this process and decoded: how old each picture is
/// when it has come through camsrc (and a decoder), before anything of the web app.
fn at_camsrc(cam: u16, latency: u32, frames: usize) -> String {
    homecam::daemon::init().unwrap();
    let p = gst::parse::launch(&format!(
        "camsrc name=c uri=rtsp://127.0.0.1:{cam}/cam latency={latency} audio=false \
         c.video ! avdec_h264 ! videoconvert ! video/x-raw,format=GRAY8 ! appsink name=s sync=false"
    ))
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
    while out.len() < frames {
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) else {
            break;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            % (1u64 << BITS);
        let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok()) else {
            continue;
        };
        let mut ms = 0u64;
        for i in 0..BITS {
            let px = map.get(16 * 640 + i * BLOCK + 8).copied().unwrap_or(0);
            ms = ms * 2 + u64::from(px > 128);
        }
        out.push(now as f64 - ms as f64);
    }
    p.set_state(gst::State::Null).unwrap();
    summary(out)
}

fn main() {
    let frames: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    gst::init().unwrap();
    let cam = camera();
    println!("Glass-to-glass latency on loopback, camera 640x360 at 15 fps (x264 zerolatency, A-law audio), homecam, headless Chromium:");
    println!("| camsrc latency (RTSP jitter buffer) | decoded after camsrc (no web app) | MP4 live view, muted (the wall's default: video alone) | MP4 live view with sound (AAC) | MJPEG live view (5 fps re-encode, no audio) | MP4 player at the end (with sound) |");
    println!("|---|---|---|---|---|---|");
    for latency in [200, 50] {
        let direct = at_camsrc(cam, latency, 100);
        let (muted, mp4, mjpeg, info) = run(cam, latency, frames);
        println!(
            "| {latency} ms{} | {direct} | {muted} | {mp4} | {mjpeg} | {:.0} ms buffered ahead, {} bytes of audio decoded, {} frames dropped |",
            if latency == 200 { " (default)" } else { "" },
            info["lag"].as_f64().unwrap_or(-1.0) * 1000.0,
            info["audio"],
            info["dropped"]
        );
    }
}
