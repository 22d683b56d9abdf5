//! `homecam`: one daemon for all cameras.
//!
//! ```text
//! homecam run [CONFIG] [--seconds N]   run the cameras' jobs (no CONFIG: the built-in demo
//!                                      with a simulated camera)
//! homecam check CONFIG [--timeout S]   validate (errors with line numbers) and probe every
//!                                      camera; non-zero exit on any problem
//! homecam default-config               print the built-in demo configuration
//! homecam kafka-check [CONFIG]         what the Kafka topics hold: records per topic and
//!                                      the newest record (no CONFIG: the demo's broker)
//! ```

use gst::prelude::*;
use homecam::alerts::Alerts;
use homecam::config::Config;
use homecam::daemon::{self, CameraRun, Record};
use homecam::event::now;
use homecam::insights::Aggregator;
use homecam::kafka::Topic;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: homecam run [CONFIG] [--seconds N] | homecam check CONFIG [--timeout S] | homecam default-config | homecam kafka-check [CONFIG]";

/// The demo: one simulated Tapo camera (a bouncing ball: motion, and nobody in it) with
/// every job on, under ./homecam-demo. `{port}` and `{dir}` are filled in.
const DEMO: &str = r#"# homecam demo: the built-in simulated Tapo camera with every job.
[general]
status-interval = 10
metrics = "127.0.0.1:9464"
data-dir = "{dir}"

[[camera]]
name = "demo"
location = "Simulated garden"
uri = "rtsp://admin@127.0.0.1:{port}/stream2"
password-env = "HOMECAM_DEMO_PASSWORD"
record = { segment = "10s", max-age = "1h", max-bytes = "200MB" }
mjpeg = { port = 8090, bind = "127.0.0.1" }
motion = { record = "all", pre-roll = 2, post-roll = 2 }

[insights]
period = 30

[[alert]]
name = "any motion"
rate = 1
window = 60
cooldown = 300
"#;

/// The demo's brokers, when `scripts/run` has started them: `HOMECAM_DEMO_MQTT` and
/// `HOMECAM_DEMO_KAFKA` (`host:port`).
fn demo_brokers() -> String {
    let mut t = String::new();
    if let Ok(m) = std::env::var("HOMECAM_DEMO_MQTT") {
        if let Some((host, port)) = m.rsplit_once(':') {
            t.push_str(&format!("\n[mqtt]\nhost = \"{host}\"\nport = {port}\n"));
        }
    }
    if let Ok(k) = std::env::var("HOMECAM_DEMO_KAFKA") {
        t.push_str(&format!("\n[kafka]\nbrokers = \"{k}\"\n"));
    }
    t
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn flag(args: &[String], name: &str) -> Result<Option<f64>, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or(format!("{name} needs a number")),
        None => Ok(None),
    }
}

fn positional(args: &[String]) -> Option<&String> {
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if a.starts_with("--") {
            skip = true;
            continue;
        }
        return Some(a);
    }
    None
}

fn load(path: &str) -> Result<Config, String> {
    Config::load(std::path::Path::new(path)).map_err(|errs| {
        errs.iter()
            .map(|e| format!("{path}: {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("homecam: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run(args: &[String]) -> Result<i32, String> {
    match args.first().map(String::as_str) {
        Some("run") => daemon_main(&args[1..]),
        Some("check") => check(&args[1..]),
        Some("kafka-check") => kafka_check(&args[1..]),
        Some("default-config") => {
            print!("{DEMO}{}", demo_brokers());
            Ok(0)
        }
        _ => Err(USAGE.into()),
    }
}

fn check(args: &[String]) -> Result<i32, String> {
    let path = positional(args).ok_or(USAGE)?;
    let timeout = flag(args, "--timeout")?.unwrap_or(15.0);
    let cfg = match Config::load(std::path::Path::new(path)) {
        Ok(c) => c,
        Err(errs) => {
            for e in errs {
                println!("{path}: {e}");
            }
            return Ok(1);
        }
    };
    println!(
        "{path}: {} camera(s), configuration valid",
        cfg.cameras.len()
    );
    daemon::init()?;
    let mut failed = 0;
    for cam in &cfg.cameras {
        match probe(cam, timeout) {
            Ok(what) => println!("{}: ok: {what}", cam.name()),
            Err(e) => {
                failed += 1;
                println!("{}: FAILED: {e}", cam.name());
            }
        }
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

/// Records per topic and the newest record of each, read with a consumer that commits
/// nothing.
fn kafka_check(args: &[String]) -> Result<i32, String> {
    let k = match positional(args) {
        Some(path) => load(path)?
            .kafka
            .ok_or(format!("{path}: no [kafka] section"))?,
        None => {
            let text = demo_brokers();
            if !text.contains("[kafka]") {
                return Err(
                    "kafka-check: give a CONFIG, or set HOMECAM_DEMO_KAFKA=host:port".into(),
                );
            }
            Config::parse(&format!(
                "[[camera]]\nname = \"x\"\nuri = \"rtsp://h/\"\n{text}"
            ))
            .map_err(|e| format!("{e:?}"))?
            .kafka
            .ok_or("no [kafka]")?
        }
    };
    let mut failed = false;
    for topic in [&k.events_topic, &k.status_topic, &k.insights_topic] {
        match homecam::kafka::topic_summary(&k, topic) {
            Ok((n, last)) => println!(
                "kafka-check: {topic}: {n} records{}",
                last.map(|(key, v)| format!(
                    "; newest (key {key}): {}",
                    v.chars().take(200).collect::<String>()
                ))
                .unwrap_or_default()
            ),
            Err(e) => {
                failed = true;
                println!("kafka-check: {topic}: FAILED: {e}");
            }
        }
    }
    Ok(i32::from(failed))
}

/// Opens the camera and waits for its first video frame.
fn probe(cam: &homecam::config::Camera, timeout: f64) -> Result<String, String> {
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("camsrc")
        .property("uri", cam.uri())
        .property("max-restarts", 3i32)
        .build()
        .map_err(|e| e.to_string())?;
    if let Some(p) = cam.password()? {
        src.set_property("password", p);
    }
    let sink = gst_app::AppSink::builder().sync(false).build();
    pipeline
        .add_many([&src, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    let audio = gst::ElementFactory::make("fakesink")
        .property("async", false)
        .build()
        .map_err(|e| e.to_string())?;
    pipeline.add(&audio).map_err(|e| e.to_string())?;
    let (vs, as_) = (
        sink.static_pad("sink").unwrap(),
        audio.static_pad("sink").unwrap(),
    );
    src.connect_pad_added(move |_, pad| {
        let t = if pad.name() == "video" { &vs } else { &as_ };
        if !t.is_linked() {
            let _ = pad.link(t);
        }
    });
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    let bus = pipeline.bus().unwrap();
    let result = loop {
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
            let caps = sample
                .caps()
                .and_then(|c| c.structure(0).map(|s| s.to_string()))
                .unwrap_or_default();
            break Ok(format!(
                "first frame in {:.1} s: {caps}",
                timeout - (deadline - Instant::now()).as_secs_f64()
            ));
        }
        if let Some(m) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = m.view() {
                break Err(e.error().to_string());
            }
        }
        if Instant::now() >= deadline {
            let s = src.property::<gst::Structure>("stats");
            break Err(format!(
                "no video within {timeout} s ({})",
                s.get::<String>("last-error").unwrap_or_default()
            ));
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn daemon_main(args: &[String]) -> Result<i32, String> {
    let seconds = flag(args, "--seconds")?;
    daemon::init()?;
    let mut _sim = None;
    let cfg = match positional(args) {
        Some(path) => load(path)?,
        None => {
            let sim = tapo_sim::TapoSim::start(tapo_sim::TapoConfig {
                pattern: "pattern=ball motion=wavy background-color=0xff405030".into(),
                ..Default::default()
            })?;
            std::env::set_var(
                "HOMECAM_DEMO_PASSWORD",
                tapo_sim::TapoConfig::default().password,
            );
            let dir = std::env::current_dir()
                .map_err(|e| e.to_string())?
                .join("homecam-demo");
            let mut text = DEMO
                .replace("{port}", &sim.port().to_string())
                .replace("{dir}", &dir.to_string_lossy());
            text.push_str(&demo_brokers());
            println!(
                "homecam: no configuration given: the demo with a simulated camera on port {} (homecam default-config shows it)",
                sim.port()
            );
            _sim = Some(sim);
            Config::parse(&text).map_err(|e| format!("demo config: {e:?}"))?
        }
    };
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let (tx, rx) = mpsc::channel();
    let mut cams: Vec<CameraRun> = Vec::new();
    for cam in &cfg.cameras {
        let run = daemon::build(&cfg, cam, tx.clone())?;
        println!(
            "homecam: {}: {} (files under {})",
            cam.name(),
            jobs(cam),
            daemon::data_dir(&cfg, cam).display()
        );
        cams.push(run);
    }
    for c in &cams {
        c.pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("{}: cannot start: {e}", c.name))?;
    }
    let cams = Arc::new(cams);
    let (log_tx, log_rx) = mpsc::channel();
    let kafka = match &cfg.kafka {
        Some(k) => Some(homecam::kafka::Kafka::start(
            k,
            k.spool_dir(&cfg.general),
            log_tx.clone(),
        )?),
        None => None,
    };
    let metrics = if cfg.general.metrics.is_empty() {
        None
    } else {
        let m = homecam::metrics::serve(
            &cfg.general.metrics,
            cams.clone(),
            kafka.as_ref().map(|k| k.stats.clone()),
        )?;
        println!("homecam: metrics on http://{m}/metrics");
        Some(m)
    };
    let mqtt = match &cfg.mqtt {
        Some(m) => Some(homecam::mqtt::Mqtt::connect(m)?),
        None => None,
    };
    let names: Vec<(String, String)> = cams
        .iter()
        .map(|c| (c.name.clone(), c.location.clone()))
        .collect();
    let mut out = Outputs {
        mqtt,
        kafka,
        last: HashMap::new(),
        insights: Aggregator::new(&cfg.insights, &names, now()),
        alerts: Alerts::new(&cfg.alerts),
        sender: homecam::alerts::Sender::start(cfg.smtp.clone(), log_tx),
        rules: cfg.alerts.clone(),
    };
    let started = Instant::now();
    let interval = Duration::from_secs(cfg.general.status_interval.max(1));
    let mut next_status = Instant::now() + interval;
    let mut announced = false;
    while !STOP.load(Ordering::SeqCst)
        && seconds.is_none_or(|s| started.elapsed().as_secs_f64() < s)
    {
        if let Ok(r) = rx.recv_timeout(Duration::from_millis(200)) {
            out.handle(r);
        }
        while let Ok(l) = log_rx.try_recv() {
            println!("homecam: {l}");
        }
        if let Some(i) = out.insights.tick(now()) {
            out.insight(&i);
        }
        if !announced {
            for c in cams.iter() {
                if let Some(p) = c.mjpeg_port().filter(|p| *p != 0) {
                    announced = true;
                    println!("homecam: {}: watch at http://127.0.0.1:{p}/", c.name);
                }
            }
        }
        if Instant::now() >= next_status {
            next_status += interval;
            for c in cams.iter() {
                println!("homecam: {}", c.status_line());
                out.status_update(c.status_record());
            }
            if let Some(k) = &out.kafka {
                println!("homecam: {}", kafka_line(&k.stats));
            }
        }
        let _ = std::io::stdout().flush();
    }
    println!("homecam: stopping");
    for c in cams.iter() {
        // EOS first so that recordings and clips are closed properly.
        c.pipeline.send_event(gst::event::Eos::new());
    }
    for c in cams.iter() {
        let _ = c.pipeline.bus().map(|b| {
            b.timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos])
        });
        let _ = c.pipeline.set_state(gst::State::Null);
        println!("homecam: {}", c.status_line());
    }
    while let Ok(r) = rx.try_recv() {
        out.handle(r);
    }
    // The period so far.
    let t = now();
    let i = out.insights.flush(t, t);
    out.insight(&i);
    // Alerts still being delivered get a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !out.sender.idle() {
        std::thread::sleep(Duration::from_millis(50));
    }
    while let Ok(l) = log_rx.try_recv() {
        println!("homecam: {l}");
    }
    if let Some(m) = out.mqtt.take() {
        m.close(Duration::from_secs(3));
    }
    if let Some(k) = out.kafka.take() {
        let stats = k.stats.clone();
        k.close(Duration::from_secs(5));
        while let Ok(l) = log_rx.try_recv() {
            println!("homecam: {l}");
        }
        println!("homecam: {}", kafka_line(&stats));
    }
    let _ = metrics;
    Ok(0)
}

/// Where records go: standard output, MQTT, insights, alerts.
struct Outputs {
    mqtt: Option<homecam::mqtt::Mqtt>,
    kafka: Option<homecam::kafka::Kafka>,
    /// The last state of each open event, for MQTT's `before`.
    last: HashMap<String, homecam::event::Event>,
    insights: Aggregator,
    alerts: Alerts,
    sender: homecam::alerts::Sender,
    rules: Vec<homecam::config::AlertRule>,
}

impl Outputs {
    fn handle(&mut self, r: Record) {
        match r {
            Record::Event(e) => {
                let json = serde_json::to_string(&e).unwrap_or_default();
                println!("event {json}");
                if let Some(k) = &self.kafka {
                    k.send(Topic::Events, &e.camera, json.into_bytes());
                }
                if let Some(m) = &self.mqtt {
                    m.event(&e, self.last.get(&e.id));
                }
                self.insights.on_event(&e);
                for a in self.alerts.on_event(&e) {
                    println!("alert {}", serde_json::to_string(&a).unwrap_or_default());
                    if let Some(m) = &self.mqtt {
                        m.alert(&a);
                    }
                    if let Some(rule) = self.rules.iter().find(|r| r.name == a.rule) {
                        self.sender.send(a, rule.clone());
                    }
                }
                if self.last.len() > 1000 {
                    self.last.clear();
                }
                self.last.insert(e.id.clone(), *e);
            }
            Record::Status(s) => {
                let json = serde_json::to_string(&s).unwrap_or_default();
                println!("status {json}");
                if let Some(k) = &self.kafka {
                    k.send(Topic::Status, &s.camera, json.into_bytes());
                }
                if let Some(m) = &self.mqtt {
                    m.status(&s);
                }
            }
            Record::Log(l) => println!("homecam: {l}"),
        }
    }

    /// A periodic `status_update`: to Kafka's status topic (standard output has the
    /// status line already).
    fn status_update(&self, s: homecam::event::Status) {
        if let Some(k) = &self.kafka {
            let json = serde_json::to_vec(&s).unwrap_or_default();
            k.send(Topic::Status, &s.camera, json);
        }
    }

    fn insight(&self, i: &homecam::insights::Insight) {
        let json = serde_json::to_string(i).unwrap_or_default();
        println!("insight {json}");
        if let Some(k) = &self.kafka {
            k.send(Topic::Insights, "insights", json.into_bytes());
        }
        if let Some(m) = &self.mqtt {
            m.insight(i);
        }
    }
}

fn kafka_line(k: &homecam::kafka::KafkaStats) -> String {
    let connected = k.connected.load(Ordering::Relaxed);
    format!(
        "kafka: {} delivered={} spooled={}B retries={} lost={}{}",
        if connected {
            "connected"
        } else {
            "unreachable"
        },
        k.delivered.load(Ordering::Relaxed),
        k.spool_bytes.load(Ordering::Relaxed),
        k.retries.load(Ordering::Relaxed),
        k.lost.load(Ordering::Relaxed),
        if connected {
            String::new()
        } else {
            format!(" last-error={:?}", k.last_error.lock().unwrap())
        }
    )
}

fn jobs(cam: &homecam::config::Camera) -> String {
    let mut j = Vec::new();
    if cam.record.as_ref().is_some_and(|r| r.enabled) {
        j.push("ring recording");
    }
    if cam.mjpeg.as_ref().is_some_and(|m| m.enabled) {
        j.push("browser MJPEG");
    }
    if let Some(m) = cam.motion.as_ref().filter(|m| m.enabled) {
        j.push(if m.clips {
            "motion + object filter + clips"
        } else {
            "motion + object filter"
        });
    }
    if j.is_empty() {
        "no jobs".into()
    } else {
        j.join(", ")
    }
}
