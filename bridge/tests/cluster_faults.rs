//! A cluster node killed (`kill -9`) while events flow, behind HAProxy, with the
//! project's example HAProxy config (`examples/cluster/haproxy.cfg`, through
//! `support::haproxy`), real bridges sharing one Redis log, and the Rust publisher SDK
//! pushing to every node at once (`connect_all`, resend window on).
//!
//! What it proves (docs/scaling.md "A node dies"): no client loses or receives twice
//! any event the publisher handed over, whether it was on the killed node or not; every
//! client ends with the same events in one order; the killed node's clients reconnect
//! through HAProxy to the nodes left and resume there from their last id
//! (`recovered: true`). Events the killed node had taken from ZeroMQ and not yet
//! appended are sent again by the publisher's resend window to the other nodes, and
//! the log drops those it already had by their publisher id. The counts are printed
//! (run with `--no-capture` to see them).

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use push_bridge_publisher::Publisher;
use serde_json::{json, Value};
use support::haproxy::{config_for, Haproxy};
use support::redis::{cluster_config, metric_sum, node_name, wait_readyz, RedisServer};
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// The one static token of every node (a shared tokens file), so a client's URL works
/// on whichever node HAProxy picks.
const TOKEN: &str = "cluster-faults-token";

/// What one dashboard saw, over all its connections.
#[derive(Debug, Default)]
struct Seen {
    /// The id of every event received, in order, duplicates included.
    ids: Vec<String>,
    /// Connections that were welcomed and subscribed (1 + reconnects).
    connections: usize,
    /// The `recovered` field of each subscribe that carried `since`.
    resumes: Vec<Value>,
}

/// Starts `count` nodes sharing `stream` in `redis` and one tokens file (in `tokens`).
fn start_cluster(
    redis: &RedisServer,
    stream: &str,
    count: usize,
    tokens: &std::path::Path,
) -> Vec<Bridge> {
    (0..count)
        .map(|index| {
            let node = Bridge::start_with_token(
                tokens,
                TOKEN,
                &cluster_config(redis, stream, &node_name(index)),
            );
            wait_readyz(&node, 200, WAIT);
            node
        })
        .collect()
}

/// Polls until `condition` holds, failing with `what` after `within`.
fn wait_until(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A native client that behaves like a dashboard: connected through `url`, subscribed
/// to `topic`; when its connection drops it reconnects (through the same `url`) with
/// `since` = the last id it received. Records everything in `seen`. At most 10
/// connections and 100 failed attempts; runs until aborted.
fn dashboard(
    url: String,
    topic: &'static str,
    seen: Arc<Mutex<Seen>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut failed_attempts = 0;
        loop {
            let since = seen.lock().unwrap().ids.last().cloned();
            let mut ws = match connect(&url, &["push-bridge.v1"], &[]).await {
                Ok((ws, _)) => ws,
                Err(e) => {
                    failed_attempts += 1;
                    assert!(
                        failed_attempts < 100,
                        "cannot reconnect through haproxy: {e:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let welcome = next_json(&mut ws).await;
            assert_eq!(welcome["type"], "welcome", "{welcome}");
            let mut request = json!({"type": "subscribe", "topics": [topic]});
            if let Some(since) = &since {
                request["since"] = json!(since);
            }
            send(&mut ws, &request.to_string()).await;
            let subscribed = next_json(&mut ws).await;
            assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
            {
                let mut seen = seen.lock().unwrap();
                seen.connections += 1;
                assert!(seen.connections <= 10, "too many reconnections");
                if since.is_some() {
                    seen.resumes.push(subscribed["recovered"].clone());
                }
            }
            // Read until the connection ends (then reconnect); bounded by a silence.
            loop {
                let message = tokio::time::timeout(Duration::from_secs(60), ws.next())
                    .await
                    .expect("60 s without a frame");
                match message {
                    Some(Ok(Message::Text(text))) => {
                        let frame: Value = serde_json::from_str(&text).expect("JSON");
                        assert_eq!(frame["type"], "event", "{frame}");
                        let id = frame["id"].as_str().expect("id").to_string();
                        seen.lock().unwrap().ids.push(id);
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                }
            }
        }
    })
}

#[test]
fn the_example_config_gets_its_bind_and_servers_replaced() {
    let example = "frontend f\n    bind :80\nbackend b\n    balance leastconn\n    \
                   server a 10.0.0.1:1\n    server b 10.0.0.2:1\n";
    let listen: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let backends: Vec<SocketAddr> = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(
        config_for(example, listen, &backends),
        "frontend f\n    bind 127.0.0.1:9\nbackend b\n    balance leastconn\n    \
         server bridge1 127.0.0.1:1\n    server bridge2 127.0.0.1:2\n    \
         server bridge3 127.0.0.1:3\n"
    );
}

/// Three nodes behind HAProxy, nine dashboards through it, the Rust SDK pushing 2 400
/// events (300 a second) round-robin to the three PULL sockets; node-b is killed
/// (SIGKILL) after 900. Every dashboard ends with all 2 400 exactly once, all in one
/// order; node-b's dashboards reconnected through HAProxy and resumed (`recovered:
/// true`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_while_the_sdk_pushes_to_all_loses_and_duplicates_nothing_for_anyone() {
    const EVENTS: usize = 2400;
    const PER_SECOND: u64 = 300;
    const KILL_AFTER: usize = 900;
    const CLIENTS: usize = 9;
    const KILLED: usize = 1;
    let redis = RedisServer::start();
    let stream = "node-killed";
    let tokens = tempfile::tempdir().expect("tempdir");
    let mut nodes = start_cluster(&redis, stream, 3, tokens.path());
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    let haproxy = tokio::task::block_in_place(|| Haproxy::start(&addrs));

    // Nine dashboards; leastconn spreads them three per node.
    let url = haproxy.url(&format!("token={TOKEN}"));
    let seen: Vec<Arc<Mutex<Seen>>> = (0..CLIENTS).map(|_| Arc::default()).collect();
    let mut clients = Vec::new();
    for s in &seen {
        clients.push(dashboard(url.clone(), "feed", Arc::clone(s)));
        let deadline = Instant::now() + WAIT;
        while s.lock().unwrap().connections == 0 {
            assert!(Instant::now() < deadline, "a dashboard never subscribed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let per_node: Vec<f64> = tokio::task::block_in_place(|| {
        nodes
            .iter()
            .map(|n| metric_sum(n, "push_bridge_connections", &[("protocol", "native")]))
            .collect()
    });
    assert_eq!(per_node.iter().sum::<f64>(), CLIENTS as f64, "{per_node:?}");
    let on_killed = per_node[KILLED] as usize;
    assert!(
        on_killed > 0,
        "HAProxy gave the node to be killed no client: {per_node:?}"
    );

    // The publisher: one PUSH socket connected to all three PULL sockets.
    let endpoints: Vec<String> = nodes.iter().map(|n| n.zmq.clone()).collect();
    let published = Arc::new(AtomicUsize::new(0));
    let publisher = {
        let published = Arc::clone(&published);
        std::thread::spawn(move || {
            let endpoints: Vec<&str> = endpoints.iter().map(String::as_str).collect();
            let publisher = Publisher::builder()
                .connect_all(&endpoints)
                .expect("connect_all");
            publisher
                .wait_connected(WAIT)
                .expect("a bridge is reachable");
            // All three handshakes (a peer not connected yet gets nothing).
            std::thread::sleep(Duration::from_millis(300));
            let started = Instant::now();
            let mut ids = Vec::with_capacity(EVENTS);
            for seq in 0..EVENTS as u64 {
                let due = started + Duration::from_micros(seq * 1_000_000 / PER_SECOND);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let id = publisher
                    .publish("feed", &json!({ "seq": seq }))
                    .unwrap_or_else(|e| panic!("publish {seq}: {e}"));
                ids.push(id);
                published.fetch_add(1, Ordering::Relaxed);
            }
            publisher.close(WAIT).expect("the publisher flushed");
            ids
        })
    };

    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(20), "events before the kill", || {
            published.load(Ordering::Relaxed) >= KILL_AFTER
        });
        nodes[KILLED].signal("KILL");
        let status = nodes[KILLED].wait_exit(WAIT);
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{status}"
        );
    });
    let killed_at = published.load(Ordering::Relaxed);

    let ids: Vec<String> = tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(40);
        while !publisher.is_finished() {
            assert!(Instant::now() < deadline, "the publisher did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
        publisher.join().expect("the publisher failed")
    });
    assert_eq!(ids.len(), EVENTS);
    let expected: HashSet<&String> = ids.iter().collect();
    assert_eq!(expected.len(), EVENTS, "the SDK's ids are unique");

    // Every dashboard gets them all (bounded), then a moment for any late duplicate.
    tokio::task::block_in_place(|| {
        wait_until(
            Duration::from_secs(30),
            "every dashboard got every event",
            || {
                seen.iter().all(|s| {
                    let s = s.lock().unwrap();
                    s.ids.iter().filter(|id| expected.contains(id)).count() >= EVENTS
                        || s.ids.len() > EVENTS
                })
            },
        );
        std::thread::sleep(Duration::from_secs(1));
    });
    for client in &clients {
        client.abort();
    }

    let survivors: Vec<&Bridge> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != KILLED)
        .map(|(_, n)| n)
        .collect();
    let (log_duplicates, appended, log_length) = tokio::task::block_in_place(|| {
        let sum = |name: &str| -> f64 { survivors.iter().map(|n| metric_sum(n, name, &[])).sum() };
        let length: u64 = redis
            .cli(&["XLEN", &format!("{stream}:log")])
            .parse()
            .expect("XLEN");
        (
            sum("push_bridge_cluster_duplicates_total"),
            sum("push_bridge_cluster_appended_total"),
            length,
        )
    });

    let reconnects: Vec<usize> = seen
        .iter()
        .map(|s| s.lock().unwrap().connections - 1)
        .collect();
    let received: Vec<usize> = seen.iter().map(|s| s.lock().unwrap().ids.len()).collect();
    println!(
        "published {EVENTS} (node-b killed after {killed_at}); log length {log_length}; \
         log duplicates (survivors) {log_duplicates}; appended by survivors {appended}; \
         clients per node {per_node:?}; received per client {received:?}; \
         reconnects per client {reconnects:?}"
    );

    let first: Vec<String> = seen[0].lock().unwrap().ids.clone();
    for (n, s) in seen.iter().enumerate() {
        let s = s.lock().unwrap();
        let unique: HashSet<&String> = s.ids.iter().collect();
        let lost = expected.difference(&unique).count();
        let duplicated = s.ids.len() - unique.len();
        let unknown = unique.difference(&expected).count();
        assert_eq!(
            (lost, duplicated, unknown),
            (0, 0, 0),
            "dashboard {n}: lost, duplicated, unknown (of {} received)",
            s.ids.len()
        );
        assert!(
            s.ids == first,
            "dashboard {n} got another order than dashboard 0"
        );
        assert!(
            s.resumes.iter().all(|r| *r == json!(true)),
            "dashboard {n} resumed without recovery: {:?}",
            s.resumes
        );
        assert_eq!(s.resumes.len(), s.connections - 1);
    }
    assert_eq!(
        reconnects.iter().sum::<usize>(),
        on_killed,
        "exactly the killed node's dashboards reconnected, once each: {reconnects:?}"
    );
    assert!(reconnects.iter().all(|&r| r <= 1), "{reconnects:?}");
    assert_eq!(log_length, EVENTS as u64, "the log holds every event once");
    drop(haproxy);
}
