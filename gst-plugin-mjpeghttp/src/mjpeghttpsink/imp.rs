//! The element around [`crate::server::Server`]: the server starts on READY→PAUSED
//! (binding errors are element errors), each JPEG buffer is published to it without
//! blocking, and it stops on PAUSED→READY, closing every connection and freeing the port.

use crate::server::{Auth, Config, Event, Server};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use std::net::{IpAddr, SocketAddr};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "mjpeghttpsink",
        gst::DebugColorFlags::empty(),
        Some("MJPEG over HTTP server sink"),
    )
});

const DEFAULT_PORT: u32 = 8080;
const DEFAULT_ADDRESS: &str = "0.0.0.0";
const DEFAULT_MAX_CLIENTS: u32 = 32;
const DEFAULT_TIMEOUT: u32 = 10;
/// Viewer credentials from the environment when `auth` is not set.
const AUTH_ENV: &str = "MJPEGHTTPSINK_AUTH";

#[derive(Clone)]
struct Settings {
    port: u32,
    address: String,
    auth: Option<Auth>,
    max_clients: u32,
    timeout: u32,
    title: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: DEFAULT_PORT,
            address: DEFAULT_ADDRESS.into(),
            auth: None,
            max_clients: DEFAULT_MAX_CLIENTS,
            timeout: DEFAULT_TIMEOUT,
            title: "Camera".into(),
        }
    }
}

#[derive(Default)]
pub struct MjpegHttpSink {
    settings: Mutex<Settings>,
    server: Mutex<Option<Server>>,
}

#[glib::object_subclass]
impl ObjectSubclass for MjpegHttpSink {
    const NAME: &'static str = "GstMjpegHttpSink";
    type Type = super::MjpegHttpSink;
    type ParentType = gst_base::BaseSink;
}

impl ObjectImpl for MjpegHttpSink {
    fn constructed(&self) {
        self.parent_constructed();
        // Frames are served as they come: waiting on the clock only adds latency.
        self.obj().set_sync(false);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("port")
                    .nick("Port")
                    .blurb("TCP port to serve on (0: any free port, see bound-port)")
                    .maximum(65535)
                    .default_value(DEFAULT_PORT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("bound-port")
                    .nick("Bound port")
                    .blurb("The port actually served on, once started")
                    .maximum(65535)
                    .read_only()
                    .build(),
                glib::ParamSpecString::builder("address")
                    .nick("Address")
                    .blurb("Address to listen on: 0.0.0.0 = every interface (anyone on the network can watch; set auth), 127.0.0.1 = this machine only")
                    .default_value(Some(DEFAULT_ADDRESS))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("auth")
                    .nick("Viewer credentials")
                    .blurb("user:password for HTTP Basic auth (kept only as a salted hash; empty: no auth; default from MJPEGHTTPSINK_AUTH, which keeps it out of gst-launch's debug log)")
                    .write_only()
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-clients")
                    .nick("Maximum viewers")
                    .blurb("Streams served at once; more get 503")
                    .minimum(1)
                    .default_value(DEFAULT_MAX_CLIENTS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("timeout")
                    .nick("Timeout")
                    .blurb("Seconds for a request head to arrive, and for a viewer to take a frame before it is disconnected")
                    .minimum(1)
                    .default_value(DEFAULT_TIMEOUT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("title")
                    .nick("Title")
                    .blurb("Title of the index page")
                    .default_value(Some("Camera"))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("clients, frames-in, and per viewer: address, frames-sent, frames-dropped, connected-ms")
                    .read_only()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "port" => s.port = value.get().unwrap(),
            "address" => {
                s.address = value
                    .get::<Option<String>>()
                    .unwrap()
                    .unwrap_or_else(|| DEFAULT_ADDRESS.into())
            }
            "auth" => {
                let v = value.get::<Option<String>>().unwrap().unwrap_or_default();
                s.auth = if v.is_empty() {
                    None
                } else {
                    if !v.contains(':') {
                        gst::warning!(CAT, imp = self, "auth must be user:password");
                    }
                    Some(Auth::new(&v))
                };
            }
            "max-clients" => s.max_clients = value.get().unwrap(),
            "timeout" => s.timeout = value.get().unwrap(),
            "title" => s.title = value.get::<Option<String>>().unwrap().unwrap_or_default(),
            _ => unreachable!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "port" => self.settings.lock().unwrap().port.to_value(),
            "bound-port" => self
                .server
                .lock()
                .unwrap()
                .as_ref()
                .map(|s| s.local_addr().port() as u32)
                .unwrap_or(0)
                .to_value(),
            "address" => self.settings.lock().unwrap().address.to_value(),
            "auth" => None::<String>.to_value(),
            "max-clients" => self.settings.lock().unwrap().max_clients.to_value(),
            "timeout" => self.settings.lock().unwrap().timeout.to_value(),
            "title" => self.settings.lock().unwrap().title.to_value(),
            "stats" => self.stats().to_value(),
            _ => unreachable!(),
        }
    }
}

impl GstObjectImpl for MjpegHttpSink {}

impl ElementImpl for MjpegHttpSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "MJPEG HTTP server sink",
                "Sink/Network",
                "Serves JPEG frames over HTTP: a page at /, multipart/x-mixed-replace at /stream.mjpeg, the latest frame at /snapshot.jpg; encode once, serve many",
                "homecam-gst developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static T: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![gst::PadTemplate::new(
                "sink",
                gst::PadDirection::Sink,
                gst::PadPresence::Always,
                &gst::Caps::new_empty_simple("image/jpeg"),
            )
            .unwrap()]
        });
        T.as_ref()
    }
}

impl BaseSinkImpl for MjpegHttpSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let mut s = self.settings.lock().unwrap().clone();
        if s.auth.is_none() {
            // gst-launch-1.0 logs its command line at debug level: the environment keeps
            // the credentials out of it.
            if let Some(a) = std::env::var(AUTH_ENV).ok().filter(|a| !a.is_empty()) {
                s.auth = Some(Auth::new(&a));
            }
        }
        let ip: IpAddr = s.address.parse().map_err(|_| {
            gst::error_msg!(
                gst::ResourceError::Settings,
                ["Not an IP address to listen on: {:?}", s.address]
            )
        })?;
        let addr = SocketAddr::new(ip, s.port as u16);
        let config = Config {
            addr,
            auth: s.auth.clone(),
            max_clients: s.max_clients as usize,
            timeout: Duration::from_secs(s.timeout as u64),
            title: s.title.clone(),
        };
        let weak = self.obj().downgrade();
        let server = Server::start(config, move |ev| {
            if let Some(el) = weak.upgrade() {
                el.imp().post_event(ev);
            }
        })
        .map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenReadWrite,
                ["Cannot listen on {addr}: {e}"]
            )
        })?;
        gst::info!(
            CAT,
            imp = self,
            "serving on http://{}/ (stream.mjpeg, snapshot.jpg){}",
            server.local_addr(),
            if s.auth.is_some() { ", Basic auth" } else { "" }
        );
        *self.server.lock().unwrap() = Some(server);
        self.obj().notify("bound-port");
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(server) = self.server.lock().unwrap().take() {
            server.stop();
            gst::info!(CAT, imp = self, "stopped serving");
        }
        Ok(())
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let map = buffer.map_readable().map_err(|_| {
            gst::element_imp_error!(self, gst::CoreError::Failed, ["Cannot read a frame"]);
            gst::FlowError::Error
        })?;
        // One copy per frame, shared by every viewer.
        let data = bytes::Bytes::copy_from_slice(map.as_slice());
        if let Some(server) = self.server.lock().unwrap().as_ref() {
            server.publish(data);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

impl MjpegHttpSink {
    fn post_event(&self, ev: Event) {
        let s = match ev {
            Event::Connected { peer, clients } => {
                gst::info!(CAT, imp = self, "viewer {peer} connected ({clients} now)");
                gst::Structure::builder("mjpeghttpsink-client")
                    .field("event", "connected")
                    .field("address", peer.to_string())
                    .field("clients", clients as u32)
                    .build()
            }
            Event::Left {
                peer,
                clients,
                sent,
                dropped,
                reason,
            } => {
                gst::info!(
                    CAT,
                    imp = self,
                    "viewer {peer} left ({reason}; {sent} frames sent, {dropped} skipped; {clients} now)"
                );
                gst::Structure::builder("mjpeghttpsink-client")
                    .field("event", "left")
                    .field("address", peer.to_string())
                    .field("clients", clients as u32)
                    .field("frames-sent", sent)
                    .field("frames-dropped", dropped)
                    .field("reason", reason)
                    .build()
            }
        };
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }

    fn stats(&self) -> gst::Structure {
        let server = self.server.lock().unwrap();
        let (clients, frames_in) = server
            .as_ref()
            .map(|s| (s.clients(), s.frames_in()))
            .unwrap_or_default();
        let list: Vec<glib::SendValue> = clients
            .iter()
            .map(|c| {
                gst::Structure::builder("client")
                    .field("address", &c.peer)
                    .field("frames-sent", c.sent)
                    .field("frames-dropped", c.dropped)
                    .field("connected-ms", c.connected_ms)
                    .build()
                    .to_send_value()
            })
            .collect();
        gst::Structure::builder("mjpeghttpsink-stats")
            .field("clients", clients.len() as u32)
            .field("frames-in", frames_in)
            .field("viewers", gst::Array::from_values(list))
            .build()
    }
}
