//! `homecam`: one daemon for all cameras.
//!
//! ```text
//! homecam run [CONFIG] [--seconds N]   run the cameras' jobs (no CONFIG: the built-in demo
//!                                      with a simulated camera)
//! homecam check CONFIG [--timeout S]   validate (errors with line numbers) and probe every
//!                                      camera; non-zero exit on any problem
//! homecam passwd CONFIG [USER]         set a web app user's password (argon2 hash in the
//!                                      users file); the password from the terminal, from
//!                                      standard input, or from HOMECAM_WEB_PASSWORD
//! homecam reindex CONFIG               rebuild the index from the journal and the files
//!                                      on disk (with the daemon stopped)
//! homecam dashboard CONFIG             the web app for several daemons, from their Kafka
//!                                      topics ([kafka], [web]; no cameras needed)
//! homecam default-config               print the built-in demo configuration
//! homecam kafka-check [CONFIG]         what the Kafka topics hold: records per topic and
//!                                      the newest record (no CONFIG: the demo's broker)
//! ```

use gst::prelude::*;
use homecam::alerts::Alerts;
use homecam::config::Config;
use homecam::daemon::{self, CameraRun, Record};
use homecam::event::now;
use homecam::index::{self, Index};
use homecam::insights::Aggregator;
use homecam::kafka::Topic;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: homecam run [CONFIG] [--seconds N] | homecam check CONFIG [--timeout S] | homecam passwd CONFIG [USER] | homecam rtsp-passwd CONFIG USER | homecam reindex CONFIG | homecam dashboard CONFIG [--seconds N] | homecam default-config | homecam kafka-check [CONFIG] | homecam scan [--timeout S] [--subnet A.B.C.D/N] [--json|--config]";

/// opencv-doc's surveillance footage (people walking in a hall): the demo's scene when
/// installed.
const VTEST: &str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

/// The demo: one simulated Tapo camera with every job on, under ./homecam-demo, and the
/// web app on loopback. `{port}`, `{dir}` and `{record}` are filled in.
const DEMO: &str = r#"# homecam demo: the built-in simulated Tapo camera with every job.
[general]
status-interval = 10
metrics = "127.0.0.1:9464"
data-dir = "{dir}"

[[camera]]
name = "demo"
location = "Hallway"
uri = "rtsp://admin@127.0.0.1:{port}/stream2"
password-env = "HOMECAM_DEMO_PASSWORD"
record = { segment = "10s", max-age = "1h", max-bytes = "200MB" }
motion = { record = "{record}", pre-roll = 2, post-roll = 2 }

[web]
listen = "127.0.0.1:8080"

[insights]
period = 30

[[alert]]
name = "someone in the hallway"
labels = ["person"]
rate = 1
window = 60
cooldown = 300
"#;

fn demo_text(port: u16, dir: &str, people: bool) -> String {
    DEMO.replace("{port}", &port.to_string())
        .replace("{dir}", dir)
        // With nobody in the scene (no footage installed), keep every event's clip.
        .replace("{record}", if people { "confirmed" } else { "all" })
}

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
        Some("passwd") => passwd(&args[1..]),
        Some("rtsp-passwd") => rtsp_passwd(&args[1..]),
        Some("dashboard") => dashboard(&args[1..]),
        Some("reindex") => reindex(&args[1..]),
        Some("scan") => Ok(cam_discovery::main("homecam", &args[1..])),
        Some("default-config") => {
            print!(
                "{}{}",
                demo_text(8554, "./homecam-demo", std::path::Path::new(VTEST).exists()),
                demo_brokers()
            );
            Ok(0)
        }
        _ => Err(USAGE.into()),
    }
}

/// Reads a password: the environment variable `var`, else twice from the terminal without
/// echo, else a line of standard input.
fn read_password(user: &str, var: &str) -> Result<String, String> {
    if let Ok(p) = std::env::var(var) {
        return Ok(p);
    }
    if let Some(tty) = Tty::open() {
        let a = tty.prompt(&format!("Password for {user}: "))?;
        let b = tty.prompt("Again: ")?;
        if a != b {
            return Err("the passwords differ".into());
        }
        return Ok(a);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The controlling terminal, for a prompt without echo.
struct Tty(std::fs::File);

impl Tty {
    fn open() -> Option<Tty> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()
            .map(Tty)
    }

    fn prompt(&self, text: &str) -> Result<String, String> {
        use std::os::fd::AsRawFd;
        let fd = self.0.as_raw_fd();
        // SAFETY: termios calls on a descriptor we own; the old mode is restored.
        let mut old: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut old) } != 0 {
            return Err("cannot read the terminal".into());
        }
        let mut quiet = old;
        quiet.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
        let _ = write!(&self.0, "{text}");
        let mut line = String::new();
        let r = std::io::BufRead::read_line(&mut std::io::BufReader::new(&self.0), &mut line);
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &old) };
        let _ = writeln!(&self.0);
        r.map_err(|e| format!("cannot read the password: {e}"))?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

fn passwd(args: &[String]) -> Result<i32, String> {
    let path = args.first().ok_or(USAGE)?;
    let user = args.get(1).map(String::as_str).unwrap_or("admin");
    let cfg = load(path)?;
    let file = match &cfg.web {
        Some(w) => w.users_file(&cfg.general),
        None => cfg.general.data_dir.join("web-users"),
    };
    let password = read_password(user, "HOMECAM_WEB_PASSWORD")?;
    homecam::web::auth::set_user(&file, user, &password)?;
    println!("homecam: {user}'s password is set in {}", file.display());
    Ok(0)
}

/// `homecam rtsp-passwd CONFIG USER`: the user's line in the RTSP users file (htdigest).
fn rtsp_passwd(args: &[String]) -> Result<i32, String> {
    let (Some(path), Some(user)) = (args.first(), args.get(1)) else {
        return Err(USAGE.into());
    };
    let cfg = load(path)?;
    let file = match &cfg.rtsp {
        Some(r) => r.users_file(&cfg.general),
        None => cfg.general.data_dir.join("rtsp-users"),
    };
    let password = read_password(user, "HOMECAM_RTSP_PASSWORD")?;
    if password.is_empty() {
        return Err("an empty password".into());
    }
    restream::htdigest::set_user(&file, user, &password)?;
    println!(
        "homecam: {user}'s RTSP password is set in {} (a running daemon reads it at its next start)",
        file.display()
    );
    Ok(0)
}

/// Starts the RTSP re-stream of the cameras of `cams` that have a feed.
fn start_rtsp(
    cfg: &Config,
    r: &homecam::config::Rtsp,
    cams: &[homecam::daemon::CameraRun],
) -> Result<restream::RtspServer, String> {
    let addr: std::net::SocketAddr = r
        .listen
        .get_ref()
        .parse()
        .map_err(|_| format!("rtsp: listen {:?} is not host:port", r.listen.get_ref()))?;
    let users = r
        .user_passwords()?
        .into_iter()
        .map(|(name, password)| restream::User { name, password })
        .collect::<Vec<_>>();
    let file = r.users_file(&cfg.general);
    let htdigest = if r.users_file.is_some() || file.exists() {
        if !file.exists() {
            return Err(format!(
                "rtsp: the users file {} does not exist (homecam rtsp-passwd CONFIG USER writes it)",
                file.display()
            ));
        }
        Some(file.clone())
    } else {
        None
    };
    if r.auth_required() && users.is_empty() && htdigest.is_none() {
        return Err(format!(
            "rtsp: no users: add one with `homecam rtsp-passwd CONFIG USER` (into {}) or [[rtsp.user]] with password-env",
            file.display()
        ));
    }
    let feeds: Vec<(String, Arc<restream::Feed>)> = cams
        .iter()
        .filter_map(|c| c.feed.clone().map(|f| (c.name.clone(), f)))
        .collect();
    restream::RtspServer::start(
        &restream::RtspConfig {
            address: addr.ip().to_string(),
            port: addr.port(),
            auth: r.auth_required(),
            users,
            htdigest,
            max_sessions: r.max_sessions,
            session_timeout: 60,
        },
        &feeds,
    )
}

/// Holds DATA-DIR/index/lock while the daemon runs, so that a reindex cannot write the
/// database under it.
fn lock_index(cfg: &Config) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let dir = cfg.general.index_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!(
            "another homecam uses the index in {} (stop it first)",
            dir.display()
        ));
    }
    Ok(f)
}

fn reindex(args: &[String]) -> Result<i32, String> {
    let path = args.first().ok_or(USAGE)?;
    let cfg = load(path)?;
    let _lock = lock_index(&cfg)?;
    let db = index::db_path(&cfg);
    let t0 = Instant::now();
    let r = index::rebuild(&db, &index::Layout::of(&cfg))?;
    println!(
        "homecam: index rebuilt in {:.1} s: {} events, {} segments ({} found on disk, {} gone), {} clips without an event; {} journal lines, {} unreadable",
        t0.elapsed().as_secs_f64(),
        r.events,
        r.segments,
        r.segments_found,
        r.segments_gone,
        r.clips_found,
        r.journal_lines,
        r.bad_lines
    );
    Ok(0)
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
    if let Err(e) = cfg.require_cameras() {
        println!("{path}: {e}");
        return Ok(1);
    }
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

/// The built-in demo: a simulated camera (people walking in a hallway when opencv-doc's
/// footage is installed) and its configuration, with a demo login for the web app.
fn demo_config() -> Result<(Config, sim_process::TapoProcess, Option<String>), String> {
    let people = std::path::Path::new(VTEST).exists();
    let pattern = if people {
        format!("file={VTEST} seconds=20 hold=12")
    } else {
        "pattern=ball motion=wavy background-color=0xff405030".into()
    };
    // A fresh password for the simulated camera, handed over in the environment.
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw).map_err(|e| e.to_string())?;
    let camera_password: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    // The simulator is a program of its own: homecam links no simulator code.
    let sim = sim_process::TapoProcess::spawn(
        &sim_process::beside_current_exe()?,
        &camera_password,
        &[
            "--pattern",
            &pattern,
            "--main-size",
            "640x480",
            "--sub-size",
            "640x480",
            "--fps",
            "10",
        ],
    )?;
    std::env::set_var("HOMECAM_DEMO_PASSWORD", &camera_password);
    let dir = std::env::current_dir()
        .map_err(|e| e.to_string())?
        .join("homecam-demo");
    let mut text = demo_text(sim.port, &dir.to_string_lossy(), people);
    // Port 8080 taken: any free one.
    if std::net::TcpListener::bind("127.0.0.1:8080").is_err() {
        text = text.replace("127.0.0.1:8080", "127.0.0.1:0");
    }
    text.push_str(&demo_brokers());
    println!(
        "homecam: no configuration given: the demo with a simulated camera on port {} (homecam default-config shows it){}",
        sim.port,
        if people {
            ", showing people walking in a hallway (opencv-doc's vtest.avi)"
        } else {
            "; install opencv-doc for a scene with people"
        }
    );
    let cfg = Config::parse(&text).map_err(|e| format!("demo config: {e:?}"))?;
    // A fresh demo login each run, printed below with the app's address.
    let mut raw = [0u8; 6];
    getrandom::fill(&mut raw).map_err(|e| e.to_string())?;
    let password: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(w) = &cfg.web {
        homecam::web::auth::set_user(&w.users_file(&cfg.general), "demo", &password)?;
    }
    Ok((cfg, sim, Some(password)))
}

fn daemon_main(args: &[String]) -> Result<i32, String> {
    homecam::metrics::cap_heap_arenas();
    let seconds = flag(args, "--seconds")?;
    daemon::init()?;
    let mut _sim = None;
    let mut demo_password = None;
    let cfg = match positional(args) {
        Some(path) => load(path)?,
        None => {
            let (cfg, sim, pw) = demo_config()?;
            _sim = Some(sim);
            demo_password = pw;
            cfg
        }
    };
    cfg.require_cameras()?;
    let _lock = lock_index(&cfg)?;
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let (log_tx, log_rx) = mpsc::channel::<String>();
    let index = {
        let l = log_tx.clone();
        Index::open(&index::db_path(&cfg), index::Layout::of(&cfg), move |m| {
            let _ = l.send(m);
        })?
    };
    let (tx, rx) = mpsc::channel();
    let mut cams: Vec<CameraRun> = Vec::new();
    for cam in &cfg.cameras {
        let run = daemon::build(&cfg, cam, tx.clone())?;
        println!(
            "homecam: {}: {} (files under {})",
            cam.name(),
            jobs(cam, cfg.web.is_some(), cfg.rtsp.is_some()),
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
    let rtsp = match &cfg.rtsp {
        Some(r) => {
            let server = start_rtsp(&cfg, r, &cams)?;
            let host = r
                .listen
                .get_ref()
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or("127.0.0.1");
            let host = if host == "0.0.0.0" || host == "[::]" {
                "127.0.0.1"
            } else {
                host
            };
            let base = format!("rtsp://{host}:{}", server.port());
            println!(
                "homecam: RTSP at {base}/CAMERA ({}){}",
                cams.iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if r.auth_required() {
                    ", digest login"
                } else {
                    ""
                }
            );
            Some((server, base))
        }
        None => None,
    };
    let kafka = match &cfg.kafka {
        Some(k) => Some(homecam::kafka::Kafka::start(
            k,
            k.spool_dir(&cfg.general),
            log_tx.clone(),
        )?),
        None => None,
    };
    let notifier = homecam::notify::Notifier::start(&cfg, log_tx.clone())?;
    let metrics = if cfg.general.metrics.is_empty() {
        None
    } else {
        let m = homecam::metrics::serve(
            &cfg.general.metrics,
            cams.clone(),
            kafka.as_ref().map(|k| k.stats.clone()),
            notifier.stats(),
        )?;
        println!("homecam: metrics on http://{m}/metrics");
        Some(m)
    };
    let mqtt = match &cfg.mqtt {
        Some(m) => {
            let devices: Vec<homecam::mqtt::DiscoveryCamera> = cfg
                .cameras
                .iter()
                .map(|c| homecam::mqtt::DiscoveryCamera {
                    name: c.name().to_string(),
                    location: c.location.clone(),
                    model: camera_model(c.uri.get_ref()),
                })
                .collect();
            Some(homecam::mqtt::Mqtt::connect(m, &devices)?)
        }
        None => None,
    };
    // The web app, on its own small runtime.
    let web = match &cfg.web {
        Some(w) => {
            let hubs = cams
                .iter()
                .filter_map(|c| c.hub.clone().map(|h| (c.name.clone(), h)))
                .collect();
            let (rt, state, addr) = start_web(
                &cfg,
                w,
                index.clone(),
                Arc::new(daemon::Pipelines(
                    cams.clone(),
                    rtsp.as_ref().map(|(_, b)| b.clone()),
                )),
                hubs,
                cams.iter()
                    .filter_map(|c| c.live.clone().map(|l| (c.name.clone(), l)))
                    .collect(),
            )?;
            match &demo_password {
                Some(pw) => {
                    println!("homecam: web app at http://{addr}/ (log in as demo, password {pw})")
                }
                None => println!("homecam: web app at http://{addr}/"),
            }
            Some((rt, state))
        }
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
        sender: homecam::alerts::Sender::start(cfg.smtp.clone(), log_tx.clone()),
        notifier,
        held: Vec::new(),
        link_base: cfg
            .web
            .as_ref()
            .map(|w| w.public_url.trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty()),
        rules: cfg.alerts.clone(),
        index: index.clone(),
        web: web.as_ref().map(|(_, s)| s.clone()),
    };
    let mut arlo = Vec::new();
    for a in &cfg.arlo {
        arlo.push(homecam::arlo::Poller::start(
            a,
            &cfg.general.data_dir,
            tx.clone(),
        )?);
        println!(
            "homecam: arlo {}: motion recordings of {} from Arlo's cloud every {} s",
            a.name,
            if a.cameras.is_empty() {
                "every camera of the account".to_string()
            } else {
                a.cameras.join(", ")
            },
            a.poll_interval
        );
    }
    let started = Instant::now();
    let interval = Duration::from_secs(cfg.general.status_interval.max(1));
    let mut next_status = Instant::now() + interval;
    let mut announced = false;
    // The first trim once start-up (pipelines, the model, the first segments) is over,
    // then once a minute.
    let mut next_trim = Instant::now() + Duration::from_secs(15);
    while !STOP.load(Ordering::SeqCst)
        && seconds.is_none_or(|s| started.elapsed().as_secs_f64() < s)
    {
        if let Ok(r) = rx.recv_timeout(Duration::from_millis(100)) {
            out.handle(r);
        }
        out.release_alerts(false);
        while let Ok(l) = log_rx.try_recv() {
            println!("homecam: {l}");
        }
        if let Some(i) = out.insights.tick(now()) {
            out.insight(&i);
        }
        for c in cams.iter() {
            c.tick(now());
        }
        if !announced {
            for c in cams.iter() {
                if let Some(p) = c.mjpeg_port().filter(|p| *p != 0) {
                    announced = true;
                    println!("homecam: {}: MJPEG at http://127.0.0.1:{p}/", c.name);
                }
            }
        }
        if Instant::now() >= next_trim {
            next_trim += Duration::from_secs(60);
            homecam::metrics::trim_heap();
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
    // Stopping: every camera at once, each recording and clip finished, all within
    // about a second.
    let stop_started = Instant::now();
    println!("homecam: stopping");
    for p in arlo {
        p.stop();
    }
    // The RTSP clients' sessions end first: nothing more comes for them.
    if let Some((mut server, _)) = rtsp {
        server.stop();
    }
    for c in cams.iter() {
        c.send_eos();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut unfinished = Vec::new();
    for c in cams.iter() {
        if !c.wait_eos(deadline.saturating_duration_since(Instant::now())) {
            unfinished.push(c.name.clone());
        }
    }
    for c in cams.iter() {
        let _ = c.pipeline.set_state(gst::State::Null);
        c.tick(f64::INFINITY);
        println!("homecam: {}", c.status_line());
    }
    if !unfinished.is_empty() {
        println!(
            "homecam: {}: the end of stream did not get through in time; their last files may miss up to a second",
            unfinished.join(", ")
        );
    }
    while let Ok(r) = rx.try_recv() {
        out.handle(r);
    }
    // The period so far.
    let t = now();
    let i = out.insights.flush(t, t);
    out.insight(&i);
    if let Some((rt, _)) = web {
        rt.shutdown_timeout(Duration::from_millis(300));
    }
    index.flush(Duration::from_secs(2));
    // Alerts still waiting for their picture go without it; mails being sent get a moment;
    // what the push targets have not delivered stays in their outboxes.
    out.release_alerts(true);
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline && !(out.sender.idle() && out.notifier.idle()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    out.notifier.close();
    while let Ok(l) = log_rx.try_recv() {
        println!("homecam: {l}");
    }
    // What the brokers have not acknowledged stays in the spool (Kafka) for the next
    // start; MQTT gets a moment for its queue.
    if let Some(m) = out.mqtt.take() {
        m.close(Duration::from_millis(700));
    }
    if let Some(k) = out.kafka.take() {
        let stats = k.stats.clone();
        k.close(Duration::from_millis(700));
        while let Ok(l) = log_rx.try_recv() {
            println!("homecam: {l}");
        }
        println!("homecam: {}", kafka_line(&stats));
    }
    println!(
        "homecam: stopped in {:.2} s",
        stop_started.elapsed().as_secs_f64()
    );
    let _ = metrics;
    Ok(0)
}

/// Starts the web app of `w` on a runtime of its own: the runtime, the app's state (to push
/// news to the pages) and the address it listens on.
fn start_web(
    cfg: &Config,
    w: &homecam::config::Web,
    index: Arc<Index>,
    cameras: Arc<dyn homecam::web::Cameras>,
    hubs: HashMap<String, Arc<gstmjpeghttp::server::Hub>>,
    lives: HashMap<String, Arc<restream::LiveFeed>>,
) -> Result<
    (
        tokio::runtime::Runtime,
        Arc<homecam::web::State>,
        std::net::SocketAddr,
    ),
    String,
> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("web")
        .enable_all()
        .build()
        .map_err(|e| format!("web: {e}"))?;
    let auth = w.auth_required().then(|| {
        homecam::web::auth::Auth::new(
            w.users_file(&cfg.general),
            Duration::from_secs(w.session_secs()),
        )
    });
    if let Some(a) = &auth {
        if a.user_count() == 0 {
            println!(
                "homecam: web: no user can log in yet: run homecam passwd CONFIG USER (users file {})",
                a.users_file().display()
            );
        }
    }
    let state = homecam::web::State::new(
        index,
        cameras,
        hubs,
        lives,
        auth,
        w.public_url.starts_with("https://"),
    );
    let addr = homecam::web::start(&rt, w.listen.get_ref(), state.clone())?;
    Ok((rt, state, addr))
}

/// `homecam dashboard CONFIG`: the web app over the Kafka topics of several daemons.
fn dashboard(args: &[String]) -> Result<i32, String> {
    let seconds = flag(args, "--seconds")?;
    let path = positional(args).ok_or(USAGE)?;
    let cfg = load(path)?;
    homecam::dashboard::check(&cfg)?;
    let (Some(k), Some(w)) = (&cfg.kafka, &cfg.web) else {
        return Err(USAGE.into());
    };
    let _lock = lock_index(&cfg)?;
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let (log_tx, log_rx) = mpsc::channel::<String>();
    let logger = |tx: &mpsc::Sender<String>| {
        let tx = tx.clone();
        move |m: String| {
            let _ = tx.send(m);
        }
    };
    let index = Index::open(
        &index::db_path(&cfg),
        index::Layout::of(&cfg),
        logger(&log_tx),
    )?;
    let heard = Arc::new(homecam::dashboard::Heard::default());
    let (rt, state, addr) = start_web(
        &cfg,
        w,
        index.clone(),
        heard.clone(),
        HashMap::new(),
        HashMap::new(),
    )?;
    println!(
        "homecam: dashboard at http://{addr}/, reading {}, {} and {} from {} as group {}",
        k.events_topic, k.status_topic, k.insights_topic, k.brokers, k.group_id
    );
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = state.clone();
    let consumer = homecam::dashboard::start(
        k,
        index.clone(),
        heard.clone(),
        move |kind, json| s2.push(kind, json),
        stop.clone(),
        logger(&log_tx),
    )?;
    let started = Instant::now();
    let interval = Duration::from_secs(cfg.general.status_interval.max(1));
    let mut next_status = Instant::now() + interval;
    while !STOP.load(Ordering::SeqCst)
        && seconds.is_none_or(|s| started.elapsed().as_secs_f64() < s)
    {
        std::thread::sleep(Duration::from_millis(200));
        while let Ok(l) = log_rx.try_recv() {
            println!("homecam: {l}");
        }
        if Instant::now() >= next_status {
            next_status += interval;
            println!(
                "homecam: dashboard: {} records ({} unreadable), {} cameras",
                heard.records.load(Ordering::Relaxed),
                heard.bad.load(Ordering::Relaxed),
                homecam::web::Cameras::names(heard.as_ref()).len()
            );
        }
        let _ = std::io::stdout().flush();
    }
    stop.store(true, Ordering::SeqCst);
    let _ = consumer.join();
    rt.shutdown_timeout(Duration::from_millis(300));
    index.flush(Duration::from_secs(2));
    while let Ok(l) = log_rx.try_recv() {
        println!("homecam: {l}");
    }
    println!("homecam: dashboard stopped");
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
    notifier: homecam::notify::Notifier,
    /// Alerts waiting (up to [`SNAPSHOT_WAIT`]) for their event's snapshot.
    held: Vec<HeldAlert>,
    /// `[web] public-url`, for links to the events.
    link_base: Option<String>,
    rules: Vec<homecam::config::AlertRule>,
    index: Arc<Index>,
    web: Option<Arc<homecam::web::State>>,
}

/// How long a fired alert waits for its event's snapshot (objectdetect confirms the
/// object a frame before motionclips has written the picture of it).
const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);

struct HeldAlert {
    alert: homecam::alerts::Alert,
    event: homecam::event::Event,
    /// Unix seconds when it fired.
    fired: f64,
    until: Instant,
}

/// An event as the web pages get it: without file paths (the API links to the files).
fn web_event(e: &homecam::event::Event) -> String {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("clip");
        o.remove("snapshot");
    }
    v.to_string()
}

impl Outputs {
    fn handle(&mut self, r: Record) {
        match r {
            Record::Event(e) => {
                let json = serde_json::to_string(&e).unwrap_or_default();
                println!("event {json}");
                if let Ok(v) = serde_json::to_value(&e) {
                    self.index.record(index::Record::Event { v });
                }
                if let Some(w) = &self.web {
                    w.push("event", web_event(&e));
                }
                if let Some(k) = &self.kafka {
                    k.send(Topic::Events, &e.camera, json.into_bytes());
                }
                if let Some(m) = &self.mqtt {
                    m.event(&e, self.last.get(&e.id));
                }
                self.insights.on_event(&e);
                // Held alerts of this event go as soon as it has its picture.
                if e.snapshot.is_some() || e.kind == "end" {
                    let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
                        .into_iter()
                        .partition(|h| h.event.id == e.id);
                    self.held = wait;
                    for h in ready {
                        self.dispatch(h.alert, &e, h.fired);
                    }
                }
                for a in self.alerts.on_event(&e) {
                    println!("alert {}", serde_json::to_string(&a).unwrap_or_default());
                    if let Some(m) = &self.mqtt {
                        m.alert(&a);
                    }
                    if e.snapshot.is_some() || e.kind == "end" {
                        self.dispatch(a, &e, now());
                    } else {
                        self.held.push(HeldAlert {
                            alert: a,
                            event: (*e).clone(),
                            fired: now(),
                            until: Instant::now() + SNAPSHOT_WAIT,
                        });
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
                if let Ok(v) = serde_json::to_value(&s) {
                    self.index.record(index::Record::Status { v });
                }
                if let Some(w) = &self.web {
                    w.push("status", json.clone());
                }
                if let Some(k) = &self.kafka {
                    k.send(Topic::Status, &s.camera, json.into_bytes());
                }
                if let Some(m) = &self.mqtt {
                    m.status(&s);
                }
            }
            Record::Segment(c) => self.index.send(index::Op::SegmentClosed(c)),
            Record::SegmentDeleted(path) => {
                self.index.record(index::Record::SegmentDeleted { path })
            }
            Record::Log(l) => println!("homecam: {l}"),
        }
    }

    /// Sends the held alerts whose wait for a snapshot is over (all of them with `all`).
    fn release_alerts(&mut self, all: bool) {
        if self.held.is_empty() {
            return;
        }
        let now = Instant::now();
        let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| all || h.until <= now);
        self.held = wait;
        for h in ready {
            self.dispatch(h.alert, &h.event, h.fired);
        }
    }

    /// An alert to its rule's mail and push targets, with the event's snapshot.
    fn dispatch(&self, alert: homecam::alerts::Alert, e: &homecam::event::Event, fired: f64) {
        let Some(rule) = self.rules.iter().find(|r| r.name == alert.rule) else {
            return;
        };
        let link = self
            .link_base
            .as_ref()
            .map(|b| format!("{b}/#events/{}", e.id));
        self.sender.send(
            alert.clone(),
            rule.clone(),
            homecam::alerts::MailExtras {
                snapshot: e.snapshot.as_ref().map(std::path::PathBuf::from),
                link: link.clone(),
            },
        );
        self.notifier.send(&homecam::notify::Delivery {
            created: fired,
            alert,
            event: serde_json::from_str(&web_event(e)).unwrap_or_default(),
            snapshot: e.snapshot.clone(),
            link,
        });
    }

    /// A periodic `status_update`: to Kafka's status topic and MQTT's stats (standard
    /// output has the status line already).
    fn status_update(&self, s: homecam::event::Status) {
        if let Some(m) = &self.mqtt {
            m.stats(&s);
        }
        if let Some(k) = &self.kafka {
            let json = serde_json::to_vec(&s).unwrap_or_default();
            k.send(Topic::Status, &s.camera, json);
        }
    }

    fn insight(&self, i: &homecam::insights::Insight) {
        let json = serde_json::to_string(i).unwrap_or_default();
        println!("insight {json}");
        if let Ok(v) = serde_json::to_value(i) {
            self.index.record(index::Record::Insight { v });
        }
        if let Some(w) = &self.web {
            w.push("insight", json.clone());
        }
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

/// What kind of camera a uri names, for Home Assistant's device registry.
fn camera_model(uri: &str) -> String {
    match uri.split_once("://").map(|(s, _)| s) {
        Some("kasa") => "Kasa camera (kasasrc)",
        Some("tutk") => "TUTK/Kalay camera (tutksrc)",
        Some("rtsp" | "rtsps") => "RTSP camera (Tapo and others)",
        _ => "camera",
    }
    .to_string()
}

fn jobs(cam: &homecam::config::Camera, web: bool, rtsp: bool) -> String {
    let mut j = Vec::new();
    if cam.record.as_ref().is_some_and(|r| r.enabled) {
        j.push("ring recording");
    }
    if cam.live_view(web) {
        j.push(if cam.mjpeg.as_ref().is_some_and(|m| m.port.is_some()) {
            "live view (web app and MJPEG port)"
        } else {
            "live view (web app)"
        });
    }
    if rtsp {
        j.push("RTSP re-stream");
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
