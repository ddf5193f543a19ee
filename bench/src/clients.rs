//! The WebSocket clients: each binds a 127.0.0.x source address (so 10k+ connections
//! never run out of ephemeral ports), connects with the native subprotocol and small
//! buffers, subscribes to its topic, then records every event's latency and sequence.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::stats::{Counters, Histogram, Seen, SeqTracker};

/// What every client shares.
pub struct Shared {
    pub hist: Histogram,
    pub counters: Counters,
    /// The clients of each server (one per cluster node).
    pub per_server: Vec<PerServer>,
}

/// The counters of one server's clients.
#[derive(Default)]
pub struct PerServer {
    pub ready: AtomicU64,
    /// Distinct events received.
    pub received: AtomicU64,
}

/// Nanoseconds since the Unix epoch (the clock the publisher stamps events with).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The unsigned integer after `key` (e.g. `"ts":`) in `text`.
pub fn field_u64(text: &[u8], key: &[u8]) -> Option<u64> {
    let at = text.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = text[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut value: u64 = 0;
    let mut any = false;
    for &d in digits {
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        any = true;
    }
    any.then_some(value)
}

/// Where and how the clients connect.
#[derive(Clone)]
pub struct Target {
    pub ws: SocketAddr,
    pub token: String,
    /// The bare writer does no welcome/subscribe exchange beyond one reply frame.
    pub floor: bool,
}

/// Opens `n` clients, client `i` connecting to `targets[i % targets.len()]` and
/// subscribing to `topic(i)`; resolves once all are subscribed or failed. They keep
/// receiving until `stop` turns true.
pub async fn open_all(
    targets: &[Target],
    n: usize,
    topic: impl Fn(usize) -> String,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    // Bounded concurrent handshakes: a listen backlog overflow would stall for seconds.
    let gate = Arc::new(Semaphore::new(64));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for i in 0..n {
        let Ok(permit) = gate.clone().acquire_owned().await else {
            break;
        };
        let server = i % targets.len();
        let (target, shared, stop, done) = (
            targets[server].clone(),
            shared.clone(),
            stop.clone(),
            done_tx.clone(),
        );
        let topic = topic(i);
        tokio::spawn(async move {
            let ws = match connect(&target, i, &topic).await {
                Ok(ws) => ws,
                Err(e) => {
                    if shared.counters.failed.fetch_add(1, Relaxed) < 5 {
                        eprintln!("client {i}: {e}");
                    }
                    drop(permit);
                    let _ = done.send(());
                    return;
                }
            };
            shared.counters.ready.fetch_add(1, Relaxed);
            shared.per_server[server].ready.fetch_add(1, Relaxed);
            drop(permit);
            let _ = done.send(());
            receive(ws, shared, server, stop).await;
        });
    }
    drop(done_tx);
    for _ in 0..n {
        if done_rx.recv().await.is_none() {
            break;
        }
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn connect(target: &Target, i: usize, topic: &str) -> Result<Ws, String> {
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % 250) as u8));
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let stream = tokio::time::timeout(Duration::from_secs(20), socket.connect(target.ws))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let url = format!("ws://{}/?token={}", target.ws, target.token);
    let mut request = url.into_client_request().map_err(|e| format!("{e}"))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("push-bridge.v1"),
    );
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024);
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)),
    )
    .await
    .map_err(|_| "handshake timed out".to_string())?
    .map_err(|e| format!("handshake: {e}"))?;
    let subscribe = format!(r#"{{"type":"subscribe","topics":["{topic}"]}}"#);
    if !target.floor {
        expect_frame(&mut ws, "welcome").await?;
    }
    ws.send(Message::text(subscribe))
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    expect_frame(&mut ws, "subscribed").await?;
    Ok(ws)
}

async fn expect_frame(ws: &mut Ws, kind: &str) -> Result<(), String> {
    let wanted = format!(r#""type":"{kind}""#);
    let next = tokio::time::timeout(Duration::from_secs(20), ws.next())
        .await
        .map_err(|_| format!("no {kind} frame within 20 s"))?;
    match next {
        Some(Ok(Message::Text(t))) if t.as_str().contains(&wanted) => Ok(()),
        Some(Ok(other)) => Err(format!("expected {kind}, got {other:?}")),
        Some(Err(e)) => Err(format!("waiting for {kind}: {e}")),
        None => Err(format!("closed before {kind}")),
    }
}

async fn receive(mut ws: Ws, shared: Arc<Shared>, server: usize, mut stop: watch::Receiver<bool>) {
    let mut tracker = SeqTracker::new();
    let c = &shared.counters;
    loop {
        let frame = tokio::select! {
            f = ws.next() => f,
            _ = stop.changed() => return,
        };
        match frame {
            Some(Ok(Message::Text(t))) => {
                let bytes = t.as_bytes();
                let (Some(ts), Some(seq)) =
                    (field_u64(bytes, b"\"ts\":"), field_u64(bytes, b"\"seq\":"))
                else {
                    c.other_frames.fetch_add(1, Relaxed);
                    continue;
                };
                match tracker.observe(seq) {
                    Seen::Duplicate => {
                        c.duplicates.fetch_add(1, Relaxed);
                        continue;
                    }
                    Seen::Late => {
                        c.out_of_order.fetch_add(1, Relaxed);
                    }
                    Seen::New => {}
                }
                c.received.fetch_add(1, Relaxed);
                shared.per_server[server].received.fetch_add(1, Relaxed);
                shared.hist.record(now_ns().saturating_sub(ts) / 1000);
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                if !*stop.borrow() {
                    c.failed.fetch_add(1, Relaxed);
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_from_event_frames() {
        let f = br#"{"type":"event","topic":"bench","id":"x","data":{"ts":1700000000123456789,"seq":42,"pad":"aaa"}}"#;
        assert_eq!(field_u64(f, b"\"ts\":"), Some(1_700_000_000_123_456_789));
        assert_eq!(field_u64(f, b"\"seq\":"), Some(42));
        assert_eq!(field_u64(f, b"\"nope\":"), None);
        assert_eq!(field_u64(br#"{"seq":}"#, b"\"seq\":"), None);
        assert_eq!(
            field_u64(br#"{"seq":99999999999999999999999}"#, b"\"seq\":"),
            None
        );
    }
}
