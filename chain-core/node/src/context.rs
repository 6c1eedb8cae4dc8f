//! The consensus library's view of our chain: heights, validators, votes and proposals.
//!
//! Consensus votes on the **block hash** `H(JCS(header))`, the same hash validators attest once
//! the block is decided. Every type here is internal to the consortium; receipts never carry
//! them (docs/adr/0001).

use crate::proposer;
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

/// A chain validator set as the library wants it: sorted by power (descending), then address,
/// and scheduled for one height, since `select_proposer` is given only the set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidatorSet {
    pub validators: Vec<Validator>,
    /// Indices into `validators`: who proposes round `r` of the height is at `r mod n`.
    proposer_order: Vec<usize>,
}

impl ValidatorSet {
    /// A set scheduled for its first height (see [`ValidatorSet::scheduled`]).
    pub fn new(validators: Vec<Validator>) -> ValidatorSet {
        ValidatorSet {
            validators,
            proposer_order: Vec::new(),
        }
        .scheduled(0)
    }

    /// The set as it serves the height `heights_since_epoch_start` heights after the one it
    /// took effect at (`height - from_height` of its epoch): that height's proposer ranking by
    /// Tendermint's priorities (`crate::proposer`, docs/adr/0001 §4). Every node must schedule
    /// a height's set the same way, or they expect different proposers.
    pub fn scheduled(self, heights_since_epoch_start: u64) -> ValidatorSet {
        let powers: Vec<u64> = self.validators.iter().map(|v| v.power).collect();
        ValidatorSet {
            proposer_order: proposer::ranking(&powers, heights_since_epoch_start),
            validators: self.validators,
        }
    }

    /// Indices into `validators` in the order they propose this height's rounds.
    pub fn proposer_order(&self) -> &[usize] {
        &self.proposer_order
    }

    /// The proposer of round `round` of the height the set is scheduled for.
    pub fn proposer(&self, round: u32) -> &Validator {
        let n = self.validators.len();
        let slot = usize::try_from(round)
            .unwrap_or(usize::MAX)
            .checked_rem(n)
            .unwrap_or(0);
        // An order that no longer fits `validators` (the field is public) falls back to it.
        let index = self
            .proposer_order
            .get(slot)
            .copied()
            .filter(|&i| i < n && self.proposer_order.len() == n)
            .unwrap_or(slot);
        // Panics only for an empty set; the library never starts a height with one.
        &self.validators[index]
    }

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
        Ok(ValidatorSet::new(validators))
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

    /// Round `r` goes to the `r mod n`-th validator of the height's ranking by proposer
    /// priority (`ValidatorSet::scheduled`): CometBFT's proposer in round 0, a different one in
    /// each next round. The height is already in the set's schedule.
    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        _height: Height,
        round: Round,
    ) -> &'a Validator {
        validator_set.proposer(round.as_u32().unwrap_or(0))
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
    use crate::proposer::tests::{Rng, skewed_sets};
    use malachitebft_app_channel::app::types::core::Context;

    fn key_hex(i: usize) -> String {
        let secret = [u8::try_from(i % 255).expect("small") + 1; 32];
        chain_core::keys::SigningKey::from_secret(SignatureAlg::Ed25519, &secret)
            .expect("key")
            .public_key_hex()
    }

    /// A set in the given order (not sorted), unscheduled.
    fn set(powers: &[u64]) -> ValidatorSet {
        ValidatorSet::new(
            powers
                .iter()
                .enumerate()
                .map(|(i, p)| Validator {
                    name: format!("v{i}"),
                    address: Address([i as u8; 32]),
                    public_key: ValidatorKey::parse(SignatureAlg::Ed25519, &key_hex(i))
                        .expect("public key"),
                    power: *p,
                })
                .collect(),
        )
    }

    fn proposer_at(s: &ValidatorSet, height: u64, round: u32) -> Address {
        ChainContext
            .select_proposer(s, Height(height), Round::new(round))
            .address
    }

    fn index_of(s: &ValidatorSet, address: Address) -> usize {
        s.validators
            .iter()
            .position(|v| v.address == address)
            .expect("the proposer is a member")
    }

    #[test]
    fn powers_2_1_1_give_rounds_0_and_1_of_height_1_to_different_validators() {
        // Height 1 is the genesis set's first height: k = 1 - from_height = 0.
        let s = set(&[2, 1, 1]).scheduled(0);
        let r0 = proposer_at(&s, 1, 0);
        let r1 = proposer_at(&s, 1, 1);
        assert_ne!(r0, r1);
        // Round 0 is still weighted: the heavier validator goes first at a set's first height.
        assert_eq!(index_of(&s, r0), 0);
    }

    #[test]
    fn consecutive_rounds_differ_and_any_n_rounds_cover_the_set() {
        let mut rng = Rng(0xc0_0001);
        for powers in rng.power_sets(300, 1000) {
            let n = powers.len();
            let k = rng.next_u64();
            let s = set(&powers).scheduled(k);
            let first = rng.range(0, u64::from(u32::MAX) - 3 * n as u64) as u32;
            let rounds: Vec<Address> = (first..first + 3 * n as u32)
                .map(|r| proposer_at(&s, k.wrapping_add(1), r))
                .collect();
            if n >= 2 {
                for pair in rounds.windows(2) {
                    assert_ne!(pair[0], pair[1], "{powers:?} at {k} from round {first}");
                }
            }
            for window in rounds.windows(n) {
                let mut seen: Vec<usize> = window.iter().map(|a| index_of(&s, *a)).collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..n).collect::<Vec<_>>(), "{powers:?} at {k}");
            }
            // A nil round is treated as round 0.
            let nil = ChainContext
                .select_proposer(&s, Height(1), Round::Nil)
                .address;
            assert_eq!(nil, proposer_at(&s, 1, 0));
        }
    }

    #[test]
    fn round_0_over_total_power_heights_gives_each_validator_its_power() {
        let mut rng = Rng(0xc0_0002);
        for powers in rng.power_sets(50, 40) {
            let from_height = rng.range(1, 1 << 40);
            let offset = rng.range(0, 1 << 20);
            let total: u64 = powers.iter().sum();
            let s = set(&powers);
            let mut turns = vec![0u64; powers.len()];
            for height in from_height + offset..from_height + offset + total {
                // As the node schedules a height's set.
                let scheduled = s.clone().scheduled(height - from_height);
                turns[index_of(&s, proposer_at(&scheduled, height, 0))] += 1;
            }
            assert_eq!(turns, powers, "{powers:?} from {offset}");
        }
    }

    #[test]
    fn the_same_set_and_height_give_the_same_proposers_on_every_node() {
        let mut rng = Rng(0xc0_0003);
        for powers in rng.power_sets(100, 1000) {
            let chain_set = ChainValidatorSet {
                validators: powers
                    .iter()
                    .enumerate()
                    .map(|(i, p)| chain_core::genesis::Validator {
                        name: format!("v{i}"),
                        organisation: format!("org{i}"),
                        public_key: key_hex(i),
                        power: *p,
                    })
                    .collect(),
            };
            // Another node may hold the validators in another order.
            let mut shuffled = chain_set.clone();
            for i in (1..shuffled.validators.len()).rev() {
                let j = rng.range(0, i as u64) as usize;
                shuffled.validators.swap(i, j);
            }
            let k = rng.next_u64();
            let here =
                ValidatorSet::from_chain(HashAlg::Sha3_256, SignatureAlg::Ed25519, &chain_set)
                    .expect("converts")
                    .scheduled(k);
            let there =
                ValidatorSet::from_chain(HashAlg::Sha3_256, SignatureAlg::Ed25519, &shuffled)
                    .expect("converts")
                    .scheduled(k);
            assert_eq!(here, there);
            for round in 0..2 * powers.len() as u32 {
                assert_eq!(proposer_at(&here, 7, round), proposer_at(&there, 7, round));
                assert_eq!(proposer_at(&here, 7, round), proposer_at(&here, 7, round));
            }
        }
    }

    #[test]
    fn a_set_never_scheduled_proposes_as_at_its_first_height() {
        let mut rng = Rng(0xc0_0004);
        for powers in rng.power_sets(50, 1000).into_iter().chain(skewed_sets(5)) {
            let s = set(&powers);
            assert_eq!(s, s.clone().scheduled(0));
            assert_eq!(s.proposer_order().len(), powers.len());
        }
        // An order that no longer fits the validators falls back to their own order.
        let mut s = set(&[3, 2, 1]).scheduled(1);
        s.validators.pop();
        for round in 0..4 {
            assert_eq!(index_of(&s, proposer_at(&s, 2, round)), round as usize % 2);
        }
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
