//! Publish events to push-bridge over ZeroMQ.
//!
//! push-bridge takes events from ZeroMQ and pushes them to browsers over WebSocket and
//! SSE. This crate is the Rust side of the publisher: connect, then `publish(topic,
//! &data)` for any [`serde::Serialize`] data. Each event goes out as one ZeroMQ
//! message of three frames, `[topic, id, data-json]` ([`wire::encode`]); the bridge
//! delivers `data` to every client subscribed to a pattern matching `topic`.
//!
//! ```no_run
//! use push_bridge_publisher::Publisher;
//! use serde::Serialize;
//!
//! #[derive(Serialize)]
//! struct PackageCreated<'a> {
//!     package: &'a str,
//!     state: &'a str,
//! }
//!
//! # fn main() -> Result<(), push_bridge_publisher::PublishError> {
//! // A PUSH socket to the bridge's PULL (its default address).
//! let publisher = Publisher::connect("tcp://127.0.0.1:5555")?;
//! // Optional: fail fast if no bridge answers.
//! publisher.wait_connected(std::time::Duration::from_secs(5))?;
//!
//! let id = publisher.publish(
//!     "package_created",
//!     &PackageCreated { package: "article-42", state: "create" },
//! )?;
//! println!("published event {id}");
//!
//! // Already-serialized JSON is checked, then sent as-is.
//! publisher.publish_json("tenant:7:package_updated", r#"{"package":"article-42"}"#, None)?;
//!
//! // Give queued events up to one second to leave.
//! publisher.close(std::time::Duration::from_secs(1))?;
//! # Ok(())
//! # }
//! ```
//!
//! The same, runnable without a bridge: a plain ZeroMQ PULL socket stands in for it
//! and shows the frames that arrive.
//!
//! ```
//! use push_bridge_publisher::Publisher;
//! use std::time::Duration;
//!
//! let ctx = zmq::Context::new();
//! let bridge = ctx.socket(zmq::PULL).unwrap();
//! bridge.bind("tcp://127.0.0.1:0").unwrap();
//! let endpoint = bridge.get_last_endpoint().unwrap().unwrap();
//!
//! let publisher = Publisher::connect(&endpoint)?;
//! let id = publisher.publish("news:sport", &serde_json::json!({"score": [2, 1]}))?;
//!
//! let frames = bridge.recv_multipart(0).unwrap();
//! assert_eq!(frames[0], b"news:sport");
//! assert_eq!(frames[1], id.as_bytes());
//! assert_eq!(frames[2], br#"{"score":[2,1]}"#);
//! publisher.close(Duration::from_secs(1))?;
//! # Ok::<(), push_bridge_publisher::PublishError>(())
//! ```
//!
//! # What gets checked before sending
//! The same rules as the bridge's ([`wire`]), so an event the SDK accepts is one the
//! bridge accepts: the topic ([`wire::check_topic`]: no `*`, no whitespace, ≤ 256
//! bytes, `:`-separated non-empty segments), the id (1–128 bytes of printable ASCII),
//! the JSON, and the size of the whole message (4 MiB by default, the bridge's
//! `ingress.max_message_bytes`; see [`PublisherBuilder::max_message_bytes`]). Each
//! refusal is its own [`PublishError`] variant and nothing is sent.
//!
//! # Ids and retries
//! [`Publisher::publish`] gives each event a fresh UUIDv7 ([`new_event_id`]): unique and
//! time-ordered. The bridge drops an event whose id it saw recently, so if a publish
//! fails, retrying with [`Publisher::publish_with_id`] and the *same* id can never
//! deliver the event twice.
//!
//! # When the bridge is down
//! - **PUSH** ([`Publisher::connect`]): connecting succeeds anyway and libzmq keeps
//!   reconnecting in the background (every 100 ms, backing off to 1 s). Meanwhile
//!   events are queued, up to the send high-water mark (1000 messages by default).
//!   Once the queue is full, `publish` waits up to the send timeout (500 ms by default)
//!   for room and then fails with [`PublishError::QueueFull`]; the event was not
//!   queued. When the bridge comes back, the queue drains to it in order. Events
//!   already written to a TCP connection that then breaks would be lost (ZeroMQ has no
//!   acknowledgements), so the publisher keeps its last messages and sends them again
//!   when a connected bridge goes away ([`PublisherBuilder::resend_window`]); the
//!   bridge drops those it already had by id. Those that had been lost may then arrive
//!   after newer ones.
//! - **Several bridges** ([`Publisher::connect_all`], the nodes of a cluster): one PUSH
//!   socket connected to each; events go round-robin to the connected ones only, and
//!   when one goes away the resend window goes out again to the others (the cluster's
//!   log drops what it already has by id). While none is connected, `publish` fails
//!   with [`PublishError::QueueFull`] after the send timeout.
//! - **PUB** ([`Publisher::bind_pub`]): PUB never waits; an event for which no
//!   subscriber is connected (or whose queue is full) is silently dropped. Use
//!   [`Publisher::wait_connected`] at start-up, which for PUB waits for an actual
//!   subscription, not just a connection.
//!
//! # Shutting down
//! [`Publisher::close`] gives queued events a bounded time to leave and reports
//! [`PublishError::Unflushed`] if that time ran out. Dropping a `Publisher` does the
//! same silently, bounded by the builder's linger (2 s by default): it never hangs.
//!
//! # Threads
//! `Publisher` is `Send + Sync`: share one (e.g. in an `Arc`) rather than opening one
//! per thread; calls are serialized on an internal lock. Each publisher owns a ZeroMQ
//! context with one background I/O thread.

mod builder;
mod error;
mod id;
mod publisher;
mod readiness;
mod resend;
pub mod wire;

pub use builder::{
    PublisherBuilder, DEFAULT_LINGER, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_RECONNECT_IVL,
    DEFAULT_RECONNECT_IVL_MAX, DEFAULT_RESEND_WINDOW, DEFAULT_SEND_HWM, DEFAULT_SEND_TIMEOUT,
    RESEND_MAX_AGE, RESEND_WINDOW_MAX_BYTES,
};
pub use error::PublishError;
pub use id::new_event_id;
pub use publisher::Publisher;

/// The Rust examples of this crate's README, compiled by `cargo test --doc` so that
/// they keep compiling as the API changes (examples that need a running bridge are
/// `no_run`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;

/// The Rust examples of docs/publishing.md, compiled by `cargo test --doc` as above.
#[cfg(doctest)]
#[doc = include_str!("../../docs/publishing.md")]
pub struct PublishingGuideExamples;
