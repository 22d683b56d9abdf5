//! Raw bytes after TLS -> response head, de-chunking, multipart framing, H.264 scan.
//! Run (stable toolchain): see fuzz/README.md.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kasa_protocol::stream::fuzz_one(data);
});
