//! Time: mapping camera timestamps to pipeline running time, and reconnect backoff.
//!
//! The invariants are written down in `docs/timestamps.md`. In short: a buffer's PTS is
//! the running time at which the camera captured it, estimated as
//! `camera_time + offset`, where `offset` is the smallest `arrival - camera_time` seen
//! (the least-delayed part tells us the camera's clock); PTS never runs ahead of
//! arrival, never goes backwards, and re-anchors to arrival time when the camera
//! timestamp jumps, is missing, or drifts late beyond a bound.

use std::time::Duration;

/// Nanoseconds of running time.
pub type Nanos = u64;

/// How far behind arrival a mapped PTS may fall before the mapping is re-anchored.
/// A Kasa camera's clock drifts against ours; half a second keeps late frames usable.
pub const MAX_LATE: Nanos = 500_000_000;
/// A camera timestamp step larger than this (or backwards) is a jump, not media time.
pub const MAX_STEP: Nanos = 5_000_000_000;

/// The streams sharing one camera clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Video = 0,
    Audio = 1,
}

/// Maps camera timestamps of both streams onto running time with one shared offset, so
/// audio and video stay in sync; continuity is tracked per stream because the camera
/// interleaves parts whose times may overlap by a few milliseconds.
#[derive(Debug, Clone, Default)]
pub struct PtsMapper {
    /// `running_time - camera_time`, in ns.
    offset: Option<i128>,
    last_camera: [Option<i128>; 2],
    last_pts: [Option<Nanos>; 2],
}

/// A mapped timestamp and whether it breaks continuity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    pub pts: Nanos,
    pub discont: bool,
}

impl PtsMapper {
    pub fn new() -> Self {
        Self::default()
    }

    /// Start a new camera session (reconnect): camera time restarts, the last PTS
    /// carries over so output stays monotonic.
    pub fn new_session(&mut self) {
        self.offset = None;
        self.last_camera = [None; 2];
    }

    /// Map one part. `camera_s` is the part's `X-Timestamp` in seconds, if any;
    /// `arrival` the running time at which it was read.
    pub fn map(&mut self, stream: Stream, camera_s: Option<f64>, arrival: Nanos) -> Mapped {
        let i = stream as usize;
        let mut discont = false;
        let candidate = match camera_s {
            Some(s) if s.is_finite() && (0.0..1.0e9).contains(&s) => {
                let cam = (s * 1e9) as i128;
                let jumped = match self.last_camera[i] {
                    Some(prev) => cam < prev || cam - prev > MAX_STEP as i128,
                    None => false,
                };
                self.last_camera[i] = Some(cam);
                let arrival_off = arrival as i128 - cam;
                match self.offset {
                    Some(off) if !jumped => {
                        let mut off = off.min(arrival_off);
                        if arrival_off - off > MAX_LATE as i128 {
                            // Camera clock runs slow against ours: re-anchor.
                            off = arrival_off;
                            discont = true;
                        }
                        self.offset = Some(off);
                        cam + off
                    }
                    _ => {
                        discont |= self.offset.is_some();
                        self.offset = Some(arrival_off);
                        arrival as i128
                    }
                }
            }
            _ => arrival as i128,
        };
        let mut pts = candidate.max(0) as Nanos;
        if let Some(last) = self.last_pts[i] {
            if pts <= last {
                pts = last + 1;
            }
        }
        self.last_pts[i] = Some(pts);
        Mapped { pts, discont }
    }
}

/// The delay after the `failures`-th failure in a row (1 for the first): `initial`,
/// doubled per failure, at most `max` (and never less than `initial`).
pub fn backoff_delay(initial: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(20);
    initial.saturating_mul(factor).min(max.max(initial))
}

/// Capped exponential backoff between reconnection attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The delay before the next attempt, and count it.
    pub fn next_delay(&mut self) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        backoff_delay(self.initial, self.max, self.attempt)
    }

    /// Attempts made since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MS: u64 = 1_000_000;

    #[test]
    fn follows_camera_clock_with_jitter() {
        let mut m = PtsMapper::new();
        let a = m.map(Stream::Video, Some(100.0), 1000 * MS);
        assert_eq!(a.pts, 1000 * MS);
        // Arrives 30 ms late: PTS stays on the camera's clock.
        let b = m.map(Stream::Video, Some(100.066), 1096 * MS);
        assert_eq!(b.pts, 1066 * MS);
        // Arrives earlier than the anchor predicts: the anchor moves, PTS = arrival.
        let c = m.map(Stream::Video, Some(100.133), 1120 * MS);
        assert_eq!(c.pts, 1120 * MS);
        assert!(!c.discont);
    }

    #[test]
    fn monotonic_across_sessions_and_jumps() {
        let mut m = PtsMapper::new();
        let a = m.map(Stream::Video, Some(5.0), 2000 * MS);
        m.new_session();
        // New session whose camera clock restarted at 0 and arrival equal: still after.
        let b = m.map(Stream::Video, Some(1.0), 2000 * MS);
        assert!(b.pts > a.pts);
        let c = m.map(Stream::Video, Some(0.5), 2050 * MS);
        assert!(c.pts > b.pts, "backwards camera time");
        assert!(c.discont);
        let d = m.map(Stream::Video, None, 2100 * MS);
        assert_eq!(d.pts, 2100 * MS);
    }

    #[test]
    fn reanchors_when_late() {
        let mut m = PtsMapper::new();
        m.map(Stream::Video, Some(0.0), 0);
        let late = m.map(Stream::Video, Some(1.0), 1000 * MS + MAX_LATE + 10 * MS);
        assert!(late.discont);
        assert_eq!(late.pts, 1000 * MS + MAX_LATE + 10 * MS);
    }

    #[test]
    fn backoff_delay_doubles_per_failure_to_the_cap() {
        let (ms, s) = (Duration::from_millis, Duration::from_secs);
        let d: Vec<u128> = (1..6)
            .map(|n| backoff_delay(ms(500), s(3), n).as_millis())
            .collect();
        assert_eq!(d, [500, 1000, 2000, 3000, 3000]);
        assert_eq!(backoff_delay(ms(500), s(3), u32::MAX), s(3));
        // A cap below the first delay is the first delay.
        assert_eq!(backoff_delay(s(2), s(1), 4), s(2));
        assert_eq!(backoff_delay(ms(0), s(1), 7), ms(0));
    }

    #[test]
    fn backoff_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d: Vec<_> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(d, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.next_delay().as_millis(), 1000);
    }
}
