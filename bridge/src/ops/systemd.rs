//! systemd integration (docs/operations.md): the notify protocol (READY once
//! the listener and ingress are up, STATUS with connection counts, WATCHDOG pings from
//! the async runtime at half of `WATCHDOG_USEC`, STOPPING on drain) and socket
//! activation (`LISTEN_FDS`). Outside systemd (no `NOTIFY_SOCKET`, no `LISTEN_FDS`)
//! every call here is a no-op.

use std::net::TcpListener;
use std::os::fd::FromRawFd;
use std::time::Duration;

use sd_notify::NotifyState;

/// How often STATUS is refreshed when no watchdog asks for more.
const STATUS_EVERY: Duration = Duration::from_secs(5);

fn notify(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}

pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    notify(&[NotifyState::Status(status)]);
}

pub fn stopping(status: &str) {
    notify(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

/// The listening socket systemd passed (`push-bridge.socket`), if any. Only the first
/// one is used; it must be a TCP listener.
pub fn activated_listener() -> std::io::Result<Option<TcpListener>> {
    let mut fds = sd_notify::listen_fds()?;
    let Some(fd) = fds.next() else {
        return Ok(None);
    };
    if fds.len() > 0 {
        tracing::warn!(
            extra = fds.len(),
            "systemd passed more than one socket; using the first"
        );
    }
    // SAFETY: systemd hands this descriptor to this process (LISTEN_PID matched) and
    // nothing else in the process owns it; it becomes the listener's to close.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    listener.set_nonblocking(true)?;
    Ok(Some(listener))
}

/// Pings the watchdog at half its interval and refreshes STATUS from `status`, from a
/// task on the async runtime: if the runtime stalls, the pings stop and systemd
/// restarts the service.
pub async fn watchdog(status: impl Fn() -> String) {
    let watchdog = sd_notify::watchdog_enabled();
    let every = watchdog.map_or(STATUS_EVERY, |interval| (interval / 2).min(STATUS_EVERY));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let text = status();
        if watchdog.is_some() {
            notify(&[NotifyState::Watchdog, NotifyState::Status(&text)]);
        } else {
            notify(&[NotifyState::Status(&text)]);
        }
    }
}
