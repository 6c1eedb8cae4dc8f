//! A chain reached over consortium validators' node APIs: what services use in distributed
//! mode. Transactions go to the first validator that answers; blocks and locations come from
//! any of them, and nothing a node says is trusted further than its attestations allow
//! (receipts are checked against the configured genesis, never against a node's word).

use chain_core::block::{CommittedBlock, Transaction};
use chain_core::chain::{ChainClient, ChainError, TxLocation};
use chain_core::receipt::block_finality;
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
        self.ask_until(call, |_| true).await
    }

    /// Like `ask`, but an answer `accept` refuses (a node lagging behind the others) sends the
    /// question on to the next node; the last refused answer is returned if none is accepted.
    async fn ask_until<T: Send + 'static>(
        &self,
        call: impl Fn(&ureq::Agent, &str) -> Result<Answer<T>, String> + Send + Sync + 'static,
        accept: impl Fn(&T) -> bool + Send + 'static,
    ) -> Result<Answer<T>, ChainError> {
        let nodes = self.nodes.clone();
        let http = self.http.clone();
        let start = self.preferred.load(Ordering::Relaxed);
        let (index, result) = tokio::task::spawn_blocking(move || {
            let mut errors = Vec::new();
            let mut refused = None;
            for k in 0..nodes.len() {
                let i = (start + k) % nodes.len();
                match call(&http, &nodes[i]) {
                    Ok(Answer::Found(t)) if !accept(&t) => refused = Some((i, t)),
                    Ok(a) => return (i, Ok(a)),
                    Err(e) => errors.push(format!("{}: {e}", nodes[i])),
                }
            }
            match refused {
                Some((i, t)) => (i, Ok(Answer::Found(t))),
                None => (start, Err(errors.join("; "))),
            }
        })
        .await
        .map_err(|e| ChainError::Unavailable(e.to_string()))?;
        self.preferred.store(index, Ordering::Relaxed);
        result.map_err(ChainError::Unavailable)
    }

    fn sets(&self) -> std::sync::MutexGuard<'_, ValidatorSetHistory> {
        self.sets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_final(&self, block: &CommittedBlock) -> bool {
        is_final(&self.genesis, &self.sets(), block)
    }
}

/// True when the block carries a quorum of the set in force at its height.
fn is_final(genesis: &Genesis, sets: &ValidatorSetHistory, block: &CommittedBlock) -> bool {
    let epoch = sets.at(block.block.header.height);
    epoch.hash == block.block.header.validator_set_hash
        && block_finality(genesis, &epoch.set, block).is_final
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

    async fn block(&self, height: u64) -> Result<Option<CommittedBlock>, ChainError> {
        let (genesis, sets) = (self.genesis.clone(), self.sets().clone());
        let answer = self
            .ask_until(
                move |http, node| {
                    get_json::<BlockDetail>(http, &format!("{node}/chain/blocks/{height}"))
                },
                move |d| is_final(&genesis, &sets, &d.block),
            )
            .await?;
        let Answer::Found(d) = answer else {
            return Ok(None);
        };
        // A node's copy is used only once its attestations make it final; a block of a set
        // this client has not learned yet sends it to learn the latest changes first.
        if self.is_final(&d.block) {
            return Ok(Some(d.block));
        }
        self.validator_set_changes().await?;
        Ok(self.is_final(&d.block).then_some(d.block))
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

    async fn validator_set_changes(&self) -> Result<Vec<CommittedChange>, ChainError> {
        let changes = match self
            .ask(|http, node| {
                get_json::<Vec<CommittedChange>>(
                    http,
                    &format!("{node}/chain/validator-set-changes"),
                )
            })
            .await?
        {
            Answer::Found(c) => c,
            Answer::NotFound => Vec::new(),
        };
        // A node's list is believed only as far as each change is approved by the set before
        // it; a shorter list than the one already learned is a lagging node, not news.
        let history = ValidatorSetHistory::from_changes(&self.genesis, &changes)
            .map_err(|e| ChainError::Unavailable(format!("validator-set changes: {e}")))?;
        let mut sets = self.sets();
        if history.epochs().len() >= sets.epochs().len() {
            *sets = history;
        }
        Ok(sets.committed_changes())
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
