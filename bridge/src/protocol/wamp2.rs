//! WAMP v2, `wamp.2.json`, subscriber role only (docs/protocol.md "WAMP v2 subscriber";
//! WAMP's Basic Profile): the codec a session uses to let npm `autobahn` clients
//! subscribe. The bridge is a broker that accepts no publications, calls or
//! registrations.
//!
//! Client frames in → [`Message`], or a [`ProtocolViolation`] on which the session
//! sends [`abort`] with [`ERROR_PROTOCOL_VIOLATION`] and closes. The session owns the
//! state: HELLO → ([`challenge_ticket`] → AUTHENTICATE) → [`welcome`] or [`abort`];
//! a second HELLO, or anything but HELLO/ABORT before WELCOME, is its violation to
//! report. Messages the broker always refuses carry their ERROR in
//! [`Message::refusal`]. Topic URIs become patterns in [`uri`] (the mapping and the
//! match policies are documented there).
//!
//! Frames are JSON arrays whose element 0 is the integer type id; every element the
//! message layout names is required and type-checked, elements after them (a
//! PUBLISH's or CALL's Args and Kw) are ignored. Ids are integers in [1, 2^53].
//! Frames out are compact JSON; empty Args/Kw are omitted, except that EVENT always
//! carries its data as `Args[0]`, where AutobahnJS hands it to the handler.

mod frames;
pub mod uri;
mod vocabulary;

pub use frames::{
    abort, challenge_ticket, error, event, goodbye, subscribed, unsubscribed, welcome,
};
pub use uri::{accepts, subscription_pattern, topic_uri, Match, UriError, URI_SEPARATOR};
use vocabulary::{
    ABORT, AUTHENTICATE, CANCEL, CHALLENGE, ERROR, EVENT, GOODBYE, HELLO, INTERRUPT, INVOCATION,
    PUBLISHED, REGISTERED, RESULT, SUBSCRIBED, UNREGISTERED, UNSUBSCRIBED, WELCOME, YIELD,
};
pub use vocabulary::{
    AUTHMETHOD_TICKET, CALL, CLOSE_GOODBYE_AND_OUT, CLOSE_SYSTEM_SHUTDOWN,
    ERROR_AUTHENTICATION_DENIED, ERROR_AUTHENTICATION_REQUIRED, ERROR_INVALID_ARGUMENT,
    ERROR_INVALID_URI, ERROR_NOT_AUTHORIZED, ERROR_NO_SUCH_PROCEDURE, ERROR_NO_SUCH_REALM,
    ERROR_NO_SUCH_REGISTRATION, ERROR_NO_SUCH_SUBSCRIPTION, ERROR_PROTOCOL_VIOLATION, MAX_ID,
    PUBLISH, REGISTER, SUBSCRIBE, UNREGISTER, UNSUBSCRIBE,
};

use std::hash::{Hash, Hasher};

use serde_json::{Map, Value};

use super::{excerpt, kind, shown};
use crate::topic::Pattern;

/// One client message the router acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `[1, realm, details]`: opens the session. Which realms exist, and what a missing
    /// or unsupported `authmethods` leads to, is the session's call.
    Hello {
        realm: String,
        authmethods: Vec<String>,
        authid: Option<String>,
    },
    /// `[5, signature, extra]`: the ticket, answering [`challenge_ticket`].
    Authenticate { signature: String },
    /// `[32, request, options, topic]`; `topic` is the URI as sent, checked and mapped
    /// by [`subscription_pattern`].
    Subscribe {
        request: u64,
        topic: String,
        match_: Match,
    },
    /// `[34, request, subscription]`.
    Unsubscribe { request: u64, subscription: u64 },
    /// `[16, request, options, topic, …]`: refused; answered only if `acknowledge`.
    Publish { request: u64, acknowledge: bool },
    /// `[48, request, options, procedure, …]`: refused, the bridge serves no procedures.
    Call { request: u64 },
    /// `[64, request, options, procedure]`: refused, clients may not be callees.
    Register { request: u64 },
    /// `[66, request, registration]`: refused, there are no registrations.
    Unregister { request: u64 },
    /// `[6, details, reason]`: the client leaves; answer [`goodbye`] with
    /// [`CLOSE_GOODBYE_AND_OUT`] (unless the router said GOODBYE first) and close.
    /// Any reason is accepted (AutobahnJS sends `wamp.close.normal` or its own
    /// spelling of goodbye-and-out).
    Goodbye { reason: String },
    /// `[3, details, reason]`: the client gives up (e.g. it cannot answer a
    /// CHALLENGE); never answered, close.
    Abort { reason: String },
    /// A well-formed request with an option the bridge does not support (a SUBSCRIBE
    /// whose `match` is not `exact`, `prefix` or `wildcard`): answered with ERROR
    /// [`ERROR_INVALID_ARGUMENT`], the session goes on. `reason` is for the log.
    Invalid {
        request_type: u64,
        request: u64,
        reason: String,
    },
    /// CANCEL, YIELD or a client ERROR: about a CALL the router has already refused,
    /// or answering an INVOCATION it never sends. Dropped without checking the rest of
    /// the frame: there is nothing left to answer, and aborting would punish a client
    /// for a race it cannot avoid (a CANCEL crossing our ERROR).
    Ignored { name: &'static str },
}

impl Message {
    /// The ERROR frame answering a request the broker-only router always refuses:
    /// PUBLISH with `acknowledge` and REGISTER (`not_authorized`), CALL
    /// (`no_such_procedure`), UNREGISTER (`no_such_registration`) and
    /// [`Message::Invalid`] (`invalid_argument`). `None` for every other message,
    /// including a PUBLISH without `acknowledge`, which is dropped silently.
    pub fn refusal(&self) -> Option<String> {
        match *self {
            Message::Publish {
                request,
                acknowledge: true,
            } => Some(error(PUBLISH, request, ERROR_NOT_AUTHORIZED)),
            Message::Call { request } => Some(error(CALL, request, ERROR_NO_SUCH_PROCEDURE)),
            Message::Register { request } => Some(error(REGISTER, request, ERROR_NOT_AUTHORIZED)),
            Message::Unregister { request } => {
                Some(error(UNREGISTER, request, ERROR_NO_SUCH_REGISTRATION))
            }
            Message::Invalid {
                request_type,
                request,
                ..
            } => Some(error(request_type, request, ERROR_INVALID_ARGUMENT)),
            _ => None,
        }
    }
}

/// A frame that is not JSON, not an array, has a missing, unknown or router-only type
/// id, or lacks an element its layout requires or has one of the wrong type. The
/// session answers ABORT [`ERROR_PROTOCOL_VIOLATION`] with this text as its message,
/// and closes.
pub use super::ProtocolViolation;

/// Maps any 64 random bits onto a valid WAMP id, uniformly: the session uses it for
/// session, subscription and publication ids.
pub fn id_from_random(bits: u64) -> u64 {
    (bits & (MAX_ID - 1)) + 1
}

/// The subscription id of (`pattern`, `match_`): the same in every session and every
/// run (a hash mapped onto WAMP's id range), so the hub frames one EVENT per
/// subscription and shares it between the sessions holding it.
pub fn subscription_id(pattern: &Pattern, match_: Match) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    pattern.as_str().hash(&mut hasher);
    match_.as_str().hash(&mut hasher);
    id_from_random(hasher.finish())
}

/// Parses one client text frame.
pub fn parse(text: &str) -> Result<Message, ProtocolViolation> {
    let (type_id, elements) = super::wamp_message(text)?;
    let Some(name) = type_name(type_id) else {
        return Err(ProtocolViolation(format!(
            "unknown message type id {type_id}"
        )));
    };
    let frame = Frame {
        name,
        elements: &elements,
    };
    match type_id {
        HELLO => {
            let realm = frame.string(1, "realm")?.to_owned();
            let details = frame.dict(2, "details")?;
            Ok(Message::Hello {
                realm,
                authmethods: frame.authmethods(details)?,
                authid: frame.optional_string(details, "authid")?,
            })
        }
        AUTHENTICATE => {
            let signature = frame.string(1, "signature")?.to_owned();
            frame.dict(2, "extra")?;
            Ok(Message::Authenticate { signature })
        }
        SUBSCRIBE => {
            let request = frame.id(1, "request id")?;
            let options = frame.dict(2, "options")?;
            let topic = frame.string(3, "topic")?.to_owned();
            let match_ = match options.get("match") {
                None | Some(Value::Null) => Match::Exact,
                Some(Value::String(name)) => match Match::from_name(name) {
                    Some(match_) => match_,
                    None => return Ok(invalid_match(request, &format!("is {}", excerpt(name)))),
                },
                Some(other) => return Ok(invalid_match(request, &format!("is {}", kind(other)))),
            };
            Ok(Message::Subscribe {
                request,
                topic,
                match_,
            })
        }
        UNSUBSCRIBE => Ok(Message::Unsubscribe {
            request: frame.id(1, "request id")?,
            subscription: frame.id(2, "subscription id")?,
        }),
        PUBLISH => {
            let request = frame.id(1, "request id")?;
            let options = frame.dict(2, "options")?;
            frame.string(3, "topic")?;
            Ok(Message::Publish {
                request,
                acknowledge: options.get("acknowledge") == Some(&Value::Bool(true)),
            })
        }
        CALL | REGISTER => {
            let request = frame.id(1, "request id")?;
            frame.dict(2, "options")?;
            frame.string(3, "procedure")?;
            Ok(if type_id == CALL {
                Message::Call { request }
            } else {
                Message::Register { request }
            })
        }
        UNREGISTER => {
            let request = frame.id(1, "request id")?;
            frame.id(2, "registration id")?;
            Ok(Message::Unregister { request })
        }
        GOODBYE | ABORT => {
            frame.dict(1, "details")?;
            let reason = frame.string(2, "reason")?.to_owned();
            Ok(if type_id == GOODBYE {
                Message::Goodbye { reason }
            } else {
                Message::Abort { reason }
            })
        }
        CANCEL | YIELD | ERROR => Ok(Message::Ignored { name }),
        _ => Err(ProtocolViolation(format!(
            "{name} (type id {type_id}) is sent by routers, not clients"
        ))),
    }
}

fn invalid_match(request: u64, what: &str) -> Message {
    Message::Invalid {
        request_type: SUBSCRIBE,
        request,
        reason: format!(
            "SUBSCRIBE: the match option {what}; supported: \"exact\", \"prefix\", \"wildcard\""
        ),
    }
}

/// The name of every type id WAMP v2 defines, `None` for the others.
fn type_name(type_id: u64) -> Option<&'static str> {
    Some(match type_id {
        HELLO => "HELLO",
        WELCOME => "WELCOME",
        ABORT => "ABORT",
        CHALLENGE => "CHALLENGE",
        AUTHENTICATE => "AUTHENTICATE",
        GOODBYE => "GOODBYE",
        ERROR => "ERROR",
        PUBLISH => "PUBLISH",
        PUBLISHED => "PUBLISHED",
        SUBSCRIBE => "SUBSCRIBE",
        SUBSCRIBED => "SUBSCRIBED",
        UNSUBSCRIBE => "UNSUBSCRIBE",
        UNSUBSCRIBED => "UNSUBSCRIBED",
        EVENT => "EVENT",
        CALL => "CALL",
        CANCEL => "CANCEL",
        RESULT => "RESULT",
        REGISTER => "REGISTER",
        REGISTERED => "REGISTERED",
        UNREGISTER => "UNREGISTER",
        UNREGISTERED => "UNREGISTERED",
        INVOCATION => "INVOCATION",
        INTERRUPT => "INTERRUPT",
        YIELD => "YIELD",
        _ => return None,
    })
}

/// A parsed array and its message name, for typed element access with reasons.
struct Frame<'a> {
    name: &'static str,
    elements: &'a [Value],
}

impl<'a> Frame<'a> {
    fn element(&self, index: usize, what: &str) -> Result<&'a Value, ProtocolViolation> {
        self.elements.get(index).ok_or_else(|| {
            ProtocolViolation(format!(
                "{} is missing its {what} (element {index})",
                self.name
            ))
        })
    }

    fn wrong_type(
        &self,
        index: usize,
        what: &str,
        expected: &str,
        got: String,
    ) -> ProtocolViolation {
        ProtocolViolation(format!(
            "{}: the {what} (element {index}) must be {expected}, got {got}",
            self.name
        ))
    }

    fn string(&self, index: usize, what: &str) -> Result<&'a str, ProtocolViolation> {
        match self.element(index, what)? {
            Value::String(s) => Ok(s),
            other => Err(self.wrong_type(index, what, "a string", kind(other).to_string())),
        }
    }

    fn dict(&self, index: usize, what: &str) -> Result<&'a Map<String, Value>, ProtocolViolation> {
        match self.element(index, what)? {
            Value::Object(map) => Ok(map),
            other => Err(self.wrong_type(index, what, "an object", kind(other).to_string())),
        }
    }

    fn id(&self, index: usize, what: &str) -> Result<u64, ProtocolViolation> {
        let value = self.element(index, what)?;
        match value.as_u64() {
            Some(id @ 1..=MAX_ID) => Ok(id),
            _ => Err(self.wrong_type(index, what, "an integer from 1 to 2^53", shown(value))),
        }
    }

    /// `details.<key>`: absent or `null` → `None`, a string → it, else a violation.
    fn optional_string(
        &self,
        details: &Map<String, Value>,
        key: &str,
    ) -> Result<Option<String>, ProtocolViolation> {
        match details.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ProtocolViolation(format!(
                "{}: details.{key} must be a string, got {}",
                self.name,
                kind(other)
            ))),
        }
    }

    /// HELLO `details.authmethods`: absent or `null` → none, else a list of strings.
    fn authmethods(&self, details: &Map<String, Value>) -> Result<Vec<String>, ProtocolViolation> {
        let bad = |got: &Value| {
            ProtocolViolation(format!(
                "{}: details.authmethods must be a list of strings, got {}",
                self.name,
                kind(got)
            ))
        };
        match details.get("authmethods") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(methods)) => methods
                .iter()
                .map(|m| m.as_str().map(str::to_owned).ok_or_else(|| bad(m)))
                .collect(),
            Some(other) => Err(bad(other)),
        }
    }
}

#[cfg(test)]
mod tests;
