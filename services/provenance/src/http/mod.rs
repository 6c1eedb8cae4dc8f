//! The EPCIS 2.0 REST binding, as far as the provenance domain serves it: capture
//! ([`capture`]) and query ([`query`]).

pub mod capture;
pub mod journey;
pub mod page;
pub mod product;
pub mod publication;
pub mod queries;
pub mod query;
pub mod resources;
pub mod subscriptions;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    capture::configure(cfg);
    query::configure(cfg);
    resources::configure(cfg);
    product::configure(cfg);
    publication::configure(cfg);
    queries::configure(cfg);
    subscriptions::configure(cfg);
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        capture::capture,
        capture::job,
        capture::jobs,
        capture::capture_event,
        query::events,
        query::event,
        query::event_types,
        query::epc_events,
        query::biz_steps,
        query::dispositions,
        resources::event_type,
        resources::event_type_events,
        resources::epcs,
        resources::epc,
        resources::biz_step,
        resources::biz_step_events,
        resources::biz_locations,
        resources::biz_location,
        resources::biz_location_events,
        resources::read_points,
        resources::read_point,
        resources::read_point_events,
        resources::disposition,
        resources::disposition_events,
        resources::forget_page_token,
        product::resolve,
        product::traceability,
        publication::publication,
        publication::change,
        queries::create_query,
        queries::list_queries,
        queries::get_query,
        queries::delete_query,
        queries::query_events,
        subscriptions::subscribe,
        subscriptions::list_subscriptions,
        subscriptions::get_subscription,
        subscriptions::unsubscribe,
    ),
    components(schemas(
        capture::CaptureJob,
        capture::CaptureJobError,
        product::LabelFormat,
        publication::ProductPublication,
        publication::PublicationRequest,
        queries::QueryDefinition,
        subscriptions::SubscriptionRequest,
        ScheduleRequest,
        subscriptions::SubscriptionView,
        crate::domain::subscription::Schedule,
        crate::domain::ErrorBehaviour
    ))
)]
pub struct ProvenanceApi;

/// A schedule as a subscription request states it ([`crate::domain::subscription::schedule_request_schema`]).
pub struct ScheduleRequest;

impl utoipa::PartialSchema for ScheduleRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        serde_json::from_value(crate::domain::subscription::schedule_request_schema())
            .unwrap_or_default()
    }
}

impl utoipa::ToSchema for ScheduleRequest {}
