//! Provenance: trading partners capture GS1 EPCIS 2.0 events through the standard REST
//! binding (`POST /capture`) and query them (`GET /events` and the resources beside it); each
//! EPCIS event is one event of the platform, anchored, with a receipt of its own.
//!
//! - [`domain`]: what a capture document becomes (pure);
//! - [`projections`]: the events as queries read them;
//! - [`http`]: the REST binding.
//!
//! The rules of the standards themselves (validation, the CBV vocabularies, identifiers, the
//! canonical event hash) are the `veritrace-epcis` crate's.

pub mod domain;
pub mod http;
pub mod projections;
pub mod subscriptions;

use domain::publication::{Publication, PublicationChange, product_stream};
use domain::{
    CaptureJobCompleted, CapturePlan, EpcisEventCaptured, ErrorBehaviour, ProvenanceEvent, SERVICE,
    event_stream, hash_claim, job_stream, plan_capture,
};
use projections::EpcisEvents;
use std::sync::Arc;
use veritrace_epcis::document::CaptureDocument;
use veritrace_kernel::ApiError;
use veritrace_kernel::auth::Caller;
use veritrace_kernel::domain::{BoxError, Domain, DomainContext, RunningDomain};
use veritrace_kernel::envelope::{self, EventEnvelope, envelope_time};
use veritrace_kernel::event_store::{EventStore, EventStoreError, StoredEvent, StreamAppend};
use veritrace_kernel::migrate::Migration;
use veritrace_kernel::storage::DomainStorage;

pub const MIGRATIONS: &[Migration] = &[
    veritrace_kernel::migration!(1, "epcis_events", "provenance/0001_epcis_events.sql"),
    veritrace_kernel::migration!(
        2,
        "epcis_event_products",
        "provenance/0002_epcis_event_products.sql"
    ),
    veritrace_kernel::migration!(
        3,
        "published_products",
        "provenance/0003_published_products.sql"
    ),
    veritrace_kernel::migration!(4, "capture_jobs", "provenance/0004_capture_jobs.sql"),
];

pub struct ProvenanceService {
    pub storage: DomainStorage<EpcisEvents>,
    /// Its events' receipts, which the product page verifies; None where this process cannot
    /// reach them.
    pub receipts: Option<veritrace_kernel::receipts::Receipts>,
    /// The consumer's pages.
    pub pages: tera::Tera,
    /// Named queries and their webhook subscriptions.
    pub subscriptions: subscriptions::Subscriptions,
}

/// A capture job as its stream holds it, with who recorded it and when.
#[derive(Debug, Clone)]
pub struct RecordedJob {
    pub job: CaptureJobCompleted,
    pub organisation: String,
    pub recorded_at: String,
    pub event_id: String,
}

impl ProvenanceService {
    /// Migrates its databases and starts its event store and projector.
    pub async fn start(context: &DomainContext) -> Result<Arc<Self>, BoxError> {
        let storage = DomainStorage::start(SERVICE, MIGRATIONS, context).await?;
        veritrace_kernel::migrate::run(
            &context.events,
            "provenance_subscriptions",
            subscriptions::store::MIGRATIONS,
        )
        .await?;
        let store = subscriptions::store::SubscriptionStore::new(context.events.clone());
        let svc = Arc::new(ProvenanceService {
            storage,
            receipts: context.receipts.clone(),
            pages: http::page::templates()?,
            subscriptions: subscriptions::Subscriptions::new(store).await?,
        });
        svc.schedule_subscriptions().await?;
        tokio::spawn(subscriptions::delivery::run(
            svc.clone(),
            context.shutdown.clone(),
        ));
        Ok(svc)
    }

    /// The read model, which [`projections`]' queries read.
    pub fn read_model(&self) -> &projections::Model {
        &self.storage.read_model
    }

    /// Captures a document for `caller` under `behaviour`, its events shared with the
    /// organisations `shared_with` (their ids): every valid event not stored before
    /// is appended in one transaction with the job's outcome (under `rollback`, nothing but the
    /// outcome if anything is wrong). The same event captured before, or concurrently, is
    /// recognised by its eventID or canonical hash and stored once.
    pub async fn capture(
        &self,
        caller: &Caller,
        document: &CaptureDocument,
        behaviour: ErrorBehaviour,
        shared_with: &[String],
    ) -> Result<RecordedJob, ApiError> {
        let capture_id = uuid::Uuid::now_v7().to_string();
        let now = envelope::now();
        let mut plan = plan_capture(document, &capture_id, behaviour, now);
        self.check_all_stored(&mut plan).await?;
        // Each retry finds at least one event captured meanwhile and drops it, so this ends.
        for _ in 0..=plan.events().len() + 1 {
            let (appends, job) = self.appends_of(caller, &plan, now, shared_with)?;
            match self.storage.try_record(appends).await {
                Ok(stored) => {
                    let job_event = stored
                        .first()
                        .ok_or_else(|| ApiError::Internal("append returned no event".into()))?;
                    return Ok(RecordedJob {
                        job,
                        organisation: caller.organisation_id.clone(),
                        recorded_at: job_event.envelope.recorded_at.clone(),
                        event_id: job_event.envelope.id.to_string(),
                    });
                }
                // Another capture stored some of these events meanwhile: look again at all of
                // them, not only the one named, so that a large document needs one more round,
                // not one per event.
                Err(EventStoreError::Conflict { .. }) => self.check_all_stored(&mut plan).await?,
                Err(EventStoreError::Duplicate { key, stream, .. }) => {
                    let (holder, _) = self.captured_in(&stream).await?.ok_or_else(|| {
                        ApiError::Internal(format!(
                            "{key} is claimed by {stream}, which holds no EPCIS event"
                        ))
                    })?;
                    plan.found_hash_claimed(&holder.canonical_hash, &holder.event_id);
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(ApiError::Unavailable(
            "the capture kept meeting concurrent captures of the same events; retry".into(),
        ))
    }

    /// Tells `plan` what the store holds under each of its events' ids.
    async fn check_all_stored(&self, plan: &mut CapturePlan) -> Result<(), ApiError> {
        let ids: Vec<String> = plan.events().iter().map(|e| e.event_id.clone()).collect();
        for event_id in ids {
            self.check_stored(plan, &event_id).await?;
        }
        Ok(())
    }

    /// Tells `plan` what the store holds under `event_id`, if anything.
    async fn check_stored(&self, plan: &mut CapturePlan, event_id: &str) -> Result<(), ApiError> {
        if let Some((stored, version)) = self.captured_in(&event_stream(event_id)).await? {
            let declared = stored.event.get("errorDeclaration").is_some();
            plan.found_stored(event_id, &stored.canonical_hash, version, declared);
        }
        Ok(())
    }

    /// The latest EPCIS event stream `stream` holds (the event, or the error declaration that
    /// followed it), and the stream's version; None for an empty stream.
    async fn captured_in(
        &self,
        stream: &str,
    ) -> Result<Option<(EpcisEventCaptured, u64)>, ApiError> {
        let events = self.storage.store.read_stream(stream).await?;
        match events.last() {
            None => Ok(None),
            Some(e) => match decode(e)? {
                ProvenanceEvent::EpcisEventCaptured(c) => Ok(Some((c, e.envelope.stream_version))),
                other => Err(ApiError::Internal(format!(
                    "{stream} holds a {}, not an EPCIS event",
                    other.event_type()
                ))),
            },
        }
    }

    /// The appends of `plan` as it stands, the job's outcome first, then each event to store;
    /// and that outcome, which names each event's platform event.
    fn appends_of(
        &self,
        caller: &Caller,
        plan: &CapturePlan,
        now: envelope::DateTime<envelope::Utc>,
        shared_with: &[String],
    ) -> Result<(Vec<StreamAppend>, CaptureJobCompleted), ApiError> {
        let recorded_at = envelope_time(now);
        let record_ids: Vec<uuid::Uuid> = plan
            .to_store()
            .iter()
            .map(|_| uuid::Uuid::now_v7())
            .collect();
        let job = plan.completed(
            &record_ids
                .iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>(),
        );
        let seal = |id: uuid::Uuid,
                    stream: String,
                    version: u64,
                    event: ProvenanceEvent,
                    occurred_at: String| {
            let payload = event
                .payload()
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let sealed = EventEnvelope {
                id,
                service: SERVICE.to_string(),
                stream: stream.clone(),
                stream_version: version,
                event_type: event.event_type().to_string(),
                type_version: 1,
                occurred_at,
                recorded_at: recorded_at.clone(),
                organisation: caller.organisation_id.clone(),
                payload,
            }
            .seal(self.storage.hash_alg);
            Ok::<_, ApiError>((stream, sealed))
        };
        let mut appends = Vec::with_capacity(plan.to_store().len() + 1);
        let (stream, job_event) = seal(
            uuid::Uuid::now_v7(),
            job_stream(&plan.capture_id),
            1,
            ProvenanceEvent::CaptureJobCompleted(job.clone()),
            recorded_at.clone(),
        )?;
        appends.push(StreamAppend {
            stream,
            expected_version: 0,
            events: vec![job_event],
            claims: Vec::new(),
            readers: Vec::new(),
        });
        for (e, id) in plan.to_store().iter().zip(record_ids) {
            let captured = EpcisEventCaptured {
                capture_id: plan.capture_id.clone(),
                event_id: e.event_id.clone(),
                canonical_hash: e.canonical_hash.clone(),
                context: plan.context.clone(),
                event: e.event.clone(),
            };
            let (stream, sealed) = seal(
                id,
                event_stream(&e.event_id),
                e.expected_version + 1,
                ProvenanceEvent::EpcisEventCaptured(captured),
                e.occurred_at.clone(),
            )?;
            // A declaration's event claimed the hash already, in the same stream.
            let claims = if e.expected_version == 0 {
                vec![hash_claim(&e.canonical_hash)]
            } else {
                Vec::new()
            };
            appends.push(StreamAppend {
                stream,
                expected_version: e.expected_version,
                events: vec![sealed],
                claims,
                // The capturing organisation reads it (and the admin and auditors), and the
                // trading partners it shares its events with.
                readers: shared_with.to_vec(),
            });
        }
        Ok((appends, job))
    }

    /// Capture job `capture_id` as recorded, if it exists.
    pub async fn job(&self, capture_id: &str) -> Result<Option<RecordedJob>, ApiError> {
        let events = self
            .storage
            .store
            .read_stream(&job_stream(capture_id))
            .await?;
        let Some(e) = events.first() else {
            return Ok(None);
        };
        match decode(e)? {
            ProvenanceEvent::CaptureJobCompleted(job) => Ok(Some(RecordedJob {
                job,
                organisation: e.envelope.organisation.clone(),
                recorded_at: e.envelope.recorded_at.clone(),
                event_id: e.envelope.id.to_string(),
            })),
            other => Err(ApiError::Internal(format!(
                "capture job {capture_id} holds a {}",
                other.event_type()
            ))),
        }
    }
}

/// Named queries and subscriptions (see [`subscriptions`]).
impl ProvenanceService {
    /// Puts every scheduled subscription on its schedule (at start).
    async fn schedule_subscriptions(&self) -> Result<(), BoxError> {
        for s in self.subscriptions.store.subscriptions(None, None).await? {
            let Some(schedule) = s.schedule_json.as_deref() else {
                continue;
            };
            let cron = serde_json::from_str::<domain::subscription::Schedule>(schedule)?.cron()?;
            self.subscriptions
                .schedule(&s.subscription_id, &cron)
                .await?;
        }
        Ok(())
    }
}

/// Publication of products (see [`domain::publication`]).
impl ProvenanceService {
    /// Where GTIN `gtin`'s publication stands, and its stream's version.
    pub async fn publication(&self, gtin: &str) -> Result<Publication, ApiError> {
        let events = self
            .storage
            .store
            .read_stream(&product_stream(gtin))
            .await?;
        events.iter().try_fold(Publication::default(), |state, e| {
            let change = match decode(e)? {
                ProvenanceEvent::ProductPublished(_) => PublicationChange::Published,
                ProvenanceEvent::ProductWithdrawn(_) => PublicationChange::Withdrawn,
                other => {
                    return Err(ApiError::Internal(format!(
                        "{} holds a {}",
                        e.envelope.stream,
                        other.event_type()
                    )));
                }
            };
            Ok(state.apply(change, &e.envelope.organisation, &e.envelope.recorded_at))
        })
    }

    /// Publishes `gtin` for `caller`, its brand owner (or the first to publish it).
    pub async fn publish(&self, caller: &Caller, gtin: &str) -> Result<Publication, ApiError> {
        caller.require_recording()?;
        let org = &caller.organisation_id;
        if !projections::trace::captured_by(self.read_model(), gtin, org).await? {
            return Err(ApiError::Forbidden(format!(
                "your organisation has captured no event naming GTIN {gtin}: a brand owner \
                 publishes the products whose events it captures"
            )));
        }
        let state = self.publication(gtin).await?;
        match state.publish(gtin, &caller.organisation_id) {
            Err(e) => Err(refused(e)),
            Ok(None) => Ok(state),
            Ok(Some(published)) => {
                let event = ProvenanceEvent::ProductPublished(published);
                self.change_publication(caller, gtin, &state, event).await
            }
        }
    }

    /// Withdraws `gtin` for `caller`, its brand owner.
    pub async fn withdraw(&self, caller: &Caller, gtin: &str) -> Result<Publication, ApiError> {
        caller.require_recording()?;
        let state = self.publication(gtin).await?;
        let withdrawn = state
            .withdraw(gtin, &caller.organisation_id)
            .map_err(refused)?;
        let event = ProvenanceEvent::ProductWithdrawn(withdrawn);
        self.change_publication(caller, gtin, &state, event).await
    }

    async fn change_publication(
        &self,
        caller: &Caller,
        gtin: &str,
        state: &Publication,
        event: ProvenanceEvent,
    ) -> Result<Publication, ApiError> {
        let stream = product_stream(gtin);
        let recorded_at = envelope::now_rfc3339();
        let payload = event
            .payload()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let sealed = EventEnvelope {
            id: uuid::Uuid::now_v7(),
            service: SERVICE.to_string(),
            stream: stream.clone(),
            stream_version: state.version + 1,
            event_type: event.event_type().to_string(),
            type_version: 1,
            occurred_at: recorded_at.clone(),
            recorded_at: recorded_at.clone(),
            organisation: caller.organisation_id.clone(),
            payload,
        }
        .seal(self.storage.hash_alg);
        self.storage
            .record(vec![StreamAppend {
                stream,
                expected_version: state.version,
                events: vec![sealed],
                claims: Vec::new(),
                readers: Vec::new(),
            }])
            .await?;
        let change = match event {
            ProvenanceEvent::ProductWithdrawn(_) => PublicationChange::Withdrawn,
            _ => PublicationChange::Published,
        };
        Ok(state
            .clone()
            .apply(change, &caller.organisation_id, &recorded_at))
    }
}

fn refused(e: domain::publication::PublicationError) -> ApiError {
    use domain::publication::PublicationError;
    match e {
        PublicationError::OwnedByAnother { .. } => ApiError::Forbidden(e.to_string()),
        PublicationError::NotPublished { .. } => ApiError::InvalidState(e.to_string()),
    }
}

fn decode(e: &StoredEvent) -> Result<ProvenanceEvent, ApiError> {
    ProvenanceEvent::from_parts(
        &e.envelope.event_type,
        e.envelope.type_version,
        &e.envelope.payload,
    )
    .map_err(ApiError::Internal)
}

/// Provenance, as the platform registers the domain.
pub struct Provenance;

/// The registry's entry.
pub const DOMAIN: &Provenance = &Provenance;

#[async_trait::async_trait]
impl Domain for Provenance {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn summary(&self) -> &'static str {
        "provenance (`/capture`, `/events…`): GS1 EPCIS 2.0 capture and query, every event anchored"
    }

    fn migrations(&self) -> &'static [Migration] {
        MIGRATIONS
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        use utoipa::OpenApi;
        http::ProvenanceApi::openapi()
    }

    fn event_types(&self) -> &'static [veritrace_kernel::domain::EventType] {
        domain::EVENT_TYPES
    }

    /// An EPCIS document of `count` ObjectEvents, each of its own SGTIN and without an
    /// eventID (so each is named by its canonical hash), through `POST /capture`.
    fn bench_request(&self, seed: &str, count: usize) -> Option<(String, serde_json::Value)> {
        Some(("/capture".into(), domain::bench_document(seed, count)))
    }

    /// A capture records its events and the job's outcome.
    fn bench_recorded(&self, count: usize) -> usize {
        count + 1
    }

    /// The EPCIS events' platform events, from the job's `receiptUrls`.
    fn bench_event_ids(&self, answer: &serde_json::Value) -> Option<Vec<String>> {
        let urls = answer.get("receiptUrls")?.as_object()?;
        Some(
            urls.values()
                .filter_map(|u| u.as_str()?.rsplit('/').next().map(str::to_owned))
                .collect(),
        )
    }

    async fn start(&self, context: DomainContext) -> Result<Arc<dyn RunningDomain>, BoxError> {
        Ok(ProvenanceService::start(&context).await?)
    }
}

impl RunningDomain for ProvenanceService {
    fn event_store(&self) -> &EventStore {
        &self.storage.store
    }

    fn configure(self: Arc<Self>, cfg: &mut actix_web::web::ServiceConfig) {
        cfg.app_data(actix_web::web::Data::from(self));
        http::configure(cfg);
    }

    fn stopped(&self) -> futures_util::future::BoxFuture<'static, ()> {
        Box::pin(self.subscriptions.stopped())
    }
}
