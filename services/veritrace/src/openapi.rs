//! The OpenAPI document (generated from the handlers by utoipa) and the vendored Swagger UI.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use veritrace_kernel::strict_json;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Veritrace",
        description = "Records business facts as events, anchors them on a consortium chain, and serves receipts anyone can verify offline."
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
    doc.merge(veritrace_kernel::auth::IdentityApi::openapi());
    for domain in crate::domains::DOMAINS {
        doc.merge(domain.openapi());
    }
    doc.merge(veritrace_anchor::http::AnchorApi::openapi());
    doc.merge(crate::explorer::ExplorerApi::openapi());
    doc
}

/// The document as committed under `openapi/veritrace.json` and served at `/openapi.json`:
/// [`document`] with what the HTTP edge does for every operation ([`edge_responses`]) and the
/// kernel's schema of an exactly kept JSON value.
pub fn document_json() -> String {
    let mut doc = serde_json::to_value(document()).unwrap_or_default();
    edge_responses(&mut doc);
    doc["components"]["schemas"][strict_json::VALUE_SCHEMA_NAME] = strict_json::value_schema();
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// Answers the edge gives before a handler runs, added to every operation they apply to, each
/// a problem document: so a domain documents only what its handlers decide. Problem bodies
/// are served as `application/problem+json`, whatever an annotation says.
fn edge_responses(doc: &mut serde_json::Value) {
    const PROBLEM: &str = "#/components/schemas/Problem";
    let problem = |description: &str| {
        serde_json::json!({
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": PROBLEM}}}
        })
    };
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (method, operation) in paths
        .values_mut()
        .filter_map(|p| p.as_object_mut())
        .flat_map(|p| p.iter_mut())
    {
        let is_post = method == "post";
        if is_post && let Some(op) = operation.as_object_mut() {
            let parameters = op
                .entry("parameters")
                .or_insert_with(|| serde_json::json!([]));
            if let Some(parameters) = parameters.as_array_mut() {
                parameters.push(idempotency_key_parameter());
            }
        }
        let has_body = operation.get("requestBody").is_some();
        let has_parameters = operation
            .get("parameters")
            .and_then(|p| p.as_array())
            .is_some_and(|p| !p.is_empty());
        let secured = operation
            .get("security")
            .and_then(|s| s.as_array())
            .is_some_and(|s| !s.is_empty());
        let Some(responses) = operation
            .get_mut("responses")
            .and_then(|r| r.as_object_mut())
        else {
            continue;
        };
        for response in responses.values_mut() {
            let Some(content) = response.get_mut("content").and_then(|c| c.as_object_mut()) else {
                continue;
            };
            let is_problem = content
                .get("application/json")
                .is_some_and(|c| c["schema"]["$ref"] == PROBLEM);
            if is_problem && let Some(json) = content.remove("application/json") {
                content.insert("application/problem+json".into(), json);
            }
        }
        let mut add = |status: &str, description: &str| {
            responses
                .entry(status)
                .or_insert_with(|| problem(description));
        };
        add(
            "429",
            "This client holds more open connections than `http.max_connections_per_client`",
        );
        if has_body {
            add("400", "The body is not JSON");
            add(
                "408",
                "The body did not arrive within `http.body_timeout_ms`",
            );
            add("413", "The body is larger than `http.max_body_bytes`");
            add("415", "The body is not `application/json`");
            add("422", "A field is invalid; `errors` names it");
        }
        if has_parameters {
            add("422", "A parameter is invalid; `errors` names it");
        }
        if is_post {
            add(
                "409",
                "The first request with this `Idempotency-Key` has not been answered yet",
            );
            add(
                "422",
                "This `Idempotency-Key` was used with another request (method, path or body)",
            );
        }
        if secured {
            add("401", "No API key, or not a valid one");
            add(
                "503",
                "The identity store (or another store) cannot be reached; retry",
            );
        }
    }
}

/// The `Idempotency-Key` header every POST accepts ([`veritrace_kernel::idempotency`]).
fn idempotency_key_parameter() -> serde_json::Value {
    use veritrace_kernel::idempotency::{HEADER, MAX_KEY_BYTES, REPLAYED_HEADER};
    serde_json::json!({
        "name": HEADER,
        "in": "header",
        "required": false,
        "description": format!(
            "Makes a retry safe: a request sent again with the same key, method, path and body \
             gets the first successful answer (with `{REPLAYED_HEADER}: true`) and records \
             nothing new. Keys are per organisation and kept for \
             `http.idempotency_retention_hours` (at least 24 h)."
        ),
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_KEY_BYTES,
            "pattern": "^[!#-~]+$",
        },
    })
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
