//! Test support (feature `testing`): a database per test on either backend, and
//! [`backend_tests!`](crate::backend_tests), which runs one test body on SQLite and PostgreSQL.
//!
//! PostgreSQL comes from `VERITRACE_TEST_DATABASE_URL` (default: the server `scripts/services`
//! starts). A test that cannot reach it fails and names `scripts/test`; only
//! `VERITRACE_TEST_BACKENDS=sqlite` skips the PostgreSQL half, and says so.
//!
//! [`EventSchemas`] holds the events a test recorded against the payload schemas their domain
//! publishes ([`Domain::event_types`]).

use crate::config::DatabaseConfig;
use crate::db::Database;
use crate::domain::{Domain, EventType};
use crate::envelope::EventEnvelope;
use crate::event_store::{EventStore, StoredEvent};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use std::path::PathBuf;

pub const DEFAULT_DATABASE_URL: &str = "postgres://veritrace:veritrace@127.0.0.1:5432/postgres";
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The server URL the tests use (a maintenance database of a role that may create databases).
pub fn database_server_url() -> String {
    std::env::var("VERITRACE_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.into())
}

pub fn amqp_url() -> String {
    std::env::var("VERITRACE_TEST_AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.into())
}

/// Whether tests that need PostgreSQL or RabbitMQ should be skipped (and say so).
pub fn servers_skipped(what: &str) -> bool {
    let skip = std::env::var("VERITRACE_TEST_BACKENDS").is_ok_and(|b| b.trim() == "sqlite");
    if skip {
        eprintln!("skipped: {what} needs PostgreSQL and RabbitMQ (VERITRACE_TEST_BACKENDS=sqlite)");
    }
    skip
}

/// A fresh, empty place for a test's databases, removed at the end of the test.
pub enum TestDb {
    /// A temporary directory; each service's database is a file in it.
    Sqlite { dir: tempfile::TempDir },
    /// A database of its own on the test server; services keep their schemas in it.
    Postgres {
        server_url: String,
        name: String,
        url: String,
    },
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        TestDb::Sqlite {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// `None` when PostgreSQL tests are switched off (`VERITRACE_TEST_BACKENDS=sqlite`).
    pub async fn postgres() -> Option<TestDb> {
        if servers_skipped("this PostgreSQL test") {
            return None;
        }
        let server_url = database_server_url();
        let mut conn = PgConnection::connect(&server_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot reach the test PostgreSQL at {}: {e}. Run the suite with scripts/test, \
                 which starts it (or set VERITRACE_TEST_BACKENDS=sqlite to skip these tests)",
                    crate::db::redact(&server_url)
                )
            });
        let name = format!("vt_{}", uuid::Uuid::now_v7().simple());
        // template0 takes no connections, so parallel creates never wait on each other.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} TEMPLATE template0"
        )))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE for the test");
        let _ = conn.close().await;
        let url = crate::db::with_database(&server_url, &name);
        Some(TestDb::Postgres {
            server_url,
            name,
            url,
        })
    }

    pub fn backend(&self) -> &'static str {
        match self {
            TestDb::Sqlite { .. } => "sqlite",
            TestDb::Postgres { .. } => "postgres",
        }
    }

    /// `database.*` configuration pointing at this test's database (`url` unset on SQLite).
    pub fn config(&self) -> DatabaseConfig {
        DatabaseConfig {
            url: match self {
                TestDb::Sqlite { .. } => None,
                TestDb::Postgres { url, .. } => Some(url.clone()),
            },
            ..DatabaseConfig::default()
        }
    }

    /// The SQLite directory (the embedded data directory), if this is SQLite.
    pub fn dir(&self) -> Option<PathBuf> {
        match self {
            TestDb::Sqlite { dir } => Some(dir.path().to_path_buf()),
            TestDb::Postgres { .. } => None,
        }
    }

    /// What domain `name` starts on, as the platform lays it out: embedded, its event store
    /// and read model in two files (`<name>.db`, `<name>-read.db`); PostgreSQL, both in the
    /// schema `<name>`. SHA3-256 digests, fresh metrics; the sender stops its tasks.
    pub async fn domain_context(
        &self,
        name: &str,
    ) -> (
        crate::domain::DomainContext,
        tokio::sync::watch::Sender<bool>,
    ) {
        let events = self.open(name).await;
        let read_model = match self {
            TestDb::Sqlite { .. } => self.open(&format!("{name}-read")).await,
            TestDb::Postgres { .. } => events.clone(),
        };
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let context = crate::domain::DomainContext {
            events,
            read_model,
            hash_alg: chain_core::HashAlg::Sha3_256,
            metrics: std::sync::Arc::new(crate::telemetry::Metrics::new().expect("metrics")),
            shutdown,
            receipts: None,
        };
        (context, stop)
    }

    /// The database of one service (`schema`): the file `<schema>.db`, or the schema.
    pub async fn open(&self, schema: &str) -> Database {
        match self {
            TestDb::Sqlite { dir } => Database::open(&dir.path().join(format!("{schema}.db")))
                .await
                .expect("open a SQLite test database"),
            TestDb::Postgres { .. } => {
                Database::postgres(&self.config(), schema, "test").expect("a PostgreSQL pool")
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let TestDb::Postgres {
            server_url, name, ..
        } = self
        else {
            return;
        };
        let (server_url, name) = (server_url.clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with its
        // own runtime removes the database (FORCE ends the pools' connections).
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&server_url).await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("test database was not dropped; scripts/services removes it on next start");
        }
    }
}

/// Writes each test case once and runs it on both backends: `async fn case(db: TestDb) {..}`
/// becomes the tests `case::sqlite` and `case::postgres` (`cargo test postgres` selects one
/// backend).
#[macro_export]
macro_rules! backend_tests {
    ($( $(#[$meta:meta])* async fn $name:ident($db:ident : TestDb) $body:block )*) => {
        $(
            $(#[$meta])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn case($db: $crate::testing::TestDb) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    case($crate::testing::TestDb::sqlite().await).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = $crate::testing::TestDb::postgres().await {
                        case(db).await
                    }
                }
            }
        )*
    };
}

/// A domain's published event schemas ([`Domain::event_types`]), compiled (draft 2020-12, each
/// checked against the meta-schema first), to check recorded events against.
pub struct EventSchemas {
    service: String,
    compiled: Vec<(EventType, jsonschema::Validator)>,
}

impl std::fmt::Debug for EventSchemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let types: Vec<String> = self.compiled.iter().map(|(t, _)| t.file_name()).collect();
        f.debug_struct("EventSchemas")
            .field("service", &self.service)
            .field("types", &types)
            .finish()
    }
}

impl EventSchemas {
    /// The schemas `domain` declares.
    pub fn of(domain: &dyn Domain) -> Result<EventSchemas, String> {
        EventSchemas::new(domain.name(), domain.event_types())
    }

    /// The schemas of `types`, the event types of the service `service`. Fails naming the
    /// first schema that is not JSON, not a draft 2020-12 schema, or declared twice, or the
    /// first type whose versions break [`check_event_types`](crate::domain::check_event_types)
    /// (versions 1 to n, each older one with its upcast).
    pub fn new(service: &str, types: &[EventType]) -> Result<EventSchemas, String> {
        let mut compiled: Vec<(EventType, jsonschema::Validator)> = Vec::new();
        for t in types {
            let name = format!("{service}/{}", t.file_name());
            if compiled
                .iter()
                .any(|(c, _)| (c.name, c.version) == (t.name, t.version))
            {
                return Err(format!("{name} is declared twice"));
            }
            let schema: serde_json::Value =
                serde_json::from_str(t.schema).map_err(|e| format!("{name}: not JSON: {e}"))?;
            if schema["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
                return Err(format!("{name}: $schema must name draft 2020-12"));
            }
            let validator = jsonschema::draft202012::options()
                .build(&schema)
                .map_err(|e| format!("{name}: not a valid schema: {e}"))?;
            compiled.push((*t, validator));
        }
        crate::domain::check_event_types(types).map_err(|e| format!("{service}: {e}"))?;
        Ok(EventSchemas {
            service: service.to_string(),
            compiled,
        })
    }

    /// Checks one event: recorded by this service, of a declared type and version, and its
    /// payload valid against that type's schema. An event of a type or version the domain
    /// does not declare fails. The error names the event and every violation.
    pub fn check(&self, event: &EventEnvelope) -> Result<(), String> {
        let what = format!(
            "event {} ({} v{}, stream {})",
            event.id, event.event_type, event.type_version, event.stream
        );
        if event.service != self.service {
            return Err(format!(
                "{what}: recorded by {:?}, checked against the schemas of {:?}",
                event.service, self.service
            ));
        }
        let Some((_, validator)) = self
            .compiled
            .iter()
            .find(|(t, _)| t.name == event.event_type && t.version == event.type_version)
        else {
            return Err(format!(
                "{what}: {} declares no schema for this type and version (Domain::event_types)",
                self.service
            ));
        };
        let violations: Vec<String> = validator
            .iter_errors(&event.payload)
            .map(|e| format!("payload{}: {e}", e.instance_path()))
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{what} breaks its schema: {}",
                violations.join("; ")
            ))
        }
    }

    /// Checks one event as the domain reads it: against the schema of its own version
    /// ([`EventSchemas::check`]), then its payload upcast to the current version of its type
    /// ([`upcast`](crate::domain::upcast)) against the current version's schema. Returns the
    /// upcast payload.
    pub fn check_upcast(&self, event: &EventEnvelope) -> Result<serde_json::Value, String> {
        self.check(event)?;
        let types: Vec<EventType> = self.compiled.iter().map(|(t, _)| *t).collect();
        let payload = crate::domain::upcast(
            &types,
            &event.event_type,
            event.type_version,
            &event.payload,
        )
        .map_err(|e| format!("event {}: {e}", event.id))?
        .into_owned();
        let current =
            crate::domain::current_version(&types, &event.event_type).unwrap_or(event.type_version);
        self.check(&EventEnvelope {
            type_version: current,
            payload: payload.clone(),
            ..event.clone()
        })
        .map_err(|e| format!("upcast to v{current}: {e}"))?;
        Ok(payload)
    }

    /// Checks every event in `store`, in position order, and returns them all; or every
    /// failure, a row that cannot be read being one.
    pub async fn check_store(&self, store: &EventStore) -> Result<Vec<StoredEvent>, Vec<String>> {
        let (mut events, mut failures, mut after) = (Vec::new(), Vec::new(), 0);
        loop {
            let batch = store
                .read_after(after, 1000)
                .await
                .map_err(|e| vec![format!("reading the {} event store: {e}", self.service)])?;
            if batch.last == 0 {
                break;
            }
            after = batch.last;
            failures.extend(
                batch
                    .unreadable
                    .iter()
                    .map(|u| format!("unreadable event at position {}: {}", u.position, u.reason)),
            );
            for e in batch.events {
                if let Err(f) = self.check(&e.envelope) {
                    failures.push(f);
                }
                events.push(e);
            }
        }
        if failures.is_empty() {
            Ok(events)
        } else {
            Err(failures)
        }
    }
}
