//! The Superdesk drop-in (docs/superdesk.md), proven with real parts: Superdesk
//! Publisher's own producer code path (php-cli + php-zmq, a persistent PUSH socket as
//! GosWebSocketBundle's ZmqPusher builds it, `tests/php/superdesk_pusher.php`) and the
//! Ratchet push tutorial's producer (`tests/php/ratchet_pusher.php`), against the real
//! binary, received by clients that replay the Superdesk UI's exact bytes
//! (superdesk-publisher `client/services/websocket.js`) and autobahn.js 0.8's.

mod support;

use serde_json::{json, Value};
use support::*;

/// A Publisher API key as `ApiKeyFactory` makes them: base64 of 36 random bytes and
/// `:`, so it holds `+`, `/` and `=`. The Superdesk UI appends it to the URL unencoded.
const API_KEY: &str = "J9/dKh+uTkC35iIlO2cr+BQDRpPJhf1MyRVRdrcjtc4zd0wNOg==";

/// What the Superdesk UI sends once welcomed, spaces included, in its two released
/// forms (superdesk-publisher `client/services/websocket.js`): first only packages,
/// later also content lists.
const UI: &[&str] = &[r#"[5, "package_created"]"#];
const UI_WITH_CONTENT_LISTS: &[&str] =
    &[r#"[5, "package_created"]"#, r#"[5, "content_list_update"]"#];

/// A bridge that knows [`API_KEY`] through a static tokens file (kept in the bridge's
/// directory), plus `extra` config.
fn superdesk_bridge(extra: &str) -> Bridge {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"superdesk-publisher\"\ntoken = \"{API_KEY}\"\n\
             topics = [\"package_created\", \"content_list_update\", \"kittensCategory\"]\n"
        ),
    )
    .expect("write tokens file");
    let addr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let zmq = format!("tcp://127.0.0.1:{}", free_port());
    let config = format!(
        "server.listen = \"{addr}\"\ningress.pull = [\"{zmq}\"]\n\
         auth.tokens_file = \"{}\"\n{extra}\n",
        tokens.display()
    );
    Bridge::start_raw(dir, addr, zmq, &config, &[])
}

/// Opens a connection as the Superdesk UI does: `new WebSocket(url)` with no
/// subprotocol, waits for the frame whose element 0 is 0 (WELCOME), then sends its
/// subscriptions ([`UI`] or [`UI_WITH_CONTENT_LISTS`]).
async fn superdesk_ui(url: &str, subscribes: &[&str]) -> Ws {
    let (mut ws, protocol) = connect(url, &[], &[])
        .await
        .unwrap_or_else(|e| panic!("upgrade of {url} refused: {e:?}"));
    assert_eq!(protocol, None, "nothing offered, nothing answered");
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome[0], 0, "the first frame is WELCOME: {welcome}");
    assert!(welcome[1].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(welcome[2], 1);
    assert_eq!(
        welcome[3],
        format!("push-bridge/{}", env!("CARGO_PKG_VERSION"))
    );
    for frame in subscribes {
        send(&mut ws, frame).await;
    }
    ws
}

/// An autobahn.js 0.8 session: offers `wamp`, requires it echoed, and subscribes with
/// `JSON.stringify` (no space).
async fn autobahn_08(url: &str, topic: &str) -> Ws {
    let (mut ws, protocol) = connect(url, &["wamp"], &[]).await.expect("upgrade");
    assert_eq!(
        protocol.as_deref(),
        Some("wamp"),
        "autobahn.js fails the handshake unless `wamp` is echoed"
    );
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome[0], 0);
    assert_eq!(welcome[2], 1);
    send(&mut ws, &json!([5, topic]).to_string()).await;
    ws
}

/// Runs Superdesk Publisher's pusher against the bridge; returns the frames PHP sent.
fn push_superdesk_packages(bridge: &Bridge) -> Vec<String> {
    let frames: Vec<String> = php("superdesk_pusher.php", &[&bridge.zmq])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(frames.len(), 2, "a create and an update: {frames:?}");
    frames
}

/// The `data` of a frame PHP sent, checked to be Superdesk's envelope and to carry
/// PHP's escapes (so the bridge really parsed `\/` and `\uXXXX`).
fn envelope_data(frame: &str) -> Value {
    assert!(frame.contains(r"https:\/\/cdn.example.com"), "{frame}");
    assert!(frame.contains(r"Z\u00fcrich"), "{frame}");
    assert!(
        frame.contains(r"\ud83c\udf29"),
        "an emoji as a surrogate pair"
    );
    let envelope: Value = serde_json::from_str(frame).expect("PHP sent JSON");
    assert_eq!(envelope["topic"], "package_created");
    envelope["data"].clone()
}

/// What the Superdesk UI does with a frame: `[8, _, d]` and `d.package` present.
fn ui_package(frame: &Value) -> (&Value, &str) {
    assert_eq!(frame[0], 8, "{frame}");
    assert_eq!(frame[1], "package_created");
    let data = &frame[2];
    (&data["package"], data["state"].as_str().expect("state"))
}

#[tokio::test]
async fn superdesk_php_pusher_reaches_the_superdesk_ui_with_an_unencoded_api_key() {
    let bridge = superdesk_bridge("");
    let root = format!("ws://{}/?token={API_KEY}", bridge.addr);
    let proxied = format!("ws://{}/ws?token={API_KEY}", bridge.addr);
    let mut clients = vec![
        superdesk_ui(&root, UI).await,
        superdesk_ui(&proxied, UI_WITH_CONTENT_LISTS).await,
    ];
    bridge.wait_metric("push_bridge_subscriptions", 3.0);

    let frames = push_superdesk_packages(&bridge);
    for ws in &mut clients {
        for (frame, state) in frames.iter().zip(["create", "update"]) {
            let expected = envelope_data(frame);
            let received = next_json(ws).await;
            assert_eq!(received, json!([8, "package_created", expected]));
            let (package, got_state) = ui_package(&received);
            assert_eq!(got_state, state, "creates and updates in push order");
            // Independently of PHP's own output: the escapes were decoded, the empty
            // PHP array stayed a list, nesting survived.
            assert_eq!(package["located"], "Zürich");
            assert!(package["description"]
                .as_str()
                .is_some_and(|d| d.ends_with("MétéoSuisse 🌩")));
            assert_eq!(
                package["items"][0]["renditions"]["original"]["href"],
                "https://cdn.example.com/media/2026/11/20/baum.jpg"
            );
            assert_eq!(package["extra"], json!([]));
            assert_eq!(package["subjects"][0]["scheme"], Value::Null);
        }
        assert_silent(ws, std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        bridge.metric(r#"push_bridge_ingress_rejected_total{reason="bad_json"}"#),
        0.0
    );
}

#[tokio::test]
async fn the_api_key_must_really_match() {
    let bridge = superdesk_bridge("");
    // Properly encoded (as a careful client would send it): accepted too.
    let encoded: String = form_urlencoded::byte_serialize(API_KEY.as_bytes()).collect();
    assert!(
        encoded.contains("%2B") && encoded.contains("%2F"),
        "{encoded}"
    );
    let mut ws = superdesk_ui(&format!("ws://{}/?token={encoded}", bridge.addr), UI).await;
    bridge.wait_metric("push_bridge_subscriptions", 1.0);
    push_superdesk_packages(&bridge);
    assert_eq!(ui_package(&next_json(&mut ws).await).1, "create");

    // `+` is tried as `+` and as a space, nothing looser: a real space, a truncated
    // key, another key, and no key are all refused before the upgrade.
    let spaced = API_KEY.replace('+', "%20");
    let truncated = &API_KEY[..API_KEY.len() - 2];
    for query in [
        format!("token={spaced}"),
        format!("token={truncated}"),
        "token=bm90IGEgcHVibGlzaGVyIGtleQ==".to_string(),
        String::new(),
    ] {
        let url = format!("ws://{}/ws?{query}", bridge.addr);
        let (status, body) = refused_status(&url, &[], &[]).await;
        assert_eq!(status, 401, "{query}: {body}");
        let body: Value = serde_json::from_str(&body).expect("JSON error body");
        let expected = if query.is_empty() {
            "missing_token"
        } else {
            "unknown_token"
        };
        assert_eq!(body["error"], expected, "{query}");
    }
}

#[tokio::test]
async fn parity_mode_lets_clients_without_a_token_subscribe_as_superdesk_did() {
    let bridge = superdesk_bridge(
        "auth.allow_anonymous = true\nauth.anonymous_topics = [\"package_created\"]\n\
         ingress.topic_field = \"category\"",
    );
    // Token-less, at `/` and behind a proxy path, next to a keyed client. All ask for
    // topics anonymous clients may not see (content lists, kittens): for anonymous
    // clients these are ignored silently (WAMP v1 has no subscribe error); the API key
    // permits them.
    let mut anonymous = superdesk_ui(&format!("ws://{}/", bridge.addr), UI).await;
    let mut proxied =
        superdesk_ui(&format!("ws://{}/ws", bridge.addr), UI_WITH_CONTENT_LISTS).await;
    let mut keyed = superdesk_ui(
        &format!("ws://{}/?token={API_KEY}", bridge.addr),
        UI_WITH_CONTENT_LISTS,
    )
    .await;
    for ws in [&mut anonymous, &mut proxied, &mut keyed] {
        send(ws, r#"[5, "kittensCategory"]"#).await;
    }
    // anonymous 1, proxied 1 (content lists refused), keyed 3.
    bridge.wait_metric("push_bridge_subscriptions", 5.0);
    bridge.wait_metric(
        r#"push_bridge_refused_client_actions_total{protocol="wamp1",action="subscribe"}"#,
        3.0,
    );

    let frames = push_superdesk_packages(&bridge);
    for ws in [&mut anonymous, &mut proxied, &mut keyed] {
        for frame in &frames {
            let received = next_json(ws).await;
            assert_eq!(
                received,
                json!([8, "package_created", envelope_data(frame)])
            );
        }
    }
    php("ratchet_pusher.php", &[&bridge.zmq, "kittensCategory"]);
    assert_eq!(next_json(&mut keyed).await[1], "kittensCategory");
    for ws in [&mut anonymous, &mut proxied, &mut keyed] {
        assert_silent(ws, std::time::Duration::from_millis(200)).await;
    }

    // Anonymous access is for clients with no token: a wrong token is still refused.
    let url = format!("ws://{}/?token=bm90IGEga2V5", bridge.addr);
    assert_eq!(refused_status(&url, &[], &[]).await.0, 401);

    // Without parity mode, the token-less Superdesk UI gets 401 before the upgrade.
    let strict = superdesk_bridge("");
    for path in ["/", "/ws"] {
        let url = format!("ws://{}{path}", strict.addr);
        let (status, body) = refused_status(&url, &[], &[]).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body.contains("missing_token"), "{body}");
    }
}

#[tokio::test]
async fn ratchet_tutorial_pusher_with_category_as_topic_field() {
    let bridge = superdesk_bridge("ingress.topic_field = \"category\"");
    let url = format!("ws://{}?token={API_KEY}", bridge.addr);
    let mut kittens = autobahn_08(&url, "kittensCategory").await;
    let mut packages = autobahn_08(&url, "package_created").await;
    bridge.wait_metric("push_bridge_subscriptions", 2.0);

    // The tutorial connects to tcp://localhost:5555.
    let endpoint = bridge.zmq.replace("127.0.0.1", "localhost");
    let sent = php("ratchet_pusher.php", &[&endpoint, "kittensCategory"]);
    assert!(
        sent.contains(r"\/") && sent.contains(r"\ud83d\udc31"),
        "{sent}"
    );
    let entry: Value = serde_json::from_str(sent.trim()).expect("PHP sent JSON");
    assert_eq!(entry["category"], "kittensCategory");
    assert!(entry["when"].is_u64(), "time() is an integer");

    // The whole object, category included, on the category's topic.
    assert_eq!(
        next_json(&mut kittens).await,
        json!([8, "kittensCategory", entry])
    );
    assert_silent(&mut packages, std::time::Duration::from_millis(200)).await;

    // Superdesk's envelope still works next to the legacy form.
    let frames = push_superdesk_packages(&bridge);
    assert_eq!(
        next_json(&mut packages).await,
        json!([8, "package_created", envelope_data(&frames[0])])
    );
    assert_silent(&mut kittens, std::time::Duration::from_millis(200)).await;
}

#[tokio::test]
async fn autobahn_08_client_and_superdesk_ui_receive_the_same_push() {
    let bridge = superdesk_bridge("");
    // ab.Session('ws://127.0.0.1:8080?token=…', …) as Publisher's websocket cookbook has it.
    let url = format!("ws://{}?token={API_KEY}", bridge.addr);
    let mut autobahn = autobahn_08(&url, "package_created").await;
    let mut ui = superdesk_ui(&url, UI_WITH_CONTENT_LISTS).await;
    bridge.wait_metric("push_bridge_subscriptions", 3.0);

    let frames = push_superdesk_packages(&bridge);
    for frame in &frames {
        let expected = json!([8, "package_created", envelope_data(frame)]);
        assert_eq!(next_json(&mut autobahn).await, expected);
        assert_eq!(next_json(&mut ui).await, expected);
    }
}
