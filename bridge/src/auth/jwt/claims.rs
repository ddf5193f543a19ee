//! The claim checks of a JWT: the jsonwebtoken [`Validation`] built from `[auth.jwt]`
//! (every default set explicitly, since jsonwebtoken's differ from docs/protocol.md), its errors
//! mapped to [`JwtRejection`]s, and the reading of the topics claim and `exp`.

use std::collections::HashSet;
use std::time::Duration;

use jsonwebtoken::errors::{Error as LibError, ErrorKind};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::error::JwtRejection;
use crate::config::JwtConfig;
use crate::topic::Pattern;

/// jsonwebtoken's checks, all set explicitly (its defaults differ from docs/protocol.md).
pub(super) fn validation(algorithm: Algorithm, config: &JwtConfig) -> Validation {
    let mut validation = Validation::new(algorithm);
    let mut required = HashSet::new();
    validation.leeway = config.leeway.as_secs();
    validation.reject_tokens_expiring_in_less_than = 0;
    // `exp` and `nbf` are checked whenever present; `exp` may also be required.
    validation.validate_exp = true;
    validation.validate_nbf = true;
    if config.require_exp {
        required.insert("exp".to_string());
    }
    // jsonwebtoken only compares `iss`/`aud` when the token has them: require them.
    validation.iss = None;
    if let Some(issuer) = &config.issuer {
        validation.set_issuer(&[issuer]);
        required.insert("iss".to_string());
    }
    validation.validate_aud = config.audience.is_some();
    validation.aud = None;
    if let Some(audience) = &config.audience {
        validation.set_audience(audience);
        required.insert("aud".to_string());
    }
    validation.sub = None;
    validation.required_spec_claims = required;
    validation
}

/// The topics claim: a list of patterns, or one pattern as a string. Anything else
/// (including `null`, which must not fall back to the default of all topics) is refused.
pub(super) fn patterns(claim: &Value) -> Option<Vec<Pattern>> {
    match claim {
        Value::String(one) => Some(vec![Pattern::parse(one).ok()?]),
        Value::Array(list) => list
            .iter()
            .map(|item| Pattern::parse(item.as_str()?).ok())
            .collect(),
        _ => None,
    }
}

/// A NumericDate (seconds since the epoch, possibly fractional).
pub(super) fn seconds(value: &Value) -> Option<Duration> {
    match value.as_u64() {
        Some(secs) => Some(Duration::from_secs(secs)),
        None => Duration::try_from_secs_f64(value.as_f64()?).ok(),
    }
}

pub(super) fn rejection(error: &LibError) -> JwtRejection {
    match error.kind() {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey => JwtRejection::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => JwtRejection::AlgorithmNotAllowed,
        ErrorKind::ExpiredSignature => JwtRejection::Expired,
        ErrorKind::ImmatureSignature => JwtRejection::NotYetValid,
        ErrorKind::InvalidIssuer => JwtRejection::WrongIssuer,
        ErrorKind::InvalidAudience => JwtRejection::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => JwtRejection::MissingExp,
            "iss" => JwtRejection::WrongIssuer,
            "aud" => JwtRejection::WrongAudience,
            _ => JwtRejection::Malformed,
        },
        _ => JwtRejection::Malformed,
    }
}
