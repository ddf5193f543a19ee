//! The native session, `push-bridge.v1` (docs/protocol.md "Native JSON protocol"):
//! `welcome` on open; subscribe (all or nothing, with an optional resume) and
//! unsubscribe; every other frame answered with an `error` frame, counted, and charged
//! to the error budget.
//!
//! A subscribe with `since` is answered in two steps: [`Action::Resume`] (the patterns
//! are held from then on), and, once the driver has the replay,
//! [`NativeSession::resumed`] gives the `subscribed` frame and the replayed events. The
//! driver answers before it feeds the next frame.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::Value;

use super::actions::{closes, refusal, Action, Settings};
use super::budget::ErrorBudget;
use crate::auth::Grant;
use crate::event::SharedEvent;
use crate::protocol::native::{self, ErrorCode, Request, RequestError};
use crate::topic::Pattern;

/// One native client's session.
#[derive(Debug)]
pub struct NativeSession {
    pub(super) grant: Grant,
    max_subscriptions: usize,
    heartbeat_secs: u64,
    /// For the `welcome` frame; dropped once it is sent.
    name: String,
    /// The patterns this session holds in the hub.
    pub(super) subscriptions: HashSet<Pattern>,
    errors: ErrorBudget,
    /// A subscribe with `since` waiting for [`NativeSession::resumed`] (boxed: rare,
    /// and an idle session should stay small).
    resuming: Option<Box<Resuming>>,
    pub(super) closed: bool,
}

/// What the `subscribed` answer of a resuming subscribe repeats.
#[derive(Debug)]
struct Resuming {
    topics: Vec<Pattern>,
    reference: Option<Value>,
}

impl NativeSession {
    pub fn new(grant: Grant, settings: &Settings, name: String) -> Self {
        NativeSession {
            grant,
            max_subscriptions: settings.max_subscriptions,
            heartbeat_secs: settings.heartbeat_secs,
            name,
            subscriptions: HashSet::new(),
            errors: ErrorBudget::default(),
            resuming: None,
            closed: false,
        }
    }

    /// `{"type":"welcome","session":<name>,"heartbeat":<secs>}`.
    pub fn opened(&mut self) -> Vec<Action> {
        let name = std::mem::take(&mut self.name);
        vec![Action::Send(native::welcome(&name, self.heartbeat_secs))]
    }

    /// One client text frame at `now`. Nothing once the session is closed.
    pub fn on_text(&mut self, text: &str, now: Instant) -> Vec<Action> {
        if self.closed {
            return Vec::new();
        }
        let actions = match native::parse_request(text) {
            Ok(Request::Subscribe {
                topics,
                since,
                reference,
            }) => self.subscribe(topics, since, reference, now),
            Ok(Request::Unsubscribe { topics, reference }) => {
                self.unsubscribe(&topics, reference.as_ref())
            }
            Err(error) => self.refuse(&error, now),
        };
        self.closed = closes(&actions);
        actions
    }

    /// All or nothing: every pattern permitted and the limit respected, or one `error`
    /// and nothing subscribed. The limit counts only the patterns new to the session.
    fn subscribe(
        &mut self,
        topics: Vec<Pattern>,
        since: Option<String>,
        reference: Option<Value>,
        now: Instant,
    ) -> Vec<Action> {
        if let Some(message) = self.grant.refuses(&topics) {
            let error = RequestError::new(ErrorCode::Forbidden, message, reference);
            return self.refuse(&error, now);
        }
        // New to the session, each once, in the order asked.
        let mut seen: HashSet<&Pattern> = HashSet::new();
        let new: Vec<Pattern> = topics
            .iter()
            .filter(|p| !self.subscriptions.contains(*p) && seen.insert(*p))
            .cloned()
            .collect();
        if self.subscriptions.len() + new.len() > self.max_subscriptions {
            let message = format!(
                "at most {} subscriptions per connection",
                self.max_subscriptions
            );
            let error = RequestError::new(ErrorCode::TooManySubscriptions, message, reference);
            return self.refuse(&error, now);
        }
        match since {
            Some(since) => {
                // Asked even when every pattern was already held: whether `since` is
                // known still decides `recovered`.
                let already: Vec<Pattern> = self.subscriptions.iter().cloned().collect();
                self.subscriptions.extend(new.iter().cloned());
                self.resuming = Some(Box::new(Resuming { topics, reference }));
                vec![Action::Resume {
                    patterns: new,
                    already,
                    since,
                }]
            }
            None => {
                let mut actions = Vec::with_capacity(2);
                if !new.is_empty() {
                    self.subscriptions.extend(new.iter().cloned());
                    actions.push(Action::Subscribe(new));
                }
                actions.push(Action::Send(native::subscribed(
                    &topics,
                    None,
                    reference.as_ref(),
                )));
                actions
            }
        }
    }

    /// Drops the patterns held; patterns not held are no error. The answer lists every
    /// pattern asked, held or not.
    fn unsubscribe(&mut self, topics: &[Pattern], reference: Option<&Value>) -> Vec<Action> {
        let dropped: Vec<Pattern> = topics
            .iter()
            .filter(|p| self.subscriptions.remove(*p))
            .cloned()
            .collect();
        let mut actions = Vec::with_capacity(2);
        if !dropped.is_empty() {
            actions.push(Action::Unsubscribe(dropped));
        }
        actions.push(Action::Send(native::unsubscribed(topics, reference)));
        actions
    }

    /// The `error` frame, counted with the label of its code, charged to the budget.
    fn refuse(&mut self, error: &RequestError, now: Instant) -> Vec<Action> {
        let over_budget = self.errors.spend(now);
        refusal(
            native_action(error.code),
            Some(native::error(error)),
            over_budget,
        )
    }

    /// The answer to [`Action::Resume`]: `subscribed` with `recovered` (whether there
    /// was a replay), then the replayed events. Nothing when no resume is pending.
    pub fn resumed(&mut self, replay: Option<Vec<SharedEvent>>) -> Vec<Action> {
        let Some(resuming) = self.resuming.take() else {
            return Vec::new();
        };
        let recovered = Some(replay.is_some());
        let replay = replay.unwrap_or_default();
        let mut actions = Vec::with_capacity(1 + replay.len());
        actions.push(Action::Send(native::subscribed(
            &resuming.topics,
            recovered,
            resuming.reference.as_ref(),
        )));
        actions.extend(
            replay
                .iter()
                .map(|e| Action::Send(native::event(&e.topic, &e.id, &e.data))),
        );
        actions
    }
}

/// The `push_bridge_refused_client_actions_total` label of a native refusal.
pub fn native_action(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Forbidden | ErrorCode::TooManySubscriptions => "subscribe",
        ErrorCode::BadRequest => "malformed",
        ErrorCode::Unsupported => "unsupported",
    }
}

#[cfg(test)]
mod tests;
