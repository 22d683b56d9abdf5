//! What tutksrc and tutk parse from outside: `tutk://` URIs (user input) and the frame
//! info the SDK fills in (camera data, any length).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Err(e) = gsttutksrc::uri::parse(s) {
            assert!(!e.contains("secret"), "an error echoes the input");
        }
    }
    if let Some(fi) = tutk::ffi::FrameInfo::parse(data) {
        assert_eq!(tutk::ffi::FrameInfo::parse(&fi.to_bytes()), Some(fi));
    }
    let field: Vec<std::os::raw::c_char> = data.iter().map(|&b| b as std::os::raw::c_char).collect();
    let _ = tutk::ffi::c_field(&field);
});
