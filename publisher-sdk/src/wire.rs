//! The wire rules a publisher and the bridge share (spec/ingress.md, spec/clients.md
//! "Topics and patterns"): what a valid topic and event id look like. The bridge uses
//! these very functions, so a message the SDK accepts is one the bridge accepts.

/// Longest topic or pattern, in bytes.
pub const MAX_TOPIC_LEN: usize = 256;

/// Longest event id, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// The segment separator of topics and patterns.
pub const SEPARATOR: char = ':';

/// The wildcard segment of a pattern.
pub const WILDCARD: &str = "*";

/// Why a string is not a valid topic or pattern; the message names the rule broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_TOPIC_LEN} bytes")]
    TooLong,
    #[error("contains whitespace or a control character")]
    BadCharacter,
    #[error("has an empty segment (leading, trailing or doubled ':')")]
    EmptySegment,
    #[error("contains '*', which only patterns may use, as a whole segment")]
    Wildcard,
}

/// Checks a topic: 1–256 bytes of UTF-8, no whitespace, no control characters, no
/// `*`, `:`-separated non-empty segments.
pub fn check_topic(s: &str) -> Result<(), TopicError> {
    check(s, false)
}

/// Checks a pattern: a topic in which a whole segment may be `*`.
pub fn check_pattern(s: &str) -> Result<(), TopicError> {
    check(s, true)
}

fn check(s: &str, allow_wildcard: bool) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong);
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TopicError::BadCharacter);
    }
    for segment in s.split(SEPARATOR) {
        if segment.is_empty() {
            return Err(TopicError::EmptySegment);
        }
        if segment.contains('*') && !(allow_wildcard && segment == WILDCARD) {
            return Err(TopicError::Wildcard);
        }
    }
    Ok(())
}

/// Whether `id` is an acceptable event id: 1–128 bytes of printable ASCII
/// (0x20–0x7e).
pub fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| (0x20..=0x7e).contains(&b))
}
