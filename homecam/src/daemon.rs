//! One GStreamer pipeline per camera, opened once and fanned out with a `tee`:
//!
//! ```text
//! camsrc ─ tee ─ queue ─ ringrecorder                     (record; the camera's audio too)
//!              ├ queue ─ motionclips                       (motion: motiondetect, objectdetect, clips)
//!              │           └ raw ─ videoconvert ─ jpegenc ─ tee ─ appsink → web app live view
//!              │                                              └ mjpeghttpsink (mjpeg port)
//!              ├ queue(leaky) ─ appsink → restream::Feed   (RTSP clients, `[rtsp]`)
//!              └ queue(leaky) ─ appsink → restream::LiveFeed (the web app's MP4 live view)
//! camsrc audio ─ tee ─ queue ─ ringrecorder, ├ queue ─ motionclips, └ queue(leaky) ─ appsink → Feed
//!                    └ queue(leaky) ─ decodebin ─ voaacenc ─ appsink → LiveFeed
//! ```
//!
//! The live view's pictures come from the motion analysis's decoder (motionclips' `raw`
//! pad, or the tee after the decoder of an analysis without clips), so a camera is
//! decoded once. A camera without motion analysis gets a decoder of its own for them,
//! behind a queue that drops whole GOPs.
//!
//! camsrc reconnects by itself, so a camera that is offline or reboots never stops the
//! daemon. The bus messages become [`Event`]s, [`Status`] records and the recorder's
//! segments on a channel.

use crate::config::{Camera, Config};
use crate::event::{Clips, Event, Status, StatusStats, Tracker};
use gst::prelude::*;
use gstmjpeghttp::server::Hub;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// What the daemon reports.
#[derive(Debug, Clone)]
pub enum Record {
    Event(Box<Event>),
    Status(Box<Status>),
    /// ringrecorder closed a segment.
    Segment(crate::index::ClosedSegment),
    /// ringrecorder's retention deleted a segment.
    SegmentDeleted(String),
    /// A line for the log.
    Log(String),
}

/// Counters per camera for status lines and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub events: u64,
    pub confirmed: u64,
    pub dismissed: u64,
    pub clips: u64,
}

pub struct CameraRun {
    pub name: String,
    pub location: String,
    pub pipeline: gst::Pipeline,
    pub src: gst::Element,
    pub rec: Option<gst::Element>,
    pub http: Option<gst::Element>,
    /// The live view's JPEG frames, for the web app.
    pub hub: Option<Arc<Hub>>,
    /// The camera's own streams for the RTSP clients (`[rtsp]`).
    pub feed: Option<Arc<restream::Feed>>,
    /// The camera's own H.264 and its audio as AAC for the browsers' live view (`[web]`).
    pub live: Option<Arc<restream::LiveFeed>>,
    pub counters: Arc<Mutex<Counters>>,
    pub tracker: Arc<Mutex<Tracker>>,
    /// `[web] public-url`.
    pub origin: String,
    tx: mpsc::Sender<Record>,
}

/// Initialises GStreamer and registers the project's elements that the pipelines use
/// (once; later calls return the first outcome).
pub fn init() -> Result<(), String> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        gst::init().map_err(|e| e.to_string())?;
        gstcamsrc::plugin_register_static().map_err(|e| e.to_string())?;
        gstkasasrc::plugin_register_static().map_err(|e| e.to_string())?;
        gstringrec::plugin_register_static().map_err(|e| e.to_string())?;
        gstmjpeghttp::plugin_register_static().map_err(|e| e.to_string())?;
        gsttutksrc::plugin_register_static().map_err(|e| e.to_string())?;
        gstmotion::plugin_register_static().map_err(|e| e.to_string())?;
        Ok(())
    })
    .clone()
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("GStreamer element {factory} is missing"))
}

fn queue() -> Result<gst::Element, String> {
    make("queue")
}

/// Builds (does not start) the pipeline of one camera.
pub fn build(cfg: &Config, cam: &Camera, tx: mpsc::Sender<Record>) -> Result<CameraRun, String> {
    let name = cam.name().to_string();
    let pipeline = gst::Pipeline::with_name(&name);
    let src = gst::ElementFactory::make("camsrc")
        .name("cam")
        .property("uri", cam.uri())
        .build()
        .map_err(|e| format!("camera {name:?}: {e}"))?;
    if let Some(p) = cam.password()? {
        src.set_property("password", p);
    }
    if let Some(l) = &cam.latency {
        src.set_property("latency", *l.get_ref());
    }
    let tee = make("tee")?;
    tee.set_property("allow-not-linked", true);
    pipeline.add_many([&src, &tee]).map_err(|e| e.to_string())?;
    let base = cfg.general.data_dir.join(&name);
    let mut rec = None;
    if let Some(r) = cam.record.as_ref().filter(|r| r.enabled) {
        let q = queue()?;
        let e = gst::ElementFactory::make("ringrecorder")
            .name("rec")
            .property(
                "location",
                r.location
                    .clone()
                    .unwrap_or_else(|| base.join("ring"))
                    .to_string_lossy()
                    .to_string(),
            )
            .property("camera-name", name.as_str())
            .property("max-size-time", &r.segment)
            .property("max-age", &r.max_age)
            .property("max-bytes", &r.max_bytes)
            .build()
            .map_err(|e| format!("camera {name:?} record: {e}"))?;
        pipeline.add_many([&q, &e]).map_err(|e| e.to_string())?;
        gst::Element::link_many([&tee, &q]).map_err(|e| e.to_string())?;
        q.link_pads(Some("src"), &e, Some("video"))
            .map_err(|e| e.to_string())?;
        rec = Some(e);
    }
    let mut http = None;
    let mut hub = None;
    let analysing = cam.motion.as_ref().is_some_and(|m| m.enabled);
    // The live view's input while the analysis is still to be built: linked to its
    // decoded frames then.
    let mut live_input = None;
    if cam.live_view(cfg.web.is_some()) {
        // The JPEG frames go to the web app's live view, and to the camera's own MJPEG
        // port when it has one.
        let port = cam
            .mjpeg
            .as_ref()
            .and_then(|m| m.port.as_ref().map(|p| (*p.get_ref(), m.bind.clone())));
        let mut desc = String::from(
            "videoconvert ! videorate max-rate=5 ! jpegenc quality=80 ! tee name=jpeg \
             jpeg. ! queue leaky=downstream max-size-buffers=2 ! appsink name=live sync=false async=false max-buffers=1 drop=true",
        );
        if let Some((port, bind)) = &port {
            desc.push_str(&format!(
                " jpeg. ! queue leaky=downstream max-size-buffers=2 ! mjpeghttpsink name=http port={port} address={bind}"
            ));
        }
        let rest = gst::parse::bin_from_description(&desc, true).map_err(|e| e.to_string())?;
        pipeline.add(&rest).map_err(|e| e.to_string())?;
        let sink = rest.static_pad("sink").ok_or("no sink pad")?;
        if analysing {
            live_input = Some(sink);
        } else {
            // The decoder may fall behind: whole GOPs are dropped, never single frames.
            let (q, _) = gst_cam_common::decodequeue::decoder_queue(
                None,
                gst::ClockTime::from_mseconds(500),
                2 * gst::ClockTime::SECOND,
            )
            .map_err(|e| e.to_string())?;
            let decode = make("decodebin")?;
            pipeline
                .add_many([&q, &decode])
                .map_err(|e| e.to_string())?;
            gst::Element::link_many([&tee, &q, &decode]).map_err(|e| e.to_string())?;
            decode.connect_pad_added(move |_, pad| {
                if !sink.is_linked() {
                    let _ = pad.link(&sink);
                }
            });
        }
        http = rest.by_name("http");
        let h = Arc::new(Hub::new());
        let live = rest
            .by_name("live")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or("no live appsink")?;
        let h2 = h.clone();
        live.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(m) = sample.buffer().and_then(|b| b.map_readable().ok()) {
                        h2.publish(bytes::Bytes::copy_from_slice(&m));
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        hub = Some(h);
    }
    let mut post_roll = 0.0;
    // motionclips, which takes the camera's audio into its clips.
    let mut clips_element = None;
    if let Some(m) = cam.motion.as_ref().filter(|m| m.enabled) {
        // motionclips keeps the encoded frames of its clips and gates its own decoder;
        // the analysis alone decodes here, behind a queue that drops whole GOPs.
        let q = if m.clips {
            queue()?
        } else {
            gst_cam_common::decodequeue::decoder_queue(
                None,
                gst::ClockTime::from_mseconds(500),
                2 * gst::ClockTime::SECOND,
            )
            .map_err(|e| e.to_string())?
            .0
        };
        // With clips: motionclips (it decodes for its motiondetect and objectdetect).
        // Without: the same analysis, nothing written.
        let analysis: gst::Element = if m.clips {
            gst::ElementFactory::make("motionclips")
                .name("clips")
                .property(
                    "location",
                    m.location
                        .clone()
                        .unwrap_or_else(|| base.join("clips"))
                        .to_string_lossy()
                        .to_string(),
                )
                .property("camera", &name)
                .property_from_str("record", m.record.get_ref())
                .build()
                .map_err(|e| format!("camera {name:?} motion: {e}"))?
        } else {
            // decodebin's pad comes later: it is linked by hand (parsing a description
            // with it would ghost the wrong sink pad).
            let bin = gst::Bin::new();
            let decode = make("decodebin")?;
            let rest = gst::parse::bin_from_description(
                "tee name=raw allow-not-linked=true \
                 ! queue max-size-buffers=3 max-size-bytes=0 max-size-time=0 \
                 ! videoconvert ! motiondetect name=motion ! objectdetect name=objects \
                 ! fakesink sync=false async=false",
                true,
            )
            .map_err(|e| e.to_string())?;
            bin.add_many([&decode, rest.upcast_ref()])
                .map_err(|e| e.to_string())?;
            // The decoded frames for the live view, as motionclips' `raw` pad gives them:
            // behind a leaky queue on its own thread.
            if live_input.is_some() {
                let t = rest
                    .by_name("raw")
                    .and_then(|t| t.request_pad_simple("src_%u"))
                    .ok_or("no raw tee")?;
                let rq = gst::ElementFactory::make("queue")
                    .property("max-size-buffers", 2u32)
                    .property("max-size-bytes", 0u32)
                    .property("max-size-time", 0u64)
                    .property_from_str("leaky", "downstream")
                    .build()
                    .map_err(|e| e.to_string())?;
                rest.add(&rq).map_err(|e| e.to_string())?;
                t.link(&rq.static_pad("sink").ok_or("queue")?)
                    .map_err(|e| e.to_string())?;
                let inner = gst::GhostPad::with_target(&rq.static_pad("src").ok_or("queue")?)
                    .map_err(|e| e.to_string())?;
                rest.add_pad(&inner).map_err(|e| e.to_string())?;
                let outer = gst::GhostPad::builder_with_target(&inner)
                    .map_err(|e| e.to_string())?
                    .name("raw")
                    .build();
                bin.add_pad(&outer).map_err(|e| e.to_string())?;
            }
            let sink = rest.static_pad("sink").ok_or("no sink pad")?;
            decode.connect_pad_added(move |_, pad| {
                if !sink.is_linked() {
                    let _ = pad.link(&sink);
                }
            });
            let ghost = gst::GhostPad::with_target(&decode.static_pad("sink").ok_or("decodebin")?)
                .map_err(|e| e.to_string())?;
            bin.add_pad(&ghost).map_err(|e| e.to_string())?;
            bin.upcast()
        };
        let bin = analysis
            .downcast_ref::<gst::Bin>()
            .ok_or("the analysis is no bin")?;
        if let Some(o) = bin.by_name("objects") {
            if let Some(labels) = &m.labels {
                o.set_property("labels", labels.join(","));
            }
            // Checked against the element's own values with the configuration.
            if let Some(model) = &m.model {
                o.set_property_from_str("model", model.get_ref());
            }
            if let Some(r) = m.motion_region {
                o.set_property("motion-region", r);
            }
        }
        if let Some(d) = bin.by_name("motion") {
            d.set_property("zones", &m.zones);
            d.set_property("mask", &m.mask);
        }
        // The tuning keys, within the elements' own ranges (checked with the
        // configuration); absent keys keep the elements' defaults.
        for t in m.tuning() {
            let element = match t.element {
                "clips" => m.clips.then(|| analysis.clone()),
                child => bin.by_name(child),
            };
            let (Some(v), Some(e)) = (t.value, element) else {
                continue;
            };
            let x = *v.get_ref();
            // The properties are float or double.
            if e.find_property(t.property).map(|p| p.value_type()) == Some(f32::static_type()) {
                e.set_property(t.property, x as f32);
            } else {
                e.set_property(t.property, x);
            }
        }
        if m.clips {
            post_roll = analysis.property::<f64>("post-roll");
            clips_element = Some(analysis.clone());
        }
        pipeline
            .add_many([&q, &analysis])
            .map_err(|e| e.to_string())?;
        gst::Element::link_many([&tee, &q, &analysis]).map_err(|e| e.to_string())?;
        if let Some(input) = live_input.take() {
            let raw = analysis
                .static_pad("raw")
                .or_else(|| analysis.request_pad_simple("raw"))
                .ok_or("the analysis gives no decoded frames")?;
            raw.link(&input)
                .map_err(|e| format!("camera {name:?}: the live view's pictures: {e}"))?;
        }
    }
    // The RTSP clients' feed: video from the tee now, audio once the camera shows it has
    // some.
    let feed = match &cfg.rtsp {
        Some(_) => {
            let f = restream::Feed::new(&name);
            f.attach_video(&pipeline, &tee)
                .map_err(|e| format!("{name}: the RTSP re-stream's video branch: {e}"))?;
            Some(f)
        }
        None => None,
    };
    // The web app's live view in MP4 (video from the tee now; audio, through the one AAC
    // encoder of this camera, once the camera shows it has some).
    let live = match &cfg.web {
        Some(_) => {
            let l = restream::LiveFeed::new(&name);
            l.attach_video(&pipeline, &tee)
                .map_err(|e| format!("{name}: the MP4 live view's video branch: {e}"))?;
            Some(l)
        }
        None => None,
    };
    // The camera's pads: video to the tee; audio to the recorder, the RTSP feed, the live
    // view and the clips (through a tee made when the camera's audio appears), else taken
    // and dropped (a session without its audio track upsets some RTSP servers). The
    // fakesink exists only without any of them: left unlinked, it would never get the EOS
    // that a clean stop waits for.
    let fanout = feed.is_some() || live.is_some() || clips_element.is_some();
    let audio_pad = match (&rec, fanout) {
        (Some(_), _) | (_, true) => None,
        (None, false) => {
            let audio_sink = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .build()
                .map_err(|e| e.to_string())?;
            pipeline.add(&audio_sink).map_err(|e| e.to_string())?;
            Some(audio_sink.static_pad("sink").ok_or("fakesink")?)
        }
    };
    let tee_sink = tee.static_pad("sink").ok_or("tee")?;
    let r = rec.clone();
    let n = name.clone();
    let tx2 = tx.clone();
    let f2 = feed.clone();
    let l2 = live.clone();
    let c2 = clips_element.clone();
    let weak_pipeline = pipeline.downgrade();
    src.connect_pad_added(move |_, pad| {
        let target = match pad.name().as_str() {
            "video" => Some(tee_sink.clone()),
            "audio" => match (fanout, weak_pipeline.upgrade()) {
                (true, Some(p)) => {
                    match audio_fanout(&p, f2.as_ref(), l2.as_ref(), [r.as_ref(), c2.as_ref()]) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            let _ = tx2.send(Record::Log(format!("{n}: the camera's audio: {e}")));
                            None
                        }
                    }
                }
                _ => r
                    .as_ref()
                    .and_then(|r| r.request_pad_simple("audio"))
                    .or_else(|| audio_pad.clone()),
            },
            _ => None,
        };
        if let Some(t) = target.filter(|t| !t.is_linked()) {
            if let Err(e) = pad.link(&t) {
                let _ = tx2.send(Record::Log(format!(
                    "{n}: cannot link the camera's {} stream: {e:?}",
                    pad.name()
                )));
            }
        }
    });

    let counters = Arc::new(Mutex::new(Counters::default()));
    let clips = cam
        .motion
        .as_ref()
        .filter(|m| m.enabled && m.clips)
        .map(|m| Clips {
            all: m.record.get_ref() == "all",
            wait: post_roll,
        });
    let origin = cfg
        .web
        .as_ref()
        .map(|w| w.public_url.as_str())
        .unwrap_or("");
    let tracker = Arc::new(Mutex::new(
        Tracker::new(&name, &cam.location)
            .with_clips(clips)
            .with_origin(origin),
    ));
    let (n, loc, c, t) = (
        name.clone(),
        cam.location.clone(),
        counters.clone(),
        tracker.clone(),
    );
    let tx_run = tx.clone();
    let origin2 = origin.to_string();
    pipeline
        .bus()
        .ok_or("no bus")?
        .set_sync_handler(move |_, msg| {
            match msg.view() {
                gst::MessageView::Element(e) => {
                    let Some(s) = e.structure() else {
                        return gst::BusSyncReply::Drop;
                    };
                    let status = match s.name().as_str() {
                        "camsrc-online" => Some(("online", String::new())),
                        "camsrc-offline" => {
                            Some(("offline", s.get::<String>("reason").unwrap_or_default()))
                        }
                        _ => None,
                    };
                    if let Some((status, reason)) = status {
                        let _ = tx.send(Record::Status(Box::new(
                            Status::new(&n, &loc, status, reason).with_origin(&origin2),
                        )));
                    }
                    match s.name().as_str() {
                        "ringrecorder-segment" => {
                            let _ = tx.send(Record::Segment(crate::index::ClosedSegment {
                                camera: n.clone(),
                                path: s.get::<String>("path").unwrap_or_default(),
                                start: s
                                    .get::<f64>("start-time")
                                    .or_else(|_| s.get::<u64>("start").map(|v| v as f64))
                                    .unwrap_or(0.0),
                                duration: s.get::<f64>("duration").unwrap_or(0.0),
                                bytes: s.get::<u64>("bytes").unwrap_or(0),
                                frames: s.get::<u64>("frames").unwrap_or(0),
                            }));
                        }
                        "ringrecorder-deleted" => {
                            if let Ok(p) = s.get::<String>("path") {
                                let _ = tx.send(Record::SegmentDeleted(p));
                            }
                        }
                        _ => {}
                    }
                    for ev in t.lock().unwrap().on_message(s) {
                        let mut c = c.lock().unwrap();
                        match ev.kind {
                            "new" => c.events += 1,
                            "end" if ev.confirmed => c.confirmed += 1,
                            "end" => c.dismissed += 1,
                            _ => {}
                        }
                        if s.name() == "motionclips" && s.get::<&str>("type") == Ok("clip") {
                            c.clips += 1;
                        }
                        let _ = tx.send(Record::Event(Box::new(ev)));
                    }
                }
                gst::MessageView::Error(e) => {
                    let _ = tx.send(Record::Log(format!(
                        "{n}: error from {}: {}",
                        e.src()
                            .map(|s| s.path_string().to_string())
                            .unwrap_or_default(),
                        e.error()
                    )));
                }
                gst::MessageView::Warning(w) => {
                    let _ = tx.send(Record::Log(format!("{n}: warning: {}", w.error())));
                }
                // Left on the bus for the shutdown, which waits for it.
                gst::MessageView::Eos(_) => return gst::BusSyncReply::Pass,
                _ => {}
            }
            gst::BusSyncReply::Drop
        });
    Ok(CameraRun {
        name,
        location: cam.location.clone(),
        pipeline,
        src,
        rec,
        http,
        hub,
        feed,
        live,
        counters,
        tracker,
        origin: origin.to_string(),
        tx: tx_run,
    })
}

/// The camera's audio to the RTSP feed, the live view, the recorder and the clips: a tee
/// with a branch for each, added while the pipeline plays; its sink pad, for the camera's
/// audio pad.
fn audio_fanout(
    pipeline: &gst::Pipeline,
    feed: Option<&Arc<restream::Feed>>,
    live: Option<&Arc<restream::LiveFeed>>,
    writers: [Option<&gst::Element>; 2],
) -> Result<gst::Pad, String> {
    let tee = make("tee")?;
    tee.set_property("allow-not-linked", true);
    pipeline.add(&tee).map_err(|e| e.to_string())?;
    for w in writers.into_iter().flatten() {
        let q = queue()?;
        pipeline.add(&q).map_err(|e| e.to_string())?;
        let pad = w
            .request_pad_simple("audio")
            .ok_or_else(|| format!("{} takes no audio", w.name()))?;
        tee.link(&q).map_err(|e| e.to_string())?;
        q.static_pad("src")
            .ok_or("queue")?
            .link(&pad)
            .map_err(|e| format!("{e:?}"))?;
        q.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    if let Some(feed) = feed {
        feed.attach_audio(pipeline, &tee)?;
    }
    // Without an AAC encoder the live view goes on without sound; the recorder and the
    // RTSP clients keep the camera's audio.
    if let Some(live) = live {
        if let Err(e) = live.attach_audio(pipeline, &tee) {
            eprintln!(
                "homecam: {}: the live view has no sound: {e}",
                live.feed.name
            );
        }
    }
    tee.sync_state_with_parent().map_err(|e| e.to_string())?;
    tee.static_pad("sink").ok_or_else(|| "tee".to_string())
}

impl CameraRun {
    /// Ends events whose clip did not come in time (all waiting ones with `now` =
    /// infinity, at shutdown).
    pub fn tick(&self, now: f64) {
        for ev in self.tracker.lock().unwrap().tick(now) {
            let _ = self.tx.send(Record::Event(Box::new(ev)));
        }
    }

    /// The segment being recorded: (path, wall-clock start).
    pub fn current_segment(&self) -> Option<(String, f64)> {
        let s = self.rec.as_ref()?.property::<gst::Structure>("stats");
        let path = s
            .get::<String>("current-location")
            .ok()
            .filter(|p| !p.is_empty())?;
        let start = s
            .get::<f64>("current-start-time")
            .ok()
            .filter(|t| *t > 0.0)?;
        Some((path, start))
    }

    /// The camera as `/api/cameras` shows it.
    pub fn api_json(&self, rtsp: Option<String>) -> serde_json::Value {
        let s = self.stats();
        let c = self.counters.lock().unwrap().clone();
        let state = s.get::<&str>("state").unwrap_or("stopped").to_string();
        let uptime = s.get::<f64>("uptime").unwrap_or(0.0);
        let num = |k: &str| {
            s.get::<u64>(k)
                .or_else(|_| s.get::<u32>(k).map(u64::from))
                .unwrap_or(0)
        };
        serde_json::json!({
            "name": self.name,
            "location": self.location,
            "status": state,
            "fps": s.get::<f64>("fps").unwrap_or(0.0),
            "bitrate": num("bitrate"),
            "restarts": num("restarts"),
            "last_error": s.get::<String>("last-error").unwrap_or_default(),
            "online_since": (state == "online").then(|| crate::event::now() - uptime),
            "recording": self.rec.is_some(),
            "recorded_bytes": self.recorded_bytes(),
            "events": c.events,
            "confirmed": c.confirmed,
            "dismissed": c.dismissed,
            "clips": c.clips,
            "live": self.hub.as_ref().map(|_| serde_json::json!({
                "mjpeg": format!("/live/{}.mjpeg", self.name),
                "jpeg": format!("/live/{}.jpg", self.name),
                "mp4": self.live.as_ref().map(|_| format!("/live/{}.mp4", self.name)),
            })),
            "rtsp": rtsp,
        })
    }

    /// camsrc's statistics: state, fps, bitrate, restarts...
    pub fn stats(&self) -> gst::Structure {
        self.src.property::<gst::Structure>("stats")
    }

    pub fn recorded_bytes(&self) -> u64 {
        self.rec
            .as_ref()
            .map(|r| {
                r.property::<gst::Structure>("stats")
                    .get::<u64>("bytes")
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    pub fn mjpeg_port(&self) -> Option<u32> {
        self.http.as_ref().map(|h| h.property::<u32>("bound-port"))
    }

    /// Sends the EOS that makes recordings and clips finish their files.
    pub fn send_eos(&self) {
        self.pipeline.send_event(gst::event::Eos::new());
    }

    /// Waits until the EOS has gone through (every file complete), at most `timeout`.
    pub fn wait_eos(&self, timeout: std::time::Duration) -> bool {
        self.pipeline.bus().is_some_and(|b| {
            b.timed_pop_filtered(
                gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
                &[gst::MessageType::Eos],
            )
            .is_some()
        })
    }

    /// The periodic `status_update` record for `camera_status`.
    pub fn status_record(&self) -> Status {
        let s = self.stats();
        let c = self.counters.lock().unwrap().clone();
        let num = |k: &str| {
            s.get::<u64>(k)
                .or_else(|_| s.get::<u32>(k).map(u64::from))
                .unwrap_or(0)
        };
        let state = match s.get::<&str>("state").unwrap_or("") {
            "online" => "online",
            "offline" => "offline",
            _ => "connecting",
        };
        let reason = s
            .get::<String>("last-error")
            .ok()
            .filter(|_| state != "online")
            .unwrap_or_default();
        let mut r =
            Status::new(&self.name, &self.location, state, reason).with_origin(&self.origin);
        r.event_type = "status_update";
        r.stats = Some(StatusStats {
            fps: s.get::<f64>("fps").unwrap_or(0.0),
            bitrate: num("bitrate"),
            restarts: num("restarts"),
            frame_count: num("video-frames"),
            recorded_bytes: self.recorded_bytes(),
            events: c.events,
            confirmed: c.confirmed,
            dismissed: c.dismissed,
            clips: c.clips,
        });
        r
    }

    /// One status line: state, fps, bitrate, restarts, recording bytes, events.
    pub fn status_line(&self) -> String {
        let s = self.stats();
        let c = self.counters.lock().unwrap().clone();
        format!(
            "{}: {} fps={:.1} bitrate={}kbit/s restarts={} recorded={}B events={} confirmed={} dismissed={} clips={}{}",
            self.name,
            s.get::<&str>("state").unwrap_or("?"),
            s.get::<f64>("fps").unwrap_or(0.0),
            s.get::<u64>("bitrate").unwrap_or(0) / 1000,
            s.get::<u64>("restarts").or_else(|_| s.get::<u32>("restarts").map(u64::from)).unwrap_or(0),
            self.recorded_bytes(),
            c.events,
            c.confirmed,
            c.dismissed,
            c.clips,
            s.get::<String>("last-error")
                .ok()
                .filter(|e| !e.is_empty() && s.get::<&str>("state") != Ok("online"))
                .map(|e| format!(" last-error={e:?}"))
                .unwrap_or_default()
        )
    }
}

/// The daemon's cameras, as the web app sees them, and the RTSP re-stream's base URL
/// (`rtsp://HOST:PORT`) when there is one.
pub struct Pipelines(pub Arc<Vec<CameraRun>>, pub Option<String>);

impl crate::web::Cameras for Pipelines {
    fn list(&self) -> Vec<serde_json::Value> {
        self.0
            .iter()
            .map(|c| {
                c.api_json(
                    self.1
                        .as_ref()
                        .filter(|_| c.feed.is_some())
                        .map(|b| format!("{b}/{}", c.name)),
                )
            })
            .collect()
    }

    fn names(&self) -> Vec<String> {
        self.0.iter().map(|c| c.name.clone()).collect()
    }

    fn current_segment(&self, camera: &str) -> Option<(String, f64)> {
        self.0
            .iter()
            .find(|c| c.name == camera)
            .and_then(|c| c.current_segment())
    }

    fn has_recordings(&self) -> bool {
        true
    }
}

/// Where a camera's files go, for messages.
pub fn data_dir(cfg: &Config, cam: &Camera) -> PathBuf {
    cfg.general.data_dir.join(cam.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The live view takes its pictures from the analysis's decoder, with clips and
    /// without; a camera without analysis has one decoder for the live view.
    #[test]
    fn a_camera_is_decoded_once() {
        init().unwrap();
        for motion in [
            "motion = { record = \"all\" }\n",
            "motion = { clips = false }\n",
            "",
        ] {
            let text = format!(
                "[general]\ndata-dir = \"/nonexistent/homecam\"\n\n[[camera]]\nname = \"hall\"\n\
                 uri = \"rtsp://127.0.0.1:1/stream2\"\nmjpeg = {{ port = 1, bind = \"127.0.0.1\" }}\n{motion}"
            );
            let cfg = Config::parse(&text).unwrap();
            let (tx, _rx) = mpsc::channel();
            let run = build(&cfg, &cfg.cameras[0], tx).unwrap();
            let all: Vec<gst::Element> = run
                .pipeline
                .iterate_recurse()
                .into_iter()
                .flatten()
                .collect();
            let count = |f: &str| {
                all.iter()
                    .filter(|e| e.factory().is_some_and(|x| x.name() == f))
                    .count()
            };
            // motionclips decodes with avdec_h264; the others through a decodebin.
            assert_eq!(
                count("decodebin") + count("avdec_h264"),
                1,
                "{motion:?}: {:?}",
                all.iter().map(|e| e.name()).collect::<Vec<_>>()
            );
            assert_eq!(count("jpegenc"), 1, "{motion:?}: the live view");
            // Fed from the analysis's decoded frames when there is one.
            if !motion.is_empty() {
                let analysis = all
                    .iter()
                    .find(|e| e.static_pad("raw").is_some())
                    .expect("the analysis's raw pad");
                assert!(
                    analysis.static_pad("raw").unwrap().is_linked(),
                    "{motion:?}"
                );
            }
        }
    }

    /// The `[camera.motion]` tuning reaches the elements, with clips and without.
    #[test]
    fn motion_tuning_reaches_the_elements() {
        init().unwrap();
        for clips in [true, false] {
            let text = format!(
                "[general]\ndata-dir = \"/nonexistent/homecam\"\n\n[[camera]]\nname = \"hall\"\n\
                 uri = \"rtsp://127.0.0.1:1/stream2\"\n\n[camera.motion]\nclips = {clips}\n\
                 sensitivity = 33\nmin-area = 0.02\ncalm-time = 4.5\nmax-rate = 0.5\n\
                 threshold = 0.7\nlabels = [\"person\"]\npre-roll = 1.5\n\
                 model = \"nanodet-g-320\"\nmotion-region = true\n"
            );
            let cfg = Config::parse(&text).unwrap();
            let (tx, _rx) = mpsc::channel();
            let run = build(&cfg, &cfg.cameras[0], tx).unwrap();
            let find = |n: &str| {
                run.pipeline
                    .iterate_recurse()
                    .into_iter()
                    .flatten()
                    .find(|e| e.factory().is_some_and(|f| f.name() == n))
                    .unwrap_or_else(|| panic!("no {n} (clips={clips})"))
            };
            let motion = find("motiondetect");
            assert_eq!(motion.property::<f32>("threshold"), 33.0);
            assert_eq!(motion.property::<f32>("min-area"), 0.02);
            assert_eq!(motion.property::<f64>("calm-time"), 4.5);
            let objects = find("objectdetect");
            assert_eq!(objects.property::<f64>("max-rate"), 0.5);
            assert_eq!(objects.property::<f32>("threshold"), 0.7);
            assert_eq!(objects.property::<String>("labels"), "person");
            assert!(objects.property::<bool>("motion-region"));
            let model = objects.property_value("model");
            let nick = gst::glib::EnumValue::from_value(&model).map(|(_, v)| v.nick());
            assert_eq!(nick, Some("nanodet-g-320"));
            if clips {
                let c = find("motionclips");
                assert_eq!(c.property::<f64>("pre-roll"), 1.5);
                // Not configured: the element's own default.
                assert_eq!(c.property::<f64>("post-roll"), 10.0);
            }
        }
    }
}
