//! Authentication before the upgrade (docs/protocol.md "Authentication"): one
//! [`Authenticator`] over the enabled token kinds. A request's token is found by
//! [`credentials`], checked here, and turned into a [`Grant`]: the token's name (for
//! logs and metrics; never the token) and the patterns it permits.
//!
//! With no token kind configured, a random token is generated at start and accepted
//! alone, so a first run is both secure and one command.

pub mod credentials;
pub mod introspect;
pub mod jwt;
pub mod static_tokens;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use rand::RngCore;

use crate::config::AuthConfig;
use crate::topic::Pattern;
use credentials::Presented;
use introspect::{IntrospectError, Introspector, Verdict};
use jwt::{JwtError, JwtRejection, JwtVerifier};
use static_tokens::{StaticTokens, StaticTokensError};

/// Which kind of token let a connection in (what a reload may revoke).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Generated,
    Anonymous,
    /// A static token, by the SHA-256 of the token.
    Static([u8; 32]),
    Jwt,
    Introspected,
}

/// Who a connection is and what it may subscribe to.
#[derive(Debug, Clone)]
pub struct Grant {
    pub name: Arc<str>,
    pub patterns: Arc<[Pattern]>,
    /// When the connection must be closed with `4001` (JWT `exp`, plus the leeway a
    /// new connection would get).
    pub expires_at: Option<SystemTime>,
    pub credential: Credential,
}

impl Grant {
    pub fn permits(&self, pattern: &Pattern) -> bool {
        pattern.is_covered_by_any(&self.patterns)
    }

    /// Why `patterns` may not all be subscribed with this grant ("the token does not
    /// permit: a, b"), or `None` when every one is permitted.
    pub fn refuses(&self, patterns: &[Pattern]) -> Option<String> {
        let forbidden: Vec<&str> = patterns
            .iter()
            .filter(|p| !self.permits(p))
            .map(Pattern::as_str)
            .collect();
        (!forbidden.is_empty())
            .then(|| format!("the token does not permit: {}", forbidden.join(", ")))
    }

    /// A connection still to authenticate inside its protocol (WAMP v2 ticket): it
    /// may subscribe to nothing yet.
    pub fn pending() -> Self {
        Grant::new("pending", Vec::new(), Credential::Anonymous)
    }

    fn new(name: &str, patterns: Vec<Pattern>, credential: Credential) -> Self {
        Grant {
            name: name.into(),
            patterns: patterns.into(),
            expires_at: None,
            credential,
        }
    }
}

/// Why a request was refused before the upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    Missing,
    Malformed(&'static str),
    Unknown,
    Jwt(JwtRejection),
    NoTopics,
    /// The introspection API could not answer: never a free pass.
    Unavailable(&'static str),
}

impl Denied {
    pub fn status(&self) -> StatusCode {
        match self {
            Denied::NoTopics => StatusCode::FORBIDDEN,
            Denied::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The metric label and the `error` field of the JSON answer.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::Missing => "missing_token",
            Denied::Malformed(_) => "malformed_token",
            Denied::Unknown => "unknown_token",
            Denied::Jwt(rejection) => rejection.reason(),
            Denied::NoTopics => "no_topics",
            Denied::Unavailable(reason) => reason,
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
            Denied::Jwt(rejection) => rejection.message().to_string(),
            Denied::NoTopics => "the token permits no topic".into(),
            Denied::Unavailable(_) => {
                "the token cannot be checked right now; try again later".into()
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    StaticTokens(#[from] StaticTokensError),
    #[error(transparent)]
    Jwt(#[from] JwtError),
    #[error("auth.introspect: {0}")]
    Introspect(#[from] IntrospectError),
}

/// The authenticator in force, shared by the admission checks and the sessions that
/// authenticate inside their protocol, and swapped whole by a reload.
#[derive(Debug)]
pub struct CurrentAuth(std::sync::RwLock<Arc<Authenticator>>);

impl CurrentAuth {
    pub fn new(auth: Authenticator) -> Self {
        CurrentAuth(std::sync::RwLock::new(Arc::new(auth)))
    }

    pub fn get(&self) -> Arc<Authenticator> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn replace(&self, auth: Arc<Authenticator>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = auth;
    }
}

/// Every enabled token kind; a token is accepted if any of them accepts it.
#[derive(Debug)]
pub struct Authenticator {
    static_tokens: Option<StaticTokens>,
    jwt: Option<(JwtVerifier, Duration)>,
    introspect: Option<Introspector>,
    generated: Option<String>,
    anonymous: Option<Grant>,
    cookie: Option<String>,
}

impl Authenticator {
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthError> {
        Self::build(config, None)
    }

    /// A new authenticator for a reloaded config; the generated token (if any) stays
    /// the same, so a reload never locks out the clients that use it.
    pub fn reload(&self, config: &AuthConfig) -> Result<Self, AuthError> {
        Self::build(config, self.generated.clone())
    }

    fn build(config: &AuthConfig, previous_generated: Option<String>) -> Result<Self, AuthError> {
        let static_tokens = match &config.tokens_file {
            Some(path) => Some(StaticTokens::load(path)?),
            None => None,
        };
        let jwt = match &config.jwt {
            Some(jwt) => Some((JwtVerifier::from_config(jwt)?, jwt.leeway)),
            None => None,
        };
        let introspect = match &config.introspect {
            Some(introspect) => Some(Introspector::from_config(introspect)?),
            None => None,
        };
        let nothing_configured = static_tokens.is_none() && jwt.is_none() && introspect.is_none();
        let generated =
            nothing_configured.then(|| previous_generated.unwrap_or_else(generate_token));
        let anonymous = config.allow_anonymous.then(|| {
            Grant::new(
                "anonymous",
                config.anonymous_topics.clone(),
                Credential::Anonymous,
            )
        });
        Ok(Authenticator {
            static_tokens,
            jwt,
            introspect,
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

    /// The JWT verifier, if JWTs are configured (for `push-bridge token`).
    pub fn jwt(&self) -> Option<&JwtVerifier> {
        self.jwt.as_ref().map(|(verifier, _)| verifier)
    }

    /// Whether a connection admitted with `credential` is still admitted by this
    /// authenticator (false: a static token removed on reload).
    pub fn still_valid(&self, credential: &Credential) -> bool {
        match credential {
            Credential::Static(digest) => self
                .static_tokens
                .as_ref()
                .is_some_and(|tokens| tokens.contains_digest(digest)),
            _ => true,
        }
    }

    pub async fn authenticate(&self, presented: &Presented) -> Result<Grant, Denied> {
        let grant = match presented {
            Presented::Missing => self.anonymous.clone().ok_or(Denied::Missing)?,
            Presented::Malformed(why) => return Err(Denied::Malformed(why)),
            Presented::Token(candidates) => {
                // The most telling refusal wins: a service outage over an expired JWT
                // over "unknown".
                let mut refusal = Denied::Unknown;
                let mut accepted = None;
                for token in candidates {
                    match self.check(token).await {
                        Ok(grant) => {
                            accepted = Some(grant);
                            break;
                        }
                        Err(denied) => refusal = more_telling(refusal, denied),
                    }
                }
                accepted.ok_or(refusal)?
            }
        };
        if grant.patterns.is_empty() {
            return Err(Denied::NoTopics);
        }
        Ok(grant)
    }

    async fn check(&self, token: &str) -> Result<Grant, Denied> {
        if let Some(generated) = &self.generated {
            if constant_time_eq(generated.as_bytes(), token.as_bytes()) {
                return Ok(Grant::new(
                    "generated",
                    vec![Pattern::everything()],
                    Credential::Generated,
                ));
            }
        }
        if let Some(tokens) = &self.static_tokens {
            if let Some((digest, known)) = tokens.get_with_digest(token) {
                return Ok(Grant::new(
                    &known.name,
                    known.patterns.clone(),
                    Credential::Static(digest),
                ));
            }
        }
        let mut refusal = Denied::Unknown;
        if let Some((verifier, leeway)) = &self.jwt {
            if JwtVerifier::looks_like_jwt(token) {
                match verifier.verify(token) {
                    Ok(jwt) => {
                        let name = jwt
                            .subject
                            .as_deref()
                            .map_or("jwt".to_string(), |s| format!("jwt:{s}"));
                        let mut grant = Grant::new(&name, jwt.patterns, Credential::Jwt);
                        grant.expires_at = jwt.expires_at.and_then(|exp| exp.checked_add(*leeway));
                        return Ok(grant);
                    }
                    Err(rejection) => refusal = Denied::Jwt(rejection),
                }
            }
        }
        if let Some(introspector) = &self.introspect {
            match introspector.check(token).await {
                Ok(Verdict::Accepted { patterns }) => {
                    let patterns = patterns.unwrap_or_else(|| vec![Pattern::everything()]);
                    return Ok(Grant::new(
                        "introspected",
                        patterns,
                        Credential::Introspected,
                    ));
                }
                Ok(Verdict::Rejected) => {}
                Err(unavailable) => {
                    refusal = more_telling(refusal, Denied::Unavailable(unavailable.reason()))
                }
            }
        }
        Err(refusal)
    }
}

fn more_telling(a: Denied, b: Denied) -> Denied {
    fn rank(d: &Denied) -> u8 {
        match d {
            Denied::Unavailable(_) => 3,
            Denied::Jwt(_) => 2,
            Denied::Malformed(_) | Denied::NoTopics => 1,
            Denied::Missing | Denied::Unknown => 0,
        }
    }
    if rank(&b) > rank(&a) {
        b
    } else {
        a
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

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn token(s: &str) -> Presented {
        Presented::Token(vec![s.to_string()])
    }

    #[test]
    fn generated_token_only_when_nothing_configured() {
        let auth = Authenticator::from_config(&AuthConfig::default()).unwrap();
        let generated = auth.generated_token().unwrap().to_string();
        assert_eq!(generated.len(), 64);
        let grant = block_on(auth.authenticate(&token(&generated))).unwrap();
        assert!(grant.permits(&Pattern::parse("any:thing").unwrap()));
        assert_eq!(
            block_on(auth.authenticate(&token("nope"))).unwrap_err(),
            Denied::Unknown
        );
        assert_eq!(
            block_on(auth.authenticate(&Presented::Missing)).unwrap_err(),
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
        let grant = block_on(auth.authenticate(&both)).unwrap();
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
            &*block_on(open.authenticate(&Presented::Missing))
                .unwrap()
                .name,
            "anonymous"
        );
        let empty = Authenticator::from_config(&AuthConfig {
            allow_anonymous: true,
            ..AuthConfig::default()
        })
        .unwrap();
        assert_eq!(
            block_on(empty.authenticate(&Presented::Missing)).unwrap_err(),
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
