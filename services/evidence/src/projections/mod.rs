//! The read side (diesel): evidence records as the query endpoints serve them, kept up to date
//! from the event store by the projector. Each batch of events and the checkpoint move in one
//! transaction, so a crash replays nothing twice and skips nothing.

use crate::domain::{EvidenceEvent, EvidenceRegistered, EvidenceStatus};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sqlite::SqliteConnection;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;
use veritrace_kernel::EventEnvelope;
use veritrace_kernel::db::Database;
use veritrace_kernel::event_store::StoredEvent;

pub const PROJECTION: &str = "evidence_records";

diesel::table! {
    evidence_records (evidence_id) {
        evidence_id -> Text,
        organisation -> Text,
        algorithm -> Text,
        digest -> Text,
        title -> Text,
        case_reference -> Nullable<Text>,
        metadata -> Nullable<Text>,
        status -> Text,
        registered_at -> Text,
        registered_event_id -> Text,
        withdrawn_at -> Nullable<Text>,
        withdrawal_reason -> Nullable<Text>,
        version -> BigInt,
    }
}

diesel::table! {
    projection_checkpoints (projection) {
        projection -> Text,
        position -> BigInt,
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = evidence_records)]
pub struct EvidenceRow {
    pub evidence_id: String,
    pub organisation: String,
    pub algorithm: String,
    pub digest: String,
    pub title: String,
    pub case_reference: Option<String>,
    pub metadata: Option<String>,
    pub status: String,
    pub registered_at: String,
    pub registered_event_id: String,
    pub withdrawn_at: Option<String>,
    pub withdrawal_reason: Option<String>,
    pub version: i64,
}

/// An evidence record as the API shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema, PartialEq)]
pub struct EvidenceView {
    pub evidence_id: String,
    pub organisation: String,
    pub content_hash: ContentHashView,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// `registered` or `withdrawn`.
    pub status: String,
    pub registered_at: String,
    /// The event that registered it: its receipt is at `/receipts/{registered_event_id}`.
    pub registered_event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawal_reason: Option<String>,
    /// Stream version; send it as `expected_version` with a command on this record.
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema, PartialEq)]
pub struct ContentHashView {
    pub algorithm: String,
    pub digest: String,
}

impl From<EvidenceRow> for EvidenceView {
    fn from(r: EvidenceRow) -> Self {
        EvidenceView {
            evidence_id: r.evidence_id,
            organisation: r.organisation,
            content_hash: ContentHashView {
                algorithm: r.algorithm,
                digest: r.digest,
            },
            title: r.title,
            case_reference: r.case_reference,
            metadata: r.metadata.and_then(|m| serde_json::from_str(&m).ok()),
            status: r.status,
            registered_at: r.registered_at,
            registered_event_id: r.registered_event_id,
            withdrawn_at: r.withdrawn_at,
            withdrawal_reason: r.withdrawal_reason,
            version: r.version,
        }
    }
}

impl EvidenceView {
    /// The view of a record that `event` (an `EvidenceRegistered`) just created: exactly what
    /// the read model holds once it has projected that event.
    pub fn registered(event: &StoredEvent) -> Option<EvidenceView> {
        let env = &event.envelope;
        match EvidenceEvent::from_parts(&env.event_type, &env.payload).ok()? {
            EvidenceEvent::EvidenceRegistered(r) => Some(registered_row(env, r).into()),
            _ => None,
        }
    }
}

impl EvidenceView {
    /// The view of a record folded from its stream's events, exactly as the read model holds
    /// it once it has projected them all: what a command answers when the read model lags.
    pub fn from_stream(events: &[StoredEvent]) -> Option<EvidenceView> {
        let mut row: Option<EvidenceRow> = None;
        for e in events {
            let env = &e.envelope;
            match EvidenceEvent::from_parts(&env.event_type, &env.payload).ok()? {
                EvidenceEvent::EvidenceRegistered(r) => row = Some(registered_row(env, r)),
                EvidenceEvent::EvidenceWithdrawn(w) => {
                    let r = row.as_mut()?;
                    r.status = status_name(EvidenceStatus::Withdrawn).into();
                    r.withdrawn_at = Some(env.recorded_at.clone());
                    r.withdrawal_reason = Some(w.reason);
                    r.version = env.stream_version as i64;
                }
            }
        }
        row.map(EvidenceView::from)
    }
}

/// The read-model row an `EvidenceRegistered` event creates.
fn registered_row(env: &EventEnvelope, r: EvidenceRegistered) -> EvidenceRow {
    EvidenceRow {
        evidence_id: r.evidence_id,
        organisation: env.organisation.clone(),
        algorithm: r.content_hash.algorithm.name().to_string(),
        digest: r.content_hash.digest,
        title: r.title,
        case_reference: r.case_reference,
        metadata: r.metadata.map(|m| serde_json::Value::Object(m).to_string()),
        status: status_name(EvidenceStatus::Registered).into(),
        registered_at: env.recorded_at.clone(),
        registered_event_id: env.id.to_string(),
        withdrawn_at: None,
        withdrawal_reason: None,
        version: env.stream_version as i64,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("read model unavailable: {0}")]
    Pool(String),
    #[error("read model query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("event at position {0} cannot be projected: {1}")]
    Event(i64, String),
}

#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // NORMAL, not FULL: the read model is rebuilt from the event store if a power loss
        // takes its last commits (rows and checkpoint move together, so it stays consistent).
        diesel::sql_query("PRAGMA busy_timeout = 10000")
            .execute(conn)
            .map_err(diesel::r2d2::Error::QueryError)?;
        diesel::sql_query("PRAGMA synchronous = NORMAL")
            .execute(conn)
            .map(|_| ())
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The read model's connection pool: the SQLite file beside the event store, or the service's
/// schema in PostgreSQL.
#[derive(Clone)]
pub struct ReadModel {
    pool: ReadPool,
}

#[derive(Clone)]
enum ReadPool {
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
    Postgres(Pool<ConnectionManager<PgConnection>>),
}

/// Filters of the evidence list.
#[derive(Debug, Default, Clone)]
pub struct EvidenceFilter {
    pub organisation: Option<String>,
    pub digest: Option<String>,
    pub algorithm: Option<String>,
    pub case_reference: Option<String>,
    pub limit: i64,
}

/// Runs `$body` with `$c` bound to a pooled connection, on a blocking thread. The body is
/// expanded once per backend, so typed diesel queries are written once for both.
macro_rules! with_conn {
    ($model:expr, |$c:ident| $body:expr) => {
        match &$model.pool {
            ReadPool::Sqlite(pool) => {
                let pool = pool.clone();
                blocking(move || {
                    let mut conn = pool.get().map_err(pool_error)?;
                    let $c: &mut SqliteConnection = &mut conn;
                    $body
                })
                .await
            }
            ReadPool::Postgres(pool) => {
                let pool = pool.clone();
                blocking(move || {
                    let mut conn = pool.get().map_err(pool_error)?;
                    let $c: &mut PgConnection = &mut conn;
                    $body
                })
                .await
            }
        }
    };
}

fn pool_error(e: diesel::r2d2::PoolError) -> ProjectionError {
    ProjectionError::Pool(e.to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ProjectionError> + Send + 'static,
) -> Result<T, ProjectionError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ProjectionError::Pool(e.to_string()))?
}

/// Applies events in position order and moves the checkpoint (inside the caller's transaction).
macro_rules! apply_events {
    ($c:ident, $events:expr, $through:expr) => {{
        for e in $events.iter() {
            let env = &e.envelope;
            let event = EvidenceEvent::from_parts(&env.event_type, &env.payload)
                .map_err(|m| ProjectionError::Event(e.position, m))?;
            match event {
                EvidenceEvent::EvidenceRegistered(r) => {
                    diesel::insert_into(evidence_records::table)
                        .values(registered_row(env, r))
                        .on_conflict_do_nothing()
                        .execute($c)?;
                }
                EvidenceEvent::EvidenceWithdrawn(w) => {
                    diesel::update(evidence_records::table.find(w.evidence_id))
                        .set((
                            evidence_records::status.eq(status_name(EvidenceStatus::Withdrawn)),
                            evidence_records::withdrawn_at.eq(Some(env.recorded_at.clone())),
                            evidence_records::withdrawal_reason.eq(Some(w.reason)),
                            evidence_records::version.eq(env.stream_version as i64),
                        ))
                        .execute($c)?;
                }
            }
        }
        let last: i64 = $through;
        diesel::insert_into(projection_checkpoints::table)
            .values((
                projection_checkpoints::projection.eq(PROJECTION),
                projection_checkpoints::position.eq(last),
            ))
            .on_conflict(projection_checkpoints::projection)
            .do_update()
            .set(projection_checkpoints::position.eq(last))
            .execute($c)?;
        Ok::<i64, ProjectionError>(last)
    }};
}

impl ReadModel {
    /// A pool on `db`: its SQLite file, or its PostgreSQL schema. The tables must exist
    /// (`migrate::run` with [`crate::MIGRATIONS`]).
    pub fn open(db: &Database) -> Result<Self, ProjectionError> {
        let pool = match db {
            Database::Sqlite(db) => ReadPool::Sqlite(
                Pool::builder()
                    .max_size(4)
                    .connection_timeout(Duration::from_secs(10))
                    .connection_customizer(Box::new(SqlitePragmas))
                    .build(ConnectionManager::new(db.path.display().to_string()))
                    .map_err(pool_error)?,
            ),
            // Lazily: a service starts while PostgreSQL is down.
            Database::Postgres(db) => ReadPool::Postgres(
                Pool::builder()
                    .max_size(db.read_connections)
                    .min_idle(Some(0))
                    .connection_timeout(db.acquire_timeout)
                    .test_on_check_out(true)
                    .build_unchecked(ConnectionManager::new(db.libpq_url.clone())),
            ),
        };
        Ok(ReadModel { pool })
    }

    pub async fn get(&self, id: String) -> Result<Option<EvidenceView>, ProjectionError> {
        with_conn!(self, |c| {
            Ok(evidence_records::table
                .find(id)
                .select(EvidenceRow::as_select())
                .first(c)
                .optional()?
                .map(EvidenceView::from))
        })
    }

    pub async fn list(&self, filter: EvidenceFilter) -> Result<Vec<EvidenceView>, ProjectionError> {
        with_conn!(self, |c| {
            let mut q = evidence_records::table.into_boxed();
            if let Some(o) = filter.organisation {
                q = q.filter(evidence_records::organisation.eq(o));
            }
            if let Some(d) = filter.digest {
                q = q.filter(evidence_records::digest.eq(d));
            }
            if let Some(a) = filter.algorithm {
                q = q.filter(evidence_records::algorithm.eq(a));
            }
            if let Some(r) = filter.case_reference {
                q = q.filter(evidence_records::case_reference.eq(r));
            }
            let rows = q
                .order(evidence_records::registered_at.desc())
                .limit(filter.limit)
                .select(EvidenceRow::as_select())
                .load(c)?;
            Ok(rows.into_iter().map(EvidenceView::from).collect())
        })
    }

    pub async fn checkpoint(&self) -> Result<i64, ProjectionError> {
        with_conn!(self, |c| {
            Ok(projection_checkpoints::table
                .find(PROJECTION)
                .select(projection_checkpoints::position)
                .first(c)
                .optional()?
                .unwrap_or(0))
        })
    }

    /// Applies events (in position order) and moves the checkpoint to `through`, atomically.
    pub async fn apply(
        &self,
        events: Arc<[StoredEvent]>,
        through: i64,
    ) -> Result<i64, ProjectionError> {
        match &self.pool {
            ReadPool::Sqlite(pool) => {
                let pool = pool.clone();
                blocking(move || {
                    let mut conn = pool.get().map_err(pool_error)?;
                    conn.immediate_transaction(|c| apply_events!(c, &events, through))
                })
                .await
            }
            ReadPool::Postgres(pool) => {
                let pool = pool.clone();
                blocking(move || {
                    let mut conn = pool.get().map_err(pool_error)?;
                    conn.transaction(|c| apply_events!(c, &events, through))
                })
                .await
            }
        }
    }
}

pub fn status_name(s: EvidenceStatus) -> &'static str {
    match s {
        EvidenceStatus::Registered => "registered",
        EvidenceStatus::Withdrawn => "withdrawn",
    }
}

#[async_trait::async_trait]
impl veritrace_kernel::projection::Projection for ReadModel {
    type Error = ProjectionError;

    fn name(&self) -> &'static str {
        PROJECTION
    }

    async fn checkpoint(&self) -> Result<i64, ProjectionError> {
        ReadModel::checkpoint(self).await
    }

    async fn apply(
        &self,
        events: Arc<[StoredEvent]>,
        through: i64,
    ) -> Result<i64, ProjectionError> {
        ReadModel::apply(self, events, through).await
    }

    fn unappliable(error: &ProjectionError) -> Option<i64> {
        match error {
            ProjectionError::Event(position, _) => Some(*position),
            _ => None,
        }
    }
}
