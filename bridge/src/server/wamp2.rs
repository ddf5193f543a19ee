//! The WAMP v2 subscriber session (docs/protocol.md "WAMP v2 subscriber"): HELLO →
//! (CHALLENGE ticket → AUTHENTICATE) → WELCOME, then SUBSCRIBE/UNSUBSCRIBE; every
//! other request is refused the WAMP way (ERROR), violations ABORT and close.
//!
//! The token may come before the upgrade like for every protocol, or as the `ticket`
//! auth method: a WAMP v2 client without a token is let through the upgrade with a
//! grant of nothing, and must authenticate before it can subscribe.

use std::collections::HashSet;

use super::requests::{ClientState, Reply};
use crate::auth::credentials::Presented;
use crate::hub::close_code;
use crate::ops::metrics;
use crate::protocol::wamp2::{self, Message};
use crate::protocol::Protocol;

/// Where a WAMP v2 session is in its life.
#[derive(Debug, Default)]
pub enum Wamp2Phase {
    /// Waiting for HELLO.
    #[default]
    Hello,
    /// CHALLENGE sent, waiting for AUTHENTICATE.
    Challenged { authid: Option<String> },
    /// WELCOME sent: the subscription ids this session holds.
    Established { subscriptions: HashSet<u64> },
}

impl Wamp2Phase {
    pub fn has_subscription(&self, id: u64) -> bool {
        matches!(self, Wamp2Phase::Established { subscriptions } if subscriptions.contains(&id))
    }
}

fn frames(frames: Vec<String>) -> Reply {
    Reply {
        frames,
        close: None,
    }
}

fn abort(reason: &str, message: &str, code: u16) -> Reply {
    Reply {
        frames: vec![wamp2::abort(reason, message)],
        close: Some((code, "WAMP session aborted")),
    }
}

impl ClientState {
    pub(super) async fn wamp2(&mut self, text: &str) -> Reply {
        let message = match wamp2::parse(text) {
            Ok(message) => message,
            Err(violation) => {
                metrics::refused_client_action(Protocol::Wamp2, "malformed");
                tracing::debug!(session = self.handle.id, %violation, "WAMP v2 protocol violation");
                return abort(
                    wamp2::ERROR_PROTOCOL_VIOLATION,
                    &violation.to_string(),
                    close_code::INVALID_PAYLOAD,
                );
            }
        };
        match (&self.wamp2, message) {
            (_, Message::Goodbye { .. }) => Reply {
                frames: vec![wamp2::goodbye(wamp2::CLOSE_GOODBYE_AND_OUT)],
                close: Some((close_code::NORMAL, "goodbye")),
            },
            (_, Message::Abort { .. }) => Reply {
                frames: Vec::new(),
                close: Some((close_code::NORMAL, "aborted by the client")),
            },
            (_, Message::Ignored { .. }) => Reply::default(),
            (
                Wamp2Phase::Hello,
                Message::Hello {
                    authmethods,
                    authid,
                    ..
                },
            ) => self.hello(authmethods, authid),
            (Wamp2Phase::Challenged { .. }, Message::Authenticate { signature }) => {
                self.authenticate(signature).await
            }
            (
                Wamp2Phase::Established { .. },
                Message::Subscribe {
                    request,
                    topic,
                    match_,
                },
            ) => self.subscribe(request, &topic, match_),
            (
                Wamp2Phase::Established { .. },
                Message::Unsubscribe {
                    request,
                    subscription,
                },
            ) => self.unsubscribe(request, subscription),
            (Wamp2Phase::Established { .. }, message)
                if matches!(
                    message,
                    Message::Publish { .. }
                        | Message::Call { .. }
                        | Message::Register { .. }
                        | Message::Unregister { .. }
                        | Message::Invalid { .. }
                ) =>
            {
                let action = match message {
                    Message::Publish { .. } => "publish",
                    Message::Call { .. } => "call",
                    Message::Register { .. } | Message::Unregister { .. } => "register",
                    _ => "malformed",
                };
                metrics::refused_client_action(Protocol::Wamp2, action);
                let mut reply = self.refused();
                reply.frames.extend(message.refusal());
                reply
            }
            (_, other) => {
                metrics::refused_client_action(Protocol::Wamp2, "malformed");
                tracing::debug!(
                    session = self.handle.id,
                    ?other,
                    "WAMP v2 message out of order"
                );
                abort(
                    wamp2::ERROR_PROTOCOL_VIOLATION,
                    "message not allowed at this point of the session",
                    close_code::INVALID_PAYLOAD,
                )
            }
        }
    }

    fn hello(&mut self, authmethods: Vec<String>, authid: Option<String>) -> Reply {
        if !self.grant.patterns.is_empty() {
            self.wamp2 = Wamp2Phase::Established {
                subscriptions: HashSet::new(),
            };
            return frames(vec![wamp2::welcome(
                self.session_id(),
                authid.as_deref(),
                None,
            )]);
        }
        if authmethods.iter().any(|m| m == wamp2::AUTHMETHOD_TICKET) {
            self.wamp2 = Wamp2Phase::Challenged { authid };
            return frames(vec![wamp2::challenge_ticket()]);
        }
        metrics::auth_failure("missing_token");
        abort(
            wamp2::ERROR_AUTHENTICATION_REQUIRED,
            "pass a token: ?token=… in the URL, or the ticket auth method",
            close_code::NORMAL,
        )
    }

    async fn authenticate(&mut self, ticket: String) -> Reply {
        let authid = match &mut self.wamp2 {
            Wamp2Phase::Challenged { authid } => authid.take(),
            _ => None,
        };
        let presented = Presented::Token(vec![ticket]);
        match self.state.auth().authenticate(&presented).await {
            Ok(grant) => {
                self.state.live_sessions().insert(
                    self.handle.id,
                    (self.handle.clone(), grant.credential.clone()),
                );
                self.grant = grant;
                self.wamp2 = Wamp2Phase::Established {
                    subscriptions: HashSet::new(),
                };
                frames(vec![wamp2::welcome(
                    self.session_id(),
                    authid.as_deref(),
                    Some(wamp2::AUTHMETHOD_TICKET),
                )])
            }
            Err(denied) => {
                metrics::auth_failure(denied.reason());
                abort(
                    wamp2::ERROR_AUTHENTICATION_DENIED,
                    &denied.message(),
                    close_code::NORMAL,
                )
            }
        }
    }

    fn subscribe(&mut self, request: u64, topic: &str, match_: wamp2::Match) -> Reply {
        let refuse = |this: &mut Self, uri: &str| {
            metrics::refused_client_action(Protocol::Wamp2, "subscribe");
            let mut reply = this.refused();
            reply
                .frames
                .push(wamp2::error(wamp2::SUBSCRIBE, request, uri));
            reply
        };
        let pattern = match wamp2::subscription_pattern(topic, match_) {
            Ok(pattern) => pattern,
            Err(_) => return refuse(self, wamp2::ERROR_INVALID_URI),
        };
        if !self.grant.permits(&pattern) {
            return refuse(self, wamp2::ERROR_NOT_AUTHORIZED);
        }
        let Wamp2Phase::Established { subscriptions } = &self.wamp2 else {
            return Reply::default();
        };
        let id_would_be_new = subscriptions.len() >= self.max_subscriptions;
        if id_would_be_new {
            return refuse(self, wamp2::ERROR_NOT_AUTHORIZED);
        }
        let (id, new_pattern) = self.hub.wamp2_subscribe(&self.handle, &pattern, match_);
        if new_pattern {
            self.subscriptions.insert(pattern);
        }
        if let Wamp2Phase::Established { subscriptions } = &mut self.wamp2 {
            subscriptions.insert(id);
        }
        frames(vec![wamp2::subscribed(request, id)])
    }

    fn unsubscribe(&mut self, request: u64, id: u64) -> Reply {
        let held = self.wamp2.has_subscription(id);
        match held
            .then(|| self.hub.wamp2_unsubscribe(&self.handle, id))
            .flatten()
        {
            Some((pattern, emptied)) => {
                if emptied {
                    self.subscriptions.remove(&pattern);
                }
                if let Wamp2Phase::Established { subscriptions } = &mut self.wamp2 {
                    subscriptions.remove(&id);
                }
                frames(vec![wamp2::unsubscribed(request)])
            }
            None => frames(vec![wamp2::error(
                wamp2::UNSUBSCRIBE,
                request,
                wamp2::ERROR_NO_SUCH_SUBSCRIPTION,
            )]),
        }
    }

    /// The WAMP session id: random, as WAMP asks, fixed for the connection.
    fn session_id(&self) -> u64 {
        self.wamp2_session
    }
}
