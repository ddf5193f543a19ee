//! `GET /events?topic=a&topic=b:1` (docs/protocol.md "Server-Sent Events"): reads the
//! topics and the resume point (`Last-Event-ID` header, or `lastEventId` in the query),
//! admits the client like a WebSocket, and hands the stream to `egress::sse`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::admission::{admit, refusal, TokenLater};
use super::state::AppState;
use crate::egress::sse;
use crate::ops::metrics;
use crate::protocol::Protocol;
use crate::topic::Pattern;

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
    let (grant, slot) = match admit(&state, peer, &uri, &headers, TokenLater::No).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    if let Some(message) = grant.refuses(&patterns) {
        metrics::refused_client_action(Protocol::Sse, "subscribe");
        return refusal(StatusCode::FORBIDDEN, "forbidden", &message);
    }
    let resume = match last_event_id.as_deref() {
        Some(since) => Some((since, state.egress.log.continuity().await)),
        None => None,
    };
    let body = sse::open(&state.egress, &grant, patterns, resume, peer, slot);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
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
