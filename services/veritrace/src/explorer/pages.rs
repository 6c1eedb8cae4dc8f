//! The chain explorer's pages, for people: server-rendered (tera), no JavaScript. The head and
//! its finality with live figures, recent blocks, a block with its transactions and
//! attestations, a batch, the validator sets and their history, and the misbehaviour the
//! validators reported. They read what the explorer API serves, from the same functions.

use super::{Explorer, FinalityView, block_at, finality, set_history, unavailable};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chain_core::governance::ValidatorSetHistory;
use chain_core::{CommittedBlock, Transaction};
use serde::Serialize;
use veritrace_kernel::{ApiError, resource};

/// Blocks on the explorer's first page.
const RECENT_BLOCKS: u64 = 20;
/// Anchored batches the time-to-anchor figures are taken over.
const RECENT_BATCHES: i64 = 50;

pub struct ExplorerTemplates(pub tera::Tera);

pub fn templates() -> Result<tera::Tera, tera::Error> {
    let mut t = tera::Tera::default();
    macro_rules! template {
        ($name:literal) => {
            (
                $name,
                include_str!(concat!("../../../../frontend/templates/explorer/", $name)),
            )
        };
    }
    t.add_raw_templates([
        template!("base.html"),
        template!("macros.html"),
        template!("index.html"),
        template!("block.html"),
        template!("batch.html"),
        template!("validators.html"),
        template!("misbehaviour.html"),
        template!("problem.html"),
    ])?;
    Ok(t)
}

/// A page, or the explorer's own page for what went wrong (a 404 for an unknown block, a 503
/// while the chain cannot be read).
async fn page<F>(templates: &ExplorerTemplates, name: &str, fill: F) -> HttpResponse
where
    F: std::future::Future<Output = Result<tera::Context, ApiError>>,
{
    let (status, rendered) = match fill.await {
        Ok(ctx) => (StatusCode::OK, templates.0.render(name, &ctx)),
        Err(e) => {
            let status = actix_web::ResponseError::status_code(&e);
            let mut ctx = tera::Context::new();
            ctx.insert("status", &status.as_u16());
            ctx.insert("detail", &e.to_string());
            (status, templates.0.render("problem.html", &ctx))
        }
    };
    match rendered {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => actix_web::ResponseError::error_response(&ApiError::Internal(format!(
            "explorer page {name}: {e}"
        ))),
    }
}

/// One row of a block list.
#[derive(Serialize)]
struct BlockRow {
    height: u64,
    hash: String,
    time: String,
    proposer: String,
    transactions: u64,
    /// Events anchored in the block (the sizes of its batches).
    events: u64,
    finality: FinalityView,
}

fn anchored_events(b: &CommittedBlock) -> u64 {
    b.block
        .transactions
        .iter()
        .map(|t| match t {
            Transaction::Anchor(a) => a.batch_size,
            _ => 0,
        })
        .sum()
}

fn block_row(explorer: &Explorer, sets: &ValidatorSetHistory, b: &CommittedBlock) -> BlockRow {
    BlockRow {
        height: b.block.header.height,
        hash: b.hash.to_hex(),
        time: b.block.header.time.clone(),
        proposer: b.block.header.proposer.clone(),
        transactions: b.block.header.transaction_count,
        events: anchored_events(b),
        finality: finality(explorer.chain.genesis(), sets, b),
    }
}

/// The anchoring service, which the pages are only served beside.
fn anchoring(explorer: &Explorer) -> Result<&veritrace_anchor::AnchorService, ApiError> {
    explorer
        .anchor
        .as_deref()
        .ok_or_else(|| ApiError::Unavailable("no anchoring service in this process".into()))
}

fn millis_between(from: &str, to: &str) -> Option<i64> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    Some((parse(to)? - parse(from)?).num_milliseconds())
}

/// Live figures: events anchored per second over the recent blocks, leaves waiting to be
/// sealed, and how long the oldest event of each recent batch waited to be anchored.
#[derive(Serialize)]
struct Figures {
    events_per_second: Option<String>,
    over_seconds: Option<String>,
    pending_leaves: u64,
    batches: usize,
    wait_median_ms: Option<i64>,
    wait_max_ms: Option<i64>,
}

async fn figures(explorer: &Explorer, rows: &[BlockRow]) -> Result<Figures, ApiError> {
    let store = &anchoring(explorer)?.store;
    let pending_leaves = store
        .pending_leaves()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let anchorings = store
        .recent_anchorings(RECENT_BATCHES)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let mut waits: Vec<i64> = anchorings
        .iter()
        .filter_map(|a| millis_between(&a.first_received_at, &a.anchored_at))
        .collect();
    waits.sort_unstable();
    // The newest block's events are what arrived since the oldest listed block.
    let span = match (rows.first(), rows.last()) {
        (Some(newest), Some(oldest)) if rows.len() > 1 => {
            millis_between(&oldest.time, &newest.time).filter(|ms| *ms > 0)
        }
        _ => None,
    };
    let events: u64 = rows.iter().skip(1).map(|r| r.events).sum();
    Ok(Figures {
        events_per_second: span.map(|ms| format!("{:.1}", events as f64 * 1000.0 / ms as f64)),
        over_seconds: span.map(|ms| format!("{:.1}", ms as f64 / 1000.0)),
        pending_leaves,
        batches: waits.len(),
        wait_median_ms: waits.get(waits.len() / 2).copied(),
        wait_max_ms: waits.last().copied(),
    })
}

fn chain_context(explorer: &Explorer) -> tera::Context {
    let g = explorer.chain.genesis();
    let mut ctx = tera::Context::new();
    ctx.insert("chain_id", &g.chain_id);
    ctx.insert("hash_alg", g.hash_alg.name());
    ctx.insert(
        "signature_alg",
        &serde_json::to_value(g.signature_alg).unwrap_or_default(),
    );
    ctx
}

/// `GET /explorer`: the head, live figures, recent blocks.
pub async fn index(
    explorer: web::Data<Explorer>,
    templates: web::Data<ExplorerTemplates>,
) -> HttpResponse {
    page(&templates, "index.html", async {
        let chain = &explorer.chain;
        let head = chain.head().await.map_err(unavailable)?;
        let sets = set_history(chain).await?;
        let mut rows = Vec::new();
        let mut h = head;
        while h >= 1 && (rows.len() as u64) < RECENT_BLOCKS {
            if let Some(b) = chain.block(h).await.map_err(unavailable)? {
                rows.push(block_row(&explorer, &sets, &b));
            }
            h -= 1;
        }
        let mut ctx = chain_context(&explorer);
        ctx.insert("height", &head);
        ctx.insert("figures", &figures(&explorer, &rows).await?);
        ctx.insert("head", &rows.first());
        ctx.insert("blocks", &rows);
        ctx.insert(
            "misbehaviour",
            &chain
                .misbehaviour()
                .await
                .iter()
                .map(|n| n.reports.as_ref().map(Vec::len).unwrap_or(0))
                .sum::<usize>(),
        );
        Ok(ctx)
    })
    .await
}

#[derive(Serialize)]
struct TransactionRow {
    index: usize,
    hash: String,
    kind: &'static str,
    batch_id: Option<String>,
    batch_root: Option<String>,
    batch_size: Option<u64>,
    effective_height: Option<u64>,
    approvals: Option<usize>,
    validators: Option<usize>,
}

#[derive(Serialize)]
struct AttestationRow {
    validator: String,
    organisation: String,
    power: u64,
    signature: String,
}

/// `GET /explorer/blocks/{height}`: a block, its transactions and its attestations.
pub async fn block(
    explorer: web::Data<Explorer>,
    templates: web::Data<ExplorerTemplates>,
    path: web::Path<String>,
) -> HttpResponse {
    page(&templates, "block.html", async {
        let chain = &explorer.chain;
        let b = block_at(chain, &path).await?;
        let height = b.block.header.height;
        let sets = set_history(chain).await?;
        let alg = chain.genesis().hash_alg;
        let transactions = b
            .block
            .transactions
            .iter()
            .enumerate()
            .map(|(index, t)| transaction_row(alg, index, t))
            .collect::<Result<Vec<_>, _>>()?;
        let set = &sets.at(height).set;
        let attestations: Vec<AttestationRow> = b
            .attestations
            .iter()
            .map(|a| {
                let v = set.get(&a.validator);
                AttestationRow {
                    validator: a.validator.clone(),
                    organisation: v.map(|v| v.organisation.clone()).unwrap_or_default(),
                    power: v.map(|v| v.power).unwrap_or(0),
                    signature: a.signature.clone(),
                }
            })
            .collect();
        let mut ctx = chain_context(&explorer);
        ctx.insert("block", &block_row(&explorer, &sets, &b));
        ctx.insert("header", &b.block.header);
        ctx.insert("transactions", &transactions);
        ctx.insert("attestations", &attestations);
        ctx.insert("set_hash", &sets.at(height).hash.to_hex());
        Ok(ctx)
    })
    .await
}

fn transaction_row(
    alg: chain_core::HashAlg,
    index: usize,
    t: &Transaction,
) -> Result<TransactionRow, ApiError> {
    let hash = t
        .hash(alg)
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .to_hex();
    let mut row = TransactionRow {
        index,
        hash,
        kind: "anchor",
        batch_id: None,
        batch_root: None,
        batch_size: None,
        effective_height: None,
        approvals: None,
        validators: None,
    };
    match t {
        Transaction::Anchor(a) => {
            row.batch_id = Some(a.batch_id.clone());
            row.batch_root = Some(a.batch_root.to_hex());
            row.batch_size = Some(a.batch_size);
        }
        Transaction::ValidatorSetChange(c) => {
            row.kind = "validator-set change";
            row.effective_height = Some(c.effective_height);
            row.approvals = Some(c.approvals.len());
            row.validators = Some(c.validator_set.validators.len());
        }
    }
    Ok(row)
}

/// `GET /explorer/batches/{batch_id}`: a batch as the anchoring service sealed it, and where it
/// is anchored.
pub async fn batch(
    explorer: web::Data<Explorer>,
    templates: web::Data<ExplorerTemplates>,
    path: web::Path<String>,
) -> HttpResponse {
    page(&templates, "batch.html", async {
        let id = path.into_inner();
        let record = anchoring(explorer.get_ref())?
            .store
            .batch(&id)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
            .ok_or_else(|| ApiError::NotFound(format!("no batch {id}")))?;
        let mut ctx = chain_context(&explorer);
        ctx.insert("batch_id", &record.batch_id);
        ctx.insert("root", &record.root.to_hex());
        ctx.insert("size", &record.size);
        ctx.insert("transaction_hash", &record.tx_hash.to_hex());
        ctx.insert("submitted_at", &record.submitted_at);
        ctx.insert("block_height", &record.block_height);
        ctx.insert("transaction_index", &record.tx_index);
        Ok(ctx)
    })
    .await
}

/// `GET /explorer/validators`: every validator set, oldest first, with the change that brought
/// it in.
pub async fn validators(
    explorer: web::Data<Explorer>,
    templates: web::Data<ExplorerTemplates>,
) -> HttpResponse {
    page(&templates, "validators.html", async {
        let sets = set_history(&explorer.chain).await?;
        let epochs: Vec<serde_json::Value> = sets
            .epochs()
            .iter()
            .map(|e| {
                let total: u64 = e.set.validators.iter().map(|v| v.power).sum();
                serde_json::json!({
                    "from_height": e.from_height,
                    "hash": e.hash.to_hex(),
                    "validators": e.set.validators,
                    "total_power": total,
                    "committed_height": e.change.as_ref().map(|c| c.committed_height),
                    "transaction_hash": e.change.as_ref().map(|c| c.transaction_hash.to_hex()),
                })
            })
            .collect();
        let mut ctx = chain_context(&explorer);
        ctx.insert("epochs", &epochs);
        Ok(ctx)
    })
    .await
}

/// `GET /explorer/misbehaviour`: what each validator node reports.
pub async fn misbehaviour(
    explorer: web::Data<Explorer>,
    templates: web::Data<ExplorerTemplates>,
) -> HttpResponse {
    page(&templates, "misbehaviour.html", async {
        let nodes: Vec<serde_json::Value> = explorer
            .chain
            .misbehaviour()
            .await
            .into_iter()
            .map(|n| match n.reports {
                Ok(reports) => serde_json::json!({"node": n.node, "reports": reports}),
                Err(e) => serde_json::json!({"node": n.node, "error": e}),
            })
            .collect();
        let mut ctx = chain_context(&explorer);
        ctx.insert("nodes", &nodes);
        Ok(ctx)
    })
    .await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource!("/explorer", get => index))
        .service(resource!("/explorer/blocks/{height}", get => block))
        .service(resource!("/explorer/batches/{batch_id}", get => batch))
        .service(resource!("/explorer/validators", get => validators))
        .service(resource!("/explorer/misbehaviour", get => misbehaviour));
}
