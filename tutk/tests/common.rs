//! The fake SDK (`tutk-fake-sdk`, built beside the test binaries) and fake cameras.
#![allow(dead_code)] // Each test binary uses a part.

use std::path::PathBuf;

pub const PASSWORD: &str = "Tutk-S3cret!pw";

/// `target/<profile>/libtutk_fake_sdk.so`.
pub fn fake_library() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tutk"));
    let l = bin.parent().unwrap().join("libtutk_fake_sdk.so");
    assert!(
        l.exists(),
        "no {}: build it first (cargo build -p tutk-fake-sdk; scripts/test does)",
        l.display()
    );
    l
}

/// A folder of fake cameras for one test.
pub fn fake_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tutk-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A fake camera (the `tutk-fake-sdk` config format).
pub fn add_camera(dir: &std::path::Path, uid: &str, ip: &str, name: &str, extra: &str) {
    std::fs::write(
        dir.join(format!("{uid}.conf")),
        format!("uid = {uid}\nip = {ip}\nport = 36377\nname = {name}\nusername = admin\npassword = {PASSWORD}\n{extra}"),
    )
    .unwrap();
}
