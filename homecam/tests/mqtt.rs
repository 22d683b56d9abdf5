//! homecam's MQTT topics through a real broker (Debian's mosquitto on loopback): Frigate's
//! `<prefix>/events` with before/after, motion ON/OFF, retained camera status and
//! availability with a last will, and Home Assistant's discovery configs checked key by
//! key against its documented MQTT schemas.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_homecam");

mod common;
use common::*;

#[test]
fn events_motion_status_and_availability_reach_the_broker() {
    let dir = std::env::temp_dir().join(format!("homecam-mqtt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let _broker = mosquitto(&dir, port);
    let seen = subscribe(port, "watcher", "hc/#");
    let cam = tapo_sim::TapoSim::start(tapo_sim::TapoConfig {
        pattern: "pattern=ball".into(),
        ..Default::default()
    })
    .unwrap();
    let cfg = dir.join("homecam.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[general]
metrics = ""
status-interval = 2
data-dir = "{}"

[mqtt]
port = {port}
prefix = "hc"

[[camera]]
name = "yard"
uri = "rtsp://admin@127.0.0.1:{}/stream2"
password-env = "YARD_PW"
motion = {{ clips = false }}
"#,
            dir.display(),
            cam.port()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["run", cfg.to_str().unwrap(), "--seconds", "20"])
        .env("YARD_PW", tapo_sim::TapoConfig::default().password)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("mqtt: connected"), "{stdout}");
    wait_for(&seen, "available online", |(t, p, _)| {
        t == "hc/available" && p == "online"
    });
    // (A broker clears the retain flag of what it forwards to existing subscribers.)
    wait_for(&seen, "status online", |(t, p, _)| {
        t == "hc/yard/status" && p == "online"
    });
    wait_for(&seen, "motion ON", |(t, p, _)| {
        t == "hc/yard/motion" && p == "ON"
    });
    wait_for(&seen, "an event", |(t, _, _)| t == "hc/events");
    // The daemon said goodbye: availability goes offline.
    wait_for(&seen, "available offline", |(t, p, _)| {
        t == "hc/available" && p == "offline"
    });
    let seen_now = seen.lock().unwrap().clone();
    let events: Vec<serde_json::Value> = seen_now
        .iter()
        .filter(|(t, _, _)| t == "hc/events")
        .map(|(_, p, _)| serde_json::from_str(p).unwrap())
        .collect();
    let new = events
        .iter()
        .find(|e| e["type"] == "new")
        .expect("a new event");
    assert_eq!(new["after"]["camera"], "yard");
    assert_eq!(new["after"]["label"], "motion");
    assert!(new["before"].is_object());
    // Ended at the daemon's stop (EOS): OFF and a verdict.
    let end = events
        .iter()
        .find(|e| e["type"] == "end")
        .expect("an end event");
    assert_eq!(end["before"]["id"], end["after"]["id"]);
    assert_eq!(end["after"]["verdict"], "dismissed");
    wait_for(&seen, "motion OFF", |(t, p, _)| {
        t == "hc/yard/motion" && p == "OFF"
    });

    // A newcomer gets the retained state: camera online, daemon offline.
    let late = subscribe(port, "late", "hc/+/status");
    wait_for(&late, "retained status", |(t, p, r)| {
        t == "hc/yard/status" && p == "online" && *r
    });

    // Home Assistant (a newcomer too): retained discovery configs, one device, and every
    // topic they name holds a retained state.
    let ha = subscribe(port, "home-assistant", "homeassistant/#");
    let state = subscribe(port, "ha-states", "hc/#");
    wait_for(&ha, "discovery configs", |(t, _, _)| {
        t.ends_with("/status/config")
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let configs = ha.lock().unwrap().clone();
    let states = state.lock().unwrap().clone();
    let retained = |topic: &str| -> Option<String> {
        states
            .iter()
            .rev()
            .find(|(t, _, r)| t == topic && *r)
            .map(|(_, p, _)| p.clone())
    };
    let mut kinds = Vec::new();
    let mut device = None;
    for (topic, body, is_retained) in &configs {
        assert!(is_retained, "{topic}: not retained");
        let parts: Vec<&str> = topic.split('/').collect();
        assert!(
            parts.len() == 5 && parts[0] == "homeassistant" && parts[4] == "config",
            "{topic}: not <prefix>/<component>/<node_id>/<object_id>/config"
        );
        for id in &parts[2..4] {
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{topic}: node or object id"
            );
        }
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        check_ha_schema(parts[1], &v).unwrap_or_else(|e| panic!("{topic}: {e}\n{v:#}"));
        kinds.push(format!("{}/{}", parts[1], parts[3]));
        // One device for the camera's entities.
        let d = v["device"].clone();
        assert_eq!(device.get_or_insert(d.clone()), &d, "{topic}");
        // Availability: the daemon's last will (offline now that it stopped), and the
        // camera's status.
        for a in v["availability"].as_array().unwrap() {
            let t = a["topic"].as_str().unwrap();
            let now = retained(t).unwrap_or_else(|| panic!("{topic}: nothing retained on {t}"));
            assert!(now == "online" || now == "offline", "{t}: {now}");
        }
        for key in ["state_topic", "topic"] {
            if let Some(t) = v[key].as_str() {
                assert!(t.starts_with("hc/yard/"), "{topic}: {key} {t}");
                if !t.ends_with("/snapshot") {
                    assert!(
                        retained(t).is_some(),
                        "{topic}: nothing retained on {key} {t}"
                    );
                }
            }
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "binary_sensor/animal",
            "binary_sensor/motion",
            "binary_sensor/person",
            "camera/snapshot",
            "sensor/bitrate",
            "sensor/fps",
            "sensor/status",
        ]
    );
    let device = device.unwrap();
    assert_eq!(device["identifiers"][0], "homecam_yard");
    assert_eq!(device["model"], "RTSP camera (Tapo and others)");
    assert_eq!(device["sw_version"], env!("CARGO_PKG_VERSION"));
    // The states themselves: the sensors' JSON, the binary sensors' ON/OFF.
    let stats: serde_json::Value =
        serde_json::from_str(&retained("hc/yard/stats").unwrap()).unwrap();
    assert!(stats["fps"].as_f64().unwrap() > 1.0, "{stats}");
    assert!(stats["bitrate_kbit"].as_u64().unwrap() > 10, "{stats}");
    for what in ["motion", "person", "animal"] {
        assert_eq!(
            retained(&format!("hc/yard/{what}")).as_deref(),
            Some("OFF"),
            "{what}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Home Assistant's documented MQTT discovery schema, key by key, for the three
/// components homecam announces (home-assistant.io/integrations/{camera,binary_sensor,
/// sensor}.mqtt): every key known, the required ones present, values of the right kind.
fn check_ha_schema(component: &str, v: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    let o = v.as_object().ok_or("not an object")?;
    let common = [
        "availability",
        "availability_mode",
        "availability_template",
        "availability_topic",
        "payload_available",
        "payload_not_available",
        "device",
        "enabled_by_default",
        "encoding",
        "entity_category",
        "entity_picture",
        "icon",
        "json_attributes_template",
        "json_attributes_topic",
        "name",
        "object_id",
        "default_entity_id",
        "qos",
        "unique_id",
        "origin",
    ];
    let (own, required): (&[&str], &[&str]) = match component {
        "camera" => (&["topic", "image_encoding"], &["topic"]),
        "binary_sensor" => (
            &[
                "state_topic",
                "device_class",
                "expire_after",
                "force_update",
                "off_delay",
                "payload_on",
                "payload_off",
                "value_template",
            ],
            &["state_topic"],
        ),
        "sensor" => (
            &[
                "state_topic",
                "device_class",
                "expire_after",
                "force_update",
                "last_reset_value_template",
                "options",
                "suggested_display_precision",
                "state_class",
                "unit_of_measurement",
                "value_template",
            ],
            &["state_topic"],
        ),
        other => return Err(format!("component {other} not announced by homecam")),
    };
    for k in o.keys() {
        if !common.contains(&k.as_str()) && !own.contains(&k.as_str()) {
            return Err(format!("unknown key {k}"));
        }
    }
    for k in required {
        if !o.contains_key(*k) {
            return Err(format!("missing {k}"));
        }
    }
    let string = |k: &str| o.get(k).is_none_or(Value::is_string);
    for k in o.keys() {
        let ok = match k.as_str() {
            "availability" => o[k]
                .as_array()
                .is_some_and(|a| !a.is_empty() && a.iter().all(|x| x["topic"].is_string())),
            "availability_mode" => ["all", "any", "latest"].contains(&o[k].as_str().unwrap_or("")),
            "entity_category" => ["config", "diagnostic"].contains(&o[k].as_str().unwrap_or("")),
            "state_class" => {
                ["measurement", "total", "total_increasing"].contains(&o[k].as_str().unwrap_or(""))
            }
            "options" => o[k]
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            "qos" => o[k].as_u64().is_some_and(|q| q <= 2),
            "device" => {
                let d = o[k].as_object();
                d.is_some_and(|d| {
                    d.get("identifiers").is_some_and(|i| {
                        i.as_array()
                            .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string))
                    }) && d.keys().all(|k| {
                        [
                            "configuration_url",
                            "connections",
                            "hw_version",
                            "identifiers",
                            "manufacturer",
                            "model",
                            "model_id",
                            "name",
                            "serial_number",
                            "suggested_area",
                            "sw_version",
                            "via_device",
                        ]
                        .contains(&k.as_str())
                    })
                })
            }
            "origin" => o[k].as_object().is_some_and(|d| {
                d.get("name").is_some_and(Value::is_string)
                    && d.keys()
                        .all(|k| ["name", "sw_version", "support_url"].contains(&k.as_str()))
            }),
            "enabled_by_default" | "force_update" => o[k].is_boolean(),
            "expire_after" | "off_delay" | "suggested_display_precision" => o[k].is_u64(),
            _ => string(k),
        };
        if !ok {
            return Err(format!("{k}: {} is not what the schema takes", o[k]));
        }
    }
    // A device needs a unique id; an entity of a device class its documented units.
    if o.contains_key("device") && !o.contains_key("unique_id") {
        return Err("device without unique_id".into());
    }
    match (component, o.get("device_class").and_then(Value::as_str)) {
        ("binary_sensor", Some(c))
            if ![
                "motion",
                "occupancy",
                "presence",
                "connectivity",
                "problem",
                "running",
            ]
            .contains(&c) =>
        {
            return Err(format!("binary_sensor device_class {c}"));
        }
        ("sensor", Some("data_rate")) => {
            let units = [
                "bit/s", "kbit/s", "Mbit/s", "Gbit/s", "B/s", "kB/s", "MB/s", "GB/s", "KiB/s",
                "MiB/s", "GiB/s",
            ];
            if !units.contains(
                &o.get("unit_of_measurement")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            ) {
                return Err("data_rate without one of its units".into());
            }
        }
        ("sensor", Some("enum"))
            if !o.contains_key("options")
                || o.contains_key("unit_of_measurement")
                || o.contains_key("state_class") =>
        {
            return Err("enum: options, and no unit or state class".into());
        }
        _ => {}
    }
    Ok(())
}
