//! The genesis file: the chain's identity and its first validator set. A verifier trusts this
//! file and nothing else.

use crate::canonical::{CanonicalError, canonical_digest};
use crate::hash::{Digest, HashAlg};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

pub use crate::keys::SignatureAlg;

/// One validator: an organisation's signing key and its voting power.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    /// Unique name inside the chain, e.g. `court-of-appeal-1`.
    pub name: String,
    /// The organisation running it.
    pub organisation: String,
    /// Public key in the genesis' signature scheme: 64 lowercase hex characters (Ed25519) or
    /// the uncompressed SEC1 point, 130 lowercase hex characters (SM2).
    pub public_key: String,
    pub power: u64,
}

/// The validators whose attestations make a block final.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorSet {
    pub validators: Vec<Validator>,
}

impl ValidatorSet {
    /// `H(JCS(validator set))`, carried in every block header.
    pub fn hash(&self, alg: HashAlg) -> Result<Digest, CanonicalError> {
        canonical_digest(alg, self)
    }

    /// Sum of the voting powers (saturating: validation caps it far below u64::MAX).
    pub fn total_power(&self) -> u64 {
        self.validators
            .iter()
            .fold(0u64, |acc, v| acc.saturating_add(v.power))
    }

    pub fn get(&self, name: &str) -> Option<&Validator> {
        self.validators.iter().find(|v| v.name == name)
    }

    /// True when `power` is more than two thirds of the set's total power.
    pub fn is_quorum(&self, power: u64) -> bool {
        // 3 * power > 2 * total, in u128 so that no weighting can overflow.
        3 * u128::from(power) > 2 * u128::from(self.total_power())
    }
}

/// The genesis document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub chain_id: String,
    /// RFC 3339 UTC time the chain was created.
    pub genesis_time: String,
    pub hash_alg: HashAlg,
    pub signature_alg: SignatureAlg,
    pub validator_set: ValidatorSet,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenesisError {
    #[error(
        "chain_id {0:?} must be 1 to 64 characters of a-z, 0-9, '-', '.' and start with a letter or digit"
    )]
    ChainId(String),
    #[error("the validator set is empty")]
    NoValidators,
    #[error("validator {0:?} appears twice")]
    DuplicateValidator(String),
    #[error("public key of validator {0:?} appears twice")]
    DuplicateKey(String),
    #[error("validator {0:?} has no voting power")]
    ZeroPower(String),
    #[error("validator {0:?} has an invalid public key: {1}")]
    BadKey(String, String),
    #[error("the total voting power must not exceed 2^53 - 1 (it is hashed as a JSON number)")]
    PowerTooLarge,
    #[error("the system random source failed: {0}")]
    Random(String),
    #[error("validator name {0:?} must be 1 to 64 characters of a-z, A-Z, 0-9, '-', '_', '.'")]
    BadName(String),
}

/// 2^53 - 1, the largest integer a JSON number carries exactly.
pub const MAX_TOTAL_POWER: u64 = (1 << 53) - 1;

pub fn valid_chain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.'))
        && id.as_bytes()[0].is_ascii_alphanumeric()
}

impl Genesis {
    /// A new, validated genesis created now; with no `chain_id`, a random one
    /// `<prefix>-<8 hex>` (chain ids must never be reused for another genesis).
    pub fn create(
        chain_id: Option<&str>,
        prefix: &str,
        hash_alg: HashAlg,
        signature_alg: SignatureAlg,
        validators: Vec<Validator>,
    ) -> Result<Genesis, GenesisError> {
        let chain_id = match chain_id {
            Some(id) => id.to_string(),
            None => {
                let mut b = [0u8; 4];
                getrandom::fill(&mut b).map_err(|e| GenesisError::Random(e.to_string()))?;
                format!("{prefix}-{}", hex::encode(b))
            }
        };
        let genesis = Genesis {
            chain_id,
            genesis_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            hash_alg,
            signature_alg,
            validator_set: ValidatorSet { validators },
        };
        genesis.validate()?;
        Ok(genesis)
    }

    /// Writes the genesis to `path`, which must not exist yet: a genesis is written once, and
    /// a crash mid-write leaves no half file (written aside, then renamed).
    pub fn write_new(&self, path: &std::path::Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text)?;
        if path.exists() {
            let _ = std::fs::remove_file(&tmp);
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} already exists", path.display()),
            ));
        }
        std::fs::rename(&tmp, path)
    }

    pub fn parse(bytes: &[u8]) -> Result<Genesis, String> {
        let g: Genesis =
            serde_json::from_slice(bytes).map_err(|e| format!("genesis is not valid: {e}"))?;
        g.validate()
            .map_err(|e| format!("genesis is not valid: {e}"))?;
        Ok(g)
    }

    /// `H(JCS(genesis))`: the `previous_hash` of block 1.
    pub fn hash(&self) -> Result<Digest, CanonicalError> {
        canonical_digest(self.hash_alg, self)
    }

    pub fn validate(&self) -> Result<(), GenesisError> {
        if !valid_chain_id(&self.chain_id) {
            return Err(GenesisError::ChainId(self.chain_id.clone()));
        }
        validate_set(&self.validator_set, self.signature_alg)
    }
}

pub fn validate_set(set: &ValidatorSet, alg: SignatureAlg) -> Result<(), GenesisError> {
    if set.validators.is_empty() {
        return Err(GenesisError::NoValidators);
    }
    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    for v in &set.validators {
        let name_ok = !v.name.is_empty()
            && v.name.len() <= 64
            && v.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !name_ok {
            return Err(GenesisError::BadName(v.name.clone()));
        }
        if !names.insert(v.name.as_str()) {
            return Err(GenesisError::DuplicateValidator(v.name.clone()));
        }
        if !keys.insert(v.public_key.as_str()) {
            return Err(GenesisError::DuplicateKey(v.name.clone()));
        }
        if v.power == 0 {
            return Err(GenesisError::ZeroPower(v.name.clone()));
        }
        crate::keys::parse_public_key(alg, &v.public_key)
            .map_err(|e| GenesisError::BadKey(v.name.clone(), e))?;
    }
    // JCS hashes numbers as IEEE doubles: keep every power and the total exact.
    if set.total_power() > MAX_TOTAL_POWER {
        return Err(GenesisError::PowerTooLarge);
    }
    Ok(())
}
