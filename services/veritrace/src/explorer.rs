//! The chain explorer API: blocks, their transactions and attestations, the head and its
//! finality, and the validator sets. Chain data is public (headers and batch roots reveal no
//! event content), so these endpoints need no API key.

use actix_web::{HttpResponse, web};
use chain_core::receipt::{Finality, block_finality};
use chain_core::{ChainClient, CommittedBlock, Digest, Genesis, ValidatorSet};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use veritrace_kernel::ApiError;
use veritrace_kernel::http::ValidQuery;

/// The chain the explorer shows.
#[derive(Clone)]
pub struct Explorer {
    pub chain: Arc<dyn ChainClient>,
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

fn summary(genesis: &Genesis, b: &CommittedBlock) -> BlockSummary {
    BlockSummary {
        height: b.block.header.height,
        hash: b.hash.to_hex(),
        time: b.block.header.time.clone(),
        transaction_count: b.block.header.transaction_count,
        proposer: b.block.header.proposer.clone(),
        finality: block_finality(genesis, b).into(),
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
    let block = match height {
        0 => None,
        h => chain
            .block(h)
            .await
            .map_err(unavailable)?
            .map(|b| summary(genesis, &b)),
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
    pub before: Option<u64>,
    /// At most this many blocks (1-100, default 20), newest first.
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
    let chain = &explorer.chain;
    let head = chain.head().await.map_err(unavailable)?;
    let top = q
        .before
        .map(|b| b.saturating_sub(1))
        .unwrap_or(head)
        .min(head);
    let mut items = Vec::new();
    let mut h = top;
    while h >= 1 && (items.len() as u64) < limit {
        if let Some(b) = chain.block(h).await.map_err(unavailable)? {
            items.push(summary(chain.genesis(), &b));
        }
        h -= 1;
    }
    Ok(HttpResponse::Ok().json(BlockList { items }))
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
    params(("height" = u64, Path)),
    responses((status = 200, body = BlockDetail), (status = 404, body = veritrace_kernel::Problem),
        (status = 422, body = veritrace_kernel::Problem)))]
pub async fn block(
    explorer: web::Data<Explorer>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let height: u64 = path
        .parse()
        .map_err(|_| ApiError::field("height", "must be a non-negative integer"))?;
    let chain = &explorer.chain;
    let b = chain
        .block(height)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::NotFound(format!("no block at height {height}")))?;
    let alg = chain.genesis().hash_alg;
    let transaction_hashes = b
        .block
        .transactions
        .iter()
        .map(|t| t.hash(alg).map(|h: Digest| h.to_hex()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let finality = block_finality(chain.genesis(), &b).into();
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
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidatorSetHistory {
    pub items: Vec<ValidatorSetEntry>,
}

/// The validator sets of the chain, oldest first (the genesis set from height 1).
#[utoipa::path(get, path = "/chain/validator-sets", tag = "chain",
    responses((status = 200, body = ValidatorSetHistory)))]
pub async fn validator_sets(explorer: web::Data<Explorer>) -> Result<HttpResponse, ApiError> {
    let genesis = explorer.chain.genesis();
    let hash = genesis
        .validator_set
        .hash(genesis.hash_alg)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(ValidatorSetHistory {
        items: vec![ValidatorSetEntry {
            from_height: 1,
            hash: hash.to_hex(),
            validator_set: genesis.validator_set.clone(),
        }],
    }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/chain/head", web::get().to(head))
        .route("/chain/blocks", web::get().to(blocks))
        .route("/chain/blocks/{height}", web::get().to(block))
        .route("/chain/validator-sets", web::get().to(validator_sets));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(head, blocks, block, validator_sets))]
pub struct ExplorerApi;
