//! What every camera source does with its sometimes pads: expose them with their
//! sticky events, and answer queries as a live source.

use crate::padqueue::PadQueue;
use gst::prelude::*;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Activate `pad`, store stream-start (with `group_id`), `caps` and a TIME segment
/// starting at 0 (PTS are running times), and add it to `element`.
pub fn expose(element: &gst::Element, pad: &gst::Pad, group_id: gst::GroupId, caps: &gst::Caps) {
    expose_with(element, pad, group_id, Some(caps));
}

/// The same without caps, for a pad that will only carry EOS: a source asked to end
/// before its camera ever sent anything still gives downstream (a recorder waiting for
/// its pads, `gst-launch-1.0 -e`) the EOS it waits for.
pub fn expose_for_eos(element: &gst::Element, pad: &gst::Pad, group_id: gst::GroupId) {
    expose_with(element, pad, group_id, None);
}

/// An empty pad to carry an EOS (see [`expose_for_eos`]), from the element's pad
/// template `name`, with its pushing thread.
pub fn eos_pad(
    element: &gst::Element,
    name: &str,
    group_id: gst::GroupId,
    thread: &str,
) -> (Arc<PadQueue>, JoinHandle<()>) {
    let templ = element
        .pad_template(name)
        .expect("a pad template of this name");
    let pad = gst::Pad::builder_from_template(&templ).name(name).build();
    expose_for_eos(element, &pad, group_id);
    PadQueue::start(pad, thread)
}

fn expose_with(
    element: &gst::Element,
    pad: &gst::Pad,
    group_id: gst::GroupId,
    caps: Option<&gst::Caps>,
) {
    let _ = pad.set_active(true);
    let stream_id = pad.create_stream_id(element, Some(pad.name().as_str()));
    let _ = pad.store_sticky_event(
        &gst::event::StreamStart::builder(stream_id.as_str())
            .group_id(group_id)
            .build(),
    );
    if let Some(caps) = caps {
        let _ = pad.store_sticky_event(&gst::event::Caps::new(caps));
    }
    let segment = gst::FormattedSegment::<gst::ClockTime>::new();
    let _ = pad.store_sticky_event(&gst::event::Segment::new(&segment));
    let _ = element.add_pad(pad);
}

/// A live push source's answers: latency (`live`, `min = latency_ms`), the URI without
/// the password, push-only scheduling; anything else goes to the default handler.
pub fn query(
    pad: &gst::Pad,
    element: &gst::Element,
    query: &mut gst::QueryRef,
    latency_ms: u32,
    redacted_uri: Option<String>,
) -> bool {
    match query.view_mut() {
        gst::QueryViewMut::Latency(q) => {
            q.set(
                true,
                gst::ClockTime::from_mseconds(latency_ms as u64),
                gst::ClockTime::NONE,
            );
            true
        }
        gst::QueryViewMut::Uri(q) => {
            q.set_uri(redacted_uri.as_deref());
            true
        }
        gst::QueryViewMut::Scheduling(q) => {
            q.set(gst::SchedulingFlags::SEQUENTIAL, 1, -1, 0);
            q.add_scheduling_modes([gst::PadMode::Push]);
            true
        }
        _ => gst::Pad::query_default(pad, Some(element), query),
    }
}
