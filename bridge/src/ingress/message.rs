//! One received ZeroMQ message (all its frames) → an [`IngressMessage`] or a
//! [`Rejected`] with the reason (docs/publishing.md "Wire format"). Pure: no sockets, no
//! clock, no logging; the caller counts, warns and hands on.
//!
//! The forms, by frame count:
//! - 1 frame, **envelope**: a JSON object with a string `topic` and a key `data`
//!   (optional string `id`);
//! - 1 frame, **legacy**: any other JSON object; the topic comes from the configured
//!   `topic_field`, else the configured `default_topic`, and `data` is the whole object;
//! - 2 frames: `[topic, data-json]`;
//! - 3 frames: `[topic, id, data-json]`.
//!
//! `data` leaves as compact JSON text with its key order preserved (serde_json's
//! `preserve_order`), so the hub can embed it in every protocol's frame as-is.

use std::fmt;

use serde_json::{Map, Value};

use crate::config::IngressConfig;
use crate::event::{is_valid_id, IngressMessage};
use crate::json_text::{excerpt, kind};
use crate::topic::Topic;

/// Why a message was dropped. Each reason is a label of
/// `push_bridge_ingress_rejected_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    BadUtf8,
    BadJson,
    NoTopic,
    BadTopic,
    BadId,
    TooLarge,
    FrameCount,
}

impl Rejection {
    /// Every reason, in a fixed order (so counters can be created up front and the
    /// series exist at zero before the first rejection).
    pub const ALL: [Rejection; 7] = [
        Rejection::BadUtf8,
        Rejection::BadJson,
        Rejection::NoTopic,
        Rejection::BadTopic,
        Rejection::BadId,
        Rejection::TooLarge,
        Rejection::FrameCount,
    ];

    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::BadUtf8 => "bad_utf8",
            Rejection::BadJson => "bad_json",
            Rejection::NoTopic => "no_topic",
            Rejection::BadTopic => "bad_topic",
            Rejection::BadId => "bad_id",
            Rejection::TooLarge => "too_large",
            Rejection::FrameCount => "frame_count",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A rejection with a short human detail for the warning (which frame or field, the
/// JSON error, the topic rule broken). The detail never quotes the payload at length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub reason: Rejection,
    pub detail: String,
}

impl Rejected {
    fn new(reason: Rejection, detail: impl Into<String>) -> Self {
        Rejected {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for Rejected {}

/// The parts of the ingress configuration that decide whether a message is accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub max_message_bytes: usize,
    pub topic_field: Option<String>,
    pub default_topic: Option<Topic>,
}

impl From<&IngressConfig> for Rules {
    fn from(config: &IngressConfig) -> Self {
        Rules {
            max_message_bytes: config.max_message_bytes,
            topic_field: config.topic_field.clone(),
            default_topic: config.default_topic.clone(),
        }
    }
}

/// Parses one message (all its frames, in order) according to `rules`.
pub fn parse(frames: &[&[u8]], rules: &Rules) -> Result<IngressMessage, Rejected> {
    // Size first: nothing about an oversized message is worth parsing.
    let size: usize = frames.iter().map(|f| f.len()).sum();
    if size > rules.max_message_bytes {
        return Err(Rejected::new(
            Rejection::TooLarge,
            format!(
                "{size} bytes exceeds ingress.max_message_bytes ({})",
                rules.max_message_bytes
            ),
        ));
    }
    match frames {
        [json] => parse_single(text(json, 1)?, rules),
        [topic, data] => Ok(IngressMessage {
            topic: topic_frame(text(topic, 1)?)?,
            id: None,
            data: data_frame(text(data, 2)?, 2)?,
        }),
        [topic, id, data] => {
            let topic = topic_frame(text(topic, 1)?)?;
            let id = text(id, 2)?;
            if !is_valid_id(id) {
                return Err(Rejected::new(
                    Rejection::BadId,
                    format!(
                        "frame 2 {} is not an id (1-128 bytes of printable ASCII)",
                        excerpt(id)
                    ),
                ));
            }
            Ok(IngressMessage {
                topic,
                id: Some(id.to_string()),
                data: data_frame(text(data, 3)?, 3)?,
            })
        }
        _ => Err(Rejected::new(
            Rejection::FrameCount,
            format!(
                "{} frames; expected 1 (JSON), 2 (topic, data) or 3 (topic, id, data)",
                frames.len()
            ),
        )),
    }
}

/// A single frame: the envelope, or the legacy form.
fn parse_single(json: &str, rules: &Rules) -> Result<IngressMessage, Rejected> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| Rejected::new(Rejection::BadJson, format!("frame 1: {e}")))?;
    let mut object = match value {
        Value::Object(object) => object,
        other => {
            return Err(Rejected::new(
                Rejection::NoTopic,
                format!(
                    "a single frame must be a JSON object, not {}; send [topic, data] frames \
                     or {{\"topic\": ..., \"data\": ...}}",
                    kind(&other)
                ),
            ))
        }
    };

    if let (Some(Value::String(topic)), true) = (object.get("topic"), object.contains_key("data")) {
        let topic = field_topic(topic, "topic")?;
        let id = envelope_id(&object)?;
        let data = object.remove("data").unwrap_or(Value::Null);
        return Ok(IngressMessage {
            topic,
            id,
            data: compact(&data)?,
        });
    }

    let topic = legacy_topic(&object, rules)?;
    Ok(IngressMessage {
        topic,
        id: None,
        data: compact(&Value::Object(object))?,
    })
}

/// The envelope's optional `id`. A JSON `null` counts as absent: serializers of
/// optional fields (PHP, Python, serde without `skip_serializing_if`) write it.
fn envelope_id(object: &Map<String, Value>) -> Result<Option<String>, Rejected> {
    match object.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if is_valid_id(id) => Ok(Some(id.clone())),
        Some(Value::String(id)) => Err(Rejected::new(
            Rejection::BadId,
            format!(
                "field \"id\" {} is not an id (1-128 bytes of printable ASCII)",
                excerpt(id)
            ),
        )),
        Some(other) => Err(Rejected::new(
            Rejection::BadId,
            format!("field \"id\" is {}, not a string", kind(other)),
        )),
    }
}

/// The legacy form's topic: `topic_field` when configured and a string there, else
/// `default_topic`, else none.
fn legacy_topic(object: &Map<String, Value>, rules: &Rules) -> Result<Topic, Rejected> {
    if let Some(field) = &rules.topic_field {
        if let Some(Value::String(topic)) = object.get(field) {
            return field_topic(topic, field);
        }
    }
    if let Some(topic) = &rules.default_topic {
        return Ok(topic.clone());
    }
    let detail = match &rules.topic_field {
        Some(field) => format!(
            "the object has no string field {field:?} (ingress.topic_field) and no \
             ingress.default_topic is set"
        ),
        None => "the object has no string \"topic\" with a \"data\" key; for legacy messages \
                 set ingress.topic_field or ingress.default_topic"
            .to_string(),
    };
    Err(Rejected::new(Rejection::NoTopic, detail))
}

fn field_topic(topic: &str, field: &str) -> Result<Topic, Rejected> {
    Topic::parse(topic).map_err(|e| {
        Rejected::new(
            Rejection::BadTopic,
            format!("field {field:?} {} {e}", excerpt(topic)),
        )
    })
}

fn topic_frame(topic: &str) -> Result<Topic, Rejected> {
    Topic::parse(topic).map_err(|e| {
        Rejected::new(
            Rejection::BadTopic,
            format!("frame 1 {} {e}", excerpt(topic)),
        )
    })
}

fn data_frame(json: &str, frame: usize) -> Result<String, Rejected> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| Rejected::new(Rejection::BadJson, format!("frame {frame}: {e}")))?;
    compact(&value)
}

fn compact(value: &Value) -> Result<String, Rejected> {
    // Serializing a `Value` cannot fail (its map keys are strings); map it anyway
    // rather than panic.
    serde_json::to_string(value).map_err(|e| Rejected::new(Rejection::BadJson, e.to_string()))
}

/// Frame `n` (1-based) as UTF-8 text.
fn text(frame: &[u8], n: usize) -> Result<&str, Rejected> {
    std::str::from_utf8(frame).map_err(|e| {
        Rejected::new(
            Rejection::BadUtf8,
            format!(
                "frame {n} is not valid UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules::from(&IngressConfig::default())
    }

    fn legacy_rules(topic_field: Option<&str>, default_topic: Option<&str>) -> Rules {
        Rules {
            topic_field: topic_field.map(String::from),
            default_topic: default_topic.map(|t| Topic::parse(t).unwrap()),
            ..rules()
        }
    }

    fn one(json: &str, rules: &Rules) -> Result<IngressMessage, Rejected> {
        parse(&[json.as_bytes()], rules)
    }

    fn accepted(topic: &str, id: Option<&str>, data: &str) -> IngressMessage {
        IngressMessage {
            topic: Topic::parse(topic).unwrap(),
            id: id.map(String::from),
            data: data.to_string(),
        }
    }

    fn reason(result: Result<IngressMessage, Rejected>) -> Rejection {
        result.expect_err("should be rejected").reason
    }

    #[test]
    fn labels_are_the_metric_labels() {
        let labels: Vec<_> = Rejection::ALL.iter().map(Rejection::label).collect();
        assert_eq!(
            labels,
            [
                "bad_utf8",
                "bad_json",
                "no_topic",
                "bad_topic",
                "bad_id",
                "too_large",
                "frame_count"
            ]
        );
        assert_eq!(Rejection::BadId.to_string(), "bad_id");
    }

    #[test]
    fn rules_come_from_the_config() {
        let config = IngressConfig {
            max_message_bytes: 10,
            topic_field: Some("category".into()),
            default_topic: Some(Topic::parse("news").unwrap()),
            ..IngressConfig::default()
        };
        assert_eq!(
            Rules::from(&config),
            Rules {
                max_message_bytes: 10,
                topic_field: Some("category".into()),
                default_topic: Some(Topic::parse("news").unwrap()),
            }
        );
    }

    #[test]
    fn the_superdesk_frame_is_an_envelope() {
        let frame = r#"{"topic":"package_created","data":{"package":{"id":1},"state":"create"}}"#;
        assert_eq!(
            one(frame, &rules()),
            Ok(accepted(
                "package_created",
                None,
                r#"{"package":{"id":1},"state":"create"}"#
            ))
        );
    }

    #[test]
    fn envelope_data_is_compacted_with_key_order_kept() {
        let frame = r#" { "data" : { "z" : 1 , "a" : [ 1 , 2 ] , "m" : { "y" : null , "b" : "é" } } ,
                          "topic" : "article:42" } "#;
        assert_eq!(
            one(frame, &rules()),
            Ok(accepted(
                "article:42",
                None,
                r#"{"z":1,"a":[1,2],"m":{"y":null,"b":"é"}}"#
            ))
        );
    }

    /// Numbers keep their value: what a publisher's JSON library wrote (shortest
    /// round-trip text, e.g. Python's `repr`) reaches subscribers as the same number.
    /// serde_json's default float parsing is off by one ULP for about one such float in
    /// ten (956.0342718892493 became 956.0342718892492); `float_roundtrip` fixes it
    /// (found by fuzzing, fuzz/regressions/ingress_message/).
    #[test]
    fn numbers_keep_their_value() {
        for number in [
            "956.0342718892493",
            "-9.433050469559873e28",
            "0.30000000000000004",
            "1.7976931348623157e308",
            "5e-324",
        ] {
            let frame = format!(r#"{{"topic":"t","data":[{number}]}}"#);
            let data = one(&frame, &rules()).unwrap().data;
            let sent: f64 = number.parse().unwrap();
            let delivered: Vec<f64> = serde_json::from_str(&data).unwrap();
            assert_eq!(delivered, [sent], "{number} became {data}");
        }
        // And the compact text reads back as itself (the fuzzer's invariant).
        let frame = r#"{"topic":"t","data":17777777777770001486952393}"#;
        let data = one(frame, &rules()).unwrap().data;
        let again: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(again.to_string(), data);
    }

    #[test]
    fn envelope_data_may_be_any_json_value() {
        for (data, expected) in [
            ("null", "null"),
            ("true", "true"),
            ("42", "42"),
            ("-1.5", "-1.5"),
            (r#""text""#, r#""text""#),
            ("[ ]", "[]"),
            (r#"{"a": "\u00e9\n"}"#, r#"{"a":"é\n"}"#),
        ] {
            let frame = format!(r#"{{"topic":"t","data":{data}}}"#);
            assert_eq!(
                one(&frame, &rules()),
                Ok(accepted("t", None, expected)),
                "{data}"
            );
        }
    }

    #[test]
    fn envelope_ignores_extra_fields_and_takes_its_id() {
        let frame = r#"{"topic":"t","id":"01J-abc","extra":1,"data":{"x":1}}"#;
        assert_eq!(
            one(frame, &rules()),
            Ok(accepted("t", Some("01J-abc"), r#"{"x":1}"#))
        );
    }

    #[test]
    fn envelope_null_id_counts_as_absent() {
        let frame = r#"{"topic":"t","id":null,"data":1}"#;
        assert_eq!(one(frame, &rules()), Ok(accepted("t", None, "1")));
    }

    #[test]
    fn envelope_bad_ids_are_rejected() {
        let long = "a".repeat(129);
        for id in [
            r#""""#,
            "1",
            "true",
            "[]",
            r#""a b\u0001""#,
            r#""é""#,
            &format!("\"{long}\""),
        ] {
            let frame = format!(r#"{{"topic":"t","id":{id},"data":1}}"#);
            assert_eq!(reason(one(&frame, &rules())), Rejection::BadId, "{id}");
        }
        let max = "a".repeat(128);
        let frame = format!(r#"{{"topic":"t","id":"{max}","data":1}}"#);
        assert_eq!(one(&frame, &rules()), Ok(accepted("t", Some(&max), "1")));
    }

    #[test]
    fn envelope_bad_topics_are_rejected_not_treated_as_legacy() {
        let with_default = legacy_rules(None, Some("fallback"));
        for topic in ["", "a b", "a:", "a:*", "*", &"a".repeat(257)] {
            let frame = format!(r#"{{"topic":"{topic}","data":1}}"#);
            let rejected = one(&frame, &with_default).expect_err(topic);
            assert_eq!(rejected.reason, Rejection::BadTopic, "{topic}");
            assert!(rejected.detail.contains("\"topic\""), "{}", rejected.detail);
        }
    }

    #[test]
    fn ratchet_tutorial_form_with_topic_field() {
        let rules = legacy_rules(Some("category"), None);
        let frame = r#"{"category":"kittensCategory","title":"Hi","article":"text","when":1}"#;
        assert_eq!(
            one(frame, &rules),
            Ok(accepted("kittensCategory", None, frame))
        );
    }

    #[test]
    fn legacy_data_is_the_whole_object_compacted() {
        let rules = legacy_rules(Some("category"), None);
        let frame = r#"{ "b" : 1, "category" : "news:local", "a" : { "topic" : 5 } }"#;
        assert_eq!(
            one(frame, &rules),
            Ok(accepted(
                "news:local",
                None,
                r#"{"b":1,"category":"news:local","a":{"topic":5}}"#
            ))
        );
    }

    #[test]
    fn objects_that_are_not_envelopes_are_legacy() {
        let rules = legacy_rules(None, Some("fallback"));
        for frame in [
            r#"{"topic":"t"}"#,
            r#"{"data":1}"#,
            r#"{"topic":5,"data":1}"#,
            r#"{"topic":null,"data":1}"#,
            r#"{}"#,
        ] {
            let message = one(frame, &rules).expect(frame);
            assert_eq!(message.topic.as_str(), "fallback", "{frame}");
            assert_eq!(message.data, frame, "{frame}");
            assert_eq!(message.id, None);
        }
    }

    #[test]
    fn legacy_topic_field_falls_back_to_the_default_topic() {
        let both = legacy_rules(Some("category"), Some("fallback"));
        for frame in [r#"{"x":1}"#, r#"{"category":7}"#, r#"{"category":null}"#] {
            assert_eq!(
                one(frame, &both).unwrap().topic.as_str(),
                "fallback",
                "{frame}"
            );
        }
        assert_eq!(
            one(r#"{"category":"c"}"#, &both).unwrap().topic.as_str(),
            "c"
        );
    }

    #[test]
    fn legacy_topic_field_with_a_bad_topic_is_rejected_even_with_a_default() {
        let both = legacy_rules(Some("category"), Some("fallback"));
        let rejected = one(r#"{"category":"a b"}"#, &both).unwrap_err();
        assert_eq!(rejected.reason, Rejection::BadTopic);
        assert!(
            rejected.detail.contains("\"category\""),
            "{}",
            rejected.detail
        );
        assert_eq!(
            reason(one(r#"{"category":"x:*"}"#, &both)),
            Rejection::BadTopic
        );
    }

    #[test]
    fn legacy_without_topic_field_or_default_has_no_topic() {
        let rejected = one(r#"{"category":"c"}"#, &rules()).unwrap_err();
        assert_eq!(rejected.reason, Rejection::NoTopic);
        assert!(
            rejected.detail.contains("ingress.topic_field"),
            "{}",
            rejected.detail
        );

        let field_only = legacy_rules(Some("category"), None);
        let rejected = one(r#"{"kind":"c"}"#, &field_only).unwrap_err();
        assert_eq!(rejected.reason, Rejection::NoTopic);
        assert!(
            rejected.detail.contains("\"category\""),
            "{}",
            rejected.detail
        );
    }

    #[test]
    fn single_frame_non_objects_have_no_topic() {
        let rules = legacy_rules(Some("category"), Some("fallback"));
        for (frame, kind) in [
            ("[1,2]", "an array"),
            (r#""package_created""#, "a string"),
            ("42", "a number"),
            ("null", "null"),
            ("true", "a boolean"),
        ] {
            let rejected = one(frame, &rules).unwrap_err();
            assert_eq!(rejected.reason, Rejection::NoTopic, "{frame}");
            assert!(
                rejected.detail.contains(kind),
                "{frame}: {}",
                rejected.detail
            );
        }
    }

    #[test]
    fn bad_json_is_rejected_with_the_parser_error() {
        for frame in [
            "",
            "{",
            r#"{"topic":"t","data":}"#,
            "{} {}",
            "package_created",
            "\u{feff}{}",
        ] {
            let rejected = one(frame, &rules()).unwrap_err();
            assert_eq!(rejected.reason, Rejection::BadJson, "{frame:?}");
            assert!(
                rejected.detail.starts_with("frame 1: "),
                "{}",
                rejected.detail
            );
        }
        let rejected = parse(&[b"t", b"{\"a\":"], &rules()).unwrap_err();
        assert_eq!(rejected.reason, Rejection::BadJson);
        assert!(rejected.detail.contains("frame 2"), "{}", rejected.detail);
        let rejected = parse(&[b"t", b"id", b"nope"], &rules()).unwrap_err();
        assert_eq!(rejected.reason, Rejection::BadJson);
        assert!(rejected.detail.contains("frame 3"), "{}", rejected.detail);
    }

    #[test]
    fn two_frames_are_topic_and_data() {
        let frames: [&[u8]; 2] = [b"article:42", br#"{ "b": 1, "a": 2 }"#];
        assert_eq!(
            parse(&frames, &rules()),
            Ok(accepted("article:42", None, r#"{"b":1,"a":2}"#))
        );
        // Any JSON value, including an envelope-looking one: it is data here.
        let frames: [&[u8]; 2] = [b"t", br#"{"topic":"u","data":1}"#];
        assert_eq!(
            parse(&frames, &rules()),
            Ok(accepted("t", None, r#"{"topic":"u","data":1}"#))
        );
        assert_eq!(
            parse(&[b"t", b"\"s\""], &rules()),
            Ok(accepted("t", None, "\"s\""))
        );
    }

    #[test]
    fn three_frames_are_topic_id_and_data() {
        let frames: [&[u8]; 3] = [b"article:42", b"0192f0c4-7a1b", b"[1, 2]"];
        assert_eq!(
            parse(&frames, &rules()),
            Ok(accepted("article:42", Some("0192f0c4-7a1b"), "[1,2]"))
        );
    }

    #[test]
    fn multipart_bad_topics_and_ids() {
        for topic in [&b""[..], b"a b", b"a::b", b"*", b"a:*", b"tab\t"] {
            assert_eq!(reason(parse(&[topic, b"1"], &rules())), Rejection::BadTopic);
            assert_eq!(
                reason(parse(&[topic, b"id", b"1"], &rules())),
                Rejection::BadTopic
            );
        }
        let long = vec![b'a'; 129];
        for id in [&b""[..], b"\x01", b"a\x7f", "é".as_bytes(), &long] {
            assert_eq!(
                reason(parse(&[b"t", id, b"1"], &rules())),
                Rejection::BadId,
                "{id:?}"
            );
        }
    }

    #[test]
    fn bad_utf8_in_any_frame() {
        let bad: &[u8] = b"\xff\xfe";
        let cases: [&[&[u8]]; 6] = [
            &[bad],
            &[bad, b"1"],
            &[b"t", bad],
            &[bad, b"id", b"1"],
            &[b"t", bad, b"1"],
            &[b"t", b"id", bad],
        ];
        for frames in cases {
            assert_eq!(
                reason(parse(frames, &rules())),
                Rejection::BadUtf8,
                "{frames:?}"
            );
        }
        let rejected = parse(&[b"t", b"{\"a\":\"\xc3\"}"], &rules()).unwrap_err();
        assert_eq!(
            rejected.detail,
            "frame 2 is not valid UTF-8 (bad byte at offset 6)"
        );
    }

    #[test]
    fn wrong_frame_counts() {
        assert_eq!(reason(parse(&[], &rules())), Rejection::FrameCount);
        let four: [&[u8]; 4] = [b"t", b"id", b"1", b"1"];
        let rejected = parse(&four, &rules()).unwrap_err();
        assert_eq!(rejected.reason, Rejection::FrameCount);
        assert!(
            rejected.detail.starts_with("4 frames"),
            "{}",
            rejected.detail
        );
    }

    #[test]
    fn size_is_the_sum_of_all_frames_and_checked_first() {
        let small = Rules {
            max_message_bytes: 10,
            ..rules()
        };
        // Exactly at the limit: accepted.
        assert_eq!(
            parse(&[b"topic", b"12345"], &small),
            Ok(accepted("topic", None, "12345"))
        );
        // One byte over, counted across frames.
        let rejected = parse(&[b"topic", b"123456"], &small).unwrap_err();
        assert_eq!(rejected.reason, Rejection::TooLarge);
        assert_eq!(
            rejected.detail,
            "11 bytes exceeds ingress.max_message_bytes (10)"
        );
        // Checked before anything else: bad UTF-8, bad JSON, frame count.
        assert_eq!(
            reason(parse(&[&b"\xff\xff\xff\xff\xff\xff"[..]; 2], &small)),
            Rejection::TooLarge
        );
        assert_eq!(reason(parse(&[&b"a"[..]; 11], &small)), Rejection::TooLarge);
        assert_eq!(reason(one("{{{{{{{{{{{", &small)), Rejection::TooLarge);
    }

    #[test]
    fn long_bad_values_are_quoted_short() {
        let topic = format!("a {}", "x".repeat(1000));
        let detail = parse(&[topic.as_bytes(), b"1"], &rules())
            .unwrap_err()
            .detail;
        assert!(detail.len() < 200, "{detail}");
        assert!(detail.contains('…'), "{detail}");
    }

    #[test]
    fn rejected_displays_reason_and_detail() {
        let rejected = parse(&[], &rules()).unwrap_err();
        assert_eq!(
            rejected.to_string(),
            "frame_count: 0 frames; expected 1 (JSON), 2 (topic, data) or 3 (topic, id, data)"
        );
    }
}
