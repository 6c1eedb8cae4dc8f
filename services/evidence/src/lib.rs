//! The judicial evidence service: parties register the hash of an evidence file, look records
//! up by id or by digest, and withdraw them; every change is an event that gets anchored.

pub mod domain;
pub mod http;
pub mod projections;

use chain_core::HashAlg;
use domain::{EvidenceEvent, EvidenceRecord, SERVICE};
use projections::EvidenceRecords;
use std::sync::Arc;
use veritrace_kernel::ApiError;
use veritrace_kernel::auth::Caller;
use veritrace_kernel::domain::{BoxError, Domain, DomainContext, RunningDomain};
use veritrace_kernel::envelope::{self, EventEnvelope, business_time, envelope_time};
use veritrace_kernel::event_store::{EventStore, StoredEvent, StreamAppend};
use veritrace_kernel::migrate::Migration;
use veritrace_kernel::receipts::Receipts;
use veritrace_kernel::storage::DomainStorage;

pub const MIGRATIONS: &[Migration] = &[
    veritrace_kernel::migration!(1, "evidence_records", "evidence/0001_evidence_records.sql"),
    veritrace_kernel::migration!(2, "evidence_readers", "evidence/0002_evidence_readers.sql"),
    veritrace_kernel::migration!(
        3,
        "evidence_occurred_at_and_file",
        "evidence/0003_evidence_occurred_at_and_file.sql"
    ),
    veritrace_kernel::migration!(4, "record_readers", "evidence/0004_record_readers.sql"),
    veritrace_kernel::migration!(
        5,
        "record_digests_in_sorted_runs",
        "evidence/0005_record_digests_in_sorted_runs.sql"
    ),
    veritrace_kernel::migration!(
        6,
        "digest_runs_merged_in_chunks",
        "evidence/0006_digest_runs_merged_in_chunks.sql"
    ),
    veritrace_kernel::migration!(
        7,
        "records_without_organisation_index",
        "evidence/0007_records_without_organisation_index.sql"
    ),
    veritrace_kernel::migration!(
        8,
        "courts_read_every_record",
        "evidence/0008_courts_read_every_record.sql"
    ),
];

pub struct EvidenceService {
    pub storage: DomainStorage<EvidenceRecords>,
    /// The registrations' receipts and the genesis they verify against, for the court's page
    /// (none in a process that runs no anchoring service and was given no way to reach one).
    pub receipts: Option<Receipts>,
    /// The court's verification page ([`http::court_page`]).
    court_templates: actix_web::web::Data<http::court_page::CourtTemplates>,
}

impl EvidenceService {
    /// Migrates its databases and starts its event store and projector
    /// ([`DomainStorage::start`]).
    pub async fn start(context: &DomainContext) -> Result<Arc<Self>, BoxError> {
        let storage = DomainStorage::start(SERVICE, MIGRATIONS, context).await?;
        let court_templates = actix_web::web::Data::new(http::court_page::CourtTemplates(
            http::court_page::templates()?,
        ));
        Ok(Arc::new(EvidenceService {
            storage,
            receipts: context.receipts.clone(),
            court_templates,
        }))
    }

    /// The read model, which [`projections`]' queries read.
    pub fn read_model(&self) -> &projections::Model {
        &self.storage.read_model
    }

    /// Rebuilds a record from its stream (events of every version it reads, upcast).
    pub async fn load(&self, evidence_id: &str) -> Result<Option<EvidenceRecord>, ApiError> {
        let events = self
            .storage
            .store
            .read_stream(&stream_of(evidence_id))
            .await?;
        let decoded = events
            .iter()
            .map(|e| {
                EvidenceEvent::from_envelope(&e.envelope)
                    .map(|ev| (ev, e.envelope.organisation.clone()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::Internal)?;
        Ok(EvidenceRecord::replay(
            decoded.iter().map(|(e, o)| (e, o.as_str())),
        ))
    }

    fn seal(&self, caller: &Caller, change: &RecordChange) -> Result<StreamAppend, ApiError> {
        let RecordChange {
            evidence_id,
            expected_version,
            event,
            readers,
            occurred_at,
        } = change;
        let expected_version = *expected_version;
        let now = envelope::now();
        let recorded_at = envelope_time(now);
        // Checked already where the caller gave it (against an earlier now, so it holds now).
        let occurred_at = match occurred_at {
            Some(t) => {
                business_time("occurred_at", t, now).map_err(|e| ApiError::Validation(vec![e]))?
            }
            None => recorded_at.clone(),
        };
        let envelope = EventEnvelope {
            id: uuid::Uuid::now_v7(),
            service: SERVICE.to_string(),
            stream: stream_of(evidence_id),
            stream_version: expected_version + 1,
            event_type: event.event_type().to_string(),
            type_version: event.type_version(),
            occurred_at,
            recorded_at,
            organisation: caller.organisation_id.clone(),
            payload: event.payload(),
        };
        let sealed = envelope.seal(self.storage.hash_alg);
        Ok(StreamAppend {
            stream: sealed.envelope.stream.clone(),
            expected_version,
            events: vec![sealed],
            // A registration is identified by its id; two parties may register one file.
            claims: Vec::new(),
            readers: readers.clone(),
        })
    }

    /// Appends one event to a record's stream, durably, and waits (briefly) until the read
    /// model shows it.
    pub async fn record(
        &self,
        caller: &Caller,
        change: RecordChange,
    ) -> Result<StoredEvent, ApiError> {
        self.record_all(caller, vec![change])
            .await?
            .pop()
            .ok_or_else(|| ApiError::Internal("append returned no event".into()))
    }

    /// Appends one event to each of several records' streams, all or nothing, and waits
    /// (briefly) until the read model shows them ([`DomainStorage::record`]). Events come back
    /// in the order given.
    pub async fn record_all(
        &self,
        caller: &Caller,
        items: Vec<RecordChange>,
    ) -> Result<Vec<StoredEvent>, ApiError> {
        let appends = items
            .iter()
            .map(|change| self.seal(caller, change))
            .collect::<Result<Vec<_>, _>>()?;
        self.storage.record(appends).await
    }
}

/// One event for a record's stream, if it is at `expected_version`, and who may read it
/// besides the caller's organisation ([`EvidenceRecord::readers`]).
pub struct RecordChange {
    pub evidence_id: String,
    pub expected_version: u64,
    pub event: EvidenceEvent,
    pub readers: Vec<String>,
    /// When the fact happened, as the caller stated it (the envelope's `occurred_at`, checked
    /// by [`business_time`]); None: when it is recorded.
    pub occurred_at: Option<String>,
}

/// The judicial evidence domain, as the platform registers it.
pub struct Evidence;

/// The registry's entry.
pub const DOMAIN: &Evidence = &Evidence;

#[async_trait::async_trait]
impl Domain for Evidence {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn summary(&self) -> &'static str {
        "judicial evidence (`/evidence…`): parties register file hashes, courts verify them"
    }

    fn migrations(&self) -> &'static [Migration] {
        MIGRATIONS
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        use utoipa::OpenApi;
        http::EvidenceApi::openapi()
    }

    fn event_types(&self) -> &'static [veritrace_kernel::domain::EventType] {
        domain::EVENT_TYPES
    }

    /// Registrations of SHA-256 hashes of made-up files: one through `POST /evidence`, more
    /// through `POST /evidence/batch`.
    fn bench_request(&self, seed: &str, count: usize) -> Option<(String, serde_json::Value)> {
        let item = |i: usize| {
            let digest = HashAlg::Sha256.hash(format!("{seed}/{i}").as_bytes());
            serde_json::json!({
                "content_hash": {"algorithm": "sha-256", "digest": digest.to_hex()},
                "title": format!("bench file {seed}/{i}"),
            })
        };
        if count <= 1 {
            return Some(("/evidence".into(), item(0)));
        }
        let items: Vec<_> = (0..count).map(item).collect();
        Some((
            "/evidence/batch".into(),
            serde_json::json!({ "items": items }),
        ))
    }

    async fn start(&self, context: DomainContext) -> Result<Arc<dyn RunningDomain>, BoxError> {
        Ok(EvidenceService::start(&context).await?)
    }
}

impl RunningDomain for EvidenceService {
    fn event_store(&self) -> &EventStore {
        &self.storage.store
    }

    fn configure(self: Arc<Self>, cfg: &mut actix_web::web::ServiceConfig) {
        cfg.app_data(self.court_templates.clone())
            .app_data(actix_web::web::Data::from(self));
        http::configure(cfg);
        http::court_page::configure(cfg);
    }
}

pub fn stream_of(evidence_id: &str) -> String {
    format!("evidence-{evidence_id}")
}
