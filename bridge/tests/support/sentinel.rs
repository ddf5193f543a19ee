//! A Redis watched by Sentinel, for the failover tests: a master, one replica and three
//! sentinels (quorum 2), each its own foreground process on a free loopback port with
//! its files in one temporary directory, killed when dropped.
//!
//! The sentinels declare a master down after 1 s without an answer
//! (`down-after-milliseconds 1000`), so a `kill -9` of the master is followed by the
//! replica's promotion in about 2.5 s. [`SentinelRedis::cut_replica`] makes the replica
//! miss what the master appends next, deterministically: the replica is stopped
//! (SIGSTOP) and the master closes its replication link, so nothing written afterwards
//! can reach the replica, not even from a socket buffer; killing the master then loses
//! exactly those writes, as an asynchronous failover can.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::redis::{node_name, redis_cli, wait_readyz};
use super::{free_port, Bridge, WAIT};

/// The name the sentinels monitor the master under.
pub const MASTER_NAME: &str = "mymaster";

/// One `redis-server` or `redis-sentinel` process; killed when dropped.
pub struct RedisProcess {
    child: Option<Child>,
    pub port: u16,
    /// `master`, `replica`, `sentinel-1`, …: for messages.
    pub name: String,
    log: PathBuf,
}

impl RedisProcess {
    fn spawn(name: &str, program: &str, args: &[String], log: PathBuf) -> Child {
        let file = std::fs::File::create(&log).expect("log file");
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {program} for the {name} ({e}): run scripts/test, or apt-get install redis-server redis-sentinel")
            })
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal by name (`STOP`, `CONT`, …).
    pub fn signal(&self, name: &str) {
        super::signal(self.pid(), name);
    }

    /// SIGSTOP: the process holds everything (it answers nothing) until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// `kill -9`, and waits until the process is gone and its port closed.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill -9");
        child.wait().expect("wait");
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        assert!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
            "port {} of the {} still accepts after kill -9",
            self.port,
            self.name
        );
    }

    /// `redis-cli -p <port> <args>`: its output without the trailing newline. Panics
    /// when it fails or prints an error reply.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|e| panic!("redis-cli {args:?} on the {} failed: {e}", self.name))
    }

    /// As [`cli`](Self::cli), returning the failure instead. A paused process does not
    /// answer: the call then fails after [`WAIT`].
    pub fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        redis_cli(self.port, args)
    }

    /// A reply of `field`/`value` lines (`SENTINEL master …`) or `field:value` lines
    /// (`INFO …`), as a map.
    pub fn fields(&self, args: &[&str]) -> HashMap<String, String> {
        parse_fields(&self.cli(args))
    }

    /// `INFO replication`, as a map.
    pub fn replication(&self) -> HashMap<String, String> {
        self.fields(&["INFO", "replication"])
    }

    /// The process's own log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL ends a stopped process too.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `INFO` (`field:value`) or `SENTINEL master` (alternate lines) replies as a map.
fn parse_fields(reply: &str) -> HashMap<String, String> {
    let lines: Vec<&str> = reply.lines().map(|l| l.trim_end_matches('\r')).collect();
    if lines.iter().any(|l| l.starts_with('#')) {
        lines
            .iter()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    } else {
        lines
            .chunks(2)
            .filter(|pair| pair.len() == 2)
            .map(|pair| (pair[0].to_string(), pair[1].to_string()))
            .collect()
    }
}

/// A master, its replica and three sentinels.
pub struct SentinelRedis {
    /// The two data servers: `servers[0]` starts as the master, `servers[1]` as its
    /// replica. After a failover the roles are swapped (see [`master`](Self::master)).
    pub servers: Vec<RedisProcess>,
    pub sentinels: Vec<RedisProcess>,
    master: usize,
    dir: tempfile::TempDir,
}

impl SentinelRedis {
    /// Starts everything and waits until the replica is in sync and every sentinel
    /// knows the replica and the two other sentinels (so that a failover can be
    /// agreed on at once).
    pub fn start() -> SentinelRedis {
        let dir = tempfile::tempdir().expect("tempdir");
        let master_port = free_port();
        let master = server(dir.path(), "master", master_port, None);
        let replica = server(dir.path(), "replica", free_port(), Some(master_port));
        let mut redis = SentinelRedis {
            servers: vec![master, replica],
            sentinels: Vec::new(),
            master: 0,
            dir,
        };
        for server in &redis.servers {
            redis.wait_answers(server);
        }
        // The sentinels start once the replica is in sync: the master's first INFO
        // reply then names it (the next one would come 10 s later).
        redis.wait_in_sync(WAIT);
        redis.sentinels = (1..=3)
            .map(|n| sentinel(redis.dir.path(), n, master_port))
            .collect();
        for sentinel in &redis.sentinels {
            redis.wait_answers(sentinel);
        }
        redis.wait(
            Duration::from_secs(20),
            "every sentinel to know the replica and the other two sentinels",
            || {
                redis.sentinels.iter().all(|s| {
                    let master = s.fields(&["SENTINEL", "MASTER", MASTER_NAME]);
                    master.get("num-slaves").map(String::as_str) == Some("1")
                        && master.get("num-other-sentinels").map(String::as_str) == Some("2")
                        && master.get("flags").map(String::as_str) == Some("master")
                })
            },
        );
        redis
    }

    /// `redis+sentinel://127.0.0.1:<s1>,…/mymaster/0`, for `cluster.redis`.
    pub fn url(&self) -> String {
        let sentinels: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}/0", sentinels.join(","))
    }

    /// The server that is the master (as of the last [`wait_promoted`](Self::wait_promoted)).
    pub fn master(&self) -> &RedisProcess {
        &self.servers[self.master]
    }

    /// The other server.
    pub fn replica(&self) -> &RedisProcess {
        &self.servers[1 - self.master]
    }

    /// Waits until the replica's link to the master is up and it has applied all the
    /// master had written when asked (offsets read master first).
    pub fn wait_in_sync(&self, within: Duration) {
        self.wait(within, "the replica to be in sync", || {
            let master = self.master().replication();
            let replica = self.replica().replication();
            let offset = |info: &HashMap<String, String>, field: &str| {
                info.get(field).and_then(|v| v.parse::<u64>().ok())
            };
            replica.get("master_link_status").map(String::as_str) == Some("up")
                && matches!(
                    (offset(&master, "master_repl_offset"), offset(&replica, "slave_repl_offset")),
                    (Some(m), Some(r)) if r >= m
                )
        });
    }

    /// Makes the replica miss every write from now on until the master dies: stops it
    /// (SIGSTOP) and has the master close their replication link (`CLIENT KILL TYPE
    /// replica`). Undo with [`SentinelRedis::kill_master_and_resume_replica`].
    pub fn cut_replica(&self) {
        self.replica().pause();
        let killed = self.master().cli(&["CLIENT", "KILL", "TYPE", "replica"]);
        assert_eq!(killed, "1", "the master closed its one replica link");
        let info = self.master().replication();
        assert_eq!(
            info.get("connected_slaves").map(String::as_str),
            Some("0"),
            "{info:?}"
        );
    }

    /// `kill -9` of the master, then SIGCONT of the replica that [`cut_replica`]
    /// stopped: it finds its master gone, with what it wrote since the cut.
    ///
    /// [`cut_replica`]: SentinelRedis::cut_replica
    pub fn kill_master_and_resume_replica(&mut self) {
        self.kill_master();
        self.replica().resume();
    }

    /// `kill -9` of the master.
    pub fn kill_master(&mut self) {
        let master = self.master;
        self.servers[master].kill9();
    }

    /// The master's port as sentinel `index` names it now.
    pub fn named_master(&self, index: usize) -> Option<u16> {
        let reply = self.sentinels[index]
            .try_cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME])
            .ok()?;
        reply.lines().nth(1)?.trim().parse().ok()
    }

    /// Waits until every sentinel names the replica as the master and it says it is
    /// one (`role:master`); from then on [`master`](Self::master) is that server.
    pub fn wait_promoted(&mut self, within: Duration) {
        let replica = 1 - self.master;
        let port = self.servers[replica].port;
        self.wait(within, "the sentinels to promote the replica", || {
            (0..self.sentinels.len()).all(|s| self.named_master(s) == Some(port))
                && self.servers[replica]
                    .replication()
                    .get("role")
                    .is_some_and(|role| role == "master")
        });
        self.master = replica;
    }

    /// Every process's log, for failure messages.
    pub fn logs(&self) -> String {
        self.servers
            .iter()
            .chain(&self.sentinels)
            .map(|p| format!("--- {} (port {}):\n{}", p.name, p.port, p.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn wait_answers(&self, process: &RedisProcess) {
        self.wait(
            WAIT,
            &format!("the {} to answer PING", process.name),
            || process.try_cli(&["PING"]).is_ok_and(|pong| pong == "PONG"),
        );
    }

    /// Polls `condition` every 50 ms; after `within`, panics naming `what`, with the logs.
    fn wait(&self, within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + within;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "timed out after {within:?} waiting for {what}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts `count` bridges (`node-a`, `node-b`, …) sharing the log `stream` through
/// the sentinels of `redis`, each with `extra` (dotted keys) before its `[cluster]`
/// table, and waits until every one answers `/readyz` 200.
pub fn start_nodes(redis: &SentinelRedis, stream: &str, count: usize, extra: &str) -> Vec<Bridge> {
    (0..count)
        .map(|index| {
            let node = Bridge::start_with(&format!(
                "{extra}\n[cluster]\nredis = \"{}\"\nstream = \"{stream}\"\nnode = \"{}\"\n",
                redis.url(),
                node_name(index)
            ));
            wait_readyz(&node, 200, WAIT);
            node
        })
        .collect()
}

/// A `redis-server` with no persistence, in the foreground; a replica of `master` when
/// given.
fn server(dir: &Path, name: &str, port: u16, master: Option<u16>) -> RedisProcess {
    let data = dir.join(name);
    std::fs::create_dir(&data).expect("server dir");
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--supervised",
        "no",
        "--unixsocket",
        "",
        "--logfile",
        "",
        // A replica's first sync starts at once (the default waits 5 s for others).
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push("--dir".into());
    args.push(data.display().to_string());
    if let Some(master) = master {
        args.extend(["--replicaof".into(), "127.0.0.1".into(), master.to_string()]);
    }
    let log = dir.join(format!("{name}.log"));
    RedisProcess {
        child: Some(RedisProcess::spawn(
            name,
            "redis-server",
            &args,
            log.clone(),
        )),
        port,
        name: name.to_string(),
        log,
    }
}

/// Sentinel `n` (1, 2, 3) watching `master` with quorum 2, from a config file of its
/// own (a sentinel rewrites it).
fn sentinel(dir: &Path, n: usize, master: u16) -> RedisProcess {
    let name = format!("sentinel-{n}");
    let home = dir.join(&name);
    std::fs::create_dir(&home).expect("sentinel dir");
    let port = free_port();
    let config = home.join("sentinel.conf");
    std::fs::write(
        &config,
        format!(
            "port {port}\n\
             bind 127.0.0.1\n\
             daemonize no\n\
             logfile \"\"\n\
             dir \"{}\"\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 5000\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n",
            home.display()
        ),
    )
    .expect("write the sentinel config");
    let log = dir.join(format!("{name}.log"));
    RedisProcess {
        child: Some(RedisProcess::spawn(
            &name,
            "redis-sentinel",
            &[config.display().to_string()],
            log.clone(),
        )),
        port,
        name,
        log,
    }
}
