//! The frames of one event, built lazily and at most once each, then shared by every
//! recipient: one per protocol for native and SSE, one per subscription URI for WAMP
//! v1, one per subscription id for WAMP v2.

use std::collections::HashMap;

use axum::extract::ws::Utf8Bytes;

use crate::event::Event;
use crate::protocol::wamp2::{self, Match};
use crate::protocol::{native, sse, wamp1};
use crate::topic::Pattern;

pub struct EventFrames<'a> {
    event: &'a Event,
    publication: u64,
    native: Option<Utf8Bytes>,
    sse: Option<Utf8Bytes>,
    /// The index visits one pattern's subscribers together: caching the last WAMP v1
    /// frame builds each once.
    wamp1: Option<(*const Pattern, Utf8Bytes)>,
    wamp2: HashMap<u64, Utf8Bytes>,
}

impl<'a> EventFrames<'a> {
    /// `publication`: the WAMP v2 publication id of this event.
    pub fn new(event: &'a Event, publication: u64) -> Self {
        EventFrames {
            event,
            publication,
            native: None,
            sse: None,
            wamp1: None,
            wamp2: HashMap::new(),
        }
    }

    fn native_text(&self) -> String {
        native::event(&self.event.topic, &self.event.id, &self.event.data)
    }

    pub fn native(&mut self) -> Utf8Bytes {
        if self.native.is_none() {
            self.native = Some(self.native_text().into());
        }
        self.native.clone().unwrap_or_default()
    }

    pub fn sse(&mut self) -> Utf8Bytes {
        if self.sse.is_none() {
            let native = self.native();
            self.sse = Some(sse::event(&self.event.id, &native).into());
        }
        self.sse.clone().unwrap_or_default()
    }

    /// `[8, uri, data]` where `uri` is the subscription's pattern.
    pub fn wamp1(&mut self, pattern: &Pattern) -> Utf8Bytes {
        match &self.wamp1 {
            Some((p, frame)) if std::ptr::eq(*p, pattern) => frame.clone(),
            _ => {
                let frame: Utf8Bytes = wamp1::event(pattern.as_str(), &self.event.data).into();
                self.wamp1 = Some((pattern as *const Pattern, frame.clone()));
                frame
            }
        }
    }

    /// EVENT for subscription `id`; pattern subscriptions carry `details.topic`.
    pub fn wamp2(&mut self, id: u64, match_: Match) -> Utf8Bytes {
        let (event, publication) = (self.event, self.publication);
        self.wamp2
            .entry(id)
            .or_insert_with(|| {
                let topic = (match_ != Match::Exact).then(|| wamp2::topic_uri(&event.topic));
                wamp2::event(id, publication, topic.as_deref(), &event.data).into()
            })
            .clone()
    }
}
