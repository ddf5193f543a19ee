//! Rate limiting for log lines (docs/configuration.md "[log]": warnings for rejected
//! ingress messages are rate-limited). A peer that sends garbage at 100k msg/s must
//! not turn the log into a second copy of its traffic, yet the sysadmin must still
//! learn how much was dropped: each key may log about once per interval, and the line
//! that is let through reports how many were suppressed since the previous one.
//!
//! Pure: the caller passes the current [`Instant`], so tests drive the clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How many distinct keys are tracked before stale ones are forgotten; keeps memory
/// bounded when keys come from peers (addresses, endpoints).
const DEFAULT_MAX_KEYS: usize = 1024;

/// Decides, per key, whether a log line may be written now.
#[derive(Debug)]
pub struct RateLimiter<K> {
    interval: Duration,
    max_keys: usize,
    slots: HashMap<K, Slot>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// When a line for this key was last let through.
    logged: Instant,
    /// Lines refused since then.
    suppressed: u64,
}

impl<K: Eq + Hash> RateLimiter<K> {
    /// At most one line per key per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self::with_max_keys(interval, DEFAULT_MAX_KEYS)
    }

    /// Like [`RateLimiter::new`], tracking at most `max_keys` keys (at least 1). When
    /// all are in their quiet interval, lines for new keys are dropped uncounted
    /// rather than growing the table.
    pub fn with_max_keys(interval: Duration, max_keys: usize) -> Self {
        RateLimiter {
            interval,
            max_keys: max_keys.max(1),
            slots: HashMap::new(),
        }
    }

    /// `Some(suppressed)` when a line for `key` may be written at `now`, with the
    /// number of lines refused for that key since the last one written; `None` when it
    /// must be suppressed (and is counted).
    pub fn check(&mut self, key: K, now: Instant) -> Option<u64> {
        if let Some(slot) = self.slots.get_mut(&key) {
            if now.saturating_duration_since(slot.logged) >= self.interval {
                let suppressed = slot.suppressed;
                *slot = Slot {
                    logged: now,
                    suppressed: 0,
                };
                return Some(suppressed);
            }
            slot.suppressed = slot.suppressed.saturating_add(1);
            return None;
        }
        if self.slots.len() >= self.max_keys {
            // Forget keys whose quiet interval is over: their next line would be let
            // through anyway; only its "suppressed" count is lost.
            let interval = self.interval;
            self.slots
                .retain(|_, slot| now.saturating_duration_since(slot.logged) < interval);
            if self.slots.len() >= self.max_keys {
                return None;
            }
        }
        self.slots.insert(
            key,
            Slot {
                logged: now,
                suppressed: 0,
            },
        );
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn first_line_per_key_passes_then_one_per_interval() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(SECOND);
        assert_eq!(limiter.check("a", t0), Some(0));
        assert_eq!(limiter.check("a", t0), None);
        assert_eq!(limiter.check("a", t0 + ms(999)), None);
        // A different key has its own budget.
        assert_eq!(limiter.check("b", t0 + ms(10)), Some(0));
        // The interval is over: passes, reporting the two suppressed lines.
        assert_eq!(limiter.check("a", t0 + ms(1000)), Some(2));
        // The window restarts at the line let through, and the count at zero.
        assert_eq!(limiter.check("a", t0 + ms(1500)), None);
        assert_eq!(limiter.check("a", t0 + ms(2000)), Some(1));
        assert_eq!(limiter.check("a", t0 + ms(5000)), Some(0));
        assert_eq!(limiter.check("b", t0 + ms(1009)), None);
        assert_eq!(limiter.check("b", t0 + ms(1010)), Some(1));
    }

    #[test]
    fn a_flood_logs_about_once_per_interval() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(SECOND);
        let mut written = Vec::new();
        // 10 s of one line per millisecond.
        for i in 0..10_000 {
            if let Some(suppressed) = limiter.check((), t0 + ms(i)) {
                written.push(suppressed);
            }
        }
        assert_eq!(written.len(), 10);
        assert_eq!(written[0], 0);
        assert!(written[1..].iter().all(|&s| s == 999), "{written:?}");
        // Nothing is lost: written + suppressed = offered.
        assert_eq!(
            written.len() as u64 + written.iter().sum::<u64>(),
            10_000 - 999
        );
    }

    #[test]
    fn a_clock_going_backwards_suppresses_instead_of_panicking() {
        let t0 = Instant::now() + SECOND;
        let mut limiter = RateLimiter::new(SECOND);
        assert_eq!(limiter.check(1, t0), Some(0));
        assert_eq!(limiter.check(1, t0 - ms(500)), None);
        assert_eq!(limiter.check(1, t0 + SECOND), Some(1));
    }

    #[test]
    fn zero_interval_lets_everything_through() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(Duration::ZERO);
        for _ in 0..3 {
            assert_eq!(limiter.check('k', t0), Some(0));
        }
    }

    #[test]
    fn key_table_is_bounded_and_forgets_stale_keys() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::with_max_keys(SECOND, 2);
        assert_eq!(limiter.check(1, t0), Some(0));
        assert_eq!(limiter.check(2, t0 + ms(100)), Some(0));
        // Full, and both keys are within their interval: a new key is dropped.
        assert_eq!(limiter.check(3, t0 + ms(500)), None);
        assert_eq!(limiter.slots.len(), 2);
        // Key 1's interval is over: it is forgotten to make room for key 3.
        assert_eq!(limiter.check(3, t0 + ms(1050)), Some(0));
        assert_eq!(limiter.slots.len(), 2);
        // Key 2 is still tracked and still quiet.
        assert_eq!(limiter.check(2, t0 + ms(1060)), None);
        // Key 1 comes back as new (its count was forgotten with it), evicting nothing
        // that is still quiet: the table stays full, so it is dropped.
        assert_eq!(limiter.check(1, t0 + ms(1070)), None);
        assert_eq!(limiter.check(1, t0 + ms(1100)), Some(0));
    }

    #[test]
    fn max_keys_is_at_least_one() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::with_max_keys(SECOND, 0);
        assert_eq!(limiter.check("a", t0), Some(0));
        assert_eq!(limiter.check("b", t0), None);
    }
}
