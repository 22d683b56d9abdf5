//! `cam`: the commands users run against a camera, built on `camsrc`.
//!
//! ```text
//! cam probe [--uri URI] [--timeout S]            codec, resolution, fps, bitrate, audio; exit 0/1
//! cam view  [--uri URI]                          live video (and audio) in a window
//! cam clip  [--uri URI] [--seconds N] [--output FILE.mkv|FILE.mp4]
//! cam record [--uri URI] [--location DIR] [--max-size-time 60s] [--max-bytes 20GB]
//!            [--max-age 7d] [--max-files N] [--format mp4|mkv] [--seconds N]
//!                                                ring recording until Ctrl-C (or N s)
//! cam serve [--uri URI] [--web-port 8080] [--bind 0.0.0.0] [--quality 80]
//!                                                MJPEG to browsers (CAM_WEB_AUTH=user:pass)
//! cam restream [--uri URI] [--port 8554] [--bind 127.0.0.1] [--name cam]
//!                                                RTSP re-stream (CAM_RTSP_AUTH=user:pass)
//! cam demo  [--seconds N] [--output FILE]        the README's main job
//! ```
//!
//! The camera comes from `--uri` or `CAM_URI` (`rtsp://user@ip:554/stream1`,
//! `kasa://user@ip`, `tutk://user@UID`); the password from `CAM_PASSWORD` (keep it out
//! of the command line and shell history). `--sim` (the default when no camera is
//! given) starts the built-in simulated Tapo camera on loopback.

use gst::prelude::*;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: cam scan [--timeout S] [--subnet A.B.C.D/N] [--json|--config] (cam scan --help)
       cam probe|view|clip|record|serve|restream|demo [--uri URI | --sim] [--seconds N] [--output FILE.mkv|.mp4] [--timeout S] [--stall-timeout S]
  serve:  [--web-port 8080] [--bind 0.0.0.0] [--quality 80] (viewer login: CAM_WEB_AUTH=user:pass); until Ctrl-C, or --seconds N
  restream: [--port 8554] [--bind 127.0.0.1] [--name cam]: rtsp://HOST:PORT/NAME for any RTSP client, from one camera
          session (digest login: CAM_RTSP_AUTH=user:pass; without it only on loopback); until Ctrl-C, or --seconds N
  record: [--location DIR] [--camera-name NAME] [--max-size-time 60s] [--max-bytes 20GB] [--max-age 7d] [--max-files N] [--format mp4|mkv]
          (or CAM_RECORD_DIR, CAM_MAX_SIZE_TIME, CAM_MAX_BYTES, CAM_MAX_AGE, CAM_FORMAT); until Ctrl-C, or --seconds N
Camera: --uri or CAM_URI (rtsp://user@ip:554/stream1, kasa://user@ip, tutk://user@UID);
password: CAM_PASSWORD. Without a camera, --sim: the built-in simulated Tapo camera.";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cam: {e}");
            1
        }
    };
    std::process::exit(code);
}

struct Opts {
    cmd: String,
    uri: Option<String>,
    sim: bool,
    seconds: u64,
    output: Option<String>,
    timeout: u64,
    stall_timeout: u32,
    /// `cam record`: ringrecorder properties by name, from flags or environment.
    record: Vec<(&'static str, String)>,
    seconds_given: bool,
    web_port: u32,
    port_given: bool,
    bind: Option<String>,
    quality: i32,
    name: String,
}

/// `cam record` settings from the environment, as ringrecorder properties.
const RECORD_ENV: [(&str, &str); 5] = [
    ("CAM_RECORD_DIR", "location"),
    ("CAM_MAX_SIZE_TIME", "max-size-time"),
    ("CAM_MAX_BYTES", "max-bytes"),
    ("CAM_MAX_AGE", "max-age"),
    ("CAM_FORMAT", "format"),
];
const RECORD_FLAGS: [&str; 7] = [
    "--location",
    "--camera-name",
    "--max-size-time",
    "--max-bytes",
    "--max-age",
    "--max-files",
    "--format",
];

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut it = args.iter();
    let cmd = it.next().ok_or(USAGE)?.clone();
    let mut o = Opts {
        cmd,
        uri: std::env::var("CAM_URI").ok().filter(|u| !u.is_empty()),
        sim: false,
        seconds: 10,
        output: None,
        timeout: 15,
        stall_timeout: 10,
        record: Vec::new(),
        seconds_given: false,
        web_port: 8080,
        port_given: false,
        bind: None,
        quality: 80,
        name: "cam".into(),
    };
    for (var, prop) in RECORD_ENV {
        if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
            o.record.push((prop, v));
        }
    }
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--uri" => o.uri = Some(val()?),
            "--sim" => o.sim = true,
            "--seconds" => {
                o.seconds = val()?.parse().map_err(|_| "--seconds N")?;
                o.seconds_given = true;
            }
            "--web-port" | "--port" => {
                o.web_port = val()?.parse().map_err(|_| "--web-port PORT")?;
                o.port_given = true;
            }
            "--bind" => o.bind = Some(val()?),
            "--name" => o.name = val()?,
            "--quality" => o.quality = val()?.parse().map_err(|_| "--quality 1..100")?,
            "--web" => {}
            "--location" | "--camera-name" | "--max-size-time" | "--max-bytes" | "--max-age"
            | "--max-files" | "--format" => {
                let prop = RECORD_FLAGS
                    .iter()
                    .find(|p| **p == a.as_str())
                    .map(|p| &p[2..])
                    .unwrap_or("location");
                let v = val()?;
                o.record.retain(|(p, _)| *p != prop);
                o.record.push((prop, v));
            }
            "--output" => o.output = Some(val()?),
            "--timeout" => o.timeout = val()?.parse().map_err(|_| "--timeout S")?,
            "--stall-timeout" => {
                o.stall_timeout = val()?.parse().map_err(|_| "--stall-timeout S")?
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if o.sim {
        o.uri = None;
    }
    Ok(o)
}

/// The camera to use: the user's, or the simulated Tapo camera (the `tapo-sim` program
/// beside this one, as a process of its own) kept alive by the guard.
fn camera(o: &Opts) -> Result<(String, Option<sim_process::TapoProcess>), String> {
    if let Some(u) = &o.uri {
        return Ok((u.clone(), None));
    }
    println!("cam: no camera given (--uri or CAM_URI): starting the simulated Tapo camera");
    let password = "sim-secret";
    let sim = sim_process::TapoProcess::spawn(
        &sim_process::beside_current_exe()?,
        password,
        &["--pattern", "pattern=smpte"],
    )?;
    let uri = format!("rtsp://admin@127.0.0.1:{}/stream1", sim.port);
    std::env::set_var("CAM_PASSWORD", password);
    println!("cam: simulated camera at {uri} (1920x1080 H.264 + PCMA, 15 fps)");
    Ok((uri, Some(sim)))
}

fn camsrc(uri: &str, o: &Opts) -> Result<gst::Element, String> {
    let src = gst::ElementFactory::make("camsrc")
        .name("cam")
        .property("uri", uri)
        .property("stall-timeout", o.stall_timeout)
        .build()
        .map_err(|e| e.to_string())?;
    if let Ok(p) = std::env::var("CAM_PASSWORD") {
        src.set_property("password", p);
    }
    Ok(src)
}

fn run(args: &[String]) -> Result<i32, String> {
    // Finding cameras needs no GStreamer, and has arguments of its own.
    if args.first().map(String::as_str) == Some("scan") {
        return Ok(cam_discovery::main("cam", &args[1..]));
    }
    let o = parse(args)?;
    gst::init().map_err(|e| e.to_string())?;
    gstcamsrc::plugin_register_static().map_err(|e| e.to_string())?;
    gstkasasrc::plugin_register_static().map_err(|e| e.to_string())?;
    gstringrec::plugin_register_static().map_err(|e| e.to_string())?;
    gstmjpeghttp::plugin_register_static().map_err(|e| e.to_string())?;
    gsttutksrc::plugin_register_static().map_err(|e| e.to_string())?;
    match o.cmd.as_str() {
        "probe" => {
            let (uri, _sim) = camera(&o)?;
            probe(&uri, &o)
        }
        "view" => {
            if !has_display() {
                eprintln!("cam view: no display (DISPLAY/WAYLAND_DISPLAY unset). On a headless machine use `cam clip` to save a file, or serve the camera to a browser.");
                return Ok(2);
            }
            let (uri, _sim) = camera(&o)?;
            view(&uri, &o)
        }
        "clip" => {
            let (uri, _sim) = camera(&o)?;
            let out = o.output.clone().unwrap_or_else(|| "clip.mkv".into());
            clip(&uri, &o, &out, None)
        }
        "record" => {
            let (uri, _sim) = camera(&o)?;
            record(&uri, &o)
        }
        "serve" => {
            let (uri, _sim) = camera(&o)?;
            serve(&uri, &o)
        }
        "restream" => {
            let (uri, _sim) = camera(&o)?;
            restream_camera(&uri, &o)
        }
        "demo" => demo(&o),
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    }
}

fn has_display() -> bool {
    std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

/// Run `pipeline` until EOS, an error, or `until` says stop (then EOS is sent).
fn drive(
    pipeline: &gst::Pipeline,
    mut tick: impl FnMut(&gst::Pipeline) -> bool,
) -> Result<(), String> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("cannot start the pipeline: {e}"))?;
    let bus = pipeline.bus().unwrap();
    let mut eos_sent: Option<Instant> = None;
    let result = loop {
        match eos_sent {
            None if !tick(pipeline) => {
                pipeline.send_event(gst::event::Eos::new());
                eos_sent = Some(Instant::now());
            }
            // Nothing linked (the camera never answered): no EOS will come back.
            Some(t) if t.elapsed() > Duration::from_secs(2) => break Ok(()),
            _ => {}
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(format!(
                    "{}{}",
                    e.error(),
                    e.debug().map(|d| format!(" ({d})")).unwrap_or_default()
                ))
            }
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure() {
                    match s.name().as_str() {
                        "camsrc-offline" => println!(
                            "cam: camera offline: {}",
                            s.get::<&str>("reason").unwrap_or("?")
                        ),
                        "camsrc-online" if s.get::<bool>("restart").unwrap_or(false) => println!(
                            "cam: camera back after {} ms",
                            s.get::<u64>("offline-for-ms").unwrap_or(0)
                        ),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn probe(uri: &str, o: &Opts) -> Result<i32, String> {
    let pipeline = gst::Pipeline::new();
    let src = camsrc(uri, o)?;
    pipeline.add(&src).map_err(|e| e.to_string())?;
    let caps: std::sync::Arc<std::sync::Mutex<Vec<(String, gst::Caps)>>> = Default::default();
    let c2 = caps.clone();
    let pl = pipeline.downgrade();
    src.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pl.upgrade() else { return };
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .build()
            .unwrap();
        pipeline.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        let _ = pad.link(&sink.static_pad("sink").unwrap());
        if let Some(c) = pad.current_caps() {
            c2.lock().unwrap().push((pad.name().to_string(), c));
        }
    });
    let started = Instant::now();
    let deadline = started + Duration::from_secs(o.timeout);
    let mut first_frame = None;
    let result = drive(&pipeline, |_| {
        let st = src.property::<gst::Structure>("stats");
        if first_frame.is_none() && st.get::<u64>("video-frames").unwrap_or(0) > 0 {
            first_frame = Some(started.elapsed());
        }
        // Measure fps and bitrate over 3 s of video.
        let measured = first_frame.is_some_and(|t| started.elapsed() > t + Duration::from_secs(3));
        !measured && Instant::now() < deadline
    });
    let stats = src.property::<gst::Structure>("stats");
    if let Err(e) = result {
        println!("probe: FAILED: {e}");
        return Ok(1);
    }
    let Some(ff) = first_frame else {
        println!(
            "probe: FAILED: no video within {} s ({})",
            o.timeout,
            stats.get::<&str>("last-error").unwrap_or("")
        );
        return Ok(1);
    };
    let caps = caps.lock().unwrap();
    let video = caps.iter().find(|(n, _)| n == "video").map(|(_, c)| c);
    let audio = caps.iter().find(|(n, _)| n == "audio").map(|(_, c)| c);
    let vs = video.and_then(|c| c.structure(0));
    let codec = vs
        .map(|s| match s.name().as_str() {
            "video/x-h264" => format!("H.264 {}", s.get::<&str>("profile").unwrap_or("")),
            "video/x-h265" => "H.265".to_string(),
            n => n.to_string(),
        })
        .unwrap_or_else(|| "none".into());
    let (w, h) = vs
        .map(|s| {
            (
                s.get::<i32>("width").unwrap_or(0),
                s.get::<i32>("height").unwrap_or(0),
            )
        })
        .unwrap_or((0, 0));
    let audio = audio
        .and_then(|c| c.structure(0))
        .map(|s| {
            format!(
                "{} {} Hz",
                match s.name().as_str() {
                    "audio/x-alaw" => "G.711 A-law",
                    "audio/x-mulaw" => "G.711 mu-law",
                    n => n,
                },
                s.get::<i32>("rate").unwrap_or(0)
            )
        })
        .unwrap_or_else(|| "none".into());
    println!(
        "probe: camera   {}",
        src.property::<Option<String>>("uri").unwrap_or_default()
    );
    println!("probe: codec    {}", codec.trim());
    println!("probe: size     {w}x{h}");
    println!(
        "probe: fps      {:.1}",
        stats.get::<f64>("fps").unwrap_or(0.0)
    );
    println!(
        "probe: bitrate  {:.0} kbit/s",
        stats.get::<u64>("bitrate").unwrap_or(0) as f64 / 1000.0
    );
    println!("probe: audio    {audio}");
    println!("probe: first frame after {} ms", ff.as_millis());
    Ok(0)
}

fn view(uri: &str, o: &Opts) -> Result<i32, String> {
    let pipeline = gst::Pipeline::new();
    let src = camsrc(uri, o)?;
    pipeline.add(&src).map_err(|e| e.to_string())?;
    let pl = pipeline.downgrade();
    src.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pl.upgrade() else { return };
        let desc = if pad.name() == "video" {
            "queue ! decodebin ! videoconvert ! autovideosink"
        } else {
            "queue ! decodebin ! audioconvert ! audioresample ! autoaudiosink"
        };
        let bin = gst::parse::bin_from_description(desc, true).unwrap();
        pipeline.add(&bin).unwrap();
        bin.sync_state_with_parent().unwrap();
        let _ = pad.link(&bin.static_pad("sink").unwrap());
    });
    println!(
        "cam: watching {} (close the window or Ctrl-C to stop)",
        src.property::<Option<String>>("uri").unwrap_or_default()
    );
    drive(&pipeline, |_| true)?;
    Ok(0)
}

/// Record `seconds` of the camera's own H.264 (never re-encoded) and its audio, through
/// ringrecorder: the project's one crash-safe writer (fragmented MP4 with the audio as
/// AAC, or Matroska with it as sent), so a clip cut short by a crash still plays. The
/// recorder writes into a folder beside `out`; its segment becomes `out`. A camera that
/// changes its settings mid-clip starts a new segment: it becomes `out-2.EXT`, and so on.
fn clip(
    uri: &str,
    o: &Opts,
    out: &str,
    mut during: Option<&mut dyn FnMut(Duration)>,
) -> Result<i32, String> {
    let out_path = std::path::Path::new(out);
    let format = match out_path.extension().and_then(|e| e.to_str()) {
        Some("mp4" | "m4v") => "mp4",
        Some("mkv") => "mkv",
        _ => return Err(format!("--output {out}: a .mkv or .mp4 file")),
    };
    let dir = out_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let work = dir.join(format!(".cam-clip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let pipeline = gst::Pipeline::new();
    let src = camsrc(uri, o)?;
    let rec = gst::ElementFactory::make("ringrecorder")
        .property("location", work.to_string_lossy().as_ref())
        .property("camera-name", "clip")
        .property("format", format)
        // One segment for the whole clip.
        .property("max-size-time", format!("{}s", o.seconds + 3600))
        .build()
        .map_err(|e| format!("ringrecorder: {e}"))?;
    pipeline.add_many([&src, &rec]).map_err(|e| e.to_string())?;
    let r = rec.clone();
    let pl = pipeline.downgrade();
    src.connect_pad_added(move |_, pad| {
        let target = match pad.name().as_str() {
            "video" => r.static_pad("video"),
            "audio" => r.request_pad_simple("audio"),
            _ => None,
        };
        let Some(t) = target else { return };
        if let Err(e) = pad.link(&t) {
            // Stop at once, saying which stream did not fit: never a recording that
            // fails later with a bare "not-negotiated".
            let caps = pad
                .current_caps()
                .or_else(|| pad.allowed_caps())
                .map(|c| c.to_string())
                .unwrap_or_default();
            if let Some(p) = pl.upgrade() {
                let _ = p.post_message(
                    gst::message::Error::builder(
                        gst::CoreError::Negotiation,
                        &format!(
                            "cannot record the camera's {} stream ({caps}) as {format}: {e:?}",
                            pad.name()
                        ),
                    )
                    .build(),
                );
            }
        }
    });
    let started = Instant::now();
    let mut first = None;
    let deadline = Duration::from_secs(o.timeout);
    let s = src.clone();
    let result = drive(&pipeline, |_| {
        let frames = s
            .property::<gst::Structure>("stats")
            .get::<u64>("video-frames")
            .unwrap_or(0);
        if first.is_none() && frames > 0 {
            first = Some(Instant::now());
        }
        match first {
            None => started.elapsed() < deadline + Duration::from_secs(o.seconds),
            Some(t) => {
                if let Some(f) = during.as_mut() {
                    f(t.elapsed());
                }
                t.elapsed() < Duration::from_secs(o.seconds)
            }
        }
    });
    let stats = src.property::<gst::Structure>("stats");
    let segments = gstringrec::store::scan(&work, "clip");
    let mut made = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        let dest = if i == 0 {
            out_path.to_path_buf()
        } else {
            let stem = out_path.file_stem().unwrap_or_default().to_string_lossy();
            out_path.with_file_name(format!("{stem}-{}.{format}", i + 1))
        };
        std::fs::rename(&seg.path, &dest)
            .map_err(|e| format!("cannot move the clip to {}: {e}", dest.display()))?;
        made.push(dest);
    }
    let _ = std::fs::remove_dir_all(&work);
    result?;
    if first.is_none() || made.is_empty() {
        println!("cam: no video from the camera; nothing recorded");
        return Ok(1);
    }
    println!(
        "cam: recorded {out} ({} bytes, {} s of {}; restarts {})",
        std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
        o.seconds,
        if format == "mp4" {
            "H.264 + AAC in fragmented MP4"
        } else {
            "H.264 + the camera's audio in Matroska"
        },
        stats.get::<u32>("restarts").unwrap_or(0)
    );
    if made.len() > 1 {
        println!(
            "cam: the camera changed its settings during the clip: also {}",
            made[1..]
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    print_stats(&stats);
    Ok(0)
}

fn print_stats(s: &gst::Structure) {
    println!(
        "cam: stats: state={} fps={:.1} bitrate={}kbit/s video-frames={} audio-buffers={} restarts={} last-error={:?}",
        s.get::<&str>("state").unwrap_or("?"),
        s.get::<f64>("fps").unwrap_or(0.0),
        s.get::<u64>("bitrate").unwrap_or(0) / 1000,
        s.get::<u64>("video-frames").unwrap_or(0),
        s.get::<u64>("audio-buffers").unwrap_or(0),
        s.get::<u32>("restarts").unwrap_or(0),
        s.get::<&str>("last-error").unwrap_or(""),
    );
}

/// The main job: probe, then watch (display) or record with a camera reboot in the
/// middle (headless, simulated camera), showing the recording survives it.
fn demo(o: &Opts) -> Result<i32, String> {
    let (uri, mut sim) = camera(o)?;
    let code = probe(&uri, o)?;
    if code != 0 {
        return Ok(code);
    }
    if has_display() && o.output.is_none() {
        return view(&uri, o);
    }
    let out = o.output.clone().unwrap_or_else(|| "cam-clip.mkv".into());
    let mut rebooted = false;
    let half = Duration::from_secs(o.seconds / 2);
    let mut reboot = |t: Duration| {
        if let (Some(s), false) = (sim.as_mut(), rebooted) {
            if t >= half {
                rebooted = true;
                println!("cam: rebooting the simulated camera (down 2 s) while recording");
                s.command("restart 2000");
            }
        }
    };
    let o2 = Opts {
        stall_timeout: 3,
        cmd: o.cmd.clone(),
        uri: o.uri.clone(),
        output: Some(out.clone()),
        record: Vec::new(),
        bind: o.bind.clone(),
        name: o.name.clone(),
        ..*o
    };
    clip(&uri, &o2, &out, Some(&mut reboot))
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Ctrl-C and SIGTERM end a long-running command cleanly (EOS, files finished).
fn stop_on_signals() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_stop_signal as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_stop_signal as *const () as libc::sighandler_t,
        );
    }
}

/// Ring recording: `camsrc ! ringrecorder` until Ctrl-C/SIGTERM (then EOS, so the
/// segment in progress is finished) or `--seconds`.
fn record(uri: &str, o: &Opts) -> Result<i32, String> {
    let pipeline = gst::Pipeline::new();
    let src = camsrc(uri, o)?;
    let rec = gst::ElementFactory::make("ringrecorder")
        .name("rec")
        .build()
        .map_err(|e| e.to_string())?;
    if !o.record.iter().any(|(p, _)| *p == "location") {
        rec.set_property("location", "recordings/camera");
    }
    for (prop, value) in &o.record {
        let bad = |e: String| format!("--{prop} {value:?}: {e}");
        match *prop {
            "max-files" => {
                let n: u32 = value.parse().map_err(|_| bad("a number of files".into()))?;
                rec.set_property(prop, n);
                continue;
            }
            "max-size-time" | "max-age" => {
                gstringrec::store::parse_duration(value).map_err(bad)?;
            }
            "max-bytes" => {
                gstringrec::store::parse_bytes(value).map_err(bad)?;
            }
            "format" if value != "mp4" && value != "mkv" => {
                return Err(bad("mp4 or mkv".into()));
            }
            _ => {}
        }
        rec.set_property(prop, value);
    }
    pipeline.add_many([&src, &rec]).map_err(|e| e.to_string())?;
    let r = rec.clone();
    src.connect_pad_added(move |_, pad| {
        let target = match pad.name().as_str() {
            "video" => r.static_pad("video"),
            "audio" => r.request_pad_simple("audio"),
            _ => None,
        };
        if let Some(t) = target {
            if pad.link(&t).is_err() {
                eprintln!("cam: cannot record the {} stream", pad.name());
            }
        }
    });
    stop_on_signals();
    println!(
        "cam: recording into {} ({} segments of {}, max-bytes {}, max-age {}); Ctrl-C stops",
        rec.property::<Option<String>>("location")
            .unwrap_or_default(),
        rec.property::<String>("format"),
        rec.property::<String>("max-size-time"),
        rec.property::<String>("max-bytes"),
        rec.property::<String>("max-age"),
    );
    let started = Instant::now();
    let limit = o.seconds_given.then(|| Duration::from_secs(o.seconds));
    let bus = pipeline.bus().unwrap();
    bus.set_sync_handler(|_, msg| {
        if let gst::MessageView::Element(e) = msg.view() {
            if let Some(s) = e.structure() {
                match s.name().as_str() {
                    "ringrecorder-segment" => println!(
                        "cam: segment {} ({:.1} s, {} bytes, {} frames)",
                        s.get::<&str>("path").unwrap_or("?"),
                        s.get::<f64>("duration").unwrap_or(0.0),
                        s.get::<u64>("bytes").unwrap_or(0),
                        s.get::<u64>("frames").unwrap_or(0)
                    ),
                    "ringrecorder-error" => println!(
                        "cam: cannot write {}: {}",
                        s.get::<&str>("path").unwrap_or("?"),
                        s.get::<&str>("error").unwrap_or("?")
                    ),
                    "ringrecorder-resumed" => println!("cam: writing again"),
                    _ => {}
                }
            }
        }
        if let gst::MessageView::Warning(w) = msg.view() {
            println!("cam: warning: {}", w.error());
        }
        gst::BusSyncReply::Pass
    });
    drive(&pipeline, |_| {
        !STOP.load(std::sync::atomic::Ordering::SeqCst)
            && limit.is_none_or(|l| started.elapsed() < l)
    })?;
    print_stats(&src.property::<gst::Structure>("stats"));
    let stats = rec.property::<gst::Structure>("stats");
    println!(
        "cam: recorder: segments={} bytes={} frames-recorded={} frames-dropped={} errors={}",
        stats.get::<u64>("segments").unwrap_or(0),
        stats.get::<u64>("bytes").unwrap_or(0),
        stats.get::<u64>("frames-recorded").unwrap_or(0),
        stats.get::<u64>("frames-dropped").unwrap_or(0),
        stats.get::<u64>("errors").unwrap_or(0),
    );
    Ok(0)
}

/// MJPEG over HTTP: decode once, encode once, serve every viewer the latest frame.
fn serve(uri: &str, o: &Opts) -> Result<i32, String> {
    let pipeline = gst::Pipeline::new();
    let src = camsrc(uri, o)?;
    let rest = gst::parse::bin_from_description(
        &format!(
            "videoconvert ! jpegenc quality={} ! mjpeghttpsink name=http port={} address={}",
            o.quality,
            o.web_port,
            o.bind.as_deref().unwrap_or("0.0.0.0")
        ),
        true,
    )
    .map_err(|e| e.to_string())?;
    let http = rest.by_name("http").ok_or("no mjpeghttpsink")?;
    if let Some(a) = std::env::var("CAM_WEB_AUTH").ok().filter(|a| !a.is_empty()) {
        http.set_property("auth", a);
    }
    // decodebin's pads come later: link it to the encoding branch when they do.
    let decode = gst::ElementFactory::make("decodebin")
        .build()
        .map_err(|e| e.to_string())?;
    pipeline
        .add_many([&src, &decode, rest.upcast_ref()])
        .map_err(|e| e.to_string())?;
    let encode_pad = rest.static_pad("sink").ok_or("no sink pad")?;
    decode.connect_pad_added(move |_, pad| {
        if !encode_pad.is_linked() {
            if let Err(e) = pad.link(&encode_pad) {
                eprintln!("cam: cannot link the decoded video: {e:?}");
            }
        }
    });
    let sink_pad = decode.static_pad("sink").unwrap();
    // The audio is not served; it is taken so that the camera's session stays whole
    // (a session without its audio track upsets some RTSP servers).
    let audio_sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
        .map_err(|e| e.to_string())?;
    pipeline.add(&audio_sink).map_err(|e| e.to_string())?;
    let audio_pad = audio_sink.static_pad("sink").unwrap();
    src.connect_pad_added(move |_, pad| {
        let target = match pad.name().as_str() {
            "video" => &sink_pad,
            "audio" => &audio_pad,
            _ => return,
        };
        if !target.is_linked() {
            if let Err(e) = pad.link(target) {
                eprintln!("cam: cannot link the camera's {} stream: {e:?}", pad.name());
            }
        }
    });
    stop_on_signals();
    let bus = pipeline.bus().unwrap();
    bus.set_sync_handler(|_, msg| {
        if let gst::MessageView::Element(e) = msg.view() {
            if let Some(s) = e.structure().filter(|s| s.name() == "mjpeghttpsink-client") {
                println!(
                    "cam: viewer {} {} ({} watching)",
                    s.get::<&str>("address").unwrap_or("?"),
                    s.get::<&str>("event").unwrap_or("?"),
                    s.get::<u32>("clients").unwrap_or(0)
                );
            }
        }
        gst::BusSyncReply::Pass
    });
    let started = Instant::now();
    let limit = o.seconds_given.then(|| Duration::from_secs(o.seconds));
    let mut announced = false;
    let h = http.clone();
    let auth = std::env::var("CAM_WEB_AUTH").is_ok_and(|a| !a.is_empty());
    let bind = o.bind.clone().unwrap_or_else(|| "0.0.0.0".into());
    drive(&pipeline, |_| {
        let port = h.property::<u32>("bound-port");
        if !announced && port != 0 {
            announced = true;
            let host = if bind == "0.0.0.0" {
                "<this machine>".to_string()
            } else {
                bind.clone()
            };
            println!(
                "cam: serving http://{host}:{port}/ (stream: /stream.mjpeg, latest frame: /snapshot.jpg){}; Ctrl-C stops",
                if auth { ", viewers log in" } else { "" }
            );
            if bind == "0.0.0.0" && !auth {
                println!("cam: note: anyone who can reach this machine can watch; set CAM_WEB_AUTH=user:pass or --bind 127.0.0.1");
            }
        }
        !STOP.load(std::sync::atomic::Ordering::SeqCst)
            && limit.is_none_or(|l| started.elapsed() < l)
    })?;
    let stats = http.property::<gst::Structure>("stats");
    println!(
        "cam: served {} frames; {} viewers at the end",
        stats.get::<u64>("frames-in").unwrap_or(0),
        stats.get::<u32>("clients").unwrap_or(0)
    );
    Ok(0)
}

/// `cam restream`: the camera to every RTSP client through one camera session: camsrc's
/// video and audio into tees, and restream's feed from them (the same parts as homecam's
/// `[rtsp]`).
fn restream_camera(uri: &str, o: &Opts) -> Result<i32, String> {
    let auth = std::env::var("CAM_RTSP_AUTH")
        .ok()
        .filter(|a| !a.is_empty());
    let user = match &auth {
        Some(a) => {
            let (name, password) = a
                .split_once(':')
                .filter(|(u, p)| !u.is_empty() && !p.is_empty())
                .ok_or("CAM_RTSP_AUTH must be user:password")?;
            Some(restream::User {
                name: name.into(),
                password: password.into(),
            })
        }
        None => None,
    };
    let bind = o.bind.clone().unwrap_or_else(|| {
        if user.is_some() {
            "0.0.0.0"
        } else {
            "127.0.0.1"
        }
        .to_string()
    });
    let loopback = bind
        .parse::<std::net::IpAddr>()
        .map(|a| a.is_loopback())
        .unwrap_or(bind == "localhost");
    if user.is_none() && !loopback {
        return Err(format!(
            "restream: --bind {bind} without a login would let anyone on the network watch: set CAM_RTSP_AUTH=user:pass"
        ));
    }
    let name = &o.name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "restream: --name {name:?}: letters, digits, - and _ only"
        ));
    }
    let pipeline = gst::Pipeline::new();
    let src = camsrc(uri, o)?;
    let vtee = gst::ElementFactory::make("tee")
        .property("allow-not-linked", true)
        .build()
        .map_err(|e| e.to_string())?;
    pipeline
        .add_many([&src, &vtee])
        .map_err(|e| e.to_string())?;
    let feed = restream::Feed::new(name);
    feed.attach_video(&pipeline, &vtee)?;
    let weak = pipeline.downgrade();
    let f2 = feed.clone();
    src.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let linked = match pad.name().as_str() {
            "video" => vtee
                .static_pad("sink")
                .ok_or_else(|| "tee".to_string())
                .and_then(|p| pad.link(&p).map(|_| ()).map_err(|e| format!("{e:?}"))),
            // The audio as the camera sent it, through a tee of its own.
            "audio" => (|| {
                let atee = gst::ElementFactory::make("tee")
                    .property("allow-not-linked", true)
                    .build()
                    .map_err(|e| e.to_string())?;
                pipeline.add(&atee).map_err(|e| e.to_string())?;
                f2.attach_audio(&pipeline, &atee)?;
                atee.sync_state_with_parent().map_err(|e| e.to_string())?;
                let sink = atee.static_pad("sink").ok_or("tee")?;
                pad.link(&sink).map(|_| ()).map_err(|e| format!("{e:?}"))
            })(),
            _ => return,
        };
        if let Err(e) = linked {
            eprintln!("cam: cannot link the camera's {} stream: {e}", pad.name());
        }
    });
    let port = if o.port_given { o.web_port } else { 8554 };
    let port = u16::try_from(port).map_err(|_| format!("--port {port}: 0..65535"))?;
    let mut server = restream::RtspServer::start(
        &restream::RtspConfig {
            address: bind.clone(),
            port,
            auth: user.is_some(),
            users: user.into_iter().collect(),
            htdigest: None,
            max_sessions: 64,
            session_timeout: 60,
        },
        &[(name.clone(), feed.clone())],
    )?;
    let host = if bind == "0.0.0.0" {
        "<this machine>".to_string()
    } else {
        bind.clone()
    };
    println!(
        "cam: re-streaming rtsp://{host}:{}/{name}{}; Ctrl-C stops",
        server.port(),
        if auth.is_some() {
            " (digest login)"
        } else {
            ""
        }
    );
    stop_on_signals();
    let started = Instant::now();
    let limit = o.seconds_given.then(|| Duration::from_secs(o.seconds));
    let mut shown = 0;
    let result = drive(&pipeline, |_| {
        let n = feed
            .stats
            .clients
            .load(std::sync::atomic::Ordering::Relaxed);
        if n != shown {
            shown = n;
            println!("cam: {n} RTSP client(s)");
        }
        !STOP.load(std::sync::atomic::Ordering::SeqCst)
            && limit.is_none_or(|l| started.elapsed() < l)
    });
    server.stop();
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    println!(
        "cam: {} RTSP client stream(s) served, {} skip(s) of slow clients",
        feed.stats
            .sessions
            .load(std::sync::atomic::Ordering::Relaxed),
        feed.stats.skips.load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(0)
}
