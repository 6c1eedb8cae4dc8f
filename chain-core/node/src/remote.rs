//! A chain reached over consortium validators' node APIs: what services use in distributed
//! mode. Transactions go to the first validator that answers; blocks and locations come from
//! any of them, and nothing a node says is trusted further than its attestations allow
//! (receipts are checked against the configured genesis, never against a node's word).

use chain_core::block::{CommittedBlock, Transaction};
use chain_core::chain::{ChainClient, ChainError, TxLocation};
use chain_core::receipt::block_finality;
use chain_core::{Digest, Genesis};
use serde::Deserialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub struct RemoteChain {
    genesis: Genesis,
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
        Ok(RemoteChain {
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

    async fn locate(&self, tx_hash: &Digest) -> Result<Option<TxLocation>, ChainError> {
        let hash = tx_hash.to_hex();
        match self
            .ask(move |http, node| {
                get_json::<TxLocation>(http, &format!("{node}/chain/transactions/{hash}"))
            })
            .await?
        {
            Answer::Found(l) => Ok(Some(l)),
            Answer::NotFound => Ok(None),
        }
    }

    async fn block(&self, height: u64) -> Result<Option<CommittedBlock>, ChainError> {
        let answer = self
            .ask(move |http, node| {
                get_json::<BlockDetail>(http, &format!("{node}/chain/blocks/{height}"))
            })
            .await?;
        match answer {
            // A node's copy is used only once its attestations make it final.
            Answer::Found(d) if block_finality(&self.genesis, &d.block).is_final => {
                Ok(Some(d.block))
            }
            _ => Ok(None),
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
