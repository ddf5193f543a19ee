//! Server-Sent Events framing (docs/protocol.md "Server-Sent Events"): each event as
//! `id: <event id>` and one `data:` line holding the native `event` frame's JSON.
//! Event ids are printable ASCII and the JSON is compact, so neither holds a newline.

/// One event: `id:` and `data:` lines, then the blank line that ends it.
pub fn event(id: &str, native_frame: &str) -> String {
    format!("id: {id}\ndata: {native_frame}\n\n")
}

/// Sent first when `Last-Event-ID` could not be resumed: the client must refetch. The
/// empty `id:` clears the client's last event id, so a reconnect before the next event
/// does not ask for the unknown id again.
pub fn reset() -> &'static str {
    "id:\nevent: reset\ndata: {}\n\n"
}

/// A comment line that keeps proxies from closing an idle stream.
pub fn heartbeat() -> &'static str {
    ": heartbeat\n\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(
            event("1-2", r#"{"type":"event"}"#),
            "id: 1-2\ndata: {\"type\":\"event\"}\n\n"
        );
        assert!(reset().contains("\nevent: reset\n"));
        assert!(reset().starts_with("id:\n"));
        assert!(heartbeat().starts_with(':'));
    }
}
