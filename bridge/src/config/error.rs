//! Why the configuration was refused: [`ConfigError`], made while the layers are read
//! (`load`) and while the values are checked (`validate`), each message naming the key
//! and the place that set it.

use std::path::PathBuf;

/// Why the configuration was refused. Every message names the key and, where known,
/// the file, environment variable or flag that set it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{} is not valid TOML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error(
        "unknown key `{key}` in {origin} (known keys {}: {expected})",
        section_name(key)
    )]
    UnknownKey {
        /// Dotted path, e.g. `server.listne`.
        key: String,
        /// The file path, `environment variable PUSH_BRIDGE_…` or `flag --…`.
        origin: String,
        /// The keys that are allowed next to it.
        expected: String,
    },
    #[error("{}: {message}{}", display_key(key), in_origin(origin))]
    Invalid {
        key: String,
        message: String,
        origin: Option<String>,
    },
}

impl ConfigError {
    /// A refused value, not yet blamed on a layer (`load` adds the origin).
    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            message: message.into(),
            origin: None,
        }
    }
}

fn section_name(key: &str) -> String {
    match key.rsplit_once('.') {
        Some((section, _)) => format!("in [{section}]"),
        None => "at the top level".to_string(),
    }
}

fn display_key(key: &str) -> &str {
    if key.is_empty() {
        "configuration"
    } else {
        key
    }
}

fn in_origin(origin: &Option<String>) -> String {
    match origin {
        Some(origin) => format!(" (from {origin})"),
        None => String::new(),
    }
}
