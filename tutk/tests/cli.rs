//! The `tutk` command against the fake SDK: scan, sync, stream, and its errors.

mod common;

use common::*;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const UID: &str = "HBNASLSCFC1MN4Y9221A";

fn tutk(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tutk"));
    c.env("TUTK_FAKE_DIR", dir)
        .env("TUTK_LIBRARY_PATH", fake_library())
        .env_remove("TUTK_PASSWORD")
        .env_remove("TUTK_LICENSE_KEY")
        .env_remove("TUTK_FAKE_LICENSE")
        .stdin(Stdio::null());
    c
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn scan_lists_cameras_as_text_and_json() {
    let d = fake_dir("scan");
    add_camera(&d, UID, "10.4.1.11", "010124b21d6049020100014500200002", "");
    add_camera(&d, "ZZZZZZZZZZZZZZZZZZZ1", "10.4.1.12", "porch \"cam\"", "");
    let o = tutk(&d).args(["scan", "-t", "200"]).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        out,
        "uid=HBNASLSCFC1MN4Y9221A ip=10.4.1.11 port=36377 name=010124b21d6049020100014500200002\n\
         uid=ZZZZZZZZZZZZZZZZZZZ1 ip=10.4.1.12 port=36377 name=porch \"cam\"\n"
    );
    assert!(err.contains("received 2 devices"), "{err}");
    let o = tutk(&d)
        .args(["-q", "scan", "--timeout", "100", "--json"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success());
    assert_eq!(err, "", "-q prints nothing but errors");
    assert_eq!(
        out.trim(),
        r#"[{"uid":"HBNASLSCFC1MN4Y9221A","ip":"10.4.1.11","port":36377,"name":"010124b21d6049020100014500200002"},{"uid":"ZZZZZZZZZZZZZZZZZZZ1","ip":"10.4.1.12","port":36377,"name":"porch \"cam\""}]"#
    );
    let empty = fake_dir("scan-empty");
    let o = tutk(&empty)
        .args(["scan", "-t", "50", "--json"])
        .output()
        .unwrap();
    assert_eq!(text(&o).0.trim(), "[]");
}

/// The payload of the last 0xF028 request the camera received.
fn time_sent(dir: &Path) -> i64 {
    let log = std::fs::read_to_string(dir.join(format!("{UID}.ioctl"))).unwrap();
    let line = log
        .lines()
        .rev()
        .find(|l| l.starts_with("0xF028 "))
        .expect("no time request");
    let hex = &line[7..];
    assert_eq!(hex.len(), 16, "8 bytes: {line}");
    assert_eq!(&hex[8..], "00000000", "zero padding: {line}");
    let b: Vec<u8> = (0..4)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    u32::from_le_bytes(b.try_into().unwrap()) as i64
}

#[test]
fn sync_sends_local_time_in_the_proxy_format() {
    let d = fake_dir("sync");
    add_camera(&d, UID, "127.0.0.1", "cam", "");
    // POSIX TZ strings need no zone database: UTC+05:30 and UTC-03:00.
    for (tz, offset) in [("UTC0", 0i64), ("IST-5:30", 19_800), ("BRT3", -10_800)] {
        let before = now();
        let o = tutk(&d)
            .env("TZ", tz)
            .env("TUTK_PASSWORD", PASSWORD)
            .args(["-v", "sync", "-d", UID, "-u", "admin", "-t", "1000"])
            .output()
            .unwrap();
        let after = now();
        let (out, err) = text(&o);
        assert!(o.status.success(), "{err}");
        assert!(err.contains("synced time: sent"), "{err}");
        assert!(
            !out.contains(PASSWORD) && !err.contains(PASSWORD),
            "password printed at -v"
        );
        let sent = time_sent(&d);
        assert!(
            (before + offset..=after + offset).contains(&sent),
            "TZ={tz}: sent {sent}, UTC was {before}..{after}"
        );
    }
    // START is not sent by sync: only the time.
    let log = std::fs::read_to_string(d.join(format!("{UID}.ioctl"))).unwrap();
    assert!(!log.contains("0x01FF"), "{log}");
}

#[test]
fn wrong_password_missing_password_and_missing_library() {
    let d = fake_dir("errors");
    add_camera(&d, UID, "127.0.0.1", "cam", "");
    let o = tutk(&d)
        .env("TUTK_PASSWORD", "wrong-Pass-1")
        .args(["-v", "sync", "-d", UID, "-u", "admin"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("AV_ER_WRONG_VIEWACCorPWD") && err.contains("wrong user name or password"),
        "{err}"
    );
    assert!(!out.contains("wrong-Pass-1") && !err.contains("wrong-Pass-1"));
    // No password anywhere, no terminal to ask on: a usage error, nothing sent.
    let o = tutk(&d)
        .args(["sync", "-d", UID, "-u", "admin"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("TUTK_PASSWORD"));
    let empty = fake_dir("no-sdk");
    let o = tutk(&d)
        .env("TUTK_LIBRARY_PATH", &empty)
        .args(["scan"])
        .output()
        .unwrap();
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1));
    for s in [
        "libIOTCAPIs_ALL.so",
        "libIOTCAPIs.so",
        "libAVAPIs.so",
        "TUTK_LIBRARY_PATH",
        "--library",
    ] {
        assert!(err.contains(s), "{s} not in {err}");
    }
    let o = tutk(&d)
        .args(["scan", "--library", "libc.so.6"])
        .output()
        .unwrap();
    assert!(
        text(&o).1.contains("no symbol IOTC_Initialize2"),
        "{}",
        text(&o).1
    );
}

#[test]
fn the_sdk_is_found_by_its_standard_names_in_a_folder() {
    let d = fake_dir("names");
    add_camera(&d, UID, "127.0.0.1", "cam", "");
    let all = fake_dir("names-all");
    std::os::unix::fs::symlink(fake_library(), all.join("libIOTCAPIs_ALL.so")).unwrap();
    let split = fake_dir("names-split");
    std::os::unix::fs::symlink(fake_library(), split.join("libIOTCAPIs.so")).unwrap();
    std::os::unix::fs::symlink(fake_library(), split.join("libAVAPIs.so")).unwrap();
    for (how, folder) in [("--library", &all), ("TUTK_LIBRARY_PATH", &split)] {
        let mut c = tutk(&d);
        if how == "--library" {
            c.env_remove("TUTK_LIBRARY_PATH")
                .arg("--library")
                .arg(folder);
        } else {
            c.env("TUTK_LIBRARY_PATH", folder);
        }
        let o = c.args(["-v", "scan", "-t", "50"]).output().unwrap();
        let (out, err) = text(&o);
        assert!(o.status.success(), "{how}: {err}");
        assert!(out.contains(UID), "{how}: {out}");
        assert!(
            err.contains(&folder.display().to_string()),
            "{how}: the origin is logged: {err}"
        );
    }
}

#[test]
fn licence_key_for_sdk_4() {
    let d = fake_dir("licence");
    add_camera(&d, UID, "127.0.0.1", "cam", "");
    let key = "LK-0123456789-abcdef";
    let run = |k: Option<&str>| {
        let mut c = tutk(&d);
        c.env("TUTK_FAKE_LICENSE", key);
        if let Some(k) = k {
            c.env("TUTK_LICENSE_KEY", k);
        }
        c.args(["-v", "scan", "-t", "50"]).output().unwrap()
    };
    let o = run(None);
    assert!(text(&o).1.contains("IOTC_ER_UNLICENSE"), "{}", text(&o).1);
    let o = run(Some("not-the-key"));
    assert!(
        text(&o).1.contains("TUTK_ER_INVALID_LICENSE_KEY"),
        "{}",
        text(&o).1
    );
    assert!(!text(&o).1.contains("not-the-key"));
    let o = run(Some(key));
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains(UID));
    assert!(
        !err.contains(key) && !out.contains(key),
        "licence key printed at -v"
    );
}

#[test]
fn stream_to_stdout_decodes_in_a_gstreamer_pipeline_with_status_lines() {
    let d = fake_dir("stream");
    add_camera(&d, UID, "127.0.0.1", "cam", "lost = 20\n");
    let mut tutk = tutk(&d)
        .env("TUTK_PASSWORD", PASSWORD)
        .args([
            "-v",
            "stream",
            "-d",
            UID,
            "-u",
            "admin",
            "-f",
            "-",
            "--status-interval",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let gst = Command::new("gst-launch-1.0")
        .args([
            "-v",
            "fdsrc",
            "!",
            "h264parse",
            "!",
            "avdec_h264",
            "!",
            "fakesink",
            "silent=false",
        ])
        .stdin(tutk.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    unsafe { libc::kill(tutk.id() as i32, libc::SIGINT) };
    let mut err = String::new();
    tutk.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = tutk.wait().unwrap();
    let out = gst.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(status.success(), "{err}");
    // Decoded 320x240 I420 frames reached the sink.
    let decoded = out
        .lines()
        .filter(|l| l.contains("chain") && l.contains("115200 bytes"))
        .count();
    assert!(decoded >= 20, "{decoded} frames decoded; tutk said: {err}");
    let status_lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("status: frames_received="))
        .collect();
    assert!(status_lines.len() >= 2, "{err}");
    let last = status_lines.last().unwrap();
    for k in [
        "dropped_frames=1",
        "skipped_frames=9",
        "codec=H.264",
        "mode=LAN",
        "last_frame_size=",
        "fps=",
    ] {
        assert!(last.contains(k), "{k} not in {last}");
    }
    assert!(!err.contains(PASSWORD));
}

#[test]
fn stream_to_a_file_writes_annex_b_from_a_key_frame() {
    let d = fake_dir("file");
    add_camera(&d, UID, "127.0.0.1", "cam", "");
    let f = d.join("out.h264");
    let mut c = tutk(&d)
        .env("TUTK_PASSWORD", PASSWORD)
        .args(["-q", "stream", "-d", UID, "-u", "admin", "-f"])
        .arg(&f)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    assert!(c.wait().unwrap().success());
    let b = std::fs::read(&f).unwrap();
    assert!(b.len() > 1000, "{} bytes", b.len());
    // NAL types up to the first slice: parameter sets, then an IDR.
    let mut types = Vec::new();
    for i in 0..b.len() - 3 {
        if b[i..i + 3] == [0, 0, 1] {
            types.push(b[i + 3] & 0x1f);
            if matches!(types.last(), Some(1 | 5)) {
                break;
            }
        }
    }
    assert!(types.contains(&7) && types.contains(&8), "{types:?}");
    assert_eq!(
        types.last(),
        Some(&5),
        "the first slice is an IDR: {types:?}"
    );
}
