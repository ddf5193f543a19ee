//! What the appender, the tail and the sessions' continuity checks share: the keys,
//! the connection, whether Redis is reachable, and how far the tail has read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use redis::aio::MultiplexedConnection;
use tokio::sync::watch;

use super::connect::Connector;
use super::entry::Position;
use crate::hub::Hub;
use crate::ops::metrics;
use crate::ops::shutdown::Shutdown;

/// The Redis keys of one log.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    pub log: String,
    pub epoch: String,
    pub id_prefix: String,
    pub appender_prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            log: format!("{prefix}:log"),
            epoch: format!("{prefix}:epoch"),
            id_prefix: format!("{prefix}:id:"),
            appender_prefix: format!("{prefix}:appender:"),
        }
    }
}

/// How far this node's tail has read, and in which epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct TailState {
    pub epoch: Option<String>,
    pub position: Position,
    /// The newest entry of `epoch` the tail read or loaded.
    pub last_entry: Option<Position>,
}

/// What the appender, the tail and the sessions share.
#[derive(Debug)]
pub(super) struct Shared<O> {
    pub hub: Arc<Hub<O>>,
    /// When this node started: entries appended since are delivered, not just loaded.
    pub started: SystemTime,
    pub keys: Keys,
    pub node: String,
    /// `history.size`: the log's approximate MAXLEN, and the most entries loaded at start.
    pub size: usize,
    pub max_age: Duration,
    pub max_bytes: usize,
    pub connector: Connector,
    pub appender_up: AtomicBool,
    pub tail_up: AtomicBool,
    /// When the log became unreachable (for the unreachable-seconds counter).
    pub down_since: Mutex<Option<Instant>>,
    pub tail: watch::Sender<TailState>,
    /// For the continuity checks of resumes.
    pub query: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// Set when the drain starts: after this instant, events still waiting are given up.
    pub give_up_at: Mutex<Option<Instant>>,
    pub stop: Shutdown,
}

impl<O> Shared<O> {
    pub fn is_up(&self) -> bool {
        self.appender_up.load(Ordering::Acquire) && self.tail_up.load(Ordering::Acquire)
    }

    /// Records that the appender or the tail can (not) reach Redis.
    pub fn set_up(&self, part: &AtomicBool, up: bool) {
        part.store(up, Ordering::Release);
        let up = self.is_up();
        metrics::cluster_log_up(up);
        let mut down_since = self.down_since.lock().unwrap_or_else(|e| e.into_inner());
        match (*down_since, up) {
            (None, false) => *down_since = Some(Instant::now()),
            (Some(since), true) => {
                metrics::cluster_unreachable(since.elapsed());
                *down_since = None;
            }
            (Some(since), false) => {
                // Counted as it goes, not only when Redis is back.
                metrics::cluster_unreachable(since.elapsed());
                *down_since = Some(Instant::now());
            }
            (None, true) => {}
        }
    }

    pub fn given_up(&self) -> bool {
        let give_up_at = *self.give_up_at.lock().unwrap_or_else(|e| e.into_inner());
        give_up_at.is_some_and(|at| Instant::now() >= at)
    }
}

/// Retry pacing: 100 ms doubling to 2 s.
#[derive(Debug)]
pub(super) struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(2);

    pub fn new() -> Self {
        Backoff(Self::FIRST)
    }

    pub fn reset(&mut self) {
        self.0 = Self::FIRST;
    }

    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next()).await;
    }

    /// The next pause (and doubles the one after).
    pub fn next(&mut self) -> Duration {
        let pause = self.0;
        self.0 = (self.0 * 2).min(Self::MAX);
        pause
    }
}
