//! Wildcard table: which patterns match which topics, and which patterns are refused.

use decnet_bus::{Pattern, Topic, matches};

/// (pattern, topic, matches?)
const TABLE: &[(&str, &str, bool)] = &[
    // Literals compare exactly, case-sensitively, with equal token counts.
    ("a.b", "a.b", true),
    ("a.b", "a.B", false),
    ("a.b", "a.b.c", false),
    ("a.b.c", "a.b", false),
    // `*` is exactly one token.
    ("a.*", "a.b", true),
    ("a.*", "a", false),
    ("a.*", "a.b.c", false),
    ("*.b", "a.b", true),
    ("*", "a", true),
    ("*", "a.b", false),
    ("a.*.c", "a.b.c", true),
    ("a.*.c", "a.b.d", false),
    ("*.*", "a.b", true),
    // `>` is one or more trailing tokens.
    ("topology.>", "topology", false),
    ("topology.>", "topology.a", true),
    ("topology.>", "topology.a.b.c", true),
    (">", "a", true),
    (">", "a.b.c", true),
    ("a.*.>", "a.b", false),
    ("a.*.>", "a.b.c", true),
    // Dotted leaves: `attacker.*` misses session events; `system.*.health` matches the bus.
    ("attacker.*", "attacker.observed", true),
    ("attacker.*", "attacker.session.started", false),
    ("attacker.>", "attacker.session.started", true),
    ("system.*.health", "system.bus.health", true),
    ("system.*.health", "system.agent.health", true),
    ("system.*.health", "system.health", false),
    // `:` is an ordinary character inside a token.
    ("decky.*.state", "decky.local:web-01.state", true),
    ("decky.local:web-01.*", "decky.local:web-01.state", true),
];

#[test]
fn table() {
    for &(p, t, want) in TABLE {
        let pattern = Pattern::new(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        let topic = Topic::new(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(pattern.matches(&topic), want, "{p} vs {t}");
        assert_eq!(matches(p, t), want, "{p} vs {t} (str)");
    }
}

#[test]
fn refused_patterns() {
    // The reference accepted `a.>.z` (behaving as `a.>`) and inner spaces; we refuse them.
    for bad in [
        "a.>.z",
        ">.a",
        "a.>.>",
        "",
        ".",
        "a.",
        ".a",
        "a..b",
        "a b",
        "a.b c",
        "a\tb",
        "a*",
        "*a",
        "a.b*",
        "a.>b",
        "a.*>",
        "a\nb",
        "a\u{0}b",
        "decky.local:*.state",
    ] {
        let err = Pattern::new(bad).expect_err(bad);
        assert!(
            err.to_string().starts_with("invalid pattern"),
            "{bad:?}: {err}"
        );
    }
    let long = vec!["a"; 33].join(".");
    assert!(Pattern::new(long).is_err());
}

#[test]
fn refused_topics() {
    // Topics carry no wildcards and no empty tokens (the reference let `a.>` match `a.`).
    for bad in ["a.", "a.*", "a.>", "*", ">", "a b", "", "a..b"] {
        assert!(Topic::new(bad).is_err(), "{bad:?}");
    }
    // The raw matcher still refuses empty tokens where a token is required.
    assert!(!matches("a.>", "a."));
    assert!(!matches("a.*", "a."));
}
