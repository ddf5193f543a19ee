//! Graceful shutdown (spec/operations.md "Signals"): one token every task watches, and
//! a tracker that lets the server wait for sessions to finish closing.

pub use tokio_util::sync::CancellationToken as Shutdown;
pub use tokio_util::task::TaskTracker;

/// Resolves on the first SIGTERM or SIGINT.
pub async fn terminate_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
