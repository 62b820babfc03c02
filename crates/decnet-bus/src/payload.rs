//! [`Payload`]: the data of an event, kept as the JSON text of one object until it is read.

use std::fmt;

use bytes::Bytes;
use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::Error;

/// The text of the empty object.
const EMPTY: &[u8] = b"{}";
/// Largest serialisation buffer a thread keeps between payloads.
const MAX_SCRATCH: usize = 64 * 1024;

thread_local! {
    /// Where [`Payload::from_serialize`] writes before copying.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The data of an event: the text of one JSON object.
///
/// The text travels unchanged from the publisher to the subscriber: the broker checks it
/// and forwards it as it is, and a subscriber pays for parsing only when it reads it,
/// straight into its own type with [`Payload::parse`] (or into values with
/// [`Payload::to_map`]). Cloning shares the text.
///
/// Invariant: the bytes are UTF-8 and hold exactly one JSON object, without surrounding
/// whitespace. Two payloads are equal when their texts are equal, so the same object
/// written with other spacing or key order is a different payload.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Payload(Bytes);

impl Payload {
    /// The empty object `{}`.
    pub fn empty() -> Self {
        Self(Bytes::from_static(EMPTY))
    }

    /// The payload holding `map`.
    pub fn from_map(map: &Map<String, Value>) -> Self {
        // Values hold only finite numbers and string keys: serialising them cannot fail.
        match serde_json::to_vec(map) {
            Ok(text) => Self(Bytes::from(text)),
            Err(_) => Self::empty(),
        }
    }

    /// Serialises `value`, which must serialise to a JSON object (a struct, a map, …).
    ///
    /// # Errors
    /// [`Error::PayloadNotObject`] when it serialises to something else or cannot be
    /// serialised (a map with non-string keys).
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        // Serialised into a reused buffer, then copied once at its exact size: a fresh
        // vector would grow (and copy) several times on the way to a typical payload. A
        // `Serialize` that itself makes a payload finds the buffer taken and uses its own.
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                let result = Self::serialize_into(&mut scratch, value);
                if scratch.capacity() > MAX_SCRATCH {
                    *scratch = Vec::new();
                }
                result
            }
            Err(_) => Self::serialize_into(&mut Vec::new(), value),
        })
    }

    fn serialize_into<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) -> Result<Self, Error> {
        buf.clear();
        // Our writer copies plain strings whole; what it leaves alone, serde_json writes
        // (the text is serde_json's either way).
        let written = match crate::ser::write(value, buf) {
            Ok(()) => Ok(()),
            Err(_) => {
                buf.clear();
                serde_json::to_writer(&mut *buf, value)
            }
        };
        match written {
            // serde_json writes `{` first only for an object (maps, structs, enum variants
            // with data), and writes no surrounding whitespace.
            Ok(()) if buf.first() == Some(&b'{') => Ok(Self(Bytes::copy_from_slice(buf))),
            _ => Err(Error::PayloadNotObject),
        }
    }

    /// Checks that `text` is one JSON object and keeps it (without surrounding whitespace).
    ///
    /// # Errors
    /// [`Error::PayloadNotObject`] when it is not JSON or not an object.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let raw: &RawValue = serde_json::from_str(text).map_err(|_| Error::PayloadNotObject)?;
        Self::from_raw(raw.get().as_bytes())
    }

    /// A copy of an already parsed value that must be an object.
    pub(crate) fn from_raw(raw: &[u8]) -> Result<Self, Error> {
        if raw.first() != Some(&b'{') {
            return Err(Error::PayloadNotObject);
        }
        Ok(Self(Bytes::copy_from_slice(raw)))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        // The invariant makes this check succeed; it costs one pass over the text, so the
        // hot paths use `as_bytes`.
        std::str::from_utf8(&self.0).unwrap_or("{}")
    }

    /// The JSON text as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// True for an object without members.
    pub fn is_empty(&self) -> bool {
        self.0
            .iter()
            .filter(|b| !b.is_ascii_whitespace())
            .eq(EMPTY.iter())
    }

    /// Parses the payload into `T` (which may borrow strings from it).
    ///
    /// # Errors
    /// [`Error::PayloadType`] when the object does not fit `T`.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, Error> {
        serde_json::from_slice(&self.0).map_err(Error::PayloadType)
    }

    /// Parses the payload into a map of values.
    ///
    /// # Errors
    /// [`Error::PayloadType`] when a number does not fit a JSON value (beyond `f64`).
    pub fn to_map(&self) -> Result<Map<String, Value>, Error> {
        self.parse()
    }
}

impl Default for Payload {
    fn default() -> Self {
        Self::empty()
    }
}

impl From<Map<String, Value>> for Payload {
    fn from(map: Map<String, Value>) -> Self {
        Self::from_map(&map)
    }
}

impl From<&Map<String, Value>> for Payload {
    fn from(map: &Map<String, Value>) -> Self {
        Self::from_map(map)
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({})", self.as_str())
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Payload {
    /// Writes the text verbatim (the envelope is a JSON format).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue =
            serde_json::from_str(self.as_str()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        if !raw.get().starts_with('{') {
            return Err(serde::de::Error::custom("payload is not an object"));
        }
        Ok(Self(Bytes::from(String::from(Box::<str>::from(raw)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_are_objects_only() {
        for bad in ["[1]", "\"{\"", "1", "null", "{", "{} {}", ""] {
            assert!(Payload::from_json(bad).is_err(), "{bad:?}");
        }
        assert!(Payload::from_serialize(&json!([1])).is_err());
        assert!(Payload::from_serialize("{").is_err());
        let mut keyed = std::collections::HashMap::new();
        keyed.insert(vec![1u8], 1);
        assert!(Payload::from_serialize(&keyed).is_err());
        let p = Payload::from_json("  {\"a\" : [1, 2]}\n").unwrap();
        assert_eq!(p.as_str(), "{\"a\" : [1, 2]}");
    }

    #[test]
    fn parse_reads_into_types_and_maps() {
        #[derive(serde::Deserialize, serde::Serialize, PartialEq, Debug)]
        struct State<'a> {
            name: &'a str,
            n: u32,
        }
        let p = Payload::from_serialize(&State { name: "web", n: 3 }).unwrap();
        assert_eq!(p.as_str(), r#"{"name":"web","n":3}"#);
        assert_eq!(p.parse::<State<'_>>().unwrap(), State { name: "web", n: 3 });
        assert_eq!(p.to_map().unwrap()["n"], 3);
        assert!(matches!(p.parse::<Vec<u32>>(), Err(Error::PayloadType(_))));
        // Valid JSON whose number does not fit a value: kept, and refused only on reading.
        let huge = Payload::from_json(r#"{"x":1e400}"#).unwrap();
        assert!(huge.to_map().is_err());
    }

    #[test]
    fn a_payload_made_while_serialising_another_is_fine() {
        struct Nested;
        impl Serialize for Nested {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let inner = Payload::from_serialize(&json!({"in": 1})).unwrap();
                let mut m = s.serialize_map(Some(1))?;
                serde::ser::SerializeMap::serialize_entry(&mut m, "inner", &inner)?;
                serde::ser::SerializeMap::end(m)
            }
        }
        let p = Payload::from_serialize(&Nested).unwrap();
        assert_eq!(p.as_str(), r#"{"inner":{"in":1}}"#);
        // The buffer is reused across calls and never leaks one payload into the next.
        let a = Payload::from_serialize(&json!({"long": "x".repeat(100)})).unwrap();
        let b = Payload::from_serialize(&json!({})).unwrap();
        assert_eq!((a.as_bytes().len(), b.as_str()), (111, "{}"));
    }

    #[test]
    fn empty_maps_and_serde() {
        assert!(Payload::empty().is_empty());
        assert!(Payload::from_json("{ \n }").unwrap().is_empty());
        assert!(!Payload::from_json(r#"{"a":{}}"#).unwrap().is_empty());
        let mut m = Map::new();
        m.insert("k".into(), json!("v"));
        let p = Payload::from(m.clone());
        assert_eq!(p.to_map().unwrap(), m);
        #[derive(serde::Serialize)]
        struct Outer<'a> {
            p: &'a Payload,
        }
        let text = serde_json::to_string(&Outer { p: &p }).unwrap();
        assert_eq!(text, r#"{"p":{"k":"v"}}"#);
        let back: Payload = serde_json::from_str(" {\"k\":\"v\"} ").unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<Payload>("[1]").is_err());
        assert_eq!(format!("{p:?}"), r#"Payload({"k":"v"})"#);
    }
}
