//! `homecam dashboard CONFIG`: the web app for several daemons, fed by their Kafka topics.
//!
//! Each daemon publishes its events, camera status and insights to Kafka (`[kafka]`); the
//! dashboard reads the three topics as a consumer group (`[kafka] group-id`), so it
//! resumes where it stopped, builds the same index and serves the same pages. Clips,
//! snapshots and recordings stay on the daemon that made them: each event carries that
//! daemon's `[web] public-url` (`origin`), and the dashboard links there.

use crate::config::{Config, KafkaConfig};
use crate::index::{Index, Record};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The cameras the dashboard has heard of, with their newest status record.
#[derive(Default)]
pub struct Heard {
    cameras: Mutex<BTreeMap<String, Camera>>,
    pub records: AtomicU64,
    pub bad: AtomicU64,
}

#[derive(Clone, Default)]
struct Camera {
    /// The newest record of the camera_status topic.
    status: Value,
    /// When it last came online (Unix s).
    online_since: Option<f64>,
}

impl Heard {
    /// Takes a record of the status topic.
    fn status(&self, v: &Value) {
        let Some(name) = v.get("camera").and_then(Value::as_str) else {
            return;
        };
        let mut c = self.cameras.lock().unwrap();
        let cam = c.entry(name.to_string()).or_default();
        let time = v.get("time").and_then(Value::as_f64).unwrap_or(0.0);
        if cam
            .status
            .get("time")
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
            > time
        {
            return;
        }
        match v.get("event_type").and_then(Value::as_str) {
            Some("camera_online") => cam.online_since = Some(time),
            Some("camera_offline") => cam.online_since = None,
            _ => {}
        }
        cam.status = v.clone();
    }

    /// A camera seen only through its events.
    fn event(&self, v: &Value) {
        if let Some(name) = v.get("camera").and_then(Value::as_str) {
            self.cameras
                .lock()
                .unwrap()
                .entry(name.to_string())
                .or_default();
        }
    }
}

impl crate::web::Cameras for Heard {
    fn list(&self) -> Vec<Value> {
        let c = self.cameras.lock().unwrap();
        c.iter()
            .map(|(name, cam)| {
                let s = &cam.status;
                let stats = s.get("stats").cloned().unwrap_or(Value::Null);
                let n = |k: &str| stats.get(k).cloned().unwrap_or(Value::from(0));
                serde_json::json!({
                    "name": name,
                    "location": s.get("location").cloned().unwrap_or(Value::from("")),
                    "status": s.get("status").cloned().unwrap_or(Value::from("unknown")),
                    "fps": n("fps"),
                    "bitrate": n("bitrate"),
                    "restarts": n("restarts"),
                    "last_error": s.get("reason").cloned().unwrap_or(Value::from("")),
                    "online_since": cam.online_since,
                    "recording": false,
                    "recorded_bytes": n("recorded_bytes"),
                    "events": n("events"),
                    "confirmed": n("confirmed"),
                    "dismissed": n("dismissed"),
                    "clips": n("clips"),
                    "live": Value::Null,
                    "rtsp": Value::Null,
                    "origin": s.get("origin").cloned().unwrap_or(Value::from("")),
                    "updated": s.get("time").cloned().unwrap_or(Value::Null),
                })
            })
            .collect()
    }

    fn names(&self) -> Vec<String> {
        self.cameras.lock().unwrap().keys().cloned().collect()
    }

    fn current_segment(&self, _camera: &str) -> Option<(String, f64)> {
        None
    }

    fn has_recordings(&self) -> bool {
        false
    }
}

/// The consumer thread: every record of the three topics into the index and the pages.
pub fn start(
    k: &KafkaConfig,
    index: Arc<Index>,
    heard: Arc<Heard>,
    push: impl Fn(&'static str, String) + Send + 'static,
    stop: Arc<AtomicBool>,
    log: impl Fn(String) + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, String> {
    let c: BaseConsumer = crate::kafka::client_config(k)?
        .set("group.id", &k.group_id)
        .set("enable.auto.commit", "true")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|e| format!("kafka consumer: {e}"))?;
    let topics = [
        k.events_topic.clone(),
        k.status_topic.clone(),
        k.insights_topic.clone(),
    ];
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    c.subscribe(&names)
        .map_err(|e| format!("kafka: cannot subscribe to {names:?}: {e}"))?;
    std::thread::Builder::new()
        .name("dashboard-kafka".into())
        .spawn(move || {
            let mut failing = false;
            while !stop.load(Ordering::SeqCst) {
                let Some(m) = c.poll(Duration::from_millis(200)) else {
                    continue;
                };
                let m = match m {
                    Ok(m) => {
                        if failing {
                            log("kafka: receiving again".into());
                            failing = false;
                        }
                        m
                    }
                    Err(e) => {
                        if !failing {
                            log(format!("kafka: {e} (retrying)"));
                            failing = true;
                        }
                        continue;
                    }
                };
                heard.records.fetch_add(1, Ordering::Relaxed);
                let Some(v) = m
                    .payload()
                    .and_then(|p| serde_json::from_slice::<Value>(p).ok())
                    .filter(Value::is_object)
                else {
                    heard.bad.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let topic = m.topic();
                if topic == topics[0] {
                    heard.event(&v);
                    let mut shown = v.clone();
                    if let Some(o) = shown.as_object_mut() {
                        o.remove("clip");
                        o.remove("snapshot");
                    }
                    push("event", shown.to_string());
                    index.record(Record::Event { v });
                } else if topic == topics[1] {
                    heard.status(&v);
                    // Changes go to the index; the periodic updates only to the cameras.
                    if v.get("event_type").and_then(Value::as_str) != Some("status_update") {
                        push("status", v.to_string());
                        index.record(Record::Status { v });
                    }
                } else {
                    push("insight", v.to_string());
                    index.record(Record::Insight { v });
                }
            }
        })
        .map_err(|e| e.to_string())
}

/// What the dashboard's configuration must have.
pub fn check(cfg: &Config) -> Result<(), String> {
    if cfg.kafka.is_none() {
        return Err("dashboard: the configuration has no [kafka] to read from".into());
    }
    if cfg.web.is_none() {
        return Err("dashboard: the configuration has no [web] to serve on".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::Cameras;

    #[test]
    fn cameras_come_from_status_records_in_time_order() {
        let h = Heard::default();
        h.status(&serde_json::json!({"camera": "a", "event_type": "camera_online", "status": "online", "time": 10.0, "location": "Door"}));
        h.status(&serde_json::json!({"camera": "a", "event_type": "status_update", "status": "online", "time": 20.0, "stats": {"fps": 15.0}}));
        // An older record arriving late changes nothing.
        h.status(&serde_json::json!({"camera": "a", "event_type": "camera_offline", "status": "offline", "time": 5.0}));
        h.event(&serde_json::json!({"camera": "b"}));
        let l = h.list();
        assert_eq!(h.names(), vec!["a", "b"]);
        assert_eq!(l[0]["status"], "online");
        assert_eq!(l[0]["fps"], 15.0);
        assert_eq!(l[0]["online_since"], 10.0);
        assert_eq!(l[1]["status"], "unknown");
        assert!(!h.has_recordings());
    }
}
