//! The single-validator node of the embedded mode: it orders submitted transactions into
//! blocks, attests each block with its key, and stores it. A consortium (several validators
//! agreeing by BFT consensus) replaces it in distributed deployments; blocks, attestations and
//! receipts are the same.

use crate::attestation::attest;
use crate::block::{Block, BlockHeader, CommittedBlock, Transaction, transaction_tree};
use crate::chain::{ChainClient, ChainError, TxLocation};
use crate::genesis::Genesis;
use crate::governance::CommittedChange;
use crate::hash::Digest;
use crate::keys::SigningKey;
use crate::store::BlockStore;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// Most transactions one block carries.
pub const MAX_BLOCK_TRANSACTIONS: usize = 10_000;

#[derive(Default)]
struct Mempool {
    order: Vec<(Digest, Transaction)>,
    seen: HashSet<Digest>,
}

pub struct SoloNode {
    genesis: Genesis,
    genesis_hash: Digest,
    set_hash: Digest,
    name: String,
    key: SigningKey,
    store: BlockStore,
    mempool: Mutex<Mempool>,
    pending: Notify,
    head: watch::Sender<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SoloError {
    #[error("the validator key is not in the genesis validator set")]
    NotAValidator,
    #[error("the validator key is a {key:?} key but the genesis names {genesis:?}")]
    WrongScheme {
        key: crate::keys::SignatureAlg,
        genesis: crate::keys::SignatureAlg,
    },
    #[error("a solo node needs its own key to hold more than 2/3 of the voting power")]
    NoQuorum,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Canonical(#[from] crate::canonical::CanonicalError),
}

impl SoloNode {
    pub fn open(genesis: Genesis, key: SigningKey, store: BlockStore) -> Result<Self, SoloError> {
        if key.algorithm() != genesis.signature_alg {
            return Err(SoloError::WrongScheme {
                key: key.algorithm(),
                genesis: genesis.signature_alg,
            });
        }
        let pk = key.public_key_hex();
        let me = genesis
            .validator_set
            .validators
            .iter()
            .find(|v| v.public_key == pk)
            .ok_or(SoloError::NotAValidator)?;
        if !genesis.validator_set.is_quorum(me.power) {
            return Err(SoloError::NoQuorum);
        }
        let name = me.name.clone();
        let alg = genesis.hash_alg;
        let set_hash = genesis.validator_set.hash(alg)?;
        let genesis_hash = genesis.hash()?;
        let head = store.head()?;
        Ok(SoloNode {
            genesis,
            genesis_hash,
            set_hash,
            name,
            key,
            store,
            mempool: Mutex::new(Mempool::default()),
            pending: Notify::new(),
            head: watch::channel(head).0,
        })
    }

    fn mempool(&self) -> std::sync::MutexGuard<'_, Mempool> {
        // A panic while holding the lock cannot leave the mempool half-updated in a way that
        // matters: every transaction in it is resubmitted by its owner until committed.
        self.mempool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cuts blocks while transactions wait, at most one per `interval`, until `shutdown`.
    pub async fn run(&self, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut last_cut = Instant::now();
        loop {
            let notified = self.pending.notified();
            if self.mempool().order.is_empty() {
                tokio::select! {
                    _ = notified => {}
                    _ = shutdown.changed() => return,
                }
            }
            tokio::select! {
                _ = tokio::time::sleep_until(last_cut + interval) => {}
                _ = shutdown.changed() => return,
            }
            last_cut = Instant::now();
            if let Err(err) = self.cut_block() {
                tracing::error!(%err, "cutting a block failed; transactions stay pending");
            }
        }
    }

    /// Builds, attests and stores one block from the mempool. Returns its height.
    pub fn cut_block(&self) -> Result<Option<u64>, SoloError> {
        let txs: Vec<(Digest, Transaction)> = {
            let pool = self.mempool();
            pool.order
                .iter()
                .take(MAX_BLOCK_TRANSACTIONS)
                .cloned()
                .collect()
        };
        if txs.is_empty() {
            return Ok(None);
        }
        let span = tracing::info_span!("cut_block", transactions = txs.len());
        let _guard = span.enter();
        let alg = self.genesis.hash_alg;
        let head = self.store.head()?;
        let (previous_hash, previous_time) = match self.store.block(head)? {
            Some(b) => (b.hash, Some(b.block.header.time)),
            None => (self.genesis_hash, None),
        };
        let hashes: Vec<Digest> = txs.iter().map(|(h, _)| *h).collect();
        let header = BlockHeader {
            chain_id: self.genesis.chain_id.clone(),
            height: head + 1,
            previous_hash,
            time: block_time(previous_time.as_deref()),
            transaction_root: transaction_tree(alg, &hashes).root(),
            transaction_count: hashes.len() as u64,
            validator_set_hash: self.set_hash,
            proposer: self.name.clone(),
        };
        let hash = header.hash(alg)?;
        let attestation = attest(
            &self.key,
            &self.name,
            &header.chain_id,
            header.height,
            &hash,
        );
        let height = header.height;
        let committed = CommittedBlock {
            block: Block {
                header,
                transactions: txs.into_iter().map(|(_, t)| t).collect(),
            },
            hash,
            attestations: vec![attestation],
        };
        self.store.append(&committed, &hashes)?;
        {
            let mut pool = self.mempool();
            let done: HashSet<Digest> = hashes.iter().copied().collect();
            pool.order.retain(|(h, _)| !done.contains(h));
            for h in &done {
                pool.seen.remove(h);
            }
        }
        self.head.send_replace(height);
        tracing::info!(height, "block committed");
        Ok(Some(height))
    }
}

/// Now, in RFC 3339 UTC with milliseconds, never earlier than the previous block's time.
fn block_time(previous: Option<&str>) -> String {
    let now = chrono::Utc::now();
    let t = match previous.and_then(|p| chrono::DateTime::parse_from_rfc3339(p).ok()) {
        Some(p) if p > now => p.with_timezone(&chrono::Utc),
        _ => now,
    };
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[async_trait::async_trait]
impl ChainClient for SoloNode {
    fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    async fn submit(&self, tx: Transaction) -> Result<Digest, ChainError> {
        if tx.chain_id() != self.genesis.chain_id {
            return Err(ChainError::Rejected(format!(
                "transaction names chain {:?}, this is {:?}",
                tx.chain_id(),
                self.genesis.chain_id
            )));
        }
        let Transaction::Anchor(a) = &tx else {
            return Err(ChainError::Rejected(
                "a solo chain has one validator and no validator-set changes; run a consortium (veritrace chain init) to govern one".into(),
            ));
        };
        if a.batch_size == 0 || a.batch_id.is_empty() || a.batch_id.len() > 64 {
            return Err(ChainError::Rejected(
                "anchor transaction needs a batch id and at least one leaf".into(),
            ));
        }
        let hash = tx
            .hash(self.genesis.hash_alg)
            .map_err(|e| ChainError::Rejected(e.to_string()))?;
        if self
            .store
            .locate(&hash)
            .map_err(|e| ChainError::Store(e.to_string()))?
            .is_some()
        {
            return Ok(hash);
        }
        {
            let mut pool = self.mempool();
            if pool.seen.insert(hash) {
                pool.order.push((hash, tx));
            }
        }
        self.pending.notify_one();
        Ok(hash)
    }

    async fn locate(&self, tx_hash: &Digest) -> Result<Option<TxLocation>, ChainError> {
        self.store
            .locate(tx_hash)
            .map_err(|e| ChainError::Store(e.to_string()))
    }

    async fn block(&self, height: u64) -> Result<Option<CommittedBlock>, ChainError> {
        self.store
            .block(height)
            .map_err(|e| ChainError::Store(e.to_string()))
    }

    async fn head(&self) -> Result<u64, ChainError> {
        Ok(*self.head.borrow())
    }

    async fn validator_set_changes(&self) -> Result<Vec<CommittedChange>, ChainError> {
        self.store
            .validator_set_changes()
            .map_err(|e| ChainError::Store(e.to_string()))
    }

    async fn wait_for_block_after(&self, height: u64) {
        let mut rx = self.head.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|h| *h > height)).await;
    }
}
