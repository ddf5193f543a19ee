//! The native session: every request kind, all-or-nothing subscribes, the limit,
//! resume, refusals and the error budget, asserted on the exact frames.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::protocol::close::Close;
use crate::protocol::session::test_support::*;
use crate::protocol::session::ERROR_WINDOW;

fn session(patterns: &[&str], max_subscriptions: usize) -> NativeSession {
    NativeSession::new(grant(patterns), &settings(max_subscriptions), NAME.into())
}

fn subscribed(topics: &[&str], reference: Option<serde_json::Value>) -> Action {
    send(native::subscribed(
        &self::patterns(topics),
        None,
        reference.as_ref(),
    ))
}

fn error(code: &str, message: &str, reference: Option<serde_json::Value>) -> Action {
    let mut frame = json!({"type": "error", "code": code, "message": message});
    if let Some(reference) = reference {
        frame["ref"] = reference;
    }
    send(frame.to_string())
}

#[test]
fn opening_sends_the_welcome_with_name_and_heartbeat() {
    let mut session = session(&["*"], 10);
    assert_eq!(
        session.opened(),
        [send(
            r#"{"type":"welcome","session":"00112233aabbccdd","heartbeat":25}"#
        )]
    );
}

#[test]
fn subscribe_subscribes_the_new_patterns_then_answers() {
    let mut session = session(&["*"], 10);
    let answer = session.on_text(
        r#"{"type":"subscribe","topics":["a","b:1"],"ref":1}"#,
        now(),
    );
    assert_eq!(
        answer,
        [
            Action::Subscribe(patterns(&["a", "b:1"])),
            send(r#"{"type":"subscribed","topics":["a","b:1"],"ref":1}"#),
        ]
    );
    assert_eq!(sorted(session.subscriptions.iter()), ["a", "b:1"]);
}

#[test]
fn a_pattern_held_or_asked_twice_is_subscribed_once() {
    let mut session = session(&["*"], 10);
    session.on_text(r#"{"type":"subscribe","topics":["a"]}"#, now());
    let answer = session.on_text(
        r#"{"type":"subscribe","topics":["a","c","c","a"],"ref":null}"#,
        now(),
    );
    assert_eq!(
        answer,
        [
            Action::Subscribe(patterns(&["c"])),
            subscribed(&["a", "c", "c", "a"], Some(json!(null))),
        ]
    );
    // Only held patterns: nothing to subscribe, still answered.
    let answer = session.on_text(r#"{"type":"subscribe","topics":["c"]}"#, now());
    assert_eq!(answer, [subscribed(&["c"], None)]);
    assert_eq!(sorted(session.subscriptions.iter()), ["a", "c"]);
}

#[test]
fn forbidden_patterns_are_all_named_and_nothing_is_subscribed() {
    let mut session = session(&["a", "b:*"], 10);
    let answer = session.on_text(
        r#"{"type":"subscribe","topics":["a:1","c","b","b:2","d"],"ref":"x"}"#,
        now(),
    );
    assert_eq!(
        answer,
        [
            Action::Refused("subscribe"),
            error(
                "forbidden",
                "the token does not permit: c, b, d",
                Some(json!("x"))
            ),
        ]
    );
    assert!(session.subscriptions.is_empty());
}

#[test]
fn forbidden_is_checked_before_the_limit() {
    let mut session = session(&["a"], 0);
    let answer = session.on_text(r#"{"type":"subscribe","topics":["b"]}"#, now());
    assert_eq!(
        answer,
        [
            Action::Refused("subscribe"),
            error("forbidden", "the token does not permit: b", None),
        ]
    );
}

#[test]
fn the_limit_counts_only_patterns_new_to_the_session() {
    let mut session = session(&["*"], 2);
    // Exactly reached.
    let answer = session.on_text(r#"{"type":"subscribe","topics":["a","b","a"]}"#, now());
    assert_eq!(answer[0], Action::Subscribe(patterns(&["a", "b"])));
    // One more is too many, all or nothing: `a` is held, `c` is not.
    let too_many = [
        Action::Refused("subscribe"),
        error(
            "too_many_subscriptions",
            "at most 2 subscriptions per connection",
            Some(json!(7)),
        ),
    ];
    for text in [
        r#"{"type":"subscribe","topics":["c"],"ref":7}"#,
        r#"{"type":"subscribe","topics":["a","c"],"ref":7}"#,
        r#"{"type":"subscribe","topics":["c"],"since":"1-1","ref":7}"#,
    ] {
        assert_eq!(session.on_text(text, now()), too_many, "{text}");
    }
    assert_eq!(sorted(session.subscriptions.iter()), ["a", "b"]);
    // Held patterns may be subscribed again at the limit.
    let answer = session.on_text(r#"{"type":"subscribe","topics":["b","a"]}"#, now());
    assert_eq!(answer, [subscribed(&["b", "a"], None)]);
    // After an unsubscribe there is room again.
    session.on_text(r#"{"type":"unsubscribe","topics":["a"]}"#, now());
    let answer = session.on_text(r#"{"type":"subscribe","topics":["c"]}"#, now());
    assert_eq!(answer[0], Action::Subscribe(patterns(&["c"])));
}

#[test]
fn a_limit_over_one_subscribe_refuses_it_whole() {
    let mut session = session(&["*"], 2);
    let answer = session.on_text(r#"{"type":"subscribe","topics":["a","b","c"]}"#, now());
    assert_eq!(answer[0], Action::Refused("subscribe"));
    assert!(session.subscriptions.is_empty());
}

#[test]
fn since_resumes_and_the_answer_comes_with_the_replay() {
    let mut session = session(&["*"], 10);
    session.on_text(r#"{"type":"subscribe","topics":["a"]}"#, now());
    let answer = session.on_text(
        r#"{"type":"subscribe","topics":["b","a"],"since":"9-1","ref":2}"#,
        now(),
    );
    assert_eq!(
        answer,
        [Action::Resume {
            patterns: patterns(&["b"]),
            already: patterns(&["a"]),
            since: "9-1".into(),
        }]
    );
    // Held from the Resume on.
    assert_eq!(sorted(session.subscriptions.iter()), ["a", "b"]);
    let replay = vec![event("b:1", "9-2", r#"{"x":1}"#), event("b", "9-3", "2")];
    assert_eq!(
        session.resumed(Some(replay)),
        [
            send(r#"{"type":"subscribed","topics":["b","a"],"recovered":true,"ref":2}"#),
            send(r#"{"type":"event","topic":"b:1","id":"9-2","data":{"x":1}}"#),
            send(r#"{"type":"event","topic":"b","id":"9-3","data":2}"#),
        ]
    );
    assert_eq!(session.resumed(Some(Vec::new())), [], "nothing pending");
}

#[test]
fn an_unknown_since_is_not_recovered_and_still_subscribes() {
    let mut session = session(&["*"], 10);
    let answer = session.on_text(
        r#"{"type":"subscribe","topics":["a"],"since":"gone","ref":null}"#,
        now(),
    );
    assert_eq!(
        answer,
        [Action::Resume {
            patterns: patterns(&["a"]),
            already: Vec::new(),
            since: "gone".into(),
        }]
    );
    assert_eq!(
        session.resumed(None),
        [send(
            r#"{"type":"subscribed","topics":["a"],"recovered":false,"ref":null}"#
        )]
    );
    // An empty replay of a known id is recovered.
    let answer = session.on_text(
        r#"{"type":"subscribe","topics":["b"],"since":"1-1"}"#,
        now(),
    );
    assert!(matches!(&answer[..], [Action::Resume { .. }]));
    assert_eq!(
        session.resumed(Some(Vec::new())),
        [send(
            r#"{"type":"subscribed","topics":["b"],"recovered":true}"#
        )]
    );
}

#[test]
fn since_with_every_pattern_held_still_asks_for_the_replay() {
    let mut session = session(&["*"], 1);
    session.on_text(r#"{"type":"subscribe","topics":["a"]}"#, now());
    let answer = session.on_text(
        r#"{"type":"subscribe","topics":["a"],"since":"1-1"}"#,
        now(),
    );
    assert_eq!(
        answer,
        [Action::Resume {
            patterns: Vec::new(),
            already: patterns(&["a"]),
            since: "1-1".into(),
        }]
    );
}

#[test]
fn unsubscribe_drops_what_is_held_and_answers_every_pattern_asked() {
    let mut session = session(&["*"], 10);
    session.on_text(r#"{"type":"subscribe","topics":["a","b"]}"#, now());
    let answer = session.on_text(
        r#"{"type":"unsubscribe","topics":["a","z","a"],"ref":3}"#,
        now(),
    );
    assert_eq!(
        answer,
        [
            Action::Unsubscribe(patterns(&["a"])),
            send(r#"{"type":"unsubscribed","topics":["a","z","a"],"ref":3}"#),
        ]
    );
    assert_eq!(sorted(session.subscriptions.iter()), ["b"]);
    // Nothing held: no error, no hub work.
    let answer = session.on_text(r#"{"type":"unsubscribe","topics":["z"]}"#, now());
    assert_eq!(answer, [send(r#"{"type":"unsubscribed","topics":["z"]}"#)]);
}

#[test]
fn bad_and_unsupported_requests_are_answered_and_counted() {
    let cases = [
        ("not json", "malformed"),
        ("[1]", "malformed"),
        (r#"{"topics":["a"],"ref":1}"#, "malformed"),
        (r#"{"type":"subscribe","topics":[],"ref":1}"#, "malformed"),
        (r#"{"type":"subscribe","topics":["a b"]}"#, "malformed"),
        (
            r#"{"type":"subscribe","topics":["a"],"since":5}"#,
            "malformed",
        ),
        (
            r#"{"type":"publish","topic":"a","ref":{"k":1}}"#,
            "unsupported",
        ),
    ];
    for (text, label) in cases {
        let mut session = session(&["*"], 10);
        let expected = native::error(&native::parse_request(text).unwrap_err());
        assert_eq!(
            session.on_text(text, now()),
            [Action::Refused(label), send(expected)],
            "{text}"
        );
        assert!(session.subscriptions.is_empty());
    }
    let mut session = session(&["*"], 10);
    assert_eq!(
        session.on_text(r#"{"type":"publish","ref":5}"#, now()),
        [
            Action::Refused("unsupported"),
            error(
                "unsupported",
                r#"type "publish" is not supported: use "subscribe" or "unsubscribe""#,
                Some(json!(5))
            ),
        ]
    );
}

#[test]
fn labels_follow_the_error_code() {
    assert_eq!(native_action(ErrorCode::Forbidden), "subscribe");
    assert_eq!(native_action(ErrorCode::TooManySubscriptions), "subscribe");
    assert_eq!(native_action(ErrorCode::BadRequest), "malformed");
    assert_eq!(native_action(ErrorCode::Unsupported), "unsupported");
}

#[test]
fn ten_refusals_within_a_minute_are_fine_the_eleventh_closes() {
    let mut session = session(&["a"], 1);
    let start = now();
    let refusals = [
        "nope",
        r#"{"type":"subscribe","topics":["b"]}"#,
        r#"{"type":"ping"}"#,
    ];
    for i in 0..10 {
        let answer = session.on_text(refusals[i % 3], start + Duration::from_secs(i as u64));
        assert_eq!(answer.len(), 2, "refusal {i}: {answer:?}");
        // Successful requests in between cost nothing.
        let answer = session.on_text(r#"{"type":"subscribe","topics":["a"]}"#, start);
        assert!(matches!(answer.last(), Some(Action::Send(_))));
    }
    let answer = session.on_text("nope", start + Duration::from_secs(59));
    let expected = native::error(&native::parse_request("nope").unwrap_err());
    assert_eq!(
        answer,
        [
            Action::Refused("malformed"),
            send(expected),
            Action::Close(Close::TooManyErrors),
        ]
    );
    // Closed: whatever comes next is not handled.
    assert_eq!(
        session.on_text(r#"{"type":"unsubscribe","topics":["a"]}"#, start),
        []
    );
    assert_eq!(session.on_text("nope", start), []);
    assert_eq!(
        sorted(session.subscriptions.iter()),
        ["a"],
        "still to unsubscribe"
    );
}

#[test]
fn errors_older_than_the_window_are_forgotten() {
    let mut session = session(&["*"], 10);
    let start = now();
    for i in 0..10 {
        assert_eq!(
            session.on_text("x", start + Duration::from_secs(i)).len(),
            2
        );
    }
    // Ten more, each when the oldest of the last ten is just over a minute old.
    for i in 0..10 {
        let at = start + ERROR_WINDOW + Duration::from_secs(i) + Duration::from_millis(1);
        assert_eq!(
            session.on_text("x", at).len(),
            2,
            "error {i} after the window"
        );
    }
    // An error exactly a minute old still counts: eleven within the window.
    let at = start + ERROR_WINDOW * 2 + Duration::from_millis(1);
    assert_eq!(
        session.on_text("x", at).last(),
        Some(&Action::Close(Close::TooManyErrors))
    );
}

#[test]
fn a_clock_that_goes_back_does_not_panic() {
    let mut session = session(&["*"], 10);
    let start = now() + Duration::from_secs(3600);
    session.on_text("x", start);
    assert_eq!(
        session.on_text("x", start - Duration::from_secs(120)).len(),
        2
    );
}
