//! Why a session ends, as the client sees it (docs/protocol.md "Close codes"): each
//! situation is one [`Close`] carrying its WebSocket close code and reason text, so the
//! code and the words for it are written once.

/// Why the bridge ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Close {
    /// 1000: the WAMP v2 client said GOODBYE.
    Goodbye,
    /// 1000: the WAMP v2 client sent ABORT.
    ClientAborted,
    /// 1000: the WAMP v2 session was aborted because the client could not authenticate.
    AuthAborted,
    /// 1001: the bridge is shutting down.
    GoingAway,
    /// 1003: the client sent a binary frame.
    Binary,
    /// 1007: a text frame that is not UTF-8.
    InvalidUtf8,
    /// 1007: a WAMP v1 frame that breaks the protocol.
    MalformedWamp1,
    /// 1007: a WAMP v2 frame that breaks the protocol (ABORT sent first).
    Wamp2Violation,
    /// 1008: too many bad or refused frames within a minute.
    TooManyErrors,
    /// 1009: a frame over `server.max_inbound_frame_bytes`.
    TooBig,
    /// 4001: the token expired.
    TokenExpired,
    /// 4003: the token was revoked (by a reload).
    TokenRevoked,
    /// 4008: the send queue overflowed.
    SlowConsumer,
    /// Never sent: the client stopped answering pings, so the connection is dropped
    /// without a close frame (the client's side then reports 1006).
    NoAnswer,
}

impl Close {
    /// Every close, e.g. to check the table in the docs.
    pub const ALL: [Close; 14] = [
        Close::Goodbye,
        Close::ClientAborted,
        Close::AuthAborted,
        Close::GoingAway,
        Close::Binary,
        Close::InvalidUtf8,
        Close::MalformedWamp1,
        Close::Wamp2Violation,
        Close::TooManyErrors,
        Close::TooBig,
        Close::TokenExpired,
        Close::TokenRevoked,
        Close::SlowConsumer,
        Close::NoAnswer,
    ];

    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            Close::Goodbye | Close::ClientAborted | Close::AuthAborted => 1000,
            Close::GoingAway => 1001,
            Close::Binary => 1003,
            Close::InvalidUtf8 | Close::MalformedWamp1 | Close::Wamp2Violation => 1007,
            Close::TooManyErrors => 1008,
            Close::TooBig => 1009,
            Close::TokenExpired => 4001,
            Close::TokenRevoked => 4003,
            Close::SlowConsumer => 4008,
            Close::NoAnswer => 1006,
        }
    }

    /// The close frame's reason text.
    pub fn reason(self) -> &'static str {
        match self {
            Close::Goodbye => "goodbye",
            Close::ClientAborted => "aborted by the client",
            Close::AuthAborted | Close::Wamp2Violation => "WAMP session aborted",
            Close::GoingAway => "the bridge is shutting down",
            Close::Binary => "binary frames are not accepted",
            Close::InvalidUtf8 => "invalid UTF-8",
            Close::MalformedWamp1 => "malformed WAMP v1 message",
            Close::TooManyErrors => "too many bad or refused messages",
            Close::TooBig => "frame too large",
            Close::TokenExpired => "token expired",
            Close::TokenRevoked => "token revoked",
            Close::SlowConsumer => "slow consumer: send queue overflowed",
            Close::NoAnswer => "no answer to two heartbeats",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones_and_reasons_fit_a_close_frame() {
        let codes: Vec<u16> = Close::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(
            codes,
            [1000, 1000, 1000, 1001, 1003, 1007, 1007, 1007, 1008, 1009, 4001, 4003, 4008, 1006]
        );
        for close in Close::ALL {
            assert!(
                !close.reason().is_empty() && close.reason().len() <= 123,
                "{close:?}"
            );
        }
    }
}
