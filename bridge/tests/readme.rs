//! The README's first steps, typed as a newcomer types them: the run command starts the
//! bridge on its defaults and prints the banner with a one-time token, a client sends the
//! README's subscribe line, the README's publish command reaches it, and the client
//! prints what the README says it prints.
//!
//! The commands are taken from README.md itself, so editing them there is what this
//! test checks. The only change made to them is dropping `--release` (a debug build is
//! enough, and the test suite has built it already). They run on the default ports
//! (8080 and 5555), so this test is `#[ignore]`d in the main run and `scripts/test`
//! runs it on its own afterwards (`--run-ignored only`), after a plain `cargo build`
//! built the bridge the way `cargo run` does.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::*;

/// The first build may take a while even in debug (the test suite has built the
/// bridge, but `cargo run` may still compile what differs).
const FIRST_START: Duration = Duration::from_secs(600);

/// The fenced code blocks of the section headed exactly `## heading`, each as its
/// lines.
fn code_blocks(readme: &str, heading: &str) -> Vec<Vec<String>> {
    let section = readme
        .split("\n## ")
        .find(|s| s.lines().next() == Some(heading))
        .unwrap_or_else(|| panic!("README.md has no section \"## {heading}\""));
    let mut blocks = Vec::new();
    let mut block: Option<Vec<String>> = None;
    for line in section.lines() {
        match (&mut block, line.trim_start().starts_with("```")) {
            (None, true) => block = Some(Vec::new()),
            (Some(_), true) => blocks.push(block.take().unwrap()),
            (Some(lines), false) => lines.push(line.to_string()),
            (None, false) => {}
        }
    }
    blocks
}

/// The one line of `blocks` that starts with `prefix`.
fn line_starting<'a>(blocks: &'a [Vec<String>], prefix: &str) -> &'a str {
    let found: Vec<&String> = blocks
        .iter()
        .flatten()
        .filter(|l| l.starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "one line starting {prefix:?}: {found:?}");
    found[0]
}

/// Runs a README command line through the shell in the repository, as a user would,
/// minus `--release`, in a process group of its own (so cargo and the bridge it runs
/// stop together).
fn typed(command: &str) -> Command {
    let command = command.replace(" --release", "");
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(&command)
        .current_dir(repo_root())
        .process_group(0);
    // The test's environment is not the newcomer's.
    without_bridge_env(&mut shell);
    shell
}

/// Stops the bridge `cargo run` started (SIGTERM to the group).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

#[tokio::test]
#[ignore = "runs on the default ports: scripts/test runs it alone"]
async fn the_readme_commands_work_as_written() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let run_blocks = code_blocks(&readme, "Run it");
    let run = line_starting(&run_blocks, "cargo run");
    assert_eq!(run, "cargo run --release", "the README's run command");
    let first_event = code_blocks(&readme, "Publish a first event and see it");
    let websocat = line_starting(&first_event, "websocat ");
    let subscribe = line_starting(&first_event, "{\"type\":\"subscribe\"");
    let publish = line_starting(&first_event, "cargo run --release -- publish ");
    let expected_event = readme
        .split('`')
        .find(|s| s.starts_with("{\"type\":\"event\""))
        .expect("the README shows the event the client prints");

    for port in [8080, 5555] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} is in use: the README's defaults need it free for this test"
        );
    }

    // `cargo run`: the banner, with the token and its URLs.
    let mut bridge = typed(run)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sh");
    let stdout = bridge.stdout.take().unwrap();
    let stderr = bridge.stderr.take().unwrap();
    let bridge = Running(bridge);
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    // cargo's own output (and the bridge's log) goes to stderr: keep it for failures.
    let (log_tx, log) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });
    let mut banner = Vec::new();
    let deadline = Instant::now() + FIRST_START;
    while !banner
        .iter()
        .any(|l: &String| l.starts_with("Publish an event:"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => banner.push(line),
            Err(_) => panic!(
                "no banner from `{run}` (without --release); stdout: {banner:#?}\nstderr: {:#?}",
                log.try_iter().collect::<Vec<_>>()
            ),
        }
    }
    assert_eq!(
        banner[0],
        "push-bridge is running. No token kind is configured, so this one-time token was generated:"
    );
    let token = banner[2].trim().to_string();
    assert_eq!(token.len(), 64, "token line: {:?}", banner[2]);
    let wamp_url = format!("ws://127.0.0.1:8080/?token={token}");
    assert!(
        banner
            .iter()
            .any(|l| l.starts_with("WebSocket (WAMP v1, Superdesk clients):")
                && l.ends_with(&wamp_url)),
        "{banner:#?}"
    );

    // The README's client: websocat with its subprotocol and the token in the URL.
    let protocol = websocat
        .split_whitespace()
        .skip_while(|w| *w != "--protocol")
        .nth(1)
        .expect("websocat --protocol P");
    let url = websocat
        .split('"')
        .nth(1)
        .expect("the quoted URL")
        .replace("<token>", &token);
    let (mut client, selected) = connect(&url, &[protocol], &[]).await.expect("connect");
    assert_eq!(selected.as_deref(), Some(protocol));
    assert_eq!(next_json(&mut client).await["type"], "welcome");
    send(&mut client, subscribe).await;
    assert_eq!(next_json(&mut client).await["type"], "subscribed");

    // `cargo run -- publish …`: prints the id, exits 0.
    let published = output_within(
        typed(publish)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sh"),
    );
    assert!(
        published.status.success(),
        "`{publish}` (without --release): {}",
        String::from_utf8_lossy(&published.stderr)
    );
    let id = String::from_utf8(published.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(!id.is_empty(), "publish printed no id");

    // What the client prints is the README's line, with this event's id.
    let printed = next_text(&mut client).await;
    assert_eq!(printed, expected_event.replace('…', &id));
    drop(bridge);
}
