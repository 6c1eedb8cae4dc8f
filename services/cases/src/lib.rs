//! Case files for courts: every evidence registration that names a `case_reference` becomes an
//! exhibit of that case's file, across organisations; a withdrawn registration is marked
//! withdrawn there. The domain records nothing on request: it reacts to the evidence service's
//! events ([`domain::EXHIBITS`], `veritrace_kernel::reaction`), read by their published schemas,
//! and serves `GET /cases/{case_reference}`.

pub mod domain;
pub mod http;
pub mod projections;

use domain::{CaseEvent, EXHIBITS, Exhibit, SERVICE, stream_of};
use projections::CaseExhibits;
use std::sync::Arc;
use veritrace_kernel::domain::{BoxError, Domain, DomainContext, RunningDomain};
use veritrace_kernel::envelope::{EventEnvelope, now_rfc3339};
use veritrace_kernel::event_store::{EventStore, EventStoreError, StreamAppend};
use veritrace_kernel::migrate::Migration;
use veritrace_kernel::reaction::{ObservedEvent, React, ReactionError, ReactionSpec};
use veritrace_kernel::storage::DomainStorage;

pub const MIGRATIONS: &[Migration] = &[
    veritrace_kernel::migration!(1, "case_exhibits", "cases/0001_case_exhibits.sql"),
    veritrace_kernel::migration!(2, "record_readers", "cases/0002_record_readers.sql"),
];

pub struct CasesService {
    pub storage: DomainStorage<CaseExhibits>,
}

impl CasesService {
    /// Migrates its databases and starts its event store and projector
    /// ([`DomainStorage::start`]).
    pub async fn start(context: &DomainContext) -> Result<Arc<Self>, BoxError> {
        let storage = DomainStorage::start(SERVICE, MIGRATIONS, context).await?;
        Ok(Arc::new(CasesService { storage }))
    }

    /// The read model, which [`projections`]' queries read.
    pub fn read_model(&self) -> &projections::Model {
        &self.storage.read_model
    }

    /// The exhibit of `evidence_id` rebuilt from its stream, the source of truth (None: the
    /// evidence is no exhibit), and the stream's version.
    pub async fn exhibit(
        &self,
        evidence_id: &str,
    ) -> Result<(Option<Exhibit>, u64), ReactionError> {
        let stored = self
            .storage
            .store
            .read_stream(&stream_of(evidence_id))
            .await
            .map_err(|e| match e {
                EventStoreError::Corrupt { .. } => ReactionError::Poison(e.to_string()),
                other => ReactionError::Retry(other.to_string()),
            })?;
        let events = stored
            .iter()
            .map(|e| CaseEvent::from_parts(&e.envelope.event_type, &e.envelope.payload))
            .collect::<Result<Vec<_>, _>>()
            // Its own stream unreadable: nothing can be decided on it, now or later.
            .map_err(ReactionError::Poison)?;
        let version = stored.last().map_or(0, |e| e.envelope.stream_version);
        Ok((Exhibit::replay(&events), version))
    }
}

#[async_trait::async_trait]
impl React for CasesService {
    /// Files an evidence event in its case: decided against the exhibit's stream, so that a
    /// redelivered event (which the runner's inbox also stops) decides nothing new.
    async fn react(
        &self,
        reaction: &str,
        event: &ObservedEvent,
    ) -> Result<Vec<StreamAppend>, ReactionError> {
        if reaction != EXHIBITS.name {
            return Err(ReactionError::Poison(format!(
                "{SERVICE} has no reaction {reaction}"
            )));
        }
        let observed =
            domain::observe(&event.envelope).map_err(|e| ReactionError::Poison(e.to_string()))?;
        if !observed.needs_exhibit() {
            return Ok(Vec::new());
        }
        let (exhibit, version) = self.exhibit(&observed.evidence_id).await?;
        let Some(decided) = domain::decide(&observed, exhibit.as_ref()) else {
            return Ok(Vec::new());
        };
        let stream = stream_of(&observed.evidence_id);
        let sealed = EventEnvelope {
            id: uuid::Uuid::now_v7(),
            service: SERVICE.to_string(),
            stream: stream.clone(),
            stream_version: version + 1,
            event_type: decided.event_type().to_string(),
            type_version: 1,
            // The fact is the evidence event's, filed in its case; recorded now.
            occurred_at: event.envelope.occurred_at.clone(),
            recorded_at: now_rfc3339(),
            // On behalf of the organisation whose act it files: it reads what it caused.
            organisation: event.envelope.organisation.clone(),
            payload: decided.payload(),
        }
        .seal(self.storage.hash_alg);
        Ok(vec![StreamAppend {
            stream,
            expected_version: version,
            events: vec![sealed],
            claims: Vec::new(),
            // No more than could read the evidence event: the registrant, the parties it is
            // shared with, the courts.
            readers: event.readers.clone(),
        }])
    }
}

/// Case files, as the platform registers the domain.
pub struct Cases;

/// The registry's entry.
pub const DOMAIN: &Cases = &Cases;

#[async_trait::async_trait]
impl Domain for Cases {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn summary(&self) -> &'static str {
        "case files (`/cases…`): every evidence registration naming a case, as an exhibit of its file"
    }

    fn migrations(&self) -> &'static [Migration] {
        MIGRATIONS
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        use utoipa::OpenApi;
        http::CasesApi::openapi()
    }

    fn event_types(&self) -> &'static [veritrace_kernel::domain::EventType] {
        domain::EVENT_TYPES
    }

    fn reactions(&self) -> &'static [ReactionSpec] {
        &[EXHIBITS]
    }

    async fn start(&self, context: DomainContext) -> Result<Arc<dyn RunningDomain>, BoxError> {
        Ok(CasesService::start(&context).await?)
    }
}

impl RunningDomain for CasesService {
    fn event_store(&self) -> &EventStore {
        &self.storage.store
    }

    fn configure(self: Arc<Self>, cfg: &mut actix_web::web::ServiceConfig) {
        cfg.app_data(actix_web::web::Data::from(self));
        http::configure(cfg);
    }

    fn reactor(self: Arc<Self>) -> Option<Arc<dyn React>> {
        Some(self)
    }
}
