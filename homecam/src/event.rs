//! The event model: one JSON object per change of a motion event, compatible with the
//! fields of Frigate's `frigate/events` (`type` new/update/end, `id`, `camera`, `label`,
//! `score`, `top_score`, `box`, `zones`, `start_time`, `end_time`, `has_clip`,
//! `has_snapshot`) plus the seed's (`camera_name`, `location`, `event_type`,
//! `motion_score`) and the object filter's verdict. Camera status is a second kind of
//! record. The schema is in `docs/homecam.md`.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// `new` (motion started), `update` (object confirmed, snapshot, clip), `end`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Unique across restarts: `camera-starttime-n`.
    pub id: String,
    pub camera: String,
    pub camera_name: String,
    pub location: String,
    /// `motion` until an object is seen, then its label (`person`, `cat`...).
    pub label: String,
    /// `person`, `animal` or empty.
    pub group: String,
    pub score: f32,
    pub top_score: f32,
    /// `[x_min, y_min, x_max, y_max]` in fractions of the frame (0-1).
    #[serde(rename = "box")]
    pub bbox: Option<[f32; 4]>,
    pub zones: Vec<String>,
    /// Unix seconds.
    pub start_time: f64,
    pub end_time: Option<f64>,
    pub has_clip: bool,
    pub has_snapshot: bool,
    pub clip: Option<String>,
    pub snapshot: Option<String>,
    /// Always `motion`: the seed's field.
    pub event_type: &'static str,
    pub motion_score: f32,
    /// `pending`, `confirmed` or `dismissed`.
    pub verdict: &'static str,
    pub confirmed: bool,
    pub dismissed: bool,
    /// The public URL of the daemon that holds the clip and snapshot (`[web]
    /// public-url`), so that a dashboard elsewhere can link to them; empty when unset.
    pub origin: String,
    /// Where the event was detected when not by homecam itself: `arlo` (Arlo's cloud).
    /// Absent from homecam's own events.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub source: &'static str,
    /// The recording at its source (Arlo: a pre-signed link that expires).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_url: Option<String>,
}

/// A camera went online or offline (`event_type` `camera_online`/`camera_offline`), or a
/// periodic report (`status_update`, with the counters), as the seed's `camera_status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
    pub camera: String,
    /// The seed's field: the camera's name.
    pub camera_id: String,
    pub camera_name: String,
    pub location: String,
    /// `camera_online`, `camera_offline` or `status_update`.
    pub event_type: &'static str,
    /// `online`, `offline` or `connecting`.
    pub status: &'static str,
    pub reason: String,
    /// Unix seconds.
    pub time: f64,
    /// The same time, ISO 8601 UTC (the seed's `timestamp`).
    pub timestamp: String,
    /// Counters, in `status_update` records only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<StatusStats>,
    /// The daemon's `[web] public-url`, empty when unset.
    pub origin: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct StatusStats {
    pub fps: f64,
    /// bit/s.
    pub bitrate: u64,
    pub restarts: u64,
    /// Video frames from the camera since the start (the seed's `frame_count`).
    pub frame_count: u64,
    pub recorded_bytes: u64,
    pub events: u64,
    pub confirmed: u64,
    pub dismissed: u64,
    pub clips: u64,
}

impl Status {
    pub fn new(camera: &str, location: &str, status: &'static str, reason: String) -> Status {
        let time = now();
        Status {
            camera: camera.into(),
            camera_id: camera.into(),
            camera_name: camera.into(),
            location: location.into(),
            event_type: match status {
                "online" => "camera_online",
                _ => "camera_offline",
            },
            status,
            reason,
            time,
            timestamp: iso8601(time),
            stats: None,
            origin: String::new(),
        }
    }

    pub fn with_origin(mut self, origin: &str) -> Status {
        self.origin = origin.into();
        self
    }
}

/// `2026-11-22T20:31:07.250Z`.
pub fn iso8601(t: f64) -> String {
    let (y, mo, d, h, mi, s) = gst_cam_common::time::civil(t.max(0.0) as u64);
    let ms = ((t.max(0.0).fract()) * 1000.0) as u32;
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Which events get a clip (motionclips' `record`), and how long after its motion a clip
/// is complete at the latest.
#[derive(Clone, Copy, Debug)]
pub struct Clips {
    /// `record = "all"`: every event; else only confirmed ones.
    pub all: bool,
    /// Seconds from the end of the motion to a clip's end (post-roll), plus the writing.
    pub wait: f64,
}

/// Builds [`Event`]s from one camera's `motion`, `objectdetect` and `motionclips`
/// messages. `end` is always an event's last record: an event that gets a clip ends when
/// the clip is written (its verdict comes before, as an `update`).
pub struct Tracker {
    camera: String,
    location: String,
    origin: String,
    clips: Option<Clips>,
    /// The open (or last) events by element id: id, the event as last sent.
    events: Vec<(u64, Event)>,
    /// Events decided and waiting for their clip: id, when to end them without it.
    awaiting: Vec<(u64, f64)>,
    /// The daemon's start, to make ids unique across restarts.
    epoch: u64,
}

/// How long a clip may take to be written after its post-roll before its events end
/// without it (a writer that failed reports a warning, not the events).
const CLIP_GRACE: f64 = 120.0;

fn boxes(s: &gst::StructureRef, field: &str) -> Option<[f32; 4]> {
    let b = s.get::<gst::Structure>(field).ok()?;
    let f = |k: &str| b.get::<f32>(k).unwrap_or(0.0);
    Some([f("x"), f("y"), f("x") + f("w"), f("y") + f("h")])
}

impl Tracker {
    pub fn new(camera: &str, location: &str) -> Tracker {
        Tracker {
            camera: camera.into(),
            location: location.into(),
            origin: String::new(),
            clips: None,
            events: Vec::new(),
            awaiting: Vec::new(),
            epoch: now() as u64,
        }
    }

    /// Events that get clips end only once the clip is written.
    pub fn with_clips(mut self, clips: Option<Clips>) -> Tracker {
        self.clips = clips;
        self
    }

    /// The daemon's public URL, carried by every event.
    pub fn with_origin(mut self, origin: &str) -> Tracker {
        self.origin = origin.into();
        self
    }

    /// `end` records of events whose clip did not come in time (`now` in Unix seconds);
    /// with `now` = infinity, of every event still waiting (at shutdown).
    pub fn tick(&mut self, now: f64) -> Vec<Event> {
        let due: Vec<u64> = self
            .awaiting
            .iter()
            .filter(|(_, t)| *t <= now)
            .map(|(id, _)| *id)
            .collect();
        self.awaiting.retain(|(_, t)| *t > now);
        let mut out = Vec::new();
        for id in due {
            if let Some(e) = self.find(id) {
                e.kind = "end";
                out.push(e.clone());
            }
        }
        out
    }

    /// A new motion may join the clip being written, which then ends later.
    fn extend_waits(&mut self) {
        if let Some(c) = self.clips {
            let t = now() + c.wait + CLIP_GRACE;
            for (_, d) in self.awaiting.iter_mut() {
                *d = d.max(t);
            }
        }
    }

    fn find(&mut self, id: u64) -> Option<&mut Event> {
        self.events
            .iter_mut()
            .find(|(i, _)| *i == id)
            .map(|(_, e)| e)
    }

    /// The event records a message gives, if any.
    pub fn on_message(&mut self, s: &gst::StructureRef) -> Vec<Event> {
        let (Ok(kind), Ok(id)) = (s.get::<&str>("type"), s.get::<u64>("id")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match (s.name().as_str(), kind) {
            ("motion", "start") => {
                let zones = s
                    .get::<gst::Array>("zones")
                    .map(|a| a.iter().filter_map(|v| v.get::<String>().ok()).collect())
                    .unwrap_or_default();
                let first_box = s
                    .get::<gst::Array>("boxes")
                    .ok()
                    .and_then(|a| a.first().and_then(|v| v.get::<gst::Structure>().ok()))
                    .map(|b| {
                        let f = |k: &str| b.get::<f32>(k).unwrap_or(0.0);
                        [f("x"), f("y"), f("x") + f("w"), f("y") + f("h")]
                    });
                let e = Event {
                    kind: "new",
                    id: format!("{}-{}-{id}", self.camera, self.epoch),
                    camera: self.camera.clone(),
                    camera_name: self.camera.clone(),
                    location: self.location.clone(),
                    label: "motion".into(),
                    group: String::new(),
                    score: 0.0,
                    top_score: 0.0,
                    bbox: first_box,
                    zones,
                    start_time: s.get::<f64>("start-wall-time").unwrap_or_else(|_| now()),
                    end_time: None,
                    has_clip: false,
                    has_snapshot: false,
                    clip: None,
                    snapshot: None,
                    event_type: "motion",
                    motion_score: s.get::<f32>("score").unwrap_or(0.0),
                    verdict: "pending",
                    confirmed: false,
                    dismissed: false,
                    origin: self.origin.clone(),
                    source: "",
                    media_url: None,
                };
                self.extend_waits();
                // Forget old finished events beyond a few (clips of them may still come).
                if self.events.len() > 32 {
                    let waiting: Vec<u64> = self.awaiting.iter().map(|(i, _)| *i).collect();
                    if let Some(p) = self
                        .events
                        .iter()
                        .position(|(i, e)| e.kind == "end" && !waiting.contains(i))
                    {
                        self.events.remove(p);
                    } else {
                        self.events.remove(0);
                    }
                }
                self.events.push((id, e.clone()));
                out.push(e);
            }
            ("motion", "end") => {
                if let Some(e) = self.find(id) {
                    e.end_time = Some(s.get::<f64>("wall-time").unwrap_or_else(|_| now()));
                    e.motion_score = e.motion_score.max(s.get::<f32>("score").unwrap_or(0.0));
                }
                self.extend_waits();
            }
            ("objectdetect", "confirmed") => {
                if let Some(e) = self.find(id) {
                    e.kind = "update";
                    e.label = s.get::<String>("label").unwrap_or_default();
                    e.group = s.get::<String>("group").unwrap_or_default();
                    e.score = s.get::<f32>("score").unwrap_or(0.0);
                    e.top_score = e.top_score.max(e.score);
                    e.bbox = boxes(s, "box").or(e.bbox);
                    e.verdict = "confirmed";
                    e.confirmed = true;
                    out.push(e.clone());
                }
            }
            ("objectdetect", "end") => {
                let clips = self.clips;
                if let Some(e) = self.find(id) {
                    let confirmed = s.get::<&str>("verdict") == Ok("confirmed");
                    // motionclips keeps an event confirmed now or before, or every event
                    // with record = "all".
                    let clip = clips.filter(|c| c.all || confirmed || e.confirmed);
                    e.kind = if clip.is_some() { "update" } else { "end" };
                    if confirmed {
                        e.label = s.get::<String>("label").unwrap_or_default();
                        e.group = s.get::<String>("group").unwrap_or_default();
                        e.score = s.get::<f32>("score").unwrap_or(e.score);
                        e.top_score = e.top_score.max(e.score);
                        e.bbox = boxes(s, "box").or(e.bbox);
                    }
                    e.verdict = if confirmed { "confirmed" } else { "dismissed" };
                    e.confirmed = confirmed;
                    e.dismissed = !confirmed;
                    e.end_time.get_or_insert_with(now);
                    out.push(e.clone());
                    if let Some(c) = clip {
                        self.awaiting.push((id, now() + c.wait + CLIP_GRACE));
                    }
                }
            }
            ("motionclips", "snapshot") => {
                if let Some(e) = self.find(id) {
                    e.kind = "update";
                    e.has_snapshot = true;
                    e.snapshot = s.get::<String>("location").ok();
                    out.push(e.clone());
                }
            }
            ("motionclips", "clip") => {
                let ids: Vec<u64> = s
                    .get::<gst::Array>("events")
                    .map(|a| a.iter().filter_map(|v| v.get::<u64>().ok()).collect())
                    .unwrap_or_else(|_| vec![id]);
                let path = s.get::<String>("location").ok();
                for i in ids {
                    // The clip is an event's last news: its `end`, once it is decided.
                    let waiting = self.awaiting.iter().any(|(x, _)| *x == i);
                    self.awaiting.retain(|(x, _)| *x != i);
                    if let Some(e) = self.find(i) {
                        e.kind = if waiting { "end" } else { "update" };
                        e.has_clip = true;
                        e.clip = path.clone();
                        out.push(e.clone());
                    }
                }
            }
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gst::prelude::*;

    #[test]
    fn an_event_goes_new_update_end_with_its_verdict() {
        gst::init().unwrap();
        let mut t = Tracker::new("front", "Front door");
        let start = gst::Structure::builder("motion")
            .field("type", "start")
            .field("id", 1u64)
            .field("score", 0.1f32)
            .field("start-wall-time", 1000.0f64)
            .field("zones", gst::Array::new(["door".to_send_value()]))
            .build();
        let e = t.on_message(&start);
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].kind, e[0].label.as_str(), e[0].verdict),
            ("new", "motion", "pending")
        );
        assert_eq!(e[0].zones, vec!["door".to_string()]);
        let bx = gst::Structure::builder("object")
            .field("x", 0.5f32)
            .field("y", 0.25f32)
            .field("w", 0.25f32)
            .field("h", 0.5f32)
            .build();
        let confirmed = gst::Structure::builder("objectdetect")
            .field("type", "confirmed")
            .field("id", 1u64)
            .field("label", "person")
            .field("group", "person")
            .field("score", 0.8f32)
            .field("box", bx)
            .build();
        let e = t.on_message(&confirmed);
        assert_eq!(
            (e[0].kind, e[0].label.as_str(), e[0].confirmed),
            ("update", "person", true)
        );
        assert_eq!(e[0].bbox, Some([0.5, 0.25, 0.75, 0.75]));
        let end = gst::Structure::builder("objectdetect")
            .field("type", "end")
            .field("id", 1u64)
            .field("verdict", "confirmed")
            .field("label", "person")
            .field("score", 0.9f32)
            .build();
        let e = t.on_message(&end);
        assert_eq!((e[0].kind, e[0].top_score), ("end", 0.9));
        let json = serde_json::to_value(&e[0]).unwrap();
        for k in [
            "type",
            "id",
            "camera",
            "label",
            "score",
            "top_score",
            "box",
            "zones",
            "start_time",
            "end_time",
            "has_clip",
            "has_snapshot",
            "camera_name",
            "location",
            "event_type",
            "motion_score",
            "confirmed",
            "dismissed",
        ] {
            assert!(json.get(k).is_some(), "no {k} in {json}");
        }
        assert_eq!(json["start_time"], 1000.0);
    }
}
