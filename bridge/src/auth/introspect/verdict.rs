//! What a token check through the API ends in: a [`Verdict`] (accepted, with the
//! patterns the answer lists, or rejected) or [`Unavailable`] (the client gets `503`).

use crate::topic::Pattern;

/// Largest answer read; a larger one is a bad answer.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// What the API said about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx answer. `patterns` is `None` when the answer does not list any (no
    /// `topics_field` configured, or the field absent): all topics.
    Accepted { patterns: Option<Vec<Pattern>> },
    /// A 4xx answer (other than 408 and 429).
    Rejected,
}

/// Why the API could not tell (the client gets `503`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("the token service did not answer in time")]
    Timeout,
    #[error("the token service cannot be reached")]
    Connect,
    #[error("the token service answered with an error")]
    ServerError,
    #[error("the token service gave an answer that cannot be read")]
    BadAnswer,
}

impl Unavailable {
    /// The metric label and the `error` field of the `503` answer.
    pub fn reason(&self) -> &'static str {
        match self {
            Unavailable::Timeout => "introspection_timeout",
            Unavailable::Connect => "introspection_unreachable",
            Unavailable::ServerError => "introspection_server_error",
            Unavailable::BadAnswer => "introspection_bad_answer",
        }
    }
}
