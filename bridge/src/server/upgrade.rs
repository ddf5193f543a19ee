//! The WebSocket opening handshake (RFC 6455 section 4.2) on an HTTP/1.1 request. The
//! session takes the upgraded connection over itself, so that the hub can write to its
//! socket directly (see `hub::socket_writer`).

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use hyper::upgrade::OnUpgrade;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// A valid upgrade request: its key, and the connection once the `101` has gone out.
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// The upgrade `request` asks for, if it is a valid one (GET, `Connection: upgrade`,
/// `Upgrade: websocket`, version 13, a key, and a connection that can be upgraded).
pub fn take(request: &mut Request) -> Option<Upgrade> {
    let headers = request.headers();
    let valid = request.method() == Method::GET
        && has_token(headers, header::CONNECTION, "upgrade")
        && has_token(headers, header::UPGRADE, "websocket")
        && headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v.as_bytes() == b"13");
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    match (valid, key) {
        (true, Some(key)) => {
            let on_upgrade = request.extensions_mut().remove::<OnUpgrade>()?;
            Some(Upgrade { key, on_upgrade })
        }
        _ => None,
    }
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl Upgrade {
    /// The `101 Switching Protocols` answer (with the chosen subprotocol, if any) and
    /// the upgraded connection, which resolves once the answer has been written.
    pub fn accept(self, protocol: Option<&'static str>) -> (Response, OnUpgrade) {
        let mut response = Response::new(axum::body::Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(self.key.as_bytes())) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(protocol) = protocol {
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(protocol),
            );
        }
        (response, self.on_upgrade)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(Method::GET).uri("/");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(axum::body::Body::empty()).unwrap();
        // Stands in for what hyper puts on a request whose connection can upgrade.
        let on_upgrade = hyper::upgrade::on(axum::http::Request::new(()));
        request.extensions_mut().insert(on_upgrade);
        request
    }

    const VALID: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn a_valid_request_is_answered_with_the_rfc_accept_key() {
        let upgrade = take(&mut request(&VALID)).expect("valid");
        let (response, _) = upgrade.accept(Some("wamp"));
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        let headers = response.headers();
        // The example of RFC 6455 section 1.3.
        assert_eq!(
            headers[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(headers[header::SEC_WEBSOCKET_PROTOCOL], "wamp");
    }

    #[test]
    fn anything_else_is_not_an_upgrade() {
        for missing in 0..VALID.len() {
            let headers: Vec<_> = VALID
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != missing)
                .map(|(_, h)| *h)
                .collect();
            assert!(take(&mut request(&headers)).is_none(), "without {missing}");
        }
        let mut old = VALID;
        old[2] = ("sec-websocket-version", "8");
        assert!(take(&mut request(&old)).is_none());
    }
}
