//! What a session state machine asks its driver to do ([`Action`]), what every session
//! shares ([`Settings`]), and the shapes of answers all three protocols give (a
//! refusal, a close).

use crate::protocol::close::Close;
use crate::protocol::wamp2::Match;
use crate::topic::Pattern;

/// What a session asks its driver to do, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this text frame. Frames answering one client frame go out ahead of every
    /// event routed while it was handled.
    Send(String),
    /// Route events matching these patterns (new to this session) to it from now on.
    Subscribe(Vec<Pattern>),
    /// Subscribe to `patterns` (new to this session) and answer with
    /// `ClientSession::resumed`: the events after the one with id `since` that match
    /// one of `patterns` and none of `already` (the patterns it held before, whose
    /// events it already had live), or `None` when `since` is unknown. `patterns` is
    /// empty when the client held them all: `since` still decides `recovered`.
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
    /// are dropped too: see `ClientSession::wants`). Comes after the `Unsubscribe`
    /// of a pattern left with no subscription.
    RemoveRoute { pattern: Pattern, id: u64 },
    /// WAMP v2: check this ticket as a token and answer with
    /// `ClientSession::authenticated`.
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

/// The actions of a refusal: count it, send the frame that says so (if the protocol
/// has one), and close with `1008` when it exhausted the error budget.
pub(super) fn refusal(
    label: &'static str,
    frame: Option<String>,
    over_budget: bool,
) -> Vec<Action> {
    let mut actions = vec![Action::Refused(label)];
    actions.extend(frame.map(Action::Send));
    if over_budget {
        actions.push(Action::Close(Close::TooManyErrors));
    }
    actions
}

/// Whether an answer ends the session (a close is always its last action).
pub(super) fn closes(actions: &[Action]) -> bool {
    matches!(actions.last(), Some(Action::Close(_)))
}
