//! The simulated Tapo camera (`tapo-sim`) as a separate process: for the demos of
//! `homecam` and `cam`, which so link no simulator code, and for tests and benchmarks
//! that freeze it (SIGSTOP) or reboot it (its `restart` command).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Have the kernel kill the process `cmd` starts (SIGKILL) when the thread that started
/// it exits, so a test process that aborts, or a daemon killed with SIGKILL, leaves no
/// simulator behind holding its ports and its standard error (which would keep a
/// `cargo test | tee` pipe open for ever). Start such commands from a thread that lives
/// as long as the child should.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The simulated Tapo camera as its own process (so tests can freeze it with SIGSTOP),
/// killed on drop.
pub struct TapoProcess {
    child: Child,
    stdin: ChildStdin,
    lines: Arc<Mutex<Vec<String>>>,
    pub port: u16,
}

/// The `tapo-sim` program beside the running one (`homecam`, `cam`: the same build).
pub fn beside_current_exe() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("where am I: {e}"))?;
    let bin = exe.with_file_name("tapo-sim");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "the simulated camera needs the tapo-sim program beside {} (cargo build -p tapo-sim)",
            exe.display()
        ))
    }
}

impl TapoProcess {
    /// Start `bin` (the `tapo-sim` binary) on a free port with `password`; `extra` are
    /// more arguments (`--pattern`, `--fps`...).
    pub fn spawn(bin: &Path, password: &str, extra: &[&str]) -> Result<TapoProcess, String> {
        let mut cmd = Command::new(bin);
        cmd.args(["--port", "0", "--password-env", "TAPO_PROCESS_PW"])
            .args(extra)
            .env("TAPO_PROCESS_PW", password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let mut out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut first = String::new();
        let _ = out.read_line(&mut first);
        let Some(port) = first
            .split("rtsp://127.0.0.1:")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the simulated camera did not start: {first:?}"));
        };
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        Ok(TapoProcess {
            child,
            stdin,
            lines,
            port,
        })
    }

    /// [`TapoProcess::spawn`] for tests: panics with the reason.
    pub fn start(bin: &Path, password: &str, extra: &[&str]) -> TapoProcess {
        assert!(
            bin.exists(),
            "no {}: build it first (cargo build -p tapo-sim; scripts/test does)",
            bin.display()
        );
        TapoProcess::spawn(bin, password, extra).unwrap()
    }

    /// `rtsp://admin:<password>@127.0.0.1:<port>/stream2`.
    pub fn uri(&self, password: &str) -> String {
        format!(
            "rtsp://admin:{}@127.0.0.1:{}/stream2",
            password.replace('!', "%21"),
            self.port
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    /// A command on the simulator's standard input (`restart 3000`, `video-stall 5000`).
    pub fn command(&mut self, cmd: &str) {
        let _ = writeln!(self.stdin, "{cmd}");
        let _ = self.stdin.flush();
    }

    /// `stats` from the simulator: (video frames, connections, keep-alives).
    pub fn stats(&mut self) -> (u64, u64, u64) {
        self.command("stats");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let found = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|l| l.contains("stats video_frames="))
                .cloned();
            if let Some(l) = found {
                let num = |k: &str| -> u64 {
                    l.split(&format!("{k}="))
                        .nth(1)
                        .and_then(|s| s.split_whitespace().next())
                        .and_then(|s| s.parse().ok())
                        .unwrap()
                };
                let r = (num("video_frames"), num("connections"), num("keepalives"));
                self.lines.lock().unwrap().clear();
                return r;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("tapo-sim did not answer stats");
    }
}

impl Drop for TapoProcess {
    fn drop(&mut self) {
        self.thaw();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
