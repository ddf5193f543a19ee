//! WAMP v2's numbers and names as the router uses them: message type ids, the id
//! range, the auth method, and the error and close reason URIs.

pub(super) const HELLO: u64 = 1;
pub(super) const WELCOME: u64 = 2;
pub(super) const ABORT: u64 = 3;
pub(super) const CHALLENGE: u64 = 4;
pub(super) const AUTHENTICATE: u64 = 5;
pub(super) const GOODBYE: u64 = 6;
pub(super) const ERROR: u64 = 8;
/// Type id of PUBLISH, the `request_type` of an ERROR answering one.
pub const PUBLISH: u64 = 16;
pub(super) const PUBLISHED: u64 = 17;
/// Type id of SUBSCRIBE, the `request_type` of an ERROR answering one.
pub const SUBSCRIBE: u64 = 32;
pub(super) const SUBSCRIBED: u64 = 33;
/// Type id of UNSUBSCRIBE, the `request_type` of an ERROR answering one.
pub const UNSUBSCRIBE: u64 = 34;
pub(super) const UNSUBSCRIBED: u64 = 35;
pub(super) const EVENT: u64 = 36;
/// Type id of CALL, the `request_type` of an ERROR answering one.
pub const CALL: u64 = 48;
pub(super) const CANCEL: u64 = 49;
pub(super) const RESULT: u64 = 50;
/// Type id of REGISTER, the `request_type` of an ERROR answering one.
pub const REGISTER: u64 = 64;
pub(super) const REGISTERED: u64 = 65;
/// Type id of UNREGISTER, the `request_type` of an ERROR answering one.
pub const UNREGISTER: u64 = 66;
pub(super) const UNREGISTERED: u64 = 67;
pub(super) const INVOCATION: u64 = 68;
pub(super) const INTERRUPT: u64 = 69;
pub(super) const YIELD: u64 = 70;

/// The largest WAMP id; ids are integers in [1, 2^53] so that JavaScript holds them
/// exactly.
pub const MAX_ID: u64 = 1 << 53;

/// The only authentication method the router offers; the ticket is a bridge token.
pub const AUTHMETHOD_TICKET: &str = "ticket";

pub const ERROR_NOT_AUTHORIZED: &str = "wamp.error.not_authorized";
pub const ERROR_NO_SUCH_PROCEDURE: &str = "wamp.error.no_such_procedure";
pub const ERROR_NO_SUCH_REGISTRATION: &str = "wamp.error.no_such_registration";
pub const ERROR_NO_SUCH_SUBSCRIPTION: &str = "wamp.error.no_such_subscription";
pub const ERROR_INVALID_URI: &str = "wamp.error.invalid_uri";
pub const ERROR_INVALID_ARGUMENT: &str = "wamp.error.invalid_argument";
pub const ERROR_PROTOCOL_VIOLATION: &str = "wamp.error.protocol_violation";
pub const ERROR_NO_SUCH_REALM: &str = "wamp.error.no_such_realm";
/// ABORT reason: a ticket was given and is not valid.
pub const ERROR_AUTHENTICATION_DENIED: &str = "wamp.error.authentication_denied";
/// ABORT reason: no token anywhere (URL, header, cookie or ticket) and no anonymous access.
pub const ERROR_AUTHENTICATION_REQUIRED: &str = "wamp.error.authentication_required";
/// GOODBYE reason answering a client's GOODBYE.
pub const CLOSE_GOODBYE_AND_OUT: &str = "wamp.close.goodbye_and_out";
/// GOODBYE reason when the bridge drains for shutdown.
pub const CLOSE_SYSTEM_SHUTDOWN: &str = "wamp.close.system_shutdown";
