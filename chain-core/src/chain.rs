//! What services need from a chain node, whichever node it is (the embedded solo validator,
//! or a consortium validator reached over the network).

use crate::block::{CommittedBlock, Transaction};
use crate::genesis::Genesis;
use crate::governance::CommittedChange;
use crate::hash::Digest;
use serde::{Deserialize, Serialize};

/// Misbehaviour a validator node saw from another validator: two conflicting signed votes or
/// proposals for one height (it kept the first and set the other aside as evidence), or an
/// invalid proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MisbehaviourReport {
    pub validator: String,
    pub height: u64,
    /// `conflicting-votes`, `conflicting-proposals` or `invalid-proposal`.
    pub kind: String,
    pub detail: String,
}

/// What one node reports of misbehaviour, or why it could not be asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeMisbehaviour {
    /// The node (its URL, or its validator's name for a node in this process).
    pub node: String,
    pub reports: Result<Vec<MisbehaviourReport>, String>,
}

/// Where a committed transaction sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    pub height: u64,
    pub index: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("transaction rejected: {0}")]
    Rejected(String),
    #[error("chain node unavailable: {0}")]
    Unavailable(String),
    #[error("block store: {0}")]
    Store(String),
}

#[async_trait::async_trait]
pub trait ChainClient: Send + Sync {
    fn genesis(&self) -> &Genesis;
    /// Submits a transaction; resubmitting one that is pending or committed is harmless and
    /// returns the same hash.
    async fn submit(&self, tx: Transaction) -> Result<Digest, ChainError>;
    async fn locate(&self, tx_hash: &Digest) -> Result<Option<TxLocation>, ChainError>;
    async fn block(&self, height: u64) -> Result<Option<CommittedBlock>, ChainError>;
    async fn head(&self) -> Result<u64, ChainError>;
    /// Every validator-set change committed in a final block, oldest first.
    async fn validator_set_changes(&self) -> Result<Vec<CommittedChange>, ChainError>;
    /// The validator-set changes this client already follows, without asking anyone: enough
    /// for any block that [`ChainClient::block`] returned (a block of a set not followed yet
    /// makes `block` learn the changes first). By default, the same as
    /// `validator_set_changes`.
    async fn followed_validator_set_changes(&self) -> Result<Vec<CommittedChange>, ChainError> {
        self.validator_set_changes().await
    }
    /// The misbehaviour each validator node this client knows has seen. None by default: a
    /// single validator has no other validator to see misbehave.
    async fn misbehaviour(&self) -> Vec<NodeMisbehaviour> {
        Vec::new()
    }
    /// Resolves when a block newer than `height` is final (or after a node-chosen timeout).
    async fn wait_for_block_after(&self, height: u64);
}
