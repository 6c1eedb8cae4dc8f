//! One consortium validator: Malachite orders blocks, this node builds and checks them,
//! commits decided blocks to its block store, attests them, and collects the other validators'
//! attestations until more than 2/3 of the power has signed (the finality receipts need).

mod attestations;
mod commit;
mod engine;
mod forwarding;
mod host;
mod proposals;
mod shared;
mod sync;
#[cfg(test)]
mod tests;

use crate::context::{Address, ValidatorKey};
use crate::signing::SignedRecord;
use attestations::spawn_collectors;
use chain_core::block::{CommittedBlock, Transaction};
use chain_core::chain::{ChainClient, ChainError, TxLocation};
use chain_core::governance::{CommittedChange, ValidatorSetHistory};
use chain_core::keys::SigningKey;
use chain_core::store::BlockStore;
use chain_core::{Digest, Genesis};
use engine::start_engine;
use forwarding::Forwarding;
use host::Host;
use redb::Database;
use shared::{CERTIFICATES, Mempool, Shared, UNDECIDED};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Another validator, as this node reaches it.
#[derive(Clone, Debug)]
pub struct Peer {
    pub name: String,
    /// libp2p multiaddr with the peer id, e.g. `/ip4/127.0.0.1/tcp/26602/p2p/12D3…`.
    pub p2p: String,
    /// Base URL of its node API, e.g. `http://127.0.0.1:26702`.
    pub api: String,
}

pub struct NodeSettings {
    pub name: String,
    pub genesis: Genesis,
    pub key: Arc<SigningKey>,
    /// Ed25519 secret of the node's libp2p identity (transport authentication only).
    pub p2p_secret: [u8; 32],
    pub data_dir: PathBuf,
    /// libp2p listen multiaddr, e.g. `/ip4/127.0.0.1/tcp/26601`.
    pub listen: String,
    pub peers: Vec<Peer>,
    pub block_interval: Duration,
    /// Deliberate misbehaviour, for resilience tests only.
    pub misbehaviour: Misbehaviour,
}

/// Misbehaviour this node saw from another validator (the library kept the first of two
/// conflicting messages and set the other aside as evidence; an invalid proposal got nil votes).
pub use chain_core::MisbehaviourReport as ObservedMisbehaviour;

/// Most observations kept (the oldest go first).
const MAX_OBSERVATIONS: usize = 1000;

/// What a misbehaving validator does. Honoured only by a build with the `byzantine` feature;
/// any other build refuses to start a node that asks for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Misbehaviour {
    /// Send, for every vote, a second, conflicting one (both signed: an equivocation).
    pub equivocate_votes: bool,
    /// Propose blocks whose transaction root does not match their transactions.
    pub bad_transaction_root: bool,
    /// Abort the process at this step of committing this height (kill tests).
    pub crash_in_commit: Option<(CommitStep, u64)>,
    /// Publish proposal streams that never complete, for heights ahead, ten times a second.
    pub flood_proposal_streams: bool,
}

/// The steps of committing a decided block, around its three writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitStep {
    /// Before anything is written.
    BeforeCertificate,
    /// The commit certificate is written; the block is not.
    AfterCertificate,
    /// The block and this node's attestation are written; the undecided blocks remain.
    AfterBlock,
    /// Every write done.
    AfterCleanup,
}

impl CommitStep {
    pub const ALL: [CommitStep; 4] = [
        CommitStep::BeforeCertificate,
        CommitStep::AfterCertificate,
        CommitStep::AfterBlock,
        CommitStep::AfterCleanup,
    ];

    /// The name configuration files use.
    pub fn name(self) -> &'static str {
        match self {
            CommitStep::BeforeCertificate => "before-certificate",
            CommitStep::AfterCertificate => "after-certificate",
            CommitStep::AfterBlock => "after-block",
            CommitStep::AfterCleanup => "after-cleanup",
        }
    }
}

impl std::str::FromStr for CommitStep {
    type Err = String;

    fn from_str(s: &str) -> Result<CommitStep, String> {
        CommitStep::ALL
            .into_iter()
            .find(|step| step.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = CommitStep::ALL.iter().map(|c| c.name()).collect();
                format!("unknown commit step {s:?}; one of {}", names.join(", "))
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("the validator key is a {key:?} key but the genesis names {genesis:?}")]
    WrongScheme {
        key: chain_core::keys::SignatureAlg,
        genesis: chain_core::keys::SignatureAlg,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] chain_core::store::StoreError),
    #[error("consensus state store: {0}")]
    State(String),
    #[error("consensus engine: {0}")]
    Engine(String),
}

pub(super) fn state_err<E: std::fmt::Display>(e: E) -> NodeError {
    NodeError::State(e.to_string())
}

/// The libp2p peer id of a node whose transport secret is `secret`.
pub fn peer_id(secret: &[u8; 32]) -> Result<String, NodeError> {
    let kp = malachitebft_app::types::Keypair::ed25519_from_bytes(*secret)
        .map_err(|e| NodeError::Config(e.to_string()))?;
    Ok(kp.public().to_peer_id().to_string())
}

/// A running consortium validator.
pub struct ConsortiumNode {
    shared: Arc<Shared>,
}

impl ConsortiumNode {
    /// Opens the node's stores, starts the consensus engine and the tasks that drive it.
    pub async fn start(settings: NodeSettings) -> Result<Arc<ConsortiumNode>, NodeError> {
        let shared = open_shared(&settings)?;
        let channels = start_engine(&shared, &settings, shared.record.clone()).await?;
        tokio::spawn(Host::new(shared.clone(), settings.block_interval).run(channels));
        spawn_collectors(&shared, settings.block_interval);
        Ok(Arc::new(ConsortiumNode { shared }))
    }

    /// Resolves when this node has stopped taking part in consensus, with the reason: its
    /// process should exit (and be restarted), its stores are as the last commit left them.
    pub async fn halted(&self) -> String {
        let mut rx = self.shared.halted.subscribe();
        match rx.wait_for(|h| h.is_some()).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            // The sender lives as long as the node.
            Err(_) => "the node is gone".into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Height of the last block committed locally (final or not).
    pub fn committed_head(&self) -> Result<u64, ChainError> {
        self.shared
            .store
            .head()
            .map_err(|e| ChainError::Store(e.to_string()))
    }

    /// Misbehaviour of other validators this node has seen, oldest first.
    pub fn observed_misbehaviour(&self) -> Vec<ObservedMisbehaviour> {
        self.shared
            .observed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Accepts a transaction into this node's mempool without passing it on (it came from a
    /// peer that already did).
    pub fn accept(&self, tx: Transaction) -> Result<Digest, ChainError> {
        self.shared.accept(tx).map(|(h, _)| h)
    }
}

/// Checks the settings and opens the node's stores: its state, without the engine.
fn open_shared(settings: &NodeSettings) -> Result<Arc<Shared>, NodeError> {
    let genesis = settings.genesis.clone();
    if settings.misbehaviour != Misbehaviour::default() && !cfg!(feature = "byzantine") {
        return Err(NodeError::Config(
            "this build cannot misbehave (built without the byzantine feature); remove [misbehaviour] from the node configuration".into(),
        ));
    }
    if settings.key.algorithm() != genesis.signature_alg {
        return Err(NodeError::WrongScheme {
            key: settings.key.algorithm(),
            genesis: genesis.signature_alg,
        });
    }
    let alg = genesis.hash_alg;
    let pk = settings.key.public_key_hex();
    std::fs::create_dir_all(&settings.data_dir).map_err(state_err)?;
    let store = BlockStore::open(&settings.data_dir.join("blocks.redb"))?;
    let store_head = store.head()?;
    let sets = ValidatorSetHistory::from_changes(&genesis, &store.validator_set_changes()?)
        .map_err(state_err)?;
    // A validator added by governance starts before the chain it syncs names it: it
    // follows the chain and votes from the height its set takes effect.
    let named = sets
        .epochs()
        .iter()
        .flat_map(|e| e.set.validators.iter())
        .find(|v| v.public_key == pk);
    match named {
        Some(v) if v.name != settings.name => {
            return Err(NodeError::Config(format!(
                "the key belongs to validator {:?}, the configuration names {:?}",
                v.name, settings.name
            )));
        }
        Some(_) => {}
        None => tracing::warn!(
            name = %settings.name,
            "this node's key is in no validator set known yet; it follows the chain until a validator-set change names it"
        ),
    }
    let genesis_hash = genesis.hash().map_err(state_err)?;
    let me_key = ValidatorKey::parse(genesis.signature_alg, &pk).map_err(NodeError::Config)?;
    let me = Address::of_key(alg, &me_key.bytes);

    let state_path = settings.data_dir.join("consensus.redb");
    let state = Arc::new(
        Database::create(&state_path)
            .map_err(|e| NodeError::State(format!("cannot open {}: {e}", state_path.display())))?,
    );
    {
        let tx = state.begin_write().map_err(state_err)?;
        tx.open_table(UNDECIDED).map_err(state_err)?;
        tx.open_table(CERTIFICATES).map_err(state_err)?;
        tx.commit().map_err(state_err)?;
    }
    let shared = Arc::new(Shared {
        genesis,
        genesis_hash,
        alg,
        sets: Mutex::new(sets),
        name: settings.name.clone(),
        me,
        key: settings.key.clone(),
        store,
        record: Arc::new(SignedRecord::open(state.clone()).map_err(state_err)?),
        state: state.clone(),
        mempool: Mutex::new(Mempool::default()),
        final_head: watch::channel(0).0,
        committed_head: watch::channel(store_head).0,
        merging: Mutex::new(()),
        halted: watch::channel(None).0,
        peers: settings.peers.clone(),
        forwarding: Forwarding::start(&settings.peers, settings.block_interval),
        misbehaviour: settings.misbehaviour.clone(),
        observed: Mutex::new(Default::default()),
    });
    shared.refresh_final_head()?;
    Ok(shared)
}

#[async_trait::async_trait]
impl ChainClient for ConsortiumNode {
    fn genesis(&self) -> &Genesis {
        &self.shared.genesis
    }

    async fn submit(&self, tx: Transaction) -> Result<Digest, ChainError> {
        let (hash, new) = self.shared.accept(tx.clone())?;
        if new {
            // Every validator's mempool gets it, so whoever proposes next includes it.
            self.shared.forwarding.pass_on(tx);
        }
        Ok(hash)
    }

    async fn locate(&self, tx_hash: &Digest) -> Result<Option<TxLocation>, ChainError> {
        let loc = self
            .shared
            .store
            .locate(tx_hash)
            .map_err(|e| ChainError::Store(e.to_string()))?;
        // Receipts are built from final blocks only.
        Ok(loc.filter(|l| l.height <= *self.shared.final_head.borrow()))
    }

    async fn block(&self, height: u64) -> Result<Option<CommittedBlock>, ChainError> {
        self.shared
            .store
            .block(height)
            .map_err(|e| ChainError::Store(e.to_string()))
    }

    async fn misbehaviour(&self) -> Vec<chain_core::NodeMisbehaviour> {
        vec![chain_core::NodeMisbehaviour {
            node: self.shared.name.clone(),
            reports: Ok(self.observed_misbehaviour()),
        }]
    }

    async fn head(&self) -> Result<u64, ChainError> {
        Ok(*self.shared.final_head.borrow())
    }

    async fn validator_set_changes(&self) -> Result<Vec<CommittedChange>, ChainError> {
        let final_head = *self.shared.final_head.borrow();
        Ok(self
            .shared
            .sets()
            .committed_changes()
            .into_iter()
            .filter(|c| c.committed_height <= final_head)
            .collect())
    }

    async fn wait_for_block_after(&self, height: u64) {
        let mut rx = self.shared.final_head.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|h| *h > height)).await;
    }
}
