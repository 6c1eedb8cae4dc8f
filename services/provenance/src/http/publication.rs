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

/// The GTIN of the path, as a GTIN-14; a malformed one is a 422 naming it.
fn gtin_of(path: &str) -> Result<String, ApiError> {
    parse_gtin(path).map_err(|e| ApiError::field("gtin", e.to_string()))
}

/// Publish a product's history.
///
/// Makes the page behind the product's Digital Link (`/01/{gtin}`, with or without lot and
/// serial) public: it shows the events of the product's history that the caller may read,
/// each with its receipt verified. The first organisation to publish a GTIN is its brand
/// owner here; another gets 403. Publishing again changes nothing.
#[utoipa::path(
    put, path = "/products/{gtin}/publication", tag = "provenance",
    params(("gtin" = String, Path, description = "A GTIN-8, -12, -13 or -14 with its check digit", pattern = "^[0-9]{8,14}$")),
    responses(
        (status = 200, body = ProductPublication),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 403, body = veritrace_kernel::Problem, description = "Another organisation owns the GTIN, or the key records nothing"),
        (status = 409, body = veritrace_kernel::Problem),
        (status = 422, body = veritrace_kernel::Problem, description = "Not a GTIN"),
    ),
    security(("api_key" = []))
)]
pub async fn publish(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let gtin = gtin_of(&path)?;
    let state = svc.publish(&caller, &gtin).await?;
    Ok(HttpResponse::Ok().json(view(&gtin, state)?))
}

/// Withdraw a product's history from public view.
///
/// The page answers as for an unknown product again. Only the brand owner may; a GTIN not
/// published is a 409.
#[utoipa::path(
    delete, path = "/products/{gtin}/publication", tag = "provenance",
    params(("gtin" = String, Path, description = "A GTIN-8, -12, -13 or -14 with its check digit", pattern = "^[0-9]{8,14}$")),
    responses(
        (status = 200, body = ProductPublication),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 403, body = veritrace_kernel::Problem, description = "Another organisation owns the GTIN, or the key records nothing"),
        (status = 409, body = veritrace_kernel::Problem, description = "Not published"),
        (status = 422, body = veritrace_kernel::Problem, description = "Not a GTIN"),
    ),
    security(("api_key" = []))
)]
pub async fn withdraw(
    svc: web::Data<ProvenanceService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let gtin = gtin_of(&path)?;
    let state = svc.withdraw(&caller, &gtin).await?;
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
        (status = 404, body = veritrace_kernel::Problem, description = "Never published"),
        (status = 422, body = veritrace_kernel::Problem, description = "Not a GTIN"),
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
        get => publication, put => publish, delete => withdraw));
}
