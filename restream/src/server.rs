//! The RTSP server: gst-rtsp-server on a GLib main loop of its own, one mount per camera
//! (`rtsp://HOST:PORT/NAME`), each client with its own small media pipeline fed by the
//! camera's [`Feed`].

use crate::feed::Feed;
use gst::glib;
use gst_rtsp_server::prelude::*;
use gst_rtsp_server::subclass::prelude::ObjectSubclassIsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The realm of the digest authentication (an htdigest file's second field).
pub const REALM: &str = "homecam";

/// A user allowed to watch: the password in clear, from the environment or a file.
#[derive(Clone)]
pub struct User {
    pub name: String,
    pub password: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct RtspConfig {
    /// Address to listen on (`0.0.0.0`, `127.0.0.1`...).
    pub address: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Digest authentication; off only on loopback (checked by the caller's config).
    pub auth: bool,
    pub users: Vec<User>,
    /// An htdigest file (`user:homecam:MD5(user:homecam:password)` lines).
    pub htdigest: Option<PathBuf>,
    /// Sessions at most; more are refused (503).
    pub max_sessions: u32,
    /// Seconds after which a silent session ends.
    pub session_timeout: u32,
}

mod factory {
    use super::*;
    use gst_rtsp_server::subclass::prelude::*;

    #[derive(Default)]
    pub struct Factory {
        pub feed: std::sync::OnceLock<Arc<Feed>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Factory {
        const NAME: &'static str = "RestreamMediaFactory";
        type Type = super::RestreamFactory;
        type ParentType = gst_rtsp_server::RTSPMediaFactory;
    }

    impl ObjectImpl for Factory {}

    impl RTSPMediaFactoryImpl for Factory {
        /// The client's media, built for the caps the camera sends now; none (503) when
        /// the camera has sent nothing within 10 s (this runs on one of the server's
        /// threads, one per session at most).
        fn create_element(&self, _url: &gst_rtsp::RTSPUrl) -> Option<gst::Element> {
            let feed = self.feed.get()?;
            feed.wait_for_video(std::time::Duration::from_secs(10));
            match feed.media_bin() {
                Ok(bin) => Some(bin),
                Err(e) => {
                    gst::warning!(gst::CAT_DEFAULT, "restream: {e}");
                    None
                }
            }
        }
    }
}

glib::wrapper! {
    pub struct RestreamFactory(ObjectSubclass<factory::Factory>)
        @extends gst_rtsp_server::RTSPMediaFactory;
}

impl RestreamFactory {
    fn new(feed: Arc<Feed>, auth: bool) -> RestreamFactory {
        let f: RestreamFactory = glib::Object::new();
        let _ = f.imp().feed.set(feed.clone());
        // One media per client: each starts at a key frame, and a slow one is skipped on
        // its own.
        f.set_shared(false);
        f.set_suspend_mode(gst_rtsp_server::RTSPSuspendMode::None);
        if auth {
            f.add_role_from_structure(
                &gst::Structure::builder("viewer")
                    .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                    .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                    .build(),
            );
        }
        f.connect_media_configure(move |_, media| {
            feed.subscribe(&media.element());
        });
        f
    }
}

/// A running server; stopped at drop.
pub struct RtspServer {
    server: gst_rtsp_server::RTSPServer,
    ctx: glib::MainContext,
    main_loop: glib::MainLoop,
    source: Option<glib::SourceId>,
    thread: Option<std::thread::JoinHandle<()>>,
    port: u16,
}

impl RtspServer {
    /// Listens and serves `feeds` (mount name, feed), each at `/NAME`.
    pub fn start(cfg: &RtspConfig, feeds: &[(String, Arc<Feed>)]) -> Result<RtspServer, String> {
        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address(&cfg.address);
        server.set_service(&cfg.port.to_string());
        // gst-rtsp-server listens with a backlog of 5: a burst of connections (a client
        // that reconnects in a loop, a scan) overflows it and the kernel drops SYNs, which
        // every other new client then pays with a 1 s retransmission.
        server.set_backlog(256);
        if let Some(pool) = server.session_pool() {
            pool.set_max_sessions(cfg.max_sessions);
        }
        // A client's DESCRIBE waits for the camera's next key frame (the SDP needs the
        // stream's parameters): with gst-rtsp-server's default of one thread for all
        // clients, clients joining together would wait for each other's key frame in turn.
        if let Some(pool) = server.thread_pool() {
            pool.set_max_threads(i32::try_from(cfg.max_sessions).unwrap_or(i32::MAX));
        }
        if cfg.auth {
            let auth = gst_rtsp_server::RTSPAuth::new();
            auth.set_supported_methods(gst_rtsp::RTSPAuthMethod::Digest);
            auth.set_realm(Some(REALM));
            let token = gst_rtsp_server::RTSPToken::builder()
                .field(gst_rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
                .build();
            for u in &cfg.users {
                auth.add_digest(&u.name, &u.password, &token);
            }
            if let Some(f) = &cfg.htdigest {
                if !auth.parse_htdigest(f, &token) {
                    return Err(format!("rtsp: cannot read the users file {}", f.display()));
                }
            }
            server.set_auth(Some(&auth));
        }
        let mounts = server
            .mount_points()
            .ok_or("the RTSP server has no mount points")?;
        for (name, feed) in feeds {
            mounts.add_factory(
                &format!("/{name}"),
                RestreamFactory::new(feed.clone(), cfg.auth),
            );
        }
        let timeout = cfg.session_timeout;
        server.connect_client_connected(move |_, client| {
            // Silent sessions end (a UDP client that went away sends nothing more).
            client.connect_new_session(move |_, session| {
                session.set_timeout(timeout);
            });
        });

        let ctx = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let source = ctx
            .with_thread_default(|| server.attach(Some(&ctx)))
            .map_err(|e| e.to_string())?
            .map_err(|e| {
                format!(
                    "rtsp: cannot listen on {}:{}: {e} (is the port in use?)",
                    cfg.address, cfg.port
                )
            })?;
        let port = u16::try_from(server.bound_port()).map_err(|_| "rtsp: no bound port")?;
        // gst-rtsp-server ends expired sessions only when asked.
        if let Some(pool) = server.session_pool() {
            let tick = glib::timeout_source_new(
                Duration::from_secs(1),
                Some("restream-session-cleanup"),
                glib::Priority::DEFAULT,
                move || {
                    pool.cleanup();
                    glib::ControlFlow::Continue
                },
            );
            tick.attach(Some(&ctx));
        }
        let ml = main_loop.clone();
        let c2 = ctx.clone();
        let thread = std::thread::Builder::new()
            .name("rtsp-server".into())
            .spawn(move || {
                c2.with_thread_default(|| ml.run()).ok();
            })
            .map_err(|e| e.to_string())?;
        Ok(RtspServer {
            server,
            ctx,
            main_loop,
            source: Some(source),
            thread: Some(thread),
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sessions open now.
    pub fn sessions(&self) -> u32 {
        self.server
            .session_pool()
            .map(|p| p.n_sessions())
            .unwrap_or(0)
    }

    /// Stops listening and ends every session.
    pub fn stop(&mut self) {
        if let Some(id) = self.source.take() {
            if let Some(src) = self.ctx.find_source_by_id(&id) {
                src.destroy();
            }
        }
        let server = self.server.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        self.ctx.invoke(move || {
            server.client_filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(Duration::from_secs(2));
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.stop();
    }
}
