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
//!
//! One machine per protocol: [`NativeSession`] (`push-bridge.v1`), [`Wamp1Session`]
//! (`wamp`), [`Wamp2Session`] (`wamp.2.json`); the driver holds a [`ClientSession`],
//! one of the three. Each answer is a list of actions in the order to apply them; a
//! [`Action::Close`] is always the last one, and a closed machine answers every later
//! call with no action at all (the driver stops feeding it anyway).
//!
//! Thousands of idle sessions each hold one machine, so a machine allocates nothing
//! until its client asks for something: the error budget's queue, the subscription
//! sets and the WAMP v1 prefixes start empty.

use std::collections::{hash_map, hash_set};
use std::time::Instant;

use crate::auth::{Denied, Grant};
use crate::event::SharedEvent;
use crate::protocol::close::Close;
use crate::protocol::wamp2::Match;
use crate::protocol::Protocol;
use crate::topic::Pattern;

mod actions;
mod budget;
pub mod native;
pub mod wamp1;
pub mod wamp2;

pub use actions::{Action, Settings};
pub use budget::{ERROR_WINDOW, MAX_ERRORS};
pub use native::NativeSession;
pub use wamp1::Wamp1Session;
pub use wamp2::Wamp2Session;

/// One client connection's session, whichever protocol it speaks: what the driver in
/// `egress/` holds and feeds.
#[derive(Debug)]
pub enum ClientSession {
    Native(NativeSession),
    Wamp1(Wamp1Session),
    Wamp2(Wamp2Session),
}

impl ClientSession {
    /// A new session for a connection speaking `protocol`; `None` for
    /// [`Protocol::Sse`], which is not a WebSocket session (an SSE stream has no client
    /// frames: its subscriptions are the request's).
    ///
    /// `grant`: the token's grant from the upgrade ([`Grant::pending`] for a WAMP v2
    /// client that will authenticate by ticket). `name`: the session name the native
    /// and WAMP v1 welcome frames show (16 hex digits). `wamp2_session`: the WAMP v2
    /// session id, already in WAMP's id range ([`crate::protocol::wamp2::id_from_random`]).
    pub fn new(
        protocol: Protocol,
        grant: Grant,
        settings: &Settings,
        name: String,
        wamp2_session: u64,
    ) -> Option<ClientSession> {
        Some(match protocol {
            Protocol::Native => ClientSession::Native(NativeSession::new(grant, settings, name)),
            Protocol::Wamp1 => ClientSession::Wamp1(Wamp1Session::new(grant, settings, name)),
            Protocol::Wamp2 => {
                ClientSession::Wamp2(Wamp2Session::new(grant, settings, wamp2_session))
            }
            Protocol::Sse => return None,
        })
    }

    /// The protocol this session speaks.
    pub fn protocol(&self) -> Protocol {
        match self {
            ClientSession::Native(_) => Protocol::Native,
            ClientSession::Wamp1(_) => Protocol::Wamp1,
            ClientSession::Wamp2(_) => Protocol::Wamp2,
        }
    }

    /// The frames sent when the connection opens: the native `welcome` (name,
    /// heartbeat) or the WAMP v1 WELCOME (name, server ident); none for WAMP v2, whose
    /// client speaks first. Call it once: the session name is not kept afterwards.
    pub fn opened(&mut self) -> Vec<Action> {
        match self {
            ClientSession::Native(session) => session.opened(),
            ClientSession::Wamp1(session) => session.opened(),
            ClientSession::Wamp2(_) => Vec::new(),
        }
    }

    /// One text frame from the client, at `now` (the error budget's clock).
    pub fn on_text(&mut self, text: &str, now: Instant) -> Vec<Action> {
        match self {
            ClientSession::Native(session) => session.on_text(text, now),
            ClientSession::Wamp1(session) => session.on_text(text, now),
            ClientSession::Wamp2(session) => session.on_text(text, now),
        }
    }

    /// A binary frame from the client: refused (`binary`) and closed with `1003`, in
    /// every protocol.
    pub fn on_binary(&mut self) -> Vec<Action> {
        let closed = match self {
            ClientSession::Native(session) => &mut session.closed,
            ClientSession::Wamp1(session) => &mut session.closed,
            ClientSession::Wamp2(session) => &mut session.closed,
        };
        if *closed {
            return Vec::new();
        }
        *closed = true;
        vec![Action::Refused("binary"), Action::Close(Close::Binary)]
    }

    /// The answer to [`Action::Resume`]: the replay, or `None` when `since` was not
    /// recoverable. Returns the native `subscribed` frame (with `recovered`), then one
    /// `event` frame per replayed event; nothing when no resume is pending.
    pub fn resumed(&mut self, replay: Option<Vec<SharedEvent>>) -> Vec<Action> {
        match self {
            ClientSession::Native(session) => session.resumed(replay),
            ClientSession::Wamp1(_) | ClientSession::Wamp2(_) => Vec::new(),
        }
    }

    /// The answer to [`Action::Authenticate`]: the ticket's grant, or why it was
    /// denied. Nothing when no ticket is being checked.
    pub fn authenticated(&mut self, result: Result<Grant, Denied>) -> Vec<Action> {
        match self {
            ClientSession::Wamp2(session) => session.authenticated(result),
            ClientSession::Native(_) | ClientSession::Wamp1(_) => Vec::new(),
        }
    }

    /// What to send before the close frame when the bridge closes the session with
    /// `close`: GOODBYE `wamp.close.system_shutdown` for [`Close::GoingAway`] on an
    /// established WAMP v2 session; `None` otherwise.
    pub fn farewell(&self, close: Close) -> Option<String> {
        match self {
            ClientSession::Wamp2(session) => session.farewell(close),
            ClientSession::Native(_) | ClientSession::Wamp1(_) => None,
        }
    }

    /// Whether a queued event frame for WAMP v2 subscription `subscription` may still
    /// be written: only while the session holds it (AutobahnJS drops the connection on
    /// an EVENT for a subscription it no longer has). `0` marks a frame that is not a
    /// WAMP v2 EVENT: always wanted.
    pub fn wants(&self, subscription: u64) -> bool {
        subscription == 0
            || match self {
                ClientSession::Wamp2(session) => session.holds(subscription),
                ClientSession::Native(_) | ClientSession::Wamp1(_) => false,
            }
    }

    /// Who the client is: the grant from the upgrade, or from its WAMP v2 ticket.
    pub fn grant(&self) -> &Grant {
        match self {
            ClientSession::Native(session) => &session.grant,
            ClientSession::Wamp1(session) => &session.grant,
            ClientSession::Wamp2(session) => &session.grant,
        }
    }

    /// Every pattern this session holds in the hub (each was given in a
    /// [`Action::Subscribe`] or [`Action::Resume`] and not yet in an
    /// [`Action::Unsubscribe`]): what the driver unsubscribes when the session ends.
    pub fn patterns(&self) -> Patterns<'_> {
        match self {
            ClientSession::Native(session) => Patterns::Set(session.subscriptions.iter()),
            ClientSession::Wamp1(session) => Patterns::Set(session.subscriptions.iter()),
            ClientSession::Wamp2(session) => Patterns::Routes(session.routes.keys()),
        }
    }
}

/// The patterns a session holds, in no particular order ([`ClientSession::patterns`]).
#[derive(Debug, Clone)]
pub enum Patterns<'a> {
    Set(hash_set::Iter<'a, Pattern>),
    Routes(hash_map::Keys<'a, Pattern, Vec<(Match, u64)>>),
}

impl<'a> Iterator for Patterns<'a> {
    type Item = &'a Pattern;

    fn next(&mut self) -> Option<&'a Pattern> {
        match self {
            Patterns::Set(patterns) => patterns.next(),
            Patterns::Routes(patterns) => patterns.next(),
        }
    }
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
