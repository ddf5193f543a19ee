//! JSON Web Tokens (docs/protocol.md "Authentication"): verifying a client's token into
//! a [`JwtGrant`] (subject, permitted patterns, expiry), and minting HS* tokens for
//! `push-bridge token`. Built once from `[auth.jwt]` (again on SIGHUP); the key files
//! are read then, never per connection.
//!
//! The configured algorithm list is the only one trusted: a token's header may name
//! only one of those algorithms, and the key selected for it (the one key of a secret
//! or PEM file, or the JWKS key its `kid` names) must be of that algorithm's family.
//! So `none`, and HS256 signed with an RSA public key as the HMAC secret, are refused
//! before any signature is computed. jsonwebtoken does the signature and time checks;
//! its defaults (60 s leeway, `aud` checked, `iss` and `nbf` not) are all set here.
//!
//! The verifier is here; the claim checks are in `claims`, the key sources in `keys`,
//! and the errors and refusals ([`JwtError`], [`JwtRejection`]) in `error`.

mod claims;
mod error;
mod keys;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::{Map, Value};

use crate::config::JwtConfig;
use crate::topic::Pattern;
use claims::{patterns, rejection, seconds, validation};
use keys::Keys;

pub use error::{JwtError, JwtRejection};

/// Longer tokens are refused unread: real ones are well under a kilobyte.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Clock skew beyond this is a configuration mistake, not skew.
pub const MAX_LEEWAY: Duration = Duration::from_secs(3600);

/// What a verified token permits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtGrant {
    /// The `sub` claim, for logs.
    pub subject: Option<String>,
    /// From the topics claim, or `default_topics` when the claim is absent.
    pub patterns: Vec<Pattern>,
    /// The token's `exp`. Verification accepts it until `exp` plus the configured
    /// leeway; the caller closes the connection (4001) then. `None`: no `exp` (or one
    /// beyond any representable time).
    pub expires_at: Option<SystemTime>,
}

/// A configured algorithm and the checks for tokens signed with it. One validation
/// per algorithm: jsonwebtoken refuses a validation that spans algorithm families,
/// and JWKS keys may be of several.
struct Allowed {
    name: String,
    algorithm: Algorithm,
    validation: Validation,
}

/// Verifies tokens against `[auth.jwt]`; see the module documentation.
pub struct JwtVerifier {
    allowed: Vec<Allowed>,
    keys: Keys,
    issuer: Option<String>,
    audience: Option<String>,
    topics_claim: String,
    default_topics: Vec<Pattern>,
}

/// The header fields looked at before jsonwebtoken parses the token.
#[derive(serde::Deserialize)]
struct PeekedHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Extensions the verifier must understand (RFC 7515 §4.1.11): none are.
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

impl JwtVerifier {
    /// Checks `[auth.jwt]` and reads its key file, if any.
    pub fn from_config(config: &JwtConfig) -> Result<Self, JwtError> {
        if config.algorithms.is_empty() {
            return Err(JwtError::NoAlgorithms);
        }
        let algorithms = config
            .algorithms
            .iter()
            .map(|name| {
                name.parse::<Algorithm>()
                    .map_err(|_| JwtError::UnknownAlgorithm(name.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if config.leeway > MAX_LEEWAY {
            let leeway = humantime::format_duration(config.leeway).to_string();
            return Err(JwtError::LeewayTooLarge(leeway));
        }
        let empty = |key: &str| Err(JwtError::Empty(format!("auth.jwt.{key}")));
        if config.issuer.as_deref() == Some("") {
            return empty("issuer");
        }
        if let Some(audience) = &config.audience {
            if audience.is_empty() || audience.iter().any(String::is_empty) {
                return empty("audience (or one of its entries)");
            }
        }
        if config.topics_claim.is_empty() {
            return empty("topics_claim");
        }
        let keys = Keys::load(config, &algorithms)?;
        let allowed = config
            .algorithms
            .iter()
            .zip(algorithms)
            .map(|(name, algorithm)| Allowed {
                name: name.clone(),
                algorithm,
                validation: validation(algorithm, config),
            })
            .collect();
        Ok(JwtVerifier {
            allowed,
            keys,
            issuer: config.issuer.clone(),
            audience: config.audience.as_ref().and_then(|a| a.first().cloned()),
            topics_claim: config.topics_claim.clone(),
            default_topics: config.default_topics.clone(),
        })
    }

    /// Cheap pre-check so other token kinds are tried for non-JWT strings: three
    /// base64url parts (the signature may be empty, so `none` tokens are refused as
    /// such rather than passed on).
    pub fn looks_like_jwt(token: &str) -> bool {
        let base64url = |part: &str| {
            part.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let mut parts = token.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(header), Some(payload), Some(signature), None) => {
                !header.is_empty()
                    && !payload.is_empty()
                    && [header, payload, signature].into_iter().all(base64url)
            }
            _ => false,
        }
    }

    pub fn verify(&self, token: &str) -> Result<JwtGrant, JwtRejection> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtRejection::Malformed);
        }
        let header = peek_header(token).ok_or(JwtRejection::Malformed)?;
        if header.crit.is_some() {
            return Err(JwtRejection::Malformed);
        }
        let allowed = self
            .allowed
            .iter()
            .find(|a| a.name == header.alg)
            .ok_or(JwtRejection::AlgorithmNotAllowed)?;
        let key = self
            .keys
            .select(header.kid.as_deref())
            .ok_or(JwtRejection::UnknownKid)?;
        if !key.algorithms.contains(&allowed.algorithm) {
            return Err(JwtRejection::AlgorithmNotAllowed);
        }
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &allowed.validation)
                .map_err(|e| rejection(&e))?;
        self.grant(&data.claims)
    }

    /// Mints an HS* token with the configured secret (for `push-bridge token`): the
    /// first configured algorithm, `iat`, `exp` = now + `ttl` (rounded up to a second),
    /// the topics claim, and `sub`, `iss` and the first `aud` when set, so the token
    /// passes this configuration's checks.
    pub fn mint(
        &self,
        topics: &[Pattern],
        ttl: Duration,
        subject: Option<&str>,
    ) -> Result<String, JwtError> {
        let signing = self
            .keys
            .signing
            .as_ref()
            .ok_or_else(|| JwtError::NoSecret(self.keys.source.clone()))?;
        let algorithm = self
            .allowed
            .first()
            .map(|a| a.algorithm)
            .ok_or(JwtError::NoAlgorithms)?;
        if ttl.is_zero() {
            return Err(JwtError::ZeroTtl);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let ttl_secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let mut claims = Map::new();
        if let Some(subject) = subject {
            claims.insert("sub".into(), subject.into());
        }
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), now.saturating_add(ttl_secs).into());
        if let Some(issuer) = &self.issuer {
            claims.insert("iss".into(), issuer.as_str().into());
        }
        if let Some(audience) = &self.audience {
            claims.insert("aud".into(), audience.as_str().into());
        }
        let topics: Vec<Value> = topics.iter().map(|p| p.as_str().into()).collect();
        claims.insert(self.topics_claim.clone(), topics.into());
        jsonwebtoken::encode(&Header::new(algorithm), &claims, signing).map_err(JwtError::Sign)
    }

    fn grant(&self, claims: &Map<String, Value>) -> Result<JwtGrant, JwtRejection> {
        let subject = match claims.get("sub") {
            None => None,
            Some(Value::String(sub)) => Some(sub.clone()),
            Some(_) => return Err(JwtRejection::Malformed),
        };
        let patterns = match claims.get(&self.topics_claim) {
            None => self.default_topics.clone(),
            Some(claim) => patterns(claim).ok_or(JwtRejection::BadTopicsClaim)?,
        };
        let expires_at = match claims.get("exp") {
            None => None,
            Some(exp) => {
                let exp = seconds(exp).ok_or(JwtRejection::Malformed)?;
                // Room left for the caller to add the leeway without overflow.
                UNIX_EPOCH
                    .checked_add(exp)
                    .filter(|at| at.checked_add(MAX_LEEWAY).is_some())
            }
        };
        Ok(JwtGrant {
            subject,
            patterns,
            expires_at,
        })
    }
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithms: Vec<&str> = self.allowed.iter().map(|a| a.name.as_str()).collect();
        let kids: Vec<Option<&str>> = self.keys.keys.iter().map(|k| k.kid.as_deref()).collect();
        f.debug_struct("JwtVerifier")
            .field("algorithms", &algorithms)
            .field("keys", &self.keys.source)
            .field("kids", &kids)
            .field("issuer", &self.issuer)
            .field("topics_claim", &self.topics_claim)
            .finish_non_exhaustive()
    }
}

fn peek_header(token: &str) -> Option<PeekedHeader> {
    let (header, _) = token.split_once('.')?;
    let json = URL_SAFE_NO_PAD.decode(header).ok()?;
    serde_json::from_slice(&json).ok()
}

#[cfg(test)]
mod tests;
