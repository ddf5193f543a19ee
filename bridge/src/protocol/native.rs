//! The native JSON protocol, `push-bridge.v1` (docs/protocol.md "Native JSON
//! protocol"): client text frames in → [`Request`] or [`RequestError`]; answers and
//! events out as compact JSON text with the keys in docs/protocol.md's order.
//!
//! A client has exactly two actions, subscribe and unsubscribe. Whatever else it sends
//! is answered with an `error` frame (`unsupported` for another `type`, `bad_request`
//! for anything malformed) that echoes the request's `ref` whenever one can be found,
//! so the client can match the refusal to what it sent. Whether a subscribe is
//! permitted, or exceeds the subscription limit, is decided by the session; it builds
//! those refusals with [`RequestError::new`].

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{excerpt, json_string, kind, to_json};
use crate::topic::{Pattern, Topic};

/// One client action.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Subscribe to every pattern in `topics`, all or nothing; with `since`, first
    /// replay the history after that event id.
    Subscribe {
        topics: Vec<Pattern>,
        since: Option<String>,
        reference: Option<Value>,
    },
    Unsubscribe {
        topics: Vec<Pattern>,
        reference: Option<Value>,
    },
}

impl Request {
    /// The client's `ref`, to echo in the answer.
    pub fn reference(&self) -> Option<&Value> {
        match self {
            Request::Subscribe { reference, .. } | Request::Unsubscribe { reference, .. } => {
                reference.as_ref()
            }
        }
    }
}

/// The `code` of an `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Not JSON, not an object, a missing or ill-typed field, an invalid pattern.
    BadRequest,
    /// A pattern the connection's token does not cover.
    Forbidden,
    /// The subscribe would take the connection past `server.max_subscriptions`.
    TooManySubscriptions,
    /// A well-formed request whose `type` is neither `subscribe` nor `unsubscribe`.
    Unsupported,
}

impl ErrorCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused request: what the `error` frame says, and the `ref` it echoes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RequestError {
    pub code: ErrorCode,
    pub message: String,
    pub reference: Option<Value>,
}

impl RequestError {
    pub fn new(code: ErrorCode, message: impl Into<String>, reference: Option<Value>) -> Self {
        RequestError {
            code,
            message: message.into(),
            reference,
        }
    }
}

/// Parses one client text frame.
///
/// Unknown keys are ignored; `"since": null` counts as no `since`; `ref` is any JSON
/// value (`null` included) and is kept even when the rest of the request is refused.
pub fn parse_request(text: &str) -> Result<Request, RequestError> {
    let bad = |message: String, reference: &Option<Value>| {
        RequestError::new(ErrorCode::BadRequest, message, reference.clone())
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| bad(format!("the frame is not JSON ({e})"), &None))?;
    let Value::Object(object) = value else {
        return Err(bad(
            format!("a request must be a JSON object, got {}", kind(&value)),
            &None,
        ));
    };
    let reference = object.get("ref").cloned();
    let subscribe = match object.get("type") {
        Some(Value::String(t)) if t == "subscribe" => true,
        Some(Value::String(t)) if t == "unsubscribe" => false,
        Some(Value::String(other)) => {
            return Err(RequestError::new(
                ErrorCode::Unsupported,
                format!(
                    "type {} is not supported: use \"subscribe\" or \"unsubscribe\"",
                    excerpt(other)
                ),
                reference,
            ))
        }
        Some(other) => {
            return Err(bad(
                format!("\"type\" must be a string, got {}", kind(other)),
                &reference,
            ))
        }
        None => return Err(bad("missing \"type\"".to_string(), &reference)),
    };
    let topics = parse_topics(&object).map_err(|message| bad(message, &reference))?;
    if !subscribe {
        return Ok(Request::Unsubscribe { topics, reference });
    }
    let since = match object.get("since") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(other) => {
            return Err(bad(
                format!("\"since\" must be an event id string, got {}", kind(other)),
                &reference,
            ))
        }
    };
    Ok(Request::Subscribe {
        topics,
        since,
        reference,
    })
}

/// `topics`: a non-empty array of valid patterns. Every invalid pattern is named in
/// the one message, with the rule it breaks, so a client can fix them all at once.
fn parse_topics(object: &Map<String, Value>) -> Result<Vec<Pattern>, String> {
    let entries = match object.get("topics") {
        Some(Value::Array(entries)) if entries.is_empty() => {
            return Err("\"topics\" must not be empty".to_string())
        }
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            return Err(format!(
                "\"topics\" must be an array of strings, got {}",
                kind(other)
            ))
        }
        None => return Err("missing \"topics\"".to_string()),
    };
    let mut topics = Vec::with_capacity(entries.len());
    let mut invalid = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let Value::String(text) = entry else {
            return Err(format!(
                "\"topics\" must be an array of strings, but entry {index} is {}",
                kind(entry)
            ));
        };
        match Pattern::parse(text) {
            Ok(pattern) => topics.push(pattern),
            Err(why) => invalid.push(format!("{} {why}", excerpt(text))),
        }
    }
    if invalid.is_empty() {
        Ok(topics)
    } else {
        Err(format!("invalid topic patterns: {}", invalid.join("; ")))
    }
}

/// Field order is docs/protocol.md's; absent options are left out, not sent as `null`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Frame<'a> {
    Welcome {
        session: &'a str,
        heartbeat: u64,
    },
    Subscribed {
        topics: &'a [Pattern],
        #[serde(skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Value>,
    },
    Unsubscribed {
        topics: &'a [Pattern],
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Value>,
    },
    Error {
        code: &'static str,
        message: &'a str,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Value>,
    },
}

/// `{"type":"welcome","session":"<id>","heartbeat":25}`, sent on open.
pub fn welcome(session: &str, heartbeat_secs: u64) -> String {
    to_json(&Frame::Welcome {
        session,
        heartbeat: heartbeat_secs,
    })
}

/// `{"type":"subscribed","topics":[…],"recovered":…,"ref":…}`; `recovered` only when
/// the subscribe gave `since`.
pub fn subscribed(
    topics: &[Pattern],
    recovered: Option<bool>,
    reference: Option<&Value>,
) -> String {
    to_json(&Frame::Subscribed {
        topics,
        recovered,
        reference,
    })
}

/// `{"type":"unsubscribed","topics":[…],"ref":…}`.
pub fn unsubscribed(topics: &[Pattern], reference: Option<&Value>) -> String {
    to_json(&Frame::Unsubscribed { topics, reference })
}

/// `{"type":"event","topic":"…","id":"…","data":<data>}`. `data_json` is the event's
/// compact JSON text, embedded as it is: the frame is built once per event and shared
/// by every native subscriber, so the data is never parsed again.
pub fn event(topic: &Topic, id: &str, data_json: &str) -> String {
    let topic = json_string(topic.as_str());
    let id = json_string(id);
    let mut frame = String::with_capacity(40 + topic.len() + id.len() + data_json.len());
    frame.push_str(r#"{"type":"event","topic":"#);
    frame.push_str(&topic);
    frame.push_str(r#","id":"#);
    frame.push_str(&id);
    frame.push_str(r#","data":"#);
    frame.push_str(data_json);
    frame.push('}');
    frame
}

/// `{"type":"error","code":"…","message":"…","ref":…}`.
pub fn error(err: &RequestError) -> String {
    to_json(&Frame::Error {
        code: err.code.as_str(),
        message: &err.message,
        reference: err.reference.as_ref(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    fn refused(text: &str) -> RequestError {
        parse_request(text).expect_err(text)
    }

    #[test]
    fn subscribe_with_every_field() {
        let request = parse_request(
            r#"{"type":"subscribe","topics":["package_created","article:42","tenant:*:article"],"since":"1700000000-7","ref":{"n":1}}"#,
        );
        assert_eq!(
            request,
            Ok(Request::Subscribe {
                topics: vec![p("package_created"), p("article:42"), p("tenant:*:article")],
                since: Some("1700000000-7".into()),
                reference: Some(json!({"n": 1})),
            })
        );
        assert_eq!(request.unwrap().reference(), Some(&json!({"n": 1})));
    }

    #[test]
    fn subscribe_minimal_and_with_whitespace_and_extra_keys() {
        let expected = Ok(Request::Subscribe {
            topics: vec![p("a")],
            since: None,
            reference: None,
        });
        assert_eq!(
            parse_request(r#"{"type":"subscribe","topics":["a"]}"#),
            expected
        );
        assert_eq!(
            parse_request(" {\n \"topics\" : [ \"a\" ] ,\t\"type\":\"subscribe\", \"x\":[1,{}] } "),
            expected
        );
        assert_eq!(
            parse_request(r#"{"type":"subscribe","topics":["a"],"since":null}"#),
            expected
        );
    }

    #[test]
    fn unsubscribe() {
        assert_eq!(
            parse_request(r#"{"type":"unsubscribe","topics":["a","b:1"],"ref":"r1"}"#),
            Ok(Request::Unsubscribe {
                topics: vec![p("a"), p("b:1")],
                reference: Some(json!("r1")),
            })
        );
        // `since` means nothing to an unsubscribe: an ignored extra key, whatever its type.
        assert_eq!(
            parse_request(r#"{"type":"unsubscribe","topics":["a"],"since":5}"#),
            Ok(Request::Unsubscribe {
                topics: vec![p("a")],
                reference: None,
            })
        );
    }

    #[test]
    fn ref_may_be_any_json_value_including_null() {
        for reference in [
            json!(null),
            json!(7),
            json!(1.5),
            json!(true),
            json!("x"),
            json!([1, "a"]),
            json!({"a": {"b": []}}),
        ] {
            let text = json!({"type": "subscribe", "topics": ["a"], "ref": reference}).to_string();
            let request = parse_request(&text).unwrap();
            assert_eq!(request.reference(), Some(&reference), "{text}");
        }
    }

    #[test]
    fn not_json_or_not_an_object_is_a_bad_request_without_ref() {
        for text in [
            "",
            "subscribe",
            "{",
            r#"{"type":"subscribe""#,
            "[]",
            "null",
            "42",
            r#""subscribe""#,
            r#"[{"type":"subscribe","topics":["a"]}]"#,
        ] {
            let err = refused(text);
            assert_eq!(err.code, ErrorCode::BadRequest, "{text}");
            assert_eq!(err.reference, None, "{text}");
        }
        assert_eq!(
            refused("[1]").message,
            "a request must be a JSON object, got an array"
        );
        assert!(refused("{").message.starts_with("the frame is not JSON ("));
    }

    #[test]
    fn type_rules() {
        let err = refused(r#"{"type":"publish","topics":["a"],"ref":3}"#);
        assert_eq!(err.code, ErrorCode::Unsupported);
        assert_eq!(err.reference, Some(json!(3)));
        assert_eq!(
            err.message,
            r#"type "publish" is not supported: use "subscribe" or "unsubscribe""#
        );
        // Case matters: only the exact spellings are the two actions.
        assert_eq!(
            refused(r#"{"type":"Subscribe","topics":["a"]}"#).code,
            ErrorCode::Unsupported
        );
        assert_eq!(
            refused(r#"{"type":"","topics":["a"]}"#).code,
            ErrorCode::Unsupported
        );
        for (text, message) in [
            (r#"{"topics":["a"],"ref":"r"}"#, "missing \"type\""),
            (
                r#"{"type":1,"topics":["a"],"ref":"r"}"#,
                "\"type\" must be a string, got a number",
            ),
            (
                r#"{"type":null,"topics":["a"],"ref":"r"}"#,
                "\"type\" must be a string, got null",
            ),
            (
                r#"{"type":["subscribe"],"ref":"r"}"#,
                "\"type\" must be a string, got an array",
            ),
        ] {
            let err = refused(text);
            assert_eq!(err.code, ErrorCode::BadRequest, "{text}");
            assert_eq!(err.message, message, "{text}");
            assert_eq!(err.reference, Some(json!("r")), "{text}");
        }
    }

    #[test]
    fn topics_rules() {
        for (text, message) in [
            (r#"{"type":"subscribe","ref":0}"#, "missing \"topics\""),
            (
                r#"{"type":"unsubscribe","topics":[],"ref":0}"#,
                "\"topics\" must not be empty",
            ),
            (
                r#"{"type":"subscribe","topics":"a","ref":0}"#,
                "\"topics\" must be an array of strings, got a string",
            ),
            (
                r#"{"type":"subscribe","topics":null,"ref":0}"#,
                "\"topics\" must be an array of strings, got null",
            ),
            (
                r#"{"type":"subscribe","topics":{"a":1},"ref":0}"#,
                "\"topics\" must be an array of strings, got an object",
            ),
            (
                r#"{"type":"subscribe","topics":["a",2],"ref":0}"#,
                "\"topics\" must be an array of strings, but entry 1 is a number",
            ),
            (
                r#"{"type":"unsubscribe","topics":[["a"]],"ref":0}"#,
                "\"topics\" must be an array of strings, but entry 0 is an array",
            ),
        ] {
            let err = refused(text);
            assert_eq!(err.code, ErrorCode::BadRequest, "{text}");
            assert_eq!(err.message, message, "{text}");
            assert_eq!(err.reference, Some(json!(0)), "{text}");
        }
    }

    #[test]
    fn every_invalid_pattern_is_named_in_one_error() {
        let err = refused(
            r#"{"type":"subscribe","topics":["ok","a b","art*","ok:2","a::b",""],"ref":"x"}"#,
        );
        assert_eq!(err.code, ErrorCode::BadRequest);
        assert_eq!(err.reference, Some(json!("x")));
        assert_eq!(
            err.message,
            "invalid topic patterns: \
             \"a b\" contains whitespace or a control character; \
             \"art*\" contains '*', which only patterns may use, as a whole segment; \
             \"a::b\" has an empty segment (leading, trailing or doubled ':'); \
             \"\" is empty"
        );
        // Unsubscribe follows the same rules.
        let err = refused(r#"{"type":"unsubscribe","topics":["a:"]}"#);
        assert_eq!(err.code, ErrorCode::BadRequest);
        assert!(
            err.message.contains("\"a:\" has an empty segment"),
            "{}",
            err.message
        );
    }

    #[test]
    fn long_invalid_patterns_are_quoted_cut_short() {
        let long = "x".repeat(300);
        let text = json!({"type": "subscribe", "topics": [long]}).to_string();
        let err = refused(&text);
        assert_eq!(
            err.message,
            format!(
                "invalid topic patterns: \"{}\"… is longer than 256 bytes",
                "x".repeat(64)
            )
        );
    }

    #[test]
    fn since_must_be_a_string() {
        for since in ["1", "true", "{}", "[\"a\"]"] {
            let text = format!(r#"{{"type":"subscribe","topics":["a"],"since":{since},"ref":1}}"#);
            let err = refused(&text);
            assert_eq!(err.code, ErrorCode::BadRequest, "{text}");
            assert!(
                err.message
                    .starts_with("\"since\" must be an event id string"),
                "{}",
                err.message
            );
            assert_eq!(err.reference, Some(json!(1)));
        }
    }

    #[test]
    fn error_codes_and_display() {
        assert_eq!(ErrorCode::BadRequest.as_str(), "bad_request");
        assert_eq!(ErrorCode::Forbidden.as_str(), "forbidden");
        assert_eq!(
            ErrorCode::TooManySubscriptions.as_str(),
            "too_many_subscriptions"
        );
        assert_eq!(ErrorCode::Unsupported.as_str(), "unsupported");
        let err = RequestError::new(ErrorCode::Forbidden, "not permitted: \"b\"", None);
        assert_eq!(err.to_string(), "forbidden: not permitted: \"b\"");
    }

    #[test]
    fn welcome_bytes() {
        assert_eq!(
            welcome("s1", 25),
            r#"{"type":"welcome","session":"s1","heartbeat":25}"#
        );
        assert_eq!(
            welcome("a\"b\\c", 0),
            r#"{"type":"welcome","session":"a\"b\\c","heartbeat":0}"#
        );
    }

    #[test]
    fn subscribed_and_unsubscribed_bytes() {
        let topics = [p("a"), p("b:1"), p("q\"uote\\s:é")];
        assert_eq!(
            subscribed(&topics, Some(true), Some(&json!({"k": "v"}))),
            r#"{"type":"subscribed","topics":["a","b:1","q\"uote\\s:é"],"recovered":true,"ref":{"k":"v"}}"#
        );
        assert_eq!(
            subscribed(&topics[..1], Some(false), None),
            r#"{"type":"subscribed","topics":["a"],"recovered":false}"#
        );
        assert_eq!(
            subscribed(&topics[..1], None, Some(&json!(null))),
            r#"{"type":"subscribed","topics":["a"],"ref":null}"#
        );
        assert_eq!(
            subscribed(&topics[..1], None, None),
            r#"{"type":"subscribed","topics":["a"]}"#
        );
        assert_eq!(
            unsubscribed(&topics[1..2], Some(&json!(["r", 2]))),
            r#"{"type":"unsubscribed","topics":["b:1"],"ref":["r",2]}"#
        );
        assert_eq!(
            unsubscribed(&topics[..1], None),
            r#"{"type":"unsubscribed","topics":["a"]}"#
        );
    }

    #[test]
    fn error_bytes_escape_the_message() {
        let err = RequestError::new(
            ErrorCode::BadRequest,
            "bad \"x\" \\ é\n\u{1}",
            Some(json!("r")),
        );
        assert_eq!(
            error(&err),
            r#"{"type":"error","code":"bad_request","message":"bad \"x\" \\ é\n\u0001","ref":"r"}"#
        );
        let err = RequestError::new(ErrorCode::TooManySubscriptions, "at most 100", None);
        assert_eq!(
            error(&err),
            r#"{"type":"error","code":"too_many_subscriptions","message":"at most 100"}"#
        );
    }

    #[test]
    fn a_refusal_round_trips_its_ref_through_the_error_frame() {
        let reference = json!({"nested": ["\"q\"", "\\", "😀", null]});
        let text =
            json!({"type": "subscribe", "topics": ["bad topic"], "ref": reference}).to_string();
        let frame: Value = serde_json::from_str(&error(&refused(&text))).unwrap();
        assert_eq!(frame["ref"], reference);
        assert_eq!(frame["code"], "bad_request");
    }

    /// A numeric ref comes back as the same number, however many digits it has
    /// (serde_json's `float_roundtrip`; found by fuzzing, fuzz/regressions/native_request/).
    #[test]
    fn a_numeric_ref_comes_back_as_the_same_number() {
        for number in ["444444444444444444444444", "956.0342718892493", "1e300"] {
            let text = format!(r#"{{"type":"subscribe","topics":["bad topic"],"ref":{number}}}"#);
            let frame: Value = serde_json::from_str(&error(&refused(&text))).unwrap();
            let sent: f64 = number.parse().unwrap();
            assert_eq!(frame["ref"].as_f64(), Some(sent), "{number}");
        }
    }

    #[test]
    fn event_bytes_embed_data_verbatim() {
        let topic = Topic::parse("package_created").unwrap();
        assert_eq!(
            event(
                &topic,
                "1700000000-1",
                r#"{"package":{"id":1},"state":"create"}"#
            ),
            r#"{"type":"event","topic":"package_created","id":"1700000000-1","data":{"package":{"id":1},"state":"create"}}"#
        );
        assert_eq!(
            event(&topic, "i", "null"),
            r#"{"type":"event","topic":"package_created","id":"i","data":null}"#
        );
    }

    #[test]
    fn event_output_is_json_that_round_trips() {
        let topic = Topic::parse("q\"uo\\te:é😀").unwrap();
        let data = json!({"s": "a\"b\\c\u{1}é😀", "n": [1, 2.5, -3], "t": true, "z": null});
        let frame = event(&topic, "id\"\\", &data.to_string());
        let parsed: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(
            parsed,
            json!({"type": "event", "topic": "q\"uo\\te:é😀", "id": "id\"\\", "data": data})
        );
        assert_eq!(parsed.to_string(), frame, "compact and in key order");
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,80}") {
            let _ = parse_request(&text);
        }

        #[test]
        fn parsing_any_request_shape_never_panics(
            t in proptest::option::of("(subscribe|unsubscribe|x)"),
            topics in proptest::collection::vec("[a-c:* ]{0,6}", 0..4),
            since in proptest::option::of("[0-9-]{0,5}"),
        ) {
            let mut object = json!({"topics": topics});
            if let Some(t) = t { object["type"] = json!(t); }
            if let Some(s) = since { object["since"] = json!(s); }
            let _ = parse_request(&object.to_string());
        }
    }
}
