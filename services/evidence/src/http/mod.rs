//! Evidence endpoints.

pub mod court_page;

use crate::domain::{self, EvidenceError, EvidenceEvent, RegisterEvidence};
use crate::projections::{self, EvidenceFilter, EvidenceView};
use crate::{EvidenceService, RecordChange};
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chain_core::ContentHashAlg;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use veritrace_kernel::auth::{Caller, Identity};
use veritrace_kernel::envelope;
use veritrace_kernel::http::{ReceiptLinks, ValidJson, ValidQuery};
use veritrace_kernel::{ApiError, FieldError, resource};

impl From<EvidenceError> for ApiError {
    fn from(e: EvidenceError) -> Self {
        match e {
            EvidenceError::Invalid(errors) => ApiError::Validation(errors),
            EvidenceError::NotOwner(_) => ApiError::Forbidden(e.to_string()),
            EvidenceError::AlreadyWithdrawn(_) | EvidenceError::AlreadyShared(..) => {
                ApiError::InvalidState(e.to_string())
            }
        }
    }
}

/// The hash of the evidence file, computed by the party; the file itself is never sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentHashInput {
    /// `sha-256`, `sha-512`, `sha3-256`, `sha3-512` or `sm3`.
    #[schema(value_type = String, example = "sha-256")]
    pub algorithm: ContentHashAlg,
    /// Hex digest of the file, of the algorithm's length.
    #[schema(example = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")]
    pub digest: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterEvidenceRequest {
    #[schema(schema_with = content_hash_schema)]
    pub content_hash: ContentHashInput,
    /// What the file is, 1 to 300 characters, recorded as sent.
    #[schema(
        min_length = 1,
        max_length = 300,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub title: String,
    /// The court case it belongs to, if known.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub case_reference: Option<String>,
    /// Free-form JSON object, at most 16 KiB serialised, nested at most 32 levels in the whole
    /// body; its strings hold no control characters but tab and line breaks, its integers lie
    /// within ±(2^53 − 1), and other numbers must keep their value as IEEE 754 doubles.
    #[schema(schema_with = metadata_schema)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// When the fact happened, e.g. when the document was signed: an RFC 3339 date-time with
    /// its offset (`Z` or ±hh:mm), recorded as the event's `occurred_at` in UTC to the
    /// millisecond. Not before 1970, nor later than the time of recording plus 5 minutes of
    /// clock skew. Absent: the time of recording.
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-01-31T10:30:00+01:00")]
    pub occurred_at: Option<String>,
    /// The file's name, 1 to 255 characters, recorded as sent.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$",
        example = "delivery-contract.pdf"
    )]
    pub file_name: Option<String>,
    /// The file's size in bytes: with `file_name` and `content_hash`, what a court checks a
    /// file against.
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub size_bytes: Option<u64>,
}

impl RegisterEvidenceRequest {
    /// The registration decided, with its checked business time, as of `now`; or every field
    /// at fault, named as in the request.
    fn decide(
        self,
        evidence_id: &str,
        now: envelope::DateTime<envelope::Utc>,
    ) -> Result<(domain::EvidenceEvent, Option<String>), EvidenceError> {
        let occurred_at = self
            .occurred_at
            .as_deref()
            .map(|t| envelope::business_time("occurred_at", t, now))
            .transpose();
        let decided = domain::decide_register(
            evidence_id,
            RegisterEvidence {
                algorithm: self.content_hash.algorithm,
                digest: self.content_hash.digest,
                title: self.title,
                case_reference: self.case_reference,
                metadata: self.metadata,
                file_name: self.file_name,
                size_bytes: self.size_bytes,
            },
        );
        match (decided, occurred_at) {
            (Ok(event), Ok(occurred_at)) => Ok((event, occurred_at)),
            (Err(EvidenceError::Invalid(mut fields)), Err(time)) => {
                fields.push(time);
                Err(EvidenceError::Invalid(fields))
            }
            (Ok(_), Err(time)) => Err(EvidenceError::Invalid(vec![time])),
            (Err(other), _) => Err(other),
        }
    }
}

/// At most this many registrations in one batch request.
pub const MAX_BATCH_ITEMS: usize = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterEvidenceBatchRequest {
    /// 1 to 1000 registrations, recorded all together or not at all.
    #[schema(min_items = 1, max_items = 1000)]
    pub items: Vec<RegisterEvidenceRequest>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RegisteredItem {
    pub evidence_id: String,
    pub event_id: String,
    pub event_digest: String,
    /// Where the event's receipt is served: `/receipts/{event_id}` on this host in the embedded
    /// mode; in distributed mode an absolute URL on the anchor (`http.receipts_url`).
    pub receipt_url: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RegisterEvidenceBatchResponse {
    /// In the order of the request's items.
    pub items: Vec<RegisteredItem>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawEvidenceRequest {
    /// Why the registration is withdrawn, 1 to 1000 characters; it stays on record.
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub reason: String,
    /// The record's version the caller read; a different current version answers 409.
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub expected_version: u64,
}

/// A command that was recorded but whose record cannot be read back yet (202): the event is
/// durable and will be anchored; read the record again shortly.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EvidenceCommandRecorded {
    /// The recorded event; its receipt is at `receipt_url`.
    pub event_id: String,
    /// `H(JCS(envelope))` of the event.
    pub event_digest: String,
    pub receipt_url: String,
    /// Why the record itself is not in the answer.
    pub detail: String,
}

/// A command's answer: the record as it now stands, and the event that changed it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EvidenceCommandResponse {
    pub evidence: EvidenceView,
    /// The recorded event; its receipt is at `receipt_url`.
    pub event_id: String,
    /// `H(JCS(envelope))` of the event.
    pub event_digest: String,
    /// Where the event's receipt is served: `/receipts/{event_id}` on this host in the embedded
    /// mode; in distributed mode an absolute URL on the anchor (`http.receipts_url`).
    pub receipt_url: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvidenceQuery {
    /// Only records of a file with this digest (hex, any case).
    #[param(pattern = "^[0-9a-fA-F]{1,128}$")]
    pub digest: Option<String>,
    /// Only records hashed with this algorithm.
    #[param(schema_with = content_hash_alg_schema)]
    pub algorithm: Option<String>,
    /// Only records of this court case.
    #[param(
        max_length = 100,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub case_reference: Option<String>,
    /// At most this many records (1-500, default 100), newest first.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EvidenceList {
    pub items: Vec<EvidenceView>,
}

async fn respond(
    svc: &EvidenceService,
    links: &ReceiptLinks,
    evidence_id: &str,
    event: veritrace_kernel::event_store::StoredEvent,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, ApiError> {
    let event_id = event.envelope.id.to_string();
    // The command has committed: whatever the read side does now, the answer is not an error.
    let Some(evidence) = view_after(svc, evidence_id, &event).await else {
        return Ok(HttpResponse::Accepted()
            .insert_header((header::LOCATION, format!("/evidence/{evidence_id}")))
            .json(EvidenceCommandRecorded {
                receipt_url: links.receipt_url(&event_id),
                event_id,
                event_digest: event.digest.to_hex(),
                detail: format!(
                    "recorded durably, but evidence {evidence_id} cannot be read back yet; read it again shortly"
                ),
            }));
    };
    Ok(HttpResponse::build(status)
        .insert_header((header::LOCATION, format!("/evidence/{evidence_id}")))
        .json(EvidenceCommandResponse {
            evidence,
            receipt_url: links.receipt_url(&event_id),
            event_id,
            event_digest: event.digest.to_hex(),
        }))
}

/// The record as of `event` (or later): a registration's view follows from its event alone;
/// other commands read the record back from the read model, which normally shows the event
/// already, else fold it from its stream, the source of truth. None only if neither can be
/// read now.
async fn view_after(
    svc: &EvidenceService,
    evidence_id: &str,
    event: &veritrace_kernel::event_store::StoredEvent,
) -> Option<EvidenceView> {
    let current = |v: &EvidenceView| v.version >= event.envelope.stream_version as i64;
    if let Some(view) = EvidenceView::registered(event) {
        return Some(view);
    }
    match projections::get(svc.read_model(), evidence_id.to_string()).await {
        Ok(Some(view)) if current(&view) => return Some(view),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "the read model cannot be read; folding the stream"),
    }
    match svc
        .storage
        .store
        .read_stream(&crate::stream_of(evidence_id))
        .await
    {
        Ok(events) => EvidenceView::from_stream(&events).filter(current),
        Err(e) => {
            tracing::warn!(error = %e, "the event store cannot be read back after a command");
            None
        }
    }
}

/// Register the hash of an evidence file.
#[utoipa::path(
    post, path = "/evidence", tag = "evidence",
    request_body = RegisterEvidenceRequest,
    responses(
        (status = 201, body = EvidenceCommandResponse, description = "Recorded durably; anchoring follows within seconds"),
        (status = 400, body = veritrace_kernel::Problem), (status = 401, body = veritrace_kernel::Problem),
        (status = 403, body = veritrace_kernel::Problem, description = "The key's role records nothing (reader, auditor, court)"),
        (status = 413, body = veritrace_kernel::Problem), (status = 415, body = veritrace_kernel::Problem),
        (status = 422, body = veritrace_kernel::Problem), (status = 503, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn register(
    svc: web::Data<EvidenceService>,
    links: ReceiptLinks,
    caller: Caller,
    ValidJson(body): ValidJson<RegisterEvidenceRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_recording()?;
    let evidence_id = uuid::Uuid::now_v7().to_string();
    let (event, occurred_at) = body.decide(&evidence_id, envelope::now())?;
    let change = RecordChange {
        evidence_id: evidence_id.clone(),
        expected_version: 0,
        event,
        readers: domain::readers(&[]),
        occurred_at,
    };
    let stored = svc.record(&caller, change).await?;
    respond(
        &svc,
        &links,
        &evidence_id,
        stored,
        actix_web::http::StatusCode::CREATED,
    )
    .await
}

/// Register many evidence hashes in one request: all are recorded, or none is.
#[utoipa::path(
    post, path = "/evidence/batch", tag = "evidence",
    request_body = RegisterEvidenceBatchRequest,
    responses(
        (status = 201, body = RegisterEvidenceBatchResponse, description = "All recorded durably; anchoring follows within seconds"),
        (status = 400, body = veritrace_kernel::Problem), (status = 401, body = veritrace_kernel::Problem),
        (status = 403, body = veritrace_kernel::Problem, description = "The key's role records nothing (reader, auditor, court)"),
        (status = 413, body = veritrace_kernel::Problem), (status = 415, body = veritrace_kernel::Problem),
        (status = 422, body = veritrace_kernel::Problem, description = "Fields are named `items[i].field`; nothing was recorded"),
        (status = 503, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn register_batch(
    svc: web::Data<EvidenceService>,
    links: ReceiptLinks,
    caller: Caller,
    ValidJson(body): ValidJson<RegisterEvidenceBatchRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_recording()?;
    let n = body.items.len();
    if n == 0 || n > MAX_BATCH_ITEMS {
        return Err(ApiError::field(
            "items",
            format!("must hold 1 to {MAX_BATCH_ITEMS} registrations, got {n}"),
        ));
    }
    let mut errors = Vec::new();
    let mut items = Vec::with_capacity(n);
    let now = envelope::now();
    for (i, item) in body.items.into_iter().enumerate() {
        let evidence_id = uuid::Uuid::now_v7().to_string();
        match item.decide(&evidence_id, now) {
            Ok((event, occurred_at)) => items.push(RecordChange {
                evidence_id,
                expected_version: 0,
                event,
                readers: domain::readers(&[]),
                occurred_at,
            }),
            Err(EvidenceError::Invalid(fields)) => errors.extend(
                fields
                    .into_iter()
                    .map(|f| FieldError::new(format!("items[{i}].{}", f.field), f.message)),
            ),
            Err(other) => return Err(other.into()),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let ids: Vec<String> = items.iter().map(|c| c.evidence_id.clone()).collect();
    let stored = svc.record_all(&caller, items).await?;
    let items = ids
        .into_iter()
        .zip(stored)
        .map(|(evidence_id, e)| {
            let event_id = e.envelope.id.to_string();
            RegisteredItem {
                evidence_id,
                receipt_url: links.receipt_url(&event_id),
                event_id,
                event_digest: e.digest.to_hex(),
            }
        })
        .collect();
    Ok(HttpResponse::Created().json(RegisterEvidenceBatchResponse { items }))
}

fn parse_id(id: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::field("evidence_id", "must be a UUID"))
}

fn visible(caller: &Caller, v: &EvidenceView) -> bool {
    caller.may_read(&v.readers)
}

/// One evidence record.
#[utoipa::path(
    get, path = "/evidence/{evidence_id}", tag = "evidence",
    params(("evidence_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = EvidenceView),
        (status = 401, body = veritrace_kernel::Problem), (status = 404, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn get(
    svc: web::Data<EvidenceService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.into_inner())?;
    match projections::get(svc.read_model(), id.clone()).await? {
        Some(v) if visible(&caller, &v) => Ok(HttpResponse::Ok()
            .insert_header((header::ETAG, format!("\"{}\"", v.version)))
            .json(v)),
        _ => Err(ApiError::NotFound(format!("no evidence {id}"))),
    }
}

/// The receipt of the event that registered a record, as the anchoring service serves it
/// (`pending` until anchored, and while the anchoring service has not received the event):
/// what the court's page (`/verify`) verifies in the browser. The same bytes as
/// `/receipts/{registered_event_id}`, served here so the page needs no other host.
#[utoipa::path(
    get, path = "/evidence/{evidence_id}/receipt", tag = "evidence",
    params(("evidence_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "The receipt (schemas/receipt.schema.json)", body = Object),
        (status = 401, body = veritrace_kernel::Problem), (status = 404, body = veritrace_kernel::Problem),
        (status = 503, body = veritrace_kernel::Problem, description = "The anchoring service cannot be reached"),
    ),
    security(("api_key" = []))
)]
pub async fn receipt(
    svc: web::Data<EvidenceService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.into_inner())?;
    let Some(record) = projections::get(svc.read_model(), id.clone())
        .await?
        .filter(|v| visible(&caller, v))
    else {
        return Err(ApiError::NotFound(format!("no evidence {id}")));
    };
    let Some(receipts) = &svc.receipts else {
        return Err(ApiError::Unavailable(
            "this process serves no receipts: ask the anchoring service".into(),
        ));
    };
    let event_id = &record.registered_event_id;
    match receipts.fetch(event_id).await {
        Ok(Some(bytes)) => Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(bytes)),
        // Recorded, not yet with the anchoring service: as pending as a receipt gets.
        Ok(None) => Ok(HttpResponse::Ok().json(pending_receipt(&svc, &id, event_id).await?)),
        Err(reason) => Err(ApiError::Unavailable(format!(
            "the anchoring service cannot be reached: {reason}"
        ))),
    }
}

/// The pending receipt (docs/receipts.md §7.2) of a record's event, from its stream.
async fn pending_receipt(
    svc: &EvidenceService,
    evidence_id: &str,
    event_id: &str,
) -> Result<chain_core::Receipt, ApiError> {
    let events = svc
        .storage
        .store
        .read_stream(&crate::stream_of(evidence_id))
        .await?;
    let event = events
        .iter()
        .find(|e| e.envelope.id.to_string() == event_id)
        .ok_or_else(|| ApiError::Internal(format!("event {event_id} is not in its stream")))?;
    Ok(chain_core::Receipt::Pending(
        chain_core::receipt::PendingReceipt {
            version: chain_core::receipt::RECEIPT_VERSION,
            event_id: event_id.to_string(),
            event_digest: event.digest,
        },
    ))
}

/// Evidence records, newest first: look a file up by its digest, or list a case's records.
/// An organisation sees what it registered and what was shared with it; a court sees every
/// registration (to look a file up by its digest across organisations); the admin and
/// auditors see all.
#[utoipa::path(
    get, path = "/evidence", tag = "evidence",
    params(EvidenceQuery),
    responses(
        (status = 200, body = EvidenceList),
        (status = 401, body = veritrace_kernel::Problem), (status = 422, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    svc: web::Data<EvidenceService>,
    caller: Caller,
    ValidQuery(q): ValidQuery<EvidenceQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let digest = q.digest.map(|d| {
        if d.is_empty() || d.len() > 128 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
            errors.push(FieldError::new(
                "digest",
                "must be 1 to 128 hexadecimal digits",
            ));
        }
        d.to_ascii_lowercase()
    });
    if let Some(a) = &q.algorithm
        && ContentHashAlg::from_name(a).is_none()
    {
        errors.push(FieldError::new(
            "algorithm",
            format!(
                "must be one of {}",
                ContentHashAlg::ALL.map(|a| a.name()).join(", ")
            ),
        ));
    }
    if let Some(c) = &q.case_reference
        && c.chars().count() > domain::MAX_CASE_REFERENCE_CHARS
    {
        errors.push(FieldError::new(
            "case_reference",
            format!(
                "must be at most {} characters",
                domain::MAX_CASE_REFERENCE_CHARS
            ),
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        errors.push(FieldError::new("limit", "must be between 1 and 500"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let filter = EvidenceFilter {
        readable_by: caller.reads_as(),
        evidence_id: None,
        digest,
        algorithm: q.algorithm,
        case_reference: q.case_reference,
        limit,
    };
    let items = projections::list(svc.read_model(), filter).await?;
    Ok(HttpResponse::Ok().json(EvidenceList { items }))
}

/// Withdraw a registration. It stays on record, marked withdrawn.
#[utoipa::path(
    post, path = "/evidence/{evidence_id}/withdrawal", tag = "evidence",
    params(("evidence_id" = uuid::Uuid, Path)),
    request_body = WithdrawEvidenceRequest,
    responses(
        (status = 200, body = EvidenceCommandResponse),
        (status = 202, body = EvidenceCommandRecorded, description = "Withdrawn durably, but the record cannot be read back yet"),
        (status = 401, body = veritrace_kernel::Problem), (status = 403, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem),
        (status = 409, body = veritrace_kernel::Problem, description = "Version conflict or already withdrawn"),
        (status = 422, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn withdraw(
    svc: web::Data<EvidenceService>,
    links: ReceiptLinks,
    caller: Caller,
    path: web::Path<String>,
    ValidJson(body): ValidJson<WithdrawEvidenceRequest>,
) -> Result<HttpResponse, ApiError> {
    let (id, record) = record_to_change(&svc, &caller, &path, body.expected_version).await?;
    let event = domain::decide_withdraw(&record, &caller.organisation_id, &body.reason)?;
    let readers = record.readers();
    record_change(&svc, &links, &caller, (&id, &record), event, readers).await
}

/// The record a command changes: its id parsed from the path, rebuilt from its stream, if
/// `caller` may record and may read it, at `expected_version`.
async fn record_to_change(
    svc: &EvidenceService,
    caller: &Caller,
    id: &str,
    expected_version: u64,
) -> Result<(String, domain::EvidenceRecord), ApiError> {
    let id = parse_id(id)?;
    caller.require_recording()?;
    let record = readable_record(svc, caller, &id, expected_version).await?;
    Ok((id, record))
}

/// Records `event`, decided on `record`, readable by `readers`, and answers with the record as
/// of it.
async fn record_change(
    svc: &EvidenceService,
    links: &ReceiptLinks,
    caller: &Caller,
    (id, record): (&str, &domain::EvidenceRecord),
    event: EvidenceEvent,
    readers: Vec<String>,
) -> Result<HttpResponse, ApiError> {
    let change = RecordChange {
        evidence_id: id.to_string(),
        expected_version: record.version,
        event,
        readers,
        occurred_at: None,
    };
    let stored = svc.record(caller, change).await?;
    respond(svc, links, id, stored, actix_web::http::StatusCode::OK).await
}

/// Record `id` rebuilt from its stream, if `caller` may read it (else the same 404 as for an
/// unknown one), at `expected_version` (else 409).
async fn readable_record(
    svc: &EvidenceService,
    caller: &Caller,
    id: &str,
    expected_version: u64,
) -> Result<domain::EvidenceRecord, ApiError> {
    let record = svc
        .load(id)
        .await?
        .filter(|r| {
            let mut readers = r.readers();
            readers.push(r.owner.clone());
            caller.may_read(&readers)
        })
        .ok_or_else(|| ApiError::NotFound(format!("no evidence {id}")))?;
    if record.version != expected_version {
        return Err(ApiError::VersionConflict(format!(
            "evidence {id} is at version {}, the request expected {expected_version}; read it again and retry",
            record.version
        )));
    }
    Ok(record)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareEvidenceRequest {
    /// The organisation that may read the registration, and its receipts, from now on.
    #[schema(
        example = "0193f1a2-6c1e-7d2a-9b1c-3f4e5d6c7b8a",
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub organisation_id: String,
    /// The record's version the caller read; a different current version answers 409.
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub expected_version: u64,
}

/// Share a registration with another organisation (the opposing party, an expert): it reads
/// the record, and the receipts of its events from this one on. Only the registrant shares;
/// courts, the admin and auditors read every registration anyway.
#[utoipa::path(
    post, path = "/evidence/{evidence_id}/sharing", tag = "evidence",
    params(("evidence_id" = uuid::Uuid, Path)),
    request_body = ShareEvidenceRequest,
    responses(
        (status = 200, body = EvidenceCommandResponse),
        (status = 202, body = EvidenceCommandRecorded, description = "Shared durably, but the record cannot be read back yet"),
        (status = 401, body = veritrace_kernel::Problem), (status = 403, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem),
        (status = 409, body = veritrace_kernel::Problem, description = "Version conflict or already shared with it"),
        (status = 404, body = veritrace_kernel::Problem, description = "No such evidence, or no such organisation"),
        (status = 422, body = veritrace_kernel::Problem, description = "The registrant itself"),
    ),
    security(("api_key" = []))
)]
pub async fn share(
    svc: web::Data<EvidenceService>,
    identity: web::Data<Identity>,
    links: ReceiptLinks,
    caller: Caller,
    path: web::Path<String>,
    ValidJson(body): ValidJson<ShareEvidenceRequest>,
) -> Result<HttpResponse, ApiError> {
    let (id, record) = record_to_change(&svc, &caller, &path, body.expected_version).await?;
    let organisation = uuid::Uuid::parse_str(&body.organisation_id)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::field("organisation_id", "must be an organisation's id (a UUID)"))?;
    if identity.organisation(&organisation).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "no organisation {organisation}"
        )));
    }
    let event = domain::decide_share(&record, &caller.organisation_id, &organisation)?;
    let mut readers = record.readers();
    readers.push(organisation);
    record_change(&svc, &links, &caller, (&id, &record), event, readers).await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource!("/evidence", post => register, get => list))
        .service(resource!("/evidence/batch", post => register_batch))
        .service(resource!("/evidence/{evidence_id}", get => get))
        .service(resource!("/evidence/{evidence_id}/receipt", get => receipt))
        .service(resource!("/evidence/{evidence_id}/withdrawal", post => withdraw))
        .service(resource!("/evidence/{evidence_id}/sharing", post => share));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(register, register_batch, get, receipt, list, withdraw, share))]
pub struct EvidenceApi;

/// `content_hash` as JSON Schema can state it: the digest's length follows the algorithm.
fn content_hash_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
    let variant = |bytes: usize| {
        let algorithms: Vec<&str> = ContentHashAlg::ALL
            .iter()
            .filter(|a| a.digest_len() == bytes)
            .map(|a| a.name())
            .collect();
        let hex_chars = bytes * 2;
        ObjectBuilder::new()
            .property(
                "algorithm",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(algorithms)),
            )
            .property(
                "digest",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(format!("^[0-9a-fA-F]{{{hex_chars}}}$"))),
            )
            .required("algorithm")
            .required("digest")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
    };
    OneOfBuilder::new()
        .description(Some(
            "The hash of the evidence file, computed by the party; the file itself is never sent.",
        ))
        .item(variant(32))
        .item(variant(64))
        .build()
        .into()
}

/// The names of the content-hash algorithms.
fn content_hash_alg_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ContentHashAlg::ALL.map(|a| a.name())))
        .build()
}

/// `metadata`: an object of values the edge keeps exactly (`JsonValue`, the kernel's schema);
/// `null` is the same as leaving it out.
fn metadata_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(veritrace_kernel::strict_json::TEXT_PATTERN)),
        ))
        .additional_properties(Some(AdditionalProperties::RefOr(
            utoipa::openapi::Ref::from_schema_name(
                veritrace_kernel::strict_json::VALUE_SCHEMA_NAME,
            )
            .into(),
        )))
        .build()
}
