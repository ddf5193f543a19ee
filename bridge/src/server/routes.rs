//! HTTP routes on the one listener (docs/protocol.md "HTTP endpoints"): `/healthz`,
//! `/readyz`, `/metrics`, the live page at `/` and the client library it is built on at
//! `/push-bridge-client.js`, `/events`, and WebSocket upgrades on any path. Every client
//! is admitted ([`admission`](super::admission)) before it is upgraded or served.

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

/// WebSocket upgrades on any path; anything else is the live page at `/`, the client
/// library at `/push-bridge-client.js`, or 404.
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
        None if request.method() != Method::GET => not_found(),
        None => match request.uri().path() {
            "/" => live_page(),
            CLIENT_LIBRARY_PATH => client_library(),
            _ => not_found(),
        },
    }
}

/// The live page (docs/protocol.md "HTTP endpoints"): the UI of one file, connected
/// through the client library it imports from [`CLIENT_LIBRARY_PATH`], with the token in
/// its own URL; it shows the events it receives.
const LIVE_PAGE: &str = include_str!("live.html");

/// Where the bridge serves the browser client library (clients/js): beside the page,
/// which imports it relatively (`./push-bridge-client.js`), so that it is found behind a
/// proxy that serves the bridge under a path prefix too.
const CLIENT_LIBRARY_PATH: &str = "/push-bridge-client.js";

/// The library itself, the very file npm ships as `push-bridge-client`.
const CLIENT_LIBRARY: &str = include_str!("../../../clients/js/src/index.js");

/// Its policy lets nothing run or load but scripts of the bridge's own origin (the
/// client library), the page's own inline script and style, named by hash so that any
/// injected markup stays inert, and WebSocket connections.
static LIVE_PAGE_CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src 'self'{}; style-src{}; connect-src 'self' ws: wss:; \
         img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        inline_hashes(LIVE_PAGE, "script"),
        inline_hashes(LIVE_PAGE, "style"),
    )
});

/// The CSP sources (` 'sha256-…'` each) of every inline `<tag …>…</tag>` of `page`,
/// whatever its attributes (`<script type="module">`).
fn inline_hashes(page: &str, tag: &str) -> String {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut rest = page;
    let mut sources = String::new();
    while let Some((_, tail)) = rest.split_once(open.as_str()) {
        rest = tail;
        // `<scripts>` or `<styles>` would be other tags.
        if !tail.starts_with(['>', ' ', '\t', '\n', '\r']) {
            continue;
        }
        let Some((body, after)) = tail
            .split_once('>')
            .and_then(|(_, body)| body.split_once(close.as_str()))
        else {
            break;
        };
        let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body));
        sources.push_str(&format!(" 'sha256-{digest}'"));
        rest = after;
    }
    sources
}

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

/// Public code without credentials: a dashboard on any origin may `import` it from the
/// bridge (module scripts are fetched with CORS). `no-cache`: a browser never runs a
/// copy older than the bridge that serves it, say after an upgrade.
fn client_library() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        CLIENT_LIBRARY,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_hashes_name_each_inline_element_whatever_its_attributes() {
        let page = "<style>a{}</style><script type=\"module\">run()</script>\
                    <scripts>not this</scripts><script>\nmore()\n</script>";
        let hash = |body: &str| {
            let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body));
            format!(" 'sha256-{digest}'")
        };
        assert_eq!(
            inline_hashes(page, "script"),
            format!("{}{}", hash("run()"), hash("\nmore()\n"))
        );
        assert_eq!(inline_hashes(page, "style"), hash("a{}"));
    }

    #[test]
    fn the_live_page_policy_names_its_one_script_and_one_style() {
        let csp = LIVE_PAGE_CSP.as_str();
        assert_eq!(csp.matches("'sha256-").count(), 2, "{csp}");
        assert!(csp.contains("script-src 'self' 'sha256-"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
    }
}
