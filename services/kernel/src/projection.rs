//! The projector loop every domain service runs: it feeds committed events, in position order,
//! to the service's read model ([`Projection`]) and publishes the position reached, which
//! command handlers wait on to read their own writes.
//!
//! One projector per store works at a time ([`LeaseRole::Projector`]); a standby replica follows
//! the active one's checkpoint instead, so its own read-your-writes waits still end.

use crate::event_store::{EventStore, LeaseRole, ReadBatch, StoredEvent, UnreadableEvent};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often a standby replica reads the active projector's checkpoint.
const STANDBY_POLL: Duration = Duration::from_millis(50);
/// Pause after a failed read or apply before trying again, doubling up to `RETRY_MAX`.
const RETRY_AFTER: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// Failures in a row after which the projector reports itself stuck (an event it cannot apply,
/// or a read model it cannot write), at error level.
const STUCK_AFTER: u32 = 5;
/// Events read and applied per transaction.
const CHUNK: i64 = 1000;

/// A read model fed by the projector.
#[async_trait::async_trait]
pub trait Projection: Send + Sync + 'static {
    type Error: std::fmt::Display + Send;

    /// The read model's name, unique within its store (`evidence_records`): its events set
    /// aside are recorded as `projection:<name>`.
    fn name(&self) -> &'static str;

    /// The position of the last event applied (0 for none).
    async fn checkpoint(&self) -> Result<i64, Self::Error>;

    /// Applies `events` (in position order, all after the checkpoint) and moves the checkpoint
    /// to `through` (at least the last event's position: events set aside in between are
    /// passed over), in one transaction; returns the new checkpoint. Applying an event twice
    /// must leave the same state (a projector that lost its lease mid-way may have applied it
    /// already).
    async fn apply(&self, events: Arc<[StoredEvent]>, through: i64) -> Result<i64, Self::Error>;

    /// The position of the event at fault when `error` says that one event can never be
    /// applied (as opposed to a read model that cannot be written now): the projector sets it
    /// aside and applies the others.
    fn unappliable(error: &Self::Error) -> Option<i64> {
        let _ = error;
        None
    }
}

/// Keeps `projection` up to date with `store` until `shutdown`, publishing the position reached
/// in `reached`.
pub async fn run_projector<P: Projection>(
    store: EventStore,
    projection: P,
    reached: watch::Sender<i64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut committed = store.committed();
    let mut feed = store.feed();
    let mut lease = store.lease(LeaseRole::Projector);
    let mut position = None;
    let mut failures = 0u32;
    loop {
        let active = match lease.check().await {
            Ok(active) => active,
            Err(err) => {
                tracing::warn!(%err, "cannot take the projector lease; retrying");
                false
            }
        };
        if !active {
            // Follow whoever projects (or, with the database down, keep trying).
            position = None;
            if let Ok(p) = projection.checkpoint().await {
                reached.send_replace(p);
            }
            tokio::select! {
                _ = tokio::time::sleep(STANDBY_POLL) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        // Just became active (or started): resume from the checkpoint, wherever the last active
        // projector left it.
        let from = match position {
            Some(p) => p,
            None => match projection.checkpoint().await {
                Ok(p) => {
                    reached.send_replace(p);
                    *position.insert(p)
                }
                Err(err) => {
                    tracing::error!(%err, "cannot read the projection checkpoint; retrying");
                    if pause(RETRY_AFTER, &mut shutdown).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let err = match feed.read_after(from, CHUNK).await {
            Ok(batch) if batch.last > from => {
                match apply_or_set_aside(&store, &projection, batch).await {
                    Ok(p) => {
                        failures = 0;
                        position = Some(p);
                        reached.send_replace(p);
                        continue;
                    }
                    Err(err) => format!("cannot apply the events after position {from}: {err}"),
                }
            }
            Ok(_) => {
                failures = 0;
                tokio::select! {
                    _ = committed.changed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            Err(err) => format!("cannot read the events after position {from}: {err}"),
        };
        failures += 1;
        if failures >= STUCK_AFTER {
            // Reads of the read model stay possible but stale; commands answer 503 once their
            // read-your-writes wait runs out.
            tracing::error!(%err, failures, "the projector is stuck; retrying");
        } else {
            tracing::warn!(%err, "projection failed; retrying");
        }
        let backoff = RETRY_AFTER
            .saturating_mul(1 << (failures - 1).min(5))
            .min(RETRY_MAX);
        if pause(backoff, &mut shutdown).await {
            return;
        }
    }
}

/// Applies `batch` to `projection`; an event that cannot be read or applied is set aside
/// (recorded in the store's `set_aside_events`, logged) and the others applied without it.
/// Returns the new checkpoint.
async fn apply_or_set_aside<P: Projection>(
    store: &EventStore,
    projection: &P,
    batch: ReadBatch,
) -> Result<i64, String> {
    let consumer = format!("projection:{}", projection.name());
    store
        .set_aside(&consumer, &batch.unreadable)
        .await
        .map_err(|e| e.to_string())?;
    let mut events: Arc<[StoredEvent]> = batch.events.into();
    loop {
        let err = match projection.apply(events.clone(), batch.last).await {
            Ok(p) => return Ok(p),
            Err(err) => err,
        };
        let Some(at) = P::unappliable(&err).filter(|at| events.iter().any(|e| e.position == *at))
        else {
            return Err(err.to_string());
        };
        let poison = UnreadableEvent {
            position: at,
            reason: err.to_string(),
        };
        store
            .set_aside(&consumer, std::slice::from_ref(&poison))
            .await
            .map_err(|e| e.to_string())?;
        events = events
            .iter()
            .filter(|e| e.position != at)
            .cloned()
            .collect();
    }
}

/// Sleeps `d`; true when `shutdown` came first.
async fn pause(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.changed() => true,
    }
}
