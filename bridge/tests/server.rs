//! The listener as a whole: auth before the upgrade, HTTP endpoints, limits,
//! subprotocol negotiation, handshake timeout and graceful shutdown.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;

#[tokio::test]
async fn missing_or_unknown_token_is_401_without_upgrade() {
    let bridge = Bridge::start();
    let (status, body) = refused_status(&bridge.url(""), &[], &[]).await;
    assert_eq!(status, 401);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "missing_token");
    assert!(body["message"].is_string());
    assert_eq!(
        refused_status(&bridge.url("token=wrong"), &[], &[]).await.0,
        401
    );
    assert_eq!(
        refused_status(
            &bridge.url(""),
            &[],
            &[("authorization", "Basic dXNlcjpwYXNz")]
        )
        .await
        .0,
        401
    );
    let huge = "a".repeat(9000);
    assert_eq!(
        refused_status(&bridge.url(&format!("token={huge}")), &[], &[])
            .await
            .0,
        401
    );
    assert!(bridge.metric(r#"push_bridge_auth_failures_total{reason="missing_token"}"#) >= 1.0);
    assert!(bridge.metric(r#"push_bridge_auth_failures_total{reason="unknown_token"}"#) >= 1.0);
    assert!(bridge.metric(r#"push_bridge_auth_failures_total{reason="malformed_token"}"#) >= 2.0);
    assert!(
        !bridge.stderr().contains("token=wrong"),
        "tokens never in logs"
    );
}

#[tokio::test]
async fn token_from_header_and_bearer_subprotocol_which_is_never_echoed() {
    let bridge = Bridge::start();
    let bearer = format!("Bearer {}", bridge.token());
    let (mut ws, protocol) = connect(
        &bridge.url(""),
        &["push-bridge.v1"],
        &[("authorization", &bearer)],
    )
    .await
    .unwrap();
    assert_eq!(protocol.as_deref(), Some("push-bridge.v1"));
    assert_eq!(next_json(&mut ws).await["type"], "welcome");

    let entry = format!("bearer.{}", bridge.token());
    let (mut ws, protocol) = connect(&bridge.url(""), &[&entry, "push-bridge.v1"], &[])
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some("push-bridge.v1"));
    assert_eq!(next_json(&mut ws).await["type"], "welcome");

    // Only the bearer entry: default protocol, no subprotocol header at all.
    let (mut ws, protocol) = connect(&bridge.url(""), &[&entry], &[]).await.unwrap();
    assert_eq!(protocol, None);
    assert_eq!(next_json(&mut ws).await[0], 0, "WAMP v1 WELCOME by default");
}

#[tokio::test]
async fn negotiation_follows_the_client_order_and_the_default() {
    let bridge = Bridge::start_with("server.default_protocol = \"native\"");
    let url = bridge.token_url();
    let (_, protocol) = connect(&url, &["push-bridge.v1", "wamp"], &[])
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some("push-bridge.v1"));
    let (_, protocol) = connect(&url, &["x-unknown", "wamp", "push-bridge.v1"], &[])
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some("wamp"));
    let (mut ws, protocol) = connect(&url, &["x-unknown"], &[]).await.unwrap();
    assert_eq!(protocol, None);
    assert_eq!(
        next_json(&mut ws).await["type"],
        "welcome",
        "server.default_protocol = native"
    );
}

#[tokio::test]
async fn anonymous_clients_when_allowed() {
    let bridge = Bridge::start_with(
        "auth.allow_anonymous = true\nauth.anonymous_topics = [\"package_created\"]",
    );
    let (mut ws, _) = connect(&bridge.url(""), &["push-bridge.v1"], &[])
        .await
        .unwrap();
    next_json(&mut ws).await;
    send(&mut ws, r#"{"type":"subscribe","topics":["article"]}"#).await;
    assert_eq!(next_json(&mut ws).await["code"], "forbidden");
    send(
        &mut ws,
        r#"{"type":"subscribe","topics":["package_created"]}"#,
    )
    .await;
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    // A wrong token is still refused: anonymous means no token, not a bad one.
    assert_eq!(
        refused_status(&bridge.url("token=nope"), &[], &[]).await.0,
        401
    );
}

#[tokio::test]
async fn connection_limits_answer_429_and_503_and_origins_403() {
    let bridge = Bridge::start_with(
        "server.max_connections = 3\nserver.max_connections_per_ip = 2\nserver.allowed_origins = [\"https://desk.example\"]",
    );
    let url = bridge.token_url();
    let (_a, _) = connect(&url, &[], &[]).await.unwrap();
    let (_b, _) = connect(&url, &[], &[("origin", "https://desk.example")])
        .await
        .unwrap();
    assert_eq!(refused_status(&url, &[], &[]).await.0, 429);
    assert_eq!(
        refused_status(&url, &[], &[("origin", "https://evil.example")])
            .await
            .0,
        429,
        "limits are checked first"
    );
    drop(_a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        refused_status(&url, &[], &[("origin", "https://evil.example")])
            .await
            .0,
        403
    );
    let _c = connect(&url, &[], &[]).await.unwrap();
    assert_eq!(
        bridge.metric(r#"push_bridge_auth_failures_total{reason="origin"}"#),
        1.0
    );
}

#[tokio::test]
async fn max_connections_is_503() {
    let bridge = Bridge::start_with("server.max_connections = 1");
    let url = bridge.token_url();
    let (_a, _) = connect(&url, &[], &[]).await.unwrap();
    assert_eq!(refused_status(&url, &[], &[]).await.0, 503);
}

#[test]
fn http_endpoints() {
    let bridge = Bridge::start();
    assert_eq!(http_get(bridge.addr, "/healthz").unwrap().0, 200);
    assert_eq!(http_get(bridge.addr, "/readyz").unwrap().0, 200);
    let (status, body) = http_get(bridge.addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("push_bridge_build_info{version=\""), "{body}");
    assert!(
        body.contains("push_bridge_connections{protocol=\"wamp1\"} 0"),
        "{body}"
    );
    assert_eq!(http_get(bridge.addr, "/nope").unwrap().0, 404);
    assert_eq!(http_get(bridge.addr, "/").unwrap().0, 200);
}

#[test]
fn a_handshake_that_never_finishes_is_cut_and_does_not_block_others() {
    let bridge = Bridge::start_with("server.handshake_timeout = \"500ms\"");
    let mut slow = TcpStream::connect(bridge.addr).unwrap();
    slow.write_all(b"GET /?token=x HTTP/1.1\r\nHost: a\r\n")
        .unwrap();
    // Others are served meanwhile.
    assert_eq!(http_get(bridge.addr, "/healthz").unwrap().0, 200);
    let started = Instant::now();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(4), "cut after {waited:?}");
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_exits_0() {
    let mut bridge = Bridge::start();
    let mut native = native_client(&bridge, &["a"]).await;
    // WAMP v1 (here as the Superdesk UI opens it, with no subprotocol) is the exception:
    // no close frame, so AutobahnJS 0.x reconnects (tests/drain.rs).
    let (mut wamp, _) = connect(&bridge.token_url(), &[], &[]).await.unwrap();
    next_json(&mut wamp).await;
    bridge.signal("TERM");
    assert_eq!(close_code(&mut native).await.0, Some(1001));
    assert_eq!(close_code(&mut wamp).await.0, None, "no close frame");
    let status = bridge.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}");
}

#[test]
fn check_config_prints_the_effective_config_and_rejects_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[server]\nheartbeat = \"30s\"\n").unwrap();
    let output = run_bridge(&[
        "check-config".as_ref(),
        "--config".as_ref(),
        good.as_os_str(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("heartbeat"), "{stdout}");
    assert!(stdout.contains("30s"), "{stdout}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nlistne = \"127.0.0.1:1\"\n").unwrap();
    let output = run_bridge(&[
        "check-config".as_ref(),
        "--config".as_ref(),
        bad.as_os_str(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listne"), "{stderr}");
    assert!(stderr.contains("bad.toml"), "{stderr}");
}

#[test]
fn startup_errors_name_what_failed() {
    // Something else already holds the ZeroMQ port.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "server.listen = \"127.0.0.1:{}\"\ningress.pull = [\"tcp://127.0.0.1:{port}\"]\n",
            free_port()
        ),
    )
    .unwrap();
    let output = run_bridge(&["serve".as_ref(), "--config".as_ref(), config.as_os_str()]);
    drop(squatter);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("tcp://127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_dropped_after_two_heartbeats() {
    use futures_util::StreamExt;
    let bridge = Bridge::start_with("server.heartbeat = \"300ms\"");
    let mut answering = native_client(&bridge, &["a"]).await;
    let mut silent = native_client(&bridge, &["a"]).await;
    // Only `answering` is read (tungstenite answers pings while reading).
    let reader = tokio::spawn(async move {
        assert_silent(&mut answering, Duration::from_millis(1500)).await;
        answering
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut answering = reader.await.unwrap();
    assert_eq!(
        bridge.metric(r#"push_bridge_connections{protocol="native"}"#),
        1.0
    );
    // The dropped connection ends without a close frame (nothing can be sent to a
    // dead peer); pings queued before the drop may still be read.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match tokio::time::timeout_at(deadline, silent.next())
            .await
            .expect("dropped in time")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Ping(_))) => continue,
            Some(Ok(other)) => panic!("unexpected {other:?}"),
            Some(Err(_)) | None => break,
        }
    }
    bridge.publisher().publish("a", &1).unwrap();
    assert_eq!(next_json(&mut answering).await["data"], 1);
}

/// Every configuration the bridge cannot start with exits 2, for `serve` as for
/// `check-config`, so systemd (`RestartPreventExitStatus=2`) does not restart it in a
/// loop; the message names the key or the file. A port in use is not such an error
/// (`startup_errors_name_what_failed`): it exits 1 and may pass.
#[test]
fn serve_and_check_config_exit_2_for_every_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(path("tokens.toml"), "[[token]\nname = ").unwrap();
    std::fs::create_dir(path("history-dir")).unwrap();
    let listen = format!("server.listen = \"127.0.0.1:{}\"\n", free_port());
    let pull = format!("ingress.pull = [\"tcp://127.0.0.1:{}\"]\n", free_port());
    // (config, what stderr names, whether check-config reads it too)
    let cases = [
        (
            format!("[auth]\ntokens_file = \"{}\"\n", path("tokens.toml")),
            path("tokens.toml"),
            true,
        ),
        (
            format!(
                "[auth.jwt]\nalgorithms = [\"HS256\"]\nsecret_file = \"{}\"\n",
                path("missing.secret")
            ),
            path("missing.secret"),
            true,
        ),
        (
            format!(
                "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                path("missing.crt"),
                path("missing.key")
            ),
            path("missing.crt"),
            true,
        ),
        (
            format!("[history]\nfile = \"{}\"\n", path("history-dir")),
            "history.file".to_string(),
            false,
        ),
        (
            // Not a port: libzmq refuses it at bind.
            "ingress.pull = [\"tcp://127.0.0.1:port\"]\n".to_string(),
            "tcp://127.0.0.1:port".to_string(),
            false,
        ),
    ];
    for (i, (text, named, check_config_reads_it)) in cases.iter().enumerate() {
        let config = dir.path().join(format!("case{i}.toml"));
        // The case's own tables come after the top-level keys.
        let pull = if text.contains("ingress.pull") {
            ""
        } else {
            &pull
        };
        std::fs::write(&config, format!("{listen}{pull}{text}")).unwrap();
        let mut commands = vec!["serve"];
        if *check_config_reads_it {
            commands.push("check-config");
        }
        for command in commands {
            let output = run_bridge(&[command.as_ref(), "--config".as_ref(), config.as_os_str()]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{command} with\n{text}\nstderr: {stderr}"
            );
            assert!(
                stderr.contains(named.as_str()),
                "{command}: {named} not named in {stderr}"
            );
        }
    }
}

/// Every metric the bridge names is described (`# HELP`, as Prometheus users expect),
/// once each of them has a sample; so is everything else `/metrics` shows.
#[tokio::test]
async fn every_metric_has_help() {
    let bridge = Bridge::start();
    let mut client = native_client(&bridge, &["a"]).await;
    let publisher = bridge.publisher();
    // The second is a duplicate id: the ingress rejects it.
    for _ in 0..2 {
        publisher.publish_with_id("a", "same-id", &1).unwrap();
    }
    assert_eq!(next_json(&mut client).await["data"], 1);
    send(&mut client, r#"{"type":"publish"}"#).await;
    assert_eq!(next_json(&mut client).await["type"], "error");
    assert_eq!(
        refused_status(&bridge.url("token=wrong"), &[], &[]).await.0,
        401
    );
    bridge.wait_metric(
        r#"push_bridge_ingress_rejected_total{reason="duplicate"}"#,
        1.0,
    );

    let (_, body) = http_get(bridge.addr, "/metrics").unwrap();
    let help: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for (name, _) in push_bridge::ops::metrics::HELP {
        assert!(help.contains(&name), "no # HELP for {name} in\n{body}");
    }
    for typed in body.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = typed.split(' ').next().unwrap();
        assert!(help.contains(&name), "# TYPE without # HELP: {name}");
    }
}

/// With `server.admin_listen`, metrics and health are served there, and `/metrics`
/// is no longer on the client port (health stays, for load balancers).
#[test]
fn the_admin_listener_serves_metrics_and_health() {
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let bridge = Bridge::start_with(&format!("server.admin_listen = \"{admin}\""));
    let (status, body) = http_get(admin, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("# HELP push_bridge_build_info "), "{body}");
    let (status, healthz) = http_get(admin, "/healthz").unwrap();
    assert!(
        status == 200 && healthz.ends_with("\r\n\r\nok\n"),
        "{healthz}"
    );
    let (status, readyz) = http_get(admin, "/readyz").unwrap();
    assert!(
        status == 200 && readyz.ends_with("\r\n\r\nready\n"),
        "{readyz}"
    );
    // Nothing a client could use.
    assert_eq!(http_get(admin, "/").unwrap().0, 404);
    assert_eq!(http_get(admin, "/events?topic=a").unwrap().0, 404);
    // The client port keeps health but not metrics.
    assert_eq!(http_get(bridge.addr, "/readyz").unwrap().0, 200);
    assert_ne!(http_get(bridge.addr, "/metrics").unwrap().0, 200);
}

/// What the bridge says while it reads its token sources at start reaches the log: a
/// JWT secret too short to be safe is warned about.
#[test]
fn a_short_jwt_secret_is_warned_about_at_start() {
    let bridge = Bridge::start_with("[auth.jwt]\nalgorithms = [\"HS256\"]\nsecret = \"short\"\n");
    let stderr = bridge.stderr();
    assert!(
        stderr.contains("auth.jwt.secret is only 5 bytes"),
        "no warning in\n{stderr}"
    );
}
