//! One run's figures, printed as one table and one JSON line; with a floor run beside
//! it, each figure gets the bridge/floor ratio.

use serde_json::{json, Map, Value};

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
}

impl Report {
    /// (name, value) pairs in table order.
    fn figures(&self) -> Vec<(&'static str, Option<f64>)> {
        vec![
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
        ]
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (name, value) in self.figures() {
            map.insert(name.into(), value.map_or(Value::Null, number));
        }
        Value::Object(map)
    }
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
            "{:<24} {:>16} {:>16} {:>10}",
            format!("preset {preset}"),
            main.server,
            "floor",
            "ratio"
        ),
        None => println!("{:<24} {:>16}", format!("preset {preset}"), main.server),
    }
    let mut ratios = Map::new();
    for (i, (name, value)) in rows_main.iter().enumerate() {
        match &rows_floor {
            Some(rows) => {
                let f = rows[i].1;
                let ratio = match (value, f) {
                    (Some(a), Some(b)) if b != 0.0 => Some(a / b),
                    _ => None,
                };
                ratios.insert(
                    (*name).into(),
                    ratio.map_or(Value::Null, |r| json!(round(r))),
                );
                println!(
                    "{name:<24} {:>16} {:>16} {:>10}",
                    cell(*value),
                    cell(f),
                    ratio.map_or("-".into(), |r| format!("{r:.2}"))
                );
            }
            None => println!("{name:<24} {:>16}", cell(*value)),
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
