//! push-bridge: ZeroMQ in, one-way WebSocket and Server-Sent Events out.
//!
//! An event travels one way through these components:
//!
//! - [`ingress`] owns the ZeroMQ sockets (PULL bound, SUB connected; libzmq on its own
//!   thread). Each message is parsed by the pure [`ingress::message`] into an
//!   [`event::IngressMessage`], or rejected with a reason, a metric and a rate-limited
//!   warning.
//! - [`hub`] owns who is subscribed to what: a segment trie of patterns
//!   ([`hub::index`]), so routing an event costs the number of matching subscribers,
//!   not the number of connections. It gives the event its id, keeps it in the bounded
//!   [`hub::history`] (resume, duplicate ids), builds each frame once per protocol and
//!   puts the shared bytes on each matching session's bounded queue (a full queue
//!   closes that session with `4008`, never slowing anyone else).
//! - [`server`] owns the listener (plain or TLS, or the socket systemd passed): HTTP
//!   endpoints, the checks before the upgrade ([`auth`]: static tokens, JWT,
//!   introspection), one session task per WebSocket connection (native JSON, WAMP v1,
//!   WAMP v2) or SSE stream, the live page, SIGHUP reload and the graceful drain.
//! - [`protocol`] holds the pure codecs: client frame in → request, event → frame out.
//! - [`ops`] holds metrics, logging, signals, systemd notify and rate-limited warnings;
//!   [`config`] the configuration tree; [`topic`] the topic and pattern rules everything
//!   above relies on; [`cli`] the command line (`serve`, `check-config`, `publish`,
//!   `token`).

pub mod auth;
pub mod cli;
pub mod config;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod hub;
pub mod ingress;
pub mod json_kind;
pub mod ops;
pub mod protocol;
pub mod server;
pub mod topic;
