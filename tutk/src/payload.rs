//! IOCtrl payloads, byte for byte.

use crate::ffi;

/// `SMsgAVIoctrlAVStream` for `IOTYPE_USER_IPCAM_START`/`STOP`: `{u32 channel; u8 reserved[4]}`.
pub fn start_stream(channel: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&channel.to_le_bytes());
    b
}

/// The camera-clock payload tutk-ipcamera-proxy sends (vendor type `0xF028`): the local
/// wall-clock time (UTC plus the local offset, since these cameras keep local time and
/// no zone) as 4 bytes little-endian epoch seconds, zero-padded to 8 bytes.
pub fn set_time(utc_epoch_s: i64, local_offset_s: i64) -> [u8; 8] {
    let local = (utc_epoch_s + local_offset_s).clamp(0, u32::MAX as i64) as u32;
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&local.to_le_bytes());
    b
}

/// The IOCtrl type for [`set_time`].
pub const SET_TIME_TYPE: u32 = ffi::IOTYPE_VENDOR_SET_TIME;

/// This machine's offset from UTC at `utc_epoch_s` (from the TZ environment variable or
/// /etc/localtime, daylight saving included), in seconds east of UTC.
pub fn local_offset(utc_epoch_s: i64) -> i64 {
    let t = utc_epoch_s as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        0
    } else {
        tm.tm_gmtoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_payload_bytes() {
        assert_eq!(start_stream(0), [0; 8]);
        assert_eq!(start_stream(3), [3, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn time_payload_is_local_time_le() {
        // 2026-11-22T01:30:00Z in UTC+05:30.
        let b = set_time(1_795_311_000, 19_800);
        assert_eq!(
            u32::from_le_bytes(b[..4].try_into().unwrap()),
            1_795_330_800
        );
        assert_eq!(&b[4..], &[0, 0, 0, 0]);
        assert_eq!(
            set_time(1_795_311_000, 0)[..4],
            1_795_311_000u32.to_le_bytes()
        );
    }
}
