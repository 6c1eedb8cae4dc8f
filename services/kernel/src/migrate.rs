//! Schema migrations: SQL files under `migrations/<backend>/<component>/`, compiled into the
//! binary, applied in order once each, and refused if an applied one was edited since.

use crate::db::Database;
use chain_core::HashAlg;

/// One schema change, written for each backend; both files share the number and name
/// (`migrations/sqlite/<component>/NNNN_name.sql`, `migrations/postgres/<component>/...`).
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Declares a [`Migration`] from its two files, `migrations/{sqlite,postgres}/<path>`.
#[macro_export]
macro_rules! migration {
    ($version:expr, $name:expr, $path:literal) => {
        $crate::migrate::Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../migrations/sqlite/",
                $path
            )),
            postgres: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../migrations/postgres/",
                $path
            )),
        }
    };
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("migration {component}/{version} ({name}) changed after it was applied")]
    Edited {
        component: String,
        version: i64,
        name: String,
    },
    #[error("migration {component}/{version} failed: {source}")]
    Failed {
        component: String,
        version: i64,
        source: sqlx::Error,
    },
    #[error("migration bookkeeping: {0}")]
    Db(#[from] sqlx::Error),
}

impl MigrateError {
    /// The database could not be reached (worth retrying), as opposed to a broken migration.
    pub fn is_transient(&self) -> bool {
        matches!(self, MigrateError::Db(e) if crate::db::is_transient(e))
    }
}

/// Applies the `migrations` of `component` not yet applied to `db`.
pub async fn run(
    db: &Database,
    component: &str,
    migrations: &[Migration],
) -> Result<(), MigrateError> {
    match db {
        Database::Sqlite(db) => run_sqlite(&db.writer, component, migrations).await,
        Database::Postgres(db) => run_postgres(&db.pool, &db.schema, component, migrations).await,
    }
}

fn checksum(sql: &str) -> String {
    HashAlg::Sha3_256.hash(sql.as_bytes()).to_hex()
}

async fn run_sqlite(
    pool: &sqlx::SqlitePool,
    component: &str,
    migrations: &[Migration],
) -> Result<(), MigrateError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            component TEXT NOT NULL,
            version INTEGER NOT NULL,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            PRIMARY KEY (component, version))",
    )
    .execute(pool)
    .await?;
    for m in migrations {
        let checksum = checksum(m.sqlite);
        let applied: Option<(String,)> = sqlx::query_as(
            "SELECT checksum FROM schema_migrations WHERE component = ? AND version = ?",
        )
        .bind(component)
        .bind(m.version)
        .fetch_optional(pool)
        .await?;
        if !needs_applying(applied.map(|(c,)| c), &checksum, component, m)? {
            continue;
        }
        let failed = |source| MigrateError::Failed {
            component: component.into(),
            version: m.version,
            source,
        };
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::raw_sql(m.sqlite)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        sqlx::query("INSERT INTO schema_migrations (component, version, name, checksum) VALUES (?, ?, ?, ?)")
            .bind(component)
            .bind(m.version)
            .bind(m.name)
            .bind(&checksum)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        applied_log(component, m);
    }
    Ok(())
}

/// PostgreSQL: everything in one transaction under an advisory lock on the schema, so replicas
/// starting together apply each migration once and never see a half-migrated schema.
async fn run_postgres(
    pool: &sqlx::PgPool,
    schema: &str,
    component: &str,
    migrations: &[Migration],
) -> Result<(), MigrateError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("{schema}/migrate"))
        .execute(&mut *tx)
        .await?;
    // The schema name is a checked identifier (`Database::postgres`).
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
            component TEXT NOT NULL,
            version BIGINT NOT NULL,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (component, version))"
    )))
    .execute(&mut *tx)
    .await?;
    for m in migrations {
        let checksum = checksum(m.postgres);
        let applied: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT checksum FROM {schema}.schema_migrations WHERE component = $1 AND version = $2"
        )))
        .bind(component)
        .bind(m.version)
        .fetch_optional(&mut *tx)
        .await?;
        if !needs_applying(applied.map(|(c,)| c), &checksum, component, m)? {
            continue;
        }
        sqlx::raw_sql(m.postgres)
            .execute(&mut *tx)
            .await
            .map_err(|source| MigrateError::Failed {
                component: component.into(),
                version: m.version,
                source,
            })?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {schema}.schema_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)"
        )))
        .bind(component)
        .bind(m.version)
        .bind(m.name)
        .bind(&checksum)
        .execute(&mut *tx)
        .await?;
        applied_log(component, m);
    }
    tx.commit().await?;
    Ok(())
}

fn needs_applying(
    applied: Option<String>,
    checksum: &str,
    component: &str,
    m: &Migration,
) -> Result<bool, MigrateError> {
    match applied {
        Some(c) if c == checksum => Ok(false),
        Some(_) => Err(MigrateError::Edited {
            component: component.into(),
            version: m.version,
            name: m.name.into(),
        }),
        None => Ok(true),
    }
}

fn applied_log(component: &str, m: &Migration) {
    tracing::info!(
        component,
        version = m.version,
        name = m.name,
        "migration applied"
    );
}

/// The event store's own tables, shared by every event-sourced service.
pub const EVENT_STORE: &[Migration] = &[
    crate::migration!(1, "event_store", "kernel/0001_event_store.sql"),
    crate::migration!(2, "set_aside_events", "kernel/0002_set_aside_events.sql"),
    crate::migration!(3, "claims", "kernel/0003_claims.sql"),
    crate::migration!(4, "readers", "kernel/0004_readers.sql"),
    crate::migration!(
        5,
        "outbox_without_foreign_key",
        "kernel/0005_outbox_without_foreign_key.sql"
    ),
];

pub const IDENTITY: &[Migration] = &[
    crate::migration!(1, "organisations", "identity/0001_organisations.sql"),
    crate::migration!(2, "roles", "identity/0002_roles.sql"),
];

/// Idempotency keys, in the database of the process's service (embedded: `idempotency.db`).
pub const IDEMPOTENCY: &[Migration] = &[crate::migration!(
    1,
    "idempotency_keys",
    "idempotency/0001_idempotency_keys.sql"
)];
