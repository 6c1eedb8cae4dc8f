//! What the platform needs of a domain service. A domain is one crate that implements
//! [`Domain`], and one entry in the binary's registry: `up`, `serve <domain>`, `audit`, the
//! OpenAPI document, readiness and the deployment files all follow that registry.

use crate::db::Database;
use crate::event_store::EventStore;
use crate::migrate::Migration;
use crate::telemetry::Metrics;
use chain_core::HashAlg;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a domain starts on.
pub struct DomainContext {
    /// Its event store (with the outbox): embedded, the SQLite file [`event_store_file`];
    /// distributed, the PostgreSQL schema of its name.
    pub events: Database,
    /// Its read model: embedded, the SQLite file [`read_model_file`], so that projecting never
    /// contends with appends for SQLite's one write lock (it can always be rebuilt from the
    /// events); distributed, the same schema as the events.
    pub read_model: Database,
    /// The chain's hash profile: it decides every event digest.
    pub hash_alg: HashAlg,
    pub metrics: Arc<Metrics>,
    pub shutdown: watch::Receiver<bool>,
}

/// A domain service, as the platform runs it.
#[async_trait::async_trait]
pub trait Domain: Send + Sync {
    /// Its name: the argument of `veritrace serve`, its PostgreSQL schema and database role,
    /// the stem of its SQLite files, and the `service` of its events. Lowercase ASCII letters.
    fn name(&self) -> &'static str;
    /// One line saying what it does, for `veritrace serve --help`.
    fn summary(&self) -> &'static str;
    /// Its read model's migrations, for both backends (the event store's are the kernel's).
    fn migrations(&self) -> &'static [Migration];
    /// Its paths and schemas in the OpenAPI document.
    fn openapi(&self) -> utoipa::openapi::OpenApi;
    /// Every event type it records, at every version it records, each with the published
    /// JSON Schema of its payload ([`EventType`], declared with [`event_type!`](crate::event_type)):
    /// the contract other domains consume. Tests hold every event the suite records against it.
    fn event_types(&self) -> &'static [EventType];
    /// A request that records `count` new events for `veritrace bench`: a path and a JSON
    /// body, answered 201 (`seed` makes every request's content its own). None if the domain
    /// offers no load.
    fn bench_request(&self, _seed: &str, _count: usize) -> Option<(String, serde_json::Value)> {
        None
    }
    /// Starts it (event store, read model, projector) on databases the platform has migrated
    /// (the event store's and [`Domain::migrations`]; running them again is harmless). The
    /// process relays its outbox to the bus.
    async fn start(&self, context: DomainContext) -> Result<Arc<dyn RunningDomain>, BoxError>;
    /// Its reactions to other domains' events ([`crate::reaction`]): each gets its queue on
    /// the bus, declared by every service from its first start, and is handled by
    /// [`RunningDomain::reactor`].
    fn reactions(&self) -> &'static [crate::reaction::ReactionSpec] {
        &[]
    }
}

/// One event type of a domain at one version: the contract of its events' `payload`. The
/// envelope around every payload (`type`, `type_version`, `stream`, …) is the kernel's
/// [`EventEnvelope`](crate::envelope::EventEnvelope), published as `$defs/event` of
/// `schemas/receipt.schema.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventType {
    /// The envelope's `type`, e.g. `EvidenceRegistered`.
    pub name: &'static str,
    /// The envelope's `type_version`, from 1. A change that could make a consumer misread an
    /// event (a member removed, renamed, retyped or constrained further) is a new version,
    /// with a schema of its own; the old version stays declared while its events may be read.
    pub version: u32,
    /// JSON Schema (draft 2020-12) of the payload: the text of
    /// `schemas/events/<domain>/`[`EventType::file_name`].
    pub schema: &'static str,
}

impl EventType {
    /// Its schema's file name under `schemas/events/<domain>/`: `<name>.v<version>.schema.json`.
    pub fn file_name(&self) -> String {
        format!("{}.v{}.schema.json", self.name, self.version)
    }

    /// Its schema's `$id`: `urn:veritrace:schema:event:<domain>:<name>:v<version>`.
    pub fn schema_id(&self, domain: &str) -> String {
        format!(
            "urn:veritrace:schema:event:{domain}:{}:v{}",
            self.name, self.version
        )
    }
}

/// Declares an [`EventType`] of domain `$domain` with its schema compiled in from
/// `schemas/events/<domain>/<name>.v<version>.schema.json` (a missing file fails the build):
/// `event_type!("evidence", "EvidenceRegistered", 1)`.
#[macro_export]
macro_rules! event_type {
    ($domain:literal, $name:literal, $version:literal) => {
        $crate::domain::EventType {
            name: $name,
            version: $version,
            schema: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../schemas/events/",
                $domain,
                "/",
                $name,
                ".v",
                $version,
                ".schema.json"
            )),
        }
    };
}

/// A started domain.
pub trait RunningDomain: Send + Sync {
    /// Its event store: its outbox is relayed to the bus, its set-aside events reported.
    fn event_store(&self) -> &EventStore;
    /// Adds its routes, and the data they read, to the HTTP service (once per worker).
    fn configure(self: Arc<Self>, cfg: &mut actix_web::web::ServiceConfig);
    /// What decides its [`Domain::reactions`]; None when it has none.
    fn reactor(self: Arc<Self>) -> Option<Arc<dyn crate::reaction::React>> {
        None
    }
}

/// The embedded event store of domain `name` under `data_dir`.
pub fn event_store_file(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(format!("{name}.db"))
}

/// The embedded read model of domain `name` under `data_dir`.
pub fn read_model_file(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(format!("{name}-read.db"))
}

/// Whether `name` can name a domain: a schema, a role, a file and a command argument alike.
pub fn is_domain_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 32 && name.bytes().all(|b| b.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_are_lowercase_letters() {
        assert!(is_domain_name("evidence"));
        assert!(is_domain_name("provenance"));
        for bad in ["", "Evidence", "e-invoice", "a1", "x y", &"a".repeat(33)] {
            assert!(!is_domain_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn event_types_name_their_schema_files_by_type_and_version() {
        const TYPES: &[EventType] = &[
            EventType {
                name: "ThingDone",
                version: 1,
                schema: "{}",
            },
            EventType {
                name: "ThingDone",
                version: 2,
                schema: "{}",
            },
        ];
        assert_eq!(TYPES[1].file_name(), "ThingDone.v2.schema.json");
        assert_eq!(
            TYPES[0].schema_id("things"),
            "urn:veritrace:schema:event:things:ThingDone:v1"
        );
    }

    #[test]
    fn embedded_files_sit_side_by_side() {
        let dir = Path::new("/data");
        assert_eq!(
            event_store_file(dir, "evidence"),
            Path::new("/data/evidence.db")
        );
        assert_eq!(
            read_model_file(dir, "evidence"),
            Path::new("/data/evidence-read.db")
        );
    }
}
