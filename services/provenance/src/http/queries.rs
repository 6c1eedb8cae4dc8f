//! Named queries, the EPCIS 2.0 REST binding's `/queries`: a query kept under a name (per
//! organisation) and run at `/queries/{queryName}/events`. Their subscriptions are
//! [`super::subscriptions`]'.

use super::query::{answer_page, pairs_of, parse_event_query};
use crate::ProvenanceService;
use crate::domain::subscription::{check_query_name, query_pairs};
use crate::subscriptions::store::NamedQuery;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veritrace_kernel::auth::Caller;
use veritrace_kernel::envelope::now_rfc3339;
use veritrace_kernel::http::ValidJson;
use veritrace_kernel::{ApiError, FieldError};

/// A named query: a SimpleEventQuery's parameters under a name.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryDefinition {
    /// 1 to 64 letters, digits, `_`, `-` or `.`; unique among the caller's organisation's.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub name: String,
    /// The parameters of `GET /events`, each a string (a list pipe-delimited) or an array of
    /// strings, e.g. `{"eventType": ["ObjectEvent"], "EQ_bizStep": ["shipping", "receiving"]}`.
    #[schema(schema_with = query_filters_schema)]
    pub query: serde_json::Value,
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("your organisation has no query named {name:?}"))
}

/// The filters of a named query, checked as `GET /events` checks its parameters.
fn check_query(query: &serde_json::Value) -> Result<(), ApiError> {
    let pairs = query_pairs(query).map_err(|m| ApiError::field("query", m))?;
    if let Some((name, _)) = pairs
        .iter()
        .find(|(n, _)| n == "perPage" || n == "nextPageToken")
    {
        return Err(ApiError::field(
            format!("query.{name}"),
            "belongs to a request for a page, not to a query",
        ));
    }
    parse_event_query(&pairs).map(|_| ()).map_err(|errors| {
        ApiError::Validation(
            errors
                .into_iter()
                .map(|e| FieldError::new(format!("query.{}", e.field), e.message))
                .collect(),
        )
    })
}

/// Create a named query.
///
/// Keeps the query under its name for the caller's organisation; `Location` names it.
#[utoipa::path(
    post, path = "/queries", tag = "provenance",
    request_body = QueryDefinition,
    responses(
        (status = 201, body = QueryDefinition, headers(("Location" = String))),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 409, body = veritrace_kernel::Problem, description = "The organisation has a query of that name"),
        (status = 422, body = veritrace_kernel::Problem, description = "A bad name or parameter, named"),
    ),
    security(("api_key" = []))
)]
pub async fn create_query(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    ValidJson(body): ValidJson<QueryDefinition>,
) -> Result<HttpResponse, ApiError> {
    check_query_name(&body.name).map_err(|m| ApiError::field("name", m))?;
    check_query(&body.query)?;
    let named = NamedQuery {
        name: body.name,
        query: body.query,
        created_at: now_rfc3339(),
    };
    let store = &svc.subscriptions.store;
    if !store
        .create_query(&caller.organisation_id, &named)
        .await
        .map_err(unavailable)?
    {
        return Err(ApiError::Duplicate(format!(
            "your organisation has a query named {:?} already",
            named.name
        )));
    }
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/queries/{}", named.name)))
        .json(QueryDefinition {
            name: named.name,
            query: named.query,
        }))
}

pub(crate) fn unavailable(e: sqlx::Error) -> ApiError {
    ApiError::unavailable("the subscriptions store", e)
}

/// The caller's organisation's named queries.
#[utoipa::path(
    get, path = "/queries", tag = "provenance",
    responses(
        (status = 200, body = Vec<QueryDefinition>),
        (status = 401, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn list_queries(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let queries = svc
        .subscriptions
        .store
        .queries(&caller.organisation_id)
        .await
        .map_err(unavailable)?;
    let listed: Vec<QueryDefinition> = queries
        .into_iter()
        .map(|q| QueryDefinition {
            name: q.name,
            query: q.query,
        })
        .collect();
    Ok(HttpResponse::Ok().json(listed))
}

pub(crate) async fn named(
    svc: &ProvenanceService,
    caller: &Caller,
    name: &str,
) -> Result<NamedQuery, ApiError> {
    svc.subscriptions
        .store
        .query(&caller.organisation_id, name)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| not_found(name))
}

/// A named query.
#[utoipa::path(
    get, path = "/queries/{queryName}", tag = "provenance",
    params(("queryName" = String, Path)),
    responses(
        (status = 200, body = QueryDefinition),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn get_query(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let q = named(&svc, &caller, &path).await?;
    Ok(HttpResponse::Ok().json(QueryDefinition {
        name: q.name,
        query: q.query,
    }))
}

/// Delete a named query, and its subscriptions with it.
#[utoipa::path(
    delete, path = "/queries/{queryName}", tag = "provenance",
    params(("queryName" = String, Path)),
    responses(
        (status = 204, description = "Deleted, its subscriptions ended"),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn delete_query(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let org = &caller.organisation_id;
    let subscriptions = &svc.subscriptions;
    let ending = subscriptions
        .store
        .subscriptions(Some(org), Some(&path))
        .await
        .map_err(unavailable)?;
    if !subscriptions
        .store
        .delete_query(org, &path)
        .await
        .map_err(unavailable)?
    {
        return Err(not_found(&path));
    }
    for s in ending {
        subscriptions.unschedule(&s.subscription_id).await;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Run a named query.
///
/// Its events, as `GET /events` answers them with the query's parameters; of this request's
/// parameters only `perPage` and `nextPageToken` count (the page's `Link: rel="next"` repeats
/// the query's own).
#[utoipa::path(
    get, path = "/queries/{queryName}/events", tag = "provenance",
    params(("queryName" = String, Path),
        ("perPage" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("nextPageToken" = Option<String>, Query, pattern = "^[0-9]{1,18}$")),
    responses(
        (status = 200, body = Object, content_type = "application/ld+json", description = "An EPCISQueryDocument"),
        (status = 400, body = veritrace_kernel::Problem),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn query_events(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let q = named(&svc, &caller, &path).await?;
    let mut pairs = query_pairs(&q.query).map_err(ApiError::Internal)?;
    pairs.extend(
        pairs_of(&req)?
            .into_iter()
            .filter(|(n, _)| n == "perPage" || n == "nextPageToken"),
    );
    let paged = parse_event_query(&pairs).map_err(ApiError::QueryParameters)?;
    answer_page(&svc, &caller, &req, &pairs, paged).await
}

/// A character of a query value or a token: text (no control characters) but `|`.
const VALUE_CHAR: &str = r"[^|\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]";

/// What a named query's `query` takes: the parameters of `GET /events` (not `perPage` nor
/// `nextPageToken`), each as that parameter takes it.
pub fn query_filters_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    serde_json::from_value(query_filters_json()).unwrap_or_default()
}

fn query_filters_json() -> serde_json::Value {
    use serde_json::json;
    let list = |item: &str| {
        json!({"oneOf": [
            {"type": "string", "pattern": format!("^{item}(?:\\|{item})*$")},
            {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": format!("^{item}$")}},
        ]})
    };
    let text = format!("{VALUE_CHAR}+");
    let types =
        "(?:ObjectEvent|AggregationEvent|TransactionEvent|TransformationEvent|AssociationEvent)";
    let mut properties = serde_json::Map::new();
    properties.insert("eventType".into(), list(types));
    properties.insert("EQ_action".into(), list("(?:ADD|OBSERVE|DELETE)"));
    for time in [
        "GE_eventTime",
        "LT_eventTime",
        "GE_recordTime",
        "LT_recordTime",
    ] {
        properties.insert(
            time.into(),
            json!({"type": "string", "format": "date-time"}),
        );
    }
    for name in super::query::supported_parameters() {
        if !properties.contains_key(name) && name != "perPage" && name != "nextPageToken" {
            properties.insert(name.into(), list(&text));
        }
    }
    json!({"type": "object", "additionalProperties": false, "properties": properties})
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use veritrace_kernel::resource;
    cfg.service(resource!("/queries", get => list_queries, post => create_query))
        .service(resource!("/queries/{queryName}", get => get_query, delete => delete_query))
        .service(resource!("/queries/{queryName}/events", get => query_events));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written schema reads as an OpenAPI schema, nothing lost.
    #[test]
    fn the_query_filters_schema_reads_as_a_schema() {
        let json = query_filters_json();
        let read: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> =
            serde_json::from_value(json.clone()).expect("a schema");
        assert_eq!(serde_json::to_value(read).expect("serialises"), json);
    }
}
