//! The deliverer: one task per provenance service, sending each due subscription the events
//! after its cursor, a batch at a time, and moving the cursor once the subscriber
//! acknowledged them.

use super::store::Subscription;
use crate::ProvenanceService;
use crate::domain::subscription::{DELIVERY_EVENTS, backoff, delivery_id, query_pairs, signature};
use crate::http::query::{parse_event_query, query_document};
use crate::projections::query as q;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use veritrace_kernel::envelope::now_rfc3339;

/// How often the deliverer looks for new events when nothing woke it.
const POLL: Duration = Duration::from_millis(250);

/// How long a subscriber may take to answer a delivery.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivers until `shutdown`, then says it has stopped: a delivery under way finishes and is
/// recorded first.
pub async fn run(svc: Arc<ProvenanceService>, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if let Err(e) = deliver_due(&svc).await {
            tracing::warn!(error = %e, "subscription deliveries could not be read; trying again");
        }
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = svc.subscriptions.wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
    svc.subscriptions.mark_stopped();
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

/// One round: each subscription that is due (a stream, or a schedule whose time came) and not
/// waiting out a failure gets one delivery.
async fn deliver_due(svc: &ProvenanceService) -> Result<(), String> {
    let all = svc
        .subscriptions
        .store
        .subscriptions(None, None)
        .await
        .map_err(|e| e.to_string())?;
    let now = now_ms();
    for s in all
        .iter()
        .filter(|s| s.next_attempt_ms <= now && (s.stream || s.due))
    {
        let span = tracing::info_span!("delivery", subscription = %s.subscription_id);
        let _entered = span.enter();
        if let Err(e) = deliver(svc, s).await {
            tracing::warn!(error = %e, "a subscription's delivery could not be prepared");
        }
    }
    Ok(())
}

/// The next delivery of `s`: the events after its cursor (at most [`DELIVERY_EVENTS`]).
async fn deliver(svc: &ProvenanceService, s: &Subscription) -> Result<(), String> {
    let store = &svc.subscriptions.store;
    let Some(named) = store
        .query(&s.organisation, &s.query_name)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(()); // deleted meanwhile: its subscriptions went with it
    };
    let pairs = query_pairs(&named.query)?;
    let mut query = parse_event_query(&pairs)
        .map_err(|e| format!("the named query no longer reads: {e:?}"))?
        .query;
    query.after = Some(s.delivered_through);
    query.readable_by = s.readers.clone();
    query.ge_record_time = query
        .ge_record_time
        .max(Some(s.initial_record_time.clone()));
    let page = q::events(svc.read_model(), query, DELIVERY_EVENTS)
        .await
        .map_err(|e| e.to_string())?;
    let through = page.rows.last().map_or(s.delivered_through, |r| r.position);
    if page.rows.is_empty() && !(s.due && s.report_if_empty) {
        if s.due {
            record_delivered(svc, s, through, false).await?;
        }
        return Ok(());
    }
    let mut document = query_document(&page.rows).map_err(|e| e.to_string())?;
    let results = &mut document["epcisBody"]["queryResults"];
    results["queryName"] = serde_json::Value::String(s.query_name.clone());
    results["subscriptionID"] = serde_json::Value::String(s.subscription_id.clone());
    let body = serde_json::to_vec(&document).map_err(|e| e.to_string())?;
    let mut id = delivery_id(&s.subscription_id, s.delivered_through, through);
    if page.rows.is_empty() {
        // An empty report carries no event to receive twice: each one is its own.
        id.push_str(&format!("@{}", now_ms()));
    }
    match post(s, id, body).await {
        Ok(()) => {
            let more = page.next_after.is_some();
            record_delivered(svc, s, through, s.due && more).await?;
            if more {
                svc.subscriptions.wake.notify_one();
            }
        }
        Err(e) => {
            let attempts = s.attempts + 1;
            let wait = backoff(u32::try_from(attempts).unwrap_or(u32::MAX));
            let next = now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
            tracing::info!(error = %e, attempts, "delivery failed; trying again later");
            store
                .failed(&s.subscription_id, attempts, next, &e)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

async fn record_delivered(
    svc: &ProvenanceService,
    s: &Subscription,
    through: i64,
    still_due: bool,
) -> Result<(), String> {
    svc.subscriptions
        .store
        .delivered(
            &s.subscription_id,
            s.delivered_through,
            through,
            &now_rfc3339(),
            still_due,
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// POSTs one delivery to the subscriber; Ok once it answered 2xx.
async fn post(s: &Subscription, id: String, body: Vec<u8>) -> Result<(), String> {
    let dest = s.dest.clone();
    let signed = s.signature_token.as_deref().map(|t| signature(t, &body));
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(CALLBACK_TIMEOUT))
            .build()
            .into();
        let mut request = agent
            .post(&dest)
            .header("Content-Type", "application/ld+json")
            .header("Veritrace-Delivery", &id);
        if let Some(sig) = &signed {
            request = request.header("GS1-Signature", sig);
        }
        let status = request
            .send(&body[..])
            .map_err(|e| format!("{dest}: {e}"))?
            .status()
            .as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("{dest} answered {status}"))
        }
    })
    .await
    .map_err(|e| e.to_string())?
}
