//! A JSON value checker with serde_json's acceptance (UTF-8 included), eight bytes per step inside strings.
//!
//! The broker and every client check each event's payload: a trust boundary each. serde_json
//! does that (into a `RawValue`) byte by byte after a separate UTF-8 pass over the body; this
//! checker does both in one pass and skips string contents a word at a time. It accepts
//! exactly what `std::str::from_utf8` plus serde_json's `ignore_value` accept (the property
//! tests below compare them on generated and mutated inputs): RFC 8259 grammar, whitespace
//! ` \t\n\r`, no control characters in strings, escapes `\" \\ \/ \b \f \n \r \t \uXXXX`
//! (a lone surrogate escape is accepted, as serde_json accepts it when it only checks),
//! numbers of any size, any depth (the nesting stack is bounded by the input length, which
//! the frame decoder bounds).

/// Bytes with every bit pattern `0x01` in a word.
const ONES: u64 = u64::MAX / 255;
/// The high bit of every byte.
const HIGH_BITS: u64 = ONES << 7;

/// Flags (in its high bit) every byte of `x` equal to `b`; a borrow may also flag bytes
/// above a true hit, never below the lowest one.
fn equal(x: u64, b: u8) -> u64 {
    let y = x ^ (ONES * u64::from(b));
    y.wrapping_sub(ONES) & !y
}

/// Index of the first byte that ends a plain run of string text: `"`, `\`, a control
/// character, and with `NON_ASCII` also any byte from 0x80 up. Eight bytes per step.
pub(crate) fn special_byte<const NON_ASCII: bool>(bytes: &[u8]) -> Option<usize> {
    /// The flags of the special bytes of one word (little-endian: lowest byte first).
    fn hits<const NON_ASCII: bool>(chunk: &[u8]) -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let mut hits = control | equal(x, b'"') | equal(x, b'\\');
        if NON_ASCII {
            hits |= x;
        }
        hits & HIGH_BITS
    }
    // Two words per step: one branch per 16 plain bytes.
    let mut pairs = bytes.chunks_exact(16);
    let mut at = 0;
    for pair in &mut pairs {
        let (a, b) = pair.split_at(8);
        let (ha, hb) = (hits::<NON_ASCII>(a), hits::<NON_ASCII>(b));
        if ha | hb != 0 {
            let (word, hit) = if ha != 0 { (0, ha) } else { (8, hb) };
            return Some(at + word + (hit.trailing_zeros() / 8) as usize);
        }
        at += 16;
    }
    let rest = pairs.remainder();
    let mut words = rest.chunks_exact(8);
    for word in &mut words {
        let h = hits::<NON_ASCII>(word);
        if h != 0 {
            return Some(at + (h.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = words.remainder();
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20 || (NON_ASCII && b >= 0x80))
        .map(|i| at + i)
}

/// Open containers, innermost last: true for an object. The first 128 levels live in a
/// word; deeper ones spill to a vector (bounded by the input, one byte per `{` or `[`).
struct Nesting {
    inline: u128,
    depth: usize,
    spill: Vec<bool>,
}

impl Nesting {
    fn push(&mut self, object: bool) {
        if self.depth < 128 {
            let bit = 1u128 << self.depth;
            if object {
                self.inline |= bit;
            } else {
                self.inline &= !bit;
            }
        } else {
            self.spill.push(object);
        }
        self.depth += 1;
    }

    /// Whether the innermost open container is an object; `None` at top level.
    fn top(&self) -> Option<bool> {
        match self.depth {
            0 => None,
            d if d <= 128 => Some(self.inline & (1u128 << (d - 1)) != 0),
            _ => self.spill.last().copied(),
        }
    }

    fn pop(&mut self) {
        if self.depth > 128 {
            self.spill.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\t' | b'\r')) {
        i += 1;
    }
    i
}

/// The rest of a string whose opening quote is before `i`: the index after its closing quote.
fn string(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += special_byte::<true>(b.get(i..)?)?;
        match b[i] {
            b'"' => return Some(i + 1),
            b'\\' => {
                i += 1;
                match b.get(i)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 1,
                    b'u' => {
                        let hex = b.get(i + 1..i + 5)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        i += 5;
                    }
                    _ => return None,
                }
            }
            lead @ 0x80.. => {
                // One UTF-8 sequence, checked by the standard library (overlong forms,
                // surrogates and values above U+10FFFF are refused there).
                let width = match lead {
                    0xC2..=0xDF => 2,
                    0xE0..=0xEF => 3,
                    0xF0..=0xF4 => 4,
                    _ => return None,
                };
                std::str::from_utf8(b.get(i..i + width)?).ok()?;
                i += width;
            }
            // A control character.
            _ => return None,
        }
    }
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// A number starting at `i` (its `-` or first digit): the index after it.
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(b, i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(b, i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(b, i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

/// An object member's name and colon starting at `i` (whitespace first): the index after `:`.
fn member_name(b: &[u8], i: usize) -> Option<usize> {
    let i = skip_ws(b, i);
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = skip_ws(b, string(b, i + 1)?);
    (b.get(i) == Some(&b':')).then_some(i + 1)
}

/// Length of the one JSON value at the start of `b` (after optional whitespace), or `None`
/// when it is not valid JSON or not valid UTF-8. Bytes after the value are not looked at.
pub(crate) fn value_len(b: &[u8]) -> Option<usize> {
    let mut open = Nesting {
        inline: 0,
        depth: 0,
        spill: Vec::new(),
    };
    let mut i = 0;
    loop {
        // A value starts at `i` (after whitespace).
        i = skip_ws(b, i);
        match *b.get(i)? {
            b'{' => {
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&b'}') {
                    i += 1;
                } else {
                    open.push(true);
                    i = member_name(b, i)?;
                    continue;
                }
            }
            b'[' => {
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&b']') {
                    i += 1;
                } else {
                    open.push(false);
                    continue;
                }
            }
            b'"' => i = string(b, i + 1)?,
            b't' => i = literal(b, i, b"true")?,
            b'f' => i = literal(b, i, b"false")?,
            b'n' => i = literal(b, i, b"null")?,
            b'-' | b'0'..=b'9' => i = number(b, i)?,
            _ => return None,
        }
        // A value ended before `i`: close containers until one takes another element.
        loop {
            let Some(object) = open.top() else {
                return Some(i);
            };
            i = skip_ws(b, i);
            match *b.get(i)? {
                b',' => {
                    i += 1;
                    if object {
                        i = member_name(b, i)?;
                    }
                    break;
                }
                b'}' if object => {
                    i += 1;
                    open.pop();
                }
                b']' if !object => {
                    i += 1;
                    open.pop();
                }
                _ => return None,
            }
        }
    }
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    b.get(i..)?.starts_with(word).then_some(i + word.len())
}

/// Length of the JSON object at the very start of `b` (no whitespace before it).
pub(crate) fn object_len(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&b'{') {
        return None;
    }
    value_len(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::IgnoredAny;

    /// What serde_json accepts: the length of the first value when the bytes up to its end
    /// are UTF-8 and serde_json's checking parser (`ignore_value`) takes them.
    fn reference(b: &[u8]) -> Option<usize> {
        let mut values = serde_json::Deserializer::from_slice(b).into_iter::<IgnoredAny>();
        match values.next() {
            Some(Ok(_)) => {
                let end = values.byte_offset();
                std::str::from_utf8(&b[..end]).ok()?;
                Some(end)
            }
            _ => None,
        }
    }

    /// Compares on `{"k":` + bytes + `}` and on the bytes alone when they open a container.
    fn agree(inner: &[u8]) -> Result<(), TestCaseError> {
        let mut wrapped = br#"{"k":"#.to_vec();
        wrapped.extend_from_slice(inner);
        wrapped.push(b'}');
        for b in [&wrapped[..], inner] {
            if matches!(b.first(), Some(b'{' | b'[')) {
                prop_assert_eq!(
                    value_len(b),
                    reference(b),
                    "{:?}",
                    String::from_utf8_lossy(b)
                );
            }
        }
        Ok(())
    }

    /// Pieces that exercise every branch of the grammar, glued at random.
    const PIECES: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"\"",
        b"\\",
        b" ",
        b"\n",
        b"\t",
        b"\r",
        b"\x0c",
        b"0",
        b"1",
        b"9",
        b"-",
        b"+",
        b".",
        b"e",
        b"E",
        b"true",
        b"false",
        b"null",
        b"tru",
        b"nul",
        b"u",
        b"\\u",
        b"00",
        b"aF",
        b"g",
        b"/",
        b"b",
        b"n",
        b"x",
        b"\x00",
        b"\x1f",
        b"\x7f",
        b"\xc3\xa9",
        b"\xc3",
        b"\xa9",
        b"\xe2\x82\xac",
        b"\xed\xa0\x80",
        b"\xf0\x9f\x98\x80",
        b"\xf4\x90\x80\x80",
        b"\xc0\xaf",
        b"\xe0\x80\xaf",
        b"\xff",
        b"\"k\":",
        b"\"abcdefghijklmnop\"",
        b"\\ud800",
        b"\\uDC00",
    ];

    fn glued() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(0..PIECES.len(), 0..24).prop_map(|ix| {
            ix.into_iter()
                .flat_map(|i| PIECES[i].iter().copied())
                .collect()
        })
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            "\\PC{0,20}".prop_map(serde_json::Value::from),
            "[\u{0}-\u{1f}\"\\\\a-z\u{80}-\u{10ffff}]{0,20}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::btree_map("\\PC{0,6}", inner, 0..6)
                    .prop_map(|m| { serde_json::Value::Object(m.into_iter().collect()) }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn agrees_with_serde_json_on_glued_pieces(b in glued()) {
            agree(&b)?;
        }

        #[test]
        fn agrees_with_serde_json_on_mutated_documents(
            v in json_value(),
            pretty in any::<bool>(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0..3u8, any::<u8>()), 0..3),
        ) {
            let mut b = if pretty {
                serde_json::to_vec_pretty(&v).unwrap()
            } else {
                serde_json::to_vec(&v).unwrap()
            };
            agree(&b)?;
            for (at, kind, byte) in edits {
                let i = at.index(b.len() + 1);
                match kind {
                    0 => b.insert(i, byte),
                    1 if i < b.len() => { b.remove(i); }
                    _ if i < b.len() => b[i] = byte,
                    _ => b.push(byte),
                }
                agree(&b)?;
            }
        }

        #[test]
        fn special_byte_finds_the_first_byte_that_ends_a_run(b in prop::collection::vec(any::<u8>(), 0..40)) {
            let want = b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            prop_assert_eq!(special_byte::<false>(&b), want);
            let want = b.iter().position(|&c| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c));
            prop_assert_eq!(special_byte::<true>(&b), want);
        }
    }

    #[test]
    fn short_inputs_over_a_small_alphabet_agree_exhaustively() {
        let alphabet: &[&[u8]] = &[
            b"{", b"}", b"[", b"]", b",", b":", b"\"", b"\\", b" ", b"0", b"-", b"e", b".", b"u",
            b"t", b"\xc3", b"\xa9", b"\x01",
        ];
        let n = alphabet.len();
        for len in 0..=4u32 {
            for mut code in 0..n.pow(len) {
                let mut b = Vec::new();
                for _ in 0..len {
                    b.extend_from_slice(alphabet[code % n]);
                    code /= n;
                }
                agree(&b).unwrap();
            }
        }
    }

    #[test]
    fn every_byte_pair_agrees_in_every_grammar_position() {
        // A hole (`@`) in each position the grammar treats differently, filled with every
        // pair of bytes: escapes, hex digits, UTF-8 lead and continuation bytes, controls,
        // number tails, literals, separators and member names.
        let templates: &[&[u8]] = &[
            br#"{"k":"\@"}"#,
            br#"{"k":"\u@00"}"#,
            br#"{"k":"@"}"#,
            br#"{"k":"ab@cdefghijklm"}"#,
            br#"{"k":@}"#,
            br#"{"k":1@}"#,
            br#"{"k":-@}"#,
            br#"{"k":[@]}"#,
            br#"{"k":t@}"#,
            br#"{@:1}"#,
            br#"{"k":1@"j":2}"#,
        ];
        for template in templates {
            let hole = template.iter().position(|&c| c == b'@').unwrap();
            for pair in 0..=u16::MAX {
                let mut b = template[..hole].to_vec();
                b.extend_from_slice(&pair.to_be_bytes());
                b.extend_from_slice(&template[hole + 1..]);
                assert_eq!(
                    value_len(&b),
                    reference(&b),
                    "{:?}",
                    String::from_utf8_lossy(&b)
                );
            }
        }
    }

    #[test]
    fn deep_nesting_is_accepted_and_bounded_by_the_input() {
        for depth in [1usize, 127, 128, 129, 300, 100_000] {
            let mut b = "[".repeat(depth).into_bytes();
            b.extend_from_slice(&b"]".repeat(depth));
            assert_eq!(value_len(&b), Some(2 * depth), "{depth}");
            assert_eq!(value_len(&b), reference(&b), "{depth}");
            b.pop();
            assert_eq!(value_len(&b), None, "{depth}");
            let mixed = format!("{}1{}", r#"{"a":["#.repeat(depth), "]}".repeat(depth));
            assert_eq!(value_len(mixed.as_bytes()), Some(mixed.len()), "{depth}");
        }
    }
}
