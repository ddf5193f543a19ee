//! The frames of one event, built lazily, at most once each, and shared by every
//! recipient. The hub does not know what a frame looks like: each outlet names the
//! frame it needs by a [`FrameKey`] and says how to build it; the first recipient that
//! needs a frame builds it, everyone after gets the same bytes.

use bytes::Bytes;

use crate::event::Event;

/// Names one frame of an event: `kind` is chosen by the outlets (one per format), and
/// `detail` tells apart frames of one kind (e.g. one per subscription).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameKey {
    pub kind: u8,
    pub detail: u64,
}

impl FrameKey {
    pub const fn new(kind: u8, detail: u64) -> Self {
        FrameKey { kind, detail }
    }
}

/// The frames built so far for one event.
pub struct EventFrames<'a> {
    event: &'a Event,
    built: Vec<(FrameKey, Bytes)>,
    /// Where the last lookup found its frame: the index visits one pattern's
    /// subscribers together, so the next lookup is usually the same.
    last: usize,
}

impl<'a> EventFrames<'a> {
    pub fn new(event: &'a Event) -> Self {
        EventFrames {
            event,
            built: Vec::new(),
            last: 0,
        }
    }

    pub fn event(&self) -> &'a Event {
        self.event
    }

    /// The frame named `key`, built by `build` if nobody needed it yet. `build` may
    /// itself ask for other frames (one format embedding another).
    pub fn get_or_build(&mut self, key: FrameKey, build: impl FnOnce(&mut Self) -> Bytes) -> Bytes {
        if let Some((_, frame)) = self.built.get(self.last).filter(|(k, _)| *k == key) {
            return frame.clone();
        }
        if let Some(at) = self.built.iter().position(|(k, _)| *k == key) {
            self.last = at;
            return self.built[at].1.clone();
        }
        let frame = build(self);
        self.last = self.built.len();
        self.built.push((key, frame.clone()));
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::Topic;

    #[test]
    fn each_frame_is_built_once_and_may_embed_another() {
        let event = Event {
            topic: Topic::parse("a").unwrap(),
            id: "1".into(),
            data: "{}".into(),
            received: std::time::Instant::now(),
        };
        let mut frames = EventFrames::new(&event);
        let mut builds = 0;
        let inner = FrameKey::new(1, 0);
        let outer = FrameKey::new(2, 0);
        for _ in 0..3 {
            let frame = frames.get_or_build(outer, |frames| {
                builds += 1;
                let inner = frames.get_or_build(inner, |f| Bytes::from(f.event().data.to_string()));
                Bytes::from(format!("[{}]", std::str::from_utf8(&inner).unwrap()))
            });
            assert_eq!(&frame[..], b"[{}]");
        }
        assert_eq!(builds, 1);
        let other = frames.get_or_build(FrameKey::new(2, 7), |_| Bytes::from_static(b"x"));
        assert_eq!(&other[..], b"x");
        assert_eq!(&frames.get_or_build(inner, |_| Bytes::new())[..], b"{}");
    }
}
