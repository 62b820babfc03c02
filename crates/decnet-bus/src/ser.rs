//! A compact JSON writer for payloads that writes byte for byte what serde_json writes, copying plain strings whole.
//!
//! serde_json looks at every byte of every string through a table before copying it; most
//! payload strings (ids, names, addresses, log lines) need no escape at all. This writer
//! finds the first byte that needs one eight bytes at a time and copies the rest in one go;
//! a string that does need escapes, every number, and everything it does not know (map keys
//! that are not strings, serde_json's private tokens such as `RawValue`) goes through
//! serde_json itself, so the text is always serde_json's. [`write`] refuses what it does not
//! handle instead of guessing; the caller then serialises the whole value with serde_json.

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

use crate::json;

/// Why [`write`] left a value to serde_json: a case it does not handle, or the value's own
/// serialisation error (which serde_json will report again).
#[derive(Debug)]
pub(crate) struct Unsupported(String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

type Result<T = ()> = std::result::Result<T, Unsupported>;

/// Appends the compact JSON text of `value` to `out`, exactly as `serde_json::to_writer`
/// would. On error `out` holds a partial text: the caller truncates it and asks serde_json.
pub(crate) fn write<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result {
    value.serialize(&mut Writer { out })
}

/// A JSON string: copied between quotes when nothing in it needs an escape, written by
/// serde_json otherwise.
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    if json::special_byte::<false>(text.as_bytes()).is_none() {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        write_scalar(out, text);
    }
}

/// A number or escaped string, through serde_json (writing into a vector cannot fail;
/// `null` keeps the text valid anyway, as serde_json writes a non-finite float).
pub(crate) fn write_scalar<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let at = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(at);
        out.extend_from_slice(b"null");
    }
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

/// An open array or object: whether an element was written yet, and what closes it.
struct Compound<'w, 'a> {
    w: &'w mut Writer<'a>,
    first: bool,
    /// `]`, `}`, or `]}` / `}}` for the variant forms `{"name":[…]}` / `{"name":{…}}`.
    close: &'static [u8],
}

impl Compound<'_, '_> {
    fn comma(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.w.out.push(b',');
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.comma();
        value.serialize(&mut *self.w)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result {
        self.comma();
        write_str(self.w.out, key);
        self.w.out.push(b':');
        value.serialize(&mut *self.w)
    }

    fn end(self) -> Result {
        self.w.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl<'w, 'a> Writer<'a> {
    fn open(
        &'w mut self,
        prefix: &[u8],
        variant: Option<&str>,
        close: &'static [u8],
    ) -> Compound<'w, 'a> {
        if let Some(name) = variant {
            self.out.push(b'{');
            write_str(self.out, name);
            self.out.push(b':');
        }
        self.out.extend_from_slice(prefix);
        Compound {
            w: self,
            first: true,
            close,
        }
    }
}

macro_rules! scalars {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(fn $method(self, v: $ty) -> Result {
            write_scalar(self.out, &v);
            Ok(())
        })*
    };
}

impl<'w, 'a> ser::Serializer for &'w mut Writer<'a> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'w, 'a>;
    type SerializeTuple = Compound<'w, 'a>;
    type SerializeTupleStruct = Compound<'w, 'a>;
    type SerializeTupleVariant = Compound<'w, 'a>;
    type SerializeMap = Compound<'w, 'a>;
    type SerializeStruct = Compound<'w, 'a>;
    type SerializeStructVariant = Compound<'w, 'a>;

    scalars!(
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
    );

    fn serialize_bool(self, v: bool) -> Result {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result {
        write_str(self.out, v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result {
        // serde_json writes bytes as an array of numbers.
        write_scalar(self.out, v);
        Ok(())
    }

    fn serialize_none(self) -> Result {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result {
        write_str(self.out, variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'w, 'a>> {
        Ok(self.open(b"[", None, b"]"))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Compound<'w, 'a>> {
        Ok(self.open(b"[", None, b"]"))
    }

    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'w, 'a>> {
        Ok(self.open(b"[", None, b"]"))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>> {
        Ok(self.open(b"[", Some(variant), b"]}"))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'w, 'a>> {
        Ok(self.open(b"{", None, b"}"))
    }

    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Compound<'w, 'a>> {
        // serde_json's own types (RawValue, arbitrary-precision numbers) talk to it through
        // private struct names: leave them to serde_json.
        if name.starts_with("$serde_json::") {
            return Err(Unsupported(format!("serde_json private type {name}")));
        }
        Ok(self.open(b"{", None, b"}"))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>> {
        Ok(self.open(b"{", Some(variant), b"}}"))
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.element(value)
    }
    fn end(self) -> Result {
        Compound::end(self)
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.element(value)
    }
    fn end(self) -> Result {
        Compound::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.element(value)
    }
    fn end(self) -> Result {
        Compound::end(self)
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.element(value)
    }
    fn end(self) -> Result {
        Compound::end(self)
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result {
        self.comma();
        key.serialize(KeyWriter { out: self.w.out })?;
        self.w.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result {
        Compound::end(self)
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result {
        self.field(key, value)
    }
    fn end(self) -> Result {
        Compound::end(self)
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result {
        self.field(key, value)
    }
    fn end(self) -> Result {
        Compound::end(self)
    }
}

/// A map key: strings (and newtypes around them) only; serde_json's quoting of number and
/// bool keys is left to serde_json.
struct KeyWriter<'a> {
    out: &'a mut Vec<u8>,
}

fn not_a_string_key<T>() -> Result<T> {
    Err(Unsupported("map key is not a string".into()))
}

macro_rules! refused_keys {
    ($($method:ident($($ty:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $ty),*) -> Result {
            not_a_string_key()
        })*
    };
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Impossible<(), Unsupported>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Impossible<(), Unsupported>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_str(self, v: &str) -> Result {
        write_str(self.out, v);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result {
        value.serialize(self)
    }

    refused_keys!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result {
        not_a_string_key()
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result {
        not_a_string_key()
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq> {
        not_a_string_key()
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple> {
        not_a_string_key()
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        not_a_string_key()
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        not_a_string_key()
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap> {
        not_a_string_key()
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct> {
        not_a_string_key()
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        not_a_string_key()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::Serialize;
    use serde_json::Value;
    use serde_json::value::RawValue;

    use super::*;

    /// Ours when it writes, and always equal to serde_json's text when it does.
    fn ours<T: Serialize + ?Sized>(value: &T) -> Option<Vec<u8>> {
        let mut out = b"prefix".to_vec();
        write(value, &mut out).ok()?;
        assert_eq!(&out[..6], b"prefix");
        Some(out[6..].to_vec())
    }

    fn same<T: Serialize + ?Sized>(value: &T) -> bool {
        ours(value).is_some_and(|o| o == serde_json::to_vec(value).unwrap())
    }

    #[derive(Serialize)]
    enum Kind {
        Unit,
        Newtype(String),
        Tuple(u8, Option<f32>),
        Struct { a: char, b: Vec<u16> },
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Wrapper(String);

    #[derive(Serialize)]
    struct Pair(i64, bool);

    #[derive(Serialize)]
    struct Flat {
        x: u8,
    }

    #[derive(Serialize)]
    struct Everything<'a> {
        s: &'a str,
        escaped: String,
        #[serde(with = "serde_bytes_like")]
        bytes: Vec<u8>,
        kinds: Vec<Kind>,
        unit: (),
        unit_struct: Unit,
        wrapper: Wrapper,
        pair: Pair,
        tuple: (u128, i128, f64, f64),
        map: BTreeMap<String, Option<bool>>,
        wrapped_keys: BTreeMap<WrapperKey, u8>,
        #[serde(flatten)]
        flat: Flat,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        empty: Vec<u8>,
        empty_map: BTreeMap<String, u8>,
    }

    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    struct WrapperKey(String);

    mod serde_bytes_like {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    #[test]
    fn writes_every_serde_shape_as_serde_json_does() {
        let mut map = BTreeMap::new();
        map.insert("k\"ey\u{1}".to_owned(), Some(true));
        map.insert("plain".to_owned(), None);
        let mut wrapped_keys = BTreeMap::new();
        wrapped_keys.insert(WrapperKey("é\n".into()), 3);
        let value = Everything {
            s: "plain text, long enough for several words",
            escaped: "tab\there \"q\" back\\slash \u{7f} \u{8} \u{c} é 😀 \u{1f}".into(),
            bytes: vec![0, 1, 255],
            kinds: vec![
                Kind::Unit,
                Kind::Newtype("n".into()),
                Kind::Tuple(7, None),
                Kind::Tuple(8, Some(1.5)),
                Kind::Struct {
                    a: '"',
                    b: vec![1, 2],
                },
            ],
            unit: (),
            unit_struct: Unit,
            wrapper: Wrapper("w".into()),
            pair: Pair(-3, false),
            tuple: (u128::MAX, i128::MIN, f64::NAN, -0.0),
            map,
            wrapped_keys,
            flat: Flat { x: 9 },
            skipped: None,
            empty: vec![],
            empty_map: BTreeMap::new(),
        };
        assert!(same(&value));
    }

    #[test]
    fn leaves_what_it_does_not_handle_to_serde_json() {
        // Number keys (serde_json quotes them) and serde_json's private RawValue token.
        let mut numbered = BTreeMap::new();
        numbered.insert(5u32, "x");
        assert_eq!(ours(&numbered), None);
        let raw: &RawValue = serde_json::from_str(r#"{"a": [1, 2]}"#).unwrap();
        assert_eq!(ours(&raw), None);
        // A value's own error is an error here too.
        struct Failing;
        impl Serialize for Failing {
            fn serialize<S: serde::Serializer>(
                &self,
                _: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        assert_eq!(ours(&Failing), None);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,30}".prop_map(Value::from),
            "[\u{0}-\u{1f}\"\\\\a-z\u{7f}-\u{10ffff}]{0,30}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::btree_map("(\\PC|[\"\\\\\u{0}-\u{1f}]){0,8}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn json_values_are_written_as_serde_json_writes_them(v in json_value()) {
            prop_assert!(same(&v));
        }

        #[test]
        fn strings_are_written_as_serde_json_writes_them(s in "(\\PC|[\"\\\\\u{0}-\u{1f}\u{7f}]){0,64}") {
            prop_assert!(same(&s));
            let mut out = Vec::new();
            write_str(&mut out, &s);
            prop_assert_eq!(out, serde_json::to_vec(&s).unwrap());
        }
    }
}
