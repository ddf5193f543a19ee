//! A private RabbitMQ for the AMQP ingress tests, and the producers that publish to it
//! as Superdesk's do: Publisher 2.x through PHP's amqp extension (tests/php/
//! amqp_pusher.php) and superdesk-core through kombu (tests/amqp_peers.py).
//!
//! Each [`RabbitMq`] is its own `rabbitmq-server` (Debian `rabbitmq-server`; run
//! scripts/test or `apt-get install rabbitmq-server`) with a node name, an AMQP port and
//! an Erlang distribution port of its own (both on loopback), its data, logs, config
//! and Erlang cookie in a temporary directory, so tests running in parallel never
//! share a broker. Only the epmd on port 4369 is shared: the first node starts it and
//! it stays, as on any machine running Erlang.
//!
//! Debian's `/usr/sbin/rabbitmq-server` and `rabbitmqctl` switch to the `rabbitmq` user
//! when run as root, which cannot write the test's directory; the scripts under
//! `/usr/lib/rabbitmq/bin` run as the caller.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{free_port, output_within, php, PythonPeer, WAIT};

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/// How long a start may take: about 5 s on an idle 2-core machine, much more while
/// parallel tests build and boot other Erlang VMs.
pub const START_WITHIN: Duration = Duration::from_secs(60);

/// The queue Superdesk Publisher 2.x's pusher declares, bound to
/// [`PUBLISHER_EXCHANGE`].
pub const PUBLISHER_QUEUE: &str = "swp_websocket";
/// The durable direct exchange Publisher 2.x's pusher publishes to (routing key "").
pub const PUBLISHER_EXCHANGE: &str = "swp_websocket_exchange";
/// superdesk-core's `WEBSOCKET_EXCHANGE`: a durable fanout exchange.
pub const SUPERDESK_EXCHANGE: &str = "superdesk_notification";

/// A `rabbitmq-server` of the test's own; killed (its whole process group) when
/// dropped, and also when the test process dies without dropping it (a watchdog shell
/// kills the group when the pipe from the test closes).
pub struct RabbitMq {
    /// `sh` running the server in the background and waiting on its stdin (a pipe from
    /// the test): the leader of the server's process group.
    watchdog: Option<Child>,
    /// The AMQP port, on 127.0.0.1.
    pub port: u16,
    /// The Erlang distribution port (rabbitmqctl talks to the node there).
    pub dist_port: u16,
    /// `rabbit-test-<port>@localhost`.
    pub node: String,
    dir: tempfile::TempDir,
}

impl RabbitMq {
    /// Starts a broker on free ports and waits until it runs (panics with the end of
    /// its log if it does not within [`START_WITHIN`]).
    pub fn start() -> RabbitMq {
        let port = free_port();
        let dist_port = loop {
            let p = free_port();
            if p != port {
                break p;
            }
        };
        let dir = tempfile::tempdir().expect("tempdir");
        // Loopback only; guest may log in from loopback (RabbitMQ's default, said here
        // so the test does not depend on it).
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.1 = 127.0.0.1:{port}\nloopback_users.guest = true\n"),
        )
        .expect("write rabbitmq.conf");
        // No plugins (the management plugin alone takes seconds to boot).
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").expect("enabled_plugins");
        // HOME is the test's directory, so the server and rabbitmqctl read this cookie
        // (Erlang insists on mode 0400), not the machine's or another test's.
        let cookie = dir.path().join(".erlang.cookie");
        std::fs::write(&cookie, random_cookie()).expect("write the Erlang cookie");
        std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400))
            .expect("chmod the Erlang cookie");
        let mut server = RabbitMq {
            watchdog: None,
            port,
            dist_port,
            node: format!("rabbit-test-{port}@localhost"),
            dir,
        };
        server.start_again();
        server
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f` (the default vhost).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts the broker (again, after [`stop`](Self::stop) or [`kill`](Self::kill))
    /// with the same node name, ports and data: durable queues and the persistent
    /// messages in them are back. Waits until it runs.
    pub fn start_again(&mut self) {
        assert!(
            self.watchdog.is_none(),
            "rabbitmq-server is already running"
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("rabbitmq log file");
        let mut command = Command::new("sh");
        // The server in the background (its stdin is /dev/null); the shell waits until
        // its stdin closes, i.e. the test dropped it or died, then kills the group.
        command
            .args([
                "-c",
                "\"$@\" & read _; kill -KILL 0",
                "rabbitmq-watchdog",
                SERVER,
            ])
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .process_group(0);
        self.env(&mut command)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_MNESIA_BASE", self.path("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.path("log"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.path("enabled_plugins"),
            )
            .env("RABBITMQ_CONFIG_FILE", self.path("rabbitmq.conf"))
            .env(
                "RABBITMQ_ADVANCED_CONFIG_FILE",
                self.path("advanced.config"),
            )
            .env("RABBITMQ_FEATURE_FLAGS_FILE", self.path("feature_flags"))
            .env("ERL_CRASH_DUMP", self.path("erl_crash.dump"))
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            // An epmd the node starts listens on loopback only.
            .env("ERL_EPMD_ADDRESS", "127.0.0.1");
        assert!(
            Path::new(SERVER).exists(),
            "{SERVER} is missing: run scripts/test, or apt-get install rabbitmq-server"
        );
        let _ = std::fs::remove_file(self.pid_path());
        self.watchdog = Some(command.spawn().expect("run sh"));
        self.wait_running();
    }

    /// `rabbitmqctl wait <pid file>`: waits for the pid file, the node, then the rabbit
    /// application (one CLI run: each costs an Erlang VM start, ~0.5 s of CPU).
    fn wait_running(&mut self) {
        let pid_file = self.pid_path();
        let mut command = Command::new(CTL);
        self.env(&mut command)
            .args(["-n", &self.node, "wait", "--timeout"])
            .arg(START_WITHIN.as_secs().to_string())
            .arg(&pid_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut wait = command.spawn().expect("run rabbitmqctl");
        let deadline = Instant::now() + START_WITHIN;
        let status = loop {
            if let Some(status) = wait.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = wait.kill();
                let _ = wait.wait();
                panic!(
                    "rabbitmq-server {} did not start within {START_WITHIN:?}:\n{}",
                    self.node,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = wait.wait_with_output().expect("rabbitmqctl output");
        assert!(
            status.success(),
            "rabbitmq-server {} did not start (rabbitmqctl wait: {status}: {}{}):\n{}",
            self.node,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log_tail()
        );
        assert!(
            TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2)).is_ok(),
            "rabbitmq-server {} runs but its AMQP port {} refuses:\n{}",
            self.node,
            self.port,
            self.log_tail()
        );
    }

    /// A clean stop (`rabbitmqctl stop`, which returns once the server process is
    /// gone) that keeps the data directory: [`start_again`](Self::start_again) finds
    /// the durable queues and their persistent messages.
    pub fn stop(&mut self) {
        assert!(self.watchdog.is_some(), "rabbitmq-server is not running");
        let pid_file = self.pid_path();
        self.ctl(&["stop", &pid_file.to_string_lossy()]);
        self.end_watchdog();
        assert!(
            TcpStream::connect_timeout(&self.addr(), Duration::from_millis(500)).is_err(),
            "AMQP port {} still accepts after the broker stopped",
            self.port
        );
    }

    /// SIGKILL to the whole process group (the Erlang VM, its port programs, the
    /// scripts): a crash. Messages not yet written to disk are lost; the data directory
    /// stays for [`start_again`](Self::start_again).
    pub fn kill(&mut self) {
        let watchdog = self.watchdog.as_ref().expect("rabbitmq-server is running");
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", watchdog.id())])
            .status();
        self.end_watchdog();
    }

    /// Closes the watchdog's stdin (it then kills what is left of the group) and reaps
    /// it.
    fn end_watchdog(&mut self) {
        let mut watchdog = self.watchdog.take().expect("rabbitmq-server is running");
        drop(watchdog.stdin.take());
        let deadline = Instant::now() + WAIT;
        while watchdog.try_wait().expect("try_wait").is_none() {
            if Instant::now() > deadline {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", watchdog.id())])
                    .status();
                let _ = watchdog.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&self) -> bool {
        self.watchdog.is_some()
    }

    /// `rabbitmqctl -n <node> <args>` against this broker: its standard output. Panics
    /// with its output when it fails (or is still running after [`WAIT`]).
    pub fn ctl(&self, args: &[&str]) -> String {
        self.try_ctl(args)
            .unwrap_or_else(|e| panic!("rabbitmqctl {args:?} failed: {e}"))
    }

    /// As [`ctl`](Self::ctl), returning the failure instead.
    pub fn try_ctl(&self, args: &[&str]) -> Result<String, String> {
        let mut command = Command::new(CTL);
        let child = self
            .env(&mut command)
            .args(["-n", &self.node])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {CTL}: {e}"))?;
        let output = output_within(child);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            return Err(format!(
                "{}: {stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(stdout)
    }

    /// The messages in `queue` (on the default vhost): ready plus delivered and not yet
    /// acknowledged. Panics when there is no such queue.
    pub fn queue_depth(&self, queue: &str) -> u64 {
        let list = self.ctl(&[
            "list_queues",
            "--silent",
            "--no-table-headers",
            "name",
            "messages",
        ]);
        list.lines()
            .find_map(|line| {
                let (name, messages) = line.split_once('\t')?;
                (name == queue)
                    .then(|| messages.trim().parse().ok())
                    .flatten()
            })
            .unwrap_or_else(|| panic!("no queue {queue:?} on {}:\n{list}", self.node))
    }

    /// Waits until `queue` holds `depth` messages (they are routed asynchronously to a
    /// consumer's acks), failing after `within`.
    pub fn wait_queue_depth(&self, queue: &str, depth: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let now = self.queue_depth(queue);
            if now == depth {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "queue {queue} holds {now} messages, wanted {depth}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The Erlang VM's process id, from the pid file the node writes (none before it
    /// has, or after a clean stop).
    pub fn server_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.pid_path())
            .ok()
            .and_then(|pid| pid.trim().parse().ok())
    }

    /// The process group the broker runs in (its watchdog's id), while it runs.
    pub fn process_group(&self) -> Option<u32> {
        self.watchdog.as_ref().map(Child::id)
    }

    /// The server's console output since the first start (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last 60 lines of [`log`](Self::log).
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn pid_path(&self) -> PathBuf {
        self.path("rabbitmq.pid")
    }

    fn log_path(&self) -> PathBuf {
        self.path("rabbitmq-server.log")
    }

    /// What both the server and rabbitmqctl need: the test's HOME (its cookie), the
    /// node, the distribution port, no machine-wide env file, and rabbitmqctl's own
    /// distribution listener on an ephemeral loopback port (by default every CLI run
    /// on the machine takes one of 35672–35682).
    fn env<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        command
            .env("HOME", self.dir.path())
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_PID_FILE", self.pid_path())
            .env("RABBITMQ_CONF_ENV_FILE", self.path("rabbitmq-env.conf"))
            .env("RABBITMQ_CTL_DIST_PORT_MIN", "0")
            .env("RABBITMQ_CTL_DIST_PORT_MAX", "0")
            .env(
                "RABBITMQ_CTL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        if self.watchdog.is_some() {
            self.kill();
        }
    }
}

/// 20 random bytes, hex: a cookie no other node on the machine has.
fn random_cookie() -> String {
    let mut bytes = [0; 20];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").expect("/dev/urandom"),
        &mut bytes,
    )
    .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Publishes `count` messages as Superdesk Publisher 2.x does (GosWebSocketBundle's
/// AMQP pusher, PHP amqp extension; tests/php/amqp_pusher.php): to the direct exchange
/// [`PUBLISHER_EXCHANGE`] with routing key "", declaring it and the durable queue
/// [`PUBLISHER_QUEUE`] and binding them as Publisher's install guide does. Message `n`
/// is `{"topic":"package_created","data":{"package":{"id":first+n},"state":"create"}}`,
/// `per_second` a second (0: at once), persistent (delivery mode 2) or, as the bundle
/// sends them by default, transient. Returns once the broker confirmed every one (the
/// count); `count / per_second` must stay well under [`WAIT`].
pub fn php_amqp_publish(
    rabbit: &RabbitMq,
    count: u64,
    per_second: u64,
    persistent: bool,
    first: u64,
) -> u64 {
    let out = php(
        "amqp_pusher.php",
        &[
            "127.0.0.1",
            &rabbit.port.to_string(),
            &count.to_string(),
            &per_second.to_string(),
            if persistent {
                "persistent"
            } else {
                "transient"
            },
            &first.to_string(),
        ],
    );
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("amqp_pusher.php printed {out:?}"))
}

/// tests/amqp_peers.py, run with the tests' python3 (kombu), and its standard output
/// line by line.
fn amqp_peer(args: &[&str]) -> (PythonPeer, mpsc::Receiver<String>) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/amqp_peers.py");
    // stdin: a pipe the child holds until it is dropped, or the test dies; the
    // script exits when it closes.
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let lines = line_reader(child.stdout.take().expect("stdout"));
    (PythonPeer(child), lines)
}

/// Each line of `stdout`, from a thread, as it comes.
fn line_reader(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// superdesk-core's notification producer (kombu, tests/amqp_peers.py `publish`),
/// publishing in the background to the fanout exchange [`SUPERDESK_EXCHANGE`] with
/// publisher confirms; it reconnects and publishes the same message again when the
/// broker goes away, so a test can restart the broker meanwhile. Killed when dropped.
pub struct KombuPublisher {
    peer: PythonPeer,
    lines: mpsc::Receiver<String>,
    /// Messages the broker has confirmed so far.
    pub confirmed: u64,
}

/// What a [`KombuPublisher`] reports when it is done.
#[derive(Debug, serde::Deserialize)]
pub struct KombuReport {
    /// Messages confirmed: all `count` of them.
    pub confirmed: u64,
    /// The `seq`s published more than once after a connection error: each may be in
    /// the broker twice (sent, then the connection dropped before the confirm).
    pub retried: Vec<u64>,
}

impl KombuPublisher {
    /// Publishes `count` notifications `{"event":"item:publish","extra":{"seq":n},
    /// "_created":…,"_process":…}`, `seq` 0, 1, …, `per_second` a second (0: at
    /// once).
    pub fn spawn(rabbit: &RabbitMq, count: u64, per_second: u64) -> KombuPublisher {
        let (peer, lines) = amqp_peer(&[
            "publish",
            &rabbit.url(),
            &count.to_string(),
            "--per-second",
            &per_second.to_string(),
        ]);
        KombuPublisher {
            peer,
            lines,
            confirmed: 0,
        }
    }

    /// Waits until at least `at_least` messages are confirmed.
    pub fn wait_confirmed(&mut self, at_least: u64, within: Duration) {
        let deadline = Instant::now() + within;
        while self.confirmed < at_least {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with("confirmed ") => self.confirmed += 1,
                Ok(line) => panic!("the kombu publisher printed {line:?}"),
                Err(_) => panic!(
                    "the kombu publisher confirmed {} messages in {within:?}, wanted {at_least}",
                    self.confirmed
                ),
            }
        }
    }

    /// Waits for the publisher to finish (within `within`) and returns its report;
    /// panics if it failed.
    pub fn finish(mut self, within: Duration) -> KombuReport {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with("confirmed ") => self.confirmed += 1,
                Ok(line) => {
                    let report: KombuReport = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("kombu publisher report {line:?}: {e}"));
                    assert_eq!(report.confirmed, self.confirmed, "confirmed lines");
                    let status = self.peer.0.wait().expect("wait");
                    assert!(status.success(), "the kombu publisher exited with {status}");
                    return report;
                }
                Err(_) => {
                    let status = self.peer.0.try_wait().ok().flatten();
                    panic!(
                        "the kombu publisher did not finish in {within:?} ({} confirmed, exit {status:?})",
                        self.confirmed
                    )
                }
            }
        }
    }
}

/// A consumer of a fanout exchange (kombu, tests/amqp_peers.py `consume`): its own
/// exclusive queue bound to the exchange, as superdesk-core's websocket server has.
/// Killed when dropped.
pub struct KombuConsumer {
    peer: PythonPeer,
    lines: mpsc::Receiver<String>,
}

/// What a [`KombuConsumer`] received.
#[derive(Debug, serde::Deserialize)]
pub struct ConsumedReport {
    pub received: u64,
    /// `extra.seq` of each message, in arrival order.
    pub seqs: Vec<u64>,
    pub content_types: Vec<String>,
    pub delivery_modes: Vec<u8>,
}

impl KombuConsumer {
    /// Binds a queue to `exchange` and returns once it is bound; it then takes
    /// `count` messages, and any more that come within half a second after them.
    pub fn start(rabbit: &RabbitMq, exchange: &str, count: u64) -> KombuConsumer {
        let (peer, lines) = amqp_peer(&[
            "consume",
            &rabbit.url(),
            &count.to_string(),
            "--exchange",
            exchange,
        ]);
        match lines.recv_timeout(WAIT) {
            Ok(line) if line == "ready" => KombuConsumer { peer, lines },
            other => panic!("the kombu consumer did not get ready: {other:?}"),
        }
    }

    /// Waits (up to 30 s) for the consumer's report.
    pub fn finish(mut self) -> ConsumedReport {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(35))
            .unwrap_or_else(|e| panic!("no report from the kombu consumer: {e}"));
        let _ = self.peer.0.wait();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("consumer report {line:?}: {e}"))
    }
}

/// Declares the durable queue `queue` bound to the fanout exchange `exchange` (kombu,
/// tests/amqp_peers.py `declare`), as a consumer that must not miss messages while it
/// is away (the bridge) has.
pub fn declare_bound_queue(rabbit: &RabbitMq, exchange: &str, queue: &str) {
    let (mut peer, _) = amqp_peer(&["declare", &rabbit.url(), exchange, queue]);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = peer.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "declare {queue} did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "declare {queue} on {exchange}: {status}");
}
