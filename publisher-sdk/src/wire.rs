//! The wire rules a publisher and the bridge share (docs/publishing.md "Wire format",
//! docs/protocol.md "Topics and patterns"): what a valid topic and event id look like.
//! The bridge uses these very functions, so a message the SDK accepts is one the
//! bridge accepts.

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

/// Number of frames of the message the SDK sends: `[topic, id, data-json]`
/// (docs/publishing.md "One event = one message of three frames").
pub const FRAMES: usize = 3;

/// The frames of one event in the "multipart with id" form: `[topic, id, data-json]`.
///
/// Pure layout, no checks: callers validate with [`check_topic`], [`is_valid_id`] and
/// a JSON parser first (the SDK's `Publisher` does). The topic leads so that a SUB
/// socket's prefix filter sees it; the id lets the bridge drop retried duplicates.
/// A `String` passed as `data_json` is moved into its frame, not copied.
pub fn encode(topic: &str, id: &str, data_json: impl Into<String>) -> [Vec<u8>; FRAMES] {
    [
        topic.as_bytes().to_vec(),
        id.as_bytes().to_vec(),
        data_json.into().into_bytes(),
    ]
}

/// Size in bytes of the message [`encode`] would build: the sum of its frames, which is
/// what the SDK compares with its size limit (the bridge's `ingress.max_message_bytes`).
pub fn encoded_len(topic: &str, id: &str, data_json: &str) -> usize {
    topic.len() + id.len() + data_json.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_every_rule() {
        assert_eq!(check_topic("package_created"), Ok(()));
        assert_eq!(check_topic("tenant:42:article"), Ok(()));
        assert_eq!(check_topic(&"a".repeat(MAX_TOPIC_LEN)), Ok(()));
        assert_eq!(check_topic(""), Err(TopicError::Empty));
        assert_eq!(
            check_topic(&"a".repeat(MAX_TOPIC_LEN + 1)),
            Err(TopicError::TooLong)
        );
        assert_eq!(check_topic("a b"), Err(TopicError::BadCharacter));
        assert_eq!(check_topic("a\u{7}b"), Err(TopicError::BadCharacter));
        assert_eq!(check_topic(":a"), Err(TopicError::EmptySegment));
        assert_eq!(check_topic("a::b"), Err(TopicError::EmptySegment));
        assert_eq!(check_topic("a:"), Err(TopicError::EmptySegment));
        assert_eq!(check_topic("a:*"), Err(TopicError::Wildcard));
        assert_eq!(check_pattern("a:*"), Ok(()));
        assert_eq!(check_pattern("a:b*"), Err(TopicError::Wildcard));
    }

    #[test]
    fn ids_are_short_printable_ascii() {
        assert!(is_valid_id("0190b6f2-6a4e-7c3d-8f00-0123456789ab"));
        assert!(is_valid_id(" "));
        assert!(is_valid_id(&"x".repeat(MAX_ID_LEN)));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id(&"x".repeat(MAX_ID_LEN + 1)));
        assert!(!is_valid_id("tab\there"));
        assert!(!is_valid_id("caf\u{e9}"));
        assert!(!is_valid_id("del\u{7f}"));
    }

    #[test]
    fn encode_lays_out_topic_id_data() {
        let frames = encode("news:sport", "id-1", r#"{"a":[1,2]}"#);
        assert_eq!(frames[0], b"news:sport");
        assert_eq!(frames[1], b"id-1");
        assert_eq!(frames[2], br#"{"a":[1,2]}"#);
        let total: usize = frames.iter().map(Vec::len).sum();
        assert_eq!(total, encoded_len("news:sport", "id-1", r#"{"a":[1,2]}"#));
    }

    #[test]
    fn encode_keeps_data_bytes_exactly() {
        // Non-ASCII and whitespace in the JSON text reach the wire untouched.
        let data = String::from("{ \"t\" : \"caf\u{e9} \u{1f600}\" }");
        let frames = encode("t", "i", data.clone());
        assert_eq!(frames[2], data.as_bytes());
    }
}
