//! Every validation rule, each refusal and its message.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::config::ClusterConfig;

/// The message for a default configuration changed by `change`, or `None` if valid.
fn check(change: impl FnOnce(&mut Config)) -> Option<String> {
    let mut config = Config::default();
    change(&mut config);
    config.validate().err().map(|e| e.to_string())
}

fn refused(change: impl FnOnce(&mut Config)) -> String {
    check(change).expect("expected the configuration to be refused")
}

#[test]
fn the_defaults_are_valid() {
    assert_eq!(check(|_| {}), None);
}

#[test]
fn durations_must_be_positive() {
    assert_eq!(
        refused(|c| c.server.heartbeat = Duration::ZERO),
        "server.heartbeat: must be greater than zero (e.g. \"10s\")"
    );
    assert!(refused(|c| c.server.handshake_timeout = Duration::ZERO)
        .starts_with("server.handshake_timeout: "));
    assert!(
        refused(|c| c.server.drain_timeout = Duration::ZERO).starts_with("server.drain_timeout: ")
    );
    assert_eq!(
        check(|c| c.server.heartbeat = Duration::from_millis(1)),
        None
    );
}

#[test]
fn counts_and_sizes_have_minimums() {
    assert_eq!(
        refused(|c| c.server.send_queue = 0),
        "server.send_queue: is 0; it must be at least 1"
    );
    assert!(refused(|c| c.server.max_connections = 0).starts_with("server.max_connections: is 0"));
    assert!(refused(|c| c.server.max_connections_per_ip = Some(0))
        .starts_with("server.max_connections_per_ip: is 0"));
    assert!(
        refused(|c| c.server.max_subscriptions = 0).starts_with("server.max_subscriptions: is 0")
    );
    assert_eq!(
        refused(|c| c.server.max_inbound_frame_bytes = 63),
        "server.max_inbound_frame_bytes: is 63; it must be at least 64"
    );
    assert!(
        refused(|c| c.ingress.max_message_bytes = 0).starts_with("ingress.max_message_bytes: is 0")
    );
    assert_eq!(
        check(|c| {
            c.server.send_queue = 1;
            c.server.max_connections = 1;
            c.server.max_connections_per_ip = Some(1);
            c.server.max_subscriptions = 1;
            c.server.max_inbound_frame_bytes = 64;
            c.ingress.max_message_bytes = 1;
        }),
        None
    );
}

#[test]
fn endpoints_are_tcp_or_ipc_and_listed_once() {
    for bad in [
        "",
        "tcp://",
        "udp://1.2.3.4:5",
        "127.0.0.1:5555",
        "TCP://a:1",
        "ipc://  ",
    ] {
        let e = refused(|c| c.ingress.pull = vec![bad.to_string()]);
        assert!(
            e.starts_with(&format!("ingress.pull: {bad:?} is not a ZeroMQ endpoint")),
            "{e}"
        );
    }
    let e = refused(|c| c.ingress.sub = vec!["inproc://x".into()]);
    assert!(
        e.starts_with("ingress.sub: \"inproc://x\" is not a ZeroMQ endpoint"),
        "{e}"
    );
    let e = refused(|c| c.ingress.pull = vec!["tcp://a:1".into(), "tcp://a:1".into()]);
    assert_eq!(e, "ingress.pull: lists \"tcp://a:1\" twice");
    assert_eq!(
        check(|c| {
            c.ingress.pull = vec!["tcp://*:5555".into(), "ipc:///run/pb.sock".into()];
            c.ingress.sub = vec!["tcp://10.0.0.1:5556".into()];
        }),
        None
    );
}

#[test]
fn ingress_needs_an_endpoint_and_sub_needs_prefixes() {
    let e = refused(|c| c.ingress.pull.clear());
    assert_eq!(
        e,
        "ingress: no endpoint to receive events from: set ingress.pull, ingress.sub or an [[ingress.amqp]] source"
    );
    let sub_only = |c: &mut Config| {
        c.ingress.pull.clear();
        c.ingress.sub = vec!["tcp://10.0.0.1:5556".into()];
    };
    assert_eq!(check(sub_only), None);
    let e = refused(|c| {
        sub_only(c);
        c.ingress.sub_prefixes.clear();
    });
    assert!(e.starts_with("ingress.sub_prefixes: is empty"), "{e}");
    // Without a SUB socket the prefixes do not matter.
    assert_eq!(check(|c| c.ingress.sub_prefixes.clear()), None);
}

#[test]
fn topic_field_must_not_be_empty() {
    assert!(refused(|c| c.ingress.topic_field = Some(String::new()))
        .starts_with("ingress.topic_field: is empty"));
    assert_eq!(
        check(|c| c.ingress.topic_field = Some("category".into())),
        None
    );
}

#[test]
fn tokens_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("tokens.toml");
    let e = refused(|c| c.auth.tokens_file = Some(missing.clone()));
    assert_eq!(
        e,
        format!(
            "auth.tokens_file: {} does not exist or is not a file",
            missing.display()
        )
    );
    let e = refused(|c| c.auth.tokens_file = Some(dir.path().to_path_buf()));
    assert!(e.starts_with("auth.tokens_file: "), "{e}");
    let file = tempfile::NamedTempFile::new().unwrap();
    assert_eq!(
        check(|c| c.auth.tokens_file = Some(PathBuf::from(file.path()))),
        None
    );
}

#[test]
fn cookie_must_be_a_cookie_name() {
    for bad in ["", "a b", "a;b", "a=b", "é"] {
        let e = refused(|c| c.auth.cookie = Some(bad.to_string()));
        assert!(
            e.starts_with(&format!("auth.cookie: {bad:?} is not a cookie name")),
            "{e}"
        );
    }
    for good in ["sid", "123", "__Host-token", "a.b_c"] {
        assert_eq!(
            check(|c| c.auth.cookie = Some(good.to_string())),
            None,
            "{good}"
        );
    }
}

#[test]
fn allowed_origins_must_look_like_origins() {
    assert!(
        refused(|c| c.server.allowed_origins = Some(vec![String::new()]))
            .starts_with("server.allowed_origins: ")
    );
    assert!(
        refused(|c| c.server.allowed_origins = Some(vec!["https://a b".into()]))
            .starts_with("server.allowed_origins: ")
    );
    assert_eq!(
        check(|c| c.server.allowed_origins = Some(vec!["https://a.example".into()])),
        None
    );
    assert_eq!(check(|c| c.server.allowed_origins = Some(vec![])), None);
}

#[test]
fn log_level_must_be_a_filter_of_levels() {
    for good in [
        "info",
        "WARN",
        "off",
        "info,push_bridge=debug",
        "warn,hyper=off",
        "push_bridge::server=trace",
    ] {
        assert_eq!(check(|c| c.log.level = good.to_string()), None, "{good}");
    }
    assert_eq!(
        refused(|c| c.log.level = " ".into()),
        "log.level: is empty; write e.g. \"info\" or \"info,push_bridge=debug\""
    );
    let e = refused(|c| c.log.level = "infoo".into());
    assert!(
        e.starts_with("log.level: \"infoo\" is not a level (trace, debug, info, warn, error, off)"),
        "{e}"
    );
    // What the logger itself would refuse at start-up (it does not trim spaces).
    for bad in ["push_bridge=loud", "info, axum=warn"] {
        let e = refused(|c| c.log.level = bad.into());
        assert!(
            e.starts_with(&format!("log.level: {bad:?} is not a log filter (")),
            "{e}"
        );
    }
}

#[test]
fn the_admin_listener_needs_an_address_of_its_own() {
    assert!(refused(|c| c.server.admin_listen = Some(c.server.listen))
        .starts_with("server.admin_listen: is the same address as server.listen (127.0.0.1:8080)"));
    assert_eq!(
        check(|c| c.server.admin_listen = Some("127.0.0.1:9090".parse().unwrap())),
        None
    );
}

/// A `[cluster]` section with its defaults and a local Redis.
fn clustered(config: &mut Config) {
    config.cluster = Some(ClusterConfig {
        redis: "redis://127.0.0.1:6379/0".to_string(),
        stream: "push-bridge".to_string(),
        node: None,
        buffer: 10_000,
    });
}

fn cluster(config: &mut Config) -> &mut ClusterConfig {
    config.cluster.as_mut().expect("clustered first")
}

#[test]
fn a_cluster_with_its_defaults_is_valid() {
    assert_eq!(check(clustered), None);
    assert_eq!(
        check(|c| {
            clustered(c);
            let cluster = cluster(c);
            cluster.redis = "redis+sentinel://:pw@h1:26379,h2/mymaster/0".into();
            cluster.node = Some("bridge-1".into());
            cluster.buffer = 1;
        }),
        None
    );
}

#[test]
fn a_cluster_needs_a_history_without_a_file() {
    assert_eq!(
        refused(|c| {
            clustered(c);
            c.history.size = 0;
        }),
        "history.size: is 0, but [cluster] needs a history: the log is how events reach every node; \
         set a size (the default is 10000) or remove [cluster]"
    );
    assert_eq!(
        refused(|c| {
            clustered(c);
            c.history.file = Some(PathBuf::from("/var/lib/push-bridge/history.jsonl"));
        }),
        "history.file: is set, but with [cluster] the log in Redis is the history; remove history.file"
    );
    // Without [cluster] both are fine.
    assert_eq!(check(|c| c.history.size = 0), None);
    assert_eq!(
        check(|c| c.history.file = Some(PathBuf::from("/tmp/history.jsonl"))),
        None
    );
}

#[test]
fn cluster_redis_must_be_a_redis_address_and_never_shows_its_password() {
    let e = refused(|c| {
        clustered(c);
        cluster(c).redis = " ".into();
    });
    assert!(e.starts_with("cluster.redis: is empty; write e.g. "), "{e}");
    for bad in [
        "127.0.0.1:6379",
        "http://:hunter2@h:6379/0",
        "redis://:hunter2@/0",
        "redis://:hunter2@h:6379/x",
        "redis+sentinel://:hunter2@h1:26379",
        "redis+sentinel://:hunter2@h1:x/m/0",
    ] {
        let e = refused(|c| {
            clustered(c);
            cluster(c).redis = bad.into();
        });
        assert!(e.starts_with("cluster.redis: "), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
    let e = refused(|c| {
        clustered(c);
        cluster(c).redis = "http://:hunter2@h:6379/0".into();
    });
    assert!(e.contains("<redacted>"), "{e}");
    assert!(e.contains("is not a Redis address"), "{e}");
}

#[test]
fn cluster_names_must_not_be_empty_and_the_buffer_holds_something() {
    for empty in ["", "  "] {
        let e = refused(|c| {
            clustered(c);
            cluster(c).stream = empty.into();
        });
        assert!(e.starts_with("cluster.stream: is empty; "), "{e}");
        let e = refused(|c| {
            clustered(c);
            cluster(c).node = Some(empty.into());
        });
        assert!(e.starts_with("cluster.node: is empty; "), "{e}");
    }
    assert_eq!(
        refused(|c| {
            clustered(c);
            cluster(c).buffer = 0;
        }),
        "cluster.buffer: is 0; it must be at least 1"
    );
}

fn amqp(queue: Option<&str>, exchange: Option<&str>) -> crate::config::AmqpSource {
    crate::config::AmqpSource {
        url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
        queue: queue.map(Into::into),
        exchange: exchange.map(Into::into),
        routing_key: String::new(),
        topic_field: None,
        prefetch: 256,
    }
}

#[test]
fn an_amqp_source_alone_is_an_ingress() {
    assert_eq!(
        check(|c| {
            c.ingress.pull.clear();
            c.ingress.amqp = vec![amqp(Some("swp_websocket"), None)];
        }),
        None
    );
    assert_eq!(
        check(|c| c.ingress.amqp = vec![amqp(None, Some("superdesk_notification"))]),
        None
    );
}

#[test]
fn an_amqp_source_names_one_queue_or_one_exchange() {
    let with = |source: crate::config::AmqpSource| {
        refused(move |c| c.ingress.amqp = vec![amqp(Some("q"), None), source])
    };
    assert!(with(amqp(None, None))
        .starts_with("ingress.amqp[1]: names neither a queue nor an exchange"));
    assert!(with(amqp(Some("q"), Some("x")))
        .starts_with("ingress.amqp[1].exchange: is set beside queue"));
    assert_eq!(
        with(amqp(Some(" "), None)),
        "ingress.amqp[1].queue: is empty"
    );
    assert_eq!(
        with(amqp(None, Some(""))),
        "ingress.amqp[1].exchange: is empty"
    );
    let mut keyed = amqp(Some("q"), None);
    keyed.routing_key = "k".into();
    assert!(with(keyed).starts_with("ingress.amqp[1].routing_key: is set with queue"));
    let mut keyed = amqp(None, Some("x"));
    keyed.routing_key = "k".into();
    assert_eq!(check(|c| c.ingress.amqp = vec![keyed]), None);
}

#[test]
fn an_amqp_source_has_a_url_a_prefetch_and_a_topic_field_that_mean_something() {
    let with = |change: fn(&mut crate::config::AmqpSource)| {
        let mut source = amqp(Some("q"), None);
        change(&mut source);
        check(move |c| c.ingress.amqp = vec![source])
    };
    let refused = with(|s| s.url = "http://guest:hunter2@127.0.0.1:5672/".into()).unwrap();
    assert!(
        refused.starts_with(
            "ingress.amqp[0].url: \"http://guest:<redacted>@127.0.0.1:5672/\" is not an AMQP URL"
        ),
        "{refused}"
    );
    let refused = with(|s| s.url = "amqp://guest:hunter2@127.0.0.1:notaport/%2f".into()).unwrap();
    assert!(refused.starts_with("ingress.amqp[0].url: \"amqp://guest:<redacted>@127.0.0.1:notaport/%2f\" is not an AMQP URL: "), "{refused}");
    assert!(!refused.contains("hunter2"), "{refused}");
    assert_eq!(with(|s| s.url = "amqps://mq.example/%2f".into()), None);
    assert!(with(|s| s.prefetch = 0)
        .unwrap()
        .starts_with("ingress.amqp[0].prefetch: is 0"));
    assert!(with(|s| s.topic_field = Some(String::new()))
        .unwrap()
        .starts_with("ingress.amqp[0].topic_field: is empty"));
}
