//! What the routes share: the sessions' [`Egress`], the admission settings (limits,
//! allowed origins, the authenticator), and what `/readyz` and `/metrics` report.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use super::limits::Limits;
use crate::auth::CurrentAuth;
use crate::config::ServerConfig;
use crate::egress::Egress;
use crate::ingress::SourceHealth;

#[derive(Debug)]
pub struct AppState {
    pub config: ServerConfig,
    pub egress: Arc<Egress>,
    /// Swapped whole on SIGHUP (the sessions hold the same).
    pub auth: Arc<CurrentAuth>,
    /// `server.allowed_origins`, swapped on SIGHUP.
    pub allowed_origins: RwLock<Option<Vec<String>>>,
    pub limits: Arc<Limits>,
    /// `ingress.stale_after`: readyz fails when no message arrived for that long.
    pub stale_after: Option<Duration>,
    /// When the ingress last accepted a message (ms since the Unix epoch; start time
    /// before the first).
    pub last_message_at: Arc<AtomicU64>,
    pub metrics: PrometheusHandle,
    /// Ingress bound and listener accepting.
    pub ready: AtomicBool,
    /// Whether each AMQP source is consuming (`/readyz`).
    pub sources: SourceHealth,
}

impl AppState {
    /// How long since the ingress last accepted a message.
    pub fn last_message_age(&self) -> Duration {
        let last = self.last_message_at.load(Ordering::Relaxed);
        Duration::from_millis(unix_millis().saturating_sub(last))
    }

    /// One line for systemd's STATUS.
    pub fn status_line(&self) -> String {
        format!(
            "{} connections, last message {}s ago",
            self.limits.current(),
            self.last_message_age().as_secs()
        )
    }

    /// Whether the drain has begun.
    pub fn draining(&self) -> bool {
        self.egress.shutdown.is_cancelled()
    }
}

/// Milliseconds since the Unix epoch (for the last-message age).
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
