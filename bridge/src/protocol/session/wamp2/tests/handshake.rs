//! HELLO with a token and by ticket (welcome, denial, missing), messages out of
//! order, GOODBYE/ABORT, violations, and `farewell`.

use super::*;
use crate::auth::{Credential, Denied};

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
