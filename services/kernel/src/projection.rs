//! The projector loop every domain service runs: it feeds committed events, in position order,
//! to the service's read model ([`Projection`]) and publishes the position reached, which
//! command handlers wait on to read their own writes.
//!
//! One projector per store works at a time ([`LeaseRole::Projector`]); a standby replica follows
//! the active one's checkpoint instead, so its own read-your-writes waits still end.

use crate::event_store::{EventStore, LeaseRole, StoredEvent};
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

    /// The position of the last event applied (0 for none).
    async fn checkpoint(&self) -> Result<i64, Self::Error>;

    /// Applies `events` (consecutive, in position order) and moves the checkpoint past them,
    /// in one transaction; returns the new checkpoint. Applying an event twice must leave the
    /// same state (a projector that lost its lease mid-way may have applied it already).
    async fn apply(&self, events: Vec<StoredEvent>) -> Result<i64, Self::Error>;
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
        let err = match store.read_after(from, CHUNK).await {
            Ok(events) if !events.is_empty() => match projection.apply(events).await {
                Ok(p) => {
                    failures = 0;
                    position = Some(p);
                    reached.send_replace(p);
                    continue;
                }
                Err(err) => format!("cannot apply the events after position {from}: {err}"),
            },
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

/// Sleeps `d`; true when `shutdown` came first.
async fn pause(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.changed() => true,
    }
}
