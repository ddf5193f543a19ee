//! The browser tests' side of their Node drivers (`tests/browser/*.mjs`, playwright-core
//! driving Debian's headless Chromium): start one with its environment, trade lines
//! with it on stdin/stdout, and fail with its stderr. Also the static file server a page
//! of the repository is loaded from (`python3 -m http.server`, as a reader would serve
//! it), and the test artifacts directory where screenshots are kept.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Browser start and page loads on a busy two-core machine.
pub const BROWSER_WAIT: Duration = Duration::from_secs(60);

/// `bridge/tests/browser`, where the drivers and their `node_modules` are.
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `<target>/test-artifacts/<name>`, kept after the run.
pub fn artifact(name: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .to_path_buf();
    target.join("test-artifacts").join(name)
}

/// A running driver script: its stdout lines, its stdin; killed when dropped.
pub struct Driver {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Driver {
    /// Starts `node tests/browser/<script>` with `env` (and `CHROMIUM`) set.
    pub fn start(script: &str, env: &[(&str, &str)]) -> Driver {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            Path::new(&chromium).exists(),
            "no Chromium at {chromium}: run scripts/test, or apt-get install chromium"
        );
        assert!(
            browser_dir().join("node_modules/playwright-core").exists(),
            "playwright-core is not installed: run scripts/test, or \
             npm ci --prefix bridge/tests/browser"
        );
        let mut child = Command::new("node")
            .arg(browser_dir().join(script))
            .current_dir(browser_dir())
            .envs(env.iter().copied())
            .env("CHROMIUM", &chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run node (Node.js 20 or later)");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Driver {
            name: script.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// The next line the script prints, within `within`.
    pub fn line(&mut self, within: Duration) -> String {
        match self.lines.recv_timeout(within) {
            Ok(line) => line,
            Err(_) => self.fail(&format!("the script said nothing for {within:?}")),
        }
    }

    /// Waits for the script to print `expected`; fails with its stderr otherwise.
    pub fn expect(&mut self, expected: &str) {
        match self.lines.recv_timeout(BROWSER_WAIT) {
            Ok(line) if line.trim() == expected => {}
            Ok(line) => self.fail(&format!("wanted {expected:?}, the script said {line:?}")),
            Err(_) => self.fail(&format!("the script never said {expected:?}")),
        }
    }

    /// Waits (up to `within`) for a line `<word> <JSON>` and returns the JSON.
    pub fn expect_json(&mut self, word: &str, within: Duration) -> serde_json::Value {
        let line = self.line(within);
        let Some(json) = line.strip_prefix(word).and_then(|r| r.strip_prefix(' ')) else {
            self.fail(&format!("wanted a {word:?} line, the script said {line:?}"));
        };
        serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"))
    }

    /// Writes one line to the script.
    pub fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to the script");
        stdin.flush().expect("flush");
    }

    /// Waits (bounded) for the script to exit successfully.
    pub fn finish(mut self) {
        self.stdin = None;
        let deadline = Instant::now() + BROWSER_WAIT;
        loop {
            match self.child.try_wait().expect("try_wait") {
                Some(status) if status.success() => return,
                Some(status) => self.fail(&format!("the script exited with {status}")),
                None if Instant::now() > deadline => self.fail("the script did not exit"),
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Kills the script and fails the test with `what` and the script's stderr.
    pub fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self
            .stderr
            .take()
            .and_then(|s| s.join().ok())
            .unwrap_or_default();
        panic!("{what}\n--- {} stderr ---\n{stderr}", self.name);
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `python3 -m http.server` serving `root` on a free loopback port: pages and scripts
/// of the repository served as plain static files. Killed when dropped.
pub struct StaticServer {
    child: Child,
    pub addr: SocketAddr,
}

impl StaticServer {
    pub fn start(root: &Path) -> StaticServer {
        let port = super::free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(root)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut server = StaticServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + super::WAIT;
        while !super::http_get(server.addr, "/").is_ok_and(|(status, _)| status == 200) {
            if let Some(status) = server.child.try_wait().expect("try_wait") {
                panic!("python3 -m http.server exited with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "python3 -m http.server not serving"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
