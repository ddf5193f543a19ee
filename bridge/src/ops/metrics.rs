//! Metrics (docs/operations.md "Monitor"): one place that names every metric, so the
//! Prometheus text at `/metrics` and the docs agree, and call sites stay one line.
//!
//! Built on the `metrics` facade with the Prometheus exporter's recorder (no HTTP
//! listener of its own: the bridge serves `/metrics` on its main listener).

use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::protocol::Protocol;

pub const CONNECTIONS: &str = "push_bridge_connections";
pub const CONNECTIONS_TOTAL: &str = "push_bridge_connections_total";
pub const SUBSCRIPTIONS: &str = "push_bridge_subscriptions";
pub const INGRESS_MESSAGES_TOTAL: &str = "push_bridge_ingress_messages_total";
pub const INGRESS_REJECTED_TOTAL: &str = "push_bridge_ingress_rejected_total";
pub const EVENTS_QUEUED_TOTAL: &str = "push_bridge_events_queued_total";
pub const EVENTS_DELIVERED_TOTAL: &str = "push_bridge_events_delivered_total";
pub const SLOW_CONSUMER_CLOSES_TOTAL: &str = "push_bridge_slow_consumer_closes_total";
pub const AUTH_FAILURES_TOTAL: &str = "push_bridge_auth_failures_total";
pub const REFUSED_CLIENT_ACTIONS_TOTAL: &str = "push_bridge_refused_client_actions_total";
pub const DELIVERY_LATENCY_SECONDS: &str = "push_bridge_delivery_latency_seconds";
pub const BUILD_INFO: &str = "push_bridge_build_info";
pub const HISTORY_EVENTS: &str = "push_bridge_history_events";
pub const INGRESS_LAST_MESSAGE_AGE: &str = "push_bridge_ingress_last_message_age_seconds";
pub const BEHIND: &str = "push_bridge_behind";
pub const QUEUED_FRAMES: &str = "push_bridge_queued_frames";
pub const LAGGING_CONNECTIONS: &str = "push_bridge_lagging_connections";
pub const CLUSTER_APPENDED_TOTAL: &str = "push_bridge_cluster_appended_total";
pub const CLUSTER_DUPLICATES_TOTAL: &str = "push_bridge_cluster_duplicates_total";
pub const CLUSTER_LAG_SECONDS: &str = "push_bridge_cluster_lag_seconds";
pub const CLUSTER_BUFFERED_EVENTS: &str = "push_bridge_cluster_buffered_events";
pub const CLUSTER_LOG_UP: &str = "push_bridge_cluster_log_up";
pub const CLUSTER_RESUME_TOTAL: &str = "push_bridge_cluster_resume_total";
pub const CLUSTER_UNREACHABLE_SECONDS_TOTAL: &str = "push_bridge_cluster_unreachable_seconds_total";
pub const AMQP_UP: &str = "push_bridge_amqp_up";
pub const AMQP_CONNECTS_TOTAL: &str = "push_bridge_amqp_connects_total";
pub const AMQP_ACKED_TOTAL: &str = "push_bridge_amqp_acked_total";

/// Installs the process-wide recorder and returns the handle that renders it. Call
/// once; [`PrometheusHandle::run_upkeep`] must then run periodically.
pub fn install() -> Result<PrometheusHandle, String> {
    let buckets = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(DELIVERY_LATENCY_SECONDS.to_string()),
            &buckets,
        )
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    describe_all();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    counter!(SLOW_CONSUMER_CLOSES_TOTAL).absolute(0);
    gauge!(SUBSCRIPTIONS).set(0.0);
    backlog(&crate::ops::behind::Sample::default(), false);
    for protocol in Protocol::ALL {
        gauge!(CONNECTIONS, "protocol" => protocol.label()).set(0.0);
    }
    Ok(handle)
}

/// The `# HELP` text of every metric, as Prometheus shows it.
pub const HELP: [(&str, &str); 17] = [
    (CONNECTIONS, "Open client connections, by protocol."),
    (CONNECTIONS_TOTAL, "Client connections accepted since start, by protocol."),
    (SUBSCRIPTIONS, "Subscriptions (pattern per connection) held now."),
    (INGRESS_MESSAGES_TOTAL, "Ingress messages received, by socket (a ZeroMQ endpoint or an AMQP source)."),
    (INGRESS_REJECTED_TOTAL, "Ingress messages dropped, by reason (bad JSON, bad topic, too large, duplicate id, ...)."),
    (EVENTS_QUEUED_TOTAL, "Event frames handed to client connections, by protocol."),
    (EVENTS_DELIVERED_TOTAL, "Event frames written to client sockets, by protocol."),
    (SLOW_CONSUMER_CLOSES_TOTAL, "Connections closed with 4008 because their send queue overflowed."),
    (AUTH_FAILURES_TOTAL, "Refused connection attempts, by reason."),
    (REFUSED_CLIENT_ACTIONS_TOTAL, "Client messages refused (publish, call, forbidden subscribe, bad frames), by protocol and action."),
    (DELIVERY_LATENCY_SECONDS, "Seconds from ingress receipt to the socket write, sampled once per write."),
    (BUILD_INFO, "Always 1; the version label names the running build."),
    (HISTORY_EVENTS, "Events held in the resume history."),
    (INGRESS_LAST_MESSAGE_AGE, "Seconds since the ingress last accepted a message."),
    (BEHIND, "1 while the bridge falls behind: many connections at once have events waiting over a second (more cores, more nodes or fewer events needed), else 0."),
    (QUEUED_FRAMES, "Event frames queued for client connections and not yet written, sampled every second."),
    (LAGGING_CONNECTIONS, "WebSocket connections whose oldest queued event frame has waited over a second, sampled every second."),
];

/// The `# HELP` text of the metrics only a cluster node (`[cluster]`) has.
pub const CLUSTER_HELP: [(&str, &str); 7] = [
    (
        CLUSTER_APPENDED_TOTAL,
        "Events this node appended to the cluster log.",
    ),
    (
        CLUSTER_DUPLICATES_TOTAL,
        "Events this node did not append: their publisher id was already in the log.",
    ),
    (
        CLUSTER_LAG_SECONDS,
        "Seconds between an event's append to the cluster log and this node routing it.",
    ),
    (
        CLUSTER_BUFFERED_EVENTS,
        "Accepted events waiting to be appended to the cluster log.",
    ),
    (
        CLUSTER_LOG_UP,
        "1 when this node can append to and read the cluster log, else 0.",
    ),
    (
        CLUSTER_RESUME_TOTAL,
        "Resumes on this node, by result: recovered (replayed) or reset (started over).",
    ),
    (
        CLUSTER_UNREACHABLE_SECONDS_TOTAL,
        "Seconds this node could not reach the cluster log.",
    ),
];

/// The `# HELP` text of the metrics of the AMQP sources (`[[ingress.amqp]]`).
pub const AMQP_HELP: [(&str, &str); 3] = [
    (
        AMQP_UP,
        "1 while this AMQP source is connected and consuming, else 0.",
    ),
    (
        AMQP_CONNECTS_TOTAL,
        "Times this AMQP source connected and started consuming.",
    ),
    (
        AMQP_ACKED_TOTAL,
        "AMQP messages acknowledged: accepted into the log, or rejected and counted.",
    ),
];

fn describe_all() {
    for (name, help) in HELP.into_iter().chain(CLUSTER_HELP).chain(AMQP_HELP) {
        if name == DELIVERY_LATENCY_SECONDS {
            metrics::describe_histogram!(name, metrics::Unit::Seconds, help);
        } else if name.ends_with("_total") {
            metrics::describe_counter!(name, help);
        } else {
            metrics::describe_gauge!(name, help);
        }
    }
}

pub fn connection_opened(protocol: Protocol) {
    gauge!(CONNECTIONS, "protocol" => protocol.label()).increment(1.0);
    counter!(CONNECTIONS_TOTAL, "protocol" => protocol.label()).increment(1);
}

pub fn connection_closed(protocol: Protocol) {
    gauge!(CONNECTIONS, "protocol" => protocol.label()).decrement(1.0);
}

pub fn subscriptions(count: usize) {
    gauge!(SUBSCRIPTIONS).set(count as f64);
}

/// Frames put on session queues for one event.
pub fn events_queued(protocol: Protocol, frames: u64) {
    if frames > 0 {
        counter!(EVENTS_QUEUED_TOTAL, "protocol" => protocol.label()).increment(frames);
    }
}

/// Frames written to one session's socket in one write, and the age of the oldest
/// (ingress receipt → written): latency is sampled once per write, not per frame, so
/// a burst of a million deliveries costs the histogram thousands of samples.
pub fn events_delivered(protocol: Protocol, frames: u64, oldest_age: Duration) {
    counter!(EVENTS_DELIVERED_TOTAL, "protocol" => protocol.label()).increment(frames);
    histogram!(DELIVERY_LATENCY_SECONDS).record(oldest_age.as_secs_f64());
}

/// A publisher retry: an id still in the history.
pub fn duplicate_dropped() {
    counter!(INGRESS_REJECTED_TOTAL, "reason" => "duplicate").increment(1);
}

/// Set at each scrape: how long since the ingress accepted a message.
pub fn last_message_age(age: Duration) {
    gauge!(INGRESS_LAST_MESSAGE_AGE).set(age.as_secs_f64());
}

/// The client queues, as sampled (egress::backlog), and whether the bridge is behind.
pub fn backlog(sample: &crate::ops::behind::Sample, behind: bool) {
    gauge!(QUEUED_FRAMES).set(sample.queued_frames as f64);
    gauge!(LAGGING_CONNECTIONS).set(sample.lagging as f64);
    gauge!(BEHIND).set(if behind { 1.0 } else { 0.0 });
}

pub fn history_events(count: usize) {
    gauge!(HISTORY_EVENTS).set(count as f64);
}

pub fn slow_consumer_close() {
    counter!(SLOW_CONSUMER_CLOSES_TOTAL).increment(1);
}

pub fn auth_failure(reason: &'static str) {
    counter!(AUTH_FAILURES_TOTAL, "reason" => reason).increment(1);
}

pub fn refused_client_action(protocol: Protocol, action: &'static str) {
    counter!(REFUSED_CLIENT_ACTIONS_TOTAL, "protocol" => protocol.label(), "action" => action)
        .increment(1);
}

/// Event frames counted per protocol while routing one event or writing one burst out,
/// recorded at the end: one metric update per protocol, not one per session.
#[derive(Debug, Default)]
pub struct Tally {
    queued: [u64; Protocol::ALL.len()],
    /// Frames written, and the oldest one's arrival at the ingress.
    delivered: [(u64, Option<Instant>); Protocol::ALL.len()],
}

impl Tally {
    /// Frames put on a session's queue.
    pub fn queued(&mut self, protocol: Protocol, frames: u64) {
        self.queued[slot(protocol)] += frames;
    }

    /// Frames written to a session's socket (or stream); `oldest`: when the ingress
    /// received the oldest of them.
    pub fn delivered(&mut self, protocol: Protocol, frames: u64, oldest: Option<Instant>) {
        let (total, first) = &mut self.delivered[slot(protocol)];
        *total += frames;
        *first = match (*first, oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Updates the metrics with what was counted.
    pub fn record(&self) {
        for (i, protocol) in Protocol::ALL.into_iter().enumerate() {
            events_queued(protocol, self.queued[i]);
            if let (frames, Some(oldest)) = self.delivered[i] {
                events_delivered(protocol, frames, oldest.elapsed());
            }
        }
    }
}

/// Where `protocol` sits in [`Protocol::ALL`].
fn slot(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Wamp1 => 0,
        Protocol::Native => 1,
        Protocol::Wamp2 => 2,
        Protocol::Sse => 3,
    }
}

pub fn cluster_appended(events: u64) {
    counter!(CLUSTER_APPENDED_TOTAL).increment(events);
}

pub fn cluster_duplicates(events: u64) {
    counter!(CLUSTER_DUPLICATES_TOTAL).increment(events);
}

pub fn cluster_lag(lag: Duration) {
    gauge!(CLUSTER_LAG_SECONDS).set(lag.as_secs_f64());
}

pub fn cluster_buffered(events: usize) {
    gauge!(CLUSTER_BUFFERED_EVENTS).set(events as f64);
}

/// Also makes the cluster's counters appear at 0 from the start.
pub fn cluster_log_up(up: bool) {
    gauge!(CLUSTER_LOG_UP).set(if up { 1.0 } else { 0.0 });
    counter!(CLUSTER_APPENDED_TOTAL).increment(0);
    counter!(CLUSTER_DUPLICATES_TOTAL).increment(0);
    counter!(CLUSTER_UNREACHABLE_SECONDS_TOTAL).increment(0);
    for result in ["recovered", "reset"] {
        counter!(CLUSTER_RESUME_TOTAL, "result" => result).increment(0);
    }
}

pub fn cluster_resume(recovered: bool) {
    let result = if recovered { "recovered" } else { "reset" };
    counter!(CLUSTER_RESUME_TOTAL, "result" => result).increment(1);
}

/// Whole seconds are counted as they pass; the remainder is carried to the next call.
pub fn cluster_unreachable(time: Duration) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CARRIED_MS: AtomicU64 = AtomicU64::new(0);
    let ms =
        CARRIED_MS.fetch_add(time.as_millis() as u64, Ordering::Relaxed) + time.as_millis() as u64;
    let seconds = ms / 1000;
    if seconds > 0 {
        CARRIED_MS.fetch_sub(seconds * 1000, Ordering::Relaxed);
        counter!(CLUSTER_UNREACHABLE_SECONDS_TOTAL).increment(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_has_its_own_tally_slot() {
        for (i, protocol) in Protocol::ALL.into_iter().enumerate() {
            assert_eq!(slot(protocol), i, "{protocol:?}");
        }
    }
}
