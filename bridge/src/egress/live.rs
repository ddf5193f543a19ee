//! The open sessions and how each got in, so that the bridge can reach all of them: the
//! heartbeat pings them, the backlog sampler looks at their queues, a reload closes
//! those whose token was revoked (`4003`), the drain closes every one (`1001`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::connection::Connection;
use crate::auth::Credential;
use crate::hub::SessionId;
use crate::protocol::close::Close;

#[derive(Debug, Default)]
pub struct Live {
    sessions: Mutex<HashMap<SessionId, (Arc<Connection>, Credential)>>,
}

impl Live {
    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, (Arc<Connection>, Credential)>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a session, or changes the credential it holds (a WAMP v2 ticket).
    pub fn insert(&self, id: SessionId, connection: &Arc<Connection>, credential: Credential) {
        self.lock().insert(id, (Arc::clone(connection), credential));
    }

    pub fn remove(&self, id: SessionId) {
        self.lock().remove(&id);
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asks every session to close.
    pub fn close_all(&self, close: Close) {
        for (connection, _) in self.lock().values() {
            connection.request_close(close);
        }
    }

    /// Closes every session whose credential is no longer `valid` with `4003`;
    /// returns how many.
    pub fn revoke(&self, valid: impl Fn(&Credential) -> bool) -> usize {
        self.lock()
            .values()
            .filter(|(connection, credential)| {
                !valid(credential) && connection.request_close(Close::TokenRevoked)
            })
            .count()
    }

    /// Every open session.
    pub fn all(&self) -> Vec<Arc<Connection>> {
        self.lock().values().map(|(c, _)| Arc::clone(c)).collect()
    }

    /// The WebSocket sessions whose id falls in `slice` of `slices`.
    pub fn sockets_in_slice(&self, slice: u64, slices: u64) -> Vec<Arc<Connection>> {
        self.lock()
            .iter()
            .filter(|(id, (connection, _))| {
                *id % slices == slice && connection.socket_writer().is_some()
            })
            .map(|(_, (connection, _))| Arc::clone(connection))
            .collect()
    }
}
