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
}
