//! WAMP v1, `wamp` (docs/protocol.md "WAMP v1"): the
//! protocol of Superdesk's Ratchet server, spoken by autobahn.js 0.8 and by
//! Superdesk's plain-`WebSocket` browser client, which opens with no subprotocol,
//! waits for a frame starting with `0`, sends `[5, "package_created"]` and acts on
//! `[8, topic, data]`.
//!
//! Client frames in → [`Message`], or a [`ProtocolViolation`] on which the session
//! closes with `1007` as Ratchet does. The session decides what each message leads to
//! (PREFIX recorded in [`Prefixes`], SUBSCRIBE checked and indexed, CALL answered with
//! [`call_error`], PUBLISH refused). Frames out: [`welcome`], [`event`], [`call_error`].
//!
//! Frames are JSON arrays whose element 0 is the integer type id. Elements past the
//! ones a message needs are ignored, as Ratchet ignores them.

use std::collections::HashMap;

use serde_json::Value;

use super::{json_string, kind};

/// One client message the bridge understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `[1, prefix, uri]`: from now on `prefix:rest` stands for `uri` + `rest`.
    Prefix { prefix: String, uri: String },
    /// `[2, callId, procedure, arg*]`. The bridge serves no procedures; arguments (spread
    /// or as one array) are accepted and dropped, the id is echoed in the CALLERROR.
    Call { call_id: Value, procedure: String },
    /// `[5, topic]`, the topic as sent: expand it with [`Prefixes::expand`].
    Subscribe { topic: String },
    /// `[6, topic]`, the topic as sent.
    Unsubscribe { topic: String },
    /// `[7, topic, event, …]`: a client may not publish; the event is dropped.
    Publish { topic: String },
}

/// On a protocol violation the WAMP v1 session closes with `1007` (as Ratchet does);
/// the text goes to the log.
pub use super::ProtocolViolation;

const PREFIX: u64 = 1;
const CALL: u64 = 2;
const CALLRESULT: u64 = 3;
const CALLERROR: u64 = 4;
const SUBSCRIBE: u64 = 5;
const UNSUBSCRIBE: u64 = 6;
const PUBLISH: u64 = 7;
const EVENT: u64 = 8;
const WELCOME: u64 = 0;

/// The error URI of every CALLERROR the bridge sends: it serves no procedures.
pub const ERROR_UNSUPPORTED: &str = "http://push-bridge/error#unsupported";

/// Parses one client text frame.
pub fn parse(text: &str) -> Result<Message, ProtocolViolation> {
    let (type_id, elements) = super::wamp_message(text)?;
    let violation = |reason: String| Err(ProtocolViolation(reason));
    let frame = Frame {
        name: type_name(type_id),
        elements: &elements,
    };
    match type_id {
        PREFIX => Ok(Message::Prefix {
            prefix: frame.string(1, "prefix")?,
            uri: frame.string(2, "URI")?,
        }),
        CALL => Ok(Message::Call {
            call_id: frame.call_id()?,
            procedure: frame.string(2, "procedure URI")?,
        }),
        SUBSCRIBE => Ok(Message::Subscribe {
            topic: frame.string(1, "topic")?,
        }),
        UNSUBSCRIBE => Ok(Message::Unsubscribe {
            topic: frame.string(1, "topic")?,
        }),
        PUBLISH => {
            let topic = frame.string(1, "topic")?;
            frame.element(2, "event")?;
            Ok(Message::Publish { topic })
        }
        WELCOME | CALLRESULT | CALLERROR | EVENT => violation(format!(
            "{} (type id {type_id}) is sent by servers, not clients",
            frame.name
        )),
        _ => violation(format!("unknown message type id {type_id}")),
    }
}

fn type_name(type_id: u64) -> &'static str {
    match type_id {
        WELCOME => "WELCOME",
        PREFIX => "PREFIX",
        CALL => "CALL",
        CALLRESULT => "CALLRESULT",
        CALLERROR => "CALLERROR",
        SUBSCRIBE => "SUBSCRIBE",
        UNSUBSCRIBE => "UNSUBSCRIBE",
        PUBLISH => "PUBLISH",
        EVENT => "EVENT",
        _ => "unknown",
    }
}

/// A parsed array and its message name, for typed element access with reasons.
struct Frame<'a> {
    name: &'static str,
    elements: &'a [Value],
}

impl Frame<'_> {
    fn element(&self, index: usize, what: &str) -> Result<&Value, ProtocolViolation> {
        self.elements.get(index).ok_or_else(|| {
            ProtocolViolation(format!(
                "{} is missing its {what} (element {index})",
                self.name
            ))
        })
    }

    fn string(&self, index: usize, what: &str) -> Result<String, ProtocolViolation> {
        match self.element(index, what)? {
            Value::String(s) => Ok(s.clone()),
            other => Err(ProtocolViolation(format!(
                "{}: the {what} (element {index}) must be a string, got {}",
                self.name,
                kind(other)
            ))),
        }
    }

    /// WAMP v1 call ids are strings; numbers are accepted too, since they echo
    /// unambiguously and some clients send them.
    fn call_id(&self) -> Result<Value, ProtocolViolation> {
        match self.element(1, "call id")? {
            id @ (Value::String(_) | Value::Number(_)) => Ok(id.clone()),
            other => Err(ProtocolViolation(format!(
                "CALL: the call id (element 1) must be a string or a number, got {}",
                kind(other)
            ))),
        }
    }
}

/// The CURIE prefixes one connection has recorded with PREFIX.
///
/// Bounded so that a client cannot grow the bridge's memory with PREFIX messages: at
/// most [`Prefixes::MAX`] prefixes are kept and further new ones are ignored
/// (redefining a recorded prefix still works), and a prefix or URI longer than a topic
/// may be (256 bytes) is ignored, as it could never expand to a valid topic. A topic
/// using an ignored prefix is then taken as it is, and fails or matches on its own.
#[derive(Debug, Default, Clone)]
pub struct Prefixes {
    map: HashMap<String, String>,
}

impl Prefixes {
    /// The most prefixes one connection may record.
    pub const MAX: usize = 64;

    /// Records `prefix` → `uri`, replacing an earlier definition of `prefix`. Returns
    /// whether it was recorded (false: over one of the bounds above, ignored).
    pub fn set(&mut self, prefix: String, uri: String) -> bool {
        let too_long = prefix.len() > crate::topic::MAX_LEN || uri.len() > crate::topic::MAX_LEN;
        if too_long || (self.map.len() >= Self::MAX && !self.map.contains_key(&prefix)) {
            return false;
        }
        self.map.insert(prefix, uri);
        true
    }

    /// Expands a CURIE as autobahn.js 0.8 does: split at the first `:`; when the part
    /// before it is a recorded prefix, the result is its URI followed by the rest;
    /// otherwise `topic` unchanged (so full URIs such as `http://…` pass through unless
    /// a client recorded `http` as a prefix).
    pub fn expand(&self, topic: &str) -> String {
        topic
            .split_once(':')
            .and_then(|(prefix, rest)| self.map.get(prefix).map(|uri| format!("{uri}{rest}")))
            .unwrap_or_else(|| topic.to_owned())
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// WELCOME `[0,"<session>",1,"<ident>"]`, the first frame of every connection.
pub fn welcome(session: &str, server_ident: &str) -> String {
    format!(
        "[{WELCOME},{},1,{}]",
        json_string(session),
        json_string(server_ident)
    )
}

/// CALLERROR `[4,<callId>,"http://push-bridge/error#unsupported","<description>"]`,
/// the answer to every CALL; the connection stays open.
pub fn call_error(call_id: &Value, description: &str) -> String {
    format!(
        "[{CALLERROR},{call_id},{},{}]",
        json_string(ERROR_UNSUPPORTED),
        json_string(description)
    )
}

/// EVENT `[8,"<uri>",<data>]`. `uri` is the subscription's expanded topic (WAMP v1
/// clients dispatch on it); `data_json` is the event's compact JSON text, embedded as
/// it is, so one frame per (event, subscription topic) serves every recipient.
pub fn event(uri: &str, data_json: &str) -> String {
    let uri = json_string(uri);
    let mut frame = String::with_capacity(5 + uri.len() + data_json.len());
    frame.push_str("[8,");
    frame.push_str(&uri);
    frame.push(',');
    frame.push_str(data_json);
    frame.push(']');
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn reason(text: &str) -> String {
        parse(text).expect_err(text).to_string()
    }

    #[test]
    fn superdesk_browser_client_bytes() {
        // services/websocket.js sends exactly this, with the space.
        assert_eq!(
            parse(r#"[5, "package_created"]"#),
            Ok(Message::Subscribe {
                topic: "package_created".into()
            })
        );
        assert_eq!(
            parse(r#"[6,"package_created"]"#),
            Ok(Message::Unsubscribe {
                topic: "package_created".into()
            })
        );
        assert_eq!(
            parse(" \n[ 5 ,\t\"package_created\" ]\r\n"),
            Ok(Message::Subscribe {
                topic: "package_created".into()
            })
        );
    }

    #[test]
    fn autobahn_prefix_then_curie_subscribe() {
        let mut prefixes = Prefixes::default();
        let Ok(Message::Prefix { prefix, uri }) =
            parse(r#"[1,"calc","http://example.com/simple/calc#"]"#)
        else {
            panic!("PREFIX did not parse");
        };
        assert!(prefixes.set(prefix, uri));
        let Ok(Message::Subscribe { topic }) = parse(r#"[5,"calc:square"]"#) else {
            panic!("SUBSCRIBE did not parse");
        };
        assert_eq!(topic, "calc:square", "raw topic as sent");
        assert_eq!(
            prefixes.expand(&topic),
            "http://example.com/simple/calc#square"
        );
        // Split at the first ':' only; the rest is appended as it is.
        assert_eq!(
            prefixes.expand("calc:a:b"),
            "http://example.com/simple/calc#a:b"
        );
        assert_eq!(prefixes.expand("calc:"), "http://example.com/simple/calc#");
        // Unknown prefix, no colon, full URI: unchanged.
        assert_eq!(prefixes.expand("other:x"), "other:x");
        assert_eq!(prefixes.expand("calc"), "calc");
        assert_eq!(prefixes.expand("package_created"), "package_created");
        assert_eq!(
            prefixes.expand("http://example.com/simple"),
            "http://example.com/simple"
        );
        assert_eq!(prefixes.expand(""), "");
    }

    #[test]
    fn a_prefix_can_be_redefined_and_even_be_http() {
        let mut prefixes = Prefixes::default();
        assert!(prefixes.set("p".into(), "urn:a#".into()));
        assert!(prefixes.set("p".into(), "urn:b#".into()));
        assert_eq!(prefixes.expand("p:x"), "urn:b#x");
        assert_eq!(prefixes.len(), 1);
        assert!(prefixes.set("http".into(), "web".into()));
        assert_eq!(prefixes.expand("http://h/p"), "web//h/p");
    }

    #[test]
    fn prefixes_are_bounded() {
        let mut prefixes = Prefixes::default();
        assert!(prefixes.is_empty());
        for i in 0..Prefixes::MAX {
            assert!(prefixes.set(format!("p{i}"), format!("u{i}#")));
        }
        assert!(!prefixes.set("extra".into(), "x#".into()));
        assert_eq!(prefixes.len(), Prefixes::MAX);
        assert_eq!(prefixes.expand("extra:y"), "extra:y");
        // Redefining a recorded prefix is still allowed at the cap.
        assert!(prefixes.set("p0".into(), "new#".into()));
        assert_eq!(prefixes.expand("p0:y"), "new#y");

        let mut prefixes = Prefixes::default();
        assert!(!prefixes.set("p".into(), "u".repeat(257)));
        assert!(!prefixes.set("p".repeat(257), "u".into()));
        assert!(prefixes.set("p".repeat(256), "u".repeat(256)));
        assert_eq!(prefixes.len(), 1);
    }

    #[test]
    fn call_with_spread_args_array_arg_or_none() {
        let expected = |id: Value| {
            Ok(Message::Call {
                call_id: id,
                procedure: "api:add2".into(),
            })
        };
        assert_eq!(
            parse(r#"[2,"7DK6TdN4wLiUJgNM","api:add2",23,99]"#),
            expected(json!("7DK6TdN4wLiUJgNM"))
        );
        assert_eq!(
            parse(r#"[2, "x1", "api:add2", [23, 99]]"#),
            expected(json!("x1"))
        );
        assert_eq!(parse(r#"[2,"x2","api:add2"]"#), expected(json!("x2")));
        assert_eq!(parse(r#"[2,17,"api:add2",{"a":1}]"#), expected(json!(17)));
        assert_eq!(parse(r#"[2,1.5,"api:add2"]"#), expected(json!(1.5)));
    }

    #[test]
    fn call_refusals() {
        assert_eq!(reason("[2]"), "CALL is missing its call id (element 1)");
        assert_eq!(
            reason(r#"[2,"id"]"#),
            "CALL is missing its procedure URI (element 2)"
        );
        assert_eq!(
            reason(r#"[2,"id",5]"#),
            "CALL: the procedure URI (element 2) must be a string, got a number"
        );
        for id in ["null", "true", "[]", "{}"] {
            let text = format!(r#"[2,{id},"p"]"#);
            assert!(
                reason(&text)
                    .starts_with("CALL: the call id (element 1) must be a string or a number"),
                "{text}"
            );
        }
    }

    #[test]
    fn publish_forms_from_the_spec() {
        let expected = |t: &str| Ok(Message::Publish { topic: t.into() });
        assert_eq!(
            parse(r#"[7,"event:myevent1","hello"]"#),
            expected("event:myevent1")
        );
        assert_eq!(
            parse(r#"[7,"event:myevent1",{"a":[1]},true]"#),
            expected("event:myevent1")
        );
        assert_eq!(
            parse(r#"[7,"event:myevent1","hello",[],["NwtXQ8rdfPsy-ewS"]]"#),
            expected("event:myevent1")
        );
        assert_eq!(
            parse(r#"[7,"package_created",null]"#),
            expected("package_created")
        );
        assert_eq!(
            reason(r#"[7,"t"]"#),
            "PUBLISH is missing its event (element 2)"
        );
        assert_eq!(
            reason(r#"[7,{},"e"]"#),
            "PUBLISH: the topic (element 1) must be a string, got an object"
        );
    }

    #[test]
    fn prefix_and_subscribe_refusals() {
        for (text, why) in [
            (r#"[1,"p"]"#, "PREFIX is missing its URI (element 2)"),
            ("[1]", "PREFIX is missing its prefix (element 1)"),
            (
                r#"[1,1,"u"]"#,
                "PREFIX: the prefix (element 1) must be a string, got a number",
            ),
            (
                r#"[1,"p",null]"#,
                "PREFIX: the URI (element 2) must be a string, got null",
            ),
            ("[5]", "SUBSCRIBE is missing its topic (element 1)"),
            (
                "[5,42]",
                "SUBSCRIBE: the topic (element 1) must be a string, got a number",
            ),
            (
                r#"[5,["a"]]"#,
                "SUBSCRIBE: the topic (element 1) must be a string, got an array",
            ),
            (
                "[6,null]",
                "UNSUBSCRIBE: the topic (element 1) must be a string, got null",
            ),
        ] {
            assert_eq!(reason(text), why, "{text}");
        }
    }

    #[test]
    fn bad_frames_and_type_ids_are_violations() {
        for (text, why) in [
            ("[]", "a WAMP message must not be an empty array"),
            (
                r#"{"type":5}"#,
                "a WAMP message must be a JSON array, got an object",
            ),
            (
                r#""[5,\"a\"]""#,
                "a WAMP message must be a JSON array, got a string",
            ),
            ("5", "a WAMP message must be a JSON array, got a number"),
            (
                r#"["5","a"]"#,
                "the message type id must be a non-negative integer, got a string",
            ),
            (
                r#"[5.5,"a"]"#,
                "the message type id must be a non-negative integer, got 5.5",
            ),
            (
                r#"[5.0,"a"]"#,
                "the message type id must be a non-negative integer, got 5.0",
            ),
            (
                r#"[-5,"a"]"#,
                "the message type id must be a non-negative integer, got -5",
            ),
            (
                r#"[null,"a"]"#,
                "the message type id must be a non-negative integer, got null",
            ),
            (
                r#"[0,"s",1,"x"]"#,
                "WELCOME (type id 0) is sent by servers, not clients",
            ),
            (
                r#"[3,"id",null]"#,
                "CALLRESULT (type id 3) is sent by servers, not clients",
            ),
            (
                r#"[4,"id","u","d"]"#,
                "CALLERROR (type id 4) is sent by servers, not clients",
            ),
            (
                r#"[8,"t",{}]"#,
                "EVENT (type id 8) is sent by servers, not clients",
            ),
            (r#"[9,"t"]"#, "unknown message type id 9"),
            (r#"[99,"t"]"#, "unknown message type id 99"),
            (
                "[18446744073709551615]",
                "unknown message type id 18446744073709551615",
            ),
        ] {
            assert_eq!(reason(text), why, "{text}");
        }
        for text in ["", "[5,", "package_created", "[5,'a']", "\u{feff}[5,\"a\"]"] {
            assert!(
                reason(text).starts_with("the frame is not JSON ("),
                "{text:?}"
            );
        }
    }

    #[test]
    fn extra_elements_are_ignored() {
        assert_eq!(
            parse(r#"[5,"a",{"x":1},2]"#),
            Ok(Message::Subscribe { topic: "a".into() })
        );
        assert_eq!(
            parse(r#"[1,"p","u",3]"#),
            Ok(Message::Prefix {
                prefix: "p".into(),
                uri: "u".into()
            })
        );
    }

    #[test]
    fn welcome_bytes() {
        assert_eq!(
            welcome("1459043385656a1b2c3d4e5f6123456789", "Ratchet/0.4.1"),
            r#"[0,"1459043385656a1b2c3d4e5f6123456789",1,"Ratchet/0.4.1"]"#
        );
        assert_eq!(
            welcome("a\"b", "push-bridge/0.1.0"),
            r#"[0,"a\"b",1,"push-bridge/0.1.0"]"#
        );
    }

    #[test]
    fn call_error_bytes() {
        assert_eq!(
            call_error(&json!("gwbN3EDtFv6JvNV5"), "no procedures here"),
            r#"[4,"gwbN3EDtFv6JvNV5","http://push-bridge/error#unsupported","no procedures here"]"#
        );
        assert_eq!(
            call_error(&json!(17), "say \"no\"\\é"),
            r#"[4,17,"http://push-bridge/error#unsupported","say \"no\"\\é"]"#
        );
    }

    #[test]
    fn event_bytes() {
        assert_eq!(
            event("package_created", r#"{"ping":1}"#),
            r#"[8,"package_created",{"ping":1}]"#
        );
        assert_eq!(
            event(
                "package_created",
                r#"{"package":{"id":1},"state":"create"}"#
            ),
            r#"[8,"package_created",{"package":{"id":1},"state":"create"}]"#
        );
        assert_eq!(event("t", "null"), r#"[8,"t",null]"#);
    }

    #[test]
    fn event_output_is_json_that_round_trips() {
        let data = json!({"s": "a\"b\\c\u{1}é😀", "n": [1, 2.5, -3], "t": true, "z": null});
        let uri = "http://example.com/q\"uo\\te#é😀";
        let frame = event(uri, &data.to_string());
        let parsed: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(parsed, json!([8, uri, data]));
        assert_eq!(parsed.to_string(), frame, "compact");
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,60}") {
            let _ = parse(&text);
        }

        #[test]
        fn parsing_arrays_never_panics(
            id in proptest::num::i64::ANY,
            rest in proptest::collection::vec(prop_oneof![
                Just(json!(null)),
                "[a-z:]{0,5}".prop_map(Value::from),
                proptest::num::i32::ANY.prop_map(Value::from),
            ], 0..4),
        ) {
            let mut elements = vec![json!(id % 10)];
            elements.extend(rest);
            let _ = parse(&Value::Array(elements).to_string());
        }

        #[test]
        fn expand_passes_through_without_prefixes(topic in "\\PC{0,30}") {
            prop_assert_eq!(Prefixes::default().expand(&topic), topic);
        }
    }
}
