//! Where a client's token is found (docs/protocol.md "Authentication"), first found
//! wins: the `token` query parameter, `Authorization: Bearer`, a `bearer.<token>`
//! WebSocket subprotocol entry, a configured cookie. Pure: request parts in,
//! candidate tokens out.

use axum::http::{header, HeaderMap};

/// What the request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// No token anywhere.
    Missing,
    /// Something was there but cannot be a token (e.g. `Authorization: Basic …`, an
    /// empty value, a token over [`MAX_TOKEN_BYTES`]).
    Malformed(&'static str),
    /// One or two spellings of the token to try, in order (the query parameter's
    /// form-decoding and its literal `+` form).
    Token(Vec<String>),
}

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The subprotocol prefix that carries a token.
pub const BEARER_SUBPROTOCOL_PREFIX: &str = "bearer.";

/// Finds the token in a request's query string and headers.
pub fn find(query: Option<&str>, headers: &HeaderMap, cookie_name: Option<&str>) -> Presented {
    if let Some(found) = query.and_then(from_query) {
        return found;
    }
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let Ok(value) = value.to_str() else {
            return Presented::Malformed("Authorization header is not ASCII");
        };
        let mut parts = value.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or_default();
        let token = parts.next().unwrap_or_default().trim();
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Presented::Malformed("Authorization header is not `Bearer <token>`");
        }
        return single(token.to_string());
    }
    for offered in subprotocols(headers) {
        if let Some(token) = offered.strip_prefix(BEARER_SUBPROTOCOL_PREFIX) {
            return single(token.to_string());
        }
    }
    if let Some(name) = cookie_name {
        if let Some(token) = cookie(headers, name) {
            return single(token);
        }
    }
    Presented::Missing
}

/// The entries of `Sec-WebSocket-Protocol`, in the client's order.
pub fn subprotocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn single(token: String) -> Presented {
    check(vec![token])
}

fn check(candidates: Vec<String>) -> Presented {
    if candidates.iter().all(String::is_empty) {
        return Presented::Malformed("the token is empty");
    }
    if candidates.iter().any(|c| c.len() > MAX_TOKEN_BYTES) {
        return Presented::Malformed("the token is longer than 8 KiB");
    }
    Presented::Token(candidates)
}

/// The last `token` parameter wins (as PHP's `parse_str`, which Superdesk used). Some
/// clients append the token unencoded, so both the form-decoding (`+` → space) and
/// the literal form (`+` kept, `%XX` decoded) are candidates.
fn from_query(query: &str) -> Option<Presented> {
    let raw = query
        .split('&')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name == "token").then_some(value)
        })
        .next_back()?;
    let form: String = form_urlencoded::parse(format!("t={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let literal = percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned();
    let mut candidates = vec![form];
    if literal != candidates[0] {
        candidates.push(literal);
    }
    Some(check(candidates))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(v.trim_matches('"'))
                .decode_utf8_lossy()
                .into_owned()
        })
}

/// The query string with the value of every `token` parameter replaced, for logs.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("token", _)) => "token=REDACTED".to_string(),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn tokens(v: &[&str]) -> Presented {
        Presented::Token(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn query_token_in_both_decodings() {
        let none = HeaderMap::new();
        assert_eq!(find(Some("token=abc"), &none, None), tokens(&["abc"]));
        assert_eq!(
            find(Some("token=a+b%2Fc"), &none, None),
            tokens(&["a b/c", "a+b/c"])
        );
        assert_eq!(find(Some("token=a%2Bb"), &none, None), tokens(&["a+b"]));
        assert_eq!(
            find(Some("x=1&token=first&token=last"), &none, None),
            tokens(&["last"])
        );
        assert_eq!(find(Some("x=1"), &none, None), Presented::Missing);
        assert!(matches!(
            find(Some("token="), &none, None),
            Presented::Malformed(_)
        ));
    }

    #[test]
    fn query_wins_over_header_then_subprotocol_then_cookie() {
        let all = headers(&[
            ("authorization", "Bearer from-header"),
            ("sec-websocket-protocol", "wamp, bearer.from-subprotocol"),
            ("cookie", "a=1; session=from-cookie"),
        ]);
        assert_eq!(find(Some("token=q"), &all, Some("session")), tokens(&["q"]));
        assert_eq!(find(None, &all, Some("session")), tokens(&["from-header"]));
        let no_auth = headers(&[
            ("sec-websocket-protocol", "wamp, bearer.from-subprotocol"),
            ("cookie", "a=1; session=from-cookie"),
        ]);
        assert_eq!(
            find(None, &no_auth, Some("session")),
            tokens(&["from-subprotocol"])
        );
        let cookie_only = headers(&[("cookie", "a=1; session=from-cookie")]);
        assert_eq!(
            find(None, &cookie_only, Some("session")),
            tokens(&["from-cookie"])
        );
        assert_eq!(find(None, &cookie_only, None), Presented::Missing);
    }

    #[test]
    fn garbage_authorization_is_malformed() {
        for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "token"] {
            let h = headers(&[("authorization", value)]);
            assert!(
                matches!(find(None, &h, None), Presented::Malformed(_)),
                "{value}"
            );
        }
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        assert!(matches!(find(None, &h, None), Presented::Malformed(_)));
    }

    #[test]
    fn oversized_tokens_are_malformed() {
        let big = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(
            find(Some(&format!("token={big}")), &HeaderMap::new(), None),
            Presented::Malformed(_)
        ));
        let ok = "a".repeat(MAX_TOKEN_BYTES);
        assert_eq!(
            find(Some(&format!("token={ok}")), &HeaderMap::new(), None),
            tokens(&[&ok])
        );
    }

    #[test]
    fn redaction_hides_every_token_parameter() {
        assert_eq!(
            redact_query("a=1&token=s3cret&token=x"),
            "a=1&token=REDACTED&token=REDACTED"
        );
        assert_eq!(redact_query("topic=a"), "topic=a");
    }
}
