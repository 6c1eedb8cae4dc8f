//! The outbox relay: publishes committed events to the bus, in commit order (so in order per
//! stream), at least once. An outbox row is deleted only after the bus confirmed its message;
//! a crash in between publishes it again, and consumers are idempotent by event digest.

use crate::bus::{Bus, Message};
use crate::envelope::EventEnvelope;
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

/// An event of a message body as a consumer reads it: its envelope as the struct, or why it is
/// not one.
#[derive(Debug)]
pub struct ReceivedEvent {
    pub digest: Digest,
    pub envelope: Result<EventEnvelope, UnreadableEnvelope>,
    pub readers: Vec<String>,
}

/// An envelope of a message that is JSON but not an [`EventEnvelope`].
#[derive(Debug)]
pub struct UnreadableEnvelope {
    pub reason: String,
    /// Its JSON text, kept for inspection.
    pub text: String,
}

/// Reads a message body ([`EventBatch`]). Envelopes are read straight into [`EventEnvelope`],
/// several times cheaper than through JSON trees; only a body holding an envelope that is not
/// one is read again, as trees, to tell its good events from its bad. Fails if the body is not
/// an event batch at all.
pub fn read_body(body: &[u8]) -> Result<Vec<ReceivedEvent>, serde_json::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TypedBatch {
        events: Vec<TypedEvent>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TypedEvent {
        digest: Digest,
        envelope: EventEnvelope,
        #[serde(default)]
        readers: Vec<String>,
    }
    if let Ok(batch) = serde_json::from_slice::<TypedBatch>(body) {
        return Ok(batch
            .events
            .into_iter()
            .map(|e| ReceivedEvent {
                digest: e.digest,
                envelope: Ok(e.envelope),
                readers: e.readers,
            })
            .collect());
    }
    let batch: EventBatch = serde_json::from_slice(body)?;
    Ok(batch
        .events
        .into_iter()
        .map(|e| ReceivedEvent {
            envelope: EventEnvelope::deserialize(&e.envelope).map_err(|err| UnreadableEnvelope {
                reason: err.to_string(),
                text: e.envelope.to_string(),
            }),
            digest: e.digest,
            readers: e.readers,
        })
        .collect())
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

/// Where the relay holding the lease has got to: every event up to `through` has left the
/// outbox, and every later one is in it, so the next round takes the events after `through`
/// from the writer's feed instead of reading the outbox back. Positions become visible in the
/// order they were drawn (SQLite: one writer; PostgreSQL: appends hold a lock), so what another
/// process appended shows as a gap in the feed, which the feed fills from the store. Only the
/// lease holder relays: a relay that lost the lease reads the outbox again when it next holds
/// it, as another may have relayed meanwhile.
struct RelayCursor {
    feed: crate::event_store::EventFeed,
    through: Option<i64>,
}

pub struct OutboxRelay {
    pub store: EventStore,
    pub bus: Arc<dyn Bus>,
    pub batch_size: usize,
    pub sweep_interval: Duration,
    /// How long commits gather after a round that caught up ([`OutboxConfig::linger_ms`]).
    ///
    /// [`OutboxConfig::linger_ms`]: crate::config::OutboxConfig::linger_ms
    pub linger: Duration,
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
        self.relay(batch).await
    }

    /// One round from `cursor`: the events after the position it holds, handed over in memory
    /// as the writer committed them; from the outbox when it holds none (at the start, after
    /// an error). Returns how many left the outbox, as [`relay_once`](Self::relay_once).
    #[tracing::instrument(name = "relay_outbox", skip_all)]
    async fn relay_following(&self, cursor: &mut RelayCursor) -> Result<usize, String> {
        let limit = self.batch_size as i64;
        let batch = match cursor.through {
            Some(through) => cursor.feed.read_after(through, limit).await,
            None => {
                // Every event up to the head read first is in the outbox or published: when
                // the outbox is read whole, the relay is through the head too.
                let head = *self.store.committed().borrow();
                let mut batch = self.store.unpublished(limit).await;
                if let Ok(b) = &mut batch
                    && ((b.events.len() + b.unreadable.len()) as i64) < limit
                {
                    b.last = b.last.max(head);
                }
                batch
            }
        }
        .map_err(|e| e.to_string())?;
        let last = batch.last;
        let relayed = self.relay(batch).await?;
        if last > 0 {
            cursor.through = Some(last);
        }
        Ok(relayed)
    }

    /// Sets aside `batch`'s unreadable rows and publishes its events, then removes them all
    /// from the outbox.
    async fn relay(&self, batch: crate::event_store::ReadBatch) -> Result<usize, String> {
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
        // Subscribed before anything is read, so that no commit falls between.
        let mut cursor = RelayCursor {
            feed: self.store.feed(),
            through: None,
        };
        let mut committed = self.store.committed();
        let mut backoff = Duration::from_millis(100);
        let mut lease = self.store.lease(LeaseRole::Relay);
        loop {
            let held = lease.check().await.unwrap_or_else(|err| {
                tracing::warn!(%err, "cannot take the relay lease; retrying");
                false
            });
            if !held {
                cursor.through = None;
                tokio::select! {
                    _ = tokio::time::sleep(self.sweep_interval) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            let round = self.relay_following(&mut cursor).await;
            if round.is_err() {
                // What the failed round took may not have left the outbox: read it again.
                cursor.through = None;
            }
            match round {
                Ok(n) if n > 0 => {
                    backoff = Duration::from_millis(100);
                    // Each round costs the same however few events it carries (a message, an
                    // outbox delete, the anchor's insert): while commits keep coming, they
                    // gather a moment instead of going one round each. A lone commit still
                    // goes at once, and a full round means the relay is behind.
                    if n < self.batch_size && !self.linger.is_zero() {
                        tokio::select! {
                            _ = tokio::time::sleep(self.linger) => {}
                            _ = shutdown.changed() => return,
                        }
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use chain_core::HashAlg;

    fn published(n: u64) -> String {
        let sealed = EventEnvelope {
            id: uuid::Uuid::now_v7(),
            service: "evidence".into(),
            stream: format!("evidence-{n}"),
            stream_version: 1,
            event_type: "EvidenceRegistered".into(),
            type_version: 1,
            occurred_at: "2026-03-01T12:00:00.000Z".into(),
            recorded_at: "2026-03-01T12:00:00.000Z".into(),
            organisation: "org".into(),
            payload: serde_json::json!({"n": n, "text": "a\"b"}),
        }
        .seal(HashAlg::Sha3_256);
        format!(
            r#"{{"digest":"{}","envelope":{},"readers":["org"]}}"#,
            sealed.digest.to_hex(),
            sealed.canonical
        )
    }

    #[test]
    fn a_body_is_read_into_envelopes_and_a_bad_envelope_is_told_apart() {
        let good = format!(r#"{{"events":[{},{}]}}"#, published(1), published(2));
        let events = read_body(good.as_bytes()).unwrap();
        assert_eq!(events.len(), 2);
        for (e, n) in events.iter().zip(1..) {
            let envelope = e.envelope.as_ref().unwrap();
            assert_eq!(envelope.payload["n"], n);
            assert_eq!(
                envelope.clone().seal(HashAlg::Sha3_256).digest,
                e.digest,
                "the envelope as sent"
            );
            assert_eq!(e.readers, ["org"]);
        }

        // An envelope with a member an envelope has not: only that event is unreadable.
        let bad = published(3).replacen(r#""id":"#, r#""extra":1,"id":"#, 1);
        let mixed = format!(r#"{{"events":[{},{bad},{}]}}"#, published(1), published(2));
        let events = read_body(mixed.as_bytes()).unwrap();
        assert_eq!(events.len(), 3);
        assert!(events[0].envelope.is_ok() && events[2].envelope.is_ok());
        let unreadable = events[1].envelope.as_ref().unwrap_err();
        assert!(unreadable.reason.contains("extra"), "{}", unreadable.reason);
        assert!(
            unreadable.text.contains(r#""extra":1"#),
            "{}",
            unreadable.text
        );

        // Not an event batch at all.
        assert!(read_body(br#"{"events":[{"digest":"00"}]}"#).is_err());
        assert!(read_body(b"not json").is_err());
    }
}
