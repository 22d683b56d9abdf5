//! A stand-in for the TUTK vendor SDK, built as a shared library with the same C ABI
//! subset (`tutk::ffi`), so tests and demos run the real loading code, the real struct
//! layouts and the real error codes. It is not a camera protocol: it serves cameras
//! described by files (see [`config`]).
//!
//! - `IOTC_Lan_Search2` lists the configured cameras.
//! - `avClientStart2` checks user name and password (`AV_ER_WRONG_VIEWACCorPWD`).
//! - `avSendIOCtrl` records type and payload in `<UID>.ioctl`; `IOTYPE_USER_IPCAM_START`
//!   starts the video.
//! - `avRecvFrameData2` serves the clip at real-time pace (`AV_ER_DATA_NOREADY` until a
//!   frame is due) with the frame info a camera sends, and the configured faults.

#![allow(clippy::missing_safety_doc)]

pub mod clip;
pub mod config;

use config::Camera;
use std::collections::{HashMap, HashSet};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_uchar, c_uint, c_ulong, c_ushort};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tutk::ffi::*;

/// The frame-info timestamp of the first frame: cameras count from their boot.
const BOOT_MS: u64 = 7_200_000;

struct Session {
    camera: Camera,
    stop: AtomicBool,
    exit: AtomicBool,
    av: Mutex<Av>,
}

#[derive(Default)]
struct Av {
    /// When `IOTYPE_USER_IPCAM_START` arrived.
    started: Option<Instant>,
    /// When `IOTYPE_USER_IPCAM_AUDIOSTART` arrived, and audio parts served since.
    audio_started: Option<Instant>,
    audio_next: u64,
    /// Frames of this session consumed so far.
    next: u64,
    closed: Option<c_int>,
}

/// What a camera remembers across sessions in this process.
#[derive(Default)]
struct CameraState {
    served: u64,
    fired: HashSet<&'static str>,
}

#[derive(Default)]
struct Sdk {
    license_ok: bool,
    initialised: bool,
    av_initialised: bool,
    next_sid: c_int,
    sessions: HashMap<c_int, Arc<Session>>,
    cameras: HashMap<String, CameraState>,
    clips: HashMap<PathBuf, Arc<Vec<clip::Frame>>>,
}

fn sdk() -> &'static Mutex<Sdk> {
    static SDK: OnceLock<Mutex<Sdk>> = OnceLock::new();
    SDK.get_or_init(Default::default)
}

fn boot() -> Instant {
    static BOOT: OnceLock<Instant> = OnceLock::new();
    *BOOT.get_or_init(Instant::now)
}

fn dir() -> Option<PathBuf> {
    std::env::var_os(config::ENV_DIR).map(PathBuf::from)
}

fn camera(uid: &str) -> Option<Camera> {
    config::cameras(&dir()?).into_iter().find(|c| c.uid == uid)
}

fn session(sid: c_int) -> Option<Arc<Session>> {
    sdk().lock().unwrap().sessions.get(&sid).cloned()
}

fn clip_of(c: &Camera) -> Result<Arc<Vec<clip::Frame>>, String> {
    let path = match &c.clip {
        Some(p) => p.clone(),
        None => clip::encode(
            &dir().ok_or("no TUTK_FAKE_DIR")?,
            c.width,
            c.height,
            c.fps,
            c.gop_seconds,
            c.seconds,
        )?,
    };
    if let Some(f) = sdk().lock().unwrap().clips.get(&path) {
        return Ok(f.clone());
    }
    let frames =
        clip::access_units(&std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?);
    if frames.is_empty() || !frames[0].key {
        return Err(format!(
            "{}: no H.264 starting with a key frame",
            path.display()
        ));
    }
    let frames = Arc::new(frames);
    sdk().lock().unwrap().clips.insert(path, frames.clone());
    Ok(frames)
}

unsafe fn str_arg<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    CStr::from_ptr(p).to_str().ok()
}

#[no_mangle]
pub unsafe extern "C" fn TUTK_SDK_Set_License_Key(key: *const c_char) -> c_int {
    let want = std::env::var(config::ENV_LICENSE).unwrap_or_default();
    let ok = !want.is_empty() && str_arg(key) == Some(want.as_str());
    sdk().lock().unwrap().license_ok = ok;
    if ok {
        0
    } else {
        TUTK_ER_INVALID_LICENSE_KEY
    }
}

#[no_mangle]
pub extern "C" fn IOTC_Initialize2(_udp_port: c_ushort) -> c_int {
    let mut s = sdk().lock().unwrap();
    if std::env::var_os(config::ENV_LICENSE).is_some() && !s.license_ok {
        return IOTC_ER_UNLICENSE;
    }
    if s.initialised {
        return IOTC_ER_ALREADY_INITIALIZED;
    }
    s.initialised = true;
    boot();
    IOTC_ER_NOERROR
}

#[no_mangle]
pub extern "C" fn IOTC_DeInitialize() -> c_int {
    let mut s = sdk().lock().unwrap();
    s.initialised = false;
    s.sessions.clear();
    0
}

#[no_mangle]
pub extern "C" fn avInitialize(max_channels: c_int) -> c_int {
    sdk().lock().unwrap().av_initialised = true;
    max_channels
}

#[no_mangle]
pub extern "C" fn avDeInitialize() -> c_int {
    sdk().lock().unwrap().av_initialised = false;
    0
}

/// How many times the SDK is initialised right now (0 or 1), for tests of the
/// reference counting in the loader.
#[no_mangle]
pub extern "C" fn fake_tutk_initialised() -> c_int {
    let s = sdk().lock().unwrap();
    (s.initialised && s.av_initialised) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn IOTC_Lan_Search2(
    arr: *mut LanSearchInfo2,
    len: c_int,
    wait_ms: c_int,
) -> c_int {
    if arr.is_null() || len <= 0 {
        return IOTC_ER_NOERROR;
    }
    if !sdk().lock().unwrap().initialised {
        return -12; // IOTC_ER_NOT_INITIALIZED
    }
    // Cameras answer within a few hundred ms; the call waits for the whole window.
    std::thread::sleep(Duration::from_millis(wait_ms.clamp(0, 3000) as u64));
    let cams = dir().map(|d| config::cameras(&d)).unwrap_or_default();
    let n = cams.len().min(len as usize);
    for (i, c) in cams.iter().take(n).enumerate() {
        let mut e = LanSearchInfo2::zeroed();
        set_c_field(&mut e.uid, &c.uid);
        set_c_field(&mut e.ip, &c.ip);
        e.port = c.port;
        set_c_field(&mut e.device_name, &c.name);
        arr.add(i).write(e);
    }
    n as c_int
}

#[no_mangle]
pub extern "C" fn IOTC_Get_SessionID() -> c_int {
    let mut s = sdk().lock().unwrap();
    if !s.initialised {
        return -12;
    }
    s.next_sid += 1;
    s.next_sid
}

#[no_mangle]
pub unsafe extern "C" fn IOTC_Connect_ByUID_Parallel(uid: *const c_char, sid: c_int) -> c_int {
    let Some(uid) = str_arg(uid) else {
        return IOTC_ER_CAN_NOT_FIND_DEVICE;
    };
    let Some(camera) = camera(uid) else {
        // The SDK looks for the device for a while before it gives up.
        std::thread::sleep(Duration::from_millis(200));
        return IOTC_ER_CAN_NOT_FIND_DEVICE;
    };
    let blocks = camera.connect_blocks;
    let delay = camera.connect_delay;
    let session = Arc::new(Session {
        camera,
        stop: AtomicBool::new(false),
        exit: AtomicBool::new(false),
        av: Mutex::new(Av::default()),
    });
    {
        let mut s = sdk().lock().unwrap();
        s.cameras.entry(uid.to_string()).or_default();
        s.sessions.insert(sid, session.clone());
    }
    let until = Instant::now() + delay;
    while blocks || Instant::now() < until {
        if session.stop.load(Ordering::SeqCst) {
            sdk().lock().unwrap().sessions.remove(&sid);
            return IOTC_ER_TIMEOUT;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    sid
}

#[no_mangle]
pub unsafe extern "C" fn IOTC_Session_Check(sid: c_int, info: *mut SInfo) -> c_int {
    let Some(s) = session(sid) else {
        return IOTC_ER_INVALID_SID;
    };
    if info.is_null() {
        return -46; // IOTC_ER_INVALID_ARG
    }
    let mut i = SInfo::zeroed();
    i.mode = s.camera.mode as c_char;
    set_c_field(&mut i.uid, &s.camera.uid);
    set_c_field(&mut i.remote_ip, &s.camera.ip);
    i.remote_port = s.camera.port;
    info.write(i);
    0
}

#[no_mangle]
pub unsafe extern "C" fn avClientStart2(
    sid: c_int,
    user: *const c_char,
    pass: *const c_char,
    timeout_s: c_ulong,
    serv_type: *mut c_ulong,
    _channel: c_uchar,
    resend: *mut c_int,
) -> c_int {
    let Some(s) = session(sid) else {
        return AV_ER_INVALID_SID;
    };
    if s.camera.start_blocks {
        let until = Instant::now() + Duration::from_secs(timeout_secs(timeout_s));
        while Instant::now() < until {
            if s.exit.load(Ordering::SeqCst) {
                return AV_ER_CLIENT_EXIT;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        return AV_ER_TIMEOUT;
    }
    if str_arg(user) != Some(s.camera.username.as_str())
        || str_arg(pass) != Some(s.camera.password.as_str())
    {
        return AV_ER_WRONG_VIEWACC_OR_PWD;
    }
    if !serv_type.is_null() {
        *serv_type = 0;
    }
    if !resend.is_null() {
        *resend = 0;
    }
    // The AV index: the session id serves.
    sid
}

#[no_mangle]
pub unsafe extern "C" fn avSendIOCtrl(
    av: c_int,
    io_type: c_uint,
    data: *const c_char,
    len: c_int,
) -> c_int {
    let Some(s) = session(av) else {
        return AV_ER_INVALID_SID;
    };
    if !(0..=MAX_IOCTRL_LEN as c_int).contains(&len) || (data.is_null() && len > 0) {
        return AV_ER_INVALID_ARG;
    }
    let payload: &[u8] = if len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(data as *const u8, len as usize)
    };
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    record(&s.camera.uid, &format!("0x{io_type:04X} {hex}"));
    if io_type == IOTYPE_USER_IPCAM_START {
        s.av.lock()
            .unwrap()
            .started
            .get_or_insert_with(Instant::now);
    }
    if io_type == IOTYPE_USER_IPCAM_AUDIOSTART {
        s.av.lock()
            .unwrap()
            .audio_started
            .get_or_insert_with(Instant::now);
    }
    0
}

/// `c_ulong` is 64 bits on x86-64 and aarch64 Linux, 32 on 32-bit ARM.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
fn timeout_secs(t: c_ulong) -> u64 {
    (t as u64).min(600)
}

/// Append a line to the camera's `<UID>.ioctl` record.
fn record(uid: &str, line: &str) {
    use std::io::Write;
    if let Some(d) = dir() {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config::ioctl_log(&d, uid))
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// One scheduled fault, once per camera and process.
fn fault(uid: &str, n: u64, c: &Camera) -> Option<c_int> {
    let mut s = sdk().lock().unwrap();
    let st = s.cameras.entry(uid.to_string()).or_default();
    if c.close_at == Some(n) && st.fired.insert("close") {
        return Some(AV_ER_SESSION_CLOSE_BY_REMOTE);
    }
    if c.timeout_at == Some(n) && st.fired.insert("timeout") {
        return Some(AV_ER_REMOTE_TIMEOUT_DISCONNECT);
    }
    if c.incomplete.contains(&n) {
        return Some(AV_ER_INCOMPLETE_FRAME);
    }
    if c.lost.contains(&n) {
        return Some(AV_ER_LOSED_THIS_FRAME);
    }
    None
}

#[no_mangle]
pub unsafe extern "C" fn avRecvFrameData2(
    av: c_int,
    buf: *mut c_char,
    buf_max: c_int,
    actual_size: *mut c_int,
    expected_size: *mut c_int,
    frame_info: *mut c_char,
    info_max: c_int,
    actual_info_size: *mut c_int,
    frame_index: *mut c_uint,
) -> c_int {
    let Some(s) = session(av) else {
        return AV_ER_INVALID_SID;
    };
    let c = &s.camera;
    let frames = match clip_of(c) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake TUTK SDK: {e}");
            return AV_ER_SESSION_CLOSE_BY_REMOTE;
        }
    };
    let mut a = s.av.lock().unwrap();
    if let Some(code) = a.closed {
        return code;
    }
    let Some(started) = a.started else {
        return AV_ER_DATA_NOREADY;
    };
    let due = started + Duration::from_secs_f64(a.next as f64 / c.fps as f64);
    if Instant::now() < due {
        return AV_ER_DATA_NOREADY;
    }
    let k = a.next;
    a.next += 1;
    let n = {
        let mut sdk = sdk().lock().unwrap();
        let st = sdk.cameras.entry(c.uid.clone()).or_default();
        st.served += 1;
        st.served - 1
    };
    if let Some(code) = fault(&c.uid, n, c) {
        if matches!(
            code,
            AV_ER_SESSION_CLOSE_BY_REMOTE | AV_ER_REMOTE_TIMEOUT_DISCONNECT
        ) {
            a.closed = Some(code);
        }
        return code;
    }
    let f = &frames[(k % frames.len() as u64) as usize];
    if f.data.len() > buf_max.max(0) as usize || buf.is_null() {
        return AV_ER_EXCEED_MAX_SIZE;
    }
    std::ptr::copy_nonoverlapping(f.data.as_ptr(), buf as *mut u8, f.data.len());
    let ts = BOOT_MS + due.duration_since(boot()).as_millis() as u64;
    let info = FrameInfo {
        codec_id: CODEC_H264,
        flags: if f.key { FrameInfo::KEY_FRAME } else { 0 },
        cam_index: 0,
        online_num: 1,
        reserved: [0; 3],
        reserved2: 0,
        timestamp_ms: ts as u32,
    };
    let mut ib = [0u8; 64];
    ib[..16].copy_from_slice(&info.to_bytes());
    let info_len = c.info_size.min(info_max.max(0) as usize).min(64);
    if !frame_info.is_null() {
        std::ptr::copy_nonoverlapping(ib.as_ptr(), frame_info as *mut u8, info_len);
    }
    for (p, v) in [
        (actual_size, f.data.len() as c_int),
        (expected_size, f.data.len() as c_int),
        (actual_info_size, info_len as c_int),
    ] {
        if !p.is_null() {
            *p = v;
        }
    }
    if !frame_index.is_null() {
        *frame_index = k as c_uint;
    }
    f.data.len() as c_int
}

/// Audio parts: 40 ms at 8 kHz, one byte per sample.
const AUDIO_PART_MS: u64 = 40;
const AUDIO_PART_BYTES: usize = 320;

#[no_mangle]
pub unsafe extern "C" fn avRecvAudioData(
    av: c_int,
    buf: *mut c_char,
    buf_max: c_int,
    frame_info: *mut c_char,
    info_max: c_int,
    frame_index: *mut c_uint,
) -> c_int {
    let Some(s) = session(av) else {
        return AV_ER_INVALID_SID;
    };
    let mut a = s.av.lock().unwrap();
    if let Some(code) = a.closed {
        return code;
    }
    let (Some(started), true) = (a.audio_started, s.camera.audio != 0) else {
        return AV_ER_DATA_NOREADY;
    };
    let due = started + Duration::from_millis(a.audio_next * AUDIO_PART_MS);
    if Instant::now() < due {
        return AV_ER_DATA_NOREADY;
    }
    if buf.is_null() || (buf_max.max(0) as usize) < AUDIO_PART_BYTES {
        return AV_ER_EXCEED_MAX_SIZE;
    }
    let k = a.audio_next;
    a.audio_next += 1;
    // Any byte is a G.711 sample: a slow ramp, so the parts differ.
    for i in 0..AUDIO_PART_BYTES {
        *buf.add(i) = ((k as usize * AUDIO_PART_BYTES + i) / 8 % 256) as u8 as c_char;
    }
    let info = FrameInfo {
        codec_id: s.camera.audio,
        flags: AUDIO_8K_16BIT_MONO,
        cam_index: 0,
        online_num: 1,
        reserved: [0; 3],
        reserved2: 0,
        timestamp_ms: (BOOT_MS + due.duration_since(boot()).as_millis() as u64) as u32,
    };
    if !frame_info.is_null() {
        let n = 16.min(info_max.max(0) as usize);
        std::ptr::copy_nonoverlapping(info.to_bytes().as_ptr(), frame_info as *mut u8, n);
    }
    if !frame_index.is_null() {
        *frame_index = k as c_uint;
    }
    AUDIO_PART_BYTES as c_int
}

#[no_mangle]
pub extern "C" fn avClientExit(sid: c_int, _channel: c_uchar) {
    if let Some(s) = session(sid) {
        s.exit.store(true, Ordering::SeqCst);
    }
}

#[no_mangle]
pub extern "C" fn IOTC_Connect_Stop_BySID(sid: c_int) -> c_int {
    match session(sid) {
        Some(s) => {
            s.stop.store(true, Ordering::SeqCst);
            0
        }
        None => IOTC_ER_INVALID_SID,
    }
}

#[no_mangle]
pub extern "C" fn avClientStop(av: c_int) {
    if let Some(s) = session(av) {
        s.av.lock().unwrap().closed = Some(AV_ER_INVALID_SID);
    }
}

#[no_mangle]
pub extern "C" fn IOTC_Session_Close(sid: c_int) {
    sdk().lock().unwrap().sessions.remove(&sid);
}

/// Where cargo put this library, beside the running test binary or program
/// (`target/<profile>/libtutk_fake_sdk.so`).
pub fn built_library() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut d = exe.parent().expect("exe folder").to_path_buf();
    if d.ends_with("deps") || d.ends_with("examples") {
        d.pop();
    }
    d.join("libtutk_fake_sdk.so")
}
