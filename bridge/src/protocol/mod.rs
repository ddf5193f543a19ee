//! The client protocols, pure (docs/protocol.md "WebSocket endpoint"). Two layers:
//!
//! - the codecs ([`native`], [`wamp1`], [`wamp2`], [`sse`]): a text frame from a client
//!   goes in, a typed request or a refusal comes out; an event or an answer goes in,
//!   the frame's JSON text comes out;
//! - the per-client state machines ([`session`]): a client frame goes in with a clock
//!   reading, actions come out (answers, subscriptions, a [`close::Close`]).
//!
//! No sockets, no hub, no awaiting, so every rule is unit-tested here and the session
//! task in `egress/` only moves bytes and applies actions.
//!
//! This module also owns subprotocol negotiation: which protocol a connection speaks
//! follows from the `Sec-WebSocket-Protocol` list the client offers. Adding a protocol
//! is one variant of [`Protocol`], one row of `SUBPROTOCOLS` and one state machine.

use serde_json::Value;

use crate::config::DefaultProtocol;

pub mod close;
pub mod native;
pub mod session;
pub mod sse;
pub mod wamp1;
pub mod wamp2;

/// A protocol a WebSocket session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// WAMP v1 as Ratchet serves it to autobahn.js 0.8 and to Superdesk's own client.
    Wamp1,
    /// The bridge's own JSON protocol, `push-bridge.v1`.
    Native,
    /// WAMP v2, `wamp.2.json`, subscriber role only (npm `autobahn`).
    Wamp2,
    /// Server-Sent Events at `/events` (not a WebSocket subprotocol).
    Sse,
}

/// The subprotocol names the bridge accepts, each with the protocol it selects. Names
/// are compared exactly (RFC 6455 subprotocol tokens are case-sensitive). Only JSON
/// WAMP v2 is served: `wamp.2.msgpack` and `wamp.2.cbor` stay unknown entries, so an
/// AutobahnJS client offering all three is answered `wamp.2.json`.
const SUBPROTOCOLS: &[(&str, Protocol)] = &[
    ("wamp", Protocol::Wamp1),
    ("push-bridge.v1", Protocol::Native),
    ("wamp.2.json", Protocol::Wamp2),
];

impl Protocol {
    /// Every protocol, e.g. to initialise per-protocol metrics.
    pub const ALL: [Protocol; 4] = [
        Protocol::Wamp1,
        Protocol::Native,
        Protocol::Wamp2,
        Protocol::Sse,
    ];

    /// The value of the `protocol` label on per-protocol metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Protocol::Wamp1 => "wamp1",
            Protocol::Native => "native",
            Protocol::Wamp2 => "wamp2",
            Protocol::Sse => "sse",
        }
    }

    /// The protocol selected by one offered subprotocol name, if the bridge knows it.
    pub fn from_subprotocol(name: &str) -> Option<Protocol> {
        SUBPROTOCOLS
            .iter()
            .find(|(known, _)| *known == name)
            .map(|&(_, protocol)| protocol)
    }
}

impl From<DefaultProtocol> for Protocol {
    fn from(default: DefaultProtocol) -> Self {
        match default {
            DefaultProtocol::Wamp1 => Protocol::Wamp1,
            DefaultProtocol::Native => Protocol::Native,
        }
    }
}

/// Chooses the protocol of a new WebSocket connection.
///
/// `offered`: the client's `Sec-WebSocket-Protocol` entries in its order (already split
/// on ',' and trimmed). The first entry the bridge supports wins and is echoed in the
/// 101 answer: a client that offered `wamp` fails its handshake without the echo. When
/// nothing known is offered (Superdesk's browser client offers nothing; token carriers
/// such as `bearer.<token>` are never known), the connection speaks `default` and the
/// answer carries no subprotocol header.
///
/// Returns the protocol and the subprotocol name to echo (`None`: no header).
pub fn negotiate(offered: &[&str], default: DefaultProtocol) -> (Protocol, Option<&'static str>) {
    offered
        .iter()
        .find_map(|name| SUBPROTOCOLS.iter().find(|(known, _)| known == name))
        .map_or((default.into(), None), |&(name, protocol)| {
            (protocol, Some(name))
        })
}

pub(crate) use crate::json_text::{excerpt, json_string, kind};

/// A WAMP frame (v1 or v2) that breaks the protocol: not JSON, not an array, a missing,
/// unknown or ill-typed type id, or an element its layout requires missing or of the
/// wrong type. The text says what was wrong; each session decides how to close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolViolation(pub String);

/// The opening both WAMP versions share: the frame is a JSON array whose first element
/// is a non-negative integer, the message type id. Returns the type id and the elements.
pub(crate) fn wamp_message(text: &str) -> Result<(u64, Vec<Value>), ProtocolViolation> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ProtocolViolation(format!("the frame is not JSON ({e})")))?;
    let Value::Array(elements) = value else {
        return Err(ProtocolViolation(format!(
            "a WAMP message must be a JSON array, got {}",
            kind(&value)
        )));
    };
    let Some(first) = elements.first() else {
        return Err(ProtocolViolation(
            "a WAMP message must not be an empty array".to_string(),
        ));
    };
    let Some(type_id) = first.as_u64() else {
        return Err(ProtocolViolation(format!(
            "the message type id must be a non-negative integer, got {}",
            shown(first)
        )));
    };
    Ok((type_id, elements))
}

/// A JSON value as a reason quotes it: numbers as they are, anything else by kind.
pub(crate) fn shown(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        other => kind(other).to_string(),
    }
}

/// Serializes an outgoing frame to compact JSON.
///
/// serde_json fails only on maps with non-string keys or on a `Serialize` impl that
/// reports an error; the frames serialized here hold strings, integers, booleans,
/// topics and `serde_json::Value`s, none of which can, so the empty fallback is never
/// produced. It exists so that no peer-controlled input can reach a panic.
pub(crate) fn to_json<T: serde::Serialize>(frame: &T) -> String {
    serde_json::to_string(frame).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: DefaultProtocol = DefaultProtocol::Wamp1;
    const N: DefaultProtocol = DefaultProtocol::Native;

    #[test]
    fn a_known_entry_is_selected_and_echoed() {
        assert_eq!(negotiate(&["wamp"], N), (Protocol::Wamp1, Some("wamp")));
        assert_eq!(
            negotiate(&["push-bridge.v1"], W),
            (Protocol::Native, Some("push-bridge.v1"))
        );
    }

    #[test]
    fn the_first_known_entry_in_the_clients_order_wins() {
        assert_eq!(
            negotiate(&["push-bridge.v1", "wamp"], W),
            (Protocol::Native, Some("push-bridge.v1"))
        );
        assert_eq!(
            negotiate(&["wamp", "push-bridge.v1"], N),
            (Protocol::Wamp1, Some("wamp"))
        );
        assert_eq!(
            negotiate(&["chat", "bearer.abc", "push-bridge.v1", "wamp"], W),
            (Protocol::Native, Some("push-bridge.v1"))
        );
    }

    #[test]
    fn nothing_known_falls_back_to_the_default_without_echo() {
        assert_eq!(negotiate(&[], W), (Protocol::Wamp1, None));
        assert_eq!(negotiate(&[], N), (Protocol::Native, None));
        assert_eq!(negotiate(&["chat", "mqtt"], W), (Protocol::Wamp1, None));
        assert_eq!(negotiate(&["chat", "mqtt"], N), (Protocol::Native, None));
    }

    #[test]
    fn wamp2_json_is_selected_in_the_clients_order() {
        assert_eq!(
            negotiate(&["wamp.2.json"], N),
            (Protocol::Wamp2, Some("wamp.2.json"))
        );
        // AutobahnJS offers JSON and msgpack; only JSON is served.
        assert_eq!(
            negotiate(&["wamp.2.json", "wamp.2.msgpack"], W),
            (Protocol::Wamp2, Some("wamp.2.json"))
        );
        assert_eq!(
            negotiate(&["wamp.2.msgpack", "wamp.2.json"], W),
            (Protocol::Wamp2, Some("wamp.2.json"))
        );
        assert_eq!(
            negotiate(&["wamp.2.msgpack", "wamp.2.cbor"], N),
            (Protocol::Native, None)
        );
        assert_eq!(
            negotiate(&["wamp.2.json", "wamp"], N),
            (Protocol::Wamp2, Some("wamp.2.json"))
        );
        assert_eq!(
            negotiate(&["wamp", "wamp.2.json"], N),
            (Protocol::Wamp1, Some("wamp"))
        );
        assert_eq!(
            Protocol::from_subprotocol("wamp.2.json"),
            Some(Protocol::Wamp2)
        );
        assert_eq!(Protocol::from_subprotocol("wamp.2.JSON"), None);
    }

    #[test]
    fn bearer_tokens_are_never_echoed() {
        for offered in [
            &["bearer.secret"][..],
            &["bearer.wamp"],
            &["bearer.push-bridge.v1"],
        ] {
            assert_eq!(
                negotiate(offered, W),
                (Protocol::Wamp1, None),
                "{offered:?}"
            );
        }
        assert_eq!(
            negotiate(&["bearer.secret", "wamp"], N),
            (Protocol::Wamp1, Some("wamp"))
        );
    }

    #[test]
    fn names_are_compared_exactly() {
        for name in [
            "WAMP",
            "Wamp",
            "wamp ",
            " wamp",
            "wamp1",
            "push-bridge.V1",
            "",
        ] {
            assert_eq!(negotiate(&[name], N), (Protocol::Native, None), "{name:?}");
            assert_eq!(Protocol::from_subprotocol(name), None, "{name:?}");
        }
        assert_eq!(Protocol::from_subprotocol("wamp"), Some(Protocol::Wamp1));
        assert_eq!(
            Protocol::from_subprotocol("push-bridge.v1"),
            Some(Protocol::Native)
        );
    }

    #[test]
    fn labels_and_defaults() {
        assert_eq!(Protocol::Wamp1.label(), "wamp1");
        assert_eq!(Protocol::Native.label(), "native");
        assert_eq!(Protocol::Wamp2.label(), "wamp2");
        assert_eq!(Protocol::Sse.label(), "sse");
        assert_eq!(
            Protocol::ALL.len(),
            SUBPROTOCOLS.len() + 1,
            "every subprotocol, and SSE"
        );
        assert_eq!(Protocol::from(W), Protocol::Wamp1);
        assert_eq!(Protocol::from(N), Protocol::Native);
    }
}
