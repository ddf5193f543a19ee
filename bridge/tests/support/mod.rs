//! Shared helpers for the integration tests: start the real `push-bridge` binary on
//! free loopback ports, connect real WebSocket clients, publish through real ZeroMQ
//! peers (the Rust SDK, and pyzmq/libzmq through python3), read `/metrics`.
#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod haproxy;
pub mod rabbitmq;
pub mod redis;
pub mod sentinel;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream as TokioTcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub const WAIT: Duration = Duration::from_secs(10);

/// A free TCP port on 127.0.0.1 (bound, then released for the bridge to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// Polls `condition` every 20 ms until it holds, failing with `what` after `within`.
pub fn wait_until(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `kill -<name> <pid>` (`STOP`, `CONT`, `HUP`, …); panics unless it succeeds.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name} {pid}: {status}");
}

/// Appends what `stream` (which has a read timeout) has to give to `buffer`: nothing
/// when the timeout passed first. Panics when the stream ended or failed.
pub fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) {
    let mut chunk = [0; 16384];
    match stream.read(&mut chunk) {
        Ok(0) => panic!("the stream ended"),
        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        Err(e) => panic!("read: {e}"),
    }
}

/// A running bridge; killed when dropped.
pub struct Bridge {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub zmq: String,
    /// The one-time token the bridge printed, when no token kind is configured.
    pub token: Option<String>,
    pub dir: tempfile::TempDir,
    stderr_path: PathBuf,
}

impl Bridge {
    /// Starts the bridge with the generated-token defaults.
    pub fn start() -> Bridge {
        Bridge::start_with("")
    }

    /// Starts the bridge with extra TOML appended to a config that sets the listen
    /// address and one PULL endpoint on free ports. `extra` may use `[server]`-less
    /// dotted keys (`server.heartbeat = "1s"`) or whole tables other than those two.
    pub fn start_with(extra: &str) -> Bridge {
        Bridge::start_with_env(extra, &[])
    }

    /// As [`start_with`](Self::start_with), with extra environment variables (e.g. a
    /// `RUST_LOG` other than `push_bridge=debug`).
    pub fn start_with_env(extra: &str, env: &[(&str, &str)]) -> Bridge {
        let dir = tempfile::tempdir().expect("tempdir");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let zmq = format!("tcp://127.0.0.1:{}", free_port());
        let config = format!("server.listen = \"{addr}\"\ningress.pull = [\"{zmq}\"]\n{extra}\n");
        Bridge::start_raw(dir, addr, zmq, &config, env)
    }

    /// As [`start_with`](Self::start_with), with one static token (named `t`) in a
    /// tokens file written to `dir`: a bridge restarted with the same config text
    /// finds it, so a reconnecting client keeps its URL.
    pub fn start_with_token(dir: &std::path::Path, token: &str, extra: &str) -> Bridge {
        let tokens = dir.join("tokens.toml");
        std::fs::write(
            &tokens,
            format!("[[token]]\nname = \"t\"\ntoken = \"{token}\"\n"),
        )
        .expect("write the tokens file");
        Bridge::start_with(&format!(
            "auth.tokens_file = \"{}\"\n{extra}",
            tokens.display()
        ))
    }

    /// Stops the bridge gracefully (SIGTERM, waits for the exit) and starts it again on
    /// the same address, endpoint, config and directory (a `history.file` or tokens
    /// file in it is found again).
    pub fn restart(mut self) -> Bridge {
        let config = std::fs::read_to_string(self.config_path()).expect("read the config");
        self.signal("TERM");
        let status = self.wait_exit(WAIT);
        assert!(status.success(), "push-bridge exited with {status}");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        Bridge::start_raw(dir, self.addr, self.zmq.clone(), &config, &[])
    }

    /// The config file the bridge was started with (rewrite it, then SIGHUP).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("push-bridge.toml")
    }

    /// Starts the bridge with exactly this config text and environment.
    pub fn start_raw(
        dir: tempfile::TempDir,
        addr: SocketAddr,
        zmq: String,
        config: &str,
        env: &[(&str, &str)],
    ) -> Bridge {
        let config_path = dir.path().join("push-bridge.toml");
        std::fs::write(&config_path, config).expect("write config");
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_push-bridge"));
        let mut child = without_bridge_env(&mut command)
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "push_bridge=debug")
            .envs(env.iter().copied())
            .env_remove("PUSH_BRIDGE_SERVER__LISTEN")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn push-bridge");
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut bridge = Bridge {
            child: Some(child),
            addr,
            zmq,
            token: None,
            dir,
            stderr_path,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(20)) {
                let line = line.trim();
                if line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit()) {
                    bridge.token = Some(line.to_string());
                }
            }
            // Ready: /readyz says so (or, on a TLS listener, the log does).
            let ready = http_get(addr, "/readyz").is_ok_and(|(status, _)| status == 200)
                || bridge.stderr().contains("push-bridge ready");
            if ready {
                // The token line comes before readiness is announced; give it a moment.
                while let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(50)) {
                    let line = line.trim();
                    if line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit()) {
                        bridge.token = Some(line.to_string());
                    }
                }
                return bridge;
            }
            if let Some(status) = bridge
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "push-bridge exited with {status} during start:\n{}",
                    bridge.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "push-bridge not ready in time:\n{}",
                bridge.stderr()
            );
        }
    }

    pub fn token(&self) -> &str {
        self.token
            .as_deref()
            .expect("the bridge printed no generated token")
    }

    pub fn url(&self, query: &str) -> String {
        format!("ws://{}/?{query}", self.addr)
    }

    pub fn token_url(&self) -> String {
        self.url(&format!("token={}", self.token()))
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn signal(&self, name: &str) {
        signal(self.pid(), name);
    }

    /// Waits for the process to exit (after a signal).
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "push-bridge did not exit in time"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The value of one sample in `/metrics`, e.g.
    /// `push_bridge_ingress_rejected_total{reason="bad_json"}`; 0 when absent.
    pub fn metric(&self, sample: &str) -> f64 {
        let (_, body) = http_get(self.addr, "/metrics").expect("GET /metrics");
        metric_value(&body, sample)
    }

    /// Waits until `metric(sample) >= at_least`.
    pub fn wait_metric(&self, sample: &str, at_least: f64) -> f64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.metric(sample);
            if value >= at_least {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{sample} stayed at {value}, wanted {at_least}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Publishes with the Rust SDK and waits until the bridge counted it.
    pub fn publisher(&self) -> push_bridge_publisher::Publisher {
        let publisher = push_bridge_publisher::Publisher::connect(&self.zmq).expect("connect");
        publisher
            .wait_connected(WAIT)
            .expect("bridge PULL reachable");
        publisher
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn metric_value(body: &str, sample: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// A minimal HTTP/1.1 GET: (status, body). For tests only.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
}

/// Sends a raw request, returns (status, headers+body text).
pub fn http_request(addr: SocketAddr, request: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {text:?}")))?;
    Ok((status, text))
}

pub type Ws = WebSocketStream<TokioTcpStream>;

/// Why an upgrade did not happen.
#[derive(Debug)]
pub enum ConnectError {
    Io(std::io::Error),
    /// The server answered without upgrading: status and body.
    Refused(u16, String),
}

/// Opens a WebSocket as a browser does: with the given subprotocols (empty: no
/// header) and extra headers, accepting an answer that selects no subprotocol (the
/// "only unknown entries" case of docs/protocol.md; strict clients would fail it). Returns the
/// stream and the subprotocol the server selected.
pub async fn connect(
    url: &str,
    protocols: &[&str],
    headers: &[(&str, &str)],
) -> Result<(Ws, Option<String>), ConnectError> {
    let rest = url.strip_prefix("ws://").expect("ws:// URL");
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let stream = TokioTcpStream::connect(authority)
        .await
        .map_err(ConnectError::Io)?;
    connect_over(stream, url, protocols, headers).await
}

/// As [`connect`], over a TCP connection the caller made (e.g. with a small receive
/// buffer).
pub async fn connect_over(
    mut stream: TokioTcpStream,
    url: &str,
    protocols: &[&str],
    headers: &[(&str, &str)],
) -> Result<(Ws, Option<String>), ConnectError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("ws://").expect("ws:// URL");
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        request.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            protocols.join(", ")
        ));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(ConnectError::Io)?;
    // Read the answer's head byte by byte so no frame after it is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = tokio::time::timeout(WAIT, stream.read_u8())
            .await
            .map_err(|_| ConnectError::Io(std::io::Error::other("no answer in time")))?
            .map_err(ConnectError::Io)?;
        head.push(byte);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    if status != 101 {
        let length: usize = header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        let _ = tokio::time::timeout(WAIT, stream.read_exact(&mut body)).await;
        return Err(ConnectError::Refused(
            status,
            String::from_utf8_lossy(&body).into_owned(),
        ));
    }
    assert_eq!(
        header("sec-websocket-accept").as_deref(),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "a valid 101 answer"
    );
    let protocol = header("sec-websocket-protocol");
    if let Some(selected) = &protocol {
        assert!(
            protocols.contains(&selected.as_str()),
            "the server selected {selected}, which was not offered"
        );
    }
    let config = WebSocketConfig::default();
    let ws = WebSocketStream::from_raw_socket(stream, Role::Client, Some(config)).await;
    Ok((ws, protocol))
}

/// The HTTP status and body of a refused upgrade.
pub async fn refused_status(
    url: &str,
    protocols: &[&str],
    headers: &[(&str, &str)],
) -> (u16, String) {
    match connect(url, protocols, headers).await {
        Ok(_) => panic!("the upgrade to {url} was accepted"),
        Err(ConnectError::Refused(status, body)) => (status, body),
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

/// Next text frame as JSON, failing after [`WAIT`].
pub async fn next_json(ws: &mut Ws) -> serde_json::Value {
    let text = next_text(ws).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Next text frame, skipping pings; panics on close or timeout.
pub async fn next_text(ws: &mut Ws) -> String {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no frame in time")
            .expect("stream ended")
            .expect("read error");
        match message {
            Message::Text(text) => return text.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads until the close frame and returns its code (text frames before it are
/// returned too).
pub async fn close_code(ws: &mut Ws) -> (Option<u16>, Vec<String>) {
    let mut texts = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no close in time")
        {
            Some(Ok(Message::Close(frame))) => return (frame.map(|f| u16::from(f.code)), texts),
            Some(Ok(Message::Text(text))) => texts.push(text.to_string()),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return (None, texts),
        }
    }
}

/// Asserts nothing arrives for `quiet` (pings aside).
pub async fn assert_silent(ws: &mut Ws, quiet: Duration) {
    let deadline = tokio::time::Instant::now() + quiet;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("expected silence, got {other:?}"),
        }
    }
}

pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.into())).await.expect("send");
}

/// A native client, welcomed and subscribed to `topics`.
pub async fn native_client(bridge: &Bridge, topics: &[&str]) -> Ws {
    let (mut ws, protocol) = connect(&bridge.token_url(), &["push-bridge.v1"], &[])
        .await
        .expect("connect");
    assert_eq!(protocol.as_deref(), Some("push-bridge.v1"));
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    send(
        &mut ws,
        &serde_json::json!({"type": "subscribe", "topics": topics}).to_string(),
    )
    .await;
    let subscribed = next_json(&mut ws).await;
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    ws
}

/// A native client subscribed to `topics`, with `since` when given; returns the
/// `subscribed` answer too.
pub async fn subscribe_since(
    bridge: &Bridge,
    topics: &[&str],
    since: Option<&str>,
) -> (Ws, serde_json::Value) {
    let (mut ws, _) = connect(&bridge.token_url(), &["push-bridge.v1"], &[])
        .await
        .expect("connect");
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    let mut request = serde_json::json!({"type": "subscribe", "topics": topics});
    if let Some(since) = since {
        request["since"] = serde_json::json!(since);
    }
    send(&mut ws, &request.to_string()).await;
    let subscribed = next_json(&mut ws).await;
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    (ws, subscribed)
}

pub fn close_code_value(code: CloseCode) -> u16 {
    u16::from(code)
}

/// Runs a python3 script (pyzmq) with arguments; panics with its output on failure.
pub fn python(script: &str, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "python3 failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Starts a long-running python3 script (pyzmq); killed on drop.
pub struct PythonPeer(pub Child);

impl PythonPeer {
    pub fn spawn(script: &str, args: &[&str]) -> PythonPeer {
        PythonPeer(
            Command::new("python3")
                .arg("-c")
                .arg(script)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3"),
        )
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes every `PUSH_BRIDGE_…` variable from `command`'s environment: the test's own
/// settings (PUSH_BRIDGE_SOAK_SECS, …) are not bridge config.
pub fn without_bridge_env(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PUSH_BRIDGE_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs the bridge binary with `args` to completion, killing it after [`WAIT`].
pub fn run_bridge(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_push-bridge"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn push-bridge");
    output_within(child)
}

/// Runs one of the PHP scripts in `tests/php/` (php-cli with the zmq extension, as
/// Superdesk Publisher's producers run) and returns its standard output. Panics with
/// its output if it fails, and kills it after [`WAIT`]: a PHP PUSH socket with LINGER
/// -1 would otherwise wait for an unreachable bridge forever.
pub fn php(script: &str, args: &[&str]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/php")
        .join(script);
    let child = Command::new("php")
        .arg(&path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run php ({e}): install php-cli and php-zmq, or run scripts/test")
        });
    let output = output_within(child);
    assert!(
        output.status.success(),
        "php {} failed ({}): {}\n{}",
        path.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Publishes `count` events `{"seq": n}` on `topic`, `per_second` of them a second,
/// from a thread (the Rust SDK is blocking).
pub fn publish_paced(
    bridge: &Bridge,
    topic: &'static str,
    count: u64,
    per_second: u64,
) -> std::thread::JoinHandle<()> {
    publish_paced_counting(bridge, topic, count, per_second, Default::default())
}

/// As [`publish_paced`]; `handed` counts the events ZeroMQ took so far.
pub fn publish_paced_counting(
    bridge: &Bridge,
    topic: &'static str,
    count: u64,
    per_second: u64,
    handed: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> std::thread::JoinHandle<()> {
    let publisher = bridge.publisher();
    std::thread::spawn(move || {
        let started = Instant::now();
        for seq in 0..count {
            let due = started + Duration::from_micros(seq * 1_000_000 / per_second);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            publisher
                .publish(topic, &serde_json::json!({ "seq": seq }))
                .unwrap();
            handed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        publisher.close(Duration::from_secs(5)).unwrap();
    })
}

/// A native client authenticated with `token` in the URL, past its welcome.
pub async fn native_with_token(bridge: &Bridge, token: &str) -> Ws {
    let (mut ws, _) = connect(
        &bridge.url(&format!("token={token}")),
        &["push-bridge.v1"],
        &[],
    )
    .await
    .unwrap();
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    ws
}

/// Waits for `child` to finish, killing it after [`WAIT`], and returns its output.
pub fn output_within(mut child: Child) -> std::process::Output {
    let deadline = Instant::now() + WAIT;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// The workspace root (the repository), where README.md and docs/ are.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the bridge crate sits in the workspace root")
        .to_path_buf()
}

/// A thin publisher client's directory: `publisher-sdk/python`, `php` or `node`.
pub fn sdk_dir(language: &str) -> PathBuf {
    repo_root().join("publisher-sdk").join(language)
}

/// The Node publisher's package directory, with its dependencies installed.
pub fn node_publisher_dir() -> PathBuf {
    let dir = sdk_dir("node");
    assert!(
        dir.join("node_modules/zeromq").is_dir(),
        "the Node publisher's dependencies are not installed: run scripts/test, or \
         npm ci --prefix publisher-sdk/node --ignore-scripts"
    );
    dir
}

/// The fenced code blocks of a Markdown text: (info string, code).
pub fn markdown_code_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in markdown.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_string(), String::new())),
            (Some(_), Some("")) => blocks.extend(open.take()),
            (Some((_, code)), _) => {
                code.push_str(line);
                code.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "a code block is never closed");
    blocks
}
