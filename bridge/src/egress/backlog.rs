//! Falling behind made visible (docs/operations.md "Falling behind"): once a second,
//! one task looks at every open connection's queue, sets the backlog metrics and lets
//! [`Watch`] decide whether the bridge as a whole is behind; it warns while it
//! is (at most every 30 s) and says when it has caught up.
//!
//! The hot path pays nothing for it: the queues already count their event frames and
//! stamp each with the time the ingress received its event, for the slow-consumer
//! limit and the latency histogram. Sampling costs one short lock per connection per
//! second, taken on a runtime thread, never on the ingress thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::connection::Connection;
use super::Egress;
use crate::ops::behind::{Report, Rules, Sample, Watch};
use crate::ops::metrics;

/// How often the queues are sampled ([`Rules`] counts in samples).
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Runs until shutdown.
pub async fn run(egress: Arc<Egress>) {
    let mut watch = Watch::new(Rules::default());
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + SAMPLE_EVERY, SAMPLE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while egress
        .shutdown
        .run_until_cancelled(ticks.tick())
        .await
        .is_some()
    {
        let now = Instant::now();
        let sample = sample(&egress.live.all(), watch.rules().lag, now);
        let report = watch.observe(sample, now);
        metrics::backlog(&sample, watch.is_behind());
        if let Some(report) = report {
            log(report, watch.rules());
        }
    }
}

/// Looks at every connection's queue at `now`.
pub fn sample(connections: &[Arc<Connection>], lag: Duration, now: Instant) -> Sample {
    let mut sample = Sample::default();
    for connection in connections {
        let (frames, oldest) = connection.backlog();
        sample.queued_frames += frames as u64;
        if connection.socket_writer().is_none() {
            continue; // SSE: counted in the frames, its lag unseen
        }
        sample.connections += 1;
        if let Some(oldest) = oldest {
            let waited = now.saturating_duration_since(oldest);
            sample.oldest = sample.oldest.max(waited);
            if waited > lag {
                sample.lagging += 1;
            }
        }
    }
    sample
}

/// The warning says what the measure is and what to do; both lines are structured too.
fn log(report: Report, rules: &Rules) {
    let lag = humantime::format_duration(rules.lag);
    match report {
        Report::Behind { sample, for_ } => {
            let Sample {
                connections,
                lagging,
                queued_frames,
                oldest,
            } = sample;
            let behind_for = humantime::format_duration(whole_seconds(for_));
            let oldest_s = format!("{:.1}", oldest.as_secs_f64());
            tracing::warn!(
                lagging,
                connections,
                queued_frames,
                oldest_s,
                %behind_for,
                "the bridge is falling behind: {lagging} of {connections} WebSocket \
                 connections have events waiting more than {lag} to be written \
                 ({queued_frames} event frames queued in all); clients get events late \
                 and memory grows. Give the bridge more CPU cores, spread the clients \
                 over more nodes behind a load balancer (docs/scaling.md), or publish \
                 fewer events"
            );
        }
        Report::CaughtUp { sample, lasted } => {
            let lasted = humantime::format_duration(whole_seconds(lasted));
            tracing::info!(
                lagging = sample.lagging,
                connections = sample.connections,
                queued_frames = sample.queued_frames,
                %lasted,
                "the bridge has caught up: events wait less than {lag} again (it was behind for {lasted})"
            );
        }
    }
}

fn whole_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::writer::{RawStream, SocketWriter};
    use crate::hub::history;
    use crate::protocol::Protocol;
    use bytes::Bytes;

    fn hub() -> crate::egress::Hub {
        crate::egress::Hub::new(history::Limits {
            size: 10,
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(60),
        })
    }

    /// A WebSocket connection whose writer is corked (nothing is written), with one
    /// event frame queued per entry of `received`, and the peer end to keep it open.
    async fn socket(
        hub: &crate::egress::Hub,
        received: &[Instant],
    ) -> (Arc<Connection>, std::os::unix::net::UnixStream) {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let stream = tokio::net::UnixStream::from_std(ours).unwrap();
        let writer = Arc::new(SocketWriter::new(RawStream::Unix(stream)));
        writer.cork();
        for &at in received {
            writer
                .queue_event(Bytes::from_static(b"e"), 0, at, 100)
                .unwrap();
        }
        let connection = Connection::socket(hub, Protocol::Native, writer, 100);
        (Arc::new(connection), theirs)
    }

    #[tokio::test]
    async fn a_sample_counts_the_frames_of_all_and_the_lag_of_websockets() {
        let hub = hub();
        let now = Instant::now() + Duration::from_secs(10);
        let late = now - Duration::from_secs(3);
        let fresh = now - Duration::from_millis(100);
        let (a, _pa) = socket(&hub, &[late, fresh]).await;
        let (b, _pb) = socket(&hub, &[fresh]).await;
        let (idle, _pi) = socket(&hub, &[]).await;
        let (sse, _receiver) = Connection::stream(&hub, 8);
        let sse = Arc::new(sse);
        let event = Arc::new(crate::event::Event {
            id: "1".into(),
            topic: crate::topic::Topic::parse("t").unwrap(),
            data: "1".into(),
            received: late,
        });
        let mut frames = crate::hub::EventFrames::new(&event);
        let mut tally = metrics::Tally::default();
        use crate::hub::Outlet;
        sse.offer(
            &crate::topic::Pattern::everything(),
            &mut frames,
            &mut tally,
        );
        let sample = sample(&[a, b, idle, sse], Duration::from_secs(1), now);
        assert_eq!(
            sample,
            Sample {
                connections: 3,
                lagging: 1,
                queued_frames: 4,
                oldest: Duration::from_secs(3),
            }
        );
    }

    /// What a sample costs per connection (docs/decisions.md quotes it): run with
    /// `--ignored --nocapture`.
    #[tokio::test]
    #[ignore]
    async fn cost_of_a_sample_per_connection() {
        const CONNECTIONS: usize = 2000;
        let hub = hub();
        let at = Instant::now();
        let mut open = Vec::new();
        for i in 0..CONNECTIONS {
            let queued: &[Instant] = if i % 2 == 0 { &[at, at] } else { &[] };
            open.push(socket(&hub, queued).await);
        }
        let live = crate::egress::live::Live::default();
        for (connection, _) in &open {
            live.insert(
                connection.id(),
                connection,
                crate::auth::Credential::Anonymous,
            );
        }
        let rounds = 200;
        let started = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(sample(&live.all(), Duration::from_secs(1), Instant::now()));
        }
        let per = started.elapsed() / (rounds * CONNECTIONS as u32);
        println!("one sample costs {per:?} per connection");
    }
}
