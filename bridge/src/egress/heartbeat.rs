//! Heartbeats for every WebSocket session from one task (docs/configuration.md
//! `server.heartbeat`): each session is pinged once per heartbeat, a sixteenth of them
//! at a time, through its socket writer, and a session whose client has sent nothing
//! (not even a pong) for two heartbeats is dropped. One task instead of a timer per
//! session keeps idle sessions from waking up, and their state small.

use std::sync::Arc;
use std::time::Duration;

use super::connection::Connection;
use super::frame::ping_frame;
use super::Egress;
use crate::protocol::close::Close;

/// Sessions are pinged in this many slices, one slice per heartbeat / `SLICES`.
const SLICES: u64 = 16;

/// Runs until shutdown.
pub async fn run(egress: Arc<Egress>) {
    let heartbeat = egress.heartbeat;
    let tick = (heartbeat / SLICES as u32).max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut slice = 0;
    while egress
        .shutdown
        .run_until_cancelled(ticks.tick())
        .await
        .is_some()
    {
        let due = egress.live.sockets_in_slice(slice, SLICES);
        slice = (slice + 1) % SLICES;
        for connection in due {
            beat(&connection, heartbeat);
        }
    }
}

/// Pings one session, or drops it when its client has gone silent.
fn beat(connection: &Connection, heartbeat: Duration) {
    let Some(writer) = connection.socket_writer() else {
        return; // SSE streams send their own comments
    };
    if connection.silent_for() > 2 * heartbeat {
        connection.request_close(Close::NoAnswer);
        return;
    }
    if writer.queue_raw(ping_frame()).is_ok() {
        writer.flush_now().record(connection.protocol);
    }
}
