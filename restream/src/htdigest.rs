//! The htdigest file of the RTSP users: `user:realm:MD5(user:realm:password)` lines, as
//! Apache's `htdigest` writes them and gst-rtsp-server reads them. Digest authentication
//! needs this hash (not a slow one): the file is as sensitive as the passwords and is
//! written with mode 0600.

use crate::server::REALM;
use md5::{Digest, Md5};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The line of `user` with `password`.
pub fn line(user: &str, password: &str) -> String {
    let hash = Md5::digest(format!("{user}:{REALM}:{password}").as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("{user}:{REALM}:{hex}")
}

/// Sets `user`'s password in the file at `path` (created if need be), keeping the others.
pub fn set_user(path: &Path, user: &str, password: &str) -> Result<(), String> {
    if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
        return Err(format!("{user:?}: a user name without ':'"));
    }
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let prefix = format!("{user}:{REALM}:");
    let mut lines: Vec<String> = old
        .lines()
        .filter(|l| !l.starts_with(&prefix) && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    lines.push(line(user, password));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    f.write_all((lines.join("\n") + "\n").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_apache_htdigest_lines() {
        // MD5("anna:homecam:secret"), by Python's hashlib.
        assert_eq!(
            line("anna", "secret"),
            "anna:homecam:60293e4044a7d5a49ae6bfb2e43bf988"
        );
        let dir = std::env::temp_dir().join(format!("htdigest-{}", std::process::id()));
        let f = dir.join("users");
        set_user(&f, "anna", "one").unwrap();
        set_user(&f, "ben", "two").unwrap();
        set_user(&f, "anna", "three").unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(
            text,
            format!("{}\n{}\n", line("ben", "two"), line("anna", "three"))
        );
        assert!(!text.contains("three"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(set_user(&f, "a:b", "x").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
