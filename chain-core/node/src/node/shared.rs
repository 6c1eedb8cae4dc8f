use super::forwarding::Forwarding;
use super::{MAX_OBSERVATIONS, Misbehaviour, NodeError, ObservedMisbehaviour, Peer, state_err};
use crate::blocks::{Parent, check_transaction, decode_block, encode_block, validate_block};
use crate::context::{Address, ChainContext, Height, ValidatorKey, ValidatorSet};
use crate::signing::SignedRecord;
use chain_core::block::{Block, Transaction};
use chain_core::chain::ChainError;
use chain_core::governance::{GovernanceError, ValidatorSetHistory};
use chain_core::keys::SigningKey;
use chain_core::store::BlockStore;
use chain_core::{Digest, Genesis, HashAlg, ValidatorSetChange};
use malachitebft_app::engine::host::HeightParams;
use malachitebft_app::types::MisbehaviorEvidence;
use malachitebft_app::types::core::{LinearTimeouts, Round};
use redb::{Database, ReadableDatabase, TableDefinition};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Blocks proposed or received but not yet decided, by hash: a proposer must be able to
/// stream its locked block again after a restart.
pub(super) const UNDECIDED: TableDefinition<&[u8; 32], &[u8]> =
    TableDefinition::new("undecided_blocks");
/// The library's commit certificate of each decided height, served to validators catching up.
pub(super) const CERTIFICATES: TableDefinition<u64, &[u8]> =
    TableDefinition::new("commit_certificates");
#[derive(Default)]
pub(super) struct Mempool {
    pub(super) order: Vec<(Digest, Transaction)>,
    pub(super) seen: HashSet<Digest>,
}

pub(super) struct Shared {
    pub(super) genesis: Genesis,
    pub(super) genesis_hash: Digest,
    pub(super) alg: HashAlg,
    /// The validator sets from genesis, extended as changes are committed.
    pub(super) sets: Mutex<ValidatorSetHistory>,
    pub(super) name: String,
    pub(super) me: Address,
    pub(super) key: Arc<SigningKey>,
    pub(super) store: BlockStore,
    pub(super) state: Arc<Database>,
    /// What this validator signed at heights not yet committed (in `state`).
    pub(super) record: Arc<SignedRecord>,
    pub(super) mempool: Mutex<Mempool>,
    /// Highest height up to which every block holds an attestation quorum.
    pub(super) final_head: watch::Sender<u64>,
    /// Height of the last block committed locally: wakes the attestation workers.
    pub(super) committed_head: watch::Sender<u64>,
    /// Held while attestations are merged into a stored block.
    pub(super) merging: Mutex<()>,
    /// Why this node stopped taking part in consensus, once it has.
    pub(super) halted: watch::Sender<Option<String>>,
    pub(super) peers: Vec<Peer>,
    pub(super) forwarding: Forwarding,
    pub(super) misbehaviour: Misbehaviour,
    pub(super) observed: Mutex<std::collections::VecDeque<ObservedMisbehaviour>>,
}

impl Shared {
    pub(super) fn mempool(&self) -> std::sync::MutexGuard<'_, Mempool> {
        // Every pending transaction is resubmitted by its owner until committed, so a poisoned
        // lock loses nothing that matters.
        self.mempool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns the hash and whether the transaction is new to this node.
    pub(super) fn accept(&self, tx: Transaction) -> Result<(Digest, bool), ChainError> {
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

    /// Stops this node taking part in consensus: something it cannot safely go on from (a
    /// commit that failed). Its owner sees it through `ConsortiumNode::halted`.
    pub(super) fn halt(&self, reason: String) {
        tracing::error!(%reason, "this validator stops");
        self.halted.send_if_modified(|h| {
            let first = h.is_none();
            if first {
                *h = Some(reason);
            }
            first
        });
    }

    pub(super) fn sets(&self) -> std::sync::MutexGuard<'_, ValidatorSetHistory> {
        // The history is only ever extended by a verified change; a poisoned lock still holds
        // a consistent history.
        self.sets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `change` may be committed in the block at `height`.
    pub(super) fn check_change(
        &self,
        change: &ValidatorSetChange,
        height: u64,
    ) -> Result<(), GovernanceError> {
        self.sets().check_inclusion(change, height)
    }

    pub(super) fn params(
        &self,
        height: u64,
        block_interval: Duration,
    ) -> HeightParams<ChainContext> {
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
        let set = self.validator_set_at(height);
        HeightParams::new(set, timeouts, Some(block_interval))
    }

    /// The consensus validator set of `height`, carrying the height's proposer ranking
    /// (priorities walked from the height its set took effect; docs/adr/0001 §4).
    pub(super) fn validator_set_at(&self, height: u64) -> ValidatorSet {
        let set = {
            let sets = self.sets();
            let epoch = sets.at(height);
            ValidatorSet::from_chain(self.alg, self.genesis.signature_alg, &epoch.set)
                .map(|set| set.scheduled(height.saturating_sub(epoch.from_height)))
        };
        // Every set in the history was validated (genesis rules), so it converts.
        set.unwrap_or_else(|err| {
            tracing::error!(%err, height, "validator set does not convert; keeping the genesis set");
            ValidatorSet::from_chain(self.alg, self.genesis.signature_alg, &self.genesis.validator_set)
                .map(|set| set.scheduled(height.saturating_sub(1)))
                .unwrap_or_default()
        })
    }

    /// The validator whose turn it is to propose at `height` and `round`.
    pub(super) fn scheduled_proposer(&self, height: u64, round: Round) -> Option<Address> {
        use malachitebft_app::types::core::Context;
        let set = self.validator_set_at(height);
        if set.validators.is_empty() {
            return None;
        }
        Some(
            ChainContext
                .select_proposer(&set, Height(height), round)
                .address,
        )
    }

    /// The committed block `height` builds on.
    pub(super) fn parent_of(&self, height: u64) -> Result<(Digest, Option<String>), NodeError> {
        if height <= 1 {
            return Ok((self.genesis_hash, None));
        }
        let prev = self
            .store
            .block(height - 1)?
            .ok_or_else(|| NodeError::State(format!("block {} is not committed", height - 1)))?;
        Ok((prev.hash, Some(prev.block.header.time)))
    }

    pub(super) fn observe(&self, validator: String, height: u64, kind: &str, detail: String) {
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
    pub(super) fn validator_name(&self, height: u64, address: &Address) -> String {
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
    pub(super) fn record_evidence(
        &self,
        height: u64,
        evidence: &MisbehaviorEvidence<ChainContext>,
    ) {
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

    pub(super) fn set_hash_at(&self, height: u64) -> Digest {
        self.sets().at(height).hash
    }

    pub(super) fn is_committed(&self, hash: &Digest) -> bool {
        matches!(self.store.locate(hash), Ok(Some(_)))
    }

    /// Checks a block proposed (or synced) for `height`; `None` when the node cannot judge it
    /// yet because it has not committed the parent.
    pub(super) fn judge(
        &self,
        height: u64,
        block: &Block,
        fresh: bool,
    ) -> Option<Result<Digest, String>> {
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

    pub(super) fn save_undecided(&self, hash: &Digest, block: &Block) -> Result<(), NodeError> {
        let tx = self.state.begin_write().map_err(state_err)?;
        {
            let mut t = tx.open_table(UNDECIDED).map_err(state_err)?;
            t.insert(&hash.0, encode_block(block).as_slice())
                .map_err(state_err)?;
        }
        tx.commit().map_err(state_err)
    }

    pub(super) fn undecided(&self, hash: &Digest) -> Result<Option<Block>, NodeError> {
        let tx = self.state.begin_read().map_err(state_err)?;
        let t = tx.open_table(UNDECIDED).map_err(state_err)?;
        match t.get(&hash.0).map_err(state_err)? {
            Some(v) => Ok(Some(decode_block(v.value()).map_err(state_err)?)),
            None => Ok(None),
        }
    }
}
