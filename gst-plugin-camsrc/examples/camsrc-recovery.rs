//! Benchmark: how long after a camera answers again does camsrc deliver the first
//! buffer downstream? Against `tapo-sim` as a separate process:
//! - freeze: SIGSTOP for longer than `stall-timeout` (camsrc rebuilds its source while
//!   the camera is frozen), then SIGCONT; time from SIGCONT to the first video buffer;
//! - short freeze: SIGSTOP for less than `stall-timeout` (the session survives);
//! - restart: the camera reboots (`restart 2000`); time from its "back up" line to the
//!   first video buffer.
//!
//! The first buffer after a restart is always a key frame, so the figures include the
//! wait for the camera's next IDR (2 s GOP in the simulator, as on Tapo cameras).
//!
//! Usage: camsrc-recovery [--rounds N] [--tapo-sim PATH]

use gst::prelude::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn arg(name: &str) -> Option<String> {
    let mut it = std::env::args().skip_while(|a| a != name);
    it.next()?;
    it.next()
}

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    if v.is_empty() {
        println!("{name}: no samples");
        return;
    }
    println!(
        "{name}: n={} median={:.0} ms p90={:.0} ms min={:.0} ms max={:.0} ms",
        v.len(),
        ms(v[v.len() / 2]),
        ms(v[(v.len() * 9 / 10).min(v.len() - 1)]),
        ms(v[0]),
        ms(v[v.len() - 1])
    );
}

fn main() {
    let rounds: usize = arg("--rounds").and_then(|r| r.parse().ok()).unwrap_or(8);
    let exe = std::env::current_exe().unwrap();
    let default_sim = exe.parent().unwrap().parent().unwrap().join("tapo-sim");
    let sim_path = arg("--tapo-sim").map(Into::into).unwrap_or(default_sim);
    gst::init().unwrap();
    gstcamsrc::plugin_register_static().unwrap();

    let mut child = Command::new(&sim_path)
        .args(["--port", "0", "--password-env", "BENCH_PW"])
        .env("BENCH_PW", "bench")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (cargo build --release -p tapo-sim)",
                sim_path.display()
            )
        });
    let pid = child.id() as i32;
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let port: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("tapo-sim port");
    let back_up: Arc<Mutex<Option<Instant>>> = Default::default();
    let b2 = back_up.clone();
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            if l.contains("back up") {
                *b2.lock().unwrap() = Some(Instant::now());
            }
        }
    });

    let stall = 2u32;
    let arrivals: Arc<Mutex<Vec<Instant>>> = Default::default();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("camsrc")
        .property(
            "uri",
            format!("rtsp://admin:bench@127.0.0.1:{port}/stream1"),
        )
        .property("stall-timeout", stall)
        .property("audio", false)
        .build()
        .unwrap();
    pipeline.add(&src).unwrap();
    let pl = pipeline.downgrade();
    let a2 = arrivals.clone();
    src.connect_pad_added(move |_, pad| {
        let pipeline = pl.upgrade().unwrap();
        let a3 = a2.clone();
        let sink = gst_app::AppSink::builder()
            .sync(false)
            .callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |s| {
                        let _ = s.pull_sample();
                        a3.lock().unwrap().push(Instant::now());
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            )
            .build();
        pipeline.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        pad.link(&sink.static_pad("sink").unwrap()).unwrap();
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let first_after = |t: Instant, timeout: Duration| -> Option<Duration> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(a) = arrivals.lock().unwrap().iter().find(|a| **a > t) {
                return Some(a.duration_since(t));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    };
    assert!(
        first_after(
            Instant::now() - Duration::from_secs(60),
            Duration::from_secs(20)
        )
        .is_some(),
        "no video from the simulator"
    );
    std::thread::sleep(Duration::from_secs(2));
    println!("camsrc recovery benchmark: tapo-sim /stream1 1080p15, stall-timeout {stall} s, {rounds} rounds each");

    let mut freeze = Vec::new();
    let mut short = Vec::new();
    let mut restart = Vec::new();
    for i in 0..rounds {
        // Long freeze: camsrc notices the stall and rebuilds while the camera is frozen.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        std::thread::sleep(Duration::from_millis(
            stall as u64 * 1000 + 1500 + 300 * i as u64,
        ));
        let t = Instant::now();
        unsafe { libc::kill(pid, libc::SIGCONT) };
        match first_after(t, Duration::from_secs(30)) {
            Some(d) => freeze.push(d),
            None => println!("freeze round {i}: no recovery within 30 s"),
        }
        std::thread::sleep(Duration::from_secs(2));

        // Short freeze: below stall-timeout, the RTSP session just carries on.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        std::thread::sleep(Duration::from_millis(1000));
        let t = Instant::now();
        unsafe { libc::kill(pid, libc::SIGCONT) };
        if let Some(d) = first_after(t, Duration::from_secs(30)) {
            short.push(d);
        }
        std::thread::sleep(Duration::from_secs(2));

        // Reboot: the port refuses connections for 2 s.
        *back_up.lock().unwrap() = None;
        writeln!(stdin, "restart 2000").unwrap();
        stdin.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let up = loop {
            if let Some(t) = *back_up.lock().unwrap() {
                break Some(t);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(t) = up {
            match first_after(t, Duration::from_secs(30)) {
                Some(d) => restart.push(d),
                None => println!("restart round {i}: no recovery within 30 s"),
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let s = src.property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    stats("freeze > stall-timeout, SIGCONT -> first buffer", freeze);
    stats("freeze < stall-timeout, SIGCONT -> first buffer", short);
    stats("reboot, camera back up -> first buffer", restart);
    println!(
        "camsrc stats: restarts={} video-frames={}",
        s.get::<u32>("restarts").unwrap_or(0),
        s.get::<u64>("video-frames").unwrap_or(0)
    );
}
