//! Topic grammar: validated topics, subscription patterns, id tokens, and the wildcard matcher.
//!
//! A topic is a dot-separated list of non-empty tokens with no whitespace, no control
//! characters and no wildcard characters. A pattern uses the same tokens plus two
//! wildcards, each a whole token: `*` matches exactly one token, `>` matches one or more
//! trailing tokens and may only be the last token. This is also the NATS subject grammar,
//! so patterns map to NATS subjects unchanged.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use decnet_core::{DeckyName, HostUuid};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::error::shown;

/// Longest topic or pattern, in bytes (the frame header limit is 4096 with the verb).
pub const MAX_TOPIC_LEN: usize = 1024;
/// Most tokens in one topic or pattern.
pub const MAX_TOKENS: usize = 32;
/// Longest id token, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Why one literal token is refused, if it is.
fn literal_problem(token: &str) -> Option<&'static str> {
    if token.is_empty() {
        return Some("it has an empty token");
    }
    if token.is_ascii() {
        // The common case, checked bytewise (topics are validated on every publish).
        for &b in token.as_bytes() {
            match b {
                b'*' | b'>' => {
                    return Some("'*' and '>' may only appear as whole pattern tokens");
                }
                b'.' => return Some("a token may not contain '.'"),
                0..=0x20 | 0x7f => {
                    return Some("it contains whitespace or a control character");
                }
                _ => {}
            }
        }
        return None;
    }
    for c in token.chars() {
        if c == '*' || c == '>' {
            return Some("'*' and '>' may only appear as whole pattern tokens");
        }
        if c == '.' {
            return Some("a token may not contain '.'");
        }
        if c.is_whitespace() || c.is_control() {
            return Some("it contains whitespace or a control character");
        }
    }
    None
}

fn common_problem(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        return Some("it is empty");
    }
    if text.len() > MAX_TOPIC_LEN {
        return Some("it is longer than 1024 bytes");
    }
    if text.bytes().filter(|&b| b == b'.').count() >= MAX_TOKENS {
        return Some("it has more than 32 tokens");
    }
    None
}

/// Const check of a static topic: ASCII graphic characters, non-empty tokens, no wildcards.
const fn static_topic_ok(text: &str) -> bool {
    let b = text.as_bytes();
    if b.is_empty() || b.len() > MAX_TOPIC_LEN {
        return false;
    }
    let mut i = 0;
    let mut token_len = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'.' {
            if token_len == 0 {
                return false;
            }
            token_len = 0;
        } else if c == b'*' || c == b'>' || !c.is_ascii_graphic() {
            return false;
        } else {
            token_len += 1;
        }
        i += 1;
    }
    token_len > 0
}

/// The text of a topic or pattern: a constant, or one shared allocation, so that cloning
/// a topic (once per event delivered, on every backend) is a reference-count increment.
#[derive(Clone)]
enum Text {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Text {
    fn new(text: &str) -> Self {
        Text::Shared(Arc::from(text))
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Text::Static(s) => s,
            Text::Shared(s) => s,
        }
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Text {}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Self) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A validated topic such as `decky.local:web-01.state`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Topic(Text);

impl Topic {
    /// Validates `text`.
    ///
    /// # Errors
    /// [`Error::InvalidTopic`] naming the broken rule.
    pub fn new(text: impl AsRef<str>) -> Result<Self, Error> {
        let text = text.as_ref();
        let problem = common_problem(text).or_else(|| text.split('.').find_map(literal_problem));
        match problem {
            None => Ok(Self(Text::new(text))),
            Some(reason) => Err(Error::InvalidTopic {
                topic: shown(text),
                reason,
            }),
        }
    }

    /// A topic from a constant; an invalid constant fails to compile when used in a `const`.
    ///
    /// # Panics
    /// When `text` is not a valid ASCII topic (at compile time in const context).
    pub const fn from_static(text: &'static str) -> Self {
        assert!(static_topic_ok(text), "invalid static topic");
        Self(Text::Static(text))
    }

    /// The topic as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tokens, in order.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// The last token (the leaf), used as the default event type by the CLI.
    pub fn leaf(&self) -> &str {
        self.0.rsplit('.').next().unwrap_or_default()
    }

    /// Appends `.suffix` (which may itself be dotted), validating the result.
    ///
    /// # Errors
    /// [`Error::InvalidTopic`] when the result is not a valid topic.
    pub fn child(&self, suffix: &str) -> Result<Topic, Error> {
        Topic::new(format!("{}.{suffix}", self.as_str()))
    }
}

impl TryFrom<String> for Topic {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        Self::new(value)
    }
}

impl TryFrom<&str> for Topic {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self, Error> {
        Self::new(value)
    }
}

impl From<Topic> for String {
    fn from(value: Topic) -> Self {
        value.0.to_string()
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// How many recent topics a [`TopicCache`] keeps.
const TOPIC_CACHE_SLOTS: usize = 8;

/// The topics seen last on one connection: a frame header that repeats one of them reuses
/// it, without validating or allocating again (a publisher usually repeats a few topics).
pub(crate) struct TopicCache {
    slots: Vec<Topic>,
    next: usize,
}

impl TopicCache {
    pub(crate) fn new() -> Self {
        Self {
            slots: Vec::with_capacity(TOPIC_CACHE_SLOTS),
            next: 0,
        }
    }

    /// The topic named `text`, validated once per cache entry.
    ///
    /// # Errors
    /// As [`Topic::new`].
    pub(crate) fn get(&mut self, text: &str) -> Result<Topic, Error> {
        if let Some(topic) = self.slots.iter().find(|t| t.as_str() == text) {
            return Ok(topic.clone());
        }
        let topic = Topic::new(text)?;
        if self.slots.len() < TOPIC_CACHE_SLOTS {
            self.slots.push(topic.clone());
        } else {
            self.slots[self.next] = topic.clone();
            self.next = (self.next + 1) % TOPIC_CACHE_SLOTS;
        }
        Ok(topic)
    }
}

/// A validated subscription pattern such as `system.*.health` or `topology.t1.>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pattern(Text);

impl Pattern {
    /// Validates `text`.
    ///
    /// # Errors
    /// [`Error::InvalidPattern`] naming the broken rule; `a.>.z`, `a.b*`, `a..b` and
    /// `a b` are all refused.
    pub fn new(text: impl AsRef<str>) -> Result<Self, Error> {
        let text = text.as_ref();
        match Self::problem(text) {
            None => Ok(Self(Text::new(text))),
            Some(reason) => Err(Error::InvalidPattern {
                pattern: shown(text),
                reason,
            }),
        }
    }

    fn problem(text: &str) -> Option<&'static str> {
        if let Some(p) = common_problem(text) {
            return Some(p);
        }
        let mut tokens = text.split('.').peekable();
        while let Some(token) = tokens.next() {
            match token {
                "*" => {}
                ">" if tokens.peek().is_some() => {
                    return Some("'>' may only be the last token");
                }
                ">" => {}
                other => {
                    if let Some(p) = literal_problem(other) {
                        return Some(p);
                    }
                }
            }
        }
        None
    }

    /// The pattern that matches exactly `topic`.
    pub fn exact(topic: &Topic) -> Pattern {
        Pattern(topic.0.clone())
    }

    /// The pattern as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the pattern has no wildcard token.
    pub fn is_literal(&self) -> bool {
        !self.0.split('.').any(|t| t == "*" || t == ">")
    }

    /// Does this pattern match `topic`?
    pub fn matches(&self, topic: &Topic) -> bool {
        matches(&self.0, &topic.0)
    }
}

impl TryFrom<String> for Pattern {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        Self::new(value)
    }
}

impl TryFrom<&str> for Pattern {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self, Error> {
        Self::new(value)
    }
}

impl From<Pattern> for String {
    fn from(value: Pattern) -> Self {
        value.0.to_string()
    }
}

impl From<Topic> for Pattern {
    fn from(value: Topic) -> Self {
        Pattern(value.0)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The matcher shared by the broker, the socket client and the in-process bus.
///
/// `pattern` is assumed valid (a [`Pattern`]); `topic` may be anything: an empty token
/// never satisfies `*` or starts a `>` match, and a `>` that is not last ends the match
/// like the last token would (a valid pattern never has one).
pub fn matches(pattern: &str, topic: &str) -> bool {
    // Bytewise: every event is matched against every pattern of its receivers, and
    // `str::split` costs more than the comparisons themselves.
    let (mut p, mut t) = (pattern.as_bytes(), topic.as_bytes());
    loop {
        let (p_tok, p_rest) = first_token(p);
        let (t_tok, t_rest) = first_token(t);
        match p_tok {
            b">" => return !t_tok.is_empty(),
            b"*" => {
                if t_tok.is_empty() {
                    return false;
                }
            }
            literal => {
                if literal != t_tok {
                    return false;
                }
            }
        }
        match (p_rest, t_rest) {
            (None, None) => return true,
            (Some(pr), Some(tr)) => (p, t) = (pr, tr),
            _ => return false,
        }
    }
}

/// The first dot-separated token and what follows its dot (`None` when it is the last).
fn first_token(text: &[u8]) -> (&[u8], Option<&[u8]>) {
    match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], Some(&text[dot + 1..])),
        None => (text, None),
    }
}

/// An id that forms one topic token: non-empty, at most [`MAX_ID_LEN`] bytes, and free of
/// `.`, `*`, `>`, whitespace and control characters (`:` is allowed, as in
/// `decky.<host>:<name>.state`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdToken(String);

impl IdToken {
    /// Validates `token`; `what` names it in the error (`worker`, `topology id`, …).
    ///
    /// # Errors
    /// [`Error::InvalidToken`] naming the broken rule.
    pub fn new(what: &'static str, token: impl Into<String>) -> Result<Self, Error> {
        let token = token.into();
        let problem = if token.len() > MAX_ID_LEN {
            Some("it is longer than 128 bytes")
        } else {
            literal_problem(&token)
        };
        match problem {
            None => Ok(Self(token)),
            Some(reason) => Err(Error::InvalidToken {
                what,
                token: shown(&token),
                reason,
            }),
        }
    }

    /// The token as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdToken {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        Self::new("id", value)
    }
}

impl From<IdToken> for String {
    fn from(value: IdToken) -> Self {
        value.0
    }
}

impl fmt::Display for IdToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&DeckyName> for IdToken {
    /// Decky names (`[a-z0-9-]`) are always valid tokens.
    fn from(value: &DeckyName) -> Self {
        Self(value.as_str().to_owned())
    }
}

impl From<&HostUuid> for IdToken {
    /// Host ids are validated against the same token rules by `decnet-core`.
    fn from(value: &HostUuid) -> Self {
        Self(value.as_str().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn topics_refuse_wildcards_empty_tokens_and_whitespace() {
        for ok in [
            "a",
            "a.b",
            "decky.local:web-01.state",
            "system.bus.health",
            "ünï.cödé",
        ] {
            Topic::new(ok).unwrap();
        }
        for bad in [
            "", "a.", ".a", "a..b", "a.*", "a.>", "a b", "a\tb", "a\u{0}", "a*b", "x>",
        ] {
            assert!(Topic::new(bad).is_err(), "{bad:?}");
        }
        assert!(Topic::new("a".repeat(MAX_TOPIC_LEN + 1)).is_err());
        assert!(Topic::new(vec!["a"; MAX_TOKENS + 1].join(".")).is_err());
        Topic::new(vec!["a"; MAX_TOKENS].join(".")).unwrap();
    }

    #[test]
    fn static_topics_are_checked_like_dynamic_ones() {
        const T: Topic = Topic::from_static("system.bus.health");
        assert_eq!(T.as_str(), "system.bus.health");
        for bad in ["", "a.", "a..b", "a.*", "a b", "a.>"] {
            assert!(!static_topic_ok(bad), "{bad:?}");
        }
        assert!(std::panic::catch_unwind(|| Topic::from_static("a..b")).is_err());
    }

    #[test]
    fn topic_cache_validates_once_and_stays_bounded() {
        let mut cache = TopicCache::new();
        let a = cache.get("a.b").unwrap();
        let again = cache.get("a.b").unwrap();
        assert_eq!(a, again);
        // The same allocation: the second lookup was a hit.
        assert!(std::ptr::eq(a.as_str(), again.as_str()));
        assert!(cache.get("a..b").is_err());
        for i in 0..3 * TOPIC_CACHE_SLOTS {
            assert_eq!(
                cache.get(&format!("t.{i}")).unwrap().as_str(),
                format!("t.{i}")
            );
        }
        assert_eq!(cache.slots.len(), TOPIC_CACHE_SLOTS);
        // An evicted topic is validated and cached again.
        assert_eq!(cache.get("a.b").unwrap().as_str(), "a.b");
    }

    #[test]
    fn id_tokens() {
        IdToken::new("worker", "agent").unwrap();
        IdToken::new("decky", "local:web-01").unwrap();
        for bad in [
            "",
            "a.b",
            "a*",
            "a>",
            "a b",
            "a\n",
            &"x".repeat(MAX_ID_LEN + 1),
        ] {
            let err = IdToken::new("worker", bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid worker"), "{err}");
        }
    }

    #[test]
    fn leaf_and_child() {
        let t = Topic::new("attacker.session.started").unwrap();
        assert_eq!(t.leaf(), "started");
        assert_eq!(
            t.child("x.y").unwrap().as_str(),
            "attacker.session.started.x.y"
        );
        assert!(t.child("").is_err());
    }

    fn token() -> impl Strategy<Value = String> {
        "[a-z0-9:_-]{1,6}"
    }

    /// The matcher as first written, over `str::split`: the reference for the bytewise one.
    fn matches_by_split(pattern: &str, topic: &str) -> bool {
        let mut p = pattern.split('.');
        let mut t = topic.split('.');
        loop {
            match (p.next(), t.next()) {
                (None, None) => return true,
                (Some(">"), Some(tok)) => return !tok.is_empty(),
                (Some("*"), Some(tok)) => {
                    if tok.is_empty() {
                        return false;
                    }
                }
                (Some(lit), Some(tok)) => {
                    if lit != tok {
                        return false;
                    }
                }
                _ => return false,
            }
        }
    }

    proptest! {
        #[test]
        fn bytewise_matcher_agrees_with_the_split_one(
            pattern in "[ab*>.]{0,9}",
            topic in "[ab.]{0,9}",
        ) {
            prop_assert_eq!(matches(&pattern, &topic), matches_by_split(&pattern, &topic));
        }

        #[test]
        fn exact_pattern_matches_only_itself(a in prop::collection::vec(token(), 1..5),
                                             b in prop::collection::vec(token(), 1..5)) {
            let ta = Topic::new(a.join(".")).unwrap();
            let tb = Topic::new(b.join(".")).unwrap();
            let p = Pattern::exact(&ta);
            prop_assert!(p.matches(&ta));
            prop_assert_eq!(p.matches(&tb), ta == tb);
        }

        #[test]
        fn star_and_tail_agree_with_token_counts(t in prop::collection::vec(token(), 1..6), k in 0usize..6) {
            let topic = Topic::new(t.join(".")).unwrap();
            // `<first k tokens>.>` matches iff the topic has more than k tokens.
            if k > 0 && k <= t.len() {
                let p = Pattern::new(format!("{}.>", t[..k].join("."))).unwrap();
                prop_assert_eq!(p.matches(&topic), t.len() > k);
            }
            // Replacing any single token by `*` still matches; adding a token does not.
            for i in 0..t.len() {
                let mut pt = t.clone();
                pt[i] = "*".into();
                prop_assert!(Pattern::new(pt.join(".")).unwrap().matches(&topic));
                pt.push("*".into());
                prop_assert!(!Pattern::new(pt.join(".")).unwrap().matches(&topic));
            }
        }

        #[test]
        fn validation_never_panics(s in ".{0,40}") {
            let _ = Topic::new(s.clone());
            let _ = Pattern::new(s.clone());
            let _ = IdToken::new("x", s.clone());
            if let Ok(t) = Topic::new(s.clone()) {
                prop_assert!(Pattern::new(s).is_ok());
                prop_assert!(Pattern::exact(&t).is_literal());
            }
        }
    }
}
