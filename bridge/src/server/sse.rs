//! Server-Sent Events at `GET /events?topic=a&topic=b:1` (docs/protocol.md
//! "Server-Sent Events"): the same admission as a WebSocket (token in the query or
//! headers), then a `text/event-stream` of the subscribed topics' events, a comment
//! every heartbeat, and resume from `Last-Event-ID` (header, or `lastEventId` query).
//!
//! The stream is the session: it owns its queue, and dropping it (the client went
//! away) removes its subscriptions.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use futures_util::StreamExt;

use super::limits::Slot;
use super::routes::{admit, refusal, AppState};
use super::session::{expiry_deadline, sleep_until_some};
use crate::hub::{Outbound, SessionHandle};
use crate::ops::metrics;
use crate::protocol::{native, sse, Protocol};
use crate::topic::Pattern;

/// Frames written per chunk at most.
const MAX_BATCH: usize = 64;

pub async fn events(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = uri.query().unwrap_or_default();
    let mut topics = Vec::new();
    let mut last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "topic" => topics.push(value.into_owned()),
            "lastEventId" if last_event_id.is_none() => last_event_id = Some(value.into_owned()),
            _ => {}
        }
    }
    let patterns = match parse_topics(&topics, state.config.max_subscriptions) {
        Ok(patterns) => patterns,
        Err(message) => return refusal(StatusCode::BAD_REQUEST, "bad_request", &message),
    };
    let (grant, slot) = match admit(&state, peer, &uri, &headers).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let forbidden: Vec<&str> = patterns
        .iter()
        .filter(|p| !grant.permits(p))
        .map(Pattern::as_str)
        .collect();
    if !forbidden.is_empty() {
        metrics::refused_client_action(Protocol::Sse, "subscribe");
        return refusal(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!("the token does not permit: {}", forbidden.join(", ")),
        );
    }

    let (handle, queue) = state.hub.register_queue(Protocol::Sse);
    let mut first = String::new();
    match &last_event_id {
        Some(since) => match state.hub.subscribe_since(&handle, &patterns, &[], since) {
            Some(replay) => {
                for event in replay {
                    let frame = native::event(&event.topic, &event.id, &event.data);
                    first.push_str(&sse::event(&event.id, &frame));
                }
            }
            None => first.push_str(sse::reset()),
        },
        None => {
            for pattern in &patterns {
                state.hub.subscribe(&handle, pattern);
            }
        }
    }
    state
        .live_sessions()
        .insert(handle.id, (Arc::clone(&handle), grant.credential.clone()));
    metrics::connection_opened(Protocol::Sse);
    tracing::debug!(%peer, token = %grant.name, topics = ?topics, "event stream opened");

    let stream = Stream {
        state: Arc::clone(&state),
        handle,
        patterns,
        queue,
        heartbeat: tokio::time::interval_at(
            tokio::time::Instant::now() + state.config.heartbeat,
            state.config.heartbeat,
        ),
        expires_at: grant.expires_at,
        _slot: slot,
    };
    let first = (!first.is_empty()).then(|| Ok::<_, Infallible>(Bytes::from(first)));
    let body =
        futures_util::stream::iter(first).chain(futures_util::stream::unfold(stream, Stream::next));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

fn parse_topics(topics: &[String], max: usize) -> Result<Vec<Pattern>, String> {
    if topics.is_empty() {
        return Err("name at least one topic: /events?topic=…".into());
    }
    if topics.len() > max {
        return Err(format!("at most {max} topics per stream"));
    }
    let mut patterns = Vec::with_capacity(topics.len());
    let mut invalid = Vec::new();
    for topic in topics {
        match Pattern::parse(topic) {
            Ok(pattern) if !patterns.contains(&pattern) => patterns.push(pattern),
            Ok(_) => {}
            Err(e) => invalid.push(format!("{topic:?} {e}")),
        }
    }
    if invalid.is_empty() {
        Ok(patterns)
    } else {
        Err(format!("invalid topics: {}", invalid.join("; ")))
    }
}

/// One open stream; dropping it ends the session.
struct Stream {
    state: Arc<AppState>,
    handle: Arc<SessionHandle>,
    patterns: Vec<Pattern>,
    queue: mpsc::Receiver<Outbound>,
    heartbeat: tokio::time::Interval,
    expires_at: Option<std::time::SystemTime>,
    _slot: Slot,
}

impl Stream {
    /// The next chunk of the body, or the end of the stream.
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Stream)> {
        let expiry = expiry_deadline(self.expires_at);
        let chunk = tokio::select! {
            biased;
            _ = self.handle.close_requested() => return None,
            _ = self.state.shutdown.cancelled() => return None,
            _ = sleep_until_some(expiry) => return None,
            _ = self.heartbeat.tick() => Bytes::from_static(sse::heartbeat().as_bytes()),
            first = self.queue.recv() => {
                let first = first?;
                let oldest = first.received;
                let mut chunk = Bytes::from(first.frame);
                let mut frames = 1;
                // Several queued events go out as one chunk (copied once, together).
                if let Ok(second) = self.queue.try_recv() {
                    let mut joined = Vec::with_capacity(chunk.len() * 4);
                    joined.extend_from_slice(&chunk);
                    joined.extend_from_slice(second.frame.as_bytes());
                    frames += 1;
                    while frames < MAX_BATCH {
                        let Ok(next) = self.queue.try_recv() else { break };
                        joined.extend_from_slice(next.frame.as_bytes());
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
        self.state
            .hub
            .unsubscribe_all(self.handle.id, self.patterns.iter());
        self.state.live_sessions().remove(&self.handle.id);
        metrics::connection_closed(Protocol::Sse);
        tracing::debug!(session = self.handle.id, "event stream closed");
    }
}
