//! A camera's encoded streams, fanned out to the RTSP clients' media.
//!
//! [`Feed::attach`] adds two leaky branches to the camera pipeline (video from its tee,
//! audio from its audio tee) ending in appsinks; each sample is handed to every client's
//! `appsrc` as a shallow copy (the memory is shared) with its timestamps moved onto the
//! client pipeline's clock. Nothing here blocks: a client that does not keep up is skipped
//! to the next key frame.

use gst::glib;
use gst::prelude::*;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes a client may have waiting in its `appsrc` before it is skipped to the next key
/// frame (about 4 s of a 4 Mbit/s stream).
pub const CLIENT_BACKLOG: u64 = 2 << 20;

/// A client's timestamps may drift this far from its clock before they are re-based (a
/// camera that restarted its clock, a long outage).
const REBASE: i64 = 3_000_000_000;

struct Client {
    video: glib::WeakRef<gst_app::AppSrc>,
    audio: Option<glib::WeakRef<gst_app::AppSrc>>,
    /// Video has begun (at a key frame).
    started: bool,
    /// Client running time minus camera running time, ns.
    offset: i64,
    last_video: Option<u64>,
    last_audio: Option<u64>,
}

#[derive(Default)]
struct State {
    video_caps: Option<gst::Caps>,
    audio_caps: Option<gst::Caps>,
    clients: Vec<Client>,
}

/// Counters for status lines and `/metrics`.
#[derive(Default)]
pub struct FeedStats {
    /// Clients being fed now.
    pub clients: AtomicUsize,
    /// Clients ever fed.
    pub sessions: AtomicU64,
    /// Times a slow client was skipped to the next key frame.
    pub skips: AtomicU64,
}

/// One camera's streams for its RTSP clients.
pub struct Feed {
    pub name: String,
    /// What the feed serves ("restream", "live"): its branches' element names carry it,
    /// so that a camera pipeline can hold an RTSP feed and a live view's feed at once.
    role: &'static str,
    state: Mutex<State>,
    /// Notified when the camera's video caps are first known.
    caps_known: std::sync::Condvar,
    pub stats: FeedStats,
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("the GStreamer element {factory} is missing"))
}

/// The element factories of `kind` that take `caps`, the best ranked first.
fn factories_for(kind: gst::ElementFactoryType, caps: &gst::Caps) -> Vec<gst::ElementFactory> {
    let mut list: Vec<gst::ElementFactory> =
        gst::ElementFactory::factories_with_type(kind, gst::Rank::MARGINAL)
            .into_iter()
            .filter(|f| {
                f.static_pad_templates().iter().any(|t| {
                    t.direction() == gst::PadDirection::Sink && t.caps().can_intersect(caps)
                })
            })
            .collect();
    list.sort_by_key(|f| std::cmp::Reverse(f.rank()));
    list
}

/// The payloader GStreamer ranks best for `caps`, named `name`.
fn payloader(caps: &gst::Caps, name: &str, pt: u32) -> Result<gst::Element, String> {
    let f = factories_for(gst::ElementFactoryType::PAYLOADER, caps)
        .into_iter()
        .next()
        .ok_or_else(|| format!("no RTP payloader for {caps}"))?;
    let pay = f.create().name(name).build().map_err(|e| e.to_string())?;
    // Dynamic payload types only: PCMU and PCMA keep their static 0 and 8.
    if let Some(p) = pay.find_property("pt") {
        if p.downcast_ref::<glib::ParamSpecUInt>().is_some() && pay.property::<u32>("pt") >= 96 {
            pay.set_property("pt", pt);
        }
    }
    // SPS/PPS come from the parser, in front of each key frame (see the parser below).
    if pay.find_property("config-interval").is_some() {
        pay.set_property("config-interval", 0i32);
    }
    if pay.find_property("aggregate-mode").is_some() {
        pay.set_property_from_str("aggregate-mode", "zero-latency");
    }
    Ok(pay)
}

fn codec(caps: &gst::Caps) -> &str {
    caps.structure(0).map(|s| s.name().as_str()).unwrap_or("")
}

/// The running time of `e`'s pipeline now, when it has a clock.
fn running_time(e: &gst::Element) -> Option<u64> {
    let clock = e.clock()?;
    let base = e.base_time()?;
    Some(clock.time().checked_sub(base)?.nseconds())
}

/// A client's `appsrc` named `name` (`video`, `audio`: what [`Feed::subscribe`] looks
/// for): live, timestamps from the feed, never blocking the camera.
pub(crate) fn client_src(name: &str, caps: &gst::Caps) -> gst_app::AppSrc {
    gst_app::AppSrc::builder()
        .name(name)
        .caps(caps)
        .is_live(true)
        .format(gst::Format::Time)
        .do_timestamp(false)
        .block(false)
        // A hard bound for a client whose pipeline is stuck: the oldest go.
        .max_bytes(4 * CLIENT_BACKLOG)
        .leaky_type(gst_app::AppLeakyType::Downstream)
        .build()
}

impl Feed {
    pub fn new(name: &str) -> Arc<Feed> {
        Feed::with_role(name, "restream")
    }

    pub(crate) fn with_role(name: &str, role: &'static str) -> Arc<Feed> {
        Arc::new(Feed {
            name: name.to_string(),
            role,
            state: Mutex::new(State::default()),
            caps_known: std::sync::Condvar::new(),
            stats: FeedStats::default(),
        })
    }

    /// Adds the feed's video branch to a camera pipeline, from `tee`. It is leaky: a feed
    /// that falls behind loses buffers, the camera pipeline never waits.
    pub fn attach_video(
        self: &Arc<Self>,
        pipeline: &gst::Pipeline,
        tee: &gst::Element,
    ) -> Result<(), String> {
        self.attach(pipeline, tee, true)
    }

    /// Adds the feed's audio branch, from the camera's audio `tee`, once the camera has
    /// shown it has a microphone (a branch without input would never see the end of
    /// stream a clean stop waits for). Callable while the pipeline plays.
    pub fn attach_audio(
        self: &Arc<Self>,
        pipeline: &gst::Pipeline,
        tee: &gst::Element,
    ) -> Result<(), String> {
        self.attach(pipeline, tee, false)
    }

    fn attach(
        self: &Arc<Self>,
        pipeline: &gst::Pipeline,
        tee: &gst::Element,
        video: bool,
    ) -> Result<(), String> {
        let q = make("queue")?;
        q.set_property("max-size-buffers", 0u32);
        q.set_property("max-size-bytes", 0u32);
        q.set_property("max-size-time", 2_000_000_000u64);
        q.set_property_from_str("leaky", "downstream");
        let sink = gst_app::AppSink::builder()
            .name(format!(
                "{}-{}-{}",
                self.role,
                self.name,
                if video { "video" } else { "audio" }
            ))
            .sync(false)
            .async_(false)
            .max_buffers(64)
            .drop(true)
            .build();
        let feed = Arc::downgrade(self);
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(f) = feed.upgrade() {
                        f.push(&sample, video);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline
            .add_many([&q, sink.upcast_ref()])
            .map_err(|e| e.to_string())?;
        gst::Element::link_many([tee, &q, sink.upcast_ref()]).map_err(|e| e.to_string())?;
        for e in [sink.upcast_ref::<gst::Element>(), &q] {
            e.sync_state_with_parent().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for the camera's first video (a client that comes as the
    /// daemon starts is answered once the camera has sent something, not refused);
    /// whether it has come.
    pub fn wait_for_video(&self, timeout: std::time::Duration) -> bool {
        let st = self.state.lock().unwrap();
        let (st, _) = self
            .caps_known
            .wait_timeout_while(st, timeout, |s| s.video_caps.is_none())
            .unwrap();
        st.video_caps.is_some()
    }

    /// The caps of the camera's video and audio as last seen.
    pub fn caps(&self) -> (Option<gst::Caps>, Option<gst::Caps>) {
        let st = self.state.lock().unwrap();
        (st.video_caps.clone(), st.audio_caps.clone())
    }

    /// A client's media: `appsrc name=video ! [parser] ! pay0`, and `appsrc name=audio !
    /// pay1` when the camera has audio; built for the caps the camera sends now.
    pub fn media_bin(&self) -> Result<gst::Element, String> {
        let (video, audio) = self.caps();
        let video = video.ok_or_else(|| format!("{}: no video from the camera yet", self.name))?;
        let bin = gst::Bin::new();
        let vsrc = client_src("video", &video);
        let mut chain: Vec<gst::Element> = vec![vsrc.upcast()];
        // H.264 and H.265 go through their parser, which puts SPS/PPS (and VPS) in front of
        // every key frame: a client that starts there can decode at once, and the
        // payloader puts them in the SDP. The payloader's own insertion would go in front
        // of every IDR *slice*, splitting multi-slice pictures.
        let parser = match codec(&video) {
            "video/x-h264" => Some((
                "h264parse",
                "video/x-h264,stream-format=byte-stream,alignment=au",
            )),
            "video/x-h265" => Some((
                "h265parse",
                "video/x-h265,stream-format=byte-stream,alignment=au",
            )),
            _ => None,
        };
        if let Some((p, caps)) = parser {
            let parse = make(p)?;
            parse.set_property("config-interval", -1i32);
            let filter = make("capsfilter")?;
            filter.set_property(
                "caps",
                gst::Caps::from_str(caps).map_err(|e| e.to_string())?,
            );
            chain.push(parse);
            chain.push(filter);
        }
        chain.push(payloader(&video, "pay0", 96)?);
        bin.add_many(&chain).map_err(|e| e.to_string())?;
        gst::Element::link_many(&chain).map_err(|e| format!("{}: video: {e}", self.name))?;
        if let Some(audio) = audio {
            match payloader(&audio, "pay1", 97) {
                Ok(pay) => {
                    let asrc = client_src("audio", &audio);
                    bin.add_many([asrc.upcast_ref(), &pay])
                        .map_err(|e| e.to_string())?;
                    asrc.link(&pay)
                        .map_err(|e| format!("{}: audio: {e}", self.name))?;
                }
                // A codec no payloader takes: the video alone.
                Err(e) => gst::warning!(gst::CAT_DEFAULT, "{}: {e}", self.name),
            }
        }
        Ok(bin.upcast())
    }

    /// Feeds a client's media (the bin of [`Feed::media_bin`]) from now on.
    pub fn subscribe(&self, media: &gst::Element) {
        let Some(bin) = media.downcast_ref::<gst::Bin>() else {
            return;
        };
        let appsrc = |n: &str| {
            bin.by_name(n)
                .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        };
        let Some(video) = appsrc("video") else {
            return;
        };
        let audio = appsrc("audio");
        self.state.lock().unwrap().clients.push(Client {
            video: video.downgrade(),
            audio: audio.map(|a| a.downgrade()),
            started: false,
            offset: 0,
            last_video: None,
            last_audio: None,
        });
        self.stats.sessions.fetch_add(1, Ordering::Relaxed);
    }

    /// One sample from the camera to every client.
    fn push(&self, sample: &gst::Sample, video: bool) {
        let Some(buffer) = sample.buffer() else {
            return;
        };
        let mut st = self.state.lock().unwrap();
        if let Some(caps) = sample.caps() {
            let slot = if video {
                &mut st.video_caps
            } else {
                &mut st.audio_caps
            };
            if slot.as_ref().is_none_or(|c| c.as_ref() != caps) {
                *slot = Some(caps.to_owned());
                if video {
                    self.caps_known.notify_all();
                }
            }
        }
        // The camera pipeline's running time of the buffer: camsrc keeps it going across
        // reconnections, so it is the one clock all of the camera's streams share.
        let Some(pts) = buffer.pts() else {
            return;
        };
        let running = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>())
            .and_then(|s| s.to_running_time(pts))
            .unwrap_or(pts)
            .nseconds() as i64;
        let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let dts_lead = buffer
            .dts()
            .and_then(|d| pts.checked_sub(d))
            .map(|d| d.nseconds());
        let mut skips = 0;
        st.clients.retain_mut(|c| {
            let Some(vsrc) = c.video.upgrade() else {
                return false;
            };
            let target = if video {
                Some(vsrc.clone())
            } else {
                c.audio.as_ref().and_then(|a| a.upgrade())
            };
            let Some(target) = target else {
                return true;
            };
            // Torn down: the media went to NULL.
            if c.started && vsrc.current_state() == gst::State::Null {
                return false;
            }
            let Some(now) = running_time(vsrc.upcast_ref()) else {
                return true;
            };
            let now = now as i64;
            if video {
                // A client that does not keep up starts again at the next key frame.
                if c.started && target.current_level_bytes() > CLIENT_BACKLOG {
                    c.started = false;
                    skips += 1;
                }
                if !c.started {
                    // It starts again once it has drained what it had.
                    if !key || target.current_level_bytes() > CLIENT_BACKLOG / 2 {
                        return true;
                    }
                    c.started = true;
                    c.offset = now - running;
                }
            } else if !c.started {
                return true;
            }
            let mut out = running + c.offset;
            let last = if video { c.last_video } else { c.last_audio };
            if (out - now).abs() > REBASE || last.is_some_and(|l| out <= l as i64) {
                if video {
                    // The camera's clock jumped: carry on from now.
                    c.offset = now - running;
                    out = (running + c.offset).max(last.map_or(0, |l| l as i64 + 1_000_000));
                } else {
                    return true;
                }
            }
            let out = out.max(0) as u64;
            let mut b = buffer.copy();
            {
                let b = b.make_mut();
                b.set_pts(gst::ClockTime::from_nseconds(out));
                b.set_dts(dts_lead.map(|d| gst::ClockTime::from_nseconds(out.saturating_sub(d))));
                if last.is_none() {
                    b.set_flags(gst::BufferFlags::DISCONT);
                }
            }
            if video {
                c.last_video = Some(out);
            } else {
                c.last_audio = Some(out);
            }
            let _ = target.push_buffer(b);
            true
        });
        let n = st.clients.len();
        drop(st);
        self.stats.clients.store(n, Ordering::Relaxed);
        if skips > 0 {
            self.stats.skips.fetch_add(skips, Ordering::Relaxed);
        }
    }
}

use std::str::FromStr;

#[cfg(test)]
mod tests {
    use super::*;

    /// A camera at a high bit rate and a client whose pipeline stops taking data: the
    /// client is skipped to key frames and its queue stays bounded; the camera pipeline
    /// and a second client go on at full pace.
    #[test]
    fn a_stuck_client_is_skipped_and_never_slows_the_camera() {
        gst::init().unwrap();
        let camera = gst::parse::launch(
            "videotestsrc is-live=true pattern=snow ! video/x-raw,width=640,height=360,framerate=30/1 \
             ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=16000 key-int-max=30 \
             ! h264parse ! tee name=t ! queue ! fakesink name=cam sync=false",
        )
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let counter = |e: &gst::Element| {
            let n = Arc::new(AtomicU64::new(0));
            let n2 = n.clone();
            e.static_pad("sink")
                .unwrap()
                .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    n2.fetch_add(1, Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                });
            n
        };
        let cam_frames = counter(&camera.by_name("cam").unwrap());
        let feed = Feed::new("test");
        feed.attach_video(&camera, &camera.by_name("t").unwrap())
            .unwrap();
        camera.set_state(gst::State::Playing).unwrap();
        let t0 = std::time::Instant::now();
        while feed.caps().0.is_none() {
            assert!(t0.elapsed().as_secs() < 10, "no video");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Two clients: one whose sink never takes a buffer (stuck), one that does.
        let client = |stuck: bool| {
            let p = gst::Pipeline::new();
            let media = feed.media_bin().unwrap();
            let sink = gst_app::AppSink::builder()
                .sync(false)
                .max_buffers(1)
                .drop(false)
                .build();
            p.add_many([&media, sink.upcast_ref()]).unwrap();
            media
                .downcast_ref::<gst::Bin>()
                .unwrap()
                .by_name("pay0")
                .unwrap()
                .link(&sink)
                .unwrap();
            let got = Arc::new(AtomicU64::new(0));
            if !stuck {
                let g = got.clone();
                sink.set_callbacks(
                    gst_app::AppSinkCallbacks::builder()
                        .new_sample(move |s| {
                            let _ = s.pull_sample();
                            g.fetch_add(1, Ordering::Relaxed);
                            Ok(gst::FlowSuccess::Ok)
                        })
                        .build(),
                );
            }
            p.set_state(gst::State::Playing).unwrap();
            feed.subscribe(&media);
            let src = media
                .downcast_ref::<gst::Bin>()
                .unwrap()
                .by_name("video")
                .unwrap()
                .downcast::<gst_app::AppSrc>()
                .unwrap();
            (p, src, got)
        };
        let (stuck_p, stuck_src, _) = client(true);
        let (ok_p, _, ok_got) = client(false);
        std::thread::sleep(std::time::Duration::from_secs(1));
        let (c0, g0) = (
            cam_frames.load(Ordering::Relaxed),
            ok_got.load(Ordering::Relaxed),
        );
        let mut highest = 0;
        for _ in 0..60 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            highest = highest.max(stuck_src.current_level_bytes());
        }
        let (frames, got) = (
            cam_frames.load(Ordering::Relaxed) - c0,
            ok_got.load(Ordering::Relaxed) - g0,
        );
        // 6 s at 30 fps: the camera pipeline kept its pace...
        assert!(
            frames >= 150,
            "the camera pipeline made {frames} frames in 6 s"
        );
        // ... so did the other client (RTP packets: at least one per frame)...
        assert!(
            got >= frames * 9 / 10,
            "the other client got {got} packets for {frames} frames"
        );
        // ... and the stuck one was skipped, its queue bounded.
        assert!(
            feed.stats.skips.load(Ordering::Relaxed) >= 1,
            "no skip; level {highest}"
        );
        assert!(
            highest <= 4 * CLIENT_BACKLOG,
            "the stuck client's queue reached {highest} bytes"
        );
        assert_eq!(feed.stats.clients.load(Ordering::Relaxed), 2);
        for p in [&stuck_p, &ok_p, &camera] {
            p.set_state(gst::State::Null).unwrap();
        }
    }
}
