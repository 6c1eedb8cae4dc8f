//! The OpenAPI document (generated from the handlers by utoipa) and the vendored Swagger UI.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Veritrace",
        description = "Records business facts as events, anchors them on a consortium chain, and serves receipts anyone can verify offline."
    ),
    paths(
        veritrace_kernel::auth::create_organisation,
        veritrace_kernel::auth::me,
    ),
    modifiers(&BearerAuth)
)]
struct PlatformApi;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole API's document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = PlatformApi::openapi();
    doc.merge(veritrace_evidence::http::EvidenceApi::openapi());
    doc.merge(veritrace_anchor::http::AnchorApi::openapi());
    doc.merge(crate::explorer::ExplorerApi::openapi());
    doc
}

/// The document as committed under `openapi/veritrace.json`.
pub fn document_json() -> String {
    document().to_pretty_json().unwrap_or_default() + "\n"
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document_json())
}

macro_rules! asset {
    ($file:literal, $ctype:literal) => {
        || async {
            HttpResponse::Ok()
                .content_type($ctype)
                .insert_header(("Cache-Control", "public, max-age=3600"))
                .body(&include_bytes!(concat!("../../../frontend/static/swagger-ui/", $file))[..])
        }
    };
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json))
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header(("Location", "/docs/"))
                    .finish()
            }),
        )
        .route(
            "/docs/",
            web::get().to(asset!("index.html", "text/html; charset=utf-8")),
        )
        .route(
            "/docs/init.js",
            web::get().to(asset!("init.js", "text/javascript")),
        )
        .route(
            "/docs/swagger-ui.css",
            web::get().to(asset!("swagger-ui.css", "text/css")),
        )
        .route(
            "/docs/swagger-ui-bundle.js",
            web::get().to(asset!("swagger-ui-bundle.js", "text/javascript")),
        );
}
