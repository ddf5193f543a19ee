//! What a WebSocket client sees when the bridge drains (SIGTERM), against the real
//! binary. Each client holds events the bridge has not written yet when the drain
//! begins (more than the kernel's socket buffers take), and must receive all of them
//! first. Then:
//! - a WAMP v1 session (Superdesk; AutobahnJS 0.x's `ab.connect`) ends without a close
//!   frame, as Ratchet's exit ended it: `ab.connect` counts that as a lost connection
//!   and reconnects, where a clean close would make it give up for good. The client
//!   here does what `ab.connect` does: it reconnects to the restarted bridge on the same
//!   port, is welcomed, subscribes again and receives a new event;
//! - a native session gets the close frame `1001`.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::*;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "drain-token";
const TOPIC: &str = "package_created";
/// Events published before the stop; [`PADDING`] bytes each, 25 MiB in all: far more
/// than the kernel's buffers of an unread loopback connection hold, so most of them
/// still wait in the bridge when the drain begins.
const EVENTS: u64 = 400;
const PADDING: usize = 64 * 1024;

/// A bridge with a fixed token (a reconnecting client keeps its URL).
fn start_bridge(dir: &Path) -> Bridge {
    Bridge::start_with_token(dir, TOKEN, "")
}

/// Publishes [`EVENTS`] events `{"seq": n, "pad": …}` while the subscribed client of
/// `protocol` (the metrics label) reads nothing, and waits until the bridge queued all
/// of them for it. Checks that some were not written yet: the drain must write them.
fn publish_a_backlog(bridge: &Bridge, protocol: &str) {
    let publisher = bridge.publisher();
    let pad = "x".repeat(PADDING);
    for seq in 0..EVENTS {
        publisher
            .publish(TOPIC, &json!({ "seq": seq, "pad": pad }))
            .unwrap();
    }
    publisher.close(Duration::from_secs(10)).unwrap();
    bridge.wait_metric(
        &format!(r#"push_bridge_events_queued_total{{protocol="{protocol}"}}"#),
        EVENTS as f64,
    );
    let written = bridge.metric(&format!(
        r#"push_bridge_events_delivered_total{{protocol="{protocol}"}}"#
    ));
    assert!(
        written < EVENTS as f64,
        "the kernel took all {EVENTS} events ({written} written): nothing is left for the \
         drain to write; raise EVENTS or PADDING"
    );
}

/// How a WebSocket connection ended, as a browser tells its `onclose`: `Clean` when a
/// close frame arrived (`wasClean`: AutobahnJS 0.x reports "closed" and does not
/// reconnect), `Lost` otherwise (AutobahnJS reports "lost" and reconnects).
#[derive(Debug)]
enum Ended {
    Clean(Option<u16>),
    Lost(WsError),
}

/// Reads the text frames a session receives until its connection ends.
async fn read_to_the_end(ws: &mut Ws) -> (Vec<Value>, Ended) {
    let mut frames = Vec::new();
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the session neither sent nor ended in time");
        match next {
            Some(Ok(Message::Text(text))) => frames.push(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return (frames, Ended::Clean(frame.map(|f| u16::from(f.code))))
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => return (frames, Ended::Lost(error)),
            None => return (frames, Ended::Lost(WsError::ConnectionClosed)),
        }
    }
}

/// The `seq` of each event frame, checking the frames are events on [`TOPIC`].
fn seqs(frames: &[Value], data: impl Fn(&Value) -> &Value) -> Vec<u64> {
    frames
        .iter()
        .map(|frame| {
            let data = data(frame);
            assert_eq!(data["pad"].as_str().map(str::len), Some(PADDING));
            data["seq"].as_u64().unwrap()
        })
        .collect()
}

/// One WAMP v1 session as `ab.connect` opens it: offers `wamp`, waits for WELCOME,
/// subscribes to [`TOPIC`]. `None` while nothing accepts the connection.
async fn ab_session(url: &str) -> Option<Ws> {
    let (mut ws, protocol) = connect(url, &["wamp"], &[]).await.ok()?;
    assert_eq!(protocol.as_deref(), Some("wamp"));
    let welcome = match tokio::time::timeout(WAIT, ws.next()).await.ok()?? {
        Ok(Message::Text(text)) => serde_json::from_str::<Value>(&text).unwrap(),
        _ => return None,
    };
    assert_eq!(welcome[0], 0, "WELCOME first: {welcome}");
    send(&mut ws, &json!([5, TOPIC]).to_string()).await;
    Some(ws)
}

/// Reconnects as `ab.connect` does after a lost connection: retries until a bridge
/// welcomes it again.
async fn ab_reconnect(url: String) -> Ws {
    let deadline = Instant::now() + 3 * WAIT;
    loop {
        if let Some(ws) = ab_session(&url).await {
            return ws;
        }
        assert!(Instant::now() < deadline, "never got back in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_wamp1_session_gets_its_events_no_close_frame_and_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = start_bridge(dir.path());
    let url = first.url(&format!("token={TOKEN}"));
    let (addr, endpoint) = (first.addr, first.zmq.clone());
    let config = std::fs::read_to_string(first.config_path()).unwrap();

    let mut ws = ab_session(&url).await.expect("the first bridge welcomes");
    first.wait_metric("push_bridge_subscriptions", 1.0);
    publish_a_backlog(&first, "wamp1");
    first.signal("TERM");

    let (frames, ended) = read_to_the_end(&mut ws).await;
    assert!(
        frames.iter().all(|f| f[0] == 8 && f[1] == TOPIC),
        "only EVENT frames"
    );
    assert_eq!(
        seqs(&frames, |f| &f[2]),
        (0..EVENTS).collect::<Vec<_>>(),
        "every event published before the stop, in order, before the end"
    );
    // The end is the TCP connection's (a FIN), with no close frame before it.
    assert!(
        matches!(
            ended,
            Ended::Lost(WsError::Protocol(
                ProtocolError::ResetWithoutClosingHandshake
            ))
        ),
        "a WAMP v1 session must end without a close frame, got {ended:?}"
    );
    drop(ws);

    // The connection was lost, so `ab.connect` reconnects (retrying while the bridge is
    // down); meanwhile the bridge exits and a new one starts on the same ports.
    let client = tokio::spawn(ab_reconnect(url));
    let second = tokio::task::spawn_blocking(move || {
        let status = first.wait_exit(WAIT);
        assert!(status.success(), "{status}\n{}", first.stderr());
        Bridge::start_raw(tempfile::tempdir().unwrap(), addr, endpoint, &config, &[])
    })
    .await
    .unwrap();
    let mut ws = client.await.unwrap();
    second.wait_metric("push_bridge_subscriptions", 1.0);
    second
        .publisher()
        .publish(TOPIC, &json!({"after": "restart"}))
        .unwrap();
    assert_eq!(
        next_json(&mut ws).await,
        json!([8, TOPIC, {"after": "restart"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_native_session_gets_its_events_then_1001() {
    let dir = tempfile::tempdir().unwrap();
    let mut bridge = start_bridge(dir.path());
    let mut ws = native_with_token(&bridge, TOKEN).await;
    send(
        &mut ws,
        &json!({"type": "subscribe", "topics": [TOPIC]}).to_string(),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    publish_a_backlog(&bridge, "native");
    bridge.signal("TERM");

    let (frames, ended) = read_to_the_end(&mut ws).await;
    assert!(frames
        .iter()
        .all(|f| f["type"] == "event" && f["topic"] == TOPIC));
    assert_eq!(
        seqs(&frames, |f| &f["data"]),
        (0..EVENTS).collect::<Vec<_>>(),
        "every event published before the stop, in order, before the close"
    );
    assert!(
        matches!(ended, Ended::Clean(Some(1001))),
        "a native session is closed with 1001, got {ended:?}"
    );
    let status = bridge.wait_exit(WAIT);
    assert!(status.success(), "{status}");
}
