//! A chain reached over consortium validators' node APIs: what services use in distributed
//! mode. Transactions go to the first validator that answers; blocks and locations come from
//! any of them, and nothing a node says is taken on its word: a block is used only once it
//! passes `chain_core::checked::checked_block` (its hashes recomputed, its validator set the
//! one in force, a quorum of valid attestations, the junk beside them dropped), a location only
//! once such a block holds the transaction there, and validator-set changes only as far as
//! each is approved by the set before it.

use chain_core::block::{CommittedBlock, Transaction};
use chain_core::chain::{ChainClient, ChainError, TxLocation};
use chain_core::checked::{BlockCheckError, checked_block};
use chain_core::{CommittedChange, Digest, Genesis, ValidatorSetHistory};
use serde::Deserialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub struct RemoteChain {
    genesis: Genesis,
    /// The validator sets learned so far, every change verified from the genesis.
    sets: std::sync::Mutex<ValidatorSetHistory>,
    nodes: Vec<String>,
    /// The node that answered last; tried first next time.
    preferred: AtomicUsize,
    http: ureq::Agent,
}

#[derive(Deserialize)]
struct Submitted {
    hash: Digest,
}

#[derive(Deserialize)]
struct Head {
    height: u64,
}

#[derive(Deserialize)]
struct BlockDetail {
    block: CommittedBlock,
}

enum Answer<T> {
    Found(T),
    NotFound,
}

impl RemoteChain {
    pub fn new(genesis: Genesis, nodes: Vec<String>) -> Result<RemoteChain, ChainError> {
        if nodes.is_empty() {
            return Err(ChainError::Unavailable("no chain node configured".into()));
        }
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let sets = ValidatorSetHistory::new(&genesis)
            .map_err(|e| ChainError::Rejected(format!("genesis: {e}")))?;
        Ok(RemoteChain {
            sets: std::sync::Mutex::new(sets),
            genesis,
            nodes: nodes
                .into_iter()
                .map(|n| n.trim_end_matches('/').to_string())
                .collect(),
            preferred: AtomicUsize::new(0),
            http,
        })
    }

    /// Runs `call` against each node in turn, starting with the preferred one, until one
    /// answers (a 404 is an answer).
    async fn ask<T: Send + 'static>(
        &self,
        call: impl Fn(&ureq::Agent, &str) -> Result<Answer<T>, String> + Send + Sync + 'static,
    ) -> Result<Answer<T>, ChainError> {
        let nodes = self.nodes.clone();
        let http = self.http.clone();
        let start = self.preferred.load(Ordering::Relaxed);
        let (index, result) = tokio::task::spawn_blocking(move || {
            let mut errors = Vec::new();
            for k in 0..nodes.len() {
                let i = (start + k) % nodes.len();
                match call(&http, &nodes[i]) {
                    Ok(a) => return (i, Ok(a)),
                    Err(e) => errors.push(format!("{}: {e}", nodes[i])),
                }
            }
            (start, Err(errors.join("; ")))
        })
        .await
        .map_err(|e| ChainError::Unavailable(e.to_string()))?;
        self.preferred.store(index, Ordering::Relaxed);
        result.map_err(ChainError::Unavailable)
    }

    /// Asks the nodes in turn, starting with the preferred one, for the block at `height`, and
    /// returns the first that passes `checked_block` against the validator sets learned so
    /// far. A node that serves a block failing the checks, or none (a lagging node's 404), is
    /// passed over; each is logged with what it served.
    async fn fetch_checked_block(&self, height: u64) -> Result<Fetched, ChainError> {
        let nodes = self.nodes.clone();
        let http = self.http.clone();
        let (genesis, sets) = (self.genesis.clone(), self.sets().clone());
        let start = self.preferred.load(Ordering::Relaxed);
        let (served_by, fetched) = tokio::task::spawn_blocking(move || {
            let mut unreachable = Vec::new();
            let mut stale_sets = false;
            for k in 0..nodes.len() {
                let i = (start + k) % nodes.len();
                let node = nodes[i].as_str();
                let detail = match get_json::<BlockDetail>(
                    &http,
                    &format!("{node}/chain/blocks/{height}"),
                ) {
                    Ok(Answer::Found(d)) => d,
                    Ok(Answer::NotFound) => continue,
                    Err(e) => {
                        unreachable.push(format!("{node}: {e}"));
                        continue;
                    }
                };
                let served = detail.block.attestations.len();
                match checked_block(&genesis, &sets, height, detail.block) {
                    Ok(block) => {
                        if block.attestations.len() < served {
                            tracing::warn!(
                                node,
                                height,
                                left_out = served - block.attestations.len(),
                                "a node served attestations that do not count (unknown validator, repeated or invalid signature); left out"
                            );
                        }
                        return (Some(i), Ok(Fetched::Block(Box::new(block))));
                    }
                    // A decided block whose attestations are still arriving: routine.
                    Err(e @ BlockCheckError::NoQuorum { .. }) => {
                        tracing::debug!(node, height, error = %e, "block not final at this node; asking the next");
                    }
                    Err(e) => {
                        stale_sets |= e.may_need_newer_sets();
                        tracing::warn!(node, height, error = %e, "a node served a block that fails its checks; asking the next");
                    }
                }
            }
            if unreachable.len() == nodes.len() {
                return (None, Err(unreachable.join("; ")));
            }
            (
                None,
                Ok(if stale_sets {
                    Fetched::StaleSets
                } else {
                    Fetched::NoBlock
                }),
            )
        })
        .await
        .map_err(|e| ChainError::Unavailable(e.to_string()))?;
        if let Some(i) = served_by {
            self.preferred.store(i, Ordering::Relaxed);
        }
        fetched.map_err(ChainError::Unavailable)
    }

    fn sets(&self) -> std::sync::MutexGuard<'_, ValidatorSetHistory> {
        self.sets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the nodes gave for one height.
enum Fetched {
    /// A block that passed every check, attestations reduced to the valid ones.
    Block(Box<CommittedBlock>),
    /// No node served a block that passes; one named a validator set this client may not have
    /// learned yet.
    StaleSets,
    /// No node served a block that passes (none has it final yet, or each lied).
    NoBlock,
}

fn get_json<T: serde::de::DeserializeOwned>(
    http: &ureq::Agent,
    url: &str,
) -> Result<Answer<T>, String> {
    let mut resp = http.get(url).call().map_err(|e| e.to_string())?;
    match resp.status().as_u16() {
        200 => resp
            .body_mut()
            .read_json::<T>()
            .map(Answer::Found)
            .map_err(|e| e.to_string()),
        404 => Ok(Answer::NotFound),
        s => Err(format!("status {s}")),
    }
}

#[async_trait::async_trait]
impl ChainClient for RemoteChain {
    fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    async fn submit(&self, tx: Transaction) -> Result<Digest, ChainError> {
        let rejected = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let r = rejected.clone();
        let answer = self
            .ask(move |http, node| {
                let mut resp = http
                    .post(format!("{node}/chain/transactions"))
                    .send_json(&tx)
                    .map_err(|e| e.to_string())?;
                match resp.status().as_u16() {
                    200 | 202 => resp
                        .body_mut()
                        .read_json::<Submitted>()
                        .map(|s| Answer::Found(s.hash))
                        .map_err(|e| e.to_string()),
                    400 | 422 => {
                        let body = resp.body_mut().read_to_string().unwrap_or_default();
                        *r.lock().unwrap_or_else(|p| p.into_inner()) = Some(body);
                        Ok(Answer::NotFound)
                    }
                    s => Err(format!("status {s}")),
                }
            })
            .await?;
        match answer {
            Answer::Found(h) => Ok(h),
            Answer::NotFound => Err(ChainError::Rejected(
                rejected
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                    .unwrap_or_default(),
            )),
        }
    }

    /// A location is believed only once a final block (checked against the genesis and the
    /// validator sets) holds the transaction at that index: a node that answers a wrong one is
    /// passed over, and the others are asked.
    async fn locate(&self, tx_hash: &Digest) -> Result<Option<TxLocation>, ChainError> {
        let alg = self.genesis.hash_alg;
        let mut unreachable = Vec::new();
        let start = self.preferred.load(Ordering::Relaxed);
        for k in 0..self.nodes.len() {
            let i = (start + k) % self.nodes.len();
            let node = self.nodes[i].clone();
            let url = format!("{node}/chain/transactions/{}", tx_hash.to_hex());
            let http = self.http.clone();
            let answer = tokio::task::spawn_blocking(move || get_json::<TxLocation>(&http, &url))
                .await
                .map_err(|e| ChainError::Unavailable(e.to_string()))?;
            let loc = match answer {
                Ok(Answer::Found(loc)) => loc,
                Ok(Answer::NotFound) => continue,
                Err(e) => {
                    unreachable.push(format!("{node}: {e}"));
                    continue;
                }
            };
            let block = match self.block(loc.height).await {
                Ok(block) => block,
                Err(e) => {
                    unreachable.push(format!("{node}: {e}"));
                    continue;
                }
            };
            let holds_it = block.is_some_and(|b| {
                b.block
                    .transactions
                    .get(loc.index as usize)
                    .and_then(|t| t.hash(alg).ok())
                    .as_ref()
                    == Some(tx_hash)
            });
            if holds_it {
                self.preferred.store(i, Ordering::Relaxed);
                return Ok(Some(loc));
            }
            tracing::warn!(
                %node,
                height = loc.height,
                index = loc.index,
                "a node named a location that the final block contradicts; asking the others"
            );
        }
        if unreachable.len() == self.nodes.len() {
            return Err(ChainError::Unavailable(unreachable.join("; ")));
        }
        Ok(None)
    }

    /// A block is used only once it passes `checked_block`; a block of a set this client has
    /// not learned yet sends it to learn the latest changes first, then to ask again.
    async fn block(&self, height: u64) -> Result<Option<CommittedBlock>, ChainError> {
        match self.fetch_checked_block(height).await? {
            Fetched::Block(b) => return Ok(Some(*b)),
            Fetched::NoBlock => return Ok(None),
            Fetched::StaleSets => {}
        }
        self.validator_set_changes().await?;
        match self.fetch_checked_block(height).await? {
            Fetched::Block(b) => Ok(Some(*b)),
            Fetched::StaleSets | Fetched::NoBlock => Ok(None),
        }
    }

    async fn head(&self) -> Result<u64, ChainError> {
        match self
            .ask(|http, node| get_json::<Head>(http, &format!("{node}/chain/head")))
            .await?
        {
            Answer::Found(h) => Ok(h.height),
            Answer::NotFound => Ok(0),
        }
    }

    /// Every node is asked, not the first that answers: one that lags or hides a change must
    /// not hold the sets back. A node's list is believed only if each change is approved by
    /// the set before it; the longest such list is kept, and what was learned before is never
    /// replaced by a shorter one.
    async fn validator_set_changes(&self) -> Result<Vec<CommittedChange>, ChainError> {
        let nodes = self.nodes.clone();
        let http = self.http.clone();
        // Asked at once, so one slow node costs its own timeout, not the sum of all.
        let answers = tokio::task::spawn_blocking(move || {
            std::thread::scope(|scope| {
                let asked: Vec<_> = nodes
                    .iter()
                    .map(|node| {
                        let http = &http;
                        let url = format!("{node}/chain/validator-set-changes");
                        (
                            node.clone(),
                            scope.spawn(move || get_json::<Vec<CommittedChange>>(http, &url)),
                        )
                    })
                    .collect();
                asked
                    .into_iter()
                    .map(|(node, handle)| {
                        let answer = handle
                            .join()
                            .unwrap_or_else(|_| Err("the request thread panicked".into()));
                        (node, answer)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .await
        .map_err(|e| ChainError::Unavailable(e.to_string()))?;
        let mut unreachable = Vec::new();
        let mut longest: Option<ValidatorSetHistory> = None;
        for (node, answer) in answers {
            let changes = match answer {
                Ok(Answer::Found(c)) => c,
                Ok(Answer::NotFound) => Vec::new(),
                Err(e) => {
                    unreachable.push(format!("{node}: {e}"));
                    continue;
                }
            };
            match ValidatorSetHistory::from_changes(&self.genesis, &changes) {
                Ok(h) => {
                    if longest
                        .as_ref()
                        .is_none_or(|l| h.epochs().len() > l.epochs().len())
                    {
                        longest = Some(h);
                    }
                }
                Err(e) => tracing::warn!(
                    %node,
                    error = %e,
                    "a node served validator-set changes that do not follow from the genesis; ignored"
                ),
            }
        }
        if unreachable.len() == self.nodes.len() {
            return Err(ChainError::Unavailable(unreachable.join("; ")));
        }
        let mut sets = self.sets();
        if let Some(h) = longest
            && h.epochs().len() > sets.epochs().len()
        {
            *sets = h;
        }
        Ok(sets.committed_changes())
    }

    async fn followed_validator_set_changes(&self) -> Result<Vec<CommittedChange>, ChainError> {
        Ok(self.sets().committed_changes())
    }

    /// Every node is asked, not the first that answers: each reports what it saw. They are
    /// asked at once, so a node that does not answer costs one timeout, not one per node.
    async fn misbehaviour(&self) -> Vec<chain_core::NodeMisbehaviour> {
        #[derive(serde::Deserialize)]
        struct Reports {
            items: Vec<chain_core::MisbehaviourReport>,
        }
        let nodes = self.nodes.clone();
        let http = self.http.clone();
        tokio::task::spawn_blocking(move || {
            std::thread::scope(|scope| {
                let asked: Vec<_> = nodes
                    .into_iter()
                    .map(|node| {
                        let http = &http;
                        scope.spawn(move || {
                            let url = format!("{node}/chain/misbehaviour");
                            let reports = match get_json::<Reports>(http, &url) {
                                Ok(Answer::Found(r)) => Ok(r.items),
                                Ok(Answer::NotFound) => {
                                    Err("the node serves no misbehaviour reports".into())
                                }
                                Err(e) => Err(e),
                            };
                            chain_core::NodeMisbehaviour { node, reports }
                        })
                    })
                    .collect();
                asked.into_iter().filter_map(|h| h.join().ok()).collect()
            })
        })
        .await
        .unwrap_or_default()
    }

    async fn wait_for_block_after(&self, height: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            if matches!(self.head().await, Ok(h) if h > height) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
