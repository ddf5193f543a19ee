//! The listener and the bridge's life cycle: start everything in order (so a bind
//! error is a startup error naming what failed), accept connections with the
//! handshake timeout, and on SIGTERM/SIGINT drain: readyz turns 503, no new
//! connections, every session flushes its queue and closes with `1001` (a WAMP v1
//! session's connection just ends, with no close frame), the ingress drains what
//! publishers had in flight and stops, the history is saved, exit 0 within
//! `server.drain_timeout` (docs/restarts.md).

mod heartbeat;
pub mod limits;
mod requests;
mod routes;
mod session;
mod sse;
mod stall;
mod tls;
mod upgrade;
mod wamp2;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::auth::{AuthError, Authenticator};
use crate::config::{Config, Loaded, ServerConfig};
use crate::hub::{close_code, history, history_file, Hub};
use crate::ingress::{Ingress, IngressError};
use crate::ops::shutdown::{Request, Shutdown, Signals, TaskTracker};
use crate::ops::{logging, metrics, systemd};
use routes::AppState;

/// What the configuration names that the bridge must read before it starts: the token
/// sources (tokens file, JWT keys) and the TLS files. `check-config` reads the same
/// through [`prepare`], so both refuse a broken file the same way (exit 2).
pub struct Prepared {
    auth: Authenticator,
    tls: Option<TlsAcceptor>,
}

/// A configuration the bridge cannot start with, found only by reading what it names
/// or by trying it. Restarting does not help: the file or the value must be fixed, so
/// the command line exits 2 for it (the unit's `RestartPreventExitStatus=2`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigRefused {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot read history.file {}: {cause}", path.display())]
    HistoryFile {
        path: std::path::PathBuf,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Logging(#[from] logging::LoggingError),
    #[error(transparent)]
    Ingress(IngressError),
}

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Fix the configuration (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigRefused),
    /// Anything else (exit 1): a port in use, no file descriptors, …
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

/// Reads the token sources and the TLS files the configuration names.
pub fn prepare(config: &Config) -> Result<Prepared, ConfigRefused> {
    let auth = Authenticator::from_config(&config.auth)?;
    let tls = match &config.server.tls {
        Some(tls) => Some(tls::acceptor(tls)?),
        None => None,
    };
    Ok(Prepared { auth, tls })
}

/// Runs the bridge until SIGTERM/SIGINT, then drains and returns.
pub fn serve(loaded: Loaded) -> Result<(), ServeError> {
    // Logging first: reading the token sources may warn (a short JWT secret).
    logging::init_logging(&loaded.config.log).map_err(ConfigRefused::from)?;
    let prepared = prepare(&loaded.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("push-bridge")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(loaded, prepared))
}

async fn run(mut loaded: Loaded, prepared: Prepared) -> Result<(), ServeError> {
    let config = loaded.config.clone();
    let Prepared { auth, tls } = prepared;
    let mut signals = Signals::install().context("cannot install signal handlers")?;
    raise_open_file_limit();
    let metrics_handle =
        metrics::install().map_err(|e| anyhow::anyhow!("cannot install metrics: {e}"))?;
    let hub = Arc::new(Hub::new(
        config.server.send_queue,
        history::Limits {
            size: config.history.size,
            max_bytes: config.history.max_bytes,
            max_age: config.history.max_age,
        },
    ));

    if let Some(path) = &config.history.file {
        let (events, skipped) =
            history_file::load(path).map_err(|cause| ConfigRefused::HistoryFile {
                path: path.clone(),
                cause,
            })?;
        if skipped > 0 {
            tracing::warn!(skipped, file = %path.display(), "unreadable lines in the history file were skipped");
        }
        tracing::info!(events = events.len(), file = %path.display(), "history loaded");
        hub.restore_history(events);
    }

    let listener =
        match systemd::activated_listener().context("cannot use the socket systemd passed")? {
            Some(listener) => {
                TcpListener::from_std(listener).context("cannot use the socket systemd passed")?
            }
            None => bind_listener(config.server.listen).with_context(|| {
                format!("cannot listen on {} (server.listen)", config.server.listen)
            })?,
        };
    let local = listener
        .local_addr()
        .context("the listener has no address")?;
    let admin_listener = match config.server.admin_listen {
        Some(addr) => Some(
            bind_listener(addr)
                .with_context(|| format!("cannot listen on {addr} (server.admin_listen)"))?,
        ),
        None => None,
    };

    let ingress_hub = Arc::clone(&hub);
    let last_message_at = Arc::new(AtomicU64::new(unix_millis()));
    let last_message = Arc::clone(&last_message_at);
    let ingress = Ingress::start(
        &config.ingress,
        HubEntrance {
            hub: ingress_hub,
            last_message,
        },
    )
    .map_err(|e| {
        if e.is_invalid_endpoint() {
            ServeError::Config(ConfigRefused::Ingress(e))
        } else {
            // A port in use may be freed: not a configuration error.
            ServeError::Runtime(e.into())
        }
    })?;

    let state = Arc::new(AppState {
        limits: limits::Limits::new(
            config.server.max_connections,
            config.server.max_connections_per_ip,
        ),
        config: config.server.clone(),
        hub,
        auth: RwLock::new(Arc::new(auth)),
        allowed_origins: RwLock::new(config.server.allowed_origins.clone()),
        live: Default::default(),
        stale_after: config.ingress.stale_after,
        last_message_at,
        metrics: metrics_handle.clone(),
        ready: Default::default(),
        shutdown: Shutdown::new(),
        sessions: TaskTracker::new(),
    });
    let accept = tokio::spawn(accept_loop(listener, tls, Arc::clone(&state)));
    let admin = match admin_listener {
        Some(listener) => {
            let router = routes::admin_router(Arc::clone(&state));
            Some(tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, router).await {
                    tracing::error!(%error, "the admin listener stopped");
                }
            }))
        }
        None => None,
    };
    tokio::spawn(heartbeat::run(Arc::clone(&state)));
    let upkeep = tokio::spawn({
        let shutdown = state.shutdown.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            while shutdown.run_until_cancelled(every.tick()).await.is_some() {
                metrics_handle.run_upkeep();
            }
        }
    });
    state.ready.store(true, Ordering::Release);
    tracing::info!(listen = %local, admin = ?config.server.admin_listen, ingress = ?ingress.bound_endpoints(), "push-bridge ready");
    systemd::ready(&format!("listening on {local}"));
    let watchdog = tokio::spawn({
        let state = Arc::clone(&state);
        async move { systemd::watchdog(|| state.status_line()).await }
    });
    announce(
        local,
        ingress.bound_endpoints(),
        state.auth().generated_token(),
    );

    let signal = loop {
        match signals.next().await {
            Request::Terminate(signal) => break signal,
            Request::Reload => reload(&state, &mut loaded),
        }
    };
    tracing::info!(signal, sessions = state.limits.current(), "draining");
    let drain_deadline = Instant::now() + state.config.drain_timeout;
    systemd::stopping(&format!("draining {} connections", state.limits.current()));
    watchdog.abort();
    state.ready.store(false, Ordering::Release);
    state.shutdown.cancel();
    for (handle, _) in state.live_sessions().values() {
        handle.close(close_code::GOING_AWAY);
    }
    state.sessions.close();
    let drained = tokio::time::timeout(state.config.drain_timeout, state.sessions.wait()).await;
    if drained.is_err() {
        tracing::warn!(
            remaining = state.limits.current(),
            timeout = ?state.config.drain_timeout,
            "drain timeout reached; dropping the remaining connections"
        );
    }
    // The ingress kept feeding the hub (and its history) while the clients drained;
    // now it takes in what publishers still had in flight and what libzmq had queued,
    // so the history saved below holds every event that reached the bridge.
    let ingress_done =
        tokio::task::spawn_blocking(move || ingress.drain_and_shutdown(drain_deadline));
    if let Err(error) = ingress_done.await {
        tracing::error!(%error, "the ingress did not stop cleanly");
    }
    if let Some(path) = &config.history.file {
        let events = state.hub.history_snapshot();
        match history_file::save(path, &events) {
            Ok(()) => {
                tracing::info!(events = events.len(), file = %path.display(), "history saved")
            }
            Err(error) => {
                tracing::error!(%error, file = %path.display(), "cannot save the history")
            }
        }
    }
    accept.abort();
    if let Some(admin) = admin {
        admin.abort();
    }
    upkeep.abort();
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP: re-reads the config file and environment, then swaps in new tokens, JWT
/// keys, introspection settings, allowed origins and log level. Connections whose
/// static token disappeared are closed with `4003`. Anything wrong: logged, and the
/// running configuration stays as it was.
fn reload(state: &AppState, loaded: &mut Loaded) {
    let new = match loaded.reload() {
        Ok(new) => new,
        Err(error) => {
            tracing::error!(%error, "reload failed; keeping the current configuration");
            return;
        }
    };
    let auth = match state.auth().reload(&new.config.auth) {
        Ok(auth) => Arc::new(auth),
        Err(error) => {
            tracing::error!(%error, "reload failed; keeping the current configuration");
            return;
        }
    };
    if let Err(error) = logging::reload_level(&new.config.log.level) {
        tracing::warn!(%error, "log level not changed");
    }
    *state.auth.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&auth);
    *state
        .allowed_origins
        .write()
        .unwrap_or_else(|e| e.into_inner()) = new.config.server.allowed_origins.clone();
    let mut revoked = 0;
    for (handle, credential) in state.live_sessions().values() {
        if !auth.still_valid(credential) && handle.close(close_code::TOKEN_REVOKED) {
            revoked += 1;
        }
    }
    let needs_restart = needs_restart(&loaded.config, &new.config);
    if !needs_restart.is_empty() {
        tracing::warn!(keys = ?needs_restart, "these settings changed but only take effect after a restart");
    }
    tracing::info!(revoked, "configuration reloaded");
    *loaded = new;
}

/// Settings a reload cannot apply to a running bridge.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let (a, b) = (&old.server, &new.server);
    let same_server = ServerConfig {
        allowed_origins: b.allowed_origins.clone(),
        ..a.clone()
    } == *b;
    if !same_server {
        keys.push("server");
    }
    if old.ingress != new.ingress {
        keys.push("ingress");
    }
    if old.log.format != new.log.format {
        keys.push("log.format");
    }
    keys
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, state: Arc<AppState>) {
    let router = routes::router(Arc::clone(&state));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(state.config.handshake_timeout)
        .keep_alive(true);
    loop {
        let accepted = tokio::select! {
            _ = state.shutdown.cancelled() => return,
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
        let stream = stall::StallGuard::new(stream, 2 * state.config.heartbeat);
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

/// The ingress's sink: routes each message as it comes and writes the sockets out once
/// per burst, so a burst of events costs each socket one write.
struct HubEntrance {
    hub: Arc<Hub>,
    last_message: Arc<AtomicU64>,
}

impl crate::ingress::Sink for HubEntrance {
    fn message(&mut self, message: crate::event::IngressMessage) {
        self.last_message.store(unix_millis(), Ordering::Relaxed);
        self.hub.route(message, Instant::now());
    }

    fn burst_end(&mut self) {
        self.hub.flush();
    }
}

/// Milliseconds since the Unix epoch (for the last-message age).
pub(crate) fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Prints how to connect, once, on standard output (not the log: the generated token
/// must not end up in log files).
fn announce(local: SocketAddr, ingress: &[String], token: Option<&str>) {
    let publish_to = ingress
        .first()
        .map(String::as_str)
        .unwrap_or("(no PULL socket)");
    let Some(token) = token else {
        println!("push-bridge listening on {local}, publishing on {publish_to}");
        return;
    };
    println!(
        "push-bridge is running. No token kind is configured, so this one-time token was generated:\n\
         \n    {token}\n\n\
         WebSocket (WAMP v1, Superdesk clients):  ws://{local}/?token={token}\n\
         WebSocket (native JSON protocol):        ws://{local}/?token={token}  with subprotocol push-bridge.v1\n\
         Live page (in a browser):                http://{local}/?token={token}\n\
         Server-Sent Events:                      http://{local}/events?topic=package_created&token={token}\n\
         Publish an event:                        push-bridge publish package_created '{{\"hello\":\"world\"}}' --endpoint {publish_to}\n"
    );
}

/// Accepts the kernel may queue before the accept loop takes them, as the socket unit's
/// `Backlog=` (the kernel caps it at `net.core.somaxconn`). `TcpListener::bind` would
/// use 128: a reconnect storm of a few hundred clients then loses SYNs, each costing
/// its client a 1 s (then 3 s, 7 s) retransmission.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the listener as `TcpListener::bind` does (with `SO_REUSEADDR`), with a
/// backlog of [`LISTEN_BACKLOG`].
fn bind_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A bridge holds one descriptor per client: take the hard limit as the soft one.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open file limit"),
    }
}
