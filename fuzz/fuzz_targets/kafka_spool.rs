//! homecam's Kafka spool reads back a file that a crash, a full disk or bit rot may have
//! left in any state. Arbitrary bytes as `spool.log` (with a head file at 0) must never
//! panic: opening repairs or cuts, every record read is within the bounds, and the spool
//! still takes and gives back a new record. The module is compiled in as it is (it has no
//! dependency but crc32fast), so the fuzzer does not build GStreamer or librdkafka.
//! Run (stable toolchain): see fuzz/README.md.
#![no_main]

#[path = "../../homecam/src/spool.rs"]
#[allow(dead_code)]
mod spool;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    let dir = base.join(format!("spool-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("spool.log"), data).unwrap();
    let _ = spool::parse(data);
    let mut s = spool::Spool::open(&dir, 1 << 16).unwrap();
    assert!(s.pending_bytes() <= data.len() as u64);
    let mut at = s.head();
    let mut n = 0;
    while let Ok(Some(e)) = s.read_at(at) {
        assert!(e.key.len() <= spool::MAX_KEY && e.payload.len() <= spool::MAX_PAYLOAD);
        assert!(e.end > at);
        at = e.end;
        n += 1;
    }
    assert_eq!(at, s.end(), "open left {n} whole records and then something else");
    let end = s.end();
    s.append(1, b"cam", b"after").unwrap();
    let back = s.read_at(end).unwrap().unwrap();
    assert_eq!(back.payload, b"after");
    s.advance(s.end()).unwrap();
    assert!(s.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
});
