//! Cluster mode through Redis Sentinel: two real bridges share one log in a Redis
//! master with one replica and three sentinels (tests/support/sentinel.rs), and the
//! master is killed with `kill -9`.
//!
//! What it proves: the bridges follow the sentinels to the promoted replica by
//! themselves; while they do, no client is closed, `/readyz` answers 503 and then 200
//! again, and every event published meanwhile reaches every client exactly once, in one
//! order. When the failover loses entries (the replica had not received them; the
//! tests make that happen on purpose), the loss is reported, never hidden: a client
//! resuming from an id before or inside the lost range, on either node, gets
//! `"recovered": false` (SSE: `event: reset`) and is counted in
//! `push_bridge_cluster_resume_total{result="reset"}`, while events published after the
//! failover reach every client once and resume exactly. Every count is exact.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::cluster::*;
use support::redis::{log_length, metric_sum, wait_readyz};
use support::sentinel::{start_nodes, SentinelRedis};
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// How long a failover may take, from the kill to every node ready again.
const FAILOVER: Duration = Duration::from_secs(15);

/// The publisher ids (field `i`) of the master's log, in order.
fn logged_ids(redis: &SentinelRedis, stream: &str) -> Vec<String> {
    let range = redis
        .master()
        .cli(&["XRANGE", &format!("{stream}:log"), "-", "+"]);
    // redis-cli prints each entry as: id, then field and value lines.
    let lines: Vec<&str> = range.lines().collect();
    lines
        .windows(2)
        .filter(|pair| pair[0] == "i")
        .map(|pair| pair[1].to_string())
        .collect()
}

/// A change of `/readyz`: when (since the watch started), the status, the body.
type ReadyzChange = (Duration, u16, String);

/// Records every change of `/readyz` status on each node, from a thread, until dropped.
struct ReadyzWatch {
    stop: Arc<AtomicBool>,
    /// Per node, each change.
    changes: Arc<Mutex<Vec<Vec<ReadyzChange>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    started: Instant,
}

impl ReadyzWatch {
    fn start(nodes: &[Bridge]) -> ReadyzWatch {
        let addrs: Vec<_> = nodes.iter().map(|n| n.addr).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let changes = Arc::new(Mutex::new(vec![Vec::new(); addrs.len()]));
        let started = Instant::now();
        let thread = std::thread::spawn({
            let stop = stop.clone();
            let changes = changes.clone();
            move || {
                while !stop.load(Ordering::Relaxed) {
                    for (n, addr) in addrs.iter().enumerate() {
                        let (status, text) =
                            http_get(*addr, "/readyz").unwrap_or((0, String::new()));
                        let body = text
                            .rsplit("\r\n\r\n")
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_string();
                        let mut changes = changes.lock().unwrap();
                        if changes[n].last().map(|c: &ReadyzChange| c.1) != Some(status) {
                            changes[n].push((started.elapsed(), status, body));
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        ReadyzWatch {
            stop,
            changes,
            thread: Some(thread),
            started,
        }
    }

    /// Stops watching; returns the changes of each node.
    fn finish(mut self) -> Vec<Vec<ReadyzChange>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the readyz watch");
        }
        self.changes.lock().unwrap().clone()
    }
}

impl Drop for ReadyzWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The master is killed while two Rust publishers (one per node, every event with an
/// id) push 50 events a second each, and the replica was in sync: the nodes follow the
/// sentinels to the new master, their clients stay connected and get all 600 events
/// exactly once, each publisher's in its order and both clients in one order; `/readyz`
/// answers 503 `log unreachable` during the failover and 200 after; the new master's
/// log holds all 600, and no node reports a loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sentinel_failover_under_steady_publishing_loses_and_repeats_nothing() {
    const PER_PUBLISHER: u64 = 300;
    const PER_SECOND: u64 = 50;
    let mut redis = tokio::task::block_in_place(SentinelRedis::start);
    let stream = "failover";
    let nodes = tokio::task::block_in_place(|| start_nodes(&redis, stream, 2, ""));
    let progress: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let mut collectors = Vec::new();
    for (node, progress) in nodes.iter().zip(&progress) {
        let ws = native_client(node, &["a", "b"]).await;
        collectors.push(collect(
            ws,
            2 * PER_PUBLISHER as usize,
            FAILOVER,
            progress.clone(),
        ));
    }
    let publishers = [
        publish_paced(&nodes[0], "a", PER_PUBLISHER, PER_SECOND),
        publish_paced(&nodes[1], "b", PER_PUBLISHER, PER_SECOND),
    ];

    let (watch, killed_at, promoted, ready) = tokio::task::block_in_place(|| {
        wait_until(WAIT, "events flowing before the failover", || {
            progress.iter().all(|p| p.load(Ordering::Relaxed) >= 150)
        });
        redis.wait_in_sync(WAIT);
        let watch = ReadyzWatch::start(&nodes);
        std::thread::sleep(Duration::from_millis(100));
        let killed_at = watch.started.elapsed();
        let killed = Instant::now();
        redis.kill_master();
        redis.wait_promoted(FAILOVER);
        let promoted = killed.elapsed();
        for node in &nodes {
            wait_readyz(node, 200, FAILOVER);
        }
        let ready = killed.elapsed();
        for publisher in publishers {
            publisher.join().expect("a publisher");
        }
        (watch, killed_at, promoted, ready)
    });

    let mut orders = Vec::new();
    for (node, collector) in nodes.iter().zip(collectors) {
        let (mut ws, events) = tokio::time::timeout(Duration::from_secs(30), collector)
            .await
            .expect("every client got its events in time")
            .unwrap_or_else(|e| panic!("a client of {} failed: {e}\n{}", node.addr, node.stderr()));
        for topic in ["a", "b"] {
            let seqs = topic_seqs(&events, topic);
            assert_eq!(
                seqs,
                (0..PER_PUBLISHER).collect::<Vec<_>>(),
                "a client of {} got topic {topic} wrong",
                node.addr
            );
        }
        assert_silent(&mut ws, Duration::from_millis(300)).await;
        orders.push(events.iter().map(id).collect::<Vec<_>>());
    }
    assert_eq!(orders[0], orders[1], "both nodes delivered in one order");

    let changes = watch.finish();
    for (node, changes) in nodes.iter().zip(&changes) {
        let statuses: Vec<u16> = changes.iter().map(|c| c.1).collect();
        assert_eq!(
            statuses,
            [200, 503, 200],
            "/readyz of {} during the failover: {changes:?}\n{}",
            node.addr,
            node.stderr()
        );
        assert!(changes[0].0 < killed_at, "{changes:?}");
        assert_eq!(changes[1].2, "log unreachable", "{changes:?}");
    }
    assert_eq!(log_length(redis.master().port, stream), 2 * PER_PUBLISHER);
    let total: f64 = nodes
        .iter()
        .map(|n| metric_sum(n, "push_bridge_cluster_appended_total", &[]))
        .sum();
    assert_eq!(total, 2.0 * PER_PUBLISHER as f64);
    for node in &nodes {
        assert_eq!(resumes(node, "reset") + resumes(node, "recovered"), 0.0);
        let stderr = node.stderr();
        assert!(
            !stderr.contains("lost entries") && !stderr.contains("new epoch"),
            "a node reported a loss although the replica was in sync:\n{stderr}"
        );
    }
    let unready: Vec<Duration> = changes.iter().map(|c| c[2].0 - c[1].0).collect();
    eprintln!(
        "failover: {} events, {} delivered to each of 2 clients once; master killed, \
         sentinels named the replica after {promoted:?}, every node ready after {ready:?}; \
         /readyz 503 for {unready:?}",
        2 * PER_PUBLISHER,
        2 * PER_PUBLISHER,
    );
}

/// The replica is cut off from the master (stopped, its link closed), K = 50 events
/// are published and delivered, then the master is killed and the replica promoted:
/// those 50 are on no Redis any more. Resumes from before the lost range or inside it,
/// on either node, native or SSE, answer `recovered: false` / `event: reset` (4 resumes,
/// 4 resets counted); the 30 events published after the failover reach all 6 clients
/// once; resumes from an id after the failover replay exactly what followed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn entries_lost_by_a_failover_are_reported_to_resuming_clients_never_hidden() {
    const BEFORE: usize = 20;
    const LOST: usize = 50;
    const AFTER: usize = 30;
    let mut redis = tokio::task::block_in_place(SentinelRedis::start);
    let stream = "lossy";
    let nodes = tokio::task::block_in_place(|| start_nodes(&redis, stream, 2, ""));
    let mut watchers = Vec::new();
    for node in &nodes {
        watchers.push(native_client(node, &["feed"]).await);
    }
    let publisher = tokio::task::block_in_place(|| nodes[0].publisher());
    let publish = |from: usize, count: usize| -> Vec<String> {
        (from..from + count)
            .map(|n| {
                publisher
                    .publish("feed", &json!({ "seq": n }))
                    .expect("publish")
            })
            .collect()
    };

    // BEFORE events, replicated.
    let mut ids = publish(0, BEFORE);
    for watcher in &mut watchers {
        for (n, expected) in ids.iter().enumerate() {
            let event = next_event(watcher, WAIT).await;
            assert_eq!((seq(&event), &id(&event)), (n as u64, expected));
        }
    }
    tokio::task::block_in_place(|| redis.wait_in_sync(WAIT));

    // LOST events, which only the master gets: delivered all the same (the nodes read
    // them from the master).
    tokio::task::block_in_place(|| redis.cut_replica());
    ids.extend(publish(BEFORE, LOST));
    for watcher in &mut watchers {
        for (n, expected) in ids.iter().enumerate().skip(BEFORE) {
            let event = next_event(watcher, WAIT).await;
            assert_eq!((seq(&event), &id(&event)), (n as u64, expected));
        }
    }
    let on_old_master = tokio::task::block_in_place(|| log_length(redis.master().port, stream));
    assert_eq!(on_old_master, (BEFORE + LOST) as u64);

    let (promoted, ready) = tokio::task::block_in_place(|| {
        let killed = Instant::now();
        redis.kill_master_and_resume_replica();
        for node in &nodes {
            let answer = wait_readyz(node, 503, WAIT);
            assert!(answer.contains("log unreachable"), "{answer}");
        }
        redis.wait_promoted(FAILOVER);
        let promoted = killed.elapsed();
        for node in &nodes {
            wait_readyz(node, 200, FAILOVER);
        }
        (promoted, killed.elapsed())
    });
    let on_new_master = tokio::task::block_in_place(|| log_length(redis.master().port, stream));
    let logged = tokio::task::block_in_place(|| logged_ids(&redis, stream));
    assert_eq!(
        logged,
        ids[..BEFORE],
        "the new master has the replicated events, not the lost ones"
    );
    assert_eq!(on_old_master - on_new_master, LOST as u64);
    for watcher in &mut watchers {
        assert_silent(watcher, Duration::from_millis(200)).await;
    }
    let warned = nodes
        .iter()
        .filter(|n| n.stderr().contains("lost entries this node had read"))
        .count();
    assert!(warned >= 1, "no node reported the loss");

    // Resumes across the lost range: from the last replicated event, from inside the
    // lost range, from the last lost one, from the first event.
    let (mut from_before, subscribed) =
        subscribe_since(&nodes[0], &["feed"], Some(&ids[BEFORE - 1])).await;
    assert_eq!(subscribed["recovered"], false, "{subscribed}");
    let (mut from_inside, subscribed) =
        subscribe_since(&nodes[1], &["feed"], Some(&ids[BEFORE + LOST / 2])).await;
    assert_eq!(subscribed["recovered"], false, "{subscribed}");
    let mut sse_clients = tokio::task::block_in_place(|| {
        [(0, BEFORE + LOST - 1), (1, 0)]
            .into_iter()
            .map(|(node, last)| {
                let mut sse = Sse::open(&nodes[node], "topic=feed", Some(&ids[last]));
                let reset = sse.next();
                assert_eq!(reset.event, "reset", "{reset:?}");
                assert_eq!(reset.data, "{}");
                sse
            })
            .collect::<Vec<_>>()
    });
    for node in &nodes {
        assert_eq!(resumes(node, "reset"), 2.0, "{}", node.stderr());
        assert_eq!(resumes(node, "recovered"), 0.0);
    }

    // AFTER events, published after the failover: every client gets each once.
    let after = publish(BEFORE + LOST, AFTER);
    for ws in watchers
        .iter_mut()
        .chain([&mut from_before, &mut from_inside])
    {
        for (n, expected) in after.iter().enumerate() {
            let event = next_event(ws, WAIT).await;
            assert_eq!(seq(&event), (BEFORE + LOST + n) as u64);
            assert_eq!(&id(&event), expected);
        }
        assert_silent(ws, Duration::from_millis(200)).await;
    }
    tokio::task::block_in_place(|| {
        for sse in &mut sse_clients {
            for expected in &after {
                assert_eq!(&id(&sse.next().frame()), expected);
            }
            sse.assert_silent(Duration::from_millis(200));
        }
    });

    // Resumes from an id after the failover replay exactly what followed it.
    let (mut native, subscribed) = subscribe_since(&nodes[1], &["feed"], Some(&after[9])).await;
    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    for expected in &after[10..] {
        assert_eq!(&id(&next_event(&mut native, WAIT).await), expected);
    }
    assert_silent(&mut native, Duration::from_millis(200)).await;
    tokio::task::block_in_place(|| {
        let mut sse = Sse::open(&nodes[0], "topic=feed", Some(&after[19]));
        for expected in &after[20..] {
            assert_eq!(&id(&sse.next().frame()), expected);
        }
        sse.assert_silent(Duration::from_millis(200));
    });
    for node in &nodes {
        assert_eq!(resumes(node, "reset"), 2.0);
        assert_eq!(resumes(node, "recovered"), 1.0);
    }
    assert_eq!(
        tokio::task::block_in_place(|| log_length(redis.master().port, stream)),
        (BEFORE + AFTER) as u64
    );
    eprintln!(
        "lossy failover: {} events on the old master, {} on the new one: {} lost; \
         sentinels named the replica after {promoted:?}, every node ready after {ready:?}; \
         resumes: 4 reset (native since before/inside the loss, SSE from the last lost and \
         the first event), 2 recovered (after the failover, replaying 20 and 10 events); \
         {AFTER} later events delivered once to each of 6 clients; nodes reporting the loss: {warned}",
        on_old_master,
        on_new_master,
        on_old_master - on_new_master,
    );
    drop(publisher);
}

/// The harness itself: the sentinels agree on the master, the replica follows it, and
/// after `kill -9` of the master they name the replica, which takes writes.
#[test]
fn the_test_sentinels_promote_the_replica_when_the_master_dies() {
    let mut redis = SentinelRedis::start();
    let first = redis.master().port;
    for s in 0..3 {
        assert_eq!(redis.named_master(s), Some(first));
    }
    assert_eq!(redis.master().cli(&["SET", "k", "v"]), "OK");
    redis.wait_in_sync(WAIT);
    assert_eq!(redis.replica().cli(&["GET", "k"]), "v");
    assert!(redis.url().starts_with("redis+sentinel://127.0.0.1:"));
    assert!(redis.url().ends_with("/mymaster/0"));
    let second = redis.replica().port;
    let killed = Instant::now();
    redis.kill_master();
    redis.wait_promoted(FAILOVER);
    eprintln!("promoted after {:?}", killed.elapsed());
    assert_eq!(redis.master().port, second);
    assert_eq!(redis.master().cli(&["GET", "k"]), "v");
    assert_eq!(redis.master().cli(&["SET", "k", "w"]), "OK");
}

/// As above, but the first entry the new master gets comes from node B, whose
/// publisher was quiet during the failover and sends one event right after the
/// promotion (before the nodes' tails reconnect, which back off up to 2 s). The loss
/// must be reported all the same: a resume from the last replicated event answers
/// `recovered: false` on A, on B, and on a node C started after the failover (whose
/// copy, loaded from the new master, lacks the 50 lost events).
///
/// Ignored until the bridge is fixed: the tail's check (`head < position`) and the
/// appender's (`last-generated-id < last appended`) compare positions, so an entry
/// appended by another node after the failover hides the loss from both; no node
/// starts a new epoch, and C answers `recovered: true` replaying 1 event of 51.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_loss_is_reported_even_when_another_node_appends_first_after_the_failover() {
    const BEFORE: usize = 20;
    const LOST: usize = 50;
    let mut redis = tokio::task::block_in_place(SentinelRedis::start);
    let stream = "lossy-then-other-node";
    let mut nodes = tokio::task::block_in_place(|| start_nodes(&redis, stream, 2, ""));
    let mut watchers = Vec::new();
    for node in &nodes {
        watchers.push(native_client(node, &["feed"]).await);
    }
    let (on_a, on_b) = tokio::task::block_in_place(|| (nodes[0].publisher(), nodes[1].publisher()));
    let mut ids: Vec<String> = (0..BEFORE)
        .map(|n| on_a.publish("feed", &json!({ "seq": n })).expect("publish"))
        .collect();
    for watcher in &mut watchers {
        for expected in &ids {
            assert_eq!(&id(&next_event(watcher, WAIT).await), expected);
        }
    }
    tokio::task::block_in_place(|| redis.wait_in_sync(WAIT));
    tokio::task::block_in_place(|| redis.cut_replica());
    ids.extend(
        (BEFORE..BEFORE + LOST)
            .map(|n| on_a.publish("feed", &json!({ "seq": n })).expect("publish")),
    );
    for watcher in &mut watchers {
        for expected in &ids[BEFORE..] {
            assert_eq!(&id(&next_event(watcher, WAIT).await), expected);
        }
    }
    let first_after = tokio::task::block_in_place(|| {
        let killed = Instant::now();
        redis.kill_master_and_resume_replica();
        for node in &nodes {
            wait_readyz(node, 503, WAIT);
        }
        redis.wait_promoted(FAILOVER);
        let first_after = on_b
            .publish("feed", &json!({ "seq": BEFORE + LOST }))
            .expect("publish");
        eprintln!("promoted after {:?}; published on node B", killed.elapsed());
        for node in &nodes {
            wait_readyz(node, 200, FAILOVER);
        }
        first_after
    });
    for watcher in &mut watchers {
        assert_eq!(id(&next_event(watcher, WAIT).await), first_after);
        assert_silent(watcher, Duration::from_millis(200)).await;
    }
    let logged = tokio::task::block_in_place(|| logged_ids(&redis, stream));
    let mut expected_log = ids[..BEFORE].to_vec();
    expected_log.push(first_after.clone());
    assert_eq!(
        logged, expected_log,
        "the new master lacks the 50 lost events"
    );

    nodes.push(tokio::task::block_in_place(|| {
        let node = Bridge::start_with(&format!(
            "[cluster]\nredis = \"{}\"\nstream = \"{stream}\"\nnode = \"node-c\"\n",
            redis.url()
        ));
        wait_readyz(&node, 200, WAIT);
        node
    }));
    let mut answers = Vec::new();
    for node in &nodes {
        let (mut ws, subscribed) = subscribe_since(node, &["feed"], Some(&ids[BEFORE - 1])).await;
        let mut replayed = Vec::new();
        while let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_millis(300), ws.next()).await
        {
            let frame: Value = serde_json::from_str(&text).expect("JSON");
            replayed.push(seq(&frame));
        }
        answers.push((subscribed["recovered"].clone(), replayed.len()));
    }
    let stderr: Vec<String> = nodes.iter().map(|n| n.stderr()).collect();
    let warned = stderr
        .iter()
        .filter(|s| s.contains("lost entries") || s.contains("new epoch"))
        .count();
    eprintln!("resume from the last replicated event on A, B, C: (recovered, events replayed) {answers:?}; nodes reporting a loss: {warned}");
    for ((recovered, replayed), name) in answers.iter().zip(["A", "B", "C"]) {
        assert_eq!(
            recovered,
            &json!(false),
            "node {name} answered recovered: {recovered} with {replayed} events replayed, \
             across {LOST} lost events; {answers:?}"
        );
    }
}
