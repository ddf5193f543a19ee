//! The write side of a WebSocket session's socket, shared by the session task and the
//! ingress thread (through the hub) so that event frames go straight into the socket:
//! no task wake-up, no per-connection copy, one `writev` for every frame that arrived
//! in a burst.
//!
//! Event frames are built once per event (server frames are not masked, so the whole
//! frame, header included, is the same for every recipient) and queued here as shared
//! [`Bytes`]. Whoever holds the socket writes what it can take without blocking: the
//! hub at the end of each ingress burst, the session task when the socket becomes
//! writable again. Whatever the socket cannot take waits in the queue, in order; past
//! `server.send_queue` event frames the session is a slow consumer.
//!
//! While the session handles a client frame it *corks* the writer: the hub keeps
//! queueing but stops writing, and the session's answer goes in ahead of what was
//! queued meanwhile, so a `subscribed` (and a resume's replay) precedes every live
//! event of the new subscription.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::Notify;

use crate::ops::metrics;
use crate::protocol::Protocol;

/// Slices handed to one `writev` at most (Linux's `IOV_MAX` is 1024).
const MAX_IOVECS: usize = 64;

/// A connected stream socket the writer can use from any thread.
#[derive(Debug)]
pub enum RawStream {
    Tcp(TcpStream),
    /// One end of a socket pair; the other end is a task relaying to a TLS stream.
    Unix(UnixStream),
}

impl RawStream {
    fn try_write_vectored(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            RawStream::Tcp(s) => s.try_write_vectored(slices),
            RawStream::Unix(s) => s.try_write_vectored(slices),
        }
    }

    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            RawStream::Tcp(s) => s.try_read(buf),
            RawStream::Unix(s) => s.try_read(buf),
        }
    }

    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            RawStream::Tcp(s) => s.poll_read_ready(cx),
            RawStream::Unix(s) => s.poll_read_ready(cx),
        }
    }

    /// Sends a FIN after what was written, then reads and drops what the peer sent and
    /// nobody read (a real read each time: tokio's readiness may be stale).
    fn shutdown_write(&self) -> io::Result<()> {
        use std::io::Read;
        let socket = match self {
            RawStream::Tcp(s) => socket2::SockRef::from(s),
            RawStream::Unix(s) => socket2::SockRef::from(s),
        };
        socket.shutdown(std::net::Shutdown::Write)?;
        let mut unread = [0u8; 4096];
        // Bounded: a peer that keeps sending gets the reset it asks for.
        for _ in 0..64 {
            match (&*socket).read(&mut unread) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn writable(&self) -> io::Result<()> {
        match self {
            RawStream::Tcp(s) => s.writable().await,
            RawStream::Unix(s) => s.writable().await,
        }
    }
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// `limit` event frames are already waiting: a slow consumer.
    Full,
    /// The socket failed or the session is ending.
    Closed,
}

/// What one write pass delivered: complete event frames and the oldest one's arrival.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    pub frames: u64,
    pub oldest: Option<Instant>,
}

impl Written {
    /// Adds another pass's frames; the oldest arrival of both stays.
    pub fn add(&mut self, other: Written) {
        self.frames += other.frames;
        self.oldest = match (self.oldest, other.oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Counts the frames as delivered to `protocol` sessions and samples the latency
    /// of the oldest (nothing when nothing was delivered).
    pub fn record(self, protocol: Protocol) {
        if let Some(oldest) = self.oldest {
            metrics::events_delivered(protocol, self.frames, oldest.elapsed());
        }
    }
}

/// One queued frame.
#[derive(Debug)]
struct Queued {
    bytes: Bytes,
    /// What an event frame is for, as the session names it (a WAMP v2 subscription
    /// id); 0 for any other frame. [`SocketWriter::uncork`] drops queued frames whose
    /// tag the session no longer wants.
    tag: u64,
    /// Set on event frames: when the ingress received the event.
    received: Option<Instant>,
}

#[derive(Debug, Default)]
struct Pending {
    frames: VecDeque<Queued>,
    /// Bytes of the front frame already written.
    offset: usize,
    /// Event frames in `frames`.
    events: usize,
    corked: bool,
    broken: bool,
}

impl Pending {
    /// Whether the front frame is partly written (it must then be finished first).
    fn front_started(&self) -> bool {
        self.offset > 0
    }

    fn push(&mut self, queued: Queued) {
        if queued.received.is_some() {
            self.events += 1;
        }
        self.frames.push_back(queued);
    }

    /// Drops every frame not yet started, except those `keep` keeps.
    fn retain_unstarted(&mut self, mut keep: impl FnMut(&Queued) -> bool) {
        let started = usize::from(self.front_started());
        let mut index = 0;
        self.frames.retain(|queued| {
            index += 1;
            index <= started || keep(queued)
        });
        self.events = self.frames.iter().filter(|q| q.received.is_some()).count();
    }
}

/// The shared write side of one session's socket.
#[derive(Debug)]
pub struct SocketWriter {
    stream: RawStream,
    pending: Mutex<Pending>,
    /// Tells the session task there is something to write or the socket broke.
    wake: Notify,
}

impl SocketWriter {
    pub fn new(stream: RawStream) -> Self {
        SocketWriter {
            stream,
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
        }
    }

    pub fn stream(&self) -> &RawStream {
        &self.stream
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an event frame (written at the next flush), unless `limit` event frames
    /// are already waiting.
    pub fn queue_event(
        &self,
        frame: Bytes,
        tag: u64,
        received: Instant,
        limit: usize,
    ) -> Result<(), Refused> {
        let mut pending = self.lock();
        if pending.broken {
            return Err(Refused::Closed);
        }
        if pending.events >= limit {
            return Err(Refused::Full);
        }
        pending.push(Queued {
            bytes: frame,
            tag,
            received: Some(received),
        });
        Ok(())
    }

    /// Writes what the socket takes now, unless the session has corked the writer.
    /// Whatever remains is left to the session task, which is woken for it.
    pub fn flush_now(&self) -> Written {
        let mut pending = self.lock();
        if pending.corked || pending.frames.is_empty() {
            return Written::default();
        }
        let written = self.write_some(&mut pending);
        if !pending.frames.is_empty() || pending.broken {
            drop(pending);
            self.wake.notify_one();
        }
        written
    }

    /// Queues frames the session writes itself (control frames, answers) at the back.
    pub fn queue_raw(&self, bytes: Bytes) -> io::Result<()> {
        let mut pending = self.lock();
        if pending.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        pending.push(Queued {
            bytes,
            tag: 0,
            received: None,
        });
        Ok(())
    }

    /// Stops the hub's writes until [`uncork`](Self::uncork).
    pub fn cork(&self) {
        self.lock().corked = true;
    }

    /// Puts `answers` ahead of everything queued since the frame being written, drops
    /// queued event frames whose tag the session no longer `wanted` (a WAMP v2
    /// subscription it dropped), and lets the hub write again.
    pub fn uncork(&self, answers: Vec<Bytes>, wanted: impl Fn(u64) -> bool) {
        let mut pending = self.lock();
        pending.retain_unstarted(|q| q.tag == 0 || wanted(q.tag));
        let at = usize::from(pending.front_started());
        for (i, bytes) in answers.into_iter().enumerate() {
            pending.frames.insert(
                at + i,
                Queued {
                    bytes,
                    tag: 0,
                    received: None,
                },
            );
        }
        pending.corked = false;
    }

    /// Drops every queued event frame not yet started (the session is closing: its
    /// close frame must not wait behind them); the session's own frames stay.
    pub fn discard_events(&self) {
        self.lock().retain_unstarted(|q| q.received.is_none());
    }

    /// Marks the writer closed: the hub queues nothing more.
    pub fn close(&self) {
        self.lock().broken = true;
    }

    /// Ends the connection without a WebSocket close frame: marks the writer closed and
    /// sends a FIN after what was written. What the client sent and nobody read is
    /// discarded, or closing the socket would reset the connection instead, throwing
    /// away what still waits in the kernel's send buffer.
    pub fn cut(&self) -> io::Result<()> {
        self.close();
        self.stream.shutdown_write()
    }

    /// Waits until there is something to write and the socket takes some of it, writes
    /// what it can and returns what was delivered. Cancel-safe: nothing is taken off
    /// the queue before the socket took it.
    pub async fn write_when_ready(&self) -> io::Result<Written> {
        loop {
            let (empty, broken) = {
                let pending = self.lock();
                (pending.frames.is_empty(), pending.broken)
            };
            if broken {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            if empty {
                self.wake.notified().await;
                continue;
            }
            self.stream.writable().await?;
            let mut pending = self.lock();
            let written = self.write_some(&mut pending);
            if pending.broken {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            if written.frames > 0 || pending.frames.is_empty() {
                return Ok(written);
            }
        }
    }

    /// Writes until the queue is empty (or the socket fails).
    pub async fn write_all(&self) -> io::Result<Written> {
        let mut total = Written::default();
        loop {
            {
                let pending = self.lock();
                if pending.frames.is_empty() {
                    return Ok(total);
                }
            }
            total.add(self.write_when_ready().await?);
        }
    }

    /// Event frames waiting to be written, and when the ingress received the oldest
    /// of them (for the backlog sampler, once a second: no cost on the hot path).
    pub fn backlog(&self) -> (usize, Option<Instant>) {
        let pending = self.lock();
        // The oldest event frame is at the front but for the session's own frames
        // (answers, pings), which are few.
        let oldest = pending.frames.iter().find_map(|q| q.received);
        (pending.events, oldest)
    }

    /// Whether frames wait to be written.
    pub fn has_queued(&self) -> bool {
        !self.lock().frames.is_empty()
    }

    /// One or more `writev` calls until the queue is empty or the socket would block.
    fn write_some(&self, pending: &mut Pending) -> Written {
        let mut written = Written::default();
        while !pending.frames.is_empty() && !pending.broken {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for (i, queued) in pending.frames.iter().take(MAX_IOVECS).enumerate() {
                let skip = if i == 0 { pending.offset } else { 0 };
                slices[count] = IoSlice::new(&queued.bytes[skip..]);
                count += 1;
            }
            match self.stream.try_write_vectored(&slices[..count]) {
                Ok(0) => pending.broken = true,
                Ok(mut n) => {
                    while let Some(front) = pending.frames.front() {
                        let left = front.bytes.len() - pending.offset;
                        if n < left {
                            pending.offset += n;
                            break;
                        }
                        n -= left;
                        pending.offset = 0;
                        if let Some(done) = pending.frames.pop_front() {
                            if let Some(received) = done.received {
                                pending.events -= 1;
                                written.frames += 1;
                                written.oldest.get_or_insert(received);
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => pending.broken = true,
            }
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::frame::text_frame;
    use std::io::Read;

    /// A writer on one end of a socket pair (registered with the test's runtime, which
    /// must be running for readiness to be known) and the other end, blocking.
    async fn pair() -> (SocketWriter, std::os::unix::net::UnixStream) {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let writer = SocketWriter::new(RawStream::Unix(UnixStream::from_std(ours).unwrap()));
        writer.stream.writable().await.unwrap();
        (writer, theirs)
    }

    #[tokio::test]
    async fn queued_events_are_written_in_order_and_counted() {
        let (writer, mut peer) = pair().await;
        let now = Instant::now();
        for text in ["a", "b", "c"] {
            writer
                .queue_event(text_frame(text.as_bytes()), 0, now, 10)
                .unwrap();
        }
        writer.queue_raw(text_frame(b"pong")).unwrap();
        assert_eq!(writer.backlog(), (3, Some(now)), "event frames only");
        let written = writer.flush_now();
        assert_eq!(written.frames, 3);
        assert_eq!(written.oldest, Some(now));
        assert_eq!(writer.backlog(), (0, None));
        let mut got = [0u8; 15];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"\x81\x01a\x81\x01b\x81\x01c\x81\x04pong");
    }

    #[tokio::test]
    async fn the_limit_counts_event_frames_only() {
        let (writer, _peer) = pair().await;
        writer.cork();
        writer.queue_raw(text_frame(b"answer")).unwrap();
        let frame = text_frame(b"e");
        writer
            .queue_event(frame.clone(), 0, Instant::now(), 2)
            .unwrap();
        writer
            .queue_event(frame.clone(), 0, Instant::now(), 2)
            .unwrap();
        assert_eq!(
            writer.queue_event(frame.clone(), 0, Instant::now(), 2),
            Err(Refused::Full)
        );
        writer.close();
        assert_eq!(
            writer.queue_event(frame.clone(), 0, Instant::now(), 2),
            Err(Refused::Closed)
        );
    }

    #[tokio::test]
    async fn answers_go_ahead_of_what_was_queued_while_corked_and_unwanted_events_go() {
        let (writer, mut peer) = pair().await;
        writer.cork();
        let now = Instant::now();
        writer.queue_event(text_frame(b"1"), 7, now, 10).unwrap();
        writer.queue_event(text_frame(b"2"), 8, now, 10).unwrap();
        assert_eq!(writer.flush_now().frames, 0, "corked: nothing written");
        writer.uncork(vec![text_frame(b"A")], |tag| tag == 8);
        assert_eq!(writer.flush_now().frames, 1);
        let mut got = [0u8; 6];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"\x81\x01A\x81\x012");
    }

    #[tokio::test]
    async fn a_cut_ends_the_stream_after_what_was_written_without_a_reset() {
        use std::io::Write;
        let (writer, mut peer) = pair().await;
        writer
            .queue_event(text_frame(b"last"), 0, Instant::now(), 10)
            .unwrap();
        writer.write_all().await.unwrap();
        // Sent by the peer and never read: closing over it would reset the connection.
        peer.write_all(b"pong").unwrap();
        writer.cut().unwrap();
        assert!(writer.queue_raw(text_frame(b"late")).is_err(), "closed");
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        assert_eq!(
            got, b"\x81\x04last",
            "what was written, then the end of the stream"
        );
        drop(writer);
        assert_eq!(
            peer.read(&mut [0; 1]).unwrap(),
            0,
            "no reset when it closes"
        );
    }

    #[tokio::test]
    async fn what_the_socket_cannot_take_waits_and_a_discard_keeps_whole_frames() {
        let (writer, peer) = pair().await;
        let big = text_frame(&vec![b'x'; 1 << 20]);
        let now = Instant::now();
        for _ in 0..8 {
            writer.queue_event(big.clone(), 0, now, 10).unwrap();
        }
        let first = writer.flush_now();
        assert!(writer.has_queued(), "8 MiB do not fit a socket buffer");
        writer.discard_events();
        let reader = std::thread::spawn(move || {
            let mut peer = peer;
            let mut all = Vec::new();
            peer.read_to_end(&mut all).unwrap();
            all.len()
        });
        let rest = writer.write_all().await.unwrap();
        drop(writer);
        let total = reader.join().unwrap();
        assert_eq!(total % big.len(), 0, "only whole frames: {total}");
        assert_eq!(total / big.len(), (first.frames + rest.frames) as usize);
    }
}
