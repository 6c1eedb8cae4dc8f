//! Envelopes the anchoring service does not copy.
//!
//! In embedded mode the event stores of the same process hold every envelope the anchor
//! receives from them, under the same operator and on the same disk. A copy in the anchor's own
//! leaf table added nothing an auditor could lean on, and it was a quarter of what each event
//! stored: about 1.2 KB written per event, once into the WAL and once at the checkpoint. So the
//! anchor keeps only the digest of those events (their leaf's `envelope` is empty) and reads
//! the envelope back from its event store when it assembles a receipt, checking that it still
//! hashes to the digest it anchored. The distributed mode's anchor, which shares no database
//! with the services, keeps its copy.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use veritrace_kernel::db::Database;

use crate::store::StoreError;

/// The event stores whose envelopes the anchor does not copy, by service name. The names are
/// known when the anchor opens; each store is attached once its domain has started (the
/// domains start after the anchor, which they fetch receipts from), before any event of it
/// can reach the anchor.
pub struct EventStoreEnvelopes {
    stores: BTreeMap<String, OnceLock<Database>>,
}

impl EventStoreEnvelopes {
    pub fn new(services: impl IntoIterator<Item = String>) -> Self {
        EventStoreEnvelopes {
            stores: services
                .into_iter()
                .map(|service| (service, OnceLock::new()))
                .collect(),
        }
    }

    /// The event store of `service`, once it is open: the domain's own pools, not new ones.
    /// A service not named at [`new`](Self::new), or attached twice, is ignored.
    pub fn attach(&self, service: &str, db: Database) {
        if let Some(slot) = self.stores.get(service) {
            let _ = slot.set(db);
        }
    }

    /// Whether the events of `service` are kept by an event store here.
    pub fn holds(&self, service: &str) -> bool {
        self.stores.contains_key(service)
    }

    /// The canonical envelope of the event `event_id`, from whichever of the stores holds it.
    pub async fn envelope(&self, event_id: &str) -> Result<Option<String>, StoreError> {
        for db in self.stores.values().filter_map(OnceLock::get) {
            let found: Option<String> = match db {
                Database::Sqlite(db) => {
                    sqlx::query_scalar("SELECT envelope FROM events WHERE event_id = $1")
                        .bind(event_id)
                        .fetch_optional(&db.reader)
                        .await?
                }
                Database::Postgres(db) => {
                    if uuid::Uuid::parse_str(event_id).is_err() {
                        continue;
                    }
                    sqlx::query_scalar("SELECT envelope FROM events WHERE event_id = $1::UUID")
                        .bind(event_id)
                        .fetch_optional(&db.pool)
                        .await?
                }
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}
