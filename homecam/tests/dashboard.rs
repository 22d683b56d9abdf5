//! Two daemons and one `homecam dashboard` through a real Kafka broker (tansu): the
//! dashboard lists both daemons' cameras and events, and sends a click on a clip to the
//! daemon that holds it.

mod common;
use common::*;

use serde_json::Value;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_homecam");

#[test]
fn one_dashboard_for_two_daemons() {
    let dir = std::env::temp_dir().join(format!("homecam-dash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let kafka_port = free_port();
    let _broker = tansu(&dir, kafka_port);
    let kafka = format!(
        "[kafka]\nbrokers = \"127.0.0.1:{kafka_port}\"\nevents-topic = \"dash_events\"\nstatus-topic = \"dash_status\"\ninsights-topic = \"dash_insights\"\npartitions = 1\ngroup-id = \"dash-test\"\n"
    );
    let cams: Vec<tapo_sim::TapoSim> = (0..2).map(|_| people_camera(12)).collect();
    // Two daemons, each with its web app on a port known in advance (its public URL).
    let pw = tapo_sim::TapoConfig::default().password;
    let mut daemons = Vec::new();
    let mut origins = Vec::new();
    for (i, (name, cam)) in ["front", "back"].iter().zip(&cams).enumerate() {
        let web_port = free_port();
        let origin = format!("http://127.0.0.1:{web_port}");
        let d = dir.join(format!("d{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let cfg = d.join("homecam.toml");
        std::fs::write(
            &cfg,
            format!(
                "[general]\nmetrics = \"\"\nstatus-interval = 2\ndata-dir = \"{}\"\n\n[web]\nlisten = \"127.0.0.1:{web_port}\"\nauth = \"none\"\npublic-url = \"{origin}\"\n\n{kafka}client-id = \"d{i}\"\n\n[[camera]]\nname = \"{name}\"\nlocation = \"{name} door\"\nuri = \"rtsp://admin@127.0.0.1:{}/stream2\"\npassword-env = \"PW\"\nrecord = {{ segment = \"10s\" }}\nmotion = {{ record = \"confirmed\", pre-roll = 2, post-roll = 2 }}\n",
                d.display(),
                cam.port()
            ),
        )
        .unwrap();
        daemons.push(Homecam::start(
            BIN,
            &["run", cfg.to_str().unwrap()],
            &[("PW", &pw)],
        ));
        origins.push(origin);
    }
    // The dashboard: no cameras of its own, Kafka and a web app.
    let cfg = dir.join("dashboard.toml");
    std::fs::write(
        &cfg,
        format!(
            "[general]\nstatus-interval = 2\ndata-dir = \"{}\"\n\n[web]\nlisten = \"127.0.0.1:0\"\nauth = \"none\"\n\n{kafka}",
            dir.join("dash").display()
        ),
    )
    .unwrap();
    let dash = Homecam::start(BIN, &["dashboard", cfg.to_str().unwrap()], &[]);
    let port = dash.port("dashboard");

    // Both cameras' confirmed people, with their clips on their own daemons.
    let t0 = Instant::now();
    let events = loop {
        let r = get(port, "/api/events?limit=500", "");
        assert_eq!(r.status, 200, "{}", r.text());
        let ev: Vec<Value> = r.json()["events"].as_array().unwrap().clone();
        let done = ["front", "back"].iter().all(|c| {
            ev.iter()
                .any(|e| e["camera"] == *c && e["type"] == "end" && e["clip_url"].is_string())
        });
        if done {
            break ev;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(75),
            "the dashboard lacks a camera's ended event with a clip: {ev:#?}\n{}\n{}",
            dash.output(),
            daemons[0].output()
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    for (name, origin) in ["front", "back"].iter().zip(&origins) {
        let e = events
            .iter()
            .find(|e| e["camera"] == *name && e["clip_url"].is_string())
            .unwrap();
        assert_eq!(e["origin"], origin.as_str(), "{e}");
        let url = e["clip_url"].as_str().unwrap();
        assert!(url.starts_with(&format!("{origin}/api/events/")), "{url}");
        // The dashboard sends a request for the clip to the daemon that has it.
        let id = e["id"].as_str().unwrap();
        let r = get(port, &format!("/api/events/{id}/clip.mp4"), "");
        assert_eq!(r.status, 302, "{}", r.text());
        assert_eq!(r.header("location"), Some(url));
        let daemon_port: u16 = origin.rsplit(':').next().unwrap().parse().unwrap();
        let path = url.strip_prefix(origin.as_str()).unwrap();
        let clip = get(daemon_port, path, "");
        assert_eq!(
            (clip.status, clip.header("content-type")),
            (200, Some("video/mp4"))
        );
        assert!(clip.body.len() > 10_000);
    }
    // The cameras, from their status records.
    let t0 = Instant::now();
    loop {
        let c = get(port, "/api/cameras", "").json();
        let names: Vec<&str> = c["cameras"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "online" && c["fps"].as_f64().unwrap_or(0.0) > 0.0)
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        if names.contains(&"front") && names.contains(&"back") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "cameras: {c}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // Charts and insights come through too; recordings stay with the daemons.
    let st = get(port, "/api/stats", "").json();
    assert!(st["rows"].as_array().unwrap().len() >= 2, "{st}");
    let r = get(port, "/api/recordings?camera=front&start=0", "");
    assert_eq!(r.status, 404, "{}", r.text());
    drop(dash);
    drop(daemons);
    drop(cams);
    let _ = std::fs::remove_dir_all(&dir);
}
