//! Validator signing keys: Ed25519 (default) or SM2 (national-crypto profile). A private key
//! never leaves its node's directory.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Signature scheme of a chain profile, named by the genesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SignatureAlg {
    /// Ed25519 (RFC 8032), strict verification.
    #[default]
    #[serde(rename = "ed25519")]
    Ed25519,
    /// SM2 digital signatures (GB/T 32918.2) over SM3, with the distinguishing identifier
    /// [`SM2_DISTINGUISHING_ID`].
    #[serde(rename = "sm2")]
    Sm2,
}

/// The GB/T 32918 default user identity, used for every SM2 validator.
pub const SM2_DISTINGUISHING_ID: &str = "1234567812345678";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("key file {0} does not hold a valid 32-byte hex private key")]
    Malformed(String),
    #[error("the system random source failed: {0}")]
    Random(String),
}

/// A validator's private key.
pub enum SigningKey {
    Ed25519(Box<ed25519_dalek::SigningKey>),
    Sm2(Box<sm2::dsa::SigningKey>),
}

/// A validator's public key, as named in the genesis.
#[derive(Clone, Debug)]
pub enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    Sm2(Box<sm2::dsa::VerifyingKey>),
}

impl SigningKey {
    /// A key from 32 secret bytes; `None` for an SM2 scalar outside `[1, n-1]`.
    pub fn from_secret(alg: SignatureAlg, secret: &[u8; 32]) -> Option<SigningKey> {
        match alg {
            SignatureAlg::Ed25519 => Some(SigningKey::Ed25519(Box::new(
                ed25519_dalek::SigningKey::from_bytes(secret),
            ))),
            SignatureAlg::Sm2 => sm2::dsa::SigningKey::from_slice(SM2_DISTINGUISHING_ID, secret)
                .ok()
                .map(|k| SigningKey::Sm2(Box::new(k))),
        }
    }

    pub fn generate(alg: SignatureAlg) -> Result<SigningKey, KeyError> {
        loop {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
            // An SM2 draw outside the group order (probability ~2^-32) is simply drawn again.
            if let Some(k) = Self::from_secret(alg, &secret) {
                return Ok(k);
            }
        }
    }

    pub fn algorithm(&self) -> SignatureAlg {
        match self {
            SigningKey::Ed25519(_) => SignatureAlg::Ed25519,
            SigningKey::Sm2(_) => SignatureAlg::Sm2,
        }
    }

    fn secret_hex(&self) -> String {
        match self {
            SigningKey::Ed25519(k) => hex::encode(k.to_bytes()),
            SigningKey::Sm2(k) => hex::encode(k.to_bytes()),
        }
    }

    /// The public key as the genesis names it: 64 hex characters for Ed25519, the
    /// uncompressed SEC1 point (130 hex characters, `04 || x || y`) for SM2.
    pub fn public_key_hex(&self) -> String {
        match self {
            SigningKey::Ed25519(k) => hex::encode(k.verifying_key().to_bytes()),
            SigningKey::Sm2(k) => hex::encode(k.verifying_key().to_sec1_bytes()),
        }
    }

    /// A 64-byte signature: Ed25519's `R || S`, or SM2's `r || s`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        match self {
            SigningKey::Ed25519(k) => ed25519_dalek::Signer::sign(k.as_ref(), message).to_bytes(),
            SigningKey::Sm2(k) => {
                let sig: sm2::dsa::Signature =
                    sm2::dsa::signature::Signer::sign(k.as_ref(), message);
                let mut out = [0u8; 64];
                out.copy_from_slice(&sig.to_bytes());
                out
            }
        }
    }
}

impl PublicKey {
    /// Checks a 64-byte signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        match self {
            PublicKey::Ed25519(k) => {
                let sig = ed25519_dalek::Signature::from_bytes(signature);
                k.verify_strict(message, &sig).is_ok()
            }
            PublicKey::Sm2(k) => match sm2::dsa::Signature::from_slice(signature) {
                Ok(sig) => sm2::dsa::signature::Verifier::verify(k.as_ref(), message, &sig).is_ok(),
                Err(_) => false,
            },
        }
    }
}

fn lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses a genesis public key of the given scheme, refusing every encoding but the one
/// canonical form, and (for Ed25519) small-order keys: other verifiers (libsodium among them)
/// refuse them too, and every verifier must reach the same verdict.
pub fn parse_public_key(alg: SignatureAlg, hex_key: &str) -> Result<PublicKey, String> {
    match alg {
        SignatureAlg::Ed25519 => {
            if hex_key.len() != 64 || !lower_hex(hex_key) {
                return Err("expected 64 lowercase hex characters".into());
            }
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(hex_key, &mut bytes).map_err(|e| e.to_string())?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| "not a valid Ed25519 point".to_string())?;
            if key.to_bytes() != bytes {
                return Err("not a canonical Ed25519 point encoding".into());
            }
            if key.is_weak() {
                return Err("a small-order Ed25519 key cannot be a validator key".into());
            }
            Ok(PublicKey::Ed25519(key))
        }
        SignatureAlg::Sm2 => {
            if hex_key.len() != 130 || !hex_key.starts_with("04") || !lower_hex(hex_key) {
                return Err(
                    "expected an uncompressed SEC1 point: 130 lowercase hex characters starting 04"
                        .into(),
                );
            }
            let bytes = hex::decode(hex_key).map_err(|e| e.to_string())?;
            sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DISTINGUISHING_ID, &bytes)
                .map(|k| PublicKey::Sm2(Box::new(k)))
                .map_err(|_| "not a point of the SM2 curve".to_string())
        }
    }
}

/// Loads the key at `path`, or creates one of scheme `alg` (mode 0600) when the file does not
/// exist.
pub fn load_or_create(path: &Path, alg: SignatureAlg) -> Result<SigningKey, KeyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut secret = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut secret)
                .map_err(|_| KeyError::Malformed(path.display().to_string()))?;
            SigningKey::from_secret(alg, &secret)
                .ok_or_else(|| KeyError::Malformed(path.display().to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate(alg)?;
            write_private(path, &key.secret_hex()).map_err(|source| KeyError::Write {
                path: path.display().to_string(),
                source,
            })?;
            Ok(key)
        }
        Err(source) => Err(KeyError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// GB/T 32918.5-2016 Annex A (recommended curve): key pair, message "message digest",
    /// identity "1234567812345678", and the published signature.
    #[test]
    fn sm2_gbt_32918_example() {
        let secret: [u8; 32] =
            h("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8")
                .try_into()
                .unwrap();
        let key = SigningKey::from_secret(SignatureAlg::Sm2, &secret).unwrap();
        assert_eq!(
            key.public_key_hex(),
            "0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020\
             ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
        );
        let public = parse_public_key(SignatureAlg::Sm2, &key.public_key_hex()).unwrap();
        let published: [u8; 64] = h(
            "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3\
             b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa",
        )
        .try_into()
        .unwrap();
        assert!(public.verify(b"message digest", &published));
        assert!(!public.verify(b"message digesT", &published));
        let mut flipped = published;
        flipped[5] ^= 1;
        assert!(!public.verify(b"message digest", &flipped));
        // Our own signatures (deterministic nonce) verify too.
        let ours = key.sign(b"veritrace");
        assert!(public.verify(b"veritrace", &ours));
    }

    #[test]
    fn ed25519_rfc8032_test_1() {
        // RFC 8032 §7.1, TEST 1 (empty message).
        let secret: [u8; 32] =
            h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .try_into()
                .unwrap();
        let key = SigningKey::from_secret(SignatureAlg::Ed25519, &secret).unwrap();
        assert_eq!(
            key.public_key_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(key.sign(b"")),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn only_canonical_public_keys() {
        let sm2 = SigningKey::generate(SignatureAlg::Sm2)
            .unwrap()
            .public_key_hex();
        assert!(parse_public_key(SignatureAlg::Sm2, &sm2).is_ok());
        assert!(parse_public_key(SignatureAlg::Sm2, &sm2.to_uppercase()).is_err());
        assert!(parse_public_key(SignatureAlg::Ed25519, &sm2).is_err());
        let ed = SigningKey::generate(SignatureAlg::Ed25519)
            .unwrap()
            .public_key_hex();
        assert!(parse_public_key(SignatureAlg::Sm2, &ed).is_err());
        // The identity point has small order.
        let identity = format!("01{}", "00".repeat(31));
        assert!(parse_public_key(SignatureAlg::Ed25519, &identity).is_err());
    }
}
