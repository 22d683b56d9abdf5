//! A real browser for the tests: Debian's headless Chromium (`scripts/setup --tests`
//! installs it), driven over the DevTools protocol. Each [`Browser`] has its own empty
//! profile and no background networking (the test machines have no internet), and is
//! killed, with its profile removed, when dropped.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

pub struct Browser {
    child: Child,
    profile: PathBuf,
    ws: Ws,
    id: u64,
}

/// A screenshot: its size, RGB pixels and the PNG itself.
pub struct Shot {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    pub png: Vec<u8>,
}

impl Shot {
    /// Distinct colours and pixels brighter than black, for "not blank" checks.
    pub fn colours_and_lit(&self) -> (usize, usize) {
        let mut colours: Vec<[u8; 3]> = self.rgb.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
        colours.sort();
        colours.dedup();
        let lit = self
            .rgb
            .chunks(3)
            .filter(|p| p.iter().any(|c| *c > 60))
            .count();
        (colours.len(), lit)
    }

    /// Pixels that differ by more than `by` in a channel from `other`'s.
    pub fn changed(&self, other: &Shot, by: u8) -> usize {
        self.rgb
            .chunks(3)
            .zip(other.rgb.chunks(3))
            .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > by))
            .count()
    }

    /// The part of the screenshot inside a CSS-pixel rectangle (`getBoundingClientRect`),
    /// scaled by the device pixel ratio `dpr`.
    pub fn region(&self, x: f64, y: f64, w: f64, h: f64, dpr: f64) -> Shot {
        let x0 = ((x * dpr) as u32).min(self.width);
        let y0 = ((y * dpr) as u32).min(self.height);
        let x1 = (((x + w) * dpr) as u32).min(self.width);
        let y1 = (((y + h) * dpr) as u32).min(self.height);
        let mut rgb = Vec::with_capacity(((x1 - x0) * (y1 - y0) * 3) as usize);
        for row in y0..y1 {
            let a = ((row * self.width + x0) * 3) as usize;
            let b = ((row * self.width + x1) * 3) as usize;
            rgb.extend_from_slice(&self.rgb[a..b]);
        }
        Shot {
            width: x1 - x0,
            height: y1 - y0,
            rgb,
            png: Vec::new(),
        }
    }

    pub fn pixels(&self) -> usize {
        self.rgb.len() / 3
    }

    /// Saves the PNG (a test artifact).
    pub fn save(&self, path: &std::path::Path) {
        if let Some(d) = path.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        std::fs::write(path, &self.png).unwrap();
    }
}

fn decode_png(data: Vec<u8>) -> Shot {
    let mut dec = png::Decoder::new(std::io::Cursor::new(&data));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rgb: Vec<u8> = buf[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| [p[0], p[1 % channels], p[2 % channels]])
        .collect();
    Shot {
        width: info.width,
        height: info.height,
        rgb,
        png: data,
    }
}

impl Browser {
    /// Starts Chromium with a window of `width` x `height`.
    pub fn launch(width: u32, height: u32) -> Browser {
        let chromium = ["chromium", "/usr/bin/chromium"]
            .into_iter()
            .find(|c| Command::new(c).arg("--version").output().is_ok())
            .expect("Debian chromium is needed (scripts/setup --tests installs it)");
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let profile = std::env::temp_dir().join(format!(
            "test-chromium-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        let mut cmd = Command::new(chromium);
        // Killed by the kernel if this (test) process dies without running Drop.
        // SAFETY: only prctl, async-signal-safe, runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
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
        let (ws, _) = tungstenite::connect(ws_url.as_str()).unwrap();
        Browser {
            child,
            profile,
            ws,
            id: 0,
        }
    }

    /// Sends a DevTools command and waits for its answer (events in between are skipped).
    pub fn cdp(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.id += 1;
        let mut msg = json!({"id": self.id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .unwrap();
        loop {
            let m = self.ws.read().unwrap();
            let Ok(text) = m.to_text() else { continue };
            let v: Value = serde_json::from_str(text).unwrap();
            if v["id"] == json!(self.id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Opens `url` in a new tab; the tab's session.
    pub fn open(&mut self, url: &str) -> String {
        let target = self.cdp(None, "Target.createTarget", json!({"url": url}));
        let attached = self.cdp(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        attached["sessionId"].as_str().unwrap().to_string()
    }

    /// The value of a JavaScript expression in the tab (promises awaited).
    pub fn eval(&mut self, session: &str, expr: &str) -> Value {
        let r = self.cdp(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expr}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Evaluates `expr` until it is truthy (not false, null, 0 or ""); its value.
    pub fn wait_for(&mut self, session: &str, expr: &str, timeout: Duration, what: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(session, expr);
            let truthy = !(v.is_null() || v == json!(false) || v == json!(0) || v == json!(""));
            if truthy {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: still {v} after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn screenshot(&mut self, session: &str) -> Shot {
        use base64::Engine;
        let r = self.cdp(
            Some(session),
            "Page.captureScreenshot",
            json!({"format": "png"}),
        );
        let data = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        decode_png(data)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Where tests keep what they want a person to look at (screenshots): `target/test-artifacts/NAME`.
pub fn artifacts(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/test-xxx → target/test-artifacts/NAME
    let target = exe
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(|p| p.to_path_buf())
        .unwrap_or_else(std::env::temp_dir);
    let d = target.join("test-artifacts").join(name);
    let _ = std::fs::create_dir_all(&d);
    d
}
