//! One benchmark run against one server (or a cluster's nodes): connect and subscribe
//! the clients, measure idle RSS, publish the preset's events through ZeroMQ, drain,
//! and collect the figures (with Redis's, for a cluster).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use push_bridge_publisher::Publisher;
use serde::Serialize;
use tokio::sync::watch;

use crate::clients::{self, now_ns, Shared, Target};
use crate::redis::{RedisDelta, RedisServer};
use crate::report::{NodeFigures, Report};
use crate::server::{cpu_seconds, status_bytes, Server};
use crate::stats::{Counters, Histogram};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// Broadcast: N clients on one topic, R events/s.
    W1,
    /// Max sustained fan-out: publish as fast as delivery keeps up (window-limited).
    W2,
    /// Targeted: client i on `article:<i>`, R events/s to random ids.
    W3,
    /// Idle: N subscribed connections, no events.
    W4,
}

/// The sizes of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub preset: Preset,
    pub clients: usize,
    /// Events per second (W1, W3).
    pub rate: u64,
    /// Upper bound on events published.
    pub max_events: u64,
    pub duration: Duration,
    /// Size of each event's data JSON.
    pub size: usize,
    /// W2: events allowed in flight (published but not yet delivered to everyone).
    pub window: u64,
    pub client_threads: usize,
}

#[derive(Serialize)]
struct Data<'a> {
    ts: u64,
    seq: u64,
    pad: &'a str,
}

/// A tiny xorshift generator: W3's random targets need no crypto, nor a dependency.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Sums a per-server figure; `None` when any server lacks it.
fn sum<T: std::iter::Sum<T>>(values: impl Iterator<Item = Option<T>>) -> Option<T> {
    values.sum()
}

/// One run: the clients spread over `servers` (client `i` on server `i % n`), the
/// publisher feeding the first. With `redis` (a cluster), its counters and CPU are
/// read over the same window as the servers' CPU.
pub fn run(
    plan: &Plan,
    servers: &[Server],
    redis: Option<&RedisServer>,
    label: &'static str,
) -> Result<Report, String> {
    let server = servers.first().ok_or("no server to run against")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plan.client_threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let shared = Arc::new(Shared {
        hist: Histogram::new(),
        counters: Counters::default(),
        per_server: servers.iter().map(|_| Default::default()).collect(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let targets: Vec<Target> = servers
        .iter()
        .map(|s| Target {
            ws: s.ws,
            token: s.token.clone(),
            floor: label == "floor",
        })
        .collect();
    let targeted = plan.preset == Preset::W3;
    let topic = move |i: usize| {
        if targeted {
            format!("article:{i}")
        } else {
            "bench".to_string()
        }
    };

    let rss = || {
        sum(servers
            .iter()
            .map(|s| s.pid.and_then(|p| status_bytes(p, "VmRSS:"))))
    };
    let rss_before = rss();
    let connect_started = Instant::now();
    rt.block_on(clients::open_all(
        &targets,
        plan.clients,
        topic,
        shared.clone(),
        stop_rx,
    ));
    let c = &shared.counters;
    let ready = c.ready.load(Relaxed);
    eprintln!(
        "{label}: {ready} clients subscribed in {:.1} s ({} failed)",
        connect_started.elapsed().as_secs_f64(),
        c.failed.load(Relaxed)
    );
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = rss();
    let rss_per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) if ready > 0 => Some((a as f64 - b as f64) / ready as f64),
        _ => None,
    };

    let publisher = Publisher::builder()
        .send_hwm(100_000)
        .connect(&server.zmq)
        .map_err(|e| format!("publisher: {e}"))?;
    publisher
        .wait_connected(Duration::from_secs(10))
        .map_err(|e| format!("publisher: {e}"))?;
    let pad = "x".repeat(plan.size.saturating_sub(60).max(1));
    let cpu = || -> Vec<Option<f64>> {
        servers
            .iter()
            .map(|s| s.pid.and_then(cpu_seconds))
            .collect()
    };
    let cpu_before = cpu();
    let redis_before = redis.map(RedisServer::snapshot).transpose()?;
    let started = Instant::now();
    let mut published = 0u64;
    let mut publish_errors = 0u64;
    let mut seqs = vec![0u64; if targeted { plan.clients } else { 1 }];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut last_progress = (0u64, Instant::now());
    let mut topic_buf = String::new();
    if plan.preset != Preset::W4 && ready > 0 {
        while published < plan.max_events && started.elapsed() < plan.duration {
            match plan.preset {
                Preset::W1 | Preset::W3 => {
                    let due =
                        started + Duration::from_secs_f64(published as f64 / plan.rate as f64);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                }
                Preset::W2 => {
                    let received = c.received.load(Relaxed);
                    if received != last_progress.0 {
                        last_progress = (received, Instant::now());
                    } else if last_progress.1.elapsed() > Duration::from_secs(2) {
                        eprintln!("{label}: no delivery progress for 2 s, stopping early");
                        break;
                    }
                    if published * ready > received + plan.window * ready {
                        std::thread::sleep(Duration::from_micros(50));
                        continue;
                    }
                }
                Preset::W4 => {}
            }
            let slot = if targeted {
                (rng.next() % plan.clients as u64) as usize
            } else {
                0
            };
            topic_buf.clear();
            if targeted {
                topic_buf.push_str("article:");
                topic_buf.push_str(&slot.to_string());
            } else {
                topic_buf.push_str("bench");
            }
            let data = Data {
                ts: now_ns(),
                seq: seqs[slot],
                pad: &pad,
            };
            match publisher.publish(&topic_buf, &data) {
                Ok(_) => {
                    seqs[slot] += 1;
                    published += 1;
                }
                Err(e) => {
                    publish_errors += 1;
                    if publish_errors < 5 {
                        eprintln!("{label}: publish failed: {e}");
                    }
                }
            }
        }
    } else if plan.preset == Preset::W4 {
        std::thread::sleep(plan.duration.min(Duration::from_secs(2)));
    }
    let publish_s = started.elapsed().as_secs_f64();
    let expected = if targeted {
        published
    } else {
        published * ready
    };
    // Drain: until everything arrived, or 3 s without progress.
    let mut last = (c.received.load(Relaxed), Instant::now());
    loop {
        let received = c.received.load(Relaxed);
        if received >= expected {
            last = (received, Instant::now());
            break;
        }
        if received != last.0 {
            last = (received, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let active_s = last.1.duration_since(started).as_secs_f64().max(publish_s);
    let cpu_after = cpu();
    let redis_after = redis.map(RedisServer::snapshot).transpose()?;
    let peaks: Vec<Option<u64>> = servers
        .iter()
        .map(|s| s.pid.and_then(|p| status_bytes(p, "VmHWM:")))
        .collect();
    let _ = stop_tx.send(true);
    drop(publisher);
    rt.shutdown_timeout(Duration::from_secs(2));

    let received = c.received.load(Relaxed);
    let cpu_used: Vec<Option<f64>> = cpu_before
        .iter()
        .zip(&cpu_after)
        .map(|(b, a)| Some((*a)? - (*b)?))
        .collect();
    let cpu_s = sum(cpu_used.iter().copied());
    let redis = match (redis_before, redis_after) {
        (Some(before), Some(after)) => Some(RedisDelta::between(&before, &after)),
        _ => None,
    };
    // Per node only in a cluster (one node's figures are the run's own otherwise).
    let nodes = if redis.is_some() {
        (0..servers.len())
            .map(|k| NodeFigures {
                clients: shared.per_server[k].ready.load(Relaxed),
                received: shared.per_server[k].received.load(Relaxed),
                cpu_s: cpu_used[k],
                peak_rss_bytes: peaks[k],
            })
            .collect()
    } else {
        Vec::new()
    };
    let h = &shared.hist;
    Ok(Report {
        server: label,
        clients: ready,
        clients_failed: c.failed.load(Relaxed),
        events: published,
        publish_errors,
        expected,
        received,
        lost: expected.saturating_sub(received),
        duplicates: c.duplicates.load(Relaxed),
        out_of_order: c.out_of_order.load(Relaxed),
        deliveries_per_s: if active_s > 0.0 {
            received as f64 / active_s
        } else {
            0.0
        },
        p50_us: h.quantile(0.5),
        p90_us: h.quantile(0.9),
        p99_us: h.quantile(0.99),
        p999_us: h.quantile(0.999),
        max_us: h.max(),
        cpu_us_per_delivery: cpu_s
            .filter(|_| received > 0)
            .map(|s| s * 1e6 / received as f64),
        cpu_s,
        peak_rss_bytes: peaks.iter().copied().max().flatten(),
        rss_per_conn_bytes: rss_per_conn,
        nodes,
        redis,
    })
}
