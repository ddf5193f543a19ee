//! Authentication before the upgrade (spec/clients.md "Authentication"): one
//! [`Authenticator`] over the enabled token kinds. A request's token is found by
//! [`credentials`], checked here, and turned into a [`Grant`]: the token's name (for
//! logs and metrics; never the token) and the patterns it permits.
//!
//! With no token kind configured, a random token is generated at start and accepted
//! alone, so a first run is both secure and one command.

pub mod credentials;
pub mod static_tokens;

use std::sync::Arc;

use axum::http::StatusCode;
use rand::RngCore;

use crate::config::AuthConfig;
use crate::topic::Pattern;
use credentials::Presented;
use static_tokens::{StaticTokens, StaticTokensError};

/// Who a connection is and what it may subscribe to.
#[derive(Debug, Clone)]
pub struct Grant {
    pub name: Arc<str>,
    pub patterns: Arc<[Pattern]>,
}

impl Grant {
    pub fn permits(&self, pattern: &Pattern) -> bool {
        pattern.is_covered_by_any(&self.patterns)
    }
}

/// Why a request was refused before the upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    Missing,
    Malformed(&'static str),
    Unknown,
    NoTopics,
}

impl Denied {
    pub fn status(&self) -> StatusCode {
        match self {
            Denied::NoTopics => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The metric label and the `error` field of the JSON answer.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::Missing => "missing_token",
            Denied::Malformed(_) => "malformed_token",
            Denied::Unknown => "unknown_token",
            Denied::NoTopics => "no_topics",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Denied::Missing => {
                "no token: pass ?token=…, Authorization: Bearer …, or a bearer.<token> subprotocol"
                    .into()
            }
            Denied::Malformed(why) => format!("malformed token: {why}"),
            Denied::Unknown => "the token is not valid".into(),
            Denied::NoTopics => "the token permits no topic".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    StaticTokens(#[from] StaticTokensError),
}

#[derive(Debug)]
pub struct Authenticator {
    static_tokens: Option<StaticTokens>,
    generated: Option<String>,
    anonymous: Option<Grant>,
    cookie: Option<String>,
}

impl Authenticator {
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthError> {
        let static_tokens = match &config.tokens_file {
            Some(path) => Some(StaticTokens::load(path)?),
            None => None,
        };
        let generated = static_tokens.is_none().then(generate_token);
        let anonymous = config.allow_anonymous.then(|| Grant {
            name: "anonymous".into(),
            patterns: config.anonymous_topics.clone().into(),
        });
        Ok(Authenticator {
            static_tokens,
            generated,
            anonymous,
            cookie: config.cookie.clone(),
        })
    }

    /// The token generated because no token kind is configured, to print once.
    pub fn generated_token(&self) -> Option<&str> {
        self.generated.as_deref()
    }

    /// The cookie that may carry a token, if configured.
    pub fn cookie_name(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    pub fn authenticate(&self, presented: &Presented) -> Result<Grant, Denied> {
        let grant = match presented {
            Presented::Missing => self.anonymous.clone().ok_or(Denied::Missing)?,
            Presented::Malformed(why) => return Err(Denied::Malformed(why)),
            Presented::Token(candidates) => candidates
                .iter()
                .find_map(|token| self.check(token))
                .ok_or(Denied::Unknown)?,
        };
        if grant.patterns.is_empty() {
            return Err(Denied::NoTopics);
        }
        Ok(grant)
    }

    fn check(&self, token: &str) -> Option<Grant> {
        if let Some(generated) = &self.generated {
            if constant_time_eq(generated.as_bytes(), token.as_bytes()) {
                return Some(Grant {
                    name: "generated".into(),
                    patterns: vec![Pattern::everything()].into(),
                });
            }
        }
        let known = self.static_tokens.as_ref()?.get(token)?;
        Some(Grant {
            name: known.name.as_str().into(),
            patterns: known.patterns.clone().into(),
        })
    }
}

/// 32 random bytes, hex: safe in URLs, headers and subprotocol names.
fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(s: &str) -> Presented {
        Presented::Token(vec![s.to_string()])
    }

    #[test]
    fn generated_token_only_when_nothing_configured() {
        let auth = Authenticator::from_config(&AuthConfig::default()).unwrap();
        let generated = auth.generated_token().unwrap().to_string();
        assert_eq!(generated.len(), 64);
        let grant = auth.authenticate(&token(&generated)).unwrap();
        assert!(grant.permits(&Pattern::parse("any:thing").unwrap()));
        assert_eq!(
            auth.authenticate(&token("nope")).unwrap_err(),
            Denied::Unknown
        );
        assert_eq!(
            auth.authenticate(&Presented::Missing).unwrap_err(),
            Denied::Missing
        );
        let other = Authenticator::from_config(&AuthConfig::default()).unwrap();
        assert_ne!(other.generated_token(), auth.generated_token());
    }

    #[test]
    fn static_tokens_and_second_candidate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(
            &path,
            "[[token]]\nname = \"dash\"\ntoken = \"a+b\"\ntopics = [\"package_created\"]\n",
        )
        .unwrap();
        let auth = Authenticator::from_config(&AuthConfig {
            tokens_file: Some(path),
            ..AuthConfig::default()
        })
        .unwrap();
        assert!(auth.generated_token().is_none());
        let both = Presented::Token(vec!["a b".into(), "a+b".into()]);
        let grant = auth.authenticate(&both).unwrap();
        assert_eq!(&*grant.name, "dash");
        assert!(grant.permits(&Pattern::parse("package_created").unwrap()));
        assert!(!grant.permits(&Pattern::parse("article").unwrap()));
    }

    #[test]
    fn anonymous_clients_get_the_anonymous_topics_or_nothing() {
        let open = Authenticator::from_config(&AuthConfig {
            allow_anonymous: true,
            anonymous_topics: vec![Pattern::parse("package_created").unwrap()],
            ..AuthConfig::default()
        })
        .unwrap();
        assert_eq!(
            &*open.authenticate(&Presented::Missing).unwrap().name,
            "anonymous"
        );
        let empty = Authenticator::from_config(&AuthConfig {
            allow_anonymous: true,
            ..AuthConfig::default()
        })
        .unwrap();
        assert_eq!(
            empty.authenticate(&Presented::Missing).unwrap_err(),
            Denied::NoTopics
        );
        assert_eq!(Denied::NoTopics.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn a_missing_tokens_file_is_a_startup_error() {
        let err = Authenticator::from_config(&AuthConfig {
            tokens_file: Some("/nonexistent/tokens.toml".into()),
            ..AuthConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/tokens.toml"));
    }
}
