//! SQLite databases of the embedded mode: one file per service, WAL, full fsync at commit, so
//! an acknowledged write survives a crash.

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::time::Duration;

/// A service database: one writer connection (SQLite has one writer at a time; a single
/// connection makes that queue explicit) and a pool of readers. Write transactions start with
/// `BEGIN IMMEDIATE`: a deferred one that reads first could not upgrade to a write lock after
/// another process (the read model's projector) committed, and would fail at once.
#[derive(Clone)]
pub struct Database {
    pub writer: SqlitePool,
    pub reader: SqlitePool,
}

#[derive(Debug, thiserror::Error)]
#[error("database {path}: {source}")]
pub struct DbError {
    path: String,
    source: sqlx::Error,
}

impl Database {
    pub async fn open(path: &Path) -> Result<Database, DbError> {
        let err = |source| DbError {
            path: path.display().to_string(),
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
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.clone())
            .await
            .map_err(err)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.read_only(false))
            .await
            .map_err(err)?;
        Ok(Database { writer, reader })
    }
}
