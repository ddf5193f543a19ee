//! push-bridge: ZeroMQ in, one-way WebSocket and Server-Sent Events out.
//!
//! An event travels one way through these components:
//!
//! - [`ingress`] owns the ZeroMQ sockets (PULL bound, SUB connected). Each message is
//!   parsed by the pure [`ingress::message`] into an [`event::IngressMessage`], or
//!   rejected with a reason, a metric and a rate-limited warning.
//! - [`hub`] owns who is subscribed to what: a segment trie of patterns, so routing an
//!   event costs the number of matching subscribers, not the number of connections.
//!   It assigns the event id, serializes the event once per protocol and puts the
//!   shared bytes on each matching session's bounded queue (a full queue closes that
//!   session with `4008`, never slowing anyone else).
//! - [`server`] owns the listener: HTTP endpoints, the pre-upgrade token check
//!   ([`auth`]), and one session task per WebSocket connection that writes its queue
//!   to the socket and turns client frames into subscribe/unsubscribe requests.
//! - [`protocol`] holds the pure codecs (native JSON, WAMP v1): client frame in →
//!   request, event → frame out. No I/O.
//! - [`ops`] holds metrics and shutdown; [`config`] the configuration tree; [`topic`]
//!   the topic and pattern rules everything above relies on.

pub mod auth;
pub mod cli;
pub mod config;
pub mod event;
pub mod hub;
pub mod ingress;
pub mod ops;
pub mod protocol;
pub mod server;
pub mod topic;
