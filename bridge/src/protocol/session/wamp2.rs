//! The WAMP v2 subscriber session, `wamp.2.json` (docs/protocol.md "WAMP v2
//! subscriber"): HELLO → (CHALLENGE ticket → AUTHENTICATE) → WELCOME, then SUBSCRIBE
//! and UNSUBSCRIBE; every other request is refused the WAMP way (ERROR), counted and
//! charged to the error budget; a frame that breaks the protocol, or comes out of
//! order, is answered ABORT and closes with `1007`.
//!
//! The token may come before the upgrade like for every protocol, or as the `ticket`
//! auth method: a WAMP v2 client without a token is let through the upgrade with
//! [`Grant::pending`] and must authenticate before it can subscribe. The ticket is
//! checked by the driver ([`Action::Authenticate`], answered with
//! [`Wamp2Session::authenticated`]); the driver answers before it feeds the next frame,
//! and a frame that comes while a ticket is being checked is out of order.
//!
//! Subscriptions: one id per distinct (pattern, match policy), the same in every
//! session ([`wamp2::subscription_id`]), so the hub frames one EVENT per subscription
//! and shares it. The hub holds a pattern for this session while at least one of the
//! session's subscriptions is on it: [`Action::Subscribe`] when the first one appears,
//! [`Action::Unsubscribe`] when the last one goes, and an [`Action::AddRoute`] or
//! [`Action::RemoveRoute`] for each subscription.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::actions::{closes, refusal, Action, Settings};
use super::budget::ErrorBudget;
use crate::auth::{Denied, Grant};
use crate::protocol::close::Close;
use crate::protocol::wamp2::{self, Match, Message};
use crate::topic::Pattern;

/// The ABORT message of a HELLO that brought no token and does not offer a ticket.
pub const MISSING_TOKEN: &str = "pass a token: ?token=… in the URL, or the ticket auth method";

/// The ABORT message of a message that may not come at this point of the session.
pub const OUT_OF_ORDER: &str = "message not allowed at this point of the session";

/// Where a WAMP v2 session is in its life.
#[derive(Debug)]
enum Phase {
    /// Waiting for HELLO.
    Hello,
    /// CHALLENGE sent, waiting for AUTHENTICATE.
    Challenged { authid: Option<String> },
    /// AUTHENTICATE received, waiting for [`Wamp2Session::authenticated`].
    Authenticating { authid: Option<String> },
    /// WELCOME sent.
    Established,
}

/// One WAMP v2 client's session.
#[derive(Debug)]
pub struct Wamp2Session {
    pub(super) grant: Grant,
    max_subscriptions: usize,
    /// The WAMP session id: random, as WAMP asks, fixed for the connection.
    session_id: u64,
    phase: Phase,
    /// The subscription ids this session holds (what the limit counts).
    subscriptions: HashSet<u64>,
    /// The same subscriptions by pattern: (match policy, id) pairs, never empty. Its
    /// keys are the patterns this session holds in the hub.
    pub(super) routes: HashMap<Pattern, Vec<(Match, u64)>>,
    errors: ErrorBudget,
    pub(super) closed: bool,
}

impl Wamp2Session {
    pub fn new(grant: Grant, settings: &Settings, session_id: u64) -> Self {
        Wamp2Session {
            grant,
            max_subscriptions: settings.max_subscriptions,
            session_id,
            phase: Phase::Hello,
            subscriptions: HashSet::new(),
            routes: HashMap::new(),
            errors: ErrorBudget::default(),
            closed: false,
        }
    }

    /// One client text frame at `now`. Nothing once the session is closed.
    pub fn on_text(&mut self, text: &str, now: Instant) -> Vec<Action> {
        if self.closed {
            return Vec::new();
        }
        let actions = match wamp2::parse(text) {
            Ok(message) => self.handle(message, now),
            Err(violation) => {
                tracing::debug!(%violation, "WAMP v2 protocol violation");
                violation_abort(&violation.to_string())
            }
        };
        self.closed = closes(&actions);
        actions
    }

    fn handle(&mut self, message: Message, now: Instant) -> Vec<Action> {
        match (&mut self.phase, message) {
            (_, Message::Goodbye { .. }) => vec![
                Action::Send(wamp2::goodbye(wamp2::CLOSE_GOODBYE_AND_OUT)),
                Action::Close(Close::Goodbye),
            ],
            (_, Message::Abort { .. }) => vec![Action::Close(Close::ClientAborted)],
            (_, Message::Ignored { .. }) => Vec::new(),
            (
                Phase::Hello,
                Message::Hello {
                    authmethods,
                    authid,
                    ..
                },
            ) => self.hello(&authmethods, authid),
            (Phase::Challenged { authid }, Message::Authenticate { signature }) => {
                let authid = authid.take();
                self.phase = Phase::Authenticating { authid };
                vec![Action::Authenticate(signature)]
            }
            (
                Phase::Established,
                Message::Subscribe {
                    request,
                    topic,
                    match_,
                },
            ) => self.subscribe(request, &topic, match_, now),
            (
                Phase::Established,
                Message::Unsubscribe {
                    request,
                    subscription,
                },
            ) => self.unsubscribe(request, subscription),
            (
                Phase::Established,
                message @ (Message::Publish { .. }
                | Message::Call { .. }
                | Message::Register { .. }
                | Message::Unregister { .. }
                | Message::Invalid { .. }),
            ) => {
                let label = match message {
                    Message::Publish { .. } => "publish",
                    Message::Call { .. } => "call",
                    Message::Register { .. } | Message::Unregister { .. } => "register",
                    _ => "malformed",
                };
                let over_budget = self.errors.spend(now);
                refusal(label, message.refusal(), over_budget)
            }
            (_, other) => {
                tracing::debug!(?other, "WAMP v2 message out of order");
                violation_abort(OUT_OF_ORDER)
            }
        }
    }

    /// HELLO: a client that brought a token is welcomed at once; one that offers the
    /// ticket method is challenged; any other is aborted.
    fn hello(&mut self, authmethods: &[String], authid: Option<String>) -> Vec<Action> {
        if !self.grant.patterns.is_empty() {
            self.phase = Phase::Established;
            let welcome = wamp2::welcome(self.session_id, authid.as_deref(), None);
            return vec![Action::Send(welcome)];
        }
        if authmethods.iter().any(|m| m == wamp2::AUTHMETHOD_TICKET) {
            self.phase = Phase::Challenged { authid };
            return vec![Action::Send(wamp2::challenge_ticket())];
        }
        vec![
            Action::AuthFailed("missing_token"),
            Action::Send(wamp2::abort(
                wamp2::ERROR_AUTHENTICATION_REQUIRED,
                MISSING_TOKEN,
            )),
            Action::Close(Close::AuthAborted),
        ]
    }

    /// The answer to [`Action::Authenticate`]: WELCOME (with `authmethod` ticket) and
    /// the ticket's grant from now on, or ABORT `authentication_denied` and close.
    /// Nothing when no ticket is being checked (or the session is closed).
    pub fn authenticated(&mut self, result: Result<Grant, Denied>) -> Vec<Action> {
        let Phase::Authenticating { authid } = &mut self.phase else {
            return Vec::new();
        };
        if self.closed {
            return Vec::new();
        }
        let authid = authid.take();
        let actions = match result {
            Ok(grant) => {
                self.grant = grant;
                self.phase = Phase::Established;
                vec![Action::Send(wamp2::welcome(
                    self.session_id,
                    authid.as_deref(),
                    Some(wamp2::AUTHMETHOD_TICKET),
                ))]
            }
            Err(denied) => vec![
                Action::AuthFailed(denied.reason()),
                Action::Send(wamp2::abort(
                    wamp2::ERROR_AUTHENTICATION_DENIED,
                    &denied.message(),
                )),
                Action::Close(Close::AuthAborted),
            ],
        };
        self.closed = closes(&actions);
        actions
    }

    /// SUBSCRIBE: a valid URI, a pattern the grant permits, and a free place under the
    /// limit, or ERROR (`invalid_uri`, `not_authorized`). Subscribing again to a
    /// (topic, match) held answers its id and changes nothing.
    fn subscribe(&mut self, request: u64, topic: &str, match_: Match, now: Instant) -> Vec<Action> {
        let pattern = match wamp2::subscription_pattern(topic, match_) {
            Ok(pattern) => pattern,
            Err(_) => return self.refuse_subscribe(request, wamp2::ERROR_INVALID_URI, now),
        };
        // The limit counts subscriptions, and is checked before knowing whether this
        // one is held already: at the limit, even a repeat is refused.
        if !self.grant.permits(&pattern) || self.subscriptions.len() >= self.max_subscriptions {
            return self.refuse_subscribe(request, wamp2::ERROR_NOT_AUTHORIZED, now);
        }
        let id = wamp2::subscription_id(&pattern, match_);
        let mut actions = Vec::with_capacity(3);
        let pairs = self.routes.entry(pattern.clone()).or_default();
        let new_pattern = pairs.is_empty();
        if !pairs.contains(&(match_, id)) {
            pairs.push((match_, id));
            actions.push(Action::AddRoute {
                pattern: pattern.clone(),
                match_,
                id,
            });
        }
        if new_pattern {
            actions.push(Action::Subscribe(vec![pattern]));
        }
        self.subscriptions.insert(id);
        actions.push(Action::Send(wamp2::subscribed(request, id)));
        actions
    }

    fn refuse_subscribe(&mut self, request: u64, uri: &str, now: Instant) -> Vec<Action> {
        let over_budget = self.errors.spend(now);
        let frame = wamp2::error(wamp2::SUBSCRIBE, request, uri);
        refusal("subscribe", Some(frame), over_budget)
    }

    /// UNSUBSCRIBE: UNSUBSCRIBED, or ERROR `no_such_subscription` for an id this
    /// session does not hold (not counted: a client may race its own unsubscribe).
    fn unsubscribe(&mut self, request: u64, id: u64) -> Vec<Action> {
        let held = self
            .subscriptions
            .contains(&id)
            .then(|| {
                self.routes
                    .iter()
                    .find(|(_, pairs)| pairs.iter().any(|&(_, i)| i == id))
                    .map(|(pattern, _)| pattern.clone())
            })
            .flatten();
        let Some(pattern) = held else {
            let frame = wamp2::error(
                wamp2::UNSUBSCRIBE,
                request,
                wamp2::ERROR_NO_SUCH_SUBSCRIPTION,
            );
            return vec![Action::Send(frame)];
        };
        let mut actions = Vec::with_capacity(3);
        let emptied = match self.routes.get_mut(&pattern) {
            Some(pairs) => {
                pairs.retain(|&(_, i)| i != id);
                pairs.is_empty()
            }
            None => false,
        };
        if emptied {
            self.routes.remove(&pattern);
            actions.push(Action::Unsubscribe(vec![pattern.clone()]));
        }
        actions.push(Action::RemoveRoute { pattern, id });
        self.subscriptions.remove(&id);
        actions.push(Action::Send(wamp2::unsubscribed(request)));
        actions
    }

    /// GOODBYE `wamp.close.system_shutdown` when the bridge shuts down an established
    /// session; `None` for every other close.
    pub fn farewell(&self, close: Close) -> Option<String> {
        (close == Close::GoingAway && matches!(self.phase, Phase::Established))
            .then(|| wamp2::goodbye(wamp2::CLOSE_SYSTEM_SHUTDOWN))
    }

    /// Whether this session holds subscription `id`.
    pub fn holds(&self, id: u64) -> bool {
        matches!(self.phase, Phase::Established) && self.subscriptions.contains(&id)
    }
}

/// ABORT `wamp.error.protocol_violation` with `message`, counted as `malformed`, and
/// close with `1007`.
fn violation_abort(message: &str) -> Vec<Action> {
    vec![
        Action::Refused("malformed"),
        Action::Send(wamp2::abort(wamp2::ERROR_PROTOCOL_VIOLATION, message)),
        Action::Close(Close::Wamp2Violation),
    ]
}

#[cfg(test)]
mod tests;
