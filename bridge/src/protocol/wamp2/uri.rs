//! WAMP v2 topic URIs ↔ the bridge's topics and patterns (docs/protocol.md "WAMP v2
//! subscriber", "Topics and patterns"). Pure.
//!
//! **The mapping.** A WAMP URI separates components with `.`, a bridge topic separates
//! segments with `:`; a URI component becomes the topic segment at the same position.
//! `com.myapp.article.42` is the topic `com:myapp:article:42`, `package_created` is
//! `package_created`, and an event on `tenant:acme:article` reaches v2 clients as the
//! URI `tenant.acme.article`. A URI may not contain `:` (refused as invalid, so that
//! `article:42` and `article.42` cannot both name one topic), so the mapping is
//! one-to-one between URIs without `:` and topics without `.`.
//!
//! **Topics that contain `.`** (WAMP v1 URIs such as `http://example.com/simple`,
//! host names such as `tenant:acme.com:article`) have no URI of their own: the URI
//! built from them reads as more components and maps back to another topic. They are
//! reachable from WAMP v2 only through a prefix or wildcard subscription whose fixed
//! components come before the first segment holding a `.` (prefix `tenant`, wildcard
//! `tenant..article`), never through an exact one; their `EVENT.Details.topic` is then
//! the topic with `:` turned into `.` (`tenant.acme.com.article`), as close as a URI
//! can get. Publishers that serve WAMP v2 clients should keep `.` out of topics.
//!
//! **Match policies.** The hub matches a [`Pattern`] by segment prefix; [`accepts`]
//! narrows that to what the WAMP policy means:
//! - exact (the default): only the topic itself;
//! - wildcard: empty components stand for `*`, and the topic has exactly as many
//!   segments as the URI has components (`com.myapp..userevent` matches
//!   `com:myapp:foo:userevent`, not `com:myapp:foo:userevent:bar`);
//! - prefix: a documented deviation. WAMP's prefix is a string prefix
//!   (`a.b.emergency` also matches `a.b.emergency-low`); the bridge's is component by
//!   component, so `a.b.emergency` matches `a.b.emergency` and everything below it
//!   (`a.b.emergency.11`) but not `a.b.emergency-low`. A prefix URI may end with `.`,
//!   meaning strictly below: `com.myapp.` matches `com.myapp.x…` but not `com.myapp`.

use crate::topic::{Pattern, Topic, TopicError, SEPARATOR, WILDCARD};

/// The component separator of WAMP URIs.
pub const URI_SEPARATOR: char = '.';

/// A `SUBSCRIBE.Options.match` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Match {
    Exact,
    Prefix,
    Wildcard,
}

impl Match {
    /// The policy's name on the wire (`SUBSCRIBE.Options.match`), also used in logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Match::Exact => "exact",
            Match::Prefix => "prefix",
            Match::Wildcard => "wildcard",
        }
    }

    /// The policy named `name` on the wire, if the bridge supports it.
    pub fn from_name(name: &str) -> Option<Match> {
        [Match::Exact, Match::Prefix, Match::Wildcard]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

/// Why a SUBSCRIBE's topic URI is refused; the session answers ERROR
/// `wamp.error.invalid_uri`. Messages complete "the topic URI …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("is empty")]
    Empty,
    #[error(
        "has an empty component (leading, trailing or doubled '.'); only wildcard \
         subscriptions may leave components empty, and prefix ones may end with '.'"
    )]
    EmptyComponent,
    #[error("contains whitespace, a control character or '#'")]
    BadCharacter,
    #[error("contains ':', which this bridge's URIs do not use: separate components with '.'")]
    Colon,
    #[error(
        "contains '*', which no topic may contain (wildcard subscriptions use an empty component)"
    )]
    Asterisk,
    /// What is left: the mapped pattern breaks a topic rule (its length).
    #[error(transparent)]
    Topic(#[from] TopicError),
}

/// The bridge pattern a WAMP subscription on `uri` with policy `match_` is indexed
/// under; [`accepts`] then decides which of the events it matches are delivered.
///
/// Loose WAMP URI rules: non-empty components (except a wildcard's empty ones, which
/// become `*`, and a prefix's trailing `.`, which becomes a final `*`), no whitespace,
/// control characters or `#`; then the bridge's own: no `:` and no `*` (see the module
/// comment) and at most 256 bytes once mapped.
pub fn subscription_pattern(uri: &str, match_: Match) -> Result<Pattern, UriError> {
    if uri.is_empty() {
        return Err(UriError::Empty);
    }
    if let Some(bad) = uri
        .chars()
        .find(|&c| c.is_whitespace() || c.is_control() || matches!(c, '#' | ':' | '*'))
    {
        return Err(match bad {
            ':' => UriError::Colon,
            '*' => UriError::Asterisk,
            _ => UriError::BadCharacter,
        });
    }
    let last = uri.split(URI_SEPARATOR).count() - 1;
    let mut mapped = String::with_capacity(uri.len() + 1);
    for (index, component) in uri.split(URI_SEPARATOR).enumerate() {
        let may_be_empty = match match_ {
            Match::Exact => false,
            Match::Wildcard => true,
            // "a.b." = strictly below "a.b"; a lone "." has an empty first component.
            Match::Prefix => index == last && index > 0,
        };
        if index > 0 {
            mapped.push(SEPARATOR);
        }
        mapped.push_str(match component {
            "" if may_be_empty => WILDCARD,
            "" => return Err(UriError::EmptyComponent),
            _ => component,
        });
    }
    Ok(Pattern::parse(&mapped)?)
}

/// Whether an event on `topic` is delivered to a subscription indexed under `pattern`
/// (built by [`subscription_pattern`]) with policy `match_`. Includes
/// `pattern.matches(topic)`, so it is the whole rule; the hub's index pre-selects by
/// segment prefix and this narrows exact and wildcard subscriptions.
pub fn accepts(match_: Match, pattern: &Pattern, topic: &Topic) -> bool {
    match match_ {
        Match::Exact => pattern.as_str() == topic.as_str(),
        Match::Wildcard => {
            pattern.matches(topic) && pattern.segments().count() == topic.segments().count()
        }
        Match::Prefix => pattern.matches(topic),
    }
}

/// A bridge topic as a WAMP URI, for `EVENT.Details.topic`: `:` → `.` (lossy for topics
/// that contain `.`, see the module comment).
pub fn topic_uri(topic: &Topic) -> String {
    topic
        .as_str()
        .chars()
        .map(|c| if c == SEPARATOR { URI_SEPARATOR } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> Topic {
        Topic::parse(s).unwrap()
    }
    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }
    fn pattern(uri: &str, match_: Match) -> String {
        subscription_pattern(uri, match_)
            .map(|p| p.to_string())
            .unwrap_or_else(|e| panic!("{uri:?} ({match_:?}) refused: {e}"))
    }
    /// Whether an event on `topic` reaches a subscription to `uri` with `match_`.
    fn delivers(uri: &str, match_: Match, topic: &str) -> bool {
        let pattern = subscription_pattern(uri, match_).unwrap();
        accepts(match_, &pattern, &t(topic))
    }

    #[test]
    fn match_names() {
        for m in [Match::Exact, Match::Prefix, Match::Wildcard] {
            assert_eq!(Match::from_name(m.as_str()), Some(m));
        }
        assert_eq!(Match::Prefix.as_str(), "prefix");
        for name in ["", "Exact", "PREFIX", "regex", "wildcard "] {
            assert_eq!(Match::from_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn exact_uris_map_component_by_component() {
        assert_eq!(pattern("package_created", Match::Exact), "package_created");
        assert_eq!(
            pattern("com.myapp.article.42", Match::Exact),
            "com:myapp:article:42"
        );
        assert_eq!(pattern("é.ü-x/y", Match::Exact), "é:ü-x/y");
    }

    #[test]
    fn wildcard_empty_components_become_stars() {
        assert_eq!(
            pattern("com.myapp..userevent", Match::Wildcard),
            "com:myapp:*:userevent"
        );
        assert_eq!(pattern(".a.", Match::Wildcard), "*:a:*");
        assert_eq!(pattern("..", Match::Wildcard), "*:*:*");
        assert_eq!(pattern("a.b", Match::Wildcard), "a:b");
    }

    #[test]
    fn prefix_uris_may_end_with_a_dot() {
        assert_eq!(pattern("com.myapp", Match::Prefix), "com:myapp");
        assert_eq!(pattern("com.myapp.", Match::Prefix), "com:myapp:*");
        for uri in [".", ".a", "a..b", "a.."] {
            assert_eq!(
                subscription_pattern(uri, Match::Prefix),
                Err(UriError::EmptyComponent),
                "{uri:?}"
            );
        }
    }

    #[test]
    fn invalid_uris() {
        for m in [Match::Exact, Match::Prefix, Match::Wildcard] {
            for (uri, why) in [
                ("", UriError::Empty),
                ("a b", UriError::BadCharacter),
                ("a\tb", UriError::BadCharacter),
                ("a\u{7f}", UriError::BadCharacter),
                ("a\u{a0}b", UriError::BadCharacter),
                ("a#b", UriError::BadCharacter),
                ("article:42", UriError::Colon),
                ("http://example.com/simple", UriError::Colon),
                ("a.*", UriError::Asterisk),
                ("art*", UriError::Asterisk),
            ] {
                assert_eq!(subscription_pattern(uri, m), Err(why), "{uri:?} {m:?}");
            }
            assert_eq!(
                subscription_pattern(&"a".repeat(257), m),
                Err(UriError::Topic(TopicError::TooLong)),
                "{m:?}"
            );
            assert!(subscription_pattern(&"a".repeat(256), m).is_ok(), "{m:?}");
        }
        for uri in [".a", "a.", "a..b", "."] {
            assert_eq!(
                subscription_pattern(uri, Match::Exact),
                Err(UriError::EmptyComponent),
                "{uri:?}"
            );
        }
        // 255 bytes plus a trailing '.' map to 257 bytes once the '.' becomes ":*".
        assert_eq!(
            subscription_pattern(&format!("{}.", "a".repeat(255)), Match::Prefix),
            Err(UriError::Topic(TopicError::TooLong))
        );
    }

    #[test]
    fn error_messages_read_as_sentences() {
        assert_eq!(
            format!("the topic URI {}", UriError::Colon),
            "the topic URI contains ':', which this bridge's URIs do not use: separate \
             components with '.'"
        );
        assert_eq!(
            UriError::Topic(TopicError::TooLong).to_string(),
            "is longer than 256 bytes"
        );
    }

    #[test]
    fn exact_accepts_only_the_topic_itself() {
        assert!(delivers("article.42", Match::Exact, "article:42"));
        assert!(!delivers("article.42", Match::Exact, "article:42:comments"));
        assert!(!delivers("article.42", Match::Exact, "article:421"));
        assert!(!delivers("article.42", Match::Exact, "article"));
        assert!(!delivers("article", Match::Exact, "article:42"));
        // A topic holding '.' has no exact URI: its own URI maps to another topic.
        assert!(!delivers("v1.2", Match::Exact, "v1.2"));
        assert!(delivers("v1.2", Match::Exact, "v1:2"));
    }

    #[test]
    fn wildcard_accepts_the_same_number_of_components() {
        let uri = "com.myapp..userevent";
        for topic in [
            "com:myapp:foo:userevent",
            "com:myapp:bar:userevent",
            "com:myapp:a12:userevent",
        ] {
            assert!(delivers(uri, Match::Wildcard, topic), "{topic}");
        }
        for topic in [
            "com:myapp:foo:userevent:bar",
            "com:myapp:foo:user",
            "com:myapp2:foo:userevent",
            "com:myapp:foo",
        ] {
            assert!(!delivers(uri, Match::Wildcard, topic), "{topic}");
        }
        assert!(delivers("a.b", Match::Wildcard, "a:b"));
        assert!(!delivers("a.b", Match::Wildcard, "a:b:c"));
        assert!(delivers(
            "tenant..article",
            Match::Wildcard,
            "tenant:acme.com:article"
        ));
    }

    #[test]
    fn prefix_is_component_aware() {
        let uri = "com.myapp.topic.emergency";
        for topic in [
            "com:myapp:topic:emergency",
            "com:myapp:topic:emergency:11",
            "com:myapp:topic:emergency:category:severe",
        ] {
            assert!(delivers(uri, Match::Prefix, topic), "{topic}");
        }
        // The deviation from WAMP's string prefix, and what neither matches.
        assert!(!delivers(
            uri,
            Match::Prefix,
            "com:myapp:topic:emergency-low"
        ));
        assert!(!delivers(uri, Match::Prefix, "com:myapp:topic:emerge"));
        assert!(delivers("com.myapp.", Match::Prefix, "com:myapp:x"));
        assert!(delivers("com.myapp.", Match::Prefix, "com:myapp:x:y"));
        assert!(!delivers("com.myapp.", Match::Prefix, "com:myapp"));
        assert!(delivers("tenant", Match::Prefix, "tenant:acme.com:article"));
    }

    #[test]
    fn accepts_checks_the_pattern_too() {
        let topic = t("b:c");
        assert!(!accepts(Match::Prefix, &p("a"), &topic));
        assert!(!accepts(Match::Wildcard, &p("a:*"), &topic));
        assert!(!accepts(Match::Exact, &p("a:c"), &topic));
    }

    #[test]
    fn topic_uris() {
        assert_eq!(topic_uri(&t("package_created")), "package_created");
        assert_eq!(
            topic_uri(&t("tenant:acme:article:42")),
            "tenant.acme.article.42"
        );
        // Lossy for topics holding '.': documented, and shown here.
        assert_eq!(
            topic_uri(&t("http://example.com/simple")),
            "http.//example.com/simple"
        );
    }

    fn segment() -> impl Strategy<Value = String> {
        "[a-z0-9_é/-]{1,6}"
    }

    proptest! {
        #[test]
        fn topics_without_dots_round_trip(segments in prop::collection::vec(segment(), 1..6)) {
            let topic = t(&segments.join(":"));
            let uri = topic_uri(&topic);
            let pattern = subscription_pattern(&uri, Match::Exact).unwrap();
            prop_assert_eq!(&pattern, &Pattern::from(topic.clone()));
            prop_assert!(accepts(Match::Exact, &pattern, &topic));
            prop_assert!(accepts(Match::Prefix, &pattern, &topic));
            prop_assert!(accepts(Match::Wildcard, &pattern, &topic));
        }

        #[test]
        fn uris_round_trip(components in prop::collection::vec(segment(), 1..6)) {
            let uri = components.join(".");
            let pattern = subscription_pattern(&uri, Match::Exact).unwrap();
            prop_assert_eq!(topic_uri(&t(pattern.as_str())), uri);
        }

        #[test]
        fn wildcard_accepts_iff_components_line_up(
            uri in prop::collection::vec(prop_oneof![Just(""), Just("a"), Just("b")], 1..4),
            topic in prop::collection::vec(prop_oneof![Just("a"), Just("b")], 1..5),
        ) {
            prop_assume!(uri != [""], "an empty URI is refused");
            let pattern = subscription_pattern(&uri.join("."), Match::Wildcard).unwrap();
            let expected = uri.len() == topic.len()
                && uri.iter().zip(&topic).all(|(u, s)| u.is_empty() || u == s);
            prop_assert_eq!(accepts(Match::Wildcard, &pattern, &t(&topic.join(":"))), expected);
        }

        #[test]
        fn mapping_never_panics(uri in "\\PC{0,40}") {
            for m in [Match::Exact, Match::Prefix, Match::Wildcard] {
                let _ = subscription_pattern(&uri, m);
            }
        }
    }
}
