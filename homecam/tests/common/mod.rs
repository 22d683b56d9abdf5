//! What the homecam tests share: real brokers on loopback (mosquitto, tansu), a small SMTP
//! sink and webhook server, and an MQTT subscriber.
#![allow(dead_code)]

pub mod push;

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The value of the sample `name_and_labels` (as written before the value) in a
/// Prometheus text page, such as the daemon's `/metrics`.
pub fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

/// A child process, killed at drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGCONT first: a stopped process would not die of SIGKILL until continued.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGCONT) };
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn tansu_bin() -> String {
    for c in [
        "tansu".to_string(),
        format!(
            "{}/.cargo/bin/tansu",
            std::env::var("HOME").unwrap_or_default()
        ),
    ] {
        if Command::new(&c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c;
        }
    }
    panic!("tansu not found: scripts/setup --tests installs it (cargo install tansu)");
}

/// tansu on loopback with in-memory storage, run from its own empty folder.
pub fn tansu(dir: &Path, port: u16) -> Proc {
    let wd = dir.join("tansu");
    std::fs::create_dir_all(&wd).unwrap();
    let url = format!("tcp://127.0.0.1:{port}");
    let mut cmd = Command::new(tansu_bin());
    sim_process::die_with_parent(&mut cmd);
    let child = cmd
        .current_dir(&wd)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .env(
            "RUST_LOG",
            std::env::var("TANSU_LOG").unwrap_or("warn".into()),
        )
        .stdout(std::fs::File::create(wd.join("tansu.out")).unwrap())
        .stderr(std::fs::File::create(wd.join("tansu.log")).unwrap())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "tansu does not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Proc(child)
}

pub fn mosquitto(dir: &std::path::Path, port: u16) -> Proc {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .unwrap();
    let mut cmd = Command::new("mosquitto");
    sim_process::die_with_parent(&mut cmd);
    let child = cmd
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto (Debian package mosquitto; scripts/setup --tests installs it)");
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "mosquitto does not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Proc(child)
}

pub type Seen = Arc<Mutex<Vec<(String, String, bool)>>>;

/// Subscribes to `filter`; every publish received as (topic, payload, retain).
pub fn subscribe(port: u16, id: &str, filter: &str) -> Seen {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    // Snapshots are larger than rumqttc's default limit.
    opts.set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut conn) = Client::new(opts, 100);
    let s2 = seen.clone();
    let filter = filter.to_string();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client.subscribe(&filter, QoS::AtLeastOnce).unwrap();
                }
                Ok(Event::Incoming(Packet::Publish(p))) => s2.lock().unwrap().push((
                    p.topic.clone(),
                    // Binary payloads (snapshots) as their size and first bytes.
                    match std::str::from_utf8(&p.payload) {
                        Ok(t) => t.to_string(),
                        Err(_) => format!(
                            "<{} bytes {:02x?}>",
                            p.payload.len(),
                            &p.payload[..p.payload.len().min(2)]
                        ),
                    },
                    p.retain,
                )),
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    seen
}

pub fn wait_for(seen: &Seen, what: &str, f: impl Fn(&(String, String, bool)) -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if seen.lock().unwrap().iter().any(&f) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no {what}: {:#?}", seen.lock().unwrap());
}

/// Accepts SMTP sessions on a free port; each mail's DATA (headers and body) is kept.
pub fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let m2 = mails.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut w = conn.try_clone().unwrap();
            let mut r = BufReader::new(conn);
            let _ = w.write_all(b"220 sink ESMTP\r\n");
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let cmd = line.trim_end().to_ascii_uppercase();
                if cmd.starts_with("EHLO") {
                    let _ = w.write_all(b"250-sink\r\n250 8BITMIME\r\n");
                } else if cmd.starts_with("DATA") {
                    let _ = w.write_all(b"354 go on\r\n");
                    let mut data = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 || line == ".\r\n" {
                            break;
                        }
                        data.push_str(&line);
                    }
                    m2.lock().unwrap().push(data);
                    let _ = w.write_all(b"250 queued\r\n");
                } else if cmd.starts_with("QUIT") {
                    let _ = w.write_all(b"221 bye\r\n");
                    break;
                } else {
                    let _ = w.write_all(b"250 ok\r\n");
                }
            }
        }
    });
    (port, mails)
}

/// Answers every HTTP request 204 and keeps the bodies.
pub fn webhook_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let b2 = bodies.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut w = conn.try_clone().unwrap();
            let mut r = BufReader::new(conn);
            let mut len = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len.min(1 << 20)];
            let _ = r.read_exact(&mut body);
            b2.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            let _ = w.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (port, bodies)
}

/// Everything in `topic`, partition by partition, as (key, payload), read by a consumer
/// that commits nothing. tansu's high watermark counts a batch of several records as one,
/// so each partition is read up to its high watermark and then until it has been quiet
/// for 2 s.
pub fn read_topic(port: u16, topic: &str) -> Vec<(String, String)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .set("group.id", "homecam-test")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let parts = md.topics()[0].partitions().len() as i32;
    assert!(parts > 0, "{topic} has no partitions");
    let mut out = Vec::new();
    for p in 0..parts {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
        c.assign(&tpl).unwrap();
        let (_, high) = c
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap();
        let t0 = Instant::now();
        let mut quiet = Instant::now();
        let mut last = -1;
        while t0.elapsed() < Duration::from_secs(30)
            && (last + 1 < high || quiet.elapsed() < Duration::from_secs(2))
        {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
                quiet = Instant::now();
                last = m.offset();
                out.push((
                    String::from_utf8_lossy(m.key().unwrap_or(b"")).into_owned(),
                    String::from_utf8_lossy(m.payload().unwrap_or(b"")).into_owned(),
                ));
            }
        }
        assert!(
            last + 1 >= high,
            "{topic}[{p}]: read up to {last}, high {high}"
        );
    }
    out
}

/// An HTTP answer.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one raw HTTP/1.1 request (the path exactly as given: no client normalises it)
/// and reads the whole answer.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no answer head in {} bytes", raw.len()));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
            let n =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..p]).trim(), 16).unwrap_or(0);
            if n == 0 || rest.len() < p + 2 + n {
                break;
            }
            out.extend_from_slice(&rest[p + 2..p + 2 + n]);
            rest = &rest[(p + 4 + n).min(rest.len())..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// A GET with a session cookie.
pub fn get(port: u16, path: &str, cookie: &str) -> Resp {
    http(port, "GET", path, &[("Cookie", cookie)], b"")
}

/// Opens a streaming GET (MJPEG, server-sent events): the reader after the head, and the
/// head.
pub fn open_stream(
    port: u16,
    path: &str,
    cookie: &str,
) -> (BufReader<std::net::TcpStream>, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
            break;
        }
        head.push_str(&l);
    }
    (r, head)
}

/// The media a file holds, as gst-discoverer-1.0 prints it: (duration in seconds, the
/// whole report).
pub fn discover(path: &Path) -> (f64, String) {
    let out = Command::new("gst-discoverer-1.0")
        .arg(path)
        .output()
        .expect("gst-discoverer-1.0 (Debian package gstreamer1.0-plugins-base-apps)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let d = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Duration: "))
        .and_then(|d| {
            let mut p = d.split(':');
            let h: f64 = p.next()?.parse().ok()?;
            let m: f64 = p.next()?.parse().ok()?;
            let s: f64 = p.next()?.parse().ok()?;
            Some(h * 3600.0 + m * 60.0 + s)
        })
        .unwrap_or(-1.0);
    (d, text)
}

/// A `homecam` process with its output lines collected; SIGTERM at drop.
pub struct Homecam {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Homecam {
    /// `bin` (the test's `CARGO_BIN_EXE_homecam`) with `args`, `env` added.
    pub fn start(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Homecam {
        let mut cmd = Command::new(bin);
        cmd.args(args).stdout(Stdio::piped());
        sim_process::die_with_parent(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let l2 = lines.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(l);
            }
        });
        Homecam { child, lines }
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The first output line containing `what`, waited for at most `timeout`.
    pub fn wait_line(&self, what: &str, timeout: Duration) -> String {
        let t0 = Instant::now();
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| l.contains(what)) {
                return l.clone();
            }
            assert!(
                t0.elapsed() < timeout,
                "no line with {what:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port in the `homecam: {what} at http://127.0.0.1:PORT/` line.
    pub fn port(&self, what: &str) -> u16 {
        let prefix = format!("homecam: {what} at http://127.0.0.1:");
        let line = self.wait_line(&prefix, Duration::from_secs(30));
        line[line.find(&prefix).unwrap() + prefix.len()..]
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"))
    }

    /// SIGTERM: how long until the process exited, its status, and all it printed.
    pub fn stop(mut self) -> (Duration, std::process::ExitStatus, String) {
        let t0 = Instant::now();
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let took = t0.elapsed();
        // The reader thread takes the last lines.
        std::thread::sleep(Duration::from_millis(200));
        (took, status, self.output())
    }
}

impl Drop for Homecam {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A simulated Tapo camera (640x360 sub stream, 15 fps) with a ball bouncing: motion all
/// the time.
pub fn ball_camera() -> tapo_sim::TapoSim {
    tapo_sim::TapoSim::start(tapo_sim::TapoConfig {
        pattern: "pattern=ball".into(),
        main_size: (640, 360),
        ..Default::default()
    })
    .unwrap()
}

/// opencv-doc's surveillance footage: people walking about a courtyard.
pub const VTEST: &str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

/// A simulated Tapo camera (640x480, 10 fps) showing 20 s of people walking (vtest.avi),
/// then `hold` seconds of the place without them (0: none), looped.
pub fn people_camera(hold: u32) -> tapo_sim::TapoSim {
    assert!(
        Path::new(VTEST).exists(),
        "{VTEST}: Debian package opencv-doc (scripts/setup --tests installs it)"
    );
    let hold = if hold > 0 {
        format!(" hold={hold}")
    } else {
        String::new()
    };
    tapo_sim::TapoSim::start(tapo_sim::TapoConfig {
        pattern: format!("file={VTEST} seconds=20{hold}"),
        main_size: (640, 480),
        sub_size: (640, 480),
        fps: 10,
        ..Default::default()
    })
    .unwrap()
}
