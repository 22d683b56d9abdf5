//! The skeleton of a live camera source (`kasasrc`, `tutksrc`, `camsrc`): what is the
//! same whatever the camera speaks.
//!
//! - [`LiveSrc`], owned by the element: its one worker thread and that thread's
//!   [`Cancel`], its `video` / `audio` sometimes pads ([`SrcPads`]), whether it is
//!   playing, the state changes of a live source (no preroll), EOS sent to the element,
//!   and stopping.
//! - [`Outputs`], owned by the worker: holds what the camera sends until it is known
//!   whether audio comes with the video, then exposes every pad at once (muxers write
//!   their headers once) and pushes through each pad's bounded queue
//!   ([`PadQueue`]), following caps changes and combining the pads' flows.
//!
//! An element keeps its properties, its protocol and what a frame is; camsrc, whose
//! buffers come from an inner pipeline and whose pads outlive its sessions, uses
//! [`LiveSrc`] and [`SrcPads`] with its own holding rule.

use crate::padqueue::{Enqueued, PadQueue};
use crate::srcpad;
use cam_session::Cancel;
use gst::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "camlivesrc",
        gst::DebugColorFlags::empty(),
        Some("Camera sources' pads and worker (kasasrc, tutksrc, camsrc)"),
    )
});

/// Video frames to wait for a first audio frame before deciding that the camera sends
/// none.
pub const AUDIO_PROBE_FRAMES: usize = 8;
/// Buffers held at most while the pads are undecided (the oldest go first).
const MAX_HELD: usize = 64;

/// The two pads of a camera source.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Video = 0,
    Audio = 1,
}

/// A camera source's two sometimes pads, `video` and `audio`, with what each may carry.
pub fn templates(video: &gst::Caps, audio: &gst::Caps) -> Vec<gst::PadTemplate> {
    [(Kind::Video, video), (Kind::Audio, audio)]
        .into_iter()
        .map(|(kind, caps)| {
            gst::PadTemplate::new(
                kind.pad_name(),
                gst::PadDirection::Src,
                gst::PadPresence::Sometimes,
                caps,
            )
            .expect("a valid pad template")
        })
        .collect()
}

impl Kind {
    /// The pad's (and its template's) name.
    pub fn pad_name(self) -> &'static str {
        match self {
            Kind::Video => "video",
            Kind::Audio => "audio",
        }
    }
}

/// What a source's state changes call back into.
pub trait Source {
    /// NULL → READY: refuse settings that cannot work, with an element error.
    fn check(&self) -> Result<(), gst::StateChangeError> {
        Ok(())
    }
    /// READY → PAUSED: start the worker ([`LiveSrc::spawn`]).
    fn start(&self) -> Result<(), gst::StateChangeError>;
    /// PAUSED → READY, after the worker and the pads are gone.
    fn stopped(&self) {}
}

struct PadsInner {
    queues: [Option<Arc<PadQueue>>; 2],
    threads: Vec<JoinHandle<()>>,
    group_id: gst::GroupId,
    no_more_pads: bool,
}

impl PadsInner {
    fn new() -> Self {
        PadsInner {
            queues: [None, None],
            threads: Vec::new(),
            group_id: gst::GroupId::next(),
            no_more_pads: false,
        }
    }
}

/// A source's sometimes pads, each with its pushing thread. Shared by the element (EOS,
/// stop) and its worker (exposing, pushing).
pub struct SrcPads {
    /// Names the pads' threads: `<name>-video`.
    name: &'static str,
    inner: Mutex<PadsInner>,
}

impl SrcPads {
    fn new(name: &'static str) -> Self {
        SrcPads {
            name,
            inner: Mutex::new(PadsInner::new()),
        }
    }

    /// The queue of `kind`'s pad, if it is exposed.
    pub fn get(&self, kind: Kind) -> Option<Arc<PadQueue>> {
        self.inner.lock().unwrap().queues[kind as usize].clone()
    }

    /// Expose `kind`'s pad with `caps` (stream-start, caps and a TIME segment from 0
    /// stored on it) and start its pushing thread. Its queries are answered as a live
    /// source's, with the element's `latency` property and its URI (without password).
    pub fn add(&self, element: &gst::Element, kind: Kind, caps: &gst::Caps) -> Arc<PadQueue> {
        let name = kind.pad_name();
        let templ = element
            .pad_template(name)
            .expect("a pad template named video or audio");
        let pad = gst::Pad::builder_from_template(&templ)
            .name(name)
            .query_function(query)
            .build();
        let group_id = self.inner.lock().unwrap().group_id;
        // Outside the lock: adding a pad emits pad-added to the application.
        srcpad::expose(element, &pad, group_id, caps);
        let (q, thread) = PadQueue::start(pad, self.name);
        let mut inner = self.inner.lock().unwrap();
        inner.queues[kind as usize] = Some(q.clone());
        inner.threads.push(thread);
        q
    }

    /// Announce no-more-pads, once.
    pub fn announce(&self, element: &gst::Element) {
        let first = !std::mem::replace(&mut self.inner.lock().unwrap().no_more_pads, true);
        if first {
            element.no_more_pads();
        }
    }

    /// Queue an EOS on every pad.
    pub fn eos(&self) {
        for q in self.inner.lock().unwrap().queues.iter().flatten() {
            q.push_event(gst::event::Eos::new());
        }
    }

    /// End the stream: if the pads were never announced (the camera never sent
    /// anything), expose the missing ones empty first, so that an EOS reaches downstream
    /// (a recorder waiting for its pads, `gst-launch-1.0 -e`); then EOS on every pad.
    /// Whether pads were added.
    pub fn end(&self, element: &gst::Element, audio: bool) -> bool {
        let missing: Vec<Kind> = {
            let inner = self.inner.lock().unwrap();
            if inner.no_more_pads {
                Vec::new()
            } else {
                [Kind::Video, Kind::Audio]
                    .into_iter()
                    .filter(|k| (*k == Kind::Video || audio) && inner.queues[*k as usize].is_none())
                    .collect()
            }
        };
        let group_id = self.inner.lock().unwrap().group_id;
        for kind in &missing {
            let (q, thread) = srcpad::eos_pad(element, kind.pad_name(), group_id, self.name);
            let mut inner = self.inner.lock().unwrap();
            inner.queues[*kind as usize] = Some(q);
            inner.threads.push(thread);
        }
        if !missing.is_empty() {
            self.announce(element);
        }
        self.eos();
        !missing.is_empty()
    }

    /// Flush events go straight to the pads, past their queues: the worker goes on (a
    /// live source keeps producing), and what was queued is dropped by the flush.
    fn flush(&self, event: &gst::Event) {
        let queues: Vec<_> = self
            .inner
            .lock()
            .unwrap()
            .queues
            .iter()
            .flatten()
            .cloned()
            .collect();
        for q in queues {
            q.pad.push_event(event.clone());
        }
    }

    /// Remove every pad: deactivated first, which unblocks a push waiting downstream,
    /// then its thread is joined. The next session starts with a new group id.
    fn remove_all(&self, element: &gst::Element) {
        let old = std::mem::replace(&mut *self.inner.lock().unwrap(), PadsInner::new());
        for q in old.queues.iter().flatten() {
            let _ = q.pad.set_active(false);
            q.shutdown();
        }
        for t in old.threads {
            let _ = t.join();
        }
        for q in old.queues.iter().flatten() {
            let _ = element.remove_pad(&q.pad);
        }
    }
}

/// A live source's answers to a pad query: latency from the element's `latency`
/// property (milliseconds), its URI without the password, push-only scheduling.
fn query(pad: &gst::Pad, parent: Option<&gst::Object>, q: &mut gst::QueryRef) -> bool {
    let Some(element) = parent.and_then(|p| p.downcast_ref::<gst::Element>()) else {
        return gst::Pad::query_default(pad, parent, q);
    };
    let latency = if element.find_property("latency").is_some() {
        element.property::<u32>("latency")
    } else {
        0
    };
    let uri = element
        .dynamic_cast_ref::<gst::URIHandler>()
        .and_then(|h| h.uri())
        .map(String::from);
    srcpad::query(pad, element, q, latency, uri)
}

struct Worker {
    thread: JoinHandle<()>,
    cancel: Arc<Cancel>,
}

/// The element's half of the skeleton.
pub struct LiveSrc {
    name: &'static str,
    worker: Mutex<Option<Worker>>,
    pads: Arc<SrcPads>,
    playing: AtomicBool,
}

impl LiveSrc {
    /// `name` names the worker thread and the pads' threads.
    pub fn new(name: &'static str) -> Self {
        LiveSrc {
            name,
            worker: Mutex::new(None),
            pads: Arc::new(SrcPads::new(name)),
            playing: AtomicBool::new(false),
        }
    }

    pub fn pads(&self) -> &Arc<SrcPads> {
        &self.pads
    }

    /// Whether the element is PLAYING: a live source drops what it captures otherwise.
    pub fn is_playing(&self) -> bool {
        self.playing.load(Ordering::SeqCst)
    }

    /// The state changes of a live source: `source`'s check and start, the playing flag,
    /// stopping the worker and removing the pads, and NO_PREROLL in PAUSED. `parent` is
    /// the element class's `parent_change_state`.
    pub fn change_state(
        &self,
        element: &gst::Element,
        transition: gst::StateChange,
        source: &impl Source,
        parent: impl FnOnce(gst::StateChange) -> Result<gst::StateChangeSuccess, gst::StateChangeError>,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            gst::StateChange::NullToReady => source.check()?,
            gst::StateChange::ReadyToPaused => source.start()?,
            gst::StateChange::PausedToPlaying => self.playing.store(true, Ordering::SeqCst),
            gst::StateChange::PlayingToPaused => self.playing.store(false, Ordering::SeqCst),
            gst::StateChange::PausedToReady => {
                self.stop_worker();
                self.pads.remove_all(element);
                source.stopped();
            }
            _ => {}
        }
        let ret = parent(transition)?;
        Ok(match transition {
            gst::StateChange::ReadyToPaused | gst::StateChange::PlayingToPaused => {
                gst::StateChangeSuccess::NoPreroll
            }
            _ => ret,
        })
    }

    /// Run `work` on the worker thread with the cancel handle that stopping fires.
    pub fn spawn(
        &self,
        element: &gst::Element,
        work: impl FnOnce(Arc<Cancel>) + Send + 'static,
    ) -> Result<(), gst::StateChangeError> {
        let cancel = Arc::new(Cancel::new());
        let c = cancel.clone();
        let thread = std::thread::Builder::new()
            .name(self.name.into())
            .spawn(move || work(c))
            .map_err(|e| {
                element.post_error_message(gst::error_msg!(
                    gst::CoreError::Thread,
                    ("Cannot start the {} thread: {e}", self.name)
                ));
                gst::StateChangeError
            })?;
        *self.worker.lock().unwrap() = Some(Worker { thread, cancel });
        Ok(())
    }

    /// Cancel the worker wherever it is (a blocked connect, a backoff wait) and wait for
    /// it. It never blocks on downstream: it only enqueues.
    pub fn stop_worker(&self) {
        let worker = self.worker.lock().unwrap().take();
        if let Some(w) = worker {
            w.cancel.cancel();
            let _ = w.thread.join();
        }
    }

    /// An event sent to the element. EOS (`gst-launch-1.0 -e`, an application finishing
    /// a recording) stops the camera and ends every pad, so muxers finalise their files;
    /// `audio` says whether an audio pad is wanted. Flushes go to the pads. Whether the
    /// event was handled, and pads had to be added for the EOS.
    pub fn send_event(&self, element: &gst::Element, event: &gst::Event, audio: bool) -> Handled {
        match event.view() {
            gst::EventView::Eos(_) => {
                self.stop_worker();
                if self.pads.end(element, audio) {
                    Handled::EosWithEmptyPads
                } else {
                    Handled::Yes
                }
            }
            gst::EventView::FlushStart(_) | gst::EventView::FlushStop(_) => {
                self.pads.flush(event);
                Handled::Yes
            }
            _ => Handled::No,
        }
    }
}

/// What [`LiveSrc::send_event`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    No,
    Yes,
    /// An EOS, for which empty pads were exposed: the camera had sent nothing.
    EosWithEmptyPads,
}

impl Handled {
    pub fn handled(&self) -> bool {
        *self != Handled::No
    }
}

struct Held {
    kind: Kind,
    caps: gst::Caps,
    /// None: only seen (a key frame while paused, audio before the video started), so
    /// the pads can be decided; nothing to push.
    buffer: Option<gst::Buffer>,
}

/// The worker's half of the skeleton: from the camera's buffers to the pads.
pub struct Outputs {
    element: gst::Element,
    pads: Arc<SrcPads>,
    audio_wanted: bool,
    decided: bool,
    held: Vec<Held>,
    /// The caps each exposed pad carries now.
    caps: [Option<gst::Caps>; 2],
    combiner: gst_base::UniqueFlowCombiner,
}

/// What became of a buffer given to [`Outputs::push`].
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued on its pad, or held until the pads are decided.
    Queued,
    /// The pad's queue was full (downstream stuck for seconds): `n` buffers were
    /// dropped. For video, every queued frame: the next must be a key frame.
    Overflow(usize),
    /// No pad for it: audio that came after the pads were decided without it.
    NoPad,
}

impl Outputs {
    /// For `live`'s element; `audio_wanted`: wait a little for audio before exposing the
    /// pads.
    pub fn new(element: &gst::Element, live: &LiveSrc, audio_wanted: bool) -> Self {
        Outputs {
            element: element.clone(),
            pads: live.pads.clone(),
            audio_wanted,
            decided: false,
            held: Vec::new(),
            caps: [None, None],
            combiner: gst_base::UniqueFlowCombiner::new(),
        }
    }

    pub fn decided(&self) -> bool {
        self.decided
    }

    /// Whether `kind`'s pad exists (or, before the pads are decided, whether that kind
    /// was seen).
    pub fn has(&self, kind: Kind) -> bool {
        if self.decided {
            self.caps[kind as usize].is_some()
        } else {
            self.held.iter().any(|h| h.kind == kind)
        }
    }

    /// `kind` was seen with `caps` but is not to be pushed (video while paused, audio
    /// before the video started): enough to decide the pads. What is seen this way
    /// replaces what was seen of that kind before, so a long pause holds nothing.
    pub fn seen(&mut self, kind: Kind, caps: &gst::Caps) {
        if self.decided {
            return;
        }
        self.held.retain(|h| h.buffer.is_some() || h.kind != kind);
        self.hold(Held {
            kind,
            caps: caps.clone(),
            buffer: None,
        });
    }

    /// A buffer for `kind`'s pad, whose stream has `caps`. Until the pads are decided it
    /// is held; then everything held is pushed in order.
    pub fn push(&mut self, kind: Kind, caps: &gst::Caps, buffer: gst::Buffer) -> Pushed {
        if self.decided {
            return self.send(kind, caps, buffer);
        }
        if kind == Kind::Video {
            // A video only seen (while paused) is stale now.
            self.held
                .retain(|h| h.buffer.is_some() || h.kind != Kind::Video);
        }
        self.hold(Held {
            kind,
            caps: caps.clone(),
            buffer: Some(buffer),
        });
        Pushed::Queued
    }

    fn hold(&mut self, h: Held) {
        if self.held.len() >= MAX_HELD {
            self.held.remove(0);
        }
        self.held.push(h);
        let videos = self.held.iter().filter(|h| h.kind == Kind::Video).count();
        let audio = self.held.iter().any(|h| h.kind == Kind::Audio);
        if videos > 0 && (!self.audio_wanted || audio || videos >= AUDIO_PROBE_FRAMES) {
            self.decide();
        }
    }

    /// Expose the pads (video, and audio if it came) together, so muxers see all of them
    /// before any data, then release what was held. Returns the worst overflow.
    fn decide(&mut self) {
        self.decided = true;
        for kind in [Kind::Video, Kind::Audio] {
            if let Some(h) = self.held.iter().find(|h| h.kind == kind) {
                let caps = h.caps.clone();
                let q = self.pads.add(&self.element, kind, &caps);
                self.combiner.add_pad(&q.pad);
                self.caps[kind as usize] = Some(caps);
            }
        }
        gst::info!(
            *CAT,
            obj = self.element,
            "exposing the video{} pad",
            if self.caps[1].is_some() {
                " and audio"
            } else {
                ""
            }
        );
        self.pads.announce(&self.element);
        for h in std::mem::take(&mut self.held) {
            if let Some(b) = h.buffer {
                self.send(h.kind, &h.caps, b);
            }
        }
    }

    fn send(&mut self, kind: Kind, caps: &gst::Caps, buffer: gst::Buffer) -> Pushed {
        let Some(q) = self.pads.get(kind) else {
            return Pushed::NoPad;
        };
        let k = kind as usize;
        if self.caps[k].as_ref() != Some(caps) {
            gst::info!(
                *CAT,
                obj = self.element,
                "{} caps now {caps}",
                kind.pad_name()
            );
            q.push_event(gst::event::Caps::new(caps));
            self.caps[k] = Some(caps.clone());
        }
        match q.push(buffer, kind == Kind::Video) {
            Enqueued::Ok => Pushed::Queued,
            Enqueued::Overflow(n) => Pushed::Overflow(n),
        }
    }

    /// The pads' combined flow: NOT_LINKED only when every pad is unlinked, EOS or
    /// FLUSHING as soon as one pad has it.
    pub fn flow(&mut self) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut ret = Ok(gst::FlowSuccess::Ok);
        for kind in [Kind::Video, Kind::Audio] {
            if let Some(q) = self.pads.get(kind) {
                ret = self.combiner.update_pad_flow(&q.pad, q.flow());
                ret?;
            }
        }
        ret
    }

    /// Queue an EOS on every exposed pad (after an error, as any failed source does).
    pub fn eos(&self) {
        self.pads.eos();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gst::glib;
    use gst::subclass::prelude::*;
    use std::time::Duration;

    /// An element with a camera source's two sometimes pads, nothing else.
    mod imp {
        use super::*;

        #[derive(Default)]
        pub struct TwoPads;

        #[glib::object_subclass]
        impl ObjectSubclass for TwoPads {
            const NAME: &'static str = "GstCamLiveSrcTest";
            type Type = super::TwoPads;
            type ParentType = gst::Element;
        }
        impl ObjectImpl for TwoPads {}
        impl GstObjectImpl for TwoPads {}
        impl ElementImpl for TwoPads {
            fn pad_templates() -> &'static [gst::PadTemplate] {
                static T: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                    super::templates(&gst::Caps::new_any(), &gst::Caps::new_any())
                });
                T.as_ref()
            }
        }
    }

    glib::wrapper! {
        pub struct TwoPads(ObjectSubclass<imp::TwoPads>) @extends gst::Element, gst::Object;
    }

    fn element() -> gst::Element {
        gst::init().unwrap();
        glib::Object::new::<TwoPads>().upcast()
    }

    fn caps(name: &str) -> gst::Caps {
        gst::Caps::builder(name).build()
    }

    fn buffer(pts_ms: u64) -> gst::Buffer {
        let mut b = gst::Buffer::with_size(4).unwrap();
        b.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(pts_ms));
        b
    }

    fn pad_names(e: &gst::Element) -> Vec<String> {
        let mut v: Vec<String> = e.src_pads().iter().map(|p| p.name().to_string()).collect();
        v.sort();
        v
    }

    type Sinks = Arc<Mutex<Vec<(String, gst_app::AppSink)>>>;

    /// Link a playing appsink to every pad as it is added (before anything is pushed,
    /// as a real application does from pad-added).
    fn attach(e: &gst::Element) -> Sinks {
        let sinks: Sinks = Arc::default();
        let s2 = sinks.clone();
        e.connect_pad_added(move |_, pad| {
            let sink = gst::ElementFactory::make("appsink")
                .property("sync", false)
                .build()
                .unwrap();
            sink.set_state(gst::State::Playing).unwrap();
            pad.link(&sink.static_pad("sink").unwrap()).unwrap();
            let sink = sink.dynamic_cast::<gst_app::AppSink>().unwrap();
            s2.lock().unwrap().push((pad.name().to_string(), sink));
        });
        sinks
    }

    /// What reached pad `name`: (caps name, pts in ms) per buffer, until `n` came or 5 s.
    fn collect(sinks: &Sinks, name: &str, n: usize) -> Vec<(String, u64)> {
        let sink = sinks
            .lock()
            .unwrap()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .expect("a sink on that pad");
        let mut got = Vec::new();
        while got.len() < n {
            let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(5)) else {
                break;
            };
            let name = s.caps().unwrap().structure(0).unwrap().name().to_string();
            got.push((name, s.buffer().unwrap().pts().unwrap().mseconds()));
        }
        got
    }

    fn detach(sinks: &Sinks) {
        for (_, sink) in sinks.lock().unwrap().drain(..) {
            sink.set_state(gst::State::Null).unwrap();
        }
    }

    #[test]
    fn pads_wait_for_audio_then_come_together_and_release_what_was_held_in_order() {
        let e = element();
        let live = LiveSrc::new("test");
        let sinks = attach(&e);
        let mut out = Outputs::new(&e, &live, true);
        assert_eq!(
            out.push(Kind::Video, &caps("video/x-h264"), buffer(0)),
            Pushed::Queued
        );
        assert_eq!(
            out.push(Kind::Video, &caps("video/x-h264"), buffer(40)),
            Pushed::Queued
        );
        assert!(
            !out.decided() && pad_names(&e).is_empty(),
            "held until audio or 8 frames"
        );
        out.push(Kind::Audio, &caps("audio/x-mulaw"), buffer(50));
        assert!(out.decided());
        assert_eq!(pad_names(&e), ["audio", "video"]);
        let video = collect(&sinks, "video", 2);
        assert_eq!(
            video,
            [("video/x-h264".into(), 0), ("video/x-h264".into(), 40)]
        );
        assert_eq!(collect(&sinks, "audio", 1), [("audio/x-mulaw".into(), 50)]);
        live.pads.remove_all(&e);
        assert!(pad_names(&e).is_empty());
        detach(&sinks);
    }

    #[test]
    fn a_camera_without_audio_gets_a_video_pad_after_the_probe_frames() {
        let e = element();
        let live = LiveSrc::new("test");
        let mut out = Outputs::new(&e, &live, true);
        for i in 0..AUDIO_PROBE_FRAMES as u64 - 1 {
            out.push(Kind::Video, &caps("video/x-h264"), buffer(i * 40));
        }
        assert!(!out.decided());
        out.push(Kind::Video, &caps("video/x-h264"), buffer(1000));
        assert!(out.decided() && out.has(Kind::Video) && !out.has(Kind::Audio));
        assert_eq!(pad_names(&e), ["video"]);
        assert_eq!(
            out.push(Kind::Audio, &caps("audio/x-mulaw"), buffer(1040)),
            Pushed::NoPad,
            "audio after the decision has no pad"
        );
        live.pads.remove_all(&e);
    }

    #[test]
    fn what_is_only_seen_exposes_the_pads_but_is_never_pushed_and_never_piles_up() {
        let e = element();
        let live = LiveSrc::new("test");
        let sinks = attach(&e);
        let mut out = Outputs::new(&e, &live, true);
        for _ in 0..1000 {
            out.seen(Kind::Audio, &caps("audio/x-mulaw"));
        }
        assert_eq!(out.held.len(), 1, "a long pause holds one entry per kind");
        out.seen(Kind::Video, &caps("video/x-h264"));
        assert!(out.decided());
        assert_eq!(pad_names(&e), ["audio", "video"]);
        // A caps change on the way: the pad follows it.
        out.push(Kind::Video, &caps("video/x-h265"), buffer(7));
        assert_eq!(
            collect(&sinks, "video", 1),
            [("video/x-h265".into(), 7)],
            "nothing seen-only was pushed before it"
        );
        live.pads.remove_all(&e);
        detach(&sinks);
    }

    #[test]
    fn without_audio_wanted_the_first_video_decides_and_audio_makes_no_pad() {
        let e = element();
        let live = LiveSrc::new("test");
        let mut out = Outputs::new(&e, &live, false);
        out.push(Kind::Video, &caps("video/x-h264"), buffer(0));
        assert!(out.decided());
        assert_eq!(pad_names(&e), ["video"]);
        live.pads.remove_all(&e);
    }

    #[test]
    fn eos_before_any_data_exposes_empty_pads_once_and_ends_them() {
        let e = element();
        let live = LiveSrc::new("test");
        let pads = Arc::new(Mutex::new(Vec::new()));
        let p2 = pads.clone();
        e.connect_pad_added(move |_, pad| p2.lock().unwrap().push(pad.name().to_string()));
        let eos = gst::event::Eos::new();
        assert_eq!(live.send_event(&e, &eos, true), Handled::EosWithEmptyPads);
        assert_eq!(*pads.lock().unwrap(), ["video", "audio"]);
        // Each pad carries the EOS (its sticky event once pushed).
        for name in ["video", "audio"] {
            let pad = e.static_pad(name).unwrap();
            let t0 = std::time::Instant::now();
            while pad.sticky_event::<gst::event::Eos>(0).is_none()
                && t0.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(
                pad.sticky_event::<gst::event::Eos>(0).is_some(),
                "{name}: no EOS"
            );
        }
        assert_eq!(
            live.send_event(&e, &eos, true),
            Handled::Yes,
            "no second set of pads"
        );
        assert_eq!(pads.lock().unwrap().len(), 2);
        assert_eq!(
            live.send_event(&e, &gst::event::Reconfigure::new(), true),
            Handled::No
        );
        live.pads.remove_all(&e);
    }

    #[test]
    fn stopping_cancels_the_worker_and_waits_for_it() {
        let e = element();
        let live = LiveSrc::new("test");
        let (tx, rx) = std::sync::mpsc::channel();
        live.spawn(&e, move |cancel| {
            // A backoff wait that only a cancel ends.
            let cancelled = !cancel.sleep(Duration::from_secs(3600));
            tx.send(cancelled).unwrap();
        })
        .unwrap();
        live.stop_worker();
        assert_eq!(
            rx.try_recv(),
            Ok(true),
            "the worker ended, cancelled, before stop returned"
        );
    }
}
