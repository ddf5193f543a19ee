//! One WebSocket connection, from the first frame to the close: the session task owns
//! the socket and the receiving end of its bounded queue. It writes queued frames in
//! batches (feed several, flush once), hands client frames to [`ClientState`], pings
//! every heartbeat, and closes with the code the situation calls for (see the close
//! code table in spec/clients.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use tokio::sync::mpsc;

use super::limits::Slot;
use super::requests::ClientState;
use super::routes::AppState;
use crate::auth::Grant;
use crate::hub::{close_code, Outbound};
use crate::ops::metrics;
use crate::protocol::{native, wamp1, Protocol};

/// Frames written per flush at most, so one busy session cannot starve its reads.
const MAX_BATCH: usize = 64;

/// How long a closing session waits for its close frame to be written.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a session needs from the route that accepted it.
pub struct SessionContext {
    pub state: Arc<AppState>,
    pub grant: Grant,
    pub protocol: Protocol,
    pub peer: SocketAddr,
    /// Held for the session's life: its place under the connection limits.
    pub slot: Slot,
}

/// How the loop ended.
enum End {
    /// Send this close frame, then drop the connection.
    Close(u16, &'static str),
    /// The connection is gone or dead: nothing more to send.
    Gone(&'static str),
}

pub async fn run(mut socket: WebSocket, context: SessionContext) {
    let SessionContext {
        state,
        grant,
        protocol,
        peer,
        slot: _slot,
    } = context;
    let (handle, mut queue) = state.hub.register(protocol);
    state
        .live_sessions()
        .insert(handle.id, (Arc::clone(&handle), grant.credential.clone()));
    let name = session_name();

    metrics::connection_opened(protocol);
    tracing::debug!(session = %name, %peer, protocol = protocol.label(), token = %grant.name, "connection opened");

    let heartbeat = state.config.heartbeat;
    // WAMP v2 clients speak first (HELLO); the others are welcomed at once.
    let welcome = match protocol {
        Protocol::Native => Some(native::welcome(&name, heartbeat.as_secs())),
        Protocol::Wamp1 => Some(wamp1::welcome(
            &name,
            concat!("push-bridge/", env!("CARGO_PKG_VERSION")),
        )),
        Protocol::Wamp2 | Protocol::Sse => None,
    };
    let mut client = ClientState::new(Arc::clone(&state), Arc::clone(&handle), grant);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let mut last_heard = Instant::now();

    let welcomed = match welcome {
        Some(welcome) => socket.send(Message::Text(welcome.into())).await.is_ok(),
        None => true,
    };
    let end = if !welcomed {
        End::Gone("welcome not written")
    } else {
        // The grant only changes by a WAMP v2 ticket, i.e. on a client frame.
        let mut expiry = expiry_deadline(client.grant().expires_at);
        loop {
            // Biased, in this order: a close request or shutdown first; then the rare
            // heartbeat tick and client frames, so a busy queue never starves reads
            // (pongs must be read for the heartbeat to see the client alive).
            tokio::select! {
                biased;
                code = handle.close_requested() => break End::Close(code, reason_for(code)),
                _ = state.shutdown.cancelled() => {
                    // Stop routing to this session, then flush what is already queued.
                    client.unsubscribe_all();
                    let flushed = tokio::select! {
                        r = write_queued(&mut socket, &mut queue, &client) => r,
                        _ = handle.close_requested() => Ok(()),
                    };
                    break match flushed {
                        Ok(()) => End::Close(close_code::GOING_AWAY, "the bridge is shutting down"),
                        Err(()) => End::Gone("write failed"),
                    };
                }
                _ = sleep_until_some(expiry) => {
                    break End::Close(close_code::TOKEN_EXPIRED, reason_for(close_code::TOKEN_EXPIRED));
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > 2 * heartbeat {
                        break End::Gone("no answer to two heartbeats");
                    }
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        break End::Gone("write failed");
                    }
                }
                inbound = socket.recv() => {
                    last_heard = Instant::now();
                    let message = match inbound {
                        None => break End::Gone("client went away"),
                        Some(Err(error)) => break read_error(error),
                        Some(Ok(message)) => message,
                    };
                    match message {
                        Message::Text(text) => {
                            let reply = client.handle_text(&text).await;
                            expiry = expiry_deadline(client.grant().expires_at);
                            let mut failed = false;
                            for frame in reply.frames {
                                if socket.feed(Message::Text(frame.into())).await.is_err() {
                                    failed = true;
                                    break;
                                }
                            }
                            if failed || socket.flush().await.is_err() {
                                break End::Gone("write failed");
                            }
                            if let Some((code, reason)) = reply.close {
                                break End::Close(code, reason);
                            }
                        }
                        Message::Binary(_) => {
                            metrics::refused_client_action(protocol, "binary");
                            break End::Close(close_code::UNSUPPORTED_DATA, "binary frames are not accepted");
                        }
                        Message::Close(_) => {
                            // tungstenite queued the close reply; let it leave.
                            let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, socket.flush()).await;
                            break End::Gone("client closed");
                        }
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                Some(first) = queue.recv() => {
                    let written = tokio::select! {
                        r = write_batch(&mut socket, first, &mut queue, &client) => r,
                        code = handle.close_requested() => break End::Close(code, reason_for(code)),
                    };
                    if written.is_err() {
                        break End::Gone("write failed");
                    }
                }
            }
        }
    };

    client.unsubscribe_all();
    state.live_sessions().remove(&handle.id);
    drop(queue);
    let code = match end {
        End::Close(code, reason) => {
            if code == close_code::SLOW_CONSUMER {
                tracing::info!(session = %name, %peer, token = %client.grant().name, "slow consumer closed (send queue full)");
            }
            if let Some(farewell) = client.farewell(code) {
                let _ = tokio::time::timeout(
                    CLOSE_WRITE_TIMEOUT,
                    socket.send(Message::Text(farewell.into())),
                )
                .await;
            }
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = tokio::time::timeout(
                CLOSE_WRITE_TIMEOUT,
                socket.send(Message::Close(Some(frame))),
            )
            .await;
            Some(code)
        }
        End::Gone(why) => {
            tracing::trace!(session = %name, why, "connection ended");
            None
        }
    };
    metrics::connection_closed(protocol);
    tracing::debug!(session = %name, %peer, protocol = protocol.label(), token = %client.grant().name, close_code = ?code, "connection closed");
}

/// Writes `first` and whatever else is queued (up to [`MAX_BATCH`]), then flushes.
/// Frames the client no longer wants (a WAMP v2 EVENT for a subscription it left
/// since the frame was queued) are skipped.
async fn write_batch(
    socket: &mut WebSocket,
    first: Outbound,
    queue: &mut mpsc::Receiver<Outbound>,
    client: &ClientState,
) -> Result<(), ()> {
    let oldest = first.received;
    let mut frames = 0;
    let mut next = Some(first);
    while let Some(outbound) = next.take() {
        if client.still_wanted(outbound.subscription) {
            socket
                .feed(Message::Text(outbound.frame))
                .await
                .map_err(drop)?;
            frames += 1;
        }
        if frames < MAX_BATCH {
            next = queue.try_recv().ok();
        }
    }
    socket.flush().await.map_err(drop)?;
    metrics::events_delivered(client.protocol(), frames as u64, oldest.elapsed());
    Ok(())
}

/// Writes everything still queued (the drain on shutdown).
async fn write_queued(
    socket: &mut WebSocket,
    queue: &mut mpsc::Receiver<Outbound>,
    client: &ClientState,
) -> Result<(), ()> {
    while let Ok(first) = queue.try_recv() {
        write_batch(socket, first, queue, client).await?;
    }
    Ok(())
}

fn read_error(error: axum::Error) -> End {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
    match error.into_inner().downcast_ref::<Error>() {
        Some(Error::Capacity(CapacityError::MessageTooLong { .. })) => {
            End::Close(close_code::TOO_BIG, "frame too large")
        }
        Some(Error::Utf8(_)) => End::Close(close_code::INVALID_PAYLOAD, "invalid UTF-8"),
        _ => End::Gone("read failed"),
    }
}

fn reason_for(code: u16) -> &'static str {
    match code {
        close_code::SLOW_CONSUMER => "slow consumer: send queue overflowed",
        close_code::TOKEN_EXPIRED => "token expired",
        close_code::TOKEN_REVOKED => "token revoked",
        close_code::GOING_AWAY => "the bridge is shutting down",
        _ => "",
    }
}

/// When a token expiring at `expires_at` must be closed, on the runtime's clock.
pub(super) fn expiry_deadline(expires_at: Option<SystemTime>) -> Option<tokio::time::Instant> {
    let expires_at = expires_at?;
    let left = expires_at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Some(tokio::time::Instant::now() + left)
}

/// Sleeps until `deadline`, or forever when there is none.
pub(super) async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A random session id for the welcome frame (16 hex digits).
fn session_name() -> String {
    format!("{:016x}", rand::random::<u64>())
}
