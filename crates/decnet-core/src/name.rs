//! Validated identifiers: decky names and host ids, both safe as bus topic tokens.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Longest decky name: a DNS label, so it also fits a container name and a hostname.
pub const MAX_NAME_LEN: usize = 63;

/// The name of one decky: `^[a-z0-9][a-z0-9-]{0,62}$`.
///
/// Names become container names, bus topic tokens and syslog HOSTNAMEs, so dots,
/// wildcards, upper case and whitespace are refused when the value is built; no later
/// stage has to re-check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeckyName(String);

impl DeckyName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`Error::InvalidName`] naming the value and the broken rule.
    pub fn new(name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        check_label(&name, "decky name")?;
        Ok(Self(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks the shared label grammar `^[a-z0-9][a-z0-9-]{0,62}$`.
pub(crate) fn check_label(name: &str, what: &'static str) -> Result<(), Error> {
    let fail = |reason: String| Error::InvalidName {
        what,
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(fail("it is empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(fail(format!(
            "it is {} characters long, at most {MAX_NAME_LEN} are allowed",
            name.len()
        )));
    }
    let first = name.as_bytes()[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(fail(
            "it must start with a lowercase letter or a digit".into(),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(fail(format!(
            "character {bad:?} is not allowed (use a-z, 0-9 and '-')"
        )));
    }
    Ok(())
}

impl TryFrom<String> for DeckyName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        Self::new(value)
    }
}

impl From<DeckyName> for String {
    fn from(value: DeckyName) -> Self {
        value.0
    }
}

impl fmt::Display for DeckyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DeckyName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Identity of the host that runs a decky: a swarm worker's uuid, or [`HostUuid::LOCAL`].
///
/// It is used as a bus topic token (`decky.<host>:<name>.state`), so it must be
/// non-empty, at most 128 characters, and free of `.`, `*`, `>` and whitespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostUuid(String);

impl HostUuid {
    /// The sentinel used for unihost rows and master-resident deckies.
    pub const LOCAL: &'static str = "local";

    /// Validates `id`.
    ///
    /// # Errors
    /// [`Error::InvalidName`] when the value is not a safe topic token.
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        let fail = |reason: &str| Error::InvalidName {
            what: "host uuid",
            name: id.clone(),
            reason: reason.to_owned(),
        };
        if id.is_empty() {
            return Err(fail("it is empty"));
        }
        if id.len() > 128 {
            return Err(fail("it is longer than 128 characters"));
        }
        if id
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control())
        {
            return Err(fail(
                "it must not contain '.', '*', '>', whitespace or control characters",
            ));
        }
        Ok(Self(id))
    }

    /// The unihost sentinel `local`.
    pub fn local() -> Self {
        Self(Self::LOCAL.to_owned())
    }

    /// True for the unihost sentinel.
    pub fn is_local(&self) -> bool {
        self.0 == Self::LOCAL
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HostUuid {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        Self::new(value)
    }
}

impl From<HostUuid> for String {
    fn from(value: HostUuid) -> Self {
        value.0
    }
}

impl fmt::Display for HostUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_grammar() {
        for ok in ["a", "decky-01", "0", "web-server-3", &"a".repeat(63)] {
            assert_eq!(DeckyName::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_everything_else_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("-a", "start with"),
            ("Decky", "start with"),
            ("dEcky", "'E'"),
            ("a.b", "'.'"),
            ("a*b", "'*'"),
            ("a>b", "'>'"),
            ("a b", "' '"),
            ("a_b", "'_'"),
        ];
        for (bad, why) in cases {
            let err = DeckyName::new(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(err.contains("decky name"), "{err}");
        }
        let long = "a".repeat(64);
        assert!(DeckyName::new(long).unwrap_err().to_string().contains("64"));
    }

    #[test]
    fn deserialization_validates() {
        let err = serde_json::from_str::<DeckyName>("\"a.b\"").unwrap_err();
        assert!(err.to_string().contains("not allowed"));
        let ok: DeckyName = serde_json::from_str("\"ab\"").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"ab\"");
    }

    #[test]
    fn host_uuid_rules() {
        assert!(HostUuid::new("4f0c-aa:1").is_ok());
        assert!(HostUuid::local().is_local());
        for bad in ["", "a.b", "a*", "a>", "a b", "a\tb"] {
            assert!(HostUuid::new(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn valid_names_are_topic_safe(s in "[a-z0-9][a-z0-9-]{0,62}") {
            let n = DeckyName::new(s.clone()).unwrap();
            proptest::prop_assert!(HostUuid::new(n.as_str()).is_ok());
        }

        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = DeckyName::new(s);
        }
    }
}
