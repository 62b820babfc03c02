//! The v1 event envelope `{v, id, topic, type, ts, payload}` plus the broker's receive time `rts`.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::Error;
use crate::json;
use crate::payload::Payload;
use crate::ser::{write_scalar as write_value, write_str};
use crate::topic::Topic;

/// The envelope version this crate writes and accepts.
pub const ENVELOPE_VERSION: u32 = 1;
/// Longest event id kept from a publisher, in bytes.
pub const MAX_EVENT_ID_LEN: usize = 128;
/// Longest event type, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 256;

/// One event.
///
/// On receive, the topic always comes from the transport (frame header or NATS subject),
/// never from the body; missing fields default (new id, `ts` now, type `""`, payload `{}`).
/// The broker keeps the publisher's `id` and `ts` and adds its own receive time `rts`
/// (FL-8), so a subscriber can tell publish time from broker time. The payload stays JSON
/// text until it is read ([`Envelope::payload_as`], [`Payload::to_map`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Format version, [`ENVELOPE_VERSION`].
    pub v: u32,
    /// Event id: uuid4 hex for events made here.
    pub id: String,
    /// The topic.
    pub topic: Topic,
    /// Leaf discriminator (`health`, `bus.health`, `state`, …), may be empty.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Publish time, seconds since the Unix epoch.
    pub ts: f64,
    /// The event data: one JSON object.
    pub payload: Payload,
    /// Broker receive time, seconds since the Unix epoch (absent before a broker saw it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rts: Option<f64>,
}

/// Seconds since the Unix epoch, as the envelope stores time.
pub fn now_ts() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A fresh event id (uuid4, 32 hex digits).
///
/// Drawn from the thread-local CSPRNG rather than the OS on every call: ids only need to
/// be unique, and a getrandom system call per event showed up in the bus benchmark.
pub fn new_event_id() -> String {
    let mut hex = [0u8; uuid::fmt::Simple::LENGTH];
    let text = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .simple()
        .encode_lower(&mut hex);
    String::from(&*text)
}

impl Envelope {
    /// A new event stamped with a fresh id and the current time.
    pub fn new(topic: Topic, event_type: impl Into<String>, payload: impl Into<Payload>) -> Self {
        Self {
            v: ENVELOPE_VERSION,
            id: new_event_id(),
            topic,
            event_type: event_type.into(),
            ts: now_ts(),
            payload: payload.into(),
            rts: None,
        }
    }

    /// Parses the payload into `T` (which may borrow strings from it).
    ///
    /// # Errors
    /// [`Error::PayloadType`] when the payload does not fit `T`.
    pub fn payload_as<'a, T: Deserialize<'a>>(&'a self) -> Result<T, Error> {
        self.payload.parse()
    }

    /// The JSON body of this envelope.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.payload.as_bytes().len()
                + self.id.len()
                + self.topic.as_str().len()
                + self.event_type.len()
                + 96,
        );
        self.write_json(&mut out);
        out
    }

    /// Appends the JSON body of this envelope to `out`: the fields in the order `v`, `id`,
    /// `topic`, `type`, `ts`, `payload`, `rts` (when set), the payload text verbatim.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"v\":");
        write_value(out, &self.v);
        out.extend_from_slice(b",\"id\":");
        write_str(out, &self.id);
        out.extend_from_slice(b",\"topic\":");
        write_str(out, self.topic.as_str());
        out.extend_from_slice(b",\"type\":");
        write_str(out, &self.event_type);
        out.extend_from_slice(b",\"ts\":");
        write_value(out, &self.ts);
        out.extend_from_slice(b",\"payload\":");
        out.extend_from_slice(self.payload.as_bytes());
        if let Some(rts) = self.rts {
            out.extend_from_slice(b",\"rts\":");
            write_value(out, &rts);
        }
        out.push(b'}');
    }

    /// Reads an envelope received on `topic` (from the transport); `now` fills a missing `ts`.
    ///
    /// The body is validated completely in one pass; the payload is checked to be an object
    /// and kept as text.
    ///
    /// # Errors
    /// [`Error::Envelope`] when the body is not a JSON object, a field has the wrong type,
    /// the version is not 1, or the id or type is too long.
    pub fn from_wire(topic: Topic, body: &[u8], now: f64) -> Result<Self, Error> {
        let wire = WireEnvelope::parse(body)?;
        wire.check()?;
        let payload = match wire.payload {
            Some(raw) => Payload::from_raw(raw)?,
            None => Payload::empty(),
        };
        Ok(Self {
            v: ENVELOPE_VERSION,
            id: wire.id().map_or_else(new_event_id, |id| id.to_string()),
            rts: wire.rts()?,
            ts: wire.ts().unwrap_or(now),
            topic,
            event_type: wire.event_type.map(Cow::into_owned).unwrap_or_default(),
            payload,
        })
    }
}

/// The body as text, when it is UTF-8 and starts like an object (serde would also take an
/// array as a struct written as a sequence). Checking UTF-8 once up front lets the JSON
/// parser skip its per-string checks, and covers the strings it only skips over.
fn object_text(body: &[u8]) -> Result<&str, Error> {
    let text =
        std::str::from_utf8(body).map_err(|_| Error::Envelope("body is not utf-8".into()))?;
    if !text.trim_start().starts_with('{') {
        return Err(Error::Envelope("body is not a json object".into()));
    }
    Ok(text)
}

fn envelope_error(e: serde_json::Error) -> Error {
    Error::Envelope(e.to_string())
}

/// An envelope field name; anything else is `Other`.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Field {
    V,
    Id,
    Topic,
    Type,
    Ts,
    Payload,
    Rts,
    #[serde(other)]
    Other,
}

impl Field {
    /// Its bit in the set of fields seen.
    fn bit(self) -> u8 {
        match self {
            Field::V => 1,
            Field::Id => 2,
            Field::Topic => 4,
            Field::Type => 8,
            Field::Ts => 16,
            Field::Payload => 32,
            Field::Rts => 64,
            Field::Other => 128,
        }
    }
}

/// The six fields a v1 publisher writes, as field bits.
const PUBLISHED_FIELDS: u8 = 1 | 2 | 4 | 8 | 16 | 32;

/// A string field, borrowed from the body unless it holds escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

/// The text of a JSON number as an `f64`, read with the standard library's correctly
/// rounded parser (the value serde_json's `float_roundtrip` gives, faster); a value beyond
/// `f64` is refused, as serde_json refuses it.
fn number(text: &str) -> Result<f64, &'static str> {
    if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err("expected a number");
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or("number out of range")
}

/// Reads a body in the plain layout [`Envelope::write_json`] writes, optionally followed by
/// the broker's `rts`: `{"v":1,"id":"…","topic":"…","type":"…","ts":N,"payload":{…}}`, no
/// whitespace, ASCII strings without escapes. That is every body our clients publish and
/// our broker forwards, read here without the general parser's per-field work and without
/// a separate UTF-8 pass: every byte outside the payload is ASCII by construction, and the
/// payload is checked (UTF-8 included) by [`json::object_len`]. Anything else gives `None`
/// and goes to the general parser, which then reads the same values (or refuses the body).
struct Plain<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Plain<'a> {
    fn literal(&mut self, lit: &str) -> Option<()> {
        let rest = self.bytes.get(self.at..)?;
        if !rest.starts_with(lit.as_bytes()) {
            return None;
        }
        self.at += lit.len();
        Some(())
    }

    /// ASCII text without escapes or control characters, up to its closing quote: its range.
    fn string(&mut self) -> Option<Range<usize>> {
        let start = self.at;
        let rest = self.bytes.get(start..)?;
        let len = json::special_byte::<true>(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        Some(start..start + len)
    }

    /// A number token in the JSON grammar: its range.
    fn number(&mut self) -> Option<Range<usize>> {
        let bytes = self.bytes;
        let digits = |mut i: usize| {
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let start = self.at;
        let mut i = start;
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits(i),
            _ => return None,
        }
        if bytes.get(i) == Some(&b'.') {
            let end = digits(i + 1);
            if end == i + 1 {
                return None;
            }
            i = end;
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let end = digits(i);
            if end == i {
                return None;
            }
            i = end;
        }
        self.at = i;
        Some(start..i)
    }

    /// One JSON object, checked completely.
    fn object(&mut self) -> Option<&'a [u8]> {
        let rest = self.bytes.get(self.at..)?;
        let len = json::object_len(rest)?;
        self.at += len;
        rest.get(..len)
    }

    fn parse(bytes: &'a [u8]) -> Option<WireEnvelope<'a>> {
        let mut p = Plain { bytes, at: 0 };
        p.literal(r#"{"v":1,"id":""#)?;
        let id = p.string()?;
        p.literal(r#","topic":""#)?;
        let topic = p.string()?;
        p.literal(r#","type":""#)?;
        let event_type = p.string()?;
        p.literal(r#","ts":"#)?;
        let ts = p.number()?;
        p.literal(r#","payload":"#)?;
        // Everything up to here is ASCII: one UTF-8 pass (a fast one) gives all the texts.
        let head = std::str::from_utf8(bytes.get(..p.at)?).ok()?;
        let payload = p.object()?;
        let mut seen = PUBLISHED_FIELDS;
        let rts = if p.literal(r#","rts":"#).is_some() {
            seen |= Field::Rts.bit();
            let rts = p.number()?;
            Some(std::str::from_utf8(bytes.get(rts)?).ok()?)
        } else {
            None
        };
        p.literal("}")?;
        if p.at != bytes.len() {
            return None;
        }
        let ts = head.get(ts)?;
        if !surely_finite(ts) {
            number(ts).ok()?;
        }
        Some(WireEnvelope {
            v: Some(ENVELOPE_VERSION),
            id: Some(Cow::Borrowed(head.get(id)?)),
            topic: Some(Cow::Borrowed(head.get(topic)?)),
            event_type: Some(Cow::Borrowed(head.get(event_type)?)),
            ts: None,
            ts_text: Some(ts),
            payload: Some(payload),
            rts,
            seen,
            repeated: false,
        })
    }
}

/// True for the text of a JSON number that is certainly finite as an `f64` without parsing
/// it: no exponent and at most 300 characters (below 10^301).
fn surely_finite(text: &str) -> bool {
    text.len() <= 300 && !text.bytes().any(|b| b == b'e' || b == b'E')
}

/// The fields of a received body, borrowed from it; unknown fields are skipped (but
/// checked to be JSON), the payload is kept as raw text (checked JSON, not yet values).
#[derive(Default)]
struct WireEnvelope<'a> {
    v: Option<u32>,
    id: Option<Cow<'a, str>>,
    /// The body's own topic; receivers take the transport's instead.
    topic: Option<Cow<'a, str>>,
    event_type: Option<Cow<'a, str>>,
    ts: Option<f64>,
    /// The plain reader's `ts`, checked to be a finite number but not yet converted (the
    /// broker forwards it as it is); see [`WireEnvelope::ts`].
    ts_text: Option<&'a str>,
    payload: Option<&'a [u8]>,
    /// The JSON text of a receive time set by an earlier broker (read as a number by a
    /// client only).
    rts: Option<&'a str>,
    /// The fields seen, as [`Field::bit`]s.
    seen: u8,
    /// A `topic` or `rts` field appeared twice (allowed, as for unknown fields).
    repeated: bool,
}

impl<'de> Deserialize<'de> for WireEnvelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(WireVisitor)
    }
}

struct WireVisitor;

impl<'de> Visitor<'de> for WireVisitor {
    type Value = WireEnvelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an envelope object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireEnvelope<'de>, A::Error> {
        let mut w = WireEnvelope::default();
        while let Some(field) = map.next_key::<Field>()? {
            if w.seen & field.bit() != 0 {
                match field {
                    Field::Other => {}
                    Field::Topic | Field::Rts => w.repeated = true,
                    _ => return Err(de::Error::custom("duplicate envelope field")),
                }
            }
            w.seen |= field.bit();
            match field {
                Field::V => w.v = map.next_value()?,
                Field::Id => w.id = map.next_value::<Option<Text<'de>>>()?.map(|t| t.0),
                Field::Topic => w.topic = map.next_value::<Option<Text<'de>>>()?.map(|t| t.0),
                Field::Type => {
                    w.event_type = map.next_value::<Option<Text<'de>>>()?.map(|t| t.0);
                }
                Field::Ts => {
                    let raw: Option<&'de RawValue> = map.next_value()?;
                    w.ts = raw
                        .map(|r| number(r.get()))
                        .transpose()
                        .map_err(de::Error::custom)?;
                }
                Field::Payload => {
                    let raw: Option<&'de RawValue> = map.next_value()?;
                    w.payload = raw.map(|r| r.get().as_bytes());
                }
                Field::Rts => {
                    let raw: Option<&'de RawValue> = map.next_value()?;
                    w.rts = raw.map(RawValue::get);
                }
                Field::Other => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(w)
    }
}

impl<'a> WireEnvelope<'a> {
    /// Parses a body completely (every byte is checked); a blank body has no fields.
    fn parse(body: &'a [u8]) -> Result<Self, Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        if let Some(plain) = Plain::parse(body) {
            return Ok(plain);
        }
        serde_json::from_str(object_text(body)?).map_err(envelope_error)
    }

    fn check(&self) -> Result<(), Error> {
        if let Some(v) = self.v
            && v != ENVELOPE_VERSION
        {
            return Err(Error::Envelope(format!("unsupported version {v}")));
        }
        if let Some(p) = self.payload
            && p.first() != Some(&b'{')
        {
            return Err(Error::Envelope("payload is not an object".into()));
        }
        if self.id.as_ref().is_some_and(|i| i.len() > MAX_EVENT_ID_LEN) {
            return Err(Error::Envelope("id is longer than 128 bytes".into()));
        }
        if self
            .event_type
            .as_ref()
            .is_some_and(|t| t.len() > MAX_EVENT_TYPE_LEN)
        {
            return Err(Error::Envelope("type is longer than 256 bytes".into()));
        }
        Ok(())
    }

    /// The publish time.
    fn ts(&self) -> Option<f64> {
        self.ts
            .or_else(|| self.ts_text.and_then(|t| number(t).ok()))
    }

    /// The publisher's id, when it gave a usable one (an empty id is as good as none).
    fn id(&self) -> Option<&Cow<'a, str>> {
        self.id.as_ref().filter(|i| !i.is_empty())
    }

    /// The receive time of an earlier broker.
    ///
    /// # Errors
    /// [`Error::Envelope`] when it is not a number that fits an `f64`.
    fn rts(&self) -> Result<Option<f64>, Error> {
        self.rts
            .map(number)
            .transpose()
            .map_err(|e| Error::Envelope(format!("rts: {e}")))
    }

    /// True when the checked body is already exactly what the broker would rebuild, short
    /// of `rts`: each of the six published fields once and set (v 1, a non-empty id, the
    /// header's topic, a type, a time, a payload), and no other field.
    fn forwardable_as_is(&self, topic: &Topic) -> bool {
        self.seen == PUBLISHED_FIELDS
            && !self.repeated
            && self.v == Some(ENVELOPE_VERSION)
            && self.id().is_some()
            && self.topic.as_deref() == Some(topic.as_str())
            && self.event_type.is_some()
            && (self.ts.is_some() || self.ts_text.is_some())
            && self.payload.is_some()
    }
}

/// A receive time and its JSON text, written once per batch of frames rather than per frame.
pub(crate) struct Stamp {
    value: f64,
    text: Vec<u8>,
}

impl Stamp {
    pub(crate) fn new(value: f64) -> Self {
        let mut text = Vec::with_capacity(24);
        write_value(&mut text, &value);
        Self { value, text }
    }
}

/// Builds the body the broker delivers for a published one, checking it completely.
///
/// Keeps the publisher's `id`, `ts`, `type` and payload (FL-8), takes the topic from the
/// header, sets `rts` to `now`, and fills defaults like [`Envelope::from_wire`]; fields
/// outside the envelope are dropped. A body that a v1 publisher wrote for this topic
/// (the six fields, nothing else) is forwarded byte for byte with `rts` appended; any
/// other is rebuilt. The result is appended to `out`.
///
/// # Errors
/// As [`Envelope::from_wire`].
pub fn restamp(topic: &Topic, body: &[u8], now: f64, out: &mut Vec<u8>) -> Result<(), Error> {
    restamp_at(topic, body, &Stamp::new(now), out)
}

/// [`restamp`] with the receive time already written.
pub(crate) fn restamp_at(
    topic: &Topic,
    body: &[u8],
    now: &Stamp,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let wire = WireEnvelope::parse(body)?;
    wire.check()?;
    if wire.forwardable_as_is(topic) {
        // A parsed object ends with `}` once trailing whitespace is cut.
        let text = body.trim_ascii();
        if let Some(open) = text.strip_suffix(b"}") {
            out.reserve(open.len() + now.text.len() + 8);
            out.extend_from_slice(open);
            out.extend_from_slice(b",\"rts\":");
            out.extend_from_slice(&now.text);
            out.push(b'}');
            return Ok(());
        }
    }
    let fresh;
    let id = match wire.id() {
        Some(id) => id.as_ref(),
        None => {
            fresh = new_event_id();
            &fresh
        }
    };
    // The layout `Envelope::write_json` writes, with the payload text as it came.
    out.extend_from_slice(b"{\"v\":");
    write_value(out, &ENVELOPE_VERSION);
    out.extend_from_slice(b",\"id\":");
    write_str(out, id);
    out.extend_from_slice(b",\"topic\":");
    write_str(out, topic.as_str());
    out.extend_from_slice(b",\"type\":");
    write_str(out, wire.event_type.as_deref().unwrap_or(""));
    out.extend_from_slice(b",\"ts\":");
    write_value(out, &wire.ts().unwrap_or(now.value));
    out.extend_from_slice(b",\"payload\":");
    out.extend_from_slice(wire.payload.unwrap_or(b"{}"));
    out.extend_from_slice(b",\"rts\":");
    out.extend_from_slice(&now.text);
    out.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};

    fn topic(s: &str) -> Topic {
        Topic::new(s).unwrap()
    }

    #[test]
    fn round_trips_through_json() {
        let mut payload = Map::new();
        payload.insert("k".into(), json!([1, "x", null]));
        let env = Envelope::new(topic("a.b"), "b", payload);
        let back = Envelope::from_wire(topic("a.b"), &env.to_json(), 0.0).unwrap();
        assert_eq!(back, env);
        assert_eq!(env.id.len(), 32);
        assert!(env.ts > 1.6e9);
    }

    #[test]
    fn the_hand_written_body_is_what_serde_writes() {
        let mut env = Envelope::new(
            topic("a.b"),
            "t\"q\u{1}",
            Payload::from_json(r#"{"k":[1,"x\n",null],"e":{}}"#).unwrap(),
        );
        env.id = "i\\d".into();
        assert_eq!(env.to_json(), serde_json::to_vec(&env).unwrap());
        env.rts = Some(1.5);
        assert_eq!(env.to_json(), serde_json::to_vec(&env).unwrap());
        let back: Envelope = serde_json::from_slice(&env.to_json()).unwrap();
        assert_eq!(back, env);
        // A non-finite time is written as null, which a receiver replaces by its clock.
        env.ts = f64::NAN;
        let back = Envelope::from_wire(topic("a.b"), &env.to_json(), 3.0).unwrap();
        assert_eq!(back.ts, 3.0);
    }

    #[test]
    fn timestamps_survive_the_round_trip_exactly() {
        // Needs serde_json's float_roundtrip: the default parser may be one ulp off.
        let mut t = 1_764_211_234.123_456_7_f64;
        for _ in 0..10_000 {
            let mut env = Envelope::new(topic("a"), "", Map::new());
            env.ts = t;
            let back = Envelope::from_wire(topic("a"), &env.to_json(), 0.0).unwrap();
            assert_eq!(back.ts.to_bits(), t.to_bits(), "{t}");
            t += 0.000_123_457;
        }
    }

    #[test]
    fn receiver_takes_the_topic_from_the_transport_and_keeps_id_and_ts() {
        let body =
            br#"{"v":1,"id":"abc","topic":"spoofed.topic","type":"t","ts":12.5,"payload":{"a":1}}"#;
        let env = Envelope::from_wire(topic("real.topic"), body, 99.0).unwrap();
        assert_eq!(env.topic.as_str(), "real.topic");
        assert_eq!(env.id, "abc");
        assert_eq!(env.ts, 12.5);
        assert_eq!(env.event_type, "t");
        assert_eq!(env.payload.to_map().unwrap()["a"], 1);
        assert_eq!(env.payload.as_str(), r#"{"a":1}"#);
    }

    #[test]
    fn a_payload_number_beyond_f64_fails_only_its_reader() {
        // Valid JSON: the envelope is accepted and forwarded; reading the payload into
        // values fails for that event alone (it must not cost the connection).
        let body = br#"{"payload":{"x":1e400,"y":"z"}}"#;
        let env = Envelope::from_wire(topic("a"), body, 0.0).unwrap();
        assert!(env.payload.to_map().is_err());
        #[derive(Deserialize)]
        struct Y<'a> {
            y: &'a str,
        }
        // A reader that skips `x` is not affected.
        assert_eq!(env.payload_as::<Y<'_>>().unwrap().y, "z");
        let mut out = Vec::new();
        restamp(&topic("a"), body, 1.0, &mut out).unwrap();
    }

    #[test]
    fn missing_fields_default() {
        for body in [&b""[..], b"{}", b"  "] {
            let env = Envelope::from_wire(topic("a"), body, 42.0).unwrap();
            assert_eq!(env.v, 1);
            assert_eq!(env.ts, 42.0);
            assert_eq!(env.event_type, "");
            assert!(env.payload.is_empty());
            assert_eq!(env.id.len(), 32);
            assert_eq!(env.rts, None);
        }
        let env = Envelope::from_wire(topic("a"), br#"{"id":""}"#, 0.0).unwrap();
        assert_eq!(env.id.len(), 32);
    }

    #[test]
    fn bad_envelopes_are_refused() {
        for body in [
            &br#"{"payload":[1]}"#[..],
            br#"{"payload":"x"}"#,
            br#"{"v":2}"#,
            br#"{"id":5}"#,
            br#"{"ts":"now"}"#,
            br#"[]"#,
        ] {
            assert!(
                Envelope::from_wire(topic("a"), body, 0.0).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
            assert!(restamp(&topic("a"), body, 0.0, &mut Vec::new()).is_err());
        }
        let long_id = format!(r#"{{"id":"{}"}}"#, "x".repeat(MAX_EVENT_ID_LEN + 1));
        assert!(Envelope::from_wire(topic("a"), long_id.as_bytes(), 0.0).is_err());
    }

    #[test]
    fn a_published_body_is_forwarded_byte_for_byte_with_rts_appended() {
        let env = Envelope::new(
            topic("a.b"),
            "t",
            Payload::from_json(r#"{"k":"x\ny","n":[1.5e3]}"#).unwrap(),
        );
        let body = env.to_json();
        let mut out = Vec::new();
        restamp(&topic("a.b"), &body, 7.25, &mut out).unwrap();
        let mut want = body[..body.len() - 1].to_vec();
        want.extend_from_slice(br#","rts":7.25}"#);
        assert_eq!(out, want);
        let back = Envelope::from_wire(topic("a.b"), &out, 0.0).unwrap();
        assert_eq!(back.rts, Some(7.25));
        assert_eq!((back.id.as_str(), back.ts), (env.id.as_str(), env.ts));
        assert_eq!(back.payload, env.payload);
        // Whitespace around the object is cut; the inside is kept.
        let spaced = format!("  {} \n", String::from_utf8(body.clone()).unwrap());
        let mut out2 = Vec::new();
        restamp(&topic("a.b"), spaced.as_bytes(), 7.25, &mut out2).unwrap();
        assert_eq!(out2, want);
    }

    #[test]
    fn bodies_that_differ_from_a_plain_publication_are_rebuilt() {
        let rebuilt = |body: &str| {
            let mut out = Vec::new();
            restamp(&topic("real.t"), body.as_bytes(), 9.0, &mut out).unwrap();
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["topic"], "real.t", "{body}");
            assert_eq!(v["rts"], 9.0, "{body}");
            assert_eq!(v.as_object().unwrap().len(), 7, "{body}");
            assert!(!out.windows(5).any(|w| w == b"extra"), "{body}");
            v
        };
        let base = r#""v":1,"id":"i","type":"t","ts":1.5,"payload":{"a":1}"#;
        // Another topic in the body, a repeated topic, an earlier rts (even a repeated or
        // non-numeric one), an unknown field, a missing or null field.
        rebuilt(&format!(r#"{{{base},"topic":"spoofed"}}"#));
        rebuilt(&format!(r#"{{{base},"topic":"real.t","topic":"real.t"}}"#));
        let v = rebuilt(&format!(r#"{{{base},"topic":"real.t","rts":1.0}}"#));
        assert_eq!(v["ts"], 1.5);
        rebuilt(&format!(r#"{{{base},"topic":"real.t","rts":"x","rts":2}}"#));
        rebuilt(&format!(r#"{{{base},"topic":"real.t","extra":[1]}}"#));
        let v = rebuilt(r#"{"v":1,"id":"i","topic":"real.t","ts":1.5,"payload":{}}"#);
        assert_eq!(v["type"], "");
        let v = rebuilt(r#"{"v":1,"id":null,"topic":"real.t","type":"t","ts":1,"payload":{}}"#);
        assert_eq!(v["id"].as_str().unwrap().len(), 32);
        assert_eq!(v["ts"], 1.0);
    }

    #[test]
    fn field_rules_are_the_same_on_both_sides() {
        for body in [
            &br#"{"id":"a","id":"b"}"#[..],
            br#"{"payload":{},"payload":{}}"#,
            br#"{"ts":1e400}"#,
            br#"{"ts":"1"}"#,
            br#"{"ts":[1]}"#,
            br#"{"type":1}"#,
            br#"{"v":1.0}"#,
        ] {
            let shown = String::from_utf8_lossy(body);
            assert!(
                Envelope::from_wire(topic("a"), body, 0.0).is_err(),
                "{shown}"
            );
            assert!(
                restamp(&topic("a"), body, 0.0, &mut Vec::new()).is_err(),
                "{shown}"
            );
        }
        // A client reads `rts` as a number; a broker replaces whatever was there.
        let odd_rts = br#"{"rts":"yesterday"}"#;
        assert!(Envelope::from_wire(topic("a"), odd_rts, 0.0).is_err());
        restamp(&topic("a"), odd_rts, 0.0, &mut Vec::new()).unwrap();
        // Escaped names and integers are read like any other spelling.
        let env =
            Envelope::from_wire(topic("a"), br#"{"\u0074s":12,"i\u0064":"\u0061"}"#, 0.0).unwrap();
        assert_eq!((env.ts, env.id.as_str()), (12.0, "a"));
    }

    type Fields = (
        Option<u32>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<u64>,
        Option<String>,
        Option<String>,
        u8,
        bool,
    );

    fn fields(w: &WireEnvelope<'_>) -> Fields {
        (
            w.v,
            w.id.as_deref().map(str::to_owned),
            w.topic.as_deref().map(str::to_owned),
            w.event_type.as_deref().map(str::to_owned),
            w.ts().map(f64::to_bits),
            w.payload.map(|p| String::from_utf8(p.to_vec()).unwrap()),
            w.rts.map(str::to_owned),
            w.seen,
            w.repeated,
        )
    }

    proptest::proptest! {
        #[test]
        fn special_byte_finds_the_first_byte_to_escape(text in "(\\PC|[\"\\\\\u{0}-\u{1f}]){0,40}") {
            let want = text.bytes().position(|b| b == b'"' || b == b'\\' || b < 0x20);
            proptest::prop_assert_eq!(json::special_byte::<false>(text.as_bytes()), want);
            let mut out = Vec::new();
            write_str(&mut out, &text);
            proptest::prop_assert_eq!(out, serde_json::to_vec(&text).unwrap());
        }
    }

    #[test]
    fn our_own_bodies_take_the_plain_reader() {
        let env = Envelope::new(
            topic("a.b"),
            "t",
            Payload::from_json(r#"{"k":"x\"y","n":[-0.5e-3,{}]}"#).unwrap(),
        );
        let body = String::from_utf8(env.to_json()).unwrap();
        let plain = Plain::parse(body.as_bytes()).unwrap();
        assert_eq!(
            fields(&plain),
            fields(&serde_json::from_str(&body).unwrap())
        );
        let mut out = Vec::new();
        restamp(&topic("a.b"), body.as_bytes(), 2.5, &mut out).unwrap();
        let forwarded = String::from_utf8(out).unwrap();
        let plain = Plain::parse(forwarded.as_bytes()).unwrap();
        assert_eq!(plain.rts, Some("2.5"));
        assert_eq!(
            fields(&plain),
            fields(&serde_json::from_str(&forwarded).unwrap())
        );
        // Escapes, spaces, other orders and trailing bytes are left to the general reader.
        for other in [
            r#"{"v":1,"id":"a\u0062","topic":"t","type":"","ts":1,"payload":{}}"#,
            r#"{"v":1, "id":"a","topic":"t","type":"","ts":1,"payload":{}}"#,
            r#"{"id":"a","v":1,"topic":"t","type":"","ts":1,"payload":{}}"#,
            r#"{"v":1,"id":"a","topic":"t","type":"","ts":1,"payload":{}} "#,
            r#"{"v":1,"id":"a","topic":"t","type":"","ts":01,"payload":{}}"#,
            r#"{"v":1,"id":"a","topic":"t","type":"","ts":1,"payload":{},"x":1}"#,
        ] {
            assert!(Plain::parse(other.as_bytes()).is_none(), "{other}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_plain_reader_agrees_with_the_general_one(
            id in "[ -~]{0,6}",
            name in "[a-z\"\\\\.]{0,6}",
            kind in "\\PC{0,4}",
            ts in proptest::num::f64::ANY,
            payload in proptest::collection::btree_map("[a-z]{1,3}", proptest::prelude::any::<i32>(), 0..3),
            rts in proptest::option::of(proptest::num::f64::ANY),
            cut in 0usize..200,
            junk in "[ -~]{0,3}",
        ) {
            let js = |v: &dyn erased::Json| v.json();
            let mut body = format!(
                r#"{{"v":1,"id":{},"topic":{},"type":{},"ts":{},"payload":{}"#,
                js(&id), js(&name), js(&kind), js(&ts), serde_json::to_string(&payload).unwrap()
            );
            if let Some(rts) = rts {
                body.push_str(&format!(r#","rts":{}"#, js(&rts)));
            }
            body.push('}');
            let mut mutated = body.clone();
            if mutated.is_char_boundary(cut.min(mutated.len())) {
                mutated.insert_str(cut.min(mutated.len()), &junk);
            }
            for text in [&body, &mutated] {
                if let Some(plain) = Plain::parse(text.as_bytes()) {
                    let general: WireEnvelope<'_> = serde_json::from_str(text)
                        .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{text}: {e}")))?;
                    proptest::prop_assert_eq!(fields(&plain), fields(&general), "{}", text);
                }
            }
        }
    }

    /// JSON text of a value, through one object-safe call.
    mod erased {
        pub trait Json {
            fn json(&self) -> String;
        }
        impl<T: serde::Serialize> Json for T {
            fn json(&self) -> String {
                serde_json::to_string(self).unwrap()
            }
        }
    }

    #[test]
    fn restamp_keeps_publisher_fields_and_adds_rts() {
        let body = br#"{"v":1,"id":"abc","topic":"spoofed","type":"t","ts":12.5,"payload":{"a":{"b":[1,2]}},"extra":true}"#;
        let mut out = Vec::new();
        restamp(&topic("real.t"), body, 100.25, &mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"v":1,"id":"abc","topic":"real.t","type":"t","ts":12.5,
                   "payload":{"a":{"b":[1,2]}},"rts":100.25})
        );
        let env = Envelope::from_wire(topic("real.t"), &out, 0.0).unwrap();
        assert_eq!(env.rts, Some(100.25));

        let mut out = Vec::new();
        restamp(&topic("x"), b"", 7.0, &mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["payload"], json!({}));
        assert_eq!(v["ts"], 7.0);
        assert_eq!(v["rts"], 7.0);
        assert_eq!(v["id"].as_str().unwrap().len(), 32);
    }
}
