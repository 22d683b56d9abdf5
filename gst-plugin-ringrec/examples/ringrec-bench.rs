//! Benchmark: N simulated 1080p 15 fps cameras recorded at once, each
//! `camsrc ! ringrecorder` in one process (as a recording daemon would run them).
//! Each camera is a separate `tapo-sim` process (SMPTE bars, ~2 Mbit/s like a Tapo
//! C200 main stream); only this process is measured.
//!
//! Prints the recorder's CPU (from /proc/self/stat, over the measured window) and
//! memory (RSS growth over the process before the pipelines started) per camera, bytes
//! received from the cameras vs bytes written to disk, and frames sent by the
//! simulators, received by camsrc, recorded, and read back from the files.
//!
//! Usage: ringrec-bench [--cameras 16] [--seconds 60] [--format mp4|mkv]
//!                      [--dir /tmp/ringrec-bench] [--tapo-sim PATH]

use gst::prelude::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn arg(name: &str) -> Option<String> {
    let mut it = std::env::args().skip_while(|a| a != name);
    it.next()?;
    it.next()
}

/// (user + system CPU seconds, RSS bytes) of this process.
fn usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / tick;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let rss = f[21].parse::<u64>().unwrap() * page;
    (cpu, rss)
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for day in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(day.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

/// Video frames in a segment, through its demuxer (no decoding).
fn frames_in(path: &Path) -> u64 {
    let demux = if path.extension().is_some_and(|e| e == "mkv") {
        "matroskademux"
    } else {
        "qtdemux"
    };
    let desc = format!(
        "filesrc location={} ! {demux} ! video/x-h264 ! fakesink name=s sync=false",
        path.display()
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let c2 = count.clone();
    p.by_name("s")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            c2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    p.set_state(gst::State::Playing).unwrap();
    let _ = p.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    p.set_state(gst::State::Null).unwrap();
    count.load(std::sync::atomic::Ordering::Relaxed)
}

fn main() {
    let cameras: usize = arg("--cameras").map(|v| v.parse().unwrap()).unwrap_or(16);
    let seconds: u64 = arg("--seconds").map(|v| v.parse().unwrap()).unwrap_or(60);
    let format = arg("--format").unwrap_or_else(|| "mp4".into());
    let dir = PathBuf::from(arg("--dir").unwrap_or_else(|| "/tmp/ringrec-bench".into()));
    let exe = std::env::current_exe().unwrap();
    let sim_bin = arg("--tapo-sim")
        .map(PathBuf::from)
        .unwrap_or_else(|| exe.parent().unwrap().parent().unwrap().join("tapo-sim"));
    let _ = std::fs::remove_dir_all(&dir);
    gst::init().unwrap();
    gstcamsrc::plugin_register_static().unwrap();
    gstringrec::plugin_register_static().unwrap();

    println!("starting {cameras} simulated cameras (1920x1080 H.264 15 fps + PCMA)...");
    let mut sims: Vec<_> = (0..cameras)
        .map(|_| {
            tapo_sim::process::TapoProcess::start(&sim_bin, "pw", &["--pattern", "pattern=smpte"])
        })
        .collect();
    let (_, rss_before) = usage();
    let pipelines: Vec<gst::Pipeline> = sims
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let uri = s.uri("pw").replace("/stream2", "/stream1");
            // --format none: camsrc alone, to tell camsrc's share from the recorder's.
            let desc = if format == "none" {
                format!("camsrc name=c uri={uri} ! fakesink c.audio ! fakesink")
            } else {
                format!(
                    "camsrc name=c uri={uri} ! ringrecorder name=r location={}/cam{i:02} format={format} max-size-time=10s c.audio ! r.audio",
                    dir.display()
                )
            };
            gst::parse::launch(&desc)
                .unwrap()
                .downcast::<gst::Pipeline>()
                .unwrap()
        })
        .collect();
    // Frames that reached each recorder (camsrc's own count also has the ones still
    // queued inside it when EOS comes).
    let counters: Vec<_> = pipelines
        .iter()
        .map(|_| std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)))
        .collect();
    for (p, n) in pipelines.iter().zip(&counters) {
        if let Some(pad) = p.by_name("r").and_then(|r| r.static_pad("video")) {
            let n = n.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        }
        p.set_state(gst::State::Playing).unwrap();
    }
    // Warm-up: every camera connected and recording.
    std::thread::sleep(Duration::from_secs(5));
    let sent_before: Vec<u64> = sims.iter_mut().map(|s| s.stats().0).collect();
    let (cpu0, _) = usage();
    let t0 = Instant::now();
    let mut rss_peak = 0;
    while t0.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(500));
        rss_peak = rss_peak.max(usage().1);
    }
    let (cpu1, rss_end) = usage();
    let window = t0.elapsed().as_secs_f64();
    let sent_window: u64 = sims
        .iter_mut()
        .zip(&sent_before)
        .map(|(s, b)| s.stats().0 - b)
        .sum();
    for p in &pipelines {
        p.send_event(gst::event::Eos::new());
    }
    let mut errors = 0;
    for p in &pipelines {
        let m = p.bus().unwrap().timed_pop_filtered(
            gst::ClockTime::from_seconds(20),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        if !matches!(m.as_ref().map(|m| m.view()), Some(gst::MessageView::Eos(_))) {
            errors += 1;
            eprintln!("pipeline did not end cleanly: {m:?}");
        }
    }
    let (mut received, mut recv_bytes, mut recorded, mut dropped) = (0u64, 0u64, 0u64, 0u64);
    for (i, p) in pipelines.iter().enumerate() {
        let cs = p.by_name("c").unwrap().property::<gst::Structure>("stats");
        received += cs.get::<u64>("video-frames").unwrap();
        recv_bytes += cs.get::<u64>("bytes").unwrap();
        if let Some(r) = p.by_name("r") {
            let rs = r.property::<gst::Structure>("stats");
            let into = counters[i].load(std::sync::atomic::Ordering::Relaxed);
            let rec = rs.get::<u64>("frames-recorded").unwrap();
            let drop = rs.get::<u64>("frames-dropped").unwrap();
            if into != rec + drop {
                println!(
                    "camera {i:02}: {into} frames in, {} after h264parse, {rec} recorded, {drop} dropped",
                    rs.get::<u64>("frames-in").unwrap()
                );
            }
            recorded += rec;
            dropped += drop;
        }
        p.set_state(gst::State::Null).unwrap();
    }
    drop(sims);
    let (mut written, mut read_back, mut files) = (0u64, 0u64, 0usize);
    for i in 0..cameras {
        for f in segment_files(&dir.join(format!("cam{i:02}"))) {
            written += std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
            read_back += frames_in(&f);
            files += 1;
        }
    }
    let cpu_per_cam = (cpu1 - cpu0) / window / cameras as f64 * 100.0;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "cameras {cameras}, format {format}, measured window {window:.1} s (after 5 s warm-up)"
    );
    println!(
        "CPU (recorder process: camsrc + ringrecorder): {:.2}% of one core per camera, {:.1}% in all",
        cpu_per_cam,
        cpu_per_cam * cameras as f64
    );
    println!(
        "memory: RSS {:.1} MiB before the pipelines, peak {:.1} MiB, end {:.1} MiB: {:.2} MiB per camera",
        mib(rss_before),
        mib(rss_peak),
        mib(rss_end),
        mib(rss_peak.saturating_sub(rss_before)) / cameras as f64
    );
    println!(
        "bytes: received {} ({:.1} MiB, RTP payload as camsrc passes it on), written {} ({:.1} MiB) in {files} files: ratio {:.3}",
        recv_bytes,
        mib(recv_bytes),
        written,
        mib(written),
        written as f64 / recv_bytes.max(1) as f64
    );
    let into_recorder: u64 = counters
        .iter()
        .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    println!(
        "frames: sent by the simulators in the window {sent_window} ({:.1} fps per camera), received by camsrc {received}, into the recorders {into_recorder}, recorded {recorded}, dropped {dropped}, read back from the files {read_back}",
        sent_window as f64 / window / cameras as f64
    );
    println!(
        "every frame into the recorders was recorded and is in the files: {}; pipelines ending with an error: {errors}",
        if into_recorder == recorded && recorded == read_back && dropped == 0 {
            "yes"
        } else {
            "NO"
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
}
