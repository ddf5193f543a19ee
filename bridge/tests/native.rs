//! The native JSON protocol (`push-bridge.v1`) against the real binary, fed by the
//! Rust publisher SDK.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

#[tokio::test]
async fn events_reach_matching_subscribers_once_even_through_overlapping_patterns() {
    let bridge = Bridge::start();
    let mut both = native_client(&bridge, &["article", "article:7"]).await;
    let mut other = native_client(&bridge, &["article:8"]).await;
    let publisher = bridge.publisher();
    let id = publisher.publish("article:7", &json!({"n": 1})).unwrap();
    publisher.publish("article:8", &json!({"n": 2})).unwrap();

    let event = next_json(&mut both).await;
    assert_eq!(
        event,
        json!({"type": "event", "topic": "article:7", "id": id, "data": {"n": 1}})
    );
    let second = next_json(&mut both).await;
    assert_eq!(
        second["topic"], "article:8",
        "the next event, not a duplicate: {second}"
    );
    assert_eq!(next_json(&mut other).await["data"], json!({"n": 2}));
    assert_silent(&mut both, Duration::from_millis(200)).await;
    // Plain connections get the direct write path (a relay would log this).
    assert!(!bridge.stderr().contains("relayed"), "{}", bridge.stderr());
}

#[tokio::test]
async fn welcome_subscribe_unsubscribe_and_ref_echo() {
    let bridge = Bridge::start_with("server.heartbeat = \"7s\"");
    let (mut ws, _) = connect(&bridge.token_url(), &["push-bridge.v1"], &[])
        .await
        .unwrap();
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["heartbeat"], 7);
    assert!(welcome["session"].as_str().is_some_and(|s| !s.is_empty()));

    send(
        &mut ws,
        r#"{"type":"subscribe","topics":["a","b:1"],"ref":{"x":[1]}}"#,
    )
    .await;
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "subscribed", "topics": ["a", "b:1"], "ref": {"x": [1]}})
    );
    send(
        &mut ws,
        r#"{"type":"subscribe","topics":["c"],"since":"nope","ref":2}"#,
    )
    .await;
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "subscribed", "topics": ["c"], "recovered": false, "ref": 2})
    );
    send(
        &mut ws,
        r#"{"type":"unsubscribe","topics":["a"],"ref":"u"}"#,
    )
    .await;
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "unsubscribed", "topics": ["a"], "ref": "u"})
    );
    let publisher = bridge.publisher();
    publisher.publish("a", &1).unwrap();
    publisher.publish("c", &2).unwrap();
    assert_eq!(next_json(&mut ws).await["topic"], "c");
}

#[tokio::test]
async fn bad_and_forbidden_requests_get_errors_and_the_connection_stays() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tokens.toml"),
        "[[token]]\nname = \"dash\"\ntoken = \"dash-token\"\ntopics = [\"package_created\", \"article:*\"]\n",
    )
    .unwrap();
    let bridge = Bridge::start_with(&format!(
        "auth.tokens_file = \"{}\"",
        dir.path().join("tokens.toml").display()
    ));
    let (mut ws, _) = connect(&bridge.url("token=dash-token"), &["push-bridge.v1"], &[])
        .await
        .unwrap();
    next_json(&mut ws).await;

    send(
        &mut ws,
        r#"{"type":"subscribe","topics":["package_created","article"],"ref":1}"#,
    )
    .await;
    let error = next_json(&mut ws).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "forbidden");
    assert_eq!(error["ref"], 1);
    assert!(
        error["message"].as_str().unwrap().contains("article"),
        "{error}"
    );

    send(&mut ws, r#"{"type":"publish","topic":"x"}"#).await;
    assert_eq!(next_json(&mut ws).await["code"], "unsupported");
    send(&mut ws, "not json").await;
    assert_eq!(next_json(&mut ws).await["code"], "bad_request");
    send(&mut ws, r#"{"type":"subscribe","topics":["a b"]}"#).await;
    assert_eq!(next_json(&mut ws).await["code"], "bad_request");

    // All or nothing: the refused subscribe above subscribed nothing.
    let publisher = bridge.publisher();
    publisher.publish("package_created", &1).unwrap();
    assert_silent(&mut ws, Duration::from_millis(300)).await;

    send(
        &mut ws,
        r#"{"type":"subscribe","topics":["package_created","article:*"]}"#,
    )
    .await;
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    publisher.publish("article:9", &json!("ok")).unwrap();
    assert_eq!(next_json(&mut ws).await["data"], "ok");
    assert!(
        bridge.metric(
            r#"push_bridge_refused_client_actions_total{protocol="native",action="subscribe"}"#
        ) >= 1.0
    );
}

#[tokio::test]
async fn more_than_ten_bad_messages_a_minute_close_with_1008() {
    let bridge = Bridge::start();
    let (mut ws, _) = connect(&bridge.token_url(), &["push-bridge.v1"], &[])
        .await
        .unwrap();
    next_json(&mut ws).await;
    for _ in 0..10 {
        send(&mut ws, "{}").await;
        assert_eq!(next_json(&mut ws).await["type"], "error");
    }
    send(&mut ws, "{}").await;
    let (code, texts) = close_code(&mut ws).await;
    assert_eq!(texts.len(), 1, "the eleventh error is still answered");
    assert_eq!(code, Some(1008));
}

#[tokio::test]
async fn too_many_subscriptions_is_refused() {
    let bridge = Bridge::start_with("server.max_subscriptions = 2");
    let (mut ws, _) = connect(&bridge.token_url(), &["push-bridge.v1"], &[])
        .await
        .unwrap();
    next_json(&mut ws).await;
    send(&mut ws, r#"{"type":"subscribe","topics":["a","b"]}"#).await;
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    send(&mut ws, r#"{"type":"subscribe","topics":["a"]}"#).await;
    assert_eq!(
        next_json(&mut ws).await["type"],
        "subscribed",
        "already subscribed: no new slot"
    );
    send(&mut ws, r#"{"type":"subscribe","topics":["c"]}"#).await;
    assert_eq!(next_json(&mut ws).await["code"], "too_many_subscriptions");
}

#[tokio::test]
async fn binary_frames_close_1003_and_oversized_frames_close_1009() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let bridge = Bridge::start();
    let (mut ws, _) = connect(&bridge.token_url(), &["push-bridge.v1"], &[])
        .await
        .unwrap();
    next_json(&mut ws).await;
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await.0, Some(1003));

    let (mut ws, _) = connect(&bridge.token_url(), &["push-bridge.v1"], &[])
        .await
        .unwrap();
    next_json(&mut ws).await;
    let big = format!(
        r#"{{"type":"subscribe","topics":["{}"]}}"#,
        "a".repeat(5000)
    );
    ws.send(Message::Text(big.into())).await.unwrap();
    assert_eq!(close_code(&mut ws).await.0, Some(1009));
}
