//! Receipt endpoints.

use crate::AnchorService;
use crate::store::LeafRecord;
use actix_web::{HttpResponse, web};
use chain_core::Digest;
use veritrace_kernel::auth::Caller;
use veritrace_kernel::{ApiError, resource};

impl From<crate::AnchorError> for ApiError {
    fn from(e: crate::AnchorError) -> Self {
        match e {
            crate::AnchorError::Store(crate::store::StoreError::Unavailable(_)) => {
                ApiError::unavailable("the anchoring store", e)
            }
            crate::AnchorError::Chain(chain_core::ChainError::Unavailable(_)) => {
                ApiError::unavailable("the chain", e)
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// A receipt is for whoever may read its event, as the recording service said (its access
/// list; courts where it names them), and for the admin and auditors: the envelope it carries
/// may hold confidential payload.
/// Anyone else gets the same 404 as for an unknown event.
async fn respond(
    anchor: &AnchorService,
    caller: &Caller,
    leaf: Option<LeafRecord>,
    what: String,
) -> Result<HttpResponse, ApiError> {
    let not_found = || {
        ApiError::NotFound(format!(
            "no event {what} has reached the anchoring service; events arrive within moments of being recorded"
        ))
    };
    let leaf = leaf.ok_or_else(not_found)?;
    if !caller.may_read(&leaf.readers) {
        return Err(not_found());
    }
    let receipt = anchor.receipt(&leaf).await?;
    Ok(HttpResponse::Ok().json(receipt))
}

/// The receipt of an event: `pending` until its batch is anchored in a final block, then
/// complete and verifiable offline with the chain's genesis file.
#[utoipa::path(
    get, path = "/receipts/{event_id}", tag = "receipts",
    params(("event_id" = uuid::Uuid, Path, description = "The event's id (UUID)")),
    responses(
        (status = 200, description = "The receipt (see schemas/receipt.schema.json)", body = Object),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem),
        (status = 422, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn receipt_by_event(
    anchor: web::Data<AnchorService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let event_id = path.into_inner();
    let id = uuid::Uuid::parse_str(&event_id)
        .map_err(|_| ApiError::field("event_id", "must be a UUID"))?;
    let leaf = anchor
        .store
        .leaf_by_event(&id.to_string())
        .await
        .map_err(crate::AnchorError::from)?;
    respond(&anchor, &caller, leaf, id.to_string()).await
}

/// The receipt of the event with this event digest (`H(JCS(envelope))`).
#[utoipa::path(
    get, path = "/receipts/by-digest/{event_digest}", tag = "receipts",
    params(("event_digest" = String, Path, pattern = "^[0-9a-f]{64}$", description = "64 lowercase hex characters")),
    responses(
        (status = 200, description = "The receipt", body = Object),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem),
        (status = 422, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn receipt_by_digest(
    anchor: web::Data<AnchorService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let text = path.into_inner();
    let digest: Digest = text
        .parse()
        .map_err(|e: chain_core::hash::DigestParseError| {
            ApiError::field("event_digest", e.to_string())
        })?;
    let leaf = anchor
        .store
        .leaf_by_digest(&digest)
        .await
        .map_err(crate::AnchorError::from)?;
    respond(&anchor, &caller, leaf, format!("with digest {digest}")).await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource!("/receipts/by-digest/{event_digest}", get => receipt_by_digest))
        .service(resource!("/receipts/{event_id}", get => receipt_by_event));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(receipt_by_event, receipt_by_digest))]
pub struct AnchorApi;
