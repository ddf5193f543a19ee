//! The client listener: accepting connections (plain, TLS, or the socket systemd
//! passed), the HTTP routes and the WebSocket upgrade, the one admission check every
//! client passes, and the connection limits. What happens after admission belongs to
//! `egress/`; the bridge's life cycle to `app.rs`.

mod admission;
mod events;
pub mod limits;
mod routes;
pub mod state;
pub mod tls;
mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::egress::stall::StallGuard;
pub use routes::{admin_router, router};
use state::AppState;

/// Accepts connections until the drain begins, each served by hyper on a task of its
/// own (TLS first when configured), with the handshake timeout.
pub async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, state: Arc<AppState>) {
    let router = routes::router(Arc::clone(&state));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(state.config.handshake_timeout)
        .keep_alive(true);
    loop {
        let accepted = tokio::select! {
            _ = state.egress.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // A client that reads nothing for two heartbeats is gone (docs/protocol.md:
        // "closes a connection that has not answered within two intervals").
        let stream = StallGuard::new(stream, 2 * state.config.heartbeat);
        let router = router.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                router.clone().oneshot(request)
            },
        );
        let http = http.clone();
        let tls = tls.clone();
        let handshake_timeout = state.config.handshake_timeout;
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    http.serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await
                }
                Some(tls) => {
                    // The TLS handshake counts against the handshake timeout too.
                    let stream =
                        match tokio::time::timeout(handshake_timeout, tls.accept(stream)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                tracing::debug!(%peer, %error, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    http.serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await
                }
            };
            if let Err(error) = served {
                tracing::trace!(%peer, %error, "HTTP connection ended with an error");
            }
        });
    }
}

/// Accepts the kernel may queue before the accept loop takes them, as the socket unit's
/// `Backlog=` (the kernel caps it at `net.core.somaxconn`). `TcpListener::bind` would
/// use 128: a reconnect storm of a few hundred clients then loses SYNs, each costing
/// its client a 1 s (then 3 s, 7 s) retransmission.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the listener as `TcpListener::bind` does (with `SO_REUSEADDR`), with a
/// backlog of [`LISTEN_BACKLOG`].
pub fn bind_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
