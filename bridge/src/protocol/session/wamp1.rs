//! The WAMP v1 session, `wamp` (docs/protocol.md "WAMP v1"), as Ratchet served
//! autobahn.js 0.8 and Superdesk's client: WELCOME on open; PREFIX recorded;
//! SUBSCRIBE and UNSUBSCRIBE with CURIEs expanded. WAMP v1 has no subscribe error, so
//! a refused SUBSCRIBE is silent on the wire, but counted and charged to the error
//! budget; CALL is answered with CALLERROR, PUBLISH dropped (both counted and charged);
//! a frame that breaks the protocol closes with `1007` and no frame, as Ratchet does.

use std::collections::HashSet;
use std::time::Instant;

use super::actions::{closes, refusal, Action, Settings};
use super::budget::ErrorBudget;
use crate::auth::Grant;
use crate::protocol::close::Close;
use crate::protocol::wamp1::{self, Message, Prefixes};
use crate::topic::Pattern;

/// The CALLERROR description: the bridge serves no procedures.
pub const CALL_REFUSED: &str = "push-bridge is one-way: calls are not supported";

/// One WAMP v1 client's session.
#[derive(Debug)]
pub struct Wamp1Session {
    pub(super) grant: Grant,
    max_subscriptions: usize,
    server_ident: &'static str,
    /// For the WELCOME frame; dropped once it is sent.
    name: String,
    /// The patterns this session holds in the hub (expanded topics).
    pub(super) subscriptions: HashSet<Pattern>,
    prefixes: Prefixes,
    errors: ErrorBudget,
    pub(super) closed: bool,
}

impl Wamp1Session {
    pub fn new(grant: Grant, settings: &Settings, name: String) -> Self {
        Wamp1Session {
            grant,
            max_subscriptions: settings.max_subscriptions,
            server_ident: settings.server_ident,
            name,
            subscriptions: HashSet::new(),
            prefixes: Prefixes::default(),
            errors: ErrorBudget::default(),
            closed: false,
        }
    }

    /// WELCOME `[0,<name>,1,<server ident>]`.
    pub fn opened(&mut self) -> Vec<Action> {
        let name = std::mem::take(&mut self.name);
        vec![Action::Send(wamp1::welcome(&name, self.server_ident))]
    }

    /// One client text frame at `now`. Nothing once the session is closed.
    pub fn on_text(&mut self, text: &str, now: Instant) -> Vec<Action> {
        if self.closed {
            return Vec::new();
        }
        let actions = match wamp1::parse(text) {
            Ok(message) => self.handle(message, now),
            Err(violation) => {
                tracing::debug!(%violation, "WAMP v1 protocol violation");
                vec![
                    Action::Refused("malformed"),
                    Action::Close(Close::MalformedWamp1),
                ]
            }
        };
        self.closed = closes(&actions);
        actions
    }

    fn handle(&mut self, message: Message, now: Instant) -> Vec<Action> {
        match message {
            Message::Prefix { prefix, uri } => {
                self.prefixes.set(prefix, uri);
                Vec::new()
            }
            Message::Subscribe { topic } => {
                let topic = self.prefixes.expand(&topic);
                match self.subscribe(&topic) {
                    Ok(actions) => actions,
                    Err(why) => {
                        tracing::debug!(topic, why, "WAMP v1 subscribe refused");
                        let over_budget = self.errors.spend(now);
                        refusal("subscribe", None, over_budget)
                    }
                }
            }
            Message::Unsubscribe { topic } => match Pattern::parse(&self.prefixes.expand(&topic)) {
                Ok(pattern) if self.subscriptions.remove(&pattern) => {
                    vec![Action::Unsubscribe(vec![pattern])]
                }
                _ => Vec::new(),
            },
            Message::Call { call_id, .. } => {
                let over_budget = self.errors.spend(now);
                let frame = wamp1::call_error(&call_id, CALL_REFUSED);
                refusal("call", Some(frame), over_budget)
            }
            Message::Publish { .. } => {
                tracing::debug!("WAMP v1 publish refused");
                let over_budget = self.errors.spend(now);
                refusal("publish", None, over_budget)
            }
        }
    }

    /// Subscribes to an expanded topic: a pattern already held is no change; else it
    /// must be valid, permitted and within the limit.
    fn subscribe(&mut self, topic: &str) -> Result<Vec<Action>, &'static str> {
        let pattern = Pattern::parse(topic).map_err(|_| "invalid topic")?;
        if self.subscriptions.contains(&pattern) {
            return Ok(Vec::new());
        }
        if !self.grant.permits(&pattern) {
            return Err("not permitted by the token");
        }
        if self.subscriptions.len() >= self.max_subscriptions {
            return Err("too many subscriptions");
        }
        self.subscriptions.insert(pattern.clone());
        Ok(vec![Action::Subscribe(vec![pattern])])
    }
}

#[cfg(test)]
mod tests;
