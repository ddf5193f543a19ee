//! HAProxy in front of test bridges, run from the project's own example config,
//! `examples/cluster/haproxy.cfg`, with only its `bind` line and its `server` lines
//! replaced (a free loopback port; the test's bridges). So the tests prove that file
//! works, and docs/scaling.md shows that file.
//!
//! Debian's `haproxy` (2.6; run scripts/test or `apt-get install haproxy`) runs in the
//! foreground (`-db`), its config and pidfile in a temporary directory, its output in a
//! log there; killed when dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, http_get, repo_root, WAIT};

/// The example config, relative to the repository root.
pub const EXAMPLE_CONFIG: &str = "examples/cluster/haproxy.cfg";

/// A running `haproxy`; killed when dropped.
pub struct Haproxy {
    child: Option<Child>,
    /// Where clients connect.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

/// The example config with `bind` on `listen` and one `server` line per backend
/// (`bridge1`, `bridge2`, …, in the place of the example's). Panics if the example
/// has no `bind` or no `server` line, so a changed example cannot be half-substituted.
pub fn config_for(example: &str, listen: SocketAddr, backends: &[SocketAddr]) -> String {
    let mut out = String::new();
    let (mut binds, mut servers) = (0, 0);
    for line in example.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if trimmed.starts_with("bind ") {
            binds += 1;
            out.push_str(&format!("{indent}bind {listen}\n"));
        } else if trimmed.starts_with("server ") {
            if servers == 0 {
                for (n, backend) in backends.iter().enumerate() {
                    out.push_str(&format!("{indent}server bridge{} {backend}\n", n + 1));
                }
            }
            servers += 1;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert_eq!(binds, 1, "{EXAMPLE_CONFIG} has one bind line");
    assert!(servers > 0, "{EXAMPLE_CONFIG} has server lines");
    out
}

impl Haproxy {
    /// Starts HAProxy from the example config in front of `backends` (the bridges'
    /// `addr`), and waits until a request through it reaches a bridge.
    pub fn start(backends: &[SocketAddr]) -> Haproxy {
        let example = std::fs::read_to_string(repo_root().join(EXAMPLE_CONFIG))
            .unwrap_or_else(|e| panic!("read {EXAMPLE_CONFIG}: {e}"));
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("haproxy.cfg");
        std::fs::write(&config, config_for(&example, addr, backends)).expect("write config");
        let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("log file");
        let check = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&config)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run haproxy ({e}): run scripts/test, or apt-get install haproxy")
            });
        assert!(
            check.status.success(),
            "haproxy -c refused the config: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .arg("-p")
            .arg(dir.path().join("haproxy.pid"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn haproxy");
        let mut haproxy = Haproxy {
            child: Some(child),
            addr,
            dir,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if http_get(addr, "/readyz").is_ok_and(|(status, _)| status == 200) {
                return haproxy;
            }
            if let Some(status) = haproxy
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                haproxy.child = None;
                panic!("haproxy exited with {status}:\n{}", haproxy.log());
            }
            assert!(
                Instant::now() < deadline,
                "no bridge answered /readyz through haproxy in time:\n{}",
                haproxy.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `ws://<haproxy>/?<query>`.
    pub fn url(&self, query: &str) -> String {
        format!("ws://{}/?{query}", self.addr)
    }

    /// HAProxy's own output (alerts, warnings, server state changes).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("haproxy.log")
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
