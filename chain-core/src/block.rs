//! Transactions and blocks.

use crate::attestation::Attestation;
use crate::canonical::{CanonicalError, canonical_digest};
use crate::hash::{Digest, HashAlg};
use crate::merkle::MerkleTree;
use serde::{Deserialize, Serialize};

/// Anchors the root of one batch of event digests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorTx {
    /// The chain this transaction is meant for: it can never be replayed on another one.
    pub chain_id: String,
    /// The anchoring service's identifier of the batch (UUID).
    pub batch_id: String,
    /// Merkle root of the batch's event digests.
    pub batch_root: Digest,
    /// Number of leaves in the batch.
    pub batch_size: u64,
}

/// A chain transaction. The transaction hash is `H(JCS(transaction))`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Transaction {
    Anchor(AnchorTx),
    /// Replaces the validator set from a later height (`crate::governance`).
    ValidatorSetChange(crate::governance::ValidatorSetChange),
}

impl Transaction {
    pub fn hash(&self, alg: HashAlg) -> Result<Digest, CanonicalError> {
        canonical_digest(alg, self)
    }

    pub fn chain_id(&self) -> &str {
        match self {
            Transaction::Anchor(a) => &a.chain_id,
            Transaction::ValidatorSetChange(c) => &c.chain_id,
        }
    }
}

/// The block header; the block hash is `H(JCS(header))`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    pub chain_id: String,
    /// 1 for the first block after genesis.
    pub height: u64,
    /// Hash of the previous block, or of the genesis document for block 1.
    pub previous_hash: Digest,
    /// RFC 3339 UTC time with millisecond precision, e.g. `2026-11-25T09:30:00.123Z`.
    pub time: String,
    /// RFC 9162 root over the transaction hashes, in block order.
    pub transaction_root: Digest,
    pub transaction_count: u64,
    /// `H(JCS(validator set))` of the set that attests this block.
    pub validator_set_hash: Digest,
    /// Name of the validator that proposed the block.
    pub proposer: String,
}

impl BlockHeader {
    pub fn hash(&self, alg: HashAlg) -> Result<Digest, CanonicalError> {
        canonical_digest(alg, self)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub header: BlockHeader,
    pub transactions: Vec<Transaction>,
}

/// Root over transaction hashes, leaf data = the 32-byte transaction hash.
pub fn transaction_tree(alg: HashAlg, tx_hashes: &[Digest]) -> MerkleTree {
    MerkleTree::from_data(alg, tx_hashes.iter().map(|h| h.0.as_slice()))
}

/// A block with the attestations that make it final.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommittedBlock {
    pub block: Block,
    pub hash: Digest,
    pub attestations: Vec<Attestation>,
}
