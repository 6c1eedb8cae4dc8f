//! Schema migrations: SQL files under `migrations/<backend>/<component>/`, compiled into the
//! binary, applied in order once each, and refused if an applied one was edited since.

use chain_core::HashAlg;
use sqlx::SqlitePool;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
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

pub async fn run(
    pool: &SqlitePool,
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
        let checksum = HashAlg::Sha3_256.hash(m.sql.as_bytes()).to_hex();
        let applied: Option<(String,)> = sqlx::query_as(
            "SELECT checksum FROM schema_migrations WHERE component = ? AND version = ?",
        )
        .bind(component)
        .bind(m.version)
        .fetch_optional(pool)
        .await?;
        match applied {
            Some((c,)) if c == checksum => continue,
            Some(_) => {
                return Err(MigrateError::Edited {
                    component: component.into(),
                    version: m.version,
                    name: m.name.into(),
                });
            }
            None => {}
        }
        let failed = |source| MigrateError::Failed {
            component: component.into(),
            version: m.version,
            source,
        };
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::raw_sql(m.sql)
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
        tracing::info!(
            component,
            version = m.version,
            name = m.name,
            "migration applied"
        );
    }
    Ok(())
}

/// The event store's own tables, shared by every event-sourced service.
pub const EVENT_STORE: &[Migration] = &[Migration {
    version: 1,
    name: "event_store",
    sql: include_str!("../../../migrations/sqlite/kernel/0001_event_store.sql"),
}];

pub const IDENTITY: &[Migration] = &[Migration {
    version: 1,
    name: "organisations",
    sql: include_str!("../../../migrations/sqlite/identity/0001_organisations.sql"),
}];
