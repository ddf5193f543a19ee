//! Whether a publisher has somewhere to send, worked out from what its socket reports
//! (sans-I/O: these types only digest bytes the socket layer hands them).
//!
//! - A PUSH socket is watched through a ZeroMQ socket monitor: a peer counts once it
//!   completed the ZMTP handshake and stops counting when it disconnects. A TCP
//!   connection alone proves nothing (anything can accept a TCP connection).
//! - A PUB socket (an XPUB underneath) counts as ready once some peer *subscribed*: a
//!   SUB that finished the handshake but whose subscription has not arrived yet would
//!   still miss the next message (ZeroMQ's "slow joiner"), so the handshake is not enough.

use std::collections::HashSet;

use zmq::SocketEvent;

/// The monitor events a [`PeerTracker`] needs.
const TRACKED: [SocketEvent; 5] = [
    SocketEvent::HANDSHAKE_SUCCEEDED,
    SocketEvent::HANDSHAKE_FAILED_NO_DETAIL,
    SocketEvent::HANDSHAKE_FAILED_PROTOCOL,
    SocketEvent::HANDSHAKE_FAILED_AUTH,
    SocketEvent::DISCONNECTED,
];

/// The `events` mask to pass to `zmq_socket_monitor`.
pub(crate) fn monitored_events() -> i32 {
    TRACKED
        .iter()
        .fold(0, |mask, event| mask | i32::from(event.to_raw()))
}

/// The tracked event in the first frame of a monitor message (libzmq 4.x: a
/// native-endian `u16` event followed by a `u32` value), or `None` for anything else.
/// (`zmq::SocketEvent::from_raw` panics on numbers it does not know, hence the lookup.)
pub(crate) fn decode_monitor_event(frame: &[u8]) -> Option<SocketEvent> {
    let raw = match frame {
        [a, b, _, _, _, _] => u16::from_ne_bytes([*a, *b]),
        _ => return None,
    };
    TRACKED.into_iter().find(|event| event.to_raw() == raw)
}

/// Counts the peers of a connecting socket that are past the handshake.
///
/// libzmq reports, per connection, either `HANDSHAKE_SUCCEEDED` or a `HANDSHAKE_FAILED_*`
/// event, and later `DISCONNECTED`. A failed connection's `DISCONNECTED` comes right
/// after its failure event (both are raised by the same engine call on the socket's
/// one I/O thread), so a `DISCONNECTED` that directly follows a failure belongs to that
/// failed connection and does not reduce the count of live peers.
#[derive(Debug, Default)]
pub(crate) struct PeerTracker {
    live: usize,
    last_was_failure: bool,
}

impl PeerTracker {
    /// Takes in one event; returns true when it is the loss of a live peer (a
    /// connection past its handshake went away: what was in flight on it may be lost).
    pub(crate) fn on_event(&mut self, event: SocketEvent) -> bool {
        let mut failure = false;
        let mut lost = false;
        match event {
            SocketEvent::HANDSHAKE_SUCCEEDED => self.live += 1,
            SocketEvent::HANDSHAKE_FAILED_NO_DETAIL
            | SocketEvent::HANDSHAKE_FAILED_PROTOCOL
            | SocketEvent::HANDSHAKE_FAILED_AUTH => failure = true,
            SocketEvent::DISCONNECTED if !self.last_was_failure => {
                lost = self.live > 0;
                self.live = self.live.saturating_sub(1);
            }
            _ => {}
        }
        self.last_was_failure = failure;
        lost
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.live > 0
    }
}

/// The distinct prefixes peers of an XPUB socket are subscribed to.
///
/// A (non-verbose) XPUB reports `\x01prefix` when a prefix gains its first subscriber
/// and `\x00prefix` when it loses its last one, including when the subscriber
/// disconnects; anything else a SUB might send is ignored.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    prefixes: HashSet<Vec<u8>>,
}

impl Subscriptions {
    pub(crate) fn on_message(&mut self, message: &[u8]) {
        match message.split_first() {
            Some((1, prefix)) => {
                self.prefixes.insert(prefix.to_vec());
            }
            Some((0, prefix)) => {
                self.prefixes.remove(prefix);
            }
            _ => {}
        }
    }

    pub(crate) fn is_connected(&self) -> bool {
        !self.prefixes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use SocketEvent::*;

    fn tracker(events: &[SocketEvent]) -> PeerTracker {
        let mut t = PeerTracker::default();
        for e in events {
            t.on_event(*e);
        }
        t
    }

    #[test]
    fn a_handshake_makes_a_live_peer_until_it_disconnects() {
        assert!(!tracker(&[]).is_connected());
        assert!(tracker(&[HANDSHAKE_SUCCEEDED]).is_connected());
        assert!(!tracker(&[HANDSHAKE_SUCCEEDED, DISCONNECTED]).is_connected());
        // A bridge restart: gone, then back.
        assert!(tracker(&[HANDSHAKE_SUCCEEDED, DISCONNECTED, HANDSHAKE_SUCCEEDED]).is_connected());
    }

    #[test]
    fn failed_handshakes_never_count_nor_hide_live_peers() {
        for failure in [
            HANDSHAKE_FAILED_NO_DETAIL,
            HANDSHAKE_FAILED_PROTOCOL,
            HANDSHAKE_FAILED_AUTH,
        ] {
            assert!(!tracker(&[failure, DISCONNECTED]).is_connected());
            // The failed connection's disconnect must not cancel the live peer.
            assert!(tracker(&[HANDSHAKE_SUCCEEDED, failure, DISCONNECTED]).is_connected());
            // A second failure event for the same connection changes nothing.
            assert!(tracker(&[HANDSHAKE_SUCCEEDED, failure, failure, DISCONNECTED]).is_connected());
            // But the live peer's own disconnect, later, does count.
            assert!(
                !tracker(&[HANDSHAKE_SUCCEEDED, failure, DISCONNECTED, DISCONNECTED])
                    .is_connected()
            );
        }
    }

    #[test]
    fn only_a_live_peer_going_away_is_a_loss() {
        let mut t = PeerTracker::default();
        assert!(!t.on_event(HANDSHAKE_SUCCEEDED));
        assert!(t.on_event(DISCONNECTED), "a live peer went away");
        assert!(!t.on_event(DISCONNECTED), "no live peer left to lose");
        assert!(!t.on_event(HANDSHAKE_FAILED_PROTOCOL));
        assert!(
            !t.on_event(DISCONNECTED),
            "the failed connection's own disconnect"
        );
    }

    #[test]
    fn counts_several_peers_and_never_goes_negative() {
        let t = tracker(&[HANDSHAKE_SUCCEEDED, HANDSHAKE_SUCCEEDED, DISCONNECTED]);
        assert!(t.is_connected());
        let t = tracker(&[DISCONNECTED, DISCONNECTED, HANDSHAKE_SUCCEEDED]);
        assert!(t.is_connected());
    }

    #[test]
    fn unrelated_events_are_ignored() {
        assert!(tracker(&[HANDSHAKE_SUCCEEDED, CONNECTED, CLOSED]).is_connected());
        assert!(!tracker(&[CONNECTED, ACCEPTED]).is_connected());
    }

    #[test]
    fn the_mask_covers_exactly_the_tracked_events() {
        let mask = monitored_events();
        for e in [
            HANDSHAKE_SUCCEEDED,
            HANDSHAKE_FAILED_NO_DETAIL,
            HANDSHAKE_FAILED_PROTOCOL,
            HANDSHAKE_FAILED_AUTH,
            DISCONNECTED,
        ] {
            assert_ne!(mask & i32::from(e.to_raw()), 0, "{e:?}");
        }
        for e in [
            CONNECTED,
            CONNECT_DELAYED,
            CONNECT_RETRIED,
            CLOSED,
            ACCEPTED,
        ] {
            assert_eq!(mask & i32::from(e.to_raw()), 0, "{e:?}");
        }
    }

    #[test]
    fn decodes_monitor_frames() {
        let mut frame = HANDSHAKE_SUCCEEDED.to_raw().to_ne_bytes().to_vec();
        frame.extend_from_slice(&7u32.to_ne_bytes());
        assert_eq!(decode_monitor_event(&frame), Some(HANDSHAKE_SUCCEEDED));
        // Untracked or unknown event numbers are skipped, never a panic.
        frame[..2].copy_from_slice(&CONNECTED.to_raw().to_ne_bytes());
        assert_eq!(decode_monitor_event(&frame), None);
        frame[..2].copy_from_slice(&0x0003u16.to_ne_bytes());
        assert_eq!(decode_monitor_event(&frame), None);
        assert_eq!(decode_monitor_event(&frame[..5]), None);
        assert_eq!(decode_monitor_event(b""), None);
    }

    #[test]
    fn subscriptions_follow_sub_and_unsub_messages() {
        let mut s = Subscriptions::default();
        assert!(!s.is_connected());
        s.on_message(b"\x01");
        assert!(s.is_connected());
        s.on_message(b"\x01news");
        s.on_message(b"\x00");
        assert!(s.is_connected(), "news is still subscribed");
        s.on_message(b"\x00news");
        assert!(!s.is_connected());
        // Unsubscribing something never subscribed, or junk, changes nothing.
        s.on_message(b"\x00other");
        s.on_message(b"");
        s.on_message(b"\x02junk");
        assert!(!s.is_connected());
    }
}
