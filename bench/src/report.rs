//! One run's figures, printed as one table and one JSON line; with a floor run beside
//! it, each figure gets the bridge/floor ratio. A cluster run adds Redis's figures per
//! event, each node's, and Redis's calls per command.

use serde_json::{json, Map, Value};

use crate::redis::RedisDelta;

/// One cluster node's share of a run.
#[derive(Debug, Clone, Default)]
pub struct NodeFigures {
    pub clients: u64,
    /// Distinct events its clients received.
    pub received: u64,
    pub cpu_s: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
}

/// The figures of one run against one server.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub server: &'static str,
    pub clients: u64,
    pub clients_failed: u64,
    pub events: u64,
    pub publish_errors: u64,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub deliveries_per_s: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub cpu_us_per_delivery: Option<f64>,
    pub cpu_s: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    pub rss_per_conn_bytes: Option<f64>,
    /// A cluster's nodes (empty for a single server).
    pub nodes: Vec<NodeFigures>,
    /// What Redis did over the measured window (a cluster run).
    pub redis: Option<RedisDelta>,
}

impl Report {
    /// (name, value) pairs in table order.
    fn figures(&self) -> Vec<(String, Option<f64>)> {
        let mut rows = vec![
            ("clients", Some(self.clients as f64)),
            ("clients_failed", Some(self.clients_failed as f64)),
            ("events", Some(self.events as f64)),
            ("publish_errors", Some(self.publish_errors as f64)),
            ("deliveries_expected", Some(self.expected as f64)),
            ("deliveries_received", Some(self.received as f64)),
            ("lost", Some(self.lost as f64)),
            ("duplicates", Some(self.duplicates as f64)),
            ("out_of_order", Some(self.out_of_order as f64)),
            ("deliveries_per_s", Some(self.deliveries_per_s)),
            ("latency_p50_ms", Some(self.p50_us as f64 / 1000.0)),
            ("latency_p90_ms", Some(self.p90_us as f64 / 1000.0)),
            ("latency_p99_ms", Some(self.p99_us as f64 / 1000.0)),
            ("latency_p99_9_ms", Some(self.p999_us as f64 / 1000.0)),
            ("latency_max_ms", Some(self.max_us as f64 / 1000.0)),
            ("server_cpu_s", self.cpu_s),
            ("cpu_us_per_delivery", self.cpu_us_per_delivery),
            (
                "peak_rss_mib",
                self.peak_rss_bytes.map(|b| b as f64 / 1048576.0),
            ),
            (
                "rss_per_idle_conn_kib",
                self.rss_per_conn_bytes.map(|b| b / 1024.0),
            ),
        ];
        if let Some(redis) = &self.redis {
            let events = self.events.max(1) as f64;
            let calls = |names: &[&str]| -> u64 {
                redis
                    .per_command
                    .iter()
                    .filter(|(n, _, _)| names.contains(&n.as_str()))
                    .map(|(_, calls, _)| calls)
                    .sum()
            };
            let ratio = |a: f64, b: u64| (b > 0).then(|| a / b as f64);
            let total_cpu = match (self.cpu_s, redis.cpu_s) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
            rows.extend([
                ("nodes", Some(self.nodes.len() as f64)),
                (
                    "redis_commands_per_event",
                    Some(redis.commands as f64 / events),
                ),
                (
                    "redis_in_bytes_per_event",
                    Some(redis.net_in as f64 / events),
                ),
                (
                    "redis_out_bytes_per_event",
                    Some(redis.net_out as f64 / events),
                ),
                ("redis_cpu_s", redis.cpu_s),
                (
                    "redis_cpu_us_per_event",
                    redis.cpu_s.map(|s| s * 1e6 / events),
                ),
                // Events per append script, and per XREAD on each node (idle reads in).
                (
                    "append_batch_mean",
                    ratio(self.events as f64, calls(&["evalsha", "eval"])),
                ),
                (
                    "xread_batch_mean",
                    ratio(
                        self.events as f64 * self.nodes.len() as f64,
                        calls(&["xread"]),
                    ),
                ),
                (
                    "total_cpu_us_per_delivery",
                    total_cpu
                        .filter(|_| self.received > 0)
                        .map(|s| s * 1e6 / self.received as f64),
                ),
            ]);
            let mut rows: Vec<(String, Option<f64>)> = to_owned(rows);
            for (k, node) in self.nodes.iter().enumerate() {
                let n = k + 1;
                rows.push((format!("node{n}_clients"), Some(node.clients as f64)));
                rows.push((format!("node{n}_deliveries"), Some(node.received as f64)));
                rows.push((format!("node{n}_cpu_s"), node.cpu_s));
                rows.push((
                    format!("node{n}_cpu_us_per_delivery"),
                    node.cpu_s
                        .filter(|_| node.received > 0)
                        .map(|s| s * 1e6 / node.received as f64),
                ));
                rows.push((
                    format!("node{n}_peak_rss_mib"),
                    node.peak_rss_bytes.map(|b| b as f64 / 1048576.0),
                ));
            }
            return rows;
        }
        to_owned(rows)
    }

    /// Redis's calls and time per event, per command, most calls first.
    fn commands_json(&self) -> Option<Value> {
        let redis = self.redis.as_ref()?;
        let events = self.events.max(1) as f64;
        let mut map = Map::new();
        for (name, calls, usec) in &redis.per_command {
            map.insert(
                name.clone(),
                json!({
                    "calls_per_event": round(*calls as f64 / events),
                    "us_per_event": round(*usec as f64 / events),
                }),
            );
        }
        Some(Value::Object(map))
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (name, value) in self.figures() {
            map.insert(name, value.map_or(Value::Null, number));
        }
        if let Some(commands) = self.commands_json() {
            map.insert("redis_commands".into(), commands);
        }
        Value::Object(map)
    }
}

fn to_owned(rows: Vec<(&str, Option<f64>)>) -> Vec<(String, Option<f64>)> {
    rows.into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// Whole numbers as JSON integers, others rounded to 3 decimals.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        json!(v as i64)
    } else {
        json!(round(v))
    }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn cell(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// Prints the table and the JSON line of a run (and of its floor run, if any).
pub fn print(preset: &str, main: &Report, floor: Option<&Report>) {
    let rows_main = main.figures();
    let rows_floor = floor.map(Report::figures);
    println!();
    match floor {
        Some(_) => println!(
            "{:<28} {:>16} {:>16} {:>10}",
            format!("preset {preset}"),
            main.server,
            "floor",
            "ratio"
        ),
        None => println!("{:<28} {:>16}", format!("preset {preset}"), main.server),
    }
    let mut ratios = Map::new();
    for (name, value) in &rows_main {
        match &rows_floor {
            Some(rows) => {
                // The floor has no cluster figures: those rows get "-".
                let f = rows.iter().find(|(n, _)| n == name).and_then(|(_, v)| *v);
                let ratio = match (value, f) {
                    (Some(a), Some(b)) if b != 0.0 => Some(a / b),
                    _ => None,
                };
                ratios.insert(name.clone(), ratio.map_or(Value::Null, |r| json!(round(r))));
                println!(
                    "{name:<28} {:>16} {:>16} {:>10}",
                    cell(*value),
                    cell(f),
                    ratio.map_or("-".into(), |r| format!("{r:.2}"))
                );
            }
            None => println!("{name:<28} {:>16}", cell(*value)),
        }
    }
    if let Some(redis) = &main.redis {
        let events = main.events.max(1) as f64;
        println!();
        println!(
            "{:<28} {:>16} {:>16}",
            "redis command", "calls/event", "us/event"
        );
        for (name, calls, usec) in &redis.per_command {
            println!(
                "{name:<28} {:>16} {:>16}",
                cell(Some(round(*calls as f64 / events))),
                cell(Some(round(*usec as f64 / events)))
            );
        }
    }
    let mut line = Map::new();
    line.insert("preset".into(), json!(preset));
    line.insert(main.server.into(), main.to_json());
    if let Some(f) = floor {
        line.insert("floor".into(), f.to_json());
        line.insert("ratio".into(), Value::Object(ratios));
    }
    println!("{}", Value::Object(line));
}
