//! `kasaview`: watch or record a Kasa camera, or the built-in simulated one.
//!
//! With `KASA_IP` (and `KASA_USER`, `KASA_PASSWORD`) set it streams that camera;
//! otherwise it starts the simulated camera on loopback. With a display it shows video
//! and plays audio until closed; without one it records `--seconds` (default 10) of
//! video and audio into a Matroska file and prints the stream statistics.

use gst::prelude::*;
use kasa_protocol::auth::Secret;
use std::time::{Duration, Instant};

fn main() {
    if let Err(e) = run() {
        eprintln!("kasaview: {e}");
        std::process::exit(1);
    }
}

fn arg(name: &str) -> Option<String> {
    let mut it = std::env::args().skip_while(|a| a != name);
    it.next()?;
    it.next()
}

fn run() -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstkasasrc::plugin_register_static().map_err(|e| e.to_string())?;
    let seconds: u64 = arg("--seconds")
        .map(|s| s.parse().unwrap_or(10))
        .unwrap_or(10);
    let output = arg("--output").unwrap_or_else(|| "kasa-clip.mkv".into());
    let headless = std::env::args().any(|a| a == "--headless")
        || (std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none());

    let mut _sim = None;
    let (ip, port, user, password) = match std::env::var("KASA_IP") {
        Ok(ip) if !ip.is_empty() => (
            ip,
            std::env::var("KASA_PORT")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(19443u32),
            std::env::var("KASA_USER").unwrap_or_else(|_| "admin".into()),
            std::env::var("KASA_PASSWORD").unwrap_or_else(|_| "admin".into()),
        ),
        _ => {
            let cfg = kasa_sim::SimConfig {
                password: Secret::new("demo-password"),
                ..Default::default()
            };
            println!("kasaview: no KASA_IP set: starting the simulated Kasa camera (1080p, 15 fps, H.264 + G.711)");
            let sim = kasa_sim::Simulator::start(cfg)?;
            println!(
                "kasaview: simulated camera at {} (certificate SHA-256 {})",
                sim.addr(),
                sim.fingerprint()
            );
            let port = sim.port() as u32;
            _sim = Some(sim);
            (
                "127.0.0.1".to_string(),
                port,
                "admin".to_string(),
                "demo-password".to_string(),
            )
        }
    };

    let src = gst::ElementFactory::make("kasasrc")
        .name("camera")
        .property("ip", &ip)
        .property("port", port)
        .property("username", &user)
        .property("password", &password)
        .build()
        .map_err(|e| e.to_string())?;
    let pipeline = gst::Pipeline::new();
    pipeline.add(&src).unwrap();

    let desc_video;
    let desc_audio;
    let mux = if headless {
        println!("kasaview: no display: recording {seconds} s to {output}");
        desc_video = "h264parse ! queue";
        desc_audio = "queue";
        let mux = gst::parse::bin_from_description(
            &format!("matroskamux name=mux streamable=true ! filesink location={output}"),
            false,
        )
        .map_err(|e| e.to_string())?;
        pipeline.add(&mux).unwrap();
        Some(mux)
    } else {
        desc_video = "queue ! decodebin ! videoconvert ! autovideosink";
        desc_audio = "queue ! decodebin ! audioconvert ! audioresample ! autoaudiosink";
        None
    };
    let p = pipeline.clone();
    src.connect_pad_added(move |_, pad| {
        let desc = if pad.name() == "video" {
            desc_video
        } else {
            desc_audio
        };
        let bin = gst::parse::bin_from_description(desc, true).unwrap();
        p.add(&bin).unwrap();
        pad.link(&bin.static_pad("sink").unwrap()).unwrap();
        if let Some(mux) = &mux {
            let m = mux.by_name("mux").unwrap();
            let templ = if pad.name() == "video" {
                "video_%u"
            } else {
                "audio_%u"
            };
            let sinkpad = m.request_pad_simple(templ).unwrap();
            let ghost = gst::GhostPad::with_target(&sinkpad).unwrap();
            ghost.set_active(true).unwrap();
            mux.add_pad(&ghost).unwrap();
            bin.static_pad("src").unwrap().link(&ghost).unwrap();
        }
        bin.sync_state_with_parent().unwrap();
    });

    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let bus = pipeline.bus().unwrap();
    let start = Instant::now();
    let mut last_print = Instant::now();
    let mut eos_sent = false;
    let result = loop {
        if headless && !eos_sent && start.elapsed() >= Duration::from_secs(seconds) {
            pipeline.send_event(gst::event::Eos::new());
            eos_sent = true;
        }
        if last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            print_stats(&src);
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(format!("{} ({})", e.error(), e.debug().unwrap_or_default()));
            }
            gst::MessageView::Warning(w) => eprintln!("kasaview: warning: {}", w.error()),
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure() {
                    if s.name().starts_with("kasasrc-") {
                        println!("kasaview: {s}");
                    }
                }
            }
            _ => {}
        }
    };
    print_stats(&src);
    pipeline
        .set_state(gst::State::Null)
        .map_err(|e| e.to_string())?;
    result?;
    if headless {
        let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
        println!("kasaview: recorded {output} ({size} bytes); play it with: gst-play-1.0 {output}");
    }
    Ok(())
}

fn print_stats(src: &gst::Element) {
    let s = src.property::<gst::Structure>("stats");
    println!(
        "kasaview: stats: connected={} frames={} fps={:.1} bitrate={:.0} kbit/s audio-parts={} dropped={} corrupt={} reconnects={} tls={} {}",
        s.get::<bool>("connected").unwrap_or(false),
        s.get::<u64>("frames").unwrap_or(0),
        s.get::<f64>("fps").unwrap_or(0.0),
        s.get::<f64>("bitrate").unwrap_or(0.0) / 1000.0,
        s.get::<u64>("audio-parts").unwrap_or(0),
        s.get::<u64>("dropped").unwrap_or(0),
        s.get::<u64>("corrupt").unwrap_or(0),
        s.get::<u64>("reconnects").unwrap_or(0),
        s.get::<&str>("tls-version").unwrap_or(""),
        s.get::<&str>("tls-cipher").unwrap_or(""),
    );
}
