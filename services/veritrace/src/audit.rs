//! `veritrace audit`: recomputes every event digest from the stores, rebuilds every batch root
//! and compares them with the chain; lists every altered, missing or extra row (ADR 0002 §2.7).
//!
//! It trusts neither the stores nor the operator: digests come from the envelopes' own text,
//! roots from those digests, and a block counts only when its attestations make it final
//! against the genesis the auditor supplies.

use chain_core::block::Transaction;
use chain_core::genesis::Genesis;
use chain_core::{ChainClient, Digest};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;
use veritrace_kernel::EventEnvelope;
use veritrace_kernel::config::Config;
use veritrace_kernel::db::Database;
use veritrace_kernel::on_pool;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Rows read per query.
const PAGE: i64 = 10_000;

#[derive(clap::Args, Debug)]
pub struct AuditOptions {
    /// Configuration file (TOML): `database.url` names the PostgreSQL database of a distributed
    /// deployment; without it, the embedded SQLite files of `--data-dir` are read.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The embedded data directory (overrides `data_dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A node API (a validator, or the anchor service's explorer) to read blocks from;
    /// repeatable.
    #[arg(long = "chain-node", required = true)]
    pub chain_nodes: Vec<String>,
    /// The consortium's genesis document: blocks count only if final against it.
    #[arg(long)]
    pub genesis: PathBuf,
    /// Events younger than this, or still in an outbox, are pending rather than findings
    /// (`90s`, `5m`, `1h`, `0s`).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub grace: Duration,
    /// Machine-readable report on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, e.g. 90s, 5m, 1h"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?}: the unit must be s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A row does not hash to its recorded or anchored digest, or a root or location differs.
    Altered,
    /// A row the anchored history proves existed is gone.
    Missing,
    /// A row nothing accounts for: never anchored, not pending, not in the history.
    Extra,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// `events`, `leaves`, `batches` or `chain`.
    pub object: &'static str,
    /// The schema or file: a registered domain's, or `anchor`.
    pub store: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    pub detail: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Checked {
    pub events: usize,
    pub leaves: usize,
    pub batches: usize,
    pub blocks: u64,
}

#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub clean: bool,
    pub checked: Checked,
    pub findings: Vec<Finding>,
    /// Events not yet anchored but within the grace period or still in an outbox.
    pub pending: usize,
    /// Registered domains with no event store here (never started in this deployment):
    /// nothing of theirs to read. An anchored event of one would still be found missing, from
    /// its leaf.
    pub absent_stores: Vec<String>,
}

impl std::fmt::Display for AuditReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for x in &self.findings {
            let kind = match x.kind {
                FindingKind::Altered => "ALTERED",
                FindingKind::Missing => "MISSING",
                FindingKind::Extra => "EXTRA",
            };
            write!(f, "{kind} {}.{}", x.store, x.object)?;
            if let Some(p) = x.position {
                write!(f, " position={p}")?;
            }
            if let Some(e) = &x.event_id {
                write!(f, " event={e}")?;
            }
            if let Some(b) = &x.batch_id {
                write!(f, " batch={b}")?;
            }
            if let Some(h) = x.height {
                write!(f, " block={h}")?;
            }
            writeln!(f, ": {}", x.detail)?;
        }
        writeln!(
            f,
            "checked {} events, {} leaves, {} batches, {} blocks; {} findings; {} pending",
            self.checked.events,
            self.checked.leaves,
            self.checked.batches,
            self.checked.blocks,
            self.findings.len(),
            self.pending
        )?;
        if !self.absent_stores.is_empty() {
            writeln!(
                f,
                "no event store for {} (never started here): nothing of theirs to check",
                self.absent_stores.join(", ")
            )?;
        }
        Ok(())
    }
}

/// The stores as the audit reads them.
pub struct Stores {
    pub domains: Vec<(String, Database)>,
    pub anchor: Database,
    /// Registered domains without an event store here.
    pub absent: Vec<String>,
}

impl Stores {
    /// PostgreSQL when `database.url` is set, else the embedded files (which must exist: an
    /// audit never creates a store).
    pub async fn open(config: &Config) -> Result<Stores, BoxError> {
        if config.database.url.is_some() {
            let (mut domains, mut absent) = (Vec::new(), Vec::new());
            for d in crate::domains::DOMAINS {
                let db = Database::postgres(&config.database, d.name(), "audit")?;
                if has_event_table(&db, d.name()).await? {
                    domains.push((d.name().to_string(), db));
                } else {
                    absent.push(d.name().to_string());
                }
            }
            let anchor = Database::postgres(&config.database, "anchor", "audit")?;
            return Ok(Stores {
                domains,
                anchor,
                absent,
            });
        }
        let existing = |p: PathBuf| -> Result<PathBuf, BoxError> {
            if p.exists() {
                Ok(p)
            } else {
                Err(format!(
                    "{} does not exist: point --data-dir at an embedded data directory, or set database.url",
                    p.display()
                )
                .into())
            }
        };
        // The anchor's store first: without it this is no data directory at all.
        let anchor = Database::open(&existing(config.data_dir.join("anchor.db"))?).await?;
        let (mut domains, mut absent) = (Vec::new(), Vec::new());
        for d in crate::domains::DOMAINS {
            let events = veritrace_kernel::domain::event_store_file(&config.data_dir, d.name());
            if events.exists() {
                domains.push((d.name().to_string(), Database::open(&events).await?));
            } else {
                absent.push(d.name().to_string());
            }
        }
        Ok(Stores {
            domains,
            anchor,
            absent,
        })
    }
}

/// Whether the schema `schema` holds an event store (a domain that never started has none).
async fn has_event_table(db: &Database, schema: &str) -> Result<bool, BoxError> {
    let found: i64 = on_pool!(db, reader, |pool| {
        sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM information_schema.tables
             WHERE table_schema = $1 AND table_name = 'events'",
        )
        .bind(schema)
        .fetch_one(pool)
        .await
    })?;
    Ok(found > 0)
}

type EventRow = (i64, String, String, i64, String, String, String, i64);
type LeafRow = (i64, String, String, String, Option<String>, Option<i64>);
type BatchRow = (String, String, i64, Option<i64>, Option<i64>);

/// An event as recomputed from its envelope text.
struct EventSeen {
    store: String,
    position: i64,
    /// Recomputed digest, when the row is intact (hashes to its own digest column).
    intact_digest: Option<Digest>,
}

struct Audit<'a> {
    genesis: &'a Genesis,
    findings: Vec<Finding>,
}

impl Audit<'_> {
    fn find(
        &mut self,
        kind: FindingKind,
        object: &'static str,
        store: &str,
        detail: String,
    ) -> &mut Finding {
        self.findings.push(Finding {
            kind,
            object,
            store: store.to_string(),
            event_id: None,
            position: None,
            batch_id: None,
            height: None,
            detail,
        });
        let last = self.findings.len() - 1;
        &mut self.findings[last]
    }

    /// Re-canonicalises and hashes an envelope's stored text with the genesis' algorithm.
    fn recompute(&self, text: &str) -> Result<(EventEnvelope, String, Digest), String> {
        let env: EventEnvelope =
            serde_json::from_str(text).map_err(|e| format!("envelope is not an event: {e}"))?;
        let sealed = env.clone().seal(self.genesis.hash_alg);
        Ok((env, sealed.canonical, sealed.digest))
    }
}

/// Runs the audit. Errors mean the audit could not be done (exit 2), not findings.
pub async fn run(
    stores: &Stores,
    chain: &dyn ChainClient,
    grace: Duration,
) -> Result<AuditReport, BoxError> {
    let genesis = chain.genesis().clone();
    let mut audit = Audit {
        genesis: &genesis,
        findings: Vec::new(),
    };
    let now = chrono::Utc::now();
    let mut checked = Checked::default();
    let mut pending = 0;

    // 1. Events of every domain store.
    let mut events: HashMap<String, EventSeen> = HashMap::new();
    // event id -> (store, position, in outbox, recorded_at) of events to match with leaves.
    let mut unmatched: HashMap<String, (String, i64, bool, String)> = HashMap::new();
    let mut streams: HashMap<(String, String), Vec<(i64, i64)>> = HashMap::new();
    for (store, db) in &stores.domains {
        let mut after = 0i64;
        loop {
            let rows: Vec<EventRow> = on_pool!(db, reader, |pool| {
                sqlx::query_as(
                    "SELECT e.position, CAST(e.event_id AS TEXT), e.stream, e.stream_version, e.event_type,
                            e.envelope, e.digest,
                            CAST(CASE WHEN o.position IS NULL THEN 0 ELSE 1 END AS BIGINT)
                     FROM events e LEFT JOIN outbox o ON o.position = e.position
                     WHERE e.position > $1 ORDER BY e.position LIMIT $2",
                )
                .bind(after)
                .bind(PAGE)
                .fetch_all(pool)
                .await
            })?;
            let Some(last) = rows.last() else { break };
            after = last.0;
            for (position, event_id, stream, version, event_type, text, digest, in_outbox) in rows {
                checked.events += 1;
                streams
                    .entry((store.clone(), stream.clone()))
                    .or_default()
                    .push((version, position));
                let mut seen = EventSeen {
                    store: store.clone(),
                    position,
                    intact_digest: None,
                };
                match audit.recompute(&text) {
                    Err(reason) => {
                        let f = audit.find(FindingKind::Altered, "events", store, reason);
                        f.position = Some(position);
                        f.event_id = Some(event_id.clone());
                    }
                    Ok((env, canonical, recomputed)) => {
                        let columns_match = env.id.to_string() == event_id
                            && env.stream == stream
                            && env.stream_version as i64 == version
                            && env.event_type == event_type;
                        let problem = if canonical != text {
                            Some("envelope text is not its own canonical form".to_string())
                        } else if recomputed.to_hex() != digest {
                            Some(format!(
                                "recomputed digest {recomputed} differs from the recorded {digest}"
                            ))
                        } else if !columns_match {
                            Some("columns disagree with the envelope".to_string())
                        } else {
                            None
                        };
                        match problem {
                            Some(detail) => {
                                let f = audit.find(FindingKind::Altered, "events", store, detail);
                                f.position = Some(position);
                                f.event_id = Some(event_id.clone());
                            }
                            None => {
                                seen.intact_digest = Some(recomputed);
                                unmatched.insert(
                                    event_id.clone(),
                                    (store.clone(), position, in_outbox == 1, env.recorded_at),
                                );
                            }
                        }
                    }
                }
                events.insert(event_id, seen);
            }
        }
    }

    // 2. Leaves.
    let batches: Vec<BatchRow> = on_pool!(&stores.anchor, reader, |pool| {
        sqlx::query_as("SELECT batch_id, root, size, block_height, tx_index FROM batches")
            .fetch_all(pool)
            .await
    })?;
    let anchored_batches: HashSet<&str> = batches
        .iter()
        .filter(|b| b.3.is_some())
        .map(|b| b.0.as_str())
        .collect();
    // batch id -> (leaf index, recomputed digest) of its leaves.
    let mut batch_leaves: HashMap<String, Vec<(i64, Digest)>> = HashMap::new();
    let mut missing_streams: HashSet<(String, String)> = HashSet::new();
    let mut after = 0i64;
    loop {
        let rows: Vec<LeafRow> = on_pool!(&stores.anchor, reader, |pool| {
            // Each leaf's batch and index found by its key (subqueries, which statistics cannot
            // turn into reading every sealed leaf for each page).
            sqlx::query_as(
                "SELECT r.seq, r.digest, r.event_id, r.envelope,
                     (SELECT s.batch_id FROM sealed_leaves s WHERE s.seq = r.seq),
                     (SELECT s.leaf_index FROM sealed_leaves s WHERE s.seq = r.seq)
                 FROM received_leaves r WHERE r.seq > $1 ORDER BY r.seq LIMIT $2",
            )
            .bind(after)
            .bind(PAGE)
            .fetch_all(pool)
            .await
        })?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        for (_, digest, event_id, text, batch_id, leaf_index) in rows {
            checked.leaves += 1;
            // A leaf of the embedded mode keeps no envelope: its event store does, and its
            // digest is checked against the store's envelope below and against its batch's
            // root on the chain.
            let kept_by_store = text.is_empty();
            let digest_of_leaf = if kept_by_store {
                digest
                    .parse::<Digest>()
                    .map_err(|e| format!("the recorded digest {digest:?} is not one: {e}"))
            } else {
                audit.recompute(&text).map(|(_, _, d)| d)
            };
            let recomputed = match digest_of_leaf {
                Ok(d) if kept_by_store || d.to_hex() == digest => d,
                Ok(d) => {
                    let f = audit.find(
                        FindingKind::Altered,
                        "leaves",
                        "anchor",
                        format!("recomputed digest {d} differs from the recorded {digest}"),
                    );
                    f.event_id = Some(event_id.clone());
                    f.batch_id = batch_id.clone();
                    d
                }
                Err(reason) => {
                    let f = audit.find(FindingKind::Altered, "leaves", "anchor", reason);
                    f.event_id = Some(event_id.clone());
                    f.batch_id = batch_id.clone();
                    continue;
                }
            };
            if let (Some(b), Some(i)) = (&batch_id, leaf_index) {
                batch_leaves
                    .entry(b.clone())
                    .or_default()
                    .push((i, recomputed));
            }
            let in_anchored = batch_id
                .as_deref()
                .is_some_and(|b| anchored_batches.contains(b));
            match events.get(&event_id) {
                Some(seen) => {
                    unmatched.remove(&event_id);
                    // An event already reported altered is not reported twice.
                    if let Some(d) = seen.intact_digest
                        && d != recomputed
                    {
                        let f = audit.find(
                            FindingKind::Altered,
                            "events",
                            &seen.store,
                            format!("hashes to {d} but was anchored as {recomputed}"),
                        );
                        f.event_id = Some(event_id.clone());
                        f.position = Some(seen.position);
                        f.batch_id = batch_id.clone();
                    }
                }
                None if in_anchored => {
                    let stream = serde_json::from_str::<EventEnvelope>(&text)
                        .map(|e| (e.service.clone(), e.stream))
                        .unwrap_or_default();
                    let store = if kept_by_store {
                        "its event store"
                    } else {
                        stream.0.as_str()
                    };
                    let f = audit.find(
                        FindingKind::Missing,
                        "events",
                        store,
                        format!("anchored event (leaf {recomputed}) is gone from the store"),
                    );
                    f.event_id = Some(event_id.clone());
                    f.batch_id = batch_id.clone();
                    missing_streams.insert(stream);
                }
                None => {
                    let f = audit.find(
                        FindingKind::Extra,
                        "leaves",
                        "anchor",
                        "a leaf no event accounts for, outside any anchored batch".into(),
                    );
                    f.event_id = Some(event_id.clone());
                    f.batch_id = batch_id.clone();
                }
            }
        }
    }

    // Stream version gaps not already explained by a missing anchored event.
    for ((store, stream), mut versions) in streams {
        versions.sort();
        let gap = versions
            .iter()
            .enumerate()
            .find(|(i, (v, _))| *v != *i as i64 + 1);
        if let Some((i, (v, position))) = gap
            && !missing_streams.contains(&(store.clone(), stream.clone()))
        {
            let f = audit.find(
                FindingKind::Missing,
                "events",
                &store,
                format!(
                    "stream {stream} jumps to version {v} where {} was due",
                    i + 1
                ),
            );
            f.position = Some(*position);
        }
    }

    // Events with no leaf: pending while in an outbox or within the grace period.
    for (event_id, (store, position, in_outbox, recorded_at)) in unmatched {
        let young = chrono::DateTime::parse_from_rfc3339(&recorded_at)
            .map(|t| {
                now.signed_duration_since(t)
                    .to_std()
                    .map(|age| age < grace)
                    .unwrap_or(true)
            })
            .unwrap_or(false);
        if in_outbox || young {
            pending += 1;
            continue;
        }
        let f = audit.find(
            FindingKind::Extra,
            "events",
            &store,
            "never anchored and not pending: forged, or lost before anchoring".into(),
        );
        f.event_id = Some(event_id);
        f.position = Some(position);
    }

    // 3. Batches: indices 0..size-1, root from the recomputed digests.
    for (batch_id, root, size, _, _) in &batches {
        checked.batches += 1;
        let mut leaves = batch_leaves.remove(batch_id).unwrap_or_default();
        leaves.sort_by_key(|(i, _)| *i);
        let indices_ok = leaves.len() as i64 == *size
            && leaves.iter().enumerate().all(|(n, (i, _))| *i == n as i64);
        let digests: Vec<Digest> = leaves.iter().map(|(_, d)| *d).collect();
        let rebuilt = veritrace_anchor::domain::batch_tree(genesis.hash_alg, &digests).root();
        if !indices_ok {
            let f = audit.find(
                FindingKind::Missing,
                "leaves",
                "anchor",
                format!(
                    "batch of {size} holds {} leaves with indices out of order",
                    leaves.len()
                ),
            );
            f.batch_id = Some(batch_id.clone());
        } else if rebuilt.to_hex() != *root {
            let f = audit.find(
                FindingKind::Altered,
                "batches",
                "anchor",
                format!("root {root} but the leaves rebuild {rebuilt}"),
            );
            f.batch_id = Some(batch_id.clone());
        }
    }

    // 4. The chain: every final block, its anchor transactions for this chain.
    let head = chain.head().await?;
    let mut on_chain: BTreeMap<String, Vec<(u64, u32, Digest, u64)>> = BTreeMap::new();
    for height in 1..=head {
        let Some(block) = chain.block(height).await? else {
            return Err(format!(
                "block {height} is not final against the genesis given (chain {}): no node \
                 asked serves it with a quorum of that genesis's validators",
                genesis.chain_id
            )
            .into());
        };
        checked.blocks += 1;
        for (index, tx) in block.block.transactions.iter().enumerate() {
            if let Transaction::Anchor(a) = tx
                && a.chain_id == genesis.chain_id
            {
                on_chain.entry(a.batch_id.clone()).or_default().push((
                    height,
                    index as u32,
                    a.batch_root,
                    a.batch_size,
                ));
            }
        }
    }
    for (batch_id, root, size, height, index) in &batches {
        let located = on_chain.remove(batch_id);
        match (height, located) {
            (Some(h), None) => {
                let f = audit.find(
                    FindingKind::Missing,
                    "chain",
                    "anchor",
                    format!("marked anchored at block {h}, but no final block holds it"),
                );
                f.batch_id = Some(batch_id.clone());
                f.height = Some(*h as u64);
            }
            (_, Some(txs)) => {
                if txs.len() > 1 {
                    let f = audit.find(
                        FindingKind::Extra,
                        "chain",
                        "anchor",
                        format!("anchored {} times", txs.len()),
                    );
                    f.batch_id = Some(batch_id.clone());
                }
                let (h, i, chain_root, chain_size) = txs[0];
                let location_ok =
                    height.is_none_or(|sh| sh as u64 == h && index.is_none_or(|si| si as u32 == i));
                if chain_root.to_hex() != *root || chain_size as i64 != *size || !location_ok {
                    let f = audit.find(
                        FindingKind::Altered,
                        "batches",
                        "anchor",
                        format!(
                            "store says root {root}, size {size}, block {height:?}; chain says root {chain_root}, size {chain_size}, block {h}"
                        ),
                    );
                    f.batch_id = Some(batch_id.clone());
                    f.height = Some(h);
                }
            }
            (None, None) => {} // sealed, not yet anchored: the anchor service's job
        }
    }
    for (batch_id, txs) in on_chain {
        let f = audit.find(
            FindingKind::Missing,
            "batches",
            "anchor",
            "anchored on the chain, absent from the store".into(),
        );
        f.batch_id = Some(batch_id);
        f.height = Some(txs[0].0);
    }

    let mut findings = audit.findings;
    findings.sort_by(|a, b| (a.kind, a.object).cmp(&(b.kind, b.object)));
    Ok(AuditReport {
        clean: findings.is_empty(),
        checked,
        findings,
        pending,
        absent_stores: stores.absent.clone(),
    })
}

/// `veritrace audit` as the binary runs it.
pub async fn command(opts: AuditOptions) -> Result<AuditReport, BoxError> {
    let mut config = Config::load(opts.config.as_deref())?;
    if let Some(d) = &opts.data_dir {
        config.data_dir = d.clone();
    }
    let genesis = crate::platform::read_genesis(&opts.genesis)?;
    let nodes = opts.chain_nodes.clone();
    let chain_id = genesis.chain_id.clone();
    tokio::task::spawn_blocking(move || same_chain(&chain_id, &nodes)).await??;
    let chain = chain_node::RemoteChain::new(genesis, opts.chain_nodes.clone())?;
    let stores = Stores::open(&config).await?;
    run(&stores, &chain, opts.grace).await
}

/// Refuses to audit against nodes that serve another chain than the genesis given: every block
/// would then look "not final", which names the wrong cause.
fn same_chain(chain_id: &str, nodes: &[String]) -> Result<(), BoxError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(5)))
        .build()
        .into();
    for node in nodes {
        let url = format!("{}/chain/genesis", node.trim_end_matches('/'));
        let Ok(mut resp) = agent.get(&url).call() else {
            continue; // unreachable nodes are the chain client's to report
        };
        let status = resp.status().as_u16();
        let served = resp.body_mut().read_json::<serde_json::Value>().ok();
        let Some(served) = served.as_ref().and_then(|g| g["chain_id"].as_str()) else {
            return Err(format!(
                "{node} does not serve a chain (GET /chain/genesis answered {status}): \
                 --chain-node names a validator's node API, or the platform that runs the \
                 embedded validator or the anchor"
            )
            .into());
        };
        if served != chain_id {
            return Err(format!(
                "{node} serves chain {served}, but the genesis given is chain {chain_id}: \
                 audit against the genesis of the chain those nodes run (--genesis)"
            )
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("m").is_err());
    }
}
