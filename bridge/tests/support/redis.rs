//! A private Redis for the cluster tests, and bridges started as the nodes of one
//! cluster sharing it.
//!
//! Each [`RedisServer`] is its own `redis-server` process (Debian `redis-server`; run
//! scripts/test or `apt-get install redis-server`) on a free loopback port, with no
//! persistence and its working directory in a temporary directory, so tests never
//! share a server or leave anything behind. It can be stopped and started again on the
//! same port (the bridges keep their `cluster.redis`); started again it is empty.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, http_get, output_within, Bridge, WAIT};

/// A `redis-server` of the test's own; killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
        };
        server.start_again();
        server
    }

    /// `redis://127.0.0.1:<port>/0`, for `cluster.redis`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts the server (again, after [`stop`](Self::stop)) on the same port, with no
    /// data, and waits until it answers PING.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("redis log file");
        let child = Command::new("redis-server")
            // No config file: built-in defaults, then these. No snapshots, no append-only
            // file, loopback only, no Unix socket, in the foreground.
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--protected-mode", "yes"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(["--supervised", "no"])
            .args(["--unixsocket", ""])
            .args(["--logfile", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): run scripts/test, or apt-get install redis-server")
            });
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        loop {
            if self.try_cli(&["PING"]).is_ok_and(|pong| pong == "PONG") {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!("redis-server exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING in time:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM) and waits until it has exited and its port is closed.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("redis-server is running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + WAIT;
        while child.try_wait().expect("try_wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        assert!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
            "redis port {} still accepts after the server stopped",
            self.port
        );
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `redis-cli -p <port> <args>`: its output, without the trailing newline. Panics
    /// when redis-cli fails or prints an error reply.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|e| panic!("redis-cli {args:?} failed: {e}"))
    }

    /// As [`cli`](Self::cli), returning the failure instead.
    pub fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        redis_cli(self.port, args)
    }

    /// The server's own log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join("redis.log")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `redis-cli -h 127.0.0.1 -p <port> <args>` (killed after [`WAIT`]): its output
/// without the trailing newline, or why it failed (it could not run, exited with an
/// error, or printed an error reply).
pub fn redis_cli(port: u16, args: &[&str]) -> Result<String, String> {
    let child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run redis-cli: {e}"))?;
    let output = output_within(child);
    let stdout = String::from_utf8_lossy(&output.stdout)
        .trim_end_matches('\n')
        .to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success()
        || stdout.starts_with("ERR ")
        || stdout.starts_with("WRONGTYPE ")
        || stdout.starts_with("Could not connect")
    {
        return Err(format!("{}: {stdout}{stderr}", output.status));
    }
    Ok(stdout)
}

/// `XLEN <stream>:log` on the server at `port` (a [`RedisServer`], or the master of a
/// Sentinel set).
pub fn log_length(port: u16, stream: &str) -> u64 {
    let length = redis_cli(port, &["XLEN", &format!("{stream}:log")])
        .unwrap_or_else(|e| panic!("redis-cli XLEN on port {port} failed: {e}"));
    length
        .parse()
        .unwrap_or_else(|_| panic!("XLEN answered {length:?}"))
}

/// The `[cluster]` table of one node: `redis`'s URL, the stream prefix, the node name.
pub fn cluster_config(redis: &RedisServer, stream: &str, node: &str) -> String {
    format!(
        "[cluster]\nredis = \"{}\"\nstream = \"{stream}\"\nnode = \"{node}\"\n",
        redis.url()
    )
}

/// The name of the `index`th node: `node-a`, `node-b`, …
pub fn node_name(index: usize) -> String {
    format!(
        "node-{}",
        char::from(b'a' + u8::try_from(index).expect("few nodes"))
    )
}

/// Starts `count` bridges (`node-a`, `node-b`, …) sharing the log `stream` in `redis`,
/// each with `extra` (dotted keys, e.g. `history.size = 100`) before its `[cluster]`
/// table, and waits until every one answers `/readyz` 200 (its log is up).
pub fn start_nodes(redis: &RedisServer, stream: &str, count: usize, extra: &str) -> Vec<Bridge> {
    (0..count)
        .map(|index| {
            let node = Bridge::start_with(&format!(
                "{extra}\n{}",
                cluster_config(redis, stream, &node_name(index))
            ));
            wait_readyz(&node, 200, WAIT);
            node
        })
        .collect()
}

/// Waits until `/readyz` answers `status`, and returns the whole answer (head and body).
pub fn wait_readyz(bridge: &Bridge, status: u16, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let answer = http_get(bridge.addr, "/readyz");
        if let Ok((got, text)) = &answer {
            if *got == status {
                return text.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never answered {status} (last: {answer:?}):\n{}",
            bridge.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sum of the samples of metric `name` whose labels include all of `labels`
/// (`[("result", "reset")]`), over every label set the bridge exports (robust to labels
/// the test does not care about); 0 when there is none.
pub fn metric_sum(bridge: &Bridge, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric_samples(bridge, name, labels).iter().sum()
}

/// The values of the samples [`metric_sum`] adds up.
pub fn metric_samples(bridge: &Bridge, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    let (_, body) = http_get(bridge.addr, "/metrics").expect("GET /metrics");
    metric_samples_in(&body, name, labels)
}

/// [`metric_samples`] in a `/metrics` text.
pub fn metric_samples_in(body: &str, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (sample, value) = line.rsplit_once(' ')?;
            let (sample_name, sample_labels) = match sample.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (sample, ""),
            };
            let wanted = sample_name == name
                && labels.iter().all(|(k, v)| {
                    sample_labels
                        .split(',')
                        .any(|l| l == format!("{k}=\"{v}\""))
                });
            wanted.then(|| value.parse::<f64>().ok()).flatten()
        })
        .collect()
}

/// Waits until the bridge exports metric `name` (with `labels`) and its samples add up
/// to `value`.
pub fn wait_metric_eq(bridge: &Bridge, name: &str, labels: &[(&str, &str)], value: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let samples = metric_samples(bridge, name, labels);
        if !samples.is_empty() && samples.iter().sum::<f64>() == value {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{labels:?} is {samples:?}, wanted {value}:\n{}",
            bridge.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
