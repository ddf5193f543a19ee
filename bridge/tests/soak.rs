//! A bounded soak against the real binary: four publishers (two Rust SDK, two pyzmq
//! in different message forms) on several topics; native, WAMP v1 and SSE clients on
//! topics and patterns; native and SSE clients that keep disconnecting and resuming
//! (`since`, `Last-Event-ID`). At the end every client must have every event its
//! subscriptions match, once, in each publisher's order.
//!
//! Runs `PUSH_BRIDGE_SOAK_SECS` seconds of publishing (default 60, what the normal test
//! run uses); `scripts/soak [SECONDS]` runs it longer and shows the summary it prints.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// The publishers: name, topics (event `n` goes to `topics[n % len]`), events a second,
/// and how it publishes.
const PUBLISHERS: [(&str, &[&str], u64, Kind); 4] = [
    (
        "rust-a",
        &["news:0", "news:1", "news:2", "news:3"],
        100,
        Kind::Rust,
    ),
    (
        "rust-b",
        &["sport:0", "sport:1", "sport:2", "alerts"],
        100,
        Kind::Rust,
    ),
    (
        "py-a",
        &["news:1", "alerts", "news:2:live"],
        50,
        Kind::PyMultipart,
    ),
    (
        "py-b",
        &["sport:1", "alerts", "sport:9:live"],
        50,
        Kind::PyEnvelope,
    ),
];

#[derive(Clone, Copy)]
enum Kind {
    Rust,
    /// `[topic, data]`, the id assigned by the bridge.
    PyMultipart,
    /// One frame `{"topic", "id", "data"}` (Superdesk's form, with an id).
    PyEnvelope,
}

/// A pyzmq PUSH publishing `{"p": NAME, "seq": n}` for SECONDS, paced; prints how many.
const PYZMQ_PUBLISHER: &str = r#"
import json, sys, time, zmq
endpoint, name, form, topics, rate, seconds = sys.argv[1:7]
topics, rate, seconds = topics.split(","), int(rate), float(seconds)
ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.setsockopt(zmq.SNDHWM, 100000)
s.connect(endpoint)
started = time.monotonic()
n = 0
while True:
    due = started + n / rate
    if due - started >= seconds:
        break
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    topic = topics[n % len(topics)]
    data = {"p": name, "seq": n}
    if form == "multipart":
        s.send_multipart([topic.encode(), json.dumps(data).encode()])
    else:
        s.send(json.dumps({"topic": topic, "id": "%s-%d" % (name, n), "data": data}).encode())
    n += 1
s.setsockopt(zmq.LINGER, 30000)
s.close()
ctx.term()
print(n)
"#;

fn soak_duration() -> Duration {
    let secs = std::env::var("PUSH_BRIDGE_SOAK_SECS")
        .ok()
        .map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("PUSH_BRIDGE_SOAK_SECS={v:?}: whole seconds"))
        })
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// Pattern `pattern` matches `topic` (docs/protocol.md "Topics and patterns").
fn matches(pattern: &str, topic: &str) -> bool {
    let topic: Vec<&str> = topic.split(':').collect();
    let pattern: Vec<&str> = pattern.split(':').collect();
    pattern.len() <= topic.len() && pattern.iter().zip(&topic).all(|(p, t)| *p == "*" || p == t)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Client {
    Native,
    Wamp1,
    Sse,
}

/// What one client received, across all its connections.
#[derive(Default)]
struct Record {
    /// (publisher index, seq), in arrival order.
    arrivals: Vec<(u8, u32)>,
    last_id: Option<String>,
    reconnects: u64,
    /// Resumes the bridge could not serve (`recovered: false`, SSE `reset`).
    not_recovered: u64,
}

struct Tracked {
    kind: Client,
    patterns: Vec<&'static str>,
    churns: bool,
    record: Arc<Mutex<Record>>,
}

impl Tracked {
    fn label(&self) -> String {
        format!(
            "{:?}{} {:?}",
            self.kind,
            if self.churns { " (churning)" } else { "" },
            self.patterns
        )
    }
}

fn publisher_index(name: &str) -> u8 {
    PUBLISHERS
        .iter()
        .position(|p| p.0 == name)
        .unwrap_or_else(|| panic!("unknown publisher {name}")) as u8
}

/// Records one event's data (`{"p", "seq"}`).
fn record(record: &Mutex<Record>, data: &Value, id: Option<&str>) {
    let p = publisher_index(data["p"].as_str().expect("p"));
    let seq = data["seq"].as_u64().expect("seq") as u32;
    let mut record = record.lock().unwrap();
    record.arrivals.push((p, seq));
    if let Some(id) = id {
        record.last_id = Some(id.to_string());
    }
}

/// A native connection subscribed to `patterns` (resuming after `since`).
async fn native_connect(bridge: &Bridge, patterns: &[&str], since: Option<&str>) -> (Ws, bool) {
    let (ws, subscribed) = subscribe_since(bridge, patterns, since).await;
    let recovered = since.is_none() || subscribed["recovered"] == true;
    (ws, recovered)
}

/// Reads native events into `rec` until `until` (or the stop flag); false when the
/// connection ended.
async fn native_read(ws: &mut Ws, rec: &Mutex<Record>, until: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) || Instant::now() >= until {
            return true;
        }
        let next = tokio::time::timeout(Duration::from_millis(100), ws.next()).await;
        match next {
            Err(_) => continue,
            Ok(Some(Ok(Message::Text(text)))) => {
                let event: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(event["type"], "event", "{event}");
                record(rec, &event["data"], event["id"].as_str());
            }
            Ok(Some(Ok(Message::Close(frame)))) => panic!("closed by the bridge: {frame:?}"),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => panic!("read error: {e}"),
            Ok(None) => return false,
        }
    }
}

/// A raw SSE stream (HTTP/1.1, chunked) on `patterns`, resuming after `last_id`.
struct Sse {
    stream: tokio::net::TcpStream,
    raw: Vec<u8>,
    body: Vec<u8>,
}

impl Sse {
    async fn open(bridge: &Bridge, patterns: &[&str], last_id: Option<&str>) -> Sse {
        let mut stream = tokio::net::TcpStream::connect(bridge.addr).await.unwrap();
        let query: String = patterns.iter().map(|p| format!("topic={p}&")).collect();
        let resume = last_id
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET /events?{query}token={} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n{resume}\r\n",
            bridge.token(),
            bridge.addr
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut sse = Sse {
            stream,
            raw: Vec::new(),
            body: Vec::new(),
        };
        let end = loop {
            if let Some(end) = sse.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let more = tokio::time::timeout(WAIT, sse.read_more()).await;
            assert!(matches!(more, Ok(true)), "no SSE response head");
        };
        let head = String::from_utf8_lossy(&sse.raw[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "{head}"
        );
        sse.raw.drain(..end + 4);
        sse
    }

    async fn read_more(&mut self) -> bool {
        let mut buf = [0u8; 16384];
        match self.stream.read(&mut buf).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                true
            }
        }
    }

    /// Moves complete chunks to the body; returns complete SSE events (blocks of lines).
    fn events(&mut self) -> Vec<String> {
        while let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") {
            let size = std::str::from_utf8(&self.raw[..line_end]).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            let total = line_end + 2 + size + 2;
            if self.raw.len() < total {
                break;
            }
            self.body
                .extend_from_slice(&self.raw[line_end + 2..line_end + 2 + size]);
            self.raw.drain(..total);
        }
        let mut events = Vec::new();
        while let Some(end) = self.body.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.body.drain(..end + 2).collect();
            events.push(String::from_utf8(block).unwrap());
        }
        events
    }

    /// Reads events into `rec` until `until` (or the stop flag). Returns false when the
    /// stream ended; counts a `reset` as not recovered.
    async fn read(&mut self, rec: &Mutex<Record>, until: Instant, stop: &AtomicBool) -> bool {
        loop {
            for event in self.events() {
                let mut id = None;
                let mut data = None;
                let mut reset = false;
                for line in event.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(v.to_string());
                    } else if line == "event: reset" {
                        reset = true;
                    }
                }
                if reset {
                    rec.lock().unwrap().not_recovered += 1;
                } else if let Some(data) = data {
                    let frame: Value = serde_json::from_str(&data).unwrap();
                    record(rec, &frame["data"], id.as_deref());
                }
            }
            if stop.load(Ordering::Relaxed) || Instant::now() >= until {
                return true;
            }
            match tokio::time::timeout(Duration::from_millis(100), self.read_more()).await {
                Err(_) => {}
                Ok(true) => {}
                Ok(false) => return false,
            }
        }
    }
}

/// Runs one client until `stop`. Churning clients drop their connection every 0.5–3 s
/// (half of the time without a close handshake) and resume 0–0.5 s later.
async fn run_client(
    bridge: Arc<Bridge>,
    kind: Client,
    patterns: Vec<&'static str>,
    churns: bool,
    rec: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let forever = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    loop {
        let since = rec.lock().unwrap().last_id.clone();
        let stay = || {
            if churns {
                Instant::now() + Duration::from_millis(rand::random_range(500..3000))
            } else {
                forever
            }
        };
        match kind {
            Client::Native => {
                let (mut ws, recovered) =
                    native_connect(&bridge, &patterns, since.as_deref()).await;
                if !recovered {
                    rec.lock().unwrap().not_recovered += 1;
                }
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                // Keep reading past the stay until an event gave an id to resume from.
                let mut open = native_read(&mut ws, &rec, stay(), &stop).await;
                while open && rec.lock().unwrap().last_id.is_none() && !stop.load(Ordering::Relaxed)
                {
                    open = native_read(
                        &mut ws,
                        &rec,
                        Instant::now() + Duration::from_millis(100),
                        &stop,
                    )
                    .await;
                }
                assert!(open, "the bridge ended a {kind:?} connection");
                if rand::random::<bool>() {
                    let _ = ws.close(None).await;
                }
            }
            Client::Sse => {
                let mut sse = Sse::open(&bridge, &patterns, since.as_deref()).await;
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                let mut open = sse.read(&rec, stay(), &stop).await;
                while open && rec.lock().unwrap().last_id.is_none() && !stop.load(Ordering::Relaxed)
                {
                    open = sse
                        .read(&rec, Instant::now() + Duration::from_millis(100), &stop)
                        .await;
                }
                assert!(open, "the bridge ended an SSE stream");
            }
            Client::Wamp1 => {
                let (mut ws, _) = connect(&bridge.token_url(), &["wamp"], &[])
                    .await
                    .expect("connect");
                assert_eq!(next_json(&mut ws).await[0], 0, "WAMP v1 WELCOME");
                for pattern in &patterns {
                    send(&mut ws, &json!([5, pattern]).to_string()).await;
                }
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match tokio::time::timeout(Duration::from_millis(100), ws.next()).await {
                        Err(_) => continue,
                        Ok(Some(Ok(Message::Text(text)))) => {
                            let frame: Value = serde_json::from_str(&text).unwrap();
                            assert_eq!(frame[0], 8, "{frame}");
                            record(&rec, &frame[2], None);
                        }
                        Ok(Some(Ok(Message::Close(frame)))) => {
                            panic!("closed by the bridge: {frame:?}")
                        }
                        Ok(Some(Ok(_))) => {}
                        other => panic!("WAMP v1 connection ended: {other:?}"),
                    }
                }
            }
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        rec.lock().unwrap().reconnects += 1;
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..500))).await;
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// What a client should have: per publisher, the seqs whose topic its patterns match.
fn expected(patterns: &[&str], published: &[u64]) -> Vec<Vec<u32>> {
    PUBLISHERS
        .iter()
        .zip(published)
        .map(|((_, topics, _, _), &count)| {
            (0..count as u32)
                .filter(|n| {
                    let topic = topics[*n as usize % topics.len()];
                    patterns.iter().any(|p| matches(p, topic))
                })
                .collect()
        })
        .collect()
}

#[derive(Default, Debug)]
struct Outcome {
    expected: u64,
    delivered: u64,
    lost: u64,
    duplicates: u64,
    out_of_order: u64,
}

fn outcome(record: &Record, expected: &[Vec<u32>]) -> Outcome {
    let mut out = Outcome {
        expected: expected.iter().map(|e| e.len() as u64).sum(),
        delivered: record.arrivals.len() as u64,
        ..Outcome::default()
    };
    for (p, wanted) in expected.iter().enumerate() {
        let got: Vec<u32> = record
            .arrivals
            .iter()
            .filter(|(q, _)| *q as usize == p)
            .map(|(_, s)| *s)
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut highest = None;
        for &seq in &got {
            if !seen.insert(seq) {
                out.duplicates += 1;
            } else if highest.is_some_and(|h| seq < h) {
                out.out_of_order += 1;
            }
            highest = highest.max(Some(seq));
        }
        let wanted_set: std::collections::HashSet<u32> = wanted.iter().copied().collect();
        out.lost += wanted_set.difference(&seen).count() as u64;
        assert!(
            seen.is_subset(&wanted_set),
            "events the client's patterns do not match"
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_mixed_traffic_with_churn_loses_and_duplicates_nothing() {
    let duration = soak_duration();
    let bridge = Arc::new(Bridge::start_with("history.size = 100000"));
    let pid = bridge.pid();
    let stop = Arc::new(AtomicBool::new(false));

    let mut plan: Vec<(Client, Vec<&'static str>, bool)> = Vec::new();
    for _ in 0..3 {
        plan.push((Client::Native, vec!["news"], false));
        plan.push((Client::Native, vec!["sport:1", "sport:*"], false));
        plan.push((Client::Native, vec!["alerts", "news:2"], false));
        plan.push((Client::Native, vec!["news", "sport", "alerts"], false));
    }
    for _ in 0..2 {
        plan.push((Client::Wamp1, vec!["news", "alerts"], false));
        plan.push((Client::Wamp1, vec!["sport:0", "sport:1"], false));
        plan.push((Client::Sse, vec!["alerts", "sport"], false));
        plan.push((Client::Sse, vec!["news:1", "news:2"], false));
        plan.push((Client::Native, vec!["news", "alerts"], true));
        plan.push((Client::Native, vec!["sport:*", "news:2"], true));
        plan.push((Client::Native, vec!["news", "sport", "alerts"], true));
        plan.push((Client::Sse, vec!["alerts", "news:*:live"], true));
    }

    let mut clients = Vec::new();
    let mut tasks = Vec::new();
    for (kind, patterns, churns) in plan {
        let record = Arc::new(Mutex::new(Record::default()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tasks.push(tokio::spawn(run_client(
            Arc::clone(&bridge),
            kind,
            patterns.clone(),
            churns,
            Arc::clone(&record),
            Arc::clone(&stop),
            ready_tx,
        )));
        ready_rx.await.expect("client ready");
        clients.push(Tracked {
            kind,
            patterns,
            churns,
            record,
        });
    }
    let subscriptions: usize = clients.iter().map(|c| c.patterns.len()).sum();
    bridge.wait_metric("push_bridge_subscriptions", subscriptions as f64);
    let rss_start = rss_kib(pid);

    println!(
        "soak: {} clients ({} churning), {} publishers, publishing for {duration:?}",
        clients.len(),
        clients.iter().filter(|c| c.churns).count(),
        PUBLISHERS.len()
    );
    let started = Instant::now();
    let mut rust = Vec::new();
    let mut python = Vec::new();
    for (name, topics, rate, kind) in PUBLISHERS {
        match kind {
            Kind::Rust => {
                let publisher = bridge.publisher();
                rust.push(std::thread::spawn(move || {
                    let mut n = 0u64;
                    loop {
                        let due = started + Duration::from_micros(n * 1_000_000 / rate);
                        if due.duration_since(started) >= duration {
                            break;
                        }
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let topic = topics[n as usize % topics.len()];
                        publisher
                            .publish(topic, &json!({"p": name, "seq": n}))
                            .unwrap();
                        n += 1;
                    }
                    publisher.close(Duration::from_secs(30)).unwrap();
                    n
                }));
            }
            Kind::PyMultipart | Kind::PyEnvelope => {
                let form = if matches!(kind, Kind::PyMultipart) {
                    "multipart"
                } else {
                    "envelope"
                };
                let child = std::process::Command::new("python3")
                    .arg("-c")
                    .arg(PYZMQ_PUBLISHER)
                    .args([
                        &bridge.zmq,
                        name,
                        form,
                        &topics.join(","),
                        &rate.to_string(),
                        &duration.as_secs_f64().to_string(),
                    ])
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("python3 with pyzmq");
                python.push(PythonPeer(child));
            }
        }
    }
    // Publisher results, in PUBLISHERS order.
    let mut published = Vec::new();
    let mut rust = rust.into_iter();
    let mut python = python.into_iter();
    for (name, _, _, kind) in PUBLISHERS {
        let count = match kind {
            Kind::Rust => rust.next().unwrap().join().expect("Rust publisher"),
            _ => {
                let mut peer = python.next().unwrap();
                let mut out = String::new();
                use std::io::Read;
                peer.0
                    .stdout
                    .take()
                    .unwrap()
                    .read_to_string(&mut out)
                    .unwrap();
                assert!(peer.0.wait().unwrap().success(), "{name} failed");
                out.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: {out:?}"))
            }
        };
        published.push(count);
    }
    let publishing = started.elapsed();

    // Let everyone catch up (churning clients resume), bounded.
    let wanted: Vec<Vec<Vec<u32>>> = clients
        .iter()
        .map(|c| expected(&c.patterns, &published))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let behind = clients
            .iter()
            .zip(&wanted)
            .filter(|(c, w)| {
                let got = c.record.lock().unwrap().arrivals.len();
                got < w.iter().map(Vec::len).sum::<usize>()
            })
            .count();
        if behind == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A moment more for anything extra (a duplicate) to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("client task");
    }
    let rss_end = rss_kib(pid);

    let total_published: u64 = published.iter().sum();
    let mut total = Outcome::default();
    let mut reconnects = 0;
    let mut not_recovered = 0;
    let mut failures = Vec::new();
    for (client, wanted) in clients.iter().zip(&wanted) {
        let record = client.record.lock().unwrap();
        let out = outcome(&record, wanted);
        reconnects += record.reconnects;
        not_recovered += record.not_recovered;
        if out.lost + out.duplicates + out.out_of_order > 0 || record.not_recovered > 0 {
            failures.push(format!(
                "{}: {out:?}, {} reconnects, {} not recovered",
                client.label(),
                record.reconnects,
                record.not_recovered
            ));
        }
        total.expected += out.expected;
        total.delivered += out.delivered;
        total.lost += out.lost;
        total.duplicates += out.duplicates;
        total.out_of_order += out.out_of_order;
    }
    println!(
        "soak summary: {publishing:.1?} of publishing; events published {total_published} \
         ({}); deliveries expected {}, delivered {}; lost {}, duplicates {}, out of order {}; \
         reconnects {reconnects} (resumes not recovered {not_recovered}); \
         bridge RSS {rss_start} KiB at start, {rss_end} KiB at end; \
         live deliveries by the bridge's metric (replays not counted): native {} wamp1 {} sse {}",
        PUBLISHERS
            .iter()
            .zip(&published)
            .map(|(p, n)| format!("{} {n}", p.0))
            .collect::<Vec<_>>()
            .join(", "),
        total.expected,
        total.delivered,
        total.lost,
        total.duplicates,
        total.out_of_order,
        bridge.metric(r#"push_bridge_events_delivered_total{protocol="native"}"#),
        bridge.metric(r#"push_bridge_events_delivered_total{protocol="wamp1"}"#),
        bridge.metric(r#"push_bridge_events_delivered_total{protocol="sse"}"#),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let churning = clients.iter().filter(|c| c.churns).count() as u64;
    assert!(
        reconnects >= churning,
        "every churning client reconnected at least once ({reconnects} reconnects)"
    );
    assert_eq!(bridge.metric("push_bridge_slow_consumer_closes_total"), 0.0);
    assert_eq!(
        bridge.metric(r#"push_bridge_ingress_rejected_total{reason="duplicate"}"#),
        0.0
    );
}
