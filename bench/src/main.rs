//! `push-bridge-bench`: the project's load generator (issue 7). Starts (or targets) a
//! bridge, opens N real WebSocket clients, publishes timestamped events through ZeroMQ
//! and prints one table and one JSON line per run; `--floor` runs the same workload
//! against a bare pre-framed writer, the practical limit of the machine; `--cluster`
//! against bridges sharing a Redis of the tool's own (issue 14); `--amqp` measures the
//! AMQP ingress instead: events/s from a RabbitMQ queue (of the tool's own, or
//! `--amqp-url`) into the hub, with the bridge's and the broker's CPU (issue 15).

mod amqp;
mod clients;
mod floor;
mod rabbitmq;
mod redis;
mod report;
mod run;
mod server;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use run::{Plan, Preset};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Benchmark push-bridge: fan-out, latency, CPU and memory"
)]
struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Workload: w1 broadcast, w2 max fan-out, w3 targeted, w4 idle.
    #[arg(long, value_enum, default_value = "w1")]
    preset: Preset,
    /// Clients (default per preset: w1 1000, w2 1000, w3 10000, w4 10000).
    #[arg(long)]
    clients: Option<usize>,
    /// Events per second (w1 default 100, w3 default 1000).
    #[arg(long)]
    rate: Option<u64>,
    /// Upper bound on events published.
    #[arg(long, default_value_t = u64::MAX)]
    events: u64,
    /// Publishing time in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Size of each event's data in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// w2: events in flight (published, not yet delivered to every client).
    #[arg(long, default_value_t = 32)]
    window: u64,
    /// Worker threads of the clients' runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// The bridge executable to start.
    #[arg(long, default_value = "target/release/push-bridge")]
    bridge: PathBuf,
    /// Extra TOML appended to the generated bridge config.
    #[arg(long, default_value = "")]
    bridge_config: String,
    /// Use an already running bridge at this WebSocket address instead of starting one.
    #[arg(long, requires_all = ["zmq", "token"], conflicts_with = "cluster")]
    target: Option<std::net::SocketAddr>,
    /// With --target: its ZeroMQ PULL endpoint.
    #[arg(long)]
    zmq: Option<String>,
    /// With --target: a token accepted for topic `bench` / `article:*`.
    #[arg(long)]
    token: Option<String>,
    /// With --target: its pid, for CPU and memory figures.
    #[arg(long)]
    pid: Option<u32>,
    /// Pin the started server (bridge or floor; every cluster node) to this CPU with taskset.
    #[arg(long)]
    server_cpu: Option<usize>,
    /// Cluster mode: start a Redis of our own and the bridge(s) with a `[cluster]` section.
    #[arg(long)]
    cluster: bool,
    /// With --cluster: bridges sharing the log; clients spread over them, events
    /// published to the first.
    #[arg(long, default_value_t = 1, requires = "cluster")]
    nodes: usize,
    /// With --cluster: the redis-server executable.
    #[arg(long, default_value = "redis-server")]
    redis_server: String,
    /// With --cluster: pin Redis to this CPU with taskset.
    #[arg(long)]
    redis_cpu: Option<usize>,
    /// AMQP mode: start a RabbitMQ of our own, fill a durable queue with --events
    /// (default 200,000) persistent messages, then start the bridge consuming it and
    /// measure events/s into the hub (until every message is acknowledged).
    #[arg(long, conflicts_with_all = ["cluster", "floor", "compare_floor", "target", "smoke"])]
    amqp: bool,
    /// AMQP mode against this running broker instead of one of our own
    /// (`amqp://user:password@host:port/vhost`).
    #[arg(long, conflicts_with_all = ["cluster", "floor", "compare_floor", "target", "smoke"])]
    amqp_url: Option<String>,
    /// AMQP mode, steady state: start the bridge (and --clients, default 0) first, then
    /// publish while it consumes.
    #[arg(long)]
    amqp_live: bool,
    /// AMQP mode: the source's `prefetch` (the bridge's default otherwise).
    #[arg(long)]
    amqp_prefetch: Option<u16>,
    /// AMQP mode: pin our RabbitMQ to this CPU with taskset.
    #[arg(long)]
    broker_cpu: Option<usize>,
    /// Run against the bare writer instead of the bridge.
    #[arg(long, conflicts_with_all = ["compare_floor", "cluster"])]
    floor: bool,
    /// Run the bridge, then the floor, and print each figure with its ratio.
    #[arg(long)]
    compare_floor: bool,
    /// CI smoke run: 20 clients x 200 events; exits non-zero on any loss.
    #[arg(long)]
    smoke: bool,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// (internal) the bare writer process used by --floor.
    #[command(hide = true)]
    FloorServe {
        #[arg(long)]
        listen: String,
        #[arg(long)]
        zmq: String,
        #[arg(long)]
        clients: usize,
    },
}

fn plan(args: &Args) -> Plan {
    let preset = if args.smoke { Preset::W1 } else { args.preset };
    let (clients, rate) = match preset {
        Preset::W1 => (1000, 100),
        Preset::W2 => (1000, 0),
        Preset::W3 => (10_000, 1000),
        Preset::W4 => (10_000, 0),
    };
    let mut plan = Plan {
        preset,
        clients: args.clients.unwrap_or(clients),
        rate: args.rate.unwrap_or(rate).max(1),
        max_events: args.events,
        duration: Duration::from_secs_f64(args.duration.max(0.1)),
        size: args.size,
        window: args.window.max(1),
        client_threads: args.client_threads,
    };
    // Paced presets publish exactly rate x duration events (at most --events).
    if matches!(preset, Preset::W1 | Preset::W3) {
        let paced = (plan.rate as f64 * plan.duration.as_secs_f64()).ceil() as u64;
        plan.max_events = plan.max_events.min(paced.max(1));
    }
    if args.smoke {
        plan.clients = args.clients.unwrap_or(20);
        plan.max_events = args.events.min(200);
        plan.rate = args.rate.unwrap_or(200);
        plan.duration = Duration::from_secs(3);
    }
    plan
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Cmd::FloorServe {
        listen,
        zmq,
        clients,
    }) = &args.cmd
    {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        return match floor::serve(listen, zmq, *clients) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("floor: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match bench(&args) {
        Ok(ok) if ok => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("push-bridge-bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the benchmark; `Ok(false)` when a smoke run lost, duplicated or failed anything.
fn bench(args: &Args) -> Result<bool, String> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).map_err(|e| format!("fd limit: {e}"))?;
    if args.amqp || args.amqp_url.is_some() || args.amqp_live {
        return bench_amqp(args);
    }
    let plan = plan(args);
    if plan.clients as u64 + 64 > limit {
        eprintln!(
            "warning: {} clients but only {limit} file descriptors per process",
            plan.clients
        );
    }
    let name = format!("{:?}", plan.preset).to_lowercase();
    let main = if args.floor {
        let server = server::start_floor(plan.clients, args.server_cpu)?;
        run::run(&plan, &[server], None, "floor")?
    } else if args.cluster {
        // Declared first, dropped last: the bridges stop before their Redis does.
        let redis = redis::RedisServer::start(&args.redis_server, args.redis_cpu)?;
        let stream = format!("bench-{}-{}", std::process::id(), clients::now_ns());
        let mut nodes = Vec::new();
        for k in 0..args.nodes.max(1) {
            let config = format!(
                "{}\n[cluster]\nredis = \"{}\"\nstream = \"{stream}\"\nnode = \"bench-{}\"\n",
                args.bridge_config,
                redis.url(),
                k + 1
            );
            nodes.push(server::start_bridge(
                &args.bridge,
                &config,
                args.server_cpu,
                k,
            )?);
        }
        eprintln!(
            "cluster: {} node(s) on {} stream {stream}",
            nodes.len(),
            redis.url()
        );
        run::run(&plan, &nodes, Some(&redis), "cluster")?
    } else {
        let server = match (&args.target, &args.zmq, &args.token) {
            (Some(ws), Some(zmq), Some(token)) => {
                server::Server::existing(*ws, zmq.clone(), token.clone(), args.pid)
            }
            _ => server::start_bridge(&args.bridge, &args.bridge_config, args.server_cpu, 0)?,
        };
        run::run(&plan, &[server], None, "bridge")?
    };
    let floor = if args.compare_floor {
        let server = server::start_floor(plan.clients, args.server_cpu)?;
        Some(run::run(&plan, &[server], None, "floor")?)
    } else {
        None
    };
    report::print(&name, &main, floor.as_ref());
    let clean = main.lost == 0
        && main.duplicates == 0
        && main.clients_failed == 0
        && main.publish_errors == 0
        && main.events > 0;
    if args.smoke && !clean {
        eprintln!("smoke run failed: lost, duplicated, or failed deliveries (see above)");
    }
    Ok(!args.smoke || clean)
}

/// `--amqp` / `--amqp-url`: `Ok(false)` when a message was not confirmed, not
/// acknowledged, rejected, or (with clients) lost.
fn bench_amqp(args: &Args) -> Result<bool, String> {
    let clients = args.clients.unwrap_or(0);
    if clients > 0 && !args.amqp_live {
        return Err(
            "--clients needs --amqp-live (with a filled queue the bridge consumes before \
             clients could subscribe)"
                .into(),
        );
    }
    // Declared first, dropped last: the bridge stops before its broker does.
    let broker = match &args.amqp_url {
        Some(_) => None,
        None => Some(rabbitmq::RabbitServer::start(args.broker_cpu)?),
    };
    let url = match (&args.amqp_url, &broker) {
        (Some(url), _) => url.clone(),
        (None, Some(broker)) => broker.url(),
        (None, None) => unreachable!("a broker is started without --amqp-url"),
    };
    let plan = amqp::AmqpPlan {
        bridge: &args.bridge,
        bridge_config: &args.bridge_config,
        server_cpu: args.server_cpu,
        url,
        broker: broker.as_ref(),
        messages: if args.events == u64::MAX {
            200_000
        } else {
            args.events.max(1)
        },
        size: args.size,
        live: args.amqp_live,
        clients,
        client_threads: args.client_threads,
        prefetch: args.amqp_prefetch,
    };
    let report = amqp::run(&plan)?;
    report.print(if args.amqp_live { "amqp-live" } else { "amqp" });
    let clean = report.clean();
    if !clean {
        eprintln!(
            "amqp run failed: {} of {} messages acknowledged, {} rejected, {} lost \
             deliveries (see above)",
            report.acked, report.messages, report.rejected, report.lost
        );
    }
    Ok(clean)
}
