//! Batching and receipt assembly: pure functions, no I/O.

use chain_core::attestation::Attestation;
use chain_core::block::transaction_tree;
use chain_core::receipt::{AnchoredReceipt, LeafProof, RECEIPT_VERSION};
use chain_core::{
    AnchorTx, CommittedBlock, Digest, HashAlg, MerkleTree, Transaction, ValidatorSetChange,
};

/// The Merkle tree over a batch's event digests, in leaf order.
pub fn batch_tree(alg: HashAlg, digests: &[Digest]) -> MerkleTree {
    MerkleTree::from_data(alg, digests.iter().map(|d| d.0.as_slice()))
}

/// The transaction that anchors a sealed batch.
pub fn anchor_transaction(chain_id: &str, batch_id: &str, root: Digest, size: u64) -> Transaction {
    Transaction::Anchor(AnchorTx {
        chain_id: chain_id.to_string(),
        batch_id: batch_id.to_string(),
        batch_root: root,
        batch_size: size,
    })
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AssemblyError {
    #[error("leaf {index} is outside its batch of {size}")]
    LeafOutOfRange { index: u64, size: usize },
    #[error("transaction {index} is not in block {height}")]
    TransactionMissing { index: u32, height: u64 },
    /// The recorded location names another transaction than the batch's anchor transaction.
    #[error("transaction {index} of block {height} is not the batch's anchor transaction")]
    TransactionMismatch { index: u32, height: u64 },
    #[error("cannot hash a transaction: {0}")]
    Canonical(String),
}

/// One event as a leaf of its batch.
pub struct EventLeaf {
    /// The envelope exactly as recorded.
    pub event: serde_json::Value,
    pub digest: Digest,
    pub index: u64,
}

/// Where a batch's anchor transaction sits, and what the receipt needs of its block.
pub struct AnchorSite<'a> {
    pub block: &'a CommittedBlock,
    pub tx_index: u32,
    /// The batch's anchor transaction hash: the transaction at `tx_index` must have it.
    pub tx_hash: Digest,
    /// The block's attestations that count (`chain_core::receipt::valid_attestations`): a junk
    /// one a node served must not spoil the receipt.
    pub attestations: Vec<Attestation>,
}

/// Assembles the complete receipt of one event from its batch and its block.
pub fn assemble_receipt(
    alg: HashAlg,
    leaf: EventLeaf,
    batch: &MerkleTree,
    site: AnchorSite<'_>,
    validator_set_changes: Vec<ValidatorSetChange>,
) -> Result<AnchoredReceipt, AssemblyError> {
    let AnchorSite {
        block,
        tx_index,
        tx_hash,
        attestations,
    } = site;
    let EventLeaf {
        event,
        digest: event_digest,
        index: leaf_index,
    } = leaf;
    let path = batch
        .inclusion_path(leaf_index as usize)
        .ok_or(AssemblyError::LeafOutOfRange {
            index: leaf_index,
            size: batch.size(),
        })?;
    let transaction = block
        .block
        .transactions
        .get(tx_index as usize)
        .cloned()
        .ok_or(AssemblyError::TransactionMissing {
            index: tx_index,
            height: block.block.header.height,
        })?;
    let tx_hashes = block
        .block
        .transactions
        .iter()
        .map(|t| t.hash(alg))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AssemblyError::Canonical(e.to_string()))?;
    if tx_hashes.get(tx_index as usize) != Some(&tx_hash) {
        return Err(AssemblyError::TransactionMismatch {
            index: tx_index,
            height: block.block.header.height,
        });
    }
    let tx_path = transaction_tree(alg, &tx_hashes)
        .inclusion_path(tx_index as usize)
        .ok_or(AssemblyError::TransactionMissing {
            index: tx_index,
            height: block.block.header.height,
        })?;
    Ok(AnchoredReceipt {
        version: RECEIPT_VERSION,
        event,
        event_digest,
        batch_proof: LeafProof { leaf_index, path },
        transaction,
        transaction_proof: LeafProof {
            leaf_index: u64::from(tx_index),
            path: tx_path,
        },
        validator_set_changes,
        block_header: block.block.header.clone(),
        attestations,
    })
}
