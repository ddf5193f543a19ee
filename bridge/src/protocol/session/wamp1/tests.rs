//! The WAMP v1 session: WELCOME, PREFIX, SUBSCRIBE/UNSUBSCRIBE with CURIEs, the silent
//! but counted refusals, CALL and PUBLISH, malformed frames and the error budget.

use std::time::Duration;

use super::*;
use crate::protocol::session::test_support::*;
use crate::protocol::session::ERROR_WINDOW;

fn session(patterns: &[&str], max_subscriptions: usize) -> Wamp1Session {
    Wamp1Session::new(grant(patterns), &settings(max_subscriptions), NAME.into())
}

fn subscribe(pattern: &str) -> Action {
    Action::Subscribe(patterns(&[pattern]))
}

#[test]
fn opening_sends_the_welcome_with_name_and_server() {
    let mut session = session(&["*"], 10);
    assert_eq!(
        session.opened(),
        [send(r#"[0,"00112233aabbccdd",1,"push-bridge/test"]"#)]
    );
}

#[test]
fn subscribe_and_unsubscribe() {
    let mut session = session(&["*"], 10);
    assert_eq!(
        session.on_text(r#"[5,"package_created"]"#, now()),
        [subscribe("package_created")]
    );
    // Held already: nothing to do, nothing counted.
    assert_eq!(
        session.on_text(r#"[5, "package_created", "extra"]"#, now()),
        []
    );
    assert_eq!(
        session.on_text(r#"[5,"http://example.com/simple"]"#, now()),
        [subscribe("http://example.com/simple")]
    );
    assert_eq!(
        sorted(session.subscriptions.iter()),
        ["http://example.com/simple", "package_created"]
    );
    assert_eq!(
        session.on_text(r#"[6,"package_created"]"#, now()),
        [Action::Unsubscribe(patterns(&["package_created"]))]
    );
    // Not held, or not even a pattern: nothing, and no error.
    assert_eq!(session.on_text(r#"[6,"package_created"]"#, now()), []);
    assert_eq!(session.on_text(r#"[6,"a b"]"#, now()), []);
    assert_eq!(
        sorted(session.subscriptions.iter()),
        ["http://example.com/simple"]
    );
}

#[test]
fn prefixes_expand_subscribe_and_unsubscribe_topics() {
    let mut session = session(&["*"], 10);
    assert_eq!(
        session.on_text(r#"[1,"event","http://example.com/event#"]"#, now()),
        []
    );
    assert_eq!(
        session.on_text(r#"[5,"event:myevent1"]"#, now()),
        [subscribe("http://example.com/event#myevent1")]
    );
    // An unknown prefix leaves the topic as it is.
    assert_eq!(
        session.on_text(r#"[5,"other:x"]"#, now()),
        [subscribe("other:x")]
    );
    assert_eq!(
        session.on_text(r#"[6,"event:myevent1"]"#, now()),
        [Action::Unsubscribe(patterns(&[
            "http://example.com/event#myevent1"
        ]))]
    );
    // Redefined: the latest definition counts.
    session.on_text(r#"[1,"event","news:"]"#, now());
    assert_eq!(
        session.on_text(r#"[5,"event:42"]"#, now()),
        [subscribe("news:42")]
    );
}

#[test]
fn refused_subscribes_are_silent_but_counted() {
    let mut session = session(&["a", "b:*"], 2);
    for topic in ["a b", "", "c", "b", "*"] {
        assert_eq!(
            session.on_text(&format!("[5,{topic:?}]"), now()),
            [Action::Refused("subscribe")],
            "{topic}"
        );
    }
    session.on_text(r#"[5,"a"]"#, now());
    // Exactly at the limit.
    assert_eq!(session.on_text(r#"[5,"b:1"]"#, now()), [subscribe("b:1")]);
    assert_eq!(
        session.on_text(r#"[5,"b:2"]"#, now()),
        [Action::Refused("subscribe")]
    );
    // A held one is no new subscription, even at the limit.
    assert_eq!(session.on_text(r#"[5,"a"]"#, now()), []);
    assert_eq!(sorted(session.subscriptions.iter()), ["a", "b:1"]);
}

#[test]
fn calls_are_answered_with_callerror() {
    let mut session = session(&["*"], 10);
    assert_eq!(
        session.on_text(
            r#"[2,"7DK6TdN4wLiUJgNM","http://example.com/calc#add",23,99]"#,
            now()
        ),
        [
            Action::Refused("call"),
            send(
                r#"[4,"7DK6TdN4wLiUJgNM","http://push-bridge/error#unsupported","push-bridge is one-way: calls are not supported"]"#
            ),
        ]
    );
}

#[test]
fn publishes_are_dropped_and_counted() {
    let mut session = session(&["*"], 10);
    assert_eq!(
        session.on_text(r#"[7,"a",{"x":1}]"#, now()),
        [Action::Refused("publish")]
    );
    assert_eq!(
        session.on_text(r#"[7,"a",{"x":1},true]"#, now()),
        [Action::Refused("publish")]
    );
}

#[test]
fn a_malformed_frame_closes_with_1007_and_no_frame() {
    for text in [
        "not json",
        "{}",
        "[]",
        r#"["5","a"]"#,
        r#"[5]"#,
        r#"[5,1]"#,
        r#"[0,"s",1,"server"]"#,
        r#"[8,"a",1]"#,
        r#"[9,"a"]"#,
        r#"[7,"a"]"#,
    ] {
        let mut session = session(&["*"], 10);
        assert_eq!(
            session.on_text(text, now()),
            [
                Action::Refused("malformed"),
                Action::Close(Close::MalformedWamp1)
            ],
            "{text}"
        );
        assert_eq!(session.on_text(r#"[5,"a"]"#, now()), [], "closed");
    }
}

#[test]
fn the_eleventh_refusal_within_a_minute_closes_after_its_frame() {
    let mut session = session(&["a"], 10);
    let start = now();
    let refusals = [r#"[5,"b"]"#, r#"[7,"a",1]"#, r#"[2,"c","p"]"#];
    for i in 0..10 {
        let answer = session.on_text(refusals[i % 3], start + Duration::from_secs(i as u64));
        assert!(
            !answer.contains(&Action::Close(Close::TooManyErrors)),
            "{i}"
        );
    }
    assert_eq!(
        session.on_text(r#"[2,1,"p"]"#, start + Duration::from_secs(30)),
        [
            Action::Refused("call"),
            send(
                r#"[4,1,"http://push-bridge/error#unsupported","push-bridge is one-way: calls are not supported"]"#
            ),
            Action::Close(Close::TooManyErrors),
        ]
    );
    assert_eq!(session.on_text(r#"[5,"a"]"#, start), []);
}

#[test]
fn errors_older_than_the_window_are_forgotten() {
    let mut session = session(&["a"], 10);
    let start = now();
    for round in 0..3 {
        let at = start + (ERROR_WINDOW + Duration::from_secs(1)) * round;
        for _ in 0..10 {
            assert_eq!(
                session.on_text(r#"[5,"b"]"#, at),
                [Action::Refused("subscribe")]
            );
        }
    }
    let at = start + (ERROR_WINDOW + Duration::from_secs(1)) * 2;
    assert_eq!(
        session.on_text(r#"[7,"a",1]"#, at),
        [
            Action::Refused("publish"),
            Action::Close(Close::TooManyErrors)
        ]
    );
}
