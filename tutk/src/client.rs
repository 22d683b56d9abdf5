//! One camera's stream with everything around it: the START request, waiting on
//! `DATA_NOREADY`, dropped frames, resuming at a key frame, reconnecting with backoff.
//! Shared by `tutksrc` and `tutk stream`; it blocks, so callers give it its own thread.

use crate::backend::{Backend, Cancel, ConnectRequest, Error, ErrorKind, Mode, Recv, SessionInfo};
use crate::{ffi, payload};
use cam_session::reconnect::{self, Attempt, Policy};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Frames larger than this are refused by the SDK call (it reports them incomplete):
/// a 4K key frame is well under it.
pub const MAX_FRAME: usize = 4 * 1024 * 1024;
/// The frame-info buffer: 16 bytes in the SDK headers, 40 from Wyze firmware.
const FRAME_INFO_MAX: usize = 64;
/// An audio frame: G.711 comes in 20-80 ms parts (160-640 bytes); AAC frames are smaller.
const MAX_AUDIO_FRAME: usize = 64 * 1024;
/// How long to sleep on `AV_ER_DATA_NOREADY` (the SDK samples' value).
const NOREADY_SLEEP: Duration = Duration::from_millis(10);

#[derive(Clone, Debug)]
pub struct StreamOptions {
    pub request: ConnectRequest,
    /// Reconnections before giving up; -1 for ever.
    pub max_reconnects: i32,
    pub reconnect_delay: Duration,
    pub max_reconnect_delay: Duration,
    /// No frame for this long ends the session (the SDK's own remote timeout can take
    /// much longer).
    pub stall_timeout: Duration,
    /// Ask for the camera's audio too (`IOTYPE_USER_IPCAM_AUDIOSTART`).
    pub audio: bool,
}

/// A frame as it arrived.
pub struct Frame<'a> {
    pub data: &'a [u8],
    pub info: ffi::FrameInfo,
    pub index: u32,
    /// The first frame of a session, or the first after dropped frames.
    pub discont: bool,
}

pub enum Event<'a> {
    Online {
        info: &'a SessionInfo,
        restart: bool,
    },
    Offline {
        reason: &'a Error,
        attempt: u32,
        retry_in: Duration,
    },
    Frame(Frame<'a>),
    /// An audio frame (G.711 from most cameras: `info.codec_id` says which).
    Audio(Frame<'a>),
}

/// What the stream's consumer wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// What `tutk stream` prints every 30 s and `tutksrc`'s `stats` holds.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub connected: bool,
    pub frames: u64,
    pub bytes: u64,
    pub fps: f64,
    /// Frames the SDK reported lost or incomplete.
    pub dropped: u64,
    /// Frames skipped after a loss, waiting for the next key frame.
    pub skipped: u64,
    pub last_frame_size: usize,
    pub last_frame_time: Option<SystemTime>,
    pub codec: Option<u16>,
    pub mode: Option<Mode>,
    pub reconnects: u64,
    pub audio_frames: u64,
    pub last_error: String,
    window: Option<(Instant, u64)>,
}

/// A codec id as people name it.
pub fn codec_name(id: u16) -> String {
    match id {
        ffi::CODEC_H264 => "H.264".into(),
        ffi::CODEC_H265 => "H.265".into(),
        ffi::CODEC_MJPEG => "MJPEG".into(),
        ffi::CODEC_MPEG4 => "MPEG-4".into(),
        id => format!("0x{id:02X}"),
    }
}

impl Stats {
    fn count(&mut self, size: usize, codec: u16) {
        let now = Instant::now();
        self.frames += 1;
        self.bytes += size as u64;
        self.last_frame_size = size;
        self.last_frame_time = Some(SystemTime::now());
        self.codec = Some(codec);
        let (start, n) = self.window.get_or_insert((now, self.frames - 1));
        let el = now.duration_since(*start).as_secs_f64();
        if el >= 2.0 {
            self.fps = (self.frames - *n) as f64 / el;
            self.window = Some((now, self.frames));
        }
    }

    /// Seconds since the epoch of the last frame, or 0.
    pub fn last_frame_epoch(&self) -> f64 {
        self.last_frame_time
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }

    /// One line for a log.
    pub fn status_line(&self) -> String {
        format!(
            "status: frames_received={} fps={:.1} dropped_frames={} skipped_frames={} last_frame_size={} last_frame_time={:.3} codec={} mode={} reconnects={}",
            self.frames,
            self.fps,
            self.dropped,
            self.skipped,
            self.last_frame_size,
            self.last_frame_epoch(),
            self.codec.map(codec_name).unwrap_or_else(|| "-".into()),
            self.mode.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
            self.reconnects,
        )
    }
}

/// How one session ended.
enum End {
    Stop,
    /// It had delivered frames (the backoff starts again).
    Lost(Error, bool),
}

/// Stream until `cancel`, `Flow::Stop`, or an error retrying cannot fix (wrong password,
/// unknown device, a refused remote session, too many reconnections).
pub fn stream(
    backend: &dyn Backend,
    opts: &StreamOptions,
    cancel: &Cancel,
    stats: &Mutex<Stats>,
    on: impl FnMut(Event) -> Flow,
) -> Result<(), Error> {
    let mut bufs = Buffers {
        video: vec![0u8; MAX_FRAME],
        audio: vec![0u8; MAX_AUDIO_FRAME],
        info: [0u8; FRAME_INFO_MAX],
    };
    let mut sessions: u64 = 0;
    // An error retrying cannot fix, kept for the caller.
    let mut fatal = None;
    let policy = Policy {
        max_reconnects: opts.max_reconnects,
        delay: opts.reconnect_delay,
        max_delay: opts.max_reconnect_delay,
    };
    // `on` is called from both closures below (online and frames in the attempt, offline
    // in the report); they run one after the other on this thread.
    let on = std::cell::RefCell::new(on);
    let end = reconnect::run(
        &policy,
        cancel,
        |_| {
            let (err, had_frames) = match backend.connect(&opts.request, cancel) {
                Ok(mut session) => {
                    sessions += 1;
                    {
                        let mut s = stats.lock().unwrap();
                        s.connected = true;
                        s.mode = Some(session.info().mode);
                        if sessions > 1 {
                            s.reconnects += 1;
                        }
                    }
                    let online = Event::Online {
                        info: session.info(),
                        restart: sessions > 1,
                    };
                    if (on.borrow_mut())(online) == Flow::Stop {
                        return Attempt::Stop;
                    }
                    let end = run_session(
                        session.as_mut(),
                        opts,
                        cancel,
                        stats,
                        &mut bufs,
                        &mut *on.borrow_mut(),
                    );
                    stats.lock().unwrap().connected = false;
                    match end {
                        End::Stop => return Attempt::Stop,
                        End::Lost(e, had_frames) => (e, had_frames),
                    }
                }
                Err(e) => (e, false),
            };
            match err.kind() {
                ErrorKind::Cancelled => Attempt::Stop,
                ErrorKind::Transient => Attempt::Retry {
                    reason: err,
                    // A session that delivered frames starts the backoff over.
                    progress: had_frames,
                },
                _ => {
                    fatal = Some(err);
                    Attempt::Stop
                }
            }
        },
        |o| {
            stats.lock().unwrap().last_error = o.reason.to_string();
            (on.borrow_mut())(Event::Offline {
                reason: o.reason,
                attempt: o.attempt,
                retry_in: o.retry_in,
            }) == Flow::Continue
        },
    );
    match end {
        reconnect::End::GaveUp { reason, .. } => {
            stats.lock().unwrap().last_error = reason.to_string();
            Err(reason)
        }
        reconnect::End::Stopped => fatal.map_or(Ok(()), Err),
    }
}

struct Buffers {
    video: Vec<u8>,
    audio: Vec<u8>,
    info: [u8; FRAME_INFO_MAX],
}

fn run_session(
    session: &mut dyn crate::Session,
    opts: &StreamOptions,
    cancel: &Cancel,
    stats: &Mutex<Stats>,
    bufs: &mut Buffers,
    on: &mut impl FnMut(Event) -> Flow,
) -> End {
    let start = payload::start_stream(opts.request.channel as u32);
    if let Err(e) = session.send_ioctrl(ffi::IOTYPE_USER_IPCAM_START, &start) {
        return End::Lost(e, false);
    }
    if opts.audio {
        if let Err(e) = session.send_ioctrl(ffi::IOTYPE_USER_IPCAM_AUDIOSTART, &start) {
            return End::Lost(e, false);
        }
    }
    let mut need_key = true;
    let mut discont = true;
    let mut audio_discont = true;
    let mut had_frames = false;
    let mut last = Instant::now();
    loop {
        if cancel.is_cancelled() {
            return End::Stop;
        }
        // Audio first: its parts are small and frequent; a video frame can wait 10 ms.
        let mut audio_ready = false;
        if opts.audio {
            match session.recv_audio(&mut bufs.audio, &mut bufs.info) {
                Recv::Frame { len, info, index } => {
                    audio_ready = true;
                    stats.lock().unwrap().audio_frames += 1;
                    let frame = Frame {
                        data: &bufs.audio[..len],
                        info,
                        index,
                        discont: std::mem::replace(&mut audio_discont, false),
                    };
                    if on(Event::Audio(frame)) == Flow::Stop {
                        return End::Stop;
                    }
                }
                Recv::Dropped(_) => audio_discont = true,
                Recv::Closed(e) => return End::Lost(e, had_frames),
                Recv::NotReady => {}
            }
        }
        match session.recv_frame(&mut bufs.video, &mut bufs.info) {
            Recv::NotReady if audio_ready => {}
            Recv::NotReady => {
                if last.elapsed() > opts.stall_timeout {
                    return End::Lost(
                        Error::Sdk {
                            step: "avRecvFrameData2 (no frame within the stall timeout)",
                            code: ffi::AV_ER_TIMEOUT,
                        },
                        had_frames,
                    );
                }
                std::thread::sleep(NOREADY_SLEEP);
            }
            Recv::Dropped(_) => {
                stats.lock().unwrap().dropped += 1;
                need_key = true;
                discont = true;
            }
            Recv::Closed(e) => return End::Lost(e, had_frames),
            Recv::Frame { len, info, index } => {
                last = Instant::now();
                if need_key && !info.is_key() {
                    stats.lock().unwrap().skipped += 1;
                    continue;
                }
                need_key = false;
                had_frames = true;
                stats.lock().unwrap().count(len, info.codec_id);
                let frame = Frame {
                    data: &bufs.video[..len],
                    info,
                    index,
                    discont: std::mem::replace(&mut discont, false),
                };
                if on(Event::Frame(frame)) == Flow::Stop {
                    return End::Stop;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_names_every_field() {
        let mut s = Stats::default();
        s.count(1234, ffi::CODEC_H264);
        s.mode = Some(Mode::Lan);
        let l = s.status_line();
        for k in [
            "frames_received=1",
            "dropped_frames=0",
            "last_frame_size=1234",
            "codec=H.264",
            "mode=LAN",
            "fps=",
        ] {
            assert!(l.contains(k), "{l}");
        }
    }
}
