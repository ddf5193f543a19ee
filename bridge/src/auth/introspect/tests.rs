//! The introspector against a real HTTP server on loopback that counts requests and
//! connections, records the headers it sees, and answers as each test scripts it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use axum::Router;

use crate::topic::Pattern;

use super::*;

/// What the fake API answers.
#[derive(Clone)]
struct Reply {
    status: StatusCode,
    body: String,
    delay: Duration,
    location: Option<&'static str>,
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status: StatusCode::from_u16(status).unwrap(),
        body: body.to_string(),
        delay: Duration::ZERO,
        location: None,
    }
}

type Script = Arc<dyn Fn(&HeaderMap) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Api {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<HeaderMap>>>,
    script: Arc<Mutex<Script>>,
}

impl Api {
    /// Starts a server that answers every request with `first`.
    async fn start(first: Reply) -> Api {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let api = Api {
            addr: listener.local_addr().unwrap(),
            calls: Arc::new(AtomicUsize::new(0)),
            connections,
            seen: Arc::new(Mutex::new(Vec::new())),
            script: Arc::new(Mutex::new(Arc::new(move |_: &HeaderMap| first.clone()))),
        };
        let state = api.clone();
        let router = Router::new().fallback(move |headers: HeaderMap| answer(state, headers));
        let listener = listener.tap_io(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        tokio::spawn(async move { axum::serve(listener, router).await });
        api
    }

    fn answer_with(&self, script: impl Fn(&HeaderMap) -> Reply + Send + Sync + 'static) {
        *self.script.lock().unwrap() = Arc::new(script);
    }

    fn answer_always(&self, reply: Reply) {
        self.answer_with(move |_| reply.clone());
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn config(&self) -> IntrospectConfig {
        IntrospectConfig {
            url: format!("http://{}/api/v2/auth/check", self.addr),
            timeout: Duration::from_secs(2),
            ..IntrospectConfig::default()
        }
    }

    fn introspector(&self) -> Introspector {
        Introspector::from_config(&self.config()).unwrap()
    }
}

async fn answer(api: Api, headers: HeaderMap) -> Response {
    api.calls.fetch_add(1, Ordering::SeqCst);
    api.seen.lock().unwrap().push(headers.clone());
    let script = Arc::clone(&api.script.lock().unwrap());
    let reply = script(&headers);
    tokio::time::sleep(reply.delay).await;
    let mut response = (reply.status, reply.body).into_response();
    if let Some(location) = reply.location {
        response
            .headers_mut()
            .insert("location", location.parse().unwrap());
    }
    response
}

fn accepted(patterns: &[&str]) -> Verdict {
    Verdict::Accepted {
        patterns: Some(
            patterns
                .iter()
                .map(|p| Pattern::parse(p).unwrap())
                .collect(),
        ),
    }
}

const ALL: Verdict = Verdict::Accepted { patterns: None };

#[tokio::test]
async fn a_2xx_accepts_and_without_topics_field_permits_all() {
    let api = Api::start(reply(200, "not even JSON")).await;
    let introspector = api.introspector();
    assert_eq!(introspector.check("t1").await, Ok(ALL));
    api.answer_always(reply(204, ""));
    assert_eq!(introspector.check("t2").await, Ok(ALL));
    assert_eq!(api.calls(), 2);
}

#[tokio::test]
async fn topics_field_reads_the_patterns_from_the_answer() {
    let api = Api::start(reply(200, r#"{"topics":["package_created","article:*"]}"#)).await;
    let introspector = Introspector::from_config(&IntrospectConfig {
        topics_field: Some("topics".into()),
        ..api.config()
    })
    .unwrap();
    assert_eq!(
        introspector.check("t1").await,
        Ok(accepted(&["package_created", "article:*"]))
    );
    api.answer_always(reply(200, r#"{"user":1}"#));
    assert_eq!(introspector.check("t2").await, Ok(ALL));
    api.answer_always(reply(200, r#"{"topics":[]}"#));
    assert_eq!(introspector.check("t3").await, Ok(accepted(&[])));
}

#[tokio::test]
async fn an_unreadable_2xx_answer_accepts_nobody_and_is_not_cached() {
    let api = Api::start(reply(200, "")).await;
    let introspector = Introspector::from_config(&IntrospectConfig {
        topics_field: Some("topics".into()),
        ..api.config()
    })
    .unwrap();
    let huge = format!(r#"{{"topics":["{}"]}}"#, "a".repeat(MAX_ANSWER_BYTES));
    let bodies = [
        "not JSON",
        r#"{"topics":["package created"]}"#,
        huge.as_str(),
    ];
    for body in bodies {
        api.answer_always(reply(200, body));
        let before = api.calls();
        for _ in 0..2 {
            assert_eq!(
                introspector.check("t").await,
                Err(Unavailable::BadAnswer),
                "{body:.60}"
            );
        }
        assert_eq!(api.calls(), before + 2, "{body:.60}");
    }
}

#[tokio::test]
async fn a_4xx_rejects() {
    let api = Api::start(reply(401, "")).await;
    let introspector = api.introspector();
    for (n, status) in [401, 403, 404, 400, 410].into_iter().enumerate() {
        api.answer_always(reply(status, "{}"));
        assert_eq!(
            introspector.check(&format!("t{n}")).await,
            Ok(Verdict::Rejected),
            "{status}"
        );
    }
}

#[tokio::test]
async fn a_5xx_408_or_429_means_the_api_could_not_tell() {
    let api = Api::start(reply(500, "")).await;
    let introspector = api.introspector();
    for (n, status) in [500, 502, 503, 408, 429].into_iter().enumerate() {
        api.answer_always(reply(status, ""));
        assert_eq!(
            introspector.check(&format!("t{n}")).await,
            Err(Unavailable::ServerError),
            "{status}"
        );
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let api = Api::start(Reply {
        location: Some("/elsewhere"),
        ..reply(302, "")
    })
    .await;
    let introspector = api.introspector();
    assert_eq!(introspector.check("t").await, Err(Unavailable::BadAnswer));
    assert_eq!(api.calls(), 1);
}

#[tokio::test]
async fn a_slow_api_times_out_within_the_timeout() {
    let api = Api::start(Reply {
        delay: Duration::from_secs(5),
        ..reply(200, "")
    })
    .await;
    let introspector = Introspector::from_config(&IntrospectConfig {
        timeout: Duration::from_millis(200),
        ..api.config()
    })
    .unwrap();
    let start = Instant::now();
    assert_eq!(introspector.check("t").await, Err(Unavailable::Timeout));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(190), "{took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let introspector = Introspector::from_config(&IntrospectConfig {
        url: format!("http://{addr}/check"),
        ..IntrospectConfig::default()
    })
    .unwrap();
    assert_eq!(introspector.check("t").await, Err(Unavailable::Connect));
}

#[tokio::test]
async fn unavailable_is_not_cached() {
    let api = Api::start(reply(500, "")).await;
    let introspector = api.introspector();
    assert_eq!(introspector.check("t").await, Err(Unavailable::ServerError));
    assert_eq!(introspector.check("t").await, Err(Unavailable::ServerError));
    api.answer_always(reply(200, ""));
    assert_eq!(introspector.check("t").await, Ok(ALL));
    assert_eq!(api.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_and_repeated_checks_of_one_token_make_one_call() {
    let api = Api::start(Reply {
        delay: Duration::from_millis(300),
        ..reply(200, "")
    })
    .await;
    let introspector = api.introspector();
    let mut checks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let introspector = introspector.clone();
        checks.spawn(async move { introspector.check("same").await });
    }
    while let Some(outcome) = checks.join_next().await {
        assert_eq!(outcome.unwrap(), Ok(ALL));
    }
    assert_eq!(api.calls(), 1);
    for _ in 0..10 {
        assert_eq!(introspector.check("same").await, Ok(ALL));
    }
    assert_eq!(api.calls(), 1);
    // Another token is another question.
    assert_eq!(introspector.check("other").await, Ok(ALL));
    assert_eq!(api.calls(), 2);
}

#[tokio::test]
async fn a_rejection_is_cached_too() {
    let api = Api::start(reply(401, "")).await;
    let introspector = api.introspector();
    for _ in 0..5 {
        assert_eq!(introspector.check("bad").await, Ok(Verdict::Rejected));
    }
    api.answer_always(reply(200, ""));
    assert_eq!(introspector.check("bad").await, Ok(Verdict::Rejected));
    assert_eq!(api.calls(), 1);
}

#[tokio::test]
async fn answers_expire_after_the_cache_ttl() {
    let api = Api::start(reply(200, "")).await;
    let introspector = Introspector::from_config(&IntrospectConfig {
        cache_ttl: Duration::from_millis(300),
        ..api.config()
    })
    .unwrap();
    assert_eq!(introspector.check("t").await, Ok(ALL));
    api.answer_always(reply(401, ""));
    assert_eq!(introspector.check("t").await, Ok(ALL));
    assert_eq!(api.calls(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(introspector.check("t").await, Ok(Verdict::Rejected));
    assert_eq!(api.calls(), 2);
}

#[tokio::test]
async fn a_zero_ttl_asks_every_time() {
    let api = Api::start(reply(200, "")).await;
    let introspector = Introspector::from_config(&IntrospectConfig {
        cache_ttl: Duration::ZERO,
        ..api.config()
    })
    .unwrap();
    for _ in 0..3 {
        assert_eq!(introspector.check("t").await, Ok(ALL));
    }
    assert_eq!(api.calls(), 3);
}

#[tokio::test]
async fn a_waiter_hanging_up_does_not_cancel_the_check() {
    let api = Api::start(Reply {
        delay: Duration::from_millis(300),
        ..reply(200, "")
    })
    .await;
    let introspector = api.introspector();
    let first = {
        let introspector = introspector.clone();
        tokio::spawn(async move { introspector.check("t").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.abort();
    assert_eq!(introspector.check("t").await, Ok(ALL));
    assert_eq!(api.calls(), 1);
}

#[tokio::test]
async fn the_token_travels_in_the_configured_header() {
    let api = Api::start(reply(200, "")).await;
    let token = "aB3+/x=";
    let forms = [
        (
            "Authorization: Bearer",
            "authorization",
            format!("Bearer {token}"),
        ),
        (
            "authorization:Basic",
            "authorization",
            format!("Basic {token}"),
        ),
        // Superdesk Publisher reads the bare key from Authorization.
        ("Authorization", "authorization", token.to_string()),
        ("X-Api-Key", "x-api-key", token.to_string()),
        ("X-Api-Key:", "x-api-key", token.to_string()),
    ];
    for (configured, sent, value) in forms {
        let introspector = Introspector::from_config(&IntrospectConfig {
            header: configured.to_string(),
            ..api.config()
        })
        .unwrap();
        assert_eq!(introspector.check(token).await, Ok(ALL));
        let headers = api.seen.lock().unwrap().pop().unwrap();
        assert_eq!(headers.get(sent).unwrap(), value.as_str(), "{configured}");
        assert_eq!(headers.get_all(sent).iter().count(), 1);
        if sent != "authorization" {
            assert!(headers.get("authorization").is_none());
        }
    }
}

#[tokio::test]
async fn the_api_decides_per_token() {
    let api = Api::start(reply(200, "")).await;
    api.answer_with(|headers| match headers.get("authorization") {
        Some(v) if v == "Bearer good" => reply(200, ""),
        _ => reply(403, ""),
    });
    let introspector = api.introspector();
    assert_eq!(introspector.check("good").await, Ok(ALL));
    assert_eq!(introspector.check("Good").await, Ok(Verdict::Rejected));
    assert_eq!(introspector.check("good").await, Ok(ALL));
    assert_eq!(introspector.check("Good").await, Ok(Verdict::Rejected));
    assert_eq!(api.calls(), 2);
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_is_rejected_without_asking() {
    let api = Api::start(reply(200, "")).await;
    let introspector = api.introspector();
    for token in ["a\nb", "a\rb", "a\0b", "a\u{7f}"] {
        assert_eq!(introspector.check(token).await, Ok(Verdict::Rejected));
    }
    assert_eq!(api.calls(), 0);
    // Non-ASCII is not a control character: it goes as its UTF-8 bytes.
    assert_eq!(introspector.check("tøken").await, Ok(ALL));
    assert_eq!(api.calls(), 1);
}

#[tokio::test]
async fn one_connection_serves_sequential_checks() {
    let api = Api::start(reply(200, r#"{"ok":true}"#)).await;
    let introspector = api.introspector();
    for n in 0..5 {
        assert_eq!(introspector.check(&format!("t{n}")).await, Ok(ALL));
    }
    assert_eq!(api.calls(), 5);
    assert_eq!(api.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn bad_configurations_are_refused_with_the_key_named() {
    let base = IntrospectConfig {
        url: "https://publisher.example.com/api/v2/auth/check".into(),
        ..IntrospectConfig::default()
    };
    assert!(Introspector::from_config(&base).is_ok());
    let urls = [
        "",
        "publisher.example.com/check",
        "ftp://example.com/",
        "unix:/run/api.sock",
    ];
    for url in urls {
        let err = Introspector::from_config(&IntrospectConfig {
            url: url.into(),
            ..base.clone()
        })
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("url "), "{message}");
        assert!(message.contains(&format!("{url:?}")), "{message}");
    }
    for header in ["", "X Api Key", ": Bearer", "Tøken"] {
        let err = Introspector::from_config(&IntrospectConfig {
            header: header.into(),
            ..base.clone()
        })
        .unwrap_err();
        assert!(matches!(err, IntrospectError::Header { .. }), "{header:?}");
        assert!(err.to_string().starts_with("header "), "{err}");
    }
}

#[test]
fn the_log_and_debug_forms_hide_a_password_in_the_url() {
    let introspector = Introspector::from_config(&IntrospectConfig {
        url: "https://bridge:s3cret@publisher.example.com/check".into(),
        ..IntrospectConfig::default()
    })
    .unwrap();
    let debug = format!("{introspector:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("publisher.example.com"), "{debug}");
}

#[test]
fn reasons_are_distinct_metric_labels() {
    let all = [
        Unavailable::Timeout,
        Unavailable::Connect,
        Unavailable::ServerError,
        Unavailable::BadAnswer,
    ];
    let reasons: std::collections::HashSet<_> = all.iter().map(Unavailable::reason).collect();
    assert_eq!(reasons.len(), all.len());
    assert!(reasons.iter().all(|r| r.starts_with("introspection_")));
    assert_eq!(Unavailable::Timeout.reason(), "introspection_timeout");
}
