//! The frames of one event, built lazily and at most once each, then shared by every
//! recipient: one per protocol for native and SSE, one per subscription URI for WAMP
//! v1, one per subscription id for WAMP v2. WebSocket frames are complete (header and
//! payload), ready for the socket; SSE frames are the body text.

use std::collections::HashMap;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;

use super::socket_writer::text_frame;

use crate::event::Event;
use crate::protocol::wamp2::{self, Match};
use crate::protocol::{native, sse, wamp1};
use crate::topic::Pattern;

pub struct EventFrames<'a> {
    event: &'a Event,
    publication: u64,
    /// The native event's JSON: the payload of the native frame and of the SSE one.
    native_text: Option<String>,
    native: Option<Bytes>,
    sse: Option<Utf8Bytes>,
    /// The index visits one pattern's subscribers together: caching the last WAMP v1
    /// frame builds each once.
    wamp1: Option<(*const Pattern, Bytes)>,
    wamp2: HashMap<u64, Bytes>,
}

impl<'a> EventFrames<'a> {
    /// `publication`: the WAMP v2 publication id of this event.
    pub fn new(event: &'a Event, publication: u64) -> Self {
        EventFrames {
            event,
            publication,
            native_text: None,
            native: None,
            sse: None,
            wamp1: None,
            wamp2: HashMap::new(),
        }
    }

    fn native_text(&mut self) -> &str {
        let event = self.event;
        self.native_text
            .get_or_insert_with(|| native::event(&event.topic, &event.id, &event.data))
    }

    pub fn native(&mut self) -> Bytes {
        if self.native.is_none() {
            self.native = Some(text_frame(self.native_text().as_bytes()));
        }
        self.native.clone().unwrap_or_default()
    }

    pub fn sse(&mut self) -> Utf8Bytes {
        if self.sse.is_none() {
            let id = &self.event.id;
            self.sse = Some(sse::event(id, self.native_text()).into());
        }
        self.sse.clone().unwrap_or_default()
    }

    /// `[8, uri, data]` where `uri` is the subscription's pattern.
    pub fn wamp1(&mut self, pattern: &Pattern) -> Bytes {
        match &self.wamp1 {
            Some((p, frame)) if std::ptr::eq(*p, pattern) => frame.clone(),
            _ => {
                let text = wamp1::event(pattern.as_str(), &self.event.data);
                let frame = text_frame(text.as_bytes());
                self.wamp1 = Some((pattern as *const Pattern, frame.clone()));
                frame
            }
        }
    }

    /// EVENT for subscription `id`; pattern subscriptions carry `details.topic`.
    pub fn wamp2(&mut self, id: u64, match_: Match) -> Bytes {
        let (event, publication) = (self.event, self.publication);
        self.wamp2
            .entry(id)
            .or_insert_with(|| {
                let topic = (match_ != Match::Exact).then(|| wamp2::topic_uri(&event.topic));
                text_frame(wamp2::event(id, publication, topic.as_deref(), &event.data).as_bytes())
            })
            .clone()
    }
}
