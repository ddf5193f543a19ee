//! The subscription index: a trie of pattern segments, so that finding every
//! subscription matching a topic walks at most two children per topic segment (the
//! equal segment and `*`) and never looks at a subscription that cannot match.
//!
//! Generic over what a subscription holds (`V`), keyed per subscription by a session
//! id: the hub stores session handles here; tests store plain values.

use std::collections::HashMap;

use crate::topic::{Pattern, Topic, WILDCARD};

pub type SessionId = u64;

/// Subscriptions of sessions to patterns.
#[derive(Debug)]
pub struct Index<V> {
    root: Node<V>,
    subscriptions: usize,
}

#[derive(Debug)]
struct Node<V> {
    children: HashMap<Box<str>, Node<V>>,
    wildcard: Option<Box<Node<V>>>,
    /// The sessions subscribed to the pattern that ends at this node.
    subscribers: HashMap<SessionId, V>,
    /// The pattern that ends here (kept so matches can name it, e.g. WAMP v1 URIs).
    pattern: Option<Pattern>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            wildcard: None,
            subscribers: HashMap::new(),
            pattern: None,
        }
    }
}

impl<V> Node<V> {
    fn is_empty(&self) -> bool {
        self.subscribers.is_empty() && self.children.is_empty() && self.wildcard.is_none()
    }
}

impl<V> Default for Index<V> {
    fn default() -> Self {
        Index {
            root: Node::default(),
            subscriptions: 0,
        }
    }
}

impl<V> Index<V> {
    /// Subscribes `session` to `pattern`. Returns false (and keeps the old value) when
    /// it was already subscribed to exactly this pattern.
    pub fn insert(&mut self, pattern: &Pattern, session: SessionId, value: V) -> bool {
        let mut node = &mut self.root;
        for segment in pattern.segments() {
            node = if segment == WILDCARD {
                node.wildcard.get_or_insert_with(Box::default)
            } else {
                node.children.entry(segment.into()).or_default()
            };
        }
        if node.subscribers.contains_key(&session) {
            return false;
        }
        node.pattern.get_or_insert_with(|| pattern.clone());
        node.subscribers.insert(session, value);
        self.subscriptions += 1;
        true
    }

    /// Removes the subscription of `session` to `pattern`, pruning nodes left empty.
    /// Returns whether it existed.
    pub fn remove(&mut self, pattern: &Pattern, session: SessionId) -> bool {
        let segments: Vec<&str> = pattern.segments().collect();
        let removed = remove_at(&mut self.root, &segments, session);
        if removed {
            self.subscriptions -= 1;
        }
        removed
    }

    /// Number of (session, pattern) subscriptions.
    pub fn len(&self) -> usize {
        self.subscriptions
    }

    pub fn is_empty(&self) -> bool {
        self.subscriptions == 0
    }

    /// Calls `visit` once per subscription whose pattern matches `topic`, with the
    /// pattern, the session and its value. Cost: the matching subscriptions plus at
    /// most two trie steps per segment and per `*` branch taken.
    pub fn for_each_match(&self, topic: &Topic, mut visit: impl FnMut(&Pattern, SessionId, &V)) {
        let segments: Vec<&str> = topic.segments().collect();
        walk(&self.root, &segments, &mut visit);
    }
}

fn walk<V>(node: &Node<V>, rest: &[&str], visit: &mut impl FnMut(&Pattern, SessionId, &V)) {
    if let Some(pattern) = &node.pattern {
        for (session, value) in &node.subscribers {
            visit(pattern, *session, value);
        }
    }
    let Some((segment, rest)) = rest.split_first() else {
        return;
    };
    if let Some(child) = node.children.get(*segment) {
        walk(child, rest, visit);
    }
    if let Some(child) = &node.wildcard {
        walk(child, rest, visit);
    }
}

fn remove_at<V>(node: &mut Node<V>, rest: &[&str], session: SessionId) -> bool {
    let Some((segment, rest)) = rest.split_first() else {
        let removed = node.subscribers.remove(&session).is_some();
        if node.subscribers.is_empty() {
            node.pattern = None;
        }
        return removed;
    };
    if *segment == WILDCARD {
        let Some(child) = node.wildcard.as_deref_mut() else {
            return false;
        };
        let removed = remove_at(child, rest, session);
        if child.is_empty() {
            node.wildcard = None;
        }
        removed
    } else {
        let Some(child) = node.children.get_mut(*segment) else {
            return false;
        };
        let removed = remove_at(child, rest, session);
        if child.is_empty() {
            node.children.remove(*segment);
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }
    fn t(s: &str) -> Topic {
        Topic::parse(s).unwrap()
    }

    fn matches(index: &Index<()>, topic: &str) -> Vec<(String, SessionId)> {
        let mut found = Vec::new();
        index.for_each_match(&t(topic), |pattern, session, _| {
            found.push((pattern.to_string(), session))
        });
        found.sort();
        found
    }

    #[test]
    fn finds_exactly_the_matching_patterns() {
        let mut index = Index::default();
        for (i, pattern) in [
            "article",
            "article:42",
            "article:*",
            "*:42",
            "tenant:*:article",
            "article:421",
        ]
        .iter()
        .enumerate()
        {
            assert!(index.insert(&p(pattern), i as SessionId, ()));
        }
        assert_eq!(
            matches(&index, "article:42"),
            vec![
                ("*:42".to_string(), 3),
                ("article".to_string(), 0),
                ("article:*".to_string(), 2),
                ("article:42".to_string(), 1),
            ]
        );
        assert_eq!(matches(&index, "article"), vec![("article".to_string(), 0)]);
        assert_eq!(
            matches(&index, "tenant:acme:article:7"),
            vec![("tenant:*:article".to_string(), 4)]
        );
        assert!(matches(&index, "other").is_empty());
    }

    #[test]
    fn agrees_with_pattern_matches() {
        let patterns = ["a", "a:b", "a:*", "*", "*:b", "a:b:c", "b", "*:*:c"];
        let topics = ["a", "a:b", "a:c", "b", "b:b", "a:b:c", "c:c:c", "a:b:c:d"];
        let mut index = Index::default();
        for (i, pattern) in patterns.iter().enumerate() {
            index.insert(&p(pattern), i as SessionId, ());
        }
        for topic in topics {
            let mut expected: Vec<(String, SessionId)> = patterns
                .iter()
                .enumerate()
                .filter(|(_, pattern)| p(pattern).matches(&t(topic)))
                .map(|(i, pattern)| (pattern.to_string(), i as SessionId))
                .collect();
            expected.sort();
            assert_eq!(matches(&index, topic), expected, "topic {topic}");
        }
    }

    #[test]
    fn duplicate_insert_and_remove_keep_counts_right() {
        let mut index = Index::default();
        assert!(index.insert(&p("a:b"), 1, ()));
        assert!(!index.insert(&p("a:b"), 1, ()));
        assert!(index.insert(&p("a:b"), 2, ()));
        assert_eq!(index.len(), 2);
        assert!(index.remove(&p("a:b"), 1));
        assert!(!index.remove(&p("a:b"), 1));
        assert!(!index.remove(&p("a:c"), 2));
        assert!(!index.remove(&p("a:*"), 2));
        assert_eq!(matches(&index, "a:b"), vec![("a:b".to_string(), 2)]);
        assert!(index.remove(&p("a:b"), 2));
        assert!(index.is_empty());
        assert!(index.root.is_empty(), "empty nodes are pruned");
    }

    #[test]
    fn pruning_keeps_subscriptions_below_and_beside() {
        let mut index = Index::default();
        index.insert(&p("a"), 1, ());
        index.insert(&p("a:*:c"), 2, ());
        index.insert(&p("a:b"), 3, ());
        index.remove(&p("a"), 1);
        assert_eq!(
            matches(&index, "a:b:c"),
            vec![("a:*:c".to_string(), 2), ("a:b".to_string(), 3)]
        );
        index.remove(&p("a:*:c"), 2);
        assert_eq!(matches(&index, "a:b:c"), vec![("a:b".to_string(), 3)]);
        index.remove(&p("a:b"), 3);
        assert!(index.root.is_empty());
    }

    /// Routing cost does not depend on subscriptions that cannot match: count the
    /// trie nodes a walk visits with 10 and with 100,010 subscriptions.
    #[test]
    fn routing_does_not_look_at_non_matching_subscriptions() {
        fn visited<V>(node: &Node<V>, rest: &[&str]) -> usize {
            let Some((segment, rest)) = rest.split_first() else {
                return 1;
            };
            1 + node.children.get(*segment).map_or(0, |c| visited(c, rest))
                + node.wildcard.as_deref().map_or(0, |c| visited(c, rest))
        }
        let mut index = Index::default();
        for i in 0..10 {
            index.insert(&p("article:42"), i, ());
        }
        let segments = ["article", "42"];
        let before = visited(&index.root, &segments);
        for i in 0..100_000u64 {
            index.insert(&p(&format!("article:{}", i + 1000)), i, ());
        }
        assert_eq!(index.len(), 100_010);
        assert_eq!(visited(&index.root, &segments), before);
        let mut count = 0;
        index.for_each_match(&t("article:42"), |_, _, _| count += 1);
        assert_eq!(count, 10);
    }
}
