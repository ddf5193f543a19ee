//! What the session machines' unit tests share: grants, settings, a clock, events, and
//! a look at the frames an answer sends.

use std::sync::Arc;
use std::time::Instant;

use super::actions::{Action, Settings};
use crate::auth::{Credential, Grant};
use crate::event::{Event, SharedEvent};
use crate::topic::{Pattern, Topic};

pub const IDENT: &str = "push-bridge/test";
pub const NAME: &str = "00112233aabbccdd";

/// A grant permitting `patterns`.
pub fn grant(patterns: &[&str]) -> Grant {
    Grant {
        name: "test-token".into(),
        patterns: patterns.iter().map(|p| pattern(p)).collect(),
        expires_at: None,
        credential: Credential::Jwt,
    }
}

/// Settings with at most `max_subscriptions` subscriptions and a 25 s heartbeat.
pub fn settings(max_subscriptions: usize) -> Settings {
    Settings {
        max_subscriptions,
        heartbeat_secs: 25,
        server_ident: IDENT,
    }
}

pub fn pattern(text: &str) -> Pattern {
    Pattern::parse(text).unwrap()
}

pub fn patterns(texts: &[&str]) -> Vec<Pattern> {
    texts.iter().map(|p| pattern(p)).collect()
}

/// A clock reading to start from.
pub fn now() -> Instant {
    Instant::now()
}

pub fn event(topic: &str, id: &str, data: &str) -> SharedEvent {
    Arc::new(Event {
        topic: Topic::parse(topic).unwrap(),
        id: id.into(),
        data: data.into(),
        received: Instant::now(),
    })
}

pub fn send(frame: impl Into<String>) -> Action {
    Action::Send(frame.into())
}

/// The patterns of an iterator, sorted, for comparing sets.
pub fn sorted<'a>(patterns: impl Iterator<Item = &'a Pattern>) -> Vec<&'a str> {
    let mut all: Vec<&str> = patterns.map(Pattern::as_str).collect();
    all.sort_unstable();
    all
}
