//! `/products/{gtin}/publication`: a brand owner makes its product's history public on the
//! page behind the product's Digital Link, or takes it back.

use crate::ProvenanceService;
use crate::domain::publication::Publication;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veritrace_epcis::identifiers::parse_gtin;
use veritrace_kernel::ApiError;
use veritrace_kernel::auth::Caller;
use veritrace_kernel::http::ValidJson;

/// Whether a GTIN's history is public, and whose events it shows.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductPublication {
    /// The GTIN-14.
    pub gtin: String,
    /// Whether its page is public.
    pub published: bool,
    /// The organisation that published it first: the page shows the events it may read.
    pub brand_owner: String,
    /// When it was last published or withdrawn.
    pub changed_at: String,
    /// Where the public page is.
    pub page_url: String,
}

fn view(gtin: &str, state: Publication) -> Result<ProductPublication, ApiError> {
    Ok(ProductPublication {
        gtin: gtin.to_owned(),
        published: state.published,
        brand_owner: state
            .owner
            .ok_or_else(|| ApiError::NotFound(format!("GTIN {gtin} was never published")))?,
        changed_at: state.changed_at.unwrap_or_default(),
        page_url: format!("/01/{gtin}"),
    })
}

/// The GTIN of the path, as a GTIN-14; a malformed one names no product (404, saying why),
/// as on the Digital Link.
fn gtin_of(path: &str) -> Result<String, ApiError> {
    parse_gtin(path)
        .map_err(|e| ApiError::NotFound(format!("no product has the key {path:?}: {e}")))
}

/// Whether a product's page is to be public.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicationRequest {
    /// `true` publishes, `false` withdraws.
    pub published: bool,
}

/// Publish a product's history, or withdraw it.
///
/// `{"published": true}` makes the page behind the product's Digital Link (`/01/{gtin}`, with
/// or without lot and serial) public: it shows the events of the product's history that the
/// caller may read, each with its receipt verified. Only an organisation that captured events
/// naming the GTIN may publish it; the first to do so is its brand owner here, and another
/// gets 403. `{"published": false}` withdraws it: the page answers as for an unknown product
/// again. Asking for the state it is in changes nothing, except withdrawing a GTIN never
/// published (409).
#[utoipa::path(
    put, path = "/products/{gtin}/publication", tag = "provenance",
    params(("gtin" = String, Path, description = "A GTIN-8, -12, -13 or -14 with its check digit", pattern = "^[0-9]{8,14}$")),
    request_body = PublicationRequest,
    responses(
        (status = 200, body = ProductPublication),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 403, body = veritrace_kernel::Problem, description = "Another organisation owns the GTIN, the caller captured nothing naming it, or the key records nothing"),
        (status = 404, body = veritrace_kernel::Problem, description = "Not a GTIN (its length, digits or check digit)"),
        (status = 409, body = veritrace_kernel::Problem, description = "Withdrawing a GTIN never published"),
        (status = 422, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn change(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    path: web::Path<String>,
    ValidJson(body): ValidJson<PublicationRequest>,
) -> Result<HttpResponse, ApiError> {
    let gtin = gtin_of(&path)?;
    let state = if body.published {
        svc.publish(&caller, &gtin).await?
    } else {
        svc.withdraw(&caller, &gtin).await?
    };
    Ok(HttpResponse::Ok().json(view(&gtin, state)?))
}

/// Whether a product's history is public.
///
/// Public, like the page itself. A GTIN never published is a 404.
#[utoipa::path(
    get, path = "/products/{gtin}/publication", tag = "provenance",
    params(("gtin" = String, Path, description = "A GTIN-8, -12, -13 or -14 with its check digit", pattern = "^[0-9]{8,14}$")),
    responses(
        (status = 200, body = ProductPublication),
        (status = 404, body = veritrace_kernel::Problem, description = "Never published, or not a GTIN"),
    )
)]
pub async fn publication(
    svc: web::Data<ProvenanceService>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let gtin = gtin_of(&path)?;
    let state = svc.publication(&gtin).await?;
    Ok(HttpResponse::Ok().json(view(&gtin, state)?))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use veritrace_kernel::resource;
    cfg.service(resource!("/products/{gtin}/publication",
        get => publication, put => change));
}
