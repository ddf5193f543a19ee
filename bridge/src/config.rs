//! Configuration (spec/operations.md "Configuration"): one struct tree mirroring the
//! TOML file, layered with figment (defaults → file → `PUSH_BRIDGE_*` environment →
//! command-line flags) and validated once into typed values.
//!
//! Every section denies unknown keys, so a typo is an error naming the key and the
//! file it came from, not a silently ignored setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::topic::{Pattern, Topic};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub ingress: IngressConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
}

/// Which WebSocket protocol a client that offers no known subprotocol speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultProtocol {
    Wamp1,
    Native,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// `None`: any origin. `Some(list)`: an upgrade whose `Origin` is present and not
    /// listed is refused with 403.
    pub allowed_origins: Option<Vec<String>>,
    pub max_connections: usize,
    /// `None`: unlimited.
    pub max_connections_per_ip: Option<usize>,
    /// Per connection.
    pub max_subscriptions: usize,
    #[serde(with = "human_size")]
    pub max_inbound_frame_bytes: usize,
    #[serde(with = "human_duration")]
    pub heartbeat: Duration,
    #[serde(with = "human_duration")]
    pub handshake_timeout: Duration,
    /// Frames a session may have queued before it is closed as a slow consumer.
    pub send_queue: usize,
    #[serde(with = "human_duration")]
    pub drain_timeout: Duration,
    pub default_protocol: DefaultProtocol,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allowed_origins: None,
            max_connections: 100_000,
            max_connections_per_ip: None,
            max_subscriptions: 100,
            max_inbound_frame_bytes: 4 * 1024,
            heartbeat: Duration::from_secs(25),
            handshake_timeout: Duration::from_secs(10),
            send_queue: 1024,
            drain_timeout: Duration::from_secs(10),
            default_protocol: DefaultProtocol::Wamp1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngressConfig {
    /// Endpoints a PULL socket binds (publishers connect PUSH sockets).
    pub pull: Vec<String>,
    /// Endpoints a SUB socket connects to (publishers bind PUB sockets).
    pub sub: Vec<String>,
    /// Subscription prefixes of the SUB socket; `[""]` = everything.
    pub sub_prefixes: Vec<String>,
    #[serde(with = "human_size")]
    pub max_message_bytes: usize,
    /// Legacy form: the object field that holds the topic (e.g. `category`).
    pub topic_field: Option<String>,
    /// Legacy form: the topic used when no topic field applies.
    pub default_topic: Option<Topic>,
}

impl Default for IngressConfig {
    fn default() -> Self {
        IngressConfig {
            pull: vec!["tcp://127.0.0.1:5555".to_string()],
            sub: Vec::new(),
            sub_prefixes: vec![String::new()],
            max_message_bytes: 4 * 1024 * 1024,
            topic_field: None,
            default_topic: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Static tokens (TOML `[[token]]` entries), reloaded on SIGHUP.
    pub tokens_file: Option<PathBuf>,
    /// Let clients without any token in (Superdesk's own server did).
    pub allow_anonymous: bool,
    /// What anonymous clients may subscribe to.
    pub anonymous_topics: Vec<Pattern>,
    /// Name of a cookie that may carry the token.
    pub cookie: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter (`info`, `push_bridge=debug`); `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

/// Durations as humans write them (`25s`, `5m`, `1h 30m`), serialized the same way.
pub mod human_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration ({e}); write e.g. \"25s\", \"500ms\" or \"5m\""
            ))
        })
    }
}

/// Sizes as bytes (`4096`) or with a unit (`4KiB`, `1MiB`), serialized with a unit.
pub mod human_size {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(n: &usize, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(
            &bytesize::ByteSize(*n as u64)
                .display()
                .iec_short()
                .to_string(),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        let bytes = match Raw::deserialize(d)? {
            Raw::Bytes(n) => n,
            Raw::Text(text) => text
                .trim()
                .parse::<bytesize::ByteSize>()
                .map_err(|e| {
                    serde::de::Error::custom(format!(
                        "{text:?} is not a size ({e}); write e.g. 4096, \"4KiB\" or \"1MiB\""
                    ))
                })?
                .as_u64(),
        };
        usize::try_from(bytes).map_err(|_| serde::de::Error::custom("size is too large"))
    }
}

/// STUB (replaced by the config helper's file).
pub struct Loaded {
    pub config: Config,
}
