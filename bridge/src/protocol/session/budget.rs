//! The error budget every WebSocket session keeps (docs/protocol.md "WebSocket
//! endpoint"): more than [`MAX_ERRORS`] bad or refused frames within [`ERROR_WINDOW`]
//! close the session with `1008`. The clock is the caller's, so tests drive it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// More refused or bad frames than this within [`ERROR_WINDOW`] close with `1008`.
pub const MAX_ERRORS: usize = 10;
pub const ERROR_WINDOW: Duration = Duration::from_secs(60);

/// When the recent bad or refused frames came. Empty (and unallocated) until the
/// first one; never more than `MAX_ERRORS + 1` long, as the session closes then.
#[derive(Debug, Default)]
pub(super) struct ErrorBudget {
    recent: VecDeque<Instant>,
}

impl ErrorBudget {
    /// Records one bad or refused frame at `now`; true when that makes more than
    /// [`MAX_ERRORS`] within [`ERROR_WINDOW`] (errors exactly that old still count).
    pub(super) fn spend(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) > ERROR_WINDOW)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        self.recent.len() > MAX_ERRORS
    }
}
