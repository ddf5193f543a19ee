//! What one client connection's session does with the frames its client sends, as pure
//! state machines (one per WebSocket protocol): a client frame goes in with a clock
//! reading, [`Action`]s come out — frames to send, subscriptions to make or drop in the
//! hub, a close. No sockets, no hub, no awaiting: the driver in `egress/` applies the
//! actions, and answers the two that need the world ([`Action::Resume`] with the
//! replay, [`Action::Authenticate`] with the token's grant) by calling back.
//!
//! Everything a client may do is subscribe and unsubscribe (one way:
//! docs/protocol.md); every other request is refused, counted ([`Action::Refused`]),
//! and more than [`MAX_ERRORS`] bad or refused frames within [`ERROR_WINDOW`] close the
//! session with `1008`.

use std::time::Duration;

use crate::protocol::close::Close;
use crate::protocol::wamp2::Match;
use crate::topic::Pattern;

/// More refused or bad frames than this within [`ERROR_WINDOW`] close with `1008`.
pub const MAX_ERRORS: usize = 10;
pub const ERROR_WINDOW: Duration = Duration::from_secs(60);

/// What a session asks its driver to do, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this text frame. Frames answering one client frame go out ahead of every
    /// event routed while it was handled.
    Send(String),
    /// Route events matching these patterns (new to this session) to it from now on.
    Subscribe(Vec<Pattern>),
    /// Subscribe to `patterns` (new to this session) and answer with
    /// [`ClientSession::resumed`]: the events after the one with id `since` that match
    /// one of `patterns` and none of `already` (the patterns it held before, whose
    /// events it already had live), or `None` when `since` is unknown.
    Resume {
        patterns: Vec<Pattern>,
        already: Vec<Pattern>,
        since: String,
    },
    /// Stop routing events matching these patterns to this session.
    Unsubscribe(Vec<Pattern>),
    /// WAMP v2: frame events matching `pattern` and accepted by `match_` as EVENTs for
    /// subscription `id`. Comes before the `Subscribe` of a pattern new to the session.
    AddRoute {
        pattern: Pattern,
        match_: Match,
        id: u64,
    },
    /// WAMP v2: stop framing events for subscription `id` (EVENTs for it still queued
    /// are dropped too: see [`ClientSession::wants`]). Comes after the `Unsubscribe`
    /// of a pattern left with no subscription.
    RemoveRoute { pattern: Pattern, id: u64 },
    /// WAMP v2: check this ticket as a token and answer with
    /// [`ClientSession::authenticated`].
    Authenticate(String),
    /// Count a refused client action (`push_bridge_refused_client_actions_total`
    /// label: `subscribe`, `publish`, `call`, `register`, `malformed`, `unsupported`,
    /// `binary`).
    Refused(&'static str),
    /// Count a failed authentication (`push_bridge_auth_failures_total` reason).
    AuthFailed(&'static str),
    /// End the session (after sending the frames before this action). Nothing follows
    /// a close.
    Close(Close),
}

/// What every session of a bridge shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `server.max_subscriptions`.
    pub max_subscriptions: usize,
    /// `server.heartbeat` in seconds, announced in the native `welcome`.
    pub heartbeat_secs: u64,
    /// The server's name in the WAMP v1 WELCOME (`push-bridge/<version>`).
    pub server_ident: &'static str,
}
