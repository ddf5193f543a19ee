//! The unit that flows through the bridge: one accepted ZeroMQ message becomes one
//! [`Event`], routed by the hub to every matching session.

use std::sync::Arc;
use std::time::Instant;

use crate::topic::Topic;

/// What the ingress hands to the hub: a message that passed every check of
/// docs/publishing.md "Wire format". `data` is the event data as compact JSON text (serialized once
/// here, embedded as-is in every protocol's frame).
#[derive(Debug, Clone, PartialEq)]
pub struct IngressMessage {
    pub topic: Topic,
    /// The publisher's id (1–128 bytes of printable ASCII), if it gave one.
    pub id: Option<String>,
    pub data: String,
}

/// An accepted event with its final id, shared by every recipient.
#[derive(Debug)]
pub struct Event {
    pub topic: Topic,
    pub id: Box<str>,
    /// Compact JSON text of the event data.
    pub data: Box<str>,
    /// When the ingress received it (for the delivery latency histogram).
    pub received: Instant,
}

pub type SharedEvent = Arc<Event>;

pub use push_bridge_publisher::wire::is_valid_id;
