//! Faults and abuse against the real binary (docs/reliability.md lists every case and
//! the test proving it): slowloris and half-open clients, connection churn without
//! leaks, hostile WebSocket frames, and garbage on the ZeroMQ port. After each, a
//! normal client still gets a freshly published event.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The bridge still serves: a new native client subscribes and gets an event published
/// after it (with the Rust SDK).
async fn still_serves(bridge: &Bridge) {
    let mut ws = native_client(bridge, &["probe"]).await;
    let publisher = bridge.publisher();
    let marker = rand_marker();
    publisher
        .publish("probe", &json!({ "marker": marker }))
        .unwrap();
    let event = next_json(&mut ws).await;
    assert_eq!(event["data"]["marker"], marker, "{event}");
    assert_eq!(http_get(bridge.addr, "/readyz").unwrap().0, 200);
}

fn rand_marker() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Reads `ws` in a task for as long as it is open (so pings are answered) and hands
/// each text frame over as JSON.
fn reading(
    mut ws: Ws,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message {
                let value = serde_json::from_str(&text).expect("JSON");
                if tx.send(value).is_err() {
                    return;
                }
            }
        }
    });
    (task, rx)
}

async fn next_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) -> serde_json::Value {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an event in time")
        .expect("the client is still connected")
}

/// A masked client text frame (mask key 0, so the payload goes as it is).
fn client_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n < 65536 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

/// A native client on a raw socket with a tiny receive buffer: upgraded, subscribed to
/// `topic`, and never read again after the 101 answer.
async fn raw_client_that_never_reads(bridge: &Bridge, topic: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(bridge.addr).await.unwrap();
    let request = format!(
        "GET /?token={} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: push-bridge.v1\r\n\r\n",
        bridge.token(),
        bridge.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(
            tokio::time::timeout(WAIT, stream.read_u8())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    let subscribe = json!({"type": "subscribe", "topics": [topic]}).to_string();
    stream
        .write_all(&client_text_frame(subscribe.as_bytes()))
        .await
        .unwrap();
    stream
}

/// A client that upgraded and subscribed, then stopped reading while its topic is busy
/// (so the bridge's writes to it block on a full socket), is still closed by the
/// heartbeat: its session must not hang on the write forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_client_with_full_buffers_is_closed_by_the_heartbeat() {
    const EVENTS: u64 = 150;
    let bridge = Bridge::start_with("server.heartbeat = \"500ms\"");
    let gauge = r#"push_bridge_connections{protocol="native"}"#;
    let mut healthy = native_client(&bridge, &["big"]).await;
    let stuck = raw_client_that_never_reads(&bridge, "big").await;
    bridge.wait_metric("push_bridge_subscriptions", 2.0);
    assert_eq!(bridge.metric(gauge), 2.0);

    // 150 events of 64 KiB: ~10 MB, far more than the socket buffers between the bridge
    // and the stuck client hold, far fewer frames than its send queue (1024) holds, so
    // this is not a slow-consumer 4008 but a write that never completes.
    let (events, mut healthy) = reading(healthy);
    let publisher = bridge.publisher();
    let padding = "x".repeat(64 * 1024);
    for seq in 0..EVENTS {
        publisher
            .publish("big", &json!({"seq": seq, "pad": padding}))
            .unwrap();
    }
    for seq in 0..EVENTS {
        assert_eq!(next_event(&mut healthy).await["data"]["seq"], seq);
    }
    let started = Instant::now();
    // Two heartbeats without an answer, checked at the next tick: ~1.5 s; allow 6 s.
    let deadline = started + Duration::from_secs(6);
    while bridge.metric(gauge) > 1.0 {
        assert!(
            Instant::now() < deadline,
            "the client that stopped reading is still connected {:?} after the last event \
             (slow consumer closes: {})",
            started.elapsed(),
            bridge.metric("push_bridge_slow_consumer_closes_total")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "stuck client dropped {:?} after the last event",
        started.elapsed()
    );
    assert_eq!(bridge.metric("push_bridge_subscriptions"), 1.0);
    assert_eq!(bridge.metric("push_bridge_slow_consumer_closes_total"), 0.0);
    drop(stuck);
    publisher.publish("big", &json!({"seq": EVENTS})).unwrap();
    assert_eq!(next_event(&mut healthy).await["data"]["seq"], EVENTS);
    assert!(
        !events.is_finished(),
        "the healthy client is still connected"
    );
    still_serves(&bridge).await;
}
