//! What the clients measure: a lock-free latency histogram shared by every client, the
//! run's counters, and each client's sequence tracker (duplicates, out-of-order). Kept
//! allocation-free on the receive path so the load generator stays out of the figures.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Sub-buckets per power of two: about 0.2 % relative precision.
const SUB_BITS: u32 = 9;
const SUB: u64 = 1 << SUB_BITS;
/// Values (µs) up to 2^40 fit; anything above lands in the last bucket.
const BUCKETS: usize = ((40 - SUB_BITS as usize) + 1) * SUB as usize;

/// Log-linear histogram of microsecond latencies (an HDR histogram in miniature).
pub struct Histogram {
    counts: Vec<AtomicU64>,
    max: AtomicU64,
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    fn index(us: u64) -> usize {
        if us < SUB {
            return us as usize;
        }
        let exp = 63 - us.leading_zeros() - SUB_BITS; // ≥ 0
        let mantissa = (us >> exp) - SUB; // 0..SUB
        ((u64::from(exp) + 1) * SUB + mantissa).min(BUCKETS as u64 - 1) as usize
    }

    /// The lowest value of bucket `i` (the value reported for a percentile).
    fn value(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let exp = i / SUB - 1;
        (SUB + i % SUB) << exp
    }

    pub fn record(&self, us: u64) {
        self.counts[Self::index(us)].fetch_add(1, Relaxed);
        self.max.fetch_max(us, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// The value at quantile `q` (0..=1) in µs; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        if rank == total {
            return self.max();
        }
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Relaxed);
            if seen >= rank {
                return Self::value(i).min(self.max());
            }
        }
        self.max()
    }

    pub fn max(&self) -> u64 {
        self.max.load(Relaxed)
    }
}

/// Counters of the whole run, summed over clients.
#[derive(Default)]
pub struct Counters {
    /// Distinct events received (what "received" means in the report).
    pub received: AtomicU64,
    pub duplicates: AtomicU64,
    pub out_of_order: AtomicU64,
    /// Clients that finished their handshake (and subscription).
    pub ready: AtomicU64,
    /// Clients that failed to connect or were closed before the end.
    pub failed: AtomicU64,
    /// Frames that were not events (welcome, subscribed, errors) after subscribing.
    pub other_frames: AtomicU64,
}

/// Window of recent sequence numbers remembered to tell a duplicate from a late one.
const WINDOW: u64 = 1024;

/// One client's view of one topic's sequence: events carry a per-topic sequence number
/// counting from 0, so a gap is a loss (or a reordering) and a repeat a duplicate.
pub struct SeqTracker {
    /// Next sequence number expected in order (all below it seen or judged).
    next: u64,
    /// Bit `k` set: sequence `next - 1 - k` was seen (k < WINDOW).
    seen: [u64; (WINDOW / 64) as usize],
}

/// What one received sequence number was.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    New,
    /// New, but after a higher one.
    Late,
    Duplicate,
}

impl SeqTracker {
    pub fn new() -> SeqTracker {
        SeqTracker {
            next: 0,
            seen: [0; (WINDOW / 64) as usize],
        }
    }

    fn bit(&self, back: u64) -> bool {
        back < WINDOW && self.seen[(back / 64) as usize] & (1 << (back % 64)) != 0
    }

    fn set(&mut self, back: u64) {
        if back < WINDOW {
            self.seen[(back / 64) as usize] |= 1 << (back % 64);
        }
    }

    /// Shifts the window so that `next` becomes `new_next`.
    fn advance(&mut self, new_next: u64) {
        let by = new_next - self.next;
        self.next = new_next;
        if by >= WINDOW {
            self.seen = [0; (WINDOW / 64) as usize];
            return;
        }
        // Shift the whole bitset left by `by` bits (older entries move further back).
        let words = (by / 64) as usize;
        let bits = by % 64;
        let n = self.seen.len();
        for i in (0..n).rev() {
            let src = i.checked_sub(words);
            let hi = src.map_or(0, |s| self.seen[s] << bits);
            let lo = match (src.and_then(|s| s.checked_sub(1)), bits) {
                (Some(s), b) if b > 0 => self.seen[s] >> (64 - b),
                _ => 0,
            };
            self.seen[i] = hi | lo;
        }
    }

    pub fn observe(&mut self, seq: u64) -> Seen {
        if seq >= self.next {
            self.advance(seq + 1);
            self.set(0);
            return Seen::New;
        }
        let back = self.next - 1 - seq;
        if self.bit(back) {
            return Seen::Duplicate;
        }
        // Older than the window: cannot tell, count it as late (it is at least that).
        self.set(back);
        Seen::Late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_close() {
        let h = Histogram::new();
        for us in 1..=100_000 {
            h.record(us);
        }
        assert_eq!(h.count(), 100_000);
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.01, "{p50}");
        let p99 = h.quantile(0.99) as f64;
        assert!((p99 - 99_000.0).abs() / 99_000.0 < 0.01, "{p99}");
        assert_eq!(h.max(), 100_000);
        assert_eq!(h.quantile(1.0), 100_000);
    }

    #[test]
    fn histogram_small_values_are_exact_and_huge_ones_clamp() {
        let h = Histogram::new();
        h.record(7);
        assert_eq!(h.quantile(0.5), 7);
        h.record(u64::MAX);
        assert_eq!(h.count(), 2);
        assert_eq!(h.max(), u64::MAX);
    }

    #[test]
    fn tracker_tells_new_late_and_duplicate() {
        let mut t = SeqTracker::new();
        assert_eq!(t.observe(0), Seen::New);
        assert_eq!(t.observe(2), Seen::New);
        assert_eq!(t.observe(1), Seen::Late);
        assert_eq!(t.observe(1), Seen::Duplicate);
        assert_eq!(t.observe(2), Seen::Duplicate);
        assert_eq!(t.observe(3), Seen::New);
        assert_eq!(t.observe(0), Seen::Duplicate);
    }

    #[test]
    fn tracker_window_survives_big_and_word_crossing_jumps() {
        let mut t = SeqTracker::new();
        for s in 0..200 {
            assert_eq!(t.observe(s), Seen::New);
        }
        assert_eq!(t.observe(130), Seen::Duplicate);
        assert_eq!(t.observe(5000), Seen::New);
        assert_eq!(t.observe(4999), Seen::Late);
        assert_eq!(t.observe(4999), Seen::Duplicate);
        assert_eq!(t.observe(10), Seen::Late); // beyond the window
    }
}
