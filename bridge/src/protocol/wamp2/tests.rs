//! Unit tests of the WAMP v2 codec: every client message, every refusal, every
//! frame's exact bytes. The URI mapping is tested next to it, in `uri.rs`.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn reason(text: &str) -> String {
    parse(text).expect_err(text).to_string()
}

fn json(frame: &str) -> Value {
    serde_json::from_str(frame).unwrap_or_else(|e| panic!("{frame} is not JSON: {e}"))
}

#[test]
fn autobahn_hello_with_ticket() {
    // The shape npm autobahn 22 sends: every role it can play, then auth options.
    let text = r#"[1,"realm1",{"roles":{"caller":{"features":{"progressive_call_results":true}},"callee":{"features":{}},"publisher":{"features":{}},"subscriber":{"features":{"pattern_based_subscription":true}}},"authmethods":["ticket"],"authid":"joe","authextra":{}}]"#;
    assert_eq!(
        parse(text),
        Ok(Message::Hello {
            realm: "realm1".into(),
            authmethods: vec!["ticket".into()],
            authid: Some("joe".into()),
        })
    );
}

#[test]
fn hello_without_auth_options() {
    let expected = Ok(Message::Hello {
        realm: "realm1".into(),
        authmethods: vec![],
        authid: None,
    });
    assert_eq!(
        parse(r#"[1,"realm1",{"roles":{"subscriber":{}}}]"#),
        expected
    );
    // Roles are not required: a subscriber is all the router serves.
    assert_eq!(parse(r#"[1,"realm1",{}]"#), expected);
    assert_eq!(
        parse(r#" [ 1 , "realm1" , {"authmethods":null,"authid":null} ] "#),
        expected
    );
    assert_eq!(
        parse(r#"[1,"r",{"authmethods":["anonymous","ticket"]}]"#),
        Ok(Message::Hello {
            realm: "r".into(),
            authmethods: vec!["anonymous".into(), "ticket".into()],
            authid: None,
        })
    );
}

#[test]
fn hello_refusals() {
    for (text, why) in [
        ("[1]", "HELLO is missing its realm (element 1)"),
        (r#"[1,"r"]"#, "HELLO is missing its details (element 2)"),
        (
            "[1,5,{}]",
            "HELLO: the realm (element 1) must be a string, got a number",
        ),
        (
            r#"[1,"r",[]]"#,
            "HELLO: the details (element 2) must be an object, got an array",
        ),
        (
            r#"[1,"r",{"authmethods":"ticket"}]"#,
            "HELLO: details.authmethods must be a list of strings, got a string",
        ),
        (
            r#"[1,"r",{"authmethods":["ticket",1]}]"#,
            "HELLO: details.authmethods must be a list of strings, got a number",
        ),
        (
            r#"[1,"r",{"authid":7}]"#,
            "HELLO: details.authid must be a string, got a number",
        ),
    ] {
        assert_eq!(reason(text), why, "{text}");
    }
}

#[test]
fn authenticate() {
    assert_eq!(
        parse(r#"[5,"secret!!!",{}]"#),
        Ok(Message::Authenticate {
            signature: "secret!!!".into()
        })
    );
    assert_eq!(
        reason(r#"[5,"secret"]"#),
        "AUTHENTICATE is missing its extra (element 2)"
    );
    assert_eq!(
        reason("[5,null,{}]"),
        "AUTHENTICATE: the signature (element 1) must be a string, got null"
    );
    assert_eq!(
        reason(r#"[5,"s",null]"#),
        "AUTHENTICATE: the extra (element 2) must be an object, got null"
    );
}

#[test]
fn subscribe_with_each_match_policy() {
    let expected = |match_| {
        Ok(Message::Subscribe {
            request: 713845233,
            topic: "com.myapp".into(),
            match_,
        })
    };
    for (options, match_) in [
        ("{}", Match::Exact),
        (r#"{"match":null}"#, Match::Exact),
        (r#"{"match":"exact"}"#, Match::Exact),
        (r#"{"match":"prefix"}"#, Match::Prefix),
        (
            r#"{"match":"wildcard","get_retained":true}"#,
            Match::Wildcard,
        ),
    ] {
        let text = format!(r#"[32,713845233,{options},"com.myapp"]"#);
        assert_eq!(parse(&text), expected(match_), "{text}");
    }
    // The topic is passed on as sent: checking it is subscription_pattern's job.
    assert_eq!(
        parse(r#"[32,1,{},"not a uri#"]"#),
        Ok(Message::Subscribe {
            request: 1,
            topic: "not a uri#".into(),
            match_: Match::Exact,
        })
    );
}

#[test]
fn an_unknown_match_policy_is_answered_not_aborted() {
    let message = parse(r#"[32,3,{"match":"regex"},"a"]"#).unwrap();
    assert_eq!(
        message,
        Message::Invalid {
            request_type: SUBSCRIBE,
            request: 3,
            reason: "SUBSCRIBE: the match option is \"regex\"; supported: \"exact\", \
                     \"prefix\", \"wildcard\""
                .into(),
        }
    );
    assert_eq!(
        message.refusal().as_deref(),
        Some(r#"[8,32,3,{},"wamp.error.invalid_argument"]"#)
    );
    let Ok(Message::Invalid { reason, .. }) = parse(r#"[32,4,{"match":true},"a"]"#) else {
        panic!("a boolean match is not Invalid");
    };
    assert!(reason.contains("the match option is a boolean"), "{reason}");
}

#[test]
fn subscribe_and_unsubscribe_refusals() {
    for (text, why) in [
        ("[32]", "SUBSCRIBE is missing its request id (element 1)"),
        ("[32,1]", "SUBSCRIBE is missing its options (element 2)"),
        ("[32,1,{}]", "SUBSCRIBE is missing its topic (element 3)"),
        (
            r#"[32,1,[],"a"]"#,
            "SUBSCRIBE: the options (element 2) must be an object, got an array",
        ),
        (
            "[32,1,{},5]",
            "SUBSCRIBE: the topic (element 3) must be a string, got a number",
        ),
        (
            "[34,1]",
            "UNSUBSCRIBE is missing its subscription id (element 2)",
        ),
        (
            r#"[34,1,"5512315355"]"#,
            "UNSUBSCRIBE: the subscription id (element 2) must be an integer from 1 to \
             2^53, got a string",
        ),
    ] {
        assert_eq!(reason(text), why, "{text}");
    }
}

#[test]
fn ids_are_integers_from_1_to_2_pow_53() {
    assert_eq!(
        parse("[34,1,9007199254740992]"),
        Ok(Message::Unsubscribe {
            request: 1,
            subscription: MAX_ID
        })
    );
    for (id, got) in [
        ("0", "0"),
        ("-1", "-1"),
        ("1.5", "1.5"),
        ("1.0", "1.0"),
        ("1e3", "1000.0"),
        ("9007199254740993", "9007199254740993"),
        ("18446744073709551616", "1.8446744073709552e+19"),
        ("null", "null"),
        (r#""1""#, "a string"),
        ("{}", "an object"),
    ] {
        assert_eq!(
            reason(&format!(r#"[32,{id},{{}},"a"]"#)),
            format!(
                "SUBSCRIBE: the request id (element 1) must be an integer from 1 to 2^53, \
                 got {got}"
            ),
            "{id}"
        );
    }
}

#[test]
fn unsubscribe() {
    assert_eq!(
        parse("[34,85346237,5512315355]"),
        Ok(Message::Unsubscribe {
            request: 85346237,
            subscription: 5512315355
        })
    );
}

#[test]
fn publish_is_answered_only_when_acknowledged() {
    for (text, request, acknowledge) in [
        (
            r#"[16,239714735,{},"com.myapp.mytopic1",["Hello, world!"]]"#,
            239714735,
            false,
        ),
        (r#"[16,2,{"acknowledge":false},"t"]"#, 2, false),
        (r#"[16,2,{"acknowledge":"yes"},"t"]"#, 2, false),
        (r#"[16,2,{"acknowledge":true},"t",[1],{"k":2}]"#, 2, true),
    ] {
        let message = parse(text).unwrap();
        assert_eq!(
            message,
            Message::Publish {
                request,
                acknowledge
            },
            "{text}"
        );
        assert_eq!(
            message.refusal(),
            acknowledge.then(|| r#"[8,16,2,{},"wamp.error.not_authorized"]"#.to_string()),
            "{text}"
        );
    }
    assert_eq!(
        reason("[16,2,{}]"),
        "PUBLISH is missing its topic (element 3)"
    );
    assert_eq!(
        reason(r#"[16,2,null,"t"]"#),
        "PUBLISH: the options (element 2) must be an object, got null"
    );
}

#[test]
fn call_register_unregister_are_refused() {
    for (text, message, answer) in [
        (
            r#"[48,3,{},"com.myapp.add2",[23,99]]"#,
            Message::Call { request: 3 },
            r#"[8,48,3,{},"wamp.error.no_such_procedure"]"#,
        ),
        (
            r#"[48,3,{},"com.myapp.ping"]"#,
            Message::Call { request: 3 },
            r#"[8,48,3,{},"wamp.error.no_such_procedure"]"#,
        ),
        (
            r#"[64,4,{},"com.myapp.add2"]"#,
            Message::Register { request: 4 },
            r#"[8,64,4,{},"wamp.error.not_authorized"]"#,
        ),
        (
            "[66,5,2103333224]",
            Message::Unregister { request: 5 },
            r#"[8,66,5,{},"wamp.error.no_such_registration"]"#,
        ),
    ] {
        assert_eq!(parse(text), Ok(message.clone()), "{text}");
        assert_eq!(message.refusal().as_deref(), Some(answer), "{text}");
    }
    for (text, why) in [
        ("[48,3,{}]", "CALL is missing its procedure (element 3)"),
        (
            r#"[48,0,{},"p"]"#,
            "CALL: the request id (element 1) must be an integer from 1 to 2^53, got 0",
        ),
        (
            r#"[64,4,"x","p"]"#,
            "REGISTER: the options (element 2) must be an object, got a string",
        ),
        (
            "[66,5]",
            "UNREGISTER is missing its registration id (element 2)",
        ),
    ] {
        assert_eq!(reason(text), why, "{text}");
    }
}

#[test]
fn goodbye_and_abort_accept_any_reason() {
    for reason in [
        "wamp.close.normal",
        "wamp.close.goodbye_and_out",
        "wamp.error.goodbye_and_out",
        "whatever",
    ] {
        let text = format!(r#"[6,{{}},"{reason}"]"#);
        assert_eq!(
            parse(&text),
            Ok(Message::Goodbye {
                reason: reason.into()
            })
        );
        let text = format!(r#"[3,{{"message":"no onchallenge"}},"{reason}"]"#);
        assert_eq!(
            parse(&text),
            Ok(Message::Abort {
                reason: reason.into()
            })
        );
    }
    assert_eq!(
        reason(r#"[6,"wamp.close.normal"]"#),
        "GOODBYE: the details (element 1) must be an object, got a string"
    );
    assert_eq!(reason("[3,{}]"), "ABORT is missing its reason (element 2)");
    assert_eq!(
        reason("[6,{},null]"),
        "GOODBYE: the reason (element 2) must be a string, got null"
    );
}

#[test]
fn late_answers_are_ignored_unchecked() {
    for (text, name) in [
        (r#"[49,3,{"mode":"kill"}]"#, "CANCEL"),
        ("[49]", "CANCEL"),
        (r#"[70,6131533,{},["Hello"]]"#, "YIELD"),
        (r#"[8,68,6131533,{},"com.myapp.error"]"#, "ERROR"),
    ] {
        let message = parse(text).unwrap();
        assert_eq!(message, Message::Ignored { name }, "{text}");
        assert_eq!(message.refusal(), None);
    }
}

#[test]
fn messages_without_an_answer_have_no_refusal() {
    for text in [
        r#"[1,"r",{}]"#,
        r#"[5,"t",{}]"#,
        r#"[32,1,{},"a"]"#,
        "[34,1,2]",
        r#"[16,1,{},"t"]"#,
        r#"[6,{},"wamp.close.normal"]"#,
        r#"[3,{},"x"]"#,
    ] {
        assert_eq!(parse(text).unwrap().refusal(), None, "{text}");
    }
}

#[test]
fn router_messages_from_a_client_are_violations() {
    for (id, name) in [
        (2, "WELCOME"),
        (4, "CHALLENGE"),
        (17, "PUBLISHED"),
        (33, "SUBSCRIBED"),
        (35, "UNSUBSCRIBED"),
        (36, "EVENT"),
        (50, "RESULT"),
        (65, "REGISTERED"),
        (67, "UNREGISTERED"),
        (68, "INVOCATION"),
        (69, "INTERRUPT"),
    ] {
        assert_eq!(
            reason(&format!("[{id},1,2,{{}}]")),
            format!("{name} (type id {id}) is sent by routers, not clients")
        );
    }
}

#[test]
fn bad_frames_and_type_ids_are_violations() {
    for (text, why) in [
        ("[]", "a WAMP message must not be an empty array"),
        (
            r#"{"type":1}"#,
            "a WAMP message must be a JSON array, got an object",
        ),
        ("32", "a WAMP message must be a JSON array, got a number"),
        ("null", "a WAMP message must be a JSON array, got null"),
        (
            r#"["1","realm1",{}]"#,
            "the message type id must be a non-negative integer, got a string",
        ),
        (
            r#"[1.0,"realm1",{}]"#,
            "the message type id must be a non-negative integer, got 1.0",
        ),
        (
            "[-32,1,{},\"a\"]",
            "the message type id must be a non-negative integer, got -32",
        ),
        ("[0]", "unknown message type id 0"),
        ("[7,{}]", "unknown message type id 7"),
        ("[99]", "unknown message type id 99"),
        (
            "[18446744073709551615]",
            "unknown message type id 18446744073709551615",
        ),
    ] {
        assert_eq!(reason(text), why, "{text}");
    }
    for text in ["", "[32,", "hello", "[1,'r',{}]", "\u{feff}[6,{},\"x\"]"] {
        assert!(
            reason(text).starts_with("the frame is not JSON ("),
            "{text:?}"
        );
    }
}

#[test]
fn welcome_bytes() {
    assert_eq!(
        welcome(9129137332, None, None),
        r#"[2,9129137332,{"roles":{"broker":{"features":{"pattern_based_subscription":true}}}}]"#
    );
    assert_eq!(
        welcome(3251278072152162, Some("joe"), Some("ticket")),
        r#"[2,3251278072152162,{"roles":{"broker":{"features":{"pattern_based_subscription":true}}},"authid":"joe","authrole":"subscriber","authmethod":"ticket","authprovider":"push-bridge"}]"#
    );
    assert_eq!(
        welcome(1, Some("q\"é"), None),
        r#"[2,1,{"roles":{"broker":{"features":{"pattern_based_subscription":true}}},"authid":"q\"é"}]"#
    );
    let parsed = json(&welcome(MAX_ID, Some("joe"), Some("ticket")));
    assert_eq!(parsed[1], json!(MAX_ID));
    assert_eq!(
        parsed[2]["roles"]["broker"]["features"]["pattern_based_subscription"],
        json!(true)
    );
}

#[test]
fn small_frame_bytes() {
    assert_eq!(challenge_ticket(), r#"[4,"ticket",{}]"#);
    assert_eq!(
        abort(ERROR_NO_SUCH_REALM, "The realm does not exist."),
        r#"[3,{"message":"The realm does not exist."},"wamp.error.no_such_realm"]"#
    );
    assert_eq!(
        abort(ERROR_PROTOCOL_VIOLATION, "bad \"frame\"\n"),
        r#"[3,{"message":"bad \"frame\"\n"},"wamp.error.protocol_violation"]"#
    );
    assert_eq!(
        goodbye(CLOSE_GOODBYE_AND_OUT),
        r#"[6,{},"wamp.close.goodbye_and_out"]"#
    );
    assert_eq!(
        goodbye(CLOSE_SYSTEM_SHUTDOWN),
        r#"[6,{},"wamp.close.system_shutdown"]"#
    );
    assert_eq!(
        subscribed(713845233, 5512315355),
        "[33,713845233,5512315355]"
    );
    assert_eq!(unsubscribed(85346237), "[35,85346237]");
    assert_eq!(
        error(SUBSCRIBE, 713845233, ERROR_NOT_AUTHORIZED),
        r#"[8,32,713845233,{},"wamp.error.not_authorized"]"#
    );
    assert_eq!(
        error(UNSUBSCRIBE, 2, ERROR_NO_SUCH_SUBSCRIPTION),
        r#"[8,34,2,{},"wamp.error.no_such_subscription"]"#
    );
    assert_eq!(
        error(SUBSCRIBE, 3, ERROR_INVALID_URI),
        r#"[8,32,3,{},"wamp.error.invalid_uri"]"#
    );
}

#[test]
fn event_bytes() {
    let data = r#"{"package":{"id":1},"state":"create"}"#;
    assert_eq!(
        event(5512315355, 4429313566, None, data),
        r#"[36,5512315355,4429313566,{},[{"package":{"id":1},"state":"create"}]]"#
    );
    assert_eq!(
        event(
            1,
            2,
            Some("com.myapp.topic.emergency.category.severe"),
            r#""Hello, world!""#
        ),
        r#"[36,1,2,{"topic":"com.myapp.topic.emergency.category.severe"},["Hello, world!"]]"#
    );
    assert_eq!(event(1, 2, None, "null"), "[36,1,2,{},[null]]");
    assert_eq!(event(1, 2, None, "[]"), "[36,1,2,{},[[]]]");
}

#[test]
fn frames_out_are_json_that_round_trips() {
    let data = json!({"s": "a\"b\\c\u{1}é😀", "n": [1, 2.5, -3], "t": true, "z": null});
    let uri = "q\"uo\\te.é😀";
    for (frame, expected) in [
        (
            event(MAX_ID, 1, Some(uri), &data.to_string()),
            json!([36, MAX_ID, 1, {"topic": uri}, [data]]),
        ),
        (
            event(7, 8, None, &data.to_string()),
            json!([36, 7, 8, {}, [data]]),
        ),
        (abort(uri, uri), json!([3, {"message": uri}, uri])),
        (goodbye(uri), json!([6, {}, uri])),
        (error(CALL, MAX_ID, uri), json!([8, 48, MAX_ID, {}, uri])),
        (subscribed(1, MAX_ID), json!([33, 1, MAX_ID])),
        (unsubscribed(MAX_ID), json!([35, MAX_ID])),
        (challenge_ticket(), json!([4, "ticket", {}])),
        (
            welcome(7, Some(uri), Some(uri)),
            json!([2, 7, {
                "roles": {"broker": {"features": {"pattern_based_subscription": true}}},
                "authid": uri, "authrole": "subscriber", "authmethod": uri,
                "authprovider": "push-bridge"
            }]),
        ),
    ] {
        let parsed = json(&frame);
        assert_eq!(parsed, expected, "{frame}");
        assert_eq!(parsed.to_string(), frame, "compact");
    }
}

#[test]
fn random_bits_map_onto_valid_ids() {
    assert_eq!(id_from_random(0), 1);
    assert_eq!(id_from_random(MAX_ID - 1), MAX_ID);
    assert_eq!(id_from_random(MAX_ID), 1);
    assert_eq!(id_from_random(u64::MAX), MAX_ID);
    assert_eq!(id_from_random(41), 42);
}

#[test]
fn a_violation_reason_quotes_an_excerpt_of_a_long_match() {
    let long = "x".repeat(200);
    let Ok(Message::Invalid { reason, .. }) = parse(&format!(r#"[32,1,{{"match":"{long}"}},"a"]"#))
    else {
        panic!("not Invalid");
    };
    assert!(reason.len() < 200, "{reason}");
    assert!(
        reason.contains(&format!("\"{}\"…", "x".repeat(64))),
        "{reason}"
    );
}

proptest! {
    #[test]
    fn parsing_never_panics(text in "\\PC{0,60}") {
        let _ = parse(&text);
    }

    #[test]
    fn parsing_arrays_never_panics(
        id in prop_oneof![0u64..72, Just(u64::MAX)],
        rest in prop::collection::vec(prop_oneof![
            Just(json!(null)),
            Just(json!({})),
            Just(json!({"match": "prefix", "acknowledge": true, "authmethods": ["ticket"]})),
            Just(json!([])),
            "[a-z.]{0,5}".prop_map(Value::from),
            proptest::num::i64::ANY.prop_map(Value::from),
        ], 0..5),
    ) {
        let mut elements = vec![json!(id)];
        elements.extend(rest);
        if let Ok(message) = parse(&Value::Array(elements).to_string()) {
            if let Some(frame) = message.refusal() {
                prop_assert!(serde_json::from_str::<Value>(&frame).is_ok());
            }
        }
    }

    #[test]
    fn valid_ids_are_accepted(id in 1..=MAX_ID, sub in 1..=MAX_ID) {
        prop_assert_eq!(
            parse(&format!("[34,{id},{sub}]")),
            Ok(Message::Unsubscribe { request: id, subscription: sub })
        );
    }
}

#[test]
fn subscription_ids_are_fixed_per_pattern_and_policy() {
    let id = |pattern: &str, match_| subscription_id(&Pattern::parse(pattern).unwrap(), match_);
    // The values the hub has always given (clients may hold them across a reconnect
    // to another bridge process).
    assert_eq!(id("article:42", Match::Exact), 8_750_736_362_937_026);
    assert_eq!(id("article:42", Match::Prefix), 4_523_757_440_994_979);
    assert_eq!(id("*", Match::Wildcard), 8_202_859_774_030_958);
    for pattern in ["a", "a:b", "tenant:*:article", "*"] {
        let ids = [Match::Exact, Match::Prefix, Match::Wildcard].map(|m| id(pattern, m));
        for one in ids {
            assert!((1..=MAX_ID).contains(&one), "{pattern}");
            assert_eq!(
                ids.iter().filter(|&&other| other == one).count(),
                1,
                "{pattern}"
            );
        }
    }
}
