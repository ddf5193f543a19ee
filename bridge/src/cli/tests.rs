//! Tests of the command line: parsing, and each command's output and exit status.

use super::*;
use clap::error::ErrorKind;
use clap::CommandFactory;

fn parse(args: &[&str]) -> Result<Args, clap::Error> {
    Args::try_parse_from(std::iter::once("push-bridge").chain(args.iter().copied()))
}

fn publish_args(topic: &str, json: &str) -> PublishArgs {
    match parse(&["publish", topic, json]).unwrap().command {
        Some(Command::Publish(args)) => args,
        other => panic!("not publish: {other:?}"),
    }
}

#[test]
fn the_command_line_is_well_formed() {
    Args::command().debug_assert();
}

#[test]
fn serve_is_the_default_with_or_without_its_name() {
    let args = parse(&[]).unwrap();
    assert!(args.command.is_none());
    assert_eq!(args.serve, ServeArgs::default());

    let flags = [
        "--config",
        "/x.toml",
        "--listen",
        "0.0.0.0:9000",
        "--pull",
        "tcp://a:1",
        "--pull",
        "ipc:///b",
    ];
    let expected = ServeArgs {
        config: Some("/x.toml".into()),
        listen: Some("0.0.0.0:9000".parse().unwrap()),
        pull: vec!["tcp://a:1".into(), "ipc:///b".into()],
    };
    assert_eq!(parse(&flags).unwrap().serve, expected);
    let named: Vec<&str> = std::iter::once("serve").chain(flags).collect();
    match parse(&named).unwrap().command {
        Some(Command::Serve(args)) => assert_eq!(args, expected),
        other => panic!("not serve: {other:?}"),
    }
}

#[test]
fn bad_flags_are_refused_by_the_parser() {
    assert_eq!(
        parse(&["--listen", "nowhere"]).unwrap_err().kind(),
        ErrorKind::ValueValidation
    );
    assert_eq!(
        parse(&["--bogus"]).unwrap_err().kind(),
        ErrorKind::UnknownArgument
    );
    // Serve flags before another command are a mistake, not silently dropped.
    assert!(parse(&["--listen", "0.0.0.0:1", "check-config"]).is_err());
    let e = parse(&["publish", "t", "{}", "--timeout", "soon"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ValueValidation);
    assert_eq!(
        parse(&["publish", "t"]).unwrap_err().kind(),
        ErrorKind::MissingRequiredArgument
    );
}

#[test]
fn help_and_version_everywhere() {
    assert_eq!(
        parse(&["--version"]).unwrap_err().kind(),
        ErrorKind::DisplayVersion
    );
    assert_eq!(
        parse(&["publish", "--version"]).unwrap_err().kind(),
        ErrorKind::DisplayVersion
    );
    for command in [
        &["--help"][..],
        &["serve", "--help"],
        &["check-config", "--help"],
        &["publish", "--help"],
    ] {
        assert_eq!(
            parse(command).unwrap_err().kind(),
            ErrorKind::DisplayHelp,
            "{command:?}"
        );
    }
    let help = parse(&["--help"]).unwrap_err().to_string();
    for word in [
        "serve",
        "check-config",
        "publish",
        "--config",
        "--listen",
        "--pull",
    ] {
        assert!(help.contains(word), "{word} missing from\n{help}");
    }
}

#[test]
fn publish_arguments_and_defaults() {
    let args = publish_args("package_created", "{\"a\": 1}");
    assert_eq!(args.topic, "package_created");
    assert_eq!(args.json, "{\"a\": 1}");
    assert_eq!(args.endpoint, "tcp://127.0.0.1:5555");
    assert_eq!(args.id, None);
    assert_eq!(args.timeout, Duration::from_secs(5));
    match parse(&[
        "publish",
        "t",
        "-5",
        "--endpoint",
        "ipc:///x",
        "--id",
        "e-1",
        "--timeout",
        "250ms",
    ])
    .unwrap()
    .command
    {
        Some(Command::Publish(args)) => {
            assert_eq!(args.json, "-5", "a negative number is data, not a flag");
            assert_eq!(args.endpoint, "ipc:///x");
            assert_eq!(args.id.as_deref(), Some("e-1"));
            assert_eq!(args.timeout, Duration::from_millis(250));
        }
        other => panic!("not publish: {other:?}"),
    }
}

#[test]
fn publish_checks_its_arguments_before_connecting() {
    let e = check_publish_args(&publish_args("a b", "{}"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "topic \"a b\" contains whitespace or a control character"
    );
    let e = check_publish_args(&publish_args("news:*", "{}"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("topic \"news:*\" contains '*'"), "{e}");
    let e = check_publish_args(&publish_args("news", "{oops}"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("the event data is not JSON (key must be a string"),
        "{e}"
    );
    assert!(check_publish_args(&publish_args("news", "{} trailing")).is_err());
    assert!(check_publish_args(&publish_args("news", "")).is_err());
    let mut args = publish_args("news", "{}");
    args.id = Some("bad\nid".into());
    assert_eq!(
        check_publish_args(&args).unwrap_err().to_string(),
        "--id \"bad\\nid\" is not an event id: it must be 1–128 printable ASCII characters"
    );
    args.id = Some("ok-1".into());
    args.timeout = Duration::ZERO;
    assert_eq!(
        check_publish_args(&args).unwrap_err().to_string(),
        "--timeout must be greater than zero"
    );
    for json in [
        "{}",
        "[1, 2]",
        "\"text\"",
        "-5",
        "null",
        " {\"a\": {\"b\": [true]}} ",
    ] {
        assert!(
            check_publish_args(&publish_args("news", json)).is_ok(),
            "{json}"
        );
    }
}

#[test]
fn publish_reports_bad_arguments_on_stderr_with_status_1() {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = publish(&publish_args("news", "not json"), &mut out, &mut err);
    assert_eq!(code, EXIT_PUBLISH);
    assert!(out.is_empty());
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.starts_with("push-bridge publish: the event data is not JSON"),
        "{err}"
    );
}

#[test]
fn publish_without_a_bridge_gives_up_after_the_timeout() {
    // A port nobody listens on: bind one, note it, free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = publish_args("news", "{}");
    args.endpoint = format!("tcp://127.0.0.1:{port}");
    args.timeout = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(publish(&args, &mut out, &mut err), EXIT_PUBLISH);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(out.is_empty());
    let err = String::from_utf8(err).unwrap();
    let expected =
        format!("push-bridge publish: no bridge answered at tcp://127.0.0.1:{port} within 200ms (");
    assert!(err.starts_with(&expected), "{err}");
}

fn toml_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn check(file: &std::path::Path) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    // The file given, an empty environment: what the test process has is not looked at.
    let loaded = config::load_with_env(Some(file), &Overrides::default(), []);
    let code = check_config(loaded, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn check_config_prints_the_effective_config() {
    let file = toml_file("[server]\nsend_queue = 5\n");
    let (code, out, err) = check(file.path());
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.contains("send_queue = 5  # file\n"), "{out}");
    assert!(
        out.contains(&format!("# file: {}", file.path().display())),
        "{out}"
    );
}

#[test]
fn check_config_refuses_with_status_2_and_the_precise_message() {
    let file = toml_file("[server]\nlistne = \"0.0.0.0:1\"\n");
    let (code, out, err) = check(file.path());
    assert_eq!(code, EXIT_CONFIG);
    assert_eq!(out, "");
    let expected = format!(
        "push-bridge: unknown key `server.listne` in {} (",
        file.path().display()
    );
    assert!(err.starts_with(&expected), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = check(&dir.path().join("missing.toml"));
    assert_eq!(code, EXIT_CONFIG);
    assert!(
        err.starts_with("push-bridge: cannot read config file "),
        "{err}"
    );
}
