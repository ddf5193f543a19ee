//! What a session does with the frames its client sends: decode them with the
//! protocol's codec, check them against the token's grant and the limits, apply
//! subscribe/unsubscribe to the hub, and say what to answer. Everything else a client
//! sends is refused (one way: docs/protocol.md).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::routes::AppState;
use super::wamp2::Wamp2Phase;
use crate::auth::Grant;
use crate::event::SharedEvent;
use crate::hub::{close_code, Hub, SessionHandle};
use crate::ops::metrics;
use crate::protocol::native::{self, ErrorCode, Request, RequestError};
use crate::protocol::{wamp1, Protocol};
use crate::topic::Pattern;

/// More refused or bad frames than this within [`ERROR_WINDOW`] close with `1008`.
const MAX_ERRORS: usize = 10;
const ERROR_WINDOW: Duration = Duration::from_secs(60);

/// The answer to one client frame.
#[derive(Debug, Default)]
pub struct Reply {
    pub frames: Vec<String>,
    pub close: Option<(u16, &'static str)>,
}

/// Per-connection state of what the client asked for.
pub struct ClientState {
    pub(super) state: Arc<AppState>,
    pub(super) hub: Arc<Hub>,
    pub(super) handle: Arc<SessionHandle>,
    /// For a WAMP v2 client still to authenticate by ticket: a grant of nothing.
    pub(super) grant: Grant,
    pub(super) max_subscriptions: usize,
    /// Patterns this session has in the hub's index.
    pub(super) subscriptions: HashSet<Pattern>,
    prefixes: wamp1::Prefixes,
    pub(super) wamp2: Wamp2Phase,
    /// The WAMP v2 session id (random in WAMP's id range).
    pub(super) wamp2_session: u64,
    recent_errors: VecDeque<Instant>,
}

impl ClientState {
    pub fn new(state: Arc<AppState>, handle: Arc<SessionHandle>, grant: Grant) -> Self {
        ClientState {
            hub: Arc::clone(&state.hub),
            max_subscriptions: state.config.max_subscriptions,
            state,
            handle,
            grant,
            subscriptions: HashSet::new(),
            prefixes: wamp1::Prefixes::default(),
            wamp2: Wamp2Phase::default(),
            wamp2_session: crate::protocol::wamp2::id_from_random(rand::random()),
            recent_errors: VecDeque::new(),
        }
    }

    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    pub async fn handle_text(&mut self, text: &str) -> Reply {
        match self.handle.protocol {
            Protocol::Native => self.native(text),
            Protocol::Wamp1 => self.wamp1(text),
            Protocol::Wamp2 => self.wamp2(text).await,
            Protocol::Sse => Reply::default(),
        }
    }

    /// What to send before a close frame: WAMP v2 says GOODBYE when the bridge shuts
    /// down.
    pub fn farewell(&self, code: u16) -> Option<String> {
        let established = matches!(self.wamp2, Wamp2Phase::Established { .. });
        (self.handle.protocol == Protocol::Wamp2 && established && code == close_code::GOING_AWAY)
            .then(|| crate::protocol::wamp2::goodbye(crate::protocol::wamp2::CLOSE_SYSTEM_SHUTDOWN))
    }

    /// Whether a queued frame may still be written: a WAMP v2 EVENT only while its
    /// subscription exists (AutobahnJS drops the connection otherwise).
    pub fn still_wanted(&self, subscription: u64) -> bool {
        subscription == 0 || self.wamp2.has_subscription(subscription)
    }

    /// Removes every subscription from the hub (the session is ending).
    pub fn unsubscribe_all(&mut self) {
        self.hub
            .unsubscribe_all(self.handle.id, self.subscriptions.iter());
        self.subscriptions.clear();
    }

    fn native(&mut self, text: &str) -> Reply {
        let answer = match native::parse_request(text) {
            Ok(Request::Subscribe {
                topics,
                since,
                reference,
            }) => match self.subscribe_all(&topics, since.as_deref()) {
                Ok(replay) => {
                    let recovered = since.as_ref().map(|_| replay.is_some());
                    let mut frames =
                        vec![native::subscribed(&topics, recovered, reference.as_ref())];
                    frames.extend(
                        replay
                            .unwrap_or_default()
                            .iter()
                            .map(|e| native::event(&e.topic, &e.id, &e.data)),
                    );
                    Ok(frames)
                }
                Err((code, message)) => Err(RequestError {
                    code,
                    message,
                    reference,
                }),
            },
            Ok(Request::Unsubscribe { topics, reference }) => {
                for pattern in &topics {
                    if self.subscriptions.remove(pattern) {
                        self.hub.unsubscribe(self.handle.id, pattern);
                    }
                }
                Ok(vec![native::unsubscribed(&topics, reference.as_ref())])
            }
            Err(error) => Err(error),
        };
        match answer {
            Ok(frames) => Reply {
                frames,
                close: None,
            },
            Err(error) => {
                metrics::refused_client_action(Protocol::Native, native_action(&error.code));
                let mut reply = Reply {
                    frames: vec![native::error(&error)],
                    close: None,
                };
                reply.close = self.count_error();
                reply
            }
        }
    }

    /// All or nothing: every pattern permitted and the limit respected, or nothing.
    /// With `since`, also the missed events to replay (`None`: not recoverable).
    fn subscribe_all(
        &mut self,
        patterns: &[Pattern],
        since: Option<&str>,
    ) -> Result<Option<Vec<SharedEvent>>, (ErrorCode, String)> {
        let forbidden: Vec<&str> = patterns
            .iter()
            .filter(|p| !self.grant.permits(p))
            .map(Pattern::as_str)
            .collect();
        if !forbidden.is_empty() {
            return Err((
                ErrorCode::Forbidden,
                format!("the token does not permit: {}", forbidden.join(", ")),
            ));
        }
        let new: HashSet<&Pattern> = patterns
            .iter()
            .filter(|p| !self.subscriptions.contains(*p))
            .collect();
        if self.subscriptions.len() + new.len() > self.max_subscriptions {
            return Err((
                ErrorCode::TooManySubscriptions,
                format!(
                    "at most {} subscriptions per connection",
                    self.max_subscriptions
                ),
            ));
        }
        let new: Vec<Pattern> = new.into_iter().cloned().collect();
        let replay = match since {
            Some(since) => {
                let already: Vec<Pattern> = self.subscriptions.iter().cloned().collect();
                self.hub
                    .subscribe_since(&self.handle, &new, &already, since)
            }
            None => {
                for pattern in &new {
                    self.hub.subscribe(&self.handle, pattern);
                }
                None
            }
        };
        self.subscriptions.extend(new);
        Ok(replay)
    }

    fn wamp1(&mut self, text: &str) -> Reply {
        let message = match wamp1::parse(text) {
            Ok(message) => message,
            Err(violation) => {
                metrics::refused_client_action(Protocol::Wamp1, "malformed");
                tracing::debug!(session = self.handle.id, %violation, "WAMP v1 protocol violation");
                return Reply {
                    frames: Vec::new(),
                    close: Some((close_code::INVALID_PAYLOAD, "malformed WAMP v1 message")),
                };
            }
        };
        match message {
            wamp1::Message::Prefix { prefix, uri } => {
                self.prefixes.set(prefix, uri);
                Reply::default()
            }
            wamp1::Message::Subscribe { topic } => {
                let topic = self.prefixes.expand(&topic);
                match self.wamp1_subscribe(&topic) {
                    Ok(()) => Reply::default(),
                    Err(why) => {
                        // WAMP v1 has no subscribe error: ignored on the wire, counted.
                        metrics::refused_client_action(Protocol::Wamp1, "subscribe");
                        tracing::debug!(
                            session = self.handle.id,
                            topic,
                            why,
                            "WAMP v1 subscribe refused"
                        );
                        self.refused()
                    }
                }
            }
            wamp1::Message::Unsubscribe { topic } => {
                if let Ok(pattern) = Pattern::parse(&self.prefixes.expand(&topic)) {
                    if self.subscriptions.remove(&pattern) {
                        self.hub.unsubscribe(self.handle.id, &pattern);
                    }
                }
                Reply::default()
            }
            wamp1::Message::Call { call_id, .. } => {
                metrics::refused_client_action(Protocol::Wamp1, "call");
                let mut reply = self.refused();
                reply.frames.push(wamp1::call_error(
                    &call_id,
                    "push-bridge is one-way: calls are not supported",
                ));
                reply
            }
            wamp1::Message::Publish { .. } => {
                metrics::refused_client_action(Protocol::Wamp1, "publish");
                tracing::debug!(session = self.handle.id, "WAMP v1 publish refused");
                self.refused()
            }
        }
    }

    fn wamp1_subscribe(&mut self, topic: &str) -> Result<(), &'static str> {
        let pattern = Pattern::parse(topic).map_err(|_| "invalid topic")?;
        if self.subscriptions.contains(&pattern) {
            return Ok(());
        }
        if !self.grant.permits(&pattern) {
            return Err("not permitted by the token");
        }
        if self.subscriptions.len() >= self.max_subscriptions {
            return Err("too many subscriptions");
        }
        self.hub.subscribe(&self.handle, &pattern);
        self.subscriptions.insert(pattern);
        Ok(())
    }

    pub(super) fn refused(&mut self) -> Reply {
        Reply {
            frames: Vec::new(),
            close: self.count_error(),
        }
    }

    /// Records a bad or refused frame; past the limit the connection is closed `1008`.
    pub(super) fn count_error(&mut self) -> Option<(u16, &'static str)> {
        let now = Instant::now();
        while self
            .recent_errors
            .front()
            .is_some_and(|t| now.duration_since(*t) > ERROR_WINDOW)
        {
            self.recent_errors.pop_front();
        }
        self.recent_errors.push_back(now);
        (self.recent_errors.len() > MAX_ERRORS)
            .then_some((close_code::POLICY, "too many bad or refused messages"))
    }
}

fn native_action(code: &ErrorCode) -> &'static str {
    match code {
        ErrorCode::Forbidden | ErrorCode::TooManySubscriptions => "subscribe",
        ErrorCode::BadRequest => "malformed",
        ErrorCode::Unsupported => "unsupported",
    }
}
