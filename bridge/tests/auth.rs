//! Auth for real deployments, against the real binary: JWT refusals each with its
//! status, expiry close 4001, `push-bridge token`, and introspection against a real
//! HTTP server on loopback (401 / 500 / timeout / connection refused / cache).

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::*;

const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn jwt_bridge(extra: &str) -> Bridge {
    Bridge::start_with(&format!(
        "[auth.jwt]\nalgorithms = [\"HS256\"]\nsecret = \"{SECRET}\"\nissuer = \"desk\"\naudience = [\"bridge\"]\nleeway = \"0s\"\n{extra}"
    ))
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn status_and_reason(bridge: &Bridge, token: &str) -> (u16, String) {
    let (status, body) = refused_status(&bridge.url(&format!("token={token}")), &[], &[]).await;
    let body: Value = serde_json::from_str(&body).unwrap_or_default();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn every_jwt_refusal_is_401_with_its_reason() {
    let bridge = jwt_bridge("");
    let good = json!({"iss": "desk", "aud": "bridge", "exp": now() + 600, "topics": ["news"]});
    let with = |extra: Value| {
        let mut claims = good.clone();
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };
    let none_alg = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        base64url(good.to_string().as_bytes())
    );
    let cases = [
        ("malformed", "a.b.c".to_string(), "jwt_malformed"),
        (
            "bad signature",
            hs256(&good, "another-secret-another-secret-xx"),
            "jwt_bad_signature",
        ),
        ("alg none", none_alg, "jwt_algorithm_not_allowed"),
        (
            "expired",
            hs256(&with(json!({"exp": now() - 10})), SECRET),
            "jwt_expired",
        ),
        (
            "nbf in the future",
            hs256(&with(json!({"nbf": now() + 600})), SECRET),
            "jwt_not_yet_valid",
        ),
        (
            "wrong iss",
            hs256(&with(json!({"iss": "other"})), SECRET),
            "jwt_wrong_issuer",
        ),
        (
            "wrong aud",
            hs256(&with(json!({"aud": "other"})), SECRET),
            "jwt_wrong_audience",
        ),
        (
            "no exp",
            hs256(&json!({"iss": "desk", "aud": "bridge"}), SECRET),
            "jwt_missing_exp",
        ),
    ];
    for (case, token, reason) in cases {
        assert_eq!(
            status_and_reason(&bridge, &token).await,
            (401, reason.to_string()),
            "{case}"
        );
    }
    // The good one is let in, and its topics claim is enforced.
    let token = hs256(&good, SECRET);
    let mut ws = native_with_token(&bridge, &token).await;
    send(&mut ws, r#"{"type":"subscribe","topics":["sport"]}"#).await;
    assert_eq!(next_json(&mut ws).await["code"], "forbidden");
    send(&mut ws, r#"{"type":"subscribe","topics":["news:1"]}"#).await;
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    assert!(bridge.metric(r#"push_bridge_auth_failures_total{reason="jwt_expired"}"#) >= 1.0);
}

#[tokio::test]
async fn rs256_refuses_an_hs256_token_signed_with_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("key.pem");
    let public = dir.path().join("pub.pem");
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        private.to_str().unwrap(),
    ]);
    openssl(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    let bridge = Bridge::start_with(&format!(
        "[auth.jwt]\nalgorithms = [\"RS256\"]\npublic_key_file = \"{}\"",
        public.display()
    ));
    let claims = json!({"exp": now() + 600});
    let pem = std::fs::read(&public).unwrap();
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&pem),
    )
    .unwrap();
    assert_eq!(
        status_and_reason(&bridge, &confused).await,
        (401, "jwt_algorithm_not_allowed".to_string())
    );
    let key = EncodingKey::from_rsa_pem(&std::fs::read(&private).unwrap()).unwrap();
    let genuine = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap();
    assert!(connect(&bridge.url(&format!("token={genuine}")), &[], &[])
        .await
        .is_ok());
}

#[tokio::test]
async fn a_live_connection_is_closed_4001_when_its_token_expires() {
    let bridge = jwt_bridge("");
    let token = hs256(
        &json!({"iss": "desk", "aud": "bridge", "exp": now() + 2}),
        SECRET,
    );
    let mut ws = native_with_token(&bridge, &token).await;
    assert_eq!(close_code(&mut ws).await.0, Some(4001));
}

#[tokio::test]
async fn the_token_command_mints_what_the_bridge_accepts() {
    let bridge = jwt_bridge("");
    let output = run_bridge(&[
        "token".as_ref(),
        "--topics".as_ref(),
        "news,article:*".as_ref(),
        "--ttl".as_ref(),
        "1h".as_ref(),
        "--sub".as_ref(),
        "ops".as_ref(),
        "--config".as_ref(),
        bridge.config_path().as_os_str(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let mut ws = native_with_token(&bridge, &token).await;
    send(
        &mut ws,
        r#"{"type":"subscribe","topics":["article:7","news"]}"#,
    )
    .await;
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    send(&mut ws, r#"{"type":"subscribe","topics":["sport"]}"#).await;
    assert_eq!(next_json(&mut ws).await["code"], "forbidden");
    assert!(
        bridge.stderr().contains("jwt:ops"),
        "the token's subject names it in logs"
    );
}

/// A content API on loopback: answers per token, counts calls.
struct Api {
    addr: std::net::SocketAddr,
    calls: Arc<AtomicUsize>,
}

async fn start_api() -> Api {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let key = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            match key.as_str() {
                "good" => (StatusCode::OK, r#"{"topics":["package_created"]}"#).into_response(),
                "boom" => (StatusCode::INTERNAL_SERVER_ERROR, "").into_response(),
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    (StatusCode::OK, "{}").into_response()
                }
                _ => (StatusCode::UNAUTHORIZED, "").into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Api { addr, calls }
}

fn introspect_config(url: &str) -> String {
    format!(
        "[auth.introspect]\nurl = \"{url}\"\nheader = \"Authorization\"\ntopics_field = \"topics\"\ntimeout = \"500ms\"\ncache_ttl = \"1m\""
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_accepts_rejects_and_never_lets_in_when_the_api_is_down() {
    let api = start_api().await;
    let bridge = Bridge::start_with(&introspect_config(&format!(
        "http://{}/api/v2/users/settings/",
        api.addr
    )));

    // N connects with one token: one API call.
    let mut clients = Vec::new();
    for _ in 0..10 {
        let (mut ws, _) = connect(&bridge.url("token=good"), &["push-bridge.v1"], &[])
            .await
            .unwrap();
        next_json(&mut ws).await;
        clients.push(ws);
    }
    assert_eq!(
        api.calls.load(Ordering::SeqCst),
        1,
        "cached after the first"
    );
    send(
        &mut clients[0],
        r#"{"type":"subscribe","topics":["article"]}"#,
    )
    .await;
    assert_eq!(
        next_json(&mut clients[0]).await["code"],
        "forbidden",
        "topics_field enforced"
    );

    assert_eq!(
        status_and_reason(&bridge, "bad").await,
        (401, "unknown_token".to_string())
    );
    let before = api.calls.load(Ordering::SeqCst);
    assert_eq!(status_and_reason(&bridge, "bad").await.0, 401);
    assert_eq!(
        api.calls.load(Ordering::SeqCst),
        before,
        "negative answers are cached too"
    );

    assert_eq!(
        status_and_reason(&bridge, "boom").await,
        (503, "introspection_server_error".to_string())
    );
    assert_eq!(
        status_and_reason(&bridge, "slow").await,
        (503, "introspection_timeout".to_string())
    );
}

#[tokio::test]
async fn introspection_with_the_api_unreachable_is_503() {
    let closed = format!("http://127.0.0.1:{}/check", free_port());
    let bridge = Bridge::start_with(&introspect_config(&closed));
    assert_eq!(
        status_and_reason(&bridge, "anything").await,
        (503, "introspection_unreachable".to_string())
    );
}

#[tokio::test]
async fn a_jwks_key_is_chosen_by_kid_and_an_unknown_kid_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let key = |kid: &str, secret: &str| json!({"kty": "oct", "kid": kid, "alg": "HS256", "k": base64url(secret.as_bytes())});
    std::fs::write(
        &jwks,
        json!({"keys": [key("one", SECRET), key("two", "the-second-secret-the-second-secret")]})
            .to_string(),
    )
    .unwrap();
    let bridge = Bridge::start_with(&format!(
        "[auth.jwt]\nalgorithms = [\"HS256\"]\njwks_file = \"{}\"",
        jwks.display()
    ));
    let claims = json!({"exp": now() + 600});
    let signed = |kid: &str, secret: &str| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let second = signed("two", "the-second-secret-the-second-secret");
    assert!(connect(&bridge.url(&format!("token={second}")), &[], &[])
        .await
        .is_ok());
    assert_eq!(
        status_and_reason(&bridge, &signed("three", SECRET)).await,
        (401, "jwt_unknown_kid".to_string())
    );
    assert_eq!(
        status_and_reason(
            &bridge,
            &signed("one", "the-second-secret-the-second-secret")
        )
        .await,
        (401, "jwt_bad_signature".to_string())
    );
}
