//! What the platform needs of a domain service. A domain is one crate that implements
//! [`Domain`], and one entry in the binary's registry: `up`, `serve <domain>`, `audit`, the
//! OpenAPI document, readiness and the deployment files all follow that registry.

use crate::db::Database;
use crate::event_store::EventStore;
use crate::migrate::Migration;
use crate::telemetry::Metrics;
use chain_core::HashAlg;
use std::borrow::Cow;
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
    /// Its events' receipts, to check them itself (a page that says "verified"); None where
    /// the process has no way to the anchoring service.
    pub receipts: Option<crate::receipts::Receipts>,
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
    /// Every event type it records, at every version it reads (the one it writes, and older
    /// ones it upcasts: [`upcast`]), each with the published JSON Schema of its payload
    /// ([`EventType`], declared with [`event_type!`](crate::event_type)): the contract other
    /// domains consume. Tests hold every event the suite records against it.
    fn event_types(&self) -> &'static [EventType];
    /// A request that records `count` new events for `veritrace bench`: a path and a JSON
    /// body, answered 201 (`seed` makes every request's content its own). None if the domain
    /// offers no load.
    fn bench_request(&self, _seed: &str, _count: usize) -> Option<(String, serde_json::Value)> {
        None
    }
    /// How many events one [`Domain::bench_request`] of `count` records (a domain may record
    /// one more for the request itself): what `veritrace bench` waits to see anchored.
    fn bench_recorded(&self, count: usize) -> usize {
        count
    }
    /// The ids of the events a bench request's answer (2xx) recorded, for the latency from
    /// answer to anchored; None: every `event_id` member of the answer.
    fn bench_event_ids(&self, _answer: &serde_json::Value) -> Option<Vec<String>> {
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
///
/// A type has one or more versions, 1 to n: the domain writes n, the current one, and reads
/// them all. Each older version says how its payload becomes the next one's
/// ([`EventType::upcast`]), so that the domain's read path ([`upcast`]) sees every stored event
/// of the type as the current version, whatever version it was written at.
#[derive(Clone, Copy, Debug)]
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
    /// For a version the domain no longer writes: how a stored payload of it becomes a payload
    /// of `version + 1`. None for the current version, the one written.
    pub upcast: Option<Upcast>,
}

/// How a stored payload of one version of an event type becomes a payload of the next version
/// (members added with their default, renamed, reshaped), or why it cannot. Pure: a stored
/// event reads the same every time.
pub type Upcast = fn(serde_json::Value) -> Result<serde_json::Value, String>;

/// Two declarations are equal when they declare the same type, version and schema, each with
/// an upcast or both without (functions have no meaningful identity to compare).
impl PartialEq for EventType {
    fn eq(&self, other: &Self) -> bool {
        (self.name, self.version, self.schema, self.upcast.is_some())
            == (
                other.name,
                other.version,
                other.schema,
                other.upcast.is_some(),
            )
    }
}

impl Eq for EventType {}

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

    /// Whether this is the version the domain writes (the newest of its type); an older one
    /// is only read, and upcast.
    pub fn is_current(&self) -> bool {
        self.upcast.is_none()
    }
}

/// The version of event type `name` that a domain declaring `types` writes: the newest.
pub fn current_version(types: &[EventType], name: &str) -> Option<u32> {
    types
        .iter()
        .filter(|t| t.name == name)
        .map(|t| t.version)
        .max()
}

/// Checks a domain's declared event types: each type and version once; each type's versions
/// 1 to n without a gap; every version but n with its upcast to the next, n without one.
pub fn check_event_types(types: &[EventType]) -> Result<(), String> {
    for (i, t) in types.iter().enumerate() {
        if types[..i]
            .iter()
            .any(|o| (o.name, o.version) == (t.name, t.version))
        {
            return Err(format!("{} v{} is declared twice", t.name, t.version));
        }
    }
    for t in types {
        let what = format!("{} v{}", t.name, t.version);
        let current = current_version(types, t.name).unwrap_or(t.version);
        let count = types.iter().filter(|o| o.name == t.name).count();
        if t.version == 0 || current as usize != count {
            return Err(format!(
                "{}: versions count from 1 without a gap, declared {count} up to v{current}",
                t.name
            ));
        }
        match (t.version == current, t.upcast.is_some()) {
            (true, true) => {
                return Err(format!(
                    "{what} is the current version (the one written): it has no upcast"
                ));
            }
            (false, false) => {
                return Err(format!(
                    "{what} is read but no longer written (v{current} is): \
                     it needs its upcast to v{}",
                    t.version + 1
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The payload of a stored event of type `name` at `type_version`, read as the current version
/// of its type ([`current_version`]): unchanged if it is at that version, else passed through
/// the upcast of each version in turn. This is what a domain's read path (projections, folds
/// of a stream, consumers) calls before decoding a payload, so that it handles only the current
/// version. Fails naming the type and version when `types` does not declare it (an unknown
/// type, or a version newer than the domain knows: set the event aside rather than guess), or
/// when an upcast refuses the payload.
pub fn upcast<'a>(
    types: &[EventType],
    name: &str,
    type_version: u32,
    payload: &'a serde_json::Value,
) -> Result<Cow<'a, serde_json::Value>, String> {
    let mut payload = Cow::Borrowed(payload);
    let mut version = type_version;
    loop {
        let Some(t) = types
            .iter()
            .find(|t| t.name == name && t.version == version)
        else {
            return Err(match current_version(types, name) {
                Some(current) => format!(
                    "{name} v{version}: not a version of {name} that this domain reads \
                     (v1 to v{current})"
                ),
                None => format!("{name}: not an event type of this domain"),
            });
        };
        match t.upcast {
            Some(up) => {
                payload = Cow::Owned(up(payload.into_owned()).map_err(|e| {
                    format!(
                        "{name} v{type_version}: upcasting v{version} to v{}: {e}",
                        version + 1
                    )
                })?);
                version += 1;
            }
            None if current_version(types, name) == Some(version) => return Ok(payload),
            None => {
                return Err(format!(
                    "{name} v{version}: declared without its upcast to v{}",
                    version + 1
                ));
            }
        }
    }
}

/// Declares an [`EventType`] of domain `$domain` with its schema compiled in from
/// `schemas/events/<domain>/<name>.v<version>.schema.json` (a missing file fails the build):
/// `event_type!("evidence", "EvidenceRegistered", 2)` for the version written, and for an
/// older one, read only, with its [`Upcast`] to the next version:
/// `event_type!("evidence", "EvidenceRegistered", 1, upcast = registered_v1_to_v2)`.
#[macro_export]
macro_rules! event_type {
    ($domain:literal, $name:literal, $version:literal) => {
        $crate::event_type!(@declare $domain, $name, $version, None)
    };
    ($domain:literal, $name:literal, $version:literal, upcast = $upcast:path) => {
        $crate::event_type!(@declare $domain, $name, $version,
            Some($upcast as $crate::domain::Upcast))
    };
    (@declare $domain:literal, $name:literal, $version:literal, $upcast:expr) => {
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
            upcast: $upcast,
        }
    };
}

/// A started domain.
pub trait RunningDomain: Send + Sync {
    /// Its event store: its outbox is relayed to the bus, its set-aside events reported.
    fn event_store(&self) -> &EventStore;
    /// Adds its routes, and the data they read, to the HTTP service (once per worker).
    fn configure(self: Arc<Self>, cfg: &mut actix_web::web::ServiceConfig);
    /// Resolves once its own background work has stopped after the shutdown signal (work a
    /// stop must not cut in half); the platform waits for it, bounded, before exiting.
    fn stopped(&self) -> futures_util::future::BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }
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
        assert_eq!(THINGS[1].file_name(), "ThingDone.v2.schema.json");
        assert_eq!(
            THINGS[0].schema_id("things"),
            "urn:veritrace:schema:event:things:ThingDone:v1"
        );
    }

    fn thing(name: &'static str, version: u32, upcast: Option<Upcast>) -> EventType {
        EventType {
            name,
            version,
            schema: "{}",
            upcast,
        }
    }

    /// v1 `{"who"}`; v2 renamed it `{"by"}`; v3 added `{"count"}`, 1 for what came before.
    fn thing_v1_to_v2(mut p: serde_json::Value) -> Result<serde_json::Value, String> {
        let who = p
            .as_object_mut()
            .and_then(|m| m.remove("who"))
            .ok_or("no `who`")?;
        p["by"] = who;
        Ok(p)
    }

    fn thing_v2_to_v3(mut p: serde_json::Value) -> Result<serde_json::Value, String> {
        p["count"] = serde_json::json!(1);
        Ok(p)
    }

    const THINGS: &[EventType] = &[
        EventType {
            name: "ThingDone",
            version: 1,
            schema: "{}",
            upcast: Some(thing_v1_to_v2),
        },
        EventType {
            name: "ThingDone",
            version: 2,
            schema: "{}",
            upcast: Some(thing_v2_to_v3),
        },
        EventType {
            name: "ThingDone",
            version: 3,
            schema: "{}",
            upcast: None,
        },
        EventType {
            name: "ThingUndone",
            version: 1,
            schema: "{}",
            upcast: None,
        },
    ];

    #[test]
    fn older_versions_are_upcast_in_turn_to_the_current_one() {
        use serde_json::json;
        assert_eq!(check_event_types(THINGS), Ok(()));
        assert_eq!(current_version(THINGS, "ThingDone"), Some(3));
        assert_eq!(current_version(THINGS, "ThingUndone"), Some(1));
        assert_eq!(current_version(THINGS, "Other"), None);
        let current: Vec<_> = THINGS.iter().filter(|t| t.is_current()).collect();
        assert_eq!(current, [&THINGS[2], &THINGS[3]]);

        let v3 = json!({"by": "a", "count": 2});
        for (version, stored) in [
            (1, json!({"who": "a"})),
            (2, json!({"by": "a"})),
            (3, json!({"by": "a", "count": 1})),
        ] {
            let read = upcast(THINGS, "ThingDone", version, &stored).unwrap();
            assert_eq!(*read, json!({"by": "a", "count": 1}), "v{version}");
            // The current version is read as stored, not copied.
            assert_eq!(matches!(read, Cow::Borrowed(_)), version == 3);
        }
        assert!(matches!(
            upcast(THINGS, "ThingDone", 3, &v3),
            Ok(Cow::Borrowed(p)) if *p == v3
        ));
        let undone = json!({"any": "thing"});
        assert_eq!(*upcast(THINGS, "ThingUndone", 1, &undone).unwrap(), undone);

        // Unknown types and versions, and payloads an upcast refuses, fail naming them.
        let err = |name, version, payload: serde_json::Value| {
            upcast(THINGS, name, version, &payload).unwrap_err()
        };
        assert!(err("ThingDone", 4, v3.clone()).contains("ThingDone v4"));
        assert!(err("ThingDone", 0, v3.clone()).contains("v1 to v3"));
        assert!(err("ThingUndone", 2, v3.clone()).contains("ThingUndone v2"));
        assert!(err("Other", 1, v3.clone()).contains("Other: not an event type"));
        let e = err("ThingDone", 1, json!({"by": "a"}));
        assert!(
            e.contains("ThingDone v1: upcasting v1 to v2: no `who`"),
            "{e}"
        );
        // An older version declared without its upcast is not read as if it were current.
        let broken = [thing("ThingDone", 1, None), thing("ThingDone", 2, None)];
        assert!(
            upcast(&broken, "ThingDone", 1, &v3)
                .unwrap_err()
                .contains("without its upcast")
        );
    }

    #[test]
    fn declarations_hold_versions_from_1_each_older_one_with_its_upcast() {
        let up = Some(thing_v2_to_v3 as Upcast);
        for (types, why) in [
            (
                vec![thing("A", 1, None), thing("A", 1, None)],
                "declared twice",
            ),
            (vec![thing("A", 2, None)], "from 1 without a gap"),
            (
                vec![thing("A", 1, up), thing("A", 3, None)],
                "from 1 without a gap",
            ),
            (vec![thing("A", 0, None), thing("A", 1, None)], "from 1"),
            (
                vec![thing("A", 1, None), thing("A", 2, None)],
                "needs its upcast to v2",
            ),
            (vec![thing("A", 1, up), thing("A", 2, up)], "has no upcast"),
            (vec![thing("A", 1, up)], "has no upcast"),
        ] {
            let e = check_event_types(&types).unwrap_err();
            assert!(e.contains(why), "{types:?}: {e}");
        }
        assert_eq!(
            check_event_types(&[thing("B", 1, None), thing("A", 1, up), thing("A", 2, None)]),
            Ok(())
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
