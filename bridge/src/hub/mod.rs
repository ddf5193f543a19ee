//! The hub: who is subscribed to what, and fan-out of each event to them.
//!
//! Sessions register a [`SessionHandle`] (where their frames go: a WebSocket's
//! [`SocketWriter`] or an SSE stream's bounded queue; and a close signal) and subscribe
//! it to patterns in the [`index::Index`]. The ingress thread calls [`Hub::route`] for
//! every accepted message, in arrival order: it gives the event its id, finds the
//! matching subscriptions without scanning every connection, builds each frame once per
//! protocol (once per subscription URI for WAMP v1) and queues the shared bytes for each
//! session; [`Hub::flush`], at the end of each burst, writes them into the sockets. A
//! full queue never blocks the hub: that session is told to close with `4008` and
//! everyone else carries on.

mod frames;
pub mod history;
pub mod history_file;
pub mod index;
pub mod socket_writer;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

use crate::event::{Event, IngressMessage, SharedEvent};
use crate::ops::metrics;
use crate::protocol::wamp2::{self, Match};
use crate::protocol::Protocol;
use crate::topic::Pattern;
use frames::EventFrames;
pub use index::SessionId;
use socket_writer::{Refused, SocketWriter, Written};

/// One frame waiting in an SSE session's queue.
#[derive(Debug)]
pub struct Outbound {
    pub frame: Utf8Bytes,
    /// When the ingress received the event (delivery latency).
    pub received: Instant,
}

/// Close codes the hub (or the server on its behalf) asks a session to close with.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const TOKEN_EXPIRED: u16 = 4001;
    pub const TOKEN_REVOKED: u16 = 4003;
    pub const SLOW_CONSUMER: u16 = 4008;
    /// Internal, never sent: the client stopped answering pings, so the connection is
    /// dropped without a close frame (1006 is what the client's side then reports).
    pub const NO_ANSWER: u16 = 1006;
}

/// Where a session's frames go.
#[derive(Debug)]
pub enum Outlet {
    /// A WebSocket: complete frames straight into the socket.
    Socket(Arc<SocketWriter>),
    /// An SSE stream: body text to the task that feeds the HTTP response.
    Queue(mpsc::Sender<Outbound>),
}

/// What the hub knows of a session: where its frames go and how to stop it.
#[derive(Debug)]
pub struct SessionHandle {
    pub id: SessionId,
    pub protocol: Protocol,
    outlet: Outlet,
    close_code: AtomicU16,
    closing: AtomicBool,
    close_signal: Notify,
    /// The last event routed to this session, so a native session subscribed through
    /// several matching patterns gets each event once.
    last_routed: AtomicU64,
    /// WAMP v2 only: per pattern, the (match policy, subscription id) pairs.
    wamp2: Mutex<HashMap<Pattern, Vec<(Match, u64)>>>,
}

impl SessionHandle {
    /// Asks the session to close with `code`. The first request wins; returns whether
    /// this was it.
    pub fn close(&self, code: u16) -> bool {
        if self.closing.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.close_code.store(code, Ordering::Release);
        self.close_signal.notify_one();
        true
    }

    /// Resolves once [`close`](Self::close) was called; returns the code.
    pub async fn close_requested(&self) -> u16 {
        if !self.closing.load(Ordering::Acquire) {
            self.close_signal.notified().await;
        }
        self.close_code.load(Ordering::Acquire)
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// The socket writer of a WebSocket session (`None` for SSE).
    pub fn socket(&self) -> Option<&Arc<SocketWriter>> {
        match &self.outlet {
            Outlet::Socket(writer) => Some(writer),
            Outlet::Queue(_) => None,
        }
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

/// The subscription index and the fan-out. Shared (`Arc<Hub>`) by the ingress thread
/// and every session; locks are held only for in-memory work, never across an await.
///
/// Lock order, everywhere: `index` then `history`. Publishing holds the index read
/// lock while it records the event and routes it; a resuming subscribe holds the
/// index write lock while it subscribes and reads the history. So every event is
/// either in the replay or routed live to the new subscription, never both, never
/// neither.
#[derive(Debug)]
pub struct Hub {
    index: RwLock<index::Index<Arc<SessionHandle>>>,
    history: Mutex<history::History>,
    ids: IdGenerator,
    next_session: AtomicU64,
    route_stamp: AtomicU64,
    send_queue: usize,
    /// Socket writers given frames since the last [`Hub::flush`].
    to_flush: Mutex<Vec<(Arc<SocketWriter>, Protocol)>>,
}

impl Hub {
    /// `send_queue`: frames a session may have waiting before it is a slow consumer.
    pub fn new(send_queue: usize, history: history::Limits) -> Self {
        Hub {
            index: RwLock::new(index::Index::default()),
            history: Mutex::new(history::History::new(history)),
            ids: IdGenerator::new(),
            next_session: AtomicU64::new(1),
            route_stamp: AtomicU64::new(0),
            send_queue: send_queue.max(1),
            to_flush: Mutex::new(Vec::new()),
        }
    }

    /// Creates the handle of a WebSocket session whose frames go to `writer`.
    pub fn register_socket(
        &self,
        protocol: Protocol,
        writer: Arc<SocketWriter>,
    ) -> Arc<SessionHandle> {
        Arc::new(self.handle(protocol, Outlet::Socket(writer)))
    }

    /// Creates an SSE session's handle and the receiving end of its queue.
    pub fn register_queue(
        &self,
        protocol: Protocol,
    ) -> (Arc<SessionHandle>, mpsc::Receiver<Outbound>) {
        let (queue, receiver) = mpsc::channel(self.send_queue);
        (
            Arc::new(self.handle(protocol, Outlet::Queue(queue))),
            receiver,
        )
    }

    fn handle(&self, protocol: Protocol, outlet: Outlet) -> SessionHandle {
        SessionHandle {
            id: self.next_session.fetch_add(1, Ordering::Relaxed),
            protocol,
            outlet,
            close_code: AtomicU16::new(close_code::NORMAL),
            closing: AtomicBool::new(false),
            close_signal: Notify::new(),
            last_routed: AtomicU64::new(0),
            wamp2: Mutex::new(HashMap::new()),
        }
    }

    /// The most event frames a session may have waiting before it is a slow consumer.
    pub fn send_queue(&self) -> usize {
        self.send_queue
    }

    /// Subscribes `session` to `pattern`; false if it already was.
    pub fn subscribe(&self, session: &Arc<SessionHandle>, pattern: &Pattern) -> bool {
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

    /// WAMP v2: subscribes `session` to (`pattern`, `match_`) and returns the
    /// subscription id (the same for every session with the same pair, so EVENT frames
    /// are shared) and whether the session had no subscription on `pattern` before.
    pub fn wamp2_subscribe(
        &self,
        session: &Arc<SessionHandle>,
        pattern: &Pattern,
        match_: Match,
    ) -> (u64, bool) {
        let id = wamp2_subscription_id(pattern, match_);
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        let mut subscriptions = session.wamp2.lock().unwrap_or_else(|e| e.into_inner());
        let entry = subscriptions.entry(pattern.clone()).or_default();
        let new_pattern = entry.is_empty();
        if !entry.contains(&(match_, id)) {
            entry.push((match_, id));
        }
        if new_pattern {
            index.insert(pattern, session.id, Arc::clone(session));
            metrics::subscriptions(index.len());
        }
        (id, new_pattern)
    }

    /// WAMP v2: removes the session's subscription `id`. Returns its pattern and
    /// whether that pattern has no subscription left, or `None` for an unknown id.
    pub fn wamp2_unsubscribe(&self, session: &SessionHandle, id: u64) -> Option<(Pattern, bool)> {
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        let mut subscriptions = session.wamp2.lock().unwrap_or_else(|e| e.into_inner());
        let pattern = subscriptions
            .iter()
            .find(|(_, pairs)| pairs.iter().any(|&(_, i)| i == id))
            .map(|(pattern, _)| pattern.clone())?;
        let pairs = subscriptions.get_mut(&pattern)?;
        pairs.retain(|&(_, i)| i != id);
        let emptied = pairs.is_empty();
        if emptied {
            subscriptions.remove(&pattern);
            index.remove(&pattern, session.id);
            metrics::subscriptions(index.len());
        }
        Some((pattern, emptied))
    }

    /// Subscribes `session` to `patterns` and returns the events published after the
    /// one with id `since` that match one of them and none of `already` (those were
    /// delivered live), oldest first; `None` when `since` is unknown or evicted (the
    /// subscriptions are made all the same).
    pub fn subscribe_since(
        &self,
        session: &Arc<SessionHandle>,
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

    /// Routes one accepted message to every matching session and writes it out: a
    /// [`route`](Self::route) then a [`flush`](Self::flush).
    pub fn publish(&self, message: IngressMessage, received: Instant) -> Option<SharedEvent> {
        let event = self.route(message, received);
        self.flush();
        event
    }

    /// Writes what [`route`](Self::route) queued to every socket that takes it now;
    /// the session tasks write the rest when their sockets can take it. The ingress
    /// calls this at the end of each burst, so a burst costs one write per socket.
    pub fn flush(&self) {
        let mut to_flush = self.to_flush.lock().unwrap_or_else(|e| e.into_inner());
        if to_flush.is_empty() {
            return;
        }
        let mut written = [Written::default(); Protocol::ALL.len()];
        for (writer, protocol) in to_flush.drain(..) {
            writer.unlist();
            if let Some(total) = slot(protocol).and_then(|i| written.get_mut(i)) {
                total.add(writer.flush_now());
            }
        }
        drop(to_flush);
        for (protocol, written) in Protocol::ALL.iter().zip(written) {
            written.record(*protocol);
        }
    }

    /// Routes one accepted message to every matching session, in the order calls are
    /// made (the ingress makes them from one thread, in arrival order): SSE frames go
    /// on their queues, WebSocket frames wait in their socket writers for the next
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
        // WAMP v2 publication ids are random in WAMP's id range.
        let mut frames = EventFrames::new(&event, wamp2::id_from_random(rand::random()));
        let mut to_flush = self.to_flush.lock().unwrap_or_else(|e| e.into_inner());
        let mut delivered = Deliveries {
            queued: Default::default(),
            limit: self.send_queue,
            to_flush: &mut to_flush,
        };
        index.for_each_match(&event.topic, |pattern, _, session| {
            if session.is_closing() {
                return;
            }
            match (&session.outlet, session.protocol) {
                // Once per event, however many of the session's patterns match.
                (Outlet::Queue(queue), _) => {
                    if session.last_routed.swap(stamp, Ordering::Relaxed) != stamp {
                        delivered.queue(session, queue, frames.sse(), received);
                    }
                }
                (Outlet::Socket(writer), Protocol::Native | Protocol::Sse) => {
                    if session.last_routed.swap(stamp, Ordering::Relaxed) != stamp {
                        delivered.socket(session, writer, frames.native(), 0, received);
                    }
                }
                // Once per matching subscription.
                (Outlet::Socket(writer), Protocol::Wamp1) => {
                    delivered.socket(session, writer, frames.wamp1(pattern), 0, received)
                }
                (Outlet::Socket(writer), Protocol::Wamp2) => {
                    let subscriptions = session.wamp2.lock().unwrap_or_else(|e| e.into_inner());
                    for &(match_, id) in subscriptions.get(pattern).into_iter().flatten() {
                        if wamp2::accepts(match_, pattern, &event.topic) {
                            let frame = frames.wamp2(id, match_);
                            delivered.socket(session, writer, frame, id, received);
                        }
                    }
                }
            }
        });
        drop(index);
        delivered.record();
        Some(event)
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

/// A subscription id per (pattern, match policy), the same in every session and every
/// run: a hash mapped onto WAMP's id range.
fn wamp2_subscription_id(pattern: &Pattern, match_: Match) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    pattern.as_str().hash(&mut hasher);
    match_.as_str().hash(&mut hasher);
    wamp2::id_from_random(hasher.finish())
}

/// Puts frames on session queues and socket writers, lists the writers for the next
/// flush, and counts frames per protocol, recorded once per event.
struct Deliveries<'a> {
    queued: [u64; Protocol::ALL.len()],
    limit: usize,
    to_flush: &'a mut Vec<(Arc<SocketWriter>, Protocol)>,
}

impl Deliveries<'_> {
    fn socket(
        &mut self,
        session: &SessionHandle,
        writer: &Arc<SocketWriter>,
        frame: Bytes,
        subscription: u64,
        received: Instant,
    ) {
        match writer.queue_event(frame, subscription, received, self.limit) {
            Ok(()) => {
                if writer.list() {
                    self.to_flush.push((Arc::clone(writer), session.protocol));
                }
                self.count(session.protocol);
            }
            Err(Refused::Full) => slow_consumer(session),
            Err(Refused::Closed) => {}
        }
    }

    fn queue(
        &mut self,
        session: &SessionHandle,
        queue: &mpsc::Sender<Outbound>,
        frame: Utf8Bytes,
        received: Instant,
    ) {
        let outbound = Outbound { frame, received };
        match queue.try_send(outbound) {
            Ok(()) => self.count(session.protocol),
            Err(mpsc::error::TrySendError::Full(_)) => slow_consumer(session),
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn count(&mut self, protocol: Protocol) {
        if let Some(queued) = slot(protocol).and_then(|i| self.queued.get_mut(i)) {
            *queued += 1;
        }
    }

    fn record(&self) {
        for (protocol, frames) in Protocol::ALL.iter().zip(self.queued) {
            metrics::events_queued(*protocol, frames);
        }
    }
}

/// Where `protocol` sits in per-protocol tallies ([`Protocol::ALL`] order).
fn slot(protocol: Protocol) -> Option<usize> {
    Protocol::ALL.iter().position(|p| *p == protocol)
}

fn slow_consumer(session: &SessionHandle) {
    if session.close(close_code::SLOW_CONSUMER) {
        metrics::slow_consumer_close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::Topic;

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

    fn drain(rx: &mut mpsc::Receiver<Outbound>) -> Vec<String> {
        let mut frames = Vec::new();
        while let Ok(out) = rx.try_recv() {
            frames.push(out.frame.to_string());
        }
        frames
    }

    /// A WebSocket session on one end of a socket pair, and the client's end.
    struct Peer {
        handle: Arc<SessionHandle>,
        writer: Arc<SocketWriter>,
        theirs: std::os::unix::net::UnixStream,
    }

    impl Peer {
        async fn new(hub: &Hub, protocol: Protocol) -> Peer {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
            ours.set_nonblocking(true).unwrap();
            theirs.set_nonblocking(true).unwrap();
            let stream = tokio::net::UnixStream::from_std(ours).unwrap();
            stream.writable().await.unwrap();
            let writer = Arc::new(SocketWriter::new(socket_writer::RawStream::Unix(stream)));
            let handle = hub.register_socket(protocol, Arc::clone(&writer));
            Peer {
                handle,
                writer,
                theirs,
            }
        }

        /// The text of every complete frame received so far.
        fn frames(&mut self) -> Vec<String> {
            use std::io::Read;
            let mut bytes = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = self.theirs.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                bytes.extend_from_slice(&chunk[..n]);
            }
            let mut frames = Vec::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                assert_eq!(rest[0], 0x81, "a final text frame");
                let (len, header) = match rest[1] {
                    126 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
                    127 => (
                        u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    len => (len as usize, 2),
                };
                frames.push(String::from_utf8(rest[header..header + len].to_vec()).unwrap());
                rest = &rest[header + len..];
            }
            frames
        }
    }

    #[tokio::test]
    async fn native_sessions_get_each_event_once_wamp1_once_per_subscription() {
        let hub = Hub::new(16, test_limits());
        let mut native = Peer::new(&hub, Protocol::Native).await;
        let mut wamp = Peer::new(&hub, Protocol::Wamp1).await;
        let mut sse = hub.register_queue(Protocol::Sse);
        for pattern in ["article", "article:7"] {
            let pattern = Pattern::parse(pattern).unwrap();
            assert!(hub.subscribe(&native.handle, &pattern));
            assert!(hub.subscribe(&wamp.handle, &pattern));
            assert!(hub.subscribe(&sse.0, &pattern));
        }
        let event = hub
            .publish(message("article:7", r#"{"a":1}"#), Instant::now())
            .unwrap();
        let native_frame = format!(
            r#"{{"type":"event","topic":"article:7","id":"{}","data":{{"a":1}}}}"#,
            event.id
        );
        assert_eq!(
            drain(&mut sse.1),
            vec![format!("id: {}\ndata: {native_frame}\n\n", event.id)]
        );
        assert_eq!(
            native.frames(),
            vec![format!(
                r#"{{"type":"event","topic":"article:7","id":"{}","data":{{"a":1}}}}"#,
                event.id
            )]
        );
        let mut wamp_frames = wamp.frames();
        wamp_frames.sort();
        assert_eq!(
            wamp_frames,
            vec![r#"[8,"article",{"a":1}]"#, r#"[8,"article:7",{"a":1}]"#]
        );
        hub.publish(message("article:8", "2"), Instant::now());
        assert_eq!(native.frames().len(), 1);
        assert_eq!(wamp.frames(), vec![r#"[8,"article",2]"#]);
        assert_eq!(drain(&mut sse.1).len(), 1);
    }

    #[test]
    fn ids_are_kept_or_assigned_in_sequence() {
        let hub = Hub::new(4, test_limits());
        let mut given = message("a", "1");
        given.id = Some("pub-1".into());
        assert_eq!(
            &*hub.publish(given.clone(), Instant::now()).unwrap().id,
            "pub-1"
        );
        assert!(
            hub.publish(given, Instant::now()).is_none(),
            "a retried id is a duplicate"
        );
        let first = hub.publish(message("a", "1"), Instant::now()).unwrap();
        let second = hub.publish(message("a", "1"), Instant::now()).unwrap();
        let (epoch, seq) = first.id.split_once('-').unwrap();
        assert_eq!(
            second.id.to_string(),
            format!("{epoch}-{}", seq.parse::<u64>().unwrap() + 1)
        );
    }

    #[tokio::test]
    async fn a_full_queue_closes_only_that_session_with_4008() {
        let hub = Hub::new(2, test_limits());
        // A socket that takes nothing (corked) and an SSE stream nobody reads.
        let slow = Peer::new(&hub, Protocol::Native).await;
        slow.writer.cork();
        let (slow_sse, mut slow_sse_rx) = hub.register_queue(Protocol::Sse);
        let mut fast = Peer::new(&hub, Protocol::Native).await;
        let all = Pattern::everything();
        hub.subscribe(&slow.handle, &all);
        hub.subscribe(&slow_sse, &all);
        hub.subscribe(&fast.handle, &all);
        for i in 0..5 {
            hub.publish(message("t", &i.to_string()), Instant::now());
            assert_eq!(fast.frames().len(), 1, "the fast session keeps up");
        }
        for slow in [&slow.handle, &slow_sse] {
            assert!(slow.is_closing());
            assert_eq!(
                slow.close_code.load(Ordering::Acquire),
                close_code::SLOW_CONSUMER
            );
        }
        assert_eq!(drain(&mut slow_sse_rx).len(), 2);
        assert!(!fast.handle.is_closing());
    }

    #[tokio::test]
    async fn unsubscribed_sessions_get_nothing() {
        let hub = Hub::new(4, test_limits());
        let mut peer = Peer::new(&hub, Protocol::Native).await;
        let session = Arc::clone(&peer.handle);
        let pattern = Pattern::parse("a").unwrap();
        hub.subscribe(&session, &pattern);
        assert!(hub.unsubscribe(session.id, &pattern));
        assert!(!hub.unsubscribe(session.id, &pattern));
        hub.publish(message("a", "1"), Instant::now());
        assert!(peer.frames().is_empty());
    }

    #[tokio::test]
    async fn resume_replays_what_was_missed_for_the_new_patterns_only() {
        let hub = Hub::new(16, test_limits());
        let mut peer = Peer::new(&hub, Protocol::Native).await;
        let session = Arc::clone(&peer.handle);
        let first = hub.publish(message("a:1", "1"), Instant::now()).unwrap();
        hub.publish(message("a:2", "2"), Instant::now());
        hub.publish(message("b:1", "3"), Instant::now());
        hub.publish(message("c", "4"), Instant::now());
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
        hub.publish(message("a:3", "5"), Instant::now());
        assert_eq!(peer.frames().len(), 1, "live after the resume");
    }
}
