//! [`Timestamp`]: UTC instants with microsecond precision, stored as an integer.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{Error, Result};

/// A UTC instant, microseconds since the Unix epoch.
///
/// Both SQL backends store it as a 64-bit integer, so ordering and equality are the
/// same everywhere and no time zone or driver conversion is involved. In JSON it is an
/// RFC 3339 string (`2026-04-01T12:00:00.123456Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `micros` microseconds after the Unix epoch.
    pub const fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_unix_micros(self) -> i64 {
        self.0
    }

    /// The instant `secs` whole seconds after the Unix epoch.
    pub const fn from_unix_seconds(secs: i64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// The current time from the system clock, truncated to microseconds.
    pub fn now() -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self(i64::try_from(nanos / 1_000).unwrap_or(i64::MAX))
    }

    /// `self + d`, saturating at the representable range.
    pub fn plus(self, d: Duration) -> Self {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(micros))
    }

    /// `self - d`, saturating at the representable range.
    pub fn minus(self, d: Duration) -> Self {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(micros))
    }

    fn to_datetime(self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000).ok()
    }

    /// RFC 3339 text, or `None` for an instant outside years 0000–9999.
    pub fn to_rfc3339(self) -> Option<String> {
        self.to_datetime()?.format(&Rfc3339).ok()
    }

    /// Parses RFC 3339 text (any offset; sub-microsecond digits are dropped).
    ///
    /// # Errors
    /// [`Error::Invalid`] when `text` is not RFC 3339.
    pub fn parse_rfc3339(text: &str) -> Result<Self> {
        let dt = OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|e| Error::invalid("timestamp", format!("{text:?}: {e}")))?;
        let micros = dt.unix_timestamp_nanos() / 1_000;
        i64::try_from(micros)
            .map(Self)
            .map_err(|_| Error::invalid("timestamp", format!("{text:?} is out of range")))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_rfc3339() {
            Some(text) => f.write_str(&text),
            None => write!(f, "@{}us", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.to_rfc3339() {
            Some(text) => serializer.serialize_str(&text),
            None => Err(serde::ser::Error::custom(format!(
                "timestamp {}us is outside years 0000-9999",
                self.0
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_microseconds() {
        let t = Timestamp::from_unix_micros(1_775_044_800_123_456);
        let text = t.to_rfc3339().unwrap();
        assert_eq!(text, "2026-04-01T12:00:00.123456Z");
        assert_eq!(Timestamp::parse_rfc3339(&text).unwrap(), t);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2026-04-01T12:00:00.123456Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let a = Timestamp::parse_rfc3339("2026-04-01T14:00:00.5+02:00").unwrap();
        let b = Timestamp::parse_rfc3339("2026-04-01T12:00:00.500Z").unwrap();
        assert_eq!(a, b);
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_unix_seconds(10);
        assert_eq!(
            t.plus(Duration::from_millis(1)).as_unix_micros(),
            10_001_000
        );
        assert_eq!(
            t.minus(Duration::from_secs(20)).as_unix_micros(),
            -10_000_000
        );
        assert_eq!(
            Timestamp::from_unix_micros(i64::MAX).plus(Duration::from_secs(1)),
            Timestamp::from_unix_micros(i64::MAX)
        );
        let far = Timestamp::from_unix_micros(i64::MAX);
        assert!(far.to_rfc3339().is_none());
        assert!(serde_json::to_string(&far).is_err());
        assert!(far.to_string().starts_with('@'));
    }

    #[test]
    fn now_is_after_2025() {
        assert!(Timestamp::now() > Timestamp::from_unix_seconds(1_735_689_600));
    }
}
