//! The trust layer of Veritrace. No HTTP, no SQL: canonical hashing, RFC 9162 Merkle trees,
//! transactions, blocks, validator sets and attestations, the block store, the single-validator
//! node, and the receipt verifier (the light client) that anyone can run offline.

pub mod attestation;
pub mod block;
pub mod canonical;
pub mod chain;
pub mod checked;
pub mod genesis;
pub mod governance;
pub mod hash;
pub mod keys;
pub mod merkle;
pub mod receipt;
pub mod solo;
pub mod store;

pub use attestation::Attestation;
pub use block::{AnchorTx, Block, BlockHeader, CommittedBlock, Transaction};
pub use chain::{ChainClient, ChainError, MisbehaviourReport, NodeMisbehaviour, TxLocation};
pub use genesis::{Genesis, Validator, ValidatorSet};
pub use governance::{CommittedChange, ValidatorSetChange, ValidatorSetHistory};
pub use hash::{ContentHash, ContentHashAlg, Digest, HashAlg};
pub use merkle::{InclusionProof, MerkleTree};
pub use receipt::{Receipt, VerifiedReceipt, VerifyError};
