//! HTTP routes on the one listener (docs/protocol.md "HTTP endpoints"): `/healthz`,
//! `/readyz`, `/metrics`, and WebSocket upgrades on any path. Every check that can
//! refuse a client (draining, limits, origin, token) runs here, before the upgrade,
//! and answers a plain HTTP status with a JSON body.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use metrics_exporter_prometheus::PrometheusHandle;
use sha2::{Digest, Sha256};

use super::limits::{LimitReached, Limits, Slot};
use super::session::{self, SessionContext};
use super::sse;
use super::upgrade;
use crate::auth::credentials;
use crate::auth::{Authenticator, Credential, Denied, Grant};
use crate::config::ServerConfig;
use crate::hub::{Hub, SessionHandle, SessionId};
use crate::ops::metrics;
use crate::ops::shutdown::{Shutdown, TaskTracker};
use crate::protocol::{self, Protocol};

/// Everything the routes and sessions share.
#[derive(Debug)]
pub struct AppState {
    pub config: ServerConfig,
    pub hub: Arc<Hub>,
    /// Swapped whole on SIGHUP.
    pub auth: RwLock<Arc<Authenticator>>,
    /// `server.allowed_origins`, swapped on SIGHUP.
    pub allowed_origins: RwLock<Option<Vec<String>>>,
    /// `ingress.stale_after`: readyz fails when no message arrived for that long.
    pub stale_after: Option<std::time::Duration>,
    /// When the ingress last accepted a message (ms since the Unix epoch; start time
    /// before the first).
    pub last_message_at: Arc<std::sync::atomic::AtomicU64>,
    /// Open sessions and how they got in, so a reload can revoke them (`4003`).
    pub live: Mutex<HashMap<SessionId, (Arc<SessionHandle>, Credential)>>,
    pub limits: Arc<Limits>,
    pub metrics: PrometheusHandle,
    /// Ingress bound and listener accepting.
    pub ready: AtomicBool,
    pub shutdown: Shutdown,
    pub sessions: TaskTracker,
}

impl AppState {
    /// How long since the ingress last accepted a message.
    pub fn last_message_age(&self) -> std::time::Duration {
        let last = self.last_message_at.load(Ordering::Relaxed);
        std::time::Duration::from_millis(super::unix_millis().saturating_sub(last))
    }

    /// One line for systemd's STATUS.
    pub fn status_line(&self) -> String {
        format!(
            "{} connections, last message {}s ago",
            self.limits.current(),
            self.last_message_age().as_secs()
        )
    }

    pub fn auth(&self) -> Arc<Authenticator> {
        Arc::clone(&self.auth.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn live_sessions(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<SessionId, (Arc<SessionHandle>, Credential)>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The client listener's routes. `/metrics` is here unless `server.admin_listen`
/// serves it on a listener of its own.
pub fn router(state: Arc<AppState>) -> Router {
    ops_routes(state.config.admin_listen.is_none())
        .route("/events", get(sse::events))
        .fallback(any_path)
        .with_state(state)
}

/// The admin listener's routes (`server.admin_listen`): metrics and health, nothing
/// a client could use.
pub fn admin_router(state: Arc<AppState>) -> Router {
    ops_routes(true)
        .fallback(|| async { not_found() })
        .with_state(state)
}

/// `/healthz` and `/readyz`, and `/metrics` when `with_metrics`.
fn ops_routes(with_metrics: bool) -> Router<Arc<AppState>> {
    let routes = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz));
    if with_metrics {
        routes.route("/metrics", get(metrics_text))
    } else {
        routes
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if !state.ready.load(Ordering::Acquire) {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    } else if let Some(stale_after) = state
        .stale_after
        .filter(|limit| state.last_message_age() > *limit)
    {
        let message = format!(
            "stale: no message for {}s (ingress.stale_after = {})\n",
            state.last_message_age().as_secs(),
            humantime::format_duration(stale_after)
        );
        (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    metrics::last_message_age(state.last_message_age());
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

fn not_found() -> Response {
    refusal(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// WebSocket upgrades on any path; anything else is the live page at `/` or 404.
async fn any_path(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    match upgrade::take(&mut request) {
        Some(upgrade) => {
            let (parts, _) = request.into_parts();
            websocket(state, peer, parts.uri, parts.headers, upgrade).await
        }
        None if request.method() == Method::GET && request.uri().path() == "/" => live_page(),
        None => not_found(),
    }
}

/// The live page (docs/protocol.md "HTTP endpoints"): one self-contained file that
/// connects with the token in its own URL and shows the events it receives.
const LIVE_PAGE: &str = include_str!("live.html");

/// Its policy lets nothing run or load but the page's own inline script and style,
/// named by hash so that any injected markup stays inert, and WebSocket connections.
static LIVE_PAGE_CSP: LazyLock<String> = LazyLock::new(|| {
    let hashes = |tag: &str| -> String {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut rest = LIVE_PAGE;
        let mut sources = String::new();
        while let Some((body, after)) = rest
            .split_once(open.as_str())
            .and_then(|(_, tail)| tail.split_once(close.as_str()))
        {
            let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body));
            sources.push_str(&format!(" 'sha256-{digest}'"));
            rest = after;
        }
        sources
    };
    format!(
        "default-src 'none'; script-src{}; style-src{}; connect-src 'self' ws: wss:; \
         img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hashes("script"),
        hashes("style"),
    )
});

fn live_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, LIVE_PAGE_CSP.as_str()),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        LIVE_PAGE,
    )
        .into_response()
}

/// The checks every client passes before it is served, in order: draining (503),
/// connection limits (503, 429), `Origin` (403), token (401, 403, 503). Returns the
/// grant and the connection's slot, or the refusal to send.
pub async fn admit(
    state: &AppState,
    peer: SocketAddr,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(Grant, Slot), Response> {
    let slot = admit_connection(state, peer, headers)
        .map_err(|(status, reason, message)| refuse(peer, uri, status, reason, message))?;
    match check_token(state, headers, uri).await {
        Ok(grant) => Ok((grant, slot)),
        Err(denied) => Err(refuse(
            peer,
            uri,
            denied.status(),
            denied.reason(),
            &denied.message(),
        )),
    }
}

/// A refusal before the token is looked at: status, reason (metric label), message.
type Refused = (StatusCode, &'static str, &'static str);

/// Draining, connection limits and `Origin`: what is checked before the token.
fn admit_connection(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Slot, Refused> {
    if state.shutdown.is_cancelled() {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the bridge is shutting down",
        ));
    }
    let slot = state
        .limits
        .try_acquire(peer.ip())
        .map_err(|limit| match limit {
            LimitReached::Total => (
                StatusCode::SERVICE_UNAVAILABLE,
                "max_connections",
                "the connection limit is reached",
            ),
            LimitReached::PerAddress => (
                StatusCode::TOO_MANY_REQUESTS,
                "max_connections_per_ip",
                "too many connections from this address",
            ),
        })?;
    if !origin_allowed(state, headers) {
        return Err((
            StatusCode::FORBIDDEN,
            "origin",
            "this Origin is not allowed",
        ));
    }
    Ok(slot)
}

async fn check_token(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Grant, Denied> {
    let auth = state.auth();
    let presented = credentials::find(uri.query(), headers, auth.cookie_name());
    auth.authenticate(&presented).await
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

async fn websocket(
    state: Arc<AppState>,
    peer: SocketAddr,
    uri: Uri,
    headers: HeaderMap,
    upgrade: upgrade::Upgrade,
) -> Response {
    let offered: Vec<&str> = credentials::subprotocols(&headers).collect();
    let (protocol, echo) = protocol::negotiate(&offered, state.config.default_protocol);
    let slot = match admit_connection(&state, peer, &headers) {
        Ok(slot) => slot,
        Err((status, reason, message)) => return refuse(peer, &uri, status, reason, message),
    };
    let grant = match check_token(&state, &headers, &uri).await {
        Ok(grant) => grant,
        // A WAMP v2 client may bring its token as the `ticket` auth method instead.
        Err(Denied::Missing) if protocol == Protocol::Wamp2 => Grant::pending(),
        Err(denied) => {
            return refuse(
                peer,
                &uri,
                denied.status(),
                denied.reason(),
                &denied.message(),
            )
        }
    };
    let context = SessionContext {
        state: Arc::clone(&state),
        grant,
        protocol,
        peer,
        slot,
    };
    let (response, on_upgrade) = upgrade.accept(echo);
    state
        .sessions
        .spawn(session::run(on_upgrade, Box::new(context)));
    response
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
