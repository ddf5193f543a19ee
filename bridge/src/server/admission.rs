//! The checks every client passes before it is served, WebSocket or SSE, in order:
//! draining (503), connection limits (503, 429), `Origin` (403), token (401, 403,
//! 503). A refusal is a plain HTTP status with a JSON body, counted and logged (with
//! the query's token redacted).

use std::net::SocketAddr;

use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::limits::{LimitReached, Slot};
use super::state::AppState;
use crate::auth::{credentials, Denied, Grant};
use crate::ops::metrics;

/// Whether a client may come without a token and present it inside its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenLater {
    /// The token must come with the request (every protocol but WAMP v2).
    No,
    /// WAMP v2: a client without a token is let through with a grant of nothing and
    /// must authenticate by ticket before it can subscribe.
    ByTicket,
}

/// Admits a client: the grant its token gives and its place under the connection
/// limits (held for the session's life), or the refusal to answer with.
pub async fn admit(
    state: &AppState,
    peer: SocketAddr,
    uri: &Uri,
    headers: &HeaderMap,
    later: TokenLater,
) -> Result<(Grant, Slot), Response> {
    let refuse = |status, reason, message: &str| refuse(peer, uri, status, reason, message);
    if state.draining() {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the bridge is shutting down",
        ));
    }
    let slot = state
        .limits
        .try_acquire(peer.ip())
        .map_err(|limit| match limit {
            LimitReached::Total => refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "max_connections",
                "the connection limit is reached",
            ),
            LimitReached::PerAddress => refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "max_connections_per_ip",
                "too many connections from this address",
            ),
        })?;
    if !origin_allowed(state, headers) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "origin",
            "this Origin is not allowed",
        ));
    }
    let auth = state.auth.get();
    let presented = credentials::find(uri.query(), headers, auth.cookie_name());
    match auth.authenticate(&presented).await {
        Ok(grant) => Ok((grant, slot)),
        Err(Denied::Missing) if later == TokenLater::ByTicket => Ok((Grant::pending(), slot)),
        Err(denied) => Err(refuse(denied.status(), denied.reason(), &denied.message())),
    }
}

/// A plain HTTP refusal: `{"error":"…","message":"…"}`.
pub fn refusal(status: StatusCode, error: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": error, "message": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Counts, logs (query redacted) and answers a refusal.
fn refuse(
    peer: SocketAddr,
    uri: &Uri,
    status: StatusCode,
    reason: &'static str,
    message: &str,
) -> Response {
    metrics::auth_failure(reason);
    tracing::debug!(
        %peer,
        path = uri.path(),
        query = %credentials::redact_query(uri.query().unwrap_or_default()),
        reason,
        "refused a connection"
    );
    refusal(status, reason, message)
}

/// Requests without `Origin` (non-browser clients) are always allowed.
fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let allowed = state
        .allowed_origins
        .read()
        .unwrap_or_else(|e| e.into_inner());
    match (allowed.as_ref(), headers.get(header::ORIGIN)) {
        (Some(allowed), Some(origin)) => {
            let origin = origin.to_str().unwrap_or_default();
            allowed.iter().any(|a| a == origin)
        }
        _ => true,
    }
}
