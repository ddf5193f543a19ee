//! The bridge's life cycle (docs/restarts.md): start everything in order, so a bind
//! error is a startup error naming what failed; reload on SIGHUP; on SIGTERM/SIGINT
//! drain — readyz turns 503, no new connections, every session flushes its queue and
//! closes with `1001` (a WAMP v1 session's connection just ends, with no close frame),
//! the ingress takes in what publishers had in flight and stops, the history is saved
//! — and exit 0 within `server.drain_timeout`.
//!
//! Also the hand-off between the ingress and the event log (`LogEntrance`): every
//! accepted message goes to the log as it comes (`eventlog`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::auth::{AuthError, Authenticator, CurrentAuth};
use crate::config::{Config, Loaded, ServerConfig};
use crate::egress::{backlog, heartbeat, Egress, Hub};
use crate::eventlog::local::Local;
use crate::eventlog::redis::RedisLog;
use crate::eventlog::{Accepted, EventLog};
use crate::hub::history;
use crate::ingress::{AmqpSources, Ingress, IngressError};
use crate::ops::shutdown::{Request, Signals};
use crate::ops::{logging, metrics, systemd};
use crate::protocol::close::Close;
use crate::server::state::{unix_millis, AppState};
use crate::server::{self, limits, tls};

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
    #[error("cluster.redis: {0}")]
    Cluster(String),
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
    let mut signals = Signals::install().context("cannot install signal handlers")?;
    let bridge = Bridge::start(&loaded.config, prepared)?;
    let signal = loop {
        match signals.next().await {
            Request::Terminate(signal) => break signal,
            Request::Reload => reload(&bridge.state, &mut loaded),
        }
    };
    bridge.drain(signal).await;
    Ok(())
}

/// A started bridge: what the drain must stop, in order.
struct Bridge {
    config: Config,
    state: Arc<AppState>,
    ingress: Ingress,
    amqp: AmqpSources,
    /// Tells systemd the bridge is alive; stopped first when the drain begins.
    watchdog: JoinHandle<()>,
    /// Stopped last.
    tasks: Vec<JoinHandle<()>>,
}

impl Bridge {
    /// Starts, in order: metrics, the hub, the listeners, the event log (with the saved
    /// history, or the cluster's), the ingress, the session support tasks; then
    /// reports ready.
    fn start(config: &Config, prepared: Prepared) -> Result<Bridge, ServeError> {
        let Prepared { auth, tls } = prepared;
        raise_open_file_limit();
        let metrics_handle =
            metrics::install().map_err(|e| anyhow::anyhow!("cannot install metrics: {e}"))?;
        let hub = Arc::new(Hub::new(history::Limits {
            size: config.history.size,
            max_bytes: config.history.max_bytes,
            max_age: config.history.max_age,
        }));
        let (listener, admin_listener) = bind_listeners(&config.server)?;
        let local = listener
            .local_addr()
            .context("the listener has no address")?;
        let log = open_log(&hub, config, local)?;

        let last_message_at = Arc::new(AtomicU64::new(unix_millis()));
        let entrance = LogEntrance {
            log: Arc::clone(&log),
            last_message: Arc::clone(&last_message_at),
        };
        let amqp = AmqpSources::start(&config.ingress, || Box::new(entrance.clone()))
            .map_err(|e| ServeError::Runtime(anyhow::anyhow!(e)))?;
        let ingress = Ingress::start(&config.ingress, entrance).map_err(|e| {
            if e.is_invalid_endpoint() {
                ServeError::Config(ConfigRefused::Ingress(e))
            } else {
                // A port in use may be freed: not a configuration error.
                ServeError::Runtime(e.into())
            }
        })?;

        let auth = Arc::new(CurrentAuth::new(auth));
        let egress = Arc::new(Egress::new(
            hub,
            Arc::clone(&log),
            Arc::clone(&auth),
            &config.server,
        ));
        let state = Arc::new(AppState {
            limits: limits::Limits::new(
                config.server.max_connections,
                config.server.max_connections_per_ip,
            ),
            config: config.server.clone(),
            egress: Arc::clone(&egress),
            auth,
            allowed_origins: RwLock::new(config.server.allowed_origins.clone()),
            stale_after: config.ingress.stale_after,
            last_message_at,
            metrics: metrics_handle.clone(),
            ready: Default::default(),
            sources: amqp.health(),
        });
        let mut tasks = vec![
            tokio::spawn(server::accept_loop(listener, tls, Arc::clone(&state))),
            tokio::spawn(heartbeat::run(Arc::clone(&egress))),
            tokio::spawn(backlog::run(Arc::clone(&egress))),
            tokio::spawn({
                let shutdown = egress.shutdown.clone();
                async move {
                    let mut every = tokio::time::interval(Duration::from_secs(5));
                    while shutdown.run_until_cancelled(every.tick()).await.is_some() {
                        metrics_handle.run_upkeep();
                    }
                }
            }),
        ];
        if let Some(listener) = admin_listener {
            let router = server::admin_router(Arc::clone(&state));
            tasks.push(tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, router).await {
                    tracing::error!(%error, "the admin listener stopped");
                }
            }));
        }

        state.ready.store(true, Ordering::Release);
        tracing::info!(listen = %local, admin = ?config.server.admin_listen, ingress = ?ingress.bound_endpoints(), amqp = ?amqp.labels(), log = %log.describe(), "push-bridge ready");
        systemd::ready(&format!("listening on {local}"));
        let watchdog = tokio::spawn({
            let state = Arc::clone(&state);
            async move { systemd::watchdog(|| state.status_line()).await }
        });
        announce(
            local,
            ingress.bound_endpoints(),
            &amqp.labels(),
            config.cluster.is_some().then(|| log.describe()),
            state.auth.get().generated_token(),
        );
        Ok(Bridge {
            config: config.clone(),
            state,
            ingress,
            amqp,
            watchdog,
            tasks,
        })
    }

    /// Drains and stops: sessions first (each writes what it has queued), then the
    /// ingress (what publishers still had in flight goes to the history), then the
    /// history is saved.
    async fn drain(self, signal: &str) {
        let Bridge {
            config,
            state,
            ingress,
            mut amqp,
            watchdog,
            tasks,
        } = self;
        let egress = &state.egress;
        tracing::info!(signal, sessions = state.limits.current(), "draining");
        let drain_deadline = Instant::now() + config.server.drain_timeout;
        systemd::stopping(&format!("draining {} connections", state.limits.current()));
        watchdog.abort();
        state.ready.store(false, Ordering::Release);
        // The AMQP sources stop consuming first and hand on what they had received, to
        // clients still connected: what the broker holds beyond that waits in the
        // queue for the next consumer instead of going to clients being closed.
        let amqp = match tokio::task::spawn_blocking(move || {
            amqp.stop_consuming();
            amqp
        })
        .await
        {
            Ok(amqp) => Some(amqp),
            Err(error) => {
                tracing::error!(%error, "the AMQP sources did not stop cleanly");
                None
            }
        };
        egress.shutdown.cancel();
        egress.live.close_all(Close::GoingAway);
        egress.tasks.close();
        let drained = tokio::time::timeout(config.server.drain_timeout, egress.tasks.wait()).await;
        if drained.is_err() {
            tracing::warn!(
                remaining = state.limits.current(),
                timeout = ?config.server.drain_timeout,
                "drain timeout reached; dropping the remaining connections"
            );
        }
        // The ingress kept feeding the log (and the history) while the clients drained;
        // now it takes in what publishers still had in flight and what libzmq had
        // queued, so the log keeps every event that reached the bridge (saved to
        // history.file, or appended to the cluster log).
        let log = Arc::clone(&egress.log);
        log.draining(drain_deadline);
        let ingress_done =
            tokio::task::spawn_blocking(move || ingress.drain_and_shutdown(drain_deadline));
        if let Err(error) = ingress_done.await {
            tracing::error!(%error, "the ingress did not stop cleanly");
        }
        if let Err(error) = tokio::task::spawn_blocking(move || log.close(drain_deadline)).await {
            tracing::error!(%error, "the event log did not close cleanly");
        }
        // Every event the log took in is in it: acknowledge, then disconnect.
        if let Some(amqp) = amqp {
            amqp.close(drain_deadline).await;
        }
        for task in tasks {
            task.abort();
        }
        tracing::info!("stopped");
    }
}

/// The event log `[cluster]` asks for: the cluster's log in Redis, or this node's
/// own history (loaded from `history.file`, if one is configured).
fn open_log(
    hub: &Arc<Hub>,
    config: &Config,
    local: SocketAddr,
) -> Result<Arc<dyn EventLog>, ConfigRefused> {
    let hub = Arc::clone(hub);
    match &config.cluster {
        Some(cluster) => {
            let node = format!("{}:{}", host_name(), local.port());
            RedisLog::start(hub, cluster, &config.history, node)
                .map(|log| Arc::new(log) as Arc<dyn EventLog>)
                .map_err(ConfigRefused::Cluster)
        }
        None => {
            let file = config.history.file.clone();
            Local::open(hub, file.clone())
                .map(|log| Arc::new(log) as Arc<dyn EventLog>)
                .map_err(|cause| ConfigRefused::HistoryFile {
                    path: file.unwrap_or_default(),
                    cause,
                })
        }
    }
}

/// This machine's name (the default `cluster.node` is it and the listen port).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "push-bridge".to_string())
}

/// The client listener (the socket systemd passed, or `server.listen`) and the admin
/// listener (`server.admin_listen`, if set).
fn bind_listeners(
    config: &ServerConfig,
) -> Result<(TcpListener, Option<TcpListener>), anyhow::Error> {
    let listener =
        match systemd::activated_listener().context("cannot use the socket systemd passed")? {
            Some(listener) => {
                TcpListener::from_std(listener).context("cannot use the socket systemd passed")?
            }
            None => server::bind_listener(config.listen)
                .with_context(|| format!("cannot listen on {} (server.listen)", config.listen))?,
        };
    let admin = match config.admin_listen {
        Some(addr) => Some(
            server::bind_listener(addr)
                .with_context(|| format!("cannot listen on {addr} (server.admin_listen)"))?,
        ),
        None => None,
    };
    Ok((listener, admin))
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
    let auth = match state.auth.get().reload(&new.config.auth) {
        Ok(auth) => Arc::new(auth),
        Err(error) => {
            tracing::error!(%error, "reload failed; keeping the current configuration");
            return;
        }
    };
    if let Err(error) = logging::reload_level(&new.config.log.level) {
        tracing::warn!(%error, "log level not changed");
    }
    state.auth.replace(Arc::clone(&auth));
    *state
        .allowed_origins
        .write()
        .unwrap_or_else(|e| e.into_inner()) = new.config.server.allowed_origins.clone();
    let revoked = state
        .egress
        .live
        .revoke(|credential| auth.still_valid(credential));
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

/// The ingress's sink: hands each message to the event log as it comes (a single
/// node routes it at once and writes the sockets once per burst).
#[derive(Clone)]
struct LogEntrance {
    log: Arc<dyn EventLog>,
    last_message: Arc<AtomicU64>,
}

impl crate::ingress::Sink for LogEntrance {
    fn message(&mut self, message: crate::event::IngressMessage) {
        self.last_message.store(unix_millis(), Ordering::Relaxed);
        self.log.accept(message, Instant::now(), None);
    }

    fn message_then(&mut self, message: crate::event::IngressMessage, accepted: Accepted) {
        self.last_message.store(unix_millis(), Ordering::Relaxed);
        self.log.accept(message, Instant::now(), Some(accepted));
    }

    fn burst_end(&mut self) {
        self.log.burst_end();
    }
}

/// Prints how to connect, once, on standard output (not the log: the generated token
/// must not end up in log files).
fn announce(
    local: SocketAddr,
    ingress: &[String],
    amqp: &[String],
    cluster: Option<String>,
    token: Option<&str>,
) {
    let publish_to = ingress
        .first()
        .map(String::as_str)
        .unwrap_or("(no PULL socket)");
    if let Some(cluster) = cluster {
        println!("push-bridge cluster log: {cluster}");
    }
    for source in amqp {
        println!("push-bridge consuming AMQP: {source}");
    }
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

/// A bridge holds one descriptor per client: take the hard limit as the soft one.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open file limit"),
    }
}
