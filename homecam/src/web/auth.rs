//! Logins for the web app: users with argon2 password hashes (`homecam passwd` writes
//! them), session cookies, and failed logins slowed down per client address.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

pub const COOKIE: &str = "homecam_session";
/// Sessions kept at most; the oldest goes first.
const MAX_SESSIONS: usize = 10_000;
/// Client addresses with failed logins remembered at most.
const MAX_FAILURES: usize = 10_000;
/// Failures are forgotten after this long without another one.
const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);
/// Longest wait between two attempts from one address.
const MAX_LOCKOUT: Duration = Duration::from_secs(60);
/// Failures allowed before attempts are slowed down.
const FREE_FAILURES: u32 = 3;
/// Longest user name and password accepted.
pub const MAX_FIELD: usize = 256;

/// A password hashed with argon2id and a random salt (the PHC string `$argon2id$...`).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// `user:hash` lines; `#` comments.
pub fn parse_users(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(u, h)| (u.to_string(), h.to_string()))
        .collect()
}

/// Adds or replaces `user` in the users file (created 0600).
pub fn set_user(file: &Path, user: &str, password: &str) -> Result<(), String> {
    if user.is_empty() || user.len() > MAX_FIELD || user.contains([':', '\n', '\r']) {
        return Err("a user name must be 1-256 characters without ':'".into());
    }
    if password.is_empty() || password.len() > MAX_FIELD {
        return Err("the password must be 1-256 characters".into());
    }
    let hash = hash_password(password)?;
    let old = std::fs::read_to_string(file).unwrap_or_default();
    let mut lines: Vec<String> = old
        .lines()
        .filter(|l| l.split_once(':').map(|(u, _)| u.trim()) != Some(user))
        .map(str::to_string)
        .collect();
    lines.push(format!("{user}:{hash}"));
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = file.with_extension("new");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        f.write_all((lines.join("\n") + "\n").as_bytes())
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
    }
    std::fs::rename(&tmp, file).map_err(|e| format!("{}: {e}", file.display()))
}

struct Users {
    file: PathBuf,
    modified: Option<SystemTime>,
    users: HashMap<String, String>,
}

struct Session {
    user: String,
    expires: Instant,
    created: Instant,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Why a login was refused.
#[derive(Debug, PartialEq)]
pub enum Refused {
    /// Wrong user or password.
    Wrong,
    /// Too many failures from this address: wait this long.
    Wait(Duration),
    /// No users file yet (`homecam passwd`).
    NoUsers,
}

pub struct Auth {
    users: Mutex<Users>,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    session_len: Duration,
    /// A hash to verify against for unknown users, so that a wrong user name costs the
    /// same time as a wrong password.
    dummy: String,
}

impl Auth {
    pub fn new(users_file: PathBuf, session_len: Duration) -> Auth {
        let a = Auth {
            users: Mutex::new(Users {
                file: users_file,
                modified: None,
                users: HashMap::new(),
            }),
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            session_len,
            dummy: hash_password("not a password of anyone").unwrap_or_default(),
        };
        a.reload();
        a
    }

    pub fn user_count(&self) -> usize {
        self.reload();
        self.users.lock().unwrap().users.len()
    }

    pub fn users_file(&self) -> PathBuf {
        self.users.lock().unwrap().file.clone()
    }

    /// Reads the users file again when it changed (`homecam passwd` while running).
    fn reload(&self) {
        let mut u = self.users.lock().unwrap();
        let m = std::fs::metadata(&u.file).and_then(|m| m.modified()).ok();
        if m != u.modified || m.is_none() {
            u.modified = m;
            u.users = std::fs::read_to_string(&u.file)
                .map(|t| parse_users(&t))
                .unwrap_or_default();
        }
    }

    /// Whether `ip` must wait before another attempt.
    pub fn must_wait(&self, ip: IpAddr) -> Option<Duration> {
        let f = self.failures.lock().unwrap();
        let x = f.get(&ip)?;
        let wait = lockout(x.count);
        let since = x.last.elapsed();
        (since < wait).then(|| wait - since)
    }

    /// Checks a login (slow: argon2; run it off the async runtime). On success, a new
    /// session token.
    pub fn login(&self, ip: IpAddr, user: &str, password: &str) -> Result<String, Refused> {
        if let Some(w) = self.must_wait(ip) {
            return Err(Refused::Wait(w));
        }
        self.reload();
        let hash = {
            let u = self.users.lock().unwrap();
            if u.users.is_empty() {
                return Err(Refused::NoUsers);
            }
            u.users.get(user).cloned()
        };
        let ok = {
            let h = hash.as_deref().unwrap_or(&self.dummy);
            let good = PasswordHash::new(h)
                .map(|p| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &p)
                        .is_ok()
                })
                .unwrap_or(false);
            good && hash.is_some()
        };
        if !ok {
            let mut f = self.failures.lock().unwrap();
            f.retain(|_, x| x.last.elapsed() < FAILURE_MEMORY);
            if f.len() >= MAX_FAILURES {
                if let Some(oldest) = f.iter().min_by_key(|(_, x)| x.last).map(|(k, _)| *k) {
                    f.remove(&oldest);
                }
            }
            let e = f.entry(ip).or_insert(Failures {
                count: 0,
                last: Instant::now(),
            });
            e.count += 1;
            e.last = Instant::now();
            return Err(Refused::Wrong);
        }
        self.failures.lock().unwrap().remove(&ip);
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|_| Refused::Wrong)?;
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut s = self.sessions.lock().unwrap();
        s.retain(|_, x| x.expires > Instant::now());
        if s.len() >= MAX_SESSIONS {
            if let Some(oldest) = s
                .iter()
                .min_by_key(|(_, x)| x.created)
                .map(|(k, _)| k.clone())
            {
                s.remove(&oldest);
            }
        }
        s.insert(
            token.clone(),
            Session {
                user: user.to_string(),
                expires: Instant::now() + self.session_len,
                created: Instant::now(),
            },
        );
        Ok(token)
    }

    /// The user of a session token, if it is valid.
    pub fn session(&self, token: &str) -> Option<String> {
        let s = self.sessions.lock().unwrap();
        s.get(token)
            .filter(|x| x.expires > Instant::now())
            .map(|x| x.user.clone())
    }

    pub fn logout(&self, token: &str) {
        self.sessions.lock().unwrap().remove(token);
    }

    pub fn session_len(&self) -> Duration {
        self.session_len
    }
}

/// How long an address waits after `count` failures: nothing for the first few, then
/// 1, 2, 4... seconds up to a minute.
fn lockout(count: u32) -> Duration {
    if count < FREE_FAILURES {
        return Duration::ZERO;
    }
    let exp = (count - FREE_FAILURES).min(6);
    Duration::from_secs(1 << exp).min(MAX_LOCKOUT)
}

/// The session token in a `Cookie` header.
pub fn cookie_token(header: &str) -> Option<&str> {
    header
        .split(';')
        .map(str::trim)
        .find_map(|c| c.strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_file_round_trip_and_login() {
        let dir = std::env::temp_dir().join(format!("homecam-auth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = dir.join("users");
        set_user(&file, "anna", "correct horse").unwrap();
        set_user(&file, "ben", "battery").unwrap();
        set_user(&file, "anna", "staple").unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            !text.contains("staple") && text.contains("$argon2id$"),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let auth = Auth::new(file.clone(), Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(auth.login(ip, "anna", "correct horse"), Err(Refused::Wrong));
        let t = auth.login(ip, "anna", "staple").unwrap();
        assert_eq!(auth.session(&t).as_deref(), Some("anna"));
        assert_eq!(
            cookie_token(&format!("a=b; {COOKIE}={t}")),
            Some(t.as_str())
        );
        assert_eq!(cookie_token(&format!("{COOKIE}=../etc")), None);
        auth.logout(&t);
        assert_eq!(auth.session(&t), None);
        // Repeated failures: slowed down, per address.
        for _ in 0..FREE_FAILURES {
            assert_eq!(auth.login(ip, "nobody", "x"), Err(Refused::Wrong));
        }
        assert!(matches!(
            auth.login(ip, "ben", "battery"),
            Err(Refused::Wait(_))
        ));
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(auth.login(other, "ben", "battery").is_ok());
        assert!(set_user(&file, "a:b", "x").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn lockout_grows_and_is_capped() {
        assert_eq!(lockout(0), Duration::ZERO);
        assert_eq!(lockout(FREE_FAILURES), Duration::from_secs(1));
        assert_eq!(lockout(FREE_FAILURES + 2), Duration::from_secs(4));
        assert_eq!(lockout(1000), MAX_LOCKOUT);
    }
}
