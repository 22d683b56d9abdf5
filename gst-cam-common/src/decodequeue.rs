//! The queue in front of a decoder that may fall behind (a live view, motion analysis),
//! on a branch of a camera's stream that must never slow the camera down.
//!
//! A plain leaky queue drops encoded frames one by one: the decoder then gets frames
//! whose reference frames are gone and paints garbage (and motion detection sees the
//! garbage as motion) until the next key frame. This queue drops whole GOPs instead:
//! once it holds more than `gate` of video, it lets in only key frames, and everything
//! after a key frame again, so the decoder always starts from a key frame. It still leaks
//! at `max` as a last resort (a decoder that is stuck), so the camera never waits.

// A dropped buffer is returned as `Handled` (the binding releases it), not `Drop`: with
// GStreamer 1.22 the core then unreferences the null pointer the binding left behind.
use gst::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Frames dropped by the gate, for statistics.
#[derive(Default)]
pub struct Dropped(AtomicU64);

impl Dropped {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A queue (named `name`) that drops whole GOPs beyond `gate`, and leaks beyond `max`.
pub fn decoder_queue(
    name: Option<&str>,
    gate: gst::ClockTime,
    max: gst::ClockTime,
) -> Result<(gst::Element, Arc<Dropped>), gst::glib::BoolError> {
    let mut b = gst::ElementFactory::make("queue")
        .property("max-size-buffers", 0u32)
        .property("max-size-bytes", 0u32)
        .property("max-size-time", max.nseconds())
        .property_from_str("leaky", "downstream");
    if let Some(n) = name {
        b = b.name(n);
    }
    let q = b.build()?;
    let dropped = Arc::new(Dropped::default());
    let gating = AtomicBool::new(false);
    let weak = q.downgrade();
    let d2 = dropped.clone();
    q.static_pad("sink")
        .expect("a queue has a sink pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(buf) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let key = !buf.flags().contains(gst::BufferFlags::DELTA_UNIT);
            if gating.load(Ordering::Relaxed) {
                if key {
                    gating.store(false, Ordering::Relaxed);
                    return gst::PadProbeReturn::Ok;
                }
                d2.0.fetch_add(1, Ordering::Relaxed);
                return gst::PadProbeReturn::Handled;
            }
            if key {
                return gst::PadProbeReturn::Ok;
            }
            // Reading the level takes the queue's lock, which its chain function has
            // not taken yet here.
            let level = weak
                .upgrade()
                .map(|q| q.property::<u64>("current-level-time"))
                .unwrap_or(0);
            if level >= gate.nseconds() {
                gating.store(true, Ordering::Relaxed);
                d2.0.fetch_add(1, Ordering::Relaxed);
                return gst::PadProbeReturn::Handled;
            }
            gst::PadProbeReturn::Ok
        });
    Ok((q, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Behind a stalled consumer, what passes is whole GOPs: every run of frames that
    /// got through starts with a key frame.
    #[test]
    fn only_whole_gops_pass_when_behind() {
        gst::init().unwrap();
        let (q, dropped) = decoder_queue(
            None,
            gst::ClockTime::from_mseconds(300),
            gst::ClockTime::from_seconds(5),
        )
        .unwrap();
        let pipeline = gst::Pipeline::new();
        let src = gst_app::AppSrc::builder()
            .format(gst::Format::Time)
            .caps(&gst::Caps::new_empty_simple("video/x-h264"))
            .build();
        let sink = gst_app::AppSink::builder()
            .sync(false)
            .max_buffers(0)
            .build();
        pipeline
            .add_many([src.upcast_ref(), &q, sink.upcast_ref()])
            .unwrap();
        gst::Element::link_many([src.upcast_ref(), &q, sink.upcast_ref()]).unwrap();
        // The consumer is blocked until every frame has been offered.
        let block = sink
            .static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BLOCK_DOWNSTREAM, |_, _| {
                gst::PadProbeReturn::Ok
            })
            .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        for i in 0..60u64 {
            let mut b = gst::Buffer::from_slice(vec![i as u8; 10]);
            {
                let b = b.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_mseconds(i * 100));
                if i % 10 != 0 {
                    b.set_flags(gst::BufferFlags::DELTA_UNIT);
                }
            }
            src.push_buffer(b).unwrap();
        }
        src.end_of_stream().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        sink.static_pad("sink").unwrap().remove_probe(block);
        let mut got = Vec::new();
        while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(2)) {
            got.push(s.buffer().unwrap().map_readable().unwrap()[0] as u64);
        }
        pipeline.set_state(gst::State::Null).unwrap();
        assert!(dropped.get() > 0, "nothing dropped: {got:?}");
        assert_eq!(got.len() as u64 + dropped.get(), 60, "{got:?}");
        // Each frame that passed follows the one before it, or is a key frame.
        for w in got.windows(2) {
            assert!(
                w[1] == w[0] + 1 || w[1] % 10 == 0,
                "a frame after a hole is not a key frame: {got:?}"
            );
        }
        assert_eq!(got[0], 0);
    }
}
