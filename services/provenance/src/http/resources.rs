//! The binding's top-level resources beside `/events`: each event type, EPC, business step,
//! business location, read point and disposition is a resource whose sub-resource `events`
//! holds the events of that value (with the other parameters of `GET /events`); the listings
//! `/epcs`, `/bizLocations` and `/readPoints` name the values the caller's events hold.

use super::query::{EVENT_TYPES, answer_page, pairs_of, parse_event_query, roles_matched_by};
use crate::ProvenanceService;
use crate::projections::query::{self as q, EventQuery, IdentifierFilter, IdentifierMatch};
use actix_web::{HttpRequest, HttpResponse, web};
use veritrace_epcis::vocabulary::{biz_step_key, disposition_key};
use veritrace_kernel::ApiError;
use veritrace_kernel::auth::Caller;

/// A value resource's sub-resources: its events.
fn sub_resources() -> HttpResponse {
    HttpResponse::Ok().json(["events"])
}

/// `GET /events` with one more filter, set by `narrow`.
async fn events_where(
    svc: &ProvenanceService,
    caller: &Caller,
    req: &HttpRequest,
    narrow: impl FnOnce(&mut EventQuery),
) -> Result<HttpResponse, ApiError> {
    let pairs = pairs_of(req)?;
    let mut paged = parse_event_query(&pairs).map_err(ApiError::QueryParameters)?;
    narrow(&mut paged.query);
    answer_page(svc, caller, req, &pairs, paged).await
}

fn event_type_of(path: &str) -> Result<String, ApiError> {
    if EVENT_TYPES.contains(&path) {
        Ok(path.to_owned())
    } else {
        Err(ApiError::NotFound(format!(
            "{path:?} is not an EPCIS event type: one of {}",
            EVENT_TYPES.join(", ")
        )))
    }
}

/// An event type's sub-resources.
#[utoipa::path(get, path = "/eventTypes/{eventType}", tag = "provenance",
    params(("eventType" = String, Path, description = "ObjectEvent, AggregationEvent, TransactionEvent, TransformationEvent or AssociationEvent")),
    responses((status = 200, body = Vec<String>), (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem, description = "Not an event type")),
    security(("api_key" = [])))]
pub async fn event_type(
    _caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    event_type_of(&path)?;
    Ok(sub_resources())
}

/// The events of one type (with the parameters of `GET /events`).
#[utoipa::path(get, path = "/eventTypes/{eventType}/events", tag = "provenance",
    params(("eventType" = String, Path)),
    responses((status = 200, body = Object, content_type = "application/ld+json", description = "An EPCISQueryDocument"),
        (status = 400, body = veritrace_kernel::Problem), (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem, description = "Not an event type")),
    security(("api_key" = [])))]
pub async fn event_type_events(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let event_type = event_type_of(&path)?;
    events_where(&svc, &caller, &req, |q| q.event_types = vec![event_type]).await
}

/// The EPCs the caller's events name (instance identifiers, at most 1,000, in order).
#[utoipa::path(get, path = "/epcs", tag = "provenance",
    responses((status = 200, body = Vec<String>), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = [])))]
pub async fn epcs(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(q::epcs(svc.read_model(), caller.reads_as()).await?))
}

/// An EPC's sub-resources.
#[utoipa::path(get, path = "/epcs/{epc}", tag = "provenance",
    params(("epc" = String, Path, description = "An EPC URI or Digital Link, URL-encoded")),
    responses((status = 200, body = Vec<String>), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = [])))]
pub async fn epc(_caller: Caller, _path: web::Path<String>) -> HttpResponse {
    sub_resources()
}

/// A business step's sub-resources.
#[utoipa::path(get, path = "/bizSteps/{bizStep}", tag = "provenance",
    params(("bizStep" = String, Path, description = "A CBV business step in any spelling, or a URI")),
    responses((status = 200, body = Vec<String>), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = [])))]
pub async fn biz_step(_caller: Caller, _path: web::Path<String>) -> HttpResponse {
    sub_resources()
}

/// The events of one business step.
#[utoipa::path(get, path = "/bizSteps/{bizStep}/events", tag = "provenance",
    params(("bizStep" = String, Path)),
    responses((status = 200, body = Object, content_type = "application/ld+json", description = "An EPCISQueryDocument"),
        (status = 400, body = veritrace_kernel::Problem), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = [])))]
pub async fn biz_step_events(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = biz_step_key(&path);
    events_where(&svc, &caller, &req, |q| q.biz_steps = vec![key]).await
}

/// The business locations of the caller's events (at most 1,000, in order).
#[utoipa::path(get, path = "/bizLocations", tag = "provenance",
    responses((status = 200, body = Vec<String>), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = [])))]
pub async fn biz_locations(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let listed = q::locations(svc.read_model(), true, caller.reads_as()).await?;
    Ok(HttpResponse::Ok().json(listed))
}

/// A business location's sub-resources.
#[utoipa::path(get, path = "/bizLocations/{bizLocation}", tag = "provenance",
    params(("bizLocation" = String, Path, description = "A location identifier, URL-encoded")),
    responses((status = 200, body = Vec<String>), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = [])))]
pub async fn biz_location(_caller: Caller, _path: web::Path<String>) -> HttpResponse {
    sub_resources()
}

/// The events at one business location.
#[utoipa::path(get, path = "/bizLocations/{bizLocation}/events", tag = "provenance",
    params(("bizLocation" = String, Path)),
    responses((status = 200, body = Object, content_type = "application/ld+json", description = "An EPCISQueryDocument"),
        (status = 400, body = veritrace_kernel::Problem), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = [])))]
pub async fn biz_location_events(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let location = path.into_inner();
    events_where(&svc, &caller, &req, |q| q.biz_locations = vec![location]).await
}

/// The read points of the caller's events (at most 1,000, in order).
#[utoipa::path(get, path = "/readPoints", tag = "provenance",
    responses((status = 200, body = Vec<String>), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = [])))]
pub async fn read_points(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let listed = q::locations(svc.read_model(), false, caller.reads_as()).await?;
    Ok(HttpResponse::Ok().json(listed))
}

/// A read point's sub-resources.
#[utoipa::path(get, path = "/readPoints/{readPoint}", tag = "provenance",
    params(("readPoint" = String, Path, description = "A location identifier, URL-encoded")),
    responses((status = 200, body = Vec<String>), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = [])))]
pub async fn read_point(_caller: Caller, _path: web::Path<String>) -> HttpResponse {
    sub_resources()
}

/// The events at one read point.
#[utoipa::path(get, path = "/readPoints/{readPoint}/events", tag = "provenance",
    params(("readPoint" = String, Path)),
    responses((status = 200, body = Object, content_type = "application/ld+json", description = "An EPCISQueryDocument"),
        (status = 400, body = veritrace_kernel::Problem), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = [])))]
pub async fn read_point_events(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let point = path.into_inner();
    events_where(&svc, &caller, &req, |q| q.read_points = vec![point]).await
}

/// A disposition's sub-resources.
#[utoipa::path(get, path = "/dispositions/{disposition}", tag = "provenance",
    params(("disposition" = String, Path, description = "A CBV disposition in any spelling, or a URI")),
    responses((status = 200, body = Vec<String>), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = [])))]
pub async fn disposition(_caller: Caller, _path: web::Path<String>) -> HttpResponse {
    sub_resources()
}

/// The events of one disposition.
#[utoipa::path(get, path = "/dispositions/{disposition}/events", tag = "provenance",
    params(("disposition" = String, Path)),
    responses((status = 200, body = Object, content_type = "application/ld+json", description = "An EPCISQueryDocument"),
        (status = 400, body = veritrace_kernel::Problem), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = [])))]
pub async fn disposition_events(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = disposition_key(&path);
    events_where(&svc, &caller, &req, |q| q.dispositions = vec![key]).await
}

/// Forget a page token. Tokens here hold no state (a position in the capture order), so
/// there is nothing to free; the binding's operation is answered all the same.
#[utoipa::path(delete, path = "/nextPageToken/{token}", tag = "provenance",
    params(("token" = String, Path)),
    responses((status = 204, description = "Forgotten"), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = [])))]
pub async fn forget_page_token(_caller: Caller, _path: web::Path<String>) -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// The events naming one EPC, in any role (`MATCH_anyEPC`).
pub(crate) fn naming(epc: String) -> impl FnOnce(&mut EventQuery) {
    move |q| {
        q.identifiers.push(IdentifierFilter {
            roles: roles_matched_by("MATCH_anyEPC").unwrap_or_default(),
            identifiers: vec![IdentifierMatch::Exactly(epc)],
        })
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use veritrace_kernel::resource;
    cfg.service(resource!("/eventTypes/{eventType}", get => event_type))
        .service(resource!("/eventTypes/{eventType}/events", get => event_type_events))
        .service(resource!("/epcs", get => epcs))
        .service(resource!("/epcs/{epc}", get => epc))
        .service(resource!("/bizSteps/{bizStep}", get => biz_step))
        .service(resource!("/bizSteps/{bizStep}/events", get => biz_step_events))
        .service(resource!("/bizLocations", get => biz_locations))
        .service(resource!("/bizLocations/{bizLocation}", get => biz_location))
        .service(resource!("/bizLocations/{bizLocation}/events", get => biz_location_events))
        .service(resource!("/readPoints", get => read_points))
        .service(resource!("/readPoints/{readPoint}", get => read_point))
        .service(resource!("/readPoints/{readPoint}/events", get => read_point_events))
        .service(resource!("/dispositions/{disposition}", get => disposition))
        .service(resource!("/dispositions/{disposition}/events", get => disposition_events))
        .service(resource!("/nextPageToken/{token}", delete => forget_page_token));
}
