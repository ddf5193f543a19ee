//! The cluster's log in Redis Streams (docs/scaling.md): every node appends what its
//! ingress accepts, and every node delivers what the log holds, in the log's order.
//!
//! - `append`: the appender task. Accepted messages wait in a bounded queue
//!   (`cluster.buffer`) and go to Redis in batches, one Lua script per batch, which
//!   drops a publisher id the log already has and stamps each entry with the log's
//!   epoch. While Redis is unreachable the queue holds them in order; when it is full,
//!   the ingress stops reading.
//! - `tail`: the tail thread. It reads the log in order and routes every entry into
//!   the hub, whose history becomes this node's copy of the log. A new epoch (the log
//!   was flushed, or a failover lost its last entries) empties that copy: nothing
//!   before it can be resumed from.
//! - A resume first asks Redis for the epoch and the log's last entry
//!   ([`EventLog::continuity`]): proven when the epoch is this node's and its tail has
//!   read up to that entry.
//! - `connect`: one server, or the master Sentinel names.
//!
//! Keys, under the prefix `cluster.stream`: `<prefix>:log` (the stream),
//! `<prefix>:epoch`, `<prefix>:id:<publisher id>` (duplicate detection, kept for
//! `history.max_age`), `<prefix>:appender:<node>:<run>` (the number of an appender's
//! last batch, so a retried batch is appended once).

pub mod address;
mod append;
mod connect;
pub mod entry;
mod shared;
mod tail;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

pub use address::RedisAddress;
use append::Queued;
use connect::Connector;
use shared::{Keys, Shared, TailState};

use super::{Accepted, Continuity, EventLog, Pending};
use crate::config::{ClusterConfig, HistoryConfig};
use crate::event::IngressMessage;
use crate::hub::{Hub, Outlet};
use crate::ops::metrics;
use crate::ops::shutdown::Shutdown;

/// How long a resume waits for Redis's answer and for this node's tail to catch up.
const CONTINUITY_TIMEOUT: Duration = Duration::from_secs(2);

/// The cluster's log, as this node sees it.
#[derive(Debug)]
pub struct RedisLog<O> {
    shared: Arc<Shared<O>>,
    queue: Mutex<Option<mpsc::Sender<Queued>>>,
    /// Messages accepted and not yet handed to the appender's queue.
    lost: AtomicU64,
    appender_done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    tail_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    description: String,
}

impl<O: Outlet + 'static> RedisLog<O> {
    /// Starts the appender (on the current runtime) and the tail thread. Redis need not
    /// be reachable yet: both keep trying, and `/readyz` says so meanwhile.
    pub fn start(
        hub: Arc<Hub<O>>,
        cluster: &ClusterConfig,
        history: &HistoryConfig,
        default_node: String,
    ) -> Result<Self, String> {
        let address = RedisAddress::parse(&cluster.redis)?;
        let node = cluster.node.clone().unwrap_or(default_node);
        let description = format!(
            "{} stream {} as node {node}",
            RedisAddress::redacted(&cluster.redis),
            cluster.stream
        );
        let shared = Arc::new(Shared {
            hub,
            started: std::time::SystemTime::now(),
            keys: Keys::new(&cluster.stream),
            node,
            size: history.size,
            max_age: history.max_age,
            max_bytes: history.max_bytes,
            connector: Connector::new(address),
            appender_up: AtomicBool::new(false),
            tail_up: AtomicBool::new(false),
            down_since: Mutex::new(Some(Instant::now())),
            tail: watch::Sender::new(TailState::default()),
            query: tokio::sync::Mutex::new(None),
            give_up_at: Mutex::new(None),
            stop: Shutdown::new(),
        });
        metrics::cluster_log_up(false);
        metrics::cluster_buffered(0);
        let (queue, receiver) = mpsc::channel(cluster.buffer.max(1));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        tokio::spawn(append::run(Arc::clone(&shared), receiver, done_tx));
        let tail_thread = std::thread::Builder::new()
            .name("cluster-tail".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || tail::run(shared)
            })
            .map_err(|e| format!("cannot start the cluster tail thread: {e}"))?;
        Ok(RedisLog {
            shared,
            queue: Mutex::new(Some(queue)),
            lost: AtomicU64::new(0),
            appender_done: Mutex::new(Some(done_rx)),
            tail_thread: Mutex::new(Some(tail_thread)),
            description,
        })
    }
}

/// How long the ingress thread waits between tries when the queue is full.
const FULL_QUEUE_PAUSE: Duration = Duration::from_micros(200);

impl<O: Outlet + 'static> EventLog for RedisLog<O> {
    fn accept(&self, message: IngressMessage, _received: Instant, accepted: Option<Accepted>) {
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(queue) = queue else {
            self.lost.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut message = Queued { message, accepted };
        loop {
            match queue.try_send(message) {
                Ok(()) => break,
                Err(mpsc::error::TrySendError::Full(back)) => {
                    if self.shared.given_up() {
                        self.lost.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    // The log is behind (Redis is unreachable or slow): stop reading
                    // the ingress until there is room. ZeroMQ queues meanwhile.
                    message = back;
                    std::thread::sleep(FULL_QUEUE_PAUSE);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.lost.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    fn burst_end(&self) {}

    fn continuity(&self) -> Pending<Continuity> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            match tokio::time::timeout(CONTINUITY_TIMEOUT, continuity(&shared)).await {
                Ok(Ok(continuity)) => continuity,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "cannot prove the history continuous: Redis did not answer");
                    *shared.query.lock().await = None;
                    Continuity::Unproven
                }
                Err(_) => Continuity::Unproven,
            }
        })
    }

    fn resumed(&self, recovered: bool) {
        metrics::cluster_resume(recovered);
    }

    fn is_up(&self) -> bool {
        self.shared.is_up()
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn draining(&self, deadline: Instant) {
        *self
            .shared
            .give_up_at
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(deadline);
    }

    fn close(&self, deadline: Instant) {
        self.draining(deadline);
        // No more messages: the appender writes what is queued, then stops.
        drop(self.queue.lock().unwrap_or_else(|e| e.into_inner()).take());
        let done = self
            .appender_done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(done) = done {
            let wait = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
            if done.recv_timeout(wait).is_err() {
                tracing::error!("the cluster appender did not finish before the drain timeout");
            }
        }
        let lost = self.lost.load(Ordering::Relaxed);
        if lost > 0 {
            tracing::error!(
                lost,
                "events accepted during the drain could not be appended to the cluster log"
            );
        }
        self.shared.stop.cancel();
        let tail = self
            .tail_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(tail) = tail {
            if tail.join().is_err() {
                tracing::error!("the cluster tail thread panicked");
            }
        }
    }
}

/// Whether the hub's history is this log's, up to its last entry: same epoch, and the
/// tail has read that far (waiting for it when it is a little behind).
async fn continuity<O>(shared: &Shared<O>) -> redis::RedisResult<Continuity> {
    if !shared.is_up() {
        return Ok(Continuity::Unproven);
    }
    let mut connection = {
        let mut query = shared.query.lock().await;
        match &*query {
            Some(connection) => connection.clone(),
            None => {
                let connection = shared.connector.connect(CONTINUITY_TIMEOUT).await?;
                query.insert(connection).clone()
            }
        }
    };
    let (epoch, head) = tail::epoch_and_head(&mut connection, &shared.keys).await?;
    let mut tail = shared.tail.subscribe();
    if tail.borrow().epoch != epoch {
        return Ok(Continuity::Unproven);
    }
    if let Some(head) = head {
        let caught_up = tail
            .wait_for(|state| state.epoch != epoch || state.position >= head)
            .await
            .is_ok_and(|state| state.epoch == epoch);
        if !caught_up {
            return Ok(Continuity::Unproven);
        }
    }
    Ok(Continuity::Proven)
}
