//! The introspection answer cache: verdicts keyed by the SHA-256 of the token (the
//! token itself is never stored), each kept for one fixed time-to-live, at most
//! `capacity` of them.
//!
//! Because every entry lives for the same time, insertion order is expiry order: a
//! queue beside the map says which entry goes first, whether it has expired or the
//! cache is full, so both purging and eviction cost O(1) per insert. Pure (the caller
//! passes the clock), so it is tested without sleeping.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::verdict::Verdict;

/// The SHA-256 of a token.
pub(super) type Key = [u8; 32];

pub(super) struct AnswerCache {
    ttl: Duration,
    capacity: usize,
    entries: HashMap<Key, (Instant, Verdict)>,
    /// `(expiry, key)` in insertion order, one per entry of `entries`.
    order: VecDeque<(Instant, Key)>,
}

impl AnswerCache {
    /// A `ttl` of zero or a `capacity` of zero disables caching.
    pub(super) fn new(ttl: Duration, capacity: usize) -> Self {
        AnswerCache {
            ttl,
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The verdict for `key` if it is still fresh at `now`.
    pub(super) fn get(&self, key: &Key, now: Instant) -> Option<Verdict> {
        match self.entries.get(key) {
            Some((expires, verdict)) if now < *expires => Some(verdict.clone()),
            _ => None,
        }
    }

    /// Keeps `verdict` until `now + ttl`, first dropping what has expired and, when
    /// still full, the oldest entries.
    pub(super) fn insert(&mut self, key: Key, verdict: Verdict, now: Instant) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        while let Some(&(expires, oldest)) = self.order.front() {
            if expires > now && self.entries.len() < self.capacity {
                break;
            }
            self.order.pop_front();
            self.entries.remove(&oldest);
        }
        // The caller asks the API only on a miss, so an entry for `key` is not
        // expected here; should one exist, drop it so the queue and the map stay
        // one-to-one.
        if self.entries.remove(&key).is_some() {
            self.order.retain(|(_, k)| *k != key);
        }
        let expires = now + self.ttl;
        self.entries.insert(key, (expires, verdict));
        self.order.push_back((expires, key));
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        debug_assert_eq!(self.entries.len(), self.order.len());
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        [n; 32]
    }

    #[test]
    fn fresh_until_the_ttl_then_gone() {
        let t0 = Instant::now();
        let mut cache = AnswerCache::new(Duration::from_secs(30), 10);
        cache.insert(key(1), Verdict::Rejected, t0);
        assert_eq!(cache.get(&key(1), t0), Some(Verdict::Rejected));
        assert_eq!(
            cache.get(&key(1), t0 + Duration::from_secs(29)),
            Some(Verdict::Rejected)
        );
        assert_eq!(cache.get(&key(1), t0 + Duration::from_secs(30)), None);
        assert_eq!(cache.get(&key(2), t0), None);
    }

    #[test]
    fn expired_entries_are_purged_on_insert() {
        let t0 = Instant::now();
        let mut cache = AnswerCache::new(Duration::from_secs(1), 10);
        for n in 0..5 {
            cache.insert(key(n), Verdict::Rejected, t0);
        }
        assert_eq!(cache.len(), 5);
        cache.insert(key(9), Verdict::Rejected, t0 + Duration::from_secs(2));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_full_cache_evicts_the_oldest() {
        let t0 = Instant::now();
        let mut cache = AnswerCache::new(Duration::from_secs(60), 3);
        for n in 0..3 {
            cache.insert(
                key(n),
                Verdict::Rejected,
                t0 + Duration::from_secs(n.into()),
            );
        }
        let later = t0 + Duration::from_secs(10);
        cache.insert(key(7), Verdict::Rejected, later);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&key(0), later), None);
        assert!(cache.get(&key(1), later).is_some());
        assert!(cache.get(&key(2), later).is_some());
        assert!(cache.get(&key(7), later).is_some());
    }

    #[test]
    fn reinserting_an_expired_key_leaves_one_entry() {
        let t0 = Instant::now();
        // The defensive path: `key(1)` is inserted again while still queued.
        let mut cache = AnswerCache::new(Duration::from_secs(1), 10);
        cache.insert(key(1), Verdict::Rejected, t0);
        cache.insert(key(2), Verdict::Rejected, t0 + Duration::from_millis(500));
        cache.insert(key(1), Verdict::Rejected, t0 + Duration::from_millis(999));
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.get(&key(1), t0 + Duration::from_millis(1500)),
            Some(Verdict::Rejected)
        );
    }

    #[test]
    fn zero_ttl_or_capacity_caches_nothing() {
        let t0 = Instant::now();
        let mut no_ttl = AnswerCache::new(Duration::ZERO, 10);
        no_ttl.insert(key(1), Verdict::Rejected, t0);
        assert_eq!(no_ttl.get(&key(1), t0), None);
        assert_eq!(no_ttl.len(), 0);
        let mut no_room = AnswerCache::new(Duration::from_secs(1), 0);
        no_room.insert(key(1), Verdict::Rejected, t0);
        assert_eq!(no_room.len(), 0);
    }
}
