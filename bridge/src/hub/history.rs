//! The bounded event history (docs/protocol.md "Event ids, history and resume"): the
//! last `history.size` events, at most `history.max_bytes` of them, none older than
//! `history.max_age`. It answers two questions: "is this publisher id a duplicate?"
//! and "what came after this id?" (resume). Pure: time is passed in.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use crate::event::SharedEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub size: usize,
    pub max_bytes: usize,
    pub max_age: Duration,
}

#[derive(Debug)]
struct Entry {
    /// Position in publish order, never reused.
    sequence: u64,
    event: SharedEvent,
    at: SystemTime,
    bytes: usize,
}

#[derive(Debug)]
pub struct History {
    limits: Limits,
    entries: VecDeque<Entry>,
    by_id: HashMap<Box<str>, u64>,
    bytes: usize,
    next_sequence: u64,
}

impl History {
    pub fn new(limits: Limits) -> Self {
        History {
            limits,
            entries: VecDeque::new(),
            by_id: HashMap::new(),
            bytes: 0,
            next_sequence: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether an event with this id is still remembered.
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Appends an event published at `at`, evicting what the limits no longer allow.
    /// An event bigger than `max_bytes` on its own is not kept.
    pub fn push(&mut self, event: SharedEvent, at: SystemTime) {
        let bytes = approximate_size(&event);
        if self.limits.size == 0 || bytes > self.limits.max_bytes {
            return;
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.by_id.insert(event.id.clone(), sequence);
        self.bytes += bytes;
        self.entries.push_back(Entry {
            sequence,
            event,
            at,
            bytes,
        });
        while self.entries.len() > self.limits.size || self.bytes > self.limits.max_bytes {
            self.pop_oldest();
        }
        self.expire(at);
    }

    /// Drops events older than `max_age` at `now`.
    pub fn expire(&mut self, now: SystemTime) {
        while self.entries.front().is_some_and(|e| {
            now.duration_since(e.at).unwrap_or(Duration::ZERO) > self.limits.max_age
        }) {
            self.pop_oldest();
        }
    }

    /// The events published after the one with id `since`, oldest first, or `None`
    /// when that id is unknown or already evicted (the client must refetch).
    pub fn after(&self, since: &str) -> Option<impl Iterator<Item = &SharedEvent>> {
        let sequence = *self.by_id.get(since)?;
        let first = self.entries.front()?.sequence;
        let start = usize::try_from(sequence - first).ok()? + 1;
        Some(
            self.entries
                .range(start.min(self.entries.len())..)
                .map(|e| &e.event),
        )
    }

    /// Forgets every event.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.by_id.clear();
        self.bytes = 0;
    }

    /// Every kept event with its publish time, oldest first (to save on shutdown).
    pub fn iter(&self) -> impl Iterator<Item = (&SharedEvent, SystemTime)> {
        self.entries.iter().map(|e| (&e.event, e.at))
    }

    fn pop_oldest(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            self.bytes -= entry.bytes;
            if self.by_id.get(&entry.event.id) == Some(&entry.sequence) {
                self.by_id.remove(&entry.event.id);
            }
        }
    }
}

/// What an event costs in memory, roughly: its strings plus fixed overhead.
fn approximate_size(event: &SharedEvent) -> usize {
    event.data.len() + event.topic.as_str().len() + event.id.len() + 96
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::topic::Topic;
    use std::sync::Arc;
    use std::time::Instant;

    fn event(id: &str, data: &str) -> SharedEvent {
        Arc::new(Event {
            topic: Topic::parse("t").unwrap(),
            id: id.into(),
            data: data.into(),
            received: Instant::now(),
        })
    }

    fn limits(size: usize) -> Limits {
        Limits {
            size,
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(300),
        }
    }

    fn ids<'a>(events: impl Iterator<Item = &'a SharedEvent>) -> Vec<String> {
        events.map(|e| e.id.to_string()).collect()
    }

    #[test]
    fn after_returns_what_followed_in_order() {
        let now = SystemTime::now();
        let mut history = History::new(limits(10));
        for id in ["a", "b", "c", "d"] {
            history.push(event(id, "1"), now);
        }
        assert_eq!(ids(history.after("b").unwrap()), vec!["c", "d"]);
        assert_eq!(ids(history.after("d").unwrap()), Vec::<String>::new());
        assert!(history.after("zz").is_none());
        assert!(history.contains("a"));
    }

    #[test]
    fn size_limit_evicts_oldest_and_forgets_their_ids() {
        let now = SystemTime::now();
        let mut history = History::new(limits(3));
        for id in ["a", "b", "c", "d"] {
            history.push(event(id, "1"), now);
        }
        assert_eq!(history.len(), 3);
        assert!(!history.contains("a"));
        assert!(history.after("a").is_none(), "evicted: not recoverable");
        assert_eq!(ids(history.after("b").unwrap()), vec!["c", "d"]);
    }

    #[test]
    fn byte_and_age_limits() {
        let now = SystemTime::now();
        let mut history = History::new(Limits {
            size: 100,
            max_bytes: 2 * (100 + 98),
            max_age: Duration::from_secs(60),
        });
        history.push(event("a", &"x".repeat(100)), now);
        history.push(event("b", &"x".repeat(100)), now);
        history.push(event("c", &"x".repeat(100)), now);
        assert_eq!(ids(history.iter().map(|(e, _)| e)), vec!["b", "c"]);
        history.push(event("huge", &"x".repeat(10_000)), now);
        assert!(
            !history.contains("huge"),
            "an event over max_bytes alone is not kept"
        );
        history.expire(now + Duration::from_secs(61));
        assert!(history.is_empty());
    }

    #[test]
    fn a_reused_id_points_to_its_latest_event() {
        let now = SystemTime::now();
        let mut history = History::new(limits(3));
        history.push(event("x", "1"), now);
        history.push(event("y", "2"), now);
        history.push(event("x", "3"), now);
        assert_eq!(ids(history.after("x").unwrap()), Vec::<String>::new());
        history.push(event("z", "4"), now);
        assert!(
            history.contains("x"),
            "evicting the first x keeps the second"
        );
    }
}
