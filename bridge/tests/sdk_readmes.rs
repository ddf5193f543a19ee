//! Every publishing example in the documentation runs as written. The shell, Python,
//! PHP and Node.js examples of `docs/publishing.md` and the examples of the clients'
//! READMEs (`publisher-sdk/{python,php,node}/README.md`) are read from the Markdown at
//! test time, so editing a page changes what runs here. Each runs against its own
//! real bridge, and a native WebSocket client subscribed to the example's topics must
//! receive exactly the events it published (topic, data, the id it chose), the first
//! one with the id the example printed. The Rust examples of those pages are compiled
//! by `cargo test --doc` (`publisher-sdk/src/lib.rs` includes the Markdown).
//!
//! Which block is an example: a page's only ```` ```python ````, ```` ```php ```` or
//! ```` ```js ```` block, and its ```` ```sh ```` block of `push-bridge publish`
//! commands.
//!
//! What the test changes, and nothing else: the examples publish to the bridge's
//! default PULL endpoint `tcp://127.0.0.1:5555`; each runs against a bridge on a
//! private port instead, so that string (and only it) is replaced by the bridge's
//! endpoint. The install step is done the way the pages allow: the Python module and
//! the PHP class are copied next to the script, the Node package is linked into a
//! `node_modules` beside it (what `npm install ./publisher-sdk/node` makes), and the
//! directory of the `push-bridge` binary under test comes first on `PATH`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

/// The endpoint every example publishes to: the bridge's default `ingress.pull`.
const DEFAULT_ENDPOINT: &str = "tcp://127.0.0.1:5555";

/// One event an example publishes, as a subscribed client must receive it.
struct Expected {
    topic: &'static str,
    data: Value,
    /// The id the example gives; `None`: a generated one.
    id: Option<&'static str>,
}

fn event(topic: &'static str, data: Value, id: Option<&'static str>) -> Expected {
    Expected { topic, data, id }
}

/// What the examples of docs/publishing.md publish, in order.
fn publishing_guide_events() -> Vec<Expected> {
    vec![
        event("package_created", json!({"state": "create"}), None),
        event(
            "article:42",
            json!({"title": "Hello"}),
            Some("article-42-v3"),
        ),
    ]
}

/// What the examples of the Python and Node READMEs publish, in order.
fn client_readme_events() -> Vec<Expected> {
    vec![
        event("package_created", json!({"state": "create"}), None),
        event(
            "article:42",
            json!({"title": "Hello"}),
            Some("article-42-v3"),
        ),
        event("tenant:7:news", json!({"title": "Hello"}), None),
    ]
}

fn repo_file(path: &str) -> PathBuf {
    repo_root().join(path)
}

/// The example in `language` of the page at `path` (relative to the repository).
fn example(path: &str, language: &str) -> String {
    let markdown = std::fs::read_to_string(repo_file(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let mut examples: Vec<String> = markdown_code_blocks(&markdown)
        .into_iter()
        .filter(|(info, code)| {
            info.split([' ', ',']).next() == Some(language)
                && (language != "sh" || code.contains("push-bridge publish"))
        })
        .map(|(_, code)| code)
        .collect();
    assert_eq!(
        examples.len(),
        1,
        "{path} should have exactly one {language} example (run any new one here)"
    );
    examples.remove(0)
}

/// Replaces the default endpoint, the one thing the test changes in an example.
fn with_endpoint(code: &str, endpoint: &str) -> String {
    assert!(
        code.contains(DEFAULT_ENDPOINT),
        "the example does not publish to {DEFAULT_ENDPOINT}:\n{code}"
    );
    code.replace(DEFAULT_ENDPOINT, endpoint)
}

/// Writes the example into a fresh directory laid out as the page's install step
/// leaves it, runs it there and returns its standard output.
fn run_example(language: &str, code: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy_next_to_script = |from: &str, name: &str| {
        std::fs::copy(repo_file(from), dir.path().join(name))
            .unwrap_or_else(|e| panic!("cannot copy {from}: {e}"));
    };
    let (program, script) = match language {
        "python" => {
            copy_next_to_script(
                "publisher-sdk/python/push_bridge_publisher.py",
                "push_bridge_publisher.py",
            );
            ("python3", "example.py")
        }
        "php" => {
            copy_next_to_script("publisher-sdk/php/src/Publisher.php", "Publisher.php");
            ("php", "example.php")
        }
        "js" => {
            let package = node_publisher_dir();
            std::fs::create_dir(dir.path().join("node_modules")).expect("node_modules");
            std::os::unix::fs::symlink(
                &package,
                dir.path().join("node_modules/push-bridge-publisher"),
            )
            .expect("link the Node package");
            ("node", "example.js")
        }
        "sh" => ("sh", "example.sh"),
        other => panic!("no runner for {other} examples"),
    };
    std::fs::write(dir.path().join(script), code).expect("write the example");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_push-bridge"))
        .parent()
        .expect("the binary's directory");
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    let child = Command::new(program)
        // sh -e: any failing command fails the example, not only the last one.
        .args((program == "sh").then_some("-e"))
        .arg(script)
        .current_dir(dir.path())
        .env("PATH", path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): run scripts/test, which installs it")
        });
    let output = output_within(child);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the {language} example failed ({}):\n{code}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs the `language` example of the page at `path` against a real bridge and checks
/// that a subscribed client receives `expected`, in order, and nothing else.
async fn example_delivers(path: &str, language: &str, expected: Vec<Expected>) {
    let code = example(path, language);
    let bridge = Bridge::start();
    let topics: Vec<&str> = expected.iter().map(|e| e.topic).collect();
    let mut ws = native_client(&bridge, &topics).await;

    let stdout = run_example(language, &with_endpoint(&code, &bridge.zmq));

    let mut received = Vec::new();
    for want in &expected {
        // Sooner than next_json's own limit, to say what the example printed instead.
        let got = tokio::time::timeout(WAIT / 2, next_json(&mut ws))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{path} {language}: no event on {} after the example ran; it printed:\n{stdout}",
                    want.topic
                )
            });
        assert_eq!(got["type"], "event", "{got}");
        assert_eq!(got["topic"], want.topic, "{path} {language}: {got}");
        assert_eq!(got["data"], want.data, "{path} {language}: {got}");
        if let Some(id) = want.id {
            assert_eq!(got["id"], id, "{path} {language}: {got}");
        }
        received.push(got);
    }
    assert_silent(&mut ws, Duration::from_millis(300)).await;
    let first_id = received[0]["id"].as_str().expect("an event id");
    assert!(
        stdout.contains(first_id),
        "{path} {language}: the example printed {stdout:?}, not the id of its first event {first_id}"
    );
}

#[tokio::test]
async fn publishing_guide_shell_example() {
    example_delivers("docs/publishing.md", "sh", publishing_guide_events()).await;
}

#[tokio::test]
async fn publishing_guide_python_example() {
    example_delivers("docs/publishing.md", "python", publishing_guide_events()).await;
}

#[tokio::test]
async fn publishing_guide_php_example() {
    example_delivers("docs/publishing.md", "php", publishing_guide_events()).await;
}

#[tokio::test]
async fn publishing_guide_node_example() {
    example_delivers("docs/publishing.md", "js", publishing_guide_events()).await;
}

#[tokio::test]
async fn python_readme_example() {
    example_delivers(
        "publisher-sdk/python/README.md",
        "python",
        client_readme_events(),
    )
    .await;
}

#[tokio::test]
async fn php_readme_example() {
    let mut events = client_readme_events();
    events[0].data = json!({"package": {"id": 1}, "state": "create"});
    example_delivers("publisher-sdk/php/README.md", "php", events).await;
}

#[tokio::test]
async fn node_readme_example() {
    example_delivers("publisher-sdk/node/README.md", "js", client_readme_events()).await;
}

#[test]
fn code_blocks_are_found_with_their_language() {
    let markdown = "text\n```sh\necho a\n```\n\n```rust no_run\nfn main() {}\n```\n";
    assert_eq!(
        markdown_code_blocks(markdown),
        [
            ("sh".to_string(), "echo a\n".to_string()),
            ("rust no_run".to_string(), "fn main() {}\n".to_string()),
        ]
    );
}
