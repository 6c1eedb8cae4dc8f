//! The event store and outbox, each case on a real SQLite file and a real PostgreSQL database.

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;
use veritrace_kernel::backend_tests;
use veritrace_kernel::bus::{Bus, InProcessBus, Settlement};
use veritrace_kernel::envelope::{EventEnvelope, SealedEnvelope, now_rfc3339};
use veritrace_kernel::event_store::{EventStore, EventStoreError, LeaseRole, StoredEvent};
use veritrace_kernel::migrate;
use veritrace_kernel::outbox::{EventBatch, OutboxRelay};
use veritrace_kernel::projection::{Projection, run_projector};
use veritrace_kernel::testing::TestDb;

async fn open(db: &TestDb) -> EventStore {
    let db = db.open("es").await;
    migrate::run(&db, "event_store", migrate::EVENT_STORE)
        .await
        .unwrap();
    EventStore::start(&db).await.unwrap()
}

fn event(stream: &str, version: u64, n: u64) -> SealedEnvelope {
    EventEnvelope {
        id: uuid::Uuid::now_v7(),
        service: "test".into(),
        stream: stream.into(),
        stream_version: version,
        event_type: "Noted".into(),
        type_version: 1,
        occurred_at: now_rfc3339(),
        recorded_at: now_rfc3339(),
        organisation: "org".into(),
        payload: json!({"n": n}),
    }
    .seal(chain_core::HashAlg::Sha3_256)
    .unwrap()
}

backend_tests! {
    async fn concurrent_appends_at_one_version_one_wins(db: TestDb) {
        let store = open(&db).await;
        store
            .append("s-1", 0, vec![event("s-1", 1, 0)])
            .await
            .unwrap();
        // Many writers race for version 2 of the same stream; exactly one may win.
        let mut tasks = Vec::new();
        for n in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.append("s-1", 1, vec![event("s-1", 2, n)]).await
            }));
        }
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => won += 1,
                Err(EventStoreError::Conflict {
                    expected: 1,
                    actual: 2,
                    ..
                }) => {}
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(won, 1);
        let events = store.read_stream("s-1").await.unwrap();
        assert_eq!(
            events
                .iter()
                .map(|e| e.envelope.stream_version)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        // The losers wrote nothing, not even outbox rows.
        assert_eq!(store.outbox_len().await.unwrap(), 2);
    }

    async fn a_multi_event_append_is_all_or_nothing(db: TestDb) {
        let store = open(&db).await;
        store.append("s", 0, vec![event("s", 1, 0)]).await.unwrap();
        let err = store
            .append("s", 0, vec![event("s", 1, 1), event("s", 2, 2)])
            .await
            .unwrap_err();
        assert!(matches!(err, EventStoreError::Conflict { .. }));
        // Versions that do not continue the stream are refused before anything is written.
        assert!(matches!(
            store.append("s", 1, vec![event("s", 3, 3)]).await,
            Err(EventStoreError::Invalid(_))
        ));
        assert_eq!(store.read_stream("s").await.unwrap().len(), 1);
    }

    async fn the_outbox_survives_a_restart_and_is_relayed_in_commit_order(db: TestDb) {
        {
            let store = open(&db).await;
            for n in 0..50 {
                let stream = format!("s-{}", n % 5);
                let version = n / 5 + 1;
                store
                    .append(&stream, version - 1, vec![event(&stream, version, n)])
                    .await
                    .unwrap();
            }
            // Dropped without relaying: as if the process died after its commits.
        }
        let store = open(&db).await;
        assert_eq!(store.outbox_len().await.unwrap(), 50);
        let bus = InProcessBus::new();
        let mut sub = bus.subscribe("q", &["test.*"]).await.unwrap();
        let consumer = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut last_position = 0;
            while seen.len() < 50 {
                let d = sub.next().await.unwrap();
                let batch: EventBatch = serde_json::from_slice(&d.body).unwrap();
                // `<service>:<first>-<last position>`, consecutive and covering the message.
                let id = d.message_id.clone().expect("the relay names its messages");
                let (first, last) = id
                    .strip_prefix("test:")
                    .and_then(|range| range.split_once('-'))
                    .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
                    .unwrap_or_else(|| panic!("message id {id}"));
                assert!(first > last_position, "{id} after {last_position}");
                assert_eq!(last - first + 1, batch.events.len() as i64, "{id}");
                last_position = last;
                seen.extend(
                    batch
                        .events
                        .into_iter()
                        .map(|e| e.envelope["payload"]["n"].as_u64().unwrap()),
                );
                d.settle(Settlement::Ack);
            }
            seen
        });
        let relay = OutboxRelay {
            store: store.clone(),
            bus: Arc::new(bus) as Arc<dyn Bus>,
            batch_size: 7,
            sweep_interval: Duration::from_secs(1),
        };
        let mut relayed = 0;
        while relayed < 50 {
            relayed += relay.relay_once().await.unwrap();
        }
        assert_eq!(consumer.await.unwrap(), (0..50).collect::<Vec<u64>>());
        assert_eq!(store.outbox_len().await.unwrap(), 0);
    }

    async fn an_unconfirmed_message_stays_in_the_outbox(db: TestDb) {
        let store = open(&db).await;
        store.append("s", 0, vec![event("s", 1, 0)]).await.unwrap();
        // No queue is bound: the bus cannot route, so nothing may be marked published.
        let relay = OutboxRelay {
            store: store.clone(),
            bus: Arc::new(InProcessBus::new()) as Arc<dyn Bus>,
            batch_size: 10,
            sweep_interval: Duration::from_secs(1),
        };
        assert!(relay.relay_once().await.is_err());
        assert_eq!(store.outbox_len().await.unwrap(), 1);
    }
}

/// One process per store and role: a second candidate waits, on its own connection, until
/// the first lease ends; roles do not exclude each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lease_per_postgres_store_and_role() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = open(&db).await;
    let mut first = store.lease(LeaseRole::Relay);
    assert!(
        first.check().await.unwrap(),
        "the first relay gets the lease"
    );
    assert!(first.check().await.unwrap(), "and keeps it");
    let mut second = store.lease(LeaseRole::Relay);
    for _ in 0..3 {
        assert!(!second.check().await.unwrap(), "a second relay must wait");
    }
    let mut projector = store.lease(LeaseRole::Projector);
    assert!(projector.check().await.unwrap(), "another role is free");

    // Dropping a lease closes its connection, which ends the lock.
    drop(first);
    // The lock goes with its connection's session; the server may take a moment to see it.
    // The waiting candidate retries on the connection it kept.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !second.check().await.unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lease was not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A read model that counts what it applies; its checkpoint is shared, as a database's is.
struct Counting {
    checkpoint: Arc<AtomicI64>,
    applied: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Projection for Counting {
    type Error = String;

    async fn checkpoint(&self) -> Result<i64, String> {
        Ok(self.checkpoint.load(Ordering::SeqCst))
    }

    async fn apply(&self, events: Vec<StoredEvent>) -> Result<i64, String> {
        let last = events.last().map(|e| e.position).ok_or("no events")?;
        self.applied.fetch_add(events.len(), Ordering::SeqCst);
        self.checkpoint.store(last, Ordering::SeqCst);
        Ok(last)
    }
}

/// A read model that cannot write its first `failing` chunks (a database hiccup, say).
struct Flaky {
    failing: AtomicUsize,
    inner: Counting,
}

#[async_trait::async_trait]
impl Projection for Flaky {
    type Error = String;

    async fn checkpoint(&self) -> Result<i64, String> {
        self.inner.checkpoint().await
    }

    async fn apply(&self, events: Vec<StoredEvent>) -> Result<i64, String> {
        if self.failing.load(Ordering::SeqCst) > 0 {
            self.failing.fetch_sub(1, Ordering::SeqCst);
            return Err("the read model is unavailable".into());
        }
        self.inner.apply(events).await
    }
}

/// A projection that fails is retried from where it stopped, and nothing is applied twice.
#[tokio::test]
async fn a_failing_projection_is_retried_from_its_checkpoint() {
    let db = TestDb::sqlite().await;
    let store = open(&db).await;
    let mut last = 0;
    for n in 0..10u64 {
        let stream = format!("f-{n}");
        last = store
            .append(&stream, 0, vec![event(&stream, 1, n)])
            .await
            .unwrap()[0]
            .position;
    }
    let applied = Arc::new(AtomicUsize::new(0));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (reached, mut position) = tokio::sync::watch::channel(0);
    tokio::spawn(run_projector(
        store.clone(),
        Flaky {
            failing: AtomicUsize::new(2),
            inner: Counting {
                checkpoint: Arc::new(AtomicI64::new(0)),
                applied: applied.clone(),
            },
        },
        reached,
        shutdown,
    ));
    tokio::time::timeout(Duration::from_secs(30), position.wait_for(|p| *p >= last))
        .await
        .expect("the projector recovers")
        .unwrap();
    assert_eq!(applied.load(Ordering::SeqCst), 10);
    let _ = stop.send(true);
}

/// Two replicas' projectors on one store: one applies every event once, the other follows its
/// checkpoint, and both report the position reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_projector_per_postgres_store_and_the_standby_follows() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = open(&db).await;
    let checkpoint = Arc::new(AtomicI64::new(0));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let applied = Arc::new(AtomicUsize::new(0));
        let (reached, position) = tokio::sync::watch::channel(0);
        tokio::spawn(run_projector(
            store.clone(),
            Counting {
                checkpoint: checkpoint.clone(),
                applied: applied.clone(),
            },
            reached,
            shutdown.clone(),
        ));
        replicas.push((applied, position));
    }
    let mut last = 0;
    for n in 0..30u64 {
        let stored = store
            .append(&format!("p-{n}"), 0, vec![event(&format!("p-{n}"), 1, n)])
            .await
            .unwrap();
        last = stored.last().unwrap().position;
    }
    for (_, position) in &mut replicas {
        tokio::time::timeout(Duration::from_secs(30), position.wait_for(|p| *p >= last))
            .await
            .expect("every replica reaches the last position")
            .unwrap();
    }
    let applied: Vec<usize> = replicas
        .iter()
        .map(|(a, _)| a.load(Ordering::SeqCst))
        .collect();
    assert_eq!(applied.iter().sum::<usize>(), 30, "{applied:?}");
    assert!(applied.contains(&0), "one projector only: {applied:?}");
    let _ = stop.send(true);
}
