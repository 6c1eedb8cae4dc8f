//! `POST /capture` and `GET /capture/{captureID}`: the EPCIS 2.0 REST binding's capture
//! interface. A document is validated whole and its job completes before the answer, so a job
//! is never seen running.

use crate::ProvenanceService;
use crate::domain::{CAPTURE_LIMIT, CaptureError, ErrorBehaviour};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veritrace_epcis::document::read_capture_document;
use veritrace_kernel::auth::{Caller, Identity};
use veritrace_kernel::http::{ReceiptLinks, ValidJson, ValidQuery};
use veritrace_kernel::{ApiError, FieldError};

/// Largest capture document, in bytes (`GS1-EPCIS-Capture-File-Size-Limit`).
pub const MAX_CAPTURE_BYTES: usize = 16 * 1024 * 1024;

/// The body of `POST /capture` as the OpenAPI document states it: what the edge takes for a
/// capture document at all (its `type` and its event list; strings and numbers as the
/// platform's JSON edge takes them). What GS1's schema and the CBV say of the events is judged
/// event by event, and reported in the job.
pub struct CaptureBody;

impl utoipa::PartialSchema for CaptureBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        // A fixed document: that it reads as a schema is held by the OpenAPI tests.
        serde_json::from_value(capture_body_schema()).unwrap_or_default()
    }
}

impl utoipa::ToSchema for CaptureBody {}

/// [`CaptureBody`]'s schema: an `EPCISDocument` with `epcisBody.eventList`, or an
/// `EPCISQueryDocument` with `epcisBody.queryResults.resultsBody.eventList`.
pub fn capture_body_schema() -> serde_json::Value {
    use veritrace_kernel::strict_json::{TEXT_PATTERN, VALUE_SCHEMA_NAME};
    let value = serde_json::json!({"$ref": format!("#/components/schemas/{VALUE_SCHEMA_NAME}")});
    let names = serde_json::json!({"type": "string", "pattern": TEXT_PATTERN});
    let holding = |required: &str, inner: serde_json::Value| {
        serde_json::json!({
            "type": "object",
            "required": [required],
            "properties": {required: inner},
            "propertyNames": names,
            "additionalProperties": value,
        })
    };
    let events = serde_json::json!({"type": "array", "items": value});
    let document = |type_name: &str, body: serde_json::Value| {
        serde_json::json!({
            "type": "object",
            "required": ["type", "epcisBody"],
            "properties": {
                "type": {"type": "string", "enum": [type_name]},
                "epcisBody": body,
            },
            "propertyNames": names,
            "additionalProperties": value,
        })
    };
    serde_json::json!({
        "description": "An EPCIS 2.0 capture document, JSON or JSON-LD: its `type` and its event \
                        list are what the edge requires; each event is then validated against \
                        GS1's JSON Schema of EPCIS 2.0 and the CBV 2.0, its faults reported in \
                        the capture job.",
        "oneOf": [
            document("EPCISDocument", holding("eventList", events.clone())),
            document(
                "EPCISQueryDocument",
                holding("queryResults", holding("resultsBody", holding("eventList", events))),
            ),
        ]
    })
}

/// A capture job, as the binding's `CaptureJob` has it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaptureJob {
    #[serde(rename = "captureID")]
    pub capture_id: String,
    pub created_at: String,
    pub finished_at: String,
    /// Always false: a job completes before `POST /capture` answers.
    pub running: bool,
    /// Whether every event of the document is stored (newly, or from an earlier capture).
    pub success: bool,
    pub capture_error_behaviour: ErrorBehaviour,
    /// Each fault: the event (`event_index` in the document's event list, its eventID where
    /// it has one) and the field (a JSON pointer from the event).
    pub errors: Vec<CaptureJobError>,
    /// How many events the document held.
    pub event_count: usize,
    /// The events this job stored, by eventID, in document order.
    pub captured: Vec<String>,
    /// Where each stored event's receipt is served, by eventID.
    pub receipt_urls: std::collections::BTreeMap<String, String>,
    /// Events of the document stored before, stored once and not again.
    pub already_captured: Vec<String>,
    /// The receipt of the job's own outcome, anchored like every event.
    pub receipt_url: String,
}

/// One fault of a capture job: the event (`eventIndex` in the document's event list, its
/// `eventID` where it has one; both null for a fault of the document itself) and the field (a
/// JSON pointer from the event, or from the document).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaptureJobError {
    pub event_index: Option<usize>,
    #[serde(rename = "eventID")]
    pub event_id: Option<String>,
    pub field: String,
    pub message: String,
}

impl From<CaptureError> for CaptureJobError {
    fn from(e: CaptureError) -> Self {
        CaptureJobError {
            event_index: e.event_index,
            event_id: e.event_id,
            field: e.field,
            message: e.message,
        }
    }
}

impl CaptureJob {
    fn of(recorded: crate::RecordedJob, links: &ReceiptLinks) -> CaptureJob {
        let job = recorded.job;
        CaptureJob {
            capture_id: job.capture_id,
            created_at: recorded.recorded_at.clone(),
            finished_at: recorded.recorded_at,
            running: false,
            success: job.success,
            capture_error_behaviour: job.error_behaviour,
            errors: job.errors.into_iter().map(CaptureJobError::from).collect(),
            event_count: job.event_count,
            receipt_urls: job
                .captured
                .iter()
                .map(|c| (c.event_id.clone(), links.receipt_url(&c.record_id)))
                .collect(),
            captured: job.captured.into_iter().map(|c| c.event_id).collect(),
            already_captured: job.already_captured,
            receipt_url: links.receipt_url(&recorded.event_id),
        }
    }
}

/// Capture EPCIS events.
///
/// Takes an `EPCISDocument` or `EPCISQueryDocument` (JSON or JSON-LD) of at most 10,000
/// events and 16 MiB. The document is validated whole: structure (GS1's JSON Schema), CBV 2.0
/// vocabularies, EPC and Digital Link identifiers, times with their offsets. Under
/// `GS1-Capture-Error-Behaviour: rollback` (the default) one invalid event rejects the
/// document and nothing of it is stored; under `proceed` the valid events are stored and the
/// others reported. An event without an `eventID` is named by its CBV 2.0 canonical hash; an
/// event captured before (same eventID and content, or same canonical hash) is stored once;
/// an eventID already naming other content is refused. The job is complete when this
/// answers: `202` with `Location: /capture/{captureID}` and the job.
#[utoipa::path(
    post, path = "/capture", tag = "provenance",
    params(
        ("GS1-Capture-Error-Behaviour" = Option<ErrorBehaviour>, Header, nullable = false,
            description = "`rollback` (default): all or nothing; `proceed`: store the valid events"),
        ("Veritrace-Share-With" = Option<String>, Header, nullable = false,
            pattern = "^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:,[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}){0,31})?$",
            description = "Trading partners who may read the captured events too: up to 32 organisation ids, comma-separated"),
    ),
    request_body(content = CaptureBody, content_type = "application/ld+json",
        description = "An EPCIS 2.0 document (`EPCISDocument` or `EPCISQueryDocument`)"),
    responses(
        (status = 202, body = CaptureJob, description = "The job, complete; `success` says whether every event is stored"),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 403, body = veritrace_kernel::Problem, description = "The key's role records nothing"),
        (status = 404, body = veritrace_kernel::Problem, description = "An organisation of Veritrace-Share-With does not exist"),
        (status = 413, body = veritrace_kernel::Problem, description = "Over 16 MiB or 10,000 events"),
        (status = 415, body = veritrace_kernel::Problem),
        (status = 422, body = veritrace_kernel::Problem, description = "Not an EPCIS document at all, or a bad header"),
    ),
    security(("api_key" = []))
)]
pub async fn capture(
    svc: web::Data<ProvenanceService>,
    identity: web::Data<Identity>,
    links: ReceiptLinks,
    caller: Caller,
    req: HttpRequest,
    ValidJson(body): ValidJson<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require_recording()?;
    let shared_with = shared_with(&identity, &req).await?;
    let behaviour = ErrorBehaviour::from_header(
        req.headers()
            .get("GS1-Capture-Error-Behaviour")
            .map(|v| v.to_str().unwrap_or("(not text)")),
    )
    .map_err(|m| ApiError::field("GS1-Capture-Error-Behaviour", m))?;
    let document = read_capture_document(&body)
        .map_err(|e| ApiError::Validation(vec![FieldError::new("type", e.to_string())]))?;
    if document.events.len() > CAPTURE_LIMIT {
        return Err(ApiError::Validation(vec![FieldError::new(
            "epcisBody",
            format!(
                "holds {} events; a capture takes at most {CAPTURE_LIMIT} (GS1-EPCIS-Capture-Limit): split the document",
                document.events.len()
            ),
        )]));
    }
    let recorded = svc
        .capture(&caller, &document, behaviour, &shared_with)
        .await?;
    let location = format!("/capture/{}", recorded.job.capture_id);
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, location))
        .insert_header(("GS1-EPCIS-Capture-Limit", CAPTURE_LIMIT.to_string()))
        .json(CaptureJob::of(recorded, &links)))
}

/// The organisations of `Veritrace-Share-With`: lowercase hyphenated UUIDs, comma-separated,
/// at most 32, each an organisation that exists; empty (or absent), no one.
async fn shared_with(identity: &Identity, req: &HttpRequest) -> Result<Vec<String>, ApiError> {
    const HEADER: &str = "Veritrace-Share-With";
    let Some(value) = req.headers().get(HEADER).filter(|v| !v.is_empty()) else {
        return Ok(Vec::new());
    };
    let ids: Vec<String> = value
        .to_str()
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect())
        .filter(|ids: &Vec<String>| ids.len() <= 32 && ids.iter().all(|id| is_uuid(id)))
        .ok_or_else(|| {
            ApiError::field(
                HEADER,
                "must be up to 32 organisation ids (lowercase UUIDs), separated by commas",
            )
        })?;
    for id in &ids {
        if identity.organisation(id).await?.is_none() {
            return Err(ApiError::NotFound(format!(
                "no organisation {id} (in {HEADER})"
            )));
        }
    }
    Ok(ids)
}

/// A lowercase hyphenated UUID, as organisation ids are written.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// A capture job.
///
/// Readable by the organisation that captured it (and the admin and auditors).
#[utoipa::path(
    get, path = "/capture/{captureID}", tag = "provenance",
    params(("captureID" = String, Path, pattern = "^[0-9a-f-]{36}$")),
    responses(
        (status = 200, body = CaptureJob),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem, description = "No such job the caller may read"),
    ),
    security(("api_key" = []))
)]
pub async fn job(
    svc: web::Data<ProvenanceService>,
    links: ReceiptLinks,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let capture_id = path.into_inner();
    let not_found = || ApiError::NotFound(format!("no capture job {capture_id}"));
    if uuid::Uuid::parse_str(&capture_id).is_err() {
        return Err(not_found());
    }
    let recorded = svc.job(&capture_id).await?.ok_or_else(not_found)?;
    if !caller.may_read(std::slice::from_ref(&recorded.organisation)) {
        return Err(not_found());
    }
    Ok(HttpResponse::Ok().json(CaptureJob::of(recorded, &links)))
}

/// A page of capture jobs: `perPage` (1 to 100, default 30) and the `nextPageToken` the
/// previous page's `Link: rel="next"` gave.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobPage {
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
    #[param(pattern = "^[0-9]{1,18}$")]
    pub next_page_token: Option<String>,
}

/// The caller's capture jobs.
///
/// Oldest first, a page at a time (`Link: <…>; rel="next"` while more follow); the admin and
/// auditors see every organisation's.
#[utoipa::path(
    get, path = "/capture", tag = "provenance",
    params(JobPage),
    responses(
        (status = 200, body = Vec<CaptureJob>),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 422, body = veritrace_kernel::Problem, description = "A bad page parameter"),
    ),
    security(("api_key" = []))
)]
pub async fn jobs(
    svc: web::Data<ProvenanceService>,
    links: ReceiptLinks,
    caller: Caller,
    ValidQuery(page): ValidQuery<JobPage>,
) -> Result<HttpResponse, ApiError> {
    let per_page = page.per_page.unwrap_or(30);
    if !(1..=100).contains(&per_page) {
        return Err(ApiError::field(
            "perPage",
            "must be a whole number from 1 to 100",
        ));
    }
    let after = match page.next_page_token.as_deref() {
        None => 0,
        Some(t) => t.parse::<i64>().map_err(|_| {
            ApiError::field("nextPageToken", "is not a page token this server gave")
        })?,
    };
    let organisation = (!caller.reads_everything()).then(|| caller.organisation_id.clone());
    let (rows, more) =
        crate::projections::query::capture_jobs(svc.read_model(), organisation, after, per_page)
            .await?;
    let mut listed = Vec::with_capacity(rows.len());
    for (capture_id, _) in &rows {
        if let Some(recorded) = svc.job(capture_id).await? {
            listed.push(CaptureJob::of(recorded, &links));
        }
    }
    let mut resp = HttpResponse::Ok();
    if let (true, Some((_, last))) = (more, rows.last()) {
        resp.insert_header((
            header::LINK,
            format!("</capture?perPage={per_page}&nextPageToken={last}>; rel=\"next\""),
        ));
    }
    Ok(resp.json(listed))
}

/// Capture one EPCIS event.
///
/// The binding's synchronous capture of a single event: the event (with its own `@context`,
/// if it has one) is captured as a document of one, all or nothing. `201` with `Location:
/// /events/{eventID}` once it is stored (or was, before: the same event is not stored
/// twice); an invalid event is a 422 naming each fault.
#[utoipa::path(
    post, path = "/events", tag = "provenance",
    params(
        ("Veritrace-Share-With" = Option<String>, Header, nullable = false,
            pattern = "^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:,[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}){0,31})?$",
            description = "Trading partners who may read the event too: up to 32 organisation ids, comma-separated"),
    ),
    request_body(content = Object, content_type = "application/ld+json", description = "One EPCIS 2.0 event"),
    responses(
        (status = 201, body = CaptureJob, headers(("Location" = String)), description = "Stored: the job that stored it"),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 403, body = veritrace_kernel::Problem, description = "The key's role records nothing"),
        (status = 404, body = veritrace_kernel::Problem, description = "An organisation of Veritrace-Share-With does not exist"),
        (status = 415, body = veritrace_kernel::Problem),
        (status = 422, body = veritrace_kernel::Problem, description = "Not a valid EPCIS event: each fault named"),
    ),
    security(("api_key" = []))
)]
pub async fn capture_event(
    svc: web::Data<ProvenanceService>,
    identity: web::Data<Identity>,
    links: ReceiptLinks,
    caller: Caller,
    req: HttpRequest,
    ValidJson(event): ValidJson<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require_recording()?;
    let shared_with = shared_with(&identity, &req).await?;
    let context = event
        .get("@context")
        .cloned()
        .unwrap_or_else(|| serde_json::json!([super::query::EPCIS_CONTEXT]));
    let body = serde_json::json!({
        "@context": context,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": veritrace_kernel::envelope::now_rfc3339(),
        "epcisBody": {"eventList": [event]},
    });
    let document = read_capture_document(&body)
        .map_err(|e| ApiError::Validation(vec![FieldError::new("type", e.to_string())]))?;
    let recorded = svc
        .capture(&caller, &document, ErrorBehaviour::Rollback, &shared_with)
        .await?;
    if !recorded.job.success {
        let faults = recorded
            .job
            .errors
            .iter()
            .map(|e| {
                FieldError::new(
                    e.field.trim_start_matches("/epcisBody/eventList/0"),
                    &e.message,
                )
            })
            .collect();
        return Err(ApiError::Validation(faults));
    }
    let event_id = recorded
        .job
        .captured
        .first()
        .map(|c| c.event_id.clone())
        .or_else(|| recorded.job.already_captured.first().cloned())
        .ok_or_else(|| ApiError::Internal("a successful capture of one event names none".into()))?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!(
                "/events/{}",
                veritrace_epcis::identifiers::percent_encode(&event_id)
            ),
        ))
        .json(CaptureJob::of(recorded, &links)))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        veritrace_kernel::resource!("/capture", post => capture, get => jobs)
            .app_data(veritrace_kernel::http::BodyLimit(MAX_CAPTURE_BYTES)),
    )
    .service(veritrace_kernel::resource!("/capture/{captureID}", get => job));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_schema_reads_as_a_schema_and_names_both_documents() {
        let read: Result<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>, _> =
            serde_json::from_value(capture_body_schema());
        let schema = serde_json::to_value(read.expect("a schema")).unwrap();
        let text = schema.to_string();
        assert!(text.contains("EPCISDocument") && text.contains("EPCISQueryDocument"));
        assert!(
            text.contains("resultsBody") && text.contains("eventList"),
            "{text}"
        );
    }
}
