//! The bridge as a service, against the real binary: the systemd notify protocol
//! (READY, STATUS, WATCHDOG, STOPPING), socket activation, native TLS, JSON logs, a
//! stale feed on /readyz, metrics moving as events flow.

mod support;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

/// Receives notify datagrams until one contains `wanted`; returns everything seen.
fn wait_for_notify(socket: &UnixDatagram, seen: &mut Vec<String>, wanted: &str) {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    while !seen.iter().any(|m| m.lines().any(|l| l == wanted)) {
        assert!(Instant::now() < deadline, "no {wanted} in {seen:?}");
        if let Ok(n) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

#[test]
fn notify_protocol_ready_status_watchdog_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut bridge = Bridge::start_with_env(
        "",
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut seen = Vec::new();
    wait_for_notify(&socket, &mut seen, "READY=1");
    // READY only once the listener answers.
    assert_eq!(http_get(bridge.addr, "/readyz").unwrap().0, 200);
    assert!(seen.iter().any(|m| m.contains("STATUS=")), "{seen:?}");
    // Pings at half of WATCHDOG_USEC: several within a second.
    let before = seen.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) {
        let mut buf = [0u8; 4096];
        if let Ok(n) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    let pings = seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() - before;
    assert!(pings >= 3, "{pings} watchdog pings in 1 s: {seen:?}");
    assert!(
        seen.iter().any(|m| m.contains("connections")),
        "STATUS has counts: {seen:?}"
    );
    bridge.signal("TERM");
    wait_for_notify(&socket, &mut seen, "STOPPING=1");
    assert!(bridge.wait_exit(WAIT).success());
}

#[tokio::test]
async fn socket_activation_uses_the_passed_listener() {
    let activate = Command::new("sh")
        .args(["-c", "command -v systemd-socket-activate"])
        .output()
        .unwrap();
    assert!(
        activate.status.success(),
        "systemd-socket-activate is needed (Debian package systemd; scripts/test installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let zmq = format!("tcp://127.0.0.1:{}", free_port());
    // server.listen names a port nobody passes: only the activated socket can work.
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "server.listen = \"127.0.0.1:{}\"\ningress.pull = [\"{zmq}\"]\n",
            free_port()
        ),
    )
    .unwrap();
    let mut child = Command::new("systemd-socket-activate")
        .args([
            "-l",
            &format!("127.0.0.1:{port}"),
            env!("CARGO_BIN_EXE_push-bridge"),
            "serve",
            "--config",
        ])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    // The first connection starts the bridge; it then serves on that socket.
    let deadline = Instant::now() + WAIT;
    let ready = loop {
        if let Ok((200, _)) = http_get(addr, "/readyz") {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "the bridge never answered on the activated socket");
}

#[tokio::test]
async fn native_tls_serves_wss() {
    use tokio_rustls::rustls::{self, pki_types::pem::PemObject, pki_types::CertificateDer};
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bridge = Bridge::start_with(&format!(
        "[server.tls]\ncert = \"{}\"\nkey = \"{}\"",
        cert.display(),
        key.display()
    ));

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&cert).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(bridge.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(bridge.addr.ip().into());
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let url = format!("wss://{}/?token={}", bridge.addr, bridge.token());
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "push-bridge.v1".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(request, tls)
        .await
        .expect("wss upgrade");
    use futures_util::{SinkExt, StreamExt};
    let welcome = ws.next().await.unwrap().unwrap();
    assert!(welcome.to_text().unwrap().contains("welcome"));
    ws.send(r#"{"type":"subscribe","topics":["tls"]}"#.into())
        .await
        .unwrap();
    ws.next().await.unwrap().unwrap();
    bridge
        .publisher()
        .publish("tls", &json!({"secure": true}))
        .unwrap();
    let event: serde_json::Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(event["data"], json!({"secure": true}));
    // Plain HTTP to a TLS listener gets nothing served.
    assert!(http_get(bridge.addr, "/healthz").is_err());
}

#[test]
fn json_logs_are_one_object_per_line() {
    let bridge = Bridge::start_with("log.format = \"json\"");
    bridge.publisher().publish("x", &1).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let log = bridge.stderr();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            value.get("level").is_some() && value.get("timestamp").is_some(),
            "{line}"
        );
    }
}

#[test]
fn a_silent_feed_turns_readyz_503_and_a_message_brings_it_back() {
    let bridge = Bridge::start_with("ingress.stale_after = \"1s\"");
    assert_eq!(http_get(bridge.addr, "/readyz").unwrap().0, 200);
    std::thread::sleep(Duration::from_millis(1500));
    let (status, body) = http_get(bridge.addr, "/readyz").unwrap();
    assert_eq!(status, 503);
    assert!(body.contains("stale"), "{body}");
    assert!(bridge.metric("push_bridge_ingress_last_message_age_seconds") >= 1.0);
    bridge.publisher().publish("x", &1).unwrap();
    let deadline = Instant::now() + WAIT;
    while http_get(bridge.addr, "/readyz").unwrap().0 != 200 {
        assert!(
            Instant::now() < deadline,
            "readyz stayed 503 after a message"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn metrics_move_as_events_flow() {
    let bridge = Bridge::start();
    let mut ws = native_client(&bridge, &["m"]).await;
    assert_eq!(
        bridge.metric(r#"push_bridge_connections{protocol="native"}"#),
        1.0
    );
    assert_eq!(bridge.metric("push_bridge_subscriptions"), 1.0);
    let publisher = bridge.publisher();
    for n in 0..5 {
        publisher.publish("m", &n).unwrap();
    }
    for _ in 0..5 {
        next_json(&mut ws).await;
    }
    bridge.wait_metric(
        r#"push_bridge_events_delivered_total{protocol="native"}"#,
        5.0,
    );
    assert_eq!(
        bridge.metric(&format!(
            r#"push_bridge_ingress_messages_total{{socket="{}"}}"#,
            bridge.zmq
        )),
        5.0
    );
    assert_eq!(bridge.metric("push_bridge_history_events"), 5.0);
    assert!(bridge.metric("push_bridge_delivery_latency_seconds_count") >= 1.0);
    assert_eq!(
        bridge.metric(r#"push_bridge_connections_total{protocol="native"}"#),
        1.0
    );
    drop(ws);
    let deadline = Instant::now() + WAIT;
    while bridge.metric(r#"push_bridge_connections{protocol="native"}"#) != 0.0 {
        assert!(
            Instant::now() < deadline,
            "the gauge did not come back to 0"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
