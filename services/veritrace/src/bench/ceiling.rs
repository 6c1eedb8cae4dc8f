//! The embedded bench's ceiling of its own storage: the same event rows written straight into
//! a fresh SQLite event store, one transaction per 500, with the platform's pragmas, indexes
//! and multi-row statements and nothing else (no HTTP, hashing, outbox, projection or anchoring).

use std::path::Path;
use std::time::Instant;
use veritrace_kernel::db::Database;
use veritrace_kernel::event_store::{NewEventRow, insert_events_sqlite};
use veritrace_kernel::migrate;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Rows per transaction of the ceiling.
pub const ROWS_PER_COMMIT: usize = 500;
/// At most this many of the run's rows are written again.
const MAX_ROWS: i64 = 100_000;

/// What the ceiling measured.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Ceiling {
    pub rows: usize,
    pub rows_per_sec: f64,
    /// Mean bytes of a stored envelope (the canonical JSON that is hashed).
    pub envelope_bytes: f64,
}

type EventRow = (String, String, i64, String, String, String, String, String);

/// Copies up to 100,000 of the events in the event store `source` into a new store at `target`
/// (which must not exist), [`ROWS_PER_COMMIT`] per transaction, and times the writes.
pub async fn measure(source: &Path, target: &Path) -> Result<Ceiling, BoxError> {
    let from = Database::open(source).await?;
    let Database::Sqlite(from) = from else {
        return Err("the embedded event store is SQLite".into());
    };
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT event_id, stream, stream_version, event_type, envelope, digest, recorded_at, readers
         FROM events ORDER BY position LIMIT ?",
    )
    .bind(MAX_ROWS)
    .fetch_all(&from.reader)
    .await?;
    from.writer.close().await;
    from.reader.close().await;
    if rows.is_empty() {
        return Err("the run stored no events to measure the ceiling with".into());
    }
    let envelope_bytes = rows.iter().map(|r| r.4.len()).sum::<usize>() as f64 / rows.len() as f64;

    let to = Database::open(target).await?;
    migrate::run(&to, "event_store", migrate::EVENT_STORE).await?;
    let Database::Sqlite(to) = to else {
        return Err("the ceiling store is SQLite".into());
    };
    let rows: Vec<NewEventRow> = rows
        .iter()
        .map(|r| NewEventRow {
            event_id: r.0.clone(),
            stream: &r.1,
            stream_version: r.2,
            event_type: &r.3,
            envelope: &r.4,
            digest: r.5.clone(),
            recorded_at: &r.6,
            readers: &r.7,
        })
        .collect();
    let started = Instant::now();
    for group in rows.chunks(ROWS_PER_COMMIT) {
        let mut tx = to.writer.begin_with("BEGIN IMMEDIATE").await?;
        // The platform's own statement, in the same chunks.
        insert_events_sqlite(&mut tx, group).await?;
        tx.commit().await?;
    }
    let secs = started.elapsed().as_secs_f64();
    to.writer.close().await;
    to.reader.close().await;
    Ok(Ceiling {
        rows: rows.len(),
        rows_per_sec: rows.len() as f64 / secs,
        envelope_bytes,
    })
}
