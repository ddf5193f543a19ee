//! What can go wrong with JWTs: [`JwtError`], why `[auth.jwt]` cannot be used or a
//! token cannot be minted, and [`JwtRejection`], why a client's token was refused. The
//! verifier and its parts (the claim checks, the keys) all make them, so they sit in
//! this leaf, which uses none of them.

use std::path::PathBuf;

use jsonwebtoken::errors::Error as LibError;

const SUPPORTED: &str =
    "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA";

/// Why `[auth.jwt]` cannot be used (at start or SIGHUP), or why minting failed. Each
/// message names the key, and the file where there is one.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("auth.jwt.algorithms is empty: list the algorithms your tokens are signed with, e.g. [\"HS256\"]")]
    NoAlgorithms,
    #[error("auth.jwt.algorithms: {0:?} is not a supported algorithm (supported: {SUPPORTED})")]
    UnknownAlgorithm(String),
    #[error("auth.jwt has no key: set one of secret, secret_file, public_key_file or jwks_file")]
    NoKey,
    #[error("auth.jwt has more than one key source ({0}): set exactly one of secret, secret_file, public_key_file or jwks_file")]
    SeveralKeys(String),
    #[error("cannot read auth.jwt.{key} {}: {cause}", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// `auth.jwt.secret`, `auth.jwt.secret_file <path>`, `auth.jwt.issuer`, …
    #[error("{0} is empty")]
    Empty(String),
    #[error("auth.jwt.public_key_file {}: {message}", path.display())]
    InvalidPem { path: PathBuf, message: String },
    #[error("auth.jwt.jwks_file {}: {message}", path.display())]
    InvalidJwks { path: PathBuf, message: String },
    #[error("auth.jwt.algorithms lists {algorithm}, which the key of {key} cannot verify (it fits {usable})")]
    AlgorithmMismatch {
        algorithm: String,
        key: String,
        usable: String,
    },
    #[error("auth.jwt.leeway is {0}: more than 1h of clock skew is refused")]
    LeewayTooLarge(String),
    #[error("minting needs an HS256/HS384/HS512 secret, but [auth.jwt] verifies with {0}: set auth.jwt.secret or auth.jwt.secret_file")]
    NoSecret(String),
    #[error("the token lifetime must be greater than zero")]
    ZeroTtl,
    #[error("cannot sign the token: {0}")]
    Sign(LibError),
}

/// Why a presented JWT was refused (HTTP 401; `reason()` is the metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtRejection {
    Malformed,
    BadSignature,
    AlgorithmNotAllowed,
    Expired,
    NotYetValid,
    MissingExp,
    WrongIssuer,
    WrongAudience,
    UnknownKid,
    BadTopicsClaim,
}

impl JwtRejection {
    /// The `reason` label of `push_bridge_auth_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            JwtRejection::Malformed => "jwt_malformed",
            JwtRejection::BadSignature => "jwt_bad_signature",
            JwtRejection::AlgorithmNotAllowed => "jwt_algorithm_not_allowed",
            JwtRejection::Expired => "jwt_expired",
            JwtRejection::NotYetValid => "jwt_not_yet_valid",
            JwtRejection::MissingExp => "jwt_missing_exp",
            JwtRejection::WrongIssuer => "jwt_wrong_issuer",
            JwtRejection::WrongAudience => "jwt_wrong_audience",
            JwtRejection::UnknownKid => "jwt_unknown_kid",
            JwtRejection::BadTopicsClaim => "jwt_bad_topics_claim",
        }
    }

    /// A short explanation for the client (the `message` of the JSON answer).
    pub fn message(&self) -> &'static str {
        match self {
            JwtRejection::Malformed => "the token is not a well-formed JWT",
            JwtRejection::BadSignature => "the token's signature does not verify",
            JwtRejection::AlgorithmNotAllowed => "the token's signing algorithm is not accepted",
            JwtRejection::Expired => "the token has expired",
            JwtRejection::NotYetValid => "the token is not valid yet (nbf)",
            JwtRejection::MissingExp => "the token has no expiry (exp)",
            JwtRejection::WrongIssuer => "the token's issuer (iss) is not accepted",
            JwtRejection::WrongAudience => "the token's audience (aud) is not accepted",
            JwtRejection::UnknownKid => "the token's key id (kid) is unknown",
            JwtRejection::BadTopicsClaim => "the token's topics claim is not a list of patterns",
        }
    }
}
