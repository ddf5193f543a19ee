//! The hub: who is subscribed to what, the history, and the fan-out of each event to
//! the sessions whose patterns match it.
//!
//! The hub knows no protocol and no socket. A session registers an [`Outlet`] (what
//! takes its frames; `egress/` has the WebSocket and SSE ones) and subscribes it to
//! patterns in the [`index::Index`]. The ingress thread calls [`Hub::route`] for every
//! accepted message, in arrival order: it gives the event its id, records it in the
//! bounded [`history`], finds the matching subscriptions without scanning every
//! connection, and offers the event to each matching outlet together with the
//! event's [`EventFrames`], so each frame is built once per event and its bytes shared.
//! [`Hub::flush`], at the end of each burst, lets the outlets that took something write
//! it out, so a burst costs each socket one write. An outlet never blocks the hub: a
//! session that cannot keep up closes itself, and everyone else carries on.

pub mod frames;
pub mod history;
pub mod history_file;
pub mod index;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::event::{Event, IngressMessage, SharedEvent};
use crate::ops::metrics::{self, Tally};
use crate::topic::Pattern;
pub use frames::{EventFrames, FrameKey};
pub use index::SessionId;

/// What takes a session's frames. Called from the ingress thread, under the index's
/// read lock: it must not block or take long.
pub trait Outlet: Send + Sync + fmt::Debug {
    /// Takes the event of `frames`, matched through the subscription to `pattern`.
    /// Returns whether it queued something to write at the next [`Outlet::flush`].
    fn offer(&self, pattern: &Pattern, frames: &mut EventFrames<'_>, tally: &mut Tally) -> bool;

    /// Writes out what it queued since the last flush (the end of an ingress burst).
    fn flush(&self, tally: &mut Tally);
}

/// A session as the hub knows it: an id and an outlet.
#[derive(Debug)]
pub struct Subscriber {
    pub id: SessionId,
    outlet: Arc<dyn Outlet>,
    /// Whether the session takes each event once, however many of its patterns match
    /// (native, SSE), rather than once per matching subscription (WAMP).
    once_per_event: bool,
    /// The last event routed to it (for `once_per_event`).
    last_routed: AtomicU64,
    /// Whether it is on the list for the next [`Hub::flush`].
    listed: AtomicBool,
}

/// Assigns ids to events the publisher gave none: `<start epoch ms>-<sequence>`,
/// unique across restarts as long as two starts are a millisecond apart.
#[derive(Debug)]
struct IdGenerator {
    epoch: u128,
    sequence: AtomicU64,
}

impl IdGenerator {
    fn new() -> Self {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        IdGenerator {
            epoch,
            sequence: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{}-{}", self.epoch, sequence)
    }
}

/// The subscription index, the history and the fan-out. Shared (`Arc<Hub>`) by the
/// ingress thread and every session; locks are held only for in-memory work, never
/// across an await.
///
/// Lock order, everywhere: `index` then `history`. Routing holds the index read lock
/// while it records the event and offers it; a resuming subscribe holds the index write
/// lock while it subscribes and reads the history. So every event is either in the
/// replay or routed live to the new subscription, never both, never neither.
#[derive(Debug)]
pub struct Hub {
    index: RwLock<index::Index<Arc<Subscriber>>>,
    history: Mutex<history::History>,
    ids: IdGenerator,
    next_session: AtomicU64,
    route_stamp: AtomicU64,
    /// Subscribers that took frames since the last [`Hub::flush`].
    to_flush: Mutex<Vec<Arc<Subscriber>>>,
}

impl Hub {
    pub fn new(history: history::Limits) -> Self {
        Hub {
            index: RwLock::new(index::Index::default()),
            history: Mutex::new(history::History::new(history)),
            ids: IdGenerator::new(),
            next_session: AtomicU64::new(1),
            route_stamp: AtomicU64::new(0),
            to_flush: Mutex::new(Vec::new()),
        }
    }

    /// Gives a new session its id; its frames go to `outlet`.
    pub fn register(&self, outlet: Arc<dyn Outlet>, once_per_event: bool) -> Arc<Subscriber> {
        Arc::new(Subscriber {
            id: self.next_session.fetch_add(1, Ordering::Relaxed),
            outlet,
            once_per_event,
            last_routed: AtomicU64::new(0),
            listed: AtomicBool::new(false),
        })
    }

    /// Subscribes `session` to `pattern`; false if it already was.
    pub fn subscribe(&self, session: &Arc<Subscriber>, pattern: &Pattern) -> bool {
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        let added = index.insert(pattern, session.id, Arc::clone(session));
        metrics::subscriptions(index.len());
        added
    }

    /// Removes one subscription; false if there was none.
    pub fn unsubscribe(&self, session: SessionId, pattern: &Pattern) -> bool {
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        let removed = index.remove(pattern, session);
        metrics::subscriptions(index.len());
        removed
    }

    /// Removes every listed subscription of a session that is going away.
    pub fn unsubscribe_all<'a>(
        &self,
        session: SessionId,
        patterns: impl IntoIterator<Item = &'a Pattern>,
    ) {
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        for pattern in patterns {
            index.remove(pattern, session);
        }
        metrics::subscriptions(index.len());
    }

    /// Subscribes `session` to `patterns` and returns the events published after the
    /// one with id `since` that match one of them and none of `already` (those were
    /// delivered live), oldest first; `None` when `since` is unknown or evicted (the
    /// subscriptions are made all the same).
    pub fn subscribe_since(
        &self,
        session: &Arc<Subscriber>,
        patterns: &[Pattern],
        already: &[Pattern],
        since: &str,
    ) -> Option<Vec<SharedEvent>> {
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        for pattern in patterns {
            index.insert(pattern, session.id, Arc::clone(session));
        }
        metrics::subscriptions(index.len());
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let replay = history.after(since)?.filter(|event| {
            patterns.iter().any(|p| p.matches(&event.topic))
                && !already.iter().any(|p| p.matches(&event.topic))
        });
        Some(replay.cloned().collect())
    }

    /// Routes one accepted message to every matching session, in the order calls are
    /// made (the ingress makes them from one thread, in arrival order): each matching
    /// outlet is offered the event; what they queue is written at the next
    /// [`flush`](Self::flush). A message whose publisher id is still in the history is
    /// a retry: dropped, counted, `None`.
    pub fn route(&self, message: IngressMessage, received: Instant) -> Option<SharedEvent> {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if message.id.as_deref().is_some_and(|id| history.contains(id)) {
            metrics::duplicate_dropped();
            return None;
        }
        let event = Arc::new(Event {
            id: message.id.unwrap_or_else(|| self.ids.next()).into(),
            topic: message.topic,
            data: message.data.into(),
            received,
        });
        history.push(Arc::clone(&event), SystemTime::now());
        metrics::history_events(history.len());
        drop(history);
        let stamp = self.route_stamp.fetch_add(1, Ordering::Relaxed) + 1;
        let mut frames = EventFrames::new(&event);
        let mut tally = Tally::default();
        let mut to_flush = self.to_flush.lock().unwrap_or_else(|e| e.into_inner());
        index.for_each_match(&event.topic, |pattern, _, session| {
            if session.once_per_event && session.last_routed.swap(stamp, Ordering::Relaxed) == stamp
            {
                return;
            }
            if session.outlet.offer(pattern, &mut frames, &mut tally)
                && !session.listed.swap(true, Ordering::AcqRel)
            {
                to_flush.push(Arc::clone(session));
            }
        });
        drop(to_flush);
        drop(index);
        tally.record();
        Some(event)
    }

    /// Lets every outlet that took frames since the last flush write them out. The
    /// ingress calls this at the end of each burst, so a burst costs one write per
    /// socket.
    pub fn flush(&self) {
        let mut to_flush = self.to_flush.lock().unwrap_or_else(|e| e.into_inner());
        if to_flush.is_empty() {
            return;
        }
        let mut tally = Tally::default();
        for session in to_flush.drain(..) {
            session.listed.store(false, Ordering::Release);
            session.outlet.flush(&mut tally);
        }
        drop(to_flush);
        tally.record();
    }

    /// Every event in the history with its publish time, oldest first.
    pub fn history_snapshot(&self) -> Vec<(SharedEvent, SystemTime)> {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.iter().map(|(e, at)| (Arc::clone(e), at)).collect()
    }

    /// Puts saved events back into the history (at start, before any publish).
    pub fn restore_history(&self, events: impl IntoIterator<Item = (SharedEvent, SystemTime)>) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        for (event, at) in events {
            history.push(event, at);
        }
        history.expire(SystemTime::now());
        metrics::history_events(history.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::Topic;
    use bytes::Bytes;

    fn test_limits() -> history::Limits {
        history::Limits {
            size: 100,
            max_bytes: 1 << 20,
            max_age: std::time::Duration::from_secs(60),
        }
    }

    fn message(topic: &str, data: &str) -> IngressMessage {
        IngressMessage {
            topic: Topic::parse(topic).unwrap(),
            id: None,
            data: data.to_string(),
        }
    }

    /// An outlet that keeps what it is offered as `pattern data` lines, and counts
    /// flushes; refuses everything when `full`.
    #[derive(Debug, Default)]
    struct Recorder {
        offered: Mutex<Vec<String>>,
        flushes: AtomicU64,
        full: AtomicBool,
    }

    const TEXT: FrameKey = FrameKey::new(1, 0);

    impl Outlet for Recorder {
        fn offer(&self, pattern: &Pattern, frames: &mut EventFrames<'_>, _: &mut Tally) -> bool {
            if self.full.load(Ordering::Relaxed) {
                return false;
            }
            let frame = frames.get_or_build(TEXT, |f| Bytes::from(f.event().data.to_string()));
            let line = format!("{pattern} {}", std::str::from_utf8(&frame).unwrap());
            self.offered.lock().unwrap().push(line);
            true
        }

        fn flush(&self, _: &mut Tally) {
            self.flushes.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl Recorder {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut self.offered.lock().unwrap())
        }
    }

    fn session(hub: &Hub, once_per_event: bool) -> (Arc<Subscriber>, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let subscriber = hub.register(Arc::clone(&recorder) as Arc<dyn Outlet>, once_per_event);
        (subscriber, recorder)
    }

    fn publish(hub: &Hub, message: IngressMessage) -> Option<SharedEvent> {
        let event = hub.route(message, Instant::now());
        hub.flush();
        event
    }

    #[test]
    fn an_event_is_offered_once_per_event_or_once_per_matching_subscription() {
        let hub = Hub::new(test_limits());
        let (once, once_out) = session(&hub, true);
        let (each, each_out) = session(&hub, false);
        for pattern in ["article", "article:7"] {
            let pattern = Pattern::parse(pattern).unwrap();
            assert!(hub.subscribe(&once, &pattern));
            assert!(hub.subscribe(&each, &pattern));
            assert!(!hub.subscribe(&each, &pattern), "already subscribed");
        }
        publish(&hub, message("article:7", "1"));
        assert_eq!(once_out.take().len(), 1);
        let mut lines = each_out.take();
        lines.sort();
        assert_eq!(lines, ["article 1", "article:7 1"]);
        publish(&hub, message("article:8", "2"));
        assert_eq!(once_out.take(), ["article 2"]);
        assert_eq!(each_out.take(), ["article 2"]);
        assert_ne!(once.id, each.id);
    }

    #[test]
    fn ids_are_kept_or_assigned_in_sequence() {
        let hub = Hub::new(test_limits());
        let mut given = message("a", "1");
        given.id = Some("pub-1".into());
        assert_eq!(&*publish(&hub, given.clone()).unwrap().id, "pub-1");
        assert!(
            publish(&hub, given).is_none(),
            "a retried id is a duplicate"
        );
        let first = publish(&hub, message("a", "1")).unwrap();
        let second = publish(&hub, message("a", "1")).unwrap();
        let (epoch, seq) = first.id.split_once('-').unwrap();
        assert_eq!(
            second.id.to_string(),
            format!("{epoch}-{}", seq.parse::<u64>().unwrap() + 1)
        );
    }

    #[test]
    fn a_burst_flushes_each_outlet_once_and_only_those_that_took_something() {
        let hub = Hub::new(test_limits());
        let (taker, taker_out) = session(&hub, true);
        let (full, full_out) = session(&hub, true);
        full_out.full.store(true, Ordering::Relaxed);
        let all = Pattern::everything();
        hub.subscribe(&taker, &all);
        hub.subscribe(&full, &all);
        for i in 0..5 {
            hub.route(message("t", &i.to_string()), Instant::now());
        }
        hub.flush();
        hub.flush();
        assert_eq!(taker_out.take().len(), 5);
        assert_eq!(taker_out.flushes.load(Ordering::Relaxed), 1);
        assert_eq!(full_out.flushes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn unsubscribed_sessions_get_nothing() {
        let hub = Hub::new(test_limits());
        let (session, out) = session(&hub, true);
        let pattern = Pattern::parse("a").unwrap();
        hub.subscribe(&session, &pattern);
        assert!(hub.unsubscribe(session.id, &pattern));
        assert!(!hub.unsubscribe(session.id, &pattern));
        publish(&hub, message("a", "1"));
        let b = Pattern::parse("b").unwrap();
        hub.subscribe(&session, &b);
        hub.unsubscribe_all(session.id, [&b]);
        publish(&hub, message("b", "2"));
        assert!(out.take().is_empty());
    }

    #[test]
    fn resume_replays_what_was_missed_for_the_new_patterns_only() {
        let hub = Hub::new(test_limits());
        let (session, out) = session(&hub, true);
        let first = publish(&hub, message("a:1", "1")).unwrap();
        publish(&hub, message("a:2", "2"));
        publish(&hub, message("b:1", "3"));
        publish(&hub, message("c", "4"));
        let a = Pattern::parse("a").unwrap();
        let b = Pattern::parse("b").unwrap();
        hub.subscribe(&session, &b);
        let replay = hub
            .subscribe_since(&session, std::slice::from_ref(&a), &[b], &first.id)
            .unwrap();
        let data: Vec<&str> = replay.iter().map(|e| &*e.data).collect();
        assert_eq!(
            data,
            vec!["2"],
            "after `first`, matching `a`, not already had via `b`"
        );
        assert!(hub
            .subscribe_since(&session, &[a], &[], "unknown")
            .is_none());
        publish(&hub, message("a:3", "5"));
        assert_eq!(out.take(), ["a 5"], "live after the resume");
    }

    #[test]
    fn the_history_is_saved_and_restored() {
        let hub = Hub::new(test_limits());
        publish(&hub, message("a", "1"));
        let saved = hub.history_snapshot();
        let restored = Hub::new(test_limits());
        restored.restore_history(saved);
        let (session, _) = session(&restored, true);
        let replay = restored.subscribe_since(&session, &[Pattern::everything()], &[], "nope");
        assert!(replay.is_none());
        assert_eq!(restored.history_snapshot().len(), 1);
    }
}
