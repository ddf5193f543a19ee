//! Reading the layers (defaults → TOML file → `PUSH_BRIDGE_*` environment → flags)
//! and blaming each refusal on the layer that caused it. The flags come in as
//! [`Overrides`]; the result, [`Loaded`], tells the [`Source`] of every value.
//!
//! Each layer is kept as its own tree so that `check-config` can say where every value
//! came from, and the layers are added to figment one at a time, extracting after
//! each: the first layer whose addition fails is the one the error names. Environment
//! values are kept as strings (figment would read `123` as a number and refuse it for
//! a string field) and converted by figment's lossy extraction where a number or bool
//! is wanted.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::error::{Actual, Kind};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::error::ConfigError;
use super::tree::Config;

/// Where a configuration value came from (later layers win).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The TOML file at this path.
    File(PathBuf),
    /// A `PUSH_BRIDGE_…` environment variable.
    Env,
    /// A command-line flag.
    Flag,
}

/// Settings given as command-line flags (`serve --listen … --pull …`): the last layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen`: replaces `server.listen`.
    pub listen: Option<SocketAddr>,
    /// `--pull` (repeatable): when any is given, replaces the whole `ingress.pull` list.
    pub pull: Vec<String>,
}

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_PATH: &str = "/etc/push-bridge/push-bridge.toml";

/// Environment variables under this prefix are configuration; `__` separates levels
/// (`PUSH_BRIDGE_SERVER__LISTEN` is `server.listen`).
pub const ENV_PREFIX: &str = "PUSH_BRIDGE_";

/// The effective configuration and where each of its values came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The TOML file that was read, if any.
    pub file: Option<PathBuf>,
    /// What [`load`] was asked for, so that [`Loaded::reload`] can ask again.
    explicit_file: Option<PathBuf>,
    overrides: Overrides,
    layers: Layers,
}

/// The raw trees of the layers above the defaults.
#[derive(Debug, Clone, Default)]
struct Layers {
    file: Dict,
    /// Key path (lowercase segments) and the variable that set it.
    env: Vec<(Vec<String>, String)>,
    /// Key path and the flag that set it.
    flags: Vec<(Vec<String>, &'static str)>,
}

/// Loads the configuration: defaults → TOML file → `PUSH_BRIDGE_*` environment →
/// `overrides`, then [`Config::validate`]. `explicit_file` must exist; without it
/// [`DEFAULT_PATH`] is read if it exists.
pub fn load(explicit_file: Option<&Path>, overrides: &Overrides) -> Result<Loaded, ConfigError> {
    load_with_env(explicit_file, overrides, std::env::vars_os())
}

/// [`load`] with the environment given rather than read from the process (tests, and
/// callers that must not see the variables of their own environment).
pub fn load_with_env(
    explicit_file: Option<&Path>,
    overrides: &Overrides,
    env: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<Loaded, ConfigError> {
    let file = match explicit_file {
        Some(path) => Some(path.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_PATH)).filter(|p| p.exists()),
    };
    let mut loaded = load_from(file.as_deref(), env, overrides)?;
    loaded.explicit_file = explicit_file.map(Path::to_path_buf);
    Ok(loaded)
}

/// [`load`] with the file already chosen and the environment given, for tests.
pub(super) fn load_from(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (OsString, OsString)>,
    overrides: &Overrides,
) -> Result<Loaded, ConfigError> {
    let file_tree = match file {
        Some(path) => read_file(path)?,
        None => Dict::new(),
    };
    load_tree(file, file_tree, env, overrides)
}

/// [`load_from`] with the file's text given instead of read: `path` only names it in
/// messages. The fuzz target of the configuration ([`crate::fuzzing::config`]) uses it.
pub(crate) fn load_text(
    path: &Path,
    text: &str,
    env: impl IntoIterator<Item = (OsString, OsString)>,
    overrides: &Overrides,
) -> Result<Loaded, ConfigError> {
    load_tree(Some(path), parse_file(path, text)?, env, overrides)
}

fn load_tree(
    file: Option<&Path>,
    file_tree: Dict,
    env: impl IntoIterator<Item = (OsString, OsString)>,
    overrides: &Overrides,
) -> Result<Loaded, ConfigError> {
    let (env_tree, env_vars) = env_layer(env)?;
    let (flag_tree, flags) = flag_layer(overrides);
    let layers = Layers {
        file: file_tree.clone(),
        env: env_vars,
        flags,
    };

    let file_origin = |_: &[String]| match file {
        Some(path) => path.display().to_string(),
        None => "the configuration file".to_string(),
    };
    let mut figment = Figment::new().merge(Layer(file_tree));
    extract(&figment, file_origin)?;
    figment = figment.merge(Layer(env_tree));
    extract(&figment, |path| layers.env_origin(path))?;
    figment = figment.merge(Layer(flag_tree));
    let config = extract(&figment, |path| layers.flag_origin(path))?;

    let loaded = Loaded {
        config,
        file: file.map(Path::to_path_buf),
        explicit_file: file.map(Path::to_path_buf),
        overrides: overrides.clone(),
        layers,
    };
    match loaded.config.validate() {
        Ok(()) => Ok(loaded),
        Err(ConfigError::Invalid {
            key,
            message,
            origin: None,
        }) => {
            let origin = loaded.origin(&key);
            Err(ConfigError::Invalid {
                key,
                message,
                origin,
            })
        }
        Err(other) => Err(other),
    }
}

impl Loaded {
    /// Loads again as [`load`] did (same `--config`, same flags, the file and the
    /// environment as they are now), for SIGHUP. The caller keeps the old
    /// configuration if this fails.
    pub fn reload(&self) -> Result<Loaded, ConfigError> {
        self.reload_with_env(std::env::vars_os())
    }

    /// [`Loaded::reload`] with the environment given.
    pub fn reload_with_env(
        &self,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Loaded, ConfigError> {
        load_with_env(self.explicit_file.as_deref(), &self.overrides, env)
    }

    /// Where the value at a dotted key path (`server.listen`) came from.
    pub fn source(&self, key: &str) -> Source {
        let path: Vec<&str> = key.split('.').collect();
        if self.layers.flags.iter().any(|(p, _)| covers(p, &path)) {
            Source::Flag
        } else if self.env_var(key).is_some() {
            Source::Env
        } else if let (Some(file), true) = (&self.file, dict_has(&self.layers.file, &path)) {
            Source::File(file.clone())
        } else {
            Source::Default
        }
    }

    /// The environment variable that set the value at a dotted key path, if one did.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        let path: Vec<&str> = key.split('.').collect();
        (self.layers.env.iter().rev())
            .find(|(p, _)| covers(p, &path))
            .map(|(_, var)| var.as_str())
    }

    /// The place to blame for the value at `key`; `None` for a built-in default.
    fn origin(&self, key: &str) -> Option<String> {
        match self.source(key) {
            Source::Default => None,
            Source::File(path) => Some(path.display().to_string()),
            Source::Env => self
                .env_var(key)
                .map(|var| format!("environment variable {var}")),
            Source::Flag => {
                let path: Vec<String> = key.split('.').map(str::to_string).collect();
                Some(self.layers.flag_origin(&path))
            }
        }
    }
}

impl Layers {
    /// The variable that set `path`, or else one that set a key inside it (a section
    /// made by `PUSH_BRIDGE_CLUSTER__NODE` alone lacks `cluster.redis`).
    fn env_origin(&self, path: &[String]) -> String {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let inside =
            |p: &[String]| p.len() > path.len() && p.iter().zip(&path).all(|(a, b)| a == b);
        let var = (self.env.iter().rev().find(|(p, _)| covers(p, &path)))
            .or_else(|| self.env.iter().find(|(p, _)| inside(p)));
        match var {
            Some((_, var)) => format!("environment variable {var}"),
            None => format!("the {ENV_PREFIX}* environment"),
        }
    }

    fn flag_origin(&self, path: &[String]) -> String {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        match self.flags.iter().find(|(p, _)| covers(p, &path)) {
            Some((_, flag)) => format!("flag {flag}"),
            None => "the command line".to_string(),
        }
    }
}

/// Whether a layer that set `set` decided the value at `key`: it set the key itself
/// or a table or list containing it.
fn covers(set: &[String], key: &[&str]) -> bool {
    set.len() <= key.len() && set.iter().zip(key).all(|(a, b)| a == b)
}

/// Whether the tree holds a value at `path`, or a non-table value above it.
fn dict_has(dict: &Dict, path: &[&str]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    // `amqp[0]` in a key names an element of the list `amqp`: blamed on the list.
    let name = first.split_once('[').map_or(*first, |(name, _)| name);
    match dict.get(name) {
        None => false,
        Some(Value::Dict(_, inner)) => dict_has(inner, rest),
        // A list of tables ([[ingress.amqp]]): set when any of them sets the key.
        Some(Value::Array(_, items)) if !rest.is_empty() => items
            .iter()
            .any(|item| matches!(item, Value::Dict(_, inner) if dict_has(inner, rest))),
        Some(_) => true,
    }
}

fn read_file(path: &Path) -> Result<Dict, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    parse_file(path, &text)
}

fn parse_file(path: &Path, text: &str) -> Result<Dict, ConfigError> {
    toml::from_str::<Dict>(text).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

/// The `PUSH_BRIDGE_*` variables as a tree, plus which variable set which key path.
#[allow(clippy::type_complexity)]
fn env_layer(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<(Dict, Vec<(Vec<String>, String)>), ConfigError> {
    let mut found: Vec<(String, OsString)> = vars
        .into_iter()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            let prefixed = name
                .get(..ENV_PREFIX.len())?
                .eq_ignore_ascii_case(ENV_PREFIX);
            (prefixed && name.len() > ENV_PREFIX.len()).then_some((name, value))
        })
        .collect();
    // Deterministic when one variable names a table and another a key inside it.
    found.sort();
    let mut tree = Dict::new();
    let mut vars = Vec::new();
    for (name, value) in found {
        let path: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        let value = value.into_string().map_err(|_| ConfigError::Invalid {
            key: path.join("."),
            message: "is not valid UTF-8".to_string(),
            origin: Some(format!("environment variable {name}")),
        })?;
        insert(&mut tree, &path, env_value(&value));
        vars.push((path, name));
    }
    Ok((tree, vars))
}

/// An environment value: a `[…]` list or `{…}` table is parsed (its scalars kept as
/// text), anything else is the string as given. Lossy extraction turns text into a
/// number or bool where the field wants one, and leaves `123` a string where the
/// field is a string.
fn env_value(raw: &str) -> Value {
    let trimmed = raw.trim();
    let bracketed = (trimmed.starts_with('[') && trimmed.ends_with(']'))
        || (trimmed.starts_with('{') && trimmed.ends_with('}'));
    if bracketed {
        if let Ok(parsed @ (Value::Array(..) | Value::Dict(..))) = trimmed.parse::<Value>() {
            return scalars_as_text(parsed);
        }
    }
    Value::from(raw.to_string())
}

fn scalars_as_text(value: Value) -> Value {
    let text = match &value {
        Value::Array(_, items) => {
            return Value::from(
                items
                    .iter()
                    .cloned()
                    .map(scalars_as_text)
                    .collect::<Vec<_>>(),
            )
        }
        Value::Dict(_, dict) => {
            let dict: Dict = (dict.iter())
                .map(|(k, v)| (k.clone(), scalars_as_text(v.clone())))
                .collect();
            return Value::from(dict);
        }
        Value::String(..) | Value::Empty(..) => return value,
        Value::Char(_, c) => c.to_string(),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(..) => match value.to_actual() {
            Actual::Unsigned(n) => n.to_string(),
            Actual::Signed(n) => n.to_string(),
            Actual::Float(n) => n.to_string(),
            _ => return value,
        },
    };
    Value::from(text)
}

/// Sets `value` at `path`, making tables on the way (replacing a non-table).
fn insert(dict: &mut Dict, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = dict;
    for key in parents {
        let slot = current
            .entry(key.clone())
            .or_insert_with(|| Value::from(Dict::new()));
        if !matches!(slot, Value::Dict(..)) {
            *slot = Value::from(Dict::new());
        }
        let Value::Dict(_, inner) = slot else {
            return;
        };
        current = inner;
    }
    current.insert(last.clone(), value);
}

#[allow(clippy::type_complexity)]
fn flag_layer(overrides: &Overrides) -> (Dict, Vec<(Vec<String>, &'static str)>) {
    let mut tree = Dict::new();
    let mut flags = Vec::new();
    let mut set = |key: &str, flag: &'static str, value: Value| {
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        insert(&mut tree, &path, value);
        flags.push((path, flag));
    };
    if let Some(listen) = overrides.listen {
        set("server.listen", "--listen", Value::from(listen.to_string()));
    }
    if !overrides.pull.is_empty() {
        set(
            "ingress.pull",
            "--pull",
            Value::from(overrides.pull.clone()),
        );
    }
    (tree, flags)
}

/// One layer's tree as a figment provider.
struct Layer(Dict);

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named("push-bridge configuration layer")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

/// Extracts the configuration, turning a figment error into one that names the key
/// and the place `origin` says set it.
fn extract(figment: &Figment, origin: impl Fn(&[String]) -> String) -> Result<Config, ConfigError> {
    figment.extract_lossy::<Config>().map_err(|e| {
        let key = e.path.join(".");
        match e.kind {
            Kind::UnknownField(_, expected) => ConfigError::UnknownKey {
                origin: origin(&e.path),
                expected: expected.join(", "),
                key,
            },
            Kind::UnknownVariant(found, expected) => ConfigError::Invalid {
                origin: Some(origin(&e.path)),
                message: format!("{found:?} is not one of: {}", expected.join(", ")),
                key,
            },
            // Messages from `FromStr` impls (addresses) do not repeat the value: add it.
            Kind::Message(message) => {
                let message = match figment.find_value(&key) {
                    Ok(Value::String(_, value)) if !message.contains(value.as_str()) => {
                        format!("{message} (got {value:?})")
                    }
                    _ => message,
                };
                ConfigError::Invalid {
                    origin: Some(origin(&e.path)),
                    message,
                    key,
                }
            }
            // A required key of an optional section (`cluster.redis`).
            Kind::MissingField(field) => {
                let section = key;
                let message = match section.as_str() {
                    "" => "is missing".to_string(),
                    _ => format!("is missing; [{section}] needs it"),
                };
                let key = match section.as_str() {
                    "" => field.to_string(),
                    _ => format!("{section}.{field}"),
                };
                ConfigError::Invalid {
                    origin: Some(origin(&e.path)),
                    message,
                    key,
                }
            }
            kind => ConfigError::Invalid {
                origin: Some(origin(&e.path)),
                message: kind.to_string(),
                key,
            },
        }
    })
}

#[cfg(test)]
mod tests;
