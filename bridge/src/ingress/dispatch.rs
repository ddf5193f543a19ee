//! What happens to a received message whatever the backend: it is counted, parsed
//! ([`message`]), and either handed on to the [`Sink`] or dropped with a rate-limited
//! warning and a counted reason. A bad message never stops the ingress. The backend
//! (`zmq`) registers its sockets here and calls in for every message, burst end and
//! error.

use std::fmt;
use std::time::{Duration, Instant};

use metrics::Counter;

use super::message::{self, Rejection, Rules};
use crate::event::{is_valid_id, IngressMessage};
use crate::eventlog::Accepted;
use crate::ops::metrics::{INGRESS_MESSAGES_TOTAL, INGRESS_REJECTED_TOTAL};
use crate::ops::ratelimit::RateLimiter;

/// Where accepted messages go: called on the ingress thread, in arrival order.
pub trait Sink: Send {
    /// One accepted message.
    fn message(&mut self, message: IngressMessage);

    /// One accepted message, and what to run once the log holds it (an AMQP source
    /// acknowledges the message then). By default: hands it on, then runs it.
    fn message_then(&mut self, message: IngressMessage, accepted: Accepted) {
        self.message(message);
        accepted();
    }

    /// No more messages are waiting right now: the end of a burst (one or more
    /// messages). A sink that buffers writes them out here.
    fn burst_end(&mut self) {}
}

impl<F: FnMut(IngressMessage) + Send> Sink for F {
    fn message(&mut self, message: IngressMessage) {
        self(message)
    }
}

/// Minimum time between two warnings with the same key (socket and reason).
const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// Which socket a message came from: an index into [`Dispatch`]'s sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct SocketId(usize);

/// What a rate-limited warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum WarnKey {
    Rejected(SocketId, Rejection),
    ReceiveError(SocketId),
    PollError,
}

struct Socket {
    /// The endpoint as configured: the `socket` label and what warnings name.
    endpoint: String,
    received: Counter,
}

/// Counting, parsing, warning and handing on: everything after the socket.
pub(super) struct Dispatch {
    rules: Rules,
    sink: Box<dyn Sink>,
    sockets: Vec<Socket>,
    /// Indexed like [`Rejection::ALL`].
    rejected: Vec<Counter>,
    warnings: RateLimiter<WarnKey>,
}

impl Dispatch {
    pub(super) fn new(rules: Rules, sink: Box<dyn Sink>) -> Self {
        let rejected = Rejection::ALL
            .iter()
            .map(|r| metrics::counter!(INGRESS_REJECTED_TOTAL, "reason" => r.label()))
            .collect();
        Dispatch {
            rules,
            sink,
            sockets: Vec::new(),
            rejected,
            warnings: RateLimiter::new(WARN_INTERVAL),
        }
    }

    /// Registers a socket by its configured endpoint.
    pub(super) fn add_socket(&mut self, endpoint: &str) -> SocketId {
        let received = metrics::counter!(
            INGRESS_MESSAGES_TOTAL,
            "socket" => endpoint.to_string()
        );
        self.sockets.push(Socket {
            endpoint: endpoint.to_string(),
            received,
        });
        SocketId(self.sockets.len() - 1)
    }

    fn endpoint(&self, socket: SocketId) -> &str {
        self.sockets
            .get(socket.0)
            .map_or("(unknown socket)", |s| s.endpoint.as_str())
    }

    /// One received message, all its frames, received at `now`.
    pub(super) fn on_message(&mut self, socket: SocketId, frames: &[&[u8]], now: Instant) {
        self.handle(socket, frames, now, None, None);
    }

    /// [`on_message`](Self::on_message) for a message that must be settled:
    /// `accepted` runs once the log holds it, or at once when it is rejected (a bad
    /// message is dropped and counted, never redelivered). `id` is the transport's own
    /// message id (AMQP `message_id`): the event's publisher id when its body gives
    /// none and it is a valid id, so a redelivery is recognised as a duplicate.
    pub(super) fn on_message_then(
        &mut self,
        socket: SocketId,
        frames: &[&[u8]],
        now: Instant,
        id: Option<&str>,
        accepted: Accepted,
    ) {
        self.handle(socket, frames, now, id, Some(accepted));
    }

    fn handle(
        &mut self,
        socket: SocketId,
        frames: &[&[u8]],
        now: Instant,
        id: Option<&str>,
        accepted: Option<Accepted>,
    ) {
        if let Some(s) = self.sockets.get(socket.0) {
            s.received.increment(1);
        }
        let parsed = message::parse(frames, &self.rules).map(|mut message| {
            if message.id.is_none() {
                message.id = id.filter(|id| is_valid_id(id)).map(str::to_string);
            }
            message
        });
        match parsed {
            Ok(message) => match accepted {
                Some(accepted) => self.sink.message_then(message, accepted),
                None => self.sink.message(message),
            },
            Err(rejected) => {
                if let Some(accepted) = accepted {
                    accepted();
                }
                let reason = rejected.reason;
                if let Some(counter) = Rejection::ALL
                    .iter()
                    .position(|r| *r == reason)
                    .and_then(|i| self.rejected.get(i))
                {
                    counter.increment(1);
                }
                if let Some(suppressed) =
                    self.warnings.check(WarnKey::Rejected(socket, reason), now)
                {
                    tracing::warn!(
                        socket = self.endpoint(socket),
                        reason = reason.label(),
                        suppressed,
                        "dropped an ingress message: {}",
                        rejected.detail
                    );
                }
            }
        }
    }

    /// Every readable socket was drained: the end of a burst.
    pub(super) fn on_burst_end(&mut self) {
        self.sink.burst_end();
    }

    /// A receive error on a socket (the loop goes on).
    pub(super) fn on_receive_error(
        &mut self,
        socket: SocketId,
        error: &dyn fmt::Display,
        now: Instant,
    ) {
        if let Some(suppressed) = self.warnings.check(WarnKey::ReceiveError(socket), now) {
            tracing::warn!(
                socket = self.endpoint(socket),
                suppressed,
                "ZeroMQ receive failed, continuing: {error}"
            );
        }
    }

    /// A failure of the wait for readable sockets (the loop goes on).
    pub(super) fn on_poll_error(&mut self, error: &dyn fmt::Display, now: Instant) {
        if let Some(suppressed) = self.warnings.check(WarnKey::PollError, now) {
            tracing::warn!(suppressed, "ZeroMQ poll failed, continuing: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IngressConfig;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use metrics_exporter_prometheus::PrometheusBuilder;

    /// Collects what the sink receives.
    fn collecting_sink() -> (Box<dyn Sink>, Arc<Mutex<Vec<IngressMessage>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink_got = Arc::clone(&got);
        let sink = Box::new(move |m| sink_got.lock().unwrap().push(m));
        (sink, got)
    }

    /// A log buffer for a test-local tracing subscriber.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);
    impl Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Log {
        fn lines(&self) -> Vec<String> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().map(String::from).collect()
        }
    }

    fn with_log<T>(f: impl FnOnce() -> T) -> (T, Log) {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let result = tracing::subscriber::with_default(subscriber, f);
        (result, log)
    }

    #[test]
    fn accepted_messages_reach_the_sink_in_order_and_everything_is_counted() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let (sink, got) = collecting_sink();
        let rules = Rules::from(&IngressConfig::default());
        let (mut dispatch, pull, sub) = metrics::with_local_recorder(&recorder, || {
            let mut d = Dispatch::new(rules, sink);
            let pull = d.add_socket("tcp://127.0.0.1:5555");
            let sub = d.add_socket("ipc:///run/pub.sock");
            (d, pull, sub)
        });
        let now = Instant::now();
        let ((), log) = with_log(|| {
            dispatch.on_message(pull, &[b"a", b"1"], now);
            dispatch.on_message(sub, &[b"b", b"id-1", b"2"], now);
            dispatch.on_message(pull, &[b"c", b"not json"], now);
            dispatch.on_message(pull, &[b"d", b"3"], now);
        });
        let got = got.lock().unwrap();
        let topics: Vec<_> = got.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(topics, ["a", "b", "d"]);
        assert_eq!(got[1].id.as_deref(), Some("id-1"));

        let text = handle.render();
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(
            has(r#"push_bridge_ingress_messages_total{socket="tcp://127.0.0.1:5555"} 3"#),
            "{text}"
        );
        assert!(
            has(r#"push_bridge_ingress_messages_total{socket="ipc:///run/pub.sock"} 1"#),
            "{text}"
        );
        assert!(
            has(r#"push_bridge_ingress_rejected_total{reason="bad_json"} 1"#),
            "{text}"
        );
        // Every reason exists from the start, at zero.
        assert!(
            has(r#"push_bridge_ingress_rejected_total{reason="frame_count"} 0"#),
            "{text}"
        );

        let lines = log.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert!(line.contains("WARN"), "{line}");
        assert!(
            line.contains("dropped an ingress message: frame 2: expected ident"),
            "{line}"
        );
        assert!(line.contains("socket=\"tcp://127.0.0.1:5555\""), "{line}");
        assert!(line.contains("reason=\"bad_json\""), "{line}");
    }

    #[test]
    fn rejection_warnings_are_rate_limited_per_socket_and_reason() {
        let (sink, got) = collecting_sink();
        let mut dispatch = Dispatch::new(Rules::from(&IngressConfig::default()), sink);
        let a = dispatch.add_socket("tcp://127.0.0.1:1");
        let b = dispatch.add_socket("tcp://127.0.0.1:2");
        let t0 = Instant::now();
        let ((), log) = with_log(|| {
            for i in 0..100 {
                let now = t0 + Duration::from_millis(i * 10);
                dispatch.on_message(a, &[b"t", b"x"], now); // bad_json
                dispatch.on_message(a, &[], now); // frame_count
                dispatch.on_message(b, &[b"t", b"x"], now); // bad_json, other socket
                dispatch.on_message(a, &[b"t", b"1"], now); // accepted
            }
            // One more after the interval reports what was held back.
            dispatch.on_message(a, &[b"t", b"x"], t0 + Duration::from_secs(1));
        });
        assert_eq!(got.lock().unwrap().len(), 100);
        let lines = log.lines();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].contains("reason=\"bad_json\"") && lines[0].contains(":1\""));
        assert!(lines[1].contains("reason=\"frame_count\""));
        assert!(lines[2].contains("reason=\"bad_json\"") && lines[2].contains(":2\""));
        assert!(lines[3].contains("suppressed=99"), "{}", lines[3]);
    }

    #[test]
    fn receive_and_poll_errors_are_rate_limited_warnings() {
        let (sink, _) = collecting_sink();
        let mut dispatch = Dispatch::new(Rules::from(&IngressConfig::default()), sink);
        let s = dispatch.add_socket("tcp://127.0.0.1:1");
        let t0 = Instant::now();
        let ((), log) = with_log(|| {
            for _ in 0..10 {
                dispatch.on_receive_error(s, &"Resource temporarily unavailable", t0);
                dispatch.on_poll_error(&"Interrupted system call", t0);
            }
        });
        let lines = log.lines();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines[0].contains("ZeroMQ receive failed, continuing: Resource"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].contains("socket=\"tcp://127.0.0.1:1\""),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("ZeroMQ poll failed"), "{}", lines[1]);
    }
}
