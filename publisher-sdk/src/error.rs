//! Everything that can go wrong while publishing, as one typed enum. Refusals of a bad
//! event (topic, id, JSON, size) are decided client-side before anything reaches the
//! socket, with the same rules the bridge applies, so they name the exact rule broken.

use std::time::Duration;

use crate::wire::{TopicError, MAX_ID_LEN};

/// Why a [`Publisher`](crate::Publisher) call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The topic breaks the topic rules (docs/protocol.md); nothing was sent.
    #[error("invalid topic {topic:?}: it {source}")]
    InvalidTopic {
        topic: String,
        #[source]
        source: TopicError,
    },

    /// The event id is not 1–128 bytes of printable ASCII; nothing was sent.
    #[error("invalid event id {0:?}: ids must be 1-{MAX_ID_LEN} bytes of printable ASCII")]
    InvalidId(String),

    /// The event data could not be turned into JSON (e.g. a map with non-string keys).
    #[error("could not serialize the event data to JSON: {0}")]
    Serialize(#[source] serde_json::Error),

    /// `publish_json` was given text that is not one valid JSON value.
    #[error("the event data is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),

    /// The message is above the size limit; the bridge would reject it.
    #[error(
        "the message is {size} bytes, above the {limit}-byte limit \
         (the bridge's ingress.max_message_bytes); nothing was sent"
    )]
    TooLarge { size: usize, limit: usize },

    /// Creating the ZeroMQ context or socket, or setting an option, failed.
    #[error("could not set up the ZeroMQ socket: {0}")]
    Setup(#[source] zmq::Error),

    /// The endpoint could not be connected to (malformed, or an unsupported transport).
    #[error("cannot connect to {endpoint:?}: {source} (expected e.g. tcp://127.0.0.1:5555 or ipc:///run/push-bridge.sock)")]
    Connect {
        endpoint: String,
        #[source]
        source: zmq::Error,
    },

    /// The endpoint could not be bound (in use, not a local address, malformed).
    #[error("cannot bind {endpoint:?}: {source}")]
    Bind {
        endpoint: String,
        #[source]
        source: zmq::Error,
    },

    /// `wait_connected` gave up: no peer completed the ZeroMQ handshake in time.
    #[error(
        "no peer on {endpoint} completed the ZeroMQ handshake within {waited:?}: \
         is the bridge running and listening there?"
    )]
    NotConnected { endpoint: String, waited: Duration },

    /// The send queue stayed full for the whole send timeout: the bridge is down or
    /// not keeping up. The event was not queued; retrying later with the same id is safe.
    #[error(
        "the send queue to {endpoint} is full ({hwm} messages) and did not drain within \
         {waited:?}: the bridge is down or too slow; the event was not sent"
    )]
    QueueFull {
        endpoint: String,
        hwm: usize,
        waited: Duration,
    },

    /// ZeroMQ refused the message for another reason.
    #[error("could not send the message: {0}")]
    Send(#[source] zmq::Error),

    /// `close` ran out of linger time with messages possibly still queued: the peer did
    /// not take them, so they may be lost.
    #[error(
        "closed with messages for {endpoint} possibly still queued: the peer did not \
         take them within the {linger:?} linger, so they may be lost"
    )]
    Unflushed { endpoint: String, linger: Duration },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_problem() {
        let e = PublishError::InvalidTopic {
            topic: "a b".into(),
            source: TopicError::BadCharacter,
        };
        assert_eq!(
            e.to_string(),
            r#"invalid topic "a b": it contains whitespace or a control character"#
        );
        assert!(std::error::Error::source(&e).is_some());

        let e = PublishError::InvalidId(String::new());
        assert!(e.to_string().contains("1-128 bytes of printable ASCII"));

        let e = PublishError::TooLarge { size: 10, limit: 5 };
        assert!(e.to_string().contains("10 bytes, above the 5-byte limit"));

        let e = PublishError::NotConnected {
            endpoint: "tcp://127.0.0.1:5555".into(),
            waited: Duration::from_millis(250),
        };
        assert!(e.to_string().contains("tcp://127.0.0.1:5555"));
        assert!(e.to_string().contains("250ms"));
    }
}
