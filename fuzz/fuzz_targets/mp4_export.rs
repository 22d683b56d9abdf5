//! What mp4-export reads from disk: arbitrary bytes as a recording segment, and when they
//! parse, an export of all of it. It fails on a panic, on pieces that do not add up to
//! the size announced, or on a piece outside the file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(seg) = mp4_export::parse(data) else {
        return;
    };
    let _ = seg.timeline(1.5);
    let inputs = [mp4_export::Input {
        start: 1000.0,
        segment: &seg,
        file: 0,
    }];
    if let Ok(e) = mp4_export::build(&inputs, 999.0, 1000.0 + 86_400.0, 1.5) {
        let mut total = 0u64;
        for p in e.pieces(0, e.size) {
            match p {
                mp4_export::Piece::Header { offset, len } => {
                    assert!(offset + len <= e.header.len() as u64);
                    total += len;
                }
                mp4_export::Piece::File { file, offset, len } => {
                    assert_eq!(file, 0);
                    assert!(offset + len <= data.len() as u64, "a piece outside the file");
                    total += len;
                }
            }
        }
        assert_eq!(total, e.size);
    }
});
