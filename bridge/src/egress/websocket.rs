//! One WebSocket connection, from the first frame to the close. Its socket's write side
//! is a [`SocketWriter`] shared with the ingress thread, which (through the hub and the
//! connection's outlet) writes event frames into it directly; the session task reads
//! client frames (tungstenite, over the same socket), feeds them to the protocol's
//! state machine ([`ClientSession`]) and applies the actions it returns, writes what
//! the socket could not take at once when it becomes writable again, and closes the
//! way the situation calls for (docs/protocol.md "Close codes").

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::connection::Connection;
use super::expiry::Expiry;
use super::frame::{close_frame, text_frame};
use super::stall::StallGuard;
use super::writer::{RawStream, SocketWriter};
use super::Egress;
use crate::auth::credentials::Presented;
use crate::auth::Grant;
use crate::ops::metrics;
use crate::protocol::close::Close;
use crate::protocol::session::{Action, ClientSession};
use crate::protocol::{wamp2, Protocol};

/// How long a closing session waits for its close frame to be written.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes read from the socket at a time. Clients send little (subscribe, pong), so a
/// small buffer keeps idle connections lean; a larger frame grows it as needed.
const READ_CHUNK: usize = 128;

/// A connection the server admitted and upgraded.
pub struct Admitted {
    pub grant: Grant,
    pub protocol: Protocol,
    pub peer: SocketAddr,
}

/// How the loop ended.
enum End {
    /// Send this close frame, then drop the connection.
    Close(Close),
    /// The connection is gone or dead: nothing more to send.
    Gone(&'static str),
    /// End the connection without a close frame (a FIN after what was written): a WAMP
    /// v1 session at a drain, so AutobahnJS 0.x sees a lost connection and reconnects.
    Cut(&'static str),
}

/// Serves one upgraded connection to its end; `guard` (its place under the connection
/// limits) is held until then. Everything a session keeps for its life lives in
/// [`Session`]; this function's own state is small, as thousands of idle sessions each
/// hold one.
pub async fn run<G: Send>(
    egress: Arc<Egress>,
    on_upgrade: OnUpgrade,
    admitted: Box<Admitted>,
    guard: G,
) {
    let _guard = guard;
    // Opening is boxed and scoped in a block so that what it needs does not stay in
    // the task's state for the session's life (a unit test below holds the size).
    let mut session = {
        let Admitted {
            grant,
            protocol,
            peer,
        } = *admitted;
        let Some(taken) = Box::pin(take_over(&egress, on_upgrade, protocol, peer)).await else {
            return;
        };
        let Some(session) = Session::new(egress, taken, grant, peer) else {
            return;
        };
        session
    };
    let end = session.serve().await;
    Box::pin(session.close(end)).await;
}

/// A connection taken over from hyper once the `101` is out: tungstenite reads it, the
/// socket writer writes it.
struct TakenOver {
    socket: WebSocketStream<SocketIo>,
    writer: Arc<SocketWriter>,
    connection: Arc<Connection>,
}

async fn take_over(
    egress: &Egress,
    on_upgrade: OnUpgrade,
    protocol: Protocol,
    peer: SocketAddr,
) -> Option<TakenOver> {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(error) => {
            tracing::debug!(%peer, %error, "upgrade failed");
            return None;
        }
    };
    let (stream, leftover) = match raw_stream(upgraded, egress) {
        Ok(raw) => raw,
        Err(error) => {
            tracing::debug!(%peer, %error, "cannot take over the upgraded connection");
            return None;
        }
    };
    let writer = Arc::new(SocketWriter::new(stream));
    let connection = Arc::new(Connection::socket(
        &egress.hub,
        protocol,
        Arc::clone(&writer),
        egress.send_queue,
    ));
    let max_inbound = egress.max_inbound_frame_bytes;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_CHUNK)
        .write_buffer_size(0)
        .max_message_size(Some(max_inbound))
        .max_frame_size(Some(max_inbound));
    let socket = WebSocketStream::from_partially_read(
        SocketIo {
            writer: Arc::clone(&writer),
            connection: Arc::clone(&connection),
        },
        leftover,
        Role::Server,
        Some(config),
    )
    .await;
    Some(TakenOver {
        socket,
        writer,
        connection,
    })
}

/// One open WebSocket session.
struct Session {
    egress: Arc<Egress>,
    connection: Arc<Connection>,
    writer: Arc<SocketWriter>,
    socket: WebSocketStream<SocketIo>,
    client: ClientSession,
    /// Its random name, shown in the welcome frame and the logs.
    name: SessionName,
    peer: SocketAddr,
    expiry: Expiry,
    /// Whether its subscriptions were already taken out of the hub.
    left_hub: bool,
}

impl Session {
    /// The session of a connection just taken over: registers it with the hub and
    /// welcomes the client. Synchronous, so that nothing the session keeps is held
    /// twice in the task's state.
    fn new(
        egress: Arc<Egress>,
        taken: TakenOver,
        grant: Grant,
        peer: SocketAddr,
    ) -> Option<Session> {
        let TakenOver {
            socket,
            writer,
            connection,
        } = taken;
        let protocol = connection.protocol;
        let name = SessionName(rand::random());
        let wamp2_session = wamp2::id_from_random(rand::random());
        let Some(client) = ClientSession::new(
            protocol,
            grant,
            &egress.settings,
            name.to_string(),
            wamp2_session,
        ) else {
            tracing::error!(%peer, protocol = protocol.label(), "internal: not a WebSocket protocol");
            return None;
        };
        egress.live.insert(
            connection.id(),
            &connection,
            client.grant().credential.clone(),
        );
        if egress.shutdown.is_cancelled() {
            // Registered after the drain told every session to go.
            connection.request_close(Close::GoingAway);
        }
        metrics::connection_opened(protocol);
        tracing::debug!(session = %name, %peer, protocol = protocol.label(), token = %client.grant().name, "connection opened");
        let expiry = Expiry::new(client.grant().expires_at);
        let mut session = Session {
            egress,
            connection,
            writer,
            socket,
            client,
            name,
            peer,
            expiry,
            left_hub: false,
        };
        // The welcome (WAMP v2 clients speak first: nothing).
        for action in session.client.opened() {
            match action {
                // Cannot fail on a fresh writer; a broken socket shows in the first write.
                Action::Send(text) => drop(session.writer.queue_raw(text_frame(text.as_bytes()))),
                other => tracing::error!(?other, "internal: an opening action that is not a frame"),
            }
        }
        Some(session)
    }

    fn protocol(&self) -> Protocol {
        self.connection.protocol
    }

    /// Runs until the session must end. Heartbeat pings are sent, and silent clients
    /// found, by the heartbeat task (egress/heartbeat.rs); shutdown arrives as a close
    /// request with `1001`.
    async fn serve(&mut self) -> End {
        loop {
            // Biased, in this order: a close request first; then client frames, so a
            // busy socket never starves reads (pongs must be read for the heartbeat to
            // see the client alive); then writes.
            tokio::select! {
                biased;
                close = self.connection.close_requested() => return self.closing(close).await,
                _ = self.expiry.expired() => return End::Close(Close::TokenExpired),
                inbound = self.socket.next() => {
                    let message = match inbound {
                        None => return End::Gone("client went away"),
                        Some(Err(error)) => return read_error(error),
                        Some(Ok(message)) => message,
                    };
                    if let Some(end) = self.on_message(message).await {
                        return end;
                    }
                }
                written = self.writer.write_when_ready() => match written {
                    Ok(written) => written.record(self.protocol()),
                    Err(_) => return End::Gone("write failed"),
                },
            }
        }
    }

    /// What a close request turns into.
    async fn closing(&mut self, close: Close) -> End {
        match close {
            Close::NoAnswer => End::Gone("no answer to two heartbeats"),
            Close::GoingAway => {
                // Stop routing to this session, then write what is already queued.
                self.leave_hub();
                match Box::pin(self.writer.write_all()).await {
                    Ok(written) => {
                        written.record(self.protocol());
                        if self.protocol() == Protocol::Wamp1 {
                            // No close frame, as at Ratchet's exit: AutobahnJS 0.x's
                            // `ab.connect` reconnects only after a lost connection and
                            // gives up for good after a clean close (docs/decisions.md).
                            End::Cut(close.reason())
                        } else {
                            End::Close(close)
                        }
                    }
                    Err(_) => End::Gone("write failed"),
                }
            }
            close => End::Close(close),
        }
    }

    /// One client frame; `Some` when the session must end.
    async fn on_message(&mut self, message: Message) -> Option<End> {
        let actions = match message {
            Message::Text(text) => self.client.on_text(&text, Instant::now()),
            Message::Binary(_) => self.client.on_binary(),
            Message::Close(_) => {
                // tungstenite queued the close reply; let it leave.
                self.writer.discard_events();
                let _ = Box::pin(tokio::time::timeout(
                    CLOSE_WRITE_TIMEOUT,
                    self.writer.write_all(),
                ))
                .await;
                return Some(End::Gone("client closed"));
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return None,
        };
        // Boxed: the rare long answer (a WAMP v2 ticket checked by introspection) must
        // not make every idle session's state larger.
        Box::pin(self.answer(actions)).await.map(End::Close)
    }

    /// Applies the actions answering one client frame. The answers go ahead of events
    /// routed meanwhile (a resume's replay before the live events that follow it).
    async fn answer(&mut self, actions: Vec<Action>) -> Option<Close> {
        self.writer.cork();
        let mut answers = Vec::new();
        let close = self.apply(actions, &mut answers).await;
        let client = &self.client;
        self.writer.uncork(answers, |tag| client.wants(tag));
        close
    }

    /// Carries out what the state machine asked for, in order (answers to `Resume` and
    /// `Authenticate` come before what followed them); returns the close it asked for.
    async fn apply(&mut self, actions: Vec<Action>, answers: &mut Vec<Bytes>) -> Option<Close> {
        let mut pending = VecDeque::from(actions);
        while let Some(action) = pending.pop_front() {
            let hub = &self.egress.hub;
            match action {
                Action::Send(text) => answers.push(text_frame(text.as_bytes())),
                Action::Subscribe(patterns) => {
                    for pattern in &patterns {
                        hub.subscribe(&self.connection, pattern);
                    }
                }
                Action::Resume {
                    patterns,
                    already,
                    since,
                } => {
                    let continuity = self.egress.log.continuity().await;
                    let replay = self.egress.resume(
                        &self.connection,
                        &patterns,
                        &already,
                        &since,
                        continuity,
                    );
                    let then = self.client.resumed(replay);
                    then.into_iter().rev().for_each(|a| pending.push_front(a));
                }
                Action::Unsubscribe(patterns) => {
                    for pattern in &patterns {
                        hub.unsubscribe(self.connection.id(), pattern);
                    }
                }
                Action::AddRoute {
                    pattern,
                    match_,
                    id,
                } => self.connection.add_route(&pattern, match_, id),
                Action::RemoveRoute { pattern, id } => self.connection.remove_route(&pattern, id),
                Action::Authenticate(ticket) => {
                    let auth = self.egress.auth.get();
                    let result = auth.authenticate(&Presented::Token(vec![ticket])).await;
                    if let Ok(grant) = &result {
                        self.egress.live.insert(
                            self.connection.id(),
                            &self.connection,
                            grant.credential.clone(),
                        );
                    }
                    let then = self.client.authenticated(result);
                    self.expiry = Expiry::new(self.client.grant().expires_at);
                    then.into_iter().rev().for_each(|a| pending.push_front(a));
                }
                Action::Refused(action) => metrics::refused_client_action(self.protocol(), action),
                Action::AuthFailed(reason) => metrics::auth_failure(reason),
                Action::Close(close) => return Some(close),
            }
        }
        None
    }

    /// Takes every subscription of this session out of the hub (once).
    fn leave_hub(&mut self) {
        if !std::mem::replace(&mut self.left_hub, true) {
            self.egress
                .hub
                .unsubscribe_all(self.connection.id(), self.client.patterns());
        }
    }

    /// Leaves the hub, then says goodbye the way `end` calls for.
    async fn close(&mut self, end: End) {
        self.leave_hub();
        self.egress.live.remove(self.connection.id());
        let (name, peer, protocol) = (&self.name, self.peer, self.protocol());
        let code = match end {
            End::Close(close) => {
                if close == Close::SlowConsumer {
                    tracing::info!(session = %name, %peer, token = %self.client.grant().name, "slow consumer closed (send queue full)");
                }
                if close != Close::GoingAway {
                    // The close must not wait behind events the client will not read.
                    self.writer.discard_events();
                }
                if let Some(farewell) = self.client.farewell(close) {
                    let _ = self.writer.queue_raw(text_frame(farewell.as_bytes()));
                }
                let _ = self
                    .writer
                    .queue_raw(close_frame(close.code(), close.reason()));
                let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, self.writer.write_all()).await;
                Some(close.code())
            }
            End::Gone(why) => {
                tracing::trace!(session = %name, why, "connection ended");
                None
            }
            End::Cut(why) => {
                if let Err(error) = self.writer.cut() {
                    tracing::trace!(session = %name, %error, "cannot end the connection cleanly");
                }
                tracing::trace!(session = %name, why, "connection ended without a close frame");
                None
            }
        };
        self.writer.close();
        metrics::connection_closed(protocol);
        tracing::debug!(session = %name, %peer, protocol = protocol.label(), token = %self.client.grant().name, close_code = ?code, "connection closed");
    }
}

/// The upgraded connection as a socket the hub can write to from any thread, and the
/// bytes the client sent after its handshake. A plain TCP connection is used as it is;
/// any other (TLS) is relayed through a socket pair by a task of its own.
fn raw_stream(upgraded: Upgraded, egress: &Egress) -> io::Result<(RawStream, Vec<u8>)> {
    match upgraded.downcast::<TokioIo<StallGuard<TcpStream>>>() {
        Ok(parts) => Ok((
            RawStream::Tcp(parts.io.into_inner().into_inner()),
            parts.read_buf.to_vec(),
        )),
        Err(upgraded) => {
            if !egress.tls {
                // Every plain connection is a guarded TcpStream (server::accept_loop): this is
                // a bug, and it costs the direct write path, so say it loudly.
                tracing::error!("internal: a plain connection is relayed, not taken over");
            }
            let (near, far) = UnixStream::pair()?;
            egress.tasks.spawn(relay(upgraded, far));
            Ok((RawStream::Unix(near), Vec::new()))
        }
    }
}

/// Copies between the client's connection and the session's end of the socket pair
/// until the session ends (its end closes) or the client goes.
async fn relay(upgraded: Upgraded, far: UnixStream) {
    let (mut client_read, mut client_write) = tokio::io::split(TokioIo::new(upgraded));
    let (mut far_read, mut far_write) = far.into_split();
    tokio::select! {
        _ = tokio::io::copy(&mut far_read, &mut client_write) => {
            let _ = client_write.shutdown().await;
        }
        _ = tokio::io::copy(&mut client_read, &mut far_write) => {}
    }
}

/// The session's socket as tungstenite's stream: reads come from the socket, writes
/// (tungstenite's automatic pong and close replies) join the writer's queue.
struct SocketIo {
    writer: Arc<SocketWriter>,
    connection: Arc<Connection>,
}

impl AsyncRead for SocketIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let stream = self.writer.stream();
        loop {
            ready!(stream.poll_read_ready(cx))?;
            match stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    self.connection.heard();
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SocketIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(
            self.writer
                .queue_raw(Bytes::copy_from_slice(buf))
                .map(|()| buf.len()),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The session loop writes the queue out.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn read_error(error: tokio_tungstenite::tungstenite::Error) -> End {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
    match error {
        Error::Capacity(CapacityError::MessageTooLong { .. }) => End::Close(Close::TooBig),
        Error::Utf8(_) => End::Close(Close::InvalidUtf8),
        _ => End::Gone("read failed"),
    }
}

/// A session's random name: 16 hex digits in the welcome frame and the logs (kept as
/// the number, so an idle session holds no string for it).
#[derive(Debug, Clone, Copy)]
struct SessionName(u64);

impl std::fmt::Display for SessionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<A, B, C, D, F>(_: fn(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every idle connection holds one session task: its state is most of a
    /// connection's memory (docs/benchmarks.md, W4). It was 1,272 bytes before the
    /// session logic became a state machine; keep it there or below.
    #[test]
    fn an_idle_session_task_stays_small() {
        let size = future_size(run::<crate::server::limits::Slot>);
        assert!(
            size <= 1272,
            "the session task's state grew to {size} bytes"
        );
    }
}
