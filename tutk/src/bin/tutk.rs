//! `tutk`: scan for, set the clock of, and stream from TUTK/Kalay cameras, through the
//! vendor SDK loaded at run time (what tutk-ipcamera-proxy does, without Python).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tutk::client::{self, Event, Flow, StreamOptions};
use tutk::{payload, Backend, Cancel, ConnectRequest, Error, Secret};

const USAGE: &str = "usage: tutk [-v | -q] [--library PATH] COMMAND [OPTIONS]

Commands:
  scan   [-t|--timeout MS] [--json]
         the cameras answering on this LAN: uid, ip, port, name
  sync   -d|--deviceuid UID -u|--username USER [-t MS] [--allow-remote] [--channel N]
         set the camera's clock to this machine's local time
  stream -d|--deviceuid UID -u|--username USER -f|--filename FILE|- [-t MS]
         [--allow-remote] [--channel N] [--status-interval S]
         raw video frames (H.264 as sent) to FILE or stdout, a status line every 30 s

Options:
  -v, --verbose    debug messages          -q, --quiet    errors only
  --library PATH   the vendor SDK: libIOTCAPIs_ALL.so, or the folder holding it or
                   libIOTCAPIs.so + libAVAPIs.so (default: TUTK_LIBRARY_PATH, then the
                   system library paths)
  --allow-remote   accept a P2P/relay session (the password then crosses the vendor's
                   servers; by default only LAN sessions are used)

The password comes from TUTK_PASSWORD, or a prompt on the terminal (-p PASSWORD works
but shows it to every user of this machine in the process list). An SDK 4.x licence
key comes from TUTK_LICENSE_KEY.";

/// 0 errors only, 1 info, 2 debug.
static LEVEL: AtomicU8 = AtomicU8::new(1);
static STOP: AtomicBool = AtomicBool::new(false);

/// `YYYY-MM-DDTHH:MM:SSZ` for epoch seconds (civil-from-days, no time zone database).
fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn log(level: u8, msg: &str) {
    if level <= LEVEL.load(Ordering::Relaxed) {
        let name = ["ERROR", "INFO", "DEBUG"][level as usize];
        eprintln!("{} [{name}] {msg}", utc(now_secs()));
    }
}

macro_rules! info { ($($t:tt)*) => { log(1, &format!($($t)*)) } }
macro_rules! debug { ($($t:tt)*) => { log(2, &format!($($t)*)) } }

fn fail(msg: impl std::fmt::Display) -> ! {
    log(0, &msg.to_string());
    std::process::exit(1);
}

fn usage(msg: &str) -> ! {
    eprintln!("tutk: {msg}\n\n{USAGE}");
    std::process::exit(2);
}

#[derive(Default)]
struct Args {
    library: Option<PathBuf>,
    command: String,
    uid: Option<String>,
    username: Option<String>,
    password: Option<String>,
    file: Option<String>,
    timeout_ms: Option<u64>,
    json: bool,
    allow_remote: bool,
    channel: u8,
    status_interval: u64,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Args {
    let mut a = Args {
        status_interval: 30,
        ..Default::default()
    };
    let value = |argv: &mut dyn Iterator<Item = String>, flag: &str| -> String {
        argv.next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
    };
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "-v" | "--verbose" => LEVEL.store(2, Ordering::Relaxed),
            "-q" | "--quiet" => LEVEL.store(0, Ordering::Relaxed),
            "--library" => a.library = Some(value(&mut argv, &arg).into()),
            "--json" => a.json = true,
            "--allow-remote" => a.allow_remote = true,
            "-d" | "--deviceuid" => a.uid = Some(value(&mut argv, &arg)),
            "-u" | "--username" => a.username = Some(value(&mut argv, &arg)),
            "-p" | "--password" => a.password = Some(value(&mut argv, &arg)),
            "-f" | "--filename" => a.file = Some(value(&mut argv, &arg)),
            "-t" | "--timeout" => {
                a.timeout_ms = Some(
                    value(&mut argv, &arg)
                        .parse()
                        .unwrap_or_else(|_| usage("--timeout takes milliseconds")),
                )
            }
            "--channel" => {
                a.channel = value(&mut argv, &arg)
                    .parse()
                    .unwrap_or_else(|_| usage("--channel takes 0-255"))
            }
            "--status-interval" => {
                a.status_interval = value(&mut argv, &arg)
                    .parse::<u64>()
                    .unwrap_or_else(|_| usage("--status-interval takes seconds"))
                    .max(1)
            }
            "scan" | "sync" | "stream" if a.command.is_empty() => a.command = arg,
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if a.command.is_empty() {
        usage("no command");
    }
    a
}

/// Read a line from the terminal with echo off.
fn prompt_password() -> Option<String> {
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    use std::os::fd::AsRawFd;
    let fd = tty.as_raw_fd();
    // SAFETY: termios calls on a descriptor we own; the old mode is restored.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut old) } != 0 {
        return None;
    }
    let mut quiet = old;
    quiet.c_lflag &= !libc::ECHO;
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    let _ = write!(tty, "Camera password: ");
    let mut line = String::new();
    let r = std::io::BufRead::read_line(&mut std::io::BufReader::new(&tty), &mut line);
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &old) };
    let _ = writeln!(tty);
    r.ok()?;
    Some(line.trim_end_matches(['\r', '\n']).to_string())
}

fn password(a: &Args) -> Secret {
    if let Some(p) = std::env::var("TUTK_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
    {
        return Secret::new(p);
    }
    if let Some(p) = &a.password {
        info!("the password was given with -p: every user of this machine can read it in the process list; prefer TUTK_PASSWORD");
        return Secret::new(p.clone());
    }
    if std::io::stdin().is_terminal() {
        if let Some(p) = prompt_password() {
            return Secret::new(p);
        }
    }
    usage("no password: set TUTK_PASSWORD (or run on a terminal to be asked)")
}

fn backend(a: &Args) -> tutk::sdk::SdkBackend {
    let sdk = tutk::Sdk::load(a.library.as_deref()).unwrap_or_else(|e| fail(e));
    debug!("TUTK SDK loaded from {}", sdk.origin);
    let key = std::env::var("TUTK_LICENSE_KEY").ok().map(Secret::new);
    if key.is_some() && !sdk.takes_license_key() {
        debug!("TUTK_LICENSE_KEY is set but this SDK has no TUTK_SDK_Set_License_Key (pre-4.0): not used");
    }
    sdk.acquire(key.as_ref()).unwrap_or_else(|e| fail(e))
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn scan(a: &Args) {
    let b = backend(a);
    let wait = Duration::from_millis(a.timeout_ms.unwrap_or(2000));
    debug!("searching the LAN for {} ms", wait.as_millis());
    let found = b.search(wait, 10).unwrap_or_else(|e| fail(e));
    info!(
        "received {} device{}",
        found.len(),
        if found.len() == 1 { "" } else { "s" }
    );
    let mut out = std::io::stdout().lock();
    if a.json {
        let items: Vec<String> = found
            .iter()
            .map(|d| {
                format!(
                    "{{\"uid\":{},\"ip\":{},\"port\":{},\"name\":{}}}",
                    json_str(&d.uid),
                    json_str(&d.ip),
                    d.port,
                    json_str(&d.name)
                )
            })
            .collect();
        let _ = writeln!(out, "[{}]", items.join(","));
    } else {
        for d in &found {
            let _ = writeln!(
                out,
                "uid={} ip={} port={} name={}",
                d.uid, d.ip, d.port, d.name
            );
        }
    }
}

fn request(a: &Args) -> ConnectRequest {
    ConnectRequest {
        uid: a.uid.clone().unwrap_or_else(|| usage("-d UID is required")),
        username: a
            .username
            .clone()
            .unwrap_or_else(|| usage("-u USER is required")),
        password: password(a),
        channel: a.channel,
        allow_remote: a.allow_remote,
        timeout: Duration::from_millis(a.timeout_ms.unwrap_or(10_000)).max(Duration::from_secs(1)),
    }
}

/// Ctrl-C / SIGTERM: stop cleanly (the last status line, the file flushed).
fn on_signals(cancel: Arc<Cancel>) {
    extern "C" fn handler(_: libc::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, handler as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as *const () as libc::sighandler_t);
    }
    std::thread::spawn(move || loop {
        if STOP.load(Ordering::SeqCst) {
            cancel.cancel();
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    });
}

fn connect(a: &Args, b: &dyn Backend, cancel: &Cancel) -> Box<dyn tutk::Session> {
    let req = request(a);
    debug!("connecting to {} as {}", req.uid, req.username);
    match b.connect(&req, cancel) {
        Ok(s) => {
            let i = s.info();
            info!(
                "connected to {} ({} session, {}:{})",
                req.uid, i.mode, i.remote_ip, i.remote_port
            );
            s
        }
        Err(Error::Cancelled) => std::process::exit(130),
        Err(e) => fail(e),
    }
}

fn sync(a: &Args) {
    let b = backend(a);
    let cancel = Arc::new(Cancel::new());
    on_signals(cancel.clone());
    let mut s = connect(a, &b, &cancel);
    let now = now_secs();
    let offset = payload::local_offset(now);
    let p = payload::set_time(now, offset);
    debug!(
        "sending IOCtrl 0x{:04X} ({} bytes)",
        payload::SET_TIME_TYPE,
        p.len()
    );
    match s.send_ioctrl(payload::SET_TIME_TYPE, &p) {
        Ok(()) => info!(
            "synced time: sent {} UTC{}{:02}:{:02} as the camera's local time (the camera does not answer)",
            utc(now),
            if offset < 0 { '-' } else { '+' },
            offset.abs() / 3600,
            offset.abs() % 3600 / 60
        ),
        Err(e) => fail(format!("time not sent: {e}")),
    }
}

fn stream(a: &Args) {
    let file = a
        .file
        .clone()
        .unwrap_or_else(|| usage("-f FILE (or - for stdout) is required"));
    let b = backend(a);
    let cancel = Arc::new(Cancel::new());
    on_signals(cancel.clone());
    let mut out: Box<dyn Write> = if file == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(&file)
                .unwrap_or_else(|e| fail(format!("cannot create {file}: {e}"))),
        )
    };
    let opts = StreamOptions {
        request: request(a),
        max_reconnects: -1,
        reconnect_delay: Duration::from_millis(500),
        max_reconnect_delay: Duration::from_secs(30),
        stall_timeout: Duration::from_secs(10),
        // The file holds the video as sent, nothing else (as tutk-ipcamera-proxy's).
        audio: false,
    };
    let stats = Arc::new(Mutex::new(client::Stats::default()));
    let (st, c2, every) = (
        stats.clone(),
        cancel.clone(),
        Duration::from_secs(a.status_interval),
    );
    let reporter = std::thread::spawn(move || {
        let mut next = Instant::now() + every;
        while !c2.is_cancelled() {
            if Instant::now() >= next {
                info!("{}", st.lock().unwrap().status_line());
                next += every;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    info!(
        "streaming {} to {}",
        opts.request.uid,
        if file == "-" { "stdout" } else { &file }
    );
    let mut write_error = None;
    let r = client::stream(&b, &opts, &cancel, &stats, |ev| match ev {
        Event::Online { info, restart } => {
            info!(
                "{} ({} session, {}:{})",
                if restart {
                    "reconnected"
                } else {
                    "video started"
                },
                info.mode,
                info.remote_ip,
                info.remote_port
            );
            Flow::Continue
        }
        Event::Offline {
            reason,
            attempt,
            retry_in,
        } => {
            info!(
                "camera offline: {reason}; retry {attempt} in {} ms",
                retry_in.as_millis()
            );
            Flow::Continue
        }
        Event::Audio(_) => Flow::Continue,
        Event::Frame(f) => match out.write_all(f.data).and_then(|_| out.flush()) {
            Ok(()) => Flow::Continue,
            Err(e) => {
                write_error = Some(e);
                Flow::Stop
            }
        },
    });
    cancel.cancel();
    let _ = reporter.join();
    info!("{}", stats.lock().unwrap().status_line());
    if let Some(e) = write_error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            info!("the reader of the output went away; stopping");
        } else {
            fail(format!("cannot write {file}: {e}"));
        }
    }
    if let Err(e) = r {
        fail(e);
    }
}

fn main() {
    let a = parse(std::env::args().skip(1));
    match a.command.as_str() {
        "scan" => scan(&a),
        "sync" => sync(&a),
        _ => stream(&a),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(1_795_311_000), "2026-11-22T01:30:00Z");
        assert_eq!(super::utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn json_escapes() {
        assert_eq!(super::json_str("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
    }
}
