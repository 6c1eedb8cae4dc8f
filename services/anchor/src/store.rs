//! The anchoring service's storage (sqlx): leaves, batches, rejected events.

use chain_core::Digest;
use veritrace_kernel::db::{Database, ROWS_PER_STATEMENT, row_chunks};
use veritrace_kernel::digest_runs::DigestRuns;
use veritrace_kernel::envelope::now_rfc3339;
use veritrace_kernel::on_pool;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::Instrument;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("anchor store unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    #[error("anchor store holds an unreadable row: {0}")]
    Corrupt(String),
    #[error("batch {0} lost a leaf to another sealer; nothing was written")]
    SealRace(String),
}

impl StoreError {
    /// The database cannot serve now (down, restarting, out of connections): worth waiting.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(e) if veritrace_kernel::db::is_transient(e))
    }
}

type BatchRow = (
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
);
type LeafRow = (String, String, String, Option<String>, Option<i64>, String);
const BATCH_COLUMNS: &str = "batch_id, root, size, tx_hash, submitted_at, block_height, tx_index";

pub struct NewLeaf {
    pub digest: Digest,
    pub event_id: String,
    pub canonical: String,
    /// Who may read its receipt, as the recording service said.
    pub readers: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct LeafRecord {
    pub digest: Digest,
    pub event_id: String,
    pub canonical: String,
    pub batch_id: Option<String>,
    pub leaf_index: Option<i64>,
    /// Who may read its receipt (organisation ids, and `role:court` where courts may).
    pub readers: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct BatchRecord {
    pub batch_id: String,
    pub root: Digest,
    pub size: i64,
    pub tx_hash: Digest,
    pub submitted_at: Option<String>,
    pub block_height: Option<i64>,
    pub tx_index: Option<i64>,
}

/// A batch as anchored: when its oldest leaf arrived and when its block was final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchoring {
    pub batch_id: String,
    pub size: u64,
    pub block_height: u64,
    /// RFC 3339, as the leaves table keeps it.
    pub first_received_at: String,
    pub anchored_at: String,
}

fn digest(s: &str) -> Result<Digest, StoreError> {
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("digest {s:?}: {e}")))
}

#[derive(Clone)]
pub struct AnchorStore {
    db: Database,
    /// Set while a task merges leaf digest runs (SQLite): one at a time does.
    merging: Arc<AtomicBool>,
    /// Set once this store has looked for merge work: the first insert after opening does,
    /// so a merge a shutdown cut short goes on at once.
    merges_resumed: Arc<AtomicBool>,
}

/// Queues the leaves received after `$1` (SQLite: the one writer's, every one of them) as
/// ranges of consecutive `seq`s: one row per run, not one per leaf.
const QUEUE_RECEIVED_SQLITE: &str = "INSERT INTO unsealed_ranges (first_seq, last_seq)
     SELECT MIN(seq), MAX(seq)
     FROM (SELECT seq, seq - ROW_NUMBER() OVER (ORDER BY seq) AS island
           FROM received_leaves WHERE seq > $1) AS received
     GROUP BY island";
/// Inserts the leaves given as arrays (`$1` digests, `$2` event ids, `$3` envelopes, `$4`
/// readers, received at `$5`; PostgreSQL) and queues each new one in a range of the `seq`s the
/// statement drew (others may draw between them), ending in `$on_conflict`. Returns how many
/// were new.
macro_rules! receive_postgres {
    ($on_conflict:literal) => {
        concat!(
            "WITH new AS (
                 INSERT INTO received_leaves (digest, event_id, envelope, readers, received_at)
                 SELECT d, i, e, r, $5
                 FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[])
                     WITH ORDINALITY AS r(d, i, e, r, n)
                 ORDER BY n ",
            $on_conflict,
            "
                 RETURNING seq
             ), queued AS (
                 INSERT INTO unsealed_ranges (first_seq, last_seq)
                 SELECT MIN(seq), MAX(seq)
                 FROM (SELECT seq, seq - ROW_NUMBER() OVER (ORDER BY seq) AS island FROM new) AS received
                 GROUP BY island
                 RETURNING first_seq, last_seq)
             SELECT COALESCE(SUM(last_seq - first_seq + 1), 0)::BIGINT FROM queued"
        )
    };
}
/// Leaves none of which is here yet: fails on a unique index otherwise.
const RECEIVE_POSTGRES: &str = receive_postgres!("");
/// Leaves some of which may be here: those are skipped.
const RECEIVE_AGAIN_POSTGRES: &str = receive_postgres!("ON CONFLICT DO NOTHING");
/// How many leaves wait for a batch.
const WAITING: &str =
    "SELECT CAST(COALESCE(SUM(last_seq - first_seq + 1), 0) AS BIGINT) FROM unsealed_ranges";
/// The oldest `$1` ranges waiting (each holds a leaf at least).
const OLDEST_RANGES: &str =
    "SELECT first_seq, last_seq FROM unsealed_ranges ORDER BY first_seq LIMIT $1";
/// The ranges that hold any leaf from `$1` to `$2`.
const RANGES_OVERLAPPING: &str =
    "SELECT first_seq, last_seq FROM unsealed_ranges WHERE first_seq <= $2 AND last_seq >= $1";
/// The leaves `$1` (a JSON array of `seq`s) with their digests: SQLite walks the array and
/// finds each by its key.
const DIGESTS_OF_SQLITE: &str = "SELECT seq, digest FROM received_leaves
     WHERE seq IN (SELECT value FROM json_each($1)) ORDER BY seq";
/// The same for PostgreSQL.
const DIGESTS_OF_POSTGRES: &str = "SELECT seq, digest FROM received_leaves
     WHERE seq = ANY(ARRAY(SELECT value::BIGINT FROM json_array_elements_text($1::JSON)))
     ORDER BY seq";
/// Takes the ranges `$1` (a JSON array of `[first, last]`) off the queue.
const TAKE_RANGES_SQLITE: &str = "DELETE FROM unsealed_ranges
     WHERE (first_seq, last_seq) IN (SELECT value ->> 0, value ->> 1 FROM json_each($1))";
/// The same for PostgreSQL.
const TAKE_RANGES_POSTGRES: &str = "DELETE FROM unsealed_ranges
     WHERE (first_seq, last_seq) IN
         (SELECT (r ->> 0)::BIGINT, (r ->> 1)::BIGINT FROM json_array_elements($1::JSON) AS j(r))";
/// Queues the ranges `$1` (a JSON array of `[first, last]`) again: what a seal left of the
/// ranges it took leaves from.
const PUT_BACK_SQLITE: &str = "INSERT INTO unsealed_ranges (first_seq, last_seq)
     SELECT value ->> 0, value ->> 1 FROM json_each($1) WHERE true";
/// The same for PostgreSQL.
const PUT_BACK_POSTGRES: &str = "INSERT INTO unsealed_ranges (first_seq, last_seq)
     SELECT (r ->> 0)::BIGINT, (r ->> 1)::BIGINT FROM json_array_elements($1::JSON) AS j(r)";
/// Records the leaves `$2` (a JSON array of `seq`s) as batch `$1`'s, each at its index in the
/// array: narrow rows, appended; the leaves themselves are not written again.
const SEAL_LEAVES_SQLITE: &str = "INSERT INTO sealed_leaves (seq, batch_id, leaf_index)
     SELECT value, $1, key FROM json_each($2) WHERE true";
/// The same for PostgreSQL.
const SEAL_LEAVES_POSTGRES: &str = "INSERT INTO sealed_leaves (seq, batch_id, leaf_index)
     SELECT j.seq::BIGINT, $1, j.n - 1
     FROM json_array_elements_text($2::JSON) WITH ORDINALITY AS j(seq, n)";

/// What is left of the waiting `ranges` once the leaves `seqs` are taken from them; None if a
/// leaf of `seqs` lies in none of them, or is named twice (it is not waiting: another sealer
/// took it).
fn left_after_taking(ranges: &[(i64, i64)], seqs: &[i64]) -> Option<Vec<(i64, i64)>> {
    let mut taken = seqs.to_vec();
    taken.sort_unstable();
    if taken.windows(2).any(|w| w[0] == w[1]) {
        return None;
    }
    let mut ranges = ranges.to_vec();
    ranges.sort_unstable();
    let (mut left, mut i) = (Vec::new(), 0);
    for (first, last) in ranges {
        let mut next = first;
        while i < taken.len() && taken[i] <= last {
            if taken[i] < first {
                return None;
            }
            if taken[i] > next {
                left.push((next, taken[i] - 1));
            }
            next = taken[i] + 1;
            i += 1;
        }
        if next <= last {
            left.push((next, last));
        }
    }
    (i == taken.len()).then_some(left)
}

/// SQLite finds a leaf by its digest through sorted runs, not a unique index: see
/// [`veritrace_kernel::digest_runs`]. PostgreSQL keeps its index on `received_leaves.digest`.
const LEAF_DIGESTS: DigestRuns = DigestRuns {
    source: "received_leaves",
    key: "seq",
    digest: "digest",
    runs: "leaf_digest_runs",
    catalog: "leaf_digest_run_catalog",
    run_entries: veritrace_kernel::digest_runs::RUN_ENTRIES,
};

impl AnchorStore {
    pub fn new(db: &Database) -> Self {
        AnchorStore {
            db: db.clone(),
            merging: Arc::new(AtomicBool::new(false)),
            merges_resumed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Persists leaves, ignoring digests already present. Returns how many were new.
    pub async fn insert_leaves(&self, leaves: &[NewLeaf]) -> Result<u64, StoreError> {
        if leaves.is_empty() {
            return Ok(0);
        }
        let received_at = now_rfc3339();
        let inserted = match &self.db {
            Database::Sqlite(db) => {
                // Multi-row statements in a few cached shapes, in one transaction.
                let mut tx = db.writer.begin_with("BEGIN IMMEDIATE").await?;
                // The one writer: every leaf this inserts comes after the last one there.
                let (before,): (i64,) =
                    sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM received_leaves")
                        .fetch_one(&mut *tx)
                        .await?;
                let mut inserted = 0;
                for chunk in row_chunks(leaves.len(), ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                        "INSERT INTO received_leaves (digest, event_id, envelope, readers, received_at) ",
                    );
                    insert.push_values(&leaves[chunk], |mut row, l| {
                        row.push_bind(l.digest.to_hex())
                            .push_bind(l.event_id.as_str())
                            .push_bind(l.canonical.as_str())
                            .push_bind(readers_text(&l.readers))
                            .push_bind(received_at.as_str());
                    });
                    insert.push(" ON CONFLICT DO NOTHING");
                    inserted += insert.build().execute(&mut *tx).await?.rows_affected();
                }
                sqlx::query(QUEUE_RECEIVED_SQLITE)
                    .bind(before)
                    .execute(&mut *tx)
                    .await?;
                let runs_written = LEAF_DIGESTS.extend(&mut tx).await?;
                tx.commit().await?;
                if runs_written > 0 || !self.merges_resumed.swap(true, Ordering::AcqRel) {
                    self.merge_digest_runs(db);
                }
                inserted
            }
            Database::Postgres(db) => {
                let digests: Vec<String> = leaves.iter().map(|l| l.digest.to_hex()).collect();
                let ids: Vec<&str> = leaves.iter().map(|l| l.event_id.as_str()).collect();
                let envelopes: Vec<&str> = leaves.iter().map(|l| l.canonical.as_str()).collect();
                let readers: Vec<String> =
                    leaves.iter().map(|l| readers_text(&l.readers)).collect();
                // Written as new, the common case, without a check per leaf for its digest
                // and event id; a message delivered again (some of whose leaves are here)
                // fails on a unique index, and is written again leaf by leaf skipping those.
                let receive = |sql: &'static str| {
                    sqlx::query_as::<_, (i64,)>(sql)
                        .bind(&digests)
                        .bind(&ids)
                        .bind(&envelopes)
                        .bind(&readers)
                        .bind(&received_at)
                        .fetch_one(&db.pool)
                };
                let (inserted,) = match receive(RECEIVE_POSTGRES).await {
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        receive(RECEIVE_AGAIN_POSTGRES).await?
                    }
                    other => other?,
                };
                u64::try_from(inserted).unwrap_or(0)
            }
        };
        Ok(inserted)
    }

    /// Merges the leaf digest runs that are due (SQLite), on a task of its own, one chunk per
    /// transaction: receiving and sealing wait for a chunk at most, never for a whole merge.
    fn merge_digest_runs(&self, db: &veritrace_kernel::db::SqliteDatabase) {
        if self.merging.swap(true, Ordering::AcqRel) {
            return;
        }
        let (writer, merging) = (db.writer.clone(), self.merging.clone());
        let merge = async move {
            let merged = async {
                loop {
                    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
                    let more = LEAF_DIGESTS.merge_step(&mut tx).await?;
                    tx.commit().await?;
                    if !more {
                        return Ok::<_, sqlx::Error>(());
                    }
                }
            }
            .await;
            merging.store(false, Ordering::Release);
            if let Err(error) = merged {
                tracing::warn!(%error, "merging leaf digest runs failed; the next run written retries");
            }
        };
        tokio::spawn(merge.instrument(tracing::info_span!("merge_leaf_digest_runs")));
    }

    /// Keeps an event (or a whole message body) the anchor refused, for inspection.
    pub async fn reject(
        &self,
        routing_key: &str,
        message_id: Option<&str>,
        reason: &str,
        body: &str,
    ) -> Result<(), StoreError> {
        // PostgreSQL text cannot hold NUL; a poison body may.
        let body = body.replace('\0', "\u{fffd}");
        on_pool!(&self.db, writer, |pool| {
            sqlx::query("INSERT INTO rejected_events (routing_key, reason, body, received_at, message_id) VALUES ($1, $2, $3, $4, $5)")
                .bind(routing_key)
                .bind(reason)
                .bind(&body)
                .bind(now_rfc3339())
                .bind(message_id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Whether at least `n` leaves wait for a batch: a sum over the queue's ranges (a row per
    /// message received), where reading the leaves would cost as much as sealing them each
    /// time a few more arrive.
    pub async fn waiting_at_least(&self, n: i64) -> Result<bool, StoreError> {
        Ok(self.waiting().await? >= n)
    }

    async fn waiting(&self) -> Result<i64, StoreError> {
        let (waiting,): (i64,) = on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(WAITING).fetch_one(pool).await
        })?;
        Ok(waiting)
    }

    /// Leaves not yet in a batch, oldest first: the first `limit` of the oldest ranges, each
    /// found by its key.
    pub async fn unsealed(&self, limit: i64) -> Result<Vec<(i64, Digest)>, StoreError> {
        let ranges: Vec<(i64, i64)> = on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(OLDEST_RANGES)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        let seqs: Vec<i64> = ranges
            .into_iter()
            .flat_map(|(first, last)| first..=last)
            .take(usize::try_from(limit).unwrap_or(0))
            .collect();
        let sql = match self.db {
            Database::Sqlite(_) => DIGESTS_OF_SQLITE,
            Database::Postgres(_) => DIGESTS_OF_POSTGRES,
        };
        let seqs_json = serde_json::to_string(&seqs).unwrap_or_default();
        let rows: Vec<(i64, String)> = on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(sql).bind(&seqs_json).fetch_all(pool).await
        })?;
        if rows.len() != seqs.len() {
            return Err(StoreError::Corrupt(format!(
                "{} of the {} leaves queued from seq {} are not there",
                seqs.len() - rows.len(),
                seqs.len(),
                seqs.first().copied().unwrap_or_default()
            )));
        }
        rows.into_iter()
            .map(|(seq, d)| Ok((seq, digest(&d)?)))
            .collect()
    }

    /// Records a sealed batch and assigns its leaves their indices, in one transaction. Fails,
    /// writing nothing, if any of the leaves was sealed into another batch meanwhile (it is no
    /// longer waiting).
    pub async fn seal(&self, batch: &BatchRecord, seqs: &[i64]) -> Result<(), StoreError> {
        // Leaf index = position in `seqs`, which travel as one JSON array.
        let seqs_json = serde_json::to_string(seqs).unwrap_or_default();
        let (lowest, highest) = (
            seqs.iter().min().copied().unwrap_or_default(),
            seqs.iter().max().copied().unwrap_or_default(),
        );
        let (take, put_back, seal) = match self.db {
            Database::Sqlite(_) => (TAKE_RANGES_SQLITE, PUT_BACK_SQLITE, SEAL_LEAVES_SQLITE),
            Database::Postgres(_) => (
                TAKE_RANGES_POSTGRES,
                PUT_BACK_POSTGRES,
                SEAL_LEAVES_POSTGRES,
            ),
        };
        on_pool!(&self.db, writer, |pool, begin| async {
            let mut tx = pool.begin_with(begin).await?;
            let ranges: Vec<(i64, i64)> = sqlx::query_as(RANGES_OVERLAPPING)
                .bind(lowest)
                .bind(highest)
                .fetch_all(&mut *tx)
                .await?;
            let Some(left) = left_after_taking(&ranges, seqs) else {
                return Ok(false);
            };
            // Taken as read: a range another sealer split or took meanwhile is not there.
            let taken = sqlx::query(take)
                .bind(serde_json::to_string(&ranges).unwrap_or_default())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if taken != ranges.len() as u64 {
                return Ok(false);
            }
            if !left.is_empty() {
                sqlx::query(put_back)
                    .bind(serde_json::to_string(&left).unwrap_or_default())
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO batches (batch_id, root, size, tx_hash, sealed_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&batch.batch_id)
            .bind(batch.root.to_hex())
            .bind(batch.size)
            .bind(batch.tx_hash.to_hex())
            .bind(now_rfc3339())
            .execute(&mut *tx)
            .await?;
            sqlx::query(seal)
                .bind(&batch.batch_id)
                .bind(&seqs_json)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(true)
        }
        .await)?
        .then_some(())
        .ok_or_else(|| StoreError::SealRace(batch.batch_id.clone()))
    }

    pub async fn unanchored(&self) -> Result<Vec<BatchRecord>, StoreError> {
        let rows: Vec<BatchRow> = on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {BATCH_COLUMNS} FROM batches WHERE block_height IS NULL ORDER BY sealed_at"
            )))
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(batch_row).collect()
    }

    pub async fn batch(&self, batch_id: &str) -> Result<Option<BatchRecord>, StoreError> {
        let row: Option<BatchRow> = on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {BATCH_COLUMNS} FROM batches WHERE batch_id = $1"
            )))
            .bind(batch_id)
            .fetch_optional(pool)
            .await
        })?;
        row.map(batch_row).transpose()
    }

    /// Leaves received and not yet sealed into a batch.
    pub async fn pending_leaves(&self) -> Result<u64, StoreError> {
        Ok(u64::try_from(self.waiting().await?).unwrap_or(0))
    }

    /// The last `limit` batches anchored, newest first, each with the time its first (oldest)
    /// leaf was received: how long its longest-waiting event took to be anchored.
    pub async fn recent_anchorings(&self, limit: i64) -> Result<Vec<Anchoring>, StoreError> {
        // The batches first, then each one's first leaf by its key: joined, SQLite read every
        // leaf to find the first of each batch.
        let rows: Vec<(String, i64, i64, Option<String>, String)> = on_pool!(
            &self.db,
            reader,
            |pool| {
                sqlx::query_as(
                "SELECT b.batch_id, b.size, b.block_height, \
                     (SELECT r.received_at FROM sealed_leaves s JOIN received_leaves r ON r.seq = s.seq \
                      WHERE s.batch_id = b.batch_id AND s.leaf_index = 0), \
                     b.anchored_at \
                 FROM batches b \
                 WHERE b.block_height IS NOT NULL AND b.anchored_at IS NOT NULL \
                 ORDER BY b.block_height DESC, b.tx_index DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await
            }
        )?;
        Ok(rows
            .into_iter()
            .filter_map(
                |(batch_id, size, block_height, first_received_at, anchored_at)| {
                    Some(Anchoring {
                        batch_id,
                        size: u64::try_from(size).unwrap_or(0),
                        block_height: u64::try_from(block_height).unwrap_or(0),
                        first_received_at: first_received_at?,
                        anchored_at,
                    })
                },
            )
            .collect())
    }

    pub async fn mark_submitted(&self, batch_id: &str) -> Result<(), StoreError> {
        on_pool!(&self.db, writer, |pool| {
            sqlx::query("UPDATE batches SET submitted_at = $1 WHERE batch_id = $2")
                .bind(now_rfc3339())
                .bind(batch_id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    pub async fn mark_anchored(
        &self,
        batch_id: &str,
        height: u64,
        index: u32,
    ) -> Result<(), StoreError> {
        on_pool!(&self.db, writer, |pool| {
            sqlx::query(
                "UPDATE batches SET block_height = $1, tx_index = $2, anchored_at = $3 WHERE batch_id = $4 AND block_height IS NULL",
            )
            .bind(height as i64)
            .bind(i64::from(index))
            .bind(now_rfc3339())
            .bind(batch_id)
            .execute(pool)
            .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Forgets that `batch_id` was recorded as anchored at `height`, `index` (and nothing
    /// recorded since): it is located again.
    pub async fn clear_location(
        &self,
        batch_id: &str,
        height: i64,
        index: i64,
    ) -> Result<(), StoreError> {
        on_pool!(&self.db, writer, |pool| {
            sqlx::query(
                "UPDATE batches SET block_height = NULL, tx_index = NULL, anchored_at = NULL
                 WHERE batch_id = $1 AND block_height = $2 AND tx_index = $3",
            )
            .bind(batch_id)
            .bind(height)
            .bind(index)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    pub async fn leaf_by_event(&self, event_id: &str) -> Result<Option<LeafRecord>, StoreError> {
        self.leaf_where("event_id", "= $1", event_id).await
    }

    pub async fn leaf_by_digest(&self, d: &Digest) -> Result<Option<LeafRecord>, StoreError> {
        match self.db {
            Database::Sqlite(_) => {
                self.leaf_where("seq", &seq_of_digest_sqlite(), &d.to_hex())
                    .await
            }
            Database::Postgres(_) => self.leaf_where("digest", "= $1", &d.to_hex()).await,
        }
    }

    /// The leaf whose `column` matches `condition` (over the parameter `$1` = `value`).
    async fn leaf_where(
        &self,
        column: &'static str,
        condition: &str,
        value: &str,
    ) -> Result<Option<LeafRecord>, StoreError> {
        let row: Option<LeafRow> = on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(leaf_sql(column, condition)))
                .bind(value)
                .fetch_optional(pool)
                .await
        })?;
        row.map(leaf_row).transpose()
    }

    /// A batch's event digests in leaf order.
    pub async fn batch_digests(&self, batch_id: &str) -> Result<Vec<Digest>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(&self.db, reader, |pool| {
            // Each leaf by its key, whatever the statistics say (a subquery, never a join).
            sqlx::query_as(
                "SELECT (SELECT r.digest FROM received_leaves r WHERE r.seq = s.seq)
                 FROM sealed_leaves s WHERE s.batch_id = $1 ORDER BY s.leaf_index",
            )
            .bind(batch_id)
            .fetch_all(pool)
            .await
        })?;
        rows.iter().map(|(d,)| digest(d)).collect()
    }

    /// (leaves received, leaves in anchored batches).
    pub async fn progress(&self) -> Result<(i64, i64), StoreError> {
        Ok(on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM received_leaves),
                        (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM batches WHERE block_height IS NOT NULL)",
            )
            .fetch_one(pool)
            .await
        })?)
    }

    /// When each of `event_ids` was anchored (its batch's `anchored_at`), for those that are.
    pub async fn anchored_at(
        &self,
        event_ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let ids = serde_json::to_string(event_ids).unwrap_or_default();
        // Each event's leaf, batch and block found by their keys (subqueries, never joins
        // that statistics could turn into reading every leaf).
        let sql = match self.db {
            Database::Sqlite(_) => {
                "SELECT j.value, (SELECT b.anchored_at FROM received_leaves r
                     JOIN sealed_leaves s ON s.seq = r.seq JOIN batches b ON b.batch_id = s.batch_id
                     WHERE r.event_id = j.value)
                 FROM json_each($1) AS j"
            }
            Database::Postgres(_) => {
                "SELECT j.id, (SELECT b.anchored_at FROM received_leaves r
                     JOIN sealed_leaves s ON s.seq = r.seq JOIN batches b ON b.batch_id = s.batch_id
                     WHERE r.event_id = j.id)
                 FROM json_array_elements_text($1::JSON) AS j(id)"
            }
        };
        let rows: Vec<(String, Option<String>)> = on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(sql).bind(&ids).fetch_all(pool).await
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, at)| Some((id, at?)))
            .collect())
    }

    /// For each block that anchors batches, when its last batch was recorded anchored and how
    /// many leaves it anchors, in block order: what became verifiable, and when.
    pub async fn anchoring_timeline(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(
                "SELECT MAX(anchored_at), CAST(SUM(size) AS BIGINT) FROM batches
                 WHERE anchored_at IS NOT NULL GROUP BY block_height ORDER BY block_height",
            )
            .fetch_all(pool)
            .await
        })?)
    }

    /// What was refused, oldest first: (routing key, message id, reason).
    pub async fn rejections(&self) -> Result<Vec<(String, Option<String>, String)>, StoreError> {
        Ok(on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(
                "SELECT routing_key, message_id, reason FROM rejected_events ORDER BY id",
            )
            .fetch_all(pool)
            .await
        })?)
    }
}

fn batch_row(
    (batch_id, root, size, tx_hash, submitted_at, block_height, tx_index): BatchRow,
) -> Result<BatchRecord, StoreError> {
    Ok(BatchRecord {
        batch_id,
        root: digest(&root)?,
        size,
        tx_hash: digest(&tx_hash)?,
        submitted_at,
        block_height,
        tx_index,
    })
}

fn leaf_sql(column: &str, condition: &str) -> String {
    format!(
        "SELECT digest, event_id, envelope, batch_id, leaf_index, readers
         FROM leaves WHERE {column} {condition}"
    )
}

/// The condition on `seq` that finds a leaf by its digest `$1` on SQLite: its key from the
/// runs, and the leaf's own digest checked, so that a damaged run can hide a leaf but never
/// answer with another.
fn seq_of_digest_sqlite() -> String {
    format!(
        "IN ({}) AND digest = $1",
        LEAF_DIGESTS.keys_with_digest("$1")
    )
}

fn leaf_row(
    (d, event_id, canonical, batch_id, leaf_index, readers): LeafRow,
) -> Result<LeafRecord, StoreError> {
    let readers = serde_json::from_str(&readers)
        .map_err(|e| StoreError::Corrupt(format!("readers of leaf {event_id}: {e}")))?;
    Ok(LeafRecord {
        digest: digest(&d)?,
        event_id,
        canonical,
        batch_id,
        leaf_index,
        readers,
    })
}

/// An access list as stored: a JSON array of strings.
fn readers_text(readers: &[String]) -> String {
    serde_json::to_string(readers).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use veritrace_kernel::testing::TestDb;

    #[test]
    fn taking_leaves_splits_the_ranges_they_lie_in() {
        let ranges = [(1, 5), (8, 9), (20, 20)];
        assert_eq!(
            left_after_taking(&ranges, &[1, 2, 3]),
            Some(vec![(4, 5), (8, 9), (20, 20)])
        );
        assert_eq!(
            left_after_taking(&ranges, &[3, 9, 20]),
            Some(vec![(1, 2), (4, 5), (8, 8)])
        );
        assert_eq!(
            left_after_taking(&ranges, &[5, 1, 8, 2, 3, 4, 9, 20]),
            Some(vec![])
        );
        // A leaf between ranges, past them, or named twice is not waiting.
        assert_eq!(left_after_taking(&ranges, &[1, 6]), None);
        assert_eq!(left_after_taking(&ranges, &[21]), None);
        assert_eq!(left_after_taking(&ranges, &[2, 2]), None);
        assert_eq!(left_after_taking(&[], &[1]), None);
    }

    /// The sealing statements' plans on SQLite: each walks the batch's array and finds each
    /// leaf by its key; taking the oldest waiting leaves finds each by its key too. None reads
    /// every waiting leaf against the whole array (that was quadratic: 10,000 of 20,000 waiting
    /// leaves took 21 s).
    #[tokio::test]
    async fn sealing_walks_the_batch_not_every_unsealed_leaf() {
        let db = TestDb::sqlite().await;
        let anchor = migrated(&db).await;
        let Database::Sqlite(sqlite) = &anchor else {
            unreachable!("a SQLite test database")
        };
        let by_digest = leaf_sql("seq", &seq_of_digest_sqlite());
        for (statement, binds, step) in [
            (
                TAKE_RANGES_SQLITE,
                1,
                "SEARCH unsealed_ranges USING INTEGER PRIMARY KEY",
            ),
            (
                RANGES_OVERLAPPING,
                2,
                "SEARCH unsealed_ranges USING INTEGER PRIMARY KEY",
            ),
            (
                by_digest.as_str(),
                1,
                "SEARCH leaf_digest_runs USING PRIMARY KEY (run=? AND digest=?)",
            ),
            (SEAL_LEAVES_SQLITE, 2, "SCAN json_each"),
            (
                DIGESTS_OF_SQLITE,
                1,
                "SEARCH received_leaves USING INTEGER PRIMARY KEY",
            ),
        ] {
            let explain = format!("EXPLAIN QUERY PLAN {statement}");
            let mut query =
                sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain));
            for _ in 0..binds {
                query = query.bind("[1, 2, 3]");
            }
            let plan = query.fetch_all(&sqlite.reader).await.expect("the plan");
            let steps: Vec<&str> = plan.iter().map(|(_, _, _, step)| step.as_str()).collect();
            assert!(
                steps.iter().any(|s| s.starts_with(step)),
                "{statement}: {steps:?}"
            );
            assert!(
                !steps.iter().any(|s| s.starts_with("SCAN received_leaves")
                    || s.starts_with("SCAN sealed_leaves")),
                "{statement}: {steps:?}"
            );
        }
    }

    /// Once eight runs of leaf digests are written, a task of its own merges them into one
    /// (SQLite), while leaves keep arriving; every leaf is found by its digest throughout.
    #[tokio::test]
    async fn leaf_digest_runs_are_merged_beside_receiving() {
        let db = TestDb::sqlite().await;
        let store = migrated_store(&db).await;
        let Database::Sqlite(sqlite) = &store.db else {
            unreachable!("a SQLite test database")
        };
        let run = veritrace_kernel::digest_runs::RUN_ENTRIES as usize;
        // Runs of 4,500 (a run is written once 4,096 wait, at the end of a 500-leaf append):
        // the eighth at 36,000.
        let leaves = new_leaves(9 * run + 500);
        for chunk in leaves.chunks(500) {
            assert_eq!(
                store.insert_leaves(chunk).await.expect("leaves"),
                chunk.len() as u64
            );
        }
        let entries = merged_into_one_run(sqlite).await;
        assert!(entries >= 8 * run as i64, "{entries}");
        let (in_runs,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM leaf_digest_runs")
            .fetch_one(&sqlite.reader)
            .await
            .expect("runs");
        assert_eq!(in_runs, entries, "the merged runs are dropped");
        for i in [0, 1, run, 4 * run + 7, 8 * run - 1, 9 * run + 499] {
            let leaf = store
                .leaf_by_digest(&leaves[i].digest)
                .await
                .expect("read")
                .expect("found");
            assert_eq!(leaf.event_id, format!("event-{i}"));
        }
    }

    /// A merge cut short (its new run part written) goes on once a store opened on the file
    /// receives its first leaves, though they write no run.
    #[tokio::test]
    async fn a_merge_cut_short_goes_on_after_a_restart() {
        let db = TestDb::sqlite().await;
        let anchor = migrated(&db).await;
        let Database::Sqlite(sqlite) = &anchor else {
            unreachable!("a SQLite test database")
        };
        let run = veritrace_kernel::digest_runs::RUN_ENTRIES;
        let mut c = sqlite.writer.acquire().await.expect("the writer");
        for n in 0..8 {
            sqlx::query(
                "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < $2)
                 INSERT INTO received_leaves (digest, event_id, envelope, readers, received_at)
                 SELECT printf('%064x', (k.i + $1) * 2654435761), 'old-' || (k.i + $1), '{}',
                        '[\"org\"]', 'then'
                 FROM k",
            )
            .bind(n * run)
            .bind(run)
            .execute(&mut *c)
            .await
            .expect("leaves");
            assert_eq!(LEAF_DIGESTS.extend(&mut c).await.expect("a run"), 1);
        }
        // Begun, and two chunks written: then the process stopped.
        for _ in 0..3 {
            assert!(LEAF_DIGESTS.merge_step(&mut c).await.expect("a step"));
        }
        let (writing,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM leaf_digest_run_catalog WHERE state = 'writing' AND written_below > ''",
        )
        .fetch_one(&mut *c)
        .await
        .expect("catalog");
        assert_eq!(writing, 1, "a merge part written");
        drop(c);

        let store = AnchorStore::new(&anchor);
        assert_eq!(
            store.insert_leaves(&new_leaves(1)).await.expect("a leaf"),
            1
        );
        let entries = merged_into_one_run(sqlite).await;
        assert_eq!(entries, 8 * run);
        let digest: Digest = format!("{:064x}", (3 * run + 7) * 2654435761)
            .parse()
            .expect("a digest");
        let leaf = store
            .leaf_by_digest(&digest)
            .await
            .expect("read")
            .expect("found");
        assert_eq!(leaf.event_id, format!("old-{}", 3 * run + 7));
    }

    /// Waits until the leaf digests are one live run and nothing is being merged; returns its
    /// entries.
    async fn merged_into_one_run(sqlite: &veritrace_kernel::db::SqliteDatabase) -> i64 {
        let merged = async {
            loop {
                let (live, entries, other): (i64, i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*) FILTER (WHERE state = 'live'),
                            SUM(entries) FILTER (WHERE state = 'live'),
                            COUNT(*) FILTER (WHERE state <> 'live')
                     FROM leaf_digest_run_catalog",
                )
                .fetch_one(&sqlite.reader)
                .await
                .expect("catalog");
                if (live, other) == (1, 0) {
                    return entries;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), merged)
            .await
            .expect("the runs merged into one within 30 s")
    }

    /// The anchor's database with its tables, on `db`.
    async fn migrated(db: &TestDb) -> Database {
        let anchor = db.open("anchor").await;
        veritrace_kernel::migrate::run(&anchor, "anchor", crate::MIGRATIONS)
            .await
            .expect("the anchor's tables");
        anchor
    }

    /// An anchor store with its tables, on `db`.
    async fn migrated_store(db: &TestDb) -> AnchorStore {
        AnchorStore::new(&migrated(db).await)
    }

    /// `n` leaves, `event-0`…, readable by `org`.
    fn new_leaves(n: usize) -> Vec<NewLeaf> {
        (0..n)
            .map(|i| NewLeaf {
                digest: chain_core::HashAlg::Sha3_256.hash(format!("leaf {i}").as_bytes()),
                event_id: format!("event-{i}"),
                canonical: "{}".into(),
                readers: vec!["org".into()],
            })
            .collect()
    }

    veritrace_kernel::backend_tests! {
        async fn a_full_batch_is_seen_waiting_from_the_index_alone(db: TestDb) {
            let store = migrated_store(&db).await;
            assert!(!store.waiting_at_least(1).await.expect("none waiting"));
            store.insert_leaves(&new_leaves(3)).await.expect("leaves");
            assert!(store.waiting_at_least(3).await.expect("three waiting"));
            assert!(!store.waiting_at_least(4).await.expect("not four"));
            let waiting = store.unsealed(2).await.expect("unsealed");
            let batch = BatchRecord {
                batch_id: "b1".into(),
                root: waiting[0].1,
                size: 2,
                tx_hash: waiting[1].1,
                submitted_at: None,
                block_height: None,
                tx_index: None,
            };
            let seqs: Vec<i64> = waiting.iter().map(|(s, _)| *s).collect();
            store.seal(&batch, &seqs).await.expect("sealed");
            // Sealed leaves no longer count.
            assert!(store.waiting_at_least(1).await.expect("one waiting"));
            assert!(!store.waiting_at_least(2).await.expect("not two"));
            let left = store.unsealed(10).await.expect("unsealed");
            assert_eq!(left.len(), 1);
            assert!(left[0].0 > seqs[1], "the newest leaf waits: {left:?} after {seqs:?}");
            // Leaves already sealed are not sealed again: nothing is written.
            let again = BatchRecord { batch_id: "b2".into(), ..batch.clone() };
            let race = store.seal(&again, &[seqs[1], left[0].0]).await;
            assert!(matches!(race, Err(StoreError::SealRace(_))), "{race:?}");
            assert!(store.batch("b2").await.expect("batch").is_none());
            assert_eq!(store.pending_leaves().await.expect("pending"), 1);
        }

        /// A store from before leaves were written once keeps every leaf where it was: the
        /// sealed in their batches at their indices, the others waiting.
        async fn leaves_sealed_before_the_upgrade_stay_in_their_batches(db: TestDb) {
            let anchor = db.open("anchor").await;
            veritrace_kernel::migrate::run(&anchor, "anchor", &crate::MIGRATIONS[..3])
                .await
                .expect("the anchor's tables as they were");
            let digest = |i: i64| chain_core::HashAlg::Sha3_256.hash(format!("old {i}").as_bytes());
            on_pool!(&anchor, writer, |pool, begin| async {
                let mut tx = pool.begin_with(begin).await?;
                sqlx::query("INSERT INTO batches (batch_id, root, size, tx_hash, sealed_at) VALUES ('old', $1, 2, $1, 'then')")
                    .bind(digest(9).to_hex())
                    .execute(&mut *tx)
                    .await?;
                for (i, batch, index) in [(1, Some("old"), Some(1_i64)), (2, Some("old"), Some(0)), (3, None, None)] {
                    sqlx::query("INSERT INTO leaves (digest, event_id, envelope, received_at, batch_id, leaf_index) VALUES ($1, $2, '{}', 'then', $3, $4)")
                        .bind(digest(i).to_hex())
                        .bind(format!("old-{i}"))
                        .bind(batch)
                        .bind(index)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            }
            .await)
            .expect("leaves as they were");
            veritrace_kernel::migrate::run(&anchor, "anchor", crate::MIGRATIONS)
                .await
                .expect("upgraded");
            let store = AnchorStore::new(&anchor);
            let first = store.leaf_by_event("old-1").await.expect("read").expect("found");
            assert_eq!((first.batch_id.as_deref(), first.leaf_index), (Some("old"), Some(1)));
            let by_digest = store.leaf_by_digest(&digest(1)).await.expect("read").expect("found");
            assert_eq!((by_digest.event_id.as_str(), by_digest.leaf_index), ("old-1", Some(1)));
            assert_eq!(store.batch_digests("old").await.expect("digests"), [digest(2), digest(1)]);
            let waiting = store.unsealed(10).await.expect("waiting");
            assert_eq!(waiting.iter().map(|(_, d)| *d).collect::<Vec<_>>(), [digest(3)]);
            assert_eq!(store.pending_leaves().await.expect("pending"), 1);
            // New leaves come after the old ones.
            let new = NewLeaf {
                digest: digest(4),
                event_id: "new-4".into(),
                canonical: "{}".into(),
                readers: vec!["org".into()],
            };
            assert_eq!(store.insert_leaves(&[new]).await.expect("inserted"), 1);
            let waiting = store.unsealed(10).await.expect("waiting");
            assert_eq!(waiting.iter().map(|(_, d)| *d).collect::<Vec<_>>(), [digest(3), digest(4)]);
            assert!(waiting[0].0 < waiting[1].0);
            let new = store.leaf_by_digest(&digest(4)).await.expect("read").expect("found");
            assert_eq!(new.event_id, "new-4");
        }

        /// Enough leaves for SQLite to index their digests in runs: each is found by its
        /// digest, whether in a run or not yet, and an event delivered again is no new leaf.
        async fn every_leaf_is_found_by_its_digest_and_a_redelivery_adds_none(db: TestDb) {
            let store = migrated_store(&db).await;
            let count = 2 * veritrace_kernel::digest_runs::RUN_ENTRIES as usize + 700;
            let leaves = new_leaves(count);
            for chunk in leaves.chunks(500) {
                assert_eq!(store.insert_leaves(chunk).await.expect("leaves"), chunk.len() as u64);
            }
            assert_eq!(store.insert_leaves(&leaves[4000..4600]).await.expect("again"), 0);
            // A message with leaves seen and unseen: the unseen are added, once.
            let more = new_leaves(count + 2);
            let mixed: Vec<NewLeaf> = more[count - 2..].iter().map(|l| NewLeaf {
                digest: l.digest,
                event_id: l.event_id.clone(),
                canonical: l.canonical.clone(),
                readers: l.readers.clone(),
            }).collect();
            assert_eq!(store.insert_leaves(&mixed).await.expect("mixed"), 2);
            assert_eq!(store.insert_leaves(&mixed).await.expect("mixed again"), 0);
            assert_eq!(store.pending_leaves().await.expect("pending"), count as u64 + 2);
            let (leaves, count) = (more, count + 2);
            assert_eq!(store.progress().await.expect("progress").0, count as i64);
            for i in [0, 1, 4095, 4096, 4097, 8191, 8192, count - 1] {
                let leaf = store.leaf_by_digest(&leaves[i].digest).await.expect("read").expect("found");
                assert_eq!(leaf.event_id, format!("event-{i}"));
            }
            let never = chain_core::HashAlg::Sha3_256.hash(b"never received");
            assert!(store.leaf_by_digest(&never).await.expect("read").is_none());
            if let Database::Sqlite(sqlite) = &store.db {
                let (runs, entries): (i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), SUM(entries) FROM leaf_digest_run_catalog",
                )
                .fetch_one(&sqlite.reader)
                .await
                .expect("catalog");
                assert_eq!(runs, 2);
                assert!(entries >= 2 * veritrace_kernel::digest_runs::RUN_ENTRIES, "{entries}");
                // A damaged run that points leaf 0's digest at leaf 1 hides leaf 0; it never
                // answers with leaf 1.
                sqlx::query("UPDATE leaf_digest_runs SET row_key = row_key + 1 WHERE digest = $1")
                    .bind(leaves[0].digest.to_hex())
                    .execute(&sqlite.writer)
                    .await
                    .expect("damaged");
                assert!(store.leaf_by_digest(&leaves[0].digest).await.expect("read").is_none());
            }
        }

        async fn recent_anchorings_are_the_newest_anchored_batches_with_their_first_leaf(db: TestDb) {
            let store = migrated_store(&db).await;
            store.insert_leaves(&new_leaves(5)).await.expect("leaves");
            let waiting = store.unsealed(5).await.expect("unsealed");
            // Three batches: of two leaves, two leaves, one leaf; the last is never anchored.
            for (n, seqs) in [&waiting[0..2], &waiting[2..4], &waiting[4..5]].iter().enumerate() {
                let batch = BatchRecord {
                    batch_id: format!("b{n}"),
                    root: seqs[0].1,
                    size: seqs.len() as i64,
                    tx_hash: chain_core::HashAlg::Sha3_256.hash(format!("tx {n}").as_bytes()),
                    submitted_at: None,
                    block_height: None,
                    tx_index: None,
                };
                let seqs: Vec<i64> = seqs.iter().map(|(s, _)| *s).collect();
                store.seal(&batch, &seqs).await.expect("sealed");
                if n < 2 {
                    store.mark_anchored(&batch.batch_id, 10 + n as u64, 0).await.expect("anchored");
                }
            }
            let recent = store.recent_anchorings(10).await.expect("recent");
            let seen: Vec<(&str, u64, u64)> = recent
                .iter()
                .map(|a| (a.batch_id.as_str(), a.size, a.block_height))
                .collect();
            assert_eq!(seen, [("b1", 2, 11), ("b0", 2, 10)]);
            assert!(recent.iter().all(|a| !a.first_received_at.is_empty()));
            assert_eq!(store.recent_anchorings(1).await.expect("newest").len(), 1);
            assert_eq!(store.batch_digests("b1").await.expect("digests"), [waiting[2].1, waiting[3].1]);
            let sealed = store.leaf_by_event("event-3").await.expect("leaf").expect("found");
            assert_eq!((sealed.batch_id.as_deref(), sealed.leaf_index), (Some("b1"), Some(1)));
            assert_eq!(store.pending_leaves().await.expect("pending"), 0);
            // A leaf sealed already cannot be sealed again: nothing of that batch is written.
            let again = BatchRecord {
                batch_id: "b-again".into(),
                root: waiting[0].1,
                size: 1,
                tx_hash: chain_core::HashAlg::Sha3_256.hash(b"tx again"),
                submitted_at: None,
                block_height: None,
                tx_index: None,
            };
            assert!(matches!(
                store.seal(&again, &[waiting[0].0]).await,
                Err(StoreError::SealRace(_))
            ));
            assert!(store.batch("b-again").await.expect("read").is_none());
            assert_eq!(store.batch_digests("b0").await.expect("digests"), [waiting[0].1, waiting[1].1]);
        }
    }
}
