//! The server under test as a process: the real bridge started on free loopback ports
//! (or one already running), or this tool's own bare writer (`--floor`) started as a
//! child the same way, so both are measured identically from `/proc/<pid>`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A server the clients connect to and the publisher feeds.
pub struct Server {
    child: Option<Child>,
    pub pid: Option<u32>,
    pub ws: SocketAddr,
    pub zmq: String,
    pub token: String,
    /// The generated config and stderr log, removed with the server.
    dir: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Server {
    /// A bridge someone else started (`--target`); `pid` enables CPU and memory figures.
    pub fn existing(ws: SocketAddr, zmq: String, token: String, pid: Option<u32>) -> Server {
        Server {
            child: None,
            pid,
            ws,
            zmq,
            token,
            dir: None,
        }
    }
}

/// `program`, run through `taskset -c <cpu>` when a CPU is given (the W2
/// figure is "the bridge process pinned to one core"). It is killed when this tool
/// ends, however it ends (a `kill` of the tool alone included).
pub fn command(program: &Path, cpu: Option<usize>) -> Command {
    let mut command = match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(program);
            c
        }
        None => Command::new(program),
    };
    // SAFETY: prctl is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

fn is_token(line: &str) -> bool {
    line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Starts `bin serve --config …` with a generated config; returns once `/readyz` is 200
/// (in a cluster: once the node reaches the log). `node` tells the config directories
/// of several bridges apart.
pub fn start_bridge(
    bin: &Path,
    extra_config: &str,
    cpu: Option<usize>,
    node: usize,
) -> Result<Server, String> {
    spawn_bridge(bin, extra_config, cpu, node)?.ready()
}

/// A bridge started and not yet known to be ready: its address and pid are, so its
/// `/metrics` can be watched while it starts (`--amqp`: it consumes before `/readyz`).
pub struct Starting {
    pub server: Server,
    tokens: mpsc::Receiver<String>,
}

/// As [`start_bridge`], without waiting for `/readyz`.
pub fn spawn_bridge(
    bin: &Path,
    extra_config: &str,
    cpu: Option<usize>,
    node: usize,
) -> Result<Starting, String> {
    let ws: SocketAddr = format!("127.0.0.1:{}", free_port()?)
        .parse()
        .map_err(|e| format!("{e}"))?;
    let zmq = format!("tcp://127.0.0.1:{}", free_port()?);
    let dir = std::env::temp_dir().join(format!("push-bridge-bench-{}-{node}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let config = dir.join("bridge.toml");
    let text = format!("server.listen = \"{ws}\"\ningress.pull = [\"{zmq}\"]\n{extra_config}\n");
    std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
    let stderr = std::fs::File::create(dir.join("bridge.stderr"))
        .map_err(|e| format!("bridge stderr file: {e}"))?;
    let mut child = command(bin, cpu)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "push_bridge=warn")
        .env_remove("PUSH_BRIDGE_SERVER__LISTEN")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let pid = child.id();
    let stdout = child.stdout.take();
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = stdout {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if is_token(line.trim()) && tx.send(line.trim().to_string()).is_err() {
                    break;
                }
            }
        });
    }
    let server = Server {
        child: Some(child),
        pid: Some(pid),
        ws,
        zmq,
        token: String::new(),
        dir: Some(dir),
    };
    Ok(Starting { server, tokens: rx })
}

impl Starting {
    /// Waits until the bridge printed its token and `/readyz` is 200 (15 s at most).
    pub fn ready(self) -> Result<Server, String> {
        let Starting { mut server, tokens } = self;
        let ws = server.ws;
        let dir = server.dir.clone().unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(token) = tokens.recv_timeout(Duration::from_millis(20)) {
                server.token = token;
            }
            if !server.token.is_empty() && readyz(ws) {
                return Ok(server);
            }
            if let Some(Ok(Some(status))) = server.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(dir.join("bridge.stderr")).unwrap_or_default();
                return Err(format!(
                    "the bridge exited with {status} during start:\n{}",
                    log.trim_end()
                ));
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("bridge.stderr")).unwrap_or_default();
                return Err(format!(
                    "the bridge was not ready within 15 s:\n{}",
                    log.trim_end()
                ));
            }
        }
    }
}

/// Starts this executable's hidden `floor-serve` mode for `clients` connections.
pub fn start_floor(clients: usize, cpu: Option<usize>) -> Result<Server, String> {
    let exe: PathBuf = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let ws: SocketAddr = format!("127.0.0.1:{}", free_port()?)
        .parse()
        .map_err(|e| format!("{e}"))?;
    let zmq = format!("tcp://127.0.0.1:{}", free_port()?);
    let child = command(&exe, cpu)
        .args(["floor-serve", "--listen", &ws.to_string(), "--zmq", &zmq])
        .args(["--clients", &clients.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the floor writer: {e}"))?;
    let pid = child.id();
    let server = Server {
        child: Some(child),
        pid: Some(pid),
        ws,
        zmq,
        token: "floor".into(),
        dir: None,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(ws).is_err() {
        if Instant::now() > deadline {
            return Err("the floor writer did not listen within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(server)
}

fn readyz(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /readyz HTTP/1.0\r\nHost: bench\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}

/// CPU seconds (user + system) the process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at state (3).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // /proc reports in USER_HZ, which Linux fixes at 100 for user space.
    Some((utime + stime) / 100.0)
}

/// A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), in bytes.
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `GET <path>` over HTTP/1.0: the body of a 200 answer (`/metrics`).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").as_bytes())
        .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.")
        .then(|| head.split_whitespace().nth(1) == Some("200"))?
        .then(|| body.to_string())
}
