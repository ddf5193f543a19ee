//! The `client_sessions` fuzz target: a whole connection's client frames through a
//! session state machine ([`ClientSession`]), with the driver's answers to
//! [`Action::Resume`] and [`Action::Authenticate`], checking after every step what the
//! driver relies on: frames are JSON, nothing follows a close, the patterns held stay
//! within the limit, permitted, and equal to [`ClientSession::patterns`], and the WAMP v2
//! routes agree with the subscription ids and with [`ClientSession::wants`].
//!
//! Layout: the first line is a header whose first byte picks the session (the rest of
//! the line is free text, so a seed says what it is):
//! - bits 0–1: the protocol: native, WAMP v1, WAMP v2 with a token, WAMP v2 without
//!   (it must authenticate by ticket);
//! - bits 2–3: `max_subscriptions` − 1 (1 to 4);
//! - bit 4: the token's patterns: `*` (set), or `a`, `b:*`, `c:*:d` (clear);
//! - bit 5: a ticket is accepted with those patterns (set) or denied (clear).
//!
//! So `0`–`?` are the four protocols at the four limits with a `*` token whose tickets
//! are accepted (`0` native, `1` WAMP v1, `2` WAMP v2, `3` WAMP v2 by ticket, `4`–`7`
//! the same with two subscriptions, …). Every following line is one text frame, except
//! `<binary>` (a binary frame) and `<wait>` (the clock moves 61 s); each frame moves
//! the clock 1 s. A resume is answered with no replay (an unknown `since`) and with a
//! one-event replay, alternately.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::auth::{Credential, Denied, Grant};
use crate::event::Event;
use crate::protocol::close::Close;
use crate::protocol::session::{Action, ClientSession, Settings};
use crate::protocol::wamp2;
use crate::protocol::Protocol;
use crate::topic::{Pattern, Topic};

/// Every label a refusal may be counted with.
const REFUSAL_LABELS: [&str; 7] = [
    "subscribe",
    "publish",
    "call",
    "register",
    "malformed",
    "unsupported",
    "binary",
];

/// Frames per input: enough for every rule, few enough to stay fast.
const MAX_FRAMES: usize = 256;

pub fn client_sessions(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let Some(&selector) = lines.next().and_then(|header| header.as_bytes().first()) else {
        return;
    };
    let protocol = [
        Protocol::Native,
        Protocol::Wamp1,
        Protocol::Wamp2,
        Protocol::Wamp2,
    ][usize::from(selector & 3)];
    let by_ticket = selector & 3 == 3;
    let settings = Settings {
        max_subscriptions: usize::from((selector >> 2) & 3) + 1,
        heartbeat_secs: 25,
        server_ident: "push-bridge/fuzz",
    };
    let token: &[&str] = if selector & 0x10 != 0 {
        &["*"]
    } else {
        &["a", "b:*", "c:*:d"]
    };
    let token = Grant {
        name: "fuzz".into(),
        patterns: token
            .iter()
            .filter_map(|p| Pattern::parse(p).ok())
            .collect(),
        expires_at: None,
        credential: Credential::Jwt,
    };
    let tickets_accepted = selector & 0x20 != 0;
    let upgrade = if by_ticket {
        Grant::pending()
    } else {
        token.clone()
    };
    let wamp2_session = wamp2::id_from_random(u64::from(selector));
    let Some(mut session) = ClientSession::new(
        protocol,
        upgrade,
        &settings,
        "0123456789abcdef".into(),
        wamp2_session,
    ) else {
        panic!("no session for {protocol:?}");
    };
    let mut model = Model::new(protocol, settings.max_subscriptions);
    let opened = session.opened();
    assert_eq!(opened.len(), usize::from(protocol != Protocol::Wamp2));
    model.check(&session, &opened);

    let mut now = Instant::now();
    let mut resumes = 0usize;
    for line in lines.take(MAX_FRAMES) {
        let actions = match line {
            "<wait>" => {
                now += Duration::from_secs(61);
                continue;
            }
            "<binary>" => session.on_binary(),
            frame => {
                now += Duration::from_secs(1);
                session.on_text(frame, now)
            }
        };
        let mut follow_up = model.check(&session, &actions);
        // The driver's answers, until the session asks for nothing more.
        while let Some(asked) = follow_up.take() {
            let answer = match asked {
                FollowUp::Resume => {
                    resumes += 1;
                    let replay = resumes.is_multiple_of(2).then(|| vec![replayed_event()]);
                    let expected_frames = replay.as_ref().map_or(1, |r| 1 + r.len());
                    let recovered = replay.is_some();
                    let answer = session.resumed(replay);
                    assert_eq!(answer.len(), expected_frames, "{answer:?}");
                    let Some(Action::Send(subscribed)) = answer.first() else {
                        panic!("a resume answered without `subscribed`: {answer:?}");
                    };
                    let subscribed: Value =
                        serde_json::from_str(subscribed).expect("`subscribed` is JSON");
                    assert_eq!(subscribed["type"], "subscribed");
                    assert_eq!(subscribed["recovered"], recovered);
                    answer
                }
                FollowUp::Authenticate => {
                    let result = if tickets_accepted {
                        Ok(token.clone())
                    } else {
                        Err(Denied::Unknown)
                    };
                    let answer = session.authenticated(result);
                    match &answer[..] {
                        [Action::Send(welcome)] if tickets_accepted => {
                            let welcome: Value =
                                serde_json::from_str(welcome).expect("WELCOME is JSON");
                            assert_eq!(welcome[0], 2);
                            assert_eq!(welcome[1], wamp2_session);
                            assert_eq!(welcome[2]["authmethod"], "ticket");
                            model.welcomed = true;
                        }
                        [Action::AuthFailed("unknown_token"), Action::Send(_), Action::Close(Close::AuthAborted)]
                            if !tickets_accepted => {}
                        other => panic!("a ticket answered with {other:?}"),
                    }
                    answer
                }
            };
            follow_up = model.check(&session, &answer);
        }
    }

    // How the bridge's own shutdown would end it.
    let farewell = session.farewell(Close::GoingAway);
    assert_eq!(farewell.is_some(), model.welcomed, "{farewell:?}");
    if let Some(goodbye) = farewell {
        let goodbye: Value = serde_json::from_str(&goodbye).expect("GOODBYE is JSON");
        assert_eq!(goodbye[2], wamp2::CLOSE_SYSTEM_SHUTDOWN);
    }
    for close in Close::ALL {
        if close != Close::GoingAway {
            assert_eq!(session.farewell(close), None);
        }
    }
}

/// The one event a recovered resume replays.
fn replayed_event() -> Arc<Event> {
    Arc::new(Event {
        topic: Topic::parse("a:1").expect("a valid topic"),
        id: "1-2".into(),
        data: r#"{"x":[1,"y"]}"#.into(),
        received: Instant::now(),
    })
}

/// What a session asked its driver for, to be answered before the next frame.
enum FollowUp {
    Resume,
    Authenticate,
}

/// What the driver knows from the actions alone, to hold the session to.
struct Model {
    protocol: Protocol,
    max_subscriptions: usize,
    /// Patterns subscribed in the hub and not unsubscribed.
    held: HashSet<Pattern>,
    /// WAMP v2 routes added and not removed, by id.
    routes: HashMap<u64, Pattern>,
    /// Every subscription id ever routed, to ask `wants` about.
    ids: HashSet<u64>,
    closed: bool,
    /// A WAMP v2 WELCOME was sent.
    welcomed: bool,
}

impl Model {
    fn new(protocol: Protocol, max_subscriptions: usize) -> Self {
        Model {
            protocol,
            max_subscriptions,
            held: HashSet::new(),
            routes: HashMap::new(),
            ids: HashSet::new(),
            closed: false,
            welcomed: false,
        }
    }

    /// Applies one answer and checks it and the session after it; returns what the
    /// session asked the driver to answer.
    fn check(&mut self, session: &ClientSession, actions: &[Action]) -> Option<FollowUp> {
        if self.closed {
            assert!(actions.is_empty(), "a closed session answered {actions:?}");
        }
        let mut follow_up = None;
        for (at, action) in actions.iter().enumerate() {
            assert!(!self.closed, "{action:?} after a close in {actions:?}");
            assert!(
                follow_up.is_none(),
                "{action:?} after a request in {actions:?}"
            );
            match action {
                Action::Send(frame) => {
                    let value: Value = serde_json::from_str(frame)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {frame}"));
                    if self.protocol == Protocol::Wamp2 && value[0] == 2 {
                        self.welcomed = true;
                    }
                }
                Action::Subscribe(patterns) => {
                    assert!(!patterns.is_empty());
                    self.subscribe(session, patterns);
                }
                Action::Resume {
                    patterns, already, ..
                } => {
                    assert_eq!(self.protocol, Protocol::Native);
                    let already: HashSet<&Pattern> = already.iter().collect();
                    assert_eq!(already, self.held.iter().collect(), "`already`");
                    self.subscribe(session, patterns);
                    follow_up = Some(FollowUp::Resume);
                }
                Action::Unsubscribe(patterns) => {
                    assert!(!patterns.is_empty());
                    for pattern in patterns {
                        assert!(self.held.remove(pattern), "{pattern} was not held");
                    }
                }
                Action::AddRoute {
                    pattern,
                    match_,
                    id,
                } => {
                    assert_eq!(self.protocol, Protocol::Wamp2);
                    assert_eq!(*id, wamp2::subscription_id(pattern, *match_));
                    let before = self.routes.insert(*id, pattern.clone());
                    assert!(before.is_none(), "route {id} added twice");
                    self.ids.insert(*id);
                }
                Action::RemoveRoute { pattern, id } => {
                    assert_eq!(self.routes.remove(id).as_ref(), Some(pattern));
                }
                Action::Authenticate(_) => {
                    assert!(self.protocol == Protocol::Wamp2 && !self.welcomed);
                    follow_up = Some(FollowUp::Authenticate);
                }
                Action::Refused(label) => assert!(REFUSAL_LABELS.contains(label), "{label}"),
                Action::AuthFailed(reason) => assert!(!reason.is_empty()),
                Action::Close(_) => {
                    assert_eq!(at + 1, actions.len(), "the close is last: {actions:?}");
                    self.closed = true;
                }
            }
        }
        assert!(self.held.len() <= self.max_subscriptions, "{:?}", self.held);
        assert!(self.routes.len() <= self.max_subscriptions);
        let reported: HashSet<&Pattern> = session.patterns().collect();
        assert_eq!(reported, self.held.iter().collect(), "patterns()");
        if self.protocol == Protocol::Wamp2 {
            let routed: HashSet<&Pattern> = self.routes.values().collect();
            assert_eq!(routed, self.held.iter().collect(), "held iff routed");
        }
        assert!(session.wants(0));
        for id in &self.ids {
            assert_eq!(
                session.wants(*id),
                self.routes.contains_key(id),
                "wants({id})"
            );
        }
        follow_up
    }

    /// Patterns new to the session, each permitted by its grant now.
    fn subscribe(&mut self, session: &ClientSession, patterns: &[Pattern]) {
        for pattern in patterns {
            assert!(session.grant().permits(pattern), "{pattern} not permitted");
            assert!(
                self.held.insert(pattern.clone()),
                "{pattern} subscribed twice"
            );
            if self.protocol == Protocol::Wamp2 {
                assert!(
                    self.routes.values().any(|p| p == pattern),
                    "{pattern} subscribed before its route"
                );
            }
        }
    }
}
