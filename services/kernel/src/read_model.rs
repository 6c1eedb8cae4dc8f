//! The read side every domain shares (diesel): the connection pool on the domain's read-model
//! database, the projection's checkpoint, and the apply loop the projector
//! ([`crate::projection::run_projector`]) drives. A domain writes only what is its own:
//!
//! - its tables (`diesel::table!`, and their migration, [`crate::domain::Domain::migrations`]);
//! - how each event changes them: [`ProjectedTables`], whose body
//!   [`apply_on_each_backend!`](crate::apply_on_each_backend) writes once for SQLite and
//!   PostgreSQL;
//! - its queries, typed diesel queries written once in [`with_read_conn!`](crate::with_read_conn).
//!
//! [`ReadModel`] does the rest: the pool (SQLite file or PostgreSQL schema), the table
//! `projection_checkpoints` ([`MIGRATIONS`], run by [`ReadModel::open`]), and the
//! [`Projection`] the projector feeds, which applies a batch of events and moves the checkpoint
//! in one transaction, so a crash replays nothing twice and skips nothing.
//!
//! Typed diesel queries are per backend, hence the macros that expand one body once per
//! connection type. Diesel's `MultiConnection` derive would give one connection type instead,
//! but its backend (diesel 2.3) has no `ON CONFLICT` clause, which idempotent inserts and the
//! checkpoint's upsert need, nor SQLite's `BEGIN IMMEDIATE`.
//!
//! ```ignore
//! pub struct EvidenceRecords;
//!
//! impl ProjectedTables for EvidenceRecords {
//!     const PROJECTION: &'static str = "evidence_records";
//!     veritrace_kernel::apply_on_each_backend!(|c, event| {
//!         // Read at the current version of its type, whatever version it was stored at.
//!         let e = EvidenceEvent::from_envelope(&event.envelope).map_err(ApplyError::Unappliable)?;
//!         let id = e.evidence_id().to_string();
//!         diesel::insert_into(evidence_records::table).values(row(e)).on_conflict_do_nothing().execute(c)?;
//!         Ok(vec![id]) // the event's readers may read the record from now on
//!     });
//! }
//!
//! let model = ReadModel::<EvidenceRecords>::open(&read_db).await?;
//! tokio::spawn(run_projector(store, model.clone(), reached, shutdown));
//! let n: i64 = with_read_conn!(model, |c| Ok(evidence_records::table.count().get_result(c)?))?;
//! ```

use crate::db::Database;
use crate::event_store::StoredEvent;
use crate::migrate::{self, Migration};
use crate::problem::ApiError;
use crate::projection::Projection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// The kernel's read-model tables (`projection_checkpoints`), component `read_model` of the
/// read-model database. [`ReadModel::open`] runs them after the domain's own migrations have
/// run (the platform runs those before [`crate::domain::Domain::start`]); not before: evidence's
/// first migration, from before the kernel owned the table, creates it without `IF NOT EXISTS`.
pub const MIGRATIONS: &[Migration] = &[
    crate::migration!(
        1,
        "projection_checkpoints",
        "read_model/0001_projection_checkpoints.sql"
    ),
    crate::migration!(2, "record_readers", "read_model/0002_record_readers.sql"),
    crate::migration!(
        3,
        "record_readers_without_rowid",
        "read_model/0003_record_readers_without_rowid.sql"
    ),
];

/// Connections of one SQLite read model: a projector writing and a few request handlers reading.
const SQLITE_CONNECTIONS: u32 = 4;
const SQLITE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

mod schema {
    diesel::table! {
        projection_checkpoints (projection) {
            projection -> Text,
            position -> BigInt,
        }
    }

    diesel::table! {
        /// Who may read each record of a projection ([`super::RecordReaders`]).
        record_readers (projection, record_id, reader) {
            projection -> Text,
            record_id -> Text,
            reader -> Text,
        }
    }
}
use schema::projection_checkpoints;
/// The kernel's access-list table, for a domain's `allow_tables_to_appear_in_same_query!`
/// beside the table it filters with [`readable_by`].
pub use schema::record_readers;

/// Who may read a projection's records, kept as its events are applied: each record is
/// readable by every reader of any of its events (the access list the event store keeps beside
/// each event, [`StoredEvent::readers`]). Implemented on both backends' connections. The
/// kernel grants, once per batch, to the records a domain's apply body names
/// ([`ProjectedTables`]); a domain looks up in [`with_read_conn!`](crate::with_read_conn) and
/// filters its queries with [`readable_by`]. The admin and auditors read everything whatever the list says
/// (`auth::Caller::may_read`).
pub trait RecordReaders {
    /// Adds each `(record_id, reader)` of `grants` to `projection`'s access lists (a pair
    /// already there stays once), in one statement: a record, once readable by a party, stays
    /// readable by it.
    fn grant_readers(&mut self, projection: &str, grants: &[(String, String)]) -> QueryResult<()>;

    /// The readers listed for each of `record_ids` in `projection`, each record's sorted (a
    /// record with none has no entry). A projection's
    /// [`EVERY_RECORD_READERS`](ProjectedTables::EVERY_RECORD_READERS) are not listed: see
    /// [`readers_of`].
    fn listed_readers(
        &mut self,
        projection: &str,
        record_ids: &[&str],
    ) -> QueryResult<HashMap<String, Vec<String>>>;
}

/// The grants of a batch of events as one statement's rows (SQLite: a JSON array of pairs, one
/// parameter; PostgreSQL: two arrays), whatever their number.
const GRANT_SQLITE: &str = "INSERT INTO record_readers (projection, record_id, reader)
     SELECT ?, value ->> 0, value ->> 1 FROM json_each(?) WHERE true
     ON CONFLICT DO NOTHING";
const GRANT_POSTGRES: &str = "INSERT INTO record_readers (projection, record_id, reader)
     SELECT $1, r, d FROM UNNEST($2::TEXT[], $3::TEXT[]) AS g(r, d)
     ON CONFLICT DO NOTHING";

/// Grants on SQLite: the pairs as one JSON array parameter.
fn grant_sqlite(
    c: &mut SqliteConnection,
    projection: &str,
    grants: &[(String, String)],
) -> QueryResult<usize> {
    diesel::sql_query(GRANT_SQLITE)
        .bind::<diesel::sql_types::Text, _>(projection)
        .bind::<diesel::sql_types::Text, _>(serde_json::to_string(grants).unwrap_or_default())
        .execute(c)
}

/// Grants on PostgreSQL: the pairs as two arrays.
fn grant_postgres(
    c: &mut PgConnection,
    projection: &str,
    grants: &[(String, String)],
) -> QueryResult<usize> {
    type TextArray = diesel::sql_types::Array<diesel::sql_types::Text>;
    let (records, readers): (Vec<&str>, Vec<&str>) =
        grants.iter().map(|(r, d)| (r.as_str(), d.as_str())).unzip();
    diesel::sql_query(GRANT_POSTGRES)
        .bind::<diesel::sql_types::Text, _>(projection)
        .bind::<TextArray, _>(records)
        .bind::<TextArray, _>(readers)
        .execute(c)
}

/// One body, both connection types: diesel's typed queries are per backend.
macro_rules! impl_record_readers {
    ($conn:ty, $grant:ident) => {
        impl RecordReaders for $conn {
            fn grant_readers(
                &mut self,
                projection: &str,
                grants: &[(String, String)],
            ) -> QueryResult<()> {
                if !grants.is_empty() {
                    $grant(self, projection, grants)?;
                }
                Ok(())
            }

            fn listed_readers(
                &mut self,
                projection: &str,
                record_ids: &[&str],
            ) -> QueryResult<HashMap<String, Vec<String>>> {
                let pairs: Vec<(String, String)> = record_readers::table
                    .filter(record_readers::projection.eq(projection))
                    .filter(record_readers::record_id.eq_any(record_ids))
                    .select((record_readers::record_id, record_readers::reader))
                    .order((record_readers::record_id, record_readers::reader))
                    .load(self)?;
                let mut readers: HashMap<String, Vec<String>> = HashMap::new();
                for (record_id, reader) in pairs {
                    readers.entry(record_id).or_default().push(reader);
                }
                Ok(readers)
            }
        }
    };
}
impl_record_readers!(SqliteConnection, grant_sqlite);
impl_record_readers!(PgConnection, grant_postgres);

/// Lets the domain's table `$table` (the module `diesel::table!` made) be filtered with
/// [`readable_by`], whose subquery reads [`record_readers`]: diesel's
/// `allow_tables_to_appear_in_same_query!` for the two, less its PostgreSQL-only forms (`ONLY`,
/// `TABLESAMPLE`), which the orphan rule forbids outside the crate of one of the tables.
#[macro_export]
macro_rules! filtered_by_readers {
    ($table:ident) => {
        impl ::diesel::query_source::TableNotEqual<$crate::read_model::record_readers::table>
            for $table::table
        {
        }
        impl ::diesel::query_source::TableNotEqual<$table::table>
            for $crate::read_model::record_readers::table
        {
        }
    };
}

/// The readers of each of `record_ids` of `T`'s records, each record's sorted: those listed
/// for it, and `T`'s [`EVERY_RECORD_READERS`](ProjectedTables::EVERY_RECORD_READERS).
pub fn readers_of<T: ProjectedTables, C: RecordReaders>(
    c: &mut C,
    record_ids: &[&str],
) -> QueryResult<HashMap<String, Vec<String>>> {
    let mut readers = c.listed_readers(T::PROJECTION, record_ids)?;
    if !T::EVERY_RECORD_READERS.is_empty() {
        for id in record_ids {
            let listed = readers.entry(id.to_string()).or_default();
            listed.extend(T::EVERY_RECORD_READERS.iter().map(|r| r.to_string()));
            listed.sort();
            listed.dedup();
        }
    }
    Ok(readers)
}

/// The ids of `projection`'s records that one of `readers` may read: the subquery
/// [`readable_by`] compares a record's id with.
pub type ReadableRecords = diesel::dsl::Select<
    diesel::dsl::Filter<
        diesel::dsl::Filter<
            record_readers::table,
            diesel::dsl::Eq<record_readers::projection, &'static str>,
        >,
        diesel::dsl::EqAny<record_readers::reader, Vec<String>>,
    >,
    record_readers::record_id,
>;

/// A filter for a domain's query on `T`'s records: the record whose id is `record_id` (a text
/// column) is one that one of `readers` may read (`auth::Caller::reads_as`). None where one of
/// `readers` reads every record ([`ProjectedTables::EVERY_RECORD_READERS`]): nothing to filter.
/// The table must be declared [`filtered_by_readers!`](crate::filtered_by_readers):
///
/// ```ignore
/// veritrace_kernel::filtered_by_readers!(evidence_records);
/// if let Some(readable) = readable_by::<EvidenceRecords, _>(evidence_records::evidence_id, readers) {
///     q = q.filter(readable);
/// }
/// ```
pub fn readable_by<T, C>(
    record_id: C,
    readers: Vec<String>,
) -> Option<diesel::dsl::EqAny<C, ReadableRecords>>
where
    T: ProjectedTables,
    C: diesel::expression::Expression<SqlType = diesel::sql_types::Text>,
{
    if readers
        .iter()
        .any(|r| T::EVERY_RECORD_READERS.contains(&r.as_str()))
    {
        return None;
    }
    let readable: ReadableRecords = record_readers::table
        .filter(record_readers::projection.eq(T::PROJECTION))
        .filter(record_readers::reader.eq_any(readers))
        .select(record_readers::record_id);
    Some(record_id.eq_any(readable))
}

/// The connection types [`apply_on_each_backend!`](crate::apply_on_each_backend) and
/// [`with_read_conn!`](crate::with_read_conn) name, so a domain's expansion needs no path of
/// its own to them.
#[doc(hidden)]
pub mod backends {
    pub use diesel::pg::PgConnection;
    pub use diesel::sqlite::SqliteConnection;
}

/// A domain's read-model tables as the projector keeps them: the projection's name and how a
/// batch of events changes them. Write the two `apply_*` functions with one body: per event
/// through [`apply_on_each_backend!`](crate::apply_on_each_backend), or per batch through
/// [`apply_batch_on_each_backend!`](crate::apply_batch_on_each_backend), which lets the rows of
/// consecutive events go in one statement (one round trip to PostgreSQL, not one per event).
///
/// Applying an event twice must leave the tables as applying it once (insert with
/// `on_conflict_do_nothing`, update to values taken from the event): a projector that lost its
/// lease mid-way may have applied it already.
pub trait ProjectedTables: Send + Sync + 'static {
    /// Unique within the read-model database: the key of its checkpoint; its events set aside
    /// are recorded as `projection:<PROJECTION>`.
    const PROJECTION: &'static str;

    /// The readers who read every one of its records, by the domain's rule (courts read all
    /// evidence): not granted record by record, so a record costs no access-list row for
    /// them; [`readable_by`] does not filter for them and [`readers_of`] adds them to each
    /// record's list.
    const EVERY_RECORD_READERS: &'static [&'static str] = &[];

    /// Applies `events` (in position order) on SQLite, inside the transaction that moves the
    /// checkpoint. Returns, for each event in order, the ids of the records it concerns, which
    /// its readers may read from then on (the kernel grants them, for the whole batch at once).
    /// An event that can never be applied fails the batch as [`ReadModelError::Unappliable`],
    /// naming its position.
    fn apply_sqlite(
        c: &mut SqliteConnection,
        events: &[StoredEvent],
    ) -> Result<Vec<Applied>, ReadModelError>;

    /// Applies `events` on PostgreSQL, as [`ProjectedTables::apply_sqlite`] on SQLite.
    fn apply_postgres(
        c: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<Vec<Applied>, ReadModelError>;
}

/// What applying one event returns: the ids of the records it concerns (one, mostly; none, or
/// several, as a split creates records), whose readers then include the event's
/// ([`StoredEvent::readers`]).
pub type Applied = Vec<String>;

/// Why one event was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The event can never be applied (its payload does not read as the domain's event): the
    /// projector sets it aside and applies the others.
    #[error("{0}")]
    Unappliable(String),
    /// The tables could not be written now: the whole batch is retried.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// No connection (pool exhausted, database down, worker thread lost): worth retrying.
    #[error("read model unavailable: {0}")]
    Unavailable(String),
    #[error("read model query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("event at position {position} cannot be projected: {reason}")]
    Unappliable { position: i64, reason: String },
    /// The kernel's read-model tables could not be created ([`ReadModel::open`]).
    #[error("read model tables: {0}")]
    Migrate(#[from] migrate::MigrateError),
    /// A projection's batch body answered for another number of events than it was given: a
    /// defect in the domain; nothing of the batch is kept, and the projector reports itself
    /// stuck rather than grant readers to the wrong records.
    #[error("projection {projection} answered for {answered} of {given} events")]
    Miscounted {
        projection: &'static str,
        answered: usize,
        given: usize,
    },
}

impl ApplyError {
    /// This error as the read model reports it, naming the event's position.
    pub fn at(self, position: i64) -> ReadModelError {
        match self {
            ApplyError::Unappliable(reason) => ReadModelError::Unappliable { position, reason },
            ApplyError::Query(e) => ReadModelError::Query(e),
        }
    }
}

impl From<ReadModelError> for ApiError {
    fn from(e: ReadModelError) -> Self {
        match e {
            ReadModelError::Unavailable(_) => ApiError::unavailable("the read model", e),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // The projector and the event store's process write the file concurrently: wait for
        // the lock rather than fail at once. NORMAL, not FULL: the read model is rebuilt from
        // the event store if a power loss takes its last commits (rows and checkpoint move
        // together, so it stays consistent).
        diesel::sql_query("PRAGMA busy_timeout = 10000")
            .execute(conn)
            .map_err(diesel::r2d2::Error::QueryError)?;
        // The read model's own writes checkpoint at the same interval as the event store's.
        diesel::sql_query(format!(
            "PRAGMA wal_autocheckpoint = {}",
            crate::db::WAL_CHECKPOINT_PAGES
        ))
        .execute(conn)
        .map_err(diesel::r2d2::Error::QueryError)?;
        // Statement journals and sorts in memory, as the event store's connections keep them.
        diesel::sql_query(format!("PRAGMA temp_store = {}", crate::db::TEMP_STORE))
            .execute(conn)
            .map_err(diesel::r2d2::Error::QueryError)?;
        diesel::sql_query("PRAGMA synchronous = NORMAL")
            .execute(conn)
            .map(|_| ())
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The pool of a read model: the SQLite file beside the event store, or the service's schema
/// in PostgreSQL. [`with_read_conn!`](crate::with_read_conn) matches on it.
#[derive(Clone)]
pub enum ReadPool {
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
    Postgres(Pool<ConnectionManager<PgConnection>>),
}

impl ReadPool {
    fn open(db: &Database) -> Result<Self, ReadModelError> {
        Ok(match db {
            Database::Sqlite(db) => ReadPool::Sqlite(
                Pool::builder()
                    .max_size(SQLITE_CONNECTIONS)
                    .connection_timeout(SQLITE_CONNECTION_TIMEOUT)
                    .connection_customizer(Box::new(SqlitePragmas))
                    .build(ConnectionManager::new(db.path.display().to_string()))
                    .map_err(unavailable)?,
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
        })
    }
}

fn unavailable(e: impl std::fmt::Display) -> ReadModelError {
    ReadModelError::Unavailable(e.to_string())
}

/// Runs `f` on a connection of `pool`, on a blocking thread (diesel is synchronous).
pub async fn on_connection<C, R>(
    pool: Pool<ConnectionManager<C>>,
    f: impl FnOnce(&mut C) -> Result<R, ReadModelError> + Send + 'static,
) -> Result<R, ReadModelError>
where
    C: R2D2Connection + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(unavailable)?;
        f(&mut conn)
    })
    .await
    .map_err(unavailable)?
}

/// Runs `$body` with `$c` bound to a connection of a [`ReadModel`]'s pool, on a blocking
/// thread, and evaluates to its `Result<_, ReadModelError>` (`?` turns diesel's errors into
/// it). The body is expanded once per backend, so a typed diesel query is written once for
/// both; it is a `move` closure, so what it uses must be owned. Use it in an async function.
///
/// ```ignore
/// pub async fn get(&self, id: String) -> Result<Option<Row>, ReadModelError> {
///     with_read_conn!(self.model, |c| Ok(rows::table.find(id).first(c).optional()?))
/// }
/// ```
#[macro_export]
macro_rules! with_read_conn {
    ($model:expr, |$c:ident| $body:expr) => {
        match $model.pool() {
            $crate::read_model::ReadPool::Sqlite(pool) => {
                $crate::read_model::on_connection(
                    pool.clone(),
                    move |$c: &mut $crate::read_model::backends::SqliteConnection| $body,
                )
                .await
            }
            $crate::read_model::ReadPool::Postgres(pool) => {
                $crate::read_model::on_connection(
                    pool.clone(),
                    move |$c: &mut $crate::read_model::backends::PgConnection| $body,
                )
                .await
            }
        }
    };
}

/// Writes [`ProjectedTables::apply_sqlite`] and [`ProjectedTables::apply_postgres`] from one
/// body per event, inside `impl ProjectedTables for ...`: `$c` is the connection (in the
/// transaction that moves the checkpoint), `$event` the [`StoredEvent`]; the body evaluates to
/// `Result<Applied, ApplyError>` (`?` turns diesel's errors into it): the ids of the records
/// the event concerns, whose readers the kernel then grants. The events of a batch are applied
/// one after another, each in its own statements.
///
/// ```ignore
/// impl ProjectedTables for Notes {
///     const PROJECTION: &'static str = "notes";
///     veritrace_kernel::apply_on_each_backend!(|c, event| {
///         let n = note(event)?;
///         diesel::insert_into(notes::table).values(&n).on_conflict_do_nothing().execute(c)?;
///         Ok(vec![n.id])
///     });
/// }
/// ```
#[macro_export]
macro_rules! apply_on_each_backend {
    (|$c:ident, $event:ident| $body:expr) => {
        $crate::apply_on_each_backend!(@per_event apply_sqlite, SqliteConnection, $c, $event, $body);
        $crate::apply_on_each_backend!(@per_event apply_postgres, PgConnection, $c, $event, $body);
    };
    (@per_event $name:ident, $conn:ident, $c:ident, $event:ident, $body:expr) => {
        fn $name(
            c: &mut $crate::read_model::backends::$conn,
            events: &[$crate::event_store::StoredEvent],
        ) -> ::std::result::Result<
            ::std::vec::Vec<$crate::read_model::Applied>,
            $crate::read_model::ReadModelError,
        > {
            fn apply(
                $c: &mut $crate::read_model::backends::$conn,
                $event: &$crate::event_store::StoredEvent,
            ) -> ::std::result::Result<$crate::read_model::Applied, $crate::read_model::ApplyError>
            {
                $body
            }
            events
                .iter()
                .map(|event| apply(c, event).map_err(|e| e.at(event.position)))
                .collect()
        }
    };
}

/// Writes [`ProjectedTables::apply_sqlite`] and [`ProjectedTables::apply_postgres`] from one
/// body per batch, inside `impl ProjectedTables for ...`: `$c` is the connection (in the
/// transaction that moves the checkpoint), `$events` the batch (`&[StoredEvent]`, in position
/// order); the body evaluates to `Result<Vec<Applied>, ReadModelError>`, one [`Applied`] per
/// event in order. Use it to write the rows of consecutive events in one statement; name an
/// event that can never be applied with [`ApplyError::at`].
#[macro_export]
macro_rules! apply_batch_on_each_backend {
    (|$c:ident, $events:ident| $body:expr) => {
        fn apply_sqlite(
            $c: &mut $crate::read_model::backends::SqliteConnection,
            $events: &[$crate::event_store::StoredEvent],
        ) -> ::std::result::Result<
            ::std::vec::Vec<$crate::read_model::Applied>,
            $crate::read_model::ReadModelError,
        > {
            $body
        }

        fn apply_postgres(
            $c: &mut $crate::read_model::backends::PgConnection,
            $events: &[$crate::event_store::StoredEvent],
        ) -> ::std::result::Result<
            ::std::vec::Vec<$crate::read_model::Applied>,
            $crate::read_model::ReadModelError,
        > {
            $body
        }
    };
}

/// Bound parameters at most per statement of [`insert_rows!`](crate::insert_rows), under
/// SQLite's limit (32,766) and PostgreSQL's (65,535).
pub const PARAMETERS_PER_INSERT: usize = 30_000;

/// Inserts `$rows` (a slice of a domain's diesel `Insertable` rows of `$columns` columns each)
/// into `$table`, skipping rows already there, in as few multi-row statements as fit under
/// both backends' parameter limits; in a batch body
/// ([`apply_batch_on_each_backend!`](crate::apply_batch_on_each_backend)), where `?` turns
/// diesel's errors into the body's. The rows' struct needs
/// `#[diesel(treat_none_as_default_value = false)]`: SQLite takes a multi-row insert only
/// without DEFAULT values.
#[macro_export]
macro_rules! insert_rows {
    ($c:expr, $table:expr, $rows:expr, $columns:expr) => {
        for rows in $rows.chunks($crate::read_model::PARAMETERS_PER_INSERT / $columns) {
            ::diesel::RunQueryDsl::execute(
                ::diesel::insert_into($table)
                    .values(rows)
                    .on_conflict_do_nothing(),
                $c,
            )?;
        }
    };
}

/// A domain's read model: the pool on its read-model database and the checkpoint of its
/// projection `T`. It is the [`Projection`] the projector feeds; the domain's queries read it
/// through [`with_read_conn!`](crate::with_read_conn).
pub struct ReadModel<T: ProjectedTables> {
    pool: ReadPool,
    tables: PhantomData<fn() -> T>,
}

// Not derived: that would require `T: Clone`, and `T` is only a marker.
impl<T: ProjectedTables> Clone for ReadModel<T> {
    fn clone(&self) -> Self {
        ReadModel {
            pool: self.pool.clone(),
            tables: PhantomData,
        }
    }
}

/// Moves the checkpoint of `$projection` to `$position`, on the connection `$c` (one typed
/// query for both backends).
macro_rules! save_checkpoint {
    ($c:expr, $projection:expr, $position:expr) => {
        diesel::insert_into(projection_checkpoints::table)
            .values((
                projection_checkpoints::projection.eq($projection),
                projection_checkpoints::position.eq($position),
            ))
            .on_conflict(projection_checkpoints::projection)
            .do_update()
            .set(projection_checkpoints::position.eq($position))
            .execute($c)
    };
}

/// Applies `events` with `apply`, then grants their readers the records they concern in one
/// statement.
fn apply_and_grant<T: ProjectedTables, C: RecordReaders>(
    c: &mut C,
    events: &[StoredEvent],
    apply: fn(&mut C, &[StoredEvent]) -> Result<Vec<Applied>, ReadModelError>,
) -> Result<(), ReadModelError> {
    let applied = apply(c, events)?;
    if applied.len() != events.len() {
        return Err(ReadModelError::Miscounted {
            projection: T::PROJECTION,
            answered: applied.len(),
            given: events.len(),
        });
    }
    // Each (record, reader) once, in key order: SQLite then inserts at the end of its B-trees
    // (record ids are time-ordered) rather than here and there.
    let mut grants = std::collections::BTreeSet::new();
    for (event, records) in events.iter().zip(applied) {
        for record in records {
            grants.extend(
                event
                    .readers
                    .iter()
                    .filter(|r| !T::EVERY_RECORD_READERS.contains(&r.as_str()))
                    .map(|r| (record.clone(), r.clone())),
            );
        }
    }
    let grants: Vec<(String, String)> = grants.into_iter().collect();
    c.grant_readers(T::PROJECTION, &grants)?;
    Ok(())
}

impl<T: ProjectedTables> ReadModel<T> {
    /// Runs the kernel's read-model migrations ([`MIGRATIONS`]) on `db` and opens a pool on it:
    /// its SQLite file, or its PostgreSQL schema (connected lazily). The domain's own tables
    /// must exist already (`migrate::run` with its migrations).
    pub async fn open(db: &Database) -> Result<Self, ReadModelError> {
        migrate::run(db, "read_model", MIGRATIONS).await?;
        Ok(ReadModel {
            pool: ReadPool::open(db)?,
            tables: PhantomData,
        })
    }

    /// The pool, for [`with_read_conn!`](crate::with_read_conn).
    pub fn pool(&self) -> &ReadPool {
        &self.pool
    }

    /// The position of the last event applied (0 for none).
    pub async fn checkpoint(&self) -> Result<i64, ReadModelError> {
        crate::with_read_conn!(self, |c| {
            Ok(projection_checkpoints::table
                .find(T::PROJECTION)
                .select(projection_checkpoints::position)
                .first(c)
                .optional()?
                .unwrap_or(0))
        })
    }

    /// Applies `events` (in position order) and moves the checkpoint to `through`, in one
    /// transaction (`BEGIN IMMEDIATE` on SQLite: it writes, and a deferred transaction could
    /// not take the write lock once another writer committed). Returns `through`.
    pub async fn apply(
        &self,
        events: Arc<[StoredEvent]>,
        through: i64,
    ) -> Result<i64, ReadModelError> {
        match &self.pool {
            ReadPool::Sqlite(pool) => {
                on_connection(pool.clone(), move |c: &mut SqliteConnection| {
                    c.immediate_transaction(|c| {
                        apply_and_grant::<T, _>(c, &events, T::apply_sqlite)?;
                        save_checkpoint!(c, T::PROJECTION, through)?;
                        Ok(through)
                    })
                })
                .await
            }
            ReadPool::Postgres(pool) => {
                on_connection(pool.clone(), move |c: &mut PgConnection| {
                    c.transaction(|c| {
                        apply_and_grant::<T, _>(c, &events, T::apply_postgres)?;
                        save_checkpoint!(c, T::PROJECTION, through)?;
                        Ok(through)
                    })
                })
                .await
            }
        }
    }
}

#[async_trait::async_trait]
impl<T: ProjectedTables> Projection for ReadModel<T> {
    type Error = ReadModelError;

    fn name(&self) -> &'static str {
        T::PROJECTION
    }

    async fn checkpoint(&self) -> Result<i64, ReadModelError> {
        ReadModel::checkpoint(self).await
    }

    async fn apply(&self, events: Arc<[StoredEvent]>, through: i64) -> Result<i64, ReadModelError> {
        ReadModel::apply(self, events, through).await
    }

    fn unappliable(error: &ReadModelError) -> Option<i64> {
        match error {
            ReadModelError::Unappliable { position, .. } => Some(*position),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::EventEnvelope;
    use crate::testing::TestDb;
    use chain_core::HashAlg;

    mod notes_schema {
        diesel::table! {
            notes (id) {
                id -> Text,
                body -> Text,
            }
        }
    }
    use notes_schema::notes;
    crate::filtered_by_readers!(notes);

    const NOTES_TABLE: &[Migration] = &[Migration {
        version: 1,
        name: "notes",
        sqlite: "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL)",
        postgres: "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL)",
    }];

    /// One row per event `{"id": .., "body": ..}`; any other payload cannot be applied.
    struct Notes;

    impl ProjectedTables for Notes {
        const PROJECTION: &'static str = "notes";
        crate::apply_on_each_backend!(|c, event| {
            let payload = &event.envelope.payload;
            let (Some(id), Some(body)) = (payload["id"].as_str(), payload["body"].as_str()) else {
                return Err(ApplyError::Unappliable(
                    "a note needs an id and a body".into(),
                ));
            };
            diesel::insert_into(notes::table)
                .values((notes::id.eq(id), notes::body.eq(body)))
                .on_conflict_do_nothing()
                .execute(c)?;
            Ok(vec![id.to_string()])
        });
    }

    fn event(position: i64, payload: serde_json::Value) -> StoredEvent {
        StoredEvent {
            position,
            envelope: Arc::new(EventEnvelope {
                id: uuid::Uuid::now_v7(),
                service: "notes".into(),
                stream: format!("note-{position}"),
                stream_version: 1,
                event_type: "NoteWritten".into(),
                type_version: 1,
                occurred_at: "2025-01-01T00:00:00.000Z".into(),
                recorded_at: "2025-01-01T00:00:00.000Z".into(),
                organisation: "org".into(),
                payload,
            }),
            canonical: "".into(),
            digest: HashAlg::Sha3_256.hash(b""),
            readers: vec!["org".into()],
        }
    }

    /// The projector's and the queries' connections keep statement journals and sorts in
    /// memory, as the event store's do.
    #[tokio::test]
    async fn temporary_data_is_kept_in_memory() {
        #[derive(diesel::QueryableByName)]
        struct TempStore {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            temp_store: i64,
        }
        let db = TestDb::sqlite().await;
        let ReadPool::Sqlite(pool) = ReadPool::open(&db.open("notes").await).expect("a pool")
        else {
            unreachable!("a SQLite test database")
        };
        let mut c = pool.get().expect("a connection");
        let mode: TempStore = diesel::sql_query("PRAGMA temp_store")
            .get_result(&mut c)
            .expect("temp_store");
        // 2 = MEMORY.
        assert_eq!(mode.temp_store, 2);
    }

    /// `e`, readable by `readers`.
    fn read_by(mut e: StoredEvent, readers: &[&str]) -> StoredEvent {
        e.readers = owned(readers);
        e
    }

    fn owned(strs: &[&str]) -> Vec<String> {
        strs.iter().map(|s| s.to_string()).collect()
    }

    fn note(position: i64, id: &str) -> StoredEvent {
        event(
            position,
            serde_json::json!({ "id": id, "body": format!("note {id}") }),
        )
    }

    /// Notes every court reads, as courts read all evidence.
    struct CourtNotes;

    impl ProjectedTables for CourtNotes {
        const PROJECTION: &'static str = "court_notes";
        const EVERY_RECORD_READERS: &'static [&'static str] = &["role:court"];
        fn apply_sqlite(
            c: &mut SqliteConnection,
            events: &[StoredEvent],
        ) -> Result<Vec<Applied>, ReadModelError> {
            Notes::apply_sqlite(c, events)
        }
        fn apply_postgres(
            c: &mut PgConnection,
            events: &[StoredEvent],
        ) -> Result<Vec<Applied>, ReadModelError> {
            Notes::apply_postgres(c, events)
        }
    }

    async fn notes_model<T: ProjectedTables>(db: &TestDb) -> ReadModel<T> {
        let db = db.open("notes").await;
        migrate::run(&db, "notes", NOTES_TABLE)
            .await
            .expect("the notes table");
        ReadModel::open(&db).await.expect("the read model")
    }

    async fn rows(model: &ReadModel<Notes>) -> Vec<(String, String)> {
        crate::with_read_conn!(model, |c| {
            Ok(notes::table
                .select((notes::id, notes::body))
                .order(notes::id)
                .load(c)?)
        })
        .expect("the notes")
    }

    /// The notes one of `readers` may read, by id.
    async fn readable<T: ProjectedTables>(model: &ReadModel<T>, readers: &[&str]) -> Vec<String> {
        let readers: Vec<String> = readers.iter().map(|r| r.to_string()).collect();
        crate::with_read_conn!(model, |c| {
            let mut q = notes::table.select(notes::id).order(notes::id).into_boxed();
            if let Some(allowed) = readable_by::<T, _>(notes::id, readers) {
                q = q.filter(allowed);
            }
            Ok(q.load(c)?)
        })
        .expect("the readable notes")
    }

    /// Each record's readers as [`readers_of`] reads them, and the pairs stored.
    async fn readers_and_rows<T: ProjectedTables>(
        model: &ReadModel<T>,
        ids: &[&str],
    ) -> (HashMap<String, Vec<String>>, i64) {
        let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        crate::with_read_conn!(model, |c| {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let readers = readers_of::<T, _>(c, &ids)?;
            let rows: i64 = record_readers::table
                .filter(record_readers::projection.eq(T::PROJECTION))
                .count()
                .get_result(c)?;
            Ok((readers, rows))
        })
        .expect("the readers")
    }

    /// A batch body with a defect: it answers for no event at all.
    struct Miscounting;

    impl ProjectedTables for Miscounting {
        const PROJECTION: &'static str = "miscounting";
        crate::apply_batch_on_each_backend!(|c, events| {
            let _ = (c, events);
            Ok(Vec::new())
        });
    }

    crate::backend_tests! {
        async fn a_batch_body_that_miscounts_its_events_moves_nothing(db: TestDb) {
            let db = db.open("miscounting").await;
            let model: ReadModel<Miscounting> = ReadModel::open(&db).await.expect("the read model");
            let batch: Arc<[StoredEvent]> = vec![note(1, "a"), note(2, "b")].into();
            let err = model.apply(batch, 2).await.expect_err("miscounted");
            assert!(
                matches!(err, ReadModelError::Miscounted { answered: 0, given: 2, .. }),
                "{err}"
            );
            assert_eq!(model.checkpoint().await.expect("checkpoint"), 0);
        }

        async fn a_record_is_readable_by_the_readers_of_any_of_its_events(db: TestDb) {
            let model: ReadModel<Notes> = notes_model(&db).await;
            let batch: Arc<[StoredEvent]> = vec![
                read_by(note(1, "a"), &["org", "org-b"]),
                read_by(note(2, "b"), &["org"]),
                // A later event of "a" (applied twice, as a projector may) adds a reader.
                read_by(note(3, "a"), &["org", "role:court"]),
                read_by(note(4, "a"), &["org", "role:court"]),
            ]
            .into();
            model.apply(batch, 4).await.expect("applied");
            assert_eq!(readable(&model, &["org"]).await, ["a", "b"]);
            assert_eq!(readable(&model, &["org-b"]).await, ["a"]);
            assert_eq!(readable(&model, &["org-x", "role:court"]).await, ["a"]);
            assert!(readable(&model, &["org-x"]).await.is_empty());
            let (pairs, _) = readers_and_rows(&model, &["a", "b", "z"]).await;
            assert_eq!(
                pairs,
                HashMap::from([
                    ("a".to_string(), owned(&["org", "org-b", "role:court"])),
                    ("b".to_string(), owned(&["org"])),
                ])
            );
            // Another projection's grants are its own.
            crate::with_read_conn!(model, |c| Ok(c.grant_readers(
                "other",
                &[("b".to_string(), "org-x".to_string())]
            )?))
            .expect("granted");
            assert!(readable(&model, &["org-x"]).await.is_empty());
        }

        async fn every_record_readers_read_every_record_without_a_row_per_record(db: TestDb) {
            let model: ReadModel<CourtNotes> = notes_model(&db).await;
            let batch: Arc<[StoredEvent]> = vec![
                read_by(note(1, "a"), &["org", "role:court"]),
                read_by(note(2, "b"), &["org-b", "role:court"]),
            ]
            .into();
            model.apply(batch, 2).await.expect("applied");
            assert_eq!(readable(&model, &["org-x", "role:court"]).await, ["a", "b"]);
            assert_eq!(readable(&model, &["org-b"]).await, ["b"]);
            assert!(readable(&model, &["org-x"]).await.is_empty());
            let (readers, rows) = readers_and_rows(&model, &["a", "b"]).await;
            assert_eq!(
                readers,
                HashMap::from([
                    ("a".to_string(), owned(&["org", "role:court"])),
                    ("b".to_string(), owned(&["org-b", "role:court"])),
                ])
            );
            assert_eq!(rows, 2, "one listed reader per note, none for the courts");
        }

        async fn a_failing_event_leaves_neither_rows_nor_checkpoint(db: TestDb) {
            let model: ReadModel<Notes> = notes_model(&db).await;
            let batch: Arc<[StoredEvent]> =
                vec![note(1, "a"), event(2, serde_json::json!({ "id": "b" })), note(3, "c")].into();
            let err = model.apply(batch, 3).await.expect_err("event 2 cannot be applied");
            // The projector sets aside the event the error names, and only that one.
            assert_eq!(ReadModel::<Notes>::unappliable(&err), Some(2));
            assert!(err.to_string().contains("position 2"), "{err}");
            assert_eq!(rows(&model).await, vec![]);
            assert_eq!(model.checkpoint().await.expect("checkpoint"), 0);

            let without: Arc<[StoredEvent]> = vec![note(1, "a"), note(3, "c")].into();
            assert_eq!(model.apply(without, 3).await.expect("applied"), 3);
            assert_eq!(
                rows(&model).await,
                vec![("a".into(), "note a".into()), ("c".into(), "note c".into())]
            );
            assert_eq!(model.checkpoint().await.expect("checkpoint"), 3);
        }

        async fn applying_a_batch_again_changes_nothing(db: TestDb) {
            let model: ReadModel<Notes> = notes_model(&db).await;
            let batch: Arc<[StoredEvent]> = vec![note(1, "a"), note(2, "b")].into();
            assert_eq!(model.apply(batch.clone(), 2).await.expect("applied"), 2);
            let once = rows(&model).await;
            // A projector that lost its lease mid-way applies the same batch again.
            assert_eq!(model.apply(batch, 2).await.expect("applied again"), 2);
            assert_eq!(rows(&model).await, once);
            assert_eq!(once.len(), 2);
            assert_eq!(model.checkpoint().await.expect("checkpoint"), 2);
        }

        async fn the_projector_sets_aside_the_event_it_cannot_apply(db: TestDb) {
            let events = db.open("events").await;
            migrate::run(&events, "event_store", migrate::EVENT_STORE)
                .await
                .expect("the event store's tables");
            let store = crate::event_store::EventStore::start(&events)
                .await
                .expect("the event store");
            for (n, payload) in [
                serde_json::json!({ "id": "a", "body": "note a" }),
                serde_json::json!({ "id": "b" }),
                serde_json::json!({ "id": "c", "body": "note c" }),
            ]
            .into_iter()
            .enumerate()
            {
                let mut written = (*event(0, payload).envelope).clone();
                written.stream = format!("note-{n}");
                let sealed = written.seal(HashAlg::Sha3_256);
                store.append(&sealed.envelope.stream.clone(), 0, vec![sealed])
                    .await
                    .expect("appended");
            }
            let model: ReadModel<Notes> = notes_model(&db).await;
            let (reached, mut projected) = tokio::sync::watch::channel(0);
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let projector = tokio::spawn(crate::projection::run_projector(
                store.clone(),
                model.clone(),
                reached,
                stopped,
            ));
            tokio::time::timeout(Duration::from_secs(10), projected.wait_for(|p| *p >= 3))
                .await
                .expect("projected in time")
                .expect("the projector runs");
            assert_eq!(
                rows(&model).await,
                vec![("a".into(), "note a".into()), ("c".into(), "note c".into())]
            );
            assert_eq!(model.checkpoint().await.expect("checkpoint"), 3);
            assert_eq!(
                store.set_aside_counts().await.expect("set aside"),
                vec![("projection:notes".to_string(), 1)]
            );
            let _ = stop.send(true);
            projector.await.expect("the projector stops");
        }

        async fn a_checkpoint_table_a_domain_created_is_kept(db: TestDb) {
            // Before the kernel owned it, evidence's first migration created the table.
            let database = db.open("notes").await;
            let legacy = "CREATE TABLE projection_checkpoints (
                projection TEXT PRIMARY KEY, position BIGINT NOT NULL);
                INSERT INTO projection_checkpoints (projection, position) VALUES ('notes', 5)";
            migrate::run(
                &database,
                "legacy",
                &[Migration { version: 1, name: "legacy", sqlite: legacy, postgres: legacy }],
            )
            .await
            .expect("the legacy table");
            let model: ReadModel<Notes> = notes_model(&db).await;
            assert_eq!(model.checkpoint().await.expect("checkpoint"), 5);
        }
    }
}
