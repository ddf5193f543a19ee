//! Server-Sent Events at `/events` with a real EventSource (npm `eventsource` on
//! Node, `tests/node/sse_client.js`) and, where bytes matter, raw HTTP: headers,
//! framing, heartbeats, refusals, and resume from `Last-Event-ID` while events flow.

mod node;
mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use node::NodeClient;
use serde_json::{json, Value};
use support::{http_request, publish_paced, Bridge};

/// Starts the EventSource client on `/events?<query>` with `options` (see the script)
/// and waits until the stream is open, so that events published next reach it.
fn event_source(bridge: &Bridge, query: &str, options: &Value) -> NodeClient {
    let url = format!("http://{}/events?{query}", bridge.addr);
    let client = NodeClient::spawn("sse_client.js", &[&url, &options.to_string()]);
    client.expect("request");
    client.expect("open");
    client
}

/// A `message` observation's sequence number, after checking the event's shape: the
/// SSE id is the event id, the data the native `event` frame.
fn seq_of(message: &Value, topic: &str) -> u64 {
    assert_eq!(message["event"], "message", "{message}");
    let frame = &message["data"];
    assert_eq!(frame["type"], "event");
    assert_eq!(frame["topic"], topic);
    assert_eq!(frame["id"], message["id"], "id: line = the event's id");
    frame["data"]["seq"].as_u64().expect("seq")
}

#[test]
fn an_event_source_receives_events_with_their_ids() {
    let bridge = Bridge::start();
    let token = bridge.token().to_string();
    // Token in the URL, as EventSource in browsers can only do; and as a header.
    let in_url = event_source(
        &bridge,
        &format!("topic=article&topic=package_created&token={token}"),
        &json!({}),
    );
    let in_header = event_source(
        &bridge,
        "topic=article:42",
        &json!({"headers": {"Authorization": format!("Bearer {token}")}}),
    );
    let publisher = bridge.publisher();
    let id = publisher
        .publish(
            "article:42",
            &json!({"headline": "Ünïcode \"quoted\"\nline"}),
        )
        .unwrap();
    publisher
        .publish("package_created", &json!({"seq": 1}))
        .unwrap();
    publisher
        .publish("article:421", &json!({"seq": 2}))
        .unwrap();

    let expected_first = json!({
        "event": "message",
        "id": id,
        "data": {"type": "event", "topic": "article:42", "id": id,
                 "data": {"headline": "Ünïcode \"quoted\"\nline"}},
    });
    assert_eq!(in_url.next(), expected_first);
    assert_eq!(seq_of(&in_url.next(), "package_created"), 1);
    assert_eq!(seq_of(&in_url.next(), "article:421"), 2);
    assert_eq!(in_header.next(), expected_first);
    in_header.assert_silent(Duration::from_millis(300));
}

/// Reads a streaming response: the head, then the de-chunked body as it comes.
struct RawStream {
    stream: TcpStream,
    buffer: Vec<u8>,
    pub head: String,
    body: Vec<u8>,
}

impl RawStream {
    fn open(bridge: &Bridge, target: &str, headers: &str) -> RawStream {
        let mut stream = TcpStream::connect(bridge.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n{headers}\r\n",
            bridge.addr
        )
        .unwrap();
        let mut raw = RawStream {
            stream,
            buffer: Vec::new(),
            head: String::new(),
            body: Vec::new(),
        };
        let deadline = Instant::now() + node::WAIT;
        let end = loop {
            if let Some(end) = raw.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            assert!(Instant::now() < deadline, "no response head");
            raw.read_more();
        };
        raw.head = String::from_utf8(raw.buffer[..end + 2].to_vec()).unwrap();
        raw.buffer.drain(..end + 4);
        raw
    }

    fn read_more(&mut self) {
        support::read_more(&mut self.stream, &mut self.buffer);
    }

    /// Moves every complete chunk from the buffer to the body.
    fn dechunk(&mut self) {
        while let Some(line_end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
            let size = std::str::from_utf8(&self.buffer[..line_end]).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            let total = line_end + 2 + size + 2;
            if self.buffer.len() < total {
                return;
            }
            assert_eq!(&self.buffer[total - 2..total], b"\r\n", "chunk end");
            self.body
                .extend_from_slice(&self.buffer[line_end + 2..line_end + 2 + size]);
            self.buffer.drain(..total);
        }
    }

    /// Reads until the body holds `text`; returns the body up to and including it and
    /// keeps the rest.
    fn read_until(&mut self, text: &str) -> String {
        let deadline = Instant::now() + node::WAIT;
        loop {
            self.dechunk();
            if let Some(at) = self
                .body
                .windows(text.len())
                .position(|w| w == text.as_bytes())
            {
                let taken: Vec<u8> = self.body.drain(..at + text.len()).collect();
                return String::from_utf8(taken).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "never saw {text:?} in {:?}",
                String::from_utf8_lossy(&self.body)
            );
            self.read_more();
        }
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

#[test]
fn raw_stream_headers_framing_and_heartbeats() {
    let bridge = Bridge::start_with("server.heartbeat = \"300ms\"");
    let auth = format!("Authorization: Bearer {}\r\n", bridge.token());
    let mut raw = RawStream::open(&bridge, "/events?topic=feed", &auth);
    assert!(raw.head.starts_with("HTTP/1.1 200 "), "{}", raw.head);
    assert_eq!(
        raw.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(raw.header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(raw.header("x-accel-buffering").as_deref(), Some("no"));

    // Idle: a comment every heartbeat, and nothing else.
    let started = Instant::now();
    let idle = raw.read_until(": heartbeat\n\n: heartbeat\n\n");
    assert_eq!(idle, ": heartbeat\n\n: heartbeat\n\n");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "two heartbeats took {elapsed:?}"
    );

    let publisher = bridge.publisher();
    publisher
        .publish_with_id("feed", "evt-1", &json!({"text": "a\nb"}))
        .unwrap();
    publisher
        .publish_with_id("feed", "evt-2", &json!(2))
        .unwrap();
    let frames = raw.read_until("id: evt-2\n");
    let frames = frames.replace(": heartbeat\n\n", "");
    assert_eq!(
        frames,
        "id: evt-1\ndata: {\"type\":\"event\",\"topic\":\"feed\",\"id\":\"evt-1\",\
         \"data\":{\"text\":\"a\\nb\"}}\n\nid: evt-2\n"
    );
    let rest = raw.read_until("\n\n");
    assert_eq!(
        rest,
        "data: {\"type\":\"event\",\"topic\":\"feed\",\"id\":\"evt-2\",\"data\":2}\n\n"
    );

    // Resume in the query form (`lastEventId`), for clients that cannot set headers.
    let mut resumed = RawStream::open(&bridge, "/events?topic=feed&lastEventId=evt-1", &auth);
    let replayed = resumed.read_until("\n\n");
    assert_eq!(
        replayed,
        "id: evt-2\ndata: {\"type\":\"event\",\"topic\":\"feed\",\"id\":\"evt-2\",\"data\":2}\n\n"
    );
}

#[test]
fn refusals_come_before_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[token]]\nname = \"dash\"\ntoken = \"dash-token\"\ntopics = [\"article:*\"]\n",
    )
    .unwrap();
    let bridge = Bridge::start_with(&format!("auth.tokens_file = \"{}\"", tokens.display()));
    let get = |target: &str| {
        http_request(
            bridge.addr,
            &format!(
                "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                bridge.addr
            ),
        )
        .unwrap()
    };
    for (target, status) in [
        ("/events?topic=article:1", 401),
        ("/events?topic=article:1&token=wrong", 401),
        ("/events?token=dash-token", 400),
        ("/events?topic=bad%20topic&token=dash-token", 400),
        ("/events?topic=a*b&token=dash-token", 400),
        ("/events?topic=article::1&token=dash-token", 400),
        ("/events?topic=secret&token=dash-token", 403),
        (
            "/events?topic=article:1&topic=article&token=dash-token",
            403,
        ),
    ] {
        let (got, response) = get(target);
        assert_eq!(got, status, "{target}: {response}");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        let body: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{target}: body not JSON ({e}): {response}"));
        assert!(body["error"].is_string(), "{target}: {body}");
        assert!(body["message"].is_string(), "{target}: {body}");
        assert!(
            !response.to_ascii_lowercase().contains("text/event-stream"),
            "{target}: no stream"
        );
    }

    // A real EventSource gives up on 401/403 (no reconnect) and reports the status.
    let url = format!(
        "http://{}/events?topic=secret&token=dash-token",
        bridge.addr
    );
    let mut client = NodeClient::spawn("sse_client.js", &[&url, "{}"]);
    client.expect("request");
    let error = client.expect("error");
    assert_eq!(error["code"], 403, "{error}");
    assert!(client.wait_exit(), "no reconnect after 403");
}

/// THE resume test: a client cut mid-stream while 1,000 events a second flow, then
/// resumed with `Last-Event-ID` = the last id it saw, gets every event exactly once,
/// in order.
#[test]
fn a_cut_event_source_resumes_without_gap_or_duplicate() {
    const EVENTS: u64 = 3000;
    let bridge = Bridge::start();
    let query = format!("topic=feed&token={}", bridge.token());
    let first = event_source(&bridge, &query, &json!({}));
    let publishing = publish_paced(&bridge, "feed", EVENTS, 1000);

    let mut seen = Vec::new();
    let mut last_id = String::new();
    let mut record = |message: &Value| {
        seen.push(seq_of(message, "feed"));
        last_id = message["id"].as_str().unwrap().to_string();
    };
    for _ in 0..1000 {
        record(&first.next());
    }
    // SIGKILL: the connection is cut with no goodbye, mid-stream. Whatever the client
    // printed before dying counts as seen.
    for message in first.kill() {
        record(&message);
    }
    let cut_at = seen.len();
    assert!(
        (cut_at as u64) < EVENTS - 500,
        "the cut came too late to be mid-stream ({cut_at} events seen)"
    );

    let second = event_source(&bridge, &query, &json!({ "last_event_id": last_id }));
    while seen.last() != Some(&(EVENTS - 1)) {
        let message = second.next();
        assert_ne!(message["event"], "reset", "the id was in history");
        seen.push(seq_of(&message, "feed"));
    }
    publishing.join().unwrap();
    let expected: Vec<u64> = (0..EVENTS).collect();
    assert!(
        seen == expected,
        "the union of both connections is not the published sequence: cut after {cut_at}, \
         {} seen, first differences: {:?}",
        seen.len(),
        seen.iter()
            .zip(&expected)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .collect::<Vec<_>>()
    );
    second.assert_silent(Duration::from_millis(300));
}

/// The EventSource's own reconnect: the connection breaks under it, and it comes back
/// by itself (after its retry delay) sending the `Last-Event-ID` it kept.
#[test]
fn an_event_source_reconnects_by_itself_with_last_event_id() {
    const EVENTS: u64 = 5000;
    const CUT_AFTER: u64 = 500;
    let bridge = Bridge::start();
    let query = format!("topic=feed&token={}", bridge.token());
    let client = event_source(&bridge, &query, &json!({ "cut_after": CUT_AFTER }));
    let publishing = publish_paced(&bridge, "feed", EVENTS, 1000);

    let mut seen = Vec::new();
    let mut last_id = Value::Null;
    let mut reconnected = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.last() != Some(&(EVENTS - 1)) {
        assert!(
            Instant::now() < deadline,
            "{} events after 30 s",
            seen.len()
        );
        let observed = client.next();
        match observed["event"].as_str() {
            Some("message") => {
                seen.push(seq_of(&observed, "feed"));
                last_id = observed["id"].clone();
            }
            Some("cut") => assert_eq!(observed["after"], CUT_AFTER),
            Some("error") => assert!(!reconnected, "{observed}"),
            Some("request") => {
                assert!(!reconnected, "one reconnect: {observed}");
                assert!(seen.len() as u64 >= CUT_AFTER);
                // The id of the last event the client dispatched (events of the chunk
                // being parsed at the cut still count).
                assert_eq!(observed["last_event_id"], last_id);
                reconnected = true;
            }
            Some("open") => assert!(reconnected),
            _ => panic!("unexpected {observed}"),
        }
    }
    publishing.join().unwrap();
    assert!(reconnected, "the client never reconnected");
    assert!(
        seen == (0..EVENTS).collect::<Vec<_>>(),
        "gap or duplicate: {seen:?}"
    );
}

#[test]
fn an_unknown_last_event_id_gets_reset_then_live_events() {
    let bridge = Bridge::start();
    let query = format!("topic=feed&token={}", bridge.token());
    // Some history exists, but not this id.
    let publisher = bridge.publisher();
    publisher.publish("feed", &json!({"seq": 0})).unwrap();
    bridge.wait_metric("push_bridge_history_events", 1.0);

    let client = event_source(
        &bridge,
        &query,
        &json!({ "last_event_id": "0-unknown", "exit_after": 3 }),
    );
    let reset = client.expect("reset");
    assert_eq!(reset["data"], json!({}));
    publisher.publish("feed", &json!({"seq": 1})).unwrap();
    publisher.publish("feed", &json!({"seq": 2})).unwrap();
    assert_eq!(seq_of(&client.next(), "feed"), 1);
    assert_eq!(seq_of(&client.next(), "feed"), 2);
}
