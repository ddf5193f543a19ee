//! The hub: who is subscribed to what, the history, and the fan-out of each event to
//! the sessions whose patterns match it.
//!
//! The hub knows no protocol and no socket. A session is an [`Outlet`] (what takes its
//! frames; `egress/` has the WebSocket and SSE ones) holding the [`Routing`] the hub
//! gave it, subscribed to patterns in the [`index::Index`]. On one bridge the ingress
//! thread calls [`Hub::route`] for every accepted message, in arrival order: it gives
//! the event its id, records it in the bounded [`history`], finds the matching
//! subscriptions without scanning every connection, and offers the event to each
//! matching outlet together with the event's [`EventFrames`], so each frame is built
//! once per event and its bytes shared. In a cluster the log's tail calls
//! [`Hub::route_logged`] instead, with events the log already identified and
//! deduplicated. [`Hub::flush`], at the end of each burst, lets the outlets that took something write
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

    /// The hub's bookkeeping for this session, made by [`Hub::routing`] and kept in
    /// the outlet (so a session is one allocation, not two).
    fn routing(&self) -> &Routing;
}

/// What the hub keeps of a session: its id, and the marks routing and flushing use.
#[derive(Debug)]
pub struct Routing {
    id: SessionId,
    /// Whether the session takes each event once, however many of its patterns match
    /// (native, SSE), rather than once per matching subscription (WAMP).
    once_per_event: bool,
    /// The last event routed to it (for `once_per_event`).
    last_routed: AtomicU64,
    /// Whether it is on the list for the next [`Hub::flush`].
    listed: AtomicBool,
}

impl Routing {
    pub fn id(&self) -> SessionId {
        self.id
    }
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

/// The subscription index, the history and the fan-out to outlets of type `O` (one
/// type, so routing calls it directly). Shared (`Arc<Hub>`) by the ingress thread and
/// every session; locks are held only for in-memory work, never
/// across an await.
///
/// Lock order, everywhere: `index` then `history`. Routing holds the index read lock
/// while it records the event and offers it; a resuming subscribe holds the index write
/// lock while it subscribes and reads the history. So every event is either in the
/// replay or routed live to the new subscription, never both, never neither.
#[derive(Debug)]
pub struct Hub<O> {
    index: RwLock<index::Index<Arc<O>>>,
    history: Mutex<history::History>,
    ids: IdGenerator,
    next_session: AtomicU64,
    route_stamp: AtomicU64,
    /// Outlets that took frames since the last [`Hub::flush`].
    to_flush: Mutex<Vec<Arc<O>>>,
}

impl<O: Outlet> Hub<O> {
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

    /// The bookkeeping of a new session, with its id, for its outlet to keep.
    /// `once_per_event`: whether it takes each event once, however many of its patterns
    /// match, rather than once per matching subscription.
    pub fn routing(&self, once_per_event: bool) -> Routing {
        Routing {
            id: self.next_session.fetch_add(1, Ordering::Relaxed),
            once_per_event,
            last_routed: AtomicU64::new(0),
            listed: AtomicBool::new(false),
        }
    }

    /// Subscribes `session` to `pattern`; false if it already was.
    pub fn subscribe(&self, session: &Arc<O>, pattern: &Pattern) -> bool {
        let id = session.routing().id;
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        let added = index.insert(pattern, id, Arc::clone(session));
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
        session: &Arc<O>,
        patterns: &[Pattern],
        already: &[Pattern],
        since: &str,
    ) -> Option<Vec<SharedEvent>> {
        let id = session.routing().id;
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        for pattern in patterns {
            index.insert(pattern, id, Arc::clone(session));
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
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
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
        self.record_and_offer(&index, history, &event, SystemTime::now());
        Some(event)
    }

    /// Routes an event that already has its final id and was checked for duplicates
    /// elsewhere (the cluster log did both), published at `at`: recorded in the
    /// history, then offered like [`route`](Self::route) does.
    pub fn route_logged(&self, event: &SharedEvent, at: SystemTime) {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        self.record_and_offer(&index, history, event, at);
    }

    /// Records `event` in the history (then lets go of it) and offers it to every
    /// matching outlet, under the index read lock the caller holds.
    fn record_and_offer(
        &self,
        index: &index::Index<Arc<O>>,
        mut history: std::sync::MutexGuard<'_, history::History>,
        event: &SharedEvent,
        at: SystemTime,
    ) {
        history.push(Arc::clone(event), at);
        metrics::history_events(history.len());
        drop(history);
        let stamp = self.route_stamp.fetch_add(1, Ordering::Relaxed) + 1;
        let mut frames = EventFrames::new(event);
        let mut tally = Tally::default();
        let mut to_flush = self.to_flush.lock().unwrap_or_else(|e| e.into_inner());
        index.for_each_match(&event.topic, |pattern, _, session| {
            let routing = session.routing();
            if routing.once_per_event && routing.last_routed.swap(stamp, Ordering::Relaxed) == stamp
            {
                return;
            }
            if session.offer(pattern, &mut frames, &mut tally)
                && !routing.listed.swap(true, Ordering::AcqRel)
            {
                to_flush.push(Arc::clone(session));
            }
        });
        drop(to_flush);
        tally.record();
    }

    /// Forgets every event in the history: none of them can be resumed from any more
    /// (the cluster log they came from was lost).
    pub fn clear_history(&self) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.clear();
        metrics::history_events(0);
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
            session.routing().listed.store(false, Ordering::Release);
            session.flush(&mut tally);
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
    #[derive(Debug)]
    struct Recorder {
        routing: Routing,
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

        fn routing(&self) -> &Routing {
            &self.routing
        }
    }

    impl Recorder {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut self.offered.lock().unwrap())
        }
    }

    fn session(hub: &Hub<Recorder>, once_per_event: bool) -> Arc<Recorder> {
        Arc::new(Recorder {
            routing: hub.routing(once_per_event),
            offered: Mutex::default(),
            flushes: AtomicU64::default(),
            full: AtomicBool::default(),
        })
    }

    fn publish(hub: &Hub<Recorder>, message: IngressMessage) -> Option<SharedEvent> {
        let event = hub.route(message, Instant::now());
        hub.flush();
        event
    }

    #[test]
    fn an_event_is_offered_once_per_event_or_once_per_matching_subscription() {
        let hub = Hub::new(test_limits());
        let once = session(&hub, true);
        let each = session(&hub, false);
        for pattern in ["article", "article:7"] {
            let pattern = Pattern::parse(pattern).unwrap();
            assert!(hub.subscribe(&once, &pattern));
            assert!(hub.subscribe(&each, &pattern));
            assert!(!hub.subscribe(&each, &pattern), "already subscribed");
        }
        publish(&hub, message("article:7", "1"));
        assert_eq!(once.take().len(), 1);
        let mut lines = each.take();
        lines.sort();
        assert_eq!(lines, ["article 1", "article:7 1"]);
        publish(&hub, message("article:8", "2"));
        assert_eq!(once.take(), ["article 2"]);
        assert_eq!(each.take(), ["article 2"]);
        assert_ne!(once.routing.id(), each.routing.id());
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
        let taker = session(&hub, true);
        let full = session(&hub, true);
        full.full.store(true, Ordering::Relaxed);
        let all = Pattern::everything();
        hub.subscribe(&taker, &all);
        hub.subscribe(&full, &all);
        for i in 0..5 {
            hub.route(message("t", &i.to_string()), Instant::now());
        }
        hub.flush();
        hub.flush();
        assert_eq!(taker.take().len(), 5);
        assert_eq!(taker.flushes.load(Ordering::Relaxed), 1);
        assert_eq!(full.flushes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn unsubscribed_sessions_get_nothing() {
        let hub = Hub::new(test_limits());
        let session = session(&hub, true);
        let pattern = Pattern::parse("a").unwrap();
        hub.subscribe(&session, &pattern);
        assert!(hub.unsubscribe(session.routing.id(), &pattern));
        assert!(!hub.unsubscribe(session.routing.id(), &pattern));
        publish(&hub, message("a", "1"));
        let b = Pattern::parse("b").unwrap();
        hub.subscribe(&session, &b);
        hub.unsubscribe_all(session.routing.id(), [&b]);
        publish(&hub, message("b", "2"));
        assert!(session.take().is_empty());
    }

    #[test]
    fn resume_replays_what_was_missed_for_the_new_patterns_only() {
        let hub = Hub::new(test_limits());
        let session = session(&hub, true);
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
        assert_eq!(session.take(), ["a 5"], "live after the resume");
    }

    #[test]
    fn the_history_is_saved_and_restored() {
        let hub = Hub::new(test_limits());
        publish(&hub, message("a", "1"));
        let saved = hub.history_snapshot();
        let restored = Hub::new(test_limits());
        restored.restore_history(saved);
        let session = session(&restored, true);
        let replay = restored.subscribe_since(&session, &[Pattern::everything()], &[], "nope");
        assert!(replay.is_none());
        assert_eq!(restored.history_snapshot().len(), 1);
    }
}
