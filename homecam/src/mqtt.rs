//! MQTT, Frigate-style: `<prefix>/events` (`{"type", "before", "after"}`),
//! `<prefix>/<camera>/motion` `ON`/`OFF`, `<prefix>/<camera>/status` `online`/`offline`
//! (retained), `<prefix>/available` `online`/`offline` (retained, with a last will).
//! Publishing never blocks the daemon: when the client's queue is full (a broker away for
//! long), the record is dropped and counted.

use crate::alerts::Alert;
use crate::config::MqttConfig;
use crate::event::{Event, Status};
use crate::insights::Insight;
use rumqttc::{Client, Event as MqttEvent, LastWill, MqttOptions, Packet, QoS};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Requests queued while the broker is away, at most.
const QUEUE: usize = 1000;

pub struct Mqtt {
    client: Client,
    prefix: String,
    pub dropped: Arc<AtomicU64>,
    pub connected: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Mqtt {
    pub fn connect(cfg: &MqttConfig) -> Result<Mqtt, String> {
        let mut opts = MqttOptions::new(&cfg.client_id, &cfg.host, cfg.port);
        opts.set_keep_alive(Duration::from_secs(30));
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
                false,
                m.into(),
            );
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
