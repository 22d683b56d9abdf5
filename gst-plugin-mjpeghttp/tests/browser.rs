//! A real browser: Debian's headless Chromium, driven over the DevTools protocol by this
//! test, loads the index page that mjpeghttpsink serves from the simulated Tapo camera
//! (tapo-sim ! camsrc ! decodebin ! jpegenc ! mjpeghttpsink) and takes two screenshots
//! a second apart. The picture must not be blank, and must move.

use gst::prelude::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn target_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// Sends a DevTools command and waits for its answer (events in between are skipped).
fn cdp(ws: &mut Ws, id: &mut u64, session: Option<&str>, method: &str, params: Value) -> Value {
    *id += 1;
    let mut msg = json!({"id": *id, "method": method, "params": params});
    if let Some(s) = session {
        msg["sessionId"] = json!(s);
    }
    ws.send(tungstenite::Message::text(msg.to_string()))
        .unwrap();
    loop {
        let m = ws.read().unwrap();
        let Ok(text) = m.to_text() else { continue };
        let v: Value = serde_json::from_str(text).unwrap();
        if v["id"] == json!(*id) {
            assert!(v.get("error").is_none(), "{method}: {v}");
            return v["result"].clone();
        }
    }
}

/// RGB pixels of a PNG screenshot.
fn pixels(png_b64: &str) -> (u32, u32, Vec<u8>) {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(png_b64)
        .unwrap();
    let mut dec = png::Decoder::new(std::io::Cursor::new(data));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rgb: Vec<u8> = buf[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| [p[0], p[1 % channels], p[2 % channels]])
        .collect();
    (info.width, info.height, rgb)
}

#[test]
fn chromium_shows_the_live_camera() {
    gst::init().unwrap();
    gstcamsrc::plugin_register_static().unwrap();
    gstmjpeghttp::plugin_register_static().unwrap();
    let chromium = ["chromium", "/usr/bin/chromium"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("Debian chromium is needed (scripts/setup installs it)");
    let tapo = tapo_sim::process::TapoProcess::start(&target_dir().join("tapo-sim"), "pw", &[]);
    let desc = format!(
        "camsrc uri={} audio=false ! decodebin ! videoconvert ! jpegenc quality=80 \
         ! mjpeghttpsink name=s port=0 address=127.0.0.1 title=Yard",
        tapo.uri("pw")
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sink = pipeline.by_name("s").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sink
        .property::<gst::Structure>("stats")
        .get::<u64>("frames-in")
        .unwrap()
        < 5
    {
        assert!(Instant::now() < deadline, "no frames from the camera");
        std::thread::sleep(Duration::from_millis(50));
    }
    let port = sink.property::<u32>("bound-port");

    let profile = std::env::temp_dir().join(format!("mjpeg-chromium-{}", std::process::id()));
    let mut browser = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
            "--window-size=640,360",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(browser.stderr.take().unwrap());
    let mut ws_url = None;
    let mut line = String::new();
    while ws_url.is_none() && err.read_line(&mut line).unwrap() > 0 {
        if let Some(u) = line.trim().strip_prefix("DevTools listening on ") {
            ws_url = Some(u.to_string());
        }
        line.clear();
    }
    let ws_url = ws_url.expect("chromium printed no DevTools address");
    std::thread::spawn(move || for _ in err.lines() {});
    let (mut ws, _) = tungstenite::connect(ws_url.as_str()).unwrap();
    let mut id = 0;
    let url = format!("http://127.0.0.1:{port}/");
    let target = cdp(
        &mut ws,
        &mut id,
        None,
        "Target.createTarget",
        json!({"url": url}),
    );
    let attached = cdp(
        &mut ws,
        &mut id,
        None,
        "Target.attachToTarget",
        json!({"targetId": target["targetId"], "flatten": true}),
    );
    let session = attached["sessionId"].as_str().unwrap().to_string();
    // The page title comes from the element's `title`.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = cdp(
            &mut ws,
            &mut id,
            Some(&session),
            "Runtime.evaluate",
            json!({"expression": "document.title + '|' + (document.getElementById('live') ? document.getElementById('live').naturalWidth : -1)", "returnByValue": true}),
        );
        let v = r["result"]["value"].as_str().unwrap_or("").to_string();
        // The <img> knows the camera's size once the first part has arrived.
        if v == "Yard|640" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "page never showed the stream: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let shot = |ws: &mut Ws, id: &mut u64| {
        let r = cdp(
            ws,
            id,
            Some(&session),
            "Page.captureScreenshot",
            json!({"format": "png"}),
        );
        pixels(r["data"].as_str().unwrap())
    };
    let (w, h, a) = shot(&mut ws, &mut id);
    std::thread::sleep(Duration::from_secs(1));
    let (_, _, b) = shot(&mut ws, &mut id);
    let _ = browser.kill();
    let _ = browser.wait();
    let _ = std::fs::remove_dir_all(&profile);
    pipeline.set_state(gst::State::Null).unwrap();

    assert!(w >= 320 && h >= 180, "{w}x{h}");
    // Not blank: the simulator's picture has many distinct colours.
    let mut colours: Vec<[u8; 3]> = a.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
    colours.sort();
    colours.dedup();
    let lit = a.chunks(3).filter(|p| p.iter().any(|c| *c > 60)).count();
    let total = a.len() / 3;
    assert!(
        colours.len() > 20 && lit * 100 > total,
        "blank screenshot: {} colours, {lit} of {total} pixels lit",
        colours.len()
    );
    // Live: the second screenshot differs.
    let changed = a
        .chunks(3)
        .zip(b.chunks(3))
        .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > 24))
        .count();
    eprintln!(
        "screenshots {w}x{h}: {} colours, {lit} lit pixels, {changed} pixels changed in 1 s",
        colours.len()
    );
    assert!(
        changed * 1000 > total,
        "the picture did not move: {changed} of {total} pixels changed"
    );
}
