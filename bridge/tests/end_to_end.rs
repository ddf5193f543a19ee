//! From a libzmq publisher (pyzmq) through the real binary to WebSocket clients:
//! PUSH and PUB, single-frame and multipart, and bad messages among good ones.

mod support;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use serde_json::json;
use support::*;

/// Sends each argv JSON list (of frames, strings) as one multipart message from a
/// PUSH socket, then lingers until delivered.
const PUSH_MESSAGES: &str = r#"
import json, sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.setsockopt(zmq.LINGER, 5000)
s.connect(sys.argv[1])
for message in sys.argv[2:]:
    s.send_multipart([f.encode() if isinstance(f, str) else bytes(f) for f in json.loads(message)])
s.close()
ctx.term()
"#;

/// Binds a PUB socket, says "bound", then sends each stdin line (a JSON list of
/// frames) as one message.
const PUB_FROM_STDIN: &str = r#"
import json, sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.PUB)
s.setsockopt(zmq.LINGER, 1000)
s.bind(sys.argv[1])
print("bound", flush=True)
for line in sys.stdin:
    s.send_multipart([f.encode() for f in json.loads(line)])
    print("sent", flush=True)
"#;

fn push(bridge: &Bridge, messages: &[serde_json::Value]) {
    let args: Vec<String> = messages.iter().map(|m| m.to_string()).collect();
    let mut argv: Vec<&str> = vec![&bridge.zmq];
    argv.extend(args.iter().map(String::as_str));
    python(PUSH_MESSAGES, &argv);
}

#[tokio::test]
async fn pyzmq_push_single_frame_and_multipart_reach_both_protocols() {
    let bridge = Bridge::start();
    let mut native = native_client(&bridge, &["article"]).await;
    let (mut wamp, _) = connect(&bridge.token_url(), &[], &[]).await.unwrap();
    next_json(&mut wamp).await;
    send(&mut wamp, r#"[5,"article"]"#).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    push(
        &bridge,
        &[
            json!([r#"{"topic":"article:1","data":{"form":"envelope"},"id":"e-1"}"#]),
            json!(["article:2", r#"{"form":"multipart"}"#]),
            json!(["article:3", "m-3", r#"{"form":"multipart-id"}"#]),
        ],
    );
    let first = next_json(&mut native).await;
    assert_eq!(
        first,
        json!({"type":"event","topic":"article:1","id":"e-1","data":{"form":"envelope"}})
    );
    let second = next_json(&mut native).await;
    assert_eq!(second["topic"], "article:2");
    assert!(
        second["id"].as_str().unwrap().contains('-'),
        "assigned id: {second}"
    );
    assert_eq!(next_json(&mut native).await["id"], "m-3");

    assert_eq!(
        next_json(&mut wamp).await,
        json!([8, "article", {"form":"envelope"}])
    );
    assert_eq!(
        next_json(&mut wamp).await,
        json!([8, "article", {"form":"multipart"}])
    );
    assert_eq!(
        next_json(&mut wamp).await,
        json!([8, "article", {"form":"multipart-id"}])
    );
}

#[tokio::test]
async fn every_bad_ingress_form_is_rejected_and_counted_while_good_ones_flow() {
    let bridge = Bridge::start_with("ingress.max_message_bytes = \"1KiB\"");
    let mut ws = native_client(&bridge, &["ok"]).await;
    let big = "x".repeat(2000);
    push(
        &bridge,
        &[
            json!(["ok", "1"]),
            json!(["{not json"]),                          // bad_json
            json!([r#"{"no_topic_field":1}"#]),            // no_topic (legacy, nothing configured)
            json!([r#"[1,2]"#]),                           // no_topic (not an object)
            json!([r#"{"topic":"bad topic","data":1}"#]),  // bad_topic
            json!(["ok:*", "1"]),                          // bad_topic (a pattern)
            json!([r#"{"topic":"ok","data":1,"id":""}"#]), // bad_id
            json!(["ok", "1", "2", "3"]),                  // frame_count
            json!(["ok", format!("\"{big}\"")]),           // too_large
            json!(["ok", "2"]),
        ],
    );
    // Bad UTF-8 needs raw bytes.
    python(
        r#"
import sys, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.PUSH); s.setsockopt(zmq.LINGER, 5000)
s.connect(sys.argv[1])
s.send_multipart([b"ok", b'"\xff\xfe"'])
s.send_multipart([b"ok", b"3"])
s.close(); ctx.term()
"#,
        &[&bridge.zmq],
    );
    for expected in [1, 2, 3] {
        assert_eq!(next_json(&mut ws).await["data"], expected);
    }
    for (reason, count) in [
        ("bad_json", 1.0),
        ("no_topic", 2.0),
        ("bad_topic", 2.0),
        ("bad_id", 1.0),
        ("frame_count", 1.0),
        ("too_large", 1.0),
        ("bad_utf8", 1.0),
    ] {
        let sample = format!(r#"push_bridge_ingress_rejected_total{{reason="{reason}"}}"#);
        assert_eq!(bridge.metric(&sample), count, "{sample}");
    }
    assert_eq!(
        bridge.metric(&format!(
            r#"push_bridge_ingress_messages_total{{socket="{}"}}"#,
            bridge.zmq
        )),
        12.0
    );
    let log = bridge.stderr();
    assert!(
        log.contains("bad_json"),
        "a warning names the reason:\n{log}"
    );
}

#[tokio::test]
async fn the_bridge_subscribes_to_a_pyzmq_pub() {
    let pub_endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let mut peer = PythonPeer::spawn(PUB_FROM_STDIN, &[&pub_endpoint]);
    let mut out = BufReader::new(peer.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "bound");

    // SUB prefixes filter on the first frame: `news` lets multipart `news…` topics
    // through, `{` lets single-frame JSON envelopes through.
    let bridge = Bridge::start_with(&format!(
        "ingress.sub = [\"{pub_endpoint}\"]\ningress.sub_prefixes = [\"news\", \"{{\"]"
    ));
    let mut ws = native_client(&bridge, &["news", "sport"]).await;
    let mut stdin = peer.0.stdin.take().unwrap();
    // PUB/SUB drops what is sent before the subscription arrives: send until the
    // first one is seen, then check the rest arrive in order.
    use std::io::Write;
    let mut received = None;
    for attempt in 0..100 {
        writeln!(stdin, "{}", json!(["news:warmup", attempt.to_string()])).unwrap();
        line.clear();
        out.read_line(&mut line).unwrap();
        if let Ok(text) = tokio::time::timeout(Duration::from_millis(100), next_text(&mut ws)).await
        {
            received = Some(text);
            break;
        }
    }
    assert!(received.is_some(), "the SUB socket never received");
    // Drain warmups still in flight.
    while tokio::time::timeout(Duration::from_millis(200), next_text(&mut ws))
        .await
        .is_ok()
    {}
    writeln!(stdin, "{}", json!(["sport", "0"])).unwrap();
    writeln!(stdin, "{}", json!(["news:1", "1"])).unwrap();
    writeln!(stdin, "{}", json!([r#"{"topic":"sport","data":2}"#])).unwrap();
    writeln!(stdin, "{}", json!(["news:3", "m-3", r#"{"n":3}"#])).unwrap();
    stdin.flush().unwrap();
    // Multipart `sport` is filtered out by the SUB prefix before the bridge sees it;
    // the single-frame envelope passes the `{` prefix.
    assert_eq!(next_json(&mut ws).await["data"], 1);
    let envelope = next_json(&mut ws).await;
    assert_eq!(
        (envelope["topic"].as_str(), envelope["data"].as_i64()),
        (Some("sport"), Some(2))
    );
    let with_id = next_json(&mut ws).await;
    assert_eq!(
        (with_id["id"].as_str(), &with_id["data"]),
        (Some("m-3"), &json!({"n": 3}))
    );
}

#[tokio::test]
async fn the_publish_command_delivers_an_event() {
    let bridge = Bridge::start();
    let mut ws = native_client(&bridge, &["package_created"]).await;
    let output = run_bridge(&[
        "publish".as_ref(),
        "package_created".as_ref(),
        r#"{"package":{"id":7},"state":"update"}"#.as_ref(),
        "--endpoint".as_ref(),
        bridge.zmq.as_ref(),
        "--id".as_ref(),
        "cli-1".as_ref(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "cli-1");
    let event = next_json(&mut ws).await;
    assert_eq!(event["id"], "cli-1");
    assert_eq!(event["data"], json!({"package":{"id":7},"state":"update"}));

    // Bad input is refused locally with a clear message and a non-zero exit.
    let output = run_bridge(&[
        "publish".as_ref(),
        "a b".as_ref(),
        "1".as_ref(),
        "--endpoint".as_ref(),
        bridge.zmq.as_ref(),
    ]);
    assert!(!output.status.success());
    let output = run_bridge(&[
        "publish".as_ref(),
        "ok".as_ref(),
        "{nope".as_ref(),
        "--endpoint".as_ref(),
        bridge.zmq.as_ref(),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr)
        .to_lowercase()
        .contains("json"));
}
