//! HTTP routes on the one listener (docs/protocol.md "HTTP endpoints"): `/healthz`,
//! `/readyz`, `/metrics`, the live page at `/`, `/events`, and WebSocket upgrades on
//! any path. Every client is admitted ([`admission`](super::admission)) before it is
//! upgraded or served.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::admission::{admit, refusal, TokenLater};
use super::events::events;
use super::state::AppState;
use super::upgrade;
use crate::auth::credentials;
use crate::egress::websocket;
use crate::ops::metrics;
use crate::protocol::{self, Protocol};

/// The client listener's routes. `/metrics` is here unless `server.admin_listen`
/// serves it on a listener of its own.
pub fn router(state: Arc<AppState>) -> Router {
    ops_routes(state.config.admin_listen.is_none())
        .route("/events", get(events))
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
    if state.draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if !state.ready.load(Ordering::Acquire) {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    } else if !state.egress.log.is_up() {
        (StatusCode::SERVICE_UNAVAILABLE, "log unreachable\n").into_response()
    } else if let Some(source) = state.sources.first_down() {
        let message = format!("source down: {source}\n");
        (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
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

/// A WebSocket upgrade: the protocol the client asked for, admission, then the
/// session task.
async fn websocket(
    state: Arc<AppState>,
    peer: SocketAddr,
    uri: Uri,
    headers: HeaderMap,
    upgrade: upgrade::Upgrade,
) -> Response {
    let offered: Vec<&str> = credentials::subprotocols(&headers).collect();
    let (protocol, echo) = protocol::negotiate(&offered, state.config.default_protocol);
    let later = if protocol == Protocol::Wamp2 {
        TokenLater::ByTicket
    } else {
        TokenLater::No
    };
    let (grant, slot) = match admit(&state, peer, &uri, &headers, later).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let admitted = Box::new(websocket::Admitted {
        grant,
        protocol,
        peer,
    });
    let (response, on_upgrade) = upgrade.accept(echo);
    let egress = Arc::clone(&state.egress);
    state
        .egress
        .tasks
        .spawn(websocket::run(egress, on_upgrade, admitted, slot));
    response
}
