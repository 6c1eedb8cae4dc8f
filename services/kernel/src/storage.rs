//! What a domain service stands on, started once: its event store, its read model, and the
//! projector between them ([`DomainStorage`]). A domain's `start` is one call; its commands
//! record through [`DomainStorage::record`], which answers once the events are durable and,
//! briefly, once the read model shows them.

use crate::domain::{BoxError, DomainContext};
use crate::event_store::{EventStore, EventStoreError, StoredEvent, StreamAppend};
use crate::migrate::{self, Migration};
use crate::problem::ApiError;
use crate::read_model::{ProjectedTables, ReadModel};
use chain_core::HashAlg;
use std::time::Duration;
use tokio::sync::watch;

/// How long a command waits for the read model to show its effect before answering anyway
/// (from the stream, or 202: the events are durable either way).
pub const READ_YOUR_WRITES: Duration = Duration::from_secs(2);

/// A domain's event store and read model (tables `T`), with the projector keeping the one up
/// to date from the other.
pub struct DomainStorage<T: ProjectedTables> {
    /// The source of truth: streams of sealed events, with the outbox the relay publishes.
    pub store: EventStore,
    /// The domain's query side; its queries read it with
    /// [`with_read_conn!`](crate::with_read_conn).
    pub read_model: ReadModel<T>,
    /// The chain's hash profile, which every event digest follows.
    pub hash_alg: HashAlg,
    projected: watch::Receiver<i64>,
}

impl<T: ProjectedTables> DomainStorage<T> {
    /// Migrates the event store and the read model (the domain's `migrations`, then the
    /// kernel's read-model tables), starts the event store and spawns the projector, which
    /// stops with `context.shutdown`. Migrating again what the platform migrated is harmless.
    pub async fn start(
        domain: &'static str,
        migrations: &'static [Migration],
        context: &DomainContext,
    ) -> Result<Self, BoxError> {
        migrate::run(&context.events, "event_store", migrate::EVENT_STORE).await?;
        migrate::run(&context.read_model, domain, migrations).await?;
        let store = EventStore::start(&context.events)
            .await?
            .observed_by(context.metrics.clone());
        let read_model = ReadModel::<T>::open(&context.read_model).await?;
        let (reached, projected) = watch::channel(0);
        tokio::spawn(crate::projection::run_projector(
            store.clone(),
            read_model.clone(),
            reached,
            context.shutdown.clone(),
        ));
        Ok(DomainStorage {
            store,
            read_model,
            hash_alg: context.hash_alg,
            projected,
        })
    }

    /// Appends `appends` all together or not at all (the event store's `append_all`), and
    /// waits up to [`READ_YOUR_WRITES`] until the read model has projected them, so that what
    /// a command answers can be read back at once. The events, flattened in the order given.
    pub async fn record(&self, appends: Vec<StreamAppend>) -> Result<Vec<StoredEvent>, ApiError> {
        Ok(self.try_record(appends).await?)
    }

    /// [`DomainStorage::record`], with the event store's own error, for a command that
    /// decides again on a conflict or a duplicate key rather than answering it.
    pub async fn try_record(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        let stored: Vec<StoredEvent> = self
            .store
            .append_all(appends)
            .await?
            .into_iter()
            .flatten()
            .collect();
        if let Some(last) = stored.iter().map(|e| e.position).max() {
            let mut projected = self.projected.clone();
            // Committed either way: a read model that lags only makes the answer come from
            // the stream (or 202).
            let _ =
                tokio::time::timeout(READ_YOUR_WRITES, projected.wait_for(|p| *p >= last)).await;
        }
        Ok(stored)
    }

    /// Waits until the read model has projected every event committed so far.
    pub async fn caught_up(&self) {
        let head = *self.store.committed().borrow();
        let mut projected = self.projected.clone();
        let _ = projected.wait_for(|p| *p >= head).await;
    }
}
