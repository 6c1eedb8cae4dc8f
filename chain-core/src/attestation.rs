//! Block attestations: a validator's signature that a block is the chain's block at a height.

use crate::hash::Digest;
use crate::keys::{PublicKey, SigningKey};
use serde::{Deserialize, Serialize};

/// Purpose tag of the signed bytes; a signature made for one purpose never passes for another.
pub const BLOCK_ATTESTATION_TAG: &[u8] = b"veritrace/block/v1";

/// A validator's signature over [`attestation_message`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// Name of the validator in the validator set.
    pub validator: String,
    /// The 64-byte signature (Ed25519 `R || S` or SM2 `r || s`), 128 lowercase hex characters.
    pub signature: String,
}

/// The exact bytes a validator signs:
/// `"veritrace/block/v1" || u8(len(chain_id)) || chain_id || u64be(height) || block_hash`.
/// The length byte keeps the concatenation unambiguous (chain ids are at most 64 bytes).
pub fn attestation_message(chain_id: &str, height: u64, block_hash: &Digest) -> Vec<u8> {
    let id = chain_id.as_bytes();
    let mut m = Vec::with_capacity(BLOCK_ATTESTATION_TAG.len() + 1 + id.len() + 8 + 32);
    m.extend_from_slice(BLOCK_ATTESTATION_TAG);
    m.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(id);
    m.extend_from_slice(&height.to_be_bytes());
    m.extend_from_slice(&block_hash.0);
    m
}

pub fn attest(
    key: &SigningKey,
    validator: &str,
    chain_id: &str,
    height: u64,
    block_hash: &Digest,
) -> Attestation {
    let sig = key.sign(&attestation_message(chain_id, height, block_hash));
    Attestation {
        validator: validator.to_string(),
        signature: hex::encode(sig),
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("signature is not 128 lowercase hex characters")]
    Malformed,
    #[error("signature does not match the block")]
    Invalid,
}

/// Verifies an attestation (Ed25519 strictly: non-canonical signatures are refused).
pub fn verify_attestation(
    key: &PublicKey,
    att: &Attestation,
    chain_id: &str,
    height: u64,
    block_hash: &Digest,
) -> Result<(), SignatureError> {
    let bytes = decode_signature(&att.signature)?;
    if key.verify(&attestation_message(chain_id, height, block_hash), &bytes) {
        Ok(())
    } else {
        Err(SignatureError::Invalid)
    }
}

/// A signature's text form: exactly 128 lowercase hex characters (one spelling per signature).
pub fn decode_signature(s: &str) -> Result<[u8; 64], SignatureError> {
    if s.len() != 128 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(SignatureError::Malformed);
    }
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(s, &mut bytes).map_err(|_| SignatureError::Malformed)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout_and_roundtrip() {
        let h = Digest([7; 32]);
        let m = attestation_message("c1", 258, &h);
        assert_eq!(&m[..18], b"veritrace/block/v1");
        assert_eq!(m[18], 2);
        assert_eq!(&m[19..21], b"c1");
        assert_eq!(&m[21..29], &[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(&m[29..], &[7; 32]);

        for alg in [
            crate::keys::SignatureAlg::Ed25519,
            crate::keys::SignatureAlg::Sm2,
        ] {
            let key = SigningKey::from_secret(alg, &[1; 32]).unwrap();
            let att = attest(&key, "v1", "c1", 258, &h);
            let vk = crate::keys::parse_public_key(alg, &key.public_key_hex()).unwrap();
            verify_attestation(&vk, &att, "c1", 258, &h).unwrap();
            // Another chain, height or block: rejected.
            assert_eq!(
                verify_attestation(&vk, &att, "c2", 258, &h),
                Err(SignatureError::Invalid)
            );
            assert_eq!(
                verify_attestation(&vk, &att, "c1", 259, &h),
                Err(SignatureError::Invalid)
            );
            assert_eq!(
                verify_attestation(&vk, &att, "c1", 258, &Digest([8; 32])),
                Err(SignatureError::Invalid)
            );
        }
    }
}
