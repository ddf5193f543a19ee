//! One WebSocket connection, from the first frame to the close. The socket's write side
//! is a [`SocketWriter`] shared with the hub, which writes event frames into it
//! directly; the session task reads client frames (tungstenite, over the same socket),
//! hands them to [`ClientState`], writes what the socket could not take at once when it
//! becomes writable again, pings every heartbeat, and closes with the code the
//! situation calls for (see the close code table in docs/protocol.md).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::limits::Slot;
use super::requests::ClientState;
use super::routes::AppState;
use super::stall::StallGuard;
use crate::auth::Grant;
use crate::hub::close_code;
use crate::hub::socket_writer::{close_frame, text_frame, RawStream, SocketWriter};
use crate::hub::SessionHandle;
use crate::ops::metrics;
use crate::protocol::{native, wamp1, Protocol};

/// How long a closing session waits for its close frame to be written.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes read from the socket at a time. Clients send little (subscribe, pong), so a
/// small buffer keeps idle connections lean; a larger frame grows it as needed.
const READ_CHUNK: usize = 128;

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
    /// End the connection without a close frame (a FIN after what was written): a WAMP
    /// v1 session at a drain, so AutobahnJS 0.x sees a lost connection and reconnects.
    Cut(&'static str),
}

/// Serves one upgraded connection to its end. Everything a session keeps for its life
/// lives in [`Session`]; this function's own state is small, as thousands of idle
/// sessions each hold one.
pub async fn run(on_upgrade: OnUpgrade, context: Box<SessionContext>) {
    let Some(mut session) = Session::open(on_upgrade, context).await else {
        return;
    };
    let end = session.serve().await;
    Box::pin(session.close(end)).await;
}

/// One open WebSocket session.
struct Session {
    state: Arc<AppState>,
    writer: Arc<SocketWriter>,
    socket: WebSocketStream<SocketIo>,
    handle: Arc<SessionHandle>,
    client: ClientState,
    name: String,
    peer: SocketAddr,
    /// When the token expires (allocated only for a token that does).
    expiry: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Held for the session's life: its place under the connection limits.
    _slot: Slot,
}

impl Session {
    /// Takes the connection over once the `101` is out, registers with the hub, and
    /// welcomes the client.
    async fn open(on_upgrade: OnUpgrade, context: Box<SessionContext>) -> Option<Session> {
        let SessionContext {
            state,
            grant,
            protocol,
            peer,
            slot,
        } = *context;
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%peer, %error, "upgrade failed");
                return None;
            }
        };
        let (stream, leftover) = match raw_stream(upgraded, &state) {
            Ok(raw) => raw,
            Err(error) => {
                tracing::debug!(%peer, %error, "cannot take over the upgraded connection");
                return None;
            }
        };
        let writer = Arc::new(SocketWriter::new(stream));
        let max_inbound = state.config.max_inbound_frame_bytes;
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_CHUNK)
            .write_buffer_size(0)
            .max_message_size(Some(max_inbound))
            .max_frame_size(Some(max_inbound));
        let socket = WebSocketStream::from_partially_read(
            SocketIo(Arc::clone(&writer)),
            leftover,
            Role::Server,
            Some(config),
        )
        .await;
        let handle = state.hub.register_socket(protocol, Arc::clone(&writer));
        state
            .live_sessions()
            .insert(handle.id, (Arc::clone(&handle), grant.credential.clone()));
        if state.shutdown.is_cancelled() {
            // Registered after the drain told every session to go.
            handle.close(close_code::GOING_AWAY);
        }
        let name = session_name();
        metrics::connection_opened(protocol);
        tracing::debug!(session = %name, %peer, protocol = protocol.label(), token = %grant.name, "connection opened");

        // WAMP v2 clients speak first (HELLO); the others are welcomed at once.
        let welcome = match protocol {
            Protocol::Native => Some(native::welcome(&name, state.config.heartbeat.as_secs())),
            Protocol::Wamp1 => Some(wamp1::welcome(
                &name,
                concat!("push-bridge/", env!("CARGO_PKG_VERSION")),
            )),
            Protocol::Wamp2 | Protocol::Sse => None,
        };
        if let Some(welcome) = welcome {
            // Cannot fail on a fresh writer; a broken socket shows in the first write.
            let _ = writer.queue_raw(text_frame(welcome.as_bytes()));
        }
        let client = ClientState::new(Arc::clone(&state), Arc::clone(&handle), grant);
        let mut session = Session {
            state,
            writer,
            socket,
            handle,
            client,
            name,
            peer,
            expiry: None,
            _slot: slot,
        };
        session.set_expiry();
        Some(session)
    }

    fn protocol(&self) -> Protocol {
        self.handle.protocol
    }

    /// The grant only changes by a WAMP v2 ticket, i.e. on a client frame.
    fn set_expiry(&mut self) {
        self.expiry = expiry_deadline(self.client.grant().expires_at)
            .map(|deadline| Box::pin(tokio::time::sleep_until(deadline)));
    }

    /// Runs until the session must end. Heartbeat pings are sent, and silent clients
    /// found, by the server's heartbeat task (server/heartbeat.rs); shutdown arrives
    /// as a close request with `1001`.
    async fn serve(&mut self) -> End {
        loop {
            // Biased, in this order: a close request first; then client frames, so a
            // busy socket never starves reads (pongs must be read for the heartbeat to
            // see the client alive); then writes.
            tokio::select! {
                biased;
                code = self.handle.close_requested() => return self.closing(code).await,
                _ = expired(&mut self.expiry) => {
                    return End::Close(close_code::TOKEN_EXPIRED, reason_for(close_code::TOKEN_EXPIRED));
                }
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
    async fn closing(&mut self, code: u16) -> End {
        match code {
            close_code::NO_ANSWER => End::Gone("no answer to two heartbeats"),
            close_code::GOING_AWAY => {
                // Stop routing to this session, then write what is already queued.
                self.client.unsubscribe_all();
                match Box::pin(self.writer.write_all()).await {
                    Ok(written) => {
                        written.record(self.protocol());
                        if self.protocol() == Protocol::Wamp1 {
                            // No close frame, as at Ratchet's exit: AutobahnJS 0.x's
                            // `ab.connect` reconnects only after a lost connection and
                            // gives up for good after a clean close (docs/decisions.md).
                            End::Cut(reason_for(code))
                        } else {
                            End::Close(code, reason_for(code))
                        }
                    }
                    Err(_) => End::Gone("write failed"),
                }
            }
            code => End::Close(code, reason_for(code)),
        }
    }

    /// One client frame; `Some` when the session must end.
    async fn on_message(&mut self, message: Message) -> Option<End> {
        match message {
            Message::Text(text) => {
                // Answers go ahead of events routed meanwhile (a resume's replay before
                // the live events that follow it). Boxed: the rare long answer (a WAMP
                // v2 ticket checked by introspection) must not make every idle
                // session's state larger.
                self.writer.cork();
                let reply = Box::pin(self.client.handle_text(&text)).await;
                self.set_expiry();
                let answers = reply
                    .frames
                    .iter()
                    .map(|f| text_frame(f.as_bytes()))
                    .collect();
                let client = &self.client;
                self.writer
                    .uncork(answers, |subscription| client.still_wanted(subscription));
                reply.close.map(|(code, reason)| End::Close(code, reason))
            }
            Message::Binary(_) => {
                metrics::refused_client_action(self.protocol(), "binary");
                Some(End::Close(
                    close_code::UNSUPPORTED_DATA,
                    "binary frames are not accepted",
                ))
            }
            Message::Close(_) => {
                // tungstenite queued the close reply; let it leave.
                self.writer.discard_events();
                let _ = Box::pin(tokio::time::timeout(
                    CLOSE_WRITE_TIMEOUT,
                    self.writer.write_all(),
                ))
                .await;
                Some(End::Gone("client closed"))
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
        }
    }

    /// Leaves the hub, then says goodbye the way `end` calls for.
    async fn close(mut self, end: End) {
        self.client.unsubscribe_all();
        self.state.live_sessions().remove(&self.handle.id);
        let (name, peer, protocol) = (&self.name, self.peer, self.protocol());
        let code = match end {
            End::Close(code, reason) => {
                if code == close_code::SLOW_CONSUMER {
                    tracing::info!(session = %name, %peer, token = %self.client.grant().name, "slow consumer closed (send queue full)");
                }
                if code != close_code::GOING_AWAY {
                    // The close must not wait behind events the client will not read.
                    self.writer.discard_events();
                }
                if let Some(farewell) = self.client.farewell(code) {
                    let _ = self.writer.queue_raw(text_frame(farewell.as_bytes()));
                }
                let _ = self.writer.queue_raw(close_frame(code, reason));
                let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, self.writer.write_all()).await;
                Some(code)
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

/// Resolves when the token expires; never without an expiry.
async fn expired(expiry: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match expiry {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

/// The upgraded connection as a socket the hub can write to from any thread, and the
/// bytes the client sent after its handshake. A plain TCP connection is used as it is;
/// any other (TLS) is relayed through a socket pair by a task of its own.
fn raw_stream(upgraded: Upgraded, state: &AppState) -> io::Result<(RawStream, Vec<u8>)> {
    match upgraded.downcast::<TokioIo<StallGuard<TcpStream>>>() {
        Ok(parts) => Ok((
            RawStream::Tcp(parts.io.into_inner().into_inner()),
            parts.read_buf.to_vec(),
        )),
        Err(upgraded) => {
            if state.config.tls.is_none() {
                // Every plain connection is a guarded TcpStream (accept_loop): this is
                // a bug, and it costs the direct write path, so say it loudly.
                tracing::error!("internal: a plain connection is relayed, not taken over");
            }
            let (near, far) = UnixStream::pair()?;
            state.sessions.spawn(relay(upgraded, far));
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
struct SocketIo(Arc<SocketWriter>);

impl AsyncRead for SocketIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let stream = self.0.stream();
        loop {
            ready!(stream.poll_read_ready(cx))?;
            match stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    self.0.heard();
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
            self.0
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
        Error::Capacity(CapacityError::MessageTooLong { .. }) => {
            End::Close(close_code::TOO_BIG, "frame too large")
        }
        Error::Utf8(_) => End::Close(close_code::INVALID_PAYLOAD, "invalid UTF-8"),
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
