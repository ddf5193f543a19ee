//! Where the cluster's Redis is: `cluster.redis`, one server or a Sentinel set.
//!
//! - `redis://[user:password@]host[:port][/db]` (also `rediss://`): one server;
//! - `redis+sentinel://[user:password@]h1[:port],h2[:port]/master-name[/db]`: ask the
//!   sentinels (port 26379 unless given) which server is the master named
//!   `master-name`, and ask again after a failover. The credentials, if any, are the
//!   Redis server's.

use std::fmt;

use crate::redact::UrlRedacted as Redacted;

/// A parsed `cluster.redis`.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisAddress {
    /// One server, as a URL the Redis client reads.
    Server { url: String },
    /// The master a set of sentinels names.
    Sentinel {
        /// `host:port` of each sentinel.
        sentinels: Vec<String>,
        master: String,
        db: i64,
        username: Option<String>,
        password: Option<String>,
    },
}

const SENTINEL_SCHEME: &str = "redis+sentinel://";
const SENTINEL_PORT: u16 = 26379;

impl RedisAddress {
    /// Reads `cluster.redis`; the error says what is wrong, for a sysadmin.
    pub fn parse(text: &str) -> Result<RedisAddress, String> {
        if let Some(rest) = text.strip_prefix(SENTINEL_SCHEME) {
            return parse_sentinel(rest);
        }
        if !(text.starts_with("redis://") || text.starts_with("rediss://")) {
            return Err(format!(
                "{} is not a Redis address; write \"redis://host:6379/0\" or \"redis+sentinel://host:26379/master-name/0\"",
                Redacted(text)
            ));
        }
        let rest = text.split_once("://").map_or("", |(_, rest)| rest);
        let host_part = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let host = host_part.split('/').next().unwrap_or("");
        if host.is_empty() {
            return Err(format!("{} names no host", Redacted(text)));
        }
        if let Some(db) = host_part.split_once('/').map(|(_, db)| db) {
            if !db.is_empty() && db.parse::<u32>().is_err() {
                return Err(format!(
                    "{}: the database after the host must be a number, e.g. /0",
                    Redacted(text)
                ));
            }
        }
        Ok(RedisAddress::Server {
            url: text.to_string(),
        })
    }

    /// The address with any password replaced, for logs and `check-config`.
    pub fn redacted(text: &str) -> String {
        Redacted(text).to_string()
    }
}

fn parse_sentinel(rest: &str) -> Result<RedisAddress, String> {
    let whole = format!("{SENTINEL_SCHEME}{rest}");
    let (credentials, rest) = match rest.rsplit_once('@') {
        Some((credentials, rest)) => (Some(credentials), rest),
        None => (None, rest),
    };
    let (username, password) = match credentials {
        Some(c) => match c.split_once(':') {
            Some((user, password)) => (
                (!user.is_empty()).then(|| decode(user)),
                Some(decode(password)),
            ),
            None => (Some(decode(c)), None),
        },
        None => (None, None),
    };
    let mut parts = rest.split('/');
    let hosts = parts.next().unwrap_or("");
    let master = parts.next().unwrap_or("");
    let db = parts.next().unwrap_or("");
    if parts.next().is_some() {
        return Err(format!(
            "{}: expected sentinels/master-name/db, found more parts",
            Redacted(&whole)
        ));
    }
    let mut sentinels = Vec::new();
    for host in hosts.split(',') {
        if host.is_empty() {
            return Err(format!("{} names an empty sentinel", Redacted(&whole)));
        }
        let port = match host.strip_prefix('[') {
            Some(v6) => v6.split_once(']').and_then(|(_, after)| match after {
                "" => Some(None),
                after => after.strip_prefix(':').map(Some),
            }),
            None => Some(host.split_once(':').map(|(_, port)| port)),
        };
        let with_port = match port {
            Some(None) => format!("{host}:{SENTINEL_PORT}"),
            Some(Some(port)) if port.parse::<u16>().is_ok() => host.to_string(),
            _ => return Err(format!("{}: {host:?} is not host:port", Redacted(&whole))),
        };
        sentinels.push(with_port);
    }
    if master.is_empty() {
        return Err(format!(
            "{} names no master; write redis+sentinel://host:26379/master-name/0",
            Redacted(&whole)
        ));
    }
    let db = if db.is_empty() {
        0
    } else {
        db.parse::<i64>().map_err(|_| {
            format!(
                "{}: the database after the master name must be a number, e.g. /0",
                Redacted(&whole)
            )
        })?
    };
    Ok(RedisAddress::Sentinel {
        sentinels,
        master: master.to_string(),
        db,
        username,
        password,
    })
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

impl fmt::Debug for RedisAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisAddress::Server { url } => write!(f, "{}", Redacted(url)),
            RedisAddress::Sentinel {
                sentinels,
                master,
                db,
                ..
            } => write!(
                f,
                "sentinels {} master {master} db {db}",
                sentinels.join(",")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_sentinels() {
        assert_eq!(
            RedisAddress::parse("redis://127.0.0.1:6379/0").unwrap(),
            RedisAddress::Server {
                url: "redis://127.0.0.1:6379/0".into()
            }
        );
        assert_eq!(
            RedisAddress::parse("redis+sentinel://:s%40cret@h1:26379,h2/mymaster/2").unwrap(),
            RedisAddress::Sentinel {
                sentinels: vec!["h1:26379".into(), "h2:26379".into()],
                master: "mymaster".into(),
                db: 2,
                username: None,
                password: Some("s@cret".into()),
            }
        );
        for bad in [
            "127.0.0.1:6379",
            "redis:///0",
            "redis://h/x",
            "redis+sentinel://h1:26379",
            "redis+sentinel://h1:x/m/0",
            "redis+sentinel://h1/m/z",
            "redis+sentinel://,h1/m/0",
        ] {
            assert!(RedisAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            RedisAddress::redacted("redis://user:pw@h:1/0"),
            "redis://user:<redacted>@h:1/0"
        );
        assert_eq!(
            RedisAddress::redacted("redis://:pw@h:1/0"),
            "redis://:<redacted>@h:1/0"
        );
        let error = RedisAddress::parse("redis+sentinel://:pw@h1/").unwrap_err();
        assert!(!error.contains("pw@"), "{error}");
        let debug = format!("{:?}", RedisAddress::parse("redis://:pw@h/0").unwrap());
        assert!(!debug.contains("pw"), "{debug}");
    }
}
