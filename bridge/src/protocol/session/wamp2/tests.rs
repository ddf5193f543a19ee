//! The WAMP v2 session: HELLO with a token and by ticket (welcome, denial, missing),
//! messages out of order, SUBSCRIBE/UNSUBSCRIBE with their routes and hub patterns,
//! the refusals, GOODBYE/ABORT, the error budget, `farewell` and `holds`.

use std::time::Duration;

use super::*;
use crate::auth::{Credential, Denied};
use crate::protocol::session::test_support::*;
use crate::protocol::session::ERROR_WINDOW;

const SESSION: u64 = 4_242_424_242;

fn session(patterns: &[&str], max_subscriptions: usize) -> Wamp2Session {
    Wamp2Session::new(grant(patterns), &settings(max_subscriptions), SESSION)
}

/// A session past HELLO, holding a grant for `patterns`.
fn established(patterns: &[&str], max_subscriptions: usize) -> Wamp2Session {
    let mut session = session(patterns, max_subscriptions);
    let answer = session.on_text(r#"[1,"realm1",{}]"#, now());
    assert!(matches!(&answer[..], [Action::Send(_)]), "{answer:?}");
    session
}

fn pending() -> Wamp2Session {
    Wamp2Session::new(Grant::pending(), &settings(10), SESSION)
}

const WELCOME: &str =
    r#"[2,4242424242,{"roles":{"broker":{"features":{"pattern_based_subscription":true}}}}]"#;

fn violation(message: &str) -> Vec<Action> {
    vec![
        Action::Refused("malformed"),
        send(wamp2::abort(wamp2::ERROR_PROTOCOL_VIOLATION, message)),
        Action::Close(Close::Wamp2Violation),
    ]
}

fn id(pattern_text: &str, match_: Match) -> u64 {
    wamp2::subscription_id(&pattern(pattern_text), match_)
}

fn add_route(pattern_text: &str, match_: Match) -> Action {
    Action::AddRoute {
        pattern: pattern(pattern_text),
        match_,
        id: id(pattern_text, match_),
    }
}

fn remove_route(pattern_text: &str, match_: Match) -> Action {
    Action::RemoveRoute {
        pattern: pattern(pattern_text),
        id: id(pattern_text, match_),
    }
}

#[test]
fn hello_with_a_token_is_welcomed_at_once() {
    let mut session = session(&["*"], 10);
    assert_eq!(
        session.on_text(r#"[1,"realm1",{}]"#, now()),
        [send(WELCOME)]
    );
    // With an authid, and even when the client offers a ticket: the token was enough.
    let mut session = self::session(&["a"], 10);
    assert_eq!(
        session.on_text(
            r#"[1,"any.realm",{"authmethods":["ticket"],"authid":"joe"}]"#,
            now()
        ),
        [send(
            r#"[2,4242424242,{"roles":{"broker":{"features":{"pattern_based_subscription":true}}},"authid":"joe"}]"#
        )]
    );
    assert!(session.farewell(Close::GoingAway).is_some(), "established");
}

#[test]
fn a_ticket_is_challenged_checked_and_welcomed() {
    let mut session = pending();
    assert_eq!(
        session.on_text(
            r#"[1,"realm1",{"authmethods":["wampcra","ticket"],"authid":"joe"}]"#,
            now()
        ),
        [send(r#"[4,"ticket",{}]"#)]
    );
    assert_eq!(
        session.on_text(r#"[5,"secret!!!",{}]"#, now()),
        [Action::Authenticate("secret!!!".into())]
    );
    let mut ticket_grant = grant(&["article"]);
    ticket_grant.credential = Credential::Static([7; 32]);
    assert_eq!(
        session.authenticated(Ok(ticket_grant)),
        [send(
            r#"[2,4242424242,{"roles":{"broker":{"features":{"pattern_based_subscription":true}}},"authid":"joe","authrole":"subscriber","authmethod":"ticket","authprovider":"push-bridge"}]"#
        )]
    );
    assert_eq!(session.grant.credential, Credential::Static([7; 32]));
    assert_eq!(&*session.grant.patterns, patterns(&["article"]));
    // The ticket's grant decides from now on.
    let answer = session.on_text(r#"[32,1,{},"article.42"]"#, now());
    assert_eq!(
        answer.last(),
        Some(&send(wamp2::subscribed(1, id("article:42", Match::Exact))))
    );
    let answer = session.on_text(r#"[32,2,{},"other"]"#, now());
    assert_eq!(answer[0], Action::Refused("subscribe"));
    // Answered once only.
    assert_eq!(session.authenticated(Ok(grant(&["*"]))), []);
    assert_eq!(&*session.grant.patterns, patterns(&["article"]));
}

#[test]
fn a_ticket_without_authid_is_welcomed_without_one() {
    let mut session = pending();
    session.on_text(r#"[1,"realm1",{"authmethods":["ticket"]}]"#, now());
    session.on_text(r#"[5,"t",{}]"#, now());
    assert_eq!(
        session.authenticated(Ok(grant(&["*"]))),
        [send(wamp2::welcome(SESSION, None, Some("ticket")))]
    );
}

#[test]
fn a_denied_ticket_aborts_and_closes() {
    let mut session = pending();
    session.on_text(r#"[1,"realm1",{"authmethods":["ticket"]}]"#, now());
    assert_eq!(
        session.on_text(r#"[5,"wrong",{}]"#, now()),
        [Action::Authenticate("wrong".into())]
    );
    assert_eq!(
        session.authenticated(Err(Denied::Unknown)),
        [
            Action::AuthFailed("unknown_token"),
            send(r#"[3,{"message":"the token is not valid"},"wamp.error.authentication_denied"]"#),
            Action::Close(Close::AuthAborted),
        ]
    );
    assert_eq!(session.on_text(r#"[6,{},"wamp.close.normal"]"#, now()), []);
    assert_eq!(session.farewell(Close::GoingAway), None);
}

#[test]
fn every_denial_reason_is_counted() {
    for denied in [
        Denied::NoTopics,
        Denied::Unavailable("introspection_timeout"),
    ] {
        let mut session = pending();
        session.on_text(r#"[1,"r",{"authmethods":["ticket"]}]"#, now());
        session.on_text(r#"[5,"t",{}]"#, now());
        let answer = session.authenticated(Err(denied.clone()));
        assert_eq!(answer[0], Action::AuthFailed(denied.reason()));
        assert_eq!(
            answer[1],
            send(wamp2::abort(
                wamp2::ERROR_AUTHENTICATION_DENIED,
                &denied.message()
            ))
        );
    }
}

#[test]
fn hello_without_token_or_ticket_is_aborted() {
    for details in [
        "{}",
        r#"{"authmethods":["wampcra","anonymous"]}"#,
        r#"{"authmethods":null}"#,
    ] {
        let mut session = pending();
        assert_eq!(
            session.on_text(&format!(r#"[1,"realm1",{details}]"#), now()),
            [
                Action::AuthFailed("missing_token"),
                send(
                    r#"[3,{"message":"pass a token: ?token=… in the URL, or the ticket auth method"},"wamp.error.authentication_required"]"#
                ),
                Action::Close(Close::AuthAborted),
            ],
            "{details}"
        );
        assert_eq!(
            session.on_text(r#"[1,"realm1",{"authmethods":["ticket"]}]"#, now()),
            []
        );
    }
}

#[test]
fn messages_out_of_order_are_violations() {
    let out_of_order = violation(OUT_OF_ORDER);
    // Before HELLO.
    for text in [
        r#"[5,"t",{}]"#,
        r#"[32,1,{},"a"]"#,
        r#"[34,1,2]"#,
        r#"[16,1,{},"a"]"#,
        r#"[48,1,{},"p"]"#,
        r#"[32,1,{"match":"regex"},"a"]"#,
    ] {
        assert_eq!(
            session(&["*"], 10).on_text(text, now()),
            out_of_order,
            "{text}"
        );
    }
    // A second HELLO, an AUTHENTICATE nobody asked for.
    for text in [r#"[1,"realm1",{}]"#, r#"[5,"t",{}]"#] {
        assert_eq!(
            established(&["*"], 10).on_text(text, now()),
            out_of_order,
            "{text}"
        );
    }
    // While challenged: anything but AUTHENTICATE (or GOODBYE, ABORT, ignored ones).
    for text in [r#"[1,"realm1",{}]"#, r#"[32,1,{},"a"]"#] {
        let mut session = pending();
        session.on_text(r#"[1,"r",{"authmethods":["ticket"]}]"#, now());
        assert_eq!(session.on_text(text, now()), out_of_order, "{text}");
    }
}

#[test]
fn a_frame_while_the_ticket_is_checked_is_out_of_order() {
    let mut session = pending();
    session.on_text(r#"[1,"r",{"authmethods":["ticket"]}]"#, now());
    session.on_text(r#"[5,"t",{}]"#, now());
    assert_eq!(
        session.on_text(r#"[5,"t",{}]"#, now()),
        violation(OUT_OF_ORDER)
    );
    assert_eq!(
        session.authenticated(Ok(grant(&["*"]))),
        [],
        "closed meanwhile"
    );
}

#[test]
fn goodbye_is_answered_abort_closes_ignored_ones_are_ignored() {
    for (prepare, phase) in [
        (None, "before HELLO"),
        (Some(r#"[1,"r",{"authmethods":["ticket"]}]"#), "challenged"),
        (Some(r#"[1,"r",{}]"#), "established"),
    ] {
        let fresh = || {
            let grant: &[&str] = if phase == "challenged" { &[] } else { &["*"] };
            let mut session = session(grant, 10);
            if let Some(text) = prepare {
                session.on_text(text, now());
            }
            session
        };
        for ignored in [
            r#"[49,7,{}]"#,
            r#"[70,8,{}]"#,
            r#"[8,48,3,{},"wamp.error.x"]"#,
        ] {
            assert_eq!(fresh().on_text(ignored, now()), [], "{phase}: {ignored}");
        }
        assert_eq!(
            fresh().on_text(r#"[6,{},"wamp.close.close_realm"]"#, now()),
            [
                send(r#"[6,{},"wamp.close.goodbye_and_out"]"#),
                Action::Close(Close::Goodbye)
            ],
            "{phase}"
        );
        let mut session = fresh();
        assert_eq!(
            session.on_text(
                r#"[3,{"message":"no"},"wamp.error.cannot_authenticate"]"#,
                now()
            ),
            [Action::Close(Close::ClientAborted)],
            "{phase}"
        );
        assert_eq!(session.on_text(r#"[6,{},"x"]"#, now()), [], "closed");
    }
}

#[test]
fn malformed_frames_abort_with_the_violation() {
    for text in [
        "not json",
        "{}",
        "[]",
        r#"[2,1,{}]"#,
        r#"[999]"#,
        r#"[32,0,{},"a"]"#,
        r#"[32,1,[],"a"]"#,
        r#"[1,"r",{"authmethods":"ticket"}]"#,
    ] {
        let message = wamp2::parse(text).unwrap_err().to_string();
        for mut session in [session(&["*"], 10), established(&["*"], 10)] {
            assert_eq!(session.on_text(text, now()), violation(&message), "{text}");
            assert_eq!(session.on_text(r#"[32,1,{},"a"]"#, now()), [], "closed");
        }
    }
}

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
        [send(format!(
            r#"[8,34,7,{{}},"wamp.error.no_such_subscription"]"#
        ))]
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

#[test]
fn farewell_only_for_a_shutdown_of_an_established_session() {
    let established = established(&["*"], 10);
    assert_eq!(
        established.farewell(Close::GoingAway).as_deref(),
        Some(r#"[6,{},"wamp.close.system_shutdown"]"#)
    );
    for close in Close::ALL {
        if close != Close::GoingAway {
            assert_eq!(established.farewell(close), None, "{close:?}");
        }
    }
    assert_eq!(session(&["*"], 10).farewell(Close::GoingAway), None);
    let mut challenged = pending();
    challenged.on_text(r#"[1,"r",{"authmethods":["ticket"]}]"#, now());
    assert_eq!(challenged.farewell(Close::GoingAway), None);
}
