//! The rules serde cannot express: ranges, endpoint schemes, files that must exist,
//! and a log filter that must parse. Checked once at load, so the rest of the bridge
//! can trust every value it is handed.

use std::collections::HashSet;
use std::time::Duration;

use super::error::ConfigError;
use super::tree::{AmqpSource, ClusterConfig, Config, HistoryConfig};
use crate::eventlog::redis::RedisAddress;

/// Smallest `server.max_inbound_frame_bytes`: enough for any subscribe frame.
pub const MIN_INBOUND_FRAME_BYTES: usize = 64;

/// What a bare word in `log.level` must be (anything else is most likely a typo).
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

impl Config {
    /// Checks every rule the types alone do not; the error names the first key broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        positive("server.heartbeat", server.heartbeat)?;
        positive("server.handshake_timeout", server.handshake_timeout)?;
        positive("server.drain_timeout", server.drain_timeout)?;
        at_least("server.send_queue", server.send_queue, 1)?;
        at_least("server.max_connections", server.max_connections, 1)?;
        if let Some(n) = server.max_connections_per_ip {
            at_least("server.max_connections_per_ip", n, 1)?;
        }
        at_least("server.max_subscriptions", server.max_subscriptions, 1)?;
        if server.admin_listen == Some(server.listen) {
            return Err(ConfigError::invalid(
                "server.admin_listen",
                format!(
                    "is the same address as server.listen ({}); give the admin listener an address of its own, e.g. \"127.0.0.1:9090\"",
                    server.listen
                ),
            ));
        }
        let frame = server.max_inbound_frame_bytes;
        at_least(
            "server.max_inbound_frame_bytes",
            frame,
            MIN_INBOUND_FRAME_BYTES,
        )?;
        for origin in server.allowed_origins.iter().flatten() {
            if origin.is_empty() || origin.chars().any(char::is_whitespace) {
                return Err(ConfigError::invalid(
                    "server.allowed_origins",
                    format!("{origin:?} is not an origin; write e.g. \"https://example.com\""),
                ));
            }
        }

        let ingress = &self.ingress;
        endpoints("ingress.pull", &ingress.pull)?;
        endpoints("ingress.sub", &ingress.sub)?;
        if ingress.pull.is_empty() && ingress.sub.is_empty() && ingress.amqp.is_empty() {
            return Err(ConfigError::invalid(
                "ingress",
                "no endpoint to receive events from: set ingress.pull, ingress.sub or an [[ingress.amqp]] source",
            ));
        }
        for (n, source) in ingress.amqp.iter().enumerate() {
            amqp_source(n, source)?;
        }
        if !ingress.sub.is_empty() && ingress.sub_prefixes.is_empty() {
            return Err(ConfigError::invalid(
                "ingress.sub_prefixes",
                "is empty, so the SUB socket would receive nothing; use [\"\"] for everything",
            ));
        }
        at_least("ingress.max_message_bytes", ingress.max_message_bytes, 1)?;
        if ingress.topic_field.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::invalid(
                "ingress.topic_field",
                "is empty; name the object field that holds the topic (e.g. \"category\") or remove the key",
            ));
        }

        let auth = &self.auth;
        if let Some(path) = &auth.tokens_file {
            if !path.is_file() {
                return Err(ConfigError::invalid(
                    "auth.tokens_file",
                    format!("{} does not exist or is not a file", path.display()),
                ));
            }
        }
        if let Some(cookie) = &auth.cookie {
            let separator = |c: char| !c.is_ascii_graphic() || "()<>@,;:\\\"/[]?={}".contains(c);
            if cookie.is_empty() || cookie.chars().any(separator) {
                return Err(ConfigError::invalid(
                    "auth.cookie",
                    format!(
                        "{cookie:?} is not a cookie name (letters, digits and -_.!#$%&'*+^`|~)"
                    ),
                ));
            }
        }

        if let Some(cluster) = &self.cluster {
            cluster_config(cluster, &self.history)?;
        }

        log_level(&self.log.level)
    }
}

fn positive(key: &str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::invalid(
            key,
            "must be greater than zero (e.g. \"10s\")",
        ));
    }
    Ok(())
}

fn at_least(key: &str, value: usize, min: usize) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::invalid(
            key,
            format!("is {value}; it must be at least {min}"),
        ));
    }
    Ok(())
}

/// ZeroMQ endpoints the bridge can bind or connect: `tcp://…` or `ipc://…`, each once.
fn endpoints(key: &str, list: &[String]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for endpoint in list {
        let rest = endpoint
            .strip_prefix("tcp://")
            .or_else(|| endpoint.strip_prefix("ipc://"));
        if rest.is_none_or(|rest| rest.trim().is_empty()) {
            return Err(ConfigError::invalid(
                key,
                format!("{endpoint:?} is not a ZeroMQ endpoint; write e.g. \"tcp://127.0.0.1:5555\" or \"ipc:///run/push-bridge/in.sock\""),
            ));
        }
        if !seen.insert(endpoint) {
            return Err(ConfigError::invalid(
                key,
                format!("lists {endpoint:?} twice"),
            ));
        }
    }
    Ok(())
}

/// One `[[ingress.amqp]]` source: an AMQP URL that parses, and exactly one of a queue
/// to consume or an exchange to bind to. Keys are named `ingress.amqp[n].key`, `n`
/// counting the sources from 0 in file order.
fn amqp_source(n: usize, source: &AmqpSource) -> Result<(), ConfigError> {
    let key = |name: &str| format!("ingress.amqp[{n}].{name}");
    let url = crate::redact::url(&source.url);
    if !(source.url.starts_with("amqp://") || source.url.starts_with("amqps://")) {
        return Err(ConfigError::invalid(
            &key("url"),
            format!("{url:?} is not an AMQP URL; write e.g. \"amqp://guest:guest@127.0.0.1:5672/%2f\" (amqps:// for TLS)"),
        ));
    }
    if let Err(error) = source.url.parse::<lapin::uri::AMQPUri>() {
        return Err(ConfigError::invalid(
            &key("url"),
            format!("{url:?} is not an AMQP URL: {error}"),
        ));
    }
    let queue = source.queue.as_deref().map(str::trim);
    let exchange = source.exchange.as_deref().map(str::trim);
    match (queue, exchange) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                &key("exchange"),
                "is set beside queue; give one: queue (consume that existing queue) or exchange (bind a queue of the bridge's own to it)",
            ))
        }
        (None, None) => {
            return Err(ConfigError::invalid(
                &format!("ingress.amqp[{n}]"),
                "names neither a queue nor an exchange; set queue = \"swp_websocket\" (consume that queue) or exchange = \"superdesk_notification\" (bind a queue of the bridge's own to it)",
            ))
        }
        (Some(""), None) => return Err(ConfigError::invalid(&key("queue"), "is empty")),
        (None, Some("")) => return Err(ConfigError::invalid(&key("exchange"), "is empty")),
        (Some(_), None) if !source.routing_key.is_empty() => {
            return Err(ConfigError::invalid(
                &key("routing_key"),
                "is set with queue; a binding key only applies to exchange",
            ))
        }
        _ => {}
    }
    if source.topic_field.as_deref().is_some_and(str::is_empty) {
        return Err(ConfigError::invalid(
            &key("topic_field"),
            "is empty; name the body's field that holds the topic (e.g. \"event\") or remove the key",
        ));
    }
    if source.prefetch == 0 {
        return Err(ConfigError::invalid(
            &key("prefetch"),
            "is 0, which RabbitMQ reads as no limit; give the most messages unacknowledged at once, e.g. 256",
        ));
    }
    Ok(())
}

/// `[cluster]`: a Redis address that parses, a key prefix, a buffer, and a history the
/// log can stand in for (every node delivers from the log and keeps its own copy of it,
/// so there is no history without it and no history file beside it).
fn cluster_config(cluster: &ClusterConfig, history: &HistoryConfig) -> Result<(), ConfigError> {
    if history.size == 0 {
        return Err(ConfigError::invalid(
            "history.size",
            "is 0, but [cluster] needs a history: the log is how events reach every node; \
             set a size (the default is 10000) or remove [cluster]",
        ));
    }
    if history.file.is_some() {
        return Err(ConfigError::invalid(
            "history.file",
            "is set, but with [cluster] the log in Redis is the history; remove history.file",
        ));
    }
    if cluster.redis.trim().is_empty() {
        return Err(ConfigError::invalid(
            "cluster.redis",
            "is empty; write e.g. \"redis://127.0.0.1:6379/0\" or \"redis+sentinel://h1:26379,h2:26379/mymaster/0\"",
        ));
    }
    // The parser's messages show the address with its password redacted.
    RedisAddress::parse(&cluster.redis)
        .map_err(|message| ConfigError::invalid("cluster.redis", message))?;
    if cluster.stream.trim().is_empty() {
        return Err(ConfigError::invalid(
            "cluster.stream",
            "is empty; name the key prefix the nodes share, e.g. \"push-bridge\"",
        ));
    }
    if cluster
        .node
        .as_deref()
        .is_some_and(|node| node.trim().is_empty())
    {
        return Err(ConfigError::invalid(
            "cluster.node",
            "is empty; name this node (e.g. \"bridge-1\") or remove the key to use the host name and listen port",
        ));
    }
    at_least("cluster.buffer", cluster.buffer, 1)
}

/// `log.level` must parse as a tracing filter, and a bare word in it must be a level:
/// the filter syntax would read `infoo` as "everything from target `infoo`".
fn log_level(level: &str) -> Result<(), ConfigError> {
    let key = "log.level";
    if level.trim().is_empty() {
        return Err(ConfigError::invalid(
            key,
            "is empty; write e.g. \"info\" or \"info,push_bridge=debug\"",
        ));
    }
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(level) {
        return Err(ConfigError::invalid(
            key,
            format!("{level:?} is not a log filter ({e})"),
        ));
    }
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = !directive.contains(['=', '[', ':']);
        if bare && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(directive)) {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "{directive:?} is not a level ({}); for one module write e.g. \"push_bridge=debug\"",
                    LEVELS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
