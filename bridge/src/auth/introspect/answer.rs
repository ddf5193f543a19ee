//! Reading the API's answer: the body (bounded), the patterns in `topics_field`, and
//! why a request gave no verdict ([`Failure`]: the [`Unavailable`] reason plus a
//! detail for the log, never the token). Separate from the request so the parsing
//! rules are tested without a server.

use super::verdict::{Unavailable, MAX_ANSWER_BYTES};
use crate::topic::Pattern;

/// Why a request gave no verdict, with the detail for the log.
pub(super) struct Failure {
    pub(super) why: Unavailable,
    pub(super) detail: String,
}

impl Failure {
    pub(super) fn new(why: Unavailable, detail: impl Into<String>) -> Self {
        Failure {
            why,
            detail: detail.into(),
        }
    }

    pub(super) fn from_reqwest(error: reqwest::Error) -> Self {
        let why = if error.is_timeout() {
            Unavailable::Timeout
        } else if error.is_body() || error.is_decode() {
            Unavailable::BadAnswer
        } else {
            Unavailable::Connect
        };
        Failure::new(why, error_chain(&error.without_url()))
    }
}

/// The whole answer, up to [`MAX_ANSWER_BYTES`].
pub(super) async fn read_body(response: &mut reqwest::Response) -> Result<Vec<u8>, Failure> {
    let too_large = || {
        let detail = format!("the answer is larger than {MAX_ANSWER_BYTES} bytes");
        Failure::new(Unavailable::BadAnswer, detail)
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Failure::from_reqwest)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The patterns listed in `field` of a JSON object; `None` when the field is absent
/// or `null` (all topics).
pub(super) fn patterns_from_answer(
    body: &[u8],
    field: &str,
) -> Result<Option<Vec<Pattern>>, String> {
    let answer: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    let object = answer
        .as_object()
        .ok_or_else(|| "not a JSON object".to_string())?;
    let list = match object.get(field) {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Array(list)) => list,
        Some(_) => return Err(format!("field {field:?} is not a list")),
    };
    list.iter()
        .map(|item| {
            let s = item
                .as_str()
                .ok_or_else(|| format!("field {field:?} holds a non-string"))?;
            Pattern::parse(s).map_err(|e| format!("field {field:?}: {s:?} {e}"))
        })
        .collect::<Result<Vec<Pattern>, String>>()
        .map(Some)
}

/// An error and its causes on one line (reqwest's own message is only the outermost).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Option<Vec<Pattern>> {
        Some(list.iter().map(|p| Pattern::parse(p).unwrap()).collect())
    }

    #[test]
    fn the_field_lists_patterns_and_its_absence_means_all() {
        let read = |body: &str| patterns_from_answer(body.as_bytes(), "topics");
        assert_eq!(
            read(r#"{"user":1,"topics":["package_created","tenant:*:article"]}"#),
            Ok(patterns(&["package_created", "tenant:*:article"]))
        );
        assert_eq!(read(r#"{"topics":[]}"#), Ok(patterns(&[])));
        assert_eq!(read(r#"{"user":1}"#), Ok(None));
        assert_eq!(read(r#"{"topics":null}"#), Ok(None));
        // Only the configured field counts, and only at the top level.
        assert_eq!(read(r#"{"data":{"topics":["a"]}}"#), Ok(None));
        assert_eq!(
            patterns_from_answer(br#"{"topics":["a"],"scopes":["b"]}"#, "scopes"),
            Ok(patterns(&["b"]))
        );
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        let cases = [
            ("", "not JSON"),
            ("not JSON", "not JSON"),
            (r#"["package_created"]"#, "not a JSON object"),
            (r#"{"topics":"package_created"}"#, "is not a list"),
            (r#"{"topics":{"a":1}}"#, "is not a list"),
            (r#"{"topics":["package_created",7]}"#, "non-string"),
            (r#"{"topics":["package created"]}"#, "\"package created\""),
            (r#"{"topics":[""]}"#, "\"\""),
            (r#"{"topics":["a::b"]}"#, "\"a::b\""),
        ];
        for (body, why) in cases {
            let err = patterns_from_answer(body.as_bytes(), "topics").unwrap_err();
            assert!(err.contains(why), "{body}: {err}");
        }
    }
}
