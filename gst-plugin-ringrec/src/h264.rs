//! The little of H.264 the recorder reads: whether an access unit in AVC form
//! (length-prefixed NAL units, as `h264parse` gives to muxers) holds an IDR slice.
//!
//! `h264parse` flags every access unit with an I slice as a key frame, including
//! non-IDR I frames; a segment that starts at one of those does not decode (found by
//! the boundary test). Segments start at IDR frames only.

/// NAL unit length size from an `avcC` record (`codec_data`): 1, 2 or 4.
pub fn nal_length_size(avcc: &[u8]) -> usize {
    match avcc.get(4) {
        Some(b) if avcc[0] == 1 => (b & 3) as usize + 1,
        _ => 4,
    }
}

/// NAL unit length size of H.264 caps in AVC form (from their `codec_data`); 4 when the
/// caps have none.
pub fn caps_nal_length_size(caps: Option<&gst::CapsRef>) -> usize {
    caps.and_then(|c| c.structure(0))
        .and_then(|s| s.get::<gst::Buffer>("codec_data").ok())
        .and_then(|d| d.map_readable().ok().map(|m| nal_length_size(&m)))
        .unwrap_or(4)
}

/// Whether the access unit holds an IDR slice (NAL type 5). Walks the length
/// prefixes only; a malformed length ends the walk.
pub fn has_idr(au: &[u8], length_size: usize) -> bool {
    if !(1..=4).contains(&length_size) {
        return false;
    }
    let mut pos = 0usize;
    while pos + length_size < au.len() {
        let len = au[pos..pos + length_size]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        let start = pos + length_size;
        if len == 0 || len > au.len() - start {
            return false;
        }
        if au[start] & 0x1f == 5 {
            return true;
        }
        pos = start + len;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&(n.len() as u32).to_be_bytes());
            v.extend_from_slice(n);
        }
        v
    }

    #[test]
    fn idr_and_non_idr() {
        let sps: &[u8] = &[0x67, 0x42, 0xc0, 0x1e];
        let pps: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
        let idr: &[u8] = &[0x65, 0x88, 0x84];
        let islice: &[u8] = &[0x41, 0x9a, 0x00]; // non-IDR slice (type 1)
        assert!(has_idr(&au(&[sps, pps, idr]), 4));
        assert!(!has_idr(&au(&[islice]), 4));
        assert!(!has_idr(&au(&[sps, pps]), 4));
        // 2-byte lengths.
        let mut two = vec![0, 3];
        two.extend_from_slice(idr);
        assert!(has_idr(&two, 2));
        assert_eq!(nal_length_size(&[1, 0x42, 0, 0x1e, 0xff, 0xe1]), 4);
        assert_eq!(nal_length_size(&[1, 0x42, 0, 0x1e, 0xfd]), 2);
        assert_eq!(nal_length_size(&[]), 4);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u32;
        for n in 0..20_000usize {
            let len = n % 97;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            for ls in 0..=5 {
                let _ = has_idr(&bytes, ls);
            }
            let _ = nal_length_size(&bytes);
        }
        // Lengths that point past the end.
        assert!(!has_idr(&[0xff, 0xff, 0xff, 0xff, 0x65], 4));
        assert!(!has_idr(&[0, 0, 0, 0, 0x65], 4));
    }
}
