//! The subset of the TUTK/Kalay C ABI we call, with the exact C types and layouts
//! (`docs/protocols.md` section 2, as tutk-ipcamera-proxy and the SDK headers use them).
//! `unsigned long` is `c_ulong` (8 bytes on Linux x86-64), never `u32`.

use std::os::raw::{c_char, c_int, c_uchar, c_uint, c_ulong, c_ushort};

/// `struct st_SInfo`: what `IOTC_Session_Check` reports about a session.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SInfo {
    /// 0 = P2P, 1 = relay, 2 = LAN.
    pub mode: c_char,
    /// 0 = client, 1 = device.
    pub c_or_d: c_char,
    pub uid: [c_char; 21],
    pub remote_ip: [c_char; 17],
    pub remote_port: c_ushort,
    pub tx_packet_count: c_uint,
    pub rx_packet_count: c_uint,
    pub iotc_version: c_uint,
    pub vendor_id: c_ushort,
    pub product_id: c_ushort,
    pub group_id: c_ushort,
    pub nat_type: c_uchar,
    pub is_secure: c_uchar,
    /// Fields of newer SDKs (local NAT type, relay type, net state) up to 80 bytes;
    /// not read.
    pub reserved: [c_uchar; 16],
}

/// `struct st_LanSearchInfo2`: one device found by `IOTC_Lan_Search2`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LanSearchInfo2 {
    pub uid: [c_char; 21],
    pub ip: [c_char; 16],
    pub port: c_ushort,
    pub device_name: [c_char; 129],
    pub reserved: c_char,
}

/// `FRAMEINFO_t`: the header the camera sends with each frame. Wyze firmware sends a
/// longer one (40 bytes) that starts the same way: callers size the buffer generously
/// and read these 16 bytes from what arrived.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameInfo {
    pub codec_id: c_ushort,
    /// Bit 0: key frame.
    pub flags: c_uchar,
    pub cam_index: c_uchar,
    pub online_num: c_uchar,
    pub reserved: [c_uchar; 3],
    pub reserved2: c_uint,
    pub timestamp_ms: c_uint,
}

// The layouts the SDK was compiled with: a wrong field type fails the build, not a camera.
const _: () = assert!(std::mem::size_of::<SInfo>() == 80);
const _: () = assert!(std::mem::offset_of!(SInfo, remote_port) == 40);
const _: () = assert!(std::mem::size_of::<LanSearchInfo2>() == 170);
const _: () = assert!(std::mem::offset_of!(LanSearchInfo2, port) == 38);
const _: () = assert!(std::mem::offset_of!(LanSearchInfo2, device_name) == 40);
const _: () = assert!(std::mem::size_of::<FrameInfo>() == 16);
const _: () = assert!(std::mem::offset_of!(FrameInfo, timestamp_ms) == 12);
const _: () = assert!(std::mem::size_of::<c_ulong>() == std::mem::size_of::<usize>());

impl SInfo {
    pub fn zeroed() -> SInfo {
        // SAFETY: plain C data; all-zero is a valid value.
        unsafe { std::mem::zeroed() }
    }
}

impl LanSearchInfo2 {
    pub fn zeroed() -> LanSearchInfo2 {
        // SAFETY: plain C data; all-zero is a valid value.
        unsafe { std::mem::zeroed() }
    }
}

impl FrameInfo {
    pub const KEY_FRAME: u8 = 0x01;

    /// The first 16 bytes of a frame-info buffer of any length; `None` if shorter.
    pub fn parse(b: &[u8]) -> Option<FrameInfo> {
        let b = b.get(..16)?;
        Some(FrameInfo {
            codec_id: u16::from_le_bytes([b[0], b[1]]),
            flags: b[2],
            cam_index: b[3],
            online_num: b[4],
            reserved: [b[5], b[6], b[7]],
            reserved2: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            timestamp_ms: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        })
    }

    /// The 16 bytes as the SDK writes them (little-endian, as on every supported host).
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..2].copy_from_slice(&self.codec_id.to_le_bytes());
        b[2] = self.flags;
        b[3] = self.cam_index;
        b[4] = self.online_num;
        b[5..8].copy_from_slice(&self.reserved);
        b[8..12].copy_from_slice(&self.reserved2.to_le_bytes());
        b[12..16].copy_from_slice(&self.timestamp_ms.to_le_bytes());
        b
    }

    pub fn is_key(&self) -> bool {
        self.flags & Self::KEY_FRAME != 0
    }
}

/// A fixed C string field as Rust text (up to the first NUL).
pub fn c_field(b: &[c_char]) -> String {
    let bytes: Vec<u8> = b
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Copy `s` into a fixed C string field, truncated so a NUL always ends it.
pub fn set_c_field(b: &mut [c_char], s: &str) {
    b.fill(0);
    let room = b.len().saturating_sub(1);
    for (d, s) in b.iter_mut().zip(s.bytes().take(room)) {
        *d = s as c_char;
    }
}

// Media codec ids (`MEDIA_CODEC_*` in AVFRAMEINFO.h).
pub const CODEC_MPEG4: u16 = 0x4C;
pub const CODEC_H264: u16 = 0x4E;
pub const CODEC_MJPEG: u16 = 0x4F;
pub const CODEC_H265: u16 = 0x50;
pub const CODEC_AAC: u16 = 0x88;
pub const CODEC_G711U: u16 = 0x89;
pub const CODEC_G711A: u16 = 0x8A;
pub const CODEC_PCM: u16 = 0x8C;

// IOCtrl types (AVIOCTRLDEFs.h) and the vendor time-sync type tutk-ipcamera-proxy sends.
pub const IOTYPE_USER_IPCAM_START: u32 = 0x01FF;
pub const IOTYPE_USER_IPCAM_STOP: u32 = 0x02FF;
pub const IOTYPE_USER_IPCAM_AUDIOSTART: u32 = 0x0300;
pub const IOTYPE_VENDOR_SET_TIME: u32 = 0xF028;
/// Audio frame-info flags: `(sample rate << 2) | (data bits << 1) | channels`; 8 kHz,
/// 16 bit, mono is 0x02 (AVFRAMEINFO.h).
pub const AUDIO_8K_16BIT_MONO: u8 = 0x02;
/// `avSendIOCtrl` payloads are at most this long.
pub const MAX_IOCTRL_LEN: usize = 1024;

// Error codes.
pub const IOTC_ER_NOERROR: c_int = 0;
pub const IOTC_ER_ALREADY_INITIALIZED: c_int = -3;
pub const IOTC_ER_UNLICENSE: c_int = -10;
pub const IOTC_ER_TIMEOUT: c_int = -13;
pub const IOTC_ER_CAN_NOT_FIND_DEVICE: c_int = -19;
pub const IOTC_ER_INVALID_SID: c_int = -14;
pub const IOTC_ER_EXCEED_MAX_SESSION: c_int = -18;
pub const IOTC_ER_SESSION_CLOSE_BY_REMOTE: c_int = -22;
pub const IOTC_ER_REMOTE_TIMEOUT_DISCONNECT: c_int = -23;
pub const TUTK_ER_INVALID_LICENSE_KEY: c_int = -1004;
pub const AV_ER_INVALID_ARG: c_int = -20000;
pub const AV_ER_EXCEED_MAX_SIZE: c_int = -20006;
/// `AV_ER_WRONG_VIEWACCorPWD` in the SDK headers.
pub const AV_ER_WRONG_VIEWACC_OR_PWD: c_int = -20009;
pub const AV_ER_INVALID_SID: c_int = -20010;
pub const AV_ER_TIMEOUT: c_int = -20011;
pub const AV_ER_DATA_NOREADY: c_int = -20012;
pub const AV_ER_INCOMPLETE_FRAME: c_int = -20013;
pub const AV_ER_LOSED_THIS_FRAME: c_int = -20014;
pub const AV_ER_SESSION_CLOSE_BY_REMOTE: c_int = -20015;
pub const AV_ER_REMOTE_TIMEOUT_DISCONNECT: c_int = -20016;
pub const AV_ER_CLIENT_EXIT: c_int = -20018;

/// The SDK's name for an error code, for messages.
pub fn error_name(code: c_int) -> &'static str {
    match code {
        IOTC_ER_ALREADY_INITIALIZED => "IOTC_ER_ALREADY_INITIALIZED",
        IOTC_ER_UNLICENSE => "IOTC_ER_UNLICENSE",
        IOTC_ER_TIMEOUT => "IOTC_ER_TIMEOUT",
        IOTC_ER_INVALID_SID => "IOTC_ER_INVALID_SID",
        IOTC_ER_EXCEED_MAX_SESSION => "IOTC_ER_EXCEED_MAX_SESSION",
        IOTC_ER_CAN_NOT_FIND_DEVICE => "IOTC_ER_CAN_NOT_FIND_DEVICE",
        IOTC_ER_SESSION_CLOSE_BY_REMOTE => "IOTC_ER_SESSION_CLOSE_BY_REMOTE",
        IOTC_ER_REMOTE_TIMEOUT_DISCONNECT => "IOTC_ER_REMOTE_TIMEOUT_DISCONNECT",
        TUTK_ER_INVALID_LICENSE_KEY => "TUTK_ER_INVALID_LICENSE_KEY",
        AV_ER_INVALID_ARG => "AV_ER_INVALID_ARG",
        AV_ER_EXCEED_MAX_SIZE => "AV_ER_EXCEED_MAX_SIZE",
        AV_ER_WRONG_VIEWACC_OR_PWD => "AV_ER_WRONG_VIEWACCorPWD",
        AV_ER_INVALID_SID => "AV_ER_INVALID_SID",
        AV_ER_TIMEOUT => "AV_ER_TIMEOUT",
        AV_ER_DATA_NOREADY => "AV_ER_DATA_NOREADY",
        AV_ER_INCOMPLETE_FRAME => "AV_ER_INCOMPLETE_FRAME",
        AV_ER_LOSED_THIS_FRAME => "AV_ER_LOSED_THIS_FRAME",
        AV_ER_SESSION_CLOSE_BY_REMOTE => "AV_ER_SESSION_CLOSE_BY_REMOTE",
        AV_ER_REMOTE_TIMEOUT_DISCONNECT => "AV_ER_REMOTE_TIMEOUT_DISCONNECT",
        AV_ER_CLIENT_EXIT => "AV_ER_CLIENT_EXIT",
        _ => "unknown error",
    }
}

// The C signatures, as function pointer types for the loader.
pub type FnSetLicenseKey = unsafe extern "C" fn(key: *const c_char) -> c_int;
pub type FnIotcInitialize2 = unsafe extern "C" fn(udp_port: c_ushort) -> c_int;
pub type FnIotcDeInitialize = unsafe extern "C" fn() -> c_int;
pub type FnAvInitialize = unsafe extern "C" fn(max_channels: c_int) -> c_int;
pub type FnAvDeInitialize = unsafe extern "C" fn() -> c_int;
pub type FnLanSearch2 =
    unsafe extern "C" fn(arr: *mut LanSearchInfo2, len: c_int, wait_ms: c_int) -> c_int;
pub type FnGetSessionId = unsafe extern "C" fn() -> c_int;
pub type FnConnectByUidParallel = unsafe extern "C" fn(uid: *const c_char, sid: c_int) -> c_int;
pub type FnSessionCheck = unsafe extern "C" fn(sid: c_int, info: *mut SInfo) -> c_int;
pub type FnAvClientStart2 = unsafe extern "C" fn(
    sid: c_int,
    user: *const c_char,
    pass: *const c_char,
    timeout_s: c_ulong,
    serv_type: *mut c_ulong,
    channel: c_uchar,
    resend: *mut c_int,
) -> c_int;
pub type FnAvSendIoCtrl =
    unsafe extern "C" fn(av: c_int, io_type: c_uint, data: *const c_char, len: c_int) -> c_int;
pub type FnAvRecvFrameData2 = unsafe extern "C" fn(
    av: c_int,
    buf: *mut c_char,
    buf_max: c_int,
    actual_size: *mut c_int,
    expected_size: *mut c_int,
    frame_info: *mut c_char,
    info_max: c_int,
    actual_info_size: *mut c_int,
    frame_index: *mut c_uint,
) -> c_int;
pub type FnAvRecvAudioData = unsafe extern "C" fn(
    av: c_int,
    buf: *mut c_char,
    buf_max: c_int,
    frame_info: *mut c_char,
    info_max: c_int,
    frame_index: *mut c_uint,
) -> c_int;
pub type FnAvClientExit = unsafe extern "C" fn(sid: c_int, channel: c_uchar);
pub type FnConnectStopBySid = unsafe extern "C" fn(sid: c_int) -> c_int;
pub type FnAvClientStop = unsafe extern "C" fn(av: c_int);
pub type FnSessionClose = unsafe extern "C" fn(sid: c_int);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_info_round_trip_and_short_input() {
        let fi = FrameInfo {
            codec_id: CODEC_H264,
            flags: 1,
            cam_index: 0,
            online_num: 2,
            reserved: [0; 3],
            reserved2: 0,
            timestamp_ms: 0x0102_0304,
        };
        let b = fi.to_bytes();
        assert_eq!(&b[..4], &[0x4E, 0x00, 0x01, 0x00]);
        assert_eq!(&b[12..], &[0x04, 0x03, 0x02, 0x01]);
        assert_eq!(FrameInfo::parse(&b), Some(fi));
        let mut wyze = b.to_vec();
        wyze.resize(40, 0xAA);
        assert_eq!(FrameInfo::parse(&wyze), Some(fi));
        assert_eq!(FrameInfo::parse(&b[..15]), None);
        assert!(fi.is_key());
    }

    #[test]
    fn c_fields_are_bounded() {
        let mut f = [0 as c_char; 5];
        set_c_field(&mut f, "ABCDEFG");
        assert_eq!(c_field(&f), "ABCD");
        assert_eq!(f[4], 0);
        assert_eq!(c_field(&[65, 66]), "AB", "no NUL: the whole field");
    }
}
