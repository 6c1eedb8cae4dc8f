//! The consumer's page behind a product's Digital Link: server-rendered (tera), mobile first,
//! no JavaScript. It shows the product's journey as a timeline of the events its brand owner
//! made public ([`crate::domain::publication`]), each with its receipt verified here, by the
//! verifier anyone runs offline, and a link to download that receipt.

use super::journey;
use crate::ProvenanceService;
use crate::projections::trace::{self, Relation, TracedEvent};
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use futures_util::future::join_all;
use serde::Serialize;
use veritrace_epcis::identifiers::ProductKey;
use veritrace_kernel::ApiError;
use veritrace_kernel::receipts::ReceiptState;

/// Most events one page shows: a product's own journey is far shorter; a GTIN's page over
/// many lots says how many it leaves out.
pub const PAGE_EVENTS: usize = 200;

pub fn templates() -> Result<tera::Tera, tera::Error> {
    let mut t = tera::Tera::default();
    t.add_raw_templates([
        (
            "product.html",
            include_str!("../../../../frontend/templates/product.html"),
        ),
        (
            "product_not_found.html",
            include_str!("../../../../frontend/templates/product_not_found.html"),
        ),
    ])?;
    Ok(t)
}

/// One event of the timeline.
#[derive(Serialize)]
struct PageEvent {
    event_id: String,
    record_id: String,
    what: String,
    kind: String,
    when: String,
    event_time: String,
    place: Option<String>,
    why: Option<String>,
    relation: String,
    /// `verified`, `pending`, `failed`, `unavailable` or `unchecked`.
    state: &'static str,
    badge: String,
    badge_detail: String,
    receipt_href: String,
}

/// The events of `key`'s history its brand owner made public; None when it is not public
/// (or names nothing public).
pub async fn public_history(
    svc: &ProvenanceService,
    key: &ProductKey,
) -> Result<Option<(Vec<TracedEvent>, bool)>, ApiError> {
    let Some(owner) = trace::published_by(svc.read_model(), key.gtin()).await? else {
        return Ok(None);
    };
    let (events, truncated) =
        trace::history(svc.read_model(), key.clone(), Some(vec![owner])).await?;
    Ok((!events.is_empty()).then_some((events, truncated)))
}

/// The page of `key`, or the friendly 404 page when it has no public history.
pub async fn product_page(
    svc: &ProvenanceService,
    key: &ProductKey,
) -> Result<HttpResponse, ApiError> {
    let Some((traced, truncated)) = public_history(svc, key).await? else {
        return not_found_page(svc, &no_public_history(key));
    };
    let hidden = traced.len().saturating_sub(PAGE_EVENTS);
    let shown: Vec<TracedEvent> = traced.into_iter().take(PAGE_EVENTS).collect();
    let states = join_all(shown.iter().map(|t| check(svc, &t.row.record_id))).await;
    let path = key.digital_link_path();
    let events: Vec<PageEvent> = shown
        .iter()
        .zip(states)
        .map(|(t, state)| page_event(t, state, &path))
        .collect::<Result<_, _>>()?;
    let count = |s: &str| events.iter().filter(|e| e.state == s).count();
    let mut ctx = tera::Context::new();
    ctx.insert("gtin", key.gtin());
    ctx.insert("lot", &key.lot());
    ctx.insert("serial", &key.serial());
    ctx.insert("path", &path);
    ctx.insert("digital_link", &key.digital_link());
    ctx.insert("verified", &count("verified"));
    ctx.insert("pending", &count("pending"));
    ctx.insert(
        "unverified",
        &(events.len() - count("verified") - count("pending")),
    );
    ctx.insert("events", &events);
    ctx.insert("hidden", &hidden);
    ctx.insert("truncated", &truncated);
    render(svc, "product.html", &ctx, StatusCode::OK)
}

/// Why a product has no page.
pub fn no_public_history(key: &ProductKey) -> String {
    format!(
        "No public history is recorded for the product {}.",
        key.digital_link_path()
    )
}

/// The friendly page for a code that names no product with a public history.
pub fn not_found_page(svc: &ProvenanceService, reason: &str) -> Result<HttpResponse, ApiError> {
    let mut ctx = tera::Context::new();
    ctx.insert("reason", reason);
    render(svc, "product_not_found.html", &ctx, StatusCode::NOT_FOUND)
}

fn render(
    svc: &ProvenanceService,
    template: &str,
    ctx: &tera::Context,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let html = svc
        .pages
        .render(template, ctx)
        .map_err(|e| ApiError::Internal(format!("{template}: {e}")))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

async fn check(svc: &ProvenanceService, record_id: &str) -> Option<ReceiptState> {
    Some(svc.receipts.as_ref()?.check(record_id).await)
}

fn page_event(
    t: &TracedEvent,
    state: Option<ReceiptState>,
    path: &str,
) -> Result<PageEvent, ApiError> {
    let event: serde_json::Value =
        serde_json::from_str(&t.row.event_json).map_err(|e| ApiError::Internal(e.to_string()))?;
    let (state, badge, badge_detail) = badge(state);
    Ok(PageEvent {
        event_id: t.row.event_id.clone(),
        record_id: t.row.record_id.clone(),
        what: journey::what(&event),
        kind: journey::kind(&event),
        when: journey::when(&event),
        event_time: t.row.event_time.clone(),
        place: journey::place(&event),
        why: journey::why(&event),
        relation: relation(t),
        state,
        badge,
        badge_detail,
        receipt_href: format!("{path}?receipt={}", t.row.record_id),
    })
}

fn relation(t: &TracedEvent) -> String {
    match t.relation {
        Relation::Product => "This product".into(),
        Relation::AggregatedInto => format!("What it was packed in: {}", t.via),
        Relation::TransformedFrom => format!("What it was made from: {}", t.via),
    }
}

/// The badge of a receipt's state: its name, its words, and the detail under them.
fn badge(state: Option<ReceiptState>) -> (&'static str, String, String) {
    match state {
        Some(ReceiptState::Verified {
            height,
            block_time,
            signers,
        }) => (
            "verified",
            "Anchored and verified".into(),
            format!(
                "Block {height}, final {}, signed by {signers} validator{}. \
                 This server checked the receipt; you can check it yourself.",
                utc_words(&block_time),
                if signers == 1 { "" } else { "s" }
            ),
        ),
        Some(ReceiptState::Pending) => (
            "pending",
            "Recorded, not yet anchored".into(),
            "Its receipt is not final yet: look again in a few seconds.".into(),
        ),
        Some(ReceiptState::Failed { reason }) => (
            "failed",
            "Receipt did not verify".into(),
            format!("Do not rely on this event: {reason}."),
        ),
        Some(ReceiptState::Unavailable { reason }) => (
            "unavailable",
            "Not checked just now".into(),
            format!("The receipt could not be fetched: {reason}."),
        ),
        None => (
            "unchecked",
            "Not checked".into(),
            "This server cannot reach the receipts; download one and verify it yourself.".into(),
        ),
    }
}

/// A UTC time in words (`3 December 2026, 07:58 UTC`); as written if it cannot be read.
fn utc_words(time: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| t.format("%-d %B %Y, %H:%M UTC").to_string())
        .unwrap_or_else(|_| time.to_owned())
}

/// The receipt of one event on `key`'s public page, as a download; a 404 for any other.
pub async fn public_receipt(
    svc: &ProvenanceService,
    key: &ProductKey,
    record_id: &str,
) -> Result<HttpResponse, ApiError> {
    let not_found = || {
        ApiError::NotFound(format!(
            "no event {record_id} is on the public page of {}",
            key.digital_link_path()
        ))
    };
    let (events, _) = public_history(svc, key).await?.ok_or_else(not_found)?;
    if !events.iter().any(|t| t.row.record_id == record_id) {
        return Err(not_found());
    }
    let receipts = svc.receipts.as_ref().ok_or_else(|| {
        ApiError::Unavailable("this server cannot reach the anchoring service's receipts".into())
    })?;
    let bytes = receipts
        .fetch(record_id)
        .await
        .map_err(ApiError::Unavailable)?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "event {record_id} has not reached the anchoring service yet; it will within moments"
            ))
        })?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"receipt-{record_id}.json\""),
        ))
        .body(bytes))
}
