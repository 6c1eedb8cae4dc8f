//! Subscriptions to named queries, delivered by webhook: each matching event once, in capture
//! order, signed with the subscriber's token; a failed delivery is tried again later and
//! later ([`crate::domain::subscription::backoff`]), the events after it waiting behind it.
//!
//! A subscription's cursor (`delivered_through`) moves only once the subscriber acknowledged
//! a delivery (2xx), and a graceful stop lets the delivery under way finish first
//! ([`Subscriptions::stopped`]), so no event is sent twice across a restart. Only a crash
//! between the subscriber's acknowledgement and the cursor's move sends that one delivery
//! again, under the same `Veritrace-Delivery` id, which a subscriber can recognise.

pub mod delivery;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use store::SubscriptionStore;
use tokio::sync::{Mutex, Notify, watch};
use tokio_cron_scheduler::{Job, JobScheduler};

/// The subscriptions of one provenance service, and what wakes their deliverer.
pub struct Subscriptions {
    pub store: SubscriptionStore,
    /// Wakes the deliverer: a new subscription, a scheduled time, new events.
    pub wake: Arc<Notify>,
    scheduler: JobScheduler,
    /// The scheduler's job of each scheduled subscription.
    jobs: Mutex<HashMap<String, uuid::Uuid>>,
    stopped: watch::Receiver<bool>,
    stopped_tx: watch::Sender<bool>,
}

impl Subscriptions {
    pub async fn new(store: SubscriptionStore) -> Result<Subscriptions, String> {
        let scheduler = JobScheduler::new().await.map_err(|e| e.to_string())?;
        scheduler.start().await.map_err(|e| e.to_string())?;
        let (stopped_tx, stopped) = watch::channel(false);
        Ok(Subscriptions {
            store,
            wake: Arc::new(Notify::new()),
            scheduler,
            jobs: Mutex::new(HashMap::new()),
            stopped,
            stopped_tx,
        })
    }

    /// Runs scheduled subscription `id` on `cron` (6 fields, seconds first): each time, it is
    /// marked due and the deliverer woken.
    pub async fn schedule(&self, id: &str, cron: &str) -> Result<(), String> {
        let (store, wake, subscription) = (self.store.clone(), self.wake.clone(), id.to_owned());
        let job = Job::new_async(cron, move |_, _| {
            let (store, wake, subscription) = (store.clone(), wake.clone(), subscription.clone());
            Box::pin(async move {
                if let Err(e) = store.mark_due(&subscription).await {
                    tracing::warn!(error = %e, subscription, "cannot mark a scheduled subscription due");
                }
                wake.notify_one();
            })
        })
        .map_err(|e| format!("{cron:?} is not a schedule: {e}"))?;
        let job_id = self.scheduler.add(job).await.map_err(|e| e.to_string())?;
        self.jobs.lock().await.insert(id.to_owned(), job_id);
        Ok(())
    }

    /// Checks that `cron` is a schedule the scheduler runs.
    pub fn check_schedule(cron: &str) -> Result<(), String> {
        Job::new_async(cron, |_, _| Box::pin(async {}))
            .map(|_| ())
            .map_err(|e| format!("{cron:?} is not a schedule: {e}"))
    }

    /// Stops running subscription `id` on its schedule.
    pub async fn unschedule(&self, id: &str) {
        if let Some(job) = self.jobs.lock().await.remove(id) {
            let _ = self.scheduler.remove(&job).await;
        }
    }

    /// Resolves once the deliverer has stopped (after the platform's shutdown), its delivery
    /// under way finished and recorded.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stopped = self.stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    }

    pub(crate) fn mark_stopped(&self) {
        let _ = self.stopped_tx.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::subscription::Schedule;

    /// Every schedule the request's rules let through is one the scheduler runs.
    #[test]
    fn the_scheduler_takes_every_schedule_the_rules_allow() {
        let fields = [
            "*",
            "*/1",
            "*/59",
            "0",
            "59",
            "0,30,59",
            "0/30",
            "5/59,*/7",
            "*/4,0/1,54/49",
        ];
        for second in fields {
            for (hour, dom, month, dow) in [
                (None, None, None, None),
                (Some("*/23"), Some("31"), Some("12"), Some("6")),
                (Some("0,23"), Some("*/31"), Some("*/12"), Some("0,6")),
                (Some("1/23"), Some("31/31"), Some("12/12"), Some("6/6,0")),
                (Some("23"), Some("1,15"), Some("1"), Some("*/6")),
            ] {
                let schedule = Schedule {
                    second: Some(second.into()),
                    minute: Some(second.into()),
                    hour: hour.map(Into::into),
                    day_of_month: dom.map(Into::into),
                    month: month.map(Into::into),
                    day_of_week: dow.map(Into::into),
                };
                let cron = schedule.cron().expect("allowed");
                assert!(Subscriptions::check_schedule(&cron).is_ok(), "{cron}");
            }
        }
    }
}
