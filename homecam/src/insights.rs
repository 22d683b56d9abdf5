//! Activity insights: per period (an hour by default, aligned to the clock) and per
//! camera, the motion events, how many were confirmed or dismissed, the labels seen, an
//! activity level (low/medium/high by configurable thresholds), and the most active
//! location.

use crate::config::Insights as Config;
use crate::event::Event;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CameraActivity {
    pub camera: String,
    pub location: String,
    pub events: u64,
    pub confirmed: u64,
    pub dismissed: u64,
    pub labels: BTreeMap<String, u64>,
    /// `low`, `medium` or `high`.
    pub activity: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Insight {
    /// Unix seconds.
    pub period_start: f64,
    pub period_end: f64,
    pub total_events: u64,
    pub cameras: Vec<CameraActivity>,
    /// Location with the most events (empty when none).
    pub most_active_location: String,
    pub activity: &'static str,
}

pub struct Aggregator {
    cfg: Config,
    start: f64,
    cams: BTreeMap<String, CameraActivity>,
}

impl Aggregator {
    /// `cameras`: (name, location) of every camera, so that quiet ones are reported too.
    pub fn new(cfg: &Config, cameras: &[(String, String)], now: f64) -> Aggregator {
        let mut a = Aggregator {
            cfg: cfg.clone(),
            start: 0.0,
            cams: BTreeMap::new(),
        };
        a.reset(cameras.iter().cloned(), a.period_start(now));
        a
    }

    fn period_start(&self, t: f64) -> f64 {
        let p = self.cfg.period.max(1) as f64;
        (t / p).floor() * p
    }

    fn reset(&mut self, cameras: impl Iterator<Item = (String, String)>, start: f64) {
        self.start = start;
        self.cams = cameras
            .map(|(c, l)| {
                (
                    c.clone(),
                    CameraActivity {
                        camera: c,
                        location: l,
                        activity: "low",
                        ..Default::default()
                    },
                )
            })
            .collect();
    }

    fn level(&self, n: u64) -> &'static str {
        if n >= self.cfg.high {
            "high"
        } else if n >= self.cfg.medium {
            "medium"
        } else {
            "low"
        }
    }

    pub fn on_event(&mut self, e: &Event) {
        let c = self
            .cams
            .entry(e.camera.clone())
            .or_insert_with(|| CameraActivity {
                camera: e.camera.clone(),
                location: e.location.clone(),
                activity: "low",
                ..Default::default()
            });
        match e.kind {
            "new" => c.events += 1,
            "end" if e.confirmed => {
                c.confirmed += 1;
                *c.labels.entry(e.label.clone()).or_default() += 1;
            }
            "end" => c.dismissed += 1,
            _ => {}
        }
    }

    /// The summary of the period that `now` has left, if it has.
    pub fn tick(&mut self, now: f64) -> Option<Insight> {
        let p = self.cfg.period.max(1) as f64;
        if now < self.start + p {
            return None;
        }
        Some(self.flush(self.start + p, now))
    }

    /// The summary so far (at exit), then a new period from `now`.
    pub fn flush(&mut self, end: f64, now: f64) -> Insight {
        let mut cams: Vec<CameraActivity> = self.cams.values().cloned().collect();
        for c in &mut cams {
            c.activity = self.level(c.events);
        }
        let total: u64 = cams.iter().map(|c| c.events).sum();
        let mut by_location: BTreeMap<&str, u64> = BTreeMap::new();
        for c in &cams {
            *by_location
                .entry(if c.location.is_empty() {
                    &c.camera
                } else {
                    &c.location
                })
                .or_default() += c.events;
        }
        let most = by_location
            .iter()
            .filter(|(_, n)| **n > 0)
            .max_by_key(|(_, n)| **n)
            .map(|(l, _)| l.to_string())
            .unwrap_or_default();
        let insight = Insight {
            period_start: self.start,
            period_end: end,
            total_events: total,
            most_active_location: most,
            activity: self.level(total),
            cameras: cams,
        };
        let names: Vec<(String, String)> = self
            .cams
            .values()
            .map(|c| (c.camera.clone(), c.location.clone()))
            .collect();
        let start = self.period_start(now);
        self.reset(names.into_iter(), start);
        insight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(camera: &str, kind: &'static str, label: &str, confirmed: bool) -> Event {
        Event {
            kind,
            id: String::new(),
            camera: camera.into(),
            camera_name: camera.into(),
            location: format!("{camera} location"),
            label: label.into(),
            group: String::new(),
            score: 0.0,
            top_score: 0.0,
            bbox: None,
            zones: vec![],
            start_time: 0.0,
            end_time: None,
            has_clip: false,
            has_snapshot: false,
            clip: None,
            snapshot: None,
            event_type: "motion",
            motion_score: 0.0,
            verdict: "pending",
            confirmed,
            dismissed: !confirmed,
            origin: String::new(),
            source: "",
            media_url: None,
        }
    }

    #[test]
    fn an_hour_of_events_summarised() {
        let cfg = Config {
            period: 3600,
            medium: 2,
            high: 5,
        };
        let cams = [
            ("front".to_string(), "Front door".to_string()),
            ("back".to_string(), "Garden".to_string()),
        ];
        let mut a = Aggregator::new(&cfg, &cams, 7200.0 + 10.0);
        for _ in 0..5 {
            a.on_event(&ev("front", "new", "motion", false));
        }
        a.on_event(&ev("front", "end", "person", true));
        a.on_event(&ev("front", "end", "motion", false));
        a.on_event(&ev("back", "new", "motion", false));
        assert!(a.tick(7200.0 + 3599.0).is_none());
        let i = a.tick(7200.0 + 3600.5).unwrap();
        assert_eq!((i.period_start, i.period_end), (7200.0, 10800.0));
        assert_eq!(i.total_events, 6);
        assert_eq!(i.most_active_location, "Front door");
        let front = i.cameras.iter().find(|c| c.camera == "front").unwrap();
        assert_eq!((front.events, front.confirmed, front.dismissed), (5, 1, 1));
        assert_eq!(front.activity, "high");
        assert_eq!(front.labels.get("person"), Some(&1));
        let back = i.cameras.iter().find(|c| c.camera == "back").unwrap();
        assert_eq!(back.activity, "low");
        // The next period starts empty, quiet cameras still listed.
        let j = a.tick(10800.0 + 3600.0).unwrap();
        assert_eq!((j.total_events, j.cameras.len(), j.activity), (0, 2, "low"));
        assert_eq!(j.most_active_location, "");
    }
}
