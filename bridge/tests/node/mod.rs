//! Drives the real JavaScript clients in `tests/node/` (npm `autobahn`, npm
//! `eventsource`; installed by `scripts/test` with `npm ci`) as subprocesses: each
//! prints one JSON line per observation, which the tests read with a deadline. The
//! process is killed when its handle is dropped, so a failing test leaves none behind.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long one observation may take to arrive.
pub const WAIT: Duration = Duration::from_secs(10);

/// One running client script.
pub struct NodeClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: tempfile::NamedTempFile,
    script: &'static str,
}

impl NodeClient {
    /// Starts `node tests/node/<script> <args…>`.
    pub fn spawn(script: &'static str, args: &[&str]) -> NodeClient {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
        assert!(
            dir.join("node_modules").is_dir(),
            "the Node test clients are not installed: run scripts/test, or \
             npm ci --prefix bridge/tests/node"
        );
        let stderr = tempfile::NamedTempFile::new().expect("stderr file");
        let mut child = Command::new("node")
            .arg(dir.join(script))
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node ({e}): install Node.js 20 or later"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        NodeClient {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            script,
        }
    }

    /// The next observation; `None` once the script has exited and all it printed was
    /// read. Panics after [`WAIT`].
    pub fn try_next(&self) -> Option<Value> {
        match self.lines.recv_timeout(WAIT) {
            Ok(line) => Some(serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!(
                    "{} printed a line that is not JSON ({e}): {line}",
                    self.script
                )
            })),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "{} observed nothing within {WAIT:?}; its stderr:\n{}",
                self.script,
                self.stderr()
            ),
        }
    }

    /// The next observation; panics if the script exited or after [`WAIT`].
    pub fn next(&self) -> Value {
        self.try_next()
            .unwrap_or_else(|| panic!("{} exited; its stderr:\n{}", self.script, self.stderr()))
    }

    /// The next observation whose `"event"` is `event`, failing on any other first.
    pub fn expect(&self, event: &str) -> Value {
        let observed = self.next();
        assert_eq!(observed["event"], event, "expected {event}, got {observed}");
        observed
    }

    /// Asserts the script prints nothing for `quiet`.
    pub fn assert_silent(&self, quiet: Duration) {
        match self.lines.recv_timeout(quiet) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("{} exited:\n{}", self.script, self.stderr())
            }
            Ok(line) => panic!("expected silence from {}, got {line}", self.script),
        }
    }

    /// Writes one command line to the script's stdin.
    pub fn send(&mut self, command: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{command}").expect("write to the node client");
        stdin.flush().expect("flush to the node client");
    }

    /// Kills the process at once (its connections are cut without a goodbye) and
    /// returns what it printed that was not read yet.
    pub fn kill(mut self) -> Vec<Value> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut rest = Vec::new();
        while let Some(observed) = self.try_next() {
            rest.push(observed);
        }
        rest
    }

    /// Waits for the script to exit by itself and returns whether it succeeded.
    pub fn wait_exit(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit in time",
                self.script
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }
}

impl Drop for NodeClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
