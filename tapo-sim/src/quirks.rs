//! Tapo firmware quirks, applied to the responses gst-rtsp-server is about to send.
//!
//! gst-rtsp-server has no API to misbehave, so the simulator rewrites outgoing messages
//! in the client's `send-message` signal, which runs before serialisation. The Rust
//! bindings do not wrap that signal, hence the small amount of FFI here.

use super::Shared;
use gst::glib;
use gst::glib::translate::ToGlibPtr;
use gst::prelude::*;
use gst_rtsp_server::prelude::*;
use std::ffi::{CStr, CString};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// How the SDP carries the H.264 parameter sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpropQuirk {
    /// `sprop-parameter-sets=<SPS>,<PPS>` as it should.
    #[default]
    Normal,
    /// No `sprop-parameter-sets` at all.
    Missing,
    /// `sprop-parameter-sets=(null),(null)`, seen on some Tapo firmwares.
    Null,
}

#[derive(Clone, Debug, Default)]
pub struct Quirks {
    /// Keep-alive GET_PARAMETER/SET_PARAMETER answered with 400 and the previous CSeq.
    pub keepalive_400: bool,
    pub sprop: SpropQuirk,
    /// An extra proprietary `m=application` track in the SDP, which cannot be set up.
    pub extra_track: bool,
}

impl Quirks {
    /// Parse a comma-separated list: `keepalive-400`, `no-sprop`, `null-sprop`,
    /// `extra-track`, or `all`.
    pub fn parse(list: &str) -> Result<Quirks, String> {
        let mut q = Quirks::default();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "keepalive-400" => q.keepalive_400 = true,
                "no-sprop" => q.sprop = SpropQuirk::Missing,
                "null-sprop" => q.sprop = SpropQuirk::Null,
                "extra-track" => q.extra_track = true,
                "all" => {
                    q.keepalive_400 = true;
                    q.sprop = SpropQuirk::Null;
                    q.extra_track = true;
                }
                other => {
                    return Err(format!(
                        "unknown quirk {other:?} (keepalive-400, no-sprop, null-sprop, extra-track, all)"
                    ))
                }
            }
        }
        Ok(q)
    }
}

/// Rewrite the SDP of a DESCRIBE answer.
pub fn rewrite_sdp(sdp: &str, quirks: &Quirks) -> String {
    let mut out = String::with_capacity(sdp.len() + 128);
    for line in sdp.split_inclusive('\n') {
        if line.starts_with("a=fmtp:") && line.contains("sprop-parameter-sets=") {
            let (head, params) = line.trim_end().split_once(' ').unwrap_or((line, ""));
            let kept: Vec<String> = params
                .split(';')
                .map(str::trim)
                .filter_map(|p| {
                    if !p.starts_with("sprop-parameter-sets=") {
                        return Some(p.to_string());
                    }
                    match quirks.sprop {
                        SpropQuirk::Normal => Some(p.to_string()),
                        SpropQuirk::Missing => None,
                        SpropQuirk::Null => Some("sprop-parameter-sets=(null),(null)".into()),
                    }
                })
                .collect();
            out.push_str(head);
            out.push(' ');
            out.push_str(&kept.join(";"));
            out.push_str("\r\n");
        } else {
            out.push_str(line);
        }
    }
    if quirks.extra_track {
        if !out.ends_with('\n') {
            out.push_str("\r\n");
        }
        out.push_str(
            "m=application 0 RTP/AVP 107\r\na=rtpmap:107 vnd.onvif.metadata/90000\r\na=control:track3\r\n",
        );
    }
    out
}

/// Hook a freshly connected client: session timeout, keep-alive counting and the quirks.
pub(crate) fn install(client: &gst_rtsp_server::RTSPClient, shared: Arc<Shared>) {
    let timeout = shared.cfg.session_timeout;
    client.connect_new_session(move |_, session| session.set_timeout(timeout));

    let sh = shared.clone();
    let keepalive = move |_: &gst_rtsp_server::RTSPClient, _: &gst_rtsp_server::RTSPContext| {
        sh.counters.keepalives.fetch_add(1, Ordering::Relaxed);
        if sh.cfg.quirks.keepalive_400 {
            gst_rtsp::RTSPStatusCode::BadRequest
        } else {
            gst_rtsp::RTSPStatusCode::Ok
        }
    };
    client.connect_pre_get_parameter_request(keepalive.clone());
    client.connect_pre_set_parameter_request(keepalive);

    let quirks = shared.cfg.quirks.clone();
    if !quirks.keepalive_400 && quirks.sprop == SpropQuirk::Normal && !quirks.extra_track {
        return;
    }
    let last_cseq: Mutex<Option<CString>> = Mutex::new(None);
    client.connect("send-message", false, move |args| {
        // Signal arguments: client, GstRTSPContext and GstRTSPMessage, both as pointers.
        let ctx = unsafe {
            glib::gobject_ffi::g_value_get_pointer(args[1].to_glib_none().0)
                as *mut gst_rtsp_server::ffi::GstRTSPContext
        };
        let msg = unsafe {
            glib::gobject_ffi::g_value_get_pointer(args[2].to_glib_none().0)
                as *mut gst_rtsp::ffi::GstRTSPMessage
        };
        if ctx.is_null() || msg.is_null() {
            return None;
        }
        unsafe { rewrite_response(ctx, msg, &quirks, &last_cseq) };
        None
    });
}

unsafe fn request_method(ctx: *mut gst_rtsp_server::ffi::GstRTSPContext) -> Option<i32> {
    let req = (*ctx).request;
    if req.is_null()
        || gst_rtsp::ffi::gst_rtsp_message_get_type(req) != gst_rtsp::ffi::GST_RTSP_MESSAGE_REQUEST
    {
        return None;
    }
    let mut method = 0;
    let mut uri = std::ptr::null();
    let mut version = 0;
    gst_rtsp::ffi::gst_rtsp_message_parse_request(req, &mut method, &mut uri, &mut version);
    Some(method as i32)
}

unsafe fn rewrite_response(
    ctx: *mut gst_rtsp_server::ffi::GstRTSPContext,
    msg: *mut gst_rtsp::ffi::GstRTSPMessage,
    quirks: &Quirks,
    last_cseq: &Mutex<Option<CString>>,
) {
    use gst_rtsp::ffi::*;
    if gst_rtsp_message_get_type(msg) != GST_RTSP_MESSAGE_RESPONSE {
        return;
    }
    let mut code = 0;
    let mut reason = std::ptr::null();
    let mut version = 0;
    gst_rtsp_message_parse_response(msg, &mut code, &mut reason, &mut version);
    let method = request_method(ctx);

    let mut value: *mut std::ffi::c_char = std::ptr::null_mut();
    let cseq = if gst_rtsp_message_get_header(msg, GST_RTSP_HDR_CSEQ, &mut value, 0) == GST_RTSP_OK
        && !value.is_null()
    {
        Some(CStr::from_ptr(value).to_owned())
    } else {
        None
    };
    let keepalive = matches!(method, Some(m) if m == GST_RTSP_GET_PARAMETER as i32 || m == GST_RTSP_SET_PARAMETER as i32);
    let mut last = last_cseq.lock().unwrap();
    if quirks.keepalive_400 && keepalive && code == GST_RTSP_STS_BAD_REQUEST {
        if let Some(prev) = last.as_ref() {
            gst_rtsp_message_remove_header(msg, GST_RTSP_HDR_CSEQ, -1);
            gst_rtsp_message_add_header(msg, GST_RTSP_HDR_CSEQ, prev.as_ptr());
        }
    }
    if cseq.is_some() {
        *last = cseq;
    }
    drop(last);

    if method == Some(GST_RTSP_DESCRIBE as i32) && code == GST_RTSP_STS_OK {
        let mut body: *mut u8 = std::ptr::null_mut();
        let mut size: u32 = 0;
        if gst_rtsp_message_get_body(msg, &mut body, &mut size) != GST_RTSP_OK || body.is_null() {
            return;
        }
        let sdp = std::slice::from_raw_parts(body, size as usize);
        // The body may carry a trailing NUL.
        let sdp = String::from_utf8_lossy(sdp.strip_suffix(&[0]).unwrap_or(sdp)).into_owned();
        let new = rewrite_sdp(&sdp, quirks);
        gst_rtsp_message_set_body(msg, new.as_ptr(), new.len() as u32);
        let len = CString::new(new.len().to_string()).unwrap_or_default();
        gst_rtsp_message_remove_header(msg, GST_RTSP_HDR_CONTENT_LENGTH, -1);
        gst_rtsp_message_add_header(msg, GST_RTSP_HDR_CONTENT_LENGTH, len.as_ptr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
        a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z00AKA==,aO48gA==;profile-level-id=4d0028\r\n\
        a=control:stream=0\r\n";

    #[test]
    fn sdp_quirks() {
        let q = |s| Quirks::parse(s).unwrap();
        assert_eq!(rewrite_sdp(SDP, &q("")), SDP);
        let missing = rewrite_sdp(SDP, &q("no-sprop"));
        assert!(!missing.contains("sprop"));
        assert!(missing.contains("a=fmtp:96 packetization-mode=1;profile-level-id=4d0028\r\n"));
        let null = rewrite_sdp(SDP, &q("null-sprop,extra-track"));
        assert!(null.contains("sprop-parameter-sets=(null),(null);"));
        assert!(null.ends_with("a=control:track3\r\n"));
        assert!(Quirks::parse("bogus").is_err());
    }
}
