//! `--amqp`: the AMQP ingress's throughput (issue 15). The tool declares a durable
//! queue on a RabbitMQ (its own, [`crate::rabbitmq`], or `--amqp-url`), publishes N
//! persistent messages (delivery mode 2, as Superdesk Publisher does) with publisher
//! confirms, each body an envelope `{"topic":"bench","data":{"ts":…,"seq":…,"pad":…}}`
//! like a one-frame ZeroMQ message, then starts the bridge with `[[ingress.amqp]]
//! queue = …` and watches its `/metrics` until `push_bridge_amqp_acked_total` is N:
//! events/s into the hub, from the first acknowledgement seen to the last, with the
//! bridge's and the broker's CPU over that window.
//!
//! `--amqp-live`: the bridge starts first (and `--clients N` subscribe to `bench`),
//! then the tool publishes while the bridge consumes: the steady state, and with
//! clients, every event delivered (0 lost), not only accepted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use crate::clients::{self, now_ns, Shared, Target};
use crate::rabbitmq::RabbitServer;
use crate::server::{cpu_seconds, http_get, spawn_bridge, status_bytes};
use crate::stats::{Counters, Histogram};

/// Publishes in flight (sent, frame not yet written) and confirms awaited at most.
const PUBLISH_CONCURRENCY: usize = 64;
const CONFIRM_WINDOW: usize = 2048;
/// How often the bridge's `/metrics` is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// What one `--amqp` run does.
pub struct AmqpPlan<'a> {
    pub bridge: &'a Path,
    pub bridge_config: &'a str,
    pub server_cpu: Option<usize>,
    /// The broker: its URL, and the broker itself when the tool started it.
    pub url: String,
    pub broker: Option<&'a RabbitServer>,
    pub messages: u64,
    pub size: usize,
    /// `--amqp-live`: publish while the bridge consumes.
    pub live: bool,
    pub clients: usize,
    pub client_threads: usize,
    /// The source's `prefetch` (the bridge's default when `None`).
    pub prefetch: Option<u16>,
}

/// What publishing did.
#[derive(Default)]
struct Published {
    confirmed: u64,
    nacked: u64,
    errors: u64,
    seconds: f64,
    broker_cpu_s: Option<f64>,
}

/// One reading of the bridge (and the broker).
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    acked: u64,
    rejected: u64,
    bridge_cpu: Option<f64>,
    broker_cpu: Option<f64>,
}

/// The figures of one `--amqp` run.
#[derive(Default)]
pub struct AmqpReport {
    pub messages: u64,
    published: Published,
    pub acked: u64,
    pub rejected: u64,
    /// From the first acknowledgement seen to the last.
    window_s: f64,
    window_events: u64,
    bridge_cpu_s: Option<f64>,
    broker_cpu_s: Option<f64>,
    /// From the bridge's start to the last acknowledgement.
    since_start_s: f64,
    peak_rss_bytes: Option<u64>,
    pub clients: u64,
    pub clients_failed: u64,
    expected: u64,
    received: u64,
    pub lost: u64,
    pub duplicates: u64,
    out_of_order: u64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
}

impl AmqpReport {
    /// Every message confirmed, acknowledged, none rejected, nothing lost.
    pub fn clean(&self) -> bool {
        self.published.confirmed == self.messages
            && self.published.nacked == 0
            && self.published.errors == 0
            && self.acked == self.messages
            && self.rejected == 0
            && self.lost == 0
            && self.duplicates == 0
            && self.clients_failed == 0
    }

    fn figures(&self) -> Vec<(&'static str, Option<f64>)> {
        let p = &self.published;
        let per = |s: Option<f64>, n: u64| s.filter(|_| n > 0).map(|s| s * 1e6 / n as f64);
        let mut rows = vec![
            ("messages", Some(self.messages as f64)),
            ("publish_confirmed", Some(p.confirmed as f64)),
            ("publish_nacked", Some(p.nacked as f64)),
            ("publish_errors", Some(p.errors as f64)),
            ("publish_s", Some(p.seconds)),
            (
                "publish_per_s",
                (p.seconds > 0.0).then(|| p.confirmed as f64 / p.seconds),
            ),
            (
                "broker_cpu_us_per_publish",
                per(p.broker_cpu_s, p.confirmed),
            ),
            ("acked", Some(self.acked as f64)),
            ("rejected", Some(self.rejected as f64)),
            ("measured_events", Some(self.window_events as f64)),
            ("measured_s", Some(self.window_s)),
            (
                "events_per_s",
                (self.window_s > 0.0).then(|| self.window_events as f64 / self.window_s),
            ),
            ("bridge_start_to_last_ack_s", Some(self.since_start_s)),
            ("bridge_cpu_s", self.bridge_cpu_s),
            (
                "bridge_cpu_us_per_event",
                per(self.bridge_cpu_s, self.window_events),
            ),
            ("broker_cpu_s", self.broker_cpu_s),
            (
                "broker_cpu_us_per_event",
                per(self.broker_cpu_s, self.window_events),
            ),
            (
                "peak_rss_mib",
                self.peak_rss_bytes.map(|b| b as f64 / 1048576.0),
            ),
        ];
        if self.clients > 0 || self.clients_failed > 0 {
            rows.extend([
                ("clients", Some(self.clients as f64)),
                ("clients_failed", Some(self.clients_failed as f64)),
                ("deliveries_expected", Some(self.expected as f64)),
                ("deliveries_received", Some(self.received as f64)),
                ("lost", Some(self.lost as f64)),
                ("duplicates", Some(self.duplicates as f64)),
                ("out_of_order", Some(self.out_of_order as f64)),
                ("latency_p50_ms", Some(self.p50_us as f64 / 1000.0)),
                ("latency_p99_ms", Some(self.p99_us as f64 / 1000.0)),
                ("latency_max_ms", Some(self.max_us as f64 / 1000.0)),
            ]);
        }
        rows
    }

    /// One table and one JSON line, like the other modes.
    pub fn print(&self, preset: &str) {
        println!();
        println!("{:<28} {:>16}", format!("preset {preset}"), "bridge");
        let mut map = Map::new();
        for (name, value) in self.figures() {
            let cell = match value {
                None => "-".to_string(),
                Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
                Some(v) => format!("{v:.3}"),
            };
            println!("{name:<28} {cell:>16}");
            let json = match value {
                None => Value::Null,
                Some(v) if v.fract() == 0.0 && v.abs() < 9e15 => json!(v as i64),
                Some(v) => json!((v * 1000.0).round() / 1000.0),
            };
            map.insert(name.into(), json);
        }
        println!(
            "{}",
            json!({ "preset": preset, "amqp": Value::Object(map) })
        );
    }
}

/// One `--amqp` run.
pub fn run(plan: &AmqpPlan) -> Result<AmqpReport, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let queue = format!("bench-{}-{}", std::process::id(), now_ns());
    let n = plan.messages;
    let broker_cpu = || plan.broker.and_then(RabbitServer::cpu_seconds);
    rt.block_on(declare(&plan.url, &queue))?;
    let mut report = AmqpReport {
        messages: n,
        ..AmqpReport::default()
    };
    if !plan.live {
        report.published = rt.block_on(publish(&plan.url, &queue, n, plan.size, &broker_cpu))?;
        let p = &report.published;
        eprintln!(
            "amqp: {} of {n} messages confirmed in {:.2} s ({:.0}/s) into durable queue {queue}",
            p.confirmed,
            p.seconds,
            p.confirmed as f64 / p.seconds.max(1e-9)
        );
    }

    let mut config = format!(
        "{}\n[[ingress.amqp]]\nurl = \"{}\"\nqueue = \"{queue}\"\n",
        plan.bridge_config, plan.url
    );
    if let Some(prefetch) = plan.prefetch {
        config.push_str(&format!("prefetch = {prefetch}\n"));
    }
    let spawned_at = Instant::now();
    let starting = spawn_bridge(plan.bridge, &config, plan.server_cpu, 0)?;
    let (ws, pid) = (starting.server.ws, starting.server.pid);
    let stop = AtomicBool::new(false);

    let (samples, server, clients) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| sample(ws, pid, &broker_cpu, n, &stop));
        let outcome = (|| {
            let server = starting.ready()?;
            let mut clients = None;
            if plan.live {
                clients = Some(Clients::open(plan, &server)?);
                report.published =
                    rt.block_on(publish(&plan.url, &queue, n, plan.size, &|| None))?;
            }
            Ok::<_, String>((server, clients))
        })();
        if outcome.is_err() {
            stop.store(true, Relaxed);
        }
        let samples = sampler.join().unwrap_or_default();
        outcome.map(|(server, clients)| (samples, server, clients))
    })?;

    let first = samples.iter().find(|s| s.acked > 0).copied();
    let last = samples.last().copied();
    if let (Some(first), Some(last)) = (first, last) {
        report.acked = last.acked;
        report.rejected = last.rejected;
        report.window_events = last.acked - first.acked;
        report.window_s = last.at.duration_since(first.at).as_secs_f64();
        report.since_start_s = last.at.duration_since(spawned_at).as_secs_f64();
        let delta = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        report.bridge_cpu_s = delta(last.bridge_cpu, first.bridge_cpu);
        report.broker_cpu_s = delta(last.broker_cpu, first.broker_cpu);
    }
    report.peak_rss_bytes = pid.and_then(|p| status_bytes(p, "VmHWM:"));
    if let Some(clients) = clients {
        clients.finish(n, &mut report);
    }
    drop(server);
    if plan.broker.is_none() && report.clean() {
        // Someone else's broker: leave no queue behind.
        let _ = rt.block_on(delete(&plan.url, &queue));
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(report)
}

async fn connect(url: &str) -> Result<Connection, String> {
    Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name("push-bridge-bench".into()),
    )
    .await
    .map_err(|e| format!("amqp: cannot connect: {e}"))
}

/// Declares the durable queue the bridge consumes (Publisher's `swp_websocket` is one).
async fn declare(url: &str, queue: &str) -> Result<(), String> {
    let connection = connect(url).await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| format!("amqp channel: {e}"))?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), durable, FieldTable::default())
        .await
        .map_err(|e| format!("amqp: cannot declare {queue}: {e}"))?;
    let _ = connection.close(200, "declared".into()).await;
    Ok(())
}

async fn delete(url: &str, queue: &str) -> Result<(), String> {
    let connection = connect(url).await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| format!("amqp channel: {e}"))?;
    channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .map_err(|e| format!("amqp: cannot delete {queue}: {e}"))?;
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

/// Publishes `n` persistent messages to `queue` (through the default exchange) with
/// publisher confirms; returns once every one is confirmed (or failed). Message `seq`
/// is `{"topic":"bench","data":{"ts":<ns>,"seq":seq,"pad":"xx…"}}`, its data about
/// `size` bytes.
async fn publish(
    url: &str,
    queue: &str,
    n: u64,
    size: usize,
    broker_cpu: &(dyn Fn() -> Option<f64> + Sync),
) -> Result<Published, String> {
    let connection = connect(url).await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| format!("amqp channel: {e}"))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| format!("amqp confirm.select: {e}"))?;
    let pad = Arc::new("x".repeat(size.saturating_sub(60).max(1)));
    let cpu_before = broker_cpu();
    let started = Instant::now();
    let mut out = Published::default();
    // Publishes pipelined (each resolves once its frames are written) and in order;
    // their confirms awaited oldest first, at most CONFIRM_WINDOW outstanding.
    let mut sends = futures_util::stream::iter(0..n)
        .map(|seq| {
            let channel = channel.clone();
            let pad = Arc::clone(&pad);
            let queue = queue.to_string();
            async move {
                let body = format!(
                    r#"{{"topic":"bench","data":{{"ts":{},"seq":{seq},"pad":"{pad}"}}}}"#,
                    now_ns()
                );
                channel
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        body.as_bytes(),
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await
            }
        })
        .buffered(PUBLISH_CONCURRENCY);
    let mut pending = VecDeque::with_capacity(CONFIRM_WINDOW);
    let settle =
        |out: &mut Published, confirmed: Result<lapin::Confirmation, lapin::Error>| match confirmed
        {
            Ok(c) if c.is_ack() => out.confirmed += 1,
            Ok(_) => out.nacked += 1,
            Err(e) => {
                out.errors += 1;
                if out.errors < 5 {
                    eprintln!("amqp: publish not confirmed: {e}");
                }
            }
        };
    while let Some(sent) = sends.next().await {
        match sent {
            Ok(confirm) => pending.push_back(confirm),
            Err(e) => {
                out.errors += 1;
                if out.errors < 5 {
                    eprintln!("amqp: publish failed: {e}");
                }
                if !channel.status().connected() {
                    break;
                }
            }
        }
        if pending.len() >= CONFIRM_WINDOW {
            if let Some(confirm) = pending.pop_front() {
                settle(&mut out, confirm.await);
            }
        }
    }
    drop(sends);
    while let Some(confirm) = pending.pop_front() {
        settle(&mut out, confirm.await);
    }
    out.seconds = started.elapsed().as_secs_f64();
    out.broker_cpu_s = match (cpu_before, broker_cpu()) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    let _ = connection.close(200, "published".into()).await;
    Ok(out)
}

/// Reads the bridge's `/metrics` every [`SAMPLE_EVERY`] until `target` messages are
/// acknowledged, 10 s pass without progress after the first (60 s before it), or
/// `stop`.
fn sample(
    ws: SocketAddr,
    pid: Option<u32>,
    broker_cpu: &(dyn Fn() -> Option<f64> + Sync),
    target: u64,
    stop: &AtomicBool,
) -> Vec<Sample> {
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut progress = Instant::now();
    while !stop.load(Relaxed) {
        let at = Instant::now();
        if let Some(text) = http_get(ws, "/metrics") {
            let sample = Sample {
                at,
                acked: metric_sum(&text, "push_bridge_amqp_acked_total"),
                rejected: metric_sum(&text, "push_bridge_ingress_rejected_total"),
                bridge_cpu: pid.and_then(cpu_seconds),
                broker_cpu: broker_cpu(),
            };
            let before = samples.last().map_or(0, |s| s.acked);
            if sample.acked != before {
                progress = at;
            }
            // Idle readings before the first acknowledgement are not kept.
            if sample.acked > 0 || samples.is_empty() {
                samples.push(sample);
            } else if let Some(only) = samples.last_mut() {
                *only = sample;
            }
            if sample.acked >= target {
                break;
            }
        }
        let stalled = if samples.last().is_some_and(|s| s.acked > 0) {
            progress.elapsed() > Duration::from_secs(10)
        } else {
            started.elapsed() > Duration::from_secs(60)
        };
        if stalled {
            eprintln!("amqp: no acknowledgement progress, stopping the measurement");
            break;
        }
        std::thread::sleep(SAMPLE_EVERY.saturating_sub(at.elapsed()));
    }
    // Only the first reading with an acknowledgement and the last one matter.
    samples.retain(|s| s.acked > 0);
    samples
}

/// The sum of every series of `name` in a Prometheus text exposition.
fn metric_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// `--amqp-live --clients N`: WebSocket clients on `bench`, as the other modes'.
struct Clients {
    rt: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl Clients {
    fn open(plan: &AmqpPlan, server: &crate::server::Server) -> Result<Clients, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(plan.client_threads.max(1))
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let shared = Arc::new(Shared {
            hist: Histogram::new(),
            counters: Counters::default(),
            per_server: vec![Default::default()],
        });
        let (stop, stop_rx) = watch::channel(false);
        let target = Target {
            ws: server.ws,
            token: server.token.clone(),
            floor: false,
        };
        if plan.clients > 0 {
            rt.block_on(clients::open_all(
                &[target],
                plan.clients,
                |_| "bench".to_string(),
                shared.clone(),
                stop_rx,
            ));
            eprintln!(
                "amqp: {} clients subscribed to bench ({} failed)",
                shared.counters.ready.load(Relaxed),
                shared.counters.failed.load(Relaxed)
            );
        }
        Ok(Clients { rt, shared, stop })
    }

    /// Waits until every client has every event (or 3 s pass without progress).
    fn finish(self, events: u64, report: &mut AmqpReport) {
        let c = &self.shared.counters;
        let ready = c.ready.load(Relaxed);
        let expected = events * ready;
        let mut last = (c.received.load(Relaxed), Instant::now());
        while c.received.load(Relaxed) < expected {
            let received = c.received.load(Relaxed);
            if received != last.0 {
                last = (received, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(3) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.stop.send(true);
        self.rt.shutdown_timeout(Duration::from_secs(2));
        let h = &self.shared.hist;
        report.clients = ready;
        report.clients_failed = c.failed.load(Relaxed);
        report.expected = expected;
        report.received = c.received.load(Relaxed);
        report.lost = expected.saturating_sub(report.received);
        report.duplicates = c.duplicates.load(Relaxed);
        report.out_of_order = c.out_of_order.load(Relaxed);
        report.p50_us = h.quantile(0.5);
        report.p99_us = h.quantile(0.99);
        report.max_us = h.max();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_series_are_summed_by_exact_name() {
        let text = "# TYPE push_bridge_amqp_acked_total counter\n\
            push_bridge_amqp_acked_total{source=\"amqp://127.0.0.1:1/%2f queue a\"} 150\n\
            push_bridge_amqp_acked_total{source=\"b\"} 50\n\
            push_bridge_amqp_acked_total_other 7\n\
            push_bridge_ingress_rejected_total{reason=\"duplicate\"} 2\n";
        assert_eq!(metric_sum(text, "push_bridge_amqp_acked_total"), 200);
        assert_eq!(metric_sum(text, "push_bridge_ingress_rejected_total"), 2);
        assert_eq!(metric_sum(text, "push_bridge_nothing"), 0);
    }
}
