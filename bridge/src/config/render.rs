//! The `check-config` printout: the effective configuration as TOML, every key
//! followed by where its value came from, secrets replaced by a placeholder (or, for
//! an address that carries one, the address with only its password replaced).
//!
//! The tree is walked as JSON (so unset options show up as `null`, which TOML cannot
//! hold) and each value is printed with the TOML serializer, so the output reads back
//! as a configuration file.

use serde_json::Value as Json;

use super::load::{Loaded, Source};
use crate::eventlog::redis::RedisAddress;
pub use crate::redact::REDACTED;

/// A key whose value never appears whole in output.
#[derive(Debug, Clone, Copy)]
pub struct Secret {
    /// Dotted path, e.g. `auth.jwt.secret`.
    pub key: &'static str,
    /// What is printed for a (string) value: [`hidden`] for a secret as a whole, or
    /// the value with the secret part replaced (a password in a URL).
    pub shown: fn(&str) -> String,
}

/// The secrets of the configuration tree.
pub const SECRET_KEYS: &[Secret] = &[
    Secret {
        key: "auth.jwt.secret",
        shown: hidden,
    },
    Secret {
        key: "cluster.redis",
        shown: RedisAddress::redacted,
    },
    Secret {
        key: "ingress.amqp.url",
        shown: crate::redact::url,
    },
];

/// A secret printed as [`REDACTED`], whatever it is.
pub fn hidden(_: &str) -> String {
    REDACTED.to_string()
}

impl Loaded {
    /// TOML of the effective configuration, secrets redacted, each key followed by a
    /// comment naming its source: `# default`, `# file`, `# env PUSH_BRIDGE_…`,
    /// `# flag`.
    pub fn render_effective(&self) -> String {
        let file = match &self.file {
            Some(path) => path.display().to_string(),
            None => "none (no --config given and the default file does not exist)".to_string(),
        };
        let header = format!("# push-bridge effective configuration\n# file: {file}\n");
        let tree = match serde_json::to_value(&self.config) {
            Ok(tree) => tree,
            // Unreachable for this tree (string keys only); say so rather than panic.
            Err(e) => return format!("{header}# cannot print the configuration: {e}\n"),
        };
        header + &render_tree(&tree, &|key| self.comment(key), SECRET_KEYS)
    }

    fn comment(&self, key: &str) -> String {
        match self.source(key) {
            Source::Default => "default".to_string(),
            Source::File(_) => "file".to_string(),
            Source::Env => match self.env_var(key) {
                Some(var) => format!("env {var}"),
                None => "env".to_string(),
            },
            Source::Flag => "flag".to_string(),
        }
    }
}

/// Renders a JSON object tree as TOML: scalars and lists of a table as `key = value  #
/// comment(path)`, sub-objects as `[section]` tables after them; `null` as a commented
/// `(unset)` line; values at a path in `secrets` as that secret shows them (a value
/// other than a string as [`REDACTED`]).
pub fn render_tree(tree: &Json, comment: &dyn Fn(&str) -> String, secrets: &[Secret]) -> String {
    let mut out = String::new();
    if let Json::Object(_) = tree {
        render_table(&mut out, "", tree, comment, secrets);
    }
    out
}

fn render_table(
    out: &mut String,
    path: &str,
    table: &Json,
    comment: &dyn Fn(&str) -> String,
    secrets: &[Secret],
) {
    let Json::Object(map) = table else {
        return;
    };
    let leaves = render_leaves(path, map, comment, secrets);
    if !path.is_empty() && (!leaves.is_empty() || map.is_empty()) {
        out.push_str(&format!("\n[{path}]\n"));
    }
    out.push_str(&leaves);
    for (key, value) in map.iter().filter(|(_, v)| v.is_object()) {
        render_table(out, &join(path, key), value, comment, secrets);
    }
    // Lists of tables (`[[ingress.amqp]]`): each element its own section; its keys
    // are named (and their secrets found) without the element's position.
    for (key, elements) in map
        .iter()
        .filter_map(|(k, v)| table_list(v).map(|l| (k, l)))
    {
        let path = join(path, key);
        for element in elements {
            out.push_str(&format!("\n[[{path}]]\n"));
            if let Json::Object(inner) = element {
                out.push_str(&render_leaves(&path, inner, comment, secrets));
                for (key, value) in inner.iter().filter(|(_, v)| v.is_object()) {
                    render_table(out, &join(&path, key), value, comment, secrets);
                }
            }
        }
    }
}

/// The scalars and plain lists of one table, a line each.
fn render_leaves(
    path: &str,
    map: &serde_json::Map<String, Json>,
    comment: &dyn Fn(&str) -> String,
    secrets: &[Secret],
) -> String {
    let mut leaves = String::new();
    let leaf = |v: &Json| !v.is_object() && table_list(v).is_none();
    for (key, value) in map.iter().filter(|(_, v)| leaf(v)) {
        let full = join(path, key);
        let note = comment(&full);
        let secret = secrets.iter().find(|s| s.key == full);
        let line = match (value, secret) {
            (Json::Null, _) => format!("# {key} = (unset)  # {note}\n"),
            (Json::String(text), Some(secret)) => {
                let shown = Json::String((secret.shown)(text));
                format!("{key} = {}  # {note}\n", toml_inline(&shown))
            }
            (_, Some(_)) => format!("{key} = \"{REDACTED}\"  # {note}\n"),
            (_, None) => format!("{key} = {}  # {note}\n", toml_inline(value)),
        };
        leaves.push_str(&line);
    }
    leaves
}

/// A non-empty list whose elements are all tables.
fn table_list(value: &Json) -> Option<&Vec<Json>> {
    match value {
        Json::Array(list) if !list.is_empty() && list.iter().all(Json::is_object) => Some(list),
        _ => None,
    }
}

fn join(path: &str, key: &str) -> String {
    match path {
        "" => key.to_string(),
        _ => format!("{path}.{key}"),
    }
}

/// One value in TOML's inline syntax; JSON that TOML cannot hold (a `null` inside a
/// list) falls back to JSON text in a comment-safe string.
fn toml_inline(value: &Json) -> String {
    match toml::Value::try_from(value) {
        Ok(v) => v.to_string(),
        Err(_) => toml::Value::String(value.to_string()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_source(key: &str) -> String {
        format!("from {key}")
    }

    #[test]
    fn secrets_are_redacted_wherever_they_sit() {
        let tree = json!({
            "auth": {"cookie": "sid", "jwt": {"secret": "hunter2", "issuer": "me"}},
            "token": "top-secret",
        });
        let token = Secret {
            key: "token",
            shown: hidden,
        };
        let out = render_tree(&tree, &no_source, &[SECRET_KEYS[0], token]);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(!out.contains("top-secret"), "{out}");
        assert!(
            out.contains("secret = \"<redacted>\"  # from auth.jwt.secret\n"),
            "{out}"
        );
        assert!(
            out.contains("token = \"<redacted>\"  # from token\n"),
            "{out}"
        );
        assert!(
            out.contains("issuer = \"me\"  # from auth.jwt.issuer\n"),
            "{out}"
        );
        // The same key name elsewhere is not a secret.
        let out = render_tree(
            &json!({"other": {"secret": "visible"}}),
            &no_source,
            SECRET_KEYS,
        );
        assert!(out.contains("secret = \"visible\""), "{out}");
    }

    #[test]
    fn a_redis_address_shows_its_host_but_not_its_password() {
        let tree = json!({"cluster": {
            "redis": "redis+sentinel://:hunter2@h1:26379,h2:26379/mymaster/0",
            "stream": "push-bridge",
        }});
        let out = render_tree(&tree, &no_source, SECRET_KEYS);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(
            out.contains("redis = \"redis+sentinel://:<redacted>@h1:26379,h2:26379/mymaster/0\"  # from cluster.redis\n"),
            "{out}"
        );
        let out = render_tree(
            &json!({"cluster": {"redis": "redis://user:p%40ss@10.0.0.5:6379/0"}}),
            &no_source,
            SECRET_KEYS,
        );
        assert!(
            out.contains("redis = \"redis://user:<redacted>@10.0.0.5:6379/0\""),
            "{out}"
        );
        // Nothing to hide: the address as it is.
        let out = render_tree(
            &json!({"cluster": {"redis": "redis://127.0.0.1:6379/0"}}),
            &no_source,
            SECRET_KEYS,
        );
        assert!(
            out.contains("redis = \"redis://127.0.0.1:6379/0\""),
            "{out}"
        );
        // A secret that is not a string is hidden whole.
        let out = render_tree(
            &json!({"auth": {"jwt": {"secret": 1234}}}),
            &no_source,
            SECRET_KEYS,
        );
        assert!(out.contains("secret = \"<redacted>\""), "{out}");
    }

    #[test]
    fn an_unset_secret_is_shown_unset_not_redacted() {
        let out = render_tree(
            &json!({"auth": {"jwt": {"secret": null}}}),
            &no_source,
            SECRET_KEYS,
        );
        assert!(
            out.contains("# secret = (unset)  # from auth.jwt.secret"),
            "{out}"
        );
    }

    #[test]
    fn tables_follow_their_parents_keys_and_output_is_toml() {
        let tree = json!({
            "server": {"listen": "127.0.0.1:8080", "tls": {"cert": "/c.pem"}, "queue": 5},
            "ingress": {"pull": ["tcp://a:1", "ipc:///b"], "topic_field": null},
        });
        let out = render_tree(&tree, &no_source, &[]);
        let expected = "\n[server]\nlisten = \"127.0.0.1:8080\"  # from server.listen\nqueue = 5  # from server.queue\n\n[server.tls]\ncert = \"/c.pem\"  # from server.tls.cert\n\n[ingress]\npull = [\"tcp://a:1\", \"ipc:///b\"]  # from ingress.pull\n# topic_field = (unset)  # from ingress.topic_field\n";
        assert_eq!(out, expected);
        let back: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(back["server"]["tls"]["cert"].as_str(), Some("/c.pem"));
        assert!(back["ingress"].get("topic_field").is_none());
    }

    #[test]
    fn a_list_of_tables_is_one_section_each_with_its_passwords_hidden() {
        let tree = json!({
            "ingress": {"pull": [], "amqp": [
                {"url": "amqp://guest:hunter2@127.0.0.1:5672/%2f", "queue": "swp_websocket", "exchange": null},
                {"url": "amqps://h:5671/%2f", "exchange": "superdesk_notification", "prefetch": 9},
            ]},
        });
        let out = render_tree(&tree, &no_source, SECRET_KEYS);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(
            out.contains("\n[[ingress.amqp]]\nurl = \"amqp://guest:<redacted>@127.0.0.1:5672/%2f\"  # from ingress.amqp.url\nqueue = \"swp_websocket\"  # from ingress.amqp.queue\n# exchange = (unset)  # from ingress.amqp.exchange\n"),
            "{out}"
        );
        let back: toml::Table = toml::from_str(&out).unwrap();
        let sources = back["ingress"]["amqp"].as_array().unwrap();
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[1]["prefetch"].as_integer(), Some(9));
        assert_eq!(sources[1]["url"].as_str(), Some("amqps://h:5671/%2f"));
        assert_eq!(back["ingress"]["pull"].as_array().map(Vec::len), Some(0));
    }

    #[test]
    fn strings_are_escaped() {
        let out = render_tree(
            &json!({"a": {"s": "quote \" and \\ and\nnewline"}}),
            &no_source,
            &[],
        );
        let back: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(
            back["a"]["s"].as_str(),
            Some("quote \" and \\ and\nnewline")
        );
    }
}
