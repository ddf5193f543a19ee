//! One bridge's log: the hub's in-memory history, saved to `history.file` at a
//! graceful stop and loaded at start (docs/protocol.md "Event ids, history and
//! resume").

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::{Accepted, Continuity, EventLog, Pending};
use crate::event::IngressMessage;
use crate::hub::{history_file, Hub, Outlet};

/// Routes every message straight into the hub, which checks its publisher id against
/// the history and gives it an id.
#[derive(Debug)]
pub struct Local<O> {
    hub: Arc<Hub<O>>,
    file: Option<PathBuf>,
}

impl<O: Outlet> Local<O> {
    /// The log over `hub`, with what `file` saved put back into its history.
    pub fn open(hub: Arc<Hub<O>>, file: Option<PathBuf>) -> Result<Self, std::io::Error> {
        if let Some(path) = &file {
            let (events, skipped) = history_file::load(path)?;
            if skipped > 0 {
                tracing::warn!(skipped, file = %path.display(), "unreadable lines in the history file were skipped");
            }
            tracing::info!(events = events.len(), file = %path.display(), "history loaded");
            hub.restore_history(events);
        }
        Ok(Local { hub, file })
    }
}

impl<O: Outlet + 'static> EventLog for Local<O> {
    fn accept(&self, message: IngressMessage, received: Instant, accepted: Option<Accepted>) {
        self.hub.route(message, received);
        if let Some(accepted) = accepted {
            accepted();
        }
    }

    fn burst_end(&self) {
        self.hub.flush();
    }

    fn continuity(&self) -> Pending<Continuity> {
        Box::pin(std::future::ready(Continuity::Proven))
    }

    fn resumed(&self, _recovered: bool) {}

    fn is_up(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        match &self.file {
            Some(path) => format!("in memory, saved to {}", path.display()),
            None => "in memory".to_string(),
        }
    }

    fn draining(&self, _deadline: Instant) {}

    fn close(&self, _deadline: Instant) {
        let Some(path) = &self.file else {
            return;
        };
        let events = self.hub.history_snapshot();
        match history_file::save(path, &events) {
            Ok(()) => {
                tracing::info!(events = events.len(), file = %path.display(), "history saved")
            }
            Err(error) => {
                tracing::error!(%error, file = %path.display(), "cannot save the history")
            }
        }
    }
}
