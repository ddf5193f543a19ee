//! SIGHUP reload (docs/operations.md "Signals") and secrets in logs, against the real
//! binary.

mod support;

use std::time::Duration;

use support::*;

const TOKENS: &str = r#"
[[token]]
name = "keeper"
token = "keeper-secret-1"

[[token]]
name = "leaver"
token = "leaver-secret-2"
"#;

fn bridge_with_tokens(tokens: &str, extra: &str) -> (Bridge, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    std::fs::write(&path, tokens).unwrap();
    let bridge = Bridge::start_with(&format!(
        "auth.tokens_file = \"{}\"\n{extra}",
        path.display()
    ));
    // Keep the tokens directory alive with the bridge.
    std::mem::forget(dir);
    (bridge, path)
}

async fn subscribed(bridge: &Bridge, token: &str) -> Ws {
    let mut ws = native_with_token(bridge, token).await;
    send(&mut ws, r#"{"type":"subscribe","topics":["news"]}"#).await;
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    ws
}

#[tokio::test]
async fn a_removed_static_token_is_revoked_with_4003_and_others_keep_going() {
    let (bridge, tokens) = bridge_with_tokens(TOKENS, "");
    let mut keeper = subscribed(&bridge, "keeper-secret-1").await;
    let mut leaver = subscribed(&bridge, "leaver-secret-2").await;

    std::fs::write(
        &tokens,
        "[[token]]\nname = \"keeper\"\ntoken = \"keeper-secret-1\"\n",
    )
    .unwrap();
    bridge.signal("HUP");
    assert_eq!(close_code(&mut leaver).await.0, Some(4003));
    assert_eq!(
        refused_status(&bridge.url("token=leaver-secret-2"), &[], &[])
            .await
            .0,
        401
    );
    bridge.publisher().publish("news", &1).unwrap();
    assert_eq!(next_json(&mut keeper).await["data"], 1);
    let log = bridge.stderr();
    assert!(log.contains("configuration reloaded"), "{log}");
}

#[tokio::test]
async fn a_broken_reload_is_logged_and_the_old_configuration_keeps_serving() {
    let (bridge, tokens) = bridge_with_tokens(TOKENS, "");
    let mut keeper = subscribed(&bridge, "keeper-secret-1").await;
    std::fs::write(&tokens, "[[token]\nthis is not toml").unwrap();
    bridge.signal("HUP");
    let deadline = std::time::Instant::now() + WAIT;
    while !bridge.stderr().contains("reload failed") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload error logged:\n{}",
            bridge.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Old tokens still work, old connections still receive.
    let _again = subscribed(&bridge, "leaver-secret-2").await;
    bridge.publisher().publish("news", &2).unwrap();
    assert_eq!(next_json(&mut keeper).await["data"], 2);

    // A broken main config file is refused the same way.
    std::fs::write(&tokens, TOKENS).unwrap();
    std::fs::write(bridge.config_path(), "server.listne = 1\n").unwrap();
    bridge.signal("HUP");
    let deadline = std::time::Instant::now() + WAIT;
    while bridge.stderr().matches("reload failed").count() < 2 {
        assert!(std::time::Instant::now() < deadline, "{}", bridge.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    bridge.publisher().publish("news", &3).unwrap();
    assert_eq!(next_json(&mut keeper).await["data"], 3);
}

#[tokio::test]
async fn allowed_origins_are_reloaded() {
    let bridge = Bridge::start_with("server.allowed_origins = [\"https://old.example\"]");
    let url = bridge.token_url();
    let new_origin = [("origin", "https://new.example")];
    assert_eq!(refused_status(&url, &[], &new_origin).await.0, 403);
    let config = std::fs::read_to_string(bridge.config_path())
        .unwrap()
        .replace("https://old.example", "https://new.example");
    std::fs::write(bridge.config_path(), config).unwrap();
    bridge.signal("HUP");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if connect(&url, &[], &new_origin).await.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new origin never accepted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The generated token survived the reload.
    assert!(connect(&url, &[], &[]).await.is_ok());
}

/// Tokens never appear in logs, even at trace level for every crate.
#[tokio::test]
async fn no_token_in_logs() {
    let (bridge, _tokens) = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, TOKENS).unwrap();
        let bridge = Bridge::start_with_env(
            &format!("auth.tokens_file = \"{}\"", path.display()),
            &[("RUST_LOG", "trace")],
        );
        std::mem::forget(dir);
        (bridge, path)
    };
    let wrong = "wrong-secret-3";
    let mut ws = subscribed(&bridge, "keeper-secret-1").await;
    send(&mut ws, r#"{"type":"nope"}"#).await;
    next_json(&mut ws).await;
    let _ = connect(&bridge.url("token=leaver-secret-2"), &["wamp"], &[])
        .await
        .unwrap();
    assert_eq!(
        refused_status(&bridge.url(&format!("x=1&token={wrong}")), &[], &[])
            .await
            .0,
        401
    );
    let bearer = format!("Bearer {wrong}");
    assert_eq!(
        refused_status(&bridge.url(""), &[], &[("authorization", &bearer)])
            .await
            .0,
        401
    );
    let entry = format!("bearer.{wrong}");
    assert_eq!(refused_status(&bridge.url(""), &[&entry], &[]).await.0, 401);
    drop(ws);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = bridge.stderr();
    assert!(log.contains("keeper"), "token names are logged: {log}");
    for secret in ["keeper-secret-1", "leaver-secret-2", wrong] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
}
