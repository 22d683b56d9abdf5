//! MQTT, Frigate-style: `<prefix>/events` (`{"type", "before", "after"}`),
//! `<prefix>/<camera>/motion` `ON`/`OFF`, `<prefix>/<camera>/person` and `/animal` (any
//! confirmed group) `ON`/`OFF`, `<prefix>/<camera>/snapshot` (the latest event's JPEG),
//! `<prefix>/<camera>/stats` (fps, bit rate), `<prefix>/<camera>/status`
//! `online`/`offline`, `<prefix>/available` `online`/`offline` with a last will; all of
//! them retained but events. With `discovery`, Home Assistant's discovery configs under
//! `homeassistant/` make each camera a device (see [`discovery`]).
//! Publishing never blocks the daemon: when the client's queue is full (a broker away for
//! long), the record is dropped and counted.

use crate::alerts::Alert;
use crate::config::MqttConfig;
use crate::event::{Event, Status};
use crate::insights::Insight;
use rumqttc::{Client, Event as MqttEvent, LastWill, MqttOptions, Packet, QoS};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Requests queued while the broker is away, at most.
const QUEUE: usize = 1000;

/// A snapshot larger than this is not published (a broker's default message limit is
/// far above; a JPEG of a 4K frame is far below).
const SNAPSHOT_MAX: u64 = 8 << 20;

/// A camera as Home Assistant's device registry shows it.
#[derive(Debug, Clone)]
pub struct DiscoveryCamera {
    /// The camera's name in the configuration (topics, ids).
    pub name: String,
    /// Its location, the device's name when set.
    pub location: String,
    /// What kind of camera (from its uri).
    pub model: String,
}

/// The groups with a binary sensor each, besides motion.
const GROUPS: [&str; 2] = ["person", "animal"];

/// Home Assistant MQTT discovery configs (topic, payload) for `cams`: per camera a device
/// with a `camera` (the snapshot topic), `binary_sensor`s for motion, person and animal,
/// and `sensor`s for fps, bit rate and status. Every entity is available while the daemon
/// is (its last will); those that follow the camera's stream also need the camera online.
pub fn discovery(cfg: &MqttConfig, cams: &[DiscoveryCamera]) -> Vec<(String, serde_json::Value)> {
    let prefix = cfg.prefix.trim_end_matches('/');
    let hp = cfg.discovery_prefix.trim_end_matches('/');
    // Ids: letters, digits, _ and - (Home Assistant's node and object ids).
    let id = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let version = env!("CARGO_PKG_VERSION");
    let mut out = Vec::new();
    for c in cams {
        let node = format!("{}_{}", id(&cfg.client_id), id(&c.name));
        let daemon = json!([{ "topic": format!("{prefix}/available") }]);
        let both = json!([
            { "topic": format!("{prefix}/available") },
            { "topic": format!("{prefix}/{}/status", c.name) },
        ]);
        let base = |what: &str, name: &str, availability: &serde_json::Value| {
            json!({
                "name": name,
                "unique_id": format!("{node}_{what}"),
                "object_id": format!("{node}_{what}"),
                "availability": availability,
                "availability_mode": "all",
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": {
                    "identifiers": [node],
                    "name": if c.location.is_empty() { &c.name } else { &c.location },
                    "manufacturer": "homecam",
                    "model": c.model,
                    "sw_version": version,
                },
                "origin": { "name": "homecam", "sw_version": version },
            })
        };
        let mut add =
            |component: &str, what: &str, mut v: serde_json::Value, extra: serde_json::Value| {
                if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                    o.extend(e.clone());
                }
                out.push((format!("{hp}/{component}/{node}/{what}/config"), v));
            };
        add(
            "camera",
            "snapshot",
            base("snapshot", "Snapshot", &daemon),
            json!({ "topic": format!("{prefix}/{}/snapshot", c.name) }),
        );
        add(
            "binary_sensor",
            "motion",
            base("motion", "Motion", &both),
            json!({
                "state_topic": format!("{prefix}/{}/motion", c.name),
                "device_class": "motion",
                "payload_on": "ON",
                "payload_off": "OFF",
            }),
        );
        for g in GROUPS {
            let name = if g == "person" { "Person" } else { "Animal" };
            add(
                "binary_sensor",
                g,
                base(g, name, &both),
                json!({
                    "state_topic": format!("{prefix}/{}/{g}", c.name),
                    "device_class": "occupancy",
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "icon": if g == "person" { "mdi:walk" } else { "mdi:paw" },
                }),
            );
        }
        add(
            "sensor",
            "fps",
            base("fps", "Frame rate", &both),
            json!({
                "state_topic": format!("{prefix}/{}/stats", c.name),
                "value_template": "{{ value_json.fps }}",
                "unit_of_measurement": "fps",
                "state_class": "measurement",
                "entity_category": "diagnostic",
            }),
        );
        add(
            "sensor",
            "bitrate",
            base("bitrate", "Bit rate", &both),
            json!({
                "state_topic": format!("{prefix}/{}/stats", c.name),
                "value_template": "{{ value_json.bitrate_kbit }}",
                "device_class": "data_rate",
                "unit_of_measurement": "kbit/s",
                "state_class": "measurement",
                "entity_category": "diagnostic",
            }),
        );
        add(
            "sensor",
            "status",
            base("status", "Status", &daemon),
            json!({
                "state_topic": format!("{prefix}/{}/status", c.name),
                "device_class": "enum",
                "options": ["online", "offline", "connecting"],
                "entity_category": "diagnostic",
            }),
        );
    }
    out
}

/// What the event stream has turned on, and the snapshot last published, per camera.
#[derive(Default)]
struct Track {
    /// (camera, group) -> the confirmed events of that group still going on.
    on: HashMap<(String, String), HashSet<String>>,
    /// camera -> (file, length, modified) of the snapshot last published.
    snapshot: HashMap<String, (String, u64, Option<std::time::SystemTime>)>,
}

pub struct Mqtt {
    client: Client,
    prefix: String,
    pub dropped: Arc<AtomicU64>,
    pub connected: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    track: Mutex<Track>,
}

impl Mqtt {
    /// Connects (in the background, retrying) and, at each connection, says `online` and
    /// publishes the discovery configs of `cams` (with `discovery`); at the first, also
    /// each camera's binary sensors `OFF` (no event is going on at the start).
    pub fn connect(cfg: &MqttConfig, cams: &[DiscoveryCamera]) -> Result<Mqtt, String> {
        for (key, v) in [
            ("prefix", &cfg.prefix),
            ("discovery-prefix", &cfg.discovery_prefix),
        ] {
            if v.trim_end_matches('/').is_empty() || v.contains(['+', '#']) {
                return Err(format!(
                    "mqtt: {key} {v:?} must be a topic without the wildcards + and #"
                ));
            }
        }
        let configs: Vec<(String, Vec<u8>)> = if cfg.discovery {
            discovery(cfg, cams)
                .into_iter()
                .map(|(t, v)| (t, v.to_string().into_bytes()))
                .collect()
        } else {
            Vec::new()
        };
        let prefix0 = cfg.prefix.trim_end_matches('/').to_string();
        let mut initial: Vec<(String, Vec<u8>)> = Vec::new();
        for c in cams {
            for what in std::iter::once("motion").chain(GROUPS) {
                initial.push((format!("{prefix0}/{}/{what}", c.name), b"OFF".to_vec()));
            }
        }
        let mut opts = MqttOptions::new(&cfg.client_id, &cfg.host, cfg.port);
        opts.set_keep_alive(Duration::from_secs(30));
        // rumqttc's default limit (10 KiB each way) is below a snapshot: a larger publish
        // would end the connection.
        opts.set_max_packet_size(64 << 10, SNAPSHOT_MAX as usize + (64 << 10));
        let prefix = cfg.prefix.trim_end_matches('/').to_string();
        let available = format!("{prefix}/available");
        opts.set_last_will(LastWill::new(&available, "offline", QoS::AtLeastOnce, true));
        if let Some(user) = &cfg.username {
            opts.set_credentials(user, cfg.password()?.unwrap_or_default());
        }
        let (client, mut connection) = Client::new(opts, QUEUE);
        let connected = Arc::new(AtomicBool::new(false));
        let (c2, conn2) = (client.clone(), connected.clone());
        let (host, port) = (cfg.host.clone(), cfg.port);
        let thread = std::thread::Builder::new()
            .name("mqtt".into())
            .spawn(move || {
                let mut logged = false;
                for ev in connection.iter() {
                    match ev {
                        Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                            conn2.store(true, Ordering::SeqCst);
                            logged = false;
                            println!("homecam: mqtt: connected to {host}:{port}");
                            let _ = c2.try_publish(&available, QoS::AtLeastOnce, true, "online");
                            // A broker without persistence forgets retained messages when
                            // it restarts: the configs go again at every connection.
                            for (topic, body) in configs.iter().chain(initial.drain(..).as_slice())
                            {
                                let _ = c2.try_publish(topic, QoS::AtLeastOnce, true, body.clone());
                            }
                        }
                        Ok(MqttEvent::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                        Ok(_) => {}
                        Err(e) => {
                            conn2.store(false, Ordering::SeqCst);
                            if !logged {
                                logged = true;
                                println!("homecam: mqtt: {host}:{port}: {e}; retrying");
                            }
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Mqtt {
            client,
            prefix,
            dropped: Arc::new(AtomicU64::new(0)),
            connected,
            thread: Some(thread),
            track: Mutex::new(Track::default()),
        })
    }

    fn publish(&self, topic: String, retain: bool, payload: Vec<u8>) {
        if self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
            .is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An event change, with the previous state of the same event (Frigate's `before`).
    pub fn event(&self, e: &Event, before: Option<&Event>) {
        let body = serde_json::json!({
            "type": e.kind,
            "before": before.unwrap_or(e),
            "after": e,
        });
        self.publish(
            format!("{}/events", self.prefix),
            false,
            body.to_string().into_bytes(),
        );
        let motion = match e.kind {
            "new" => Some("ON"),
            "end" => Some("OFF"),
            _ => None,
        };
        if let Some(m) = motion {
            self.publish(
                format!("{}/{}/motion", self.prefix, e.camera),
                true,
                m.into(),
            );
        }
        let mut track = self.track.lock().unwrap();
        // person / animal (any group): ON while a confirmed event of it goes on.
        let mut changes = Vec::new();
        if e.confirmed && !e.group.is_empty() && e.kind != "end" {
            let set = track
                .on
                .entry((e.camera.clone(), e.group.clone()))
                .or_default();
            if set.insert(e.id.clone()) && set.len() == 1 {
                changes.push((e.group.clone(), "ON"));
            }
        }
        if e.kind == "end" {
            for ((cam, group), set) in track.on.iter_mut() {
                if *cam == e.camera && set.remove(&e.id) && set.is_empty() {
                    changes.push((group.clone(), "OFF"));
                }
            }
        }
        // The event's picture, when it is new or was replaced by a better one.
        let snapshot = e
            .snapshot
            .as_ref()
            .filter(|_| e.has_snapshot)
            .and_then(|path| {
                let meta = std::fs::metadata(path).ok()?;
                let key = (path.clone(), meta.len(), meta.modified().ok());
                (track.snapshot.get(&e.camera) != Some(&key) && meta.len() <= SNAPSHOT_MAX)
                    .then_some(key)
            });
        let snapshot = snapshot.and_then(|key| {
            let jpeg = std::fs::read(&key.0).ok()?;
            track.snapshot.insert(e.camera.clone(), key);
            Some(jpeg)
        });
        drop(track);
        for (group, state) in changes {
            self.publish(
                format!("{}/{}/{group}", self.prefix, e.camera),
                true,
                state.into(),
            );
        }
        if let Some(jpeg) = snapshot {
            self.publish(format!("{}/{}/snapshot", self.prefix, e.camera), true, jpeg);
        }
    }

    pub fn insight(&self, i: &Insight) {
        let body = serde_json::to_vec(i).unwrap_or_default();
        self.publish(format!("{}/insights", self.prefix), false, body);
    }

    pub fn alert(&self, a: &Alert) {
        let body = serde_json::to_vec(a).unwrap_or_default();
        self.publish(format!("{}/alerts", self.prefix), false, body);
    }

    pub fn status(&self, s: &Status) {
        self.publish(
            format!("{}/{}/status", self.prefix, s.camera),
            true,
            s.status.into(),
        );
    }

    /// A periodic `status_update`'s figures, for Home Assistant's sensors.
    pub fn stats(&self, s: &Status) {
        if let Some(st) = &s.stats {
            let body = json!({
                "fps": (st.fps * 10.0).round() / 10.0,
                "bitrate_kbit": st.bitrate / 1000,
                "restarts": st.restarts,
                "frames": st.frame_count,
            });
            self.publish(
                format!("{}/{}/stats", self.prefix, s.camera),
                true,
                body.to_string().into_bytes(),
            );
        }
    }

    /// Says `offline` on `available` and disconnects, waiting up to `wait` for it to go.
    pub fn close(mut self, wait: Duration) {
        self.publish(format!("{}/available", self.prefix), true, "offline".into());
        let _ = self.client.try_disconnect();
        if let Some(t) = self.thread.take() {
            let deadline = std::time::Instant::now() + wait;
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}
