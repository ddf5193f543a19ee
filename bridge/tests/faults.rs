//! Faults and abuse against the real binary (docs/reliability.md lists every case and
//! the test proving it): slowloris and half-open clients, connection churn without
//! leaks, hostile WebSocket frames, and garbage on the ZeroMQ port. After each, a
//! normal client still gets a freshly published event.

mod support;

use std::io::Write;
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
    let stream = socket.connect(bridge.addr).await.unwrap();
    let mut stream = upgrade_on(stream, bridge, "push-bridge.v1").await;
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
    let healthy = native_client(&bridge, &["big"]).await;
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
             (slow consumer closes: {})\n{}",
            started.elapsed(),
            bridge.metric("push_bridge_slow_consumer_closes_total"),
            bridge.stderr()
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

/// Many connections that send part of an HTTP request (or nothing, or a byte at a
/// time) and stall are each cut at `server.handshake_timeout`, not before; while they
/// hang, a normal client connects, subscribes and gets an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_cut_at_the_handshake_timeout_and_others_are_served() {
    const PARTIAL: usize = 200;
    const SILENT: usize = 40;
    const TRICKLE: usize = 10;
    let timeout = Duration::from_secs(1);
    let bridge = Bridge::start_with("server.handshake_timeout = \"1s\"");
    let partials = [
        "GET /?token=x HTTP/1.1\r\nHost: a\r\n".to_string(),
        format!(
            "GET /?token={} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
            bridge.token()
        ),
        "GE".to_string(),
        format!("GET /events?topic=a&token={} HTTP/1.1\r\n", bridge.token()),
    ];
    let mut hanging = Vec::new();
    for i in 0..PARTIAL + SILENT + TRICKLE {
        let addr = bridge.addr;
        let partial = partials[i % partials.len()].clone();
        hanging.push(tokio::spawn(async move {
            // The bridge's timer starts once it accepted, after `connect` began (the
            // lower bound); `started` is when this task saw the connection ready.
            let connecting = Instant::now();
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let started = Instant::now();
            if i < PARTIAL {
                stream.write_all(partial.as_bytes()).await.unwrap();
            } else if i >= PARTIAL + SILENT {
                // A byte every 200 ms: never idle, never done.
                let mut buf = [0u8; 64];
                for byte in partial.bytes() {
                    if stream.write_all(&[byte]).await.is_err() {
                        break;
                    }
                    let read =
                        tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf));
                    if read.await.is_ok() {
                        // Cut (0 bytes, or an error answer then the close).
                        return ("trickle", connecting.elapsed(), started.elapsed());
                    }
                }
            }
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;
            let kind = match i {
                _ if i < PARTIAL => ["partial 0", "partial 1", "partial 2", "partial 3"][i % 4],
                _ if i < PARTIAL + SILENT => "silent",
                _ => "trickle",
            };
            (kind, connecting.elapsed(), started.elapsed())
        }));
    }
    // Give every connection time to be accepted, then serve a normal client.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let served = Instant::now();
    still_serves(&bridge).await;
    let served = served.elapsed();
    let still_hanging = hanging.iter().filter(|h| !h.is_finished()).count();
    println!("normal client served in {served:?} while {still_hanging} connections hang");
    assert_eq!(
        still_hanging,
        hanging.len(),
        "the normal client was served while every slow connection still hung"
    );
    let mut cut_after = std::collections::BTreeMap::<_, Vec<Duration>>::new();
    for handle in hanging {
        let (kind, since_connecting, after) = handle.await.unwrap();
        assert!(
            since_connecting >= timeout,
            "{kind} cut early: {since_connecting:?}"
        );
        cut_after.entry(kind).or_default().push(after);
    }
    for (kind, after) in &mut cut_after {
        after.sort();
        println!(
            "{} {kind} connections cut after {:?} .. {:?} (handshake_timeout {timeout:?})",
            after.len(),
            after[0],
            after[after.len() - 1]
        );
    }
    let last = cut_after.into_values().flatten().max().unwrap();
    assert!(
        last < timeout + Duration::from_secs(4),
        "cut late: {last:?}"
    );
    still_serves(&bridge).await;
}

/// Connects `url` with `protocol`, reads the welcome if the protocol sends one.
async fn client(bridge: &Bridge, protocol: &str) -> Ws {
    let (mut ws, selected) = connect(&bridge.token_url(), &[protocol], &[])
        .await
        .expect("connect");
    assert_eq!(selected.as_deref(), Some(protocol));
    match protocol {
        "wamp.2.json" => {
            send(&mut ws, r#"[1,"realm1",{"roles":{"subscriber":{}}}]"#).await;
            assert_eq!(next_json(&mut ws).await[0], 2, "WAMP v2 WELCOME");
        }
        _ => {
            next_json(&mut ws).await;
        }
    }
    ws
}

/// A raw upgraded socket (after the 101 answer), for frames tungstenite will not send.
async fn raw_upgrade(bridge: &Bridge, protocol: &str) -> tokio::net::TcpStream {
    let stream = tokio::net::TcpStream::connect(bridge.addr).await.unwrap();
    upgrade_on(stream, bridge, protocol).await
}

/// Sends the upgrade request for `protocol` on `stream` and reads the 101 answer.
async fn upgrade_on(
    mut stream: tokio::net::TcpStream,
    bridge: &Bridge,
    protocol: &str,
) -> tokio::net::TcpStream {
    let request = format!(
        "GET /?token={} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {protocol}\r\n\r\n",
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
    stream
}

/// Reads server frames until a close frame (its code) or the end of the connection
/// (`None`).
async fn raw_close_code(stream: &mut tokio::net::TcpStream) -> Option<u16> {
    let read = async {
        loop {
            let mut header = [0u8; 2];
            stream.read_exact(&mut header).await.ok()?;
            let len = match header[1] & 0x7f {
                126 => stream.read_u16().await.ok()? as usize,
                127 => stream.read_u64().await.ok()? as usize,
                n => n as usize,
            };
            let mut payload = vec![0; len];
            stream.read_exact(&mut payload).await.ok()?;
            if header[0] & 0x0f == 0x8 {
                return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("closed in time")
}

/// A masked client frame with this first byte (FIN, opcode) and payload.
fn raw_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = client_text_frame(payload);
    frame[0] = first;
    frame
}

/// Hostile WebSocket frames on every protocol: oversized (also only announced, and
/// built from fragments), invalid UTF-8, binary, unmasked, unknown opcode. Each closes
/// that connection with the documented code (docs/protocol.md "Close codes"; or drops
/// it for a protocol error) and the bridge serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_close_with_the_spec_codes_and_the_bridge_serves_on() {
    let bridge = Bridge::start();
    let mut announced_huge = vec![0x81, 0x80 | 127];
    announced_huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
    announced_huge.extend_from_slice(&[0, 0, 0, 0]);
    let mut fragments = raw_frame(0x01, &[b'a'; 1000]);
    for _ in 0..8 {
        fragments.extend(raw_frame(0x00, &[b'a'; 1000]));
    }
    fragments.extend(raw_frame(0x80, &[b'a'; 1000]));
    let mut unmasked = vec![0x81, 2];
    unmasked.extend_from_slice(b"[]");
    let cases: [(&str, Vec<u8>, Option<u16>); 8] = [
        (
            "5000-byte text frame",
            raw_frame(0x81, &[b'a'; 5000]),
            Some(1009),
        ),
        ("a 1 TiB frame announced", announced_huge, Some(1009)),
        ("10 x 1000-byte fragments", fragments, Some(1009)),
        (
            "invalid UTF-8",
            raw_frame(0x81, b"[5,\"\xff\xfe\"]"),
            Some(1007),
        ),
        (
            "UTF-8 cut between fragments",
            [raw_frame(0x01, b"\"\xc3"), raw_frame(0x80, b"\"")].concat(),
            Some(1007),
        ),
        ("binary frame", raw_frame(0x82, b"[5,\"a\"]"), Some(1003)),
        ("unmasked frame", unmasked, None),
        ("reserved opcode", raw_frame(0x83, b"x"), None),
    ];
    for protocol in ["push-bridge.v1", "wamp", "wamp.2.json"] {
        for (name, bytes, expected) in &cases {
            let mut stream = raw_upgrade(&bridge, protocol).await;
            stream.write_all(bytes).await.unwrap();
            let code = raw_close_code(&mut stream).await;
            println!("{protocol}: {name} -> close code {code:?}");
            match expected {
                Some(expected) => assert_eq!(code, Some(*expected), "{protocol}: {name}"),
                // A protocol error: dropped (no close frame) or 1002.
                None => assert!(
                    matches!(code, None | Some(1002)),
                    "{protocol}: {name}: {code:?}"
                ),
            }
        }
        still_serves(&bridge).await;
    }
    let gauge = |p: &str| bridge.metric(&format!(r#"push_bridge_connections{{protocol="{p}"}}"#));
    let deadline = Instant::now() + WAIT;
    while gauge("native") + gauge("wamp1") + gauge("wamp2") > 0.0 {
        assert!(Instant::now() < deadline, "connections left open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A flood of subscribe requests past `server.max_subscriptions`: each refused (native:
/// an error; WAMP v1: ignored), the eleventh within a minute closes with `1008`.
#[tokio::test]
async fn a_flood_of_subscribes_over_the_limit_gets_errors_then_1008() {
    let bridge = Bridge::start_with("server.max_subscriptions = 2");
    let mut native = client(&bridge, "push-bridge.v1").await;
    send(&mut native, r#"{"type":"subscribe","topics":["a","b"]}"#).await;
    assert_eq!(next_json(&mut native).await["type"], "subscribed");
    for n in 0..10 {
        send(
            &mut native,
            &json!({"type": "subscribe", "topics": [format!("c{n}")], "ref": n}).to_string(),
        )
        .await;
        let error = next_json(&mut native).await;
        assert_eq!(error["code"], "too_many_subscriptions", "{error}");
        assert_eq!(error["ref"], n);
    }
    send(&mut native, r#"{"type":"subscribe","topics":["c10"]}"#).await;
    let (code, texts) = close_code(&mut native).await;
    assert_eq!(code, Some(1008));
    assert_eq!(
        texts.len(),
        1,
        "the eleventh is answered, then closed: {texts:?}"
    );

    let mut wamp = client(&bridge, "wamp").await;
    send(&mut wamp, r#"[5,"a"]"#).await;
    send(&mut wamp, r#"[5,"b"]"#).await;
    for n in 0..10 {
        send(&mut wamp, &format!(r#"[5,"c{n}"]"#)).await;
    }
    bridge.publisher().publish("a", &1).unwrap();
    assert_eq!(next_json(&mut wamp).await, json!([8, "a", 1]));
    send(&mut wamp, r#"[5,"c10"]"#).await;
    assert_eq!(close_code(&mut wamp).await.0, Some(1008));
    assert!(
        bridge.metric(
            r#"push_bridge_refused_client_actions_total{protocol="wamp1",action="subscribe"}"#
        ) >= 11.0
    );
    still_serves(&bridge).await;
}

fn ten_thousand_topics() -> Vec<String> {
    (0..10_000).map(|n| format!("t{n}")).collect()
}

/// 10,000 topics in one subscribe: above the default frame limit it is `1009`; with a
/// large frame limit it is refused `too_many_subscriptions` (nothing subscribed, the
/// connection kept), and accepted when `server.max_subscriptions` allows it. SSE with
/// 10,000 topics is a clear 400. The bridge stays responsive throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_topics_in_one_subscribe() {
    let topics = ten_thousand_topics();
    let request = json!({"type": "subscribe", "topics": topics}).to_string();

    let bridge = Bridge::start();
    let mut ws = client(&bridge, "push-bridge.v1").await;
    send(&mut ws, &request).await;
    assert_eq!(close_code(&mut ws).await.0, Some(1009));
    still_serves(&bridge).await;

    let bridge = Bridge::start_with("server.max_inbound_frame_bytes = \"1MiB\"");
    let mut ws = client(&bridge, "push-bridge.v1").await;
    send(&mut ws, &request).await;
    let error = next_json(&mut ws).await;
    assert_eq!(error["code"], "too_many_subscriptions", "{error}");
    assert_eq!(bridge.metric("push_bridge_subscriptions"), 0.0);
    send(&mut ws, r#"{"type":"subscribe","topics":["t1"]}"#).await;
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    let query: String = topics.iter().map(|t| format!("topic={t}&")).collect();
    let (status, body) = http_get(
        bridge.addr,
        &format!("/events?{query}token={}", bridge.token()),
    )
    .unwrap();
    println!(
        "SSE with 10,000 topics: {status} {}",
        body.lines().last().unwrap_or("")
    );
    assert!(matches!(status, 400 | 414 | 431), "{status}: {body}");
    still_serves(&bridge).await;

    let bridge = Bridge::start_with(
        "server.max_inbound_frame_bytes = \"1MiB\"\nserver.max_subscriptions = 10000",
    );
    let mut ws = client(&bridge, "push-bridge.v1").await;
    let started = Instant::now();
    send(&mut ws, &request).await;
    let subscribed = next_json(&mut ws).await;
    println!("10,000 topics subscribed in {:?}", started.elapsed());
    assert_eq!(subscribed["type"], "subscribed");
    assert_eq!(subscribed["topics"].as_array().unwrap().len(), 10_000);
    assert_eq!(bridge.metric("push_bridge_subscriptions"), 10_000.0);
    let publisher = bridge.publisher();
    publisher.publish("t9999", &1).unwrap();
    publisher.publish("t5000:sub", &2).unwrap();
    publisher.publish("u1", &3).unwrap();
    publisher.publish("t0", &4).unwrap();
    let got: Vec<_> = [
        next_json(&mut ws).await,
        next_json(&mut ws).await,
        next_json(&mut ws).await,
    ]
    .iter()
    .map(|e| (e["topic"].as_str().unwrap().to_string(), e["data"].clone()))
    .collect();
    assert_eq!(
        got,
        vec![
            ("t9999".to_string(), json!(1)),
            ("t5000:sub".to_string(), json!(2)),
            ("t0".to_string(), json!(4)),
        ]
    );
    still_serves(&bridge).await;
    drop(ws);
    let deadline = Instant::now() + WAIT;
    while bridge.metric("push_bridge_subscriptions") > 0.0 {
        assert!(Instant::now() < deadline, "subscriptions left behind");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// 100,000 `[` (and a deep but valid nesting) in a client frame of every protocol and
/// in ingress data: refused with the protocol's answer or accepted, never a crash or a
/// stack overflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_refused_cleanly_everywhere() {
    let bridge = Bridge::start_with("server.max_inbound_frame_bytes = \"1MiB\"");
    let deep = "[".repeat(100_000);
    let deep_closed = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));

    let mut native = client(&bridge, "push-bridge.v1").await;
    for frame in [
        deep.clone(),
        deep_closed.clone(),
        format!(r#"{{"type":"subscribe","topics":["a"],"ref":{deep_closed}}}"#),
    ] {
        send(&mut native, &frame).await;
        let error = next_json(&mut native).await;
        assert_eq!(error["code"], "bad_request", "{error}");
    }
    send(&mut native, r#"{"type":"subscribe","topics":["deep"]}"#).await;
    assert_eq!(next_json(&mut native).await["type"], "subscribed");

    for protocol in ["wamp", "wamp.2.json"] {
        for frame in [&deep, &deep_closed] {
            let mut ws = client(&bridge, protocol).await;
            send(&mut ws, frame).await;
            assert_eq!(close_code(&mut ws).await.0, Some(1007), "{protocol}");
        }
    }

    // Ingress: as a multipart data frame and inside a one-frame envelope.
    let push = zmq::Context::new().socket(zmq::PUSH).unwrap();
    push.set_linger(5000).unwrap();
    push.connect(&bridge.zmq).unwrap();
    push.send_multipart([&b"deep"[..], deep.as_bytes()], 0)
        .unwrap();
    push.send_multipart([&b"deep"[..], deep_closed.as_bytes()], 0)
        .unwrap();
    push.send(
        format!(r#"{{"topic":"deep","data":{deep_closed}}}"#).as_bytes(),
        0,
    )
    .unwrap();
    // Deep but within what the bridge parses: forwarded as it is.
    let nested = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    push.send_multipart([&b"deep"[..], nested.as_bytes()], 0)
        .unwrap();
    let event = next_json(&mut native).await;
    let mut value = &event["data"];
    let mut depth = 0;
    while let Some(inner) = value.get(0) {
        value = inner;
        depth += 1;
    }
    assert_eq!((depth, value), (100, &json!(1)));
    assert_eq!(
        bridge.metric(r#"push_bridge_ingress_rejected_total{reason="bad_json"}"#),
        3.0
    );
    still_serves(&bridge).await;
}

/// One connect → welcome → subscribe → subscribed → disconnect cycle; every fourth
/// leaves without a close handshake.
async fn cycle(bridge: &Bridge, n: usize) {
    let topic = format!("cycle:{}", n % 5000);
    let mut ws = native_client(bridge, &[&topic, "cycle"]).await;
    if n.is_multiple_of(4) {
        drop(ws);
    } else {
        let _ = ws.close(None).await;
        let _ = close_code(&mut ws).await;
    }
}

/// Runs `count` cycles, `concurrency` at a time.
async fn cycles(bridge: &std::sync::Arc<Bridge>, from: usize, count: usize, concurrency: usize) {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(from));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let bridge = std::sync::Arc::clone(bridge);
            let next = std::sync::Arc::clone(&next);
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= from + count {
                        return;
                    }
                    cycle(&bridge, n).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
}

/// Waits until no connection or subscription is left.
async fn wait_idle(bridge: &Bridge) {
    wait_idle_except(bridge, 0.0).await;
}

/// 20,000 connect/subscribe/disconnect cycles (16 at a time) leak neither file
/// descriptors nor memory: both are back to their post-warm-up level. Events published
/// all along reach a client that stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_connect_subscribe_disconnect_cycles_leak_nothing() {
    const WARM_UP: usize = 2_000;
    const CYCLES: usize = 20_000;
    let bridge = std::sync::Arc::new(Bridge::start());
    let pid = bridge.pid();
    let mut stayer = native_client(&bridge, &["cycle"]).await;
    cycles(&bridge, 0, WARM_UP, 16).await;
    wait_idle_except(&bridge, 1.0).await;
    let (fds_before, rss_before) = (open_fds(pid), rss_kib(pid));

    let started = Instant::now();
    let publishing = publish_paced(&bridge, "cycle", 200, 20);
    cycles(&bridge, WARM_UP, CYCLES, 16).await;
    let elapsed = started.elapsed();
    publishing.join().unwrap();
    for seq in 0..200 {
        assert_eq!(next_json(&mut stayer).await["data"]["seq"], seq);
    }
    wait_idle_except(&bridge, 1.0).await;
    let (fds_after, rss_after) = (open_fds(pid), rss_kib(pid));
    let opened = bridge.metric(r#"push_bridge_connections_total{protocol="native"}"#);
    println!(
        "{CYCLES} cycles in {elapsed:?}: fds {fds_before} -> {fds_after}, \
         RSS {rss_before} KiB -> {rss_after} KiB, connections opened in all {opened}"
    );
    assert_eq!(opened, (WARM_UP + CYCLES + 1) as f64);
    assert!(
        fds_after <= fds_before + 2,
        "file descriptors {fds_before} -> {fds_after}"
    );
    assert!(
        rss_after <= rss_before + 8 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    drop(stayer);
    wait_idle(&bridge).await;
    still_serves(&bridge).await;
}

/// Waits until only `stay` connections (with one subscription each) are left.
async fn wait_idle_except(bridge: &Bridge, stay: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let connections = bridge.metric(r#"push_bridge_connections{protocol="native"}"#);
        let subscriptions = bridge.metric("push_bridge_subscriptions");
        if connections == stay && subscriptions == stay {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{connections} connections and {subscriptions} subscriptions left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A pyzmq PUSH sending `{"p": "py", "seq": n}` on `topic` as `[topic, data]`, paced,
/// then closing with linger.
const PYZMQ_PUSH: &str = r#"
import json, sys, time, zmq
endpoint, topic, count, per_second = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.connect(endpoint)
started = time.monotonic()
for seq in range(count):
    due = started + seq / per_second
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    s.send_multipart([topic.encode(), json.dumps({"p": "py", "seq": seq}).encode()])
s.setsockopt(zmq.LINGER, 10000)
s.close()
ctx.term()
"#;

/// Raw garbage, half ZMTP handshakes left hanging, and a storm of connections opened
/// and closed on the PULL port, all while a Rust SDK and a pyzmq publisher publish:
/// every event arrives once and in order, /readyz stays 200, and the descriptors the
/// garbage took are given back once it goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_half_handshakes_on_the_pull_port_do_not_disturb_publishers() {
    const EVENTS: u64 = 1000;
    let bridge = Bridge::start();
    let pid = bridge.pid();
    let port: u16 = bridge.zmq.rsplit(':').next().unwrap().parse().unwrap();
    let mut client = native_client(&bridge, &["rust", "py"]).await;
    let fds_before = open_fds(pid);

    let rust = publish_paced(&bridge, "rust", EVENTS, 200);
    let py = PythonPeer::spawn(PYZMQ_PUSH, &[&bridge.zmq, "py", &EVENTS.to_string(), "200"]);

    let abuse = std::thread::spawn(move || {
        let mut held = Vec::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = |len: usize| -> Vec<u8> {
            (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect()
        };
        for i in 0..100 {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let bytes = match i % 5 {
                // Random bytes of various lengths.
                0 | 1 => random(1 + i * 97 % 8192),
                // A ZMTP 3 signature and version, then nothing.
                2 => vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3],
                // A whole greeting (NULL mechanism), then no READY.
                3 => {
                    let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0];
                    greeting.extend_from_slice(b"NULL");
                    greeting.resize(64, 0);
                    greeting
                }
                // A greeting, then a READY command claiming to be a PUB with a
                // nonsense length.
                _ => {
                    let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0];
                    greeting.extend_from_slice(b"NULL");
                    greeting.resize(64, 0);
                    greeting
                        .extend_from_slice(&[0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
                    greeting.extend_from_slice(b"\x05READY");
                    greeting
                }
            };
            let _ = stream.write_all(&bytes);
            held.push(stream);
        }
        // Connections opened and closed at once, some after a byte.
        for i in 0..2000 {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            if i % 2 == 0 {
                let _ = stream.write_all(&[0xff]);
            }
        }
        held
    });
    let t0 = Instant::now();
    let held = abuse.join().unwrap();
    println!("abuse done after {:?}", t0.elapsed());
    assert_eq!(http_get(bridge.addr, "/readyz").unwrap().0, 200);
    let fds_during = open_fds(pid);

    let (mut rust_seq, mut py_seq) = (0, 0);
    while rust_seq < EVENTS || py_seq < EVENTS {
        let event = next_json(&mut client).await;
        let seq = event["data"]["seq"].as_u64().unwrap();
        match event["topic"].as_str().unwrap() {
            "rust" => {
                assert_eq!(seq, rust_seq, "Rust SDK event out of order or lost");
                rust_seq += 1;
            }
            "py" => {
                assert_eq!(seq, py_seq, "pyzmq event out of order or lost");
                py_seq += 1;
            }
            other => panic!("unexpected topic {other}"),
        }
    }
    println!("events in after {:?}", t0.elapsed());
    rust.join().unwrap();
    let mut py = py;
    assert!(py.0.wait().unwrap().success());
    assert_silent(&mut client, Duration::from_millis(200)).await;
    assert_eq!(http_get(bridge.addr, "/readyz").unwrap().0, 200);

    drop(held);
    println!("held dropped after {:?}", t0.elapsed());
    let deadline = Instant::now() + WAIT;
    while open_fds(pid) > fds_before + 2 {
        assert!(
            Instant::now() < deadline,
            "descriptors {fds_before} -> {fds_during} -> {} after the garbage left",
            open_fds(pid)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "PULL port abuse: {EVENTS} + {EVENTS} events in order; bridge fds {fds_before} -> \
         {fds_during} while 100 garbage peers held on -> {} after",
        open_fds(pid)
    );
    still_serves(&bridge).await;
}

/// The listener queues a reconnect storm instead of dropping SYNs: its accept backlog
/// is 4096 (as the socket unit's `Backlog=`), capped by `net.core.somaxconn`, not the
/// 128 `TcpListener::bind` gives (which made a few of 250 simultaneous connects wait
/// 1 s for a SYN retransmission). Read with `ss` (iproute2): Send-Q of a listening
/// socket is its backlog.
#[test]
fn the_listener_backlog_holds_a_reconnect_storm() {
    let bridge = Bridge::start();
    let output = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", bridge.addr.port())])
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let backlog: u32 = text
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no listening socket in {text:?}"));
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    println!("listen backlog {backlog} (somaxconn {somaxconn})");
    assert_eq!(backlog, somaxconn.min(4096));
}

/// An SSE client that stopped reading while its topic is busy (the bridge's writes to
/// it block) is ended within two heartbeats of the stall, as a WebSocket one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_event_stream_is_ended_after_two_heartbeats() {
    const EVENTS: u64 = 150;
    let bridge = Bridge::start_with("server.heartbeat = \"500ms\"");
    let gauge = r#"push_bridge_connections{protocol="sse"}"#;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket.connect(bridge.addr).await.unwrap();
    let request = format!(
        "GET /events?topic=big&token={} HTTP/1.1\r\nHost: {}\r\n\r\n",
        bridge.token(),
        bridge.addr
    );
    stuck.write_all(request.as_bytes()).await.unwrap();
    bridge.wait_metric(gauge, 1.0);
    let publisher = bridge.publisher();
    let padding = "x".repeat(64 * 1024);
    for seq in 0..EVENTS {
        publisher
            .publish("big", &json!({"seq": seq, "pad": padding}))
            .unwrap();
    }
    bridge.wait_metric("push_bridge_history_events", EVENTS as f64);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(6);
    while bridge.metric(gauge) > 0.0 {
        assert!(
            Instant::now() < deadline,
            "the stalled event stream is still open {:?} after the last event",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "stalled event stream ended {:?} after the last event",
        started.elapsed()
    );
    assert_eq!(bridge.metric("push_bridge_subscriptions"), 0.0);
    drop(stuck);
    still_serves(&bridge).await;
}
