//! The event store: streams of events with optimistic concurrency, and the outbox rows that
//! the relay publishes, written in the same transaction.
//!
//! Appends go through one writer task that commits whatever appends are waiting in a single
//! transaction (group commit): one fsync serves many requests, and each request still gets its
//! own answer (its events committed, or a version conflict that wrote nothing).

use crate::db::Database;
use crate::envelope::{EventEnvelope, SealedEnvelope};
use chain_core::Digest;
use sqlx::{Row, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};

/// Most appends committed in one transaction.
const MAX_GROUP: usize = 512;

#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub position: i64,
    pub envelope: EventEnvelope,
    pub canonical: String,
    pub digest: Digest,
}

#[derive(Debug, thiserror::Error, Clone)]
pub enum EventStoreError {
    #[error("stream {stream} is at version {actual}, the command expected {expected}")]
    Conflict {
        stream: String,
        expected: u64,
        actual: u64,
    },
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    #[error("the event store holds an unreadable event at position {position}: {reason}")]
    Corrupt { position: i64, reason: String },
    #[error("invalid append: {0}")]
    Invalid(String),
}

impl From<EventStoreError> for crate::problem::ApiError {
    fn from(e: EventStoreError) -> Self {
        use crate::problem::ApiError;
        match e {
            EventStoreError::Conflict { .. } => {
                ApiError::VersionConflict(format!("{e}; read the current state and retry"))
            }
            EventStoreError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

fn unavailable(e: sqlx::Error) -> EventStoreError {
    EventStoreError::Unavailable(e.to_string())
}

struct AppendJob {
    stream: String,
    expected_version: u64,
    events: Vec<SealedEnvelope>,
    reply: oneshot::Sender<Result<Vec<StoredEvent>, EventStoreError>>,
}

#[derive(Clone)]
pub struct EventStore {
    jobs: mpsc::Sender<AppendJob>,
    reader: SqlitePool,
    writer: SqlitePool,
    committed: watch::Receiver<i64>,
}

impl EventStore {
    /// Starts the writer task on `db`. The event store's migrations must have run.
    pub async fn start(db: &Database) -> Result<EventStore, EventStoreError> {
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(&db.reader)
            .await
            .map_err(unavailable)?;
        let (jobs, rx) = mpsc::channel(4096);
        let (committed_tx, committed) = watch::channel(head);
        tokio::spawn(writer_task(db.writer.clone(), rx, committed_tx));
        Ok(EventStore {
            jobs,
            reader: db.reader.clone(),
            writer: db.writer.clone(),
            committed,
        })
    }

    /// Appends `events` to `stream` if the stream is at `expected_version` (0: a new stream).
    /// The events' `stream_version`s must continue from `expected_version`. Returns once the
    /// events and their outbox rows are durably committed.
    pub async fn append(
        &self,
        stream: &str,
        expected_version: u64,
        events: Vec<SealedEnvelope>,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        for (i, e) in events.iter().enumerate() {
            if e.envelope.stream != stream
                || e.envelope.stream_version != expected_version + 1 + i as u64
            {
                return Err(EventStoreError::Invalid(format!(
                    "event {} does not continue stream {stream} from version {expected_version}",
                    e.envelope.id
                )));
            }
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(AppendJob {
                stream: stream.to_string(),
                expected_version,
                events,
                reply,
            })
            .await
            .map_err(|_| EventStoreError::Unavailable("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| EventStoreError::Unavailable("the writer has stopped".into()))?
    }

    /// Position of the last committed event; changes on every commit.
    pub fn committed(&self) -> watch::Receiver<i64> {
        self.committed.clone()
    }

    pub async fn read_stream(&self, stream: &str) -> Result<Vec<StoredEvent>, EventStoreError> {
        let rows = sqlx::query(
            "SELECT position, envelope, digest FROM events WHERE stream = ? ORDER BY stream_version",
        )
        .bind(stream)
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        rows.iter().map(row_to_event).collect()
    }

    /// Events after `position`, in commit order.
    pub async fn read_after(
        &self,
        position: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        let rows = sqlx::query(
            "SELECT position, envelope, digest FROM events WHERE position > ? ORDER BY position LIMIT ?",
        )
        .bind(position)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        rows.iter().map(row_to_event).collect()
    }

    /// Outbox entries not yet confirmed by the bus, oldest first.
    pub async fn unpublished(&self, limit: i64) -> Result<Vec<StoredEvent>, EventStoreError> {
        let rows = sqlx::query(
            "SELECT e.position, e.envelope, e.digest FROM outbox o JOIN events e ON e.position = o.position
             ORDER BY o.position LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        rows.iter().map(row_to_event).collect()
    }

    /// Removes confirmed entries from the outbox.
    pub async fn mark_published(&self, positions: &[i64]) -> Result<(), EventStoreError> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        for p in positions {
            sqlx::query("DELETE FROM outbox WHERE position = ?")
                .bind(p)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    pub async fn outbox_len(&self) -> Result<i64, EventStoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.reader)
            .await
            .map_err(unavailable)
    }
}

fn row_to_event(row: &sqlx::sqlite::SqliteRow) -> Result<StoredEvent, EventStoreError> {
    let position: i64 = row.try_get("position").map_err(unavailable)?;
    let canonical: String = row.try_get("envelope").map_err(unavailable)?;
    let digest: String = row.try_get("digest").map_err(unavailable)?;
    let corrupt = |reason: String| EventStoreError::Corrupt { position, reason };
    let envelope: EventEnvelope =
        serde_json::from_str(&canonical).map_err(|e| corrupt(e.to_string()))?;
    let digest: Digest = digest
        .parse()
        .map_err(|e: chain_core::hash::DigestParseError| corrupt(e.to_string()))?;
    Ok(StoredEvent {
        position,
        envelope,
        canonical,
        digest,
    })
}

async fn writer_task(
    pool: SqlitePool,
    mut rx: mpsc::Receiver<AppendJob>,
    committed: watch::Sender<i64>,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let span = tracing::debug_span!("commit_group", appends = jobs.len());
        let _enter = span.enter();
        match commit_group(&pool, &jobs).await {
            Ok((results, head)) => {
                committed.send_if_modified(|h| {
                    let moved = head > *h;
                    if moved {
                        *h = head;
                    }
                    moved
                });
                for (job, result) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "event store commit failed; nothing of the group was written");
                for job in jobs {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

type GroupResult = (Vec<Result<Vec<StoredEvent>, EventStoreError>>, i64);

async fn commit_group(
    pool: &SqlitePool,
    jobs: &[AppendJob],
) -> Result<GroupResult, EventStoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let mut results = Vec::with_capacity(jobs.len());
    let mut head = 0;
    for job in jobs {
        let actual: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream = ?",
        )
        .bind(&job.stream)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        let actual = actual as u64;
        if actual != job.expected_version {
            results.push(Err(EventStoreError::Conflict {
                stream: job.stream.clone(),
                expected: job.expected_version,
                actual,
            }));
            continue;
        }
        let mut stored = Vec::with_capacity(job.events.len());
        for e in &job.events {
            let position: i64 = sqlx::query_scalar(
                "INSERT INTO events (event_id, stream, stream_version, event_type, envelope, digest, recorded_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING position",
            )
            .bind(e.envelope.id.to_string())
            .bind(&e.envelope.stream)
            .bind(e.envelope.stream_version as i64)
            .bind(&e.envelope.event_type)
            .bind(&e.canonical)
            .bind(e.digest.to_hex())
            .bind(&e.envelope.recorded_at)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
            sqlx::query("INSERT INTO outbox (position) VALUES (?)")
                .bind(position)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            head = head.max(position);
            stored.push(StoredEvent {
                position,
                envelope: e.envelope.clone(),
                canonical: e.canonical.clone(),
                digest: e.digest,
            });
        }
        results.push(Ok(stored));
    }
    tx.commit().await.map_err(unavailable)?;
    Ok((results, head))
}
