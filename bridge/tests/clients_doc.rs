//! The dashboard quick start of `docs/clients.md` runs as written, in Node, against the
//! real bridge: the page's one runnable ```` ```js ```` block (every other one says it is
//! a sketch) is read at test time, so editing the page changes what runs here. The
//! package is installed the way the page says, `npm install ./clients/js` (a link in
//! a `node_modules` beside the script, which exercises the package's `exports`), and
//! only the bridge's address and the token are replaced.
//!
//! The block must subscribe, print each event it receives with its topic and id, and,
//! after the bridge restarts (no history file: nothing to replay), say that events were
//! missed (`reset`) and go on receiving.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use serde_json::json;
use support::*;

/// What the quick start connects to, and the placeholder of its token.
const DEFAULT_URL: &str = "ws://127.0.0.1:8080/";
const TOKEN_PLACEHOLDER: &str = "\"TOKEN\"";

/// The quick start: the one ```` ```js ```` block of docs/clients.md not marked as a sketch.
fn quick_start() -> String {
    let markdown = std::fs::read_to_string(repo_root().join("docs/clients.md")).unwrap();
    let runnable: Vec<String> = markdown_code_blocks(&markdown)
        .into_iter()
        .filter(|(info, code)| info == "js" && !code.starts_with("// A sketch"))
        .map(|(_, code)| code)
        .collect();
    assert_eq!(
        runnable.len(),
        1,
        "docs/clients.md should have one runnable js block (mark others `// A sketch`)"
    );
    runnable.into_iter().next().unwrap()
}

/// The Node script's standard output, line by line.
struct Script {
    child: Child,
    lines: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Script {
    fn start(code: &str) -> Script {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("node_modules")).unwrap();
        std::os::unix::fs::symlink(
            repo_root().join("clients/js"),
            dir.path().join("node_modules/push-bridge-client"),
        )
        .unwrap();
        std::fs::write(dir.path().join("quick-start.mjs"), code).unwrap();
        let mut command = Command::new("node");
        // Node 20 and 21 have WebSocket behind a flag (the page says so); 22 has it.
        let global = Command::new("node")
            .args([
                "-e",
                "process.exit(typeof WebSocket === 'function' ? 0 : 1)",
            ])
            .status()
            .expect("node runs");
        if !global.success() {
            command.arg("--experimental-websocket");
        }
        let mut child = command
            .arg("quick-start.mjs")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Script {
            child,
            lines,
            _dir: dir,
        }
    }

    /// The next line that contains `text`, within [`WAIT`].
    fn expect(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("the quick start printed no line with {text:?}"),
            }
        }
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_quick_start_receives_events_and_says_when_some_were_missed() {
    let dir = tempfile::tempdir().unwrap();
    let token = "quick-start-token";
    let bridge = Bridge::start_with_token(dir.path(), token, "");
    let code = quick_start();
    assert!(code.contains(DEFAULT_URL) && code.contains(TOKEN_PLACEHOLDER));
    let code = code
        .replace(DEFAULT_URL, &format!("ws://{}/", bridge.addr))
        .replace(TOKEN_PLACEHOLDER, &format!("\"{token}\""));
    let script = Script::start(&code);

    bridge.wait_metric("push_bridge_subscriptions", 2.0);
    let publisher = bridge.publisher();
    let id = publisher
        .publish("article:42", &json!({"headline": "Hello"}))
        .unwrap();
    let line = script.expect(&id);
    assert!(
        line.starts_with(&format!("article:42 {id} ")) && line.contains("Hello"),
        "{line}"
    );
    // Not subscribed: never printed (the next line is the one after it).
    publisher.publish("other", &json!({})).unwrap();

    // The bridge restarts on the same address without a history file: the client comes
    // back by itself, says events may have been missed, and receives again.
    let again = bridge.restart();
    let reset = script.expect("events were missed");
    assert!(reset.contains("article:*"), "{reset}");
    again.wait_metric("push_bridge_subscriptions", 2.0);
    let id = again
        .publisher()
        .publish("package_created", &json!({"n": 2}))
        .unwrap();
    let line = script.expect(&id);
    assert!(line.starts_with("package_created "), "{line}");
}
