//! The v1 event envelope `{v, id, topic, type, ts, payload}` plus the broker's receive time `rts`.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::Error;
use crate::payload::Payload;
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
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .simple()
        .to_string()
}

/// Appends the JSON text of a string or number. Writing these into a vector cannot fail
/// (serde_json writes a non-finite float as `null`); `null` keeps the text valid anyway.
fn write_value<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let at = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(at);
        out.extend_from_slice(b"null");
    }
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
        write_value(out, self.id.as_str());
        out.extend_from_slice(b",\"topic\":");
        write_value(out, self.topic.as_str());
        out.extend_from_slice(b",\"type\":");
        write_value(out, self.event_type.as_str());
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
            id: match wire.id {
                // An empty id is as good as a missing one.
                Some(id) if !id.is_empty() => id.into_owned(),
                _ => new_event_id(),
            },
            topic,
            event_type: wire.event_type.map(Cow::into_owned).unwrap_or_default(),
            ts: wire.ts.unwrap_or(now),
            payload,
            rts: wire.rts,
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

/// The fields of a received body, borrowed from it; `topic` and unknown fields are
/// ignored, the payload is kept as raw text (validated JSON, not yet values).
#[derive(Default, Deserialize)]
struct WireEnvelope<'a> {
    #[serde(default)]
    v: Option<u32>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "type")]
    event_type: Option<Cow<'a, str>>,
    #[serde(default)]
    ts: Option<f64>,
    #[serde(default, borrow)]
    payload: Option<&'a RawValue>,
    #[serde(default)]
    rts: Option<f64>,
}

impl<'a> WireEnvelope<'a> {
    /// Parses a body completely (every byte is checked); a blank body has no fields.
    fn parse(body: &'a [u8]) -> Result<Self, Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
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
            && !p.get().starts_with('{')
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
}

/// The envelope the broker forwards: the publisher's fields, the header topic, the broker's `rts`.
#[derive(Serialize)]
struct Forwarded<'a> {
    v: u32,
    id: &'a str,
    topic: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    ts: f64,
    #[serde(serialize_with = "payload_or_empty")]
    payload: Option<&'a RawValue>,
    rts: f64,
}

fn payload_or_empty<S: serde::Serializer>(
    payload: &Option<&RawValue>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match payload {
        Some(raw) => raw.serialize(s),
        None => s.collect_map(std::iter::empty::<(&str, &str)>()),
    }
}

/// Rebuilds a published body for delivery without parsing its payload into values.
///
/// Keeps the publisher's `id`, `ts`, `type` and payload (FL-8), takes the topic from the
/// header, sets `rts` to `now`, and fills defaults like [`Envelope::from_wire`]. The result
/// is appended to `out`.
///
/// # Errors
/// As [`Envelope::from_wire`].
pub fn restamp(topic: &Topic, body: &[u8], now: f64, out: &mut Vec<u8>) -> Result<(), Error> {
    let wire = WireEnvelope::parse(body)?;
    wire.check()?;
    let fresh;
    let id = match &wire.id {
        Some(id) if !id.is_empty() => id.as_ref(),
        _ => {
            fresh = new_event_id();
            &fresh
        }
    };
    let forwarded = Forwarded {
        v: ENVELOPE_VERSION,
        id,
        topic: topic.as_str(),
        event_type: wire.event_type.as_deref().unwrap_or(""),
        ts: wire.ts.unwrap_or(now),
        payload: wire.payload,
        rts: now,
    };
    serde_json::to_writer(out, &forwarded).map_err(envelope_error)
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
