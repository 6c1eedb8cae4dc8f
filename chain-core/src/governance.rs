//! Validator-set changes. A change replaces the whole validator set from a later height; it is
//! a chain transaction approved by more than 2/3 of the power of the set it replaces. Because
//! each change is signed by the set before it, a verifier that holds only the genesis can follow
//! the chain of sets up to any block (`docs/governance.md`, `docs/receipts.md` §10).

use crate::canonical::CanonicalError;
use crate::genesis::{Genesis, GenesisError, ValidatorSet, validate_set};
use crate::hash::{Digest, HashAlg};
use crate::keys::{SigningKey, parse_public_key};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Purpose tag of an approval; an approval never passes for a block attestation.
pub const VALIDATOR_SET_CHANGE_TAG: &[u8] = b"veritrace/validator-set-change/v1";

/// A change committed in the block at height h takes effect at `h + GOVERNANCE_DELAY` at the
/// earliest, so every node knows the set of a height before consensus on that height starts.
pub const GOVERNANCE_DELAY: u64 = 2;

/// One validator's signature over [`approval_message`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub validator: String,
    /// 64-byte signature, 128 lowercase hex characters.
    pub signature: String,
}

/// The `validator_set_change` transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorSetChange {
    pub chain_id: String,
    /// The first height attested by `validator_set`.
    pub effective_height: u64,
    /// `H(JCS(set))` of the set this change replaces: the set that approves it.
    pub previous_set_hash: Digest,
    /// The whole new set (adding, removing and re-weighting are all a new set).
    pub validator_set: ValidatorSet,
    pub approvals: Vec<Approval>,
}

/// A change as committed on the chain, with where it was committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommittedChange {
    pub committed_height: u64,
    pub transaction_hash: Digest,
    pub change: ValidatorSetChange,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GovernanceError {
    #[error("the change is for chain {change:?}, not {chain:?}")]
    ChainMismatch { change: String, chain: String },
    #[error(
        "the change replaces validator set {stated} but the set in force is {expected}; it was approved for another set"
    )]
    PreviousSet { stated: Digest, expected: Digest },
    #[error("the new validator set is not valid: {0}")]
    InvalidSet(GenesisError),
    #[error("approval by {0:?}: no such validator in the set being replaced")]
    UnknownApprover(String),
    #[error("approval by {0:?} appears twice")]
    DuplicateApproval(String),
    #[error("approval by {0:?} does not verify: the change or the signature was altered")]
    BadApproval(String),
    #[error(
        "the approvals carry {signed} of {total} voting power of the set being replaced; more than 2/3 is needed"
    )]
    NoQuorum { signed: u64, total: u64 },
    #[error(
        "effective height {effective} must be after the previous change's ({previous}) and no later than {limit}"
    )]
    Order {
        effective: u64,
        previous: u64,
        limit: u64,
    },
    #[error(
        "a change committed at height {height} can take effect at height {earliest} at the earliest, not {effective}"
    )]
    TooSoon {
        height: u64,
        effective: u64,
        earliest: u64,
    },
    #[error("a change effective at height {0} is still pending; one change at a time")]
    Pending(u64),
    #[error("validator {0:?} holds no key of this chain's signature scheme")]
    KeyScheme(String),
    #[error("canonical form: {0}")]
    Canonical(String),
}

impl From<CanonicalError> for GovernanceError {
    fn from(e: CanonicalError) -> Self {
        GovernanceError::Canonical(e.to_string())
    }
}

/// The exact bytes an approver signs:
/// `"veritrace/validator-set-change/v1" || u8(len(chain_id)) || chain_id ||
/// u64be(effective_height) || previous_set_hash || H(JCS(validator_set))`.
pub fn approval_message(
    chain_id: &str,
    effective_height: u64,
    previous_set_hash: &Digest,
    new_set_hash: &Digest,
) -> Vec<u8> {
    let id = chain_id.as_bytes();
    let mut m = Vec::with_capacity(VALIDATOR_SET_CHANGE_TAG.len() + 1 + id.len() + 8 + 64);
    m.extend_from_slice(VALIDATOR_SET_CHANGE_TAG);
    m.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(id);
    m.extend_from_slice(&effective_height.to_be_bytes());
    m.extend_from_slice(&previous_set_hash.0);
    m.extend_from_slice(&new_set_hash.0);
    m
}

impl ValidatorSetChange {
    /// A change with no approvals yet.
    pub fn propose(
        genesis: &Genesis,
        current: &ValidatorSet,
        effective_height: u64,
        validator_set: ValidatorSet,
    ) -> Result<ValidatorSetChange, GovernanceError> {
        validate_set(&validator_set, genesis.signature_alg).map_err(GovernanceError::InvalidSet)?;
        Ok(ValidatorSetChange {
            chain_id: genesis.chain_id.clone(),
            effective_height,
            previous_set_hash: current.hash(genesis.hash_alg)?,
            validator_set,
            approvals: Vec::new(),
        })
    }

    pub fn message(&self, alg: HashAlg) -> Result<Vec<u8>, GovernanceError> {
        Ok(approval_message(
            &self.chain_id,
            self.effective_height,
            &self.previous_set_hash,
            &self.validator_set.hash(alg)?,
        ))
    }

    /// Adds (or replaces) `validator`'s approval, signed with its key.
    pub fn approve(
        &mut self,
        alg: HashAlg,
        validator: &str,
        key: &SigningKey,
    ) -> Result<(), GovernanceError> {
        let signature = hex::encode(key.sign(&self.message(alg)?));
        self.approvals.retain(|a| a.validator != validator);
        self.approvals.push(Approval {
            validator: validator.to_string(),
            signature,
        });
        Ok(())
    }

    /// The power of `set` whose approvals verify. Strict: an unknown, repeated or invalid
    /// approval is an error, so that a change on the chain carries nothing unchecked.
    pub fn approved_power(
        &self,
        genesis: &Genesis,
        set: &ValidatorSet,
    ) -> Result<u64, GovernanceError> {
        let message = self.message(genesis.hash_alg)?;
        let mut seen = HashSet::new();
        let mut power = 0u64;
        for a in &self.approvals {
            let v = set
                .get(&a.validator)
                .ok_or_else(|| GovernanceError::UnknownApprover(a.validator.clone()))?;
            if !seen.insert(a.validator.as_str()) {
                return Err(GovernanceError::DuplicateApproval(a.validator.clone()));
            }
            let key = parse_public_key(genesis.signature_alg, &v.public_key)
                .map_err(|_| GovernanceError::KeyScheme(v.name.clone()))?;
            let sig = crate::attestation::decode_signature(&a.signature)
                .map_err(|_| GovernanceError::BadApproval(a.validator.clone()))?;
            if !key.verify(&message, &sig) {
                return Err(GovernanceError::BadApproval(a.validator.clone()));
            }
            power = power.saturating_add(v.power);
        }
        Ok(power)
    }

    /// Everything a verifier checks of a change, given the set it replaces: chain, previous
    /// set, a valid new set, and approvals by more than 2/3 of the replaced set's power.
    pub fn verify(&self, genesis: &Genesis, set: &ValidatorSet) -> Result<(), GovernanceError> {
        if self.chain_id != genesis.chain_id {
            return Err(GovernanceError::ChainMismatch {
                change: self.chain_id.clone(),
                chain: genesis.chain_id.clone(),
            });
        }
        let expected = set.hash(genesis.hash_alg)?;
        if self.previous_set_hash != expected {
            return Err(GovernanceError::PreviousSet {
                stated: self.previous_set_hash,
                expected,
            });
        }
        validate_set(&self.validator_set, genesis.signature_alg)
            .map_err(GovernanceError::InvalidSet)?;
        let signed = self.approved_power(genesis, set)?;
        if !set.is_quorum(signed) {
            return Err(GovernanceError::NoQuorum {
                signed,
                total: set.total_power(),
            });
        }
        Ok(())
    }
}

/// One validator set and the heights it attests (from `from_height` until the next set's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetEpoch {
    pub from_height: u64,
    pub hash: Digest,
    pub set: ValidatorSet,
    /// The change that brought this set in; `None` for the genesis set.
    pub change: Option<CommittedChange>,
}

/// The chain of validator sets from genesis, each change verified against the set before it.
#[derive(Clone, Debug)]
pub struct ValidatorSetHistory {
    genesis: Genesis,
    epochs: Vec<SetEpoch>,
}

impl ValidatorSetHistory {
    pub fn new(genesis: &Genesis) -> Result<ValidatorSetHistory, GovernanceError> {
        Ok(ValidatorSetHistory {
            genesis: genesis.clone(),
            epochs: vec![SetEpoch {
                from_height: 1,
                hash: genesis.validator_set.hash(genesis.hash_alg)?,
                set: genesis.validator_set.clone(),
                change: None,
            }],
        })
    }

    /// Follows `changes` from the genesis; each must verify against the set before it.
    pub fn from_changes(
        genesis: &Genesis,
        changes: &[CommittedChange],
    ) -> Result<ValidatorSetHistory, GovernanceError> {
        let mut h = ValidatorSetHistory::new(genesis)?;
        for c in changes {
            h.follow(c.clone(), u64::MAX)?;
        }
        Ok(h)
    }

    /// Verifies a change against the latest set and makes it the latest. Effective heights
    /// strictly increase and must not exceed `limit`.
    pub fn follow(&mut self, c: CommittedChange, limit: u64) -> Result<(), GovernanceError> {
        let latest = self.latest();
        let effective = c.change.effective_height;
        if effective <= latest.from_height || effective > limit {
            return Err(GovernanceError::Order {
                effective,
                previous: latest.from_height,
                limit,
            });
        }
        c.change.verify(&self.genesis, &latest.set)?;
        let hash = c.change.validator_set.hash(self.genesis.hash_alg)?;
        self.epochs.push(SetEpoch {
            from_height: effective,
            hash,
            set: c.change.validator_set.clone(),
            change: Some(c),
        });
        Ok(())
    }

    /// Checks that `change` may be committed in the block at `height` (`docs/governance.md`):
    /// no change pending, far enough ahead, approved by the set attesting `height`.
    pub fn check_inclusion(
        &self,
        change: &ValidatorSetChange,
        height: u64,
    ) -> Result<(), GovernanceError> {
        let latest = self.latest();
        if latest.from_height > height {
            return Err(GovernanceError::Pending(latest.from_height));
        }
        let earliest = height.saturating_add(GOVERNANCE_DELAY);
        if change.effective_height < earliest {
            return Err(GovernanceError::TooSoon {
                height,
                effective: change.effective_height,
                earliest,
            });
        }
        change.verify(&self.genesis, &latest.set)
    }

    /// The set that attests blocks at `height`.
    pub fn at(&self, height: u64) -> &SetEpoch {
        self.epochs
            .iter()
            .rev()
            .find(|e| e.from_height <= height)
            .unwrap_or(&self.epochs[0])
    }

    pub fn latest(&self) -> &SetEpoch {
        // Never empty: `new` puts the genesis set first.
        &self.epochs[self.epochs.len() - 1]
    }

    pub fn epochs(&self) -> &[SetEpoch] {
        &self.epochs
    }

    /// The changes in force at `height`, oldest first: what a receipt for a block at
    /// `height` carries.
    pub fn changes_up_to(&self, height: u64) -> Vec<ValidatorSetChange> {
        self.epochs
            .iter()
            .filter(|e| e.from_height <= height)
            .filter_map(|e| e.change.as_ref().map(|c| c.change.clone()))
            .collect()
    }

    pub fn committed_changes(&self) -> Vec<CommittedChange> {
        self.epochs
            .iter()
            .filter_map(|e| e.change.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::{SignatureAlg, Validator};

    fn keys(alg: SignatureAlg, n: u8) -> Vec<SigningKey> {
        (1..=n)
            .map(|i| SigningKey::from_secret(alg, &[i; 32]).expect("key"))
            .collect()
    }

    fn set_of(keys: &[SigningKey], names: &[&str]) -> ValidatorSet {
        ValidatorSet {
            validators: keys
                .iter()
                .zip(names)
                .map(|(k, n)| Validator {
                    name: n.to_string(),
                    organisation: format!("org {n}"),
                    public_key: k.public_key_hex(),
                    power: 1,
                })
                .collect(),
        }
    }

    fn genesis(alg: SignatureAlg, keys: &[SigningKey]) -> Genesis {
        Genesis::create(
            Some("gov-test"),
            "x",
            HashAlg::Sha3_256,
            alg,
            set_of(&keys[..4], &["v1", "v2", "v3", "v4"]).validators,
        )
        .expect("genesis")
    }

    fn committed(change: ValidatorSetChange, height: u64) -> CommittedChange {
        CommittedChange {
            committed_height: height,
            transaction_hash: Digest([height as u8; 32]),
            change,
        }
    }

    #[test]
    fn add_then_remove_follows_from_genesis() {
        for alg in [SignatureAlg::Ed25519, SignatureAlg::Sm2] {
            let k = keys(alg, 5);
            let g = genesis(alg, &k);
            let mut history = ValidatorSetHistory::new(&g).unwrap();

            // Add v5: three of four approve.
            let five = set_of(&k, &["v1", "v2", "v3", "v4", "v5"]);
            let mut add = ValidatorSetChange::propose(&g, &g.validator_set, 12, five).unwrap();
            for (i, name) in ["v1", "v2"].iter().enumerate() {
                add.approve(g.hash_alg, name, &k[i]).unwrap();
            }
            assert_eq!(
                history.check_inclusion(&add, 10),
                Err(GovernanceError::NoQuorum {
                    signed: 2,
                    total: 4
                })
            );
            add.approve(g.hash_alg, "v3", &k[2]).unwrap();
            history.check_inclusion(&add, 10).unwrap();
            assert!(matches!(
                history.check_inclusion(&add, 11),
                Err(GovernanceError::TooSoon { .. })
            ));
            history
                .follow(committed(add.clone(), 10), u64::MAX)
                .unwrap();
            // While it is pending, no other change is accepted.
            assert_eq!(
                history.check_inclusion(&add, 11),
                Err(GovernanceError::Pending(12))
            );
            assert_eq!(history.at(11).set, g.validator_set);
            assert_eq!(history.at(12).set.validators.len(), 5);

            // Remove v4: the five-validator set approves (4 of 5 needed).
            let kept: Vec<SigningKey> = [1u8, 2, 3, 5]
                .iter()
                .map(|i| SigningKey::from_secret(alg, &[*i; 32]).expect("key"))
                .collect();
            let four = set_of(&kept, &["v1", "v2", "v3", "v5"]);
            let current = history.latest().set.clone();
            let mut remove = ValidatorSetChange::propose(&g, &current, 20, four).unwrap();
            for (i, name) in [(0, "v1"), (1, "v2"), (2, "v3")] {
                remove.approve(g.hash_alg, name, &k[i]).unwrap();
            }
            assert!(matches!(
                history.check_inclusion(&remove, 15),
                Err(GovernanceError::NoQuorum {
                    signed: 3,
                    total: 5
                })
            ));
            remove.approve(g.hash_alg, "v5", &k[4]).unwrap();
            history.check_inclusion(&remove, 15).unwrap();
            history
                .follow(committed(remove.clone(), 15), u64::MAX)
                .unwrap();

            // A verifier rebuilds the same history from the changes alone.
            let again =
                ValidatorSetHistory::from_changes(&g, &history.committed_changes()).unwrap();
            assert_eq!(again.at(25).set, history.at(25).set);
            assert_eq!(history.changes_up_to(19), vec![add.clone()]);
            assert_eq!(history.changes_up_to(20), vec![add.clone(), remove.clone()]);

            // Out of order, or skipping the first change: refused.
            assert!(matches!(
                ValidatorSetHistory::from_changes(&g, &[committed(remove.clone(), 15)]),
                Err(GovernanceError::PreviousSet { .. })
            ));
            assert!(matches!(
                ValidatorSetHistory::from_changes(
                    &g,
                    &[committed(add.clone(), 10), committed(add.clone(), 10)]
                ),
                Err(GovernanceError::Order { .. })
            ));
        }
    }

    #[test]
    fn every_forged_approval_is_named() {
        let alg = SignatureAlg::Ed25519;
        let k = keys(alg, 6);
        let g = genesis(alg, &k);
        let five = set_of(&k, &["v1", "v2", "v3", "v4", "v5"]);
        let mut c = ValidatorSetChange::propose(&g, &g.validator_set, 5, five).unwrap();
        for (i, name) in ["v1", "v2", "v3"].iter().enumerate() {
            c.approve(g.hash_alg, name, &k[i]).unwrap();
        }
        c.verify(&g, &g.validator_set).unwrap();

        let mut later = c.clone();
        later.effective_height = 6;
        assert_eq!(
            later.verify(&g, &g.validator_set),
            Err(GovernanceError::BadApproval("v1".into()))
        );
        let mut stranger = c.clone();
        stranger.approve(g.hash_alg, "v6", &k[5]).unwrap();
        assert_eq!(
            stranger.verify(&g, &g.validator_set),
            Err(GovernanceError::UnknownApprover("v6".into()))
        );
        let mut twice = c.clone();
        twice.approvals.push(twice.approvals[0].clone());
        assert_eq!(
            twice.verify(&g, &g.validator_set),
            Err(GovernanceError::DuplicateApproval("v1".into()))
        );
        let mut other_chain = c.clone();
        other_chain.chain_id = "other".into();
        assert!(matches!(
            other_chain.verify(&g, &g.validator_set),
            Err(GovernanceError::ChainMismatch { .. })
        ));
        let mut empty = c.clone();
        empty.validator_set.validators.clear();
        assert_eq!(
            empty.verify(&g, &g.validator_set),
            Err(GovernanceError::InvalidSet(GenesisError::NoValidators))
        );
        // An approval is not a block attestation of the same bytes' owner.
        let msg = c.message(g.hash_alg).unwrap();
        assert!(msg.starts_with(VALIDATOR_SET_CHANGE_TAG));
        assert_eq!(msg.len(), VALIDATOR_SET_CHANGE_TAG.len() + 1 + 8 + 8 + 64);
    }
}
