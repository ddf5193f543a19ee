//! Topics and patterns (docs/protocol.md "Topics and patterns"): parsing, matching and
//! covering. Pure: no I/O, no allocation beyond the validated string.
//!
//! A [`Topic`] names what an event is about (`article:42`); a [`Pattern`] is what a
//! client subscribes to and what a token permits (`article`, `tenant:*:article`).
//! Both are `:`-separated segments; a pattern may use `*` as a whole segment.

use std::fmt;

use push_bridge_publisher::wire::{check_pattern, check_topic};
pub use push_bridge_publisher::wire::{TopicError, MAX_TOPIC_LEN as MAX_LEN, SEPARATOR, WILDCARD};

/// A validated topic: 1–256 bytes, no whitespace, no control characters, no `*`,
/// `:`-separated non-empty segments.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Box<str>);

/// A validated pattern: a topic in which a whole segment may be `*`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern(Box<str>);

impl Topic {
    pub fn parse(s: &str) -> Result<Self, TopicError> {
        check_topic(s)?;
        Ok(Topic(s.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn segments(&self) -> std::str::Split<'_, char> {
        self.0.split(SEPARATOR)
    }
}

impl Pattern {
    pub fn parse(s: &str) -> Result<Self, TopicError> {
        check_pattern(s)?;
        Ok(Pattern(s.into()))
    }

    /// The pattern that matches everything: `*` matches every one-segment prefix, and
    /// every topic has at least one segment.
    pub fn everything() -> Self {
        Pattern(WILDCARD.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn segments(&self) -> std::str::Split<'_, char> {
        self.0.split(SEPARATOR)
    }

    /// `self` matches `topic` when the topic's first `len(self)` segments equal this
    /// pattern's segments, a `*` matching any one segment.
    pub fn matches(&self, topic: &Topic) -> bool {
        let mut topic_segments = topic.segments();
        self.segments().all(|p| match topic_segments.next() {
            Some(t) => p == WILDCARD || p == t,
            None => false,
        })
    }

    /// `self` covers `other` when every topic `other` matches is matched by `self`:
    /// `self` has no more segments, and each of its segments is `*` or equals the
    /// segment of `other` at that position (a `*` in `other` only covered by `*`).
    pub fn covers(&self, other: &Pattern) -> bool {
        let mut other_segments = other.segments();
        self.segments().all(|a| match other_segments.next() {
            Some(p) => a == WILDCARD || a == p,
            None => false,
        })
    }

    /// Whether any of `permitted` covers this pattern.
    pub fn is_covered_by_any(&self, permitted: &[Pattern]) -> bool {
        permitted.iter().any(|a| a.covers(self))
    }
}

impl From<Topic> for Pattern {
    /// Every topic is a pattern that matches itself and the topics below it.
    fn from(topic: Topic) -> Self {
        Pattern(topic.0)
    }
}

impl std::str::FromStr for Topic {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::parse(s)
    }
}

impl std::str::FromStr for Pattern {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::parse(s)
    }
}

macro_rules! string_like {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::parse(&s).map_err(|e| serde::de::Error::custom(format!("{s:?} {e}")))
            }
        }
    };
}
string_like!(Topic);
string_like!(Pattern);

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

    #[test]
    fn valid_topics() {
        for s in [
            "package_created",
            "article:42",
            "tenant:acme:article:42",
            "http://example.com/simple",
            "é:ü",
        ] {
            assert!(Topic::parse(s).is_ok(), "{s}");
        }
        assert!(Topic::parse(&"a".repeat(256)).is_ok());
    }

    #[test]
    fn invalid_topics() {
        assert_eq!(Topic::parse(""), Err(TopicError::Empty));
        assert_eq!(Topic::parse(&"a".repeat(257)), Err(TopicError::TooLong));
        // 255 ASCII bytes plus one two-byte character: 257 bytes, 256 characters.
        assert_eq!(
            Topic::parse(&format!("{}é", "a".repeat(255))),
            Err(TopicError::TooLong)
        );
        assert_eq!(Topic::parse("a b"), Err(TopicError::BadCharacter));
        assert_eq!(Topic::parse("a\tb"), Err(TopicError::BadCharacter));
        assert_eq!(Topic::parse("a\u{7f}"), Err(TopicError::BadCharacter));
        assert_eq!(Topic::parse("a\u{a0}b"), Err(TopicError::BadCharacter));
        assert_eq!(Topic::parse(":a"), Err(TopicError::EmptySegment));
        assert_eq!(Topic::parse("a:"), Err(TopicError::EmptySegment));
        assert_eq!(Topic::parse("a::b"), Err(TopicError::EmptySegment));
        assert_eq!(Topic::parse("a:*"), Err(TopicError::Wildcard));
        assert_eq!(Topic::parse("*"), Err(TopicError::Wildcard));
    }

    #[test]
    fn pattern_wildcards_are_whole_segments() {
        assert!(Pattern::parse("*").is_ok());
        assert!(Pattern::parse("tenant:*:article").is_ok());
        assert!(Pattern::parse("*:*").is_ok());
        assert_eq!(Pattern::parse("art*"), Err(TopicError::Wildcard));
        assert_eq!(Pattern::parse("a:**"), Err(TopicError::Wildcard));
        assert_eq!(Pattern::parse("a:*:"), Err(TopicError::EmptySegment));
    }

    #[test]
    fn matching_examples_from_the_spec() {
        let af = p("activeflow");
        assert!(af.matches(&t("activeflow")));
        assert!(af.matches(&t("activeflow:74ac")));
        assert!(af.matches(&t("activeflow:74ac:step:3")));
        assert!(!af.matches(&t("activeflows")));
        assert!(p("tenant:*:article").matches(&t("tenant:acme:article:42")));
        assert!(!p("tenant:*:article").matches(&t("tenant:acme")));
        assert!(!p("article:42").matches(&t("article:421")));
        assert!(!p("article:42").matches(&t("article")));
        assert!(p("*").matches(&t("anything:at:all")));
        assert!(p("http://example.com/simple").matches(&t("http://example.com/simple")));
    }

    #[test]
    fn covering_examples() {
        assert!(p("article").covers(&p("article:42")));
        assert!(p("article:*").covers(&p("article:42")));
        assert!(p("*").covers(&p("tenant:*:article")));
        assert!(p("tenant:*").covers(&p("tenant:*:article")));
        assert!(!p("tenant:acme").covers(&p("tenant:*")));
        assert!(!p("article:42").covers(&p("article")));
        assert!(!p("article:*").covers(&p("article")));
        assert!(p("a").is_covered_by_any(&[p("b"), p("a:b"), p("*")]));
        assert!(!p("a").is_covered_by_any(&[]));
    }

    // Small alphabets so that generated patterns and topics collide often.
    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![Just("a"), Just("b"), Just("c"), Just("é")].prop_map(String::from)
    }
    fn topic() -> impl Strategy<Value = Topic> {
        prop::collection::vec(segment(), 1..5).prop_map(|s| t(&s.join(":")))
    }
    fn pattern() -> impl Strategy<Value = Pattern> {
        let seg = prop_oneof![3 => segment(), 1 => Just("*".to_string())];
        prop::collection::vec(seg, 1..5).prop_map(|s| p(&s.join(":")))
    }

    proptest! {
        #[test]
        fn covers_implies_matches_superset(a in pattern(), q in pattern(), topics in prop::collection::vec(topic(), 1..30)) {
            if a.covers(&q) {
                for topic in &topics {
                    if q.matches(topic) {
                        prop_assert!(a.matches(topic), "{a} covers {q} but misses {topic}");
                    }
                }
            }
        }

        #[test]
        fn covers_is_reflexive_and_transitive(a in pattern(), b in pattern(), c in pattern()) {
            prop_assert!(a.covers(&a));
            if a.covers(&b) && b.covers(&c) {
                prop_assert!(a.covers(&c));
            }
        }

        #[test]
        fn a_topic_as_pattern_matches_itself(topic in topic()) {
            prop_assert!(Pattern::from(topic.clone()).matches(&topic));
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = Topic::parse(&s);
            let _ = Pattern::parse(&s);
        }

        #[test]
        fn every_pattern_is_covered_by_everything(q in pattern()) {
            prop_assert!(Pattern::everything().covers(&q));
        }
    }
}
