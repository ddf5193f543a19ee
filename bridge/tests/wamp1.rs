//! WAMP v1 as Superdesk's browser client and autobahn.js 0.8 speak it, against the
//! real binary.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

/// The Superdesk Publisher UI (client/services/websocket.js): a plain WebSocket with
/// no subprotocol, waits for a frame starting with 0, sends `[5, "package_created"]`
/// with the space, acts on `[8, topic, data]`.
#[tokio::test]
async fn superdesk_browser_client_byte_for_byte() {
    let bridge = Bridge::start();
    let (mut ws, protocol) = connect(&bridge.token_url(), &[], &[]).await.unwrap();
    assert_eq!(protocol, None, "no subprotocol offered, none answered");
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome[0], 0);
    assert!(welcome[1].is_string());
    assert_eq!(welcome[2], 1);
    assert!(welcome[3].as_str().unwrap().starts_with("push-bridge/"));

    send(&mut ws, r#"[5, "package_created"]"#).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let data = json!({"package": {"id": 1, "headline": "Ünïcode \"quoted\""}, "state": "create"});
    // The exact frame Superdesk's PHP pusher sends, through pyzmq.
    python(
        PUSH_ONE_FRAME,
        &[
            &bridge.zmq,
            &json!({"topic": "package_created", "data": data}).to_string(),
        ],
    );
    assert_eq!(
        next_json(&mut ws).await,
        json!([8, "package_created", data])
    );
}

const PUSH_ONE_FRAME: &str = r#"
import sys, time, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.setsockopt(zmq.LINGER, 5000)
s.connect(sys.argv[1])
s.send(sys.argv[2].encode())
s.close()
ctx.term()
"#;

#[tokio::test]
async fn autobahn_style_client_gets_wamp_echoed_and_curies_expanded() {
    let bridge = Bridge::start();
    let (mut ws, protocol) = connect(&bridge.token_url(), &["wamp"], &[]).await.unwrap();
    assert_eq!(protocol.as_deref(), Some("wamp"));
    assert_eq!(next_json(&mut ws).await[0], 0);
    send(&mut ws, r#"[1,"news","http://example.com/news#"]"#).await;
    send(&mut ws, r#"[5,"news:sport"]"#).await;
    send(&mut ws, r#"[5,"article"]"#).await;
    send(&mut ws, r#"[5,"article:7"]"#).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let publisher = bridge.publisher();
    publisher
        .publish("http://example.com/news#sport", &json!({"goal": 1}))
        .unwrap();
    assert_eq!(
        next_json(&mut ws).await,
        json!([8, "http://example.com/news#sport", {"goal": 1}])
    );
    // One EVENT per matching subscription, each with the subscription's URI.
    publisher.publish("article:7", &2).unwrap();
    let mut uris = vec![next_json(&mut ws).await, next_json(&mut ws).await];
    uris.sort_by_key(|f| f[1].as_str().unwrap().to_string());
    assert_eq!(
        uris,
        vec![json!([8, "article", 2]), json!([8, "article:7", 2])]
    );
    // Unsubscribe stops them.
    send(&mut ws, r#"[6,"article"]"#).await;
    send(&mut ws, r#"[6,"article:7"]"#).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    publisher.publish("article:7", &3).unwrap();
    assert_silent(&mut ws, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn call_gets_callerror_publish_reaches_nobody_connection_kept() {
    let bridge = Bridge::start();
    let (mut sender, _) = connect(&bridge.token_url(), &["wamp"], &[]).await.unwrap();
    let (mut listener, _) = connect(&bridge.token_url(), &["wamp"], &[]).await.unwrap();
    next_json(&mut sender).await;
    next_json(&mut listener).await;
    send(&mut listener, r#"[5,"package_created"]"#).await;
    send(&mut sender, r#"[5,"package_created"]"#).await;
    send(
        &mut sender,
        r#"[2,"abc123","http://example.com/rpc#add",1,2]"#,
    )
    .await;
    let error = next_json(&mut sender).await;
    assert_eq!(error[0], 4);
    assert_eq!(error[1], "abc123");
    assert_eq!(error[2], "http://push-bridge/error#unsupported");
    send(&mut sender, r#"[7,"package_created",{"evil":true}]"#).await;
    send(&mut sender, r#"[7,"package_created",{"evil":true},true]"#).await;
    assert_silent(&mut listener, Duration::from_millis(300)).await;
    assert_silent(&mut sender, Duration::from_millis(10)).await;
    // Still connected and subscribed.
    bridge
        .publisher()
        .publish("package_created", &json!({"ok": 1}))
        .unwrap();
    assert_eq!(next_json(&mut sender).await[2], json!({"ok": 1}));
    assert_eq!(next_json(&mut listener).await[2], json!({"ok": 1}));
    assert!(
        bridge.metric(
            r#"push_bridge_refused_client_actions_total{protocol="wamp1",action="publish"}"#
        ) >= 2.0
    );
}

#[tokio::test]
async fn malformed_frames_close_with_1007() {
    let bridge = Bridge::start();
    for frame in [
        "not json",
        r#"{"a":1}"#,
        "[99]",
        r#"["5","x"]"#,
        "[5]",
        "[]",
    ] {
        let (mut ws, _) = connect(&bridge.token_url(), &["wamp"], &[]).await.unwrap();
        next_json(&mut ws).await;
        send(&mut ws, frame).await;
        assert_eq!(close_code(&mut ws).await.0, Some(1007), "frame {frame}");
    }
}

#[tokio::test]
async fn forbidden_and_invalid_subscriptions_are_ignored_silently() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tokens.toml"),
        "[[token]]\nname = \"sd\"\ntoken = \"sd+token\"\ntopics = [\"package_created\"]\n",
    )
    .unwrap();
    let bridge = Bridge::start_with(&format!(
        "auth.tokens_file = \"{}\"",
        dir.path().join("tokens.toml").display()
    ));
    // The Superdesk UI appends the token unencoded: `+` must still work.
    let (mut ws, _) = connect(&bridge.url("token=sd+token"), &[], &[])
        .await
        .unwrap();
    next_json(&mut ws).await;
    send(&mut ws, r#"[5,"article"]"#).await;
    send(&mut ws, r#"[5,"bad topic"]"#).await;
    send(&mut ws, r#"[5,"package_created"]"#).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let publisher = bridge.publisher();
    publisher.publish("article", &1).unwrap();
    publisher.publish("package_created", &2).unwrap();
    assert_eq!(next_json(&mut ws).await, json!([8, "package_created", 2]));
    assert!(
        bridge.metric(
            r#"push_bridge_refused_client_actions_total{protocol="wamp1",action="subscribe"}"#
        ) >= 2.0
    );
}
