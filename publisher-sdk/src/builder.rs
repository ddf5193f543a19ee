//! The knobs of a [`Publisher`] and the one place its ZeroMQ socket is created and
//! configured. Every default is chosen so that a publisher never hangs its program:
//! sends wait a bounded time for queue space, and dropping waits a bounded time for
//! queued messages to leave.

use std::time::Duration;

use crate::error::PublishError;
use crate::publisher::{Inner, Kind, Peers, Publisher};
use crate::readiness::{monitored_events, PeerTracker, Subscriptions};
use crate::resend::{self, Window};

/// Default size limit of one message (all frames), in bytes: the bridge's default
/// `ingress.max_message_bytes` (4 MiB, since packages carry whole article bodies).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Default number of messages queued per peer before the queue counts as full
/// (ZeroMQ's `ZMQ_SNDHWM`; libzmq's own default).
pub const DEFAULT_SEND_HWM: usize = 1000;

/// Default time a `publish` on a full PUSH queue waits for room before failing with
/// [`PublishError::QueueFull`].
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_millis(500);

/// Default time queued messages get to leave when the publisher is dropped.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(2);

/// Default first delay before reconnecting to a bridge that went away.
pub const DEFAULT_RECONNECT_IVL: Duration = Duration::from_millis(100);

/// Default ceiling of the reconnect delay, which doubles from `reconnect_ivl` up to it.
pub const DEFAULT_RECONNECT_IVL_MAX: Duration = Duration::from_secs(1);

/// Default number of recent messages a PUSH publisher sends again when the connection
/// to the bridge is lost (see [`PublisherBuilder::resend_window`]): half the bridge's
/// default `history.size`, so the bridge still knows their ids and drops the ones it
/// already had.
pub const DEFAULT_RESEND_WINDOW: usize = 5_000;

/// The resend window never holds more than this many bytes of messages, whatever its
/// length in messages (a bound on the memory it takes).
pub const RESEND_WINDOW_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Messages older than this are not sent again: the bridge's history (5 minutes by
/// default) may have forgotten their ids, and a message that old was not in flight.
pub const RESEND_MAX_AGE: Duration = Duration::from_secs(60);

/// The kernel send buffer of the PUSH socket's connection, in bytes (`ZMQ_SNDBUF`).
const KERNEL_SNDBUF: i32 = 64 * 1024;

/// Where a monitored socket's events are published, inside the publisher's own
/// ZeroMQ context (so one fixed name never collides).
const MONITOR_ENDPOINT: &str = "inproc://push-bridge-publisher.monitor";

/// With several peers, how long after one is lost what goes out may still be dropped
/// with its queue (libzmq detaches the queue a moment after reporting the loss; in
/// practice well under a millisecond), and is therefore sent again too.
const AFTER_LOSS: Duration = Duration::from_millis(100);

/// Configures and opens a [`Publisher`]; start from [`Publisher::builder`].
///
/// ```
/// use std::time::Duration;
/// use push_bridge_publisher::Publisher;
///
/// // Connecting succeeds even while the bridge is down: ZeroMQ connects in the background.
/// let publisher = Publisher::builder()
///     .max_message_bytes(1024 * 1024)
///     .send_timeout(Duration::from_millis(100))
///     .linger(Duration::from_millis(500))
///     .connect("tcp://127.0.0.1:5555")?;
/// # Ok::<(), push_bridge_publisher::PublishError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PublisherBuilder {
    max_message_bytes: usize,
    send_hwm: usize,
    send_timeout: Duration,
    linger: Duration,
    reconnect_ivl: Duration,
    reconnect_ivl_max: Duration,
    resend_window: usize,
}

impl Default for PublisherBuilder {
    fn default() -> Self {
        PublisherBuilder {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            send_hwm: DEFAULT_SEND_HWM,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            linger: DEFAULT_LINGER,
            reconnect_ivl: DEFAULT_RECONNECT_IVL,
            reconnect_ivl_max: DEFAULT_RECONNECT_IVL_MAX,
            resend_window: DEFAULT_RESEND_WINDOW,
        }
    }
}

impl PublisherBuilder {
    /// Largest message (topic + id + JSON data, in bytes) `publish` accepts; larger ones
    /// fail with [`PublishError::TooLarge`]. Match the bridge's `ingress.max_message_bytes`.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Messages queued per peer (PUSH: also while not yet connected) before the queue is
    /// full. 0 means no limit, so memory grows without bound while the bridge is down.
    pub fn send_hwm(mut self, messages: usize) -> Self {
        self.send_hwm = messages;
        self
    }

    /// How long `publish` on a full PUSH queue waits for room before failing with
    /// [`PublishError::QueueFull`]. Zero fails at once. PUB sockets never wait: they
    /// drop messages for peers whose queue is full (ZeroMQ PUB semantics).
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// How long queued messages get to leave when the publisher is dropped. Zero
    /// discards them at once. (`Publisher::close` takes its own linger.)
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// First delay before reconnecting after the bridge went away (PUSH only).
    pub fn reconnect_ivl(mut self, ivl: Duration) -> Self {
        self.reconnect_ivl = ivl;
        self
    }

    /// Ceiling of the reconnect delay, which doubles from `reconnect_ivl` (PUSH only).
    pub fn reconnect_ivl_max(mut self, ivl: Duration) -> Self {
        self.reconnect_ivl_max = ivl;
        self
    }

    /// How many of its most recent messages a PUSH publisher sends again when the
    /// connection to the bridge is lost (default [`DEFAULT_RESEND_WINDOW`]; 0 turns
    /// this off). ZeroMQ has no acknowledgements, so messages still in the TCP buffers
    /// when a bridge restarts would otherwise be lost; the bridge drops those it
    /// already had by their id. Keep it below the bridge's `history.size`, or the
    /// oldest resent events, forgotten by the bridge, reach clients twice. Also
    /// bounded by [`RESEND_WINDOW_MAX_BYTES`] and [`RESEND_MAX_AGE`]. The messages go
    /// out again, oldest first, at the next `publish` (or `close`) after the loss is
    /// noticed, ahead of that new message. See docs/restarts.md for what this
    /// guarantees and what it does to order.
    pub fn resend_window(mut self, messages: usize) -> Self {
        self.resend_window = messages;
        self
    }

    /// Opens a PUSH socket connected to `endpoint` (e.g. the bridge's
    /// `tcp://127.0.0.1:5555`). Succeeds while the bridge is down: libzmq keeps
    /// (re)connecting in the background and queues messages meanwhile.
    pub fn connect(&self, endpoint: &str) -> Result<Publisher, PublishError> {
        self.connect_push(&[endpoint])
    }

    /// Opens one PUSH socket connected to every endpoint (the PULL sockets of the
    /// bridges of a cluster, e.g. `["tcp://10.0.0.1:5555", "tcp://10.0.0.2:5555"]`);
    /// libzmq deals the messages round-robin over the bridges that are connected.
    /// With one endpoint this is exactly [`connect`](Self::connect).
    ///
    /// With several, a message only ever goes to a bridge whose connection is up
    /// (`ZMQ_IMMEDIATE`): nothing waits in the queue of a bridge that is down while
    /// the others are there. While none is connected (at start-up, or all down),
    /// `publish` waits up to the send timeout for one and then fails with
    /// [`PublishError::QueueFull`] (use [`Publisher::wait_connected`] at start-up).
    /// When one of them goes away, the resend window
    /// ([`resend_window`](Self::resend_window)) goes out again to the others: a
    /// cluster's shared log drops the events it already has by their id, so keep ids
    /// on (every `publish` gives one). [`Publisher::is_connected`] means at least one
    /// bridge is connected.
    ///
    /// Fails with [`PublishError::Connect`] on an empty list or a malformed endpoint.
    pub fn connect_all(&self, endpoints: &[&str]) -> Result<Publisher, PublishError> {
        self.connect_push(endpoints)
    }

    fn connect_push(&self, endpoints: &[&str]) -> Result<Publisher, PublishError> {
        let connect_error = |endpoint: &str, source| PublishError::Connect {
            endpoint: endpoint.to_owned(),
            source,
        };
        if endpoints.is_empty() {
            return Err(connect_error("", zmq::Error::EINVAL));
        }
        if let Some(endpoint) = endpoints.iter().find(|e| e.contains('\0')) {
            // The zmq crate would panic turning it into a C string.
            return Err(connect_error(endpoint, zmq::Error::EINVAL));
        }
        let several = endpoints.len() > 1;
        let context = zmq::Context::new();
        let socket = context.socket(zmq::PUSH).map_err(PublishError::Setup)?;
        self.set_common_options(&socket)?;
        self.configure_push(&socket, several)
            .map_err(PublishError::Setup)?;

        // The monitor must be in place before connecting, or the first handshake
        // could happen unseen.
        socket
            .monitor(MONITOR_ENDPOINT, monitored_events())
            .map_err(PublishError::Setup)?;
        let monitor = context.socket(zmq::PAIR).map_err(PublishError::Setup)?;
        // Unlimited receive queue (libzmq adds both ends' HWMs for inproc, and 0 means
        // none): a dropped monitor event would leave the peer count wrong. Events are
        // few (one or two per connection) and drained on every publish.
        monitor.set_rcvhwm(0).map_err(PublishError::Setup)?;
        monitor.set_linger(0).map_err(PublishError::Setup)?;
        monitor
            .connect(MONITOR_ENDPOINT)
            .map_err(PublishError::Setup)?;

        for endpoint in endpoints {
            socket
                .connect(endpoint)
                .map_err(|e| connect_error(endpoint, e))?;
        }
        let peers = Peers::Monitor {
            socket: monitor,
            tracker: PeerTracker::default(),
        };
        let window = Window::new(resend::Limits {
            messages: self.resend_window,
            bytes: RESEND_WINDOW_MAX_BYTES,
            max_age: RESEND_MAX_AGE,
            // One peer keeps its queue across a reconnection (`ZMQ_IMMEDIATE` 0), so
            // what is sent after the loss waits there; with several, it can be lost
            // with the connection's queue for a moment (see resend.rs).
            after_loss: if several { AFTER_LOSS } else { Duration::ZERO },
        });
        Ok(self.finish(
            endpoints.join(","),
            Kind::Push,
            socket,
            (peers, window),
            context,
        ))
    }

    /// Binds a PUB socket on `endpoint` (e.g. `tcp://127.0.0.1:5556`, or port 0 for any
    /// free port: see [`Publisher::endpoint`]); bridges connect their SUB socket to it.
    ///
    /// Underneath it is an XPUB, which behaves exactly like a PUB on the wire but also
    /// tells which prefixes peers subscribe to: [`Publisher::wait_connected`] uses that
    /// to wait for an actual subscription rather than a bare connection.
    pub fn bind_pub(&self, endpoint: &str) -> Result<Publisher, PublishError> {
        let bind_error = |source| PublishError::Bind {
            endpoint: endpoint.to_owned(),
            source,
        };
        if endpoint.contains('\0') {
            return Err(bind_error(zmq::Error::EINVAL));
        }
        let context = zmq::Context::new();
        let socket = context.socket(zmq::XPUB).map_err(PublishError::Setup)?;
        self.set_common_options(&socket)?;
        socket.bind(endpoint).map_err(bind_error)?;
        let bound = match socket.get_last_endpoint() {
            Ok(Ok(bound)) if !bound.is_empty() => bound,
            _ => endpoint.to_owned(),
        };
        let peers = Peers::Subscribers(Subscriptions::default());
        // PUB drops messages for absent subscribers anyway: nothing to send again.
        let window = Window::new(resend::Limits {
            messages: 0,
            bytes: 0,
            max_age: Duration::ZERO,
            after_loss: Duration::ZERO,
        });
        Ok(self.finish(bound, Kind::Pub, socket, (peers, window), context))
    }

    fn set_common_options(&self, socket: &zmq::Socket) -> Result<(), PublishError> {
        let hwm = i32::try_from(self.send_hwm).unwrap_or(i32::MAX);
        socket.set_sndhwm(hwm).map_err(PublishError::Setup)?;
        socket
            .set_linger(millis(self.linger))
            .map_err(PublishError::Setup)
    }

    fn configure_push(&self, socket: &zmq::Socket, several: bool) -> zmq::Result<()> {
        socket.set_sndtimeo(millis(self.send_timeout))?;
        // One peer: queue for it while it is not connected yet (or reconnecting)
        // instead of refusing, so a bridge restart loses nothing up to the HWM.
        // Several: deal only to connected ones, or the round-robin would keep filling
        // the queue of a bridge that is down (and may never come back).
        socket.set_immediate(several)?;
        // A bounded kernel send buffer bounds what a lost connection can take with it,
        // so that the resend window covers it (Linux would grow it to 4 MiB).
        socket.set_sndbuf(KERNEL_SNDBUF)?;
        socket.set_reconnect_ivl(millis(self.reconnect_ivl).max(1))?;
        socket.set_reconnect_ivl_max(millis(self.reconnect_ivl_max))
    }

    fn finish(
        &self,
        endpoint: String,
        kind: Kind,
        socket: zmq::Socket,
        (peers, window): (Peers, Window),
        context: zmq::Context,
    ) -> Publisher {
        Publisher::from_parts(
            endpoint,
            kind,
            self.max_message_bytes,
            self.send_hwm,
            self.send_timeout,
            Inner {
                socket,
                peers,
                window,
                context,
            },
        )
    }
}

/// A duration as the whole milliseconds ZeroMQ options take: rounded up (so a
/// nonzero duration never becomes 0, which means "don't wait at all") and capped at
/// `i32::MAX` (about 24 days, never -1, which means "forever").
pub(crate) fn millis(d: Duration) -> i32 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    i32::try_from(ms).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_rounds_up_and_caps() {
        assert_eq!(millis(Duration::ZERO), 0);
        assert_eq!(millis(Duration::from_nanos(1)), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 2);
        assert_eq!(millis(Duration::from_millis(2000)), 2000);
        assert_eq!(millis(Duration::from_secs(u64::MAX)), i32::MAX);
    }

    #[test]
    fn defaults_are_bounded() {
        let b = PublisherBuilder::default();
        assert_eq!(b.max_message_bytes, 4 * 1024 * 1024);
        assert!(b.send_hwm > 0);
        assert!(b.send_timeout > Duration::ZERO && b.send_timeout <= Duration::from_secs(1));
        assert!(b.linger > Duration::ZERO && b.linger <= Duration::from_secs(5));
        assert!(b.reconnect_ivl <= b.reconnect_ivl_max);
    }

    #[test]
    fn options_reach_the_socket() {
        let b = PublisherBuilder::default()
            .send_hwm(7)
            .send_timeout(Duration::from_millis(30))
            .linger(Duration::from_millis(40))
            .reconnect_ivl(Duration::from_millis(50))
            .reconnect_ivl_max(Duration::from_millis(60));
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::PUSH).unwrap();
        b.set_common_options(&socket).unwrap();
        b.configure_push(&socket, false).unwrap();
        assert_eq!(socket.get_sndhwm().unwrap(), 7);
        assert_eq!(socket.get_sndtimeo().unwrap(), 30);
        assert_eq!(socket.get_linger().unwrap(), 40);
        assert_eq!(socket.get_reconnect_ivl().unwrap(), 50);
        assert_eq!(socket.get_reconnect_ivl_max().unwrap(), 60);
        assert!(!socket.is_immediate().unwrap());
        b.configure_push(&socket, true).unwrap();
        assert!(socket.is_immediate().unwrap(), "several peers");
    }

    #[test]
    fn huge_hwm_is_capped_not_wrapped() {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::PUSH).unwrap();
        PublisherBuilder::default()
            .send_hwm(usize::MAX)
            .set_common_options(&socket)
            .unwrap();
        assert_eq!(socket.get_sndhwm().unwrap(), i32::MAX);
    }

    #[test]
    fn nul_in_an_endpoint_is_an_error_not_a_panic() {
        let err = PublisherBuilder::default()
            .connect("tcp://a\0b")
            .unwrap_err();
        assert!(matches!(err, PublishError::Connect { .. }), "{err:?}");
        let err = PublisherBuilder::default()
            .bind_pub("tcp://a\0b")
            .unwrap_err();
        assert!(matches!(err, PublishError::Bind { .. }), "{err:?}");
        let err = PublisherBuilder::default()
            .connect_all(&["tcp://127.0.0.1:1", "tcp://a\0b"])
            .unwrap_err();
        assert!(matches!(err, PublishError::Connect { .. }), "{err:?}");
    }

    #[test]
    fn connect_all_needs_an_endpoint_and_names_the_bad_one() {
        let err = PublisherBuilder::default().connect_all(&[]).unwrap_err();
        assert!(matches!(err, PublishError::Connect { .. }), "{err:?}");
        let err = PublisherBuilder::default()
            .connect_all(&["tcp://127.0.0.1:1", "nonsense"])
            .unwrap_err();
        assert!(err.to_string().contains("\"nonsense\""), "{err}");
    }

    #[test]
    fn malformed_endpoints_name_the_endpoint() {
        let err = PublisherBuilder::default().connect("nonsense").unwrap_err();
        assert!(err.to_string().contains("\"nonsense\""), "{err}");
        let err = PublisherBuilder::default()
            .connect("carrier-pigeon://x")
            .unwrap_err();
        assert!(matches!(err, PublishError::Connect { .. }), "{err:?}");
        let err = PublisherBuilder::default()
            .bind_pub("tcp://256.0.0.1:1")
            .unwrap_err();
        assert!(matches!(err, PublishError::Bind { .. }), "{err:?}");
    }
}
