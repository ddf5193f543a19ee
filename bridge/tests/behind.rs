//! Falling behind is visible (docs/operations.md "Falling behind"), against the real
//! binary: when many clients' queues grow at once, `push_bridge_behind` turns 1 and
//! the log warns, naming what to do; when they read again it turns 0 and the log says
//! the bridge caught up. One stalled client among healthy readers is not the bridge
//! falling behind.
//!
//! The stalled clients stop reading with a small receive buffer, so a few hundred
//! KiB fill their sockets and the rest waits in the bridge's queues (under
//! `server.send_queue`, so nobody is closed with 4008). Waits are bounded and
//! generous: the sampler looks once a second and decides after two samples.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

/// The size of each event's data, and the most events a test publishes.
const DATA_BYTES: usize = 16 * 1024;
const MAX_EVENTS: u64 = 2000;

/// How long the sampler may take to see and decide (it needs a few seconds).
const DECIDE: Duration = Duration::from_secs(30);

/// A native client on `topic` whose socket takes little before it is full.
async fn small_buffer_client(bridge: &Bridge, topic: &str) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(bridge.addr).await.unwrap();
    let (mut ws, _) = connect_over(stream, &bridge.token_url(), &["push-bridge.v1"], &[])
        .await
        .expect("connect");
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    send(
        &mut ws,
        &json!({"type": "subscribe", "topics": [topic]}).to_string(),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    ws
}

/// Publishes events of [`DATA_BYTES`] on `topic`, from a blocking thread, in batches until the
/// bridge reports `queued` event frames waiting (the kernel's socket buffers, whose
/// size the test does not know, are full by then), then a last small event marked
/// `end`. Returns how many events it published before that one.
fn publish_until_queued(
    bridge: &Bridge,
    topic: &'static str,
    queued: f64,
) -> tokio::task::JoinHandle<u64> {
    let publisher = bridge.publisher();
    let addr = bridge.addr;
    tokio::task::spawn_blocking(move || {
        let filler = "x".repeat(DATA_BYTES);
        let mut seq = 0;
        let mut filled = false;
        while !filled && seq < MAX_EVENTS {
            for _ in 0..50 {
                publisher
                    .publish(topic, &json!({"seq": seq, "filler": filler}))
                    .unwrap();
                seq += 1;
            }
            std::thread::sleep(Duration::from_millis(200));
            let (_, body) = http_get(addr, "/metrics").expect("GET /metrics");
            filled = metric_value(&body, "push_bridge_queued_frames") >= queued;
        }
        assert!(filled, "the queues never filled");
        publisher
            .publish(topic, &json!({"seq": seq, "end": true}))
            .unwrap();
        publisher.close(Duration::from_secs(5)).unwrap();
        seq
    })
}

/// Reads events, in order, up to the one marked `end`; returns how many came before.
async fn read_to_end(ws: &mut Ws) -> u64 {
    for expected in 0.. {
        let event = next_json(ws).await;
        assert_eq!(event["data"]["seq"], expected);
        if event["data"]["end"] == true {
            return expected;
        }
    }
    unreachable!()
}

/// Waits, polling `/metrics` from a blocking thread, until `sample` equals `value`.
async fn wait_metric_eq(bridge: &Bridge, sample: &'static str, value: f64) {
    let addr = bridge.addr;
    tokio::task::spawn_blocking(move || {
        wait_until(DECIDE, &format!("{sample} = {value}"), || {
            let (_, body) = http_get(addr, "/metrics").expect("GET /metrics");
            metric_value(&body, sample) == value
        });
    })
    .await
    .unwrap();
}

/// The first line of the bridge's log that contains `text`.
fn log_line(stderr: &str, text: &str) -> String {
    stderr
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no {text:?} in\n{stderr}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_late_at_once_make_it_behind_until_they_read_again() {
    const STALLED: usize = 8;
    let bridge = Bridge::start();
    assert_eq!(bridge.metric("push_bridge_behind"), 0.0);
    let mut clients = Vec::new();
    for _ in 0..STALLED {
        clients.push(small_buffer_client(&bridge, "feed").await);
    }
    // Nobody reads: every client's socket fills and the rest waits in its queue.
    let published = publish_until_queued(&bridge, "feed", 20.0 * STALLED as f64)
        .await
        .unwrap();
    wait_metric_eq(&bridge, "push_bridge_behind", 1.0).await;
    assert!(bridge.metric("push_bridge_lagging_connections") >= STALLED as f64 / 2.0);
    assert!(bridge.metric("push_bridge_queued_frames") > 0.0);
    let warning = log_line(&bridge.stderr(), "the bridge is falling behind");
    println!("{published} events published; {warning}");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("more CPU cores"), "{warning}");
    assert!(warning.contains("docs/scaling.md"), "{warning}");
    assert_eq!(bridge.metric("push_bridge_slow_consumer_closes_total"), 0.0);

    // They read again: every event arrives, the queues empty, the bridge catches up
    // (with every client still connected: reading is enough).
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let read = read_to_end(&mut ws).await;
                (read, ws)
            })
        })
        .collect();
    let mut clients = Vec::new();
    for reader in readers {
        let (read, ws) = reader.await.unwrap();
        assert_eq!(read, published);
        clients.push(ws);
    }
    wait_metric_eq(&bridge, "push_bridge_behind", 0.0).await;
    assert_eq!(
        bridge.metric(r#"push_bridge_connections{protocol="native"}"#),
        STALLED as f64
    );
    assert_eq!(bridge.metric("push_bridge_queued_frames"), 0.0);
    let stderr = bridge.stderr();
    let caught_up = log_line(&stderr, "the bridge has caught up");
    println!("{caught_up}");
    assert!(caught_up.contains("INFO"), "{caught_up}");
    assert_eq!(
        stderr.matches("the bridge is falling behind").count(),
        1,
        "one warning, not one per sample:\n{stderr}"
    );
    drop(clients);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stalled_client_among_readers_is_not_the_bridge_falling_behind() {
    const READERS: usize = 7;
    let bridge = Bridge::start();
    let stalled = small_buffer_client(&bridge, "feed").await;
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut ws = native_client(&bridge, &["feed"]).await;
        readers.push(tokio::spawn(async move { read_to_end(&mut ws).await }));
    }
    let published = publish_until_queued(&bridge, "feed", 20.0).await.unwrap();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), published);
    }
    // The stalled client's events wait, and are seen to wait...
    wait_metric_eq(&bridge, "push_bridge_lagging_connections", 1.0).await;
    // ... for long enough that many lagging clients would have made it behind.
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(5) {
        assert_eq!(bridge.metric("push_bridge_behind"), 0.0);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let queued = bridge.metric("push_bridge_queued_frames");
    println!("{published} events published; {queued} frames wait for the stalled client");
    assert!(queued > 0.0);
    let stderr = bridge.stderr();
    assert!(!stderr.contains("falling behind"), "{stderr}");
    drop(stalled);
}
