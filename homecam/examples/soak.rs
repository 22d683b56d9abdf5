//! A long run of the daemon, printed (no assertions): `bash scripts/soak-homecam HOURS`
//! runs it.
//!
//! The `homecam` binary next to this example runs 4 simulated cameras (3 with a bouncing
//! ball, so motion never ends, and 1 with people walking, so the object filter confirms
//! events) with every job: ring recording, MJPEG, motion + object filter + clips, Kafka
//! through its spool (tansu), MQTT (mosquitto), the web app and the RTSP re-stream. Every
//! `--outage-every` seconds (default 150) one camera, in turn, reboots (its port refused
//! for 10 s) or stops its video for 20 s. Every minute a client pulls 5 s of one camera
//! over RTSP and of its MP4 live view, and reads the event list.
//!
//! Every minute it samples the daemon's resident memory, the resident memory right after
//! the daemon's last once-a-minute heap trim (without the churn since), the C heap under
//! it (in use and kept free by the allocator, from `/metrics`), open file descriptors,
//! threads, the Kafka spool's size and the data directory's size. At the end it prints
//! the growth per hour of each, fitted (least squares) over the samples after the first 5
//! minutes (start-up: pipelines, the model, the first segments), memory slopes with their
//! standard error. A slope that does not round to zero is a leak to find: if the heap in
//! use grows with it, something keeps memory; if only the free part grows, it is the
//! allocator's fragmentation. The second half's slope is printed too, since the first
//! minutes are warm-up (recordings filling their 20 min).
//!
//! ```text
//! cargo run --release -p homecam --example soak -- HOURS [--outage-every SECONDS]
//! ```

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;
use common::{free_port, Homecam};

#[derive(Clone, Copy, Default)]
struct Sample {
    minutes: f64,
    rss_kib: f64,
    /// The resident size right after the daemon's last heap trim (`/metrics`): RSS
    /// without the allocator's churn since.
    floor_kib: f64,
    /// The C heap from the daemon's `/metrics`: in use, and kept free by the allocator.
    heap_kib: f64,
    free_kib: f64,
    fds: f64,
    threads: f64,
    spool_kib: f64,
    data_mib: f64,
}

fn status_field(pid: u32, name: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Bytes under `dir`, recursively.
fn du(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => du(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The sample `NAME` (with its labels) from the daemon's `/metrics`, in KiB (0 if absent).
fn metric_kib(metrics: &str, name: &str) -> f64 {
    common::metric(metrics, &format!("{name} ")).unwrap_or(0.0) / 1024.0
}

fn sample(pid: u32, metrics_port: u16, data: &Path, t0: Instant) -> Sample {
    let metrics = common::get(metrics_port, "/metrics", "").text();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    Sample {
        minutes: t0.elapsed().as_secs_f64() / 60.0,
        rss_kib: status_field(pid, "VmRSS:"),
        floor_kib: metric_kib(&metrics, "homecam_resident_after_trim_bytes"),
        heap_kib: metric_kib(&metrics, "homecam_heap_bytes{kind=\"in_use\"}"),
        free_kib: metric_kib(&metrics, "homecam_heap_bytes{kind=\"free\"}"),
        fds: fds as f64,
        threads: status_field(pid, "Threads:"),
        spool_kib: du(&data.join("kafka-spool")) as f64 / 1024.0,
        data_mib: du(data) as f64 / 1048576.0,
    }
}

/// Least-squares slope of `y` over the samples' minutes, per hour.
fn slope_per_hour(s: &[Sample], y: impl Fn(&Sample) -> f64) -> f64 {
    fit(s, y).0
}

/// Least-squares slope of `y` over the samples' minutes, per hour, and its standard
/// error (0 with fewer than 3 samples).
fn fit(s: &[Sample], y: impl Fn(&Sample) -> f64) -> (f64, f64) {
    let n = s.len() as f64;
    if n < 2.0 {
        return (0.0, 0.0);
    }
    let mx = s.iter().map(|p| p.minutes).sum::<f64>() / n;
    let my = s.iter().map(&y).sum::<f64>() / n;
    let sxy: f64 = s.iter().map(|p| (p.minutes - mx) * (y(p) - my)).sum();
    let sxx: f64 = s.iter().map(|p| (p.minutes - mx).powi(2)).sum();
    if sxx == 0.0 {
        return (0.0, 0.0);
    }
    let b = sxy / sxx;
    let sse: f64 = s
        .iter()
        .map(|p| (y(p) - my - b * (p.minutes - mx)).powi(2))
        .sum();
    let se = if n > 2.0 {
        (sse / (n - 2.0) / sxx).sqrt()
    } else {
        0.0
    };
    (b * 60.0, se * 60.0)
}

/// The memory slopes (MiB/h, with one standard error) of the samples `s`.
fn memory_line(s: &[Sample]) -> String {
    let mib = |f: fn(&Sample) -> f64| {
        let (b, se) = fit(s, f);
        format!("{:+.1} ± {:.1}", b / 1024.0, se / 1024.0)
    };
    format!(
        "RSS {} MiB/h, RSS after the daemon's heap trim {}, heap in use {}, free in the heap {}",
        mib(|p| p.rss_kib),
        mib(|p| p.floor_kib),
        mib(|p| p.heap_kib),
        mib(|p| p.free_kib),
    )
}

/// A 5 s pull of `url` by ffmpeg (decoding nothing): whether it got any packets.
fn pull(url: &str) -> bool {
    Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin"])
        // The transport option is RTSP's; the HTTP pull gets a read timeout instead.
        .args(if url.starts_with("rtsp") {
            &["-rtsp_transport", "tcp", "-timeout", "10000000"][..]
        } else {
            &["-rw_timeout", "10000000"][..]
        })
        .args(["-t", "5", "-i", url, "-c", "copy", "-f", "null", "-"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut hours = 1.0f64;
    let mut outage_every = 150u64;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--outage-every" => {
                outage_every = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|v| *v > 0)
                    .expect("--outage-every SECONDS (at least 1)")
            }
            h => {
                hours = h
                    .parse()
                    .ok()
                    .filter(|h: &f64| *h > 0.0)
                    .unwrap_or_else(|| panic!("HOURS must be a positive number, not {h:?}"))
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("homecam-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    let kport = free_port();
    let _tansu = common::tansu(&dir, kport);
    let mport = free_port();
    let _mosq = common::mosquitto(&dir, mport);
    let mut sims: Vec<tapo_sim::TapoSim> = (0..3).map(|_| common::ball_camera()).collect();
    sims.push(common::people_camera(10));
    let sims = std::sync::Arc::new(sims);
    let rtsp_port = free_port();
    let metrics_port = free_port();
    let mut cfg = format!(
        r#"[general]
metrics = "127.0.0.1:{metrics_port}"
status-interval = 60
data-dir = "{data}"

[kafka]
brokers = "127.0.0.1:{kport}"

[mqtt]
port = {mport}
prefix = "soak"

[web]
listen = "127.0.0.1:0"
auth = "none"

[rtsp]
listen = "127.0.0.1:{rtsp_port}"
auth = "none"
"#,
        data = data.display()
    );
    for (i, s) in sims.iter().enumerate() {
        cfg.push_str(&format!(
            "\n[[camera]]\nname = \"cam{i}\"\nuri = \"rtsp://admin@127.0.0.1:{}/stream2\"\npassword-env = \"SOAK_PW\"\nrecord = {{ segment = \"60s\", max-age = \"20m\" }}\nmjpeg = {{ port = {}, bind = \"127.0.0.1\" }}\nmotion = {{ record = \"confirmed\", pre-roll = 2, post-roll = 2 }}\n",
            s.port(),
            free_port(),
        ));
    }
    let path = dir.join("soak.toml");
    std::fs::write(&path, cfg).unwrap();
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("homecam");
    let pw = tapo_sim::TapoConfig::default().password;
    let mut daemon = Homecam::start(
        bin.to_str().unwrap(),
        &["run", path.to_str().unwrap()],
        &[("SOAK_PW", pw.as_str())],
    );
    let pid = daemon.child.id();
    let web = daemon.port("web app");
    println!(
        "soak: {hours} h, 4 cameras, an outage every {outage_every} s; daemon pid {pid}, web port {web}, RTSP port {rtsp_port}, {}",
        dir.display()
    );

    // The outages, on a thread of their own (a reboot blocks for its down time).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let outages = {
        let sims = sims.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0usize;
            let t_start = Instant::now();
            let mut next = Instant::now() + Duration::from_secs(outage_every);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if Instant::now() < next {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
                next += Duration::from_secs(outage_every);
                let cam = n % sims.len();
                let minute = t_start.elapsed().as_secs_f64() / 60.0;
                println!(
                    "soak: minute {minute:.1}: cam{cam} {}",
                    if n % 2 == 0 {
                        "reboots (10 s)"
                    } else {
                        "stops its video (20 s)"
                    }
                );
                if n % 2 == 0 {
                    sims[cam].restart(Duration::from_secs(10));
                } else {
                    sims[cam].stall_video(Duration::from_secs(20));
                }
                n += 1;
            }
            n
        })
    };

    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(hours * 3600.0);
    let mut samples: Vec<Sample> = Vec::new();
    let (mut pulls, mut pulled) = (0u32, 0u32);
    let mut minute = 0u64;
    println!("minute  RSS MiB  floor MiB  heap MiB  free MiB  fds  threads  spool KiB  data MiB  pulls ok");
    while Instant::now() < end {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            println!("soak: the daemon exited ({status}):\n{}", daemon.output());
            std::process::exit(1);
        }
        let s = sample(pid, metrics_port, &data, t0);
        samples.push(s);
        println!(
            "{:6.0}  {:7.1}  {:9.1}  {:8.1}  {:8.1}  {:3.0}  {:7.0}  {:9.0}  {:8.0}  {pulled}/{pulls}",
            s.minutes,
            s.rss_kib / 1024.0,
            s.floor_kib / 1024.0,
            s.heap_kib / 1024.0,
            s.free_kib / 1024.0,
            s.fds,
            s.threads,
            s.spool_kib,
            s.data_mib
        );
        // The clients: 5 s of RTSP and 5 s of MP4 live view, then the event list.
        let cam = minute as usize % sims.len();
        for url in [
            format!("rtsp://127.0.0.1:{rtsp_port}/cam{cam}"),
            format!("http://127.0.0.1:{web}/live/cam{cam}.mp4"),
        ] {
            pulls += 1;
            if pull(&url) {
                pulled += 1;
            } else {
                // Printed with the minute: the outages' times say whether it met one.
                println!("soak: minute {minute}: no media from {url}");
            }
        }
        let r = common::get(web, "/api/events?limit=100", "");
        if r.status != 200 {
            println!("soak: /api/events answered {}", r.status);
        }
        minute += 1;
        let next = t0 + Duration::from_secs(60 * minute);
        while Instant::now() < next && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let n_outages = outages.join().unwrap();
    let last = sample(pid, metrics_port, &data, t0);
    samples.push(last);
    let steady: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.minutes >= 5.0)
        .collect();
    let (took, status, out) = daemon.stop();
    let online = out.matches("online").count();
    let errors: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("error") || l.contains("panic"))
        .take(10)
        .collect();
    println!(
        "soak: {:.0} min, {n_outages} outages, {pulled} of {pulls} client pulls got media, daemon stopped in {:.1} s ({status}), {online} 'online' lines",
        t0.elapsed().as_secs_f64() / 60.0,
        took.as_secs_f64()
    );
    for e in errors {
        println!("soak: daemon said: {e}");
    }
    println!(
        "growth per hour (least squares over {} samples from minute 5): {}; fds {:+.1}/h, threads {:+.1}/h, spool {:+.0} KiB/h, data {:+.0} MiB/h (recordings kept 20 min)",
        steady.len(),
        memory_line(&steady),
        slope_per_hour(&steady, |s| s.fds),
        slope_per_hour(&steady, |s| s.threads),
        slope_per_hour(&steady, |s| s.spool_kib),
        slope_per_hour(&steady, |s| s.data_mib),
    );
    // Recordings are kept 20 min, so the data, the index and the caches reach their
    // size some time after that: the second half says whether growth goes on.
    let half = samples.last().map(|s| s.minutes / 2.0).unwrap_or(0.0);
    let late: Vec<Sample> = steady
        .iter()
        .copied()
        .filter(|s| s.minutes >= half)
        .collect();
    if late.len() >= 3 {
        println!(
            "second half (least squares over {} samples from minute {half:.0}): {}; fds {:+.1}/h, threads {:+.1}/h, spool {:+.0} KiB/h",
            late.len(),
            memory_line(&late),
            slope_per_hour(&late, |s| s.fds),
            slope_per_hour(&late, |s| s.threads),
            slope_per_hour(&late, |s| s.spool_kib),
        );
    }
    if let (Some(a), Some(b)) = (steady.first(), steady.last()) {
        println!(
            "from minute {:.0} to {:.0}: RSS {:.1} -> {:.1} MiB, after the trim {:.1} -> {:.1} MiB, heap in use {:.1} -> {:.1} MiB, fds {:.0} -> {:.0}, threads {:.0} -> {:.0}, spool {:.0} -> {:.0} KiB",
            a.minutes,
            b.minutes,
            a.rss_kib / 1024.0,
            b.rss_kib / 1024.0,
            a.floor_kib / 1024.0,
            b.floor_kib / 1024.0,
            a.heap_kib / 1024.0,
            b.heap_kib / 1024.0,
            a.fds,
            b.fds,
            a.threads,
            b.threads,
            a.spool_kib,
            b.spool_kib
        );
    }
    drop(sims);
    let _ = std::fs::remove_dir_all(&dir);
}
