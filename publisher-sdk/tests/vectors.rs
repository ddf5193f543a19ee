//! The cross-language test vectors (`publisher-sdk/vectors.json`) against the Rust SDK:
//! every frame the thin clients (Python, PHP, Node) must produce is checked here to be
//! exactly what `wire::encode` lays out and what a real `Publisher` puts on the wire,
//! and every refusal to be the one the SDK (and so the bridge) makes. The vectors were
//! written by hand and by a script using another JSON library; this test is what ties
//! them to serde_json, the bridge's own parser and serializer.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use push_bridge_publisher::{wire, PublishError, Publisher};
use serde_json::Value;
use support::Peer;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors.json");
    let text = std::fs::read_to_string(path).expect("read vectors.json");
    assert!(
        text.is_ascii(),
        "vectors.json stays plain ASCII (non-ASCII as \\u escapes)"
    );
    serde_json::from_str(&text).expect("vectors.json is JSON")
}

fn list<'a>(vectors: &'a Value, key: &str) -> &'a [Value] {
    let list = vectors[key]
        .as_array()
        .unwrap_or_else(|| panic!("vectors.json has no list {key:?}"));
    assert!(!list.is_empty(), "the list {key:?} is empty");
    list
}

fn text<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key:?} is not a string in {case}"))
}

fn number(case: &Value, key: &str) -> usize {
    case[key]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or_else(|| panic!("{key:?} is not a size in {case}"))
}

fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd-length hex {hex:?}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// The expected frames of a case, after checking its readable and its hex forms agree.
fn expected_frames(case: &Value) -> Vec<Vec<u8>> {
    let name = text(case, "name");
    let readable: Vec<Vec<u8>> = case["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| f.as_str().expect("frame text").as_bytes().to_vec())
        .collect();
    let hex: Vec<Vec<u8>> = case["frames_hex"]
        .as_array()
        .expect("frames_hex")
        .iter()
        .map(|f| unhex(f.as_str().expect("frame hex")))
        .collect();
    assert_eq!(readable, hex, "{name}: frames and frames_hex disagree");
    assert_eq!(hex.len(), wire::FRAMES, "{name}");
    assert_eq!(hex[0], text(case, "topic").as_bytes(), "{name}: frame 1");
    assert_eq!(hex[1], text(case, "id").as_bytes(), "{name}: frame 2");
    hex
}

/// A PUSH publisher that refuses before touching its socket (nothing listens on port 1).
fn unconnected(max_message_bytes: usize) -> Publisher {
    Publisher::builder()
        .max_message_bytes(max_message_bytes)
        .linger(Duration::ZERO)
        .connect("tcp://127.0.0.1:1")
        .expect("open a PUSH socket")
}

/// The vectors' name for a refusal, with the topic rule for topics.
fn kind(error: &PublishError) -> (&'static str, Option<&'static str>) {
    match error {
        PublishError::InvalidTopic { source, .. } => ("invalid_topic", Some(reason(source))),
        PublishError::InvalidId(_) => ("invalid_id", None),
        PublishError::InvalidJson(_) | PublishError::Serialize(_) => ("invalid_data", None),
        PublishError::TooLarge { .. } => ("too_large", None),
        _ => ("other", None),
    }
}

fn reason(error: &wire::TopicError) -> &'static str {
    match error {
        wire::TopicError::Empty => "empty",
        wire::TopicError::TooLong => "too_long",
        wire::TopicError::BadCharacter => "bad_character",
        wire::TopicError::EmptySegment => "empty_segment",
        wire::TopicError::Wildcard => "wildcard",
    }
}

#[test]
fn encode_vectors_are_what_the_sdk_serializes_and_sends() {
    let vectors = vectors();
    let peer = Peer::pull("tcp://127.0.0.1:0");
    let publisher = Publisher::connect(&peer.endpoint).expect("connect");
    for case in list(&vectors, "encode") {
        let name = text(case, "name");
        let (topic, id) = (text(case, "topic"), text(case, "id"));
        let frames = expected_frames(case);
        assert_eq!(wire::check_topic(topic), Ok(()), "{name}");
        assert!(wire::is_valid_id(id), "{name}");
        let json = serde_json::to_string(&case["data"]).expect("serialize");
        assert_eq!(
            json.as_bytes(),
            frames[2],
            "{name}: serde_json's compact form"
        );
        assert_eq!(wire::encode(topic, id, json).to_vec(), frames, "{name}");

        let sent = publisher
            .publish_with_id(topic, id, &case["data"])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sent, id, "{name}");
        assert_eq!(peer.recv(), frames, "{name}: on the wire");
    }
    publisher.close(Duration::from_secs(1)).expect("close");
}

#[test]
fn encode_json_vectors_are_sent_byte_for_byte() {
    let vectors = vectors();
    let peer = Peer::pull("tcp://127.0.0.1:0");
    let publisher = Publisher::connect(&peer.endpoint).expect("connect");
    for case in list(&vectors, "encode_json") {
        let name = text(case, "name");
        let (topic, id, json) = (
            text(case, "topic"),
            text(case, "id"),
            text(case, "data_json"),
        );
        let frames = expected_frames(case);
        assert_eq!(json.as_bytes(), frames[2], "{name}");
        assert!(
            serde_json::from_str::<Value>(json).is_ok(),
            "{name}: the bridge parses it"
        );
        let sent = publisher
            .publish_json(topic, json, Some(id))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sent, id, "{name}");
        assert_eq!(peer.recv(), frames, "{name}: on the wire");
    }
    publisher.close(Duration::from_secs(1)).expect("close");
}

#[test]
fn reject_vectors_are_refused_with_their_kind_and_reason() {
    let vectors = vectors();
    let publisher = unconnected(number(&vectors, "max_message_bytes"));
    for case in list(&vectors, "reject") {
        let name = text(case, "name");
        let (topic, id) = (text(case, "topic"), text(case, "id"));
        let want_kind = text(case, "error");
        let want_reason = case["reason"].as_str();

        // The pure rules first: exactly the one defect the case names.
        let topic_check = wire::check_topic(topic).err();
        assert_eq!(
            topic_check.as_ref().map(reason),
            want_reason,
            "{name}: check_topic"
        );
        assert_eq!(
            !wire::is_valid_id(id),
            want_kind == "invalid_id",
            "{name}: is_valid_id"
        );

        // Then the publisher, on both paths where the case has data for them.
        let mut tried = 0;
        if let Some(json) = case["data_json"].as_str() {
            assert_eq!(
                serde_json::from_str::<Value>(json).is_err(),
                want_kind == "invalid_data",
                "{name}: serde_json"
            );
            let error = publisher
                .publish_json(topic, json, Some(id))
                .expect_err(name);
            assert_eq!(kind(&error), (want_kind, want_reason), "{name}: {error}");
            tried += 1;
        }
        if case.get("data").is_some() {
            let error = publisher
                .publish_with_id(topic, id, &case["data"])
                .expect_err(name);
            assert_eq!(kind(&error), (want_kind, want_reason), "{name}: {error}");
            tried += 1;
        }
        assert!(tried > 0, "{name}: neither data nor data_json");
    }
}

#[test]
fn limit_vectors_count_every_frame_in_bytes() {
    let vectors = vectors();
    let default_limit = number(&vectors, "max_message_bytes");
    assert_eq!(
        default_limit,
        push_bridge_publisher::DEFAULT_MAX_MESSAGE_BYTES
    );
    for case in list(&vectors, "limits") {
        let name = text(case, "name");
        let (topic, id) = (text(case, "topic"), text(case, "id"));
        let limit = case
            .get("max_message_bytes")
            .map_or(default_limit, |_| number(case, "max_message_bytes"));
        let size = number(case, "size");
        let ok = case["ok"].as_bool().expect("ok");
        assert_eq!(ok, size <= limit, "{name}: ok agrees with size and limit");

        let publisher = unconnected(limit);
        let result = if let Some(json) = case["data_json"].as_str() {
            assert_eq!(wire::encoded_len(topic, id, json), size, "{name}");
            publisher.publish_json(topic, json, Some(id))
        } else {
            let data = "x".repeat(number(case, "data_x"));
            let json = serde_json::to_string(&data).expect("serialize");
            assert_eq!(wire::encoded_len(topic, id, &json), size, "{name}");
            publisher.publish_with_id(topic, id, &data)
        };
        match result {
            Ok(sent) => {
                assert!(ok, "{name}: accepted at {size} bytes");
                assert_eq!(sent, id, "{name}");
            }
            Err(PublishError::TooLarge {
                size: refused,
                limit: l,
            }) => {
                assert!(!ok, "{name}: refused at {size} bytes");
                assert_eq!((refused, l), (size, limit), "{name}");
            }
            Err(other) => panic!("{name}: {other}"),
        }
    }
}

#[test]
fn the_vectors_cover_every_kind_and_topic_rule() {
    let vectors = vectors();
    let kinds: BTreeSet<&str> = list(&vectors, "reject")
        .iter()
        .map(|c| text(c, "error"))
        .collect();
    let reasons: BTreeSet<&str> = list(&vectors, "reject")
        .iter()
        .filter_map(|c| c["reason"].as_str())
        .collect();
    let declared = |key: &str| -> BTreeSet<&str> {
        list(&vectors, key)
            .iter()
            .map(|v| v.as_str().expect("a name"))
            .collect()
    };
    let mut rejected_kinds = declared("error_kinds");
    // Size refusals are in "limits", not "reject".
    assert!(rejected_kinds.remove("too_large"));
    assert_eq!(kinds, rejected_kinds);
    assert_eq!(reasons, declared("topic_reasons"));
    let limits = list(&vectors, "limits");
    assert!(limits.iter().any(|c| c["ok"] == true));
    assert!(limits.iter().any(|c| c["ok"] == false));
    assert!(limits.iter().any(|c| c.get("max_message_bytes").is_none()));
}
