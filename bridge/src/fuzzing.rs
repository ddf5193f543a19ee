//! Entry points for the fuzz targets (`fuzz/`, docs/fuzzing.md) and for the test that
//! replays their corpus on stable (`bridge/tests/fuzz_corpus.rs`). Not an API.
//!
//! One function per parser a peer controls. Each takes arbitrary bytes, runs the parser
//! and checks with `assert!` what must hold of every answer (round trips, bounds, the
//! relations between parsers), so a fuzzer finds wrong answers, not only panics. Where
//! a target needs several inputs or settings, the bytes are split as its comment says;
//! the layouts are chosen so that a seed file is readable text.

use std::ffi::OsString;
use std::path::Path;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::auth::credentials::{self, Presented, BEARER_SUBPROTOCOL_PREFIX, MAX_TOKEN_BYTES};
use crate::config::{load_text, DefaultProtocol, Overrides};
use crate::event::is_valid_id;
use crate::eventlog::redis::RedisAddress;
use crate::ingress::message::{self, Rejection, Rules};
use crate::protocol::wamp2::{self, Match};
use crate::protocol::{native, negotiate, wamp1};
use crate::topic::{Pattern, Topic, MAX_LEN, SEPARATOR, WILDCARD};

mod client_sessions;
pub use client_sessions::client_sessions;

/// Separates frames (ingress) and header sections: never part of UTF-8 text.
const FRAME_SEPARATOR: u8 = 0xff;

/// Longest reason a rejection or refusal may carry: they go to logs and to clients, and
/// quote the input only in short excerpts.
const MAX_DETAIL: usize = 1024;

/// The JSON text `text` re-serialized compactly (key order kept), or `None` if not JSON.
fn compact(text: &str) -> Option<String> {
    serde_json::from_str::<Value>(text)
        .ok()
        .map(|v| v.to_string())
}

/// Ingress: one ZeroMQ message → event or rejection (`ingress::message::parse`).
///
/// Byte 0 chooses the rules: bits 0–1 `topic_field` (unset, `category`, `topic`,
/// `event`), bits 2–3 `default_topic` (unset, `legacy`, `superdesk:events`, `a`),
/// bits 4–5 `max_message_bytes` (16, the message's size − 1, its size, 4 MiB; so `0`
/// to `?` are the default rules). The rest is the frames, separated by byte `0xff`.
pub fn ingress_message(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let frames: Vec<&[u8]> = rest.split(|&b| b == FRAME_SEPARATOR).collect();
    let size: usize = frames.iter().map(|f| f.len()).sum();
    let rules = Rules {
        topic_field: [None, Some("category"), Some("topic"), Some("event")]
            [usize::from(selector & 3)]
        .map(String::from),
        default_topic: [None, Some("legacy"), Some("superdesk:events"), Some("a")]
            [usize::from((selector >> 2) & 3)]
        .map(|t| Topic::parse(t).expect("a valid default topic")),
        max_message_bytes: match (selector >> 4) & 3 {
            0 => 16,
            1 => size.saturating_sub(1),
            2 => size,
            _ => 4 * 1024 * 1024,
        },
    };
    let texts: Option<Vec<&str>> = frames.iter().map(|f| std::str::from_utf8(f).ok()).collect();

    match message::parse(&frames, &rules) {
        Ok(msg) => {
            assert!(size <= rules.max_message_bytes, "accepted {size} bytes");
            let texts = texts.expect("accepted frames are UTF-8");
            assert_eq!(Topic::parse(msg.topic.as_str()).as_ref(), Ok(&msg.topic));
            assert_eq!(
                compact(&msg.data).as_deref(),
                Some(msg.data.as_str()),
                "data is compact JSON"
            );
            if let Some(id) = &msg.id {
                assert!(is_valid_id(id), "id {id:?}");
            }
            match texts[..] {
                [topic, data] => {
                    assert_eq!(msg.topic.as_str(), topic);
                    assert_eq!(msg.id, None);
                    assert_eq!(compact(data), Some(msg.data.clone()));
                }
                [topic, id, data] => {
                    assert_eq!(msg.topic.as_str(), topic);
                    assert_eq!(msg.id.as_deref(), Some(id));
                    assert_eq!(compact(data), Some(msg.data.clone()));
                }
                [json] => check_single_frame(json, &rules, &msg),
                _ => panic!("accepted {} frames", frames.len()),
            }
        }
        Err(rejected) => {
            let reason = rejected.reason;
            assert!(Rejection::ALL.contains(&reason));
            assert!(
                rejected.detail.len() <= MAX_DETAIL,
                "a {}-byte detail: {}",
                rejected.detail.len(),
                rejected.detail
            );
            let _ = rejected.to_string();
            if size > rules.max_message_bytes {
                assert_eq!(reason, Rejection::TooLarge);
            } else if !(1..=3).contains(&frames.len()) {
                assert_eq!(reason, Rejection::FrameCount);
            } else {
                assert_ne!(reason, Rejection::TooLarge);
                assert_ne!(reason, Rejection::FrameCount);
                if texts.is_some() {
                    assert_ne!(reason, Rejection::BadUtf8);
                }
            }
        }
    }
}

/// What an accepted single frame must have given: the envelope's fields, or the legacy
/// topic with the whole object as data.
fn check_single_frame(json: &str, rules: &Rules, msg: &crate::event::IngressMessage) {
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(json) else {
        panic!("accepted a single frame that is not a JSON object");
    };
    if let (Some(Value::String(topic)), true) = (object.get("topic"), object.contains_key("data")) {
        assert_eq!(msg.topic.as_str(), topic);
        let data = object.remove("data").unwrap_or(Value::Null);
        assert_eq!(msg.data, data.to_string());
        return;
    }
    let from_field = rules
        .topic_field
        .as_ref()
        .and_then(|field| object.get(field))
        .and_then(Value::as_str);
    match (from_field, &rules.default_topic) {
        (Some(topic), _) => assert_eq!(msg.topic.as_str(), topic),
        (None, Some(default)) => assert_eq!(&msg.topic, default),
        (None, None) => panic!("a legacy object accepted without topic_field or default_topic"),
    }
    assert_eq!(msg.id, None);
    assert_eq!(msg.data, Value::Object(object).to_string());
}

/// Native protocol: one client text frame (`protocol::native::parse_request`). Invalid
/// UTF-8 is replaced (a WebSocket text frame is UTF-8).
pub fn native_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = native::parse_request(&text);
    let sent: Option<Value> = serde_json::from_str(&text).ok();
    let sent_ref = sent.as_ref().and_then(|v| v.get("ref")).cloned();
    match parsed {
        Ok(request) => {
            let Some(Value::Object(object)) = &sent else {
                panic!("accepted a request that is not a JSON object");
            };
            assert_eq!(request.reference(), sent_ref.as_ref());
            let (kind, topics) = match &request {
                native::Request::Subscribe { topics, since, .. } => {
                    let sent_since = object.get("since").and_then(Value::as_str);
                    assert_eq!(since.as_deref(), sent_since);
                    ("subscribe", topics)
                }
                native::Request::Unsubscribe { topics, .. } => ("unsubscribe", topics),
            };
            assert_eq!(object.get("type").and_then(Value::as_str), Some(kind));
            assert!(!topics.is_empty());
            let sent_topics: Vec<&str> = object["topics"]
                .as_array()
                .expect("topics was an array")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let parsed_topics: Vec<&str> = topics.iter().map(Pattern::as_str).collect();
            assert_eq!(parsed_topics, sent_topics);
            for pattern in topics {
                assert_eq!(Pattern::parse(pattern.as_str()).as_ref(), Ok(pattern));
            }
            let answer = match &request {
                native::Request::Subscribe { since, .. } => {
                    native::subscribed(topics, since.as_ref().map(|_| true), request.reference())
                }
                native::Request::Unsubscribe { .. } => {
                    native::unsubscribed(topics, request.reference())
                }
            };
            let answer: Value = serde_json::from_str(&answer).expect("the answer is JSON");
            assert_eq!(answer.get("ref"), request.reference());
            assert_eq!(
                answer["type"].as_str(),
                Some(if kind == "subscribe" {
                    "subscribed"
                } else {
                    "unsubscribed"
                })
            );
        }
        Err(error) => {
            // The ref is echoed whenever the frame was an object that had one.
            if matches!(sent, Some(Value::Object(_))) {
                assert_eq!(error.reference, sent_ref);
            } else {
                assert_eq!(error.reference, None);
            }
            let frame: Value =
                serde_json::from_str(&native::error(&error)).expect("the error frame is JSON");
            assert_eq!(frame["type"], "error");
            assert_eq!(frame["code"].as_str(), Some(error.code.as_str()));
            assert_eq!(frame["message"].as_str(), Some(error.message.as_str()));
            assert_eq!(frame.get("ref"), error.reference.as_ref());
            // Only the list of invalid patterns grows with the input.
            let has_topics = sent.as_ref().and_then(|v| v.get("topics")).is_some();
            if !has_topics {
                assert!(error.message.len() <= MAX_DETAIL, "{}", error.message);
            }
        }
    }
}

/// WAMP v1: a connection's client frames, one per line (`protocol::wamp1::parse`), with
/// PREFIX recorded and SUBSCRIBE topics expanded as the session does.
pub fn wamp1_frames(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut prefixes = wamp1::Prefixes::default();
    // What was recorded, to check `expand` against: latest definition wins.
    let mut recorded: Vec<(String, String)> = Vec::new();
    for line in text.lines().take(256) {
        let parsed = wamp1::parse(line);
        let array = serde_json::from_str::<Value>(line).ok();
        match parsed {
            Ok(message) => {
                let Some(Value::Array(elements)) = array else {
                    panic!("accepted a frame that is not a JSON array");
                };
                let type_id = elements[0].as_u64().expect("an integer type id");
                let string = |i: usize| elements[i].as_str().expect("a string element");
                match message {
                    wamp1::Message::Prefix { prefix, uri } => {
                        assert_eq!(type_id, 1);
                        assert_eq!((prefix.as_str(), uri.as_str()), (string(1), string(2)));
                        let was_known = recorded.iter().any(|(p, _)| *p == prefix);
                        let set = prefixes.set(prefix.clone(), uri.clone());
                        let fits = prefix.len() <= MAX_LEN && uri.len() <= MAX_LEN;
                        assert_eq!(set, fits && (was_known || recorded.len() < 64));
                        if set {
                            recorded.retain(|(p, _)| *p != prefix);
                            recorded.push((prefix, uri));
                        }
                        assert_eq!(prefixes.len(), recorded.len());
                        assert!(prefixes.len() <= wamp1::Prefixes::MAX);
                    }
                    wamp1::Message::Call { call_id, procedure } => {
                        assert_eq!(type_id, 2);
                        assert_eq!(procedure, string(2));
                        let frame: Value = serde_json::from_str(&wamp1::call_error(
                            &call_id,
                            &format!("no procedure {procedure}"),
                        ))
                        .expect("CALLERROR is JSON");
                        assert_eq!(frame[0], 4);
                        assert_eq!(frame[1], call_id);
                        assert_eq!(frame[2], wamp1::ERROR_UNSUPPORTED);
                    }
                    wamp1::Message::Subscribe { topic } | wamp1::Message::Unsubscribe { topic } => {
                        assert!(type_id == 5 || type_id == 6);
                        assert_eq!(topic, string(1));
                        let expanded = prefixes.expand(&topic);
                        let expected = topic
                            .split_once(':')
                            .and_then(|(p, rest)| {
                                recorded
                                    .iter()
                                    .find(|(known, _)| known == p)
                                    .map(|(_, uri)| format!("{uri}{rest}"))
                            })
                            .unwrap_or_else(|| topic.clone());
                        assert_eq!(expanded, expected);
                        if let Ok(topic) = Topic::parse(&expanded) {
                            let frame: Value =
                                serde_json::from_str(&wamp1::event(topic.as_str(), "{\"a\":[1]}"))
                                    .expect("EVENT is JSON");
                            assert_eq!(frame[1].as_str(), Some(topic.as_str()));
                        }
                    }
                    wamp1::Message::Publish { topic } => {
                        assert_eq!(type_id, 7);
                        assert_eq!(topic, string(1));
                        assert!(elements.len() >= 3);
                    }
                }
            }
            Err(violation) => {
                assert!(violation.0.len() <= MAX_DETAIL, "{}", violation.0);
                if let Some(Value::Array(elements)) = &array {
                    if let Some(id @ (0 | 3 | 4 | 8)) = elements.first().and_then(Value::as_u64) {
                        assert!(violation.0.contains(&format!("type id {id}")));
                    }
                }
            }
        }
    }
}

/// WAMP v2: a connection's client frames, one per line (`protocol::wamp2::parse`), with
/// SUBSCRIBE topics mapped to patterns and refusals answered as the session does.
pub fn wamp2_frames(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.lines().take(256) {
        match wamp2::parse(line) {
            Ok(message) => {
                let Ok(Value::Array(elements)) = serde_json::from_str::<Value>(line) else {
                    panic!("accepted a frame that is not a JSON array");
                };
                if let Some(refusal) = message.refusal() {
                    let frame: Value = serde_json::from_str(&refusal).expect("ERROR is JSON");
                    assert_eq!(frame[0], 8);
                    assert_eq!(frame[1], elements[0]);
                    assert_eq!(frame[2], elements[1]);
                }
                match message {
                    wamp2::Message::Subscribe {
                        request,
                        topic,
                        match_,
                    } => {
                        assert!((1..=wamp2::MAX_ID).contains(&request));
                        check_wamp2_subscription(&topic, match_);
                    }
                    wamp2::Message::Unsubscribe {
                        request,
                        subscription,
                    } => {
                        assert!((1..=wamp2::MAX_ID).contains(&request));
                        assert!((1..=wamp2::MAX_ID).contains(&subscription));
                    }
                    wamp2::Message::Hello { authid, .. } => {
                        let frame: Value =
                            serde_json::from_str(&wamp2::welcome(7, authid.as_deref(), None))
                                .expect("WELCOME is JSON");
                        assert_eq!(
                            frame[2].get("authid").and_then(Value::as_str),
                            authid.as_deref()
                        );
                    }
                    wamp2::Message::Goodbye { reason } | wamp2::Message::Abort { reason } => {
                        let frame: Value = serde_json::from_str(&wamp2::goodbye(&reason))
                            .expect("GOODBYE is JSON");
                        assert_eq!(frame[2].as_str(), Some(reason.as_str()));
                    }
                    _ => {}
                }
            }
            Err(violation) => {
                assert!(violation.0.len() <= MAX_DETAIL, "{}", violation.0);
                let frame: Value = serde_json::from_str(&wamp2::abort(
                    wamp2::ERROR_PROTOCOL_VIOLATION,
                    &violation.0,
                ))
                .expect("ABORT is JSON");
                assert_eq!(frame[1]["message"].as_str(), Some(violation.0.as_str()));
            }
        }
    }
}

/// What a WAMP v2 subscription's pattern must be, given its URI and policy.
fn check_wamp2_subscription(uri: &str, match_: Match) {
    let Ok(pattern) = wamp2::subscription_pattern(uri, match_) else {
        return;
    };
    assert_eq!(Pattern::parse(pattern.as_str()).as_ref(), Ok(&pattern));
    assert!(!uri.contains(':'));
    let components = uri.split('.').count();
    assert_eq!(pattern.segments().count(), components);
    match match_ {
        Match::Exact => {
            // An exact subscription's pattern is a topic, the one whose URI it is.
            let topic = Topic::parse(pattern.as_str()).expect("an exact pattern is a topic");
            assert_eq!(wamp2::topic_uri(&topic), uri);
            assert!(wamp2::accepts(match_, &pattern, &topic));
        }
        Match::Wildcard | Match::Prefix => {
            // Every `*` comes from an empty component; the others are the URI's own.
            for (segment, component) in pattern.segments().zip(uri.split('.')) {
                if component.is_empty() {
                    assert_eq!(segment, WILDCARD);
                } else {
                    assert_eq!(segment, component);
                }
            }
            // The pattern with each `*` filled in is a topic the subscription accepts;
            // one segment more is accepted by prefix, refused by wildcard.
            let filled: Vec<&str> = pattern
                .segments()
                .map(|s| if s == WILDCARD { "x" } else { s })
                .collect();
            if let Ok(topic) = Topic::parse(&filled.join(":")) {
                assert!(
                    wamp2::accepts(match_, &pattern, &topic),
                    "{pattern} {topic}"
                );
                if let Ok(below) = Topic::parse(&format!("{topic}:y")) {
                    assert_eq!(
                        wamp2::accepts(match_, &pattern, &below),
                        match_ == Match::Prefix
                    );
                }
            }
        }
    }
}

/// Topics and patterns: up to three strings, one per line, each parsed as a topic and
/// as a pattern; the results are checked against the rules and against each other.
pub fn topic_relations(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let strings: Vec<&str> = [parts.next(), parts.next(), parts.next()]
        .into_iter()
        .flatten()
        .collect();
    let mut topics = Vec::new();
    let mut patterns = Vec::new();
    for s in &strings {
        let topic = Topic::parse(s);
        let pattern = Pattern::parse(s);
        if let Ok(topic) = &topic {
            assert_eq!(topic.as_str(), *s);
            assert_eq!(topic.to_string(), *s);
            assert_eq!(s.parse::<Topic>().as_ref(), Ok(topic));
            assert!(pattern.is_ok(), "{s:?} is a topic but not a pattern");
            assert!(!s.split(SEPARATOR).any(|seg| seg == WILDCARD));
            let json = serde_json::to_string(topic).expect("a topic serializes");
            assert_eq!(
                serde_json::from_str::<Topic>(&json).ok().as_ref(),
                Some(topic)
            );
            let own = Pattern::from(topic.clone());
            assert_eq!(own.as_str(), *s);
            assert!(own.matches(topic));
            assert!(Pattern::everything().matches(topic));
            topics.push(topic.clone());
        }
        if let Ok(pattern) = &pattern {
            assert_eq!(pattern.as_str(), *s);
            assert!((1..=MAX_LEN).contains(&s.len()));
            assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()));
            assert!(pattern
                .segments()
                .all(|seg| !seg.is_empty() && (seg == WILDCARD || !seg.contains('*'))));
            assert_eq!(Pattern::parse(pattern.as_str()).as_ref(), Ok(pattern));
            assert!(pattern.covers(pattern));
            assert!(Pattern::everything().covers(pattern));
            assert!(pattern.is_covered_by_any(std::slice::from_ref(pattern)));
            let has_wildcard = pattern.segments().any(|seg| seg == WILDCARD);
            assert_eq!(topic.is_ok(), !has_wildcard, "{s:?}");
            patterns.push(pattern.clone());
        } else {
            assert!(topic.is_err(), "{s:?}");
        }
    }
    for a in &patterns {
        for t in &topics {
            // `matches` as docs/protocol.md defines it: segment by segment, `*` any one segment.
            let mut ts = t.segments();
            let expected = a
                .segments()
                .all(|p| ts.next().is_some_and(|s| p == WILDCARD || p == s));
            assert_eq!(a.matches(t), expected, "{a} vs {t}");
        }
        for b in &patterns {
            if a.covers(b) {
                for t in &topics {
                    assert!(!b.matches(t) || a.matches(t), "{a} covers {b}, misses {t}");
                }
                for c in &patterns {
                    assert!(
                        !b.covers(c) || a.covers(c),
                        "{a} > {b} > {c} not transitive"
                    );
                }
            }
            if a.covers(b) && b.covers(a) {
                assert_eq!(a, b);
            }
        }
    }
}

/// Token extraction: the request's query string on line 1 (`-` alone: no query), the
/// cookie name on line 2 (empty: none), then headers as `name: value` lines.
pub fn credentials(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    let query_line = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let query = (query_line != "-").then_some(query_line.as_str());
    let cookie_line = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let cookie = (!cookie_line.is_empty()).then_some(cookie_line.as_str());
    let mut headers = HeaderMap::new();
    for line in lines.take(64) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }

    match credentials::find(query, &headers, cookie) {
        Presented::Token(candidates) => {
            assert!((1..=2).contains(&candidates.len()));
            assert!(!candidates.iter().all(String::is_empty));
            assert!(candidates.iter().all(|c| c.len() <= MAX_TOKEN_BYTES));
            if candidates.len() == 2 {
                assert_ne!(candidates[0], candidates[1]);
            }
        }
        Presented::Malformed(why) => assert!(!why.is_empty()),
        Presented::Missing => {
            assert!(query.is_none_or(|q| !q.split('&').any(|p| p
                .split_once('=')
                .unwrap_or((p, ""))
                .0
                == "token")));
            assert!(headers.get("authorization").is_none());
        }
    }

    let offered: Vec<&str> = credentials::subprotocols(&headers).collect();
    for entry in &offered {
        assert!(!entry.is_empty() && !entry.contains(',') && entry.trim() == *entry);
    }
    for default in [DefaultProtocol::Wamp1, DefaultProtocol::Native] {
        let (_, echoed) = negotiate(&offered, default);
        if let Some(name) = echoed {
            assert!(offered.contains(&name));
            assert!(
                !name.starts_with(BEARER_SUBPROTOCOL_PREFIX),
                "a token echoed"
            );
        }
    }

    if let Some(query) = query {
        check_redaction(query);
    }
}

/// The redacted query keeps every other parameter and shows no `token` value.
fn check_redaction(query: &str) {
    let redacted = credentials::redact_query(query);
    let pairs: Vec<&str> = query.split('&').collect();
    let out: Vec<&str> = redacted.split('&').collect();
    assert_eq!(pairs.len(), out.len(), "{query:?} → {redacted:?}");
    let mut kept = Vec::new();
    for (pair, shown) in pairs.iter().zip(&out) {
        match pair.split_once('=') {
            Some(("token", _)) => assert_eq!(*shown, "token=REDACTED"),
            _ => {
                assert_eq!(pair, shown);
                kept.push(*pair);
            }
        }
    }
    // No token value shows, unless the same text is also part of another parameter
    // (or of the placeholder).
    for pair in &pairs {
        if let Some(("token", value)) = pair.split_once('=') {
            let elsewhere =
                "token=REDACTED".contains(value) || kept.iter().any(|k| k.contains(value));
            if !elsewhere {
                assert!(!redacted.contains(value), "{value:?} shows in {redacted:?}");
            }
        }
    }
}

/// Configuration: a TOML document as the configuration file, then `load` + `validate`.
/// After a line `#--env--`, each line `NAME=value` is an environment variable.
/// An accepted configuration must validate, and its `check-config` printout must read
/// back to the same configuration.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml, env_text) = text.split_once("\n#--env--\n").unwrap_or((text, ""));
    let env: Vec<(OsString, OsString)> = env_text
        .lines()
        .take(32)
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.into(), value.into()))
        .collect();
    let path = Path::new("fuzz.toml");
    let loaded = match load_text(path, toml, env, &Overrides::default()) {
        Ok(loaded) => loaded,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    assert!(loaded.config.validate().is_ok());
    let printed = loaded.render_effective();
    let again = match load_text(path, &printed, [], &Overrides::default()) {
        Ok(again) => again,
        Err(error) => panic!("the printout does not read back ({error}):\n{printed}"),
    };
    let mut expected = loaded.config.clone();
    if let (Some(jwt), Some(read)) = (&mut expected.auth.jwt, &again.config.auth.jwt) {
        if jwt.secret.is_some() {
            jwt.secret.clone_from(&read.secret); // printed redacted
        }
    }
    if let Some(cluster) = &mut expected.cluster {
        // Printed with its password redacted, which reads back as that text.
        cluster.redis = RedisAddress::redacted(&cluster.redis);
    }
    assert_eq!(
        again.config, expected,
        "the printout reads back differently:\n{printed}"
    );
}
