pub mod scenes;

use gst::prelude::*;
use std::sync::{Arc, Mutex};

/// The element messages `p` posts from now on, as they come.
pub fn element_messages(p: &impl IsA<gst::Element>) -> Arc<Mutex<Vec<gst::Structure>>> {
    let msgs = Arc::new(Mutex::new(Vec::new()));
    let m2 = msgs.clone();
    p.bus().unwrap().set_sync_handler(move |_, m| {
        if let gst::MessageView::Element(e) = m.view() {
            if let Some(s) = e.structure() {
                m2.lock().unwrap().push(s.to_owned());
            }
        }
        gst::BusSyncReply::Pass
    });
    msgs
}
