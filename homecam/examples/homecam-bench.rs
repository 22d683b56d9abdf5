//! homecam's figures, printed (no assertions): `bash scripts/bench-homecam` runs it.
//!
//! 1. Records per second through the daemon's Kafka output (disk spool + idempotent
//!    producer) and its MQTT output, to real brokers on loopback (tansu, mosquitto):
//!    N synthetic events, timed until the broker has acknowledged the last one.
//! 2. The daemon itself (the `homecam` binary next to this example) with 8 simulated
//!    cameras (640x360, 15 fps, every job: ring recording, MJPEG, motion + object filter +
//!    clips, MQTT, Kafka) for SECONDS, with the object filter's default `max-rate` (2.5)
//!    and model, at 2.5 with `model = "nanodet-g-320"`, at 1, then without the motion
//!    job: its CPU (utime + stime from /proc) and peak memory (VmHWM), and the delay from each motion start (the event's
//!    `start_time`, the wall clock of the frame where motion began) to its `new` record
//!    arriving at a Kafka consumer and at an MQTT subscriber.
//!
//! ```text
//! cargo run --release -p homecam --example homecam-bench [N] [SECONDS]
//! ```

use homecam::config::Config;
use homecam::event::{now, Event};
use homecam::kafka::{Kafka, Topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use rumqttc::{Client, Event as MqttEvent, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

// The brokers and process helpers are the tests' own.
#[path = "../tests/common/mod.rs"]
mod common;
use common::{free_port, Proc};

/// tansu and mosquitto on free loopback ports: (tansu, its port, mosquitto, its port).
fn brokers(dir: &std::path::Path) -> (Proc, u16, Proc, u16) {
    let kport = free_port();
    let tansu = common::tansu(dir, kport);
    let mport = free_port();
    let mosq = common::mosquitto(dir, mport);
    (tansu, kport, mosq, mport)
}

fn event(i: u64) -> Event {
    Event {
        kind: "new",
        id: format!("bench-{i}"),
        camera: format!("cam{}", i % 8),
        camera_name: format!("cam{}", i % 8),
        location: "Bench".into(),
        label: "motion".into(),
        group: String::new(),
        score: 0.0,
        top_score: 0.0,
        bbox: Some([0.1, 0.2, 0.3, 0.4]),
        zones: vec![],
        start_time: now(),
        end_time: None,
        has_clip: false,
        has_snapshot: false,
        clip: None,
        snapshot: None,
        event_type: "motion",
        motion_score: 0.05,
        verdict: "pending",
        confirmed: false,
        dismissed: false,
        origin: String::new(),
        source: "",
        media_url: None,
    }
}

/// MQTT subscriber: (topic, payload, arrival wall clock).
type Seen = Arc<Mutex<Vec<(String, String, f64)>>>;

fn subscribe(port: u16, filter: &str) -> Seen {
    let seen: Seen = Arc::default();
    let mut opts = MqttOptions::new("bench-watcher", "127.0.0.1", port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut conn) = Client::new(opts, 1000);
    let s2 = seen.clone();
    let filter = filter.to_string();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                    client.subscribe(&filter, QoS::AtLeastOnce).unwrap();
                }
                Ok(MqttEvent::Incoming(Packet::Publish(p))) => s2.lock().unwrap().push((
                    p.topic.clone(),
                    String::from_utf8_lossy(&p.payload).into_owned(),
                    now(),
                )),
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    seen
}

fn throughput(dir: &std::path::Path, n: u64) {
    // The spool alone (disk, no broker): append every record, then read and release them.
    {
        let mut sp = homecam::spool::Spool::open(&dir.join("spool-alone"), 64 << 20).unwrap();
        let p = serde_json::to_vec(&event(0)).unwrap();
        let t0 = Instant::now();
        for _ in 0..n {
            sp.append(0, b"cam0", &p).unwrap();
        }
        let t1 = t0.elapsed().as_secs_f64();
        let mut at = sp.head();
        while let Ok(Some(e)) = sp.read_at(at) {
            at = e.end;
            sp.advance(at).unwrap();
        }
        let t2 = t0.elapsed().as_secs_f64();
        println!(
            "spool alone: {n} records appended in {:.0} ms ({:.0}/s), read back and released one by one in {:.0} ms",
            t1 * 1000.0,
            n as f64 / t1,
            (t2 - t1) * 1000.0
        );
    }
    let (_t, kport, _m, mport) = brokers(dir);
    let cfg = Config::parse(&format!(
        "[[camera]]\nname = \"x\"\nuri = \"rtsp://h/\"\n\n[kafka]\nbrokers = \"127.0.0.1:{kport}\"\nevents-topic = \"bench_events\"\nspool-dir = \"{}\"\n\n[mqtt]\nport = {mport}\nprefix = \"bench\"\n",
        dir.join("spool").display()
    ))
    .unwrap();
    let (log_tx, _log_rx) = mpsc::channel();
    let kafka = Kafka::start(cfg.kafka.as_ref().unwrap(), dir.join("spool"), log_tx).unwrap();
    // Warm up: topics created, producer id known.
    kafka.send(Topic::Events, "warm", b"{}".to_vec());
    let t0 = Instant::now();
    while kafka.stats.delivered.load(Ordering::Relaxed) < 1
        && t0.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let payloads: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let e = event(i);
            (e.camera.clone(), serde_json::to_vec(&e).unwrap())
        })
        .collect();
    let bytes = payloads[0].1.len();
    let t0 = Instant::now();
    for (k, p) in &payloads {
        kafka.send(Topic::Events, k, p.clone());
    }
    while kafka.stats.delivered.load(Ordering::Relaxed) < n + 1
        && t0.elapsed() < Duration::from_secs(300)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = t0.elapsed().as_secs_f64();
    let got = kafka.stats.delivered.load(Ordering::Relaxed) - 1;
    println!(
        "kafka: {got} of {n} events ({bytes} bytes each) acknowledged in {secs:.2} s: {:.0} events/s (spool on {}, idempotent producer, acks=all)",
        got as f64 / secs,
        dir.display()
    );
    kafka.close(Duration::from_secs(2));

    let seen = subscribe(mport, "bench/events");
    let mqtt = homecam::mqtt::Mqtt::connect(cfg.mqtt.as_ref().unwrap(), &[]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    let mut sent = 0;
    for i in 0..n {
        let e = event(i);
        mqtt.event(&e, None);
        sent += 1;
        // The client's queue holds 1000: pace on what the broker passed on.
        while sent - seen.lock().unwrap().len() as u64 > 200
            && t0.elapsed() < Duration::from_secs(120)
        {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    while (seen.lock().unwrap().len() as u64) < n && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = t0.elapsed().as_secs_f64();
    let got = seen.lock().unwrap().len();
    println!(
        "mqtt: {got} of {n} events received by a subscriber in {secs:.2} s: {:.0} events/s (QoS 1, dropped by a full queue: {})",
        got as f64 / secs,
        mqtt.dropped.load(Ordering::Relaxed)
    );
    mqtt.close(Duration::from_secs(2));
}

fn proc_stat(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0))
        / ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (cpu, hwm)
}

/// `motion`: no motion job, or one on every camera with this object-filter `max-rate`
/// and `model` (its default when None).
fn daemon(dir: &std::path::Path, seconds: u64, motion: Option<f64>, model: Option<&str>) {
    let (_t, kport, _m, mport) = brokers(dir);
    let sims: Vec<tapo_sim::TapoSim> = (0..8).map(|_| common::ball_camera()).collect();
    let mut cfg = format!(
        "[general]\nmetrics = \"\"\nstatus-interval = 10\ndata-dir = \"{}\"\n\n[kafka]\nbrokers = \"127.0.0.1:{kport}\"\n\n[mqtt]\nport = {mport}\nprefix = \"bench\"\n",
        dir.join("data").display()
    );
    for (i, s) in sims.iter().enumerate() {
        cfg.push_str(&format!(
            "\n[[camera]]\nname = \"cam{i}\"\nuri = \"rtsp://admin@127.0.0.1:{}/stream2\"\npassword-env = \"BENCH_PW\"\nrecord = {{ segment = \"10s\" }}\nmjpeg = {{ port = {}, bind = \"127.0.0.1\" }}\n{}",
            s.port(),
            free_port(),
            match motion {
                Some(rate) => format!(
                    "motion = {{ record = \"all\", pre-roll = 2, post-roll = 2, max-rate = {rate}{} }}\n",
                    model.map(|m| format!(", model = \"{m}\"")).unwrap_or_default()
                ),
                None => String::new(),
            }
        ));
    }
    let path = dir.join("bench.toml");
    std::fs::write(&path, cfg).unwrap();
    let seen = subscribe(mport, "bench/events");
    // Kafka consumer on security_events, from the start, on its own thread.
    let arrivals: Arc<Mutex<HashMap<String, f64>>> = Arc::default();
    let a2 = arrivals.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("homecam");
    let mut child = Proc(
        Command::new(&bin)
            .args([
                "run",
                path.to_str().unwrap(),
                "--seconds",
                &seconds.to_string(),
            ])
            .env("BENCH_PW", tapo_sim::TapoConfig::default().password)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display())),
    );
    let pid = child.0.id();
    let consumer = std::thread::spawn(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{kport}"))
            .set("group.id", "bench")
            .set("enable.auto.commit", "false")
            .set("topic.metadata.refresh.interval.ms", "500")
            // Measure the producer side, not the consumer's long poll.
            .set("fetch.wait.max.ms", "10")
            .create()
            .unwrap();
        // Wait for the daemon to create the topic.
        let parts = loop {
            if stop2.load(Ordering::Relaxed) {
                return;
            }
            if let Ok(md) = c.fetch_metadata(Some("security_events"), Duration::from_secs(2)) {
                let n = md.topics()[0].partitions().len();
                if n > 0 {
                    break n;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut tpl = TopicPartitionList::new();
        for p in 0..parts as i32 {
            tpl.add_partition_offset("security_events", p, Offset::Beginning)
                .unwrap();
        }
        c.assign(&tpl).unwrap();
        while !stop2.load(Ordering::Relaxed) {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                let t = now();
                let v: serde_json::Value =
                    serde_json::from_slice(m.payload().unwrap_or(b"{}")).unwrap_or_default();
                if v["type"] == "new" {
                    let start = v["start_time"].as_f64().unwrap_or(0.0);
                    a2.lock()
                        .unwrap()
                        .insert(v["id"].as_str().unwrap_or("").to_string(), t - start);
                }
            }
        }
    });
    let stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.starts_with("homecam: kafka: ") && l.contains("delivered="))
            .last()
    });
    // CPU and memory, sampled until it exits: the steady state is from 10 s to the end
    // of the run (before the shutdown, which closes clips and files).
    let t0 = Instant::now();
    let mut samples: Vec<(f64, f64)> = Vec::new();
    let mut hwm = 0;
    while child.0.try_wait().ok().flatten().is_none() {
        let (cpu, h) = proc_stat(pid);
        if h > 0 {
            samples.push((t0.elapsed().as_secs_f64(), cpu));
            hwm = hwm.max(h);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    consumer.join().unwrap();
    let last_line = reader.join().unwrap().unwrap_or_default();
    let at = |t: f64| {
        samples
            .iter()
            .rev()
            .find(|(e, _)| *e <= t)
            .copied()
            .unwrap_or((0.0, 0.0))
    };
    let (a, b) = (at(10.0), at(seconds as f64));
    let total = samples.last().map(|s| s.1).unwrap_or(0.0);
    println!(
        "daemon, 8 cameras (640x360 15 fps, {}), {seconds} s: {:.0} % of one core from 10 s to {seconds} s ({:.1} s of CPU in {:.1} s); {total:.1} s of CPU in all with start and shutdown; peak RSS {:.0} MiB",
        match motion {
            Some(rate) => format!(
                "every job, motion all the time, max-rate {rate}, model {}",
                model.unwrap_or("nanodet-g-416 (default)")
            ),
            None => "recording + MJPEG + events, no motion job".into(),
        },
        (b.1 - a.1) / (b.0 - a.0).max(1e-3) * 100.0,
        b.1 - a.1,
        b.0 - a.0,
        hwm as f64 / 1024.0
    );
    let mut d: Vec<f64> = arrivals.lock().unwrap().values().cloned().collect();
    d.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mq: Vec<f64> = {
        let s = seen.lock().unwrap();
        let mut v: Vec<f64> = s
            .iter()
            .filter_map(|(_, p, t)| {
                let v: serde_json::Value = serde_json::from_str(p).ok()?;
                (v["type"] == "new").then(|| t - v["after"]["start_time"].as_f64().unwrap_or(0.0))
            })
            .collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v
    };
    let show = |v: &[f64]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            format!(
                "{} events, min {:.0} ms, median {:.0} ms, max {:.0} ms",
                v.len(),
                v[0] * 1000.0,
                v[v.len() / 2] * 1000.0,
                v[v.len() - 1] * 1000.0
            )
        }
    };
    if motion.is_some() {
        println!("motion start -> Kafka consumer: {}", show(&d));
        println!("motion start -> MQTT subscriber: {}", show(&mq));
    }
    println!("daemon's last Kafka line: {last_line}");
    drop(sims);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args.first().and_then(|v| v.parse().ok()).unwrap_or(20000);
    let seconds: u64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(60);
    let dir = std::env::temp_dir().join(format!("homecam-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    throughput(&dir.join("throughput"), n);
    daemon(&dir.join("daemon"), seconds, Some(2.5), None);
    daemon(
        &dir.join("daemon-320"),
        seconds,
        Some(2.5),
        Some("nanodet-g-320"),
    );
    daemon(&dir.join("daemon-rate1"), seconds, Some(1.0), None);
    daemon(&dir.join("daemon-nomotion"), seconds, None, None);
    let _ = std::fs::remove_dir_all(&dir);
}
