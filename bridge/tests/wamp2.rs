//! WAMP v2 with a real client: npm `autobahn` 22.11.1 on Node (`tests/node/
//! wamp2_client.js`) against the real binary, events published with the Rust SDK.
//! Covers both ways of presenting the token (`?token=` and the `ticket` auth method),
//! exact, prefix and wildcard subscriptions, every refusal the subscriber-only broker
//! answers, unsubscribe, and a clean GOODBYE.

mod node;
mod support;

use std::collections::BTreeMap;

use node::NodeClient;
use serde_json::{json, Value};
use support::Bridge;

const REALM: &str = "realm1";

/// A client connected to `url` with `options` (see the script), its session open;
/// returns it and its `open` observation (what WELCOME said).
fn open(url: &str, options: &Value) -> (NodeClient, Value) {
    let client = NodeClient::spawn("wamp2_client.js", &[url, REALM, &options.to_string()]);
    let welcome = client.next();
    assert_eq!(welcome["event"], "open", "{welcome}\n{}", client.stderr());
    (client, welcome)
}

fn subscribe(client: &mut NodeClient, label: &str, topic: &str, match_: Option<&str>) -> u64 {
    client.send(&json!({"op": "subscribe", "topic": topic, "match": match_, "as": label}));
    let subscribed = client.expect("subscribed");
    assert_eq!(subscribed["as"], label);
    subscribed["id"].as_u64().expect("a subscription id")
}

/// Sends one command and returns its outcome line.
fn request(client: &mut NodeClient, command: Value) -> Value {
    client.send(&command);
    client.next()
}

/// Leaves with GOODBYE and checks the bridge answered it, ending the session cleanly.
fn leave(mut client: NodeClient) {
    client.send(&json!({"op": "leave"}));
    let closed = client.expect("closed");
    assert_eq!(
        closed["reason"], "closed",
        "a clean WebSocket close: {closed}"
    );
    assert_eq!(closed["details"]["reason"], "wamp.close.goodbye_and_out");
    assert!(client.wait_exit());
}

#[test]
fn token_in_url_exact_prefix_and_wildcard_subscriptions() {
    let bridge = Bridge::start();
    let (mut client, welcome) = open(&bridge.token_url(), &json!({}));
    assert_eq!(
        welcome["roles"]["broker"]["features"]["pattern_based_subscription"],
        true
    );
    let exact = subscribe(&mut client, "exact", "article.42", None);
    let again = subscribe(&mut client, "exact-again", "article.42", None);
    assert_eq!(exact, again, "same topic and match: same subscription id");
    let prefix = subscribe(&mut client, "prefix", "article", Some("prefix"));
    let wildcard = subscribe(&mut client, "wildcard", "tenant..article", Some("wildcard"));
    assert!(exact != prefix && prefix != wildcard && exact != wildcard);

    let publisher = bridge.publisher();
    for (n, topic) in [
        "article:42",             // exact (twice: both handlers) and prefix
        "article:421",            // prefix only: component-wise, not article.42's
        "tenant:acme:article",    // wildcard
        "tenant:acme:article:42", // nobody: wildcard needs exactly three segments
        "articles",               // nobody
        "article:end",            // prefix: the last one
    ]
    .into_iter()
    .enumerate()
    {
        publisher.publish(topic, &json!({ "n": n })).unwrap();
    }

    let mut received: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    let mut publications: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    loop {
        let event = client.expect("EVENT");
        let label = event["as"].as_str().unwrap().to_string();
        let topic = event["topic"].as_str().unwrap().to_string();
        assert_eq!(event["args"].as_array().unwrap().len(), 1, "{event}");
        let publication = event["publication"].as_u64().unwrap();
        publications
            .entry(publication)
            .or_default()
            .push(label.clone());
        received
            .entry(label)
            .or_default()
            .push((topic.clone(), event["args"][0].clone()));
        if topic == "article.end" {
            break;
        }
    }
    let expected: BTreeMap<String, Vec<(String, Value)>> = [
        ("exact", vec![("article.42", 0)]),
        ("exact-again", vec![("article.42", 0)]),
        (
            "prefix",
            vec![("article.42", 0), ("article.421", 1), ("article.end", 5)],
        ),
        // details.topic is the concrete topic, not the subscribed pattern (autobahn
        // would fall back to "tenant..article" if the bridge left it out).
        ("wildcard", vec![("tenant.acme.article", 2)]),
    ]
    .into_iter()
    .map(|(label, events)| {
        let events = events
            .into_iter()
            .map(|(topic, n)| (topic.to_string(), json!({ "n": n })))
            .collect();
        (label.to_string(), events)
    })
    .collect();
    assert_eq!(received, expected);
    // One publication id per event, shared by every subscription it reached.
    let mut shared: Vec<Vec<String>> = publications
        .into_values()
        .map(|mut labels| {
            labels.sort();
            labels
        })
        .collect();
    shared.sort();
    assert_eq!(
        shared,
        [
            vec!["exact", "exact-again", "prefix"],
            vec!["prefix"],
            vec!["prefix"],
            vec!["wildcard"]
        ]
    );
    leave(client);
}

#[test]
fn ticket_auth_without_a_token_in_the_url() {
    let bridge = Bridge::start();
    let options = json!({"authmethods": ["ticket"], "authid": "joe", "ticket": bridge.token()});
    let url = format!("ws://{}/", bridge.addr);
    let mut client = NodeClient::spawn("wamp2_client.js", &[&url, REALM, &options.to_string()]);
    let challenge = client.expect("challenge");
    assert_eq!(challenge["method"], "ticket");
    let welcome = client.expect("open");
    assert_eq!(welcome["authmethod"], "ticket");
    assert_eq!(welcome["authid"], "joe");
    subscribe(&mut client, "news", "package_created", None);
    bridge
        .publisher()
        .publish("package_created", &json!({"state": "create"}))
        .unwrap();
    let event = client.expect("EVENT");
    assert_eq!(event["topic"], "package_created");
    assert_eq!(event["args"], json!([{"state": "create"}]));
    leave(client);
}

#[test]
fn a_wrong_ticket_or_none_is_aborted() {
    let bridge = Bridge::start();
    let url = format!("ws://{}/", bridge.addr);
    let wrong = json!({"authmethods": ["ticket"], "authid": "joe", "ticket": "not-the-token"});
    let mut client = NodeClient::spawn("wamp2_client.js", &[&url, REALM, &wrong.to_string()]);
    client.expect("challenge");
    let closed = client.expect("closed");
    assert_eq!(
        closed["details"]["reason"], "wamp.error.authentication_denied",
        "ABORT, no WELCOME: {closed}"
    );
    assert!(client.wait_exit());

    // No token in the URL and no ticket offered: nothing to authenticate with.
    let mut client = NodeClient::spawn("wamp2_client.js", &[&url, REALM, "{}"]);
    let closed = client.expect("closed");
    assert_eq!(
        closed["details"]["reason"],
        "wamp.error.authentication_required"
    );
    assert!(client.wait_exit());
}

#[test]
fn publish_call_and_register_are_refused_and_the_session_goes_on() {
    let bridge = Bridge::start();
    let (mut client, _) = open(&bridge.token_url(), &json!({}));
    subscribe(&mut client, "chat", "chat", None);

    let refused = request(
        &mut client,
        json!({"op": "publish", "topic": "chat", "acknowledge": true}),
    );
    assert_eq!(
        refused,
        json!({"event": "error", "op": "publish", "error": "wamp.error.not_authorized"})
    );
    let refused = request(
        &mut client,
        json!({"op": "call", "procedure": "com.app.add"}),
    );
    assert_eq!(
        refused,
        json!({"event": "error", "op": "call", "error": "wamp.error.no_such_procedure"})
    );
    let refused = request(
        &mut client,
        json!({"op": "register", "procedure": "com.app.add"}),
    );
    assert_eq!(
        refused,
        json!({"event": "error", "op": "register", "error": "wamp.error.not_authorized"})
    );
    // Without acknowledge autobahn expects no answer; the bridge forwards it to no one.
    let unacknowledged = request(
        &mut client,
        json!({"op": "publish", "topic": "chat", "acknowledge": false}),
    );
    assert_eq!(unacknowledged["event"], "ok");

    // Still subscribed and served: the first event is the SDK's, not the client's.
    bridge
        .publisher()
        .publish("chat", &json!({"from": "the publisher"}))
        .unwrap();
    let event = client.expect("EVENT");
    assert_eq!(event["args"], json!([{"from": "the publisher"}]));
    // Both publications are refused, acknowledged or not.
    for (action, count) in [("publish", 2.0), ("call", 1.0), ("register", 1.0)] {
        assert_eq!(
            bridge.metric(&format!(
                "push_bridge_refused_client_actions_total{{protocol=\"wamp2\",action=\"{action}\"}}"
            )),
            count,
            "{action} counted"
        );
    }
    leave(client);
}

#[test]
fn a_subscription_the_token_does_not_cover_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[token]]\nname = \"dash\"\ntoken = \"dash-token\"\n\
         topics = [\"package_created\", \"article:*\"]\n",
    )
    .unwrap();
    let bridge = Bridge::start_with(&format!("auth.tokens_file = \"{}\"", tokens.display()));
    let (mut client, _) = open(&bridge.url("token=dash-token"), &json!({}));

    for (topic, match_) in [
        ("secret", None),
        ("article", Some("prefix")), // article itself is not covered by article:*
        ("tenant..article", Some("wildcard")),
    ] {
        let refused = request(
            &mut client,
            json!({"op": "subscribe", "topic": topic, "match": match_}),
        );
        assert_eq!(
            refused,
            json!({"event": "error", "op": "subscribe", "error": "wamp.error.not_authorized"}),
            "{topic}"
        );
    }
    subscribe(&mut client, "article", "article.42", None);
    subscribe(&mut client, "articles", "article.", Some("prefix"));

    let publisher = bridge.publisher();
    publisher.publish("secret", &json!(1)).unwrap();
    publisher.publish("article:42", &json!(2)).unwrap();
    let mut events: Vec<(Value, Value)> = (0..2)
        .map(|_| {
            let event = client.expect("EVENT");
            (event["as"].clone(), event["args"].clone())
        })
        .collect();
    events.sort_by_key(|(label, _)| label.to_string());
    assert_eq!(
        events,
        [
            (json!("article"), json!([2])),
            (json!("articles"), json!([2]))
        ]
    );
    leave(client);
}

#[test]
fn after_unsubscribe_no_more_events() {
    let bridge = Bridge::start();
    let (mut client, _) = open(&bridge.token_url(), &json!({}));
    subscribe(&mut client, "feed", "feed", None);
    let publisher = bridge.publisher();
    publisher.publish("feed", &json!({"n": 1})).unwrap();
    assert_eq!(client.expect("EVENT")["args"], json!([{"n": 1}]));

    client.send(&json!({"op": "unsubscribe", "as": "feed"}));
    assert_eq!(client.expect("unsubscribed")["as"], "feed");
    subscribe(&mut client, "sentinel", "sentinel", None);
    publisher.publish("feed", &json!({"n": 2})).unwrap();
    publisher.publish("sentinel", &json!({"n": 3})).unwrap();
    // Events reach a connection in publish order: had feed's arrived, it would be first.
    let event = client.expect("EVENT");
    assert_eq!(
        (event["as"].clone(), event["args"].clone()),
        (json!("sentinel"), json!([{"n": 3}]))
    );
    leave(client);
}

#[test]
fn goodbye_closes_the_session_cleanly() {
    let bridge = Bridge::start();
    let (client, _) = open(&bridge.token_url(), &json!({}));
    bridge.wait_metric("push_bridge_connections{protocol=\"wamp2\"}", 1.0);
    leave(client);
    let deadline = std::time::Instant::now() + node::WAIT;
    while bridge.metric("push_bridge_connections{protocol=\"wamp2\"}") != 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the session stayed open"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
