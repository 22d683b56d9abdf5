//! The live view for browsers: the camera's own H.264 (never re-encoded) and its audio as
//! AAC, in fragmented MP4 with one fragment per frame, for Media Source Extensions.
//!
//! ```text
//! camera pipeline:  video tee ─ queue(leaky) ─ appsink ──────────────────────────────┐
//!                   audio tee ─ queue(leaky) ─ decodebin ─ audioconvert ─ audioresample │
//!                             ─ voaacenc ─ aacparse ─ queue(leaky) ─ appsink ─────────┤ Feed
//! per viewer:       appsrc ─ h264parse ─ avc/au ─┐                                   │
//!                   appsrc (AAC) ────────────────┴ mp4mux(fragmented) ─ appsink ◄─────┘
//! ```
//!
//! One AAC encoder per camera, whatever the number of viewers; a viewer costs a muxer.
//! Why MSE rather than WebRTC is in `docs/restream.md`.

use crate::feed::Feed;
use gst::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A camera's streams for the browsers' live views.
pub struct LiveFeed {
    pub feed: Arc<Feed>,
    viewers: Arc<AtomicUsize>,
}

/// A viewer's muxer pipeline; stopped on drop.
pub struct Viewer {
    pipeline: gst::Pipeline,
    viewers: Arc<AtomicUsize>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        self.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("the GStreamer element {factory} is missing"))
}

impl LiveFeed {
    pub fn new(name: &str) -> Arc<LiveFeed> {
        Arc::new(LiveFeed {
            feed: Feed::with_role(name, "live"),
            viewers: Arc::default(),
        })
    }

    /// Viewers watching now.
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// The video branch, from the camera's video `tee` (leaky: never holds it up).
    pub fn attach_video(&self, pipeline: &gst::Pipeline, tee: &gst::Element) -> Result<(), String> {
        self.feed.attach_video(pipeline, tee)
    }

    /// The audio branch, from the camera's audio `tee`: the one AAC encoder of this camera
    /// (browsers play neither PCMU nor PCMA from MP4). Callable while the pipeline plays.
    pub fn attach_audio(&self, pipeline: &gst::Pipeline, tee: &gst::Element) -> Result<(), String> {
        let q = make("queue")?;
        q.set_property("max-size-buffers", 0u32);
        q.set_property("max-size-bytes", 0u32);
        q.set_property("max-size-time", 1_000_000_000u64);
        q.set_property_from_str("leaky", "downstream");
        let decode = make("decodebin")?;
        let convert = make("audioconvert")?;
        let resample = make("audioresample")?;
        let rate = make("capsfilter")?;
        // 32 kHz mono: an AAC frame (1,024 samples) is 32 ms, which the browser waits
        // for before it can play the video beside it (at the camera's 8 kHz it would
        // be 128 ms); every AAC decoder takes it.
        rate.set_property(
            "caps",
            gst::Caps::builder("audio/x-raw")
                .field("rate", 32000i32)
                .field("channels", 1i32)
                .build(),
        );
        let enc = make("voaacenc")?;
        enc.set_property("bitrate", 32000i32);
        let parse = make("aacparse")?;
        let chain = [&q, &decode, &convert, &resample, &rate, &enc, &parse];
        pipeline.add_many(chain).map_err(|e| e.to_string())?;
        gst::Element::link_many([tee, &q, &decode]).map_err(|e| e.to_string())?;
        gst::Element::link_many([&convert, &resample, &rate, &enc, &parse])
            .map_err(|e| e.to_string())?;
        let conv = convert.downgrade();
        decode.connect_pad_added(move |_, pad| {
            if let Some(sink) = conv.upgrade().and_then(|c| c.static_pad("sink")) {
                if !sink.is_linked() {
                    let _ = pad.link(&sink);
                }
            }
        });
        self.feed.attach_audio(pipeline, &parse)?;
        for e in chain.iter().rev() {
            e.sync_state_with_parent().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// A new viewer: fMP4 bytes (the header, then a fragment per frame, starting at a key
    /// frame) handed to `out` as they come, on a streaming thread. `out` returns false to
    /// stop (the viewer then sends nothing more; drop it). Without `audio`, the video
    /// alone: a browser then plays each frame as it comes instead of keeping pace with
    /// its audio output (a muted tile is about 200 ms closer to the camera).
    pub fn viewer(
        &self,
        audio: bool,
        out: impl Fn(&[u8]) -> bool + Send + Sync + 'static,
    ) -> Result<Viewer, String> {
        let name = &self.feed.name;
        let (video, audio_caps) = self.feed.caps();
        let video = video.ok_or_else(|| format!("{name}: no video from the camera yet"))?;
        if video.structure(0).map(|s| s.name().as_str()) != Some("video/x-h264") {
            return Err(format!(
                "{name}: the live view plays H.264, the camera sends {video}"
            ));
        }
        let pipeline = gst::Pipeline::with_name(&format!("live-{name}"));
        let src = crate::feed::client_src;
        let vsrc = src("video", &video);
        let parse = make("h264parse")?;
        parse.set_property("config-interval", -1i32);
        let avc = make("capsfilter")?;
        avc.set_property(
            "caps",
            gst::Caps::builder("video/x-h264")
                .field("stream-format", "avc")
                .field("alignment", "au")
                .build(),
        );
        let mux = make("mp4mux")?;
        // A fragment per buffer: what the muxer has, the browser has.
        mux.set_property("fragment-duration", 1u32);
        mux.set_property("streamable", true);
        let sink = gst_app::AppSink::builder()
            .sync(false)
            .max_buffers(256)
            .build();
        pipeline
            .add_many([vsrc.upcast_ref(), &parse, &avc, &mux, sink.upcast_ref()])
            .map_err(|e| e.to_string())?;
        gst::Element::link_many([vsrc.upcast_ref(), &parse, &avc, &mux, sink.upcast_ref()])
            .map_err(|e| format!("{name}: live video: {e}"))?;
        let audio = audio_caps.filter(|_| audio).filter(|a| {
            a.structure(0)
                .is_some_and(|s| s.name() == "audio/mpeg" && s.get::<i32>("mpegversion") == Ok(4))
        });
        if let Some(audio) = audio {
            let asrc = src("audio", &audio);
            pipeline
                .add(asrc.upcast_ref::<gst::Element>())
                .map_err(|e| e.to_string())?;
            asrc.link(&mux)
                .map_err(|e| format!("{name}: live audio: {e}"))?;
        }
        let stopped = std::sync::atomic::AtomicBool::new(false);
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if stopped.load(Ordering::Relaxed) {
                        return Err(gst::FlowError::Eos);
                    }
                    if let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok()) {
                        if !out(&map) {
                            stopped.store(true, Ordering::Relaxed);
                            return Err(gst::FlowError::Eos);
                        }
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("{name}: live view: {e}"))?;
        self.viewers.fetch_add(1, Ordering::Relaxed);
        self.feed.subscribe(pipeline.upcast_ref());
        Ok(Viewer {
            pipeline,
            viewers: self.viewers.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// The top-level boxes of an MP4 byte stream: (type, size).
    fn boxes(d: &[u8]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i + 8 <= d.len() {
            let n = u32::from_be_bytes(d[i..i + 4].try_into().unwrap()) as usize;
            out.push((String::from_utf8_lossy(&d[i + 4..i + 8]).into_owned(), n));
            if n < 8 {
                break;
            }
            i += n;
        }
        out
    }

    /// A camera with H.264 and A-law audio; a viewer gets the MP4 header with both
    /// tracks (avc1 and AAC), then fragments as the frames come; two viewers, one encoder.
    /// The camera also has an RTSP feed, as homecam's cameras do with `[web]` and `[rtsp]`
    /// (their branches once had the same names, and homecam would not start).
    #[test]
    fn a_viewer_gets_fragmented_mp4_with_h264_and_aac() {
        gst::init().unwrap();
        let camera = gst::parse::launch(
            "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1 \
             ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! h264parse ! tee name=v \
             audiotestsrc is-live=true ! audio/x-raw,rate=8000,channels=1 ! alawenc ! tee name=a \
             v. ! queue ! fakesink a. ! queue ! fakesink",
        )
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let rtsp = crate::Feed::new("test");
        rtsp.attach_video(&camera, &camera.by_name("v").unwrap())
            .unwrap();
        rtsp.attach_audio(&camera, &camera.by_name("a").unwrap())
            .unwrap();
        let live = LiveFeed::new("test");
        live.attach_video(&camera, &camera.by_name("v").unwrap())
            .unwrap();
        live.attach_audio(&camera, &camera.by_name("a").unwrap())
            .unwrap();
        camera.set_state(gst::State::Playing).unwrap();
        let t0 = Instant::now();
        while live.feed.caps().1.is_none() || live.feed.caps().0.is_none() {
            assert!(t0.elapsed() < Duration::from_secs(10), "no caps");
            std::thread::sleep(Duration::from_millis(20));
        }
        let got: Vec<Arc<Mutex<Vec<u8>>>> = (0..2).map(|_| Arc::default()).collect();
        let viewers: Vec<Viewer> = got
            .iter()
            .map(|g| {
                let g = g.clone();
                live.viewer(true, move |b| {
                    g.lock().unwrap().extend_from_slice(b);
                    true
                })
                .unwrap()
            })
            .collect();
        assert_eq!(live.viewers(), 2);
        let t0 = Instant::now();
        while got.iter().any(|g| {
            boxes(&g.lock().unwrap())
                .iter()
                .filter(|(t, _)| t == "moof")
                .count()
                < 40
        }) {
            assert!(t0.elapsed() < Duration::from_secs(20), "too few fragments");
            std::thread::sleep(Duration::from_millis(50));
        }
        for g in &got {
            let d = g.lock().unwrap();
            let b = boxes(&d);
            assert_eq!(b[0].0, "ftyp", "{b:?}");
            assert_eq!(b[1].0, "moov", "{b:?}");
            let moov = &d[b[0].1..b[0].1 + b[1].1];
            let has = |s: &[u8]| moov.windows(s.len()).any(|w| w == s);
            assert!(has(b"avcC"), "no H.264 track");
            assert!(has(b"mp4a"), "no AAC track");
            assert!(
                b[2..].iter().all(|(t, _)| t == "moof" || t == "mdat"),
                "{b:?}"
            );
        }
        drop(viewers);
        assert_eq!(live.viewers(), 0);
        camera.set_state(gst::State::Null).unwrap();
    }
}
