//! The ingress: publishers → bridge over ZeroMQ (docs/publishing.md "Wire format"),
//! and from AMQP queues ([`AmqpSources`], `[[ingress.amqp]]`, docs/superdesk.md).
//! It binds one PULL socket per `ingress.pull` endpoint and connects one SUB socket
//! per `ingress.sub` endpoint, receives on a dedicated thread, and hands every
//! accepted message to a sink (the hub's entrance) in arrival order.
//!
//! The parts with one job each, below [`Ingress`] (here), which starts and stops the
//! ZeroMQ side:
//! - [`message`] (pure) turns one message's frames into an
//!   [`IngressMessage`](crate::event::IngressMessage) or a rejection;
//! - `zmq` is the seam to libzmq: every ZeroMQ call of the bridge's ingress lives
//!   there, so the backend can change without touching anything else;
//! - `amqp` is the other backend: each source a lapin consumer, a thread that hands
//!   on, and an acknowledgement once the log holds the event;
//! - `dispatch` is what happens to a received message whatever the backend: it is
//!   counted, parsed, and either handed on to the [`Sink`] or dropped with a
//!   rate-limited warning and a counted reason. A bad message never stops the ingress.
//!
//! Metrics: `push_bridge_ingress_messages_total{socket}` counts every received
//! message (accepted or not) per configured endpoint;
//! `push_bridge_ingress_rejected_total{reason}` counts the dropped ones. Counter
//! handles are created at start, so the metrics recorder must be installed before
//! [`Ingress::start`].

mod amqp;
mod dispatch;
mod error;
pub mod message;
mod zmq;

use crate::config::IngressConfig;
use dispatch::Dispatch;
use message::Rules;

pub use amqp::{AmqpSources, SourceHealth};
pub use dispatch::Sink;
pub use error::IngressError;

/// The running ingress. Dropping it stops it the way [`Ingress::shutdown`] does.
pub struct Ingress {
    running: zmq::Running,
}

impl Ingress {
    /// Binds every `pull` endpoint (one PULL socket each) and connects every `sub`
    /// endpoint (one SUB socket each, subscribed to every `sub_prefixes` entry) before
    /// returning, so a bad or busy endpoint is a startup error naming it; then runs
    /// the receive loop on a thread named "ingress", calling `sink` for every accepted
    /// message in arrival order. `sink` runs on that thread: while it blocks, ZeroMQ
    /// queues (up to its high-water mark) and then pushes back on publishers.
    pub fn start(
        config: &IngressConfig,
        sink: impl Sink + 'static,
    ) -> Result<Ingress, IngressError> {
        let dispatch = Dispatch::new(Rules::from(config), Box::new(sink));
        zmq::start(config, dispatch).map(|running| Ingress { running })
    }

    /// The endpoints the PULL sockets actually bound, in configuration order, with
    /// wildcards resolved (`tcp://127.0.0.1:0` → the real port).
    pub fn bound_endpoints(&self) -> &[String] {
        self.running.bound_endpoints()
    }

    /// Stops the receive loop, closes every socket without lingering and joins the
    /// thread. Returns promptly unless the sink is blocked. Messages libzmq has
    /// received but the loop has not taken are dropped: see
    /// [`drain_and_shutdown`](Self::drain_and_shutdown) for a graceful stop.
    pub fn shutdown(self) {
        self.running.shutdown();
    }

    /// The graceful stop: keeps receiving while publishers are still sending (until
    /// they pause briefly, for at most half a second), then closes every endpoint and
    /// passes on to the sink everything libzmq had already received from them, then
    /// joins the thread. Ends by `deadline` (or half a second after it when the
    /// queued messages need that long), so the sink has seen every message that
    /// reached the bridge's ZeroMQ queues (docs/restarts.md).
    pub fn drain_and_shutdown(self, deadline: std::time::Instant) {
        self.running.drain_and_shutdown(deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingress_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Ingress>();
    }
}
