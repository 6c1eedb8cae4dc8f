//! RFC 8785 JSON Canonicalization Scheme: the one byte string every digest is taken over.

use crate::hash::{Digest, HashAlg};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[error("value cannot be canonicalised as RFC 8785 JSON: {0}")]
pub struct CanonicalError(#[from] serde_json::Error);

/// The RFC 8785 (JCS) bytes of `value`.
pub fn to_canonical_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    Ok(serde_json_canonicalizer::to_vec(value)?)
}

/// Appends the RFC 8785 text of `value` to `out`: the bytes [`to_canonical_bytes`] gives for
/// it, without its buffer per key and value (the serializer re-parses each key to sort it).
pub fn write_canonical_value(out: &mut Vec<u8>, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Without `arbitrary_precision` every number has an f64 form, and a `Value` holds no
        // NaN or infinity.
        Value::Number(n) => write_canonical_number(out, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => write_canonical_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut object = CanonicalObject::new(out);
            // A map iterates in UTF-8 order, which differs from UTF-16's only past U+E000.
            if map
                .keys()
                .zip(map.keys().skip(1))
                .all(|(a, b)| utf16_order(a, b).is_lt())
            {
                for (k, v) in map {
                    object.value(k, v);
                }
            } else {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| utf16_order(a.0, b.0));
                for (k, v) in entries {
                    object.value(k, v);
                }
            }
            object.finish();
        }
    }
}

/// RFC 8785 §3.2.3: object keys sort by their UTF-16 code units.
fn utf16_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// A number as ECMAScript writes a double (RFC 8785 §3.2.2.3). Integers are doubles too.
pub fn write_canonical_number(out: &mut Vec<u8>, n: f64) {
    let mut buffer = ryu_js::Buffer::new();
    out.extend_from_slice(buffer.format_finite(n).as_bytes());
}

/// A string with RFC 8785's escapes (§3.2.2.2): `"`, `\\` and the controls below U+0020,
/// the five with short forms as `\b \t \n \f \r`, the others as `\u00xx`; nothing else.
pub fn write_canonical_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0a => b'n',
            0x0c => b'f',
            0x0d => b'r',
            0x00..=0x1f => 0,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short == 0 {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// An object written member by member, keys given in RFC 8785 order: a type with known field
/// names writes its canonical form directly, with no tree built first.
pub struct CanonicalObject<'a> {
    out: &'a mut Vec<u8>,
    members: usize,
    #[cfg(debug_assertions)]
    last_key: String,
}

impl<'a> CanonicalObject<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        CanonicalObject {
            out,
            members: 0,
            #[cfg(debug_assertions)]
            last_key: String::new(),
        }
    }

    fn key(&mut self, key: &str) {
        #[cfg(debug_assertions)]
        {
            assert!(
                self.members == 0 || utf16_order(&self.last_key, key).is_lt(),
                "canonical keys out of order: {key:?} after {:?}",
                self.last_key
            );
            key.clone_into(&mut self.last_key);
        }
        if self.members > 0 {
            self.out.push(b',');
        }
        self.members += 1;
        write_canonical_str(self.out, key);
        self.out.push(b':');
    }

    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        write_canonical_str(self.out, value);
        self
    }

    pub fn number(&mut self, key: &str, value: f64) -> &mut Self {
        self.key(key);
        write_canonical_number(self.out, value);
        self
    }

    pub fn value(&mut self, key: &str, value: &serde_json::Value) -> &mut Self {
        self.key(key);
        write_canonical_value(self.out, value);
        self
    }

    pub fn finish(&mut self) {
        self.out.push(b'}');
    }
}

/// `H(JCS(value))`.
pub fn canonical_digest<T: Serialize>(alg: HashAlg, value: &T) -> Result<Digest, CanonicalError> {
    Ok(alg.hash(&to_canonical_bytes(value)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc8785_ordering_and_numbers() {
        // Keys sorted by UTF-16 code units, no whitespace, ES6 number form (RFC 8785 §3.2).
        let v = json!({"b": [1e21, 0.000001, -0.0, 1.5], "a": "\u{20ac}", "\r": 1, "1": true});
        let s = String::from_utf8(to_canonical_bytes(&v).unwrap()).unwrap();
        assert_eq!(
            s,
            "{\"\\r\":1,\"1\":true,\"a\":\"\u{20ac}\",\"b\":[1e+21,0.000001,0,1.5]}"
        );
    }

    #[test]
    fn rfc8785_appendix_b_sorting() {
        // RFC 8785 §3.2.3 sorting example.
        let v: serde_json::Value = serde_json::from_str(
            r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#,
        )
        .unwrap();
        let s = String::from_utf8(to_canonical_bytes(&v).unwrap()).unwrap();
        let order: Vec<&str> = [
            "Carriage Return",
            "One",
            "Control",
            "Latin Small Letter O With Diaeresis",
            "Euro Sign",
            "Emoji: Grinning Face",
            "Hebrew Letter Dalet With Dagesh",
        ]
        .to_vec();
        let mut last = 0;
        for name in order {
            let at = s.find(name).unwrap();
            assert!(at > last, "{name} out of order in {s}");
            last = at;
        }
    }

    /// A small deterministic generator, so a failure names its seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// Text mixing the characters RFC 8785 treats apart: controls, quotes, backslash,
        /// solidus, DEL, non-ASCII, U+E000 and above, and characters outside the BMP.
        fn text(&mut self) -> String {
            const PICKS: &[char] = &[
                'a',
                'Z',
                '0',
                ' ',
                '"',
                '\\',
                '/',
                '\u{0}',
                '\u{8}',
                '\t',
                '\n',
                '\u{b}',
                '\u{c}',
                '\r',
                '\u{1f}',
                '\u{7f}',
                '\u{80}',
                'é',
                '€',
                '\u{e000}',
                '\u{fb33}',
                '\u{ffff}',
                '😀',
                '\u{10000}',
                '\u{10ffff}',
            ];
            (0..self.below(6))
                .map(|_| PICKS[self.below(PICKS.len() as u64) as usize])
                .collect()
        }

        fn number(&mut self) -> serde_json::Value {
            match self.below(6) {
                0 => json!(self.next() as i64),
                1 => json!(self.next()),
                2 => json!(self.below(2000) as i64 - 1000),
                // Any finite double, NaN and infinities excepted as in a JSON value.
                3 => serde_json::Number::from_f64(f64::from_bits(self.next()))
                    .map_or(json!(0), serde_json::Value::Number),
                4 => [
                    json!(1e21),
                    json!(1e-7),
                    json!(-0.0),
                    json!(0.1 + 0.2),
                    json!(9_007_199_254_740_993u64),
                    json!(5e-324),
                ][self.below(6) as usize]
                    .clone(),
                _ => json!((self.below(1_000_000) as f64) / 1000.0),
            }
        }

        fn value(&mut self, depth: u32) -> serde_json::Value {
            match self.below(if depth == 0 { 4 } else { 6 }) {
                0 => serde_json::Value::Null,
                1 => json!(self.below(2) == 1),
                2 => self.number(),
                3 => json!(self.text()),
                4 => (0..self.below(5)).map(|_| self.value(depth - 1)).collect(),
                _ => serde_json::Value::Object(
                    (0..self.below(6))
                        .map(|_| (self.text(), self.value(depth - 1)))
                        .collect(),
                ),
            }
        }
    }

    #[test]
    fn the_direct_writer_gives_the_serializers_bytes() {
        for seed in 1..=20_000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let value = rng.value(4);
            let mut direct = Vec::new();
            write_canonical_value(&mut direct, &value);
            let serialized = to_canonical_bytes(&value).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&direct),
                String::from_utf8_lossy(&serialized),
                "seed {seed}: {value}"
            );
        }
    }

    #[test]
    fn an_object_written_by_fields_sorts_as_a_map_would() {
        let mut out = Vec::new();
        CanonicalObject::new(&mut out)
            .str("\r", "x")
            .number("1", 1e21)
            .value("a", &json!({"\u{ffff}": 1, "😀": 2}))
            .finish();
        let expected =
            to_canonical_bytes(&json!({"a": {"\u{ffff}": 1, "😀": 2}, "1": 1e21, "\r": "x"}));
        assert_eq!(out, expected.unwrap());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "out of order")]
    fn an_object_refuses_keys_out_of_order() {
        let mut out = Vec::new();
        CanonicalObject::new(&mut out).str("b", "").str("a", "");
    }
}
