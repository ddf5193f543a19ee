//! The bare writer (`--floor`): the practical limit of this machine for the same
//! workload. It accepts the clients on a plain TCP listener, does the minimal WebSocket
//! handshake and subscribe exchange, then from one thread drains a batch of events from
//! ZeroMQ, frames each ONCE into its topic's reused buffer, and writes that buffer to
//! every subscribed non-blocking socket with one `write` each (what a socket cannot take
//! waits in its backlog): no JSON parsing, auth, tasks or per-delivery allocation.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use base64::Engine;
use sha1::{Digest, Sha1};

const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.trim().as_bytes());
    sha.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Appends an unmasked server text frame holding `payload` to `out`.
pub fn frame_into(out: &mut Vec<u8>, payload: &[u8]) {
    out.push(0x81);
    let len = payload.len();
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Reads one masked client frame and returns its unmasked payload.
fn read_client_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head)?;
    let mut len = u64::from(head[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b)?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b)?;
        len = u64::from_be_bytes(b);
    }
    if len > 64 * 1024 {
        return Err(std::io::Error::other("client frame too large"));
    }
    let mut mask = [0u8; 4];
    if head[1] & 0x80 != 0 {
        s.read_exact(&mut mask)?;
    }
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload)?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Ok(payload)
}

/// The first topic of a `{"type":"subscribe","topics":["…"]}` frame.
pub fn subscribed_topic(payload: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(payload).ok()?;
    let start = text.find(r#""topics":[""#)? + r#""topics":[""#.len();
    let end = text[start..].find('"')? + start;
    Some(text[start..end].to_string())
}

/// Handshake + subscribe exchange with one client; returns its topic.
fn upgrade(s: &mut TcpStream) -> std::io::Result<String> {
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut req = Vec::with_capacity(1024);
    let mut byte = [0u8; 1];
    while !req.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte)?;
        req.push(byte[0]);
        if req.len() > 16 * 1024 {
            return Err(std::io::Error::other("request head too large"));
        }
    }
    let head = String::from_utf8_lossy(&req);
    let key = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_string())
        })
        .ok_or_else(|| std::io::Error::other("no Sec-WebSocket-Key"))?;
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: push-bridge.v1\r\n\r\n",
        accept_key(&key)
    );
    s.write_all(answer.as_bytes())?;
    let payload = read_client_frame(s)?;
    let topic = subscribed_topic(&payload).ok_or_else(|| std::io::Error::other("no topic"))?;
    let mut out = Vec::new();
    let reply = format!(r#"{{"type":"subscribed","topics":["{topic}"]}}"#);
    frame_into(&mut out, reply.as_bytes());
    s.write_all(&out)?;
    Ok(topic)
}

/// One client socket and the bytes it could not take yet.
struct Conn {
    stream: TcpStream,
    backlog: Vec<u8>,
    dead: bool,
}

impl Conn {
    /// Writes `bytes` after any backlog, without blocking: one `write` syscall in the
    /// usual case, the rest kept for later.
    fn send(&mut self, bytes: &[u8]) {
        if self.dead {
            return;
        }
        if !self.backlog.is_empty() {
            self.backlog.extend_from_slice(bytes);
            self.flush();
            return;
        }
        match self.stream.write(bytes) {
            Ok(n) => self.backlog.extend_from_slice(&bytes[n..]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.backlog.extend_from_slice(bytes)
            }
            Err(_) => self.dead = true,
        }
    }

    fn flush(&mut self) {
        if self.dead || self.backlog.is_empty() {
            return;
        }
        match self.stream.write(&self.backlog) {
            Ok(n) => {
                self.backlog.drain(..n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => self.dead = true,
        }
    }
}

/// Events drained from ZeroMQ before one write per socket.
const BATCH: usize = 256;

/// The floor process: accept `clients` connections, then forward events until killed.
pub fn serve(listen: &str, zmq_endpoint: &str, clients: usize) -> Result<(), String> {
    let listener = TcpListener::bind(listen).map_err(|e| format!("bind {listen}: {e}"))?;
    let context = zmq::Context::new();
    let pull = context.socket(zmq::PULL).map_err(|e| format!("zmq: {e}"))?;
    pull.set_rcvhwm(100_000).map_err(|e| format!("zmq: {e}"))?;
    pull.bind(zmq_endpoint)
        .map_err(|e| format!("bind {zmq_endpoint}: {e}"))?;
    let mut by_topic: HashMap<Vec<u8>, (Vec<Conn>, Vec<u8>)> = HashMap::new();
    let mut accepted = 0;
    while accepted < clients {
        let (mut s, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        match upgrade(&mut s) {
            Ok(topic) => {
                s.set_nonblocking(true)
                    .map_err(|e| format!("nonblocking: {e}"))?;
                let entry = by_topic.entry(topic.into_bytes()).or_default();
                entry.0.push(Conn {
                    stream: s,
                    backlog: Vec::new(),
                    dead: false,
                });
                accepted += 1;
            }
            // The readiness probe connects and closes at once: not worth a line.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            Err(e) => eprintln!("floor: a client failed its handshake: {e}"),
        }
    }
    // Per topic, the frames of the events drained in this round, framed once each and
    // written to every subscriber with one syscall. Buffers are reused across rounds.
    let mut json: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut parts = [
        zmq::Message::new(),
        zmq::Message::new(),
        zmq::Message::new(),
    ];
    let mut backlog = false;
    let mut touched: Vec<Vec<u8>> = Vec::new();
    loop {
        // Block for the first event unless some socket still has bytes to take.
        let wait = if backlog { 1 } else { -1 };
        let ready = pull
            .poll(zmq::POLLIN, wait)
            .map_err(|e| format!("zmq poll: {e}"))?;
        let mut drained = 0;
        while ready > 0 && drained < BATCH {
            match pull.recv(&mut parts[0], zmq::DONTWAIT) {
                Ok(()) => {}
                Err(zmq::Error::EAGAIN) => break,
                Err(e) => return Err(format!("zmq recv: {e}")),
            }
            for part in parts[1..].iter_mut() {
                pull.recv(part, 0).map_err(|e| format!("zmq recv: {e}"))?;
            }
            drained += 1;
            let [topic, id, data] = &parts;
            let Some((_, batch)) = by_topic.get_mut(&topic[..]) else {
                continue;
            };
            json.clear();
            json.extend_from_slice(br#"{"type":"event","topic":""#);
            json.extend_from_slice(topic);
            json.extend_from_slice(br#"","id":""#);
            json.extend_from_slice(id);
            json.extend_from_slice(br#"","data":"#);
            json.extend_from_slice(data);
            json.push(b'}');
            if batch.is_empty() {
                touched.push(topic.to_vec());
            }
            frame_into(batch, &json);
        }
        let flush_all = backlog;
        backlog = false;
        let write = |conns: &mut Vec<Conn>, batch: &mut Vec<u8>, backlog: &mut bool| {
            for conn in conns.iter_mut() {
                if batch.is_empty() {
                    conn.flush();
                } else {
                    conn.send(batch);
                }
                *backlog |= !conn.backlog.is_empty();
            }
            batch.clear();
        };
        if flush_all {
            // Some socket was behind: visit every one (rare; only under overload).
            for (conns, batch) in by_topic.values_mut() {
                write(conns, batch, &mut backlog);
            }
        } else {
            for topic in &touched {
                if let Some((conns, batch)) = by_topic.get_mut(topic) {
                    write(conns, batch, &mut backlog);
                }
            }
        }
        touched.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn frames_use_the_right_length_form() {
        let mut out = Vec::new();
        frame_into(&mut out, b"hi");
        assert_eq!(out, [0x81, 2, b'h', b'i']);
        out.clear();
        frame_into(&mut out, &[b'a'; 1024]);
        assert_eq!(&out[..4], &[0x81, 126, 4, 0]);
        assert_eq!(out.len(), 1028);
        out.clear();
        frame_into(&mut out, &vec![b'a'; 70_000]);
        assert_eq!(out[1], 127);
        assert_eq!(out.len(), 70_010);
    }

    #[test]
    fn subscribe_topic_is_found() {
        assert_eq!(
            subscribed_topic(br#"{"type":"subscribe","topics":["article:7"]}"#).as_deref(),
            Some("article:7")
        );
        assert_eq!(subscribed_topic(br#"{"type":"subscribe"}"#), None);
    }
}
