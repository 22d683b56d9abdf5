//! Just enough Annex-B H.264 inspection to gate output on the first key frame and to
//! flag delta units. Kasa sends one access unit per part with 4-byte start codes, SPS
//! and PPS in front of every IDR (protocols.md section 1).

pub const NAL_SLICE: u8 = 1;
pub const NAL_IDR: u8 = 5;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;

/// Iterate over the NAL units of an Annex-B buffer (3- or 4-byte start codes), yielding
/// each NAL without its start code.
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = next_start(data, 0);
    std::iter::from_fn(move || {
        let (_, begin) = pos?;
        let next = next_start(data, begin);
        let end = match next {
            Some((sc, _)) => sc,
            None => data.len(),
        };
        pos = next;
        let mut nal = &data[begin..end];
        // A 4-byte start code leaves a trailing zero on the previous NAL.
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        Some(nal)
    })
}

/// Find the next start code at or after `from`: `(start_code_pos, payload_pos)`.
fn next_start(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let j = memchr::memmem::find(data.get(from..)?, &[0, 0, 1])?;
    let sc = from + j;
    Some((sc, sc + 3))
}

/// What an access unit contains.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AccessUnitInfo {
    pub sps: bool,
    pub pps: bool,
    pub idr: bool,
    /// Any coded slice (IDR or not).
    pub vcl: bool,
}

impl AccessUnitInfo {
    pub fn of(data: &[u8]) -> Self {
        let mut info = AccessUnitInfo::default();
        for nal in nal_units(data) {
            let Some(&h) = nal.first() else { continue };
            match h & 0x1f {
                NAL_SPS => info.sps = true,
                NAL_PPS => info.pps = true,
                NAL_IDR => {
                    info.idr = true;
                    info.vcl = true;
                }
                1..=4 => info.vcl = true,
                _ => {}
            }
        }
        info
    }

    /// A unit a decoder can start from.
    pub fn is_decodable_start(&self) -> bool {
        self.sps && self.pps && self.idr
    }
}

/// The last SPS and PPS NAL units (without start codes) in an access unit, kept to put in
/// front of a later IDR that arrives without them.
pub fn parameter_sets(data: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let (mut sps, mut pps) = (None, None);
    for nal in nal_units(data) {
        match nal.first().map(|h| h & 0x1f) {
            Some(NAL_SPS) => sps = Some(nal.to_vec()),
            Some(NAL_PPS) => pps = Some(nal.to_vec()),
            _ => {}
        }
    }
    (sps, pps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify() {
        let au = b"\0\0\0\x01\x67\x42\0\0\0\x01\x68\xce\0\0\x01\x65\x88\x84";
        let i = AccessUnitInfo::of(au);
        assert!(i.is_decodable_start() && i.vcl);
        let nals: Vec<_> = nal_units(au).collect();
        assert_eq!(
            nals,
            vec![&b"\x67\x42"[..], &b"\x68\xce"[..], &b"\x65\x88\x84"[..]]
        );
        let p = AccessUnitInfo::of(b"\0\0\0\x01\x41\x9a");
        assert!(!p.idr && p.vcl);
        assert_eq!(AccessUnitInfo::of(b"junk"), AccessUnitInfo::default());
        assert_eq!(AccessUnitInfo::of(b""), AccessUnitInfo::default());
        assert_eq!(AccessUnitInfo::of(b"\0\0\x01"), AccessUnitInfo::default());
    }
}
