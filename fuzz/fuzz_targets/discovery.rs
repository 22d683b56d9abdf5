//! What a scan reads from the network: Kasa UDP 9999 answers (the XOR "autokey" codec
//! and the sysinfo JSON) and ONVIF WS-Discovery ProbeMatches (XML), any bytes at all.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kasa_protocol::discovery::fuzz_one(data);
    // The same bytes as they would arrive encoded, so the JSON reader sees them too.
    kasa_protocol::discovery::fuzz_one(&kasa_protocol::discovery::encrypt(data));
    cam_discovery::onvif::fuzz_one(data);
});
