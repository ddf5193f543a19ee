//! The tail: a thread of its own that reads the log in order and routes every entry
//! into the hub, so this node delivers every event once, in the log's order, and its
//! history is its copy of the log.
//!
//! At the first connection it loads the log's last entries appended before the node
//! started (within `[history]`'s limits) into the history, without delivering them;
//! later ones are delivered. At every connection, and each
//! second the log is quiet, it compares the log's epoch and last entry with what it
//! read: a new epoch (the log was flushed, or another node saw a failover lose
//! entries) or a log that went backwards (a failover lost entries this node had read)
//! empties the history, so no resume can skip the lost events unawares.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Value};

use super::entry::{self, Entry, Position};
use super::shared::{Backoff, Keys, Shared, TailState};
use crate::event::{Event, SharedEvent};
use crate::hub::Outlet;
use crate::ops::metrics;
use crate::ops::ratelimit::RateLimiter;
use crate::topic::Topic;

/// How long one read waits for new entries before the quiet-log check.
const BLOCK: Duration = Duration::from_secs(1);
/// Entries per read at most.
const COUNT: usize = 1024;
/// Entries per request when loading the history at start.
const LOAD_CHUNK: usize = 1000;

/// What the tail knows of the log.
struct Cursor {
    epoch: Option<String>,
    position: Position,
    /// The newest entry of this epoch read (or loaded) from the log: a log that no
    /// longer has it lost entries.
    last_entry: Option<Position>,
    loaded: bool,
}

/// The thread's body: follows the log until the bridge stops.
pub(super) fn run<O: Outlet + 'static>(shared: Arc<Shared<O>>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the cluster tail");
            return;
        }
    };
    runtime.block_on(async {
        let stop = shared.stop.clone();
        stop.run_until_cancelled(follow(&shared)).await;
    });
}

async fn follow<O: Outlet>(shared: &Shared<O>) {
    let mut cursor = Cursor {
        epoch: None,
        position: Position::START,
        last_entry: None,
        loaded: false,
    };
    let mut backoff = Backoff::new();
    let mut warn = RateLimiter::<()>::new(Duration::from_secs(10));
    loop {
        let error = match shared
            .connector
            .connect(BLOCK + Duration::from_secs(2))
            .await
        {
            Ok(mut connection) => {
                let error = read(shared, &mut connection, &mut cursor, &mut backoff).await;
                error.to_string()
            }
            Err(error) => error.to_string(),
        };
        shared.set_up(&shared.tail_up, false);
        if warn.check((), Instant::now()).is_some() {
            tracing::warn!(%error, "cannot read the cluster log; retrying");
        }
        backoff.wait().await;
    }
}

/// Reads until the connection fails; returns why.
async fn read<O: Outlet>(
    shared: &Shared<O>,
    connection: &mut MultiplexedConnection,
    cursor: &mut Cursor,
    backoff: &mut Backoff,
) -> redis::RedisError {
    if let Err(error) = check(shared, connection, cursor).await {
        return error;
    }
    if !shared.tail_up.load(Ordering::Acquire) {
        tracing::info!(position = %cursor.position, "reading the cluster log");
    }
    shared.set_up(&shared.tail_up, true);
    backoff.reset();
    loop {
        let reply: RedisResult<Value> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(COUNT)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&shared.keys.log)
            .arg(cursor.position.to_string())
            .query_async(connection)
            .await;
        let entries = match reply.map(entry::read) {
            Ok(Ok(entries)) => entries,
            Ok(Err(bad)) => return bad_reply(bad),
            Err(error) => return error,
        };
        if entries.is_empty() {
            metrics::cluster_lag(Duration::ZERO);
            if let Err(error) = check(shared, connection, cursor).await {
                return error;
            }
            continue;
        }
        deliver(shared, cursor, entries);
    }
}

/// Routes entries into the hub, in order, then lets the sessions write.
fn deliver<O: Outlet>(shared: &Shared<O>, cursor: &mut Cursor, entries: Vec<Entry>) {
    let now = SystemTime::now();
    let mut last = None;
    for entry in entries {
        cursor.position = entry.position;
        last = Some(entry.position);
        if cursor.epoch.as_deref() != Some(entry.epoch.as_str()) {
            if cursor.epoch.is_some() {
                tracing::warn!(epoch = %entry.epoch, "the cluster log was started afresh (a new epoch): resumes from earlier events will start over");
            }
            shared.hub.clear_history();
            cursor.epoch = Some(entry.epoch.clone());
        }
        cursor.last_entry = Some(entry.position);
        let at = entry.position.time();
        if let Some(event) = event(entry, now) {
            shared.hub.route_logged(&event, at);
        }
    }
    shared.hub.flush();
    if let Some(last) = last {
        metrics::cluster_lag(now.duration_since(last.time()).unwrap_or_default());
    }
    publish(shared, cursor);
}

/// The event an entry holds; `None` (with a warning) when its topic is not one.
fn event(entry: Entry, now: SystemTime) -> Option<SharedEvent> {
    let topic = match Topic::parse(&entry.topic) {
        Ok(topic) => topic,
        Err(error) => {
            tracing::warn!(position = %entry.position, %error, "skipped a log entry with a bad topic");
            return None;
        }
    };
    // The delivery latency counts from the append (by Redis's clock).
    let age = now
        .duration_since(entry.position.time())
        .unwrap_or_default();
    let received = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
    Some(Arc::new(Event {
        topic,
        id: entry.id.into_boxed_str(),
        data: entry.data.into_boxed_str(),
        received,
    }))
}

/// Compares the log's epoch and last entry with what this node read (loading the
/// history at the first connection).
async fn check<O: Outlet>(
    shared: &Shared<O>,
    connection: &mut MultiplexedConnection,
    cursor: &mut Cursor,
) -> RedisResult<()> {
    let (epoch, head) = epoch_and_head(connection, &shared.keys).await?;
    if !cursor.loaded {
        // What was appended before this node started is history; what came after is
        // read and delivered like any new entry: its clients may have subscribed
        // before the log could be reached.
        let before_start = Position::at(shared.started).just_before();
        let end = head.map(|head| head.min(before_start));
        let (loaded, newest) = load(shared, connection, epoch.as_deref(), end).await?;
        tracing::info!(events = loaded, "history loaded from the cluster log");
        cursor.epoch = epoch;
        cursor.last_entry = newest;
        cursor.position = end.unwrap_or(Position::START);
        cursor.loaded = true;
        publish(shared, cursor);
        return Ok(());
    }
    if epoch != cursor.epoch {
        if cursor.epoch.is_some() {
            tracing::warn!("the cluster log was lost (flushed, or a failover lost entries): resumes from earlier events will start over");
        }
        shared.hub.clear_history();
        cursor.epoch = epoch;
        cursor.last_entry = None;
    } else if let Some(last) = cursor.last_entry {
        if lost(connection, &shared.keys, last).await? {
            // Same epoch, but an entry this node read is gone: an asynchronous
            // failover lost it (later entries may have been appended since). A new
            // epoch tells every node (their tails see it on the next entry), so that
            // no resume across the lost range passes as continuous.
            let epoch = format!("{:032x}", rand::random::<u128>());
            tracing::warn!(read = %last, "the cluster log lost entries this node had read (a failover?): starting a new epoch");
            redis::cmd("SET")
                .arg(&shared.keys.epoch)
                .arg(&epoch)
                .query_async::<()>(connection)
                .await?;
            shared.hub.clear_history();
            cursor.epoch = Some(epoch);
            cursor.last_entry = None;
        }
    }
    if let Some(head) = head {
        cursor.position = cursor.position.min(head);
    }
    publish(shared, cursor);
    Ok(())
}

/// Loads the newest entries of the current epoch into the history, within
/// `history.size`, `history.max_bytes` and `history.max_age`. Returns how many, and
/// the newest one's position.
async fn load<O: Outlet>(
    shared: &Shared<O>,
    connection: &mut MultiplexedConnection,
    epoch: Option<&str>,
    head: Option<Position>,
) -> RedisResult<(usize, Option<Position>)> {
    let (Some(epoch), Some(head)) = (epoch, head) else {
        return Ok((0, None));
    };
    let oldest = Position::at(
        SystemTime::now()
            .checked_sub(shared.max_age)
            .unwrap_or(SystemTime::UNIX_EPOCH),
    );
    let mut newest_first: Vec<Entry> = Vec::new();
    let mut bytes = 0usize;
    let mut end = head.to_string();
    'chunks: while newest_first.len() < shared.size {
        let reply: Value = redis::cmd("XREVRANGE")
            .arg(&shared.keys.log)
            .arg(&end)
            .arg("-")
            .arg("COUNT")
            .arg(LOAD_CHUNK.min(shared.size - newest_first.len()))
            .query_async(connection)
            .await?;
        let chunk = entry::range(reply).map_err(bad_reply)?;
        let Some(last) = chunk.last().map(|e| e.position) else {
            break;
        };
        for entry in chunk {
            bytes += entry.data.len() + entry.topic.len() + entry.id.len();
            if entry.epoch != epoch || entry.position < oldest || bytes > shared.max_bytes {
                break 'chunks;
            }
            newest_first.push(entry);
        }
        end = format!("({last}");
    }
    let count = newest_first.len();
    let newest = newest_first.first().map(|entry| entry.position);
    let now = SystemTime::now();
    let events = newest_first.into_iter().rev().filter_map(|entry| {
        let at = entry.position.time();
        Some((event(entry, now)?, at))
    });
    shared.hub.restore_history(events);
    Ok((count, newest))
}

/// Whether the log lost the entry at `position`: it is not there, and the log holds
/// an older entry or none at all (an entry older than all the log holds was trimmed;
/// an append leaves at least itself after trimming, so an empty log lost its entries).
async fn lost(
    connection: &mut MultiplexedConnection,
    keys: &Keys,
    position: Position,
) -> RedisResult<bool> {
    let id = position.to_string();
    let (itself, first): (Value, Value) = redis::pipe()
        .cmd("XRANGE")
        .arg(&keys.log)
        .arg(&id)
        .arg(&id)
        .cmd("XRANGE")
        .arg(&keys.log)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(connection)
        .await?;
    if last_position(itself).map_err(bad_reply)?.is_some() {
        return Ok(false);
    }
    Ok(last_position(first)
        .map_err(bad_reply)?
        .is_none_or(|first| first < position))
}

/// The log's epoch and its last entry's position (none when the log is empty).
pub(super) async fn epoch_and_head(
    connection: &mut MultiplexedConnection,
    keys: &Keys,
) -> RedisResult<(Option<String>, Option<Position>)> {
    let (epoch, last): (Option<String>, Value) = redis::pipe()
        .cmd("GET")
        .arg(&keys.epoch)
        .cmd("XREVRANGE")
        .arg(&keys.log)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(connection)
        .await?;
    let head = last_position(last).map_err(bad_reply)?;
    Ok((epoch, head))
}

/// The id of the first entry of an `XRANGE`/`XREVRANGE` reply, if any.
fn last_position(reply: Value) -> Result<Option<Position>, entry::BadReply> {
    let Value::Array(entries) = reply else {
        return Err(entry::BadReply(format!("{reply:?}")));
    };
    let Some(Value::Array(first)) = entries.into_iter().next() else {
        return Ok(None);
    };
    let Some(id) = first.into_iter().next() else {
        return Ok(None);
    };
    let id = entry::text(id)?;
    Position::parse(&id)
        .map(Some)
        .ok_or_else(|| entry::BadReply(format!("entry id {id:?}")))
}

fn publish<O>(shared: &Shared<O>, cursor: &Cursor) {
    let state = TailState {
        epoch: cursor.epoch.clone(),
        position: cursor.position,
        last_entry: cursor.last_entry,
    };
    shared.tail.send_if_modified(|current| {
        let changed = *current != state;
        *current = state;
        changed
    });
}

fn bad_reply(bad: entry::BadReply) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        bad.to_string(),
    ))
}
