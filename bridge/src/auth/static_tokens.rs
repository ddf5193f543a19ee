//! Static tokens from a TOML file (docs/protocol.md "Authentication"):
//!
//! ```toml
//! [[token]]
//! name = "newsroom-dashboard"      # used in logs and metrics, never the token
//! sha256 = "9f86d081884c7d65…"     # hex SHA-256 of the token; or `token = "…"`
//! topics = ["package_created", "article:*"]   # permitted patterns; omitted = all
//! ```
//!
//! Only SHA-256 digests are kept in memory; a presented token is hashed and looked up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::topic::Pattern;

#[derive(Debug, thiserror::Error)]
pub enum StaticTokensError {
    #[error("cannot read tokens file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tokens file {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    sha256: Option<String>,
    token: Option<String>,
    topics: Option<Vec<Pattern>>,
}

/// A known token: its name and what it permits.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticToken {
    pub name: String,
    pub patterns: Vec<Pattern>,
}

#[derive(Debug, Default)]
pub struct StaticTokens {
    by_digest: HashMap<[u8; 32], StaticToken>,
}

impl StaticTokens {
    pub fn load(path: &Path) -> Result<Self, StaticTokensError> {
        let text = std::fs::read_to_string(path).map_err(|source| StaticTokensError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|message| StaticTokensError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_digest = HashMap::new();
        for (i, entry) in file.token.into_iter().enumerate() {
            let which = format!("token #{} ({:?})", i + 1, entry.name);
            if entry.name.trim().is_empty() {
                return Err(format!("token #{} has an empty name", i + 1));
            }
            let digest = match (&entry.sha256, &entry.token) {
                (Some(hex_digest), None) => {
                    let bytes = hex::decode(hex_digest.trim())
                        .map_err(|e| format!("{which}: sha256 is not hex: {e}"))?;
                    <[u8; 32]>::try_from(bytes.as_slice())
                        .map_err(|_| format!("{which}: sha256 must be 64 hex digits"))?
                }
                (None, Some(token)) if !token.is_empty() => digest(token),
                (None, Some(_)) => return Err(format!("{which}: token is empty")),
                _ => return Err(format!("{which}: give exactly one of `sha256` or `token`")),
            };
            let token = StaticToken {
                name: entry.name,
                patterns: entry.topics.unwrap_or_else(|| vec![Pattern::everything()]),
            };
            if by_digest.insert(digest, token).is_some() {
                return Err(format!("{which}: the same token is listed twice"));
            }
        }
        Ok(StaticTokens { by_digest })
    }

    pub fn get(&self, token: &str) -> Option<&StaticToken> {
        self.get_with_digest(token).map(|(_, known)| known)
    }

    /// The token's entry and the digest it is known by.
    pub fn get_with_digest(&self, token: &str) -> Option<([u8; 32], &StaticToken)> {
        let digest = digest(token);
        self.by_digest.get(&digest).map(|known| (digest, known))
    }

    pub fn contains_digest(&self, digest: &[u8; 32]) -> bool {
        self.by_digest.contains_key(digest)
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_by_hash_or_plain() {
        let hash = hex::encode(digest("hashed-secret"));
        let tokens = StaticTokens::parse(&format!(
            r#"
            [[token]]
            name = "dash"
            sha256 = "{hash}"
            topics = ["package_created", "article:*"]

            [[token]]
            name = "ops"
            token = "plain+secret"
            "#
        ))
        .unwrap();
        assert_eq!(tokens.len(), 2);
        let dash = tokens.get("hashed-secret").unwrap();
        assert_eq!(dash.name, "dash");
        assert_eq!(dash.patterns.len(), 2);
        assert_eq!(
            tokens.get("plain+secret").unwrap().patterns,
            vec![Pattern::everything()]
        );
        assert!(tokens.get("plain secret").is_none());
        assert!(tokens.get("dash").is_none());
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        for (text, needle) in [
            ("[[token]]\nname = \"a\"\n", "exactly one"),
            ("[[token]]\nname = \"a\"\nsha256 = \"zz\"\n", "not hex"),
            ("[[token]]\nname = \"a\"\nsha256 = \"abcd\"\n", "64 hex"),
            (
                "[[token]]\nname = \"a\"\ntoken = \"x\"\nsha256 = \"abcd\"\n",
                "exactly one",
            ),
            (
                "[[token]]\nname = \"a\"\ntoken = \"x\"\ntopics = [\"a b\"]\n",
                "whitespace",
            ),
            (
                "[[token]]\nname = \"a\"\ntoken = \"x\"\nextra = 1\n",
                "unknown field",
            ),
            (
                "[[token]]\nname = \"a\"\ntoken = \"x\"\n[[token]]\nname = \"b\"\ntoken = \"x\"\n",
                "twice",
            ),
            ("[[token]]\nname = \" \"\ntoken = \"x\"\n", "empty name"),
        ] {
            let err = StaticTokens::parse(text).unwrap_err();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        }
    }
}
