//! The thin publisher clients (`publisher-sdk/python`, `publisher-sdk/php`,
//! `publisher-sdk/node`) end to end: each language's driver (`tests/e2e_driver.*` in
//! its directory) publishes through its client, on pyzmq, php-zmq and npm `zeromq`,
//! to the real bridge, and a native WebSocket client receives the events with the ids
//! the client returned, in order. Client-side refusals (bad topics) never reach the
//! bridge; a retry with the same id reaches it and is dropped as a duplicate.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

/// The data of the first event, as the bridge must forward it: compact, keys in the
/// publisher's order (not sorted), non-ASCII raw, `{}` still an object.
const FIRST_DATA: &str =
    r#"{"n":1,"text":"Zürich 🌩 \"quoted\" a/b","nested":{"b":[1,2],"a":null},"empty":{}}"#;

/// The events every driver publishes, in order, on `sdk:<language>`.
fn events(language: &str) -> Value {
    let topic = format!("sdk:{language}");
    let given = format!("{language}-given-1");
    let first: Value = serde_json::from_str(FIRST_DATA).expect("FIRST_DATA is JSON");
    json!([
        {"topic": topic, "data": first},
        {"topic": topic, "data": [1, "two"], "id": given},
        {"topic": "sdk::bad", "data": 1},
        {"topic": "sdk:*", "data": 1},
        {"topic": topic, "data": "retried", "id": given},
        {"topic": topic, "data_json": "{ \"raw\" : true }"},
        {"topic": topic, "data": null},
    ])
}

/// Runs `node tests/e2e_driver.js` of the Node client; killed after [`WAIT`].
fn node_driver(args: &[&str]) -> String {
    let child = Command::new("node")
        .arg(node_publisher_dir().join("tests/e2e_driver.js"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): install Node.js 20 or later"));
    let output = output_within(child);
    assert!(
        output.status.success(),
        "node e2e_driver.js failed ({}): {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the language's driver against `endpoint`; one JSON value per line it printed.
fn run_driver(language: &str, endpoint: &str) -> Vec<Value> {
    let events = events(language).to_string();
    let output = match language {
        "python" => {
            let driver = sdk_dir("python").join("tests/e2e_driver.py");
            python(
                r#"import runpy, sys; runpy.run_path(sys.argv[1], run_name="__main__")"#,
                &[driver.to_str().expect("UTF-8 path"), endpoint, &events],
            )
        }
        // `php` runs scripts relative to bridge/tests/php.
        "php" => php(
            "../../../publisher-sdk/php/tests/e2e_driver.php",
            &[endpoint, &events],
        ),
        "node" => node_driver(&[endpoint, &events]),
        other => panic!("no driver for {other}"),
    };
    output
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{language} driver printed non-JSON ({e}): {line}"))
        })
        .collect()
}

/// A lowercase UUIDv7 in text form.
fn assert_uuid7(id: &Value) -> String {
    let id = id
        .as_str()
        .unwrap_or_else(|| panic!("no id: {id}"))
        .to_string();
    let bytes = id.as_bytes();
    assert_eq!(bytes.len(), 36, "{id}");
    for (i, b) in bytes.iter().enumerate() {
        if [8, 13, 18, 23].contains(&i) {
            assert_eq!(*b, b'-', "{id}");
        } else {
            assert!(b.is_ascii_digit() || (b'a'..=b'f').contains(b), "{id}");
        }
    }
    assert_eq!(bytes[14], b'7', "version 7: {id}");
    assert!(b"89ab".contains(&bytes[19]), "RFC 9562 variant: {id}");
    id
}

fn assert_refused(line: &Value, reason: &str, topic: &str) {
    assert_eq!(line["error"], "invalid_topic", "{line}");
    assert_eq!(line["reason"], reason, "{line}");
    let message = line["message"].as_str().expect("message");
    assert!(message.contains(&format!("\"{topic}\"")), "{message}");
}

/// Reads the next event as text and as JSON, checking its envelope.
async fn next_event(ws: &mut Ws, topic: &str, id: &str) -> (String, Value) {
    let text = next_text(ws).await;
    let event: Value = serde_json::from_str(&text).expect("an event is JSON");
    assert_eq!(event["type"], "event", "{text}");
    assert_eq!(event["topic"], topic, "{text}");
    assert_eq!(event["id"], id, "{text}");
    (text, event)
}

async fn publishes_through_the_real_bridge(language: &str) {
    let bridge = Bridge::start();
    let mut ws = native_client(&bridge, &["sdk"]).await;
    let lines = run_driver(language, &bridge.zmq);
    assert_eq!(lines.len(), 8, "{language}: {lines:?}");
    let topic = format!("sdk:{language}");
    let given = format!("{language}-given-1");

    // What each call returned: generated ids, the given id, refusals, the retry.
    let first = assert_uuid7(&lines[0]["id"]);
    assert_eq!(lines[1]["id"], given.as_str());
    assert_refused(&lines[2], "empty_segment", "sdk::bad");
    assert_refused(&lines[3], "wildcard", "sdk:*");
    assert_eq!(
        lines[4]["id"],
        given.as_str(),
        "the retry is accepted client-side"
    );
    let raw = assert_uuid7(&lines[5]["id"]);
    let last = assert_uuid7(&lines[6]["id"]);
    assert!(
        first < raw && raw < last,
        "ids are time-ordered: {first} {raw} {last}"
    );
    assert_eq!(lines[7]["closed"], true, "close flushed within its linger");

    // What the browser side received, in publish order.
    let (text, _) = next_event(&mut ws, &topic, &first).await;
    assert!(
        text.contains(&format!(r#""data":{FIRST_DATA}"#)),
        "data forwarded compactly in the publisher's key order: {text}"
    );
    let (_, event) = next_event(&mut ws, &topic, &given).await;
    assert_eq!(event["data"], json!([1, "two"]));
    let (text, _) = next_event(&mut ws, &topic, &raw).await;
    assert!(text.contains(r#""data":{"raw":true}"#), "{text}");
    let (_, event) = next_event(&mut ws, &topic, &last).await;
    assert_eq!(event["data"], Value::Null);
    // The refused events never left; the retry did, and the bridge dropped it.
    assert_silent(&mut ws, Duration::from_millis(300)).await;
    bridge.wait_metric(
        r#"push_bridge_ingress_rejected_total{reason="duplicate"}"#,
        1.0,
    );
    assert_eq!(
        bridge.metric(r#"push_bridge_ingress_rejected_total{reason="bad_topic"}"#),
        0.0,
        "bad topics were refused by the client, not the bridge"
    );
}

#[tokio::test]
async fn python_client_publishes_through_the_bridge() {
    publishes_through_the_real_bridge("python").await;
}

#[tokio::test]
async fn php_client_publishes_through_the_bridge() {
    publishes_through_the_real_bridge("php").await;
}

#[tokio::test]
async fn node_client_publishes_through_the_bridge() {
    publishes_through_the_real_bridge("node").await;
}
