//! Configuration (docs/configuration.md): one struct tree mirroring the
//! TOML file, layered with figment (defaults → file → `PUSH_BRIDGE_*` environment →
//! command-line flags) and validated once into typed values.
//!
//! Every section denies unknown keys, so a typo is an error naming the key and the
//! place it came from, not a silently ignored setting. This file is the map: the tree
//! ([`Config`] and its sections, with their defaults) is in `tree`, how the layers are
//! read and blamed ([`load()`], [`Loaded`]) in `load`, the checks serde cannot express in
//! `validate` ([`Config::validate`]), the `check-config` printout in `render`, the
//! refusals ([`ConfigError`]) in `error`, and the duration and size spellings in
//! [`units`]. Each of these files uses its siblings, never this one.

mod error;
mod load;
mod render;
mod tree;
pub mod units;
mod validate;

pub use error::ConfigError;
pub(crate) use load::load_text;
pub use load::{load, load_with_env, Loaded, Overrides, Source, DEFAULT_PATH, ENV_PREFIX};
pub use tree::{
    AmqpSource, AuthConfig, ClusterConfig, Config, DefaultProtocol, HistoryConfig, IngressConfig,
    IntrospectConfig, JwtConfig, LogConfig, LogFormat, ServerConfig, TlsConfig,
};
pub use units::{human_duration, human_duration_option, human_size};
