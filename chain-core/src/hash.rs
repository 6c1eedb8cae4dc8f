//! Digests and the hash algorithms of a chain profile.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;
use std::fmt;
use std::str::FromStr;

/// The hash function of a chain profile: every event digest, Merkle node and block hash of a
/// chain uses the one its genesis names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum HashAlg {
    /// SHA3-256 (FIPS 202), the default profile.
    #[default]
    #[serde(rename = "sha3-256")]
    Sha3_256,
    /// SHA-256 (FIPS 180-4): Merkle trees are then exactly RFC 9162 trees.
    #[serde(rename = "sha-256")]
    Sha256,
    /// SM3 (GB/T 32905-2016), the national-crypto profile.
    #[serde(rename = "sm3")]
    Sm3,
}

impl HashAlg {
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha3_256 => "sha3-256",
            HashAlg::Sha256 => "sha-256",
            HashAlg::Sm3 => "sm3",
        }
    }

    pub fn hash(self, data: &[u8]) -> Digest {
        self.hash_parts(&[data])
    }

    /// Hash of the concatenation of `parts`, without building the concatenation.
    pub fn hash_parts(self, parts: &[&[u8]]) -> Digest {
        match self {
            HashAlg::Sha3_256 => {
                let mut h = sha3::Sha3_256::new();
                for p in parts {
                    h.update(p);
                }
                Digest(h.finalize().into())
            }
            HashAlg::Sha256 => {
                let mut h = sha2::Sha256::new();
                for p in parts {
                    h.update(p);
                }
                Digest(h.finalize().into())
            }
            HashAlg::Sm3 => {
                use sm3::Digest as _;
                let mut h = sm3::Sm3::new();
                for p in parts {
                    h.update(p);
                }
                let mut out = [0u8; 32];
                out.copy_from_slice(&h.finalize());
                Digest(out)
            }
        }
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A 32-byte digest. Its text form is exactly 64 lowercase hex characters: the strict form keeps
/// every receipt byte meaningful (an upper-case copy is a different, rejected document).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest(pub [u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestParseError {
    #[error("expected 64 hex characters, got {0}")]
    Length(usize),
    #[error("expected lowercase hex characters (0-9, a-f)")]
    NotLowerHex,
}

impl Digest {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(DigestParseError::Length(s.len()));
        }
        if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestParseError::NotLowerHex);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| DigestParseError::NotLowerHex)?;
        Ok(Digest(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Algorithms a party may use to hash a document whose existence an event attests (the
/// evidence file, an invoice's XML...). Independent of the chain's own [`HashAlg`]; SM3 is
/// here for parties under the national-crypto rules, whatever the chain's profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContentHashAlg {
    #[serde(rename = "sha-256")]
    Sha256,
    #[serde(rename = "sha-512")]
    Sha512,
    #[serde(rename = "sha3-256")]
    Sha3_256,
    #[serde(rename = "sha3-512")]
    Sha3_512,
    /// SM3 (GB/T 32905-2016).
    #[serde(rename = "sm3")]
    Sm3,
}

impl ContentHashAlg {
    pub const ALL: [ContentHashAlg; 5] = [
        ContentHashAlg::Sha256,
        ContentHashAlg::Sha512,
        ContentHashAlg::Sha3_256,
        ContentHashAlg::Sha3_512,
        ContentHashAlg::Sm3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ContentHashAlg::Sha256 => "sha-256",
            ContentHashAlg::Sha512 => "sha-512",
            ContentHashAlg::Sha3_256 => "sha3-256",
            ContentHashAlg::Sha3_512 => "sha3-512",
            ContentHashAlg::Sm3 => "sm3",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ContentHashAlg::Sha256 | ContentHashAlg::Sha3_256 | ContentHashAlg::Sm3 => 32,
            ContentHashAlg::Sha512 | ContentHashAlg::Sha3_512 => 64,
        }
    }

    /// Hex digest of everything `reader` yields, read in chunks so a large file never sits in
    /// memory whole.
    pub fn hash_reader<R: std::io::Read>(self, mut reader: R) -> std::io::Result<String> {
        fn chunks<R: std::io::Read>(
            reader: &mut R,
            mut update: impl FnMut(&[u8]),
        ) -> std::io::Result<()> {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                update(&buf[..n]);
            }
        }
        fn run<H: sha2::Digest, R: std::io::Read>(
            mut h: H,
            reader: &mut R,
        ) -> std::io::Result<String> {
            chunks(reader, |c| h.update(c))?;
            Ok(hex::encode(h.finalize()))
        }
        match self {
            ContentHashAlg::Sha256 => run(sha2::Sha256::new(), &mut reader),
            ContentHashAlg::Sha512 => run(sha2::Sha512::new(), &mut reader),
            ContentHashAlg::Sha3_256 => run(sha3::Sha3_256::new(), &mut reader),
            ContentHashAlg::Sha3_512 => run(sha3::Sha3_512::new(), &mut reader),
            ContentHashAlg::Sm3 => {
                // The sm3 crate implements a newer `digest` than sha2's: its own loop.
                use sm3::Digest as _;
                let mut h = sm3::Sm3::new();
                chunks(&mut reader, |c| h.update(c))?;
                Ok(hex::encode(h.finalize()))
            }
        }
    }
}

impl fmt::Display for ContentHashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The hash of a document an event attests: `payload.content_hash` in any event envelope.
/// `digest` is lowercase hex of exactly the algorithm's length.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentHash {
    pub algorithm: ContentHashAlg,
    pub digest: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContentHashError {
    #[error("{algorithm} digests are {expected} hex characters long, got {actual}")]
    Length {
        algorithm: ContentHashAlg,
        expected: usize,
        actual: usize,
    },
    #[error("digest must be hexadecimal (0-9, a-f)")]
    NotHex,
}

impl ContentHash {
    /// Checks the digest against its algorithm and returns it in canonical (lowercase) form.
    /// Upper-case hex is accepted on input: tools differ, the digest is the same.
    pub fn normalized(algorithm: ContentHashAlg, digest: &str) -> Result<Self, ContentHashError> {
        if !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ContentHashError::NotHex);
        }
        let expected = algorithm.digest_len() * 2;
        if digest.len() != expected {
            return Err(ContentHashError::Length {
                algorithm,
                expected,
                actual: digest.len(),
            });
        }
        Ok(ContentHash {
            algorithm,
            digest: digest.to_ascii_lowercase(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // FIPS 202 / FIPS 180-4 empty-message digests.
        assert_eq!(
            HashAlg::Sha3_256.hash(b"").to_hex(),
            "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
        );
        assert_eq!(
            HashAlg::Sha256.hash(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            HashAlg::Sha3_256.hash_parts(&[b"a", b"bc"]),
            HashAlg::Sha3_256.hash(b"abc")
        );
    }

    #[test]
    fn sm3_gbt_32905_examples() {
        // GB/T 32905-2016 Appendix A: example 1 ("abc") and example 2 ("abcd" x 16).
        assert_eq!(
            HashAlg::Sm3.hash(b"abc").to_hex(),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            HashAlg::Sm3.hash("abcd".repeat(16).as_bytes()).to_hex(),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
    }

    #[test]
    fn digest_text_form_is_strict() {
        let d = HashAlg::Sha256.hash(b"x");
        assert_eq!(d.to_hex().parse::<Digest>(), Ok(d));
        assert_eq!(
            d.to_hex().to_uppercase().parse::<Digest>(),
            Err(DigestParseError::NotLowerHex)
        );
        assert_eq!("ab".parse::<Digest>(), Err(DigestParseError::Length(2)));
    }

    #[test]
    fn content_hash_checks_length_and_hex() {
        let ok = ContentHash::normalized(ContentHashAlg::Sha256, &"AB".repeat(32)).unwrap();
        assert_eq!(ok.digest, "ab".repeat(32));
        assert!(matches!(
            ContentHash::normalized(ContentHashAlg::Sha512, &"ab".repeat(32)),
            Err(ContentHashError::Length {
                expected: 128,
                actual: 64,
                ..
            })
        ));
        assert_eq!(
            ContentHash::normalized(ContentHashAlg::Sha256, &"zz".repeat(32)),
            Err(ContentHashError::NotHex)
        );
        let file = b"hello";
        assert_eq!(
            ContentHashAlg::Sha256.hash_reader(&file[..]).unwrap(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        // GB/T 32905-2016 example 2, read through a reader in chunks like a file.
        assert_eq!(
            ContentHashAlg::Sm3
                .hash_reader("abcd".repeat(16).as_bytes())
                .unwrap(),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
        assert_eq!(ContentHashAlg::from_name("sm3"), Some(ContentHashAlg::Sm3));
        assert_eq!(ContentHashAlg::Sm3.digest_len(), 32);
    }
}
