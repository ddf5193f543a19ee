//! One client connection as the rest of the bridge sees it: where its event frames go
//! (a WebSocket's [`SocketWriter`], or an SSE stream's bounded queue), the request to
//! close it, and when its client was last heard from.
//!
//! It is the session's [`Outlet`]: the hub offers it every matching event, and it
//! takes the frame its protocol needs from the event's [`EventFrames`], building it if
//! it is the first recipient: one native frame per event (the SSE frame embeds the
//! same JSON), one WAMP v1 EVENT per subscription URI, one WAMP v2 EVENT per
//! subscription id. A session with `server.send_queue` event frames already waiting is
//! a slow consumer: it is asked to close with `4008`, and the hub carries on.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

use super::frame::text_frame;
use super::writer::{Refused, SocketWriter};
use crate::hub::{EventFrames, FrameKey, Outlet, Routing, SessionId};
use crate::ops::metrics::{self, Tally};
use crate::protocol::close::Close;
use crate::protocol::wamp2::{self, Match};
use crate::protocol::{native, sse, wamp1, Protocol};
use crate::topic::Pattern;

/// The hub, routing to client connections.
pub type Hub = crate::hub::Hub<Connection>;

/// One event frame waiting in an SSE stream's queue: body text.
#[derive(Debug)]
pub struct Outbound {
    pub frame: Bytes,
    /// When the ingress received the event (delivery latency).
    pub received: Instant,
}

/// Where a connection's frames go.
#[derive(Debug)]
enum Sink {
    /// A WebSocket: complete frames straight into the socket.
    Socket(Arc<SocketWriter>),
    /// An SSE stream: body text to the task that feeds the HTTP response.
    Stream(mpsc::Sender<Outbound>),
}

/// What the hub, the heartbeat, a reload and the drain know of one connection.
#[derive(Debug)]
pub struct Connection {
    pub protocol: Protocol,
    /// The hub's bookkeeping (the session's id among it).
    routing: Routing,
    sink: Sink,
    /// Event frames that may wait before the session is a slow consumer.
    send_queue: usize,
    /// Why the session must close; the first request wins.
    close: OnceLock<Close>,
    close_signal: Notify,
    /// When the client last sent anything, in milliseconds since [`CLOCK`].
    heard_at: AtomicU64,
    /// WAMP v2 only (`None` for the others, to keep idle connections small): per
    /// pattern, the (match policy, subscription id) pairs its events are framed for.
    /// The session's state machine decides them (AddRoute, RemoveRoute); this copy is
    /// what routing reads, from the ingress thread.
    routes: Option<Box<Mutex<Routes>>>,
}

type Routes = HashMap<Pattern, Vec<(Match, u64)>>;

/// The clock origin of [`Connection::heard`].
static CLOCK: LazyLock<Instant> = LazyLock::new(Instant::now);

fn millis_since_clock() -> u64 {
    u64::try_from(CLOCK.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Connection {
    /// A WebSocket connection of `hub` whose frames go to `writer`.
    pub fn socket(
        hub: &Hub,
        protocol: Protocol,
        writer: Arc<SocketWriter>,
        send_queue: usize,
    ) -> Self {
        Self::new(hub, protocol, Sink::Socket(writer), send_queue)
    }

    /// An SSE stream's connection and the receiving end of its queue.
    pub fn stream(hub: &Hub, send_queue: usize) -> (Self, mpsc::Receiver<Outbound>) {
        let (queue, receiver) = mpsc::channel(send_queue.max(1));
        (
            Self::new(hub, Protocol::Sse, Sink::Stream(queue), send_queue),
            receiver,
        )
    }

    fn new(hub: &Hub, protocol: Protocol, sink: Sink, send_queue: usize) -> Self {
        // Native and SSE sessions take each event once, however many of their patterns
        // match; WAMP sessions once per matching subscription.
        let once_per_event = matches!(protocol, Protocol::Native | Protocol::Sse);
        Connection {
            protocol,
            routing: hub.routing(once_per_event),
            sink,
            send_queue: send_queue.max(1),
            close: OnceLock::new(),
            close_signal: Notify::new(),
            heard_at: AtomicU64::new(millis_since_clock()),
            routes: (protocol == Protocol::Wamp2).then(Box::default),
        }
    }

    /// The session's id in the hub.
    pub fn id(&self) -> SessionId {
        self.routing.id()
    }

    /// The socket writer of a WebSocket connection (`None` for SSE).
    pub fn socket_writer(&self) -> Option<&SocketWriter> {
        match &self.sink {
            Sink::Socket(writer) => Some(writer),
            Sink::Stream(_) => None,
        }
    }

    /// Event frames queued and not yet written, and when the ingress received the
    /// oldest of them (`None` for an SSE stream, whose queue cannot be looked into).
    pub fn backlog(&self) -> (usize, Option<Instant>) {
        match &self.sink {
            Sink::Socket(writer) => writer.backlog(),
            Sink::Stream(queue) => (queue.max_capacity() - queue.capacity(), None),
        }
    }

    /// Asks the session to close. The first request wins; returns whether this was it.
    pub fn request_close(&self, close: Close) -> bool {
        if self.close.set(close).is_err() {
            return false;
        }
        self.close_signal.notify_one();
        true
    }

    /// Resolves once a close was requested; returns why.
    pub async fn close_requested(&self) -> Close {
        loop {
            if let Some(close) = self.close.get() {
                return *close;
            }
            self.close_signal.notified().await;
        }
    }

    pub fn is_closing(&self) -> bool {
        self.close.get().is_some()
    }

    /// Notes that the client sent something (it is alive).
    pub fn heard(&self) {
        self.heard_at.store(millis_since_clock(), Ordering::Relaxed);
    }

    /// How long since the client last sent anything.
    pub fn silent_for(&self) -> Duration {
        let heard_at = self.heard_at.load(Ordering::Relaxed);
        Duration::from_millis(millis_since_clock().saturating_sub(heard_at))
    }

    /// WAMP v2: frame events matching `pattern` and accepted by `match_` for
    /// subscription `id`.
    pub fn add_route(&self, pattern: &Pattern, match_: Match, id: u64) {
        let Some(routes) = &self.routes else {
            return;
        };
        let mut routes = routes.lock().unwrap_or_else(|e| e.into_inner());
        let pairs = routes.entry(pattern.clone()).or_default();
        if !pairs.contains(&(match_, id)) {
            pairs.push((match_, id));
        }
    }

    /// WAMP v2: stop framing events for subscription `id`.
    pub fn remove_route(&self, pattern: &Pattern, id: u64) {
        let Some(routes) = &self.routes else {
            return;
        };
        let mut routes = routes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pairs) = routes.get_mut(pattern) {
            pairs.retain(|&(_, i)| i != id);
            if pairs.is_empty() {
                routes.remove(pattern);
            }
        }
    }

    /// Queues one event frame on the socket; a full queue makes a slow consumer.
    fn queue(
        &self,
        writer: &SocketWriter,
        frame: Bytes,
        tag: u64,
        received: Instant,
        tally: &mut Tally,
    ) -> bool {
        match writer.queue_event(frame, tag, received, self.send_queue) {
            Ok(()) => {
                tally.queued(self.protocol, 1);
                true
            }
            Err(Refused::Full) => {
                self.slow_consumer();
                false
            }
            Err(Refused::Closed) => false,
        }
    }

    fn slow_consumer(&self) {
        if self.request_close(Close::SlowConsumer) {
            metrics::slow_consumer_close();
        }
    }
}

impl Outlet for Connection {
    fn offer(&self, pattern: &Pattern, frames: &mut EventFrames<'_>, tally: &mut Tally) -> bool {
        if self.is_closing() {
            return false;
        }
        let event = frames.event();
        let received = event.received;
        let writer = match &self.sink {
            Sink::Stream(queue) => {
                let frame = frames.get_or_build(SSE, sse_frame);
                match queue.try_send(Outbound { frame, received }) {
                    Ok(()) => tally.queued(Protocol::Sse, 1),
                    Err(mpsc::error::TrySendError::Full(_)) => self.slow_consumer(),
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
                return false;
            }
            Sink::Socket(writer) => writer,
        };
        match self.protocol {
            Protocol::Native | Protocol::Sse => {
                let frame = frames.get_or_build(NATIVE, native_frame);
                self.queue(writer, frame, 0, received, tally)
            }
            Protocol::Wamp1 => {
                // The index holds each pattern once: its address names the URI.
                let key = FrameKey::new(WAMP1, pattern as *const Pattern as u64);
                let frame = frames.get_or_build(key, |f| {
                    text_frame(wamp1::event(pattern.as_str(), &f.event().data).as_bytes())
                });
                self.queue(writer, frame, 0, received, tally)
            }
            Protocol::Wamp2 => {
                let Some(routes) = &self.routes else {
                    return false;
                };
                let routes = routes.lock().unwrap_or_else(|e| e.into_inner());
                let mut queued = false;
                for &(match_, id) in routes.get(pattern).into_iter().flatten() {
                    if wamp2::accepts(match_, pattern, &event.topic) {
                        let key = FrameKey::new(WAMP2, id);
                        let frame = frames.get_or_build(key, |f| wamp2_frame(f, id, match_));
                        queued |= self.queue(writer, frame, id, received, tally);
                    }
                }
                queued
            }
        }
    }

    fn flush(&self, tally: &mut Tally) {
        if let Sink::Socket(writer) = &self.sink {
            let written = writer.flush_now();
            tally.delivered(self.protocol, written.frames, written.oldest);
        }
    }

    fn routing(&self) -> &Routing {
        &self.routing
    }
}

/// The frames of an event, by kind (see [`FrameKey`]).
const NATIVE_JSON: FrameKey = FrameKey::new(1, 0);
const NATIVE: FrameKey = FrameKey::new(2, 0);
const SSE: FrameKey = FrameKey::new(3, 0);
const WAMP1: u8 = 4;
const WAMP2: u8 = 5;

/// The native `event` frame's JSON: the payload of the native frame and of the SSE one.
fn native_json(frames: &mut EventFrames<'_>) -> Bytes {
    frames.get_or_build(NATIVE_JSON, |f| {
        let event = f.event();
        Bytes::from(native::event(&event.topic, &event.id, &event.data))
    })
}

fn native_frame(frames: &mut EventFrames<'_>) -> Bytes {
    text_frame(&native_json(frames))
}

fn sse_frame(frames: &mut EventFrames<'_>) -> Bytes {
    let json = native_json(frames);
    // The native JSON is built from strings, so it is UTF-8.
    let json = std::str::from_utf8(&json).unwrap_or_default();
    Bytes::from(sse::event(&frames.event().id, json))
}

/// EVENT for subscription `id`; pattern subscriptions carry `details.topic`.
fn wamp2_frame(frames: &mut EventFrames<'_>, id: u64, match_: Match) -> Bytes {
    let event = frames.event();
    let topic = (match_ != Match::Exact).then(|| wamp2::topic_uri(&event.topic));
    let text = wamp2::event(id, publication_id(&event.id), topic.as_deref(), &event.data);
    text_frame(text.as_bytes())
}

/// The WAMP v2 publication id of an event: the same for every subscription it is
/// delivered on, unpredictable (a keyed hash of the event id), in WAMP's id range.
fn publication_id(event_id: &str) -> u64 {
    static KEY: LazyLock<std::collections::hash_map::RandomState> = LazyLock::new(Default::default);
    wamp2::id_from_random(KEY.hash_one(event_id))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::event::IngressMessage;
    use crate::hub::history;
    use crate::topic::Topic;

    fn hub() -> Hub {
        Hub::new(history::Limits {
            size: 100,
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(60),
        })
    }

    fn publish(hub: &Hub, topic: &str, data: &str) -> crate::event::SharedEvent {
        let message = IngressMessage {
            topic: Topic::parse(topic).unwrap(),
            id: None,
            data: data.to_string(),
        };
        let event = hub.route(message, Instant::now()).unwrap();
        hub.flush();
        event
    }

    /// A WebSocket connection on one end of a socket pair, and the client's end.
    struct Peer {
        connection: Arc<Connection>,
        writer: Arc<SocketWriter>,
        theirs: std::os::unix::net::UnixStream,
    }

    impl Peer {
        async fn new(hub: &Hub, protocol: Protocol, send_queue: usize) -> Peer {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
            ours.set_nonblocking(true).unwrap();
            theirs.set_nonblocking(true).unwrap();
            let stream = tokio::net::UnixStream::from_std(ours).unwrap();
            stream.writable().await.unwrap();
            let writer = Arc::new(SocketWriter::new(crate::egress::writer::RawStream::Unix(
                stream,
            )));
            let connection = Arc::new(Connection::socket(
                hub,
                protocol,
                Arc::clone(&writer),
                send_queue,
            ));
            Peer {
                connection,
                writer,
                theirs,
            }
        }

        fn subscribe(&self, hub: &Hub, pattern: &str) {
            assert!(hub.subscribe(&self.connection, &Pattern::parse(pattern).unwrap()));
        }

        /// The text of every complete frame received so far.
        fn frames(&mut self) -> Vec<String> {
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

    fn drain(queue: &mut mpsc::Receiver<Outbound>) -> Vec<String> {
        let mut frames = Vec::new();
        while let Ok(out) = queue.try_recv() {
            frames.push(String::from_utf8(out.frame.to_vec()).unwrap());
        }
        frames
    }

    #[tokio::test]
    async fn native_and_sse_get_each_event_once_wamp1_once_per_subscription() {
        let hub = hub();
        let mut native = Peer::new(&hub, Protocol::Native, 16).await;
        let mut wamp = Peer::new(&hub, Protocol::Wamp1, 16).await;
        let (sse, mut sse_queue) = Connection::stream(&hub, 16);
        let sse = Arc::new(sse);
        for pattern in ["article", "article:7"] {
            native.subscribe(&hub, pattern);
            wamp.subscribe(&hub, pattern);
            hub.subscribe(&sse, &Pattern::parse(pattern).unwrap());
        }
        let event = publish(&hub, "article:7", r#"{"a":1}"#);
        let native_frame = format!(
            r#"{{"type":"event","topic":"article:7","id":"{}","data":{{"a":1}}}}"#,
            event.id
        );
        assert_eq!(
            drain(&mut sse_queue),
            vec![format!("id: {}\ndata: {native_frame}\n\n", event.id)]
        );
        assert_eq!(native.frames(), vec![native_frame]);
        let mut wamp_frames = wamp.frames();
        wamp_frames.sort();
        assert_eq!(
            wamp_frames,
            vec![r#"[8,"article",{"a":1}]"#, r#"[8,"article:7",{"a":1}]"#]
        );
        publish(&hub, "article:8", "2");
        assert_eq!(native.frames().len(), 1);
        assert_eq!(wamp.frames(), vec![r#"[8,"article",2]"#]);
        assert_eq!(drain(&mut sse_queue).len(), 1);
        assert!(!native.connection.is_closing() && !sse.is_closing());
    }

    #[tokio::test]
    async fn wamp2_events_follow_the_routes_with_one_publication_id() {
        let hub = hub();
        let mut peer = Peer::new(&hub, Protocol::Wamp2, 16).await;
        let pattern = Pattern::parse("a").unwrap();
        peer.connection.add_route(&pattern, Match::Exact, 11);
        peer.connection.add_route(&pattern, Match::Prefix, 22);
        peer.subscribe(&hub, "a");
        publish(&hub, "a:1", "1");
        let frames = peer.frames();
        assert_eq!(frames.len(), 1, "exact `a` does not accept a:1: {frames:?}");
        assert!(frames[0].starts_with("[36,22,"), "{frames:?}");
        publish(&hub, "a", "2");
        let frames: Vec<serde_json::Value> = peer
            .frames()
            .iter()
            .map(|f| serde_json::from_str(f).unwrap())
            .collect();
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(frames[0][2], frames[1][2], "one publication id per event");
        peer.connection.remove_route(&pattern, 22);
        peer.connection.remove_route(&pattern, 11);
        publish(&hub, "a", "3");
        assert!(peer.frames().is_empty(), "no route, no EVENT");
    }

    #[tokio::test]
    async fn a_full_queue_closes_only_that_session_with_4008() {
        let hub = hub();
        // A socket that takes nothing (corked) and an SSE stream nobody reads.
        let slow = Peer::new(&hub, Protocol::Native, 2).await;
        slow.writer.cork();
        let (slow_sse, mut slow_sse_queue) = Connection::stream(&hub, 2);
        let slow_sse = Arc::new(slow_sse);
        let mut fast = Peer::new(&hub, Protocol::Native, 2).await;
        slow.subscribe(&hub, "*");
        hub.subscribe(&slow_sse, &Pattern::everything());
        fast.subscribe(&hub, "*");
        for i in 0..5 {
            publish(&hub, "t", &i.to_string());
            assert_eq!(fast.frames().len(), 1, "the fast session keeps up");
        }
        for slow in [&slow.connection, &slow_sse] {
            assert!(slow.is_closing());
            assert_eq!(slow.close_requested().await, Close::SlowConsumer);
        }
        assert_eq!(drain(&mut slow_sse_queue).len(), 2);
        assert!(!fast.connection.is_closing());
        assert!(
            !slow.connection.request_close(Close::GoingAway),
            "the first close wins"
        );
    }
}
