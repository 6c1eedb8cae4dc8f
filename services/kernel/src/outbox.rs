//! The outbox relay: publishes committed events to the bus, in commit order (so in order per
//! stream), at least once. An outbox row is deleted only after the bus confirmed its message;
//! a crash in between publishes it again, and consumers are idempotent by event digest.

use crate::bus::{Bus, Message};
use crate::event_store::{EventStore, LeaseRole, RELAY_CONSUMER, StoredEvent};
use chain_core::Digest;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The body of a bus message: many events, each with the digest the publisher computed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    pub events: Vec<PublishedEvent>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedEvent {
    pub digest: Digest,
    pub envelope: serde_json::Value,
    /// Who may read the event (its access list, beside the envelope and not hashed into it).
    /// Absent from a message of a publisher that predates access lists: then the recording
    /// organisation only, as the stores' migrations also assume.
    #[serde(default)]
    pub readers: Vec<String>,
}

/// Builds a message body from stored canonical envelopes without re-serialising them.
fn batch_body(events: &[StoredEvent]) -> Vec<u8> {
    let mut body = String::with_capacity(events.iter().map(|e| e.canonical.len() + 96).sum());
    body.push_str("{\"events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str("{\"digest\":\"");
        body.push_str(&e.digest.to_hex());
        body.push_str("\",\"envelope\":");
        body.push_str(&e.canonical);
        body.push_str(",\"readers\":");
        body.push_str(&serde_json::to_string(&e.readers).unwrap_or_else(|_| "[]".into()));
        body.push('}');
    }
    body.push_str("]}");
    body.into_bytes()
}

/// Routing key of an event: `<service>.<type>`.
pub fn routing_key(e: &StoredEvent) -> String {
    format!("{}.{}", e.envelope.service, e.envelope.event_type)
}

pub struct OutboxRelay {
    pub store: EventStore,
    pub bus: Arc<dyn Bus>,
    pub batch_size: usize,
    pub sweep_interval: Duration,
}

impl OutboxRelay {
    /// Publishes one round of pending events; returns how many left the outbox (confirmed by
    /// the bus, or set aside because their stored row cannot be read).
    #[tracing::instrument(name = "relay_outbox", skip_all)]
    pub async fn relay_once(&self) -> Result<usize, String> {
        let batch = self
            .store
            .unpublished(self.batch_size as i64)
            .await
            .map_err(|e| e.to_string())?;
        // An unreadable row would otherwise come first in every round, for ever.
        self.store
            .set_aside(RELAY_CONSUMER, &batch.unreadable)
            .await
            .map_err(|e| e.to_string())?;
        let pending = batch.events;
        if pending.is_empty() {
            return Ok(batch.unreadable.len());
        }
        tracing::debug!(events = pending.len(), "relaying");
        // Consecutive events of one type share a message and a routing key; messages go out in
        // commit order.
        let mut messages = Vec::new();
        let mut start = 0;
        for i in 1..=pending.len() {
            if i == pending.len() || routing_key(&pending[i]) != routing_key(&pending[start]) {
                let run = &pending[start..i];
                messages.push(Message {
                    routing_key: routing_key(&run[0]),
                    body: batch_body(run),
                    message_id: Some(format!(
                        "{}:{}-{}",
                        run[0].envelope.service,
                        run[0].position,
                        run[run.len() - 1].position
                    )),
                });
                start = i;
            }
        }
        self.bus
            .publish(messages)
            .await
            .map_err(|e| e.to_string())?;
        let positions: Vec<i64> = pending.iter().map(|e| e.position).collect();
        self.store
            .mark_published(&positions)
            .await
            .map_err(|e| e.to_string())?;
        Ok(pending.len() + batch.unreadable.len())
    }

    /// Relays until `shutdown`, woken by every commit and by the sweep interval, while this
    /// process holds the store's relay lease (another replica may hold it; it is retried at
    /// every sweep).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut committed = self.store.committed();
        let mut backoff = Duration::from_millis(100);
        let mut lease = self.store.lease(LeaseRole::Relay);
        loop {
            let held = lease.check().await.unwrap_or_else(|err| {
                tracing::warn!(%err, "cannot take the relay lease; retrying");
                false
            });
            if !held {
                tokio::select! {
                    _ = tokio::time::sleep(self.sweep_interval) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            match self.relay_once().await {
                Ok(n) if n > 0 => {
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Ok(_) => {
                    tokio::select! {
                        _ = committed.changed() => {}
                        _ = tokio::time::sleep(self.sweep_interval) => {}
                        _ = shutdown.changed() => return,
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, "outbox relay failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}
