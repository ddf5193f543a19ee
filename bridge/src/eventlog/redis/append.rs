//! The appender: takes accepted messages off the bounded queue and appends them to
//! the log in batches, in order, one Lua script per batch (`script.lua`). While Redis
//! cannot be reached the batch is retried (backing off) and the queue fills; a retried
//! batch that Redis had in fact appended is recognised by its number and not appended
//! again.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::aio::MultiplexedConnection;
use redis::Script;
use tokio::sync::mpsc;

use super::entry::Position;
use super::shared::{Backoff, Shared, TailState};
use crate::event::IngressMessage;
use crate::eventlog::Accepted;
use crate::ops::metrics;
use crate::ops::ratelimit::RateLimiter;

/// An accepted message waiting for the appender, and what to run once it is in the
/// log.
pub(super) struct Queued {
    pub(super) message: IngressMessage,
    pub(super) accepted: Option<Accepted>,
}

/// Events per script call at most.
const MAX_BATCH: usize = 512;
/// Bytes of data per script call at most (one larger event still goes alone).
const MAX_BATCH_BYTES: usize = 1 << 20;
/// How long a script call may take before it counts as failed.
const APPEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an appender's last batch number stays in Redis after its last batch:
/// longer than any retry.
const BATCH_NUMBER_MS: u64 = 24 * 60 * 60 * 1000;

static SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("script.lua")));

/// Runs until the queue is closed and empty (the drain), or the drain's deadline
/// passes with Redis unreachable; then says so on `done`.
pub(super) async fn run<O>(
    shared: Arc<Shared<O>>,
    mut queue: mpsc::Receiver<Queued>,
    done: std::sync::mpsc::Sender<()>,
) {
    // This appender's key: the node's name and a number of this run's own.
    let appender = format!(
        "{}{}:{:016x}",
        shared.keys.appender_prefix,
        shared.node,
        rand::random::<u64>()
    );
    let mut sequence = 0u64;
    let mut connection: Option<MultiplexedConnection> = None;
    let mut backoff = Backoff::new();
    let mut warn = RateLimiter::<()>::new(Duration::from_secs(10));
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    // The last entry this appender appended, and whether the log must be checked to
    // still have it (after a reconnect: a failover may have lost it).
    let mut last_appended: Option<(Position, String)> = None;
    let mut check = false;
    loop {
        if connection.is_none() {
            // Connect before the first event (and again after losing Redis) so that
            // readiness says whether events could be appended now.
            match shared.connector.connect(APPEND_TIMEOUT).await {
                Ok(conn) => {
                    connection = Some(conn);
                    check = true;
                    shared.set_up(&shared.appender_up, true);
                }
                Err(_) => shared.set_up(&shared.appender_up, false),
            }
        }
        let first = if connection.is_some() {
            queue.recv().await
        } else {
            match tokio::time::timeout(backoff.next(), queue.recv()).await {
                Ok(first) => first,
                Err(_) => continue,
            }
        };
        let Some(first) = first else {
            break;
        };
        let mut bytes = first.message.data.len();
        batch.push(first);
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match queue.try_recv() {
                Ok(queued) => {
                    bytes += queued.message.data.len();
                    batch.push(queued);
                }
                Err(_) => break,
            }
        }
        sequence += 1;
        metrics::cluster_buffered(batch.len() + queue.len());
        loop {
            if shared.given_up() {
                let lost = batch.len() + queue.len();
                tracing::error!(lost, "the cluster log stayed unreachable until the drain timeout; events not appended");
                let _ = done.send(());
                return;
            }
            let conn = match &mut connection {
                Some(conn) => conn,
                None => match shared.connector.connect(APPEND_TIMEOUT).await {
                    Ok(conn) => {
                        check = true;
                        connection.insert(conn)
                    }
                    Err(error) => {
                        shared.set_up(&shared.appender_up, false);
                        metrics::cluster_buffered(batch.len() + queue.len());
                        if warn.check((), std::time::Instant::now()).is_some() {
                            tracing::warn!(%error, buffered = batch.len() + queue.len(), "cannot reach the cluster log; holding events");
                        }
                        backoff.wait().await;
                        continue;
                    }
                },
            };
            let expected = if check {
                newest_known(last_appended.as_ref(), &shared.tail.borrow())
            } else {
                None
            };
            match append(
                conn,
                &shared,
                &appender,
                sequence,
                expected.as_ref(),
                &batch,
            )
            .await
            {
                Ok(Appended {
                    appended,
                    duplicates,
                    last,
                    lost,
                    epoch,
                }) => {
                    if lost {
                        tracing::warn!(expected = ?expected.as_ref().map(|(p, _)| p.to_string()), "the cluster log lost entries this node had appended or read (a failover?): started a new epoch, so resumes across them start over");
                    }
                    check = false;
                    if let Some(last) = last {
                        last_appended = Some((last, epoch));
                    }
                    if !shared.appender_up.load(Ordering::Acquire) {
                        tracing::info!("the cluster log is reachable; appending");
                    }
                    shared.set_up(&shared.appender_up, true);
                    metrics::cluster_appended(appended);
                    metrics::cluster_duplicates(duplicates);
                    backoff.reset();
                    break;
                }
                Err(error) => {
                    shared.set_up(&shared.appender_up, false);
                    metrics::cluster_buffered(batch.len() + queue.len());
                    connection = None;
                    if warn.check((), std::time::Instant::now()).is_some() {
                        tracing::warn!(%error, buffered = batch.len() + queue.len(), "cannot append to the cluster log; holding events");
                    }
                    backoff.wait().await;
                }
            }
        }
        for queued in batch.drain(..) {
            if let Some(accepted) = queued.accepted {
                accepted();
            }
        }
        metrics::cluster_buffered(queue.len());
    }
    let _ = done.send(());
}

/// What one script call did.
struct Appended {
    appended: u64,
    duplicates: u64,
    /// The id of the last entry it appended.
    last: Option<Position>,
    /// Whether the log had lost entries this node appended or read (`expected`).
    lost: bool,
    /// The log's epoch the batch went into.
    epoch: String,
}

/// The newest entry this node knows the log had, with its epoch: the last it appended
/// or the last its tail read, whichever is newer.
fn newest_known(
    appended: Option<&(Position, String)>,
    tail: &TailState,
) -> Option<(Position, String)> {
    let read = tail.last_entry.zip(tail.epoch.clone());
    match (appended.cloned(), read) {
        (Some(a), Some(r)) => Some(if a.0 >= r.0 { a } else { r }),
        (a, r) => a.or(r),
    }
}

/// Appends one batch, numbered `sequence`. With `expected` (an entry and its epoch),
/// first checks that the log
/// still has the entry appended last.
async fn append<O>(
    connection: &mut MultiplexedConnection,
    shared: &Shared<O>,
    appender: &str,
    sequence: u64,
    expected: Option<&(Position, String)>,
    batch: &[Queued],
) -> redis::RedisResult<Appended> {
    let keys = &shared.keys;
    let min_id = Position::at(
        SystemTime::now()
            .checked_sub(shared.max_age)
            .unwrap_or(SystemTime::UNIX_EPOCH),
    );
    let epoch = format!("{:032x}", rand::random::<u128>());
    let max_age_ms = u64::try_from(shared.max_age.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let mut invocation = SCRIPT.prepare_invoke();
    invocation
        .key(&keys.log)
        .key(&keys.epoch)
        .key(appender)
        .arg(epoch)
        .arg(shared.size)
        .arg(min_id.to_string())
        .arg(&keys.id_prefix)
        .arg(max_age_ms)
        .arg(BATCH_NUMBER_MS)
        .arg(sequence)
        .arg(expected.map(|(p, _)| p.to_string()).unwrap_or_default())
        .arg(expected.map_or("", |(_, epoch)| epoch.as_str()));
    for Queued { message, .. } in batch {
        invocation
            .arg(message.id.as_deref().unwrap_or(""))
            .arg(message.topic.as_str())
            .arg(&message.data);
    }
    let (appended, duplicates, last, lost, epoch): (i64, i64, String, i64, String) =
        invocation.invoke_async(connection).await?;
    Ok(Appended {
        // Negative: appended by an earlier try whose answer was lost.
        appended: u64::try_from(appended).unwrap_or(0),
        duplicates: u64::try_from(duplicates).unwrap_or(0),
        last: Position::parse(&last),
        lost: lost == 1,
        epoch,
    })
}
