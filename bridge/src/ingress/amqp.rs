//! The AMQP 0-9-1 sources (`[[ingress.amqp]]`, RabbitMQ; docs/superdesk.md): each
//! consumes one queue (an existing one, or an exclusive one of its own bound to an
//! exchange), hands every message body to its own [`Dispatch`] as a one-frame message,
//! and acknowledges the message once the log holds its event, or at once when it is
//! rejected (counted, never redelivered). At most `prefetch` messages are delivered and
//! not yet acknowledged; what is unacknowledged when a connection ends the broker
//! delivers again, so a broker restart or a network loss loses nothing it kept.
//!
//! Per source, three parts with one job each:
//! - the consumer task (async, lapin) connects, declares, consumes and passes each
//!   delivery on in order; it reconnects with backoff whenever the connection or the
//!   channel ends, and says whether the source is up (`/readyz`, `push_bridge_amqp_up`);
//! - the ingress thread (`amqp-N`) parses and hands on, like the ZeroMQ thread (the
//!   log's `accept` may block, and a single bridge routes there);
//! - the acknowledgements: one task per source, which the log's callbacks (the event
//!   is in, or the message was rejected) feed through a shared queue, woken once per
//!   ingress burst rather than once per message. It acknowledges the longest run of
//!   settled delivery tags from the last one acknowledged with one `basic.ack`
//!   (`multiple`), which so never covers a message the log has not settled; on a
//!   graceful stop it sends what is left, those after a gap one by one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use metrics::{Counter, Gauge};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use super::dispatch::{Dispatch, Sink, SocketId};
use super::message::Rules;
use crate::config::{AmqpSource, IngressConfig};
use crate::ops::metrics::{AMQP_ACKED_TOTAL, AMQP_CONNECTS_TOTAL, AMQP_UP, INGRESS_REJECTED_TOTAL};
use crate::ops::ratelimit::RateLimiter;
use crate::ops::shutdown::{Shutdown, TaskTracker};

/// How long connecting and each declaration may take before the try counts as failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// The first pause before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A source that keeps failing is warned about once per this interval.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// One received message body and how to acknowledge it.
struct Delivery {
    body: Vec<u8>,
    /// The producer's `message_id` property, if it set one.
    message_id: Option<String>,
    /// The broker delivered it before (a connection ended before its acknowledgement).
    redelivered: bool,
    acker: lapin::Acker,
    /// The consumer's session (one channel) and the message's delivery tag on it.
    session: u64,
    tag: u64,
}

/// A message the log has settled (its event is in, or it was rejected): to be
/// acknowledged.
struct Settled<A = lapin::Acker> {
    session: u64,
    tag: u64,
    acker: A,
}

/// Settled messages on their way from the log's callbacks (on the ingress thread for
/// one bridge, on the appender's task in a cluster) to the source's acknowledging
/// task, which is woken once per burst of the ingress thread, or at once for a
/// message settled outside a burst.
struct AckQueue<A = lapin::Acker> {
    settled: Mutex<Vec<Settled<A>>>,
    wake: Notify,
    /// The ingress thread is handing on a burst: it wakes the task at its end.
    in_burst: AtomicBool,
}

impl<A> Default for AckQueue<A> {
    fn default() -> Self {
        AckQueue {
            settled: Mutex::new(Vec::new()),
            wake: Notify::new(),
            in_burst: AtomicBool::new(false),
        }
    }
}

impl<A> AckQueue<A> {
    fn push(&self, settled: Settled<A>) {
        let was_empty = {
            let mut queue = self.settled.lock().unwrap_or_else(|e| e.into_inner());
            queue.push(settled);
            queue.len() == 1
        };
        // A queue that was not empty has a wake-up under way (or the burst's end).
        if was_empty && !self.in_burst.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    fn burst(&self, started: bool) {
        self.in_burst.store(started, Ordering::SeqCst);
        if !started && !self.is_empty() {
            self.wake.notify_one();
        }
    }

    fn is_empty(&self) -> bool {
        self.settled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    fn take(&self) -> Vec<Settled<A>> {
        std::mem::take(&mut *self.settled.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// One `basic.ack` to send: for `count` messages up to the acker's (`multiple`), or
/// for its message alone.
struct Ack<A = lapin::Acker> {
    acker: A,
    multiple: bool,
    count: u64,
}

/// Which settled messages may be acknowledged, per consumer session (channel): on a
/// channel the broker numbers deliveries 1, 2, 3, …, so once every tag up to `upto`
/// is settled, one `basic.ack` with `multiple` for `upto` covers them all and nothing
/// unsettled.
struct AckState<A = lapin::Acker> {
    session: u64,
    /// Every tag up to this one is acknowledged (or on its way).
    upto: u64,
    /// Settled after a tag that is not yet.
    waiting: BTreeMap<u64, A>,
}

impl<A> AckState<A> {
    fn new() -> Self {
        AckState {
            session: 0,
            upto: 0,
            waiting: BTreeMap::new(),
        }
    }

    /// The acknowledgements `batch` makes possible; with `all` (the drain's end), those
    /// waiting behind a gap too, one by one.
    fn absorb(&mut self, batch: Vec<Settled<A>>, all: bool) -> Vec<Ack<A>> {
        let one = |acker| Ack {
            acker,
            multiple: false,
            count: 1,
        };
        let mut acks = Vec::new();
        for settled in batch {
            if settled.session < self.session {
                // Its channel is gone: the attempt fails and the broker delivers it
                // again.
                acks.push(one(settled.acker));
                continue;
            }
            if settled.session > self.session {
                acks.extend(std::mem::take(&mut self.waiting).into_values().map(one));
                self.session = settled.session;
                self.upto = 0;
            }
            self.waiting.insert(settled.tag, settled.acker);
        }
        let mut run = None;
        let mut count = 0;
        while let Some(acker) = self.waiting.remove(&(self.upto + 1)) {
            self.upto += 1;
            count += 1;
            run = Some(acker);
        }
        if let Some(acker) = run {
            acks.push(Ack {
                acker,
                multiple: count > 1,
                count,
            });
        }
        if all {
            acks.extend(std::mem::take(&mut self.waiting).into_values().map(one));
        }
        acks
    }
}

/// The source's acknowledging task: sends what the settled messages allow, until the
/// drain's end (`last`), when it sends everything settled and ends.
async fn acknowledge(queue: Arc<AckQueue>, acked: Counter, last: Shutdown) {
    let mut state = AckState::new();
    loop {
        let all = tokio::select! {
            _ = queue.wake.notified() => false,
            _ = last.cancelled() => true,
        };
        for ack in state.absorb(queue.take(), all) {
            let options = BasicAckOptions {
                multiple: ack.multiple,
            };
            // A channel that closed meanwhile cannot take it (false, or an error):
            // the broker delivers those messages again.
            if let Ok(true) = ack.acker.ack(options).await {
                acked.increment(ack.count);
            }
        }
        if all {
            return;
        }
    }
}

/// The bodies this source handed on most recently (their hashes), so that a message
/// the broker delivers again after a lost connection, whose event is already in the
/// log but whose acknowledgement did not arrive, is not delivered to clients twice.
/// Only redelivered messages are looked up; a message with an id (its body's or its
/// `message_id`) is recognised by that id in the log as well.
struct Recent {
    order: std::collections::VecDeque<u64>,
    set: std::collections::HashSet<u64>,
    capacity: usize,
}

impl Recent {
    fn new(capacity: usize) -> Self {
        Recent {
            order: std::collections::VecDeque::with_capacity(capacity),
            set: std::collections::HashSet::with_capacity(capacity),
            capacity,
        }
    }

    fn hash(body: &[u8]) -> u64 {
        use std::hash::{Hash as _, Hasher as _};
        let mut hasher = std::hash::DefaultHasher::new();
        body.hash(&mut hasher);
        hasher.finish()
    }

    fn contains(&self, hash: u64) -> bool {
        self.set.contains(&hash)
    }

    fn insert(&mut self, hash: u64) {
        if self.set.insert(hash) {
            self.order.push_back(hash);
            if self.order.len() > self.capacity {
                if let Some(oldest) = self.order.pop_front() {
                    self.set.remove(&oldest);
                }
            }
        }
    }
}

/// The running AMQP sources.
pub struct AmqpSources {
    sources: Vec<Running>,
}

struct Running {
    label: String,
    up: Arc<AtomicBool>,
    /// Cancelled to stop consuming (the drain).
    stop: Shutdown,
    /// Cancelled to close the connection, once every acknowledgement went out.
    close: Shutdown,
    /// Cancelled when every message is settled: the acknowledging task sends the rest.
    last_acks: Shutdown,
    consumer: JoinHandle<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    acks: TaskTracker,
}

impl AmqpSources {
    /// Starts every `[[ingress.amqp]]` source of `config` on the current runtime, each
    /// handing its messages to a sink `sink()` makes. The broker need not be reachable
    /// yet: each source keeps trying and is down (`/readyz`) meanwhile.
    pub fn start(
        config: &IngressConfig,
        mut sink: impl FnMut() -> Box<dyn Sink>,
    ) -> Result<AmqpSources, String> {
        let mut sources = Vec::new();
        for (n, source) in config.amqp.iter().enumerate() {
            sources.push(Running::start(n, config, source, sink())?);
        }
        Ok(AmqpSources { sources })
    }

    /// How each source is named in metrics, logs and `/readyz`.
    pub fn labels(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.label.clone()).collect()
    }

    /// The sources' up flags, for `/readyz`.
    pub fn health(&self) -> SourceHealth {
        SourceHealth(
            self.sources
                .iter()
                .map(|s| (s.label.clone(), Arc::clone(&s.up)))
                .collect(),
        )
    }

    /// The drain, first part: stops consuming and waits (blocking) until each source's
    /// thread has handed on every message it had received. What the broker had
    /// delivered and the bridge not taken in is delivered again (to another
    /// consumer, or to this bridge's next run).
    pub fn stop_consuming(&mut self) {
        for source in &self.sources {
            source.stop.cancel();
        }
        for source in &mut self.sources {
            if let Some(thread) = source.thread.take() {
                if thread.join().is_err() {
                    tracing::error!(source = %source.label, "the AMQP ingress thread panicked");
                }
            }
        }
    }

    /// The drain, last part, once the log has closed (every event it took in is in):
    /// sends the acknowledgements still under way, until `deadline`, then closes each
    /// connection. A message whose acknowledgement did not go out is delivered again.
    /// Call [`stop_consuming`](Self::stop_consuming) first.
    pub async fn close(self, deadline: Instant) {
        // Acknowledging takes a moment even when the drain used up its time.
        let deadline = tokio::time::Instant::from_std(deadline)
            .max(tokio::time::Instant::now() + Duration::from_secs(1));
        for source in self.sources {
            source.stop.cancel();
            source.last_acks.cancel();
            source.acks.close();
            if tokio::time::timeout_at(deadline, source.acks.wait())
                .await
                .is_err()
            {
                tracing::warn!(source = %source.label, "the drain timeout passed before every AMQP acknowledgement was sent; the broker will deliver those messages again");
            }
            source.close.cancel();
            let mut consumer = source.consumer;
            if tokio::time::timeout(Duration::from_secs(2), &mut consumer)
                .await
                .is_err()
            {
                consumer.abort();
            }
        }
    }
}

/// Whether each AMQP source is consuming now.
#[derive(Debug, Default, Clone)]
pub struct SourceHealth(Vec<(String, Arc<AtomicBool>)>);

impl SourceHealth {
    /// The first source that is down, if any.
    pub fn first_down(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, up)| !up.load(Ordering::Acquire))
            .map(|(label, _)| label.as_str())
    }
}

impl Running {
    fn start(
        n: usize,
        config: &IngressConfig,
        source: &AmqpSource,
        sink: Box<dyn Sink>,
    ) -> Result<Running, String> {
        let label = label(source);
        let mut rules = Rules::from(config);
        if source.topic_field.is_some() {
            rules.topic_field = source.topic_field.clone();
        }
        let mut dispatch = Dispatch::new(rules, sink);
        let socket = dispatch.add_socket(&label);

        let up = Arc::new(AtomicBool::new(false));
        let stop = Shutdown::new();
        let close = Shutdown::new();
        let acks = TaskTracker::new();
        let last_acks = Shutdown::new();
        let (deliveries, receiver) = mpsc::channel(usize::from(source.prefetch).max(1));
        let metrics = SourceMetrics::new(&label);
        metrics.up.set(0.0);
        let queue = Arc::new(AckQueue::default());
        acks.spawn(acknowledge(
            Arc::clone(&queue),
            metrics.acked.clone(),
            last_acks.clone(),
        ));

        let thread = std::thread::Builder::new()
            .name(format!("amqp-{n}"))
            .spawn({
                let duplicates = metrics.duplicates.clone();
                // Every message unacknowledged when a connection ends, and then some.
                let recent = (2 * usize::from(source.prefetch)).max(1024);
                move || hand_on(receiver, dispatch, socket, recent, queue, duplicates)
            })
            .map_err(|e| format!("cannot start the AMQP ingress thread: {e}"))?;
        let consumer = tokio::spawn(consume(Consumer {
            source: source.clone(),
            label: label.clone(),
            deliveries,
            up: Arc::clone(&up),
            metrics,
            stop: stop.clone(),
            close: close.clone(),
        }));
        Ok(Running {
            label,
            up,
            stop,
            close,
            last_acks,
            consumer,
            thread: Some(thread),
            acks,
        })
    }
}

/// `amqp://host:port/vhost queue NAME` (or `exchange NAME`): the source without its
/// credentials.
fn label(source: &AmqpSource) -> String {
    let url = &source.url;
    let without_credentials = match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{host}")
        }
        None => url.clone(),
    };
    match (&source.queue, &source.exchange) {
        (Some(queue), _) => format!("{without_credentials} queue {queue}"),
        (None, Some(exchange)) => format!("{without_credentials} exchange {exchange}"),
        (None, None) => without_credentials,
    }
}

struct SourceMetrics {
    up: Gauge,
    connects: Counter,
    acked: Counter,
    /// Redelivered messages already handed on: `ingress_rejected{reason="duplicate"}`,
    /// as the log counts a publisher id it already has.
    duplicates: Counter,
}

impl SourceMetrics {
    fn new(label: &str) -> Self {
        let source = label.to_string();
        SourceMetrics {
            up: metrics::gauge!(AMQP_UP, "source" => source.clone()),
            connects: metrics::counter!(AMQP_CONNECTS_TOTAL, "source" => source.clone()),
            acked: metrics::counter!(AMQP_ACKED_TOTAL, "source" => source),
            duplicates: metrics::counter!(INGRESS_REJECTED_TOTAL, "reason" => "duplicate"),
        }
    }
}

/// The ingress thread: parses and hands on each delivery in order, and ends a burst
/// when none is waiting. Ends when the consumer task stops and everything it passed
/// on was handed on.
fn hand_on(
    mut receiver: mpsc::Receiver<Delivery>,
    mut dispatch: Dispatch,
    socket: SocketId,
    recent_capacity: usize,
    queue: Arc<AckQueue>,
    duplicates: Counter,
) {
    let mut recent = Recent::new(recent_capacity);
    let mut one = |delivery: Delivery, dispatch: &mut Dispatch| {
        let Delivery {
            body,
            message_id,
            redelivered,
            acker,
            session,
            tag,
        } = delivery;
        let settled = Settled {
            session,
            tag,
            acker,
        };
        let hash = Recent::hash(&body);
        if redelivered && recent.contains(hash) {
            // Handed on before the connection ended: acknowledge, deliver nothing.
            duplicates.increment(1);
            queue.push(settled);
            return;
        }
        recent.insert(hash);
        let queue = Arc::clone(&queue);
        let settle = Box::new(move || queue.push(settled));
        dispatch.on_message_then(
            socket,
            &[&body],
            Instant::now(),
            message_id.as_deref(),
            settle,
        );
    };
    while let Some(first) = receiver.blocking_recv() {
        queue.burst(true);
        one(first, &mut dispatch);
        while let Ok(next) = receiver.try_recv() {
            one(next, &mut dispatch);
        }
        dispatch.on_burst_end();
        queue.burst(false);
    }
}

/// What the consumer task needs.
struct Consumer {
    source: AmqpSource,
    label: String,
    deliveries: mpsc::Sender<Delivery>,
    up: Arc<AtomicBool>,
    metrics: SourceMetrics,
    stop: Shutdown,
    close: Shutdown,
}

impl Consumer {
    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Release);
        self.metrics.up.set(if up { 1.0 } else { 0.0 });
    }
}

/// Why a session with the broker ended.
enum Ended {
    /// The drain: consuming stopped; the connection stays open for the
    /// acknowledgements still to come.
    Stopped(Connection),
    /// The connection, the channel or a declaration failed: try again.
    Failed(String),
}

/// The consumer task: sessions with the broker, one after another, until the drain.
async fn consume(consumer: Consumer) {
    let mut backoff = FIRST_BACKOFF;
    let mut warn = RateLimiter::<()>::new(WARN_INTERVAL);
    let mut was_up = false;
    let mut sessions = 0u64;
    loop {
        sessions += 1;
        match session(&consumer, sessions).await {
            Ended::Stopped(connection) => {
                consumer.set_up(false);
                // Every message handed on is in the log once the drain gets here;
                // keep the connection until their acknowledgements went out.
                drop(consumer.deliveries);
                consumer.close.cancelled().await;
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    connection.close(200, "push-bridge is stopping".into()),
                )
                .await;
                return;
            }
            Ended::Failed(error) => {
                if consumer.up.load(Ordering::Acquire) {
                    was_up = true;
                }
                consumer.set_up(false);
                if consumer.stop.is_cancelled() {
                    return;
                }
                // The first failure after consuming is always told; a source that
                // keeps failing, once per interval.
                let now = std::time::Instant::now();
                if was_up || warn.check((), now).is_some() {
                    tracing::warn!(source = %consumer.label, %error, retry_in = ?backoff, "AMQP source down; reconnecting");
                }
                was_up = false;
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = consumer.stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        if consumer.up.load(Ordering::Acquire) {
            backoff = FIRST_BACKOFF;
        }
    }
}

/// One connection: connect, declare, consume until it fails or the drain begins.
async fn session(consumer: &Consumer, id: u64) -> Ended {
    let source = &consumer.source;
    let step = |what: &'static str| move |e: lapin::Error| format!("{what}: {e}");
    let connecting = Connection::connect(
        &source.url,
        ConnectionProperties::default().with_connection_name("push-bridge".into()),
    );
    let connection = tokio::select! {
        connected = tokio::time::timeout(STEP_TIMEOUT, connecting) => match connected {
            Ok(Ok(connection)) => connection,
            Ok(Err(e)) => return Ended::Failed(format!("cannot connect: {e}")),
            Err(_) => return Ended::Failed(format!("cannot connect within {STEP_TIMEOUT:?}")),
        },
        _ = consumer.stop.cancelled() => return Ended::Failed("stopped while connecting".into()),
    };
    let consuming = async {
        let channel = connection
            .create_channel()
            .await
            .map_err(step("cannot open a channel"))?;
        channel
            .basic_qos(source.prefetch, BasicQosOptions::default())
            .await
            .map_err(step("cannot set the prefetch"))?;
        let queue = match (&source.queue, &source.exchange) {
            (Some(queue), _) => {
                // Passive: the queue is the operator's (Publisher's install guide
                // declares and binds it); a missing one is an error, not made here.
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                };
                channel
                    .queue_declare(queue.as_str().into(), passive, FieldTable::default())
                    .await
                    .map_err(step("cannot find the queue"))?;
                queue.clone()
            }
            (None, Some(exchange)) => {
                // The bridge's own queue: gone with the connection, so a stopped
                // bridge leaves nothing filling up on the broker.
                let own = QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                };
                let declared = channel
                    .queue_declare("".into(), own, FieldTable::default())
                    .await
                    .map_err(step("cannot declare the bridge's queue"))?;
                let name = declared.name().to_string();
                channel
                    .queue_bind(
                        name.as_str().into(),
                        exchange.as_str().into(),
                        source.routing_key.as_str().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(step("cannot bind to the exchange"))?;
                name
            }
            (None, None) => return Err("neither queue nor exchange is set".to_string()),
        };
        let stream = channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(step("cannot consume"))?;
        Ok::<_, String>((channel, stream))
    };
    let (channel, mut stream) = match tokio::time::timeout(STEP_TIMEOUT, consuming).await {
        Ok(Ok(consuming)) => consuming,
        Ok(Err(error)) => return Ended::Failed(error),
        Err(_) => return Ended::Failed(format!("no answer within {STEP_TIMEOUT:?}")),
    };
    consumer.set_up(true);
    consumer.metrics.connects.increment(1);
    tracing::info!(source = %consumer.label, prefetch = source.prefetch, "AMQP source consuming");
    loop {
        tokio::select! {
            biased;
            _ = consumer.stop.cancelled() => {
                let tag = stream.tag();
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    channel.basic_cancel(tag, BasicCancelOptions::default()),
                )
                .await;
                return Ended::Stopped(connection);
            }
            next = stream.next() => match next {
                Some(Ok(delivery)) => {
                    let delivery = Delivery {
                        message_id: delivery.properties.message_id().as_ref().map(|id| id.to_string()),
                        redelivered: delivery.redelivered,
                        session: id,
                        tag: delivery.delivery_tag,
                        body: delivery.data,
                        acker: delivery.acker,
                    };
                    if consumer.deliveries.send(delivery).await.is_err() {
                        return Ended::Failed("the ingress thread ended".into());
                    }
                }
                Some(Err(error)) => return Ended::Failed(format!("consuming failed: {error}")),
                None => return Ended::Failed("the broker cancelled the consumer".into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(url: &str, queue: Option<&str>, exchange: Option<&str>) -> AmqpSource {
        AmqpSource {
            url: url.into(),
            queue: queue.map(Into::into),
            exchange: exchange.map(Into::into),
            routing_key: String::new(),
            topic_field: None,
            prefetch: 256,
        }
    }

    #[test]
    fn a_label_names_the_broker_and_the_queue_but_no_credentials() {
        assert_eq!(
            label(&source(
                "amqp://guest:hunter2@127.0.0.1:5672/%2f",
                Some("swp_websocket"),
                None
            )),
            "amqp://127.0.0.1:5672/%2f queue swp_websocket"
        );
        assert_eq!(
            label(&source(
                "amqps://mq.example:5671/sd",
                None,
                Some("superdesk_notification")
            )),
            "amqps://mq.example:5671/sd exchange superdesk_notification"
        );
    }

    #[test]
    fn recent_bodies_are_remembered_up_to_the_capacity() {
        let mut recent = Recent::new(2);
        let [a, b, c] = [b"a".as_slice(), b"b", b"c"].map(Recent::hash);
        recent.insert(a);
        recent.insert(b);
        recent.insert(a);
        assert!(recent.contains(a) && recent.contains(b));
        recent.insert(c);
        assert!(!recent.contains(a), "the oldest goes first");
        assert!(recent.contains(b) && recent.contains(c));
        assert_ne!(Recent::hash(b"{}"), Recent::hash(b"{} "));
    }

    fn settled(session: u64, tags: &[u64]) -> Vec<Settled<u64>> {
        tags.iter()
            .map(|&tag| Settled {
                session,
                tag,
                acker: tag,
            })
            .collect()
    }

    /// (acker, multiple, count) of each acknowledgement.
    fn sent(acks: Vec<Ack<u64>>) -> Vec<(u64, bool, u64)> {
        acks.into_iter()
            .map(|a| (a.acker, a.multiple, a.count))
            .collect()
    }

    #[test]
    fn acknowledgements_cover_settled_runs_only() {
        let mut state = AckState::new();
        assert_eq!(
            sent(state.absorb(settled(1, &[1, 2, 3]), false)),
            [(3, true, 3)]
        );
        // 5 and 6 wait for 4: a multiple ack for 6 would cover it unsettled.
        assert_eq!(sent(state.absorb(settled(1, &[6, 5]), false)), []);
        assert_eq!(sent(state.absorb(settled(1, &[4]), false)), [(6, true, 3)]);
        assert_eq!(sent(state.absorb(settled(1, &[7]), false)), [(7, false, 1)]);
        assert_eq!(sent(state.absorb(Vec::new(), false)), []);
        // The drain's end: what waits behind a gap goes one by one.
        assert_eq!(
            sent(state.absorb(settled(1, &[10, 9]), true)),
            [(9, false, 1), (10, false, 1)]
        );
    }

    #[test]
    fn a_new_session_numbers_its_deliveries_afresh() {
        let mut state = AckState::new();
        assert_eq!(
            sent(state.absorb(settled(1, &[1, 3]), false)),
            [(1, false, 1)]
        );
        // Session 2 (a new channel) starts at tag 1; 3 of session 1 is tried alone
        // (its channel is closed: the broker delivers it again).
        let mut batch = settled(2, &[1, 2]);
        batch.extend(settled(1, &[4]));
        assert_eq!(
            sent(state.absorb(batch, false)),
            [(3, false, 1), (4, false, 1), (2, true, 2)]
        );
    }

    #[test]
    fn the_ack_queue_wakes_once_per_burst() {
        let queue = AckQueue::default();
        queue.burst(true);
        queue.push(Settled {
            session: 1,
            tag: 1,
            acker: (),
        });
        queue.push(Settled {
            session: 1,
            tag: 2,
            acker: (),
        });
        queue.burst(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(1), queue.wake.notified())
                .await
                .expect("woken at the burst's end");
            assert_eq!(queue.take().len(), 2);
            // Settled outside a burst: woken at once.
            queue.push(Settled {
                session: 1,
                tag: 3,
                acker: (),
            });
            tokio::time::timeout(Duration::from_secs(1), queue.wake.notified())
                .await
                .expect("woken");
        });
    }

    #[test]
    fn health_names_the_first_source_down() {
        let up = Arc::new(AtomicBool::new(true));
        let down = Arc::new(AtomicBool::new(false));
        let health = SourceHealth(vec![("a".into(), up), ("b".into(), Arc::clone(&down))]);
        assert_eq!(health.first_down(), Some("b"));
        down.store(true, Ordering::Release);
        assert_eq!(health.first_down(), None);
        assert_eq!(SourceHealth::default().first_down(), None);
    }
}
