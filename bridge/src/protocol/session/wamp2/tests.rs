//! The WAMP v2 session's tests: [`handshake`] (HELLO with a token and by ticket,
//! messages out of order, GOODBYE/ABORT, violations, `farewell`) and [`subscriptions`]
//! (SUBSCRIBE/UNSUBSCRIBE with their routes and hub patterns, the refusals, the limit,
//! the error budget, `holds`), with the helpers both use.

use super::*;
use crate::protocol::session::test_support::*;

mod handshake;
mod subscriptions;

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
