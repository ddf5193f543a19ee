//! Clients and checks shared by the cluster tests (`cluster.rs`, `cluster_failover.rs`,
//! `cluster_faults.rs`): a native client resuming with `since`, its event frames, an SSE
//! stream read over raw HTTP/1.1, and failure messages that say where two sequences
//! part.

use std::io::Write;
use std::net::TcpStream;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::redis::metric_sum;
use super::{Bridge, PythonPeer, Ws, WAIT};

/// Waits (bounded) for a python peer to finish and asserts it succeeded.
pub fn finish(peer: &mut PythonPeer, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = peer.0.try_wait().expect("try_wait") {
            assert!(status.success(), "the python publisher failed: {status}");
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the python publisher did not finish in {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The next `event` frame, waiting up to `within`; panics on anything else (a close
/// frame included: clients must stay connected).
pub async fn next_event(ws: &mut Ws, within: Duration) -> Value {
    loop {
        let message = tokio::time::timeout(within, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no event in {within:?}"))
            .expect("the connection ended")
            .expect("read error");
        match message {
            Message::Text(text) => {
                let frame: Value = serde_json::from_str(&text).expect("JSON");
                assert_eq!(frame["type"], "event", "{frame}");
                return frame;
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

/// Reads exactly `count` events from `ws` (each within `gap` of the one before),
/// counting them in `progress` as they come.
pub fn collect(
    mut ws: Ws,
    count: usize,
    gap: Duration,
    progress: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<(Ws, Vec<Value>)> {
    tokio::spawn(async move {
        let mut events = Vec::with_capacity(count);
        while events.len() < count {
            events.push(next_event(&mut ws, gap).await);
            progress.fetch_add(1, Ordering::Relaxed);
        }
        (ws, events)
    })
}

pub fn seq(event: &Value) -> u64 {
    event["data"]["seq"].as_u64().expect("seq")
}

pub fn id(event: &Value) -> String {
    event["id"].as_str().expect("id").to_string()
}

/// The `seq`s of the events on `topic`, in the order they came.
pub fn topic_seqs(events: &[Value], topic: &str) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e["topic"] == topic)
        .map(seq)
        .collect()
}

/// The first places where `seen` differs from `expected`, for failure messages.
pub fn first_differences(seen: &[u64], expected: &[u64]) -> String {
    let mut differences: Vec<String> = seen
        .iter()
        .zip(expected)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .take(5)
        .map(|(at, (a, b))| format!("at {at}: {a} instead of {b}"))
        .collect();
    if seen.len() != expected.len() {
        differences.push(format!("{} seen, {} expected", seen.len(), expected.len()));
    }
    differences.join("; ")
}

/// `push_bridge_cluster_resume_total{result="<result>"}` of one node (`recovered`,
/// `reset`).
pub fn resumes(bridge: &Bridge, result: &str) -> f64 {
    metric_sum(
        bridge,
        "push_bridge_cluster_resume_total",
        &[("result", result)],
    )
}

/// One Server-Sent Events block: `event:` (default `message`), `id:`, `data:`.
#[derive(Debug)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    /// The native event frame in `data:` (after checking it matches `id:`).
    pub fn frame(&self) -> Value {
        assert_eq!(self.event, "message", "{self:?}");
        let frame: Value = serde_json::from_str(&self.data).expect("JSON data");
        assert_eq!(frame["type"], "event");
        assert_eq!(
            frame["id"].as_str(),
            self.id.as_deref(),
            "id: = the event's id"
        );
        frame
    }
}

/// An SSE stream read over raw HTTP/1.1 (chunked), blocking, with bounded waits.
pub struct Sse {
    stream: TcpStream,
    raw: Vec<u8>,
    body: Vec<u8>,
}

impl Sse {
    /// `GET /events?<query>` with the node's token, and `Last-Event-ID: <last>` when
    /// given.
    pub fn open(bridge: &Bridge, query: &str, last: Option<&str>) -> Sse {
        let mut stream = TcpStream::connect(bridge.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut request = format!(
            "GET /events?{query} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\
             Authorization: Bearer {}\r\n",
            bridge.addr,
            bridge.token()
        );
        if let Some(last) = last {
            request.push_str(&format!("Last-Event-ID: {last}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).expect("send request");
        let mut sse = Sse {
            stream,
            raw: Vec::new(),
            body: Vec::new(),
        };
        let deadline = Instant::now() + WAIT;
        let end = loop {
            if let Some(end) = sse.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            assert!(Instant::now() < deadline, "no response head");
            sse.read_more();
        };
        let head = String::from_utf8_lossy(&sse.raw[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "{head}"
        );
        sse.raw.drain(..end + 4);
        sse
    }

    fn read_more(&mut self) {
        super::read_more(&mut self.stream, &mut self.raw);
    }

    /// Moves every complete chunk from `raw` to `body`.
    fn dechunk(&mut self) {
        while let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") {
            let size = std::str::from_utf8(&self.raw[..line_end]).expect("chunk size");
            let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            let total = line_end + 2 + size + 2;
            if self.raw.len() < total {
                return;
            }
            self.body
                .extend_from_slice(&self.raw[line_end + 2..line_end + 2 + size]);
            self.raw.drain(..total);
        }
    }

    /// The next block with an event in it (comment-only blocks, the heartbeats, are
    /// skipped), or `None` when none came within `within`.
    pub fn try_next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + within;
        loop {
            self.dechunk();
            while let Some(end) = self.body.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.body.drain(..end + 2).collect();
                let block = String::from_utf8(block).expect("UTF-8");
                let mut event = SseEvent {
                    event: "message".to_string(),
                    id: None,
                    data: String::new(),
                };
                let mut any = false;
                for line in block
                    .lines()
                    .filter(|l| !l.is_empty() && !l.starts_with(':'))
                {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    any = true;
                    match field {
                        "event" => event.event = value.to_string(),
                        "id" => event.id = Some(value.to_string()),
                        "data" => {
                            if !event.data.is_empty() {
                                event.data.push('\n');
                            }
                            event.data.push_str(value);
                        }
                        _ => {}
                    }
                }
                if any {
                    return Some(event);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            self.read_more();
        }
    }

    pub fn next(&mut self) -> SseEvent {
        self.try_next(WAIT)
            .unwrap_or_else(|| panic!("no SSE event in {WAIT:?}"))
    }

    pub fn assert_silent(&mut self, quiet: Duration) {
        if let Some(event) = self.try_next(quiet) {
            panic!("expected silence, got {event:?}");
        }
    }
}
