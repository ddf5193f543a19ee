//! Cluster mode against real Redis: several real bridges (`[cluster]`) sharing one
//! Redis Streams log in a `redis-server` each test starts for itself.
//!
//! What it proves: events pushed to any node reach every client on every node exactly
//! once and in one order, with the same ids everywhere; a publisher id is appended once
//! whichever node gets it; a client resumes on another node than the one it left
//! (native `since` and SSE `Last-Event-ID`) with no gap and no duplicate, and gets
//! `recovered: false` / `event: reset` once the log was flushed or the id was trimmed
//! from the history; Redis going away for
//! a while closes no client, turns `/readyz` (not `/healthz`) to 503 and loses nothing;
//! a node started before its Redis serves and catches up, and one started after
//! events were appended loads them for resumes without delivering them again;
//! and `check-config` refuses what cannot work with `[cluster]` and never prints the
//! Redis password.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::cluster::*;
use support::redis::{
    cluster_config, log_length, metric_sum, start_nodes, wait_metric_eq, wait_readyz, RedisServer,
};
use support::*;

/// A pyzmq PUSH socket connected to every endpoint of argv[1] (comma-separated):
/// libzmq deals the messages round-robin over them. Sends argv[3] events
/// `[topic, {"seq": n}]` (no publisher id) on topic argv[2], argv[4] a second, then
/// lingers until they are delivered.
const PYZMQ_PUSH: &str = r#"
import json, sys, time, zmq
endpoints, topic = sys.argv[1].split(","), sys.argv[2]
count, per_second = int(sys.argv[3]), int(sys.argv[4])
ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.setsockopt(zmq.LINGER, 20000)
for endpoint in endpoints:
    s.connect(endpoint)
started = time.monotonic()
for seq in range(count):
    due = started + seq / per_second
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    s.send_multipart([topic.encode(), json.dumps({"seq": seq}).encode()])
s.close()
ctx.term()
"#;

/// Starts [`PYZMQ_PUSH`] towards `nodes`' PULL endpoints.
fn pyzmq_push(nodes: &[&Bridge], topic: &str, count: u64, per_second: u64) -> PythonPeer {
    let endpoints: Vec<&str> = nodes.iter().map(|n| n.zmq.as_str()).collect();
    PythonPeer::spawn(
        PYZMQ_PUSH,
        &[
            &endpoints.join(","),
            topic,
            &count.to_string(),
            &per_second.to_string(),
        ],
    )
}

/// A metric summed over every node.
fn cluster_sum(nodes: &[Bridge], name: &str, labels: &[(&str, &str)]) -> f64 {
    nodes.iter().map(|n| metric_sum(n, name, labels)).sum()
}

/// Three nodes, one publisher dealing its events over all three (no publisher ids), one
/// client per node: every client gets every event once, all in the same order with the
/// same ids, every node appended some, and the log holds each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_pushed_round_robin_to_three_nodes_reach_every_client_once_in_one_order() {
    const EVENTS: usize = 3000;
    let redis = RedisServer::start();
    let stream = "round-robin";
    let nodes = start_nodes(&redis, stream, 3, "");
    let mut collectors = Vec::new();
    for node in &nodes {
        let ws = native_client(node, &["feed"]).await;
        collectors.push(collect(ws, EVENTS, WAIT, Arc::new(AtomicUsize::new(0))));
    }

    let mut publisher = pyzmq_push(
        &nodes.iter().collect::<Vec<_>>(),
        "feed",
        EVENTS as u64,
        500,
    );
    tokio::task::block_in_place(|| finish(&mut publisher, Duration::from_secs(40)));

    let mut orders: Vec<Vec<String>> = Vec::new();
    for (node, collector) in nodes.iter().zip(collectors) {
        let (mut ws, events) = tokio::time::timeout(Duration::from_secs(30), collector)
            .await
            .expect("every client got its events in time")
            .expect("a client failed");
        let mut seqs: Vec<u64> = events.iter().map(seq).collect();
        seqs.sort_unstable();
        let expected: Vec<u64> = (0..EVENTS as u64).collect();
        assert!(
            seqs == expected,
            "a client of {} did not get every event once: {}",
            node.addr,
            first_differences(&seqs, &expected)
        );
        assert_silent(&mut ws, Duration::from_millis(300)).await;
        orders.push(events.iter().map(id).collect());
    }
    for ids in &orders {
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), EVENTS, "every event has its own id");
    }
    assert!(
        orders[0].iter().all(|id| id
            .split_once('-')
            .is_some_and(|(ms, seq)| { ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok() })),
        "an event without a publisher id gets its stream entry id: {:?}",
        &orders[0][..3]
    );
    assert_eq!(
        orders[0], orders[1],
        "node-a and node-b delivered in one order"
    );
    assert_eq!(
        orders[0], orders[2],
        "node-a and node-c delivered in one order"
    );

    let appended: Vec<f64> = nodes
        .iter()
        .map(|n| metric_sum(n, "push_bridge_cluster_appended_total", &[]))
        .collect();
    assert!(
        appended.iter().all(|&a| a > 0.0),
        "libzmq dealt events to every node, each appended some: {appended:?}"
    );
    assert_eq!(appended.iter().sum::<f64>(), EVENTS as f64, "{appended:?}");
    assert_eq!(log_length(redis.port, stream), EVENTS as u64);
}

/// A publisher retrying an event against another node: the log holds it once, every
/// client gets it once, and the second node counts the duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_id_sent_to_two_nodes_is_delivered_once() {
    let redis = RedisServer::start();
    let stream = "dedup";
    let nodes = start_nodes(&redis, stream, 2, "");
    let mut clients = Vec::new();
    for node in &nodes {
        clients.push(native_client(node, &["d"]).await);
    }
    let to_a = nodes[0].publisher();
    let to_b = nodes[1].publisher();

    to_a.publish_with_id("d", "dup-1", &json!({"from": "a"}))
        .unwrap();
    for client in &mut clients {
        let event = next_event(client, WAIT).await;
        assert_eq!(event["id"], "dup-1");
        assert_eq!(event["data"], json!({"from": "a"}));
    }
    // The retry goes to the other node; an event after it proves the retry was handled.
    to_b.publish_with_id("d", "dup-1", &json!({"from": "b"}))
        .unwrap();
    to_b.publish_with_id("d", "after-1", &json!({"from": "b"}))
        .unwrap();
    for client in &mut clients {
        let event = next_event(client, WAIT).await;
        assert_eq!(event["id"], "after-1", "the retry was delivered: {event}");
        assert_silent(client, Duration::from_millis(300)).await;
    }
    tokio::task::block_in_place(|| {
        wait_until(WAIT, "one duplicate counted", || {
            cluster_sum(&nodes, "push_bridge_cluster_duplicates_total", &[]) >= 1.0
        });
    });
    assert_eq!(
        cluster_sum(&nodes, "push_bridge_cluster_duplicates_total", &[]),
        1.0
    );
    assert_eq!(
        cluster_sum(&nodes, "push_bridge_cluster_appended_total", &[]),
        2.0
    );
    assert_eq!(log_length(redis.port, stream), 2);
}

/// A native client cut on node A while events flow resumes on node B with `since`:
/// exactly the events it missed, in order, then live ones, no gap, no duplicate. The
/// events carry no publisher id, so `since` is a stream entry id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_client_cut_on_one_node_resumes_on_another_without_gap_or_duplicate() {
    const EVENTS: u64 = 1500;
    const CUT_AFTER: usize = 300;
    let redis = RedisServer::start();
    let stream = "native-resume";
    let nodes = start_nodes(&redis, stream, 2, "");
    let (mut first, _) = subscribe_since(&nodes[0], &["feed"], None).await;
    let mut publisher = pyzmq_push(&[&nodes[0]], "feed", EVENTS, 500);

    let mut seen = Vec::new();
    let mut last_id = String::new();
    while seen.len() < CUT_AFTER {
        let event = next_event(&mut first, WAIT).await;
        seen.push(seq(&event));
        last_id = id(&event);
    }
    drop(first);
    // Events go on being published while the client is away.
    tokio::task::block_in_place(|| {
        wait_until(WAIT, "events published during the cut", || {
            log_length(redis.port, stream) >= CUT_AFTER as u64 + 300
        });
    });
    let missed_at_least = log_length(redis.port, stream) - CUT_AFTER as u64;

    let (mut second, subscribed) = subscribe_since(&nodes[1], &["feed"], Some(&last_id)).await;
    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    while seen.last() != Some(&(EVENTS - 1)) {
        seen.push(seq(&next_event(&mut second, WAIT).await));
    }
    tokio::task::block_in_place(|| finish(&mut publisher, Duration::from_secs(30)));
    let expected: Vec<u64> = (0..EVENTS).collect();
    assert!(
        seen == expected,
        "the union of both connections is not the published sequence: {}",
        first_differences(&seen, &expected)
    );
    assert!(
        missed_at_least < EVENTS - CUT_AFTER as u64,
        "some events came live after the resume"
    );
    assert_silent(&mut second, Duration::from_millis(300)).await;
    assert_eq!(resumes(&nodes[1], "recovered"), 1.0);
}

/// The same for Server-Sent Events: cut on node A, resumed on node B with
/// `Last-Event-ID`. These events carry publisher ids (the Rust SDK's).
#[test]
fn an_event_source_cut_on_one_node_resumes_on_another_with_last_event_id() {
    const EVENTS: u64 = 1500;
    const CUT_AFTER: usize = 300;
    let redis = RedisServer::start();
    let stream = "sse-resume";
    let nodes = start_nodes(&redis, stream, 2, "");
    let mut first = Sse::open(&nodes[0], "topic=feed", None);
    let publishing = publish_paced(&nodes[0], "feed", EVENTS, 500);

    let mut seen = Vec::new();
    let mut last_id = String::new();
    while seen.len() < CUT_AFTER {
        let frame = first.next().frame();
        seen.push(seq(&frame));
        last_id = id(&frame);
    }
    drop(first);
    wait_until(WAIT, "events published during the cut", || {
        log_length(redis.port, stream) >= CUT_AFTER as u64 + 300
    });

    let mut second = Sse::open(&nodes[1], "topic=feed", Some(&last_id));
    while seen.last() != Some(&(EVENTS - 1)) {
        let event = second.next();
        assert_ne!(event.event, "reset", "{last_id} is in the log");
        seen.push(seq(&event.frame()));
    }
    publishing.join().unwrap();
    let expected: Vec<u64> = (0..EVENTS).collect();
    assert!(
        seen == expected,
        "the union of both streams is not the published sequence: {}",
        first_differences(&seen, &expected)
    );
    second.assert_silent(Duration::from_millis(300));
    assert_eq!(resumes(&nodes[1], "recovered"), 1.0);
}

/// After FLUSHALL the log's epoch is new: an id that another node resumed from a moment
/// before is no longer resumable: native `recovered: false`, SSE `event: reset`, never
/// a silent gap; live events flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_log_answers_reset_to_resumes_on_any_node() {
    let redis = RedisServer::start();
    let stream = "flushed";
    let nodes = start_nodes(&redis, stream, 2, "");
    let mut watcher = native_client(&nodes[0], &["f"]).await;
    let mut publisher = pyzmq_push(&[&nodes[0]], "f", 5, 100);
    let mut last_id = String::new();
    for n in 0..5 {
        let event = next_event(&mut watcher, WAIT).await;
        assert_eq!(seq(&event), n);
        last_id = id(&event);
    }
    tokio::task::block_in_place(|| finish(&mut publisher, WAIT));

    // Before the flush, node B resumes from that id.
    let (mut control, subscribed) = subscribe_since(&nodes[1], &["f"], Some(&last_id)).await;
    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    assert_silent(&mut control, Duration::from_millis(200)).await;
    drop(control);

    assert_eq!(redis.cli(&["FLUSHALL"]), "OK");
    let (mut native, subscribed) = subscribe_since(&nodes[1], &["f"], Some(&last_id)).await;
    assert_eq!(subscribed["recovered"], false, "{subscribed}");
    let mut sse = tokio::task::block_in_place(|| {
        let mut sse = Sse::open(&nodes[1], "topic=f", Some(&last_id));
        let reset = sse.next();
        assert_eq!(reset.event, "reset", "{reset:?}");
        assert_eq!(reset.data, "{}");
        sse
    });

    // Live events flow again, to every client.
    let mut publisher = pyzmq_push(&[&nodes[0]], "f", 1, 100);
    tokio::task::block_in_place(|| finish(&mut publisher, WAIT));
    assert_eq!(seq(&next_event(&mut native, WAIT).await), 0);
    assert_eq!(seq(&next_event(&mut watcher, WAIT).await), 0);
    tokio::task::block_in_place(|| {
        assert_eq!(seq(&sse.next().frame()), 0);
        sse.assert_silent(Duration::from_millis(200));
    });
    assert_silent(&mut native, Duration::from_millis(200)).await;
    assert_eq!(nodes.iter().map(|n| resumes(n, "reset")).sum::<f64>(), 2.0);
    assert_eq!(
        nodes.iter().map(|n| resumes(n, "recovered")).sum::<f64>(),
        1.0
    );
}

/// Resumes are bounded by the history: with `history.size = 10`, an id that left a
/// node's copy of the log answers `recovered: false` (SSE `event: reset`) on another
/// node, and one still in it replays exactly what followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_a_trimmed_id_answers_reset_on_another_node() {
    const EVENTS: u64 = 50;
    let redis = RedisServer::start();
    let stream = "trimmed";
    let nodes = start_nodes(&redis, stream, 2, "history.size = 10");
    let mut watcher = native_client(&nodes[0], &["t"]).await;
    let mut publisher = pyzmq_push(&[&nodes[0]], "t", EVENTS, 500);
    let mut ids = Vec::new();
    for n in 0..EVENTS {
        let event = next_event(&mut watcher, WAIT).await;
        assert_eq!(seq(&event), n);
        ids.push(id(&event));
    }
    tokio::task::block_in_place(|| finish(&mut publisher, WAIT));
    // Node B has read them all too (its copy keeps the newest 10).
    tokio::task::block_in_place(|| {
        wait_until(WAIT, "node B read the log", || {
            metric_sum(&nodes[1], "push_bridge_history_events", &[]) == 10.0
        })
    });

    let (mut trimmed, subscribed) = subscribe_since(&nodes[1], &["t"], Some(&ids[4])).await;
    assert_eq!(subscribed["recovered"], false, "{subscribed}");
    assert_silent(&mut trimmed, Duration::from_millis(200)).await;
    tokio::task::block_in_place(|| {
        let mut sse = Sse::open(&nodes[1], "topic=t", Some(&ids[4]));
        let reset = sse.next();
        assert_eq!(reset.event, "reset", "{reset:?}");
        sse.assert_silent(Duration::from_millis(200));
    });

    let (mut kept, subscribed) = subscribe_since(&nodes[1], &["t"], Some(&ids[44])).await;
    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    for n in 45..EVENTS {
        assert_eq!(seq(&next_event(&mut kept, WAIT).await), n);
    }
    assert_silent(&mut kept, Duration::from_millis(200)).await;
    assert_eq!(resumes(&nodes[1], "reset"), 2.0);
    assert_eq!(resumes(&nodes[1], "recovered"), 1.0);
}

/// Redis stopped for 5 s while two publishers (pyzmq without ids on node A, the Rust
/// SDK with ids on node B) push 200 events a second each: no client is closed,
/// `/readyz` says `log unreachable` while `/healthz` stays 200, and once Redis is back
/// (empty: a new epoch) every client gets every event exactly once, in each
/// publisher's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_for_five_seconds_closes_no_client_and_loses_no_event() {
    const PER_PUBLISHER: u64 = 1600;
    const OUTAGE: Duration = Duration::from_secs(5);
    let mut redis = RedisServer::start();
    let stream = "outage";
    let nodes = start_nodes(&redis, stream, 2, "");
    let progress: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let mut collectors = Vec::new();
    for (node, progress) in nodes.iter().zip(&progress) {
        let ws = native_client(node, &["a", "b"]).await;
        collectors.push(collect(
            ws,
            2 * PER_PUBLISHER as usize,
            Duration::from_secs(30),
            progress.clone(),
        ));
    }

    let mut from_python = pyzmq_push(&[&nodes[0]], "a", PER_PUBLISHER, 200);
    let from_rust = publish_paced(&nodes[1], "b", PER_PUBLISHER, 200);

    tokio::task::block_in_place(|| {
        wait_until(WAIT, "events flowing before the outage", || {
            progress.iter().all(|p| p.load(Ordering::Relaxed) >= 200)
        });
        for node in &nodes {
            wait_metric_eq(node, "push_bridge_cluster_log_up", &[], 1.0);
        }
        redis.stop();
        let stopped = Instant::now();
        for node in &nodes {
            let answer = wait_readyz(node, 503, WAIT);
            assert!(answer.contains("log unreachable"), "{answer}");
            wait_metric_eq(node, "push_bridge_cluster_log_up", &[], 0.0);
        }
        wait_until(WAIT, "events held while the log is unreachable", || {
            cluster_sum(&nodes, "push_bridge_cluster_buffered_events", &[]) > 0.0
        });
        while stopped.elapsed() < OUTAGE {
            for node in &nodes {
                let (status, _) = http_get(node.addr, "/healthz").expect("GET /healthz");
                assert_eq!(status, 200, "/healthz while Redis is down");
                let (status, _) = http_get(node.addr, "/readyz").expect("GET /readyz");
                assert_eq!(status, 503, "/readyz while Redis is down");
            }
            std::thread::sleep(Duration::from_millis(200));
        }

        redis.start_again();
        for node in &nodes {
            wait_readyz(node, 200, Duration::from_secs(20));
            wait_metric_eq(node, "push_bridge_cluster_log_up", &[], 1.0);
        }
        finish(&mut from_python, Duration::from_secs(30));
        from_rust.join().expect("the Rust publisher");
    });

    for (node, collector) in nodes.iter().zip(collectors) {
        let (mut ws, events) = tokio::time::timeout(Duration::from_secs(60), collector)
            .await
            .expect("every client got its events in time")
            .unwrap_or_else(|e| panic!("a client of {} failed: {e}\n{}", node.addr, node.stderr()));
        for topic in ["a", "b"] {
            let seqs = topic_seqs(&events, topic);
            let expected: Vec<u64> = (0..PER_PUBLISHER).collect();
            assert!(
                seqs == expected,
                "a client of {} got topic {topic} wrong: {}",
                node.addr,
                first_differences(&seqs, &expected)
            );
        }
        assert_silent(&mut ws, Duration::from_millis(300)).await;
    }
    assert_eq!(
        cluster_sum(&nodes, "push_bridge_cluster_appended_total", &[]),
        2.0 * PER_PUBLISHER as f64
    );
}

/// `check-config` with `cfg` in a file: its output.
fn check_config(dir: &std::path::Path, name: &str, cfg: &str) -> std::process::Output {
    let path = dir.join(name);
    std::fs::write(&path, cfg).unwrap();
    run_bridge(&[
        "check-config".as_ref(),
        "--config".as_ref(),
        path.as_os_str(),
    ])
}

#[test]
fn check_config_refuses_what_cluster_mode_cannot_work_with_and_hides_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.jsonl").display().to_string();
    let cluster = "[cluster]\nredis = \"redis://127.0.0.1:6379/0\"\n";
    // (config, the key stderr names)
    let refused = [
        (format!("history.size = 0\n{cluster}"), "history.size"),
        (
            format!("history.file = \"{history}\"\n{cluster}"),
            "history.file",
        ),
        (
            "[cluster]\nredis = \"localhost:6379\"\n".to_string(),
            "cluster.redis",
        ),
        (format!("{cluster}stream = \"\"\n"), "cluster.stream"),
        (format!("{cluster}buffer = 0\n"), "cluster.buffer"),
    ];
    for (n, (cfg, key)) in refused.iter().enumerate() {
        let output = check_config(dir.path(), &format!("bad-{n}.toml"), cfg);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "check-config of {cfg:?}: {stderr}"
        );
        assert!(
            stderr.contains(key),
            "check-config of {cfg:?} does not name {key}: {stderr}"
        );
        // `serve` refuses it the same way, before binding anything.
        let listen = format!(
            "server.listen = \"127.0.0.1:{}\"\ningress.pull = [\"tcp://127.0.0.1:{}\"]\n",
            free_port(),
            free_port()
        );
        let path = dir.path().join(format!("serve-{n}.toml"));
        std::fs::write(&path, format!("{listen}{cfg}")).unwrap();
        let output = run_bridge(&["serve".as_ref(), "--config".as_ref(), path.as_os_str()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "serve with {cfg:?}: {stderr}"
        );
        assert!(stderr.contains(key), "serve with {cfg:?}: {stderr}");
    }

    let good = "[cluster]\nredis = \"redis://:s3cret@127.0.0.1:6379/0\"\n\
                stream = \"newsroom\"\nnode = \"node-a\"\n";
    let output = check_config(dir.path(), "good.toml", good);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let section = stdout
        .split("\n[cluster]\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no [cluster] section in:\n{stdout}"));
    let section = section.split("\n[").next().unwrap();
    let redis_line = section
        .lines()
        .find(|l| l.starts_with("redis = "))
        .unwrap_or_else(|| panic!("no redis line in [cluster]:\n{section}"));
    assert!(redis_line.contains("127.0.0.1:6379"), "{redis_line}");
    assert!(section.contains("stream = \"newsroom\""), "{section}");
    assert!(section.contains("node = \"node-a\""), "{section}");
    assert!(
        !stdout.contains("s3cret") && !stderr.contains("s3cret"),
        "check-config printed the password:\n{stdout}{stderr}"
    );
}

/// The helpers themselves: a private Redis answers, stops and comes back empty on the
/// same port; the `[cluster]` text is what the nodes are given.
#[test]
fn the_test_redis_restarts_empty_on_its_port() {
    let mut redis = RedisServer::start();
    assert_eq!(redis.cli(&["SET", "k", "v"]), "OK");
    assert_eq!(redis.cli(&["GET", "k"]), "v");
    let port = redis.port;
    redis.stop();
    assert!(redis.try_cli(&["PING"]).is_err());
    redis.start_again();
    assert_eq!(redis.port, port);
    assert_eq!(redis.cli(&["EXISTS", "k"]), "0");
    assert_eq!(
        cluster_config(&redis, "s", "node-a"),
        format!(
            "[cluster]\nredis = \"redis://127.0.0.1:{port}/0\"\nstream = \"s\"\nnode = \"node-a\"\n"
        )
    );
}

/// A node whose Redis is down when it starts serves all the same: `/healthz` 200,
/// `/readyz` 503 `log unreachable`, clients admitted. What it accepts meanwhile waits
/// in its queue, and reaches its clients, in order, once Redis is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_before_its_redis_serves_and_catches_up() {
    let mut redis = RedisServer::start();
    redis.stop();
    let node = Bridge::start_with(&cluster_config(&redis, "late", "node-a"));
    let (status, _) = http_get(node.addr, "/healthz").unwrap();
    assert_eq!(status, 200);
    let unready = wait_readyz(&node, 503, WAIT);
    assert!(unready.contains("log unreachable"), "{unready}");
    wait_metric_eq(&node, "push_bridge_cluster_log_up", &[], 0.0);

    let (mut client, subscribed) = subscribe_since(&node, &["late"], None).await;
    assert_eq!(subscribed["topics"], json!(["late"]));
    let publisher = node.publisher();
    for seq in 0..5u64 {
        publisher
            .publish("late", &json!({ "seq": seq }))
            .expect("publish");
    }
    wait_until(WAIT, "the five events are held", || {
        metric_sum(&node, "push_bridge_cluster_buffered_events", &[]) == 5.0
    });
    assert_silent(&mut client, Duration::from_millis(300)).await;

    redis.start_again();
    wait_readyz(&node, 200, WAIT);
    let mut seqs = Vec::new();
    for _ in 0..5 {
        seqs.push(seq(&next_event(&mut client, WAIT).await));
    }
    assert_eq!(seqs, [0, 1, 2, 3, 4]);
    assert_silent(&mut client, Duration::from_millis(300)).await;
    assert_eq!(log_length(redis.port, "late"), 5);
    wait_metric_eq(&node, "push_bridge_cluster_log_up", &[], 1.0);
}

/// A node started after events were appended loads them as history, not as news: a
/// client subscribing there gets only what is published next, and a client resuming
/// there from one of them gets exactly the ones after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_later_resumes_from_the_log_and_delivers_only_new_events() {
    let redis = RedisServer::start();
    let first = start_nodes(&redis, "later", 1, "").remove(0);
    let (mut early, _) = subscribe_since(&first, &["later"], None).await;
    let publisher = first.publisher();
    for seq in 0..10u64 {
        publisher
            .publish("later", &json!({ "seq": seq }))
            .expect("publish");
    }
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(id(&next_event(&mut early, WAIT).await));
    }

    let second = Bridge::start_with(&cluster_config(&redis, "later", "node-b"));
    wait_readyz(&second, 200, WAIT);
    let (mut fresh, _) = subscribe_since(&second, &["later"], None).await;
    let (mut resumed, subscribed) = subscribe_since(&second, &["later"], Some(&ids[3])).await;
    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    let mut replayed = Vec::new();
    for _ in 4..10 {
        replayed.push(seq(&next_event(&mut resumed, WAIT).await));
    }
    assert_eq!(replayed, [4, 5, 6, 7, 8, 9]);
    assert_silent(&mut fresh, Duration::from_millis(300)).await;

    publisher
        .publish("later", &json!({ "seq": 10 }))
        .expect("publish");
    for client in [&mut early, &mut fresh, &mut resumed] {
        assert_eq!(seq(&next_event(client, WAIT).await), 10);
        assert_silent(client, Duration::from_millis(200)).await;
    }
}
