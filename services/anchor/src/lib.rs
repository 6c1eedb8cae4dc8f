//! The anchoring service: consumes events from the bus, persists each distinct event digest as
//! a leaf, seals leaves into Merkle batches (by size or on a schedule), anchors each batch root
//! on the chain, and serves receipts.

pub mod domain;
pub mod envelopes;
pub mod http;
pub mod store;

use chain_core::receipt::{PendingReceipt, RECEIPT_VERSION, Receipt, VerifyError};
use chain_core::{ChainClient, Digest, MerkleTree, TxLocation, ValidatorSetHistory};
use envelopes::EventStoreEnvelopes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{AnchorStore, BatchRecord, LeafRecord, NewLeaf};
use tokio::sync::{Notify, watch};
use veritrace_kernel::bus::{Bus, Delivery, Settlement};
use veritrace_kernel::config::AnchorConfig;
use veritrace_kernel::db::Database;
use veritrace_kernel::migrate::{self, Migration};
use veritrace_kernel::telemetry::Metrics;

pub const MIGRATIONS: &[Migration] = &[
    veritrace_kernel::migration!(
        1,
        "leaves_and_batches",
        "anchor/0001_leaves_and_batches.sql"
    ),
    veritrace_kernel::migration!(
        2,
        "rejected_message_id",
        "anchor/0002_rejected_message_id.sql"
    ),
    veritrace_kernel::migration!(3, "leaf_readers", "anchor/0003_leaf_readers.sql"),
    veritrace_kernel::migration!(
        4,
        "leaves_written_once",
        "anchor/0004_leaves_written_once.sql"
    ),
    veritrace_kernel::migration!(
        5,
        "leaf_digests_in_sorted_runs",
        "anchor/0005_leaf_digests_in_sorted_runs.sql"
    ),
    veritrace_kernel::migration!(
        6,
        "digest_runs_merged_in_chunks",
        "anchor/0006_digest_runs_merged_in_chunks.sql"
    ),
    veritrace_kernel::migration!(
        7,
        "sealed_leaves_without_foreign_key",
        "anchor/0007_sealed_leaves_without_foreign_key.sql"
    ),
    veritrace_kernel::migration!(8, "unsealed_ranges", "anchor/0008_unsealed_ranges.sql"),
];

/// The queue the anchoring service consumes: every event of every service.
pub const QUEUE: &str = "anchor.events";
/// The anchor takes every event of every service.
pub const BINDINGS: &[&str] = &["#"];

#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Chain(#[from] chain_core::ChainError),
    #[error("receipt assembly: {0}")]
    Assembly(#[from] domain::AssemblyError),
    #[error("the chain has no block {0} although a batch is anchored there")]
    MissingBlock(u64),
    #[error("stored envelope is not JSON: {0}")]
    Envelope(String),
    #[error("the chain's validator-set changes do not follow from its genesis: {0}")]
    ValidatorSets(String),
    #[error(
        "the receipt of event {event_id} does not verify: {reason}; the stored event or its batch is inconsistent"
    )]
    Unverifiable { event_id: String, reason: String },
}

/// Trees of recently read batches: receipts of one batch are usually fetched together.
const TREE_CACHE: usize = 8;

pub struct AnchorService {
    pub store: AnchorStore,
    chain: Arc<dyn ChainClient>,
    config: AnchorConfig,
    metrics: Arc<Metrics>,
    leaves_waiting: Notify,
    sealed: Notify,
    /// Sealing is triggered both by new leaves and by the schedule; one seal at a time, so two
    /// never pick the same leaves.
    seal_lock: tokio::sync::Mutex<()>,
    trees: Mutex<VecDeque<(String, Arc<MerkleTree>)>>,
    /// Embedded mode: the event stores that keep the envelopes of their events, which the
    /// leaves then do not copy (see [`envelopes`]).
    envelopes: Option<Arc<EventStoreEnvelopes>>,
}

impl AnchorService {
    pub async fn open(
        db: &Database,
        chain: Arc<dyn ChainClient>,
        config: AnchorConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, migrate::MigrateError> {
        Self::open_beside(db, chain, config, metrics, None).await
    }

    /// [`open`](Self::open) in the process of the event stores in `envelopes`: the leaves of
    /// their events keep no copy of the envelope.
    pub async fn open_beside(
        db: &Database,
        chain: Arc<dyn ChainClient>,
        config: AnchorConfig,
        metrics: Arc<Metrics>,
        envelopes: Option<Arc<EventStoreEnvelopes>>,
    ) -> Result<Arc<Self>, migrate::MigrateError> {
        migrate::run(db, "anchor", MIGRATIONS).await?;
        Ok(Arc::new(AnchorService {
            store: AnchorStore::new(db),
            chain,
            config,
            metrics,
            leaves_waiting: Notify::new(),
            sealed: Notify::new(),
            seal_lock: tokio::sync::Mutex::new(()),
            trees: Mutex::new(VecDeque::new()),
            envelopes,
        }))
    }

    /// Subscribes to the bus and starts the consumer, the sealing schedule and the anchorer.
    pub async fn start(
        self: &Arc<Self>,
        bus: &dyn Bus,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let mut subscription = bus.subscribe(QUEUE, BINDINGS).await?;
        let me = self.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    d = subscription.next() => match d {
                        Some(d) => me.consume(d).await,
                        None => return,
                    },
                    _ = stop.changed() => return,
                }
            }
        });

        // The schedule only triggers sealing; what is sealed is decided from the database.
        // (tokio-cron-scheduler counts repeat intervals in whole seconds.)
        let scheduler = tokio_cron_scheduler::JobScheduler::new().await?;
        let me = self.clone();
        scheduler
            .add(tokio_cron_scheduler::Job::new_repeated_async(
                Duration::from_secs(self.config.seal_interval_secs.max(1)),
                move |_, _| {
                    let me = me.clone();
                    Box::pin(async move { me.seal_waiting(false).await })
                },
            )?)
            .await?;
        scheduler.start().await?;
        let mut stop = shutdown.clone();
        let me = self.clone();
        tokio::spawn(async move {
            let mut scheduler = scheduler;
            let seal_after = Duration::from_millis(me.config.seal_after_ms);
            let quiet = Duration::from_millis(me.config.seal_when_quiet_ms);
            // When the oldest leaf that a full batch did not take must be sealed, and when the
            // leaves will have stopped arriving if no other comes.
            let mut due: Option<tokio::time::Instant> = None;
            let mut quiet_due: Option<tokio::time::Instant> = None;
            loop {
                let next = match (due, quiet_due) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                tokio::select! {
                    _ = me.leaves_waiting.notified() => {
                        me.seal_waiting(true).await;
                        let now = tokio::time::Instant::now();
                        if !seal_after.is_zero() && due.is_none() {
                            due = Some(now + seal_after);
                        }
                        if !quiet.is_zero() {
                            quiet_due = Some(now + quiet);
                        }
                    }
                    _ = tokio::time::sleep_until(next.unwrap_or_else(tokio::time::Instant::now)), if next.is_some() => {
                        (due, quiet_due) = (None, None);
                        me.seal_waiting(false).await;
                    }
                    _ = stop.changed() => {
                        let _ = scheduler.shutdown().await;
                        return;
                    }
                }
            }
        });

        let me = self.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move { me.run_anchorer(stop).await });
        Ok(())
    }

    /// Persists a delivery's events as leaves, then acknowledges it.
    #[tracing::instrument(skip_all, fields(
        routing_key = %delivery.routing_key,
        message_id = delivery.message_id.as_deref().unwrap_or("-"),
    ))]
    async fn consume(&self, delivery: Delivery) {
        let events = match veritrace_kernel::outbox::read_body(&delivery.body) {
            Ok(events) => events,
            Err(e) => {
                tracing::error!(error = %e, "malformed message");
                let body = String::from_utf8_lossy(&delivery.body).into_owned();
                // Kept for inspection; the message itself goes to the dead-letter queue.
                let _ = self
                    .store
                    .reject(
                        &delivery.routing_key,
                        delivery.message_id.as_deref(),
                        &e.to_string(),
                        &body,
                    )
                    .await;
                delivery.settle(Settlement::DeadLetter);
                return;
            }
        };
        let alg = self.chain.genesis().hash_alg;
        let mut leaves = Vec::with_capacity(events.len());
        for e in events {
            // The digest is recomputed from the envelope: what is anchored is what is stored.
            let checked = e
                .envelope
                .map_err(|unreadable| (unreadable.reason, unreadable.text))
                .and_then(|env| {
                    let sealed = env.seal(alg);
                    if sealed.digest == e.digest {
                        Ok(sealed)
                    } else {
                        Err((
                            format!(
                                "stated digest {} but the envelope hashes to {}",
                                e.digest, sealed.digest
                            ),
                            sealed.canonical,
                        ))
                    }
                });
            match checked {
                Ok(sealed) => leaves.push(NewLeaf {
                    digest: sealed.digest,
                    event_id: sealed.envelope.id.to_string(),
                    // A publisher from before access lists sends none: its events were the
                    // recording organisation's alone, as the stores' migrations also say.
                    readers: if e.readers.is_empty() {
                        vec![sealed.envelope.organisation.clone()]
                    } else {
                        e.readers
                    },
                    // Empty where an event store of this process keeps the envelope.
                    canonical: if self
                        .envelopes
                        .as_ref()
                        .is_some_and(|kept| kept.holds(&sealed.envelope.service))
                    {
                        String::new()
                    } else {
                        sealed.canonical
                    },
                }),
                Err((reason, envelope)) => {
                    tracing::error!(%reason, "event rejected");
                    if let Err(err) = self
                        .store
                        .reject(
                            &delivery.routing_key,
                            delivery.message_id.as_deref(),
                            &reason,
                            &envelope,
                        )
                        .await
                    {
                        tracing::warn!(%err, "cannot record a rejected event; will retry");
                        delivery.settle(Settlement::Retry);
                        return;
                    }
                }
            }
        }
        // A database outage is waited out here, holding the delivery: returning it would spend
        // its delivery limit and could dead-letter good events.
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.store.insert_leaves(&leaves).await {
                Ok(new) => {
                    self.metrics.leaves_received.inc_by(new);
                    delivery.settle(Settlement::Ack);
                    self.leaves_waiting.notify_one();
                    return;
                }
                Err(err) if err.is_transient() => {
                    tracing::warn!(%err, "cannot persist leaves; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(err) => {
                    tracing::error!(%err, "cannot persist leaves; message will be redelivered");
                    delivery.settle(Settlement::Retry);
                    return;
                }
            }
        }
    }

    /// Seals batches while leaves wait: only full batches (`only_full`, on new leaves), or
    /// everything (the schedule's job).
    pub async fn seal_waiting(&self, only_full: bool) {
        loop {
            match self.seal_batch(only_full).await {
                Ok(true) => continue,
                Ok(false) => return,
                Err(err) => {
                    tracing::warn!(%err, "sealing failed; the schedule will retry");
                    return;
                }
            }
        }
    }

    /// Seals one batch of waiting leaves; with `only_full`, only if a whole batch waits.
    /// Returns whether a batch was sealed.
    #[tracing::instrument(skip(self))]
    pub async fn seal_batch(&self, only_full: bool) -> Result<bool, AnchorError> {
        let _one_at_a_time = self.seal_lock.lock().await;
        let max = self.config.max_batch_size.max(1);
        if only_full && !self.store.waiting_at_least(max as i64).await? {
            return Ok(false);
        }
        let waiting = self.store.unsealed(max as i64).await?;
        if waiting.is_empty() || (only_full && waiting.len() < max) {
            return Ok(false);
        }
        let genesis = self.chain.genesis();
        let alg = genesis.hash_alg;
        let digests: Vec<Digest> = waiting.iter().map(|(_, d)| *d).collect();
        let tree = tokio::task::spawn_blocking(move || domain::batch_tree(alg, &digests))
            .await
            .map_err(|e| AnchorError::Envelope(e.to_string()))?;
        let batch_id = uuid::Uuid::now_v7().to_string();
        let size = waiting.len() as u64;
        let tx = domain::anchor_transaction(&genesis.chain_id, &batch_id, tree.root(), size);
        let tx_hash = tx
            .hash(alg)
            .map_err(|e| AnchorError::Envelope(e.to_string()))?;
        let record = BatchRecord {
            batch_id: batch_id.clone(),
            root: tree.root(),
            size: size as i64,
            tx_hash,
            submitted_at: None,
            block_height: None,
            tx_index: None,
        };
        let seqs: Vec<i64> = waiting.iter().map(|(s, _)| *s).collect();
        self.store.seal(&record, &seqs).await?;
        self.metrics.batches_sealed.inc();
        self.cache_tree(&batch_id, Arc::new(tree));
        tracing::info!(%batch_id, root = %record.root, size, "batch sealed");
        self.sealed.notify_one();
        Ok(true)
    }

    /// Submits sealed batches to the chain and records where they landed; batches that a
    /// restart or a lost mempool left unanchored are submitted again.
    async fn run_anchorer(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let head = self.chain.head().await.unwrap_or(0);
            self.metrics.chain_height.set(head as i64);
            let waiting = match self.anchor_round().await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(%err, "anchoring round failed; retrying");
                    1
                }
            };
            tokio::select! {
                _ = self.chain.wait_for_block_after(head), if waiting > 0 => {}
                _ = self.sealed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(self.config.resubmit_after_ms.max(100))) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Where the chain holds `batch`'s anchor transaction, once a final block shows that
    /// transaction at that index: a location a node claims is never taken on its word.
    async fn located(&self, batch: &BatchRecord) -> Result<Option<TxLocation>, AnchorError> {
        let Some(loc) = self.chain.locate(&batch.tx_hash).await? else {
            return Ok(None);
        };
        let alg = self.chain.genesis().hash_alg;
        let holds_it = self.chain.block(loc.height).await?.is_some_and(|b| {
            b.block
                .transactions
                .get(loc.index as usize)
                .and_then(|t| t.hash(alg).ok())
                == Some(batch.tx_hash)
        });
        if !holds_it {
            tracing::warn!(
                batch_id = %batch.batch_id,
                height = loc.height,
                index = loc.index,
                "the chain named a location whose final block does not hold the batch's transaction; not recorded"
            );
            return Ok(None);
        }
        Ok(Some(loc))
    }

    /// One pass over unanchored batches; returns how many remain unanchored.
    pub async fn anchor_round(&self) -> Result<usize, AnchorError> {
        let genesis = self.chain.genesis();
        let mut remaining = 0;
        for batch in self.store.unanchored().await? {
            if let Some(loc) = self.located(&batch).await? {
                self.store
                    .mark_anchored(&batch.batch_id, loc.height, loc.index)
                    .await?;
                self.metrics.batches_anchored.inc();
                tracing::info!(batch_id = %batch.batch_id, height = loc.height, "batch anchored");
                continue;
            }
            remaining += 1;
            let stale = match &batch.submitted_at {
                None => true,
                Some(at) => chrono::DateTime::parse_from_rfc3339(at)
                    .map(|t| {
                        (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_milliseconds()
                            > self.config.resubmit_after_ms as i64
                    })
                    .unwrap_or(true),
            };
            if stale {
                let tx = domain::anchor_transaction(
                    &genesis.chain_id,
                    &batch.batch_id,
                    batch.root,
                    batch.size as u64,
                );
                let hash = self.chain.submit(tx).await?;
                if hash != batch.tx_hash {
                    tracing::error!(batch_id = %batch.batch_id, "chain computed another transaction hash");
                }
                self.store.mark_submitted(&batch.batch_id).await?;
            }
        }
        Ok(remaining)
    }

    fn cache_tree(&self, batch_id: &str, tree: Arc<MerkleTree>) {
        if let Ok(mut cache) = self.trees.lock() {
            cache.retain(|(id, _)| id != batch_id);
            cache.push_front((batch_id.to_string(), tree));
            cache.truncate(TREE_CACHE);
        }
    }

    async fn tree(&self, batch_id: &str) -> Result<Arc<MerkleTree>, AnchorError> {
        if let Some(t) = self.trees.lock().ok().and_then(|c| {
            c.iter()
                .find(|(id, _)| id == batch_id)
                .map(|(_, t)| t.clone())
        }) {
            return Ok(t);
        }
        let digests = self.store.batch_digests(batch_id).await?;
        let alg = self.chain.genesis().hash_alg;
        let tree = Arc::new(
            tokio::task::spawn_blocking(move || domain::batch_tree(alg, &digests))
                .await
                .map_err(|e| AnchorError::Envelope(e.to_string()))?,
        );
        self.cache_tree(batch_id, tree.clone());
        Ok(tree)
    }

    /// The canonical envelope of `leaf`: its own copy, or where it keeps none, its event
    /// store's, which must still hash to the digest anchored.
    async fn envelope_of(&self, leaf: &LeafRecord) -> Result<String, AnchorError> {
        if !leaf.canonical.is_empty() {
            return Ok(leaf.canonical.clone());
        }
        let unverifiable = |reason: &str| AnchorError::Unverifiable {
            event_id: leaf.event_id.clone(),
            reason: reason.to_string(),
        };
        let Some(envelopes) = &self.envelopes else {
            return Err(unverifiable(
                "its leaf keeps no envelope, and no event store is configured beside the anchor",
            ));
        };
        let text = envelopes
            .envelope(&leaf.event_id)
            .await?
            .ok_or_else(|| unverifiable("its event store no longer holds it"))?;
        if self.chain.genesis().hash_alg.hash(text.as_bytes()) != leaf.digest {
            return Err(unverifiable(
                "its event store's envelope no longer hashes to the digest anchored",
            ));
        }
        Ok(text)
    }

    /// The receipt of a leaf: pending until its batch is in a final block, complete after;
    /// complete only if it verifies against the genesis (`chain_core::receipt::verify`).
    pub async fn receipt(&self, leaf: &LeafRecord) -> Result<Receipt, AnchorError> {
        let pending = || {
            Receipt::Pending(PendingReceipt {
                version: RECEIPT_VERSION,
                event_id: leaf.event_id.clone(),
                event_digest: leaf.digest,
            })
        };
        let (Some(batch_id), Some(leaf_index)) = (&leaf.batch_id, leaf.leaf_index) else {
            return Ok(pending());
        };
        let Some(batch) = self.store.batch(batch_id).await? else {
            return Ok(pending());
        };
        let (Some(height), Some(tx_index)) = (batch.block_height, batch.tx_index) else {
            return Ok(pending());
        };
        let block = self
            .chain
            .block(height as u64)
            .await?
            .ok_or(AnchorError::MissingBlock(height as u64))?;
        let tree = self.tree(batch_id).await?;
        // The chain of validator sets from genesis to the block, each change checked against
        // the set before it: a receipt this service serves verifies, or is not served.
        let genesis = self.chain.genesis();
        // The sets the client checked the block against: asking every node again for each
        // receipt would cost a round trip to the slowest.
        let changes = self.chain.followed_validator_set_changes().await?;
        let history = ValidatorSetHistory::from_changes(genesis, &changes)
            .map_err(|e| AnchorError::ValidatorSets(e.to_string()))?;
        let canonical = self.envelope_of(leaf).await?;
        let event: serde_json::Value =
            serde_json::from_str(&canonical).map_err(|e| AnchorError::Envelope(e.to_string()))?;
        let attestations = chain_core::receipt::valid_attestations(
            genesis,
            &history.at(height as u64).set,
            &block,
        );
        let assembled = domain::assemble_receipt(
            genesis.hash_alg,
            domain::EventLeaf {
                event,
                digest: leaf.digest,
                index: leaf_index as u64,
            },
            &tree,
            domain::AnchorSite {
                block: &block,
                tx_index: tx_index as u32,
                tx_hash: batch.tx_hash,
                attestations,
            },
            history.changes_up_to(height as u64),
        );
        // A receipt is served only once it verifies against the genesis, as its holder will
        // check it: whatever a node served that the checks above missed stays out.
        let refused = match assembled {
            Ok(receipt) => match chain_core::receipt::verify(&receipt, genesis) {
                Ok(_) => return Ok(Receipt::Anchored(Box::new(receipt))),
                // What the block served this time got wrong (a node's junk): the next request
                // reads the block again, from whichever node serves one that passes.
                Err(
                    e @ (VerifyError::ValidatorSet { .. }
                    | VerifyError::ValidatorSetChange { .. }
                    | VerifyError::BlockTime(_)
                    | VerifyError::UnknownValidator(_)
                    | VerifyError::DuplicateAttestation(_)
                    | VerifyError::BadSignature { .. }
                    | VerifyError::NoQuorum { .. }),
                ) => {
                    tracing::warn!(
                        %batch_id,
                        height,
                        event_id = %leaf.event_id,
                        reason = %e,
                        "the block served would not make a verifiable receipt; pending until one does"
                    );
                    return Ok(pending());
                }
                // Only a wrong location makes the transaction proof fail.
                Err(e @ VerifyError::TransactionProof(_)) => format!("{}: {e}", e.code()),
                // The rest is this service's own record or configuration: no other location
                // or block mends it, so it is an error, not a wait.
                Err(e) => {
                    return Err(AnchorError::Unverifiable {
                        event_id: leaf.event_id.clone(),
                        reason: e.to_string(),
                    });
                }
            },
            Err(
                e @ (domain::AssemblyError::TransactionMismatch { .. }
                | domain::AssemblyError::TransactionMissing { .. }),
            ) => e.to_string(),
            Err(e) => return Err(e.into()),
        };
        // A location recorded from a node that lied (or erred): forget it, so the batch is
        // located again (and submitted again if need be), and say pending meanwhile.
        tracing::error!(
            %batch_id,
            height,
            tx_index,
            event_id = %leaf.event_id,
            reason = %refused,
            "the receipt would not verify; forgetting the recorded location and locating the batch again"
        );
        self.store
            .clear_location(batch_id, height, tx_index)
            .await?;
        self.sealed.notify_one();
        Ok(pending())
    }
}

/// In one process, a domain reads its events' receipts straight from the anchoring service.
/// No access check: a domain asks only for its own events' receipts.
#[async_trait::async_trait]
impl veritrace_kernel::receipts::ReceiptSource for AnchorService {
    async fn receipt(&self, event_id: &str) -> Result<Option<Vec<u8>>, String> {
        let Some(leaf) = self
            .store
            .leaf_by_event(event_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let receipt = self.receipt(&leaf).await.map_err(|e| e.to_string())?;
        serde_json::to_vec(&receipt)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}
