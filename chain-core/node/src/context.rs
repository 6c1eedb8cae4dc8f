//! The consensus library's view of our chain: heights, validators, votes and proposals.
//!
//! Consensus votes on the **block hash** `H(JCS(header))`, the same hash validators attest once
//! the block is decided. Every type here is internal to the consortium; receipts never carry
//! them (docs/adr/0001).

use borsh::{BorshDeserialize, BorshSerialize};
use chain_core::genesis::ValidatorSet as ChainValidatorSet;
use chain_core::keys::{PublicKey, SignatureAlg, parse_public_key};
use chain_core::{Digest, HashAlg};
use malachitebft_app_channel::app::types::core::{
    self as mc, LinearTimeouts, NilOrVal, Round, SignedExtension, VoteType,
};
use std::fmt;

/// Block height; 1 is the first block after genesis.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's consensus address: `H(public key bytes)` with the chain's hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Address(pub [u8; 32]);

impl Address {
    pub fn of_key(alg: HashAlg, public_key: &[u8]) -> Address {
        Address(alg.hash(public_key).0)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(&self.0[..8]))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl mc::Address for Address {}

/// What consensus decides: the hash of a block. The block itself travels as proposal parts
/// and through sync; its hash binds every byte of it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct BlockId(pub [u8; 32]);

impl BlockId {
    pub fn digest(&self) -> Digest {
        Digest(self.0)
    }
}

impl From<Digest> for BlockId {
    fn from(d: Digest) -> Self {
        BlockId(d.0)
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(&self.0[..8]))
    }
}

impl fmt::Debug for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockId({self})")
    }
}

impl mc::Value for BlockId {
    type Id = BlockId;

    fn id(&self) -> BlockId {
        *self
    }
}

/// A prevote or precommit.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    pub vote_type: VoteType,
    pub height: Height,
    pub round: Round,
    pub value: NilOrVal<BlockId>,
    pub validator: Address,
    /// Always `None`: vote extensions are disabled. Attestations are never carried in votes
    /// (a vote names a round, an attestation must not; docs/adr/0001 §5).
    pub extension: Option<SignedExtension<ChainContext>>,
}

impl mc::Vote<ChainContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<BlockId> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<BlockId> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        self.vote_type
    }
    fn validator_address(&self) -> &Address {
        &self.validator
    }
    fn extension(&self) -> Option<&SignedExtension<ChainContext>> {
        self.extension.as_ref()
    }
    fn take_extension(&mut self) -> Option<SignedExtension<ChainContext>> {
        self.extension.take()
    }
    fn extend(self, extension: SignedExtension<ChainContext>) -> Self {
        Vote {
            extension: Some(extension),
            ..self
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    pub value: BlockId,
    pub pol_round: Round,
    pub validator: Address,
}

impl mc::Proposal<ChainContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &BlockId {
        &self.value
    }
    fn take_value(self) -> BlockId {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &Address {
        &self.validator
    }
}

/// A block streamed to the other validators: who proposes it for which round, then the
/// canonical block bytes in chunks.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ProposalPart {
    Init {
        height: Height,
        round: Round,
        valid_round: Round,
        proposer: Address,
    },
    Data(Vec<u8>),
    Fin,
}

impl mc::ProposalPart<ChainContext> for ProposalPart {
    fn is_first(&self) -> bool {
        matches!(self, ProposalPart::Init { .. })
    }
    fn is_last(&self) -> bool {
        matches!(self, ProposalPart::Fin)
    }
}

/// A validator's public key in the chain's signature scheme, with its encoded bytes
/// (32 bytes for Ed25519, the 65-byte uncompressed point for SM2).
#[derive(Clone, Debug)]
pub struct ValidatorKey {
    pub bytes: Vec<u8>,
    pub key: PublicKey,
}

impl PartialEq for ValidatorKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for ValidatorKey {}

impl ValidatorKey {
    pub fn parse(alg: SignatureAlg, hex_key: &str) -> Result<ValidatorKey, String> {
        let key = parse_public_key(alg, hex_key)?;
        let bytes = hex::decode(hex_key).map_err(|e| e.to_string())?;
        Ok(ValidatorKey { bytes, key })
    }

    /// The scheme follows from the length: the two encodings never have the same size.
    pub fn decode(bytes: &[u8]) -> Result<ValidatorKey, String> {
        let alg = match bytes.len() {
            32 => SignatureAlg::Ed25519,
            65 => SignatureAlg::Sm2,
            n => return Err(format!("a {n}-byte public key is of no known scheme")),
        };
        ValidatorKey::parse(alg, &hex::encode(bytes))
    }
}

/// A 64-byte signature: Ed25519 `R || S` or SM2 `r || s`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainScheme;

impl mc::SigningScheme for ChainScheme {
    type DecodingError = String;
    type Signature = Signature;
    type PublicKey = ValidatorKey;
    // Signing happens in `signing::ChainSigner`, which holds the key; the library never needs it.
    type PrivateKey = ();

    fn decode_signature(bytes: &[u8]) -> Result<Signature, String> {
        <[u8; 64]>::try_from(bytes)
            .map(Signature)
            .map_err(|_| format!("a signature is 64 bytes, not {}", bytes.len()))
    }
    fn encode_signature(signature: &Signature) -> Vec<u8> {
        signature.0.to_vec()
    }
    fn decode_public_key(bytes: &[u8]) -> Result<ValidatorKey, String> {
        ValidatorKey::decode(bytes)
    }
    fn encode_public_key(public_key: &ValidatorKey) -> Vec<u8> {
        public_key.bytes.clone()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    pub name: String,
    pub address: Address,
    pub public_key: ValidatorKey,
    pub power: u64,
}

impl mc::Validator<ChainContext> for Validator {
    fn address(&self) -> &Address {
        &self.address
    }
    fn public_key(&self) -> &ValidatorKey {
        &self.public_key
    }
    fn voting_power(&self) -> u64 {
        self.power
    }
}

/// A chain validator set as the library wants it: sorted by power (descending), then address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidatorSet {
    pub validators: Vec<Validator>,
}

impl ValidatorSet {
    pub fn from_chain(
        hash_alg: HashAlg,
        alg: SignatureAlg,
        set: &ChainValidatorSet,
    ) -> Result<ValidatorSet, String> {
        let mut validators = set
            .validators
            .iter()
            .map(|v| {
                let public_key = ValidatorKey::parse(alg, &v.public_key)
                    .map_err(|e| format!("validator {:?}: {e}", v.name))?;
                Ok(Validator {
                    name: v.name.clone(),
                    address: Address::of_key(hash_alg, &public_key.bytes),
                    public_key,
                    power: v.power,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        validators.sort_by(|a, b| b.power.cmp(&a.power).then(a.address.cmp(&b.address)));
        Ok(ValidatorSet { validators })
    }

    pub fn by_name(&self, name: &str) -> Option<&Validator> {
        self.validators.iter().find(|v| v.name == name)
    }
}

impl mc::ValidatorSet<ChainContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }
    fn total_voting_power(&self) -> u64 {
        self.validators.iter().map(|v| v.power).sum()
    }
    fn get_by_address(&self, address: &Address) -> Option<&Validator> {
        self.validators.iter().find(|v| &v.address == address)
    }
    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

#[derive(Clone, Debug)]
pub struct ChainContext;

impl mc::Context for ChainContext {
    type Address = Address;
    type Height = Height;
    type ProposalPart = ProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = LinearTimeouts;
    type Value = BlockId;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = ChainScheme;

    /// Weighted round robin: slot `(height - 1 + round) mod total power` falls in one
    /// validator's share of the cumulative powers. Deterministic, so every node agrees.
    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        let total: u64 = validator_set.validators.iter().map(|v| v.power).sum();
        let round = round.as_u32().unwrap_or(0) as u64;
        let slot = height
            .0
            .saturating_sub(1)
            .wrapping_add(round)
            .checked_rem(total)
            .unwrap_or(0);
        let mut acc = 0u64;
        for v in &validator_set.validators {
            acc += v.power;
            if slot < acc {
                return v;
            }
        }
        // Unreachable for a non-empty set; the library never starts a height with an empty one.
        &validator_set.validators[0]
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockId,
        pol_round: Round,
        address: Address,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            validator: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: Address,
    ) -> Vote {
        Vote {
            vote_type: VoteType::Prevote,
            height,
            round,
            value: value_id,
            validator: address,
            extension: None,
        }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: Address,
    ) -> Vote {
        Vote {
            vote_type: VoteType::Precommit,
            height,
            round,
            value: value_id,
            validator: address,
            extension: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use malachitebft_app_channel::app::types::core::Context;

    fn set(powers: &[u64]) -> ValidatorSet {
        ValidatorSet {
            validators: powers
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let key = chain_core::keys::SigningKey::from_secret(
                        SignatureAlg::Ed25519,
                        &[i as u8 + 1; 32],
                    )
                    .expect("key");
                    Validator {
                        name: format!("v{i}"),
                        address: Address([i as u8; 32]),
                        public_key: ValidatorKey::parse(
                            SignatureAlg::Ed25519,
                            &key.public_key_hex(),
                        )
                        .expect("public key"),
                        power: *p,
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn proposers_rotate_in_proportion_to_power() {
        let s = set(&[2, 1, 1]);
        let mut counts = [0usize; 3];
        for h in 1..=400u64 {
            let p = ChainContext.select_proposer(&s, Height(h), Round::new(0));
            counts[s.validators.iter().position(|v| v == p).expect("member")] += 1;
        }
        assert_eq!(counts, [200, 100, 100]);
        // A later round of the same height moves to another validator.
        let r0 = ChainContext.select_proposer(&s, Height(3), Round::new(0));
        let r1 = ChainContext.select_proposer(&s, Height(3), Round::new(1));
        assert_ne!(r0, r1);
    }

    #[test]
    fn public_keys_decode_by_length_and_reject_others() {
        let s = set(&[1]);
        let bytes = s.validators[0].public_key.bytes.clone();
        assert_eq!(
            ValidatorKey::decode(&bytes).expect("ed25519"),
            s.validators[0].public_key
        );
        assert!(ValidatorKey::decode(&bytes[..31]).is_err());
    }
}
