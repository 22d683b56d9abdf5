//! `kasa-sim`: a simulated Kasa camera on loopback, for tests, demos and benchmarks.
//!
//! Faults are typed on standard input, one per line (`stall`, `close`, `restart 2`,
//! `garbage random|header|length|chunk`, `oversize`, `trickle 3`, `stats`).

use kasa_protocol::auth::Secret;
use kasa_sim::discovery::{serve_discovery, DiscoveryConfig};
use kasa_sim::{Fault, SimConfig, Simulator};
use std::io::BufRead;

const USAGE: &str = "usage: kasa-sim [--bind 127.0.0.1] [--port 19443] [--user admin] [--password-env VAR]
                [--tls static-rsa|ecdhe] [--self-signed] [--body chunked|plain|negative-length]
                [--no-audio] [--no-timestamp] [--lf] [--blank-lines] [--size 1920x1080] [--fps 15]
                [--pattern 'pattern=zone-plate kx2=20 ky2=20 kt=1']
                [--discovery 0.0.0.0:9999 [--model EC60(US)] [--alias NAME] [--mac AA:BB:CC:DD:EE:FF] [--type IOT.IPCAMERA]
                 [--discovery-fault none|truncated|wrong-key|huge] [--discovery-only]]
--discovery answers TP-Link's UDP discovery there; --discovery-only serves nothing else.
The password is read from the environment variable named by --password-env
(default KASA_SIM_PASSWORD), or is 'admin' like an unconfigured camera.
Faults on stdin: stall | close | restart [s] | garbage random|header|length|chunk | oversize | trickle [s] | stats";

fn main() {
    if let Err(e) = run() {
        eprintln!("kasa-sim: {e}\n{USAGE}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut cfg = SimConfig::default();
    let mut bind = "127.0.0.1".to_string();
    let mut port = 19443u16;
    let mut password_env = "KASA_SIM_PASSWORD".to_string();
    let mut discovery: Option<std::net::SocketAddr> = None;
    let mut dcfg = DiscoveryConfig::default();
    let mut discovery_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--discovery" => {
                let v = val()?;
                discovery = Some(v.parse().map_err(|e| format!("--discovery {v:?}: {e}"))?);
            }
            "--model" => dcfg.model = val()?,
            "--alias" => dcfg.alias = val()?,
            "--mac" => dcfg.mac = val()?,
            "--type" => dcfg.device_type = val()?,
            "--discovery-fault" => dcfg.fault = val()?.parse()?,
            "--discovery-only" => discovery_only = true,
            "--bind" => bind = val()?,
            "--port" => port = val()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--user" => cfg.username = val()?,
            "--password-env" => password_env = val()?,
            "--tls" => cfg.tls = val()?.parse()?,
            "--self-signed" => cfg.self_signed = true,
            "--body" => cfg.body = val()?.parse()?,
            "--no-audio" => cfg.audio = false,
            "--no-timestamp" => cfg.x_timestamp = false,
            "--lf" => cfg.lf_only = true,
            "--blank-lines" => cfg.blank_lines = true,
            "--size" => {
                let v = val()?;
                let (w, h) = v.split_once('x').ok_or("--size WxH")?;
                cfg.width = w.parse().map_err(|_| "--size WxH")?;
                cfg.height = h.parse().map_err(|_| "--size WxH")?;
            }
            "--pattern" => cfg.pattern = val()?,
            "--fps" => cfg.fps = val()?.parse().map_err(|e| format!("--fps: {e}"))?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if let Some(at) = discovery {
        let addr =
            serve_discovery(at, dcfg.clone()).map_err(|e| format!("--discovery {at}: {e}"))?;
        println!(
            "kasa-sim: answering discovery on udp {addr} as {} {:?} ({}, fault {:?})",
            dcfg.model, dcfg.alias, dcfg.mac, dcfg.fault
        );
    }
    if discovery_only {
        if discovery.is_none() {
            return Err("--discovery-only needs --discovery ADDR".into());
        }
        loop {
            std::thread::park();
        }
    }
    cfg.password = Secret::new(std::env::var(&password_env).unwrap_or_else(|_| "admin".into()));
    cfg.bind = format!("{bind}:{port}")
        .parse()
        .map_err(|e| format!("--bind/--port: {e}"))?;
    let sim = Simulator::start(cfg.clone())?;
    println!(
        "kasa-sim: listening on {} ({:?} TLS, {:?} body, {}x{} @ {} fps, audio {}), certificate SHA-256 {}",
        sim.addr(),
        cfg.tls,
        cfg.body,
        cfg.width,
        cfg.height,
        cfg.fps,
        if cfg.audio { "on" } else { "off" },
        sim.fingerprint()
    );
    let stdin = std::io::stdin();
    let mut stdin_open = true;
    loop {
        if !stdin_open {
            std::thread::park();
            continue;
        }
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => {
                // Detached (no stdin): keep serving until killed.
                stdin_open = false;
                continue;
            }
            Ok(_) => {}
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "stats" {
            println!("{:?}", sim.stats());
            continue;
        }
        match line.parse::<Fault>() {
            Ok(f) => {
                println!("kasa-sim: injecting {f:?}");
                sim.inject(f);
            }
            Err(e) => eprintln!("kasa-sim: {e}"),
        }
    }
}
