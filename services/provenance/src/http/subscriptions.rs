//! Subscriptions to named queries, the binding's `/queries/{queryName}/subscriptions`:
//! webhooks fed as events are captured (`stream`) or on a `schedule`. The delivery itself is
//! [`crate::subscriptions`]'.

use super::queries::{named, unavailable};
use crate::ProvenanceService;
use crate::domain::subscription::{Schedule, check_dest};
use crate::subscriptions::Subscriptions;
use crate::subscriptions::store::Subscription;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veritrace_kernel::ApiError;
use veritrace_kernel::auth::Caller;
use veritrace_kernel::envelope::now_rfc3339;
use veritrace_kernel::http::ValidJson;

/// A subscription request: a webhook `dest`, and either `stream: true` (each matching event
/// as it is captured) or a `schedule`. Its schema is [`subscription_request_schema`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionRequest {
    /// The webhook: an `http://` or `https://` URL that takes `POST`s of EPCISQueryDocuments.
    pub dest: String,
    /// A secret of the subscriber's: each delivery carries `GS1-Signature: sha256=<hex>`,
    /// the HMAC-SHA256 of its body under this key. Never shown again.
    pub signature_token: Option<String>,
    /// Deliver each matching event as it is captured.
    pub stream: Option<bool>,
    /// Deliver on this schedule (cron fields) what matched since the last delivery.
    pub schedule: Option<Schedule>,
    /// On a schedule, call even when nothing new matched.
    pub report_if_empty: Option<bool>,
    /// Only events recorded at or after this time; default: now.
    pub initial_record_time: Option<String>,
}

impl utoipa::PartialSchema for SubscriptionRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        // A fixed document: that it reads as a schema is held by the OpenAPI tests.
        serde_json::from_value(subscription_request_schema()).unwrap_or_default()
    }
}

impl ToSchema for SubscriptionRequest {}

/// [`SubscriptionRequest`]'s schema: a `stream` or a `schedule`, never both nor neither.
pub fn subscription_request_schema() -> serde_json::Value {
    use serde_json::json;
    let schedule = json!({"$ref": "#/components/schemas/ScheduleRequest"});
    // allOf: the members, then the choice between them (a schema object holds one or the other).
    json!({"allOf": [
        {
            "type": "object",
            "required": ["dest"],
            "additionalProperties": false,
            "properties": {
                "dest": {"type": "string", "maxLength": 2048,
                         "pattern": r"^https?://[^\s/?#\x00-\x1F\x7F-\x9F\uFEFF]+[^\s\x00-\x1F\x7F-\x9F\uFEFF]*$"},
                "signatureToken": {"type": ["string", "null"], "pattern": r"^[\x21-\x7E]{1,256}$"},
                "initialRecordTime": {"type": ["string", "null"], "format": "date-time"},
                "reportIfEmpty": {"type": ["boolean", "null"]},
                "stream": {"type": ["boolean", "null"]},
                "schedule": {"oneOf": [schedule, {"type": "null"}]},
            },
        },
        {"oneOf": [
            {"type": "object", "required": ["stream"],
             "properties": {"stream": {"type": "boolean", "enum": [true]}, "schedule": {"type": "null"}}},
            {"type": "object", "required": ["schedule"],
             "properties": {"schedule": schedule, "stream": {"type": ["boolean", "null"], "enum": [false, null]}}},
        ]},
    ]})
}

/// A subscription as the API shows it (without its token).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    #[serde(rename = "subscriptionID")]
    pub subscription_id: String,
    pub query_name: String,
    pub dest: String,
    pub stream: bool,
    pub schedule: Option<Schedule>,
    pub report_if_empty: bool,
    pub initial_record_time: String,
    pub created_at: String,
    /// The last time the subscriber acknowledged a delivery.
    pub last_notified_at: Option<String>,
    /// Failed deliveries in a row (each tried again later and later).
    pub failed_attempts: i64,
}

fn view(s: Subscription) -> SubscriptionView {
    SubscriptionView {
        schedule: s
            .schedule_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok()),
        subscription_id: s.subscription_id,
        query_name: s.query_name,
        dest: s.dest,
        stream: s.stream,
        report_if_empty: s.report_if_empty,
        initial_record_time: s.initial_record_time,
        created_at: s.created_at,
        last_notified_at: s.last_notified_at,
        failed_attempts: s.attempts,
    }
}

/// What a subscription request asks for: its schedule as cron (None for a stream), and its
/// initial record time in the read model's notation.
fn read_request(body: &SubscriptionRequest) -> Result<(Option<String>, String), ApiError> {
    check_dest(&body.dest).map_err(|m| ApiError::field("dest", m))?;
    if let Some(token) = &body.signature_token
        && !((1..=256).contains(&token.len()) && token.bytes().all(|b| (0x21..=0x7E).contains(&b)))
    {
        return Err(ApiError::field(
            "signatureToken",
            "must be 1 to 256 visible ASCII characters",
        ));
    }
    let cron = match (body.stream, &body.schedule) {
        (Some(true), None) => None,
        (None | Some(false), Some(schedule)) => {
            let cron = schedule
                .cron()
                .map_err(|m| ApiError::field("schedule", m))?;
            Subscriptions::check_schedule(&cron).map_err(|m| ApiError::field("schedule", m))?;
            Some(cron)
        }
        (Some(true), Some(_)) => {
            return Err(ApiError::field(
                "stream",
                "a subscription streams or has a schedule, not both",
            ));
        }
        (None | Some(false), None) => {
            return Err(ApiError::field(
                "stream",
                "set `stream: true`, or give a `schedule`",
            ));
        }
    };
    let initial = match &body.initial_record_time {
        None => now_rfc3339(),
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| veritrace_kernel::envelope::envelope_time(t.with_timezone(&chrono::Utc)))
            .map_err(|_| {
                ApiError::field(
                    "initialRecordTime",
                    "must be an RFC 3339 date-time with its offset",
                )
            })?,
    };
    Ok((cron, initial))
}

/// Subscribe to a named query.
///
/// Its matching events are `POST`ed to `dest` as EPCISQueryDocuments (`queryResults` naming
/// the query and the subscription), at most 100 a delivery, in capture order, each event
/// once: as they are captured (`stream: true`) or on a `schedule`. A delivery is acknowledged
/// by any 2xx; anything else, or no answer within 10 s, is tried again after 1 s, 2 s, 4 s, …
/// (at most a minute), the later events waiting behind it. Each delivery carries
/// `Veritrace-Delivery` (its id: the same if it is ever sent again) and, with a
/// `signatureToken`, `GS1-Signature`.
#[utoipa::path(
    post, path = "/queries/{queryName}/subscriptions", tag = "provenance",
    params(("queryName" = String, Path)),
    request_body = SubscriptionRequest,
    responses(
        (status = 201, body = SubscriptionView, headers(("Location" = String))),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem),
        (status = 422, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn subscribe(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    path: web::Path<String>,
    ValidJson(body): ValidJson<SubscriptionRequest>,
) -> Result<HttpResponse, ApiError> {
    let query = named(&svc, &caller, &path).await?;
    let (cron, initial_record_time) = read_request(&body)?;
    let subscription = Subscription {
        subscription_id: uuid::Uuid::now_v7().to_string(),
        organisation: caller.organisation_id.clone(),
        query_name: query.name,
        readers: caller.reads_as(),
        dest: body.dest,
        signature_token: body.signature_token,
        stream: cron.is_none(),
        schedule_json: body
            .schedule
            .as_ref()
            .map(|s| serde_json::to_string(s).unwrap_or_default()),
        report_if_empty: body.report_if_empty.unwrap_or(false),
        initial_record_time,
        created_at: now_rfc3339(),
        delivered_through: 0,
        last_notified_at: None,
        attempts: 0,
        next_attempt_ms: 0,
        due: false,
    };
    let subscriptions = &svc.subscriptions;
    subscriptions
        .store
        .create_subscription(&subscription)
        .await
        .map_err(unavailable)?;
    if let Some(cron) = &cron {
        subscriptions
            .schedule(&subscription.subscription_id, cron)
            .await
            .map_err(ApiError::Internal)?;
    }
    subscriptions.wake.notify_one();
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!(
                "/queries/{}/subscriptions/{}",
                subscription.query_name, subscription.subscription_id
            ),
        ))
        .json(view(subscription)))
}

/// The subscriptions of a named query.
#[utoipa::path(
    get, path = "/queries/{queryName}/subscriptions", tag = "provenance",
    params(("queryName" = String, Path)),
    responses(
        (status = 200, body = Vec<SubscriptionView>),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn list_subscriptions(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = named(&svc, &caller, &path).await?;
    let all = svc
        .subscriptions
        .store
        .subscriptions(Some(&caller.organisation_id), Some(&query.name))
        .await
        .map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(all.into_iter().map(view).collect::<Vec<_>>()))
}

async fn one_subscription(
    svc: &ProvenanceService,
    caller: &Caller,
    query_name: &str,
    id: &str,
) -> Result<Subscription, ApiError> {
    svc.subscriptions
        .store
        .subscriptions(Some(&caller.organisation_id), Some(query_name))
        .await
        .map_err(unavailable)?
        .into_iter()
        .find(|s| s.subscription_id == id)
        .ok_or_else(|| ApiError::NotFound(format!("query {query_name:?} has no subscription {id}")))
}

/// One subscription.
#[utoipa::path(
    get, path = "/queries/{queryName}/subscriptions/{subscriptionID}", tag = "provenance",
    params(("queryName" = String, Path), ("subscriptionID" = String, Path)),
    responses(
        (status = 200, body = SubscriptionView),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn get_subscription(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (query_name, id) = path.into_inner();
    let s = one_subscription(&svc, &caller, &query_name, &id).await?;
    Ok(HttpResponse::Ok().json(view(s)))
}

/// Unsubscribe: no delivery starts after this answer.
#[utoipa::path(
    delete, path = "/queries/{queryName}/subscriptions/{subscriptionID}", tag = "provenance",
    params(("queryName" = String, Path), ("subscriptionID" = String, Path)),
    responses(
        (status = 204, description = "Unsubscribed"),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn unsubscribe(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (query_name, id) = path.into_inner();
    let subscriptions = &svc.subscriptions;
    if !subscriptions
        .store
        .delete_subscription(&caller.organisation_id, &query_name, &id)
        .await
        .map_err(unavailable)?
    {
        return Err(ApiError::NotFound(format!(
            "query {query_name:?} has no subscription {id}"
        )));
    }
    subscriptions.unschedule(&id).await;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use veritrace_kernel::resource;
    cfg.service(resource!("/queries/{queryName}/subscriptions",
            get => list_subscriptions, post => subscribe))
        .service(
            resource!("/queries/{queryName}/subscriptions/{subscriptionID}",
            get => get_subscription, delete => unsubscribe),
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written schemas read as OpenAPI schemas, nothing lost.
    #[test]
    fn the_request_schemas_read_as_schemas() {
        for (name, json) in [
            ("subscription", subscription_request_schema()),
            (
                "schedule",
                crate::domain::subscription::schedule_request_schema(),
            ),
        ] {
            let read: Result<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>, _> =
                serde_json::from_value(json.clone());
            let back = serde_json::to_value(read.unwrap_or_else(|e| panic!("{name}: {e}")))
                .expect("serialises");
            assert_eq!(back, json, "{name}: nothing lost in reading");
        }
    }
}
