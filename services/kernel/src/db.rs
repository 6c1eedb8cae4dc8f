//! Service databases. Embedded mode: one SQLite file per service, WAL, full fsync at commit, so
//! an acknowledged write survives a crash. Distributed mode: one PostgreSQL database, one
//! schema per service, reached through a pool whose connections have `search_path` set to it.

use crate::config::DatabaseConfig;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

#[derive(Clone)]
pub enum Database {
    Sqlite(SqliteDatabase),
    Postgres(PgDatabase),
}

/// One writer connection (SQLite has one writer at a time; a single connection makes that
/// queue explicit) and a pool of readers. Write transactions start with `BEGIN IMMEDIATE`: a
/// deferred one that reads first could not upgrade to a write lock after another process (the
/// read model's projector) committed, and would fail at once.
#[derive(Clone)]
pub struct SqliteDatabase {
    pub writer: SqlitePool,
    pub reader: SqlitePool,
    pub path: PathBuf,
}

/// A service's schema in the shared PostgreSQL database.
#[derive(Clone)]
pub struct PgDatabase {
    pub pool: PgPool,
    /// The service's schema; every unqualified table name resolves in it.
    pub schema: String,
    /// libpq form of the URL with the same `search_path`, for the diesel read side.
    pub libpq_url: String,
    /// Size of the diesel read-model pool (`database.read_connections`).
    pub read_connections: u32,
    /// How long a request waits for a pooled connection before it is answered 503.
    pub acquire_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("database {target}: {source}")]
pub struct DbError {
    target: String,
    source: sqlx::Error,
}

impl Database {
    /// Opens (creating it if missing) the SQLite file at `path`.
    pub async fn open(path: &Path) -> Result<Database, DbError> {
        let err = |source| DbError {
            target: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(sqlx::Error::Io(e)))?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string())
            .pragma("temp_store", TEMP_STORE);
        // A pooled SQLite connection is a file this process holds open: pinging it before each
        // use (sqlx's default) tells nothing, and costs a hop to its worker thread, one of
        // the hops that opening each event store commit waited for under load.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.clone())
            .await
            .map_err(err)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.read_only(false))
            .await
            .map_err(err)?;
        Ok(Database::Sqlite(SqliteDatabase {
            writer,
            reader,
            path: path.to_path_buf(),
        }))
    }

    /// A pool on `schema` of the PostgreSQL database `config.url`. Connects lazily: a service
    /// starts while PostgreSQL is down, and its first queries fail with `Unavailable` until it
    /// answers. `service` names the connections in `pg_stat_activity`.
    pub fn postgres(
        config: &DatabaseConfig,
        schema: &str,
        service: &str,
    ) -> Result<Database, DbError> {
        let url = config.url.as_deref().unwrap_or_default();
        let err = |source| DbError {
            target: redact(url),
            source,
        };
        if !is_identifier(schema) {
            return Err(err(sqlx::Error::Configuration(
                format!("schema name {schema:?} must be lower-case letters, digits and _").into(),
            )));
        }
        let statement_timeout = config.statement_timeout_ms.to_string();
        let acquire_timeout = Duration::from_millis(config.acquire_timeout_ms.max(1));
        let opts = PgConnectOptions::from_str(url)
            .map_err(err)?
            .application_name(&format!("veritrace-{service}"))
            .options([
                ("search_path", schema),
                ("statement_timeout", statement_timeout.as_str()),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(acquire_timeout)
            // A connection a server restart killed is found out here, not by a request.
            .test_before_acquire(true)
            .connect_lazy_with(opts);
        let sep = if url.contains('?') { '&' } else { '?' };
        let libpq_url = format!(
            "{url}{sep}options=-csearch_path%3D{schema}%20-cstatement_timeout%3D{statement_timeout}"
        );
        Ok(Database::Postgres(PgDatabase {
            pool,
            schema: schema.to_string(),
            libpq_url,
            read_connections: config.read_connections.max(1),
            acquire_timeout,
        }))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }
}

/// Schema names go into SQL text (`CREATE SCHEMA`, `search_path`), so only plain identifiers.
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// `url` with its database name replaced by `name` (query parameters kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Whether an error means "the database cannot serve now, try again" (503) rather than a
/// fault in the statement or the data (500).
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => {
                let code = code.as_ref();
                // PostgreSQL: connection exceptions, insufficient resources, operator
                // intervention (shutdown, crash recovery), serialisation failure, deadlock.
                // SQLite: SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code == "40001"
                    || code == "40P01"
                    || (code.len() < 5
                        && matches!(code.parse::<i32>(), Ok(c) if c & 0xff == 5 || c & 0xff == 6))
            }
            None => false,
        },
        _ => false,
    }
}

/// Runs `$body` with `$pool` bound to the database's pool, once per backend: the SQLite
/// `reader` or `writer`, or the PostgreSQL pool. For statements written once for both
/// dialects (sqlx accepts `$1`-style parameters on SQLite too).
///
/// ```ignore
/// let n: i64 = on_pool!(&db, reader, |pool| {
///     sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(pool).await
/// })?;
/// ```
///
/// The second form also binds `$begin` to the statement that opens a write transaction
/// (`BEGIN IMMEDIATE` on SQLite, see [`SqliteDatabase`]), for `pool.begin_with($begin)`.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $side:ident, |$pool:ident, $begin:ident| $body:expr) => {
        match $db {
            $crate::db::Database::Sqlite(db) => {
                let $pool = &db.$side;
                let $begin = "BEGIN IMMEDIATE";
                $body
            }
            $crate::db::Database::Postgres(db) => {
                let $pool = &db.pool;
                let $begin = "BEGIN";
                $body
            }
        }
    };
    ($db:expr, $side:ident, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Database::Sqlite(db) => {
                let $pool = &db.$side;
                $body
            }
            $crate::db::Database::Postgres(db) => {
                let $pool = &db.pool;
                $body
            }
        }
    };
}

/// Pages a SQLite write-ahead log may hold before a commit copies them into the database file
/// (SQLite's default is 1,000). A page changed by several commits in that span is copied once:
/// an index keyed by digest, whose inserts land on random pages, and the anchor's leaves, written
/// when received and again when sealed, are most of what is written. Measured with `veritrace
/// bench` (100,000 events, 500 per request): 17.3 KB written to storage per event at 1,000,
/// 13.3 KB at 10,000, 11.4 KB at 30,000; capture unchanged within run-to-run noise. The log of
/// a busy database grows to about 40 MB and is reused from its start after each checkpoint.
pub const WAL_CHECKPOINT_PAGES: u32 = 10_000;

/// Where SQLite keeps a statement's temporary data: its statement journal (the pages a
/// statement inside a longer transaction changed, to undo it alone) and its sorts. On disk by
/// default: a statement journal past 64 KiB and a sort past the page cache spill to temporary
/// files, which cost as much writing as the database itself: 1.5 KB per event of the 8.1 KB
/// written in `veritrace bench` (100,000 events, 500 per request, counted per file with
/// `strace`). In memory they are bounded by one statement's work: a write group, or a digest
/// run merge's chunk of about 8,192 entries.
pub const TEMP_STORE: &str = "memory";

/// Most rows one multi-row SQLite statement carries (8 columns each stays far below SQLite's
/// 32,766 bound parameters).
pub const ROWS_PER_STATEMENT: usize = 64;

/// Splits `n` rows into chunks for multi-row statements (`INSERT … VALUES (…), (…)`): each
/// chunk's size is a power of two, at most `max` (itself a power of two). A handful of
/// statement shapes then serve every group size, each prepared once and kept in the
/// connection's statement cache; a statement per row would cost a hop to sqlx's SQLite
/// thread each, and rows carried as one JSON array cost SQLite a parse and a re-serialisation
/// per column.
pub fn row_chunks(n: usize, max: usize) -> Vec<std::ops::Range<usize>> {
    let max = max.max(1);
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < n {
        let left = n - start;
        let size = if left >= max {
            max
        } else {
            1 << (usize::BITS - 1 - left.leading_zeros())
        };
        chunks.push(start..start + size);
        start += size;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_chunked_in_powers_of_two_that_cover_each_row_once() {
        for n in [0, 1, 2, 3, 63, 64, 65, 127, 500, 1000] {
            let chunks = row_chunks(n, 64);
            let mut next = 0;
            for c in &chunks {
                assert_eq!(c.start, next, "{n} rows: {chunks:?}");
                assert!(
                    c.len().is_power_of_two() && c.len() <= 64,
                    "{n}: {chunks:?}"
                );
                next = c.end;
            }
            assert_eq!(next, n, "{n} rows: {chunks:?}");
            // Largest chunks first, so a group takes as few statements as it can.
            assert!(chunks.windows(2).all(|w| w[0].len() >= w[1].len()));
        }
        assert_eq!(row_chunks(500, 64).len(), 7 + 3);
    }

    /// Statement journals and sorts stay in memory on every connection: the writer and readers
    /// opened here, and the read models' diesel pool (`read_model`), which sets it itself.
    #[tokio::test]
    async fn temporary_data_is_kept_in_memory() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let Database::Sqlite(db) = Database::open(&dir.path().join("t.db"))
            .await
            .expect("a SQLite database")
        else {
            unreachable!("Database::open opens SQLite")
        };
        for pool in [&db.writer, &db.reader] {
            // 2 = MEMORY.
            let (mode,): (i64,) = sqlx::query_as("PRAGMA temp_store")
                .fetch_one(pool)
                .await
                .expect("temp_store");
            assert_eq!(mode, 2);
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://vt:secret@db:5432/veritrace"),
            "postgres://vt:***@db:5432/veritrace"
        );
        assert_eq!(redact("postgres://db/veritrace"), "postgres://db/veritrace");
    }

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "vt_1"),
            "postgres://u:p@h:5432/vt_1"
        );
        assert_eq!(
            with_database("postgres://h/postgres?sslmode=disable", "vt_1"),
            "postgres://h/vt_1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(is_identifier("evidence"));
        assert!(!is_identifier("Evidence"));
        assert!(!is_identifier("a;drop"));
        assert!(!is_identifier(""));
    }
}
