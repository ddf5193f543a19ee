//! push-bridge: ZeroMQ in, one-way WebSocket and Server-Sent Events out.
//!
//! An event travels one way through these components, and no component reaches back
//! up the stream:
//!
//! - [`ingress`] owns the ZeroMQ sockets (PULL bound, SUB connected; libzmq on its own
//!   thread). Each message is parsed by the pure [`ingress::message`] into an
//!   [`event::IngressMessage`], or rejected with a reason, a metric and a rate-limited
//!   warning. [`app`] hands each accepted message to the event log.
//! - [`eventlog`] is the seam between the ingress and the hub's history. One bridge
//!   ([`eventlog::local`]) routes each message into the hub at once and ends each
//!   burst with a flush; a cluster ([`eventlog::redis`]) appends it to a Redis stream
//!   that every node tails into its hub, in one order. Before a resume replays, the
//!   log says whether the hub's history is still continuous with what was published.
//! - [`hub`] owns who is subscribed to what: a segment trie of patterns
//!   ([`hub::index`]), so routing an event costs the number of matching subscribers,
//!   not the number of connections. It gives the event its id (unless the cluster log
//!   did), keeps it in the bounded
//!   [`hub::history`] (resume, duplicate ids) and offers it to every matching session's
//!   [`hub::Outlet`] with the event's frames, each built once and shared. It knows no
//!   protocol and no socket.
//! - [`egress`] owns every admitted client connection: the outlet that picks its
//!   protocol's frame and queues it ([`egress::connection`]; a full queue closes that
//!   session with `4008`, never slowing anyone else), the socket writer that writes a
//!   burst with one `writev`, the WebSocket session task, the SSE stream, the
//!   heartbeat, and the sampler that says when the bridge as a whole falls behind
//!   ([`egress::backlog`]: many clients late at once, not one slow client).
//! - [`protocol`] is pure: the codecs (client frame → request, event → frame) and the
//!   per-client session state machines ([`protocol::session`]: client frame in →
//!   actions out) that the session task drives; [`protocol::close::Close`] names every
//!   way a session ends.
//! - [`server`] owns the listener (plain or TLS, or the socket systemd passed), the
//!   HTTP routes and the upgrade, and the one admission check every client passes
//!   ([`auth`]: static tokens, JWT, introspection; limits; `Origin`).
//! - [`app`] is the life cycle: start in order, SIGHUP reload, the graceful drain.
//! - [`ops`] holds metrics, logging, signals, systemd notify, rate-limited warnings
//!   and the pure falling-behind decision ([`ops::behind`]);
//!   [`config`] the configuration tree; [`topic`] the topic and pattern rules everything
//!   above relies on; [`cli`] the command line (`serve`, `check-config`, `publish`,
//!   `token`).

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod egress;
pub mod event;
pub mod eventlog;
#[doc(hidden)]
pub mod fuzzing;
pub mod hub;
pub mod ingress;
pub mod json_text;
pub mod ops;
pub mod protocol;
pub mod redact;
pub mod server;
pub mod topic;
