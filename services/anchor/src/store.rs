//! The anchoring service's storage (sqlx): leaves, batches, rejected events.

use chain_core::Digest;
use sqlx::{Row, SqlitePool};
use veritrace_kernel::db::Database;
use veritrace_kernel::envelope::now_rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("anchor store unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    #[error("anchor store holds an unreadable row: {0}")]
    Corrupt(String),
}

pub struct NewLeaf {
    pub digest: Digest,
    pub event_id: String,
    pub canonical: String,
}

#[derive(Clone, Debug)]
pub struct LeafRecord {
    pub digest: Digest,
    pub event_id: String,
    pub canonical: String,
    pub batch_id: Option<String>,
    pub leaf_index: Option<i64>,
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

fn digest(s: &str) -> Result<Digest, StoreError> {
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("digest {s:?}: {e}")))
}

#[derive(Clone)]
pub struct AnchorStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl AnchorStore {
    pub fn new(db: &Database) -> Self {
        AnchorStore {
            writer: db.writer.clone(),
            reader: db.reader.clone(),
        }
    }

    /// Persists leaves, ignoring digests already present. Returns how many were new.
    pub async fn insert_leaves(&self, leaves: &[NewLeaf]) -> Result<u64, StoreError> {
        if leaves.is_empty() {
            return Ok(0);
        }
        // One statement for all rows (a JSON array parameter): each statement costs a hop to
        // sqlx's SQLite thread.
        let rows: Vec<serde_json::Value> = leaves
            .iter()
            .map(|l| serde_json::json!([l.digest.to_hex(), l.event_id, l.canonical]))
            .collect();
        let inserted = sqlx::query(
            "INSERT INTO leaves (digest, event_id, envelope, received_at)
             SELECT value ->> 0, value ->> 1, value ->> 2, ? FROM json_each(?) WHERE true
             ORDER BY key
             ON CONFLICT DO NOTHING",
        )
        .bind(now_rfc3339())
        .bind(serde_json::Value::Array(rows).to_string())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(inserted)
    }

    pub async fn reject(
        &self,
        routing_key: &str,
        reason: &str,
        body: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO rejected_events (routing_key, reason, body, received_at) VALUES (?, ?, ?, ?)")
            .bind(routing_key)
            .bind(reason)
            .bind(body)
            .bind(now_rfc3339())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Leaves not yet in a batch, oldest first.
    pub async fn unsealed(&self, limit: i64) -> Result<Vec<(i64, Digest)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, digest FROM leaves WHERE batch_id IS NULL ORDER BY seq LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("seq")?,
                    digest(&r.try_get::<String, _>("digest")?)?,
                ))
            })
            .collect()
    }

    /// Records a sealed batch and assigns its leaves their indices, in one transaction.
    pub async fn seal(&self, batch: &BatchRecord, seqs: &[i64]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO batches (batch_id, root, size, tx_hash, sealed_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&batch.batch_id)
        .bind(batch.root.to_hex())
        .bind(batch.size)
        .bind(batch.tx_hash.to_hex())
        .bind(now_rfc3339())
        .execute(&mut *tx)
        .await?;
        for (index, seq) in seqs.iter().enumerate() {
            sqlx::query(
                "UPDATE leaves SET batch_id = ?, leaf_index = ? WHERE seq = ? AND batch_id IS NULL",
            )
            .bind(&batch.batch_id)
            .bind(index as i64)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn unanchored(&self) -> Result<Vec<BatchRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT batch_id, root, size, tx_hash, submitted_at, block_height, tx_index FROM batches
             WHERE block_height IS NULL ORDER BY sealed_at",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(batch_row).collect()
    }

    pub async fn batch(&self, batch_id: &str) -> Result<Option<BatchRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT batch_id, root, size, tx_hash, submitted_at, block_height, tx_index FROM batches WHERE batch_id = ?",
        )
        .bind(batch_id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(batch_row).transpose()
    }

    pub async fn mark_submitted(&self, batch_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE batches SET submitted_at = ? WHERE batch_id = ?")
            .bind(now_rfc3339())
            .bind(batch_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn mark_anchored(
        &self,
        batch_id: &str,
        height: u64,
        index: u32,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE batches SET block_height = ?, tx_index = ?, anchored_at = ? WHERE batch_id = ? AND block_height IS NULL",
        )
        .bind(height as i64)
        .bind(i64::from(index))
        .bind(now_rfc3339())
        .bind(batch_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn leaf_by_event(&self, event_id: &str) -> Result<Option<LeafRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT digest, event_id, envelope, batch_id, leaf_index FROM leaves WHERE event_id = ?",
        )
        .bind(event_id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(leaf_row).transpose()
    }

    pub async fn leaf_by_digest(&self, d: &Digest) -> Result<Option<LeafRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT digest, event_id, envelope, batch_id, leaf_index FROM leaves WHERE digest = ?",
        )
        .bind(d.to_hex())
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(leaf_row).transpose()
    }

    /// A batch's event digests in leaf order.
    pub async fn batch_digests(&self, batch_id: &str) -> Result<Vec<Digest>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT digest FROM leaves WHERE batch_id = ? ORDER BY leaf_index")
                .bind(batch_id)
                .fetch_all(&self.reader)
                .await?;
        rows.iter().map(|(d,)| digest(d)).collect()
    }

    /// (leaves received, leaves in anchored batches).
    pub async fn progress(&self) -> Result<(i64, i64), StoreError> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM leaves")
            .fetch_one(&self.reader)
            .await?;
        let anchored: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(size), 0) FROM batches WHERE block_height IS NOT NULL",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok((total, anchored))
    }

    pub async fn rejected_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM rejected_events")
            .fetch_one(&self.reader)
            .await?)
    }
}

fn batch_row(r: &sqlx::sqlite::SqliteRow) -> Result<BatchRecord, StoreError> {
    Ok(BatchRecord {
        batch_id: r.try_get("batch_id")?,
        root: digest(&r.try_get::<String, _>("root")?)?,
        size: r.try_get("size")?,
        tx_hash: digest(&r.try_get::<String, _>("tx_hash")?)?,
        submitted_at: r.try_get("submitted_at")?,
        block_height: r.try_get("block_height")?,
        tx_index: r.try_get("tx_index")?,
    })
}

fn leaf_row(r: &sqlx::sqlite::SqliteRow) -> Result<LeafRecord, StoreError> {
    Ok(LeafRecord {
        digest: digest(&r.try_get::<String, _>("digest")?)?,
        event_id: r.try_get("event_id")?,
        canonical: r.try_get("envelope")?,
        batch_id: r.try_get("batch_id")?,
        leaf_index: r.try_get("leaf_index")?,
    })
}
