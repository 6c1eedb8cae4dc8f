//! Reactions across domains: a domain follows other domains' event types on the bus (the
//! in-process bus embedded, RabbitMQ distributed) and records its own events in reaction.
//!
//! Delivery is at least once; the effect is exactly once. The appends a reaction decides for an
//! event claim the key `inbox:<reaction>:<event id>` in the same transaction
//! ([`StreamAppend::claims`]): a redelivered event finds its key claimed, and its appends are
//! refused whole, so nothing is recorded twice. A reaction that decides nothing for an event
//! records nothing, and nothing needs remembering.
//!
//! The consumer has the anchor's guarantees: a message is acknowledged only once every event
//! in it has been handled; a store that is down is waited out holding the message; a message
//! that can never be handled (not an event batch, or an event the reaction refuses as poison) is
//! dead-lettered; RabbitMQ's reconnects, delivery limits and dead-letter queue are the bus's.
//!
//! No domain crate imports another: a reaction reads the other domain's payload as JSON, by its
//! published schema (`schemas/events/<domain>/`).

use crate::bus::{Bus, BusError, Delivery, Settlement};
use crate::envelope::EventEnvelope;
use crate::event_store::{EventStore, EventStoreError, StreamAppend};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What the platform needs to know of a reaction before it runs: its queue exists from the
/// first start of any service, so no event published meanwhile is missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReactionSpec {
    /// Unique within its domain: its queue is `<domain>.<name>`, its inbox keys
    /// `inbox:<name>:<event id>`.
    pub name: &'static str,
    /// The routing keys it follows: `<domain>.<EventType>`, `*` one word, `#` any.
    pub follows: &'static [&'static str],
}

impl ReactionSpec {
    /// Its queue, for `domain`.
    pub fn queue(&self, domain: &str) -> String {
        format!("{domain}.{}", self.name)
    }

    /// The inbox key of `event_id`.
    pub fn inbox_key(&self, event_id: &str) -> String {
        format!("inbox:{}:{event_id}", self.name)
    }
}

/// An event of another domain, as delivered.
#[derive(Clone, Debug)]
pub struct ObservedEvent {
    pub envelope: EventEnvelope,
    /// Who may read it, as its domain said: a reaction that records a derived fact decides
    /// who may read that, and usually grants no more than this.
    pub readers: Vec<String>,
}

/// Why a reaction did not decide.
#[derive(Debug, thiserror::Error)]
pub enum ReactionError {
    /// Cannot decide now (its store is down): the event is offered again.
    #[error("{0}")]
    Retry(String),
    /// Can never be handled: the message goes to the dead letters.
    #[error("{0}")]
    Poison(String),
}

/// A domain's reactions, as its running instance handles them.
#[async_trait::async_trait]
pub trait React: Send + Sync {
    /// The appends `reaction` calls for in answer to `event`, decided against the domain's
    /// current state (none: nothing to record). The runner adds the inbox claim.
    async fn react(
        &self,
        reaction: &str,
        event: &ObservedEvent,
    ) -> Result<Vec<StreamAppend>, ReactionError>;
}

/// Times a reaction is decided again when its stream moved meanwhile.
const CONFLICT_RETRIES: usize = 5;

/// Subscribes `spec`'s queue of `domain` on `bus`, then handles its deliveries until
/// `shutdown`, recording in `store`.
pub async fn start(
    domain: &'static str,
    spec: ReactionSpec,
    store: EventStore,
    react: Arc<dyn React>,
    bus: &dyn Bus,
    shutdown: watch::Receiver<bool>,
) -> Result<(), BusError> {
    let mut subscription = bus.subscribe(&spec.queue(domain), spec.follows).await?;
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                d = subscription.next() => match d {
                    Some(d) => handle(domain, spec, &store, react.as_ref(), d, &shutdown).await,
                    None => return,
                },
                _ = stop.changed() => return,
            }
        }
    });
    Ok(())
}

/// Handles one delivery: every event in it, in order, then settles it.
#[tracing::instrument(name = "react", skip_all, fields(
    domain = %domain,
    reaction = spec.name,
    routing_key = %delivery.routing_key,
    message_id = delivery.message_id.as_deref().unwrap_or("-"),
))]
async fn handle(
    domain: &str,
    spec: ReactionSpec,
    store: &EventStore,
    react: &dyn React,
    delivery: Delivery,
    shutdown: &watch::Receiver<bool>,
) {
    let events = match crate::outbox::read_body(&delivery.body) {
        Ok(events) => events,
        Err(err) => {
            tracing::error!(%err, "not an event batch; dead-lettered");
            delivery.settle(Settlement::DeadLetter);
            return;
        }
    };
    for published in events {
        let envelope = match published.envelope {
            Ok(envelope) => envelope,
            Err(unreadable) => {
                tracing::error!(err = %unreadable.reason, "an event that is not an envelope; dead-lettered");
                delivery.settle(Settlement::DeadLetter);
                return;
            }
        };
        let event = ObservedEvent {
            envelope,
            readers: published.readers,
        };
        let settlement = handle_event(spec, store, react, &event, shutdown).await;
        if settlement != Settlement::Ack {
            tracing::warn!(?settlement, event_id = %event.envelope.id, domain, "reaction not completed");
            delivery.settle(settlement);
            return;
        }
    }
    delivery.settle(Settlement::Ack);
}

/// Decides and records one event's reaction, exactly once: Ack once it is recorded (or was
/// already, or calls for nothing).
async fn handle_event(
    spec: ReactionSpec,
    store: &EventStore,
    react: &dyn React,
    event: &ObservedEvent,
    shutdown: &watch::Receiver<bool>,
) -> Settlement {
    let inbox = spec.inbox_key(&event.envelope.id.to_string());
    let mut backoff = Duration::from_millis(100);
    let mut conflicts = 0usize;
    loop {
        let mut appends = match react.react(spec.name, event).await {
            Ok(appends) => appends,
            Err(ReactionError::Poison(why)) => {
                tracing::error!(%why, event_id = %event.envelope.id, "the reaction refuses the event");
                return Settlement::DeadLetter;
            }
            Err(ReactionError::Retry(why)) => {
                tracing::warn!(%why, "the reaction cannot decide now; waiting");
                if wait(&mut backoff, shutdown).await {
                    return Settlement::Retry;
                }
                continue;
            }
        };
        let Some(first) = appends.iter_mut().find(|a| !a.events.is_empty()) else {
            return Settlement::Ack;
        };
        first.claims.push(inbox.clone());
        match store.append_all(appends).await {
            Ok(_) => return Settlement::Ack,
            // Handled before (a redelivery): its effect is recorded already.
            Err(EventStoreError::Duplicate { key, .. }) if key == inbox => return Settlement::Ack,
            // The reaction claims a business key another record holds: deciding again gives the
            // same answer, so the event is handled (with nothing recorded), not retried forever.
            Err(EventStoreError::Duplicate { key, .. }) => {
                tracing::warn!(%key, event_id = %event.envelope.id, "the reaction's key is taken; nothing recorded");
                return Settlement::Ack;
            }
            // Its stream moved meanwhile: decide again against the new state.
            Err(EventStoreError::Conflict { .. }) => {
                conflicts += 1;
                if conflicts > CONFLICT_RETRIES {
                    return Settlement::Retry;
                }
            }
            Err(EventStoreError::Unavailable(why)) => {
                // Waited out holding the message: returning it would spend its delivery limit.
                tracing::warn!(%why, "the event store is unavailable; waiting");
                if wait(&mut backoff, shutdown).await {
                    return Settlement::Retry;
                }
            }
            Err(err) => {
                tracing::error!(%err, event_id = %event.envelope.id, "the reaction's appends are refused");
                return Settlement::DeadLetter;
            }
        }
    }
}

/// Sleeps `backoff` (then doubles it, up to 5 s); true when shutting down instead.
async fn wait(backoff: &mut Duration, shutdown: &watch::Receiver<bool>) -> bool {
    let mut shutdown = shutdown.clone();
    let stop = tokio::select! {
        _ = tokio::time::sleep(*backoff) => false,
        _ = shutdown.changed() => true,
    };
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
    stop || *shutdown.borrow()
}

/// Starts every reaction of `domain`, run by `running`, on `bus`. Call it before any outbox
/// relay of the process publishes: on the in-process bus a queue exists from its subscription.
pub async fn start_domain(
    domain: &'static dyn crate::domain::Domain,
    running: Arc<dyn crate::domain::RunningDomain>,
    bus: &dyn Bus,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let specs = domain.reactions();
    if specs.is_empty() {
        return Ok(());
    }
    let store = running.event_store().clone();
    let react = running
        .reactor()
        .ok_or_else(|| format!("domain {} declares reactions but runs none", domain.name()))?;
    for spec in specs {
        start(
            domain.name(),
            *spec,
            store.clone(),
            react.clone(),
            bus,
            shutdown.clone(),
        )
        .await?;
    }
    Ok(())
}
