//! The event store and outbox, each case on a real SQLite file and a real PostgreSQL database.

use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use veritrace_kernel::backend_tests;
use veritrace_kernel::bus::{Bus, InProcessBus, Settlement};
use veritrace_kernel::envelope::{EventEnvelope, SealedEnvelope, now_rfc3339};
use veritrace_kernel::event_store::{EventStore, EventStoreError};
use veritrace_kernel::migrate;
use veritrace_kernel::outbox::{EventBatch, OutboxRelay};
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

/// Only one relay per store: a second one waits until the first lease ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_relay_lease_per_postgres_store() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = open(&db).await;
    let mut first = store
        .try_relay_lease()
        .await
        .unwrap()
        .expect("the first relay gets the lease");
    assert!(first.is_held().await);
    assert!(
        store.try_relay_lease().await.unwrap().is_none(),
        "a second relay must wait"
    );
    drop(first);
    // The lock goes with its connection's session; the server may take a moment to see it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if store.try_relay_lease().await.unwrap().is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lease was not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
