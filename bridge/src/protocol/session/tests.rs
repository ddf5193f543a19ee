//! [`ClientSession`], the type the driver holds: one per protocol, the answers that are
//! the same for all (binary frames, close is final), and the dispatch of `opened`,
//! `resumed`, `authenticated`, `farewell`, `wants`, `grant` and `patterns`.

use super::test_support::*;
use super::*;
use crate::protocol::wamp2::{self as codec, subscription_id};

const SESSION: u64 = 77;

fn client(protocol: Protocol, patterns: &[&str]) -> ClientSession {
    ClientSession::new(
        protocol,
        grant(patterns),
        &settings(10),
        NAME.into(),
        SESSION,
    )
    .expect("a WebSocket protocol")
}

const WEBSOCKET: [Protocol; 3] = [Protocol::Native, Protocol::Wamp1, Protocol::Wamp2];

/// A frame each protocol accepts and answers.
fn subscribe_frame(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Native => r#"{"type":"subscribe","topics":["a"]}"#,
        Protocol::Wamp1 => r#"[5,"a"]"#,
        _ => r#"[32,1,{},"a"]"#,
    }
}

#[test]
fn one_machine_per_websocket_protocol_none_for_sse() {
    for protocol in WEBSOCKET {
        assert_eq!(client(protocol, &["*"]).protocol(), protocol);
    }
    assert!(
        ClientSession::new(Protocol::Sse, grant(&["*"]), &settings(1), NAME.into(), 1).is_none()
    );
}

#[test]
fn opened_welcomes_native_and_wamp1_clients_wamp2_speaks_first() {
    assert_eq!(
        client(Protocol::Native, &["*"]).opened(),
        [send(
            r#"{"type":"welcome","session":"00112233aabbccdd","heartbeat":25}"#
        )]
    );
    assert_eq!(
        client(Protocol::Wamp1, &["*"]).opened(),
        [send(r#"[0,"00112233aabbccdd",1,"push-bridge/test"]"#)]
    );
    assert_eq!(client(Protocol::Wamp2, &["*"]).opened(), []);
}

#[test]
fn a_binary_frame_is_refused_and_closes_every_protocol() {
    for protocol in WEBSOCKET {
        let mut session = client(protocol, &["*"]);
        assert_eq!(
            session.on_binary(),
            [Action::Refused("binary"), Action::Close(Close::Binary)],
            "{protocol:?}"
        );
        assert_eq!(session.on_binary(), [], "{protocol:?}: closed");
        assert_eq!(
            session.on_text(subscribe_frame(protocol), now()),
            [],
            "{protocol:?}"
        );
        assert_eq!(session.patterns().count(), 0);
    }
}

#[test]
fn a_close_is_the_last_action_and_a_closed_session_answers_nothing() {
    for protocol in WEBSOCKET {
        let mut session = client(protocol, &["*"]);
        if protocol == Protocol::Wamp2 {
            session.on_text(r#"[1,"r",{}]"#, now());
        }
        assert!(!session.on_text(subscribe_frame(protocol), now()).is_empty());
        let start = now();
        let mut closed_at = None;
        for i in 0..12 {
            let answer = session.on_text("not json", start);
            if let Some(at) = answer.iter().position(|a| matches!(a, Action::Close(_))) {
                assert_eq!(at, answer.len() - 1, "{protocol:?}: {answer:?}");
                closed_at = Some(i);
                break;
            }
        }
        // WAMP closes on the first malformed frame, native after its error budget.
        let expected = if protocol == Protocol::Native { 10 } else { 0 };
        assert_eq!(closed_at, Some(expected), "{protocol:?}");
        assert_eq!(session.on_text(subscribe_frame(protocol), now()), []);
        assert_eq!(session.on_binary(), []);
        assert_eq!(session.resumed(None), []);
        assert_eq!(session.authenticated(Ok(grant(&["*"]))), []);
        // Still holds what it held: the driver unsubscribes it.
        assert_eq!(sorted(session.patterns()), ["a"], "{protocol:?}");
    }
}

#[test]
fn resumed_and_authenticated_answer_only_where_they_were_asked() {
    for protocol in WEBSOCKET {
        let mut session = client(protocol, &["*"]);
        assert_eq!(session.resumed(Some(Vec::new())), [], "{protocol:?}");
        assert_eq!(session.authenticated(Ok(grant(&["*"]))), [], "{protocol:?}");
    }
    let mut native = client(Protocol::Native, &["*"]);
    native.on_text(
        r#"{"type":"subscribe","topics":["a"],"since":"1-1"}"#,
        now(),
    );
    assert_eq!(
        native.resumed(None),
        [send(
            r#"{"type":"subscribed","topics":["a"],"recovered":false}"#
        )]
    );
    let mut wamp2 = ClientSession::new(
        Protocol::Wamp2,
        Grant::pending(),
        &settings(10),
        NAME.into(),
        SESSION,
    )
    .unwrap();
    wamp2.on_text(r#"[1,"r",{"authmethods":["ticket"]}]"#, now());
    wamp2.on_text(r#"[5,"t",{}]"#, now());
    assert_eq!(
        wamp2.authenticated(Ok(grant(&["x"]))),
        [send(codec::welcome(SESSION, None, Some("ticket")))]
    );
    assert_eq!(&*wamp2.grant().patterns, patterns(&["x"]));
}

#[test]
fn farewell_is_a_wamp2_goodbye_at_shutdown() {
    let mut wamp2 = client(Protocol::Wamp2, &["*"]);
    assert_eq!(wamp2.farewell(Close::GoingAway), None, "before WELCOME");
    wamp2.on_text(r#"[1,"r",{}]"#, now());
    assert_eq!(
        wamp2.farewell(Close::GoingAway).as_deref(),
        Some(r#"[6,{},"wamp.close.system_shutdown"]"#)
    );
    assert_eq!(wamp2.farewell(Close::SlowConsumer), None);
    for protocol in [Protocol::Native, Protocol::Wamp1] {
        for close in Close::ALL {
            assert_eq!(client(protocol, &["*"]).farewell(close), None);
        }
    }
}

#[test]
fn wants_every_frame_but_events_of_subscriptions_not_held() {
    for protocol in [Protocol::Native, Protocol::Wamp1] {
        let mut session = client(protocol, &["*"]);
        session.on_text(subscribe_frame(protocol), now());
        assert!(session.wants(0));
        assert!(!session.wants(subscription_id(&pattern("a"), Match::Exact)));
    }
    let mut wamp2 = client(Protocol::Wamp2, &["*"]);
    let id = subscription_id(&pattern("a"), Match::Exact);
    assert!(wamp2.wants(0) && !wamp2.wants(id));
    wamp2.on_text(r#"[1,"r",{}]"#, now());
    wamp2.on_text(r#"[32,1,{},"a"]"#, now());
    assert!(wamp2.wants(0) && wamp2.wants(id));
    assert!(!wamp2.wants(subscription_id(&pattern("a"), Match::Prefix)));
    wamp2.on_text(&format!("[34,2,{id}]"), now());
    assert!(wamp2.wants(0) && !wamp2.wants(id));
}

#[test]
fn patterns_are_what_the_hub_holds() {
    let mut native = client(Protocol::Native, &["*"]);
    native.on_text(r#"{"type":"subscribe","topics":["a","b:*"]}"#, now());
    native.on_text(r#"{"type":"unsubscribe","topics":["a"]}"#, now());
    assert_eq!(sorted(native.patterns()), ["b:*"]);

    let mut wamp1 = client(Protocol::Wamp1, &["*"]);
    for text in [
        r#"[1,"p","x:"]"#,
        r#"[5,"p:1"]"#,
        r#"[5,"y"]"#,
        r#"[6,"y"]"#,
    ] {
        wamp1.on_text(text, now());
    }
    assert_eq!(sorted(wamp1.patterns()), ["x:1"]);

    let mut wamp2 = client(Protocol::Wamp2, &["*"]);
    for text in [
        r#"[1,"r",{}]"#,
        r#"[32,1,{},"a.b"]"#,
        r#"[32,2,{"match":"prefix"},"a.b"]"#,
        r#"[32,3,{"match":"wildcard"},"c..d"]"#,
    ] {
        wamp2.on_text(text, now());
    }
    assert_eq!(sorted(wamp2.patterns()), ["a:b", "c:*:d"]);
    assert_eq!(wamp2.grant().name.as_ref(), "test-token");
}

#[test]
fn an_idle_session_is_small() {
    // Thousands of idle sessions each hold one: no larger than the per-connection
    // state these machines replace (about 310 bytes on 64-bit targets); 280 today.
    let size = std::mem::size_of::<ClientSession>();
    assert!(size <= 312, "{size} bytes");
}
