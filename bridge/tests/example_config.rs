//! Keeps the shipped example config (`systemd/push-bridge.toml`) honest against the
//! real binary: `check-config` accepts it, every key `check-config` knows (optional
//! sections included) is documented in it, it documents no key that does not exist,
//! and every default it shows is the real default. A new key without docs, a renamed
//! key or a changed default fails here.

mod support;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::run_bridge;

fn example_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../systemd/push-bridge.toml")
}

/// `push-bridge check-config --config PATH`: its standard output, after asserting it
/// exited 0 with nothing on standard error.
fn check_config(path: &Path) -> String {
    let output = run_bridge(&[
        OsStr::new("check-config"),
        OsStr::new("--config"),
        path.as_os_str(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "check-config refused {}: {}\n{stderr}",
        path.display(),
        output.status
    );
    assert!(
        stderr.is_empty(),
        "check-config warned about {}: {stderr}",
        path.display()
    );
    stdout
}

/// What a config text mentions: dotted key → value text (`None` for a section header
/// or an unset key). Both `key = value` and commented `# key = value` lines count, and
/// so do `[a.b]` and `# [a.b]` headers; a trailing `  # comment` (check-config's source
/// note) is not part of the value. Prose comments never have the `word = ` shape.
fn mentioned_keys(text: &str) -> BTreeMap<String, Option<String>> {
    let mut keys = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix('#').map_or(line, str::trim_start);
        if let Some(name) = table_header(line) {
            if is_key_path(name) {
                section = name.to_string();
                keys.insert(section.clone(), None);
            }
            continue;
        }
        let Some((key, value)) = line.split_once(" = ") else {
            continue;
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            continue;
        }
        let value = value.split_once("  # ").map_or(value, |(v, _)| v).trim();
        let value = (value != "(unset)").then(|| value.to_string());
        let full = if section.is_empty() {
            key.to_string()
        } else {
            format!("{section}.{key}")
        };
        keys.insert(full, value);
    }
    keys
}

/// The name in a `[table]` or `[[list.of.tables]]` header.
fn table_header(line: &str) -> Option<&str> {
    let name = line.strip_prefix('[')?.strip_suffix(']')?;
    Some(
        name.strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name),
    )
}

fn is_key_path(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
}

/// The keys `check-config` printed with their default value (`value  # default`).
fn printed_defaults(text: &str) -> BTreeMap<String, String> {
    let mut section = String::new();
    let mut defaults = BTreeMap::new();
    for line in text.lines() {
        if let Some(name) = table_header(line) {
            section = name.to_string();
        } else if let Some(value) = line.strip_suffix("  # default") {
            if let Some((key, value)) = value.split_once(" = ") {
                if !key.starts_with('#') {
                    defaults.insert(format!("{section}.{key}"), value.to_string());
                }
            }
        }
    }
    defaults
}

/// A config that turns every optional section on ([server.tls], [auth.jwt],
/// [auth.introspect], [cluster], one [[ingress.amqp]]), so check-config prints all
/// their keys. The TLS pair
/// is real (openssl), in case check-config ever reads it.
fn everything_on(dir: &Path) -> PathBuf {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new("openssl")
        .args(["req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt"])
        .args([
            "ec_paramgen_curve:P-256",
            "-subj",
            "/CN=localhost",
            "-days",
            "1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}): install it, or run scripts/test"));
    assert!(
        status.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let path = dir.join("everything.toml");
    let text = format!(
        "[server.tls]\ncert = {cert:?}\nkey = {key:?}\n\n\
         [auth.jwt]\nsecret = \"0123456789abcdef0123456789abcdef\"\n\n\
         [auth.introspect]\nurl = \"https://publisher.example.com/check\"\n\n\
         [cluster]\nredis = \"redis://127.0.0.1:6379/0\"\n\n\
         [[ingress.amqp]]\nurl = \"amqp://127.0.0.1:5672/%2f\"\nqueue = \"swp_websocket\"\n",
        cert = cert.display().to_string(),
        key = key.display().to_string(),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn check_config_accepts_the_example() {
    check_config(&example_path());
}

#[test]
fn the_example_sets_every_key_to_its_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").expect("write");
    let strip = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with("# file:"))
            .map(|l| l.rsplit_once("  # ").map_or(l, |(v, _)| v).to_string())
            .collect()
    };
    assert_eq!(
        strip(&check_config(&example_path())),
        strip(&check_config(&empty)),
        "the example's uncommented values must be the defaults"
    );
}

#[test]
fn every_key_is_documented_and_every_documented_key_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let printed = check_config(&everything_on(dir.path()));
    let known = mentioned_keys(&printed);
    for optional in [
        "server.tls.cert",
        "auth.jwt.issuer",
        "auth.introspect.url",
        "cluster.redis",
        "cluster.node",
        "ingress.amqp.url",
        "ingress.amqp.prefetch",
    ] {
        assert!(
            known.contains_key(optional),
            "check-config did not print {optional}:\n{printed}"
        );
    }
    let example_text = std::fs::read_to_string(example_path()).expect("read example");
    let documented = mentioned_keys(&example_text);

    let undocumented: Vec<_> = known
        .keys()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    assert!(
        undocumented.is_empty(),
        "keys check-config knows but systemd/push-bridge.toml does not show: {undocumented:?}"
    );
    let unknown: Vec<_> = documented
        .keys()
        .filter(|k| !known.contains_key(*k))
        .collect();
    assert!(
        unknown.is_empty(),
        "keys systemd/push-bridge.toml shows but check-config does not know: {unknown:?}"
    );

    let defaults = printed_defaults(&printed);
    assert!(defaults.contains_key("auth.jwt.leeway"), "{defaults:?}");
    for (key, default) in &defaults {
        let shown = documented.get(key).cloned().flatten();
        assert_eq!(
            shown.as_deref(),
            Some(default.as_str()),
            "systemd/push-bridge.toml shows {key} with a value other than its default"
        );
    }
}

/// The reference for users, docs/configuration.md, names every key check-config knows
/// and no other, each with its real default: what the example config must do, the
/// reference must do too.
#[test]
fn the_configuration_reference_documents_every_key_with_its_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let printed = check_config(&everything_on(dir.path()));
    let known = mentioned_keys(&printed);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let reference = reference_keys(&std::fs::read_to_string(&path).expect("read reference"));

    let undocumented: Vec<_> = known
        .keys()
        .filter(|k| !reference.contains_key(*k))
        .collect();
    assert!(
        undocumented.is_empty(),
        "keys check-config knows but docs/configuration.md does not document: {undocumented:?}"
    );
    let unknown: Vec<_> = reference
        .keys()
        .filter(|k| !known.contains_key(*k))
        .collect();
    assert!(
        unknown.is_empty(),
        "keys docs/configuration.md documents but check-config does not know: {unknown:?}"
    );
    for (key, default) in printed_defaults(&printed) {
        let shown = reference.get(&key).cloned().flatten();
        assert_eq!(
            shown.as_deref(),
            Some(format!("`{default}`").as_str()),
            "docs/configuration.md shows {key} with a default other than the real one"
        );
    }
}

/// What docs/configuration.md documents: each heading that names a section
/// (`` ## `[server]` ``) with `None`, and each row of the table under it
/// (`` | `listen` | `"127.0.0.1:8080"` | … ``) as dotted key → its default cell.
fn reference_keys(text: &str) -> BTreeMap<String, Option<String>> {
    let mut keys = BTreeMap::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix('#') {
            let name = heading.trim_start_matches('#').trim();
            section = (name.strip_prefix('`').and_then(|n| n.strip_suffix('`')))
                .and_then(table_header)
                .filter(|n| is_key_path(n))
                .map(str::to_string);
            if let Some(section) = &section {
                keys.insert(section.clone(), None);
            }
            continue;
        }
        let (Some(section), Some(row)) = (&section, line.strip_prefix('|')) else {
            continue;
        };
        let mut cells = row.split('|').map(str::trim);
        let key = cells.next().unwrap_or_default();
        let Some(key) = key.strip_prefix('`').and_then(|k| k.strip_suffix('`')) else {
            continue;
        };
        if is_key_path(key) {
            let default = cells.next().map(str::to_string);
            keys.insert(format!("{section}.{key}"), default);
        }
    }
    keys
}

#[test]
fn the_reference_reader_reads_sections_and_rows() {
    let text = "# Configuration\n\n| key | default |\n|---|---|\n| `stray` | `1` |\n\n\
                ## `[server]`\n\n| key | default | meaning |\n|---|---|---|\n\
                | `listen` | `\"127.0.0.1:8080\"` | where |\n| `tls_like` | unset | x |\n\n\
                ### `[server.tls]`\n\n| `cert` | — | PEM |\n\n### `[[ingress.amqp]]`\n\n| `url` | — | AMQP |\n\n## Units\n\n| `not_a_key` | `2` |\n";
    let keys = reference_keys(text);
    let expected: BTreeMap<String, Option<String>> = [
        ("server", None),
        ("server.listen", Some("`\"127.0.0.1:8080\"`")),
        ("server.tls_like", Some("unset")),
        ("server.tls", None),
        ("server.tls.cert", Some("—")),
        ("ingress.amqp", None),
        ("ingress.amqp.url", Some("—")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
    .collect();
    assert_eq!(keys, expected);
}

#[test]
fn the_key_reader_reads_keys_and_skips_prose() {
    let text = "# prose with a = sign inside\n[server]\nlisten = \"x\"  # default\n\
                # max = 3\n# [auth.jwt]\n# leeway = \"1m\"\n# tls = (unset)  # default\n\
                # Keys like a.b = c are prose\n";
    let keys = mentioned_keys(text);
    let expected: BTreeMap<String, Option<String>> = [
        ("server", None),
        ("server.listen", Some("\"x\"")),
        ("server.max", Some("3")),
        ("auth.jwt", None),
        ("auth.jwt.leeway", Some("\"1m\"")),
        ("auth.jwt.tls", None),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
    .collect();
    assert_eq!(keys, expected);
    let defaults = printed_defaults("[server]\nlisten = \"x\"  # default\nheartbeat = \"1s\"  # file\n# tls = (unset)  # default\n");
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults["server.listen"], "\"x\"");
}
