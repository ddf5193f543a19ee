//! Heartbeats for every WebSocket session from one task (docs/configuration.md
//! `server.heartbeat`): each session is pinged once per heartbeat, a sixteenth of them
//! at a time, through its socket writer, and a session whose client has sent nothing
//! (not even a pong) for two heartbeats is dropped. One task instead of a timer per
//! session keeps idle sessions from waking up, and their state small.

use std::sync::Arc;
use std::time::Duration;

use super::routes::AppState;
use crate::hub::close_code;
use crate::hub::socket_writer::ping_frame;
use crate::hub::SessionHandle;

/// Sessions are pinged in this many slices, one slice per heartbeat / `SLICES`.
const SLICES: u64 = 16;

/// Runs until shutdown.
pub async fn run(state: Arc<AppState>) {
    let heartbeat = state.config.heartbeat;
    let tick = (heartbeat / SLICES as u32).max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut slice = 0;
    while state
        .shutdown
        .run_until_cancelled(ticks.tick())
        .await
        .is_some()
    {
        let due: Vec<Arc<SessionHandle>> = state
            .live_sessions()
            .values()
            .filter(|(handle, _)| handle.id % SLICES == slice)
            .map(|(handle, _)| Arc::clone(handle))
            .collect();
        slice = (slice + 1) % SLICES;
        for handle in due {
            beat(&handle, heartbeat);
        }
    }
}

/// Pings one session, or drops it when its client has gone silent.
fn beat(handle: &SessionHandle, heartbeat: Duration) {
    let Some(writer) = handle.socket() else {
        return; // SSE streams send their own comments
    };
    if writer.silent_for() > 2 * heartbeat {
        handle.close(close_code::NO_ANSWER);
        return;
    }
    if writer.queue_raw(ping_frame()).is_ok() {
        writer.flush_now().record(handle.protocol);
    }
}
