//! HTTP routes on the one listener (spec/clients.md "HTTP endpoints"): `/healthz`,
//! `/readyz`, `/metrics`, and WebSocket upgrades on any path. Every check that can
//! refuse a client (draining, limits, origin, token) runs here, before the upgrade,
//! and answers a plain HTTP status with a JSON body.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use super::limits::{LimitReached, Limits};
use super::session::{self, SessionContext};
use crate::auth::credentials::{self, Presented};
use crate::auth::Authenticator;
use crate::config::ServerConfig;
use crate::hub::Hub;
use crate::ops::metrics;
use crate::ops::shutdown::{Shutdown, TaskTracker};
use crate::protocol;

/// Everything the routes and sessions share.
#[derive(Debug)]
pub struct AppState {
    pub config: ServerConfig,
    pub hub: Arc<Hub>,
    pub auth: Authenticator,
    pub limits: Arc<Limits>,
    pub metrics: PrometheusHandle,
    /// Ingress bound and listener accepting.
    pub ready: AtomicBool,
    pub shutdown: Shutdown,
    pub sessions: TaskTracker,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(any_path)
        .with_state(state)
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// A plain HTTP refusal: `{"error":"…","message":"…"}`.
pub fn refusal(status: StatusCode, error: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": error, "message": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// WebSocket upgrades on any path; anything else is the (future) live page at `/`
/// or 404.
async fn any_path(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    match upgrade {
        Ok(upgrade) => websocket(state, peer, uri, headers, upgrade),
        Err(_) if method == Method::GET && uri.path() == "/" => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "push-bridge: connect a WebSocket client here (see the README).\n",
        )
            .into_response(),
        Err(_) => refusal(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
    }
}

fn websocket(
    state: Arc<AppState>,
    peer: SocketAddr,
    uri: Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let refuse = |status: StatusCode, reason: &'static str, message: &str| {
        metrics::auth_failure(reason);
        tracing::debug!(
            %peer,
            query = %credentials::redact_query(uri.query().unwrap_or_default()),
            reason,
            "refused a connection"
        );
        refusal(status, reason, message)
    };
    if state.shutdown.is_cancelled() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the bridge is shutting down",
        );
    }
    let slot = match state.limits.try_acquire(peer.ip()) {
        Ok(slot) => slot,
        Err(LimitReached::Total) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "max_connections",
                "the connection limit is reached",
            )
        }
        Err(LimitReached::PerAddress) => {
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "max_connections_per_ip",
                "too many connections from this address",
            )
        }
    };
    if let (Some(allowed), Some(origin)) =
        (&state.config.allowed_origins, headers.get(header::ORIGIN))
    {
        let origin = origin.to_str().unwrap_or_default();
        if !allowed.iter().any(|a| a == origin) {
            return refuse(
                StatusCode::FORBIDDEN,
                "origin",
                "this Origin is not allowed",
            );
        }
    }
    let presented = credentials::find(uri.query(), &headers, state.auth.cookie_name());
    let grant = match state.auth.authenticate(&presented) {
        Ok(grant) => grant,
        Err(denied) => return refuse(denied.status(), denied.reason(), &denied.message()),
    };
    debug_assert!(!matches!(presented, Presented::Malformed(_)));

    let offered: Vec<&str> = credentials::subprotocols(&headers).collect();
    let (protocol, echo) = protocol::negotiate(&offered, state.config.default_protocol);
    let max_inbound = state.config.max_inbound_frame_bytes;
    let mut upgrade = upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(max_inbound)
        .max_frame_size(max_inbound);
    if let Some(echo) = echo {
        upgrade.set_selected_protocol(HeaderValue::from_static(echo));
    }
    let context = SessionContext {
        state: Arc::clone(&state),
        grant,
        protocol,
        peer,
        slot,
    };
    let sessions = state.sessions.clone();
    upgrade
        .on_failed_upgrade(move |error| tracing::debug!(%peer, %error, "upgrade failed"))
        .on_upgrade(move |socket| sessions.track_future(session::run(socket, context)))
}
