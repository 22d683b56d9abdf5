//! The index: events, recording segments, camera status changes and insights, in SQLite
//! under `DATA-DIR/index/`, for the web app and its API (`docs/web.md`).
//!
//! - **One writer.** Everything reaches the index as an [`Op`] on a channel; one thread
//!   applies them in batches (one transaction per batch), so the pipelines and the main
//!   loop never wait for the disk or the database.
//! - **A journal.** The writer also appends each change as a JSON line to
//!   `DATA-DIR/index/journal/YYYY-MM-DD.jsonl`. The database is a cache of the journal and
//!   of the files on disk: `homecam reindex` (and a start with a missing or corrupt
//!   database) replays the journal and scans the recording and clip folders, so nothing
//!   on disk is lost with the database.
//! - **In step with the files.** A segment that ringrecorder's retention deletes leaves
//!   the index (`ringrecorder-deleted`); clips and snapshots have their own retention
//!   (`[camera.motion] max-age`, `max-bytes`); each start reconciles the index with the
//!   folders (a segment left by a crash, a file removed by hand).

use crate::config::Config;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bumped when the tables change: an older database is rebuilt from the journal.
const SCHEMA_VERSION: i64 = 1;
/// A pause longer than this between two frames is a gap in the recordings.
pub const GAP: f64 = 1.5;
/// Ops applied in one transaction at most, and how long the writer gathers them.
const BATCH: usize = 500;
const BATCH_WAIT: Duration = Duration::from_millis(100);
/// Ops waiting for the writer at most; beyond, they are dropped and counted (the daemon
/// never blocks on the index).
const QUEUE: usize = 100_000;
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(300);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS events(
    id TEXT PRIMARY KEY,
    camera TEXT NOT NULL,
    label TEXT NOT NULL,
    grp TEXT NOT NULL,
    verdict TEXT NOT NULL,
    score REAL NOT NULL,
    start_time REAL NOT NULL,
    end_time REAL,
    clip TEXT,
    snapshot TEXT,
    clip_bytes INTEGER NOT NULL DEFAULT 0,
    origin TEXT NOT NULL DEFAULT '',
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events(start_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS events_camera ON events(camera, start_time DESC);
-- Covers the statistics: they never read the rows' JSON.
CREATE INDEX IF NOT EXISTS events_stats ON events(start_time, camera, label, verdict);
CREATE TABLE IF NOT EXISTS segments(
    path TEXT PRIMARY KEY,
    camera TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    bytes INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    gaps TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS segments_camera ON segments(camera, start);
CREATE TABLE IF NOT EXISTS status(
    camera TEXT NOT NULL,
    time REAL NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS status_camera ON status(camera, time);
CREATE TABLE IF NOT EXISTS insights(time REAL NOT NULL, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS insights_time ON insights(time);
";

/// A recording segment as the index keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SegmentRow {
    pub camera: String,
    pub path: String,
    /// Unix seconds: first frame, end of the last one.
    pub start: f64,
    pub end: f64,
    pub bytes: u64,
    pub frames: u64,
    /// Unix seconds (from, to) with no frame inside the segment.
    #[serde(default)]
    pub gaps: Vec<(f64, f64)>,
}

/// One line of the journal, and one change to the index.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
pub enum Record {
    /// An event's newest state (the Event JSON).
    Event {
        v: Value,
    },
    Segment(SegmentRow),
    SegmentDeleted {
        path: String,
    },
    /// A camera went online or offline (the Status JSON).
    Status {
        v: Value,
    },
    Insight {
        v: Value,
    },
    /// Clip retention removed an event's clip and snapshot.
    ClipDeleted {
        id: String,
    },
}

/// A segment ringrecorder closed (its `ringrecorder-segment` message).
#[derive(Clone, Debug)]
pub struct ClosedSegment {
    pub camera: String,
    pub path: String,
    /// Unix seconds of its first frame.
    pub start: f64,
    /// Seconds, from its timestamps.
    pub duration: f64,
    pub bytes: u64,
    pub frames: u64,
}

/// What the index is told.
pub enum Op {
    Record(Record),
    /// The writer reads the segment's timeline from the file.
    SegmentClosed(ClosedSegment),
    /// Answered once everything before it is in the database.
    Flush(mpsc::Sender<()>),
}

/// The index: a writer thread and read connections.
pub struct Index {
    tx: mpsc::SyncSender<Op>,
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    pub dropped: Arc<std::sync::atomic::AtomicU64>,
}

/// What to keep, per camera: ring folder, clips folder, clip limits.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub cameras: Vec<CameraFiles>,
    pub events_max_age: f64,
    pub journal: PathBuf,
}

#[derive(Clone, Debug)]
pub struct CameraFiles {
    pub name: String,
    pub ring: Option<PathBuf>,
    pub clips: Option<PathBuf>,
    /// Clip max-age (s) and max-bytes.
    pub clip_limits: (f64, u64),
}

impl Layout {
    pub fn of(cfg: &Config) -> Layout {
        Layout {
            cameras: cfg
                .cameras
                .iter()
                .map(|c| CameraFiles {
                    name: c.name().to_string(),
                    ring: c.ring_dir(&cfg.general),
                    clips: c.clips_dir(&cfg.general),
                    clip_limits: c
                        .motion
                        .as_ref()
                        .map(|m| m.clip_limits())
                        .unwrap_or((0.0, 0)),
                })
                .collect(),
            events_max_age: cfg.general.events_max_age_secs(),
            journal: cfg.general.index_dir().join("journal"),
        }
    }
}

pub fn db_path(cfg: &Config) -> PathBuf {
    cfg.general.index_dir().join("homecam.db")
}

fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    c.busy_timeout(Duration::from_secs(5))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(c)
}

/// Whether the database at `path` can be used as it is.
fn usable(path: &Path) -> Result<(), String> {
    if !path.exists() {
        return Err("there is no index database".into());
    }
    let c = open_conn(path).map_err(|e| format!("cannot open the index database: {e}"))?;
    let ok: String = c
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| format!("the index database is damaged: {e}"))?;
    if ok != "ok" {
        return Err(format!("the index database is damaged: {ok}"));
    }
    let v: Option<String> = c
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| format!("the index database is damaged: {e}"))?;
    if v.as_deref() != Some(&SCHEMA_VERSION.to_string()) {
        return Err(format!(
            "the index database has schema {v:?}, this homecam uses {SCHEMA_VERSION}"
        ));
    }
    Ok(())
}

fn create(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch(SCHEMA)?;
    c.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES('schema', ?1)",
        [SCHEMA_VERSION.to_string()],
    )?;
    Ok(())
}

/// Counts of a rebuild, for the log.
#[derive(Debug, Default, Clone)]
pub struct Rebuilt {
    pub journal_lines: u64,
    pub bad_lines: u64,
    pub events: u64,
    pub segments: u64,
    pub segments_found: u64,
    pub segments_gone: u64,
    pub clips_found: u64,
}

/// Rebuilds the database at `db` from the journal and the files on disk.
pub fn rebuild(db: &Path, layout: &Layout) -> Result<Rebuilt, String> {
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = db.with_extension("db.rebuild");
    for p in [tmp.clone(), wal(&tmp, "-wal"), wal(&tmp, "-shm")] {
        let _ = std::fs::remove_file(p);
    }
    let mut c = open_conn(&tmp).map_err(|e| format!("index: {}: {e}", tmp.display()))?;
    create(&c).map_err(|e| e.to_string())?;
    let mut stats = Rebuilt::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&layout.journal)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for f in files {
        let Ok(file) = std::fs::File::open(&f) else {
            continue;
        };
        let tx = c.transaction().map_err(|e| e.to_string())?;
        for line in std::io::BufReader::new(file).split(b'\n') {
            let Ok(line) = line else { break };
            if line.is_empty() {
                continue;
            }
            stats.journal_lines += 1;
            // A line torn by a crash, or damaged: skipped, the rest goes on.
            match serde_json::from_slice::<Record>(&line) {
                Ok(r) => apply(&tx, &r).map_err(|e| e.to_string())?,
                Err(_) => stats.bad_lines += 1,
            }
        }
        tx.commit().map_err(|e| e.to_string())?;
    }
    let r = reconcile(&mut c, layout, None).map_err(|e| e.to_string())?;
    stats.segments_found = r.segments_found;
    stats.segments_gone = r.segments_gone;
    stats.clips_found = r.clips_found;
    stats.events = c
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
        .unwrap_or(0) as u64;
    stats.segments = c
        .query_row("SELECT COUNT(*) FROM segments", [], |r| r.get::<_, i64>(0))
        .unwrap_or(0) as u64;
    drop(c);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(wal(db, suffix));
    }
    std::fs::rename(&tmp, db).map_err(|e| format!("cannot replace {}: {e}", db.display()))?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(wal(&tmp, suffix));
    }
    Ok(stats)
}

fn wal(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Applies one change.
fn apply(c: &Connection, r: &Record) -> rusqlite::Result<()> {
    match r {
        Record::Event { v } => {
            let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let f = |k: &str| v.get(k).and_then(Value::as_f64);
            let Some(id) = v.get("id").and_then(Value::as_str) else {
                return Ok(());
            };
            let clip = v.get("clip").and_then(Value::as_str);
            let snapshot = v.get("snapshot").and_then(Value::as_str);
            let bytes: u64 = [clip, snapshot]
                .iter()
                .flatten()
                .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
                .sum();
            c.execute(
                "INSERT INTO events(id, camera, label, grp, verdict, score, start_time, end_time,
                                    clip, snapshot, clip_bytes, origin, json)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT(id) DO UPDATE SET camera = ?2, label = ?3, grp = ?4, verdict = ?5,
                    score = ?6, start_time = ?7, end_time = ?8,
                    clip = coalesce(?9, clip), snapshot = coalesce(?10, snapshot),
                    clip_bytes = CASE WHEN ?11 > 0 THEN ?11 ELSE clip_bytes END,
                    origin = ?12, json = ?13",
                params![
                    id,
                    s("camera"),
                    s("label"),
                    s("group"),
                    s("verdict"),
                    f("top_score").or(f("score")).unwrap_or(0.0),
                    f("start_time").unwrap_or(0.0),
                    f("end_time"),
                    clip,
                    snapshot,
                    bytes as i64,
                    s("origin"),
                    v.to_string()
                ],
            )?;
        }
        Record::Segment(s) => {
            c.execute(
                "INSERT OR REPLACE INTO segments(path, camera, start, end, bytes, frames, gaps)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    s.path,
                    s.camera,
                    s.start,
                    s.end,
                    s.bytes as i64,
                    s.frames as i64,
                    serde_json::to_string(&s.gaps).unwrap_or_else(|_| "[]".into())
                ],
            )?;
        }
        Record::SegmentDeleted { path } => {
            c.execute("DELETE FROM segments WHERE path = ?1", [path])?;
        }
        Record::Status { v } => {
            let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            c.execute(
                "INSERT INTO status(camera, time, status, reason, json) VALUES(?1, ?2, ?3, ?4, ?5)",
                params![
                    s("camera"),
                    v.get("time").and_then(Value::as_f64).unwrap_or(0.0),
                    s("status"),
                    s("reason"),
                    v.to_string()
                ],
            )?;
        }
        Record::Insight { v } => {
            let t = v.get("period_start").and_then(Value::as_f64).unwrap_or(0.0);
            c.execute(
                "INSERT INTO insights(time, json) VALUES(?1, ?2)",
                params![t, v.to_string()],
            )?;
        }
        Record::ClipDeleted { id } => {
            c.execute(
                "UPDATE events SET clip = NULL, snapshot = NULL, clip_bytes = 0 WHERE id = ?1",
                [id],
            )?;
        }
    }
    Ok(())
}

/// The recorded span and gaps of a segment file, from its samples (MP4), else from what
/// ringrecorder reported (Matroska: `duration`).
pub fn read_segment(
    camera: &str,
    path: &Path,
    start: f64,
    duration: Option<f64>,
    frames: u64,
) -> Option<SegmentRow> {
    let bytes = std::fs::metadata(path).ok()?.len();
    let parsed = mp4_export::segment::FileSource::open(path)
        .ok()
        .and_then(|src| mp4_export::parse(&src).ok())
        .and_then(|seg| seg.timeline(GAP));
    let (end, gaps, frames) = match parsed {
        Some(t) => (
            start + t.end,
            t.gaps.iter().map(|(a, b)| (start + a, start + b)).collect(),
            t.frames as u64,
        ),
        None => (start + duration?, Vec::new(), frames),
    };
    Some(SegmentRow {
        camera: camera.to_string(),
        path: path.to_string_lossy().into_owned(),
        start,
        end,
        bytes,
        frames,
        gaps,
    })
}

#[derive(Default)]
struct Reconciled {
    segments_found: u64,
    segments_gone: u64,
    clips_found: u64,
}

/// Brings the index in step with the folders: segments on disk it does not know (the
/// last one of a run that was killed, files from a journal that was lost), rows whose
/// file is gone, clips without an event. Records what it changed into `journal`.
fn reconcile(
    c: &mut Connection,
    layout: &Layout,
    mut journal: Option<&mut Journal>,
) -> rusqlite::Result<Reconciled> {
    let mut out = Reconciled::default();
    let tx = c.transaction()?;
    for cam in &layout.cameras {
        if let Some(ring) = &cam.ring {
            let mut known: HashMap<String, (f64, f64)> = HashMap::new();
            {
                let mut q =
                    tx.prepare("SELECT path, start, end FROM segments WHERE camera = ?1")?;
                let rows = q.query_map([&cam.name], |r| {
                    Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?)))
                })?;
                for r in rows.flatten() {
                    known.insert(r.0, r.1);
                }
            }
            let on_disk = gstringrec::store::scan(ring, &cam.name);
            let names: HashSet<String> = on_disk
                .iter()
                .map(|s| s.path.to_string_lossy().into_owned())
                .collect();
            // Segments of one recording follow each other: a segment only known by its
            // name (to the second) starts where the one before it ended, when that is
            // within a second of its name.
            let mut prev_end: Option<f64> = None;
            for s in &on_disk {
                let p = s.path.to_string_lossy().into_owned();
                if let Some((_, end)) = known.get(&p) {
                    prev_end = Some(*end);
                    continue;
                }
                let named = s.start as f64;
                let start = match prev_end {
                    Some(e) if (e - named).abs() <= 1.0 => e,
                    _ => named,
                };
                if let Some(row) = read_segment(&cam.name, &s.path, start, None, 0) {
                    prev_end = Some(row.end);
                    let r = Record::Segment(row);
                    apply(&tx, &r)?;
                    if let Some(j) = journal.as_deref_mut() {
                        j.append(&r);
                    }
                    out.segments_found += 1;
                }
            }
            for p in known.keys().filter(|p| !names.contains(*p)) {
                let r = Record::SegmentDeleted { path: p.clone() };
                apply(&tx, &r)?;
                if let Some(j) = journal.as_deref_mut() {
                    j.append(&r);
                }
                out.segments_gone += 1;
            }
        }
        // Clip files that are gone.
        let gone: Vec<String> = {
            let mut q = tx.prepare(
                "SELECT id, clip, snapshot FROM events WHERE camera = ?1 AND (clip IS NOT NULL OR snapshot IS NOT NULL)",
            )?;
            let rows = q.query_map([&cam.name], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })?;
            rows.flatten()
                .filter(|(_, c, s)| {
                    c.as_ref().is_some_and(|p| !Path::new(p).exists())
                        || (c.is_none() && s.as_ref().is_some_and(|p| !Path::new(p).exists()))
                })
                .map(|(id, _, _)| id)
                .collect()
        };
        for id in gone {
            let r = Record::ClipDeleted { id };
            apply(&tx, &r)?;
            if let Some(j) = journal.as_deref_mut() {
                j.append(&r);
            }
        }
        // Clips without an event (a journal that was lost): an event from the file name.
        if let Some(dir) = &cam.clips {
            let referenced: HashSet<String> = {
                let mut q = tx.prepare("SELECT clip FROM events WHERE clip IS NOT NULL")?;
                let rows = q.query_map([], |r| r.get::<_, String>(0))?;
                rows.flatten().collect()
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                if !(name.ends_with(".mp4") || name.ends_with(".mkv")) {
                    continue;
                }
                let ps = p.to_string_lossy().into_owned();
                if referenced.contains(&ps) {
                    continue;
                }
                let Some(v) = orphan_event(&cam.name, &p) else {
                    continue;
                };
                let r = Record::Event { v };
                apply(&tx, &r)?;
                if let Some(j) = journal.as_deref_mut() {
                    j.append(&r);
                }
                out.clips_found += 1;
            }
        }
    }
    tx.commit()?;
    Ok(out)
}

/// An event for a clip file the index has no event for: `CAMERA-YYYYmmdd-HHMMSS-ID.mp4`.
fn orphan_event(camera: &str, clip: &Path) -> Option<Value> {
    let stem = clip.file_stem()?.to_string_lossy().into_owned();
    let rest = stem.strip_prefix(camera)?.strip_prefix('-')?;
    // motionclips' names: the date and time with a '-' between them.
    let t = gstringrec::store::parse_compact_time(rest.get(..15)?, b'-')? as f64;
    let snapshot = clip.with_extension("jpg");
    let has_snapshot = snapshot.exists();
    Some(serde_json::json!({
        "type": "end",
        "id": format!("file-{stem}"),
        "camera": camera,
        "camera_name": camera,
        "location": "",
        "label": "motion",
        "group": "",
        "score": 0.0,
        "top_score": 0.0,
        "box": null,
        "zones": [],
        "start_time": t,
        "end_time": null,
        "has_clip": true,
        "has_snapshot": has_snapshot,
        "clip": clip.to_string_lossy(),
        "snapshot": if has_snapshot { Some(snapshot.to_string_lossy().into_owned()) } else { None },
        "event_type": "motion",
        "motion_score": 0.0,
        "verdict": "unknown",
        "confirmed": false,
        "dismissed": false,
        "origin": "",
    }))
}

/// The journal: a JSON line per change, one file per UTC day.
struct Journal {
    dir: PathBuf,
    day: String,
    file: Option<std::fs::File>,
    failed: bool,
}

impl Journal {
    fn new(dir: PathBuf) -> Journal {
        Journal {
            dir,
            day: String::new(),
            file: None,
            failed: false,
        }
    }

    fn append(&mut self, r: &Record) {
        let (y, mo, d, ..) = gst_cam_common::time::civil(crate::event::now() as u64);
        let day = format!("{y:04}-{mo:02}-{d:02}");
        if day != self.day || self.file.is_none() {
            self.day = day;
            let path = self.dir.join(format!("{}.jsonl", self.day));
            self.file = std::fs::create_dir_all(&self.dir)
                .and_then(|_| {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                })
                .ok();
        }
        let Some(f) = self.file.as_mut() else {
            self.failed = true;
            return;
        };
        let mut line = serde_json::to_vec(r).unwrap_or_default();
        line.push(b'\n');
        // One write per line: a crash tears at most the last line, which replay skips.
        if f.write_all(&line).is_err() {
            self.failed = true;
            self.file = None;
        }
    }

    /// Day files older than `max_age` seconds go.
    fn prune(&self, max_age: f64) {
        let cutoff = crate::event::now() - max_age - 86400.0;
        let (y, mo, d, ..) = gst_cam_common::time::civil(cutoff.max(0.0) as u64);
        let oldest = format!("{y:04}-{mo:02}-{d:02}.jsonl");
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.ends_with(".jsonl") && n < oldest {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

impl Index {
    /// Opens the index at `db` (rebuilding it from the journal and the files when it is
    /// missing, damaged or of another schema) and starts the writer. `log` gets the
    /// warnings.
    pub fn open(
        db: &Path,
        layout: Layout,
        log: impl Fn(String) + Send + 'static,
    ) -> Result<Arc<Index>, String> {
        if let Err(why) = usable(db) {
            if db.exists() {
                let aside = db.with_extension(format!("db.damaged-{}", crate::event::now() as u64));
                log(format!(
                    "index: {why}; it is kept as {} and rebuilt from the journal and the files on disk",
                    aside.display()
                ));
                let _ = std::fs::rename(db, &aside);
            } else {
                log(format!(
                    "index: {why} ({}): rebuilding it from the journal and the files on disk",
                    db.display()
                ));
            }
            let t0 = Instant::now();
            let r = rebuild(db, &layout)?;
            log(format!(
                "index: rebuilt in {:.1} s: {} events, {} segments ({} journal lines, {} unreadable)",
                t0.elapsed().as_secs_f64(),
                r.events,
                r.segments,
                r.journal_lines,
                r.bad_lines
            ));
        }
        let conn = open_conn(db).map_err(|e| format!("index: {}: {e}", db.display()))?;
        create(&conn).map_err(|e| e.to_string())?;
        let mut readers = Vec::new();
        for _ in 0..3 {
            readers.push(open_conn(db).map_err(|e| e.to_string())?);
        }
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        // The writer ends when the index (its channel's sender) is dropped.
        std::thread::Builder::new()
            .name("index-writer".into())
            .spawn(move || writer(conn, rx, layout, log))
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(Index {
            tx,
            path: db.to_path_buf(),
            readers: Mutex::new(readers),
            dropped,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands a change to the writer; never blocks.
    pub fn send(&self, op: Op) {
        if self.tx.try_send(op).is_err() {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub fn record(&self, r: Record) {
        self.send(Op::Record(r));
    }

    /// Waits (at most `timeout`) until everything sent so far is in the database.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Op::Flush(tx)).is_err() {
            return false;
        }
        rx.recv_timeout(timeout).is_ok()
    }

    /// Runs `f` on a read connection (blocking: call it off the async runtime).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, String> {
        let conn = self.readers.lock().unwrap().pop();
        let conn = match conn {
            Some(c) => c,
            None => open_conn(&self.path).map_err(|e| e.to_string())?,
        };
        let r = f(&conn).map_err(|e| e.to_string());
        let mut pool = self.readers.lock().unwrap();
        if pool.len() < 8 {
            pool.push(conn);
        }
        r
    }
}

/// The writer thread.
fn writer(mut conn: Connection, rx: mpsc::Receiver<Op>, layout: Layout, log: impl Fn(String)) {
    let mut journal = Journal::new(layout.journal.clone());
    match reconcile(&mut conn, &layout, Some(&mut journal)) {
        Ok(r) if r.segments_found + r.segments_gone + r.clips_found > 0 => log(format!(
            "index: {} segment(s) found on disk, {} gone, {} clip(s) without an event",
            r.segments_found, r.segments_gone, r.clips_found
        )),
        Ok(_) => {}
        Err(e) => log(format!("index: reconciling with the folders failed: {e}")),
    }
    let mut last_retention: Option<Instant> = None;
    let mut journal_failed = false;
    loop {
        if last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
            last_retention = Some(Instant::now());
            if let Err(e) = retention(&mut conn, &layout, &mut journal) {
                log(format!("index: retention failed: {e}"));
            }
            journal.prune(layout.events_max_age);
        }
        let first = match rx.recv_timeout(RETENTION_EVERY) {
            Ok(op) => op,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        let deadline = Instant::now() + BATCH_WAIT;
        while batch.len() < BATCH {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut flushes = Vec::new();
        let result = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for op in batch {
                let r = match op {
                    Op::Record(r) => r,
                    Op::SegmentClosed(c) => {
                        match read_segment(
                            &c.camera,
                            Path::new(&c.path),
                            c.start,
                            Some(c.duration),
                            c.frames,
                        ) {
                            Some(row) => Record::Segment(row),
                            None => Record::Segment(SegmentRow {
                                camera: c.camera,
                                path: c.path,
                                start: c.start,
                                end: c.start + c.duration,
                                bytes: c.bytes,
                                frames: c.frames,
                                gaps: Vec::new(),
                            }),
                        }
                    }
                    Op::Flush(t) => {
                        flushes.push(t);
                        continue;
                    }
                };
                journal.append(&r);
                apply(&tx, &r)?;
            }
            tx.commit()
        })();
        if let Err(e) = result {
            log(format!("index: cannot write to the database: {e}"));
        }
        if journal.failed && !journal_failed {
            log(format!(
                "index: cannot write the journal in {}",
                layout.journal.display()
            ));
        }
        journal_failed = journal.failed;
        for f in flushes {
            let _ = f.send(());
        }
    }
}

/// (event id, start, clip, snapshot, bytes of both).
type ClipRow = (String, f64, Option<String>, Option<String>, i64);

/// Clip retention per camera, and the events' own age limit.
fn retention(c: &mut Connection, layout: &Layout, journal: &mut Journal) -> rusqlite::Result<()> {
    let now = crate::event::now();
    let tx = c.transaction()?;
    for cam in &layout.cameras {
        let (max_age, max_bytes) = cam.clip_limits;
        if max_age <= 0.0 && max_bytes == 0 {
            continue;
        }
        let rows: Vec<ClipRow> = {
            let mut q = tx.prepare(
                "SELECT id, start_time, clip, snapshot, clip_bytes FROM events
                 WHERE camera = ?1 AND (clip IS NOT NULL OR snapshot IS NOT NULL)
                 ORDER BY start_time",
            )?;
            let r = q.query_map([&cam.name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            r.flatten().collect()
        };
        let mut total: i64 = rows.iter().map(|r| r.4).sum();
        for (id, start, clip, snapshot, bytes) in rows {
            let old = max_age > 0.0 && now - start > max_age;
            let big = max_bytes > 0 && total > max_bytes as i64;
            if !(old || big) {
                continue;
            }
            for p in [clip, snapshot].into_iter().flatten() {
                let _ = std::fs::remove_file(p);
            }
            total -= bytes;
            let r = Record::ClipDeleted { id };
            journal.append(&r);
            apply(&tx, &r)?;
        }
    }
    // Events past the age limit leave the index with whatever files they still have.
    let cutoff = now - layout.events_max_age;
    {
        let mut q = tx.prepare("SELECT clip, snapshot FROM events WHERE start_time < ?1")?;
        let files: Vec<(Option<String>, Option<String>)> = q
            .query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?
            .flatten()
            .collect();
        for p in files.into_iter().flat_map(|(a, b)| [a, b]).flatten() {
            let _ = std::fs::remove_file(p);
        }
    }
    tx.execute("DELETE FROM events WHERE start_time < ?1", [cutoff])?;
    tx.execute("DELETE FROM status WHERE time < ?1", [cutoff])?;
    tx.execute("DELETE FROM insights WHERE time < ?1", [cutoff])?;
    tx.commit()
}

// ---- Queries, for the API -------------------------------------------------------------

/// Filters of `GET /api/events`.
#[derive(Debug, Default, Clone)]
pub struct EventQuery {
    pub camera: Option<String>,
    pub label: Option<String>,
    pub verdict: Option<String>,
    pub since: Option<f64>,
    pub until: Option<f64>,
    /// Newest first, strictly older than this (start time, id).
    pub before: Option<(f64, String)>,
    pub limit: usize,
}

/// An event as the API shows it: the stored JSON, without file paths.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub v: Value,
    pub start_time: f64,
    pub id: String,
    pub has_clip: bool,
    pub has_snapshot: bool,
    pub origin: String,
}

fn event_row(r: &rusqlite::Row) -> rusqlite::Result<EventRow> {
    let json: String = r.get(0)?;
    let mut v: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
    let clip: Option<String> = r.get(3)?;
    let snapshot: Option<String> = r.get(4)?;
    if let Some(o) = v.as_object_mut() {
        o.remove("clip");
        o.remove("snapshot");
    }
    Ok(EventRow {
        v,
        start_time: r.get(1)?,
        id: r.get(2)?,
        has_clip: clip.is_some(),
        has_snapshot: snapshot.is_some(),
        origin: r.get(5)?,
    })
}

pub fn events(c: &Connection, q: &EventQuery) -> rusqlite::Result<Vec<EventRow>> {
    let mut sql =
        String::from("SELECT json, start_time, id, clip, snapshot, origin FROM events WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    use rusqlite::types::Value as V;
    if let Some(c) = &q.camera {
        sql.push_str(" AND camera = ?");
        args.push(V::Text(c.clone()));
    }
    if let Some(l) = &q.label {
        // A label or a group (`animal`).
        sql.push_str(" AND (label = ? OR grp = ?)");
        args.push(V::Text(l.clone()));
        args.push(V::Text(l.clone()));
    }
    if let Some(v) = &q.verdict {
        sql.push_str(" AND verdict = ?");
        args.push(V::Text(v.clone()));
    }
    if let Some(s) = q.since {
        sql.push_str(" AND start_time >= ?");
        args.push(V::Real(s));
    }
    if let Some(u) = q.until {
        sql.push_str(" AND start_time < ?");
        args.push(V::Real(u));
    }
    if let Some((t, id)) = &q.before {
        // A row value: the index on (start_time, id) serves it as a range.
        sql.push_str(" AND (start_time, id) < (?, ?)");
        args.push(V::Real(*t));
        args.push(V::Text(id.clone()));
    }
    sql.push_str(" ORDER BY start_time DESC, id DESC LIMIT ?");
    args.push(V::Integer(q.limit as i64));
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(args), event_row)?;
    rows.collect()
}

pub fn event(c: &Connection, id: &str) -> rusqlite::Result<Option<EventRow>> {
    c.query_row(
        "SELECT json, start_time, id, clip, snapshot, origin FROM events WHERE id = ?1",
        [id],
        event_row,
    )
    .optional()
}

/// The clip or snapshot file of an event (`what`: `clip` or `snapshot`).
pub fn event_file(c: &Connection, id: &str, what: &str) -> rusqlite::Result<Option<String>> {
    let sql = if what == "clip" {
        "SELECT clip FROM events WHERE id = ?1"
    } else {
        "SELECT snapshot FROM events WHERE id = ?1"
    };
    Ok(c.query_row(sql, [id], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

/// The segments of `camera` that overlap `[start, end)`, in time order.
pub fn segments(
    c: &Connection,
    camera: &str,
    start: f64,
    end: f64,
) -> rusqlite::Result<Vec<SegmentRow>> {
    let mut st = c.prepare_cached(
        "SELECT camera, path, start, end, bytes, frames, gaps FROM segments
         WHERE camera = ?1 AND end > ?2 AND start < ?3 ORDER BY start",
    )?;
    let rows = st.query_map(params![camera, start, end], |r| {
        let gaps: String = r.get(6)?;
        Ok(SegmentRow {
            camera: r.get(0)?,
            path: r.get(1)?,
            start: r.get(2)?,
            end: r.get(3)?,
            bytes: r.get::<_, i64>(4)? as u64,
            frames: r.get::<_, i64>(5)? as u64,
            gaps: serde_json::from_str(&gaps).unwrap_or_default(),
        })
    })?;
    rows.collect()
}

/// (bucket start, camera, label, verdict, events).
pub type StatRow = (f64, String, String, String, u64);

/// Events per bucket (seconds), camera, label and verdict since `since`.
pub fn stats(
    c: &Connection,
    bucket: f64,
    since: f64,
    until: f64,
) -> rusqlite::Result<Vec<StatRow>> {
    let mut st = c.prepare_cached(
        "SELECT CAST(start_time / ?1 AS INTEGER) * ?1 AS b, camera, label, verdict, COUNT(*)
         FROM events WHERE start_time >= ?2 AND start_time < ?3
         GROUP BY b, camera, label, verdict ORDER BY b",
    )?;
    let rows = st.query_map(params![bucket, since, until], |r| {
        Ok((
            r.get::<_, f64>(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get::<_, i64>(4)? as u64,
        ))
    })?;
    rows.collect()
}

pub fn insights(c: &Connection, since: f64) -> rusqlite::Result<Vec<Value>> {
    let mut st =
        c.prepare_cached("SELECT json FROM insights WHERE time >= ?1 ORDER BY time LIMIT 10000")?;
    let rows = st.query_map([since], |r| r.get::<_, String>(0))?;
    Ok(rows
        .flatten()
        .filter_map(|j| serde_json::from_str(&j).ok())
        .collect())
}

/// The newest status record of each camera, and when it last came online.
pub fn last_status(c: &Connection) -> rusqlite::Result<Vec<(String, Value, Option<f64>)>> {
    let mut st = c.prepare_cached(
        "SELECT s.camera, s.json,
            (SELECT max(time) FROM status o WHERE o.camera = s.camera AND o.status = 'online')
         FROM status s
         WHERE s.time = (SELECT max(time) FROM status i WHERE i.camera = s.camera)
         GROUP BY s.camera ORDER BY s.camera",
    )?;
    let rows = st.query_map([], |r| {
        let j: String = r.get(1)?;
        Ok((
            r.get::<_, String>(0)?,
            serde_json::from_str(&j).unwrap_or(Value::Null),
            r.get::<_, Option<f64>>(2)?,
        ))
    })?;
    rows.collect()
}

/// The status changes of `camera` since `since` (time, status, reason), oldest first.
pub fn status_changes(
    c: &Connection,
    camera: &str,
    since: f64,
) -> rusqlite::Result<Vec<(f64, String, String)>> {
    let mut st = c.prepare_cached(
        "SELECT time, status, reason FROM status WHERE camera = ?1 AND time >= ?2
         AND status IN ('online', 'offline') ORDER BY time LIMIT 10000",
    )?;
    let rows = st.query_map(params![camera, since], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    rows.collect()
}

/// A time range, (from, to) in Unix seconds.
pub type Span = (f64, f64);

/// The recorded spans of `segments` (merged where one follows the other within
/// [`GAP`]) and the gaps between them, inside `[start, end)`.
pub fn spans(segments: &[SegmentRow], start: f64, end: f64) -> (Vec<Span>, Vec<Span>) {
    // Each segment is itself spans: its range minus its inner gaps.
    let mut pieces: Vec<(f64, f64)> = Vec::new();
    for s in segments {
        let mut from = s.start;
        for (a, b) in &s.gaps {
            pieces.push((from, *a));
            from = *b;
        }
        pieces.push((from, s.end));
    }
    pieces.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut spans: Vec<(f64, f64)> = Vec::new();
    for (a, b) in pieces {
        let (a, b) = (a.max(start), b.min(end));
        if b <= a {
            continue;
        }
        match spans.last_mut() {
            Some(last) if a - last.1 <= GAP => last.1 = last.1.max(b),
            _ => spans.push((a, b)),
        }
    }
    let gaps = spans.windows(2).map(|w| (w[0].1, w[1].0)).collect();
    (spans, gaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: f64, end: f64, gaps: Vec<(f64, f64)>) -> SegmentRow {
        SegmentRow {
            camera: "c".into(),
            path: format!("/x/{start}"),
            start,
            end,
            bytes: 1,
            frames: 1,
            gaps,
        }
    }

    #[test]
    fn spans_merge_neighbours_and_keep_real_gaps() {
        let s = vec![
            seg(100.0, 110.0, vec![]),
            seg(110.02, 120.0, vec![(113.0, 117.0)]),
            seg(130.0, 140.0, vec![]),
        ];
        let (spans, gaps) = spans(&s, 0.0, 1000.0);
        assert_eq!(spans, vec![(100.0, 113.0), (117.0, 120.0), (130.0, 140.0)]);
        assert_eq!(gaps, vec![(113.0, 117.0), (120.0, 130.0)]);
        let (spans, gaps) = super::spans(&s, 105.0, 118.0);
        assert_eq!(spans, vec![(105.0, 113.0), (117.0, 118.0)]);
        assert_eq!(gaps, vec![(113.0, 117.0)]);
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("homecam-index-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn event(id: &str, t: f64, clip: Option<&Path>) -> Record {
        Record::Event {
            v: serde_json::json!({
                "type": "end", "id": id, "camera": "front", "label": "person", "group": "person",
                "verdict": "confirmed", "score": 0.9, "start_time": t, "end_time": t + 5.0,
                "clip": clip.map(|c| c.to_string_lossy().into_owned()),
                "snapshot": null, "origin": "",
            }),
        }
    }

    fn layout(dir: &Path, clips: Option<PathBuf>, limits: (f64, u64)) -> Layout {
        Layout {
            cameras: vec![CameraFiles {
                name: "front".into(),
                ring: None,
                clips,
                clip_limits: limits,
            }],
            events_max_age: 90.0 * 86400.0,
            journal: dir.join("journal"),
        }
    }

    fn count(ix: &Index, table: &str) -> i64 {
        ix.read(|c| c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)))
            .unwrap()
    }

    /// The database deleted, damaged, or replaced by garbage: rebuilt from the journal,
    /// a torn last line skipped, every change replayed in order.
    #[test]
    fn the_database_is_rebuilt_from_the_journal() {
        let dir = tmp("rebuild");
        let db = dir.join("homecam.db");
        let now = crate::event::now();
        {
            let ix = Index::open(&db, layout(&dir, None, (0.0, 0)), |_| {}).unwrap();
            ix.record(event("a", now - 100.0, None));
            ix.record(event("b", now - 50.0, None));
            ix.record(Record::Segment(SegmentRow {
                camera: "front".into(),
                path: "/r/1.mp4".into(),
                start: now - 120.0,
                end: now - 60.0,
                bytes: 10,
                frames: 600,
                gaps: vec![(now - 100.0, now - 90.0)],
            }));
            ix.record(Record::Segment(SegmentRow {
                camera: "front".into(),
                path: "/r/2.mp4".into(),
                start: now - 60.0,
                end: now,
                bytes: 10,
                frames: 600,
                gaps: vec![],
            }));
            ix.record(Record::SegmentDeleted {
                path: "/r/1.mp4".into(),
            });
            assert!(ix.flush(Duration::from_secs(10)));
            assert_eq!((count(&ix, "events"), count(&ix, "segments")), (2, 1));
        }
        // A line torn by a crash at the end of the journal.
        let day = std::fs::read_dir(dir.join("journal"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&day)
            .unwrap()
            .write_all(b"{\"t\":\"event\",\"v\":{\"id")
            .unwrap();
        for damage in [None, Some(&b"not a database at all"[..])] {
            let _ = std::fs::remove_file(&db);
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(wal(&db, suffix));
            }
            if let Some(bytes) = damage {
                std::fs::write(&db, bytes).unwrap();
            }
            let logs = Arc::new(Mutex::new(Vec::new()));
            let l2 = logs.clone();
            let ix = Index::open(&db, layout(&dir, None, (0.0, 0)), move |m| {
                l2.lock().unwrap().push(m)
            })
            .unwrap();
            assert!(ix.flush(Duration::from_secs(10)));
            let logs = logs.lock().unwrap().join("\n");
            assert!(
                logs.contains("rebuilt") && logs.contains("1 unreadable"),
                "{logs}"
            );
            assert_eq!(
                (count(&ix, "events"), count(&ix, "segments")),
                (2, 1),
                "{logs}"
            );
            let segs = ix
                .read(|c| segments(c, "front", now - 1000.0, now + 1.0))
                .unwrap();
            assert_eq!(segs[0].path, "/r/2.mp4");
            if damage.is_some() {
                assert!(logs.contains("kept as"), "{logs}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Clip retention: the oldest clips go first beyond max-bytes, and any older than
    /// max-age; their events stay, without the clip.
    #[test]
    fn clip_retention_deletes_the_oldest_and_keeps_the_events() {
        let dir = tmp("retention");
        let clips = dir.join("clips");
        std::fs::create_dir_all(&clips).unwrap();
        let now = crate::event::now();
        let mut paths = Vec::new();
        {
            // Limits off while the events arrive. The clips are written after the start:
            // at a start, a clip without an event gets one, dated by its name.
            let ix = Index::open(
                &dir.join("homecam.db"),
                layout(&dir, Some(clips.clone()), (0.0, 0)),
                |_| {},
            )
            .unwrap();
            assert!(ix.flush(Duration::from_secs(10)));
            for i in 0..4 {
                let p = clips.join(format!("front-20260101-00000{i}-{i}.mp4"));
                std::fs::write(&p, vec![0u8; 1000]).unwrap();
                paths.push(p);
            }
            // One 40 days old, three recent.
            ix.record(event("old", now - 40.0 * 86400.0, Some(&paths[0])));
            for (i, p) in paths.iter().enumerate().skip(1) {
                ix.record(event(&format!("e{i}"), now - 100.0 + i as f64, Some(p)));
            }
            assert!(ix.flush(Duration::from_secs(10)));
        }
        // 30 days and 2,500 bytes: the old one by age, e1 by size.
        let ix = Index::open(
            &dir.join("homecam.db"),
            layout(&dir, Some(clips.clone()), (30.0 * 86400.0, 2500)),
            |_| {},
        )
        .unwrap();
        assert!(ix.flush(Duration::from_secs(10)));
        let gone: Vec<bool> = paths.iter().map(|p| !p.exists()).collect();
        assert_eq!(gone, vec![true, true, false, false]);
        let with_clip = ix
            .read(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM events WHERE clip IS NOT NULL",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .unwrap();
        assert_eq!((count(&ix, "events"), with_clip), (4, 2));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn orphan_clips_get_an_event_from_their_name() {
        let v = orphan_event("front", Path::new("/c/front-20261122-013000-7.mp4")).unwrap();
        assert_eq!(v["start_time"], 1795311000.0);
        assert_eq!(v["id"], "file-front-20261122-013000-7");
        assert!(orphan_event("front", Path::new("/c/back-20261122-013000-7.mp4")).is_none());
        assert!(orphan_event("front", Path::new("/c/front-2026.mp4")).is_none());
    }
}
