//! The resend window of a PUSH publisher (sans-I/O: the publisher does the sending).
//!
//! ZeroMQ has no acknowledgements: when the connection to the bridge breaks (a bridge
//! restart), whatever was in the TCP buffers at that instant is gone, and libzmq does
//! not say how much. So the publisher keeps its most recent messages and, when a
//! connected bridge goes away, sends them again, oldest first, ahead of anything
//! published after that. The bridge drops the ones it already had by their id (its
//! history, kept across a graceful restart by `history.file`), so nothing is lost and
//! nothing is delivered twice as long as the window covers what was in flight and its
//! ids are still in the bridge's history (docs/restarts.md).
//!
//! With several bridges (`connect_all`), the loss of one is reported (socket monitor)
//! a moment before libzmq stops dealing messages to that connection's queue: what
//! goes out in that moment, the resent messages first, can still be dropped with it.
//! So for a short while after a loss ([`Limits::after_loss`]) the window keeps watching,
//! and then sends again what it took in meanwhile, too. The remaining bridges drop
//! those they already had.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One message as handed to ZeroMQ: its three frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) frames: [Box<[u8]>; 3],
    at: Instant,
}

impl Sent {
    #[cfg(test)]
    fn new(frames: [&[u8]; 3], at: Instant) -> Sent {
        Sent {
            frames: frames.map(Box::from),
            at,
        }
    }

    /// A message from frames the caller owns (no copy).
    pub(crate) fn owned(frames: [Vec<u8>; 3], at: Instant) -> Sent {
        Sent {
            frames: frames.map(Vec::into_boxed_slice),
            at,
        }
    }

    fn bytes(&self) -> usize {
        self.frames.iter().map(|f| f.len()).sum()
    }
}

/// The bounds of the window: messages, bytes, age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) messages: usize,
    pub(crate) bytes: usize,
    pub(crate) max_age: Duration,
    /// How long after a loss what is sent may still be lost with it; zero: no wait.
    pub(crate) after_loss: Duration,
}

/// The last messages handed to ZeroMQ, and those waiting to be sent again.
#[derive(Debug)]
pub(crate) struct Window {
    limits: Limits,
    recent: VecDeque<Sent>,
    recent_bytes: usize,
    /// To send again (oldest first), before any new message.
    pending: VecDeque<Sent>,
    /// Until when, after a loss, what the window takes in is sent again too.
    watch_until: Option<Instant>,
}

impl Window {
    pub(crate) fn new(limits: Limits) -> Window {
        Window {
            limits,
            recent: VecDeque::new(),
            recent_bytes: 0,
            pending: VecDeque::new(),
            watch_until: None,
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.limits.messages > 0 && self.limits.bytes > 0
    }

    /// Remembers a message ZeroMQ just took, forgetting what the limits no longer allow.
    pub(crate) fn record(&mut self, sent: Sent) {
        if !self.is_enabled() || sent.bytes() > self.limits.bytes {
            return;
        }
        self.recent_bytes += sent.bytes();
        self.recent.push_back(sent);
        while self.recent.len() > self.limits.messages || self.recent_bytes > self.limits.bytes {
            self.forget_oldest();
        }
    }

    /// The connection to a peer was lost at `now`: every recent message not older than
    /// the age limit is to be sent again, after those already waiting.
    pub(crate) fn on_disconnect(&mut self, now: Instant) {
        self.resend_recent(now);
        if !self.limits.after_loss.is_zero() && self.is_enabled() {
            self.watch_until = now.checked_add(self.limits.after_loss);
        }
    }

    /// Once [`Limits::after_loss`] has passed since the last loss, what was taken in
    /// meanwhile (resent messages included) is put in line to be sent again too.
    pub(crate) fn tick(&mut self, now: Instant) {
        match self.watch_until {
            Some(until) if now >= until => self.end_watch(now),
            _ => {}
        }
    }

    /// As [`Self::tick`] without waiting for the end of the watch (when closing).
    pub(crate) fn end_watch(&mut self, now: Instant) {
        if self.watch_until.take().is_some() {
            self.resend_recent(now);
        }
    }

    fn resend_recent(&mut self, now: Instant) {
        while let Some(sent) = self.recent.pop_front() {
            self.recent_bytes -= sent.bytes();
            if now.saturating_duration_since(sent.at) <= self.limits.max_age {
                self.pending.push_back(sent);
            }
        }
    }

    /// The next message to send again, if any (put it back with [`Self::unsent`] if
    /// ZeroMQ would not take it, or [`Self::record`] it if it did).
    pub(crate) fn next_pending(&mut self) -> Option<Sent> {
        self.pending.pop_front()
    }

    /// Puts back a message ZeroMQ did not take, at the head of the queue.
    pub(crate) fn unsent(&mut self, sent: Sent) {
        self.pending.push_front(sent);
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    fn forget_oldest(&mut self) {
        if let Some(sent) = self.recent.pop_front() {
            self.recent_bytes -= sent.bytes();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(n: u32, at: Instant) -> Sent {
        let id = n.to_string();
        Sent::new([b"t", id.as_bytes(), b"0123456789"], at)
    }

    fn ids(window: &mut Window) -> Vec<String> {
        let mut ids = Vec::new();
        while let Some(s) = window.next_pending() {
            ids.push(String::from_utf8(s.frames[1].to_vec()).unwrap());
        }
        ids
    }

    fn limits(messages: usize) -> Limits {
        Limits {
            messages,
            bytes: 1 << 20,
            max_age: Duration::from_secs(60),
            after_loss: Duration::ZERO,
        }
    }

    #[test]
    fn a_disconnect_resends_the_last_messages_oldest_first() {
        let now = Instant::now();
        let mut w = Window::new(limits(3));
        for n in 0..5 {
            w.record(sent(n, now));
        }
        assert_eq!(w.pending(), 0);
        w.on_disconnect(now);
        assert_eq!(ids(&mut w), ["2", "3", "4"]);
        // The window is empty until messages are recorded again.
        w.on_disconnect(now);
        assert_eq!(w.pending(), 0);
    }

    #[test]
    fn unsent_messages_keep_their_place_and_later_losses_queue_behind() {
        let now = Instant::now();
        let mut w = Window::new(limits(10));
        w.record(sent(1, now));
        w.record(sent(2, now));
        w.on_disconnect(now);
        let first = w.next_pending().unwrap();
        w.unsent(first);
        // Sent again and lost again before the rest went out.
        w.record(sent(3, now));
        w.on_disconnect(now);
        assert_eq!(ids(&mut w), ["1", "2", "3"]);
    }

    #[test]
    fn byte_and_age_limits() {
        let now = Instant::now();
        // Each message is 1 + 1 + 10 = 12 bytes.
        let mut w = Window::new(Limits {
            messages: 100,
            bytes: 30,
            max_age: Duration::from_secs(1),
            after_loss: Duration::ZERO,
        });
        w.record(sent(1, now));
        w.record(sent(2, now));
        w.record(sent(3, now + Duration::from_secs(5)));
        w.on_disconnect(now + Duration::from_millis(5_500));
        assert_eq!(ids(&mut w), ["3"], "1 went over the bytes, 2 is too old");
        w.record(Sent::new([b"t", b"big", &[b'x'; 40]], now));
        w.on_disconnect(now);
        assert_eq!(
            w.pending(),
            0,
            "a message larger than the window is not kept"
        );
    }

    #[test]
    fn a_zero_window_keeps_nothing() {
        let now = Instant::now();
        let mut w = Window::new(limits(0));
        assert!(!w.is_enabled());
        w.record(sent(1, now));
        w.on_disconnect(now);
        assert_eq!(w.pending(), 0);
    }

    #[test]
    fn after_a_loss_among_several_peers_what_follows_for_a_moment_goes_again_too() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let mut w = Window::new(Limits {
            after_loss: ms(100),
            ..limits(10)
        });
        w.record(sent(1, now));
        w.on_disconnect(now);
        // The resent message and a new one go out while the lost queue may still take them.
        let resent = w.next_pending().unwrap();
        w.record(resent);
        w.record(sent(2, now + ms(1)));
        w.tick(now + ms(99));
        assert_eq!(w.pending(), 0, "still watching");
        w.tick(now + ms(100));
        assert_eq!(ids(&mut w), ["1", "2"]);
        // The watch is over: later messages stay put until the next loss.
        w.record(sent(3, now + ms(150)));
        w.tick(now + ms(300));
        assert_eq!(w.pending(), 0);
        // Closing ends a watch early.
        w.on_disconnect(now + ms(400));
        assert_eq!(ids(&mut w), ["3"]);
        w.record(sent(4, now + ms(401)));
        w.end_watch(now + ms(402));
        assert_eq!(ids(&mut w), ["4"]);
        w.end_watch(now + ms(403));
        assert_eq!(w.pending(), 0, "no watch, nothing more");
    }

    #[test]
    fn one_peer_needs_no_watch() {
        let now = Instant::now();
        let mut w = Window::new(limits(10));
        w.record(sent(1, now));
        w.on_disconnect(now);
        assert_eq!(ids(&mut w), ["1"]);
        w.record(sent(2, now));
        w.tick(now + Duration::from_secs(10));
        w.end_watch(now + Duration::from_secs(10));
        assert_eq!(w.pending(), 0);
    }
}
