//! Tests of the layering and the blame: every layer, every refusal, with temp files
//! and an injected environment (never the real /etc or process environment).

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::config::{DefaultProtocol, LogFormat};
use crate::topic::{Pattern, Topic};

fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    pairs
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
}

fn toml_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn load_env(pairs: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    load_from(None, env(pairs), &Overrides::default())
}

fn err_text(result: Result<Loaded, ConfigError>) -> String {
    match result {
        Ok(loaded) => panic!("expected an error, got {:?}", loaded.config),
        Err(e) => e.to_string(),
    }
}

/// The error of loading `text` as the config file (no environment, no flags), and
/// the file's path as the error names it.
fn file_err(text: &str) -> (String, String) {
    let file = toml_file(text);
    let e = err_text(load_from(
        Some(file.path()),
        env(&[]),
        &Overrides::default(),
    ));
    (e, file.path().display().to_string())
}

#[test]
fn nothing_given_is_the_defaults() {
    let loaded = load_env(&[
        ("HOME", "/root"),
        ("PUSH_BRIDGE", "x"),
        ("PUSH_BRIDGE_", "x"),
    ])
    .unwrap();
    assert_eq!(loaded.config, Config::default());
    assert_eq!(loaded.file, None);
    assert_eq!(loaded.source("server.listen"), Source::Default);
    assert_eq!(loaded.env_var("server.listen"), None);
}

#[test]
fn file_overrides_defaults() {
    let file = toml_file(
        "[server]\nlisten = \"0.0.0.0:9000\"\nheartbeat = \"30s\"\nmax_inbound_frame_bytes = \"8KiB\"\ndefault_protocol = \"native\"\n\
         [ingress]\npull = []\nsub = [\"tcp://10.0.0.1:5556\"]\ntopic_field = \"category\"\ndefault_topic = \"news\"\n\
         [auth]\nallow_anonymous = true\nanonymous_topics = [\"news:*\"]\n[log]\nformat = \"json\"\n",
    );
    let loaded = load_from(Some(file.path()), env(&[]), &Overrides::default()).unwrap();
    let c = &loaded.config;
    assert_eq!(
        c.server.listen,
        "0.0.0.0:9000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(c.server.heartbeat, Duration::from_secs(30));
    assert_eq!(c.server.max_inbound_frame_bytes, 8192);
    assert_eq!(c.server.default_protocol, DefaultProtocol::Native);
    assert_eq!(
        c.server.send_queue, 1024,
        "untouched keys keep their default"
    );
    assert!(c.ingress.pull.is_empty());
    assert_eq!(c.ingress.sub, ["tcp://10.0.0.1:5556"]);
    assert_eq!(c.ingress.topic_field.as_deref(), Some("category"));
    assert_eq!(c.ingress.default_topic, Some(Topic::parse("news").unwrap()));
    assert!(c.auth.allow_anonymous);
    assert_eq!(c.auth.anonymous_topics, [Pattern::parse("news:*").unwrap()]);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(loaded.file.as_deref(), Some(file.path()));
    assert_eq!(
        loaded.source("server.listen"),
        Source::File(file.path().to_path_buf())
    );
    assert_eq!(
        loaded.source("ingress.pull"),
        Source::File(file.path().to_path_buf())
    );
    assert_eq!(loaded.source("server.send_queue"), Source::Default);
}

#[test]
fn env_overrides_file_and_flags_override_env() {
    let file = toml_file("[server]\nlisten = \"0.0.0.0:9000\"\nsend_queue = 5\n");
    let vars = env(&[
        ("PUSH_BRIDGE_SERVER__LISTEN", "0.0.0.0:9001"),
        ("PUSH_BRIDGE_SERVER__HEARTBEAT", "40s"),
        ("PUSH_BRIDGE_INGRESS__PULL", "[\"tcp://127.0.0.1:6000\"]"),
    ]);
    let loaded = load_from(Some(file.path()), vars.clone(), &Overrides::default()).unwrap();
    assert_eq!(loaded.config.server.listen.port(), 9001);
    assert_eq!(loaded.config.server.send_queue, 5);
    assert_eq!(loaded.source("server.listen"), Source::Env);
    assert_eq!(
        loaded.env_var("server.listen"),
        Some("PUSH_BRIDGE_SERVER__LISTEN")
    );

    let overrides = Overrides {
        listen: Some("127.0.0.2:9002".parse().unwrap()),
        pull: vec!["ipc:///tmp/a.sock".into(), "tcp://127.0.0.1:7000".into()],
    };
    let loaded = load_from(Some(file.path()), vars, &overrides).unwrap();
    assert_eq!(loaded.config.server.listen, overrides.listen.unwrap());
    assert_eq!(
        loaded.config.ingress.pull, overrides.pull,
        "--pull replaces the list"
    );
    assert_eq!(loaded.source("server.listen"), Source::Flag);
    assert_eq!(loaded.source("ingress.pull"), Source::Flag);
    assert_eq!(loaded.source("server.heartbeat"), Source::Env);
    assert_eq!(
        loaded.source("server.send_queue"),
        Source::File(file.path().to_path_buf())
    );
}

#[test]
fn env_numbers_are_strings_where_strings_are_wanted() {
    let loaded = load_env(&[
        ("PUSH_BRIDGE_INGRESS__DEFAULT_TOPIC", "123"),
        ("PUSH_BRIDGE_INGRESS__TOPIC_FIELD", "42"),
        ("PUSH_BRIDGE_AUTH__COOKIE", "123"),
        ("PUSH_BRIDGE_INGRESS__SUB_PREFIXES", "[1, \"b\", 2.5, true]"),
        (
            "PUSH_BRIDGE_SERVER__ALLOWED_ORIGINS",
            "[\"https://a.example\"]",
        ),
    ])
    .unwrap();
    let c = &loaded.config;
    assert_eq!(c.ingress.default_topic, Some(Topic::parse("123").unwrap()));
    assert_eq!(c.ingress.topic_field.as_deref(), Some("42"));
    assert_eq!(c.auth.cookie.as_deref(), Some("123"));
    assert_eq!(c.ingress.sub_prefixes, ["1", "b", "2.5", "true"]);
    assert_eq!(
        c.server.allowed_origins,
        Some(vec!["https://a.example".to_string()])
    );
}

#[test]
fn env_text_becomes_numbers_bools_sizes_and_durations_where_wanted() {
    let loaded = load_env(&[
        ("PUSH_BRIDGE_SERVER__SEND_QUEUE", "10"),
        ("PUSH_BRIDGE_SERVER__MAX_CONNECTIONS_PER_IP", "5"),
        ("PUSH_BRIDGE_SERVER__MAX_INBOUND_FRAME_BYTES", "65536"),
        ("PUSH_BRIDGE_INGRESS__MAX_MESSAGE_BYTES", "1MiB"),
        ("PUSH_BRIDGE_SERVER__DRAIN_TIMEOUT", "1m 30s"),
        ("PUSH_BRIDGE_SERVER__DEFAULT_PROTOCOL", "native"),
        ("PUSH_BRIDGE_AUTH__ALLOW_ANONYMOUS", "true"),
        (
            "PUSH_BRIDGE_AUTH__ANONYMOUS_TOPICS",
            "[\"news\", \"sport:*\"]",
        ),
        ("PUSH_BRIDGE_LOG__LEVEL", "debug"),
        // An IPv6 address starts with `[` but is not a list.
        ("PUSH_BRIDGE_SERVER__LISTEN", "[::1]:8080"),
    ])
    .unwrap();
    let c = &loaded.config;
    assert_eq!(c.server.send_queue, 10);
    assert_eq!(c.server.max_connections_per_ip, Some(5));
    assert_eq!(c.server.max_inbound_frame_bytes, 65536);
    assert_eq!(c.ingress.max_message_bytes, 1 << 20);
    assert_eq!(c.server.drain_timeout, Duration::from_secs(90));
    assert_eq!(c.server.default_protocol, DefaultProtocol::Native);
    assert!(c.auth.allow_anonymous);
    assert_eq!(c.auth.anonymous_topics.len(), 2);
    assert_eq!(c.log.level, "debug");
    assert_eq!(c.server.listen, "[::1]:8080".parse::<SocketAddr>().unwrap());
}

#[test]
fn env_can_set_a_whole_table() {
    let loaded = load_env(&[("PUSH_BRIDGE_LOG", "{level = \"warn\", format = \"json\"}")]).unwrap();
    assert_eq!(loaded.config.log.level, "warn");
    assert_eq!(loaded.config.log.format, LogFormat::Json);
    assert_eq!(loaded.env_var("log.level"), Some("PUSH_BRIDGE_LOG"));
}

#[test]
fn explicit_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let e = err_text(load_from(Some(&missing), env(&[]), &Overrides::default()));
    assert!(
        e.starts_with(&format!("cannot read config file {}: ", missing.display())),
        "{e}"
    );
    // The public entry point too: an explicit path is never replaced by the default.
    let e = load(Some(&missing), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.toml"), "{e}");
}

#[test]
fn bad_toml_names_the_file_and_line() {
    let (e, path) = file_err("[server]\nlisten = \n");
    assert!(e.starts_with(&format!("{path} is not valid TOML: ")), "{e}");
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn unknown_keys_in_the_file_name_key_and_file() {
    let (e, path) = file_err("[server]\nlistne = \"0.0.0.0:1\"\n");
    let expected =
        format!("unknown key `server.listne` in {path} (known keys in [server]: listen, ");
    assert!(e.starts_with(&expected), "{e}");

    let (e, _) = file_err("[servr]\nlisten = \"0.0.0.0:1\"\n");
    assert!(e.starts_with("unknown key `servr` in "), "{e}");
    assert!(
        e.ends_with("(known keys at the top level: server, ingress, auth, history, log, cluster)"),
        "{e}"
    );
}

#[test]
fn unknown_keys_in_the_environment_name_the_variable() {
    let e = err_text(load_env(&[("PUSH_BRIDGE_SERVER__LISTNE", "0.0.0.0:1")]));
    assert!(
        e.starts_with(
            "unknown key `server.listne` in environment variable PUSH_BRIDGE_SERVER__LISTNE"
        ),
        "{e}"
    );
    // A single underscore is not a level separator.
    let e = err_text(load_env(&[("PUSH_BRIDGE_SERVER_LISTEN", "0.0.0.0:1")]));
    assert!(
        e.starts_with(
            "unknown key `server_listen` in environment variable PUSH_BRIDGE_SERVER_LISTEN"
        ),
        "{e}"
    );
}

#[test]
fn bad_values_name_key_value_and_place() {
    let (e, path) = file_err("[server]\nheartbeat = \"5 parsecs\"\n");
    assert!(
        e.starts_with("server.heartbeat: \"5 parsecs\" is not a duration"),
        "{e}"
    );
    assert!(e.ends_with(&format!("(from {path})")), "{e}");

    let (e, _) = file_err("[server]\nsend_queue = \"ten\"\n");
    assert!(
        e.starts_with("server.send_queue: invalid type: found string \"ten\""),
        "{e}"
    );

    let (e, _) = file_err("[server]\ndefault_protocol = \"wamp3\"\n");
    assert!(
        e.starts_with("server.default_protocol: \"wamp3\" is not one of: wamp1, native (from "),
        "{e}"
    );

    let e = err_text(load_env(&[("PUSH_BRIDGE_SERVER__LISTEN", "nowhere")]));
    assert_eq!(e, "server.listen: invalid socket address syntax (got \"nowhere\") (from environment variable PUSH_BRIDGE_SERVER__LISTEN)");

    let e = err_text(load_env(&[("PUSH_BRIDGE_SERVER__SEND_QUEUE", "lots")]));
    assert!(e.starts_with("server.send_queue: "), "{e}");
    assert!(
        e.ends_with("(from environment variable PUSH_BRIDGE_SERVER__SEND_QUEUE)"),
        "{e}"
    );

    let e = err_text(load_env(&[("PUSH_BRIDGE_INGRESS__DEFAULT_TOPIC", "a b")]));
    assert!(
        e.starts_with("ingress.default_topic: \"a b\" contains whitespace"),
        "{e}"
    );

    let e = err_text(load_env(&[(
        "PUSH_BRIDGE_AUTH__ANONYMOUS_TOPICS",
        "[\"ok\", \"art*\"]",
    )]));
    assert!(
        e.starts_with("auth.anonymous_topics.1: \"art*\" contains '*'"),
        "{e}"
    );
    assert!(
        e.ends_with("(from environment variable PUSH_BRIDGE_AUTH__ANONYMOUS_TOPICS)"),
        "{e}"
    );
}

#[test]
fn an_env_layer_error_is_not_blamed_on_a_good_file() {
    let file = toml_file("[server]\nheartbeat = \"5s\"\n");
    let e = err_text(load_from(
        Some(file.path()),
        env(&[("PUSH_BRIDGE_SERVER__HEARTBEAT", "soon")]),
        &Overrides::default(),
    ));
    assert!(
        e.contains("environment variable PUSH_BRIDGE_SERVER__HEARTBEAT"),
        "{e}"
    );
    assert!(!e.contains(&file.path().display().to_string()), "{e}");
}

#[cfg(unix)]
#[test]
fn non_utf8_environment_values_are_refused() {
    use std::os::unix::ffi::OsStringExt;
    let vars = vec![(
        OsString::from("PUSH_BRIDGE_LOG__LEVEL"),
        OsString::from_vec(vec![0xff, 0xfe]),
    )];
    let e = load_from(None, vars, &Overrides::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "log.level: is not valid UTF-8 (from environment variable PUSH_BRIDGE_LOG__LEVEL)"
    );
}

#[test]
fn validation_errors_are_blamed_on_their_layer() {
    let (e, path) = file_err("[server]\nsend_queue = 0\n");
    assert_eq!(
        e,
        format!("server.send_queue: is 0; it must be at least 1 (from {path})")
    );

    let e = err_text(load_env(&[("PUSH_BRIDGE_SERVER__HEARTBEAT", "0s")]));
    assert!(
        e.starts_with("server.heartbeat: must be greater than zero"),
        "{e}"
    );
    assert!(
        e.ends_with("(from environment variable PUSH_BRIDGE_SERVER__HEARTBEAT)"),
        "{e}"
    );

    let overrides = Overrides {
        listen: None,
        pull: vec!["udp://x".into()],
    };
    let e = err_text(load_from(None, env(&[]), &overrides));
    assert!(
        e.starts_with("ingress.pull: \"udp://x\" is not a ZeroMQ endpoint"),
        "{e}"
    );
    assert!(e.ends_with("(from flag --pull)"), "{e}");
}

#[test]
fn effective_config_names_each_source_and_reads_back() {
    let file = toml_file("[server]\nsend_queue = 5\n[ingress]\ntopic_field = \"category\"\n");
    let vars = env(&[
        ("PUSH_BRIDGE_SERVER__HEARTBEAT", "30s"),
        ("PUSH_BRIDGE_AUTH__COOKIE", "123"),
    ]);
    let overrides = Overrides {
        listen: Some("0.0.0.0:9000".parse().unwrap()),
        pull: vec![],
    };
    let loaded = load_from(Some(file.path()), vars, &overrides).unwrap();
    let out = loaded.render_effective();
    for line in [
        format!("# file: {}\n", file.path().display()),
        "\n[server]\nlisten = \"0.0.0.0:9000\"  # flag\n".to_string(),
        "heartbeat = \"30s\"  # env PUSH_BRIDGE_SERVER__HEARTBEAT\n".to_string(),
        "send_queue = 5  # file\n".to_string(),
        "max_connections = 100000  # default\n".to_string(),
        "max_inbound_frame_bytes = \"4KiB\"  # default\n".to_string(),
        "# max_connections_per_ip = (unset)  # default\n".to_string(),
        "topic_field = \"category\"  # file\n".to_string(),
        "cookie = \"123\"  # env PUSH_BRIDGE_AUTH__COOKIE\n".to_string(),
        "pull = [\"tcp://127.0.0.1:5555\"]  # default\n".to_string(),
        "\n[log]\nformat = \"text\"  # default\nlevel = \"info\"  # default\n".to_string(),
    ] {
        assert!(out.contains(&line), "missing {line:?} in\n{out}");
    }
    // The printout is itself a configuration file giving the same result.
    let again = toml_file(&out);
    let reloaded = load_from(Some(again.path()), env(&[]), &Overrides::default()).unwrap();
    assert_eq!(reloaded.config, loaded.config);
}

#[test]
fn effective_config_without_a_file_says_so() {
    let out = load_env(&[]).unwrap().render_effective();
    assert!(
        out.starts_with("# push-bridge effective configuration\n# file: none"),
        "{out}"
    );
    assert!(
        !out.contains("# file\n") && !out.contains("# env") && !out.contains("# flag"),
        "{out}"
    );
}

#[test]
fn reload_reads_the_file_again_and_keeps_the_flags() {
    let file = toml_file("[server]\nsend_queue = 5\n");
    let overrides = Overrides {
        listen: Some("127.0.0.3:9003".parse().unwrap()),
        pull: vec![],
    };
    let loaded = load_with_env(Some(file.path()), &overrides, env(&[])).unwrap();
    assert_eq!(loaded.config.server.send_queue, 5);
    std::fs::write(
        file.path(),
        "[server]\nsend_queue = 7\nlisten = \"0.0.0.0:1\"\n",
    )
    .unwrap();
    let reloaded = loaded.reload_with_env(env(&[])).unwrap();
    assert_eq!(reloaded.config.server.send_queue, 7);
    assert_eq!(
        reloaded.config.server.listen,
        overrides.listen.unwrap(),
        "the flag still wins"
    );
    std::fs::write(file.path(), "[server]\nsend_queue = 0\n").unwrap();
    let e = loaded.reload_with_env(env(&[])).unwrap_err().to_string();
    assert!(e.starts_with("server.send_queue: is 0"), "{e}");
    // The environment is read as it is at the reload.
    std::fs::write(file.path(), "").unwrap();
    let vars = env(&[("PUSH_BRIDGE_SERVER__HEARTBEAT", "1m")]);
    let reloaded = loaded.reload_with_env(vars).unwrap();
    assert_eq!(reloaded.config.server.heartbeat, Duration::from_secs(60));
}

#[test]
fn one_env_variable_makes_a_cluster_with_the_defaults() {
    let loaded = load_env(&[("PUSH_BRIDGE_CLUSTER__REDIS", "redis://10.0.0.5:6379/0")]).unwrap();
    let cluster = loaded.config.cluster.clone().expect("a [cluster] section");
    assert_eq!(cluster.redis, "redis://10.0.0.5:6379/0");
    assert_eq!(cluster.stream, "push-bridge");
    assert_eq!(cluster.node, None);
    assert_eq!(cluster.buffer, 10_000);
    assert_eq!(loaded.source("cluster.redis"), Source::Env);
    assert_eq!(loaded.source("cluster.stream"), Source::Default);
    // Without it, no cluster.
    assert_eq!(load_env(&[]).unwrap().config.cluster, None);
}

#[test]
fn cluster_env_values_that_look_like_numbers_stay_strings() {
    let loaded = load_env(&[
        ("PUSH_BRIDGE_CLUSTER__REDIS", "redis://:123456@10.0.0.5/0"),
        ("PUSH_BRIDGE_CLUSTER__NODE", "1"),
        ("PUSH_BRIDGE_CLUSTER__STREAM", "2024"),
        ("PUSH_BRIDGE_CLUSTER__BUFFER", "500"),
    ])
    .unwrap();
    let cluster = loaded.config.cluster.expect("a [cluster] section");
    assert_eq!(cluster.node.as_deref(), Some("1"));
    assert_eq!(cluster.stream, "2024");
    assert_eq!(cluster.buffer, 500);
}

#[test]
fn a_cluster_without_redis_names_the_missing_key_and_its_place() {
    let e = err_text(load_env(&[("PUSH_BRIDGE_CLUSTER__NODE", "bridge-1")]));
    assert_eq!(
        e,
        "cluster.redis: is missing; [cluster] needs it (from environment variable PUSH_BRIDGE_CLUSTER__NODE)"
    );
    let (e, path) = file_err("[cluster]\nnode = \"bridge-1\"\n");
    assert_eq!(
        e,
        format!("cluster.redis: is missing; [cluster] needs it (from {path})")
    );
}

#[test]
fn cluster_refusals_are_blamed_on_their_layer_without_the_password() {
    let file = toml_file("[history]\nfile = \"/var/lib/push-bridge/history.jsonl\"\n");
    let e = err_text(load_from(
        Some(file.path()),
        env(&[("PUSH_BRIDGE_CLUSTER__REDIS", "redis://127.0.0.1/0")]),
        &Overrides::default(),
    ));
    assert!(
        e.starts_with("history.file: is set, but with [cluster] "),
        "{e}"
    );
    assert!(
        e.ends_with(&format!("(from {})", file.path().display())),
        "{e}"
    );

    let e = err_text(load_env(&[("PUSH_BRIDGE_CLUSTER__REDIS", "10.0.0.5:6379")]));
    assert!(
        e.starts_with("cluster.redis: 10.0.0.5:6379 is not a Redis address"),
        "{e}"
    );
    assert!(
        e.ends_with("(from environment variable PUSH_BRIDGE_CLUSTER__REDIS)"),
        "{e}"
    );
    let e = err_text(load_env(&[(
        "PUSH_BRIDGE_CLUSTER__REDIS",
        "redis://:hunter2@10.0.0.5:6379/zero",
    )]));
    assert!(e.starts_with("cluster.redis: "), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn effective_config_shows_the_cluster_with_its_password_redacted() {
    let file =
        toml_file("[cluster]\nredis = \"redis://:hunter2@10.0.0.5:6379/0\"\nnode = \"bridge-1\"\n");
    let loaded = load_from(
        Some(file.path()),
        env(&[("PUSH_BRIDGE_CLUSTER__BUFFER", "500")]),
        &Overrides::default(),
    )
    .unwrap();
    let out = loaded.render_effective();
    assert!(!out.contains("hunter2"), "{out}");
    let expected = "\n[cluster]\nredis = \"redis://:<redacted>@10.0.0.5:6379/0\"  # file\n\
                    stream = \"push-bridge\"  # default\nnode = \"bridge-1\"  # file\n\
                    buffer = 500  # env PUSH_BRIDGE_CLUSTER__BUFFER\n";
    assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    // Without a cluster the printout says the section is unset.
    let out = load_env(&[]).unwrap().render_effective();
    assert!(out.contains("# cluster = (unset)  # default\n"), "{out}");
}
