//! The reconnect loop every camera source runs: attempt a connection and the session on
//! it; when it fails or is lost, count the failure, give up after `max-reconnects` in a
//! row, else report the source offline and wait the backoff (less what the attempt
//! already took: an attempt that waited out its timeout is retried at once). A stop
//! ends every wait at once. What a connection, a session and "offline" mean stays with
//! each source (kasasrc's HTTPS stream, the TUTK SDK's session).

use crate::timing::backoff_delay;
use crate::Cancel;
use std::time::{Duration, Instant};

/// When to retry and when to give up (the sources' `max-reconnects`, `reconnect-delay`
/// and `max-reconnect-delay`).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures in a row before giving up; -1: never.
    pub max_reconnects: i32,
    pub delay: Duration,
    pub max_delay: Duration,
}

/// Where the loop stands when an attempt starts.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Failures in a row so far (0 on the first attempt and after progress).
    pub failures: u32,
    /// Since when the camera has been unreachable (None before the first failure and
    /// after progress).
    pub offline_since: Option<Instant>,
}

/// How one attempt ended.
pub enum Attempt<E> {
    /// Retry: no connection, or the session on it was lost. `progress`: the attempt got
    /// somewhere (connected, or delivered media: the source says which), so the failure
    /// count and the backoff start over.
    Retry { reason: E, progress: bool },
    /// Stop, without retrying: stopped, downstream ended, or an error that retrying
    /// cannot fix (the source reports it).
    Stop,
}

/// What the offline report gets, before the wait.
pub struct Offline<'a, E> {
    pub reason: &'a E,
    /// Failures in a row (1 for the first).
    pub attempt: u32,
    pub retry_in: Duration,
    pub offline_for: Duration,
}

/// How the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End<E> {
    /// Stopped (the cancel, an attempt's `Stop`, or the offline report said so).
    Stopped,
    /// `max_reconnects` failures in a row: the last one's reason.
    GaveUp { reason: E, failures: u32 },
}

/// Runs `attempt` until it stops, `cancel` is cancelled or the policy gives up; `offline`
/// reports each failure before its wait and returns false to stop.
pub fn run<E>(
    policy: &Policy,
    cancel: &Cancel,
    mut attempt: impl FnMut(&Progress) -> Attempt<E>,
    mut offline: impl FnMut(Offline<'_, E>) -> bool,
) -> End<E> {
    let mut p = Progress {
        failures: 0,
        offline_since: None,
    };
    loop {
        if cancel.is_cancelled() {
            return End::Stopped;
        }
        let started = Instant::now();
        let (reason, progress) = match attempt(&p) {
            Attempt::Stop => return End::Stopped,
            Attempt::Retry { reason, progress } => (reason, progress),
        };
        if cancel.is_cancelled() {
            return End::Stopped;
        }
        if progress {
            p = Progress {
                failures: 0,
                offline_since: None,
            };
        }
        p.failures += 1;
        let since = *p.offline_since.get_or_insert_with(Instant::now);
        if policy.max_reconnects >= 0 && p.failures > policy.max_reconnects as u32 {
            return End::GaveUp {
                reason,
                failures: p.failures,
            };
        }
        let delay = backoff_delay(policy.delay, policy.max_delay, p.failures)
            .saturating_sub(started.elapsed());
        let go_on = offline(Offline {
            reason: &reason,
            attempt: p.failures,
            retry_in: delay,
            offline_for: since.elapsed(),
        });
        if !go_on || !cancel.sleep(delay) {
            return End::Stopped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn policy(max: i32) -> Policy {
        Policy {
            max_reconnects: max,
            delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_gives_up_after_max_failures() {
        let cancel = Cancel::new();
        let mut reports = Vec::new();
        let mut attempts = 0;
        let end = run(
            &policy(5),
            &cancel,
            |p| {
                assert_eq!(p.failures, attempts);
                assert_eq!(p.offline_since.is_some(), attempts > 0);
                attempts += 1;
                Attempt::Retry {
                    reason: format!("refused {attempts}"),
                    progress: false,
                }
            },
            |o| {
                // What the attempt took is taken off the wait; these take no time.
                reports.push((o.attempt, o.retry_in.as_millis().div_ceil(10) * 10));
                true
            },
        );
        assert_eq!(
            end,
            End::GaveUp {
                reason: "refused 6".to_string(),
                failures: 6
            }
        );
        assert_eq!(
            reports,
            [(1, 10), (2, 20), (3, 40), (4, 40), (5, 40)],
            "one report per failure before the give-up"
        );
        // max 0: the first failure gives up, with no wait and no report.
        let mut reported = false;
        let end = run(
            &policy(0),
            &cancel,
            |_| Attempt::Retry {
                reason: "lost",
                progress: true,
            },
            |_| {
                reported = true;
                true
            },
        );
        assert_eq!(
            end,
            End::GaveUp {
                reason: "lost",
                failures: 1
            }
        );
        assert!(!reported);
    }

    #[test]
    fn progress_starts_the_count_over_and_reports_come_in_order() {
        let cancel = Cancel::new();
        let log = std::cell::RefCell::new(Vec::new());
        let mut n = 0;
        // Offline twice, online (progress), lost, offline once, then stop.
        let script = [false, false, true, false, false];
        let end = run(
            &policy(3),
            &cancel,
            |p| {
                if n == script.len() {
                    return Attempt::Stop;
                }
                if script[n] {
                    log.borrow_mut()
                        .push(format!("online after {} failures", p.failures));
                }
                n += 1;
                Attempt::Retry {
                    reason: n,
                    progress: script[n - 1],
                }
            },
            |o| {
                log.borrow_mut()
                    .push(format!("offline {} ({})", o.attempt, o.reason));
                true
            },
        );
        assert_eq!(end, End::Stopped);
        assert_eq!(
            log.into_inner(),
            [
                "offline 1 (1)",
                "offline 2 (2)",
                "online after 2 failures",
                "offline 1 (3)",
                "offline 2 (4)",
                "offline 3 (5)",
            ]
        );
    }

    #[test]
    fn a_cancel_during_a_connect_or_a_wait_stops_at_once() {
        // During the attempt (a connect blocked until the cancel aborts it).
        let cancel = Arc::new(Cancel::new());
        let c2 = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            c2.cancel();
        });
        let mut offline_reports = 0;
        let end = run(
            &policy(-1),
            &cancel,
            |_| {
                let (tx, rx) = std::sync::mpsc::channel::<()>();
                cancel.set_abort(move || {
                    let _ = tx.send(());
                });
                let _ = rx.recv_timeout(Duration::from_secs(60));
                Attempt::Retry {
                    reason: "connect aborted",
                    progress: false,
                }
            },
            |_| {
                offline_reports += 1;
                true
            },
        );
        t.join().unwrap();
        assert_eq!(end, End::Stopped);
        assert_eq!(offline_reports, 0, "no offline report for a stop");
        // During a long wait.
        let cancel = Arc::new(Cancel::new());
        let c2 = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            c2.cancel();
        });
        let started = Instant::now();
        let slow = Policy {
            max_reconnects: -1,
            delay: Duration::from_secs(600),
            max_delay: Duration::from_secs(600),
        };
        let end = run(
            &slow,
            &cancel,
            |_| Attempt::Retry {
                reason: (),
                progress: false,
            },
            |_| true,
        );
        t.join().unwrap();
        assert_eq!(end, End::Stopped);
        assert!(started.elapsed() < Duration::from_secs(300));
    }
}
