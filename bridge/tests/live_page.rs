//! The live page at `/` (docs/protocol.md "HTTP endpoints") and the client library it
//! is built on, at `/push-bridge-client.js`: their headers, and the page itself in a
//! real browser. The browser tests run `tests/browser/live_page.mjs` (playwright-core
//! from npm) against Debian's headless Chromium, never a downloaded browser;
//! `scripts/test` installs both. The page connects with the token from its own URL (or
//! without one, anonymously), subscribes as a user would, shows an event published
//! through ZeroMQ (as text, never as markup), and resumes with `since` after a
//! reconnect, in cluster mode on another node than the one it left (a `redis-server` of
//! the test's own). A screenshot is kept in `target/test-artifacts/live-page.png`.

mod support;

use std::path::Path;

use serde_json::json;
use support::browser::{artifact, Driver, BROWSER_WAIT};
use support::*;

#[test]
fn the_page_is_html_with_a_strict_policy() {
    let bridge = Bridge::start();
    let (head, body) = get_ok(&bridge, "/");
    assert_eq!(header(&head, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&head, "cache-control"), "no-cache");
    let csp = header(&head, "content-security-policy");
    assert!(csp.starts_with("default-src 'none'; "), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(csp.contains("script-src 'self' 'sha256-"), "{csp}");
    assert!(csp.contains("style-src 'sha256-"), "{csp}");
    assert!(csp.contains("connect-src 'self' ws: wss:"), "{csp}");
    // The page loads the client library from its own origin, relative to itself, and
    // nothing from anywhere else.
    assert!(
        body.contains(r#"<script type="module">"#)
            && body.contains(r#"import { connect } from "./push-bridge-client.js";"#),
        "{body}"
    );
    assert!(!body.contains("http://") && !body.contains("https://") && !body.contains(" src="));

    // Only `/` is the page; other paths without an upgrade stay 404.
    assert_eq!(http_get(bridge.addr, "/live").unwrap().0, 404);
}

/// The library is served as the file npm ships, to any origin that imports it; an
/// upgrade on its path is still a WebSocket, as on any path.
#[tokio::test]
async fn the_client_library_is_served_beside_the_page() {
    let bridge = Bridge::start();
    let (head, body) = get_ok(&bridge, "/push-bridge-client.js");
    assert_eq!(
        header(&head, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(header(&head, "cache-control"), "no-cache");
    assert_eq!(header(&head, "x-content-type-options"), "nosniff");
    assert_eq!(header(&head, "access-control-allow-origin"), "*");
    assert!(
        body == include_str!("../../clients/js/src/index.js"),
        "the body is not clients/js/src/index.js"
    );

    let url = format!(
        "ws://{}/push-bridge-client.js?token={}",
        bridge.addr,
        bridge.token()
    );
    let (mut ws, protocol) = connect(&url, &["push-bridge.v1"], &[]).await.unwrap();
    assert_eq!(protocol.as_deref(), Some("push-bridge.v1"));
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
}

/// GET `path`, which must answer 200: its head and body.
fn get_ok(bridge: &Bridge, path: &str) -> (String, String) {
    let (status, response) = http_get(bridge.addr, path).unwrap();
    assert_eq!(status, 200, "{response}");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// The value of header `name` in `head`.
fn header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {name} header in {head}"))
}

#[test]
fn the_page_shows_events_and_resumes_after_a_reconnect() {
    let bridge = Bridge::start();
    let page = format!("http://{}/?token={}", bridge.addr, bridge.token());
    let (first, second) = (unique("first"), unique("second"));
    let mut script = live_page(
        "live-page.png",
        Page {
            url: &page,
            patterns: "package_created, article:*",
            topic: "article:42",
            uniques: [&first, &second],
            mode: "resume",
        },
    );
    let publisher = bridge.publisher();

    script.expect("subscribed");
    publisher
        .publish(
            "article:42",
            &json!({"headline": "<img src=x onerror=\"window.injected=1\">", "unique": first}),
        )
        .unwrap();

    script.expect("disconnected");
    publisher
        .publish("article:42", &json!({"unique": second, "n": [1, 2]}))
        .unwrap();
    // In history before the page comes back, so it must be replayed, not sent live.
    bridge.wait_metric("push_bridge_history_events", 2.0);
    script.say("published");

    script.expect("done");
    script.finish();
    let screenshot = artifact("live-page.png");
    assert!(
        std::fs::metadata(&screenshot)
            .map(|m| m.len() > 0)
            .unwrap_or(false),
        "no screenshot at {}",
        screenshot.display()
    );
}

/// The bridge goes away and comes back on the same address without its history: the
/// page reconnects by itself, subscribes again and says it did not recover.
#[test]
fn the_page_reconnects_by_itself_after_a_restart() {
    let tokens = tempfile::tempdir().unwrap();
    let auth = tokens_file(tokens.path(), LIVE_TOKEN);
    let bridge = Bridge::start_with(&auth);
    let (addr, zmq) = (bridge.addr, bridge.zmq.clone());
    let config = std::fs::read_to_string(bridge.config_path()).unwrap();
    let page = format!("http://{addr}/?token=live-token");
    let (first, second) = (unique("before"), unique("after"));
    let mut script = live_page(
        "live-page-restart.png",
        Page {
            url: &page,
            patterns: "package_created",
            topic: "package_created",
            uniques: [&first, &second],
            mode: "restart",
        },
    );
    script.expect("subscribed");
    bridge
        .publisher()
        .publish(
            "package_created",
            &json!({"unique": first, "markup": "<img src=x>"}),
        )
        .unwrap();
    script.expect("seen");
    drop(bridge);
    script.expect("reconnecting");

    let bridge = Bridge::start_raw(tempfile::tempdir().unwrap(), addr, zmq, &config, &[]);
    script.expect("resubscribed");
    bridge
        .publisher()
        .publish("package_created", &json!({"unique": second}))
        .unwrap();
    script.expect("done");
    script.finish();
}

/// Cluster mode: the node serving the page dies and another node of the same cluster
/// comes up on its address (what a balancer in front of them does for the page). An
/// event published to a third node while the page was away is in the shared log: the
/// page reconnects by itself, resumes on the new node, and shows it, once.
#[test]
fn the_page_resumes_on_another_cluster_node() {
    let redis = support::redis::RedisServer::start();
    let stream = "live-page-move";
    let tokens = tempfile::tempdir().unwrap();
    let auth = tokens_file(tokens.path(), LIVE_TOKEN);
    let node = |name: &str| {
        format!(
            "{auth}\n{}",
            support::redis::cluster_config(&redis, stream, name)
        )
    };
    let first_node = Bridge::start_with(&node("node-a"));
    let third_node = Bridge::start_with(&node("node-c"));
    support::redis::wait_readyz(&first_node, 200, BROWSER_WAIT);
    support::redis::wait_readyz(&third_node, 200, BROWSER_WAIT);
    let (addr, zmq) = (first_node.addr, first_node.zmq.clone());
    let config = std::fs::read_to_string(first_node.config_path())
        .unwrap()
        .replace("node = \"node-a\"", "node = \"node-b\"");
    assert!(config.contains("node = \"node-b\""), "{config}");
    let page = format!("http://{addr}/?token=live-token");
    let (first, second) = (unique("before"), unique("missed"));
    let mut script = live_page(
        "live-page-cluster.png",
        Page {
            url: &page,
            patterns: "package_created",
            topic: "package_created",
            uniques: [&first, &second],
            mode: "move",
        },
    );
    script.expect("subscribed");
    first_node
        .publisher()
        .publish(
            "package_created",
            &json!({"unique": first, "markup": "<img src=x>"}),
        )
        .unwrap();
    script.expect("seen");
    drop(first_node);
    script.expect("reconnecting");

    // Published to another node while the page is away: only a resume can bring it.
    third_node
        .publisher()
        .publish("package_created", &json!({"unique": second}))
        .unwrap();
    wait_until(BROWSER_WAIT, "the event to reach the log", || {
        support::redis::log_length(redis.port, stream) == 2
    });
    let second_node = Bridge::start_raw(tempfile::tempdir().unwrap(), addr, zmq, &config, &[]);
    script.expect("resumed");
    script.expect("done");
    script.finish();
    assert_eq!(support::cluster::resumes(&second_node, "recovered"), 1.0);
}

/// A token that cannot be a subprotocol entry (`/`, `=`, `+`) goes in the WebSocket
/// URL instead, and still gets in.
#[test]
fn a_token_that_is_no_subprotocol_goes_in_the_url() {
    let tokens = tempfile::tempdir().unwrap();
    let bridge = Bridge::start_with(&tokens_file(
        tokens.path(),
        "[[token]]\nname = \"odd\"\ntoken = \"dash/board=1+2\"\ntopics = [\"article:*\"]\n",
    ));
    let page = format!("http://{}/?token=dash%2Fboard%3D1%2B2", bridge.addr);
    page_shows_one_event(&bridge, &page, "live-page-token-in-url.png", "article:1");
}

/// A bridge that lets clients without a token in: the page, without `?token=`, connects
/// anonymously.
#[test]
fn without_a_token_the_page_connects_anonymously() {
    let bridge =
        Bridge::start_with("auth.allow_anonymous = true\nauth.anonymous_topics = [\"article:*\"]");
    let page = format!("http://{}/", bridge.addr);
    page_shows_one_event(&bridge, &page, "live-page-anonymous.png", "article:7");
}

/// The page at `page` subscribes to `article:*` and shows one event published on
/// `topic` (its data as text), then the script is done.
fn page_shows_one_event(bridge: &Bridge, page: &str, screenshot: &str, topic: &str) {
    let unique = unique("one-event");
    let mut script = live_page(
        screenshot,
        Page {
            url: page,
            patterns: "article:*",
            topic,
            uniques: [&unique, ""],
            mode: "simple",
        },
    );
    script.expect("subscribed");
    bridge
        .publisher()
        .publish(topic, &json!({"unique": unique, "text": "<img src=x>"}))
        .unwrap();
    script.expect("done");
    script.finish();
}

/// The token of the tokens file most tests here write (see [`tokens_file`]).
const LIVE_TOKEN: &str = "[[token]]\nname = \"live\"\ntoken = \"live-token\"\n";

/// Writes `tokens` (`[[token]]` tables) to `tokens.toml` in `dir`; returns the config
/// line that points a bridge at it.
fn tokens_file(dir: &Path, tokens: &str) -> String {
    let file = dir.join("tokens.toml");
    std::fs::write(&file, tokens).unwrap();
    format!("auth.tokens_file = \"{}\"", file.display())
}

/// A value no other event carries, to find this event on the page.
fn unique(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{label}-{}-{nanos}", std::process::id())
}

/// What the browser script does (its `LIVE_…` environment): open `url`, subscribe to
/// `patterns`, wait for events on `topic` carrying `uniques` (the second one empty when
/// the mode needs only one), following the scenario `mode` of live_page.mjs.
struct Page<'a> {
    url: &'a str,
    patterns: &'a str,
    topic: &'a str,
    uniques: [&'a str; 2],
    mode: &'a str,
}

/// Starts live_page.mjs on `page`; it saves its screenshot as `screenshot` among the
/// test artifacts.
fn live_page(screenshot: &str, page: Page) -> Driver {
    let screenshot = artifact(screenshot);
    std::fs::create_dir_all(screenshot.parent().unwrap()).unwrap();
    let screenshot = screenshot.to_str().expect("a UTF-8 path");
    Driver::start(
        "live_page.mjs",
        &[
            ("LIVE_URL", page.url),
            ("LIVE_PATTERNS", page.patterns),
            ("LIVE_TOPIC", page.topic),
            ("LIVE_UNIQUE1", page.uniques[0]),
            ("LIVE_UNIQUE2", page.uniques[1]),
            ("LIVE_MODE", page.mode),
            ("LIVE_SCREENSHOT", screenshot),
        ],
    )
}
