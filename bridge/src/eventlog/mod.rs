//! The event log: the one seam between the ingress and the hub's history.
//!
//! Every accepted message goes into the log, and every event a client receives comes
//! out of it; before a resume replays from the hub's history, the log says whether that
//! history is still continuous with what was published. Two engines implement it:
//!
//! - [`local`]: one bridge. The hub's in-memory history is the log: a message is routed
//!   the moment it arrives (the hub checks its publisher id and gives it an id), and
//!   `history.file` keeps it across a graceful restart. Always continuous.
//! - [`redis`]: a cluster (`[cluster]`, docs/scaling.md). The log is a Redis stream
//!   that every node appends to and tails; the hub's history is this node's copy of
//!   it, and a resume is continuous only when Redis confirms the node's copy is current.
//!
//! Another engine (NATS JetStream, say) is one more file implementing [`EventLog`].

pub mod local;
pub mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use crate::event::IngressMessage;

/// Whether a resume may replay from this node's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// The history holds every event of the log since its oldest one: an id found in
    /// it is followed by exactly what was published after it.
    Proven,
    /// It cannot be shown now (the log was lost or is unreachable): a resume starts
    /// afresh (`recovered: false`, SSE `reset`).
    Unproven,
}

/// Runs once an event is safely in the log ([`EventLog::accept`]).
pub type Accepted = Box<dyn FnOnce() + Send + Sync>;

/// A boxed future, as the engines return them through the trait object.
pub type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What the bridge needs of its event log. Shared (`Arc<dyn EventLog>`) by the
/// ingress thread, the sessions and the life cycle.
pub trait EventLog: Send + Sync + fmt::Debug {
    /// Takes one accepted message, on the ingress thread, in arrival order. May block
    /// while the log cannot take more (the ingress stops reading meanwhile).
    ///
    /// `accepted`, if given, runs once the event is safely in the log: routed into the
    /// hub's history (one bridge), or appended to the cluster's log or found there
    /// already (a duplicate). An AMQP source acknowledges the message then. It is
    /// dropped without running when the log gives the event up (the drain's deadline
    /// passed with Redis unreachable), so the broker delivers it again.
    fn accept(&self, message: IngressMessage, received: Instant, accepted: Option<Accepted>);

    /// The end of an ingress burst.
    fn burst_end(&self);

    /// Whether a resume may replay from the hub's history now.
    fn continuity(&self) -> Pending<Continuity>;

    /// Counts a resume's outcome (whether the client's id was found and replayed from).
    fn resumed(&self, recovered: bool);

    /// Whether the log can take events now (`/readyz`).
    fn is_up(&self) -> bool;

    /// How the startup banner and `check-config` name it, e.g.
    /// `redis://127.0.0.1:6379/0 stream push-bridge as node bridge-1`.
    fn describe(&self) -> String;

    /// The drain has begun and must end by `deadline`: past it, give up waiting for
    /// the log (a blocked [`accept`](Self::accept) returns).
    fn draining(&self, deadline: Instant);

    /// The graceful stop, once the ingress has passed on everything it had: keeps
    /// what must outlive the process (a history file; the events still waiting for
    /// Redis), trying until `deadline`. Blocking: call it off the async runtime.
    fn close(&self, deadline: Instant);
}
