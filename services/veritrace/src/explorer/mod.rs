//! The chain explorer API: blocks, their transactions and attestations, the head and its
//! finality, and the validator sets; its pages for people are in [`pages`]. Chain data is
//! public (headers and batch roots reveal no event content), so neither needs an API key.

pub mod pages;

use actix_web::{HttpResponse, web};
use chain_core::receipt::{Finality, block_finality};
use chain_core::{ChainClient, CommittedBlock, Digest, Genesis, ValidatorSet};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use veritrace_kernel::http::ValidQuery;
use veritrace_kernel::{ApiError, resource};

/// The chain the explorer shows, and the anchoring service whose batches it anchors (none in
/// a validator node's own process, which serves the API but not the pages).
#[derive(Clone)]
pub struct Explorer {
    pub chain: Arc<dyn ChainClient>,
    pub anchor: Option<Arc<veritrace_anchor::AnchorService>>,
}

fn unavailable(e: chain_core::ChainError) -> ApiError {
    ApiError::Unavailable(e.to_string())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FinalityView {
    pub signed_power: u64,
    pub total_power: u64,
    /// More than 2/3 of the validator set's power attested the block.
    #[serde(rename = "final")]
    pub is_final: bool,
    pub signers: Vec<String>,
}

impl From<Finality> for FinalityView {
    fn from(f: Finality) -> Self {
        FinalityView {
            signed_power: f.signed_power,
            total_power: f.total_power,
            is_final: f.is_final,
            signers: f.signers,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BlockSummary {
    pub height: u64,
    pub hash: String,
    pub time: String,
    pub transaction_count: u64,
    pub proposer: String,
    pub finality: FinalityView,
}

/// The chain's validator sets, every change verified from the genesis.
async fn set_history(
    chain: &Arc<dyn ChainClient>,
) -> Result<chain_core::governance::ValidatorSetHistory, ApiError> {
    let changes = chain.validator_set_changes().await.map_err(unavailable)?;
    chain_core::governance::ValidatorSetHistory::from_changes(chain.genesis(), &changes)
        .map_err(|e| ApiError::Internal(format!("validator-set changes: {e}")))
}

fn finality(
    genesis: &Genesis,
    sets: &chain_core::governance::ValidatorSetHistory,
    b: &CommittedBlock,
) -> FinalityView {
    block_finality(genesis, &sets.at(b.block.header.height).set, b).into()
}

fn summary(
    genesis: &Genesis,
    sets: &chain_core::governance::ValidatorSetHistory,
    b: &CommittedBlock,
) -> BlockSummary {
    BlockSummary {
        height: b.block.header.height,
        hash: b.hash.to_hex(),
        time: b.block.header.time.clone(),
        transaction_count: b.block.header.transaction_count,
        proposer: b.block.header.proposer.clone(),
        finality: finality(genesis, sets, b),
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChainHead {
    pub chain_id: String,
    pub hash_alg: String,
    /// 0 while only the genesis exists.
    pub height: u64,
    /// The head block, absent at height 0.
    pub block: Option<BlockSummary>,
}

/// The chain's head and its finality.
#[utoipa::path(get, path = "/chain/head", tag = "chain",
    responses((status = 200, body = ChainHead), (status = 503, body = veritrace_kernel::Problem)))]
pub async fn head(explorer: web::Data<Explorer>) -> Result<HttpResponse, ApiError> {
    let chain = &explorer.chain;
    let genesis = chain.genesis();
    let height = chain.head().await.map_err(unavailable)?;
    let sets = set_history(chain).await?;
    let block = match height {
        0 => None,
        h => chain
            .block(h)
            .await
            .map_err(unavailable)?
            .map(|b| summary(genesis, &sets, &b)),
    };
    Ok(HttpResponse::Ok().json(ChainHead {
        chain_id: genesis.chain_id.clone(),
        hash_alg: genesis.hash_alg.name().to_string(),
        height,
        block,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BlocksQuery {
    /// Only blocks below this height (default: from the head).
    #[param(minimum = 0)]
    pub before: Option<i64>,
    /// At most this many blocks (1-100, default 20), newest first.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BlockList {
    pub items: Vec<BlockSummary>,
}

/// Blocks, newest first.
#[utoipa::path(get, path = "/chain/blocks", tag = "chain", params(BlocksQuery),
    responses((status = 200, body = BlockList), (status = 422, body = veritrace_kernel::Problem)))]
pub async fn blocks(
    explorer: web::Data<Explorer>,
    ValidQuery(q): ValidQuery<BlocksQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 100"));
    }
    let before = q
        .before
        .map(|b| u64::try_from(b).map_err(|_| ApiError::field("before", "must not be negative")))
        .transpose()?;
    let chain = &explorer.chain;
    let head = chain.head().await.map_err(unavailable)?;
    let top = before
        .map(|b| b.saturating_sub(1))
        .unwrap_or(head)
        .min(head);
    let sets = set_history(chain).await?;
    let mut items = Vec::new();
    let mut h = top;
    while h >= 1 && (items.len() as u64) < limit {
        if let Some(b) = chain.block(h).await.map_err(unavailable)? {
            items.push(summary(chain.genesis(), &sets, &b));
        }
        h -= 1;
    }
    Ok(HttpResponse::Ok().json(BlockList { items }))
}

/// The block at the height a path names: 422 for a height that is not one, 404 for none yet.
async fn block_at(chain: &Arc<dyn ChainClient>, height: &str) -> Result<CommittedBlock, ApiError> {
    let height: u64 = height
        .parse()
        .map_err(|_| ApiError::field("height", "must be a non-negative integer"))?;
    chain
        .block(height)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::NotFound(format!("no block at height {height}")))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BlockDetail {
    /// The committed block: header, transactions, hash and attestations.
    #[schema(value_type = Object)]
    pub block: serde_json::Value,
    /// Hash of each transaction, in block order.
    pub transaction_hashes: Vec<String>,
    pub finality: FinalityView,
}

/// One block with its transactions and attestations.
#[utoipa::path(get, path = "/chain/blocks/{height}", tag = "chain",
    params(("height" = i64, Path, minimum = 0)),
    responses((status = 200, body = BlockDetail), (status = 404, body = veritrace_kernel::Problem),
        (status = 422, body = veritrace_kernel::Problem)))]
pub async fn block(
    explorer: web::Data<Explorer>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let chain = &explorer.chain;
    let b = block_at(chain, &path).await?;
    let alg = chain.genesis().hash_alg;
    let transaction_hashes = b
        .block
        .transactions
        .iter()
        .map(|t| t.hash(alg).map(|h: Digest| h.to_hex()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let sets = set_history(chain).await?;
    let finality = finality(chain.genesis(), &sets, &b);
    Ok(HttpResponse::Ok().json(BlockDetail {
        block: serde_json::to_value(&b).map_err(|e| ApiError::Internal(e.to_string()))?,
        transaction_hashes,
        finality,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidatorSetEntry {
    /// First height the set attests.
    pub from_height: u64,
    pub hash: String,
    #[schema(value_type = Object)]
    pub validator_set: ValidatorSet,
    /// Height of the block that committed the change bringing this set in (absent for the
    /// genesis set).
    pub committed_height: Option<u64>,
    pub transaction_hash: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidatorSetHistory {
    pub items: Vec<ValidatorSetEntry>,
}

/// The validator sets of the chain, oldest first (the genesis set from height 1), each change
/// verified against the set before it.
#[utoipa::path(get, path = "/chain/validator-sets", tag = "chain",
    responses((status = 200, body = ValidatorSetHistory), (status = 503, body = veritrace_kernel::Problem)))]
pub async fn validator_sets(explorer: web::Data<Explorer>) -> Result<HttpResponse, ApiError> {
    let sets = set_history(&explorer.chain).await?;
    Ok(HttpResponse::Ok().json(ValidatorSetHistory {
        items: sets
            .epochs()
            .iter()
            .map(|e| ValidatorSetEntry {
                from_height: e.from_height,
                hash: e.hash.to_hex(),
                validator_set: e.set.clone(),
                committed_height: e.change.as_ref().map(|c| c.committed_height),
                transaction_hash: e.change.as_ref().map(|c| c.transaction_hash.to_hex()),
            })
            .collect(),
    }))
}

/// Every validator-set change committed in a final block, oldest first, approvals included:
/// what a client needs to follow the validator sets from the genesis itself.
#[utoipa::path(get, path = "/chain/validator-set-changes", tag = "chain",
    responses((status = 200, body = Vec<Object>), (status = 503, body = veritrace_kernel::Problem)))]
pub async fn validator_set_changes(
    explorer: web::Data<Explorer>,
) -> Result<HttpResponse, ApiError> {
    let changes = explorer
        .chain
        .validator_set_changes()
        .await
        .map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(changes))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource!("/chain/head", get => head))
        .service(resource!("/chain/blocks", get => blocks))
        .service(resource!("/chain/blocks/{height}", get => block))
        .service(resource!("/chain/validator-sets", get => validator_sets))
        .service(resource!("/chain/validator-set-changes", get => validator_set_changes));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(head, blocks, block, validator_sets, validator_set_changes))]
pub struct ExplorerApi;
