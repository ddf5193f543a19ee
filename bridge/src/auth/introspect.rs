//! STUB: replaced by the introspection helper's file.
use crate::config::IntrospectConfig;
use crate::topic::Pattern;

#[derive(Debug)]
pub struct Introspector;
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct IntrospectError;
pub enum Verdict {
    Accepted { patterns: Option<Vec<Pattern>> },
    Rejected,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    Timeout,
}
impl Unavailable {
    pub fn reason(&self) -> &'static str {
        "introspection_timeout"
    }
}
impl Introspector {
    pub fn from_config(_c: &IntrospectConfig) -> Result<Self, IntrospectError> {
        Ok(Introspector)
    }
    pub async fn check(&self, _t: &str) -> Result<Verdict, Unavailable> {
        Err(Unavailable::Timeout)
    }
}
