//! What the ring recorder reads from files and frames it did not write itself: a
//! segment left by a crash (MP4 box walk, repair, the "playable yet?" check) and H.264
//! access units (IDR detection). Arbitrary bytes must never panic, and the repair must
//! only ever shorten or remove a file.
//! Run (stable toolchain): see fuzz/README.md.
#![no_main]
use gstringrec::{h264, store};
use std::io::Write;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for ls in 1..=4 {
        let _ = h264::has_idr(data, ls);
    }
    let _ = h264::nal_length_size(data);
    // A file per process, in memory when /dev/shm exists.
    let dir = std::path::Path::new("/dev/shm");
    let dir = if dir.is_dir() { dir.to_path_buf() } else { std::env::temp_dir() };
    let path = dir.join(format!("ringrec-fuzz-{}.mp4", std::process::id()));
    std::fs::File::create(&path).unwrap().write_all(data).unwrap();
    let _ = store::has_media(&path, 1);
    let before = data.len() as u64;
    match store::repair(&path) {
        Ok(store::Repair::Removed) => assert!(!path.exists()),
        Ok(_) => assert!(std::fs::metadata(&path).unwrap().len() <= before),
        Err(_) => {}
    }
    let _ = std::fs::remove_file(&path);
});
