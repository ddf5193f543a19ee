//! The configuration tree: one struct per section of the TOML file, field for field,
//! with the built-in defaults. Every section denies unknown keys; durations and sizes
//! are read and written by [`units`](super::units).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::{human_duration, human_duration_option, human_size};
use crate::topic::{Pattern, Topic};

/// The whole configuration: one field per section of the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub ingress: IngressConfig,
    pub auth: AuthConfig,
    pub history: HistoryConfig,
    pub log: LogConfig,
    /// `[cluster]`: absent means one node with its in-memory history.
    pub cluster: Option<ClusterConfig>,
}

/// Several bridges sharing one ordered event log in Redis Streams (docs/scaling.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `redis://[:password@]host:port/db` or
    /// `redis+sentinel://[:password@]h1:26379,h2:26379/master-name/db`.
    pub redis: String,
    /// Key prefix: nodes with the same prefix share one log.
    #[serde(default = "ClusterConfig::default_stream")]
    pub stream: String,
    /// This node's name in the log and the startup banner; unset: host name and listen
    /// port.
    #[serde(default)]
    pub node: Option<String>,
    /// Events held, in order, while the log is unreachable; past it the ingress stops
    /// reading.
    #[serde(default = "ClusterConfig::default_buffer")]
    pub buffer: usize,
}

impl ClusterConfig {
    fn default_stream() -> String {
        "push-bridge".to_string()
    }

    fn default_buffer() -> usize {
        10_000
    }
}

/// The event history that resume replays from (docs/protocol.md "Event ids, history
/// and resume").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Events kept at most (0 disables history, resume and duplicate detection; refused
    /// with `[cluster]`, whose log this sizes).
    pub size: usize,
    #[serde(with = "human_size")]
    pub max_bytes: usize,
    #[serde(with = "human_duration")]
    pub max_age: Duration,
    /// Where the history is saved on a graceful stop and loaded at start; unset: not
    /// kept across restarts. Refused with `[cluster]`: the log in Redis is the history.
    pub file: Option<PathBuf>,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            size: 10_000,
            max_bytes: 64 * 1024 * 1024,
            max_age: Duration::from_secs(300),
            file: None,
        }
    }
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
    /// `[server.tls]`: serve wss:// and https:// directly (most sites terminate TLS at
    /// a reverse proxy instead).
    pub tls: Option<TlsConfig>,
    /// A second, plain-HTTP listener for `/metrics`, `/healthz` and `/readyz`, so
    /// metrics need not be exposed on the client port. `None`: off (`/metrics` is on
    /// the client listener).
    pub admin_listen: Option<SocketAddr>,
}

/// PEM files of the certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
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
            tls: None,
            admin_listen: None,
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
    /// When set and no message was accepted for this long, `/readyz` answers 503: a
    /// load balancer or monitor sees a dead pipeline.
    #[serde(default, with = "human_duration_option")]
    pub stale_after: Option<Duration>,
    /// `[[ingress.amqp]]`: AMQP 0-9-1 sources (RabbitMQ), read beside the ZeroMQ
    /// sockets (docs/superdesk.md).
    pub amqp: Vec<AmqpSource>,
}

/// One AMQP source: a queue the bridge consumes, or an exchange it binds a queue of
/// its own to. Each message body is one event, parsed like a one-frame ZeroMQ
/// message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpSource {
    /// `amqp://user:password@host:port/vhost` (`amqps://` for TLS); the password is
    /// never logged or printed.
    pub url: String,
    /// Consume this existing queue (Superdesk Publisher's `swp_websocket`).
    #[serde(default)]
    pub queue: Option<String>,
    /// Or: declare an exclusive, auto-delete queue bound to this exchange (every node
    /// of a cluster then sees every message).
    #[serde(default)]
    pub exchange: Option<String>,
    /// The binding key with `exchange` (a fanout exchange ignores it).
    #[serde(default)]
    pub routing_key: String,
    /// The whole body is the event's data and this field of it the topic
    /// (superdesk-core's `event`); unset: `ingress.topic_field`.
    #[serde(default)]
    pub topic_field: Option<String>,
    /// Messages delivered and not yet acknowledged, at most.
    #[serde(default = "AmqpSource::default_prefetch")]
    pub prefetch: u16,
}

impl AmqpSource {
    fn default_prefetch() -> u16 {
        256
    }
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
            stale_after: None,
            amqp: Vec::new(),
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
    /// `[auth.jwt]`: accept JSON Web Tokens.
    pub jwt: Option<JwtConfig>,
    /// `[auth.introspect]`: ask a content API whether a token is valid.
    pub introspect: Option<IntrospectConfig>,
}

/// JSON Web Tokens (docs/protocol.md "Authentication"). Exactly one key source:
/// `secret`/`secret_file` (HS*), `public_key_file` (PEM: RS*, PS*, ES*, EdDSA) or
/// `jwks_file` (`kid` selects the key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// The only algorithms accepted, e.g. `["HS256"]` or `["RS256", "ES256"]`; a token
    /// whose header names another (including `none`) is refused.
    pub algorithms: Vec<String>,
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub public_key_file: Option<PathBuf>,
    pub jwks_file: Option<PathBuf>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Accepted `aud` values, when set (a token must name one of them).
    pub audience: Option<Vec<String>>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(with = "human_duration")]
    pub leeway: Duration,
    /// Refuse tokens without `exp`.
    pub require_exp: bool,
    /// The claim listing the permitted patterns.
    pub topics_claim: String,
    /// What a token without that claim permits.
    pub default_topics: Vec<Pattern>,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            algorithms: vec!["HS256".to_string()],
            secret: None,
            secret_file: None,
            public_key_file: None,
            jwks_file: None,
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(60),
            require_exp: true,
            topics_claim: "topics".to_string(),
            default_topics: vec![Pattern::everything()],
        }
    }
}

/// Token introspection: an HTTP(S) request to `url` carrying the token in `header`;
/// a 2xx answer accepts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntrospectConfig {
    pub url: String,
    /// `"Name"`: the raw token in header `Name` (Superdesk Publisher: `"Authorization"`);
    /// `"Name: Prefix"`: `Prefix <token>` (default `"Authorization: Bearer"`).
    pub header: String,
    /// A field of the JSON answer listing the permitted patterns (else: all).
    pub topics_field: Option<String>,
    #[serde(with = "human_duration")]
    pub timeout: Duration,
    /// How long answers (positive and negative) are reused.
    #[serde(with = "human_duration")]
    pub cache_ttl: Duration,
}

impl Default for IntrospectConfig {
    fn default() -> Self {
        IntrospectConfig {
            url: String::new(),
            header: "Authorization: Bearer".to_string(),
            topics_field: None,
            timeout: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(30),
        }
    }
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
