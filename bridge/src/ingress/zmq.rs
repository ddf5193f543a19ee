//! The seam to libzmq (crate `zmq`, a vendored libzmq 4.3.4): every ZeroMQ call of the
//! ingress lives in this file. It opens the sockets, then runs one blocking poll loop
//! on a dedicated thread and passes each received message's frames to [`Dispatch`].
//! libzmq rather than a pure-Rust ZMTP stack because libzmq peers (pyzmq, php-zmq,
//! node `zeromq`) must work in every case: ZMTP 3.1 heartbeats, SUB reconnects,
//! high-water marks and linger (see docs/zeromq.md).
//!
//! Socket options and why:
//! - linger 0: at shutdown nothing is waiting to be sent (we only receive), so close
//!   at once;
//! - receive high-water mark [`RCV_HWM`] messages per peer: absorbs a burst while the
//!   sink is busy; beyond it a PUSH peer is pushed back on and a PUB drops;
//! - `ZMQ_MAXMSGSIZE` (per frame) at twice `max_message_bytes`, at least
//!   [`MIN_FRAME_CEILING`]: libzmq *disconnects* a peer whose frame exceeds it,
//!   before buffering the frame, losing whatever that peer had in flight. A message
//!   only a little too large is therefore received and rejected visibly (warning,
//!   `too_large`); only an absurd frame, which would otherwise have been buffered
//!   whole in memory, costs the peer its connection (it reconnects by itself);
//! - TCP keepalive (60 s idle, 3 probes 10 s apart): a publisher host that vanished
//!   is noticed without ZMTP heartbeats, which some non-libzmq peers do not speak;
//! - SUB reconnect interval 100 ms, doubling up to 1 s: a restarted publisher is
//!   reached again within about a second however long it was down (with a 5 s cap,
//!   measured: 1.6 s after a 1.5 s outage), at the cost of one refused connect per
//!   second to a publisher that is gone.
//!
//! Shutdown: the loop also polls an inproc PAIR socket; [`Running::shutdown`] sends
//! one empty message on its twin and joins the thread. [`Running::drain_and_shutdown`]
//! sends the time left instead, and the thread then settles before it returns (see
//! [`settle`]): what libzmq already received is handed on, never dropped.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::dispatch::{Dispatch, SocketId};
use super::error::IngressError;
use crate::config::IngressConfig;

/// Receive high-water mark, in messages, per peer of each socket.
const RCV_HWM: i32 = 10_000;

/// The kernel receive buffer of every connection, in bytes (`ZMQ_RCVBUF`). Without it
/// Linux grows it up to `net.ipv4.tcp_rmem` (6 MiB by default, often more) behind a
/// busy bridge, and whatever it holds when the bridge stops is lost: bounded, it is
/// something a publisher's resend window can cover (docs/restarts.md).
const KERNEL_RCVBUF: i32 = 64 * 1024;

/// Lower bound of the per-frame size at which libzmq disconnects a peer.
const MIN_FRAME_CEILING: usize = 16 * 1024 * 1024;

const RECONNECT_IVL_MS: i32 = 100;
const RECONNECT_IVL_MAX_MS: i32 = 1_000;
const TCP_KEEPALIVE_IDLE_S: i32 = 60;
const TCP_KEEPALIVE_INTVL_S: i32 = 10;
const TCP_KEEPALIVE_CNT: i32 = 3;

/// Messages taken from one socket before polling again, so a flooding publisher
/// cannot starve the other sockets or delay shutdown.
const BATCH: usize = 256;

/// Pause after an unexpected poll error, so a persistent one cannot spin a core.
const ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The stop channel's name, private to this ingress's own context.
const STOP_ENDPOINT: &str = "inproc://push-bridge-ingress-stop";

/// At a draining stop, the endpoints stay open until no message arrived for this long…
const SETTLE_QUIET: Duration = Duration::from_millis(100);

/// …or for at most this long: a publisher that never pauses must not hold the restart.
const SETTLE_MAX: Duration = Duration::from_millis(500);

/// After the endpoints are closed, libzmq tears the connections down on its I/O
/// thread; their queued messages are read until none came for this long.
const DETACHED_QUIET: Duration = Duration::from_millis(20);

/// Time given to handing on the queued messages even when the drain deadline has
/// passed (the clients' drain may have used all of it): they are already in memory.
const DETACHED_MIN: Duration = Duration::from_millis(500);

/// How a socket is let go of at a draining stop.
enum Detach {
    /// A PULL socket: unbind its actual endpoint (listener and accepted connections).
    Unbind(String),
    /// A SUB socket: disconnect from its publisher.
    Disconnect(String),
}

/// The receive thread and what it takes to stop it.
pub(super) struct Running {
    bound: Vec<String>,
    /// The sending end of the stop channel (in a mutex only so that `Ingress` is
    /// `Sync`; it is used once, from `shutdown` or `drop`).
    stop: Mutex<Option<zmq::Socket>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    pub(super) fn bound_endpoints(&self) -> &[String] {
        &self.bound
    }

    pub(super) fn shutdown(mut self) {
        self.stop_and_join(None);
    }

    /// Stops without dropping what libzmq received: see [`settle`]. Returns once the
    /// thread is done, normally before `deadline`.
    pub(super) fn drain_and_shutdown(mut self, deadline: Instant) {
        self.stop_and_join(Some(deadline));
    }

    fn stop_and_join(&mut self, drain_until: Option<Instant>) {
        let stop = self
            .stop
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(thread) = self.thread.take() else {
            return;
        };
        // Empty: stop at once; otherwise the time left to settle, in milliseconds.
        let request = drain_until.map_or_else(Vec::new, |deadline| {
            let left = deadline.saturating_duration_since(Instant::now());
            u64::try_from(left.as_millis())
                .unwrap_or(u64::MAX)
                .to_le_bytes()
                .to_vec()
        });
        if let Some(stop) = &stop {
            if let Err(e) = stop.send(request, zmq::DONTWAIT) {
                // Cannot happen on a fresh inproc pipe; without it the join would hang.
                tracing::error!(
                    "cannot signal the ingress thread to stop ({e}); not waiting for it"
                );
                return;
            }
        }
        if thread.join().is_err() {
            tracing::error!(
                "the ingress thread had panicked; messages since then were not received"
            );
        }
        // `stop`, the last socket of the context, closes here; the context then ends.
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_and_join(None);
    }
}

/// Opens every socket (bind errors are startup errors), then starts the thread.
pub(super) fn start(
    config: &IngressConfig,
    mut dispatch: Dispatch,
) -> Result<Running, IngressError> {
    for endpoint in config.pull.iter().chain(&config.sub) {
        check_endpoint(endpoint)?;
    }
    if !config.sub.is_empty() && config.sub_prefixes.is_empty() {
        tracing::warn!("ingress.sub_prefixes is empty: the SUB sockets will receive nothing");
    }
    let context = zmq::Context::new();
    let mut sockets = Vec::with_capacity(config.pull.len() + config.sub.len());
    let mut detach = Vec::with_capacity(sockets.capacity());
    let mut bound = Vec::with_capacity(config.pull.len());

    for endpoint in &config.pull {
        let socket = new_socket(&context, zmq::PULL, endpoint, config)?;
        guarded(|| socket.bind(endpoint)).map_err(|e| IngressError::Bind {
            endpoint: endpoint.clone(),
            reason: describe(e),
            invalid: matches!(e, Some(zmq::Error::EINVAL)),
        })?;
        let actual = match socket.get_last_endpoint() {
            Ok(Ok(actual)) => actual,
            _ => endpoint.clone(),
        };
        bound.push(actual.clone());
        detach.push(Detach::Unbind(actual));
        sockets.push((socket, dispatch.add_socket(endpoint)));
    }

    for endpoint in &config.sub {
        let socket = new_socket(&context, zmq::SUB, endpoint, config)?;
        let setup = |e| setup_error(endpoint, e);
        socket.set_reconnect_ivl(RECONNECT_IVL_MS).map_err(setup)?;
        socket
            .set_reconnect_ivl_max(RECONNECT_IVL_MAX_MS)
            .map_err(setup)?;
        for prefix in &config.sub_prefixes {
            socket.set_subscribe(prefix.as_bytes()).map_err(setup)?;
        }
        guarded(|| socket.connect(endpoint)).map_err(|e| IngressError::Connect {
            endpoint: endpoint.clone(),
            reason: describe(e),
            invalid: matches!(e, Some(zmq::Error::EINVAL)),
        })?;
        detach.push(Detach::Disconnect(endpoint.clone()));
        sockets.push((socket, dispatch.add_socket(endpoint)));
    }

    let stop_setup = |e| setup_error(STOP_ENDPOINT, e);
    let stop_rx = context.socket(zmq::PAIR).map_err(stop_setup)?;
    stop_rx.set_linger(0).map_err(stop_setup)?;
    stop_rx.bind(STOP_ENDPOINT).map_err(stop_setup)?;
    let stop_tx = context.socket(zmq::PAIR).map_err(stop_setup)?;
    stop_tx.set_linger(0).map_err(stop_setup)?;
    stop_tx.connect(STOP_ENDPOINT).map_err(stop_setup)?;

    let thread = std::thread::Builder::new()
        .name("ingress".to_string())
        .spawn(move || {
            if let Some(left) = run(&sockets, &stop_rx, &mut dispatch) {
                settle(&sockets, &detach, &mut dispatch, Instant::now() + left);
            }
        })
        .map_err(IngressError::Thread)?;

    Ok(Running {
        bound,
        stop: Mutex::new(Some(stop_tx)),
        thread: Some(thread),
    })
}

/// The transports the bridge supports (`tcp://`, `ipc://`); others are refused early
/// with a message saying what to write.
fn check_endpoint(endpoint: &str) -> Result<(), IngressError> {
    let invalid = |reason: &str| IngressError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    if endpoint.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    if !(endpoint.starts_with("tcp://") || endpoint.starts_with("ipc://")) {
        return Err(invalid(
            "unsupported transport; write tcp://HOST:PORT or ipc:///PATH",
        ));
    }
    Ok(())
}

/// A receiving socket with the options every ingress socket shares.
fn new_socket(
    context: &zmq::Context,
    kind: zmq::SocketType,
    endpoint: &str,
    config: &IngressConfig,
) -> Result<zmq::Socket, IngressError> {
    let setup = |e| setup_error(endpoint, e);
    let socket = context.socket(kind).map_err(setup)?;
    socket.set_linger(0).map_err(setup)?;
    socket.set_rcvhwm(RCV_HWM).map_err(setup)?;
    socket.set_rcvbuf(KERNEL_RCVBUF).map_err(setup)?;
    socket
        .set_maxmsgsize(frame_ceiling(config.max_message_bytes))
        .map_err(setup)?;
    socket.set_tcp_keepalive(1).map_err(setup)?;
    socket
        .set_tcp_keepalive_idle(TCP_KEEPALIVE_IDLE_S)
        .map_err(setup)?;
    socket
        .set_tcp_keepalive_intvl(TCP_KEEPALIVE_INTVL_S)
        .map_err(setup)?;
    socket
        .set_tcp_keepalive_cnt(TCP_KEEPALIVE_CNT)
        .map_err(setup)?;
    Ok(socket)
}

/// The `ZMQ_MAXMSGSIZE` for a given message limit (-1, libzmq's "no limit", only if
/// the ceiling does not fit its type).
fn frame_ceiling(max_message_bytes: usize) -> i64 {
    let ceiling = max_message_bytes.saturating_mul(2).max(MIN_FRAME_CEILING);
    i64::try_from(ceiling).unwrap_or(-1)
}

fn setup_error(endpoint: &str, error: zmq::Error) -> IngressError {
    IngressError::Setup {
        endpoint: endpoint.to_string(),
        reason: error.to_string(),
    }
}

/// Runs a bind or connect. The `zmq` crate panics on an errno it has no variant for
/// (e.g. EAFNOSUPPORT); that becomes an ordinary error here.
fn guarded(call: impl FnOnce() -> zmq::Result<()>) -> Result<(), Option<zmq::Error>> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Some(e)),
        Err(_) => Err(None),
    }
}

/// A bind/connect failure in a sysadmin's words.
fn describe(error: Option<zmq::Error>) -> String {
    match error {
        Some(zmq::Error::EINVAL) => {
            "not a valid endpoint; write tcp://HOST:PORT or ipc:///PATH".to_string()
        }
        Some(zmq::Error::ENODEV) => "no such network interface or address".to_string(),
        Some(e) => e.to_string(),
        None => "the operating system refused it (unrecognised error)".to_string(),
    }
}

/// The receive loop: waits for any socket to be readable, drains it (in batches),
/// until the stop channel fires. Returns the time left to settle when the stop asks
/// for a draining one.
fn run(
    sockets: &[(zmq::Socket, SocketId)],
    stop: &zmq::Socket,
    dispatch: &mut Dispatch,
) -> Option<Duration> {
    let mut items: Vec<zmq::PollItem<'_>> = std::iter::once(stop)
        .chain(sockets.iter().map(|(socket, _)| socket))
        .map(|socket| socket.as_poll_item(zmq::POLLIN))
        .collect();
    let mut frames = Vec::new();
    loop {
        match zmq::poll(&mut items, -1) {
            Ok(_) => {}
            Err(zmq::Error::EINTR) => continue,
            Err(zmq::Error::ETERM) => return None,
            Err(e) => {
                dispatch.on_poll_error(&e, Instant::now());
                std::thread::sleep(ERROR_PAUSE);
                continue;
            }
        }
        if items[0].is_readable() {
            return stop_request(stop);
        }
        for (item, (socket, id)) in items[1..].iter().zip(sockets) {
            if item.is_readable() {
                drain(socket, *id, dispatch, &mut frames);
            }
        }
        dispatch.on_burst_end();
    }
}

/// The time left to settle that a stop message carries; `None` for an immediate stop.
fn stop_request(stop: &zmq::Socket) -> Option<Duration> {
    let message = stop.recv_bytes(zmq::DONTWAIT).ok()?;
    let millis = u64::from_le_bytes(message.try_into().ok()?);
    Some(Duration::from_millis(millis))
}

/// A draining stop, so that a graceful restart drops nothing libzmq received:
/// 1. keep receiving while publishers are still sending, until no message came for
///    [`SETTLE_QUIET`] (at most [`SETTLE_MAX`], and not past `deadline`): a burst in
///    flight when the bridge was told to stop still arrives;
/// 2. unbind every PULL endpoint and disconnect every SUB one, which closes the
///    connections: publishers see a disconnect and queue for the next bridge (bytes
///    still in the TCP buffers at that instant are lost here; the Rust SDK sends its
///    recent messages again when it sees the disconnect, docs/restarts.md);
/// 3. hand on everything libzmq had already queued from those connections, until none
///    came for [`DETACHED_QUIET`] (bounded by `deadline`, but at least
///    [`DETACHED_MIN`]).
fn settle(
    sockets: &[(zmq::Socket, SocketId)],
    detach: &[Detach],
    dispatch: &mut Dispatch,
    deadline: Instant,
) {
    let started = Instant::now();
    let mut frames = Vec::new();
    let settle_until = deadline.min(started + SETTLE_MAX);
    let settled = receive_until_quiet(sockets, dispatch, &mut frames, SETTLE_QUIET, settle_until);
    for ((socket, _), detach) in sockets.iter().zip(detach) {
        let (done, endpoint) = match detach {
            Detach::Unbind(endpoint) => (socket.unbind(endpoint), endpoint),
            Detach::Disconnect(endpoint) => (socket.disconnect(endpoint), endpoint),
        };
        if let Err(error) = done {
            tracing::debug!(%endpoint, %error, "cannot close the endpoint before draining it");
        }
    }
    let detached_at = Instant::now();
    let drain_until = deadline.max(detached_at + DETACHED_MIN);
    let queued = receive_until_quiet(sockets, dispatch, &mut frames, DETACHED_QUIET, drain_until);
    let settled_ms = detached_at.duration_since(started).as_millis() as u64;
    let drained_ms = detached_at.elapsed().as_millis() as u64;
    if queued {
        tracing::info!(settled_ms, quiet = settled, drained_ms, "ingress drained");
    } else {
        tracing::warn!(
            settled_ms,
            drained_ms,
            "ingress drain deadline reached; messages still queued in ZeroMQ are dropped"
        );
    }
}

/// Receives from every socket until none had a message for `quiet`, or `until`.
/// Returns whether it ended quiet (rather than at `until`).
fn receive_until_quiet(
    sockets: &[(zmq::Socket, SocketId)],
    dispatch: &mut Dispatch,
    frames: &mut Vec<zmq::Message>,
    quiet: Duration,
    until: Instant,
) -> bool {
    let mut items: Vec<zmq::PollItem<'_>> = sockets
        .iter()
        .map(|(socket, _)| socket.as_poll_item(zmq::POLLIN))
        .collect();
    let mut quiet_from = Instant::now();
    loop {
        let now = Instant::now();
        let quiet_at = quiet_from + quiet;
        if now >= quiet_at {
            return true;
        }
        if now >= until {
            return false;
        }
        let wait = quiet_at.min(until).duration_since(now);
        let timeout = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX).max(1);
        match zmq::poll(&mut items, timeout) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(zmq::Error::EINTR) => continue,
            Err(_) => return false,
        }
        for (item, (socket, id)) in items.iter().zip(sockets) {
            if item.is_readable() {
                drain(socket, *id, dispatch, frames);
            }
        }
        quiet_from = Instant::now();
    }
}

/// Takes up to [`BATCH`] messages from a readable socket.
fn drain(
    socket: &zmq::Socket,
    id: SocketId,
    dispatch: &mut Dispatch,
    frames: &mut Vec<zmq::Message>,
) {
    for _ in 0..BATCH {
        match receive(socket, frames) {
            Ok(true) => {
                let views: Vec<&[u8]> = frames.iter().map(|frame| &frame[..]).collect();
                dispatch.on_message(id, &views, Instant::now());
            }
            Ok(false) => return,
            Err(e) => {
                dispatch.on_receive_error(id, &e, Instant::now());
                return;
            }
        }
    }
}

/// Receives one whole message into `frames` without blocking: `Ok(false)` when none
/// is waiting. libzmq delivers multipart messages atomically, so once the first frame
/// is here the others are too.
fn receive(socket: &zmq::Socket, frames: &mut Vec<zmq::Message>) -> zmq::Result<bool> {
    frames.clear();
    loop {
        let mut frame = zmq::Message::new();
        match socket.recv(&mut frame, zmq::DONTWAIT) {
            Ok(()) => {
                let more = frame.get_more();
                frames.push(frame);
                if !more {
                    return Ok(true);
                }
            }
            Err(zmq::Error::EINTR) => continue,
            Err(zmq::Error::EAGAIN) if frames.is_empty() => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_ceiling_is_twice_the_limit_with_a_floor() {
        assert_eq!(frame_ceiling(4 * 1024 * 1024), 16 * 1024 * 1024);
        assert_eq!(frame_ceiling(1024), 16 * 1024 * 1024);
        assert_eq!(frame_ceiling(100 * 1024 * 1024), 200 * 1024 * 1024);
        assert_eq!(frame_ceiling(usize::MAX), -1);
    }

    #[test]
    fn only_tcp_and_ipc_endpoints_pass_the_early_check() {
        assert!(check_endpoint("tcp://127.0.0.1:5555").is_ok());
        assert!(check_endpoint("ipc:///run/push-bridge.sock").is_ok());
        for bad in [
            "inproc://x",
            "udp://127.0.0.1:1",
            "127.0.0.1:5555",
            "",
            "tcp://a\0b:1",
        ] {
            let e = check_endpoint(bad).unwrap_err();
            assert!(
                matches!(&e, IngressError::InvalidEndpoint { endpoint, .. } if endpoint == bad),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn bind_failures_are_described_for_a_sysadmin() {
        assert_eq!(
            describe(Some(zmq::Error::EADDRINUSE)),
            "Address already in use"
        );
        assert!(describe(Some(zmq::Error::EINVAL)).starts_with("not a valid endpoint"));
        assert!(describe(None).contains("unrecognised"));
    }
}
