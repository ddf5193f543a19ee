//! Peer-sent JSON and text as error messages quote it back to publishers and clients:
//! what kind of value it was ("expected a string, got a number"), and a short excerpt
//! of the text. Shared by every parser of untrusted input: ingress messages and the
//! client protocols.

use serde_json::Value;

pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Longest piece of peer-supplied text quoted back in an error or log message.
pub const EXCERPT_CHARS: usize = 64;

/// `text` as a JSON string literal, cut to [`EXCERPT_CHARS`] characters (marked `…`),
/// for quoting what a peer sent in a human-readable reason without echoing kilobytes.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", json_string(&text[..cut])),
        None => json_string(text),
    }
}

/// `text` as a JSON string literal, escaped as serde_json escapes it.
pub fn json_string(text: &str) -> String {
    // `Value`'s Display cannot fail and is exactly serde_json's compact serialization.
    Value::from(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_quoted_and_cut_on_character_boundaries() {
        assert_eq!(excerpt("a\"b"), r#""a\"b""#);
        assert_eq!(excerpt(&"x".repeat(64)), format!("\"{}\"", "x".repeat(64)));
        assert_eq!(excerpt(&"é".repeat(65)), format!("\"{}\"…", "é".repeat(64)));
        assert_eq!(excerpt(""), "\"\"");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("q\"b\\s\n\u{1}é😀"), r#""q\"b\\s\n\u0001é😀""#);
    }
}
