//! A product by its GS1 key: the Digital Link resolver (`GET /01/{gtin}[/10/{lot}][/21/{serial}]`,
//! public, answering a linkset, RFC 9264) and the product's history across partners
//! (`GET /traceability`, what the caller may read).

use super::page;
use crate::ProvenanceService;
use crate::projections::trace::{self, Relation};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use veritrace_epcis::identifiers::{ProductKey, parse_gtin, percent_encode};
use veritrace_kernel::ApiError;
use veritrace_kernel::auth::Caller;
use veritrace_kernel::http::{ReceiptLinks, ValidQuery};
use veritrace_label::LabelCode;

/// The product a Digital Link path names: its GTIN (8, 12, 13 or 14 digits, check digit
/// verified), lot and serial as the path gives them (percent-decoded). A malformed key names
/// no product: 404, saying why.
pub fn product_of(
    gtin: &str,
    lot: Option<&str>,
    serial: Option<&str>,
) -> Result<ProductKey, ApiError> {
    let gtin = parse_gtin(gtin)
        .map_err(|e| ApiError::NotFound(format!("no product has the key {gtin:?}: {e}")))?;
    let mut link = format!("https://id.gs1.org/01/{gtin}");
    for (ai, value) in [("10", lot), ("21", serial)] {
        if let Some(v) = value {
            link.push_str(&format!("/{ai}/{}", percent_encode(v)));
        }
    }
    ProductKey::from_epc(&link)
        .ok_or_else(|| ApiError::NotFound(format!("{link} is not a GS1 Digital Link of a product")))
}

/// What a Digital Link request asks for besides the product.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ResolveQuery {
    /// One event's receipt from the product's public page (the id its page links), as a
    /// download.
    pub receipt: Option<uuid::Uuid>,
    /// The QR code of this Digital Link for a label.
    pub label: Option<LabelFormat>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LabelFormat {
    Svg,
    Png,
}

/// Resolve a GS1 Digital Link.
///
/// `GET /01/{gtin}`, `/01/{gtin}/10/{lot}`, `/01/{gtin}/21/{serial}` or
/// `/01/{gtin}/10/{lot}/21/{serial}`. Public. As the request asks:
/// - a browser (`Accept` preferring `text/html`) gets the product's page: its journey as a
///   timeline of the events its brand owner made public, each receipt verified by this
///   server; a product without a public history, or a malformed key, gets a friendly 404 page;
/// - `?receipt={id}`: the receipt of one event on that page, as a download;
/// - `?label=svg` or `?label=png`: the QR code of the Digital Link for a label;
/// - otherwise a linkset (`application/linkset+json`, RFC 9264) anchored at the product's
///   Digital Link on `id.gs1.org`, with its page (`gs1:pip`), its history
///   (`gs1:traceability`) and its EPCIS events (`gs1:epcis`); a product without a public
///   history, or a malformed key (a GTIN's length, digits or check digit), is a 404 saying why.
#[utoipa::path(
    get, path = "/01/{gtin}", tag = "provenance",
    params(("gtin" = String, Path, description = "A GTIN-8, -12, -13 or -14 with its check digit", pattern = "^[0-9]{8,14}$"), ResolveQuery),
    responses(
        (status = 200, description = "The product's linkset, page, receipt or label", content(
            (Object = "application/linkset+json"),
            (String = "text/html"),
            (Object = "application/json"),
            (String = "image/svg+xml"),
            (Vec<u8> = "image/png"),
        )),
        (status = 404, description = "The product has no public history (its brand owner has not published it), or the key is malformed", content(
            (veritrace_kernel::Problem = "application/problem+json"),
            (String = "text/html"),
        )),
        (status = 422, body = veritrace_kernel::Problem, description = "A bad query parameter"),
        (status = 503, body = veritrace_kernel::Problem, description = "The receipts cannot be reached just now"),
    )
)]
pub async fn resolve(
    svc: web::Data<ProvenanceService>,
    req: HttpRequest,
    ValidQuery(q): ValidQuery<ResolveQuery>,
) -> Result<HttpResponse, ApiError> {
    let info = req.match_info();
    let key = product_of(
        info.get("gtin").unwrap_or_default(),
        info.get("lot"),
        info.get("serial"),
    );
    let page = q.receipt.is_none() && q.label.is_none() && prefers_html(&req);
    let key = match key {
        Err(ApiError::NotFound(reason)) if page => return page::not_found_page(&svc, &reason),
        other => other?,
    };
    if let Some(record_id) = q.receipt {
        return page::public_receipt(&svc, &key, &record_id.to_string()).await;
    }
    if let Some(format) = q.label {
        return label(&req, &key, format);
    }
    if page {
        return page::product_page(&svc, &key).await;
    }
    linkset(&svc, &key).await
}

/// Whether the client prefers a page to JSON: `text/html` weighs more in its `Accept` than
/// any JSON type (`*/*` counts for both, so a client that says nothing gets JSON).
fn prefers_html(req: &HttpRequest) -> bool {
    let Some(accept) = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (mut html, mut json) = (0.0f32, 0.0f32);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let q = parts
            .find_map(|p| p.strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" | "application/xhtml+xml" | "text/*" => html = html.max(q),
            "application/json"
            | "application/linkset+json"
            | "application/ld+json"
            | "application/*" => json = json.max(q),
            "*/*" => {
                html = html.max(q);
                json = json.max(q);
            }
            _ => {}
        }
    }
    html > json
}

/// The QR code of `key`'s Digital Link on this server, where a scan opens its page.
fn label(
    req: &HttpRequest,
    key: &ProductKey,
    format: LabelFormat,
) -> Result<HttpResponse, ApiError> {
    let info = req.connection_info();
    let url = format!(
        "{}://{}{}",
        info.scheme(),
        info.host(),
        key.digital_link_path()
    );
    let code = LabelCode::encode(&url).map_err(|e| ApiError::field("label", e.to_string()))?;
    Ok(match format {
        LabelFormat::Svg => HttpResponse::Ok()
            .content_type("image/svg+xml")
            .body(code.svg(&url, 8)),
        LabelFormat::Png => HttpResponse::Ok()
            .content_type("image/png")
            .body(code.png(8)),
    })
}

async fn linkset(svc: &ProvenanceService, key: &ProductKey) -> Result<HttpResponse, ApiError> {
    // Public like the page, so only what its brand owner made public: an unpublished product
    // is not even said to be known.
    if page::public_history(svc, key).await?.is_none() {
        return Err(ApiError::NotFound(page::no_public_history(key)));
    }
    let dl = key.digital_link();
    let query = |name: &str| serde_urlencoded::to_string([(name, dl.as_str())]).unwrap_or_default();
    Ok(HttpResponse::Ok()
        .content_type("application/linkset+json")
        .json(json!({
            "linkset": [{
                "anchor": dl,
                "https://gs1.org/voc/pip": [{
                    "href": key.digital_link_path(),
                    "type": "text/html",
                    "title": "Its page: the journey its brand owner made public, each event verified",
                }],
                "https://gs1.org/voc/traceability": [{
                    "href": format!("/traceability?{}", query("product")),
                    "type": "application/json",
                    "title": "Its history: its events, what it was aggregated into and what it was made from",
                }],
                "https://gs1.org/voc/epcis": [{
                    "href": format!("/events?{}", query("MATCH_anyEPC")),
                    "type": "application/ld+json",
                    "title": "The EPCIS events naming it",
                }],
            }]
        })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TraceabilityQuery {
    /// The product: an SGTIN or LGTIN URN, an SGTIN pattern of a whole GTIN, or a GS1 Digital
    /// Link with a GTIN (and lot or serial).
    #[param(pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub product: String,
}

/// A product's history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductHistory {
    /// The product's Digital Link on `id.gs1.org`.
    pub digital_link: String,
    pub gtin: String,
    pub lot: Option<String>,
    pub serial: Option<String>,
    /// Oldest first.
    pub events: Vec<HistoryEvent>,
    /// Whether the history stopped at its bound (1,000 events).
    pub truncated: bool,
}

/// One event of a product's history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    pub relation: Relation,
    /// 0 for the product's own events, 1 for its container's or its inputs', and so on.
    pub depth: u32,
    /// The identifier through which the event was reached.
    pub via: String,
    /// Where the event's receipt is served.
    pub receipt_url: String,
    /// The EPCIS event as captured, with its eventID and recordTime.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

/// A product's history across partners.
///
/// Its own events (under any spelling of its key), then the events of what it was aggregated
/// into (its case, its pallet, and further up) and of what it was made from (the inputs of the
/// transformations that made it, and theirs, up to 8 levels), oldest first; those the caller
/// may read. A product no event names is a 404, and so is a key that names no product.
#[utoipa::path(
    get, path = "/traceability", tag = "provenance",
    params(TraceabilityQuery),
    responses(
        (status = 200, body = ProductHistory),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem, description = "No event the caller may read names it, or not a product's key"),
    ),
    security(("api_key" = []))
)]
pub async fn traceability(
    svc: web::Data<ProvenanceService>,
    links: ReceiptLinks,
    caller: Caller,
    ValidQuery(q): ValidQuery<TraceabilityQuery>,
) -> Result<HttpResponse, ApiError> {
    let key = ProductKey::from_epc(&q.product).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no product is named {:?}: a product's key is an SGTIN or LGTIN URN, or a GS1 \
             Digital Link with a GTIN",
            q.product
        ))
    })?;
    let (traced, truncated) =
        trace::history(svc.read_model(), key.clone(), caller.reads_as()).await?;
    if traced.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no event you may read names the product {}",
            key.digital_link_path()
        )));
    }
    let events = traced
        .into_iter()
        .map(|t| {
            let event = serde_json::from_str(&t.row.event_json)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(HistoryEvent {
                relation: t.relation,
                depth: t.depth,
                via: t.via,
                receipt_url: links.receipt_url(&t.row.record_id),
                event,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(HttpResponse::Ok().json(ProductHistory {
        digital_link: key.digital_link(),
        gtin: key.gtin().to_owned(),
        lot: key.lot().map(str::to_owned),
        serial: key.serial().map(str::to_owned),
        events,
        truncated,
    }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use veritrace_kernel::resource;
    cfg.service(resource!("/01/{gtin}", get => resolve))
        .service(resource!("/01/{gtin}/10/{lot}", get => resolve))
        .service(resource!("/01/{gtin}/21/{serial}", get => resolve))
        .service(resource!("/01/{gtin}/10/{lot}/21/{serial}", get => resolve))
        .service(resource!("/traceability", get => traceability));
}
