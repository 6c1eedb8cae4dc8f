//! The consortium validator: one process per organisation, agreeing on blocks with the other
//! validators through Malachite (Tendermint BFT). Everything that names a Malachite type stays
//! in this crate (docs/adr/0001): blocks, attestations and receipts are chain-core's.

pub mod blocks;
pub mod codec;
pub mod context;
pub mod node;
pub mod proposer;
pub mod remote;
pub mod signing;

pub use node::{
    CommitStep, ConsortiumNode, Misbehaviour, NodeError, NodeSettings, ObservedMisbehaviour, Peer,
    peer_id,
};
pub use remote::RemoteChain;
