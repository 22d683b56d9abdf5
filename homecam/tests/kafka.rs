//! homecam's Kafka topics through a real broker: tansu (a Kafka-protocol broker from
//! crates.io, `scripts/setup --tests` installs it) on loopback, read back with librdkafka's
//! consumer. The broker is away when the daemon starts, comes up later, and freezes
//! (SIGSTOP) in the middle of a run; the daemon is stopped once with records undelivered.
//! Every record reaches Kafka exactly in the order the daemon made it.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_homecam");
const TOPICS: [&str; 3] = ["t_events", "t_status", "t_insights"];

mod common;
use common::*;

fn config(dir: &Path, cam_port: u16, broker: u16) -> std::path::PathBuf {
    let cfg = dir.join("homecam.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[general]
metrics = ""
status-interval = 2
data-dir = "{dir}"

[insights]
period = 3

[kafka]
brokers = "127.0.0.1:{broker}"
events-topic = "{}"
status-topic = "{}"
insights-topic = "{}"
partitions = 2
delivery-timeout = 3

[[camera]]
name = "yard"
uri = "rtsp://admin@127.0.0.1:{cam_port}/stream2"
password-env = "YARD_PW"
motion = {{ clips = false }}
"#,
            TOPICS[0],
            TOPICS[1],
            TOPICS[2],
            dir = dir.display(),
        ),
    )
    .unwrap();
    cfg
}

fn homecam(cfg: &Path, seconds: u32) -> Child {
    Command::new(BIN)
        .args([
            "run",
            cfg.to_str().unwrap(),
            "--seconds",
            &seconds.to_string(),
        ])
        .env("YARD_PW", tapo_sim::TapoConfig::default().password)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(c: Child) -> String {
    let out = c.wait_with_output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{s}");
    s
}

/// The payloads of `prefix` lines (`event {...}`), in order.
fn lines(out: &str, prefix: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(str::to_string)
        .collect()
}

/// First occurrences only: a record whose acknowledgement was lost is sent again.
fn dedupe(v: Vec<String>) -> (Vec<String>, usize) {
    let mut seen = HashSet::new();
    let n = v.len();
    let out: Vec<String> = v.into_iter().filter(|s| seen.insert(s.clone())).collect();
    let d = n - out.len();
    (out, d)
}

fn kafka_line(out: &str) -> String {
    out.lines()
        .rev()
        .find(|l| l.starts_with("homecam: kafka: ") && l.contains("delivered="))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn records_reach_kafka_in_order_through_outages_and_restarts() {
    let dir = std::env::temp_dir().join(format!("homecam-kafka-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cam = tapo_sim::TapoSim::start(tapo_sim::TapoConfig {
        pattern: "pattern=ball".into(),
        ..Default::default()
    })
    .unwrap();
    let port = free_port();
    let cfg = config(&dir, cam.port(), port);

    // 1. No broker at all: everything waits in the spool, and stays there at exit.
    let run1 = finish(homecam(&cfg, 10));
    assert!(run1.contains("cannot create the topics"), "{run1}");
    assert!(
        run1.contains("kept in the spool for the next start"),
        "{run1}"
    );
    assert!(kafka_line(&run1).contains("delivered=0"), "{run1}");

    // 2. The broker is up: the spool goes first, then the new records. 8 s in, the broker
    //    freezes for 8 s (longer than delivery-timeout), then thaws.
    let broker = tansu(&dir, port);
    let run2 = homecam(&cfg, 26);
    std::thread::sleep(Duration::from_secs(8));
    unsafe { libc::kill(broker.0.id() as i32, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_secs(8));
    unsafe { libc::kill(broker.0.id() as i32, libc::SIGCONT) };
    let run2 = finish(run2);
    let last = kafka_line(&run2);
    assert!(
        run2.contains("left undelivered by an earlier run"),
        "{run2}"
    );
    assert!(run2.contains("records wait in the spool"), "{run2}");
    assert!(run2.contains("reachable again"), "{run2}");
    assert!(
        last.contains(" spooled=0B ") && last.contains(" lost=0"),
        "{last}"
    );
    assert!(
        !last.contains("retries=0 "),
        "no delivery failed while frozen: {last}"
    );

    let both = format!("{run1}{run2}");
    let events = read_topic(port, TOPICS[0]);
    let status = read_topic(port, TOPICS[1]);
    let insights = read_topic(port, TOPICS[2]);
    assert!(events.iter().chain(&status).all(|(k, _)| k == "yard"));
    assert!(insights.iter().all(|(k, _)| k == "insights"));
    let (ev, ev_dups) = dedupe(events.into_iter().map(|(_, v)| v).collect());
    let (ins, ins_dups) = dedupe(insights.into_iter().map(|(_, v)| v).collect());
    let (st, st_dups) = dedupe(status.into_iter().map(|(_, v)| v).collect());
    eprintln!(
        "kafka: {} events ({ev_dups} duplicates), {} insights ({ins_dups}), {} status ({st_dups}); {last}",
        ev.len(),
        ins.len(),
        st.len()
    );
    // Events and insights: exactly what the daemon printed, in its order, across both runs.
    let want_ev = lines(&both, "event ");
    assert!(want_ev.len() >= 2, "{both}");
    assert_eq!(ev, want_ev);
    let want_ins = lines(&both, "insight ");
    assert!(want_ins.len() >= 5, "{both}");
    assert_eq!(ins, want_ins);
    // Status: the online/offline records in order, and the periodic updates between them,
    // in time order.
    let changes: Vec<String> = st
        .iter()
        .filter(|s| !s.contains("\"status_update\""))
        .cloned()
        .collect();
    assert_eq!(changes, lines(&both, "status "));
    let times: Vec<f64> = st
        .iter()
        .map(|s| {
            serde_json::from_str::<serde_json::Value>(s).unwrap()["time"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let updates: Vec<serde_json::Value> = st
        .iter()
        .filter(|s| s.contains("\"status_update\""))
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    assert!(updates.len() >= 10, "{}", updates.len());
    let online = updates
        .iter()
        .rfind(|u| u["status"] == "online")
        .expect("an online update");
    assert_eq!(online["camera_id"], "yard");
    assert!(
        online["stats"]["frame_count"].as_u64().unwrap() > 0,
        "{online}"
    );
    assert!(online["timestamp"].as_str().unwrap().ends_with('Z'));
    // The password never leaves the machine in a record or a log line.
    let pw = tapo_sim::TapoConfig::default().password;
    assert!(!both.contains(&pw));
    assert!(!ev.iter().chain(&st).any(|r| r.contains(&pw)));
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
