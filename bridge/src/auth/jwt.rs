//! STUB: replaced by the JWT helper's file.
use std::time::{Duration, SystemTime};

use crate::config::JwtConfig;
use crate::topic::Pattern;

#[derive(Debug)]
pub struct JwtVerifier;
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct JwtError;
#[derive(Debug, Clone)]
pub struct JwtGrant {
    pub subject: Option<String>,
    pub patterns: Vec<Pattern>,
    pub expires_at: Option<SystemTime>,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtRejection {
    Malformed,
}
impl JwtRejection {
    pub fn reason(&self) -> &'static str {
        "jwt_malformed"
    }
}
impl JwtVerifier {
    pub fn from_config(_c: &JwtConfig) -> Result<Self, JwtError> {
        Ok(JwtVerifier)
    }
    pub fn looks_like_jwt(token: &str) -> bool {
        token.split('.').count() == 3
    }
    pub fn verify(&self, _t: &str) -> Result<JwtGrant, JwtRejection> {
        Err(JwtRejection::Malformed)
    }
    pub fn mint(
        &self,
        _t: &[Pattern],
        _ttl: Duration,
        _s: Option<&str>,
    ) -> Result<String, JwtError> {
        Err(JwtError)
    }
}
