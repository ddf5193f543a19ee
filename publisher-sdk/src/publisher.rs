//! [`Publisher`]: checks an event against the bridge's rules, encodes it as
//! `[topic, id, data-json]` (see [`wire::encode`]) and hands it to its ZeroMQ socket.
//! The socket, and what it reports about its peers, sit behind one mutex, because a
//! ZeroMQ socket must never be used by two threads at once; that makes `Publisher`
//! `Send + Sync`, so one instance can be shared (e.g. in an `Arc`) by a whole program.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::builder::{millis, PublisherBuilder};
use crate::error::PublishError;
use crate::readiness::{decode_monitor_event, PeerTracker, Subscriptions};
use crate::resend::{Sent, Window};
use crate::{new_event_id, wire};

/// `close` reports [`PublishError::Unflushed`] when closing took the whole linger, give
/// or take this much (libzmq's timers run on a coarse millisecond clock).
const LINGER_SLACK: Duration = Duration::from_millis(5);

/// A connection to push-bridge (or any ZeroMQ peer) that publishes events.
///
/// Open one with [`Publisher::connect`] (PUSH to the bridge's PULL, the usual set-up) or
/// [`Publisher::bind_pub`] (PUB that bridges subscribe to), or through
/// [`Publisher::builder`] to change limits and timeouts. Dropping it waits at most the
/// builder's linger (2 s by default) for queued messages to leave.
pub struct Publisher {
    endpoint: String,
    kind: Kind,
    max_message_bytes: usize,
    send_hwm: usize,
    send_timeout: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Push,
    Pub,
}

/// The ZeroMQ side. Field order is drop order: sockets close before their context
/// terminates, and terminating the context is what waits (up to the linger) for
/// queued messages.
pub(crate) struct Inner {
    pub(crate) socket: zmq::Socket,
    pub(crate) peers: Peers,
    /// PUSH: the recent messages, sent again when the bridge's connection is lost.
    pub(crate) window: Window,
    pub(crate) context: zmq::Context,
}

/// How the publisher learns whether anyone is listening.
pub(crate) enum Peers {
    /// PUSH: the socket monitor's events, read from an inproc PAIR socket.
    Monitor {
        socket: zmq::Socket,
        tracker: PeerTracker,
    },
    /// PUB (an XPUB): the subscription messages arriving on the socket itself.
    Subscribers(Subscriptions),
}

impl Publisher {
    /// A builder to change the size limit, queue length, timeouts or linger.
    pub fn builder() -> PublisherBuilder {
        PublisherBuilder::default()
    }

    /// Opens a PUSH socket connected to `endpoint`, with the default settings (see
    /// [`PublisherBuilder::connect`]).
    pub fn connect(endpoint: &str) -> Result<Publisher, PublishError> {
        Self::builder().connect(endpoint)
    }

    /// Opens one PUSH socket connected to every endpoint (the bridges of a cluster),
    /// with the default settings (see [`PublisherBuilder::connect_all`]).
    pub fn connect_all(endpoints: &[&str]) -> Result<Publisher, PublishError> {
        Self::builder().connect_all(endpoints)
    }

    /// Binds a PUB socket on `endpoint`, with the default settings (see
    /// [`PublisherBuilder::bind_pub`]).
    pub fn bind_pub(endpoint: &str) -> Result<Publisher, PublishError> {
        Self::builder().bind_pub(endpoint)
    }

    pub(crate) fn from_parts(
        endpoint: String,
        kind: Kind,
        max_message_bytes: usize,
        send_hwm: usize,
        send_timeout: Duration,
        inner: Inner,
    ) -> Publisher {
        Publisher {
            endpoint,
            kind,
            max_message_bytes,
            send_hwm,
            send_timeout,
            inner: Mutex::new(inner),
        }
    }

    /// The endpoint: as given to `connect`, or the one actually bound by `bind_pub`
    /// (so `tcp://127.0.0.1:0` comes back with the port the system chose); for
    /// `connect_all`, the endpoints joined by commas.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The size limit in bytes of one message (topic + id + JSON data).
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Whether a peer is there right now: for PUSH, a peer that completed the ZeroMQ
    /// handshake (with `connect_all`: at least one); for PUB, a peer that subscribed
    /// to something.
    pub fn is_connected(&self) -> bool {
        let mut inner = self.lock();
        inner.refresh();
        inner.is_connected()
    }

    /// Waits until [`is_connected`](Self::is_connected) holds, or fails with
    /// [`PublishError::NotConnected`] after `timeout`.
    ///
    /// Not needed before publishing (a PUSH publisher queues until the bridge is
    /// there), but useful at start-up to fail fast on a wrong endpoint, and with PUB,
    /// whose messages are dropped while nobody has subscribed. Other threads' publishes
    /// wait while this runs.
    pub fn wait_connected(&self, timeout: Duration) -> Result<(), PublishError> {
        let started = Instant::now();
        let deadline = started.checked_add(timeout);
        let mut inner = self.lock();
        loop {
            inner.refresh();
            if inner.is_connected() {
                return Ok(());
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return Err(PublishError::NotConnected {
                    endpoint: self.endpoint.clone(),
                    waited: started.elapsed(),
                });
            }
            inner.wait_for_news(left);
        }
    }

    /// Publishes `data` (any `Serialize`, sent as JSON) on `topic` with a fresh
    /// time-ordered id ([`new_event_id`]), and returns that id.
    pub fn publish<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        data: &T,
    ) -> Result<String, PublishError> {
        self.publish_with_id(topic, &new_event_id(), data)
    }

    /// Publishes with a given id: the bridge drops an event whose id it has seen
    /// recently, so retrying a failed publish with the same id never delivers twice.
    pub fn publish_with_id<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        id: &str,
        data: &T,
    ) -> Result<String, PublishError> {
        check_topic_and_id(topic, id)?;
        let json = serde_json::to_string(data).map_err(PublishError::Serialize)?;
        self.send(topic, id, json)?;
        Ok(id.to_owned())
    }

    /// Publishes data that is already JSON text, sent as-is once it has been checked to
    /// be one valid JSON value (as strictly as the bridge parses it). Uses `id` or, if
    /// `None`, a fresh one; returns the id.
    pub fn publish_json(
        &self,
        topic: &str,
        data_json: &str,
        id: Option<&str>,
    ) -> Result<String, PublishError> {
        let id = id.map_or_else(new_event_id, str::to_owned);
        check_topic_and_id(topic, &id)?;
        self.check_size(topic, &id, data_json)?;
        serde_json::from_str::<serde_json::Value>(data_json).map_err(PublishError::InvalidJson)?;
        self.send(topic, &id, data_json.to_owned())?;
        Ok(id)
    }

    /// Closes the socket, giving queued messages up to `linger` to leave; returns as
    /// soon as they have (this is the SDK's flush). Fails with
    /// [`PublishError::Unflushed`] when the whole linger ran out, as messages may then
    /// have been discarded (not reported for a zero linger, which discards by request).
    ///
    /// Messages waiting to be sent again after a lost connection (see
    /// [`PublisherBuilder::resend_window`]) are handed to ZeroMQ first, within the
    /// same `linger`.
    pub fn close(self, linger: Duration) -> Result<(), PublishError> {
        let started = Instant::now();
        let mut inner = self
            .inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        inner.refresh();
        inner.window.end_watch(Instant::now());
        let resent = inner
            .socket
            .set_sndtimeo(millis(linger))
            .and_then(|()| inner.resend_pending());
        let left = linger.saturating_sub(started.elapsed());
        let set = inner.socket.set_linger(millis(left));
        let Inner {
            socket,
            peers,
            window,
            context,
        } = inner;
        let unsent = window.pending();
        drop(socket);
        drop(peers);
        // The last handle: terminating the context waits for the lingering socket.
        drop(context);
        set.map_err(PublishError::Setup)?;
        let timed_out = started.elapsed() + LINGER_SLACK >= linger;
        if !linger.is_zero() && (unsent > 0 || resent.is_err() || timed_out) {
            return Err(PublishError::Unflushed {
                endpoint: self.endpoint,
                linger,
            });
        }
        Ok(())
    }

    fn check_size(&self, topic: &str, id: &str, data_json: &str) -> Result<(), PublishError> {
        let size = wire::encoded_len(topic, id, data_json);
        if size > self.max_message_bytes {
            return Err(PublishError::TooLarge {
                size,
                limit: self.max_message_bytes,
            });
        }
        Ok(())
    }

    /// Sends one checked event. Only the first frame can block (ZeroMQ queues a
    /// multipart message whole or not at all), so a signal interrupting the wait is
    /// retried there and the other frames are moved into ZeroMQ without copying.
    ///
    /// Messages waiting to be sent again after a lost connection go first, so a new
    /// message never overtakes them; if they do not fit in the queue, the new message
    /// fails with [`PublishError::QueueFull`] like any other that does not fit.
    fn send(&self, topic: &str, id: &str, data_json: String) -> Result<(), PublishError> {
        self.check_size(topic, id, &data_json)?;
        let [topic_frame, id_frame, data_frame] = wire::encode(topic, id, data_json);
        let mut inner = self.lock();
        inner.refresh();
        inner.resend_pending().map_err(|e| self.send_error(e))?;
        send_first_frame(&inner.socket, &topic_frame).map_err(|e| self.send_error(e))?;
        if inner.window.is_enabled() {
            // ZeroMQ copies the frames; the window keeps these.
            inner
                .socket
                .send(&id_frame[..], zmq::SNDMORE)
                .and_then(|()| inner.socket.send(&data_frame[..], 0))
                .map_err(PublishError::Send)?;
            let sent = Sent::owned([topic_frame, id_frame, data_frame], Instant::now());
            inner.window.record(sent);
            Ok(())
        } else {
            inner
                .socket
                .send(id_frame, zmq::SNDMORE)
                .and_then(|()| inner.socket.send(data_frame, 0))
                .map_err(PublishError::Send)
        }
    }

    /// A refused send as the caller sees it: a full queue, or another error.
    fn send_error(&self, error: zmq::Error) -> PublishError {
        match error {
            zmq::Error::EAGAIN => PublishError::QueueFull {
                endpoint: self.endpoint.clone(),
                hwm: self.send_hwm,
                waited: self.send_timeout,
            },
            e => PublishError::Send(e),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing under the lock can leave the socket half-used by panicking, so a
        // poisoned lock is still a usable socket.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("endpoint", &self.endpoint)
            .field("kind", &self.kind)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("send_hwm", &self.send_hwm)
            .field("send_timeout", &self.send_timeout)
            .finish_non_exhaustive()
    }
}

fn check_topic_and_id(topic: &str, id: &str) -> Result<(), PublishError> {
    wire::check_topic(topic).map_err(|source| PublishError::InvalidTopic {
        topic: topic.to_owned(),
        source,
    })?;
    if !wire::is_valid_id(id) {
        return Err(PublishError::InvalidId(id.to_owned()));
    }
    Ok(())
}

/// Sends the first frame of a message (the only one that can block: ZeroMQ queues a
/// multipart message whole or not at all), retrying when a signal interrupts the wait.
fn send_first_frame(socket: &zmq::Socket, frame: &[u8]) -> zmq::Result<()> {
    loop {
        match socket.send(frame, zmq::SNDMORE) {
            Err(zmq::Error::EINTR) => continue,
            done => return done,
        }
    }
}

impl Inner {
    /// Takes in everything the socket reported about its peers since last time,
    /// without waiting. Called before every send, so the reports never pile up. A
    /// lost connection puts the recent messages in line to be sent again.
    fn refresh(&mut self) {
        match &mut self.peers {
            Peers::Monitor { socket, tracker } => {
                while let Ok(frames) = socket.recv_multipart(zmq::DONTWAIT) {
                    if let Some(event) = frames.first().and_then(|f| decode_monitor_event(f)) {
                        if tracker.on_event(event) {
                            self.window.on_disconnect(Instant::now());
                        }
                    }
                }
                self.window.tick(Instant::now());
            }
            Peers::Subscribers(subscriptions) => {
                while let Ok(message) = self.socket.recv_bytes(zmq::DONTWAIT) {
                    subscriptions.on_message(&message);
                }
            }
        }
    }

    /// Hands the messages waiting to be sent again to ZeroMQ, oldest first; each goes
    /// back into the window. Stops at the first that does not fit (the socket's send
    /// timeout applies), which stays first in line.
    fn resend_pending(&mut self) -> zmq::Result<()> {
        while let Some(sent) = self.window.next_pending() {
            let [topic, id, data] = &sent.frames;
            if let Err(e) = send_first_frame(&self.socket, topic) {
                self.window.unsent(sent);
                return Err(e);
            }
            self.socket
                .send(&id[..], zmq::SNDMORE)
                .and_then(|()| self.socket.send(&data[..], 0))?;
            self.window.record(sent);
        }
        Ok(())
    }

    fn is_connected(&self) -> bool {
        match &self.peers {
            Peers::Monitor { tracker, .. } => tracker.is_connected(),
            Peers::Subscribers(subscriptions) => subscriptions.is_connected(),
        }
    }

    /// Sleeps until the peer reports have something new, or `at_most` has passed.
    fn wait_for_news(&self, at_most: Duration) {
        let socket = match &self.peers {
            Peers::Monitor { socket, .. } => socket,
            Peers::Subscribers(_) => &self.socket,
        };
        let ms = i64::from(millis(at_most));
        if socket.poll(zmq::POLLIN, ms).is_err() {
            // Interrupted, or a dying context: don't spin, the caller re-checks.
            std::thread::sleep(at_most.min(Duration::from_millis(10)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn publisher_is_send_and_sync() {
        assert_send_sync::<Publisher>();
    }

    fn unconnected() -> Publisher {
        // Nothing listens on port 1; refusals happen before the socket is touched.
        Publisher::builder()
            .max_message_bytes(64)
            .linger(Duration::ZERO)
            .connect("tcp://127.0.0.1:1")
            .unwrap()
    }

    #[test]
    fn refuses_bad_topics() {
        let p = unconnected();
        for topic in ["", "a b", "a::b", "news:*", ":x"] {
            let err = p.publish(topic, &1).unwrap_err();
            assert!(
                matches!(&err, PublishError::InvalidTopic { topic: t, .. } if t == topic),
                "{topic:?}: {err:?}"
            );
            let err = p.publish_json(topic, "1", None).unwrap_err();
            assert!(matches!(err, PublishError::InvalidTopic { .. }), "{err:?}");
        }
    }

    #[test]
    fn refuses_bad_ids() {
        let p = unconnected();
        let long = "x".repeat(129);
        for id in ["", "tab\there", "caf\u{e9}", long.as_str()] {
            let err = p.publish_with_id("t", id, &1).unwrap_err();
            assert!(
                matches!(&err, PublishError::InvalidId(i) if i == id),
                "{id:?}: {err:?}"
            );
            let err = p.publish_json("t", "1", Some(id)).unwrap_err();
            assert!(matches!(err, PublishError::InvalidId(_)), "{err:?}");
        }
    }

    #[test]
    fn refuses_invalid_json_as_strictly_as_the_bridge() {
        let p = unconnected();
        for text in [
            "",
            "nul",
            "{} x",
            "[1,]",
            "{'a':1}",
            "\"a\u{1}b\"",
            "\"\\x\"",
            "\"\\ud800\"",
            "1e999",
        ] {
            let err = p.publish_json("t", text, None).unwrap_err();
            assert!(
                matches!(err, PublishError::InvalidJson(_)),
                "{text:?}: {err:?}"
            );
        }
    }

    #[test]
    fn refuses_data_that_is_not_json() {
        let p = unconnected();
        let mut map = std::collections::BTreeMap::new();
        map.insert(vec![1u8], 2);
        let err = p.publish("t", &map).unwrap_err();
        assert!(matches!(err, PublishError::Serialize(_)), "{err:?}");
    }

    #[test]
    fn refuses_messages_above_the_limit_counting_every_frame() {
        let p = unconnected();
        // topic 1 + id 1 + data 62 = 64: at the limit, accepted (queued).
        let data = format!("\"{}\"", "x".repeat(60));
        assert_eq!(p.publish_json("t", &data, Some("i")).unwrap(), "i");
        let data = format!("\"{}\"", "x".repeat(61));
        let err = p.publish_json("t", &data, Some("i")).unwrap_err();
        assert!(
            matches!(
                err,
                PublishError::TooLarge {
                    size: 65,
                    limit: 64
                }
            ),
            "{err:?}"
        );
        let err = p.publish_with_id("t", "i", &"x".repeat(61)).unwrap_err();
        assert!(matches!(err, PublishError::TooLarge { .. }), "{err:?}");
    }

    #[test]
    fn an_unconnected_push_is_not_connected() {
        let p = unconnected();
        assert!(!p.is_connected());
        assert_eq!(p.endpoint(), "tcp://127.0.0.1:1");
    }

    #[test]
    fn a_full_queue_fails_after_the_send_timeout() {
        let p = Publisher::builder()
            .send_hwm(2)
            .send_timeout(Duration::from_millis(50))
            .linger(Duration::ZERO)
            .connect("tcp://127.0.0.1:1")
            .unwrap();
        // Nobody reads, so the queue fills (libzmq may take a message or two more than
        // the HWM); then the next publish waits the timeout and fails.
        let started = Instant::now();
        let err = (0..100)
            .find_map(|i| p.publish("t", &i).err())
            .expect("the queue never filled");
        assert!(
            matches!(&err, PublishError::QueueFull { hwm: 2, waited, .. } if *waited == Duration::from_millis(50)),
            "{err:?}"
        );
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(45), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    }
}
