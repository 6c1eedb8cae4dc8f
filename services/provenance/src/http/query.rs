//! The EPCIS 2.0 REST binding's query interface: `GET /events` with the SimpleEventQuery
//! parameters (pipe-delimited lists, `perPage` and `nextPageToken` with a `Link: rel="next"`
//! header), one event by its eventID, the event types, the events of one EPC, and the CBV
//! vocabularies. A parameter the interface does not know, or a malformed value, is a 400
//! naming it.

use crate::ProvenanceService;
use crate::projections::query::{self as q, EventQuery, IdentifierFilter, IdentifierMatch};
use crate::projections::{EventRow, role_name};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use veritrace_epcis::document::EpcRole;
use veritrace_epcis::vocabulary::{
    biz_step_key, disposition_key, standard_biz_steps, standard_dispositions,
};
use veritrace_kernel::auth::Caller;
use veritrace_kernel::envelope::{envelope_time, now_rfc3339};
use veritrace_kernel::{ApiError, FieldError};

/// The standard EPCIS 2.0 JSON-LD context, which every query document names first.
pub const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";

/// `perPage` when none is given (the binding's default) and the most one page holds.
pub const DEFAULT_PER_PAGE: i64 = 30;
pub const MAX_PER_PAGE: i64 = 1000;

/// The five EPCIS 2.0 event types.
pub const EVENT_TYPES: &[&str] = &[
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
];

/// The `MATCH_` parameters, each searching the identifier roles EPCIS 2.0 §8.2.7.1 gives it
/// ([`EpcRole::matched_by`]).
const MATCH_PARAMETERS: &[&str] = &[
    "MATCH_epc",
    "MATCH_parentID",
    "MATCH_inputEPC",
    "MATCH_outputEPC",
    "MATCH_anyEPC",
    "MATCH_epcClass",
    "MATCH_inputEPCClass",
    "MATCH_outputEPCClass",
    "MATCH_anyEPCClass",
];

/// The role names (as the identifier table holds them) a `MATCH_` parameter searches.
pub(crate) fn roles_matched_by(parameter: &str) -> Option<Vec<&'static str>> {
    EpcRole::matched_by(parameter).map(|roles| roles.iter().map(|r| role_name(*r)).collect())
}

/// A query's filters and page, read from its parameters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PagedQuery {
    pub query: EventQuery,
    pub per_page: i64,
}

/// Reads the query parameters (`name=value` pairs, values decoded): every fault is named.
pub fn parse_event_query(pairs: &[(String, String)]) -> Result<PagedQuery, Vec<FieldError>> {
    let mut read = PagedQuery {
        per_page: DEFAULT_PER_PAGE,
        ..PagedQuery::default()
    };
    let mut errors = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (name, value) in pairs {
        if !seen.insert(name.as_str()) {
            errors.push(FieldError::new(
                name,
                "is given more than once; separate values with `|`",
            ));
            continue;
        }
        if let Err(message) = apply_parameter(&mut read, name, value) {
            errors.push(FieldError::new(name, message));
        }
    }
    if errors.is_empty() {
        Ok(read)
    } else {
        Err(errors)
    }
}

/// A pipe-delimited list of non-empty values.
fn values(value: &str) -> Result<Vec<String>, String> {
    let list: Vec<String> = value.split('|').map(str::to_owned).collect();
    if list.iter().any(|v| v.is_empty()) {
        return Err("holds an empty value (values are separated by `|`)".into());
    }
    Ok(list)
}

/// A time parameter in UTC to the millisecond, as the read model holds times.
fn time(value: &str) -> Result<String, String> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| envelope_time(t.with_timezone(&chrono::Utc)))
        .map_err(|_| {
            "must be an RFC 3339 date-time with its offset, e.g. 2022-06-30T00:15:47.000-05:00"
                .to_string()
        })
}

fn apply_parameter(read: &mut PagedQuery, name: &str, value: &str) -> Result<(), String> {
    let query = &mut read.query;
    match name {
        "eventType" => {
            let types = values(value)?;
            if let Some(bad) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
                return Err(format!(
                    "{bad:?} is not an event type: one of {}",
                    EVENT_TYPES.join(", ")
                ));
            }
            query.event_types = types;
        }
        "GE_eventTime" => query.ge_event_time = Some(time(value)?),
        "LT_eventTime" => query.lt_event_time = Some(time(value)?),
        "GE_recordTime" => query.ge_record_time = Some(time(value)?),
        "LT_recordTime" => query.lt_record_time = Some(time(value)?),
        "EQ_action" => {
            let actions = values(value)?;
            if let Some(bad) = actions
                .iter()
                .find(|a| !["ADD", "OBSERVE", "DELETE"].contains(&a.as_str()))
            {
                return Err(format!("{bad:?} is not an action: ADD, OBSERVE or DELETE"));
            }
            query.actions = actions;
        }
        "EQ_bizStep" => query.biz_steps = values(value)?.iter().map(|v| biz_step_key(v)).collect(),
        "EQ_disposition" => {
            query.dispositions = values(value)?.iter().map(|v| disposition_key(v)).collect()
        }
        "EQ_readPoint" => query.read_points = values(value)?,
        "EQ_bizLocation" => query.biz_locations = values(value)?,
        "EQ_eventID" => query.event_ids = values(value)?,
        "perPage" => {
            read.per_page = value
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_PER_PAGE).contains(n))
                .ok_or_else(|| format!("must be a whole number from 1 to {MAX_PER_PAGE}"))?;
        }
        "nextPageToken" => {
            query.after = Some(
                value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or("is not a page token this server gave")?,
            );
        }
        _ => {
            let Some(roles) = roles_matched_by(name) else {
                return Err(format!(
                    "is not a query parameter this server supports: {}",
                    supported_parameters().join(", ")
                ));
            };
            let identifiers = values(value)?
                .iter()
                .map(|v| IdentifierMatch::parse(v))
                .collect::<Result<Vec<_>, _>>()?;
            query
                .identifiers
                .push(IdentifierFilter { roles, identifiers });
        }
    }
    Ok(())
}

/// Every parameter `GET /events` takes.
pub fn supported_parameters() -> Vec<&'static str> {
    let mut names = vec![
        "eventType",
        "GE_eventTime",
        "LT_eventTime",
        "GE_recordTime",
        "LT_recordTime",
        "EQ_action",
        "EQ_bizStep",
        "EQ_disposition",
        "EQ_readPoint",
        "EQ_bizLocation",
        "EQ_eventID",
    ];
    names.extend(MATCH_PARAMETERS);
    names.extend(["perPage", "nextPageToken"]);
    names
}

pub(crate) fn pairs_of(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .map_err(|e| ApiError::QueryParameters(vec![FieldError::new("query", e.to_string())]))
}

/// An EPCIS query document holding `rows`, under the union of their documents' contexts.
pub fn query_document(rows: &[EventRow]) -> Result<Value, ApiError> {
    let mut context = vec![Value::String(EPCIS_CONTEXT.into())];
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let parse = |text: &str| {
            serde_json::from_str::<Value>(text).map_err(|e| ApiError::Internal(e.to_string()))
        };
        let parts = match parse(&row.context_json)? {
            Value::Array(parts) => parts,
            Value::Null => Vec::new(),
            one => vec![one],
        };
        for part in parts {
            if !context.contains(&part) {
                context.push(part);
            }
        }
        events.push(parse(&row.event_json)?);
    }
    Ok(json!({
        "@context": context,
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": now_rfc3339(),
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": events}
            }
        }
    }))
}

/// Runs `query` for `caller` and answers a page, with `Link: rel="next"` when more follow.
pub(crate) async fn answer_page(
    svc: &ProvenanceService,
    caller: &Caller,
    req: &HttpRequest,
    pairs: &[(String, String)],
    mut paged: PagedQuery,
) -> Result<HttpResponse, ApiError> {
    paged.query.readable_by = caller.reads_as();
    let page = q::events(svc.read_model(), paged.query, paged.per_page).await?;
    let document = query_document(&page.rows)?;
    let mut resp = HttpResponse::Ok();
    resp.content_type("application/ld+json");
    if let Some(after) = page.next_after {
        let mut next = form_urlencoded_pairs(pairs.iter().filter(|(n, _)| n != "nextPageToken"));
        if !next.is_empty() {
            next.push('&');
        }
        next.push_str(&format!("nextPageToken={after}"));
        resp.insert_header((
            header::LINK,
            format!("<{}?{next}>; rel=\"next\"", req.path()),
        ));
    }
    Ok(resp.json(document))
}

fn form_urlencoded_pairs<'a>(pairs: impl Iterator<Item = &'a (String, String)>) -> String {
    let encoded: Vec<(&str, &str)> = pairs.map(|(n, v)| (n.as_str(), v.as_str())).collect();
    serde_urlencoded::to_string(encoded).unwrap_or_default()
}

/// Query EPCIS events.
///
/// The SimpleEventQuery parameters of the EPCIS 2.0 REST binding, each a pipe-delimited list
/// where the binding has one: `eventType`, `GE_eventTime`, `LT_eventTime`, `GE_recordTime`,
/// `LT_recordTime`, `EQ_action`, `EQ_bizStep`, `EQ_disposition`, `EQ_readPoint`,
/// `EQ_bizLocation`, `EQ_eventID`, `MATCH_epc`, `MATCH_parentID`, `MATCH_inputEPC`,
/// `MATCH_outputEPC`, `MATCH_anyEPC`, `MATCH_epcClass`, `MATCH_inputEPCClass`,
/// `MATCH_outputEPCClass`, `MATCH_anyEPCClass` (EPC patterns `urn:epc:idpat:…` match their
/// EPCs); `perPage` (1 to 1000, default 30) and `nextPageToken`, which the `Link: <…>;
/// rel="next"` header of each page but the last carries. Events come in capture order, each
/// as captured with its `eventID` and `recordTime`: those the caller's organisation captured
/// (the admin and auditors read all). Any other parameter is a 400.
#[utoipa::path(
    get, path = "/events", tag = "provenance",
    responses(
        (status = 200, body = Object, content_type = "application/ld+json", description = "An EPCISQueryDocument"),
        (status = 400, body = veritrace_kernel::Problem, description = "An unknown parameter or a malformed value, named"),
        (status = 401, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn events(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let pairs = pairs_of(&req)?;
    let paged = parse_event_query(&pairs).map_err(ApiError::QueryParameters)?;
    answer_page(&svc, &caller, &req, &pairs, paged).await
}

/// The events naming one EPC (`MATCH_anyEPC` of the EPC, with the other parameters of
/// `GET /events`).
#[utoipa::path(
    get, path = "/epcs/{epc}/events", tag = "provenance",
    params(("epc" = String, Path, description = "An EPC URI or Digital Link, URL-encoded")),
    responses(
        (status = 200, body = Object, content_type = "application/ld+json", description = "An EPCISQueryDocument"),
        (status = 400, body = veritrace_kernel::Problem),
        (status = 401, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn epc_events(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let pairs = pairs_of(&req)?;
    let mut paged = parse_event_query(&pairs).map_err(ApiError::QueryParameters)?;
    super::resources::naming(path.into_inner())(&mut paged.query);
    answer_page(&svc, &caller, &req, &pairs, paged).await
}

/// One EPCIS event by its eventID, with `Link: <receipt>; rel="receipt"`.
#[utoipa::path(
    get, path = "/events/{eventID}", tag = "provenance",
    params(("eventID" = String, Path, description = "The eventID, URL-encoded")),
    responses(
        (status = 200, body = Object, content_type = "application/ld+json", description = "An EPCISQueryDocument holding the event"),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem, description = "No such event the caller may read"),
    ),
    security(("api_key" = []))
)]
pub async fn event(
    svc: web::Data<ProvenanceService>,
    links: veritrace_kernel::http::ReceiptLinks,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let event_id = path.into_inner();
    let query = EventQuery {
        event_ids: vec![event_id.clone()],
        readable_by: caller.reads_as(),
        ..EventQuery::default()
    };
    let page = q::events(svc.read_model(), query, 1).await?;
    let Some(row) = page.rows.first() else {
        return Err(ApiError::NotFound(format!("no event {event_id}")));
    };
    Ok(HttpResponse::Ok()
        .content_type("application/ld+json")
        .insert_header((
            header::LINK,
            format!("<{}>; rel=\"receipt\"", links.receipt_url(&row.record_id)),
        ))
        .json(query_document(&page.rows)?))
}

/// The event types of the events the caller may read.
#[utoipa::path(
    get, path = "/eventTypes", tag = "provenance",
    responses((status = 200, body = Vec<String>), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = []))
)]
pub async fn event_types(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let types = q::event_types(svc.read_model(), caller.reads_as()).await?;
    Ok(HttpResponse::Ok().json(types))
}

/// The CBV 2.0 standard business steps, as bare words.
#[utoipa::path(
    get, path = "/bizSteps", tag = "provenance",
    responses((status = 200, body = Vec<String>), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = []))
)]
pub async fn biz_steps(_caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(standard_biz_steps())
}

/// The CBV 2.0 standard dispositions, as bare words.
#[utoipa::path(
    get, path = "/dispositions", tag = "provenance",
    responses((status = 200, body = Vec<String>), (status = 401, body = veritrace_kernel::Problem)),
    security(("api_key" = []))
)]
pub async fn dispositions(_caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(standard_dispositions())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use veritrace_kernel::resource;
    cfg.service(resource!("/events", get => events, post => super::capture::capture_event))
        .service(resource!("/events/{eventID}", get => event))
        .service(resource!("/eventTypes", get => event_types))
        .service(resource!("/epcs/{epc}/events", get => epc_events))
        .service(resource!("/bizSteps", get => biz_steps))
        .service(resource!("/dispositions", get => dispositions));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<PagedQuery, Vec<FieldError>> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
        parse_event_query(&pairs)
    }

    #[test]
    fn parameters_become_filters() {
        let read = parse(
            "eventType=ObjectEvent|AggregationEvent&EQ_bizStep=urn:epcglobal:cbv:bizstep:shipping|receiving\
             &GE_eventTime=2022-06-30T00:15:47.5-05:00&MATCH_epc=urn:epc:idpat:sgtin:0614141.*.*\
             &perPage=2&nextPageToken=17",
        )
        .unwrap();
        assert_eq!(read.per_page, 2);
        assert_eq!(read.query.after, Some(17));
        assert_eq!(read.query.event_types, ["ObjectEvent", "AggregationEvent"]);
        assert_eq!(read.query.biz_steps, ["shipping", "receiving"]);
        assert_eq!(
            read.query.ge_event_time.as_deref(),
            Some("2022-06-30T05:15:47.500Z")
        );
        assert_eq!(
            read.query.identifiers,
            [IdentifierFilter {
                roles: vec!["epc", "child"],
                identifiers: vec![IdentifierMatch::Prefix("urn:epc:id:sgtin:0614141.".into())],
            }]
        );
        assert_eq!(parse("").unwrap().per_page, DEFAULT_PER_PAGE);
    }

    #[test]
    fn bad_parameters_are_each_named() {
        for (query, field, says) in [
            ("eventType=Thing", "eventType", "not an event type"),
            ("EQ_action=LOOK", "EQ_action", "not an action"),
            ("GE_eventTime=2022-06-30T00:15:47", "GE_eventTime", "offset"),
            ("perPage=0", "perPage", "1 to 1000"),
            ("perPage=1001", "perPage", "1 to 1000"),
            ("nextPageToken=x", "nextPageToken", "page token"),
            ("EQ_bizStep=a||b", "EQ_bizStep", "empty value"),
            (
                "MATCH_epc=urn:epc:idpat:sgtin:1.*.5",
                "MATCH_epc",
                "pattern",
            ),
            ("EQ_color=red", "EQ_color", "not a query parameter"),
            (
                "eventType=ObjectEvent&eventType=ObjectEvent",
                "eventType",
                "more than once",
            ),
        ] {
            let errors = parse(query).unwrap_err();
            assert_eq!(errors.len(), 1, "{query}: {errors:?}");
            assert_eq!(errors[0].field, field, "{query}");
            assert!(
                errors[0].message.contains(says),
                "{query}: {}",
                errors[0].message
            );
        }
    }
}
