//! What the homecam tests share: real brokers on loopback (mosquitto, tansu), a small SMTP
//! sink and webhook server, and an MQTT subscriber.
#![allow(dead_code)]

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    let child = Command::new(tansu_bin())
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
    let child = Command::new("mosquitto")
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
    let (client, mut conn) = Client::new(MqttOptions::new(id, "127.0.0.1", port), 100);
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
                    String::from_utf8_lossy(&p.payload).into_owned(),
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
