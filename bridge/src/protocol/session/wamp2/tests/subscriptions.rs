//! SUBSCRIBE and UNSUBSCRIBE: routes and hub patterns, ids, the refusals, the limit,
//! the error budget and `holds`.

use std::time::Duration;

use super::*;
use crate::protocol::session::ERROR_WINDOW;

#[test]
fn subscriptions_add_routes_and_hold_their_pattern() {
    let mut session = established(&["*"], 10);
    let exact = id("article:42", Match::Exact);
    let prefix = id("article:42", Match::Prefix);
    assert_ne!(exact, prefix);
    assert_eq!(
        session.on_text(r#"[32,1,{},"article.42"]"#, now()),
        [
            add_route("article:42", Match::Exact),
            Action::Subscribe(patterns(&["article:42"])),
            send(wamp2::subscribed(1, exact)),
        ]
    );
    // A second policy on the same pattern: a route, no new hub subscription.
    assert_eq!(
        session.on_text(r#"[32,2,{"match":"prefix"},"article.42"]"#, now()),
        [
            add_route("article:42", Match::Prefix),
            send(wamp2::subscribed(2, prefix)),
        ]
    );
    // The same subscription again: its id, nothing else.
    assert_eq!(
        session.on_text(r#"[32,3,{"match":"exact"},"article.42"]"#, now()),
        [send(wamp2::subscribed(3, exact))]
    );
    assert_eq!(
        session.on_text(r#"[32,4,{"match":"wildcard"},"tenant..article"]"#, now()),
        [
            add_route("tenant:*:article", Match::Wildcard),
            Action::Subscribe(patterns(&["tenant:*:article"])),
            send(wamp2::subscribed(
                4,
                id("tenant:*:article", Match::Wildcard)
            )),
        ]
    );
    assert_eq!(
        sorted(session.routes.keys()),
        ["article:42", "tenant:*:article"]
    );
    assert!(session.holds(exact) && session.holds(prefix));
    assert!(!session.holds(id("article:42", Match::Wildcard)));

    // Unsubscribing keeps the pattern while another subscription is on it.
    assert_eq!(
        session.on_text(&format!("[34,5,{exact}]"), now()),
        [remove_route("article:42", Match::Exact), send("[35,5]")]
    );
    assert!(!session.holds(exact) && session.holds(prefix));
    assert_eq!(
        session.on_text(&format!("[34,6,{prefix}]"), now()),
        [
            Action::Unsubscribe(patterns(&["article:42"])),
            remove_route("article:42", Match::Prefix),
            send("[35,6]"),
        ]
    );
    assert!(!session.holds(prefix));
    assert_eq!(sorted(session.routes.keys()), ["tenant:*:article"]);
    // Gone: no such subscription, not counted.
    assert_eq!(
        session.on_text(&format!("[34,7,{prefix}]"), now()),
        [send(r#"[8,34,7,{},"wamp.error.no_such_subscription"]"#)]
    );
}

#[test]
fn ids_are_the_same_in_every_session() {
    let mut one = established(&["*"], 10);
    let mut other = established(&["a"], 10);
    let text = r#"[32,9,{"match":"prefix"},"a.b"]"#;
    assert_eq!(one.on_text(text, now()), other.on_text(text, now()));
}

#[test]
fn subscribe_refusals_are_errors_counted() {
    let mut session = established(&["a", "b:*"], 10);
    for (text, uri) in [
        (r#"[32,1,{},"a:b"]"#, "wamp.error.invalid_uri"),
        (r#"[32,2,{},"a..b"]"#, "wamp.error.invalid_uri"),
        (r#"[32,3,{},""]"#, "wamp.error.invalid_uri"),
        (
            r#"[32,4,{"match":"prefix"},"c"]"#,
            "wamp.error.not_authorized",
        ),
        (r#"[32,5,{},"b"]"#, "wamp.error.not_authorized"),
        (
            r#"[32,6,{"match":"wildcard"},".x"]"#,
            "wamp.error.not_authorized",
        ),
    ] {
        let request: u64 = text[4..5].parse().unwrap();
        assert_eq!(
            session.on_text(text, now()),
            [
                Action::Refused("subscribe"),
                send(wamp2::error(wamp2::SUBSCRIBE, request, uri))
            ],
            "{text}"
        );
    }
    assert!(session.routes.is_empty());
}

#[test]
fn the_limit_counts_subscriptions_and_refuses_even_a_repeat() {
    let mut session = established(&["*"], 2);
    session.on_text(r#"[32,1,{},"a"]"#, now());
    // Exactly reached, by a second subscription on the same pattern.
    let answer = session.on_text(r#"[32,2,{"match":"prefix"},"a"]"#, now());
    assert_eq!(
        answer.last(),
        Some(&send(wamp2::subscribed(2, id("a", Match::Prefix))))
    );
    let refused = |request| {
        vec![
            Action::Refused("subscribe"),
            send(wamp2::error(
                wamp2::SUBSCRIBE,
                request,
                wamp2::ERROR_NOT_AUTHORIZED,
            )),
        ]
    };
    assert_eq!(session.on_text(r#"[32,3,{},"b"]"#, now()), refused(3));
    // As the bridge always did: at the limit, a subscription held is refused too.
    assert_eq!(session.on_text(r#"[32,4,{},"a"]"#, now()), refused(4));
    assert_eq!(sorted(session.routes.keys()), ["a"]);
    // Room again after an unsubscribe.
    session.on_text(&format!("[34,5,{}]", id("a", Match::Exact)), now());
    let answer = session.on_text(r#"[32,6,{},"b"]"#, now());
    assert_eq!(answer[1], Action::Subscribe(patterns(&["b"])));
}

#[test]
fn other_requests_are_refused_the_wamp_way() {
    let mut session = established(&["*"], 10);
    for (text, label, frame) in [
        (
            r#"[16,239714735,{},"com.myapp.mytopic1",["Hello, world!"]]"#,
            "publish",
            None,
        ),
        (
            r#"[16,2,{"acknowledge":true},"t"]"#,
            "publish",
            Some(r#"[8,16,2,{},"wamp.error.not_authorized"]"#),
        ),
        (
            r#"[48,3,{},"com.proc"]"#,
            "call",
            Some(r#"[8,48,3,{},"wamp.error.no_such_procedure"]"#),
        ),
        (
            r#"[64,4,{},"com.proc"]"#,
            "register",
            Some(r#"[8,64,4,{},"wamp.error.not_authorized"]"#),
        ),
        (
            r#"[66,5,6]"#,
            "register",
            Some(r#"[8,66,5,{},"wamp.error.no_such_registration"]"#),
        ),
        (
            r#"[32,7,{"match":"regex"},"a"]"#,
            "malformed",
            Some(r#"[8,32,7,{},"wamp.error.invalid_argument"]"#),
        ),
    ] {
        let mut expected = vec![Action::Refused(label)];
        expected.extend(frame.map(send));
        assert_eq!(session.on_text(text, now()), expected, "{text}");
    }
}

#[test]
fn the_eleventh_refusal_within_a_minute_closes_after_its_frame() {
    let mut session = established(&["a"], 10);
    let start = now();
    for i in 0..10 {
        let at = start + Duration::from_secs(i);
        let answer = session.on_text(r#"[16,1,{},"t"]"#, at);
        assert_eq!(answer, [Action::Refused("publish")]);
        // Not refusals: cost nothing.
        session.on_text(r#"[34,1,1]"#, at);
        session.on_text(r#"[49,7,{}]"#, at);
    }
    assert_eq!(
        session.on_text(r#"[32,9,{},"b"]"#, start + Duration::from_secs(59)),
        [
            Action::Refused("subscribe"),
            send(wamp2::error(
                wamp2::SUBSCRIBE,
                9,
                wamp2::ERROR_NOT_AUTHORIZED
            )),
            Action::Close(Close::TooManyErrors),
        ]
    );
    assert_eq!(session.on_text(r#"[32,10,{},"a"]"#, start), []);
    // The bridge's own shutdown after that still says goodbye: WELCOME was sent.
    assert!(session.farewell(Close::GoingAway).is_some());
}

#[test]
fn errors_older_than_the_window_are_forgotten() {
    let mut session = established(&["*"], 10);
    let start = now();
    for i in 0..30u32 {
        let at = start + (ERROR_WINDOW / 10 + Duration::from_millis(1)) * i;
        assert_eq!(session.on_text(r#"[48,1,{},"p"]"#, at).len(), 2, "call {i}");
    }
}
