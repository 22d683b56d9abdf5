//! Benchmark: one 1280x720 15 fps source, JPEG-encoded once, served by mjpeghttpsink to
//! 1, 10 and 100 viewers on loopback (a thread each, parsing the multipart stream). For
//! each count: frames per second per viewer, CPU of this process (server and viewers),
//! memory, and latency from the encoder's output to the viewer having the whole frame.
//! Then the seeds' approach in the same run: one JPEG encoder per viewer (tee ! N x
//! jpegenc), its CPU alone, without any serving.
//!
//! Usage: mjpeg-bench [--seconds 10] [--clients 1,10,100]

use gst::prelude::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn arg(name: &str) -> Option<String> {
    let mut it = std::env::args().skip_while(|a| a != name);
    it.next()?;
    it.next()
}

/// (CPU seconds, RSS bytes) of this process.
fn usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / tick;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    (cpu, f[21].parse::<u64>().unwrap() * page)
}

/// A frame is known by its length and first bytes after the JPEG header.
fn key(b: &[u8]) -> (usize, u64) {
    let tail = &b[b.len().saturating_sub(64)..];
    let h = tail.iter().fold(0xcbf29ce484222325u64, |h, x| {
        (h ^ *x as u64).wrapping_mul(0x100000001b3)
    });
    (b.len(), h)
}

type Sent = Arc<Mutex<HashMap<(usize, u64), Instant>>>;

/// A viewer: reads /stream.mjpeg and records (frames, latencies).
fn viewer(port: u16, sent: Sent, stop: Arc<AtomicBool>) -> (u64, Vec<Duration>) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"GET /stream.mjpeg HTTP/1.1\r\nHost: bench\r\n\r\n")
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 256 * 1024];
    let (mut frames, mut lat) = (0u64, Vec::new());
    // Content-Length of each part tells where its JPEG is; chunk framing is skipped by
    // finding the JPEG's end marker within the announced length.
    while !stop.load(Ordering::Relaxed) {
        let n = match c.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some(h) = find(&buf, b"Content-Length: ") {
            let Some(e) = find(&buf[h..], b"\r\n\r\n") else {
                break;
            };
            let len: usize = std::str::from_utf8(&buf[h + 16..h + e])
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            let start = h + e + 4;
            if buf.len() < start + len {
                break;
            }
            let now = Instant::now();
            if let Some(t) = sent.lock().unwrap().get(&key(&buf[start..start + len])) {
                lat.push(now - *t);
            }
            frames += 1;
            buf.drain(..start + len);
        }
    }
    (frames, lat)
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn main() {
    let seconds: u64 = arg("--seconds").map(|v| v.parse().unwrap()).unwrap_or(10);
    let counts: Vec<usize> = arg("--clients")
        .unwrap_or_else(|| "1,10,100".into())
        .split(',')
        .map(|c| c.parse().unwrap())
        .collect();
    gst::init().unwrap();
    gstmjpeghttp::plugin_register_static().unwrap();
    let src =
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=1280,height=720,framerate=15/1";
    println!("source: 1280x720 15 fps, jpegenc quality=80; {seconds} s per case; CPU is this process (server + viewer threads)");
    for &n in &counts {
        let desc = format!(
            "{src} ! jpegenc quality=80 name=enc ! mjpeghttpsink name=s port=0 address=127.0.0.1 max-clients=200"
        );
        let p = gst::parse::launch(&desc)
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let sent: Sent = Arc::default();
        let s2 = sent.clone();
        p.by_name("enc")
            .unwrap()
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(b) = info.buffer() {
                    if let Ok(m) = b.map_readable() {
                        let mut s = s2.lock().unwrap();
                        if s.len() > 1000 {
                            s.clear();
                        }
                        s.insert(key(&m), Instant::now());
                    }
                }
                gst::PadProbeReturn::Ok
            });
        p.set_state(gst::State::Playing).unwrap();
        let sink = p.by_name("s").unwrap();
        while sink.property::<u32>("bound-port") == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let port = sink.property::<u32>("bound-port") as u16;
        std::thread::sleep(Duration::from_secs(1));
        let stop = Arc::new(AtomicBool::new(false));
        let (cpu0, _) = usage();
        let t0 = Instant::now();
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let (s, st) = (sent.clone(), stop.clone());
                std::thread::spawn(move || viewer(port, s, st))
            })
            .collect();
        let mut rss_peak = 0;
        while t0.elapsed() < Duration::from_secs(seconds) {
            std::thread::sleep(Duration::from_millis(250));
            rss_peak = rss_peak.max(usage().1);
        }
        stop.store(true, Ordering::Relaxed);
        let (cpu1, _) = usage();
        let window = t0.elapsed().as_secs_f64();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        p.set_state(gst::State::Null).unwrap();
        let mut lat: Vec<Duration> = results.iter().flat_map(|r| r.1.clone()).collect();
        lat.sort();
        let fps: Vec<f64> = results.iter().map(|r| r.0 as f64 / window).collect();
        let min_fps = fps.iter().cloned().fold(f64::MAX, f64::min);
        let mean_fps = fps.iter().sum::<f64>() / fps.len() as f64;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let pct = |q: f64| {
            lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        println!(
            "{n:>3} viewers: {mean_fps:.1} fps per viewer (lowest {min_fps:.1}); CPU {:.0}% of one core; RSS peak {:.0} MiB; latency encoder->viewer median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
            (cpu1 - cpu0) / window * 100.0,
            rss_peak as f64 / 1048576.0,
            ms(pct(0.5)),
            ms(pct(0.9)),
            ms(lat.last().copied().unwrap_or_default())
        );
        // The seeds' way: one encoder per viewer (encoding only, no serving).
        let branches: String = (0..n)
            .map(|_| " t. ! queue max-size-buffers=2 leaky=downstream ! jpegenc quality=80 ! fakesink sync=false".to_string())
            .collect();
        let p = gst::parse::launch(&format!("{src} ! tee name=t{branches}"))
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        p.set_state(gst::State::Playing).unwrap();
        std::thread::sleep(Duration::from_secs(1));
        let (c0, _) = usage();
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(seconds.min(5)));
        let (c1, rss) = usage();
        p.set_state(gst::State::Null).unwrap();
        println!(
            "{n:>3} encoders (one per viewer, the seeds' way, no serving): CPU {:.0}% of one core, RSS {:.0} MiB",
            (c1 - c0) / t.elapsed().as_secs_f64() * 100.0,
            rss as f64 / 1048576.0
        );
    }
}
