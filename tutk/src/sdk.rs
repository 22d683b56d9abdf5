//! The vendor SDK, loaded at run time (it is proprietary: never shipped with us), with
//! one process-wide, reference-counted initialisation.

use crate::backend::{
    Backend, Cancel, ConnectRequest, Device, Error, Mode, Recv, Session, SessionInfo,
};
use crate::ffi::{self, *};
use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_uint, c_ulong};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The combined library of SDKs before 4.0.
pub const LIB_ALL: &str = "libIOTCAPIs_ALL.so";
/// The split libraries.
pub const LIB_IOTC: &str = "libIOTCAPIs.so";
pub const LIB_AV: &str = "libAVAPIs.so";
/// SDK 4.x: holds `TUTK_SDK_Set_License_Key`.
pub const LIB_GLOBAL: &str = "libTUTKGlobalAPIs.so";
/// Environment variable naming the library file or its folder.
pub const ENV_LIBRARY_PATH: &str = "TUTK_LIBRARY_PATH";

/// `avInitialize`'s channel count: enough for every camera one process watches.
const MAX_AV_CHANNELS: c_int = 32;

/// The SDK's entry points, resolved once.
pub struct Sdk {
    /// The files the symbols came from, for messages.
    pub origin: String,
    set_license_key: Option<FnSetLicenseKey>,
    iotc_initialize2: FnIotcInitialize2,
    iotc_deinitialize: FnIotcDeInitialize,
    av_initialize: FnAvInitialize,
    av_deinitialize: FnAvDeInitialize,
    lan_search2: FnLanSearch2,
    get_session_id: FnGetSessionId,
    connect_by_uid_parallel: FnConnectByUidParallel,
    session_check: FnSessionCheck,
    av_client_start2: FnAvClientStart2,
    av_send_ioctrl: FnAvSendIoCtrl,
    av_recv_frame_data2: FnAvRecvFrameData2,
    av_recv_audio_data: Option<FnAvRecvAudioData>,
    av_client_exit: FnAvClientExit,
    connect_stop_by_sid: FnConnectStopBySid,
    av_client_stop: FnAvClientStop,
    session_close: FnSessionClose,
    /// How many users hold the SDK initialised.
    users: Mutex<usize>,
    /// Libraries stay loaded for the life of the process: SDK threads may outlive a
    /// deinitialisation, and unloading under them would crash.
    _libs: Vec<Library>,
}

/// Every library loaded so far, by where it was asked for.
type Loaded = Mutex<Vec<(String, Arc<Sdk>)>>;
static LOADED: OnceLock<Loaded> = OnceLock::new();

fn open(name: &Path) -> Result<Library, String> {
    // RTLD_GLOBAL: libAVAPIs.so resolves its IOTC symbols from libIOTCAPIs.so.
    // SAFETY: loading a library runs its constructors; the user pointed us at it.
    unsafe { Library::open(Some(name), RTLD_NOW | RTLD_GLOBAL) }.map_err(|e| e.to_string())
}

/// The sets of files to try, in order: one folder or file the user gave, else the
/// system library paths (what `dlopen` searches: LD_LIBRARY_PATH, /etc/ld.so.conf).
fn candidates(path: Option<&Path>) -> Vec<Vec<PathBuf>> {
    let named = |dir: Option<&Path>, n: &str| match dir {
        Some(d) => d.join(n),
        None => PathBuf::from(n),
    };
    let in_dir = |dir: Option<&Path>| {
        vec![
            vec![named(dir, LIB_ALL)],
            vec![named(dir, LIB_IOTC), named(dir, LIB_AV)],
        ]
    };
    match path {
        Some(p) if p.is_dir() => in_dir(Some(p)),
        // A file: it alone, or it with libAVAPIs.so beside it (split SDK).
        Some(p) => vec![
            vec![p.to_path_buf()],
            vec![p.to_path_buf(), named(p.parent(), LIB_AV)],
        ],
        None => in_dir(None),
    }
}

impl Sdk {
    /// Load the SDK from `path` (a file or folder), else from `TUTK_LIBRARY_PATH`, else
    /// from the system library paths. Loaded once per process and location.
    pub fn load(path: Option<&Path>) -> Result<Arc<Sdk>, Error> {
        let env = std::env::var_os(ENV_LIBRARY_PATH).filter(|v| !v.is_empty());
        let path: Option<PathBuf> = path
            .map(Path::to_path_buf)
            .or_else(|| env.map(PathBuf::from));
        let key = path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let loaded = LOADED.get_or_init(Default::default);
        let mut loaded = loaded.lock().unwrap();
        if let Some((_, sdk)) = loaded.iter().find(|(k, _)| *k == key) {
            return Ok(sdk.clone());
        }
        let mut tried = Vec::new();
        let mut symbol_error = None;
        for set in candidates(path.as_deref()) {
            let mut libs = Vec::new();
            let mut failed = false;
            for f in &set {
                match open(f) {
                    Ok(l) => libs.push(l),
                    Err(e) => {
                        let t = format!("{} ({e})", f.display());
                        if !tried.contains(&t) {
                            tried.push(t);
                        }
                        failed = true;
                        break;
                    }
                }
            }
            if failed {
                continue;
            }
            // SDK 4.x keeps the licence call in a library of its own; optional.
            let global = match set[0].parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(d) => d.join(LIB_GLOBAL),
                None => PathBuf::from(LIB_GLOBAL),
            };
            if let Ok(l) = open(&global) {
                libs.push(l);
            }
            let origin = set
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" + ");
            match Sdk::resolve(libs, origin) {
                Ok(sdk) => {
                    let sdk = Arc::new(sdk);
                    loaded.push((key, sdk.clone()));
                    return Ok(sdk);
                }
                Err(e) => symbol_error = Some(e),
            }
        }
        if let Some(e) = symbol_error {
            return Err(Error::Library(e));
        }
        Err(Error::Library(format!(
            "TUTK SDK not found; tried: {}. The vendor library is not shipped with this project: point library-path (tutksrc), --library (tutk) or {ENV_LIBRARY_PATH} at {LIB_ALL}, or at the folder holding it or {LIB_IOTC} + {LIB_AV}",
            tried.join("; ")
        )))
    }

    fn resolve(libs: Vec<Library>, origin: String) -> Result<Sdk, String> {
        fn find<T: Copy>(libs: &[Library], name: &str, origin: &str) -> Result<T, String> {
            let cname = format!("{name}\0");
            for l in libs {
                // SAFETY: the type is the C signature from the SDK headers (ffi.rs).
                if let Ok(s) = unsafe { l.get::<T>(cname.as_bytes()) } {
                    return Ok(*s);
                }
            }
            Err(format!(
                "{origin} has no symbol {name}: it is not a TUTK SDK this project supports (the client needs the IOTC and AV APIs)"
            ))
        }
        let o = origin.as_str();
        Ok(Sdk {
            set_license_key: find(&libs, "TUTK_SDK_Set_License_Key", o).ok(),
            iotc_initialize2: find(&libs, "IOTC_Initialize2", o)?,
            iotc_deinitialize: find(&libs, "IOTC_DeInitialize", o)?,
            av_initialize: find(&libs, "avInitialize", o)?,
            av_deinitialize: find(&libs, "avDeInitialize", o)?,
            lan_search2: find(&libs, "IOTC_Lan_Search2", o)?,
            get_session_id: find(&libs, "IOTC_Get_SessionID", o)?,
            connect_by_uid_parallel: find(&libs, "IOTC_Connect_ByUID_Parallel", o)?,
            session_check: find(&libs, "IOTC_Session_Check", o)?,
            av_client_start2: find(&libs, "avClientStart2", o)?,
            av_send_ioctrl: find(&libs, "avSendIOCtrl", o)?,
            av_recv_frame_data2: find(&libs, "avRecvFrameData2", o)?,
            av_recv_audio_data: find(&libs, "avRecvAudioData", o).ok(),
            av_client_exit: find(&libs, "avClientExit", o)?,
            connect_stop_by_sid: find(&libs, "IOTC_Connect_Stop_BySID", o)?,
            av_client_stop: find(&libs, "avClientStop", o)?,
            session_close: find(&libs, "IOTC_Session_Close", o)?,
            users: Mutex::new(0),
            origin,
            _libs: libs,
        })
    }

    /// Whether the library has `TUTK_SDK_Set_License_Key` (SDK 4.x).
    pub fn takes_license_key(&self) -> bool {
        self.set_license_key.is_some()
    }

    /// Initialise the SDK for one more user (the first one really initialises it;
    /// "already initialised" from another user of the library in this process is fine).
    /// The licence key is set first, when given and when the SDK has the call.
    pub fn acquire(
        self: &Arc<Self>,
        license_key: Option<&crate::Secret>,
    ) -> Result<SdkBackend, Error> {
        let mut users = self.users.lock().unwrap();
        if *users == 0 {
            if let (Some(key), Some(set)) =
                (license_key.filter(|k| !k.is_empty()), self.set_license_key)
            {
                let c = CString::new(key.expose())
                    .map_err(|_| Error::Invalid("the licence key holds a NUL byte".into()))?;
                // SAFETY: a NUL-terminated string that outlives the call.
                let r = unsafe { set(c.as_ptr()) };
                if r < 0 {
                    return Err(Error::Sdk {
                        step: "TUTK_SDK_Set_License_Key",
                        code: r,
                    });
                }
            }
            // SAFETY: plain integer arguments.
            let r = unsafe { (self.iotc_initialize2)(0) };
            if r < 0 && r != IOTC_ER_ALREADY_INITIALIZED {
                return Err(Error::Sdk {
                    step: "IOTC_Initialize2",
                    code: r,
                });
            }
            let r = unsafe { (self.av_initialize)(MAX_AV_CHANNELS) };
            if r < 0 {
                unsafe { (self.iotc_deinitialize)() };
                return Err(Error::Sdk {
                    step: "avInitialize",
                    code: r,
                });
            }
        }
        *users += 1;
        Ok(SdkBackend { sdk: self.clone() })
    }

    /// How many users hold the SDK initialised now.
    pub fn users(&self) -> usize {
        *self.users.lock().unwrap()
    }

    fn release(&self) {
        let mut users = self.users.lock().unwrap();
        *users = users.saturating_sub(1);
        if *users == 0 {
            // SAFETY: no session of ours is left (each holds a user).
            unsafe {
                (self.av_deinitialize)();
                (self.iotc_deinitialize)();
            }
        }
    }
}

/// The SDK, initialised for as long as this (and each session from it) lives.
pub struct SdkBackend {
    sdk: Arc<Sdk>,
}

impl Drop for SdkBackend {
    fn drop(&mut self) {
        self.sdk.release();
    }
}

impl SdkBackend {
    pub fn sdk(&self) -> &Arc<Sdk> {
        &self.sdk
    }
}

fn cstring(what: &str, s: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::Invalid(format!("the {what} holds a NUL byte")))
}

impl Backend for SdkBackend {
    fn search(&self, wait: Duration, max: usize) -> Result<Vec<Device>, Error> {
        let max = max.clamp(1, 256);
        let mut arr = vec![LanSearchInfo2::zeroed(); max];
        let wait_ms = wait.as_millis().min(i32::MAX as u128) as c_int;
        // SAFETY: `arr` holds `max` entries of the C layout.
        let n = unsafe { (self.sdk.lan_search2)(arr.as_mut_ptr(), max as c_int, wait_ms) };
        if n < 0 {
            return Err(Error::Sdk {
                step: "IOTC_Lan_Search2",
                code: n,
            });
        }
        Ok(arr[..(n as usize).min(max)]
            .iter()
            .map(|d| Device {
                uid: ffi::c_field(&d.uid),
                ip: ffi::c_field(&d.ip),
                port: d.port,
                name: ffi::c_field(&d.device_name),
            })
            .collect())
    }

    fn connect(&self, req: &ConnectRequest, cancel: &Cancel) -> Result<Box<dyn Session>, Error> {
        let r = self.connect_inner(req, cancel);
        cancel.clear_abort();
        r
    }
}

impl SdkBackend {
    fn connect_inner(
        &self,
        req: &ConnectRequest,
        cancel: &Cancel,
    ) -> Result<Box<dyn Session>, Error> {
        let sdk = &self.sdk;
        if req.uid.len() != 20 || !req.uid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::Invalid(format!(
                "{:?} is not a TUTK UID (20 letters and digits, printed on the camera or shown by `tutk scan`)",
                req.uid
            )));
        }
        let uid = cstring("UID", &req.uid)?;
        let user = cstring("user name", &req.username)?;
        let pass = cstring("password", req.password.expose())?;
        // SAFETY: no arguments.
        let sid = unsafe { (sdk.get_session_id)() };
        if sid < 0 {
            return Err(Error::Sdk {
                step: "IOTC_Get_SessionID",
                code: sid,
            });
        }
        // From here, a stop aborts whichever of the two blocking calls runs.
        let (stop, exit, ch) = (sdk.connect_stop_by_sid, sdk.av_client_exit, req.channel);
        let abort = move || unsafe {
            stop(sid);
            exit(sid, ch);
        };
        if !cancel.set_abort(abort) {
            return Err(Error::Cancelled);
        }
        let guard = Closer {
            sdk: sdk.clone(),
            sid,
            av: -1,
        };
        // SAFETY: `uid` is NUL-terminated and outlives the call.
        let r = unsafe { (sdk.connect_by_uid_parallel)(uid.as_ptr(), sid) };
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        if r < 0 {
            return Err(Error::Sdk {
                step: "IOTC_Connect_ByUID_Parallel",
                code: r,
            });
        }
        let mut si = SInfo::zeroed();
        // SAFETY: `si` has the 80-byte C layout.
        let r = unsafe { (sdk.session_check)(sid, &mut si) };
        if r < 0 {
            return Err(Error::Sdk {
                step: "IOTC_Session_Check",
                code: r,
            });
        }
        let info = SessionInfo {
            // `c_char` is i8 on x86-64 and u8 on aarch64.
            #[allow(clippy::unnecessary_cast)]
            mode: Mode::from_c(si.mode as i8),
            remote_ip: ffi::c_field(&si.remote_ip),
            remote_port: si.remote_port,
        };
        // Before the password is sent: a remote session would carry it through the
        // vendor's servers.
        if info.mode != Mode::Lan && !req.allow_remote {
            return Err(Error::RemoteRefused(info.mode));
        }
        let mut serv_type: c_ulong = 0;
        let mut resend: c_int = 0;
        let timeout = req.timeout.as_secs().max(1) as c_ulong;
        // SAFETY: NUL-terminated strings and out-parameters that outlive the call.
        let av = unsafe {
            (sdk.av_client_start2)(
                sid,
                user.as_ptr(),
                pass.as_ptr(),
                timeout,
                &mut serv_type,
                req.channel,
                &mut resend,
            )
        };
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        if av < 0 {
            return Err(Error::Sdk {
                step: "avClientStart2",
                code: av,
            });
        }
        let mut closer = guard;
        closer.av = av;
        Ok(Box::new(SdkSession {
            closer,
            info,
            _user: self.sdk.acquire_user(),
        }))
    }
}

impl Sdk {
    /// One more user for as long as a session lives, so the SDK stays initialised under
    /// it even if the backend that opened it is dropped first.
    fn acquire_user(self: &Arc<Self>) -> SdkBackend {
        *self.users.lock().unwrap() += 1;
        SdkBackend { sdk: self.clone() }
    }
}

/// Stops the AV channel and closes the session, on every path out.
struct Closer {
    sdk: Arc<Sdk>,
    sid: c_int,
    av: c_int,
}

impl Drop for Closer {
    fn drop(&mut self) {
        // SAFETY: ids from this SDK, closed once.
        unsafe {
            if self.av >= 0 {
                (self.sdk.av_client_stop)(self.av);
            }
            (self.sdk.session_close)(self.sid);
        }
    }
}

struct SdkSession {
    closer: Closer,
    info: SessionInfo,
    _user: SdkBackend,
}

impl Session for SdkSession {
    fn info(&self) -> &SessionInfo {
        &self.info
    }

    fn send_ioctrl(&mut self, io_type: u32, payload: &[u8]) -> Result<(), Error> {
        if payload.len() > MAX_IOCTRL_LEN {
            return Err(Error::Invalid(format!(
                "IOCtrl payload of {} bytes (at most {MAX_IOCTRL_LEN})",
                payload.len()
            )));
        }
        // SAFETY: `payload` outlives the call; its length is passed.
        let r = unsafe {
            (self.closer.sdk.av_send_ioctrl)(
                self.closer.av,
                io_type as c_uint,
                payload.as_ptr() as *const c_char,
                payload.len() as c_int,
            )
        };
        if r < 0 {
            return Err(Error::Sdk {
                step: "avSendIOCtrl",
                code: r,
            });
        }
        Ok(())
    }

    fn recv_frame(&mut self, buf: &mut [u8], info_buf: &mut [u8]) -> Recv {
        let (mut actual, mut expected, mut info_size) = (0 as c_int, 0 as c_int, 0 as c_int);
        let mut index: c_uint = 0;
        let buf_max = buf.len().min(i32::MAX as usize) as c_int;
        let info_max = info_buf.len().min(i32::MAX as usize) as c_int;
        // SAFETY: both buffers are passed with their lengths; out-parameters are ours.
        let r = unsafe {
            (self.closer.sdk.av_recv_frame_data2)(
                self.closer.av,
                buf.as_mut_ptr() as *mut c_char,
                buf_max,
                &mut actual,
                &mut expected,
                info_buf.as_mut_ptr() as *mut c_char,
                info_max,
                &mut info_size,
                &mut index,
            )
        };
        match r {
            AV_ER_DATA_NOREADY => Recv::NotReady,
            AV_ER_INCOMPLETE_FRAME | AV_ER_LOSED_THIS_FRAME => Recv::Dropped(r),
            r => {
                let info_len = (info_size.max(0) as usize).min(info_buf.len());
                frame_result(
                    "avRecvFrameData2",
                    r,
                    buf.len(),
                    &info_buf[..info_len],
                    index,
                )
            }
        }
    }

    fn recv_audio(&mut self, buf: &mut [u8], info_buf: &mut [u8]) -> Recv {
        let Some(recv) = self.closer.sdk.av_recv_audio_data else {
            return Recv::NotReady;
        };
        let mut index: c_uint = 0;
        let buf_max = buf.len().min(i32::MAX as usize) as c_int;
        let info_max = info_buf.len().min(i32::MAX as usize) as c_int;
        // SAFETY: both buffers are passed with their lengths; the index is ours.
        let r = unsafe {
            recv(
                self.closer.av,
                buf.as_mut_ptr() as *mut c_char,
                buf_max,
                info_buf.as_mut_ptr() as *mut c_char,
                info_max,
                &mut index,
            )
        };
        match r {
            AV_ER_DATA_NOREADY => Recv::NotReady,
            AV_ER_INCOMPLETE_FRAME | AV_ER_LOSED_THIS_FRAME => Recv::Dropped(r),
            // The audio call reports no info size: the SDK writes a whole FRAMEINFO_t.
            r => frame_result("avRecvAudioData", r, buf.len(), info_buf, index),
        }
    }
}

/// A receive call's result: an error ends the session; a size is bounded by our buffer.
fn frame_result(step: &'static str, r: c_int, buf_len: usize, info: &[u8], index: c_uint) -> Recv {
    if r < 0 {
        return Recv::Closed(Error::Sdk { step, code: r });
    }
    // Never trust the library's sizes beyond our buffers.
    let len = (r as usize).min(buf_len);
    match FrameInfo::parse(info) {
        Some(info) => Recv::Frame { len, info, index },
        None => Recv::Dropped(AV_ER_INCOMPLETE_FRAME),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_names_what_was_searched_and_how_to_point() {
        let dir = std::env::temp_dir().join(format!("tutk-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = Sdk::load(Some(&dir)).err().unwrap();
        let s = e.to_string();
        assert!(
            s.contains(LIB_ALL) && s.contains(LIB_IOTC) && s.contains(LIB_AV),
            "{s}"
        );
        assert!(
            s.contains(ENV_LIBRARY_PATH) && s.contains("library-path"),
            "{s}"
        );
        assert_eq!(e.kind(), crate::ErrorKind::Fatal);
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn a_library_without_the_api_names_the_missing_symbol() {
        let e = Sdk::load(Some(Path::new("libc.so.6")))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no symbol IOTC_Initialize2"), "{e}");
    }
}
