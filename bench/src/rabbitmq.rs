//! `--amqp`: the RabbitMQ the bridge consumes from, started by this tool (as the tests'
//! harness does, bridge/tests/support/rabbitmq.rs): its own node name, AMQP port and
//! Erlang distribution port (free loopback ports, both), its data, logs, config and
//! Erlang cookie in a temporary directory. Debian's `/usr/sbin/rabbitmq-server`
//! switches to the `rabbitmq` user when run as root, which cannot write that
//! directory, so the scripts under `/usr/lib/rabbitmq/bin` are run as the caller.
//!
//! The server runs in a process group of its own, led by a watchdog shell that waits
//! on a pipe from this tool: when the tool ends, however it ends, the pipe closes and
//! the shell kills the group (the Erlang VM, `erl_child_setup`, the scripts). Only the
//! machine's shared `epmd` stays, as on any machine running Erlang.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::{cpu_seconds, free_port};

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";
/// About 6 s on an idle 2-core machine.
const START_WITHIN: Duration = Duration::from_secs(60);

/// A `rabbitmq-server` of the tool's own; its whole process group is killed (and its
/// directory removed) when dropped.
pub struct RabbitServer {
    /// `sh`, the leader of the server's process group, waiting on its stdin.
    watchdog: Child,
    pub port: u16,
    pub node: String,
    dir: PathBuf,
    /// The group's processes once the node runs, for its CPU.
    pids: Vec<u32>,
}

impl Drop for RabbitServer {
    fn drop(&mut self) {
        // SIGKILL to the group; closing the watchdog's stdin would do it too.
        // SAFETY: kill(2) with a negative pid signals that process group only.
        unsafe {
            libc::kill(-(self.watchdog.id() as libc::pid_t), libc::SIGKILL);
        }
        drop(self.watchdog.stdin.take());
        let _ = self.watchdog.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RabbitServer {
    /// Starts a broker on free loopback ports (pinned to `cpu` with taskset, if
    /// given); returns once it runs and takes AMQP connections.
    pub fn start(cpu: Option<usize>) -> Result<RabbitServer, String> {
        if !std::path::Path::new(SERVER).exists() {
            return Err(format!(
                "{SERVER} is missing (needed by --amqp): apt-get install rabbitmq-server, \
                 or give --amqp-url"
            ));
        }
        let port = free_port()?;
        // Never a port derived from the AMQP one (25672 is RabbitMQ's default
        // distribution port): another free one.
        let dist_port = loop {
            let p = free_port()?;
            if p != port {
                break p;
            }
        };
        let dir = std::env::temp_dir().join(format!(
            "push-bridge-bench-{}-rabbitmq-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))
        };
        write(
            "rabbitmq.conf",
            &format!("listeners.tcp.1 = 127.0.0.1:{port}\nloopback_users.guest = true\n"),
        )?;
        // No plugins (the management plugin alone takes seconds to boot).
        write("enabled_plugins", "[].\n")?;
        // HOME is the directory: the server and rabbitmqctl read this cookie (Erlang
        // insists on mode 0400), not the machine's.
        let cookie = dir.join(".erlang.cookie");
        write(".erlang.cookie", &random_cookie()?)?;
        std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400))
            .map_err(|e| format!("chmod the Erlang cookie: {e}"))?;
        let log = std::fs::File::create(dir.join("rabbitmq-server.log"))
            .map_err(|e| format!("rabbitmq log file: {e}"))?;

        let node = format!("bench-{port}@localhost");
        let mut command = Command::new("sh");
        // The server in the background; the shell waits until its stdin (a pipe from
        // this tool) closes, then kills the group.
        command.args([
            "-c",
            "\"$@\" </dev/null & read _; kill -KILL 0",
            "rabbitmq-watchdog",
        ]);
        if let Some(cpu) = cpu {
            command.args(["taskset", "-c", &cpu.to_string()]);
        }
        command
            .arg(SERVER)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().map_err(|e| format!("log file: {e}"))?)
            .stderr(log)
            .process_group(0);
        let path = |name: &str| dir.join(name);
        env(&mut command, &dir, &node, dist_port)
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", path("advanced.config"))
            .env("RABBITMQ_FEATURE_FLAGS_FILE", path("feature_flags"))
            .env("ERL_CRASH_DUMP", path("erl_crash.dump"))
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            // An epmd the node starts listens on loopback only.
            .env("ERL_EPMD_ADDRESS", "127.0.0.1");
        let watchdog = command.spawn().map_err(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            format!("cannot start {SERVER}: {e}")
        })?;
        let mut server = RabbitServer {
            watchdog,
            port,
            node,
            dir,
            pids: Vec::new(),
        };
        let started = Instant::now();
        server.wait_running(dist_port)?;
        server.pids = group_pids(server.watchdog.id());
        eprintln!(
            "amqp: rabbitmq-server {} on 127.0.0.1:{port} ready in {:.1} s",
            server.node,
            started.elapsed().as_secs_f64()
        );
        Ok(server)
    }

    /// `rabbitmqctl wait <pid file>`: the pid file, the node, then the rabbit
    /// application; then the AMQP port must accept.
    fn wait_running(&mut self, dist_port: u16) -> Result<(), String> {
        let mut command = Command::new(CTL);
        env(&mut command, &self.dir, &self.node, dist_port)
            .args(["-n", &self.node, "wait", "--timeout"])
            .arg(START_WITHIN.as_secs().to_string())
            .arg(self.dir.join("rabbitmq.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut wait = command
            .spawn()
            .map_err(|e| format!("cannot run {CTL}: {e}"))?;
        let deadline = Instant::now() + START_WITHIN + Duration::from_secs(5);
        let status = loop {
            if let Ok(Some(status)) = wait.try_wait() {
                break status;
            }
            if let Ok(Some(status)) = self.watchdog.try_wait() {
                let _ = wait.kill();
                let _ = wait.wait();
                return Err(format!(
                    "rabbitmq-server exited with {status} during start:\n{}",
                    self.log_tail()
                ));
            }
            if Instant::now() > deadline {
                let _ = wait.kill();
                let _ = wait.wait();
                return Err(format!(
                    "rabbitmq-server did not start within {START_WITHIN:?}:\n{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = wait
            .wait_with_output()
            .map_err(|e| format!("rabbitmqctl: {e}"))?;
        if !status.success() {
            return Err(format!(
                "rabbitmq-server did not start (rabbitmqctl wait: {status}: {}{}):\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                self.log_tail()
            ));
        }
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| {
            format!(
                "rabbitmq-server runs but its AMQP port {} refuses ({e}):\n{}",
                self.port,
                self.log_tail()
            )
        })?;
        Ok(())
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f` (the default vhost).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// CPU seconds the broker's processes have used so far.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let mut total = None;
        for &pid in &self.pids {
            if let Some(s) = cpu_seconds(pid) {
                *total.get_or_insert(0.0) += s;
            }
        }
        total
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("rabbitmq-server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// What both the server and rabbitmqctl need: HOME (the cookie), the node, its
/// distribution port, no machine-wide env file, and rabbitmqctl's own distribution
/// listener on an ephemeral loopback port.
fn env<'a>(
    command: &'a mut Command,
    dir: &std::path::Path,
    node: &str,
    dist_port: u16,
) -> &'a mut Command {
    command
        .env("HOME", dir)
        .env("RABBITMQ_NODENAME", node)
        .env("RABBITMQ_DIST_PORT", dist_port.to_string())
        .env("RABBITMQ_PID_FILE", dir.join("rabbitmq.pid"))
        .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
        .env("RABBITMQ_CTL_DIST_PORT_MIN", "0")
        .env("RABBITMQ_CTL_DIST_PORT_MAX", "0")
        .env(
            "RABBITMQ_CTL_ERL_ARGS",
            "-kernel inet_dist_use_interface {127,0,0,1}",
        )
}

/// The processes of process group `pgid`.
fn group_pids(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the command name: state, ppid, pgrp.
            stat.rfind(')')
                .and_then(|at| stat[at + 2..].split_whitespace().nth(2)?.parse().ok())
                == Some(pgid)
        })
        .collect()
}

/// 20 random bytes, hex: a cookie no other node on the machine has.
fn random_cookie() -> Result<String, String> {
    let mut bytes = [0u8; 20];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?,
        &mut bytes,
    )
    .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
