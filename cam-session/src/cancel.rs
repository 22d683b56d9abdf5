//! One stop handle for every camera session: a flag, a wait that ends the moment it is
//! set, and a way to reach into the call that is blocking right now (a socket's
//! `shutdown`, the TUTK SDK's `IOTC_Connect_Stop_BySID`).

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

type Abort = Box<dyn Fn() + Send>;

#[derive(Default)]
pub struct Cancel {
    state: Mutex<State>,
    cv: Condvar,
}

#[derive(Default)]
struct State {
    cancelled: bool,
    abort: Option<Abort>,
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Stop: flag it, wake every [`Cancel::sleep`], and abort the blocking call in
    /// progress, if one is registered.
    pub fn cancel(&self) {
        let abort = {
            let mut s = self.state.lock().unwrap();
            s.cancelled = true;
            s.abort.take()
        };
        self.cv.notify_all();
        if let Some(a) = abort {
            a();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.state.lock().unwrap().cancelled
    }

    /// Clear a previous stop (a flush that is over, a restart).
    pub fn reset(&self) {
        let mut s = self.state.lock().unwrap();
        s.cancelled = false;
        s.abort = None;
    }

    /// Register how to abort the call about to block (replacing any earlier one); `false`,
    /// with nothing registered, if already cancelled.
    pub fn set_abort(&self, f: impl Fn() + Send + 'static) -> bool {
        let mut s = self.state.lock().unwrap();
        if s.cancelled {
            return false;
        }
        s.abort = Some(Box::new(f));
        true
    }

    /// The blocking call is over: nothing to abort any more.
    pub fn clear_abort(&self) {
        self.state.lock().unwrap().abort = None;
    }

    /// Sleep for `d` unless cancelled first; false when cancelled (before or during).
    pub fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        let mut s = self.state.lock().unwrap();
        loop {
            if s.cancelled {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            s = self.cv.wait_timeout(s, until - now).unwrap().0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_cancel_ends_a_sleep_and_runs_the_abort_once() {
        let c = Arc::new(Cancel::new());
        assert!(c.sleep(Duration::from_millis(1)));
        let aborted = Arc::new(AtomicU32::new(0));
        let a2 = aborted.clone();
        assert!(c.set_abort(move || {
            a2.fetch_add(1, Ordering::SeqCst);
        }));
        let c2 = c.clone();
        let sleeper = std::thread::spawn(move || {
            let t = Instant::now();
            (c2.sleep(Duration::from_secs(60)), t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(50));
        c.cancel();
        c.cancel();
        let (slept, took) = sleeper.join().unwrap();
        assert!(!slept && took < Duration::from_secs(30), "{took:?}");
        assert_eq!(aborted.load(Ordering::SeqCst), 1);
        // Cancelled: nothing can be registered, sleeps end at once.
        assert!(!c.set_abort(|| {}));
        assert!(!c.sleep(Duration::from_secs(60)));
        c.reset();
        assert!(!c.is_cancelled() && c.set_abort(|| {}));
        c.clear_abort();
    }
}
