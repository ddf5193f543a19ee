//! A Server-Sent Events stream (docs/protocol.md "Server-Sent Events"): the replay or
//! `reset` first when the client resumes, then the subscribed topics' events as they
//! come, a comment every heartbeat, the end when the token expires, the session is
//! closed, or the bridge drains.
//!
//! The stream is the session: it owns its queue, and dropping it (the client went
//! away) removes its subscriptions.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::connection::{Connection, Outbound};
use super::expiry::Expiry;
use super::Egress;
use crate::auth::Grant;
use crate::eventlog::Continuity;
use crate::ops::metrics;
use crate::protocol::{native, sse, Protocol};
use crate::topic::Pattern;

/// Frames written per chunk at most.
const MAX_BATCH: usize = 64;

/// Subscribes a new stream to `patterns` (every one permitted by `grant`) and returns
/// its body. With `resume` (the last event id the client saw, and whether the log can
/// prove the history continuous), the missed events come first, or `reset` when they
/// cannot be replayed. `guard` is held for the stream's life (its connection slot).
pub fn open(
    egress: &Arc<Egress>,
    grant: &Grant,
    patterns: Vec<Pattern>,
    resume: Option<(&str, Continuity)>,
    peer: SocketAddr,
    guard: impl Send + 'static,
) -> Body {
    let (connection, queue) = Connection::stream(&egress.hub, egress.send_queue);
    let connection = Arc::new(connection);
    let mut first = String::new();
    match resume {
        Some((since, continuity)) => {
            match egress.resume(&connection, &patterns, &[], since, continuity) {
                Some(replay) => {
                    for event in replay {
                        let frame = native::event(&event.topic, &event.id, &event.data);
                        first.push_str(&sse::event(&event.id, &frame));
                    }
                }
                None => first.push_str(sse::reset()),
            }
        }
        None => {
            for pattern in &patterns {
                egress.hub.subscribe(&connection, pattern);
            }
        }
    }
    egress
        .live
        .insert(connection.id(), &connection, grant.credential.clone());
    metrics::connection_opened(Protocol::Sse);
    tracing::debug!(%peer, token = %grant.name, topics = ?patterns, "event stream opened");

    let stream = Stream {
        egress: Arc::clone(egress),
        connection,
        patterns,
        queue,
        heartbeat: tokio::time::interval_at(
            tokio::time::Instant::now() + egress.heartbeat,
            egress.heartbeat,
        ),
        expiry: Expiry::new(grant.expires_at),
        _guard: Box::new(guard),
    };
    let first = (!first.is_empty()).then(|| Ok::<_, Infallible>(Bytes::from(first)));
    Body::from_stream(
        futures_util::stream::iter(first).chain(futures_util::stream::unfold(stream, Stream::next)),
    )
}

/// One open stream; dropping it ends the session.
struct Stream {
    egress: Arc<Egress>,
    connection: Arc<Connection>,
    patterns: Vec<Pattern>,
    queue: mpsc::Receiver<Outbound>,
    heartbeat: tokio::time::Interval,
    expiry: Expiry,
    _guard: Box<dyn Send>,
}

impl Stream {
    /// The next chunk of the body, or the end of the stream.
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Stream)> {
        let chunk = tokio::select! {
            biased;
            _ = self.connection.close_requested() => return None,
            _ = self.egress.shutdown.cancelled() => return None,
            _ = self.expiry.expired() => return None,
            _ = self.heartbeat.tick() => Bytes::from_static(sse::heartbeat().as_bytes()),
            first = self.queue.recv() => {
                let first = first?;
                let oldest = first.received;
                let mut chunk = first.frame;
                let mut frames = 1;
                // Several queued events go out as one chunk (copied once, together).
                if let Ok(second) = self.queue.try_recv() {
                    let mut joined = Vec::with_capacity(chunk.len() * 4);
                    joined.extend_from_slice(&chunk);
                    joined.extend_from_slice(&second.frame);
                    frames += 1;
                    while frames < MAX_BATCH {
                        let Ok(next) = self.queue.try_recv() else { break };
                        joined.extend_from_slice(&next.frame);
                        frames += 1;
                    }
                    chunk = Bytes::from(joined);
                }
                metrics::events_delivered(Protocol::Sse, frames as u64, oldest.elapsed());
                chunk
            }
        };
        Some((Ok(chunk), self))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.egress
            .hub
            .unsubscribe_all(self.connection.id(), self.patterns.iter());
        self.egress.live.remove(self.connection.id());
        metrics::connection_closed(Protocol::Sse);
        tracing::debug!(session = self.connection.id(), "event stream closed");
    }
}
