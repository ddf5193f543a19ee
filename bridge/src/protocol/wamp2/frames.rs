//! The frames a WAMP v2 router sends (WAMP's Basic Profile), as compact JSON
//! text built directly: every one is a fixed layout of integers and escaped strings, and
//! EVENT embeds the event's JSON text as it is, so no frame is built through a `Value`.
//! Empty Args/Kw are omitted, except EVENT's `[data]`, where AutobahnJS expects it.

use crate::protocol::json_string;

use super::vocabulary::{
    ABORT, AUTHMETHOD_TICKET, CHALLENGE, ERROR, EVENT, GOODBYE, SUBSCRIBED, UNSUBSCRIBED, WELCOME,
};

/// The broker features WELCOME announces: AutobahnJS reads `roles.broker` unguarded.
const ROLES: &str = r#"{"broker":{"features":{"pattern_based_subscription":true}}}"#;

/// WELCOME `[2,<session>,{"roles":{"broker":{"features":{"pattern_based_subscription":true}}},…}]`.
///
/// `authid` is added when given. `authmethod` (e.g. [`AUTHMETHOD_TICKET`]) is given when
/// the client authenticated through WAMP; the details then also carry
/// `"authrole":"subscriber"` and `"authprovider":"push-bridge"`, as the ticket
/// specification's WELCOME does.
pub fn welcome(session: u64, authid: Option<&str>, authmethod: Option<&str>) -> String {
    let mut frame = format!("[{WELCOME},{session},{{\"roles\":{ROLES}");
    if let Some(authid) = authid {
        frame.push_str(",\"authid\":");
        frame.push_str(&json_string(authid));
    }
    if let Some(authmethod) = authmethod {
        frame.push_str(",\"authrole\":\"subscriber\",\"authmethod\":");
        frame.push_str(&json_string(authmethod));
        frame.push_str(",\"authprovider\":\"push-bridge\"");
    }
    frame.push_str("}]");
    frame
}

/// CHALLENGE `[4,"ticket",{}]`: asks for the token as a ticket.
pub fn challenge_ticket() -> String {
    format!("[{CHALLENGE},{},{{}}]", json_string(AUTHMETHOD_TICKET))
}

/// ABORT `[3,{"message":"<message>"},"<reason>"]`; the session closes after it.
pub fn abort(reason: &str, message: &str) -> String {
    format!(
        "[{ABORT},{{\"message\":{}}},{}]",
        json_string(message),
        json_string(reason)
    )
}

/// GOODBYE `[6,{},"<reason>"]`.
pub fn goodbye(reason: &str) -> String {
    format!("[{GOODBYE},{{}},{}]", json_string(reason))
}

/// SUBSCRIBED `[33,<request>,<subscription>]`.
pub fn subscribed(request: u64, subscription: u64) -> String {
    format!("[{SUBSCRIBED},{request},{subscription}]")
}

/// UNSUBSCRIBED `[35,<request>]`.
pub fn unsubscribed(request: u64) -> String {
    format!("[{UNSUBSCRIBED},{request}]")
}

/// ERROR `[8,<request type>,<request>,{},"<error uri>"]`.
pub fn error(request_type: u64, request: u64, uri: &str) -> String {
    format!(
        "[{ERROR},{request_type},{request},{{}},{}]",
        json_string(uri)
    )
}

/// EVENT `[36,<subscription>,<publication>,<details>,[<data>]]`. `details` is
/// `{"topic":"<uri>"}` for prefix and wildcard subscriptions (WAMP requires the
/// concrete topic there; pass [`topic_uri`](super::topic_uri)) and `{}` for exact ones (`None`).
/// `data_json` is the event's compact JSON text, embedded as it is.
pub fn event(
    subscription: u64,
    publication: u64,
    topic_uri: Option<&str>,
    data_json: &str,
) -> String {
    let topic = topic_uri.map(json_string);
    let topic_len = topic.as_ref().map_or(0, String::len);
    let mut frame = format!("[{EVENT},{subscription},{publication},");
    frame.reserve(16 + topic_len + data_json.len());
    match topic {
        Some(topic) => {
            frame.push_str("{\"topic\":");
            frame.push_str(&topic);
            frame.push('}');
        }
        None => frame.push_str("{}"),
    }
    frame.push_str(",[");
    frame.push_str(data_json);
    frame.push_str("]]");
    frame
}
