//! Signals and graceful shutdown (docs/operations.md "Signals"): one token every task
//! watches, a tracker that lets the server wait for sessions to finish closing, and
//! the process signals the bridge acts on.

use tokio::signal::unix::{signal, Signal, SignalKind};
pub use tokio_util::sync::CancellationToken as Shutdown;
pub use tokio_util::task::TaskTracker;

/// What a signal asks of the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM or SIGINT: drain and exit.
    Terminate(&'static str),
    /// SIGHUP: reload tokens, keys, origins and the log level.
    Reload,
}

/// The signal handlers, installed once at start.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    pub async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Terminate("SIGTERM"),
            _ = self.int.recv() => Request::Terminate("SIGINT"),
            _ = self.hup.recv() => Request::Reload,
        }
    }
}
