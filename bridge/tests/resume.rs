//! Never miss an event: history, resume with `since`, duplicate publisher ids, and the
//! history kept across a graceful restart, against the real binary.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

/// As `support::subscribe_since`, but the first frame (the welcome) is read without
/// being checked.
async fn subscribe_since(
    bridge: &Bridge,
    topics: &[&str],
    since: Option<&str>,
) -> (Ws, serde_json::Value) {
    let (mut ws, _) = connect(&bridge.token_url(), &["push-bridge.v1"], &[])
        .await
        .unwrap();
    next_json(&mut ws).await;
    let mut request = json!({"type": "subscribe", "topics": topics});
    if let Some(since) = since {
        request["since"] = json!(since);
    }
    send(&mut ws, &request.to_string()).await;
    let subscribed = next_json(&mut ws).await;
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    (ws, subscribed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cut_mid_stream_resumes_without_gap_or_duplicate() {
    const EVENTS: u64 = 3000;
    let bridge = Bridge::start();
    let (mut first, _) = subscribe_since(&bridge, &["feed"], None).await;
    let publishing = publish_paced(&bridge, "feed", EVENTS, 1000);

    let mut seen = Vec::new();
    let mut last_id = String::new();
    while seen.len() < 1000 {
        let event = next_json(&mut first).await;
        seen.push(event["data"]["seq"].as_u64().unwrap());
        last_id = event["id"].as_str().unwrap().to_string();
    }
    // Cut the connection without a close handshake, mid-stream.
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (mut second, subscribed) = subscribe_since(&bridge, &["feed"], Some(&last_id)).await;
    assert_eq!(subscribed["recovered"], true);
    while seen.last() != Some(&(EVENTS - 1)) {
        let event = next_json(&mut second).await;
        seen.push(event["data"]["seq"].as_u64().unwrap());
    }
    publishing.join().unwrap();
    let expected: Vec<u64> = (0..EVENTS).collect();
    assert_eq!(
        seen, expected,
        "the union of both connections is the published sequence"
    );
    assert_silent(&mut second, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn an_evicted_or_unknown_id_is_not_recovered_and_duplicates_are_dropped() {
    let bridge = Bridge::start_with("history.size = 3");
    let publisher = bridge.publisher();
    for n in 0..5 {
        publisher
            .publish_with_id("h", &format!("id-{n}"), &n)
            .unwrap();
    }
    bridge.wait_metric("push_bridge_history_events", 3.0);
    let (_, subscribed) = subscribe_since(&bridge, &["h"], Some("id-0")).await;
    assert_eq!(subscribed["recovered"], false, "id-0 was evicted");
    let (mut ws, subscribed) = subscribe_since(&bridge, &["h"], Some("id-2")).await;
    assert_eq!(subscribed["recovered"], true);
    assert_eq!(next_json(&mut ws).await["id"], "id-3");
    assert_eq!(next_json(&mut ws).await["id"], "id-4");

    // A retry of an id still in history is dropped and counted.
    publisher.publish_with_id("h", "id-4", &"retry").unwrap();
    publisher.publish_with_id("h", "id-5", &5).unwrap();
    assert_eq!(next_json(&mut ws).await["id"], "id-5");
    assert_eq!(
        bridge.metric(r#"push_bridge_ingress_rejected_total{reason="duplicate"}"#),
        1.0
    );
}

#[tokio::test]
async fn history_survives_a_graceful_restart() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.jsonl");
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[token]]\nname = \"t\"\ntoken = \"restart-token\"\n",
    )
    .unwrap();
    let extra = format!(
        "history.file = \"{}\"\nauth.tokens_file = \"{}\"",
        history.display(),
        tokens.display()
    );
    let mut bridge = Bridge::start_with(&extra);
    let url = bridge.url("token=restart-token");
    let (mut ws, _) = connect(&url, &["push-bridge.v1"], &[]).await.unwrap();
    next_json(&mut ws).await;
    send(&mut ws, r#"{"type":"subscribe","topics":["r"]}"#).await;
    next_json(&mut ws).await;
    let publisher = bridge.publisher();
    publisher.publish_with_id("r", "r-1", &1).unwrap();
    assert_eq!(next_json(&mut ws).await["id"], "r-1");
    publisher.publish_with_id("r", "r-2", &2).unwrap();
    publisher.publish_with_id("r", "r-3", &3).unwrap();
    bridge.wait_metric("push_bridge_history_events", 3.0);
    drop(ws);
    bridge.signal("TERM");
    assert!(bridge.wait_exit(Duration::from_secs(10)).success());
    assert!(history.exists());

    // The same ports and files: a restarted bridge.
    let config = std::fs::read_to_string(bridge.config_path()).unwrap();
    let restarted = Bridge::start_raw(
        tempfile::tempdir().unwrap(),
        bridge.addr,
        bridge.zmq.clone(),
        &config,
        &[],
    );
    let (mut ws, _) = connect(&url, &["push-bridge.v1"], &[]).await.unwrap();
    next_json(&mut ws).await;
    send(
        &mut ws,
        r#"{"type":"subscribe","topics":["r"],"since":"r-1"}"#,
    )
    .await;
    assert_eq!(next_json(&mut ws).await["recovered"], true);
    assert_eq!(next_json(&mut ws).await["id"], "r-2");
    assert_eq!(next_json(&mut ws).await["id"], "r-3");
    drop(restarted);
}
