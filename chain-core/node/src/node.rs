//! One consortium validator: Malachite orders blocks, this node builds and checks them,
//! commits decided blocks to its block store, attests them, and collects the other validators'
//! attestations until more than 2/3 of the power has signed (the finality receipts need).

use crate::blocks::{
    MAX_BLOCK_TRANSACTIONS, Parent, build_block, check_transaction, decode_block, encode_block,
    validate_block,
};
use crate::codec::{WireCertificate, WireCodec};
use crate::context::{
    Address, BlockId, ChainContext, Height, ProposalPart, ValidatorKey, ValidatorSet,
};
use crate::signing::{ChainSigner, ChainVerifier};
use chain_core::attestation::{attest, verify_attestation};
use chain_core::block::{Block, CommittedBlock, Transaction};
use chain_core::chain::{ChainClient, ChainError, TxLocation};
use chain_core::governance::{CommittedChange, GovernanceError, ValidatorSetHistory};
use chain_core::keys::SigningKey;
use chain_core::store::BlockStore;
use chain_core::{Attestation, Digest, Genesis, HashAlg, ValidatorSetChange};
use malachitebft_app::config::{
    ConsensusConfig, DiscoveryConfig, P2pConfig, PubSubProtocol, ValuePayload, ValueSyncConfig,
};
use malachitebft_app::engine::host::{HeightParams, Next, SyncedValueOutcome};
use malachitebft_app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app::types::MisbehaviorEvidence;
use malachitebft_app::types::core::{
    CommitCertificate, ExtendedCommitCertificate, LinearTimeouts, Round, Validity, VoteExtensions,
};
use malachitebft_app::types::{LocallyProposedValue, PeerId, ProposedValue};
use malachitebft_app_channel::{
    AppMsg, Channels, ConsensusContext, NetworkContext, NetworkIdentity, NetworkMsg,
    RequestContext, SyncContext, WalContext,
};
use redb::{Database, ReadableDatabase, TableDefinition};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Blocks proposed or received but not yet decided, by hash: a proposer must be able to
/// stream its locked block again after a restart.
const UNDECIDED: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("undecided_blocks");
/// The library's commit certificate of each decided height, served to validators catching up.
const CERTIFICATES: TableDefinition<u64, &[u8]> = TableDefinition::new("commit_certificates");

/// Size of one proposal data part.
const PART_BYTES: usize = 256 * 1024;

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
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedMisbehaviour {
    pub validator: String,
    pub height: u64,
    /// `conflicting-votes`, `conflicting-proposals` or `invalid-proposal`.
    pub kind: String,
    pub detail: String,
}

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

fn state_err<E: std::fmt::Display>(e: E) -> NodeError {
    NodeError::State(e.to_string())
}

/// The libp2p peer id of a node whose transport secret is `secret`.
pub fn peer_id(secret: &[u8; 32]) -> Result<String, NodeError> {
    let kp = malachitebft_app::types::Keypair::ed25519_from_bytes(*secret)
        .map_err(|e| NodeError::Config(e.to_string()))?;
    Ok(kp.public().to_peer_id().to_string())
}

#[derive(Default)]
struct Mempool {
    order: Vec<(Digest, Transaction)>,
    seen: HashSet<Digest>,
}

struct Shared {
    genesis: Genesis,
    genesis_hash: Digest,
    alg: HashAlg,
    /// The validator sets from genesis, extended as changes are committed.
    sets: Mutex<ValidatorSetHistory>,
    name: String,
    me: Address,
    key: Arc<SigningKey>,
    store: BlockStore,
    state: Database,
    mempool: Mutex<Mempool>,
    /// Highest height up to which every block holds an attestation quorum.
    final_head: watch::Sender<u64>,
    /// Wakes the attestation collector when a block is committed.
    committed: Notify,
    peers: Vec<Peer>,
    http: ureq::Agent,
    misbehaviour: Misbehaviour,
    observed: Mutex<std::collections::VecDeque<ObservedMisbehaviour>>,
}

/// A running consortium validator.
pub struct ConsortiumNode {
    shared: Arc<Shared>,
}

impl ConsortiumNode {
    /// Opens the node's stores, starts the consensus engine and the tasks that drive it.
    pub async fn start(settings: NodeSettings) -> Result<Arc<ConsortiumNode>, NodeError> {
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

        let state =
            Database::create(settings.data_dir.join("consensus.redb")).map_err(state_err)?;
        {
            let tx = state.begin_write().map_err(state_err)?;
            tx.open_table(UNDECIDED).map_err(state_err)?;
            tx.open_table(CERTIFICATES).map_err(state_err)?;
            tx.commit().map_err(state_err)?;
        }
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let shared = Arc::new(Shared {
            genesis,
            genesis_hash,
            alg,
            sets: Mutex::new(sets),
            name: settings.name.clone(),
            me,
            key: settings.key.clone(),
            store,
            state,
            mempool: Mutex::new(Mempool::default()),
            final_head: watch::channel(0).0,
            committed: Notify::new(),
            peers: settings.peers.clone(),
            http,
            misbehaviour: settings.misbehaviour.clone(),
            observed: Mutex::new(Default::default()),
        });
        shared.refresh_final_head()?;

        let channels = start_engine(&shared, &settings).await?;
        let host = Host {
            shared: shared.clone(),
            block_interval: settings.block_interval,
            current: Height(0),
            streams: HashMap::new(),
            early: BTreeMap::new(),
        };
        tokio::spawn(host.run(channels));
        tokio::spawn(collect_attestations(shared.clone()));
        Ok(Arc::new(ConsortiumNode { shared }))
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

async fn start_engine(
    shared: &Arc<Shared>,
    settings: &NodeSettings,
) -> Result<Channels<ChainContext>, NodeError> {
    let keypair = malachitebft_app::types::Keypair::ed25519_from_bytes(settings.p2p_secret)
        .map_err(|e| NodeError::Config(format!("p2p key: {e}")))?;
    let listen = settings
        .listen
        .parse()
        .map_err(|e| NodeError::Config(format!("listen address {:?}: {e}", settings.listen)))?;
    let persistent_peers = settings
        .peers
        .iter()
        .map(|p| {
            p.p2p
                .parse()
                .map_err(|e| NodeError::Config(format!("peer {:?} address: {e}", p.name)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let config = EngineConfig {
        moniker: settings.name.clone(),
        consensus: ConsensusConfig {
            p2p: P2pConfig {
                listen_addr: listen,
                persistent_peers,
                // Outbound only to the configured peers, no discovery; inbound connections
                // from any peer that authenticates, so that a validator added by governance
                // joins without the others restarting. Consensus messages count only when
                // signed by a validator of the height's set.
                persistent_peers_only: false,
                discovery: DiscoveryConfig {
                    enabled: false,
                    ..Default::default()
                },
                protocol: PubSubProtocol::default(),
                ..Default::default()
            },
            value_payload: ValuePayload::ProposalAndParts,
            ..Default::default()
        },
        value_sync: ValueSyncConfig {
            enabled: true,
            status_update_interval: Duration::from_millis(500),
            ..Default::default()
        },
    };
    let identity =
        NetworkIdentity::new(settings.name.clone(), keypair, Some(shared.me.to_string()));
    let chain_id = shared.genesis.chain_id.clone();
    let signer = ChainSigner {
        chain_id: chain_id.clone(),
        key: settings.key.clone(),
    };
    let wal = WalContext::new(
        settings.data_dir.join("wal").join("consensus.wal"),
        WireCodec,
    );
    let consensus = ConsensusContext::new_validator(
        shared.me,
        Box::new(ChainVerifier {
            chain_id: chain_id.clone(),
        }),
        Box::new(signer.clone()),
    );
    #[cfg(feature = "byzantine")]
    if settings.misbehaviour.equivocate_votes {
        use malachitebft_engine_byzantine::{ByzantineConfig, Trigger};
        tracing::warn!("misbehaving: every vote is followed by a conflicting one");
        let byzantine = malachitebft_app_channel::ByzantineContext {
            identity,
            codec: WireCodec,
            config: ByzantineConfig::default().with_equivocate_votes(Trigger::Always),
            signer: Box::new(signer),
            address: shared.me,
            conflicting_value_fn: None,
            // None: a vote for a block is contradicted by a nil vote.
            conflicting_vote_value_fn: None,
        };
        let (channels, _engine) =
            malachitebft_app_channel::EngineBuilder::new(ChainContext, config)
                .with_default_wal(wal)
                .with_byzantine_network(byzantine)
                .await
                .map_err(|e| NodeError::Engine(format!("{e:#}")))?
                .with_default_sync(SyncContext::new(WireCodec))
                .with_default_consensus(consensus)
                .with_default_request(RequestContext::new(100))
                .build()
                .await
                .map_err(|e| NodeError::Engine(format!("{e:#}")))?;
        return Ok(channels);
    }
    let (channels, _engine) = malachitebft_app_channel::start_engine(
        ChainContext,
        config,
        wal,
        NetworkContext::new(identity, WireCodec),
        consensus,
        SyncContext::new(WireCodec),
        RequestContext::new(100),
    )
    .await
    .map_err(|e| NodeError::Engine(format!("{e:#}")))?;
    Ok(channels)
}

/// The library's view of our configuration.
#[derive(Clone, Debug)]
struct EngineConfig {
    moniker: String,
    consensus: ConsensusConfig,
    value_sync: ValueSyncConfig,
}

impl malachitebft_app::config::NodeConfig for EngineConfig {
    fn moniker(&self) -> &str {
        &self.moniker
    }
    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }
    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }
    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }
    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.value_sync
    }
}

impl Shared {
    fn mempool(&self) -> std::sync::MutexGuard<'_, Mempool> {
        // Every pending transaction is resubmitted by its owner until committed, so a poisoned
        // lock loses nothing that matters.
        self.mempool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns the hash and whether the transaction is new to this node.
    fn accept(&self, tx: Transaction) -> Result<(Digest, bool), ChainError> {
        check_transaction(&self.genesis.chain_id, &tx).map_err(ChainError::Rejected)?;
        if let Transaction::ValidatorSetChange(c) = &tx {
            let next = self
                .store
                .head()
                .map_err(|e| ChainError::Store(e.to_string()))?
                + 1;
            self.check_change(c, next)
                .map_err(|e| ChainError::Rejected(e.to_string()))?;
        }
        let hash = tx
            .hash(self.alg)
            .map_err(|e| ChainError::Rejected(e.to_string()))?;
        if self
            .store
            .locate(&hash)
            .map_err(|e| ChainError::Store(e.to_string()))?
            .is_some()
        {
            return Ok((hash, false));
        }
        let mut pool = self.mempool();
        let new = pool.seen.insert(hash);
        if new {
            pool.order.push((hash, tx));
        }
        Ok((hash, new))
    }

    fn sets(&self) -> std::sync::MutexGuard<'_, ValidatorSetHistory> {
        // The history is only ever extended by a verified change; a poisoned lock still holds
        // a consistent history.
        self.sets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `change` may be committed in the block at `height`.
    fn check_change(
        &self,
        change: &ValidatorSetChange,
        height: u64,
    ) -> Result<(), GovernanceError> {
        self.sets().check_inclusion(change, height)
    }

    fn params(&self, height: u64, block_interval: Duration) -> HeightParams<ChainContext> {
        let timeouts = LinearTimeouts {
            propose: Duration::from_millis(1500),
            propose_delta: Duration::from_millis(250),
            prevote: Duration::from_millis(500),
            prevote_delta: Duration::from_millis(250),
            precommit: Duration::from_millis(500),
            precommit_delta: Duration::from_millis(250),
            rebroadcast: Duration::from_millis(2500),
            max_timeout: Duration::from_secs(30),
        };
        let set = {
            let sets = self.sets();
            ValidatorSet::from_chain(self.alg, self.genesis.signature_alg, &sets.at(height).set)
        };
        // Every set in the history was validated (genesis rules), so it converts.
        let set = set.unwrap_or_else(|err| {
            tracing::error!(%err, height, "validator set does not convert; keeping the genesis set");
            ValidatorSet::from_chain(self.alg, self.genesis.signature_alg, &self.genesis.validator_set)
                .unwrap_or_default()
        });
        HeightParams::new(set, timeouts, Some(block_interval))
    }

    /// The committed block `height` builds on.
    fn parent_of(&self, height: u64) -> Result<(Digest, Option<String>), NodeError> {
        if height <= 1 {
            return Ok((self.genesis_hash, None));
        }
        let prev = self
            .store
            .block(height - 1)?
            .ok_or_else(|| NodeError::State(format!("block {} is not committed", height - 1)))?;
        Ok((prev.hash, Some(prev.block.header.time)))
    }

    fn observe(&self, validator: String, height: u64, kind: &str, detail: String) {
        tracing::warn!(%validator, height, kind, %detail, "validator misbehaved");
        let mut seen = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() == MAX_OBSERVATIONS {
            seen.pop_front();
        }
        seen.push_back(ObservedMisbehaviour {
            validator,
            height,
            kind: kind.to_string(),
            detail,
        });
    }

    /// The name of the validator with consensus address `address` at `height`.
    fn validator_name(&self, height: u64, address: &Address) -> String {
        let set = self.sets().at(height).set.clone();
        set.validators
            .iter()
            .find(|v| {
                ValidatorKey::parse(self.genesis.signature_alg, &v.public_key)
                    .is_ok_and(|k| Address::of_key(self.alg, &k.bytes) == *address)
            })
            .map(|v| v.name.clone())
            .unwrap_or_else(|| address.to_string())
    }

    /// Records the evidence the library set aside while deciding `height`.
    fn record_evidence(&self, height: u64, evidence: &MisbehaviorEvidence<ChainContext>) {
        if evidence.is_empty() {
            return;
        }
        let set = self.sets().at(height).set.clone();
        for v in &set.validators {
            let Ok(key) = ValidatorKey::parse(self.genesis.signature_alg, &v.public_key) else {
                continue;
            };
            let address = Address::of_key(self.alg, &key.bytes);
            if let Some(votes) = evidence.votes.get(&address) {
                self.observe(
                    v.name.clone(),
                    height,
                    "conflicting-votes",
                    format!(
                        "{} pair(s) of signed votes for different values in one round",
                        votes.len()
                    ),
                );
            }
            if let Some(proposals) = evidence.proposals.get(&address) {
                self.observe(
                    v.name.clone(),
                    height,
                    "conflicting-proposals",
                    format!(
                        "{} pair(s) of signed proposals in one round",
                        proposals.len()
                    ),
                );
            }
        }
    }

    fn set_hash_at(&self, height: u64) -> Digest {
        self.sets().at(height).hash
    }

    fn is_committed(&self, hash: &Digest) -> bool {
        matches!(self.store.locate(hash), Ok(Some(_)))
    }

    /// Checks a block proposed (or synced) for `height`; `None` when the node cannot judge it
    /// yet because it has not committed the parent.
    fn judge(&self, height: u64, block: &Block, fresh: bool) -> Option<Result<Digest, String>> {
        let Ok((hash, time)) = self.parent_of(height) else {
            return None;
        };
        let parent = Parent {
            chain_id: &self.genesis.chain_id,
            hash_alg: self.alg,
            height: height - 1,
            hash,
            time: time.as_deref(),
            validator_set_hash: self.set_hash_at(height),
        };
        let set = self.sets().at(height).set.clone();
        Some(
            validate_block(
                &parent,
                block,
                |n| set.get(n).is_some(),
                |h| self.is_committed(h),
                |c| self.check_change(c, height).map_err(|e| e.to_string()),
                fresh.then(chrono::Utc::now),
            )
            .map(|(hash, _)| hash)
            .map_err(|e| e.to_string()),
        )
    }

    fn save_undecided(&self, hash: &Digest, block: &Block) -> Result<(), NodeError> {
        let tx = self.state.begin_write().map_err(state_err)?;
        {
            let mut t = tx.open_table(UNDECIDED).map_err(state_err)?;
            t.insert(&hash.0, encode_block(block).as_slice())
                .map_err(state_err)?;
        }
        tx.commit().map_err(state_err)
    }

    fn undecided(&self, hash: &Digest) -> Result<Option<Block>, NodeError> {
        let tx = self.state.begin_read().map_err(state_err)?;
        let t = tx.open_table(UNDECIDED).map_err(state_err)?;
        match t.get(&hash.0).map_err(state_err)? {
            Some(v) => Ok(Some(decode_block(v.value()).map_err(state_err)?)),
            None => Ok(None),
        }
    }

    /// Commits a decided block, then — and only then — attests it. A height is decided once,
    /// so this node never attests two blocks at one height.
    fn commit(
        &self,
        certificate: &ExtendedCommitCertificate<ChainContext>,
    ) -> Result<(), NodeError> {
        let height = certificate.height.0;
        let hash = certificate.value_id.digest();
        if let Some(existing) = self.store.block(height)? {
            if existing.hash != hash {
                // Would mean the library decided twice at one height: refuse to go on.
                return Err(NodeError::State(format!(
                    "height {height} already holds block {}, consensus decided {hash}",
                    existing.hash
                )));
            }
            return Ok(());
        }
        let block = self
            .undecided(&hash)?
            .ok_or_else(|| NodeError::State(format!("decided block {hash} is unknown")))?;
        let tx_hashes = block
            .transactions
            .iter()
            .map(|t| t.hash(self.alg))
            .collect::<Result<Vec<_>, _>>()
            .map_err(state_err)?;
        // Only a member of the height's set attests (a validator added later, or removed,
        // follows the chain without signing).
        let member = self
            .sets()
            .at(height)
            .set
            .get(&self.name)
            .is_some_and(|v| v.public_key == self.key.public_key_hex());
        let attestations = if member {
            vec![attest(
                &self.key,
                &self.name,
                &self.genesis.chain_id,
                height,
                &hash,
            )]
        } else {
            Vec::new()
        };
        let changes: Vec<CommittedChange> = block
            .transactions
            .iter()
            .zip(&tx_hashes)
            .filter_map(|(t, h)| match t {
                Transaction::ValidatorSetChange(c) => Some(CommittedChange {
                    committed_height: height,
                    transaction_hash: *h,
                    change: c.clone(),
                }),
                Transaction::Anchor(_) => None,
            })
            .collect();
        self.store.append(
            &CommittedBlock {
                block,
                hash,
                attestations,
            },
            &tx_hashes,
        )?;
        for c in changes {
            let effective = c.change.effective_height;
            // Checked when the block was validated; a failure here is a bug worth stopping on.
            self.sets().follow(c, u64::MAX).map_err(state_err)?;
            tracing::info!(height, effective, "validator-set change committed");
        }
        {
            let tx = self.state.begin_write().map_err(state_err)?;
            {
                let mut certs = tx.open_table(CERTIFICATES).map_err(state_err)?;
                let bytes =
                    borsh::to_vec(&WireCertificate::from(certificate)).map_err(state_err)?;
                certs.insert(height, bytes.as_slice()).map_err(state_err)?;
                let mut undecided = tx.open_table(UNDECIDED).map_err(state_err)?;
                undecided.retain(|_, _| false).map_err(state_err)?;
            }
            tx.commit().map_err(state_err)?;
        }
        {
            let done: HashSet<Digest> = tx_hashes.into_iter().collect();
            let mut pool = self.mempool();
            pool.order.retain(|(h, _)| !done.contains(h));
            pool.seen.retain(|h| !done.contains(h));
        }
        tracing::debug!(height, block = %hash, "block committed and attested");
        self.refresh_final_head()?;
        self.committed.notify_one();
        Ok(())
    }

    fn certificate(
        &self,
        height: u64,
    ) -> Result<Option<ExtendedCommitCertificate<ChainContext>>, NodeError> {
        let tx = self.state.begin_read().map_err(state_err)?;
        let t = tx.open_table(CERTIFICATES).map_err(state_err)?;
        match t.get(height).map_err(state_err)? {
            Some(v) => {
                let w: WireCertificate = borsh::from_slice(v.value()).map_err(state_err)?;
                Ok(Some(w.into()))
            }
            None => Ok(None),
        }
    }

    /// Attested power of a committed block, counted the way verifiers count it.
    fn is_final(&self, block: &CommittedBlock) -> bool {
        let set = self.sets().at(block.block.header.height).set.clone();
        chain_core::receipt::block_finality(&self.genesis, &set, block).is_final
    }

    fn refresh_final_head(&self) -> Result<(), NodeError> {
        let head = self.store.head()?;
        let mut h = *self.final_head.borrow();
        while h < head {
            match self.store.block(h + 1)? {
                Some(b) if self.is_final(&b) => h += 1,
                _ => break,
            }
        }
        self.final_head.send_if_modified(|f| {
            let changed = *f != h;
            *f = h;
            changed
        });
        Ok(())
    }

    /// Adds the valid attestations among `offered` to the committed block at `height`.
    fn merge_attestations(&self, height: u64, offered: &[Attestation]) -> Result<bool, NodeError> {
        let Some(mut block) = self.store.block(height)? else {
            return Ok(false);
        };
        let set = self.sets().at(height).set.clone();
        let mut added = false;
        for att in offered {
            if block
                .attestations
                .iter()
                .any(|a| a.validator == att.validator)
            {
                continue;
            }
            let Some(v) = set.get(&att.validator) else {
                continue;
            };
            let Ok(key) =
                chain_core::keys::parse_public_key(self.genesis.signature_alg, &v.public_key)
            else {
                continue;
            };
            if verify_attestation(&key, att, &self.genesis.chain_id, height, &block.hash).is_ok() {
                block.attestations.push(att.clone());
                added = true;
            }
        }
        if added {
            self.store.set_attestations(height, &block.attestations)?;
        }
        Ok(added)
    }

    /// Fetches a peer's copy of block `height` and returns its attestations if it is the same
    /// block as ours.
    fn peer_attestations(&self, peer: &Peer, height: u64, hash: &Digest) -> Vec<Attestation> {
        let url = format!("{}/chain/blocks/{height}", peer.api);
        let Ok(mut resp) = self.http.get(&url).call() else {
            return Vec::new();
        };
        if resp.status() != 200 {
            return Vec::new();
        }
        let Ok(detail) = resp.body_mut().read_json::<serde_json::Value>() else {
            return Vec::new();
        };
        let Some(block) = detail.get("block") else {
            return Vec::new();
        };
        match serde_json::from_value::<CommittedBlock>(block.clone()) {
            Ok(b) if b.hash == *hash => b.attestations,
            _ => Vec::new(),
        }
    }

    fn forward(&self, tx: &Transaction) {
        for peer in &self.peers {
            let url = format!("{}/chain/transactions", peer.api);
            let r = self
                .http
                .post(&url)
                .header("x-veritrace-forwarded", "1")
                .send_json(tx);
            if let Err(err) = r {
                tracing::debug!(peer = %peer.name, %err, "passing a transaction on failed");
            }
        }
    }
}

/// Pulls the other validators' attestations for every committed block that is not final yet.
async fn collect_attestations(shared: Arc<Shared>) {
    loop {
        let final_head = *shared.final_head.borrow();
        let head = shared.store.head().unwrap_or(final_head);
        if head > final_head {
            let s = shared.clone();
            let r = tokio::task::spawn_blocking(move || -> Result<(), NodeError> {
                for height in (final_head + 1)..=head.min(final_head + 64) {
                    let Some(block) = s.store.block(height)? else {
                        break;
                    };
                    if s.is_final(&block) {
                        continue;
                    }
                    for peer in &s.peers {
                        if block.attestations.iter().any(|a| a.validator == peer.name) {
                            continue;
                        }
                        let offered = s.peer_attestations(peer, height, &block.hash);
                        s.merge_attestations(height, &offered)?;
                    }
                }
                s.refresh_final_head()
            })
            .await;
            match r {
                Ok(Err(err)) => tracing::warn!(%err, "collecting attestations failed"),
                Err(err) => tracing::warn!(%err, "attestation task failed"),
                Ok(Ok(())) => {}
            }
        }
        let pending = shared.store.head().unwrap_or(0) > *shared.final_head.borrow();
        let wait = if pending {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        let _ = tokio::time::timeout(wait, shared.committed.notified()).await;
    }
}

/// A proposal being received part by part.
#[derive(Default)]
struct PartialStream {
    parts: BTreeMap<u64, ProposalPart>,
    fin: Option<u64>,
}

/// A complete proposal received for a height this node has not reached yet.
struct EarlyProposal {
    round: Round,
    valid_round: Round,
    proposer: Address,
    bytes: Vec<u8>,
}

struct Host {
    shared: Arc<Shared>,
    block_interval: Duration,
    current: Height,
    streams: HashMap<(PeerId, StreamId), PartialStream>,
    early: BTreeMap<Height, Vec<EarlyProposal>>,
}

impl Host {
    async fn run(mut self, mut channels: Channels<ChainContext>) {
        while let Some(msg) = channels.consensus.recv().await {
            if let Err(err) = self.handle(msg, &channels).await {
                tracing::error!(%err, "consensus host");
            }
        }
        tracing::error!("the consensus engine stopped");
    }

    async fn handle(
        &mut self,
        msg: AppMsg<ChainContext>,
        channels: &Channels<ChainContext>,
    ) -> Result<(), NodeError> {
        let s = self.shared.clone();
        match msg {
            AppMsg::ConsensusReady { reply } => {
                let start = Height(s.store.head()? + 1);
                self.current = start;
                tracing::info!(height = %start, "consensus ready");
                let _ = reply.send((start, s.params(start.0, self.block_interval)));
            }
            AppMsg::StartedRound {
                height,
                round,
                reply_value,
                ..
            } => {
                self.current = height;
                // Streams of past heights never complete now: drop them (a stream id starts
                // with the big-endian height it proposes for).
                self.streams.retain(|(_, id), _| {
                    let b = id.to_bytes();
                    b.get(..8)
                        .and_then(|h| <[u8; 8]>::try_from(h).ok())
                        .is_some_and(|h| u64::from_be_bytes(h) >= height.0)
                });
                let mut values = Vec::new();
                for p in self.early.remove(&height).unwrap_or_default() {
                    if let Some(v) =
                        self.proposed_value(height, p.round, p.valid_round, p.proposer, &p.bytes)?
                    {
                        values.push(v);
                    }
                }
                self.early.retain(|h, _| *h > height);
                let _ = round;
                let _ = reply_value.send(values);
            }
            AppMsg::GetValue {
                height,
                round,
                reply,
                ..
            } => {
                let (block, hash) = self.build(height)?;
                s.save_undecided(&hash, &block)?;
                let value = LocallyProposedValue::new(height, round, BlockId::from(hash));
                let _ = reply.send(value);
                self.stream(channels, height, round, Round::Nil, &block)
                    .await;
            }
            AppMsg::RestreamProposal {
                height,
                round,
                valid_round,
                value_id,
                ..
            } => {
                if let Some(block) = s.undecided(&value_id.digest())? {
                    self.stream(channels, height, round, valid_round, &block)
                        .await;
                }
            }
            AppMsg::ReceivedProposalPart {
                from,
                published_by,
                part,
                reply,
            } => {
                // Parts of one proposal can reach us through different neighbours: group them
                // by their publisher, not by the peer that relayed each one.
                let value = self.received_part(published_by.unwrap_or(from), part)?;
                let _ = reply.send(value);
            }
            AppMsg::Decided {
                certificate,
                extensions,
                reply,
            } => {
                let cert = ExtendedCommitCertificate::from_commit_certificate_and_extensions(
                    certificate,
                    extensions,
                );
                let r = s.commit(&cert);
                let _ = reply.send(());
                r?;
            }
            AppMsg::Finalized {
                certificate,
                evidence,
                reply,
                ..
            } => {
                s.record_evidence(certificate.height.0, &evidence);
                let next = self.finalized(certificate, VoteExtensions::default());
                let _ = reply.send(next);
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let mut values = Vec::new();
                for h in range.start().0..=range.end().0 {
                    let (Some(b), Some(cert)) = (s.store.block(h)?, s.certificate(h)?) else {
                        break;
                    };
                    values.push(malachitebft_app::types::sync::RawDecidedValue::new(
                        encode_block(&b.block).into(),
                        cert,
                    ));
                }
                let _ = reply.send(values);
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                let _ = reply.send(Height(1));
            }
            AppMsg::ProcessSyncedValue {
                height,
                round,
                proposer,
                value_bytes,
                reply,
            } => {
                let outcome = match decode_block(&value_bytes) {
                    Err(_) => SyncedValueOutcome::PeerFault,
                    Ok(block) => match s.judge(height.0, &block, false) {
                        None => SyncedValueOutcome::LocalTransientError,
                        Some(Err(reason)) => {
                            tracing::warn!(%height, %reason, "a peer served an invalid block");
                            SyncedValueOutcome::PeerFault
                        }
                        Some(Ok(hash)) => {
                            s.save_undecided(&hash, &block)?;
                            SyncedValueOutcome::Verdict(ProposedValue {
                                height,
                                round,
                                valid_round: Round::Nil,
                                // The certificate and our own check of the block are what
                                // count; the proposer is informative only.
                                proposer,
                                value: BlockId::from(hash),
                                validity: Validity::Valid,
                            })
                        }
                    },
                };
                let _ = reply.send(outcome);
            }
            AppMsg::ExtendVote { reply, .. } => {
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtensions { reply, .. } => {
                let _ = reply.send(Vec::new());
            }
        }
        Ok(())
    }

    fn finalized(
        &mut self,
        certificate: CommitCertificate<ChainContext>,
        extensions: VoteExtensions<ChainContext>,
    ) -> Next<ChainContext> {
        let s = &self.shared;
        let height = certificate.height;
        let cert = ExtendedCommitCertificate::from_commit_certificate_and_extensions(
            certificate,
            extensions,
        );
        match s.commit(&cert) {
            Ok(()) => {
                self.current = Height(height.0 + 1);
                Next::Start(self.current, s.params(self.current.0, self.block_interval))
            }
            Err(err) => {
                tracing::error!(%err, %height, "committing the decided block failed; restarting the height");
                Next::Restart(height, s.params(height.0, self.block_interval))
            }
        }
    }

    /// Builds this node's proposal for `height` from its mempool.
    fn build(&self, height: Height) -> Result<(Block, Digest), NodeError> {
        let s = &self.shared;
        let (parent_hash, parent_time) = s.parent_of(height.0)?;
        let txs: Vec<(Digest, Transaction)> = {
            let mut pool = s.mempool();
            // Another proposer may have included some of them already.
            let committed: HashSet<Digest> = pool
                .order
                .iter()
                .filter(|(h, _)| s.is_committed(h))
                .map(|(h, _)| *h)
                .collect();
            pool.order.retain(|(h, _)| !committed.contains(h));
            pool.seen.retain(|h| !committed.contains(h));
            // At most one validator-set change, and only one this height may commit; a change
            // that can never be committed any more (too late, or approved for a replaced set)
            // leaves the mempool.
            let mut dead = HashSet::new();
            for (h, t) in &pool.order {
                if let Transaction::ValidatorSetChange(c) = t {
                    match s.check_change(c, height.0) {
                        Ok(()) | Err(GovernanceError::Pending(_)) => {}
                        Err(err) => {
                            tracing::warn!(%err, tx = %h, "dropping a validator-set change that can no longer be committed");
                            dead.insert(*h);
                        }
                    }
                }
            }
            pool.order.retain(|(h, _)| !dead.contains(h));
            pool.seen.retain(|h| !dead.contains(h));
            let mut taken = false;
            pool.order
                .iter()
                .filter(|(_, t)| match t {
                    Transaction::ValidatorSetChange(c) => {
                        let ok = !taken && s.check_change(c, height.0).is_ok();
                        taken |= ok;
                        ok
                    }
                    Transaction::Anchor(_) => true,
                })
                .take(MAX_BLOCK_TRANSACTIONS)
                .cloned()
                .collect()
        };
        let parent = Parent {
            chain_id: &s.genesis.chain_id,
            hash_alg: s.alg,
            height: height.0 - 1,
            hash: parent_hash,
            time: parent_time.as_deref(),
            validator_set_hash: s.set_hash_at(height.0),
        };
        let (mut block, mut hash) =
            build_block(&parent, &s.name, txs, chrono::Utc::now()).map_err(state_err)?;
        if s.misbehaviour.bad_transaction_root {
            // A forged root: the block hash commits to it, the transactions do not.
            block.header.transaction_root = s.alg.hash(b"forged transaction root");
            hash = block.header.hash(s.alg).map_err(state_err)?;
            tracing::warn!(height = %height, block = %hash, "misbehaving: proposing a block with a forged transaction root");
        }
        Ok((block, hash))
    }

    async fn stream(
        &self,
        channels: &Channels<ChainContext>,
        height: Height,
        round: Round,
        valid_round: Round,
        block: &Block,
    ) {
        let mut id = height.0.to_be_bytes().to_vec();
        id.extend_from_slice(&round.as_i64().to_be_bytes());
        let stream_id = StreamId::new(id.into());
        let bytes = encode_block(block);
        let mut parts = vec![ProposalPart::Init {
            height,
            round,
            valid_round,
            proposer: self.shared.me,
        }];
        parts.extend(
            bytes
                .chunks(PART_BYTES)
                .map(|c| ProposalPart::Data(c.to_vec())),
        );
        parts.push(ProposalPart::Fin);
        let n = parts.len() as u64;
        let messages = parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| StreamMessage::new(stream_id.clone(), i as u64, StreamContent::Data(p)))
            .chain(std::iter::once(StreamMessage::new(
                stream_id.clone(),
                n,
                StreamContent::Fin,
            )));
        for m in messages {
            if channels
                .network
                .send(NetworkMsg::PublishProposalPart(m))
                .await
                .is_err()
            {
                tracing::error!("the network actor is gone; the proposal was not streamed");
                return;
            }
        }
    }

    fn received_part(
        &mut self,
        from: PeerId,
        part: StreamMessage<ProposalPart>,
    ) -> Result<Option<ProposedValue<ChainContext>>, NodeError> {
        let key = (from, part.stream_id.clone());
        let entry = self.streams.entry(key.clone()).or_default();
        match part.content {
            StreamContent::Fin => entry.fin = Some(part.sequence),
            StreamContent::Data(p) => {
                // A stream is small; cap it so a faulty peer cannot grow it without bound.
                if entry.parts.len() > 4096 {
                    self.streams.remove(&key);
                    return Ok(None);
                }
                entry.parts.insert(part.sequence, p);
            }
        }
        let complete = matches!(entry.fin, Some(f) if entry.parts.len() as u64 == f);
        if !complete {
            return Ok(None);
        }
        let Some(stream) = self.streams.remove(&key) else {
            return Ok(None);
        };
        let mut parts = stream.parts.into_values();
        let Some(ProposalPart::Init {
            height,
            round,
            valid_round,
            proposer,
        }) = parts.next()
        else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        for p in parts {
            match p {
                ProposalPart::Data(d) => bytes.extend_from_slice(&d),
                ProposalPart::Fin => break,
                ProposalPart::Init { .. } => return Ok(None),
            }
        }
        if height < self.current {
            return Ok(None);
        }
        if height > self.current {
            self.early.entry(height).or_default().push(EarlyProposal {
                round,
                valid_round,
                proposer,
                bytes,
            });
            return Ok(None);
        }
        self.proposed_value(height, round, valid_round, proposer, &bytes)
    }

    /// Judges a complete proposal for the current height.
    fn proposed_value(
        &self,
        height: Height,
        round: Round,
        valid_round: Round,
        proposer: Address,
        bytes: &[u8],
    ) -> Result<Option<ProposedValue<ChainContext>>, NodeError> {
        let s = &self.shared;
        let Ok(block) = decode_block(bytes) else {
            tracing::warn!(%height, %round, "undecodable proposal");
            return Ok(None);
        };
        let hash = block.header.hash(s.alg).map_err(state_err)?;
        let validity = match s.judge(height.0, &block, valid_round == Round::Nil) {
            None => return Ok(None),
            Some(Ok(_)) => Validity::Valid,
            Some(Err(reason)) => {
                s.observe(
                    s.validator_name(height.0, &proposer),
                    height.0,
                    "invalid-proposal",
                    format!("round {round}, block {hash}: {reason}"),
                );
                Validity::Invalid
            }
        };
        if validity == Validity::Valid {
            s.save_undecided(&hash, &block)?;
        }
        Ok(Some(ProposedValue {
            height,
            round,
            valid_round,
            proposer,
            value: BlockId::from(hash),
            validity,
        }))
    }
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
            let s = self.shared.clone();
            tokio::task::spawn_blocking(move || s.forward(&tx));
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
