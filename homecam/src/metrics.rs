//! `/metrics` in the Prometheus text format, on a plain HTTP/1.1 listener thread.

use crate::daemon::CameraRun;
use crate::kafka::KafkaStats;
use crate::notify::TargetStats;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// An alert target's counters: (rule, target, kind, counters).
pub type AlertTarget = (String, String, String, Arc<TargetStats>);

/// A label value in the text format: `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The process's resident memory (bytes), from `/proc/self/statm`.
fn resident_bytes() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (page > 0).then_some(pages * page as f64)
}

/// The C heap that the daemon, GStreamer and GLib share (glibc malloc): bytes handed out
/// from the arenas, bytes the arenas hold free, and bytes in large mmapped blocks. Read
/// together with the resident size: a growing `in_use` is memory still referenced (a
/// leak, or a cache or queue still filling); a growing `free` under a flat `in_use` is
/// the allocator's fragmentation across its per-thread arenas, not a leak.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap() -> Vec<(String, f64)> {
    // SAFETY: mallinfo2 takes no arguments and only reads the allocator's counters.
    let m = unsafe { libc::mallinfo2() };
    [
        ("in_use", m.uordblks),
        ("free", m.fordblks),
        ("mmapped", m.hblkhd),
    ]
    .into_iter()
    .map(|(kind, v)| (format!("kind=\"{kind}\""), v as f64))
    .collect()
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap() -> Vec<(String, f64)> {
    Vec::new()
}

/// Hands the C heap's free pages back to the system. GStreamer's streaming threads
/// allocate buffers from glibc's per-thread arenas; after reconnects and viewers coming
/// and going, those arenas keep pages that are free but still resident, so the resident
/// size creeps up while the heap in use stays flat (the soak showed ~30 MiB/h).
/// `malloc_trim` releases every whole free page of every arena; the daemon calls it once
/// a minute, and records the resident size right after (`/metrics`:
/// `homecam_resident_after_trim_bytes`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks the allocator's own arenas under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
    if let Some(r) = resident_bytes() {
        RESIDENT_AFTER_TRIM.store(r as u64, Relaxed);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim_heap() {}

/// The resident size right after the last `trim_heap` (0 before the first). Between two
/// trims the resident size also holds what the streaming threads allocated and freed
/// since (tens of MiB that come and go with viewers and reconnects); this floor does not,
/// so its trend is the one that says whether the daemon keeps memory.
static RESIDENT_AFTER_TRIM: AtomicU64 = AtomicU64::new(0);

/// Caps glibc's malloc arenas at two per CPU, unless the user set the allocator up
/// (`MALLOC_ARENA_MAX` or `GLIBC_TUNABLES`). glibc's default is eight per CPU: with the
/// daemon's ~40 threads per camera, each arena keeps its own free memory, and the arenas
/// grow apart as streaming threads come and go with reconnects. Two per CPU is enough
/// that threads running at once rarely wait on an arena's lock. Call it before any
/// thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn cap_heap_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var_os("GLIBC_TUNABLES").is_some()
    {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let arenas = i32::try_from(2 * cpus).unwrap_or(i32::MAX).max(2);
    // SAFETY: mallopt only sets an allocator parameter; no thread has started yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn cap_heap_arenas() {}

/// The metrics text for `cams`.
pub fn render(cams: &[CameraRun], kafka: Option<&KafkaStats>, alerts: &[AlertTarget]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, v) in rows {
            if labels.is_empty() {
                out.push_str(&format!("{name} {v}\n"));
            } else {
                out.push_str(&format!("{name}{{{labels}}} {v}\n"));
            }
        }
    };
    let per = |f: &dyn Fn(&CameraRun) -> f64| -> Vec<(String, f64)> {
        cams.iter()
            .map(|c| (format!("camera=\"{}\"", c.name), f(c)))
            .collect()
    };
    let stat = |c: &CameraRun, k: &str| -> f64 {
        let s = c.stats();
        s.get::<f64>(k)
            .or_else(|_| s.get::<u64>(k).map(|v| v as f64))
            .or_else(|_| s.get::<u32>(k).map(|v| v as f64))
            .unwrap_or(0.0)
    };
    if let Some(rss) = resident_bytes() {
        family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes",
            vec![(String::new(), rss)],
        );
    }
    let heap = heap();
    if !heap.is_empty() {
        family(
            "homecam_heap_bytes",
            "gauge",
            "The C heap (glibc malloc, shared with GStreamer): in_use by live allocations, free but kept by the allocator, mmapped in large blocks",
            heap,
        );
    }
    let floor = RESIDENT_AFTER_TRIM.load(Relaxed);
    if floor > 0 {
        family(
            "homecam_resident_after_trim_bytes",
            "gauge",
            "Resident memory right after the last once-a-minute heap trim: the floor under process_resident_memory_bytes, the figure whose trend shows a leak",
            vec![(String::new(), floor as f64)],
        );
    }
    family(
        "homecam_camera_up",
        "gauge",
        "1 while the camera streams",
        per(&|c| (c.stats().get::<&str>("state").ok() == Some("online")) as u8 as f64),
    );
    family(
        "homecam_camera_fps",
        "gauge",
        "Video frames per second",
        per(&|c| stat(c, "fps")),
    );
    family(
        "homecam_camera_bitrate_bits",
        "gauge",
        "Bit rate from the camera (bit/s)",
        per(&|c| stat(c, "bitrate")),
    );
    family(
        "homecam_camera_restarts_total",
        "counter",
        "Camera sessions restarted",
        per(&|c| stat(c, "restarts")),
    );
    family(
        "homecam_recorded_bytes",
        "counter",
        "Bytes written by the ring recorder",
        per(&|c| c.recorded_bytes() as f64),
    );
    let mut rows = Vec::new();
    for c in cams {
        let k = c.counters.lock().unwrap().clone();
        for (verdict, v) in [
            ("all", k.events),
            ("confirmed", k.confirmed),
            ("dismissed", k.dismissed),
        ] {
            rows.push((
                format!("camera=\"{}\",verdict=\"{verdict}\"", c.name),
                v as f64,
            ));
        }
    }
    family("homecam_events_total", "counter", "Motion events", rows);
    family(
        "homecam_clips_total",
        "counter",
        "Clips written",
        per(&|c| c.counters.lock().unwrap().clips as f64),
    );
    let fed: Vec<&CameraRun> = cams.iter().filter(|c| c.feed.is_some()).collect();
    if !fed.is_empty() {
        let rows = |f: &dyn Fn(&restream::FeedStats) -> f64| -> Vec<(String, f64)> {
            fed.iter()
                .filter_map(|c| {
                    let feed = c.feed.as_ref()?;
                    Some((format!("camera=\"{}\"", c.name), f(&feed.stats)))
                })
                .collect()
        };
        family(
            "homecam_rtsp_clients",
            "gauge",
            "RTSP clients being fed now",
            rows(&|s| s.clients.load(Relaxed) as f64),
        );
        family(
            "homecam_rtsp_sessions_total",
            "counter",
            "RTSP client streams started",
            rows(&|s| s.sessions.load(Relaxed) as f64),
        );
        family(
            "homecam_rtsp_skips_total",
            "counter",
            "Times a slow RTSP client was skipped to the next key frame",
            rows(&|s| s.skips.load(Relaxed) as f64),
        );
    }
    if let Some(k) = kafka {
        let v = |a: &std::sync::atomic::AtomicU64| vec![(String::new(), a.load(Relaxed) as f64)];
        family(
            "homecam_kafka_up",
            "gauge",
            "1 while the Kafka broker acknowledges records",
            vec![(String::new(), k.connected.load(Relaxed) as u8 as f64)],
        );
        family(
            "homecam_kafka_delivered_total",
            "counter",
            "Records acknowledged by Kafka",
            v(&k.delivered),
        );
        family(
            "homecam_kafka_spool_bytes",
            "gauge",
            "Undelivered records in the disk spool (bytes)",
            v(&k.spool_bytes),
        );
        family(
            "homecam_kafka_lost_total",
            "counter",
            "Records dropped because the spool was full",
            v(&k.lost),
        );
        family(
            "homecam_kafka_retries_total",
            "counter",
            "Failed deliveries sent again from the spool",
            v(&k.retries),
        );
    }
    if !alerts.is_empty() {
        let mut rows = Vec::new();
        let mut latency = Vec::new();
        for (rule, target, kind, st) in alerts {
            let l = format!(
                "rule=\"{}\",target=\"{}\",kind=\"{kind}\"",
                label(rule),
                label(target)
            );
            for (result, v) in [
                ("sent", &st.sent),
                ("retried", &st.retried),
                ("failed", &st.failed),
                ("dropped", &st.dropped),
            ] {
                rows.push((format!("{l},result=\"{result}\""), v.load(Relaxed) as f64));
            }
            for q in [0.5, 0.9, 0.99] {
                if let Some(v) = st.quantile(q) {
                    latency.push((format!("{l},quantile=\"{q}\""), v));
                }
            }
            latency.push((format!("{l},stat=\"sum\""), *st.latency_sum.lock().unwrap()));
            latency.push((format!("{l},stat=\"count\""), st.sent.load(Relaxed) as f64));
        }
        family(
            "homecam_alert_deliveries_total",
            "counter",
            "Alert delivery attempts by target and result (sent, retried, failed: refused and not retried, dropped: older than max-delay)",
            rows,
        );
        // A summary: the quantiles of the last 1,000 deliveries, _sum and _count of all.
        out.push_str("# HELP homecam_alert_delivery_seconds Seconds from an alert firing to the service accepting it\n# TYPE homecam_alert_delivery_seconds summary\n");
        for (l, v) in latency {
            if let Some(base) = l.strip_suffix(",stat=\"sum\"") {
                out.push_str(&format!(
                    "homecam_alert_delivery_seconds_sum{{{base}}} {v}\n"
                ));
            } else if let Some(base) = l.strip_suffix(",stat=\"count\"") {
                out.push_str(&format!(
                    "homecam_alert_delivery_seconds_count{{{base}}} {v}\n"
                ));
            } else {
                out.push_str(&format!("homecam_alert_delivery_seconds{{{l}}} {v}\n"));
            }
        }
    }
    out
}

/// Serves `/metrics` on `addr` until the process ends; returns the bound address.
pub fn serve(
    addr: &str,
    cams: Arc<Vec<CameraRun>>,
    kafka: Option<Arc<KafkaStats>>,
    alerts: Vec<AlertTarget>,
) -> Result<SocketAddr, String> {
    let listener =
        TcpListener::bind(addr).map_err(|e| format!("metrics: cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(&conn);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // Skip the headers (bounded: a header flood is cut off).
                let mut h = String::new();
                for _ in 0..100 {
                    h.clear();
                    if reader.read_line(&mut h).map(|n| n == 0).unwrap_or(true) || h == "\r\n" {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = if line.starts_with("GET ") && path == "/metrics" {
                    ("200 OK", render(&cams, kafka.as_deref(), &alerts))
                } else {
                    ("404 Not Found", "only /metrics here\n".to_string())
                };
                let mut w = &conn;
                let _ = write!(
                    w,
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(bound)
}
