//! `tapo-sim`: a simulated Tapo camera serving RTSP on loopback, for tests, demos and
//! benchmarks.
//!
//! Commands on standard input, one per line: `video-stall [ms]` (the video stops, the
//! audio goes on), `restart [ms]` (reboot: connections closed,
//! port refused for the given time, 3000 ms by default) and `stats`. Freeze the camera
//! with `kill -STOP` (and `kill -CONT` to thaw).

use std::io::BufRead;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tapo_sim::onvif::{serve_onvif, OnvifConfig};
use tapo_sim::{Quirks, TapoConfig, TapoSim};

const USAGE: &str =
    "usage: tapo-sim [--bind 127.0.0.1] [--port 8554] [--user admin] [--password-env VAR]
                [--main-size 1920x1080] [--sub-size 640x360] [--fps 15] [--no-audio]
                [--session-timeout 60] [--max-sessions 2] [--pattern 'pattern=ball']
                [--quirks keepalive-400,no-sprop|null-sprop,extra-track|all]
                [--onvif IP [--model C200] [--location NAME] [--endpoint uuid:...] [--onvif-only]]
--onvif answers ONVIF WS-Discovery probes as the camera at IP; --onvif-only serves nothing else.
The password is read from the environment variable named by --password-env
(default TAPO_SIM_PASSWORD), or is 'tapo-secret'.
Commands on stdin: restart [ms] | video-stall [ms] | stats.  Freeze with kill -STOP, thaw with kill -CONT.";

fn main() {
    if let Err(e) = run() {
        eprintln!("tapo-sim: {e}\n{USAGE}");
        std::process::exit(2);
    }
}

fn size(v: &str, flag: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{flag} WxH, not {v:?}");
    let (w, h) = v.split_once('x').ok_or_else(bad)?;
    Ok((w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?))
}

fn run() -> Result<(), String> {
    let mut cfg = TapoConfig {
        port: 8554,
        ..TapoConfig::default()
    };
    let mut password_env = "TAPO_SIM_PASSWORD".to_string();
    let mut onvif: Option<OnvifConfig> = None;
    let mut ocfg = OnvifConfig::default();
    let mut onvif_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--onvif" => {
                let v = val()?;
                ocfg.ip = v
                    .parse()
                    .map_err(|_| format!("--onvif {v:?}: an IPv4 address"))?;
                onvif = Some(ocfg.clone());
            }
            "--model" => ocfg.hardware = val()?,
            "--location" => ocfg.location = val()?,
            "--endpoint" => ocfg.endpoint = val()?,
            "--onvif-only" => onvif_only = true,
            "--bind" => cfg.bind = val()?,
            "--port" => cfg.port = val()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--user" => cfg.username = val()?,
            "--password-env" => password_env = val()?,
            "--main-size" => cfg.main_size = size(&val()?, "--main-size")?,
            "--sub-size" => cfg.sub_size = size(&val()?, "--sub-size")?,
            "--fps" => cfg.fps = val()?.parse().map_err(|e| format!("--fps: {e}"))?,
            "--no-audio" => cfg.audio = false,
            "--session-timeout" => {
                cfg.session_timeout = val()?
                    .parse()
                    .map_err(|e| format!("--session-timeout: {e}"))?
            }
            "--max-sessions" => {
                cfg.max_sessions = val()?.parse().map_err(|e| format!("--max-sessions: {e}"))?
            }
            "--pattern" => cfg.pattern = val()?,
            "--quirks" => cfg.quirks = Quirks::parse(&val()?)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if let Ok(p) = std::env::var(&password_env) {
        cfg.password = p;
    }
    if cfg.fps == 0 {
        return Err("--fps must be at least 1".into());
    }
    if let Some(mut o) = onvif {
        // --model, --location and --endpoint may come after --onvif.
        o.hardware = ocfg.hardware.clone();
        o.location = ocfg.location.clone();
        o.endpoint = ocfg.endpoint.clone();
        serve_onvif(o.clone()).map_err(|e| format!("--onvif {}: {e}", o.ip))?;
        println!(
            "tapo-sim: answering WS-Discovery as {} {} at {} ({:?})",
            o.endpoint, o.hardware, o.ip, o.location
        );
    } else if onvif_only {
        return Err("--onvif-only needs --onvif IP".into());
    }
    if onvif_only {
        loop {
            std::thread::park();
        }
    }
    let sim = TapoSim::start(cfg.clone())?;
    println!(
        "tapo-sim: listening on rtsp://{}:{}/stream1 ({}x{}) and /stream2 ({}x{}), {} fps, audio {}, user {}, quirks {:?}",
        cfg.bind,
        sim.port(),
        cfg.main_size.0,
        cfg.main_size.1,
        cfg.sub_size.0,
        cfg.sub_size.1,
        cfg.fps,
        if cfg.audio { "PCMA" } else { "off" },
        cfg.username,
        cfg.quirks
    );
    let stdin = std::io::stdin();
    loop {
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            // Detached (no stdin): keep serving until killed.
            Ok(0) | Err(_) => loop {
                std::thread::park();
            },
            Ok(_) => {}
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (None, _) => {}
            (Some("stats"), _) => {
                let c = sim.counters();
                println!(
                    "tapo-sim: stats video_frames={} connections={} keepalives={}",
                    c.video_frames.load(Ordering::Relaxed),
                    c.clients_connected.load(Ordering::Relaxed),
                    c.keepalives.load(Ordering::Relaxed)
                );
            }
            (Some("video-stall"), ms) => {
                let ms: u64 = ms.and_then(|m| m.parse().ok()).unwrap_or(5000);
                println!("tapo-sim: video stalled for {ms} ms, audio goes on");
                sim.stall_video(Duration::from_millis(ms));
            }
            (Some("restart"), ms) => {
                let ms = ms.and_then(|m| m.parse().ok()).unwrap_or(3000);
                println!("tapo-sim: restarting, down for {ms} ms");
                sim.restart(Duration::from_millis(ms));
                println!("tapo-sim: back up");
            }
            (Some(other), _) => {
                eprintln!(
                    "tapo-sim: unknown command {other:?} (restart [ms] | video-stall [ms] | stats)"
                )
            }
        }
    }
}
