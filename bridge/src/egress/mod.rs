//! Where events leave: everything that touches a client connection once it is
//! admitted.
//!
//! - [`connection`]: one connection as the hub sees it, its [`hub::Outlet`](crate::hub::Outlet):
//!   picks and builds the frame its protocol needs, queues it, and closes a slow
//!   consumer with `4008`.
//! - [`writer`]: a WebSocket's socket writer (the `writev` queue shared by the session
//!   task and the ingress thread); [`frame`]: the WebSocket frames the bridge writes.
//! - [`websocket`]: the session task of a WebSocket connection; it feeds client frames
//!   to the protocol's pure state machine (`protocol::session`) and applies what it
//!   returns: answers, subscriptions in the hub, the close.
//! - [`sse`]: a Server-Sent Events stream.
//! - [`heartbeat`]: one task pinging every WebSocket session; [`stall`]: the guard that
//!   fails a write a client stopped reading; [`live`]: the open sessions, for the
//!   heartbeat, a reload and the drain.
//! - [`backlog`]: one task sampling every queue once a second, to say when the bridge
//!   as a whole falls behind (many clients late at once, not one slow client).

pub mod backlog;
pub mod connection;
pub mod expiry;
pub mod frame;
pub mod heartbeat;
pub mod live;
pub mod sse;
pub mod stall;
pub mod websocket;
pub mod writer;

pub use connection::Hub;

use std::sync::Arc;
use std::time::Duration;

use crate::auth::CurrentAuth;
use crate::config::ServerConfig;
use crate::event::SharedEvent;
use crate::eventlog::{Continuity, EventLog};
use crate::ops::shutdown::{Shutdown, TaskTracker};
use crate::protocol::session::Settings;
use crate::topic::Pattern;

/// What every session shares.
#[derive(Debug)]
pub struct Egress {
    pub hub: Arc<Hub>,
    /// Where events come from; it says whether a resume may replay the hub's history.
    pub log: Arc<dyn EventLog>,
    /// For WAMP v2 sessions that authenticate by ticket.
    pub auth: Arc<CurrentAuth>,
    pub live: live::Live,
    pub settings: Settings,
    /// `server.heartbeat`.
    pub heartbeat: Duration,
    /// `server.max_inbound_frame_bytes`.
    pub max_inbound_frame_bytes: usize,
    /// `server.send_queue`: event frames a session may have waiting.
    pub send_queue: usize,
    /// Whether connections arrive over TLS (relayed) rather than plain TCP.
    pub tls: bool,
    /// Cancelled when the drain starts.
    pub shutdown: Shutdown,
    /// Every session task, so the drain can wait for them.
    pub tasks: TaskTracker,
}

impl Egress {
    pub fn new(
        hub: Arc<Hub>,
        log: Arc<dyn EventLog>,
        auth: Arc<CurrentAuth>,
        config: &ServerConfig,
    ) -> Self {
        Egress {
            hub,
            log,
            auth,
            live: live::Live::default(),
            settings: Settings {
                max_subscriptions: config.max_subscriptions,
                heartbeat_secs: config.heartbeat.as_secs(),
                server_ident: concat!("push-bridge/", env!("CARGO_PKG_VERSION")),
            },
            heartbeat: config.heartbeat,
            max_inbound_frame_bytes: config.max_inbound_frame_bytes,
            send_queue: config.send_queue,
            tls: config.tls.is_some(),
            shutdown: Shutdown::new(),
            tasks: TaskTracker::new(),
        }
    }

    /// A resume: subscribes `connection` to `patterns` and returns what it missed since
    /// the event `since` (matching `patterns` and none of `already`), or `None` when
    /// that cannot be replayed (the client starts over). `continuity` is the log's
    /// word, asked just before.
    pub fn resume(
        &self,
        connection: &Arc<connection::Connection>,
        patterns: &[Pattern],
        already: &[Pattern],
        since: &str,
        continuity: Continuity,
    ) -> Option<Vec<SharedEvent>> {
        let replay = match continuity {
            Continuity::Proven => self
                .hub
                .subscribe_since(connection, patterns, already, since),
            Continuity::Unproven => {
                for pattern in patterns {
                    self.hub.subscribe(connection, pattern);
                }
                None
            }
        };
        self.log.resumed(replay.is_some());
        replay
    }
}
