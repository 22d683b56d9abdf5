//! One pushing thread per source pad.
//!
//! A camera multiplexes audio and video on one connection, but downstream may block
//! one pad until the other has produced data: playbin/uridecodebin hold the video
//! decodebin until the audio decodebin has exposed its pad. A single thread pushing
//! both pads would deadlock there, so the reader thread only enqueues, and each pad
//! drains its own bounded queue. A full queue (downstream stuck for seconds) drops
//! data, as a live source must, and never grows.

use gst::prelude::*;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Items queued per pad: ~8 s of video at 15 fps, ~7 s of 60 ms audio parts.
pub const MAX_ITEMS: usize = 120;
/// Bytes queued per pad, whatever the part sizes.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

pub enum Item {
    Buffer(gst::Buffer),
    Event(gst::Event),
}

struct State {
    items: VecDeque<Item>,
    /// Bytes of the queued buffers.
    bytes: usize,
    shutdown: bool,
    flow: Result<gst::FlowSuccess, gst::FlowError>,
}

pub struct PadQueue {
    pub pad: gst::Pad,
    state: Mutex<State>,
    cv: Condvar,
}

/// What happened to an enqueued buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Enqueued {
    Ok,
    /// The queue was full: `n` buffers were dropped.
    Overflow(usize),
}

impl PadQueue {
    fn new(pad: gst::Pad) -> PadQueue {
        PadQueue {
            pad,
            state: Mutex::new(State {
                items: VecDeque::new(),
                bytes: 0,
                shutdown: false,
                flow: Ok(gst::FlowSuccess::Ok),
            }),
            cv: Condvar::new(),
        }
    }

    /// Start the pushing thread, named `<element>-<pad>`.
    pub fn start(pad: gst::Pad, element: &str) -> (Arc<PadQueue>, JoinHandle<()>) {
        let q = Arc::new(PadQueue::new(pad));
        let q2 = q.clone();
        let name = format!("{element}-{}", q.pad.name());
        let h = std::thread::Builder::new()
            .name(name)
            .spawn(move || q2.run())
            .expect("spawn pad thread");
        (q, h)
    }

    /// Queue a buffer. When the queue is full (more than [`MAX_ITEMS`] or [`MAX_BYTES`]),
    /// `drop_all_on_overflow` drops every queued buffer and this one (video: decoding must
    /// restart at a key frame anyway), else the oldest buffers until this one fits (audio).
    pub fn push(&self, buf: gst::Buffer, drop_all_on_overflow: bool) -> Enqueued {
        let mut s = self.state.lock().unwrap();
        let size = buf.size();
        let over = |s: &State| s.items.len() >= MAX_ITEMS || s.bytes + size > MAX_BYTES;
        let mut dropped = 0;
        if over(&s) {
            if drop_all_on_overflow {
                let before = s.items.len();
                s.items.retain(|i| matches!(i, Item::Event(_)));
                s.bytes = 0;
                return Enqueued::Overflow(before - s.items.len() + 1);
            }
            while over(&s) {
                let Some(pos) = s.items.iter().position(|i| matches!(i, Item::Buffer(_))) else {
                    break;
                };
                if let Some(Item::Buffer(b)) = s.items.remove(pos) {
                    s.bytes -= b.size();
                    dropped += 1;
                }
            }
        }
        s.bytes += size;
        s.items.push_back(Item::Buffer(buf));
        self.cv.notify_one();
        if dropped > 0 {
            Enqueued::Overflow(dropped)
        } else {
            Enqueued::Ok
        }
    }

    pub fn push_event(&self, ev: gst::Event) {
        let mut s = self.state.lock().unwrap();
        s.items.push_back(Item::Event(ev));
        self.cv.notify_one();
    }

    /// The last flow return downstream gave this pad.
    pub fn flow(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.state.lock().unwrap().flow
    }

    /// Stop the thread: what is queued is dropped. Deactivate the pad first so a push
    /// blocked downstream returns.
    pub fn shutdown(&self) {
        let mut s = self.state.lock().unwrap();
        s.shutdown = true;
        s.items.clear();
        s.bytes = 0;
        self.cv.notify_all();
    }

    fn run(&self) {
        loop {
            let item = {
                let mut s = self.state.lock().unwrap();
                loop {
                    if s.shutdown {
                        return;
                    }
                    if let Some(i) = s.items.pop_front() {
                        if let Item::Buffer(b) = &i {
                            s.bytes -= b.size();
                        }
                        break i;
                    }
                    s = self.cv.wait(s).unwrap();
                }
            };
            let flow = match item {
                Item::Buffer(b) => self.pad.push(b),
                Item::Event(e) => {
                    let eos = matches!(e.view(), gst::EventView::Eos(_));
                    self.pad.push_event(e);
                    if eos {
                        Err(gst::FlowError::Eos)
                    } else {
                        Ok(gst::FlowSuccess::Ok)
                    }
                }
            };
            let mut s = self.state.lock().unwrap();
            s.flow = flow;
            if matches!(flow, Err(gst::FlowError::Flushing)) {
                s.items.clear();
                s.bytes = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> PadQueue {
        gst::init().unwrap();
        // Not started: nothing drains it.
        PadQueue::new(gst::Pad::new(gst::PadDirection::Src))
    }

    #[test]
    fn bounded_by_items_and_bytes() {
        let q = queue();
        for _ in 0..MAX_ITEMS {
            assert_eq!(
                q.push(gst::Buffer::with_size(10).unwrap(), false),
                Enqueued::Ok
            );
        }
        assert_eq!(
            q.push(gst::Buffer::with_size(10).unwrap(), false),
            Enqueued::Overflow(1)
        );
        assert_eq!(q.state.lock().unwrap().items.len(), MAX_ITEMS);
        let big = gst::Buffer::with_size(MAX_BYTES - 100).unwrap();
        assert!(matches!(q.push(big, false), Enqueued::Overflow(_)));
        assert!(q.state.lock().unwrap().bytes <= MAX_BYTES);

        let v = queue();
        v.push_event(gst::event::Eos::new());
        for _ in 0..MAX_ITEMS - 1 {
            v.push(gst::Buffer::with_size(10).unwrap(), true);
        }
        assert_eq!(
            v.push(gst::Buffer::with_size(10).unwrap(), true),
            Enqueued::Overflow(MAX_ITEMS)
        );
        let s = v.state.lock().unwrap();
        assert_eq!((s.items.len(), s.bytes), (1, 0), "events are kept");
    }
}
