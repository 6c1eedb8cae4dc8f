//! The event store and outbox, each case on a real SQLite file and a real PostgreSQL database.

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;
use veritrace_kernel::backend_tests;
use veritrace_kernel::bus::{Bus, InProcessBus, Settlement};
use veritrace_kernel::db::Database;
use veritrace_kernel::envelope::{EventEnvelope, SealedEnvelope, now_rfc3339};
use veritrace_kernel::event_store::{
    EventStore, EventStoreError, LeaseRole, StoredEvent, StreamAppend, UnreadableEvent,
};
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

/// A relay of `store` onto the in-process `bus`.
fn relay_on(
    store: &EventStore,
    bus: InProcessBus,
    batch_size: usize,
    sweep: Duration,
) -> OutboxRelay {
    OutboxRelay {
        store: store.clone(),
        bus: Arc::new(bus) as Arc<dyn Bus>,
        batch_size,
        sweep_interval: sweep,
        linger: Duration::ZERO,
    }
}

/// The `n` of each event a message carries, in its order.
fn payload_numbers(batch: &EventBatch) -> impl Iterator<Item = u64> + '_ {
    batch
        .events
        .iter()
        .map(|e| e.envelope["payload"]["n"].as_u64().unwrap())
}

/// Subscribes to `bus` and collects the `n` of the first `count` events published, in the
/// order they arrive.
async fn published_payloads(bus: &InProcessBus, count: usize) -> tokio::task::JoinHandle<Vec<u64>> {
    let mut sub = bus.subscribe("q", &["test.*"]).await.unwrap();
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < count {
            let d = sub.next().await.unwrap();
            let batch: EventBatch = serde_json::from_slice(&d.body).unwrap();
            seen.extend(payload_numbers(&batch));
            d.settle(Settlement::Ack);
        }
        seen
    })
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
}

fn claiming(stream: &str, n: u64, keys: &[&str]) -> StreamAppend {
    StreamAppend {
        stream: stream.into(),
        expected_version: 0,
        events: vec![event(stream, 1, n)],
        claims: keys.iter().map(|k| k.to_string()).collect(),
        readers: Vec::new(),
    }
}

backend_tests! {
    async fn each_event_keeps_its_access_list_through_every_read_and_the_relay(db: TestDb) {
        let store = open(&db).await;
        let shared = StreamAppend {
            stream: "voucher-1".into(),
            expected_version: 0,
            events: vec![event("voucher-1", 1, 1), event("voucher-1", 2, 2)],
            claims: Vec::new(),
            // The recorder ("org") is always a reader, once, first.
            readers: vec!["holder".into(), "org".into(), "role:court".into(), "holder".into()],
        };
        let own = claiming("voucher-2", 3, &[]);
        let stored = store.append_all(vec![shared, own]).await.unwrap();
        let expected = vec!["org".to_string(), "holder".into(), "role:court".into()];
        assert!(stored[0].iter().all(|e| e.readers == expected), "{stored:?}");
        assert_eq!(stored[1][0].readers, vec!["org".to_string()]);
        let read = store.read_stream("voucher-1").await.unwrap();
        assert!(read.len() == 2 && read.iter().all(|e| e.readers == expected), "{read:?}");
        let after = store.read_after(0, 10).await.unwrap();
        assert_eq!(after.events.len(), 3);
        assert_eq!(after.events[2].readers, vec!["org".to_string()]);

        // The relay publishes each event's list beside its envelope.
        let bus = Arc::new(InProcessBus::new());
        let mut sub = bus.subscribe("q", &["#"]).await.unwrap();
        let relay = OutboxRelay {
            store: store.clone(),
            bus: bus.clone(),
            batch_size: 10,
            sweep_interval: Duration::from_millis(50),
            linger: Duration::ZERO,
        };
        // The in-process bus confirms a publish once its consumer settled it: consume meanwhile.
        let relaying = tokio::spawn(async move { relay.relay_once().await });
        let mut published = Vec::new();
        while published.len() < 3 {
            let delivery = tokio::time::timeout(Duration::from_secs(5), sub.next())
                .await
                .expect("a delivery")
                .expect("the bus is open");
            let batch: EventBatch = serde_json::from_slice(&delivery.body).unwrap();
            published.extend(batch.events.into_iter().map(|e| e.readers));
            delivery.settle(Settlement::Ack);
        }
        assert_eq!(relaying.await.unwrap().unwrap(), 3);
        assert_eq!(published, vec![expected.clone(), expected, vec!["org".to_string()]]);

        // A list too long, or with an empty entry, refuses the append.
        for readers in [vec![String::new()], (0..65).map(|i| format!("o{i}")).collect()] {
            let mut bad = claiming("voucher-3", 4, &[]);
            bad.readers = readers;
            let refused = store.append_all(vec![bad]).await;
            assert!(matches!(refused, Err(EventStoreError::Invalid(_))), "{refused:?}");
        }
    }

    async fn a_business_key_is_claimed_once_among_32_concurrent_claims(db: TestDb) {
        let store = open(&db).await;
        // 32 records, each its own stream, race to claim one key (and a key of their own).
        let mut tasks = Vec::new();
        for n in 0..32u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let stream = format!("invoice-{n}");
                let own = format!("own:{n}");
                store
                    .append_all(vec![claiming(&stream, n, &["seller-1:no-7", &own])])
                    .await
                    .map(|_| stream)
            }));
        }
        let (mut won, mut duplicates) = (Vec::new(), 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(stream) => won.push(stream),
                Err(EventStoreError::Duplicate { key, stream, .. }) => {
                    assert_eq!(key, "seller-1:no-7");
                    duplicates += 1;
                    // The refusal names the record that holds the key.
                    assert!(stream.starts_with("invoice-"), "{stream}");
                }
                Err(other) => panic!("unexpected: {other}"),
            }
        }
        assert_eq!(won.len(), 1, "{won:?}");
        assert_eq!(duplicates, 31);
        // Nothing of a refused append was written, its own key included.
        for n in 0..32u64 {
            let stream = format!("invoice-{n}");
            let events = store.read_stream(&stream).await.unwrap();
            assert_eq!(events.len(), usize::from(won.contains(&stream)), "{stream}");
        }
        let free = store
            .append_all(vec![claiming("other", 99, &["own:0", "own:31"])])
            .await;
        let winner_own = format!("own:{}", won[0].trim_start_matches("invoice-"));
        match free {
            Err(EventStoreError::Duplicate { key, .. }) => assert_eq!(key, winner_own),
            Ok(_) => assert!(!["own:0", "own:31"].contains(&winner_own.as_str())),
            Err(other) => panic!("unexpected: {other}"),
        }
        // A restarted store still knows the claim.
        drop(store);
        let store = open(&db).await;
        let again = store
            .append_all(vec![claiming("late", 100, &["seller-1:no-7"])])
            .await;
        assert!(
            matches!(&again, Err(EventStoreError::Duplicate { stream, .. }) if *stream == won[0]),
            "{again:?}"
        );
    }

    async fn two_stores_on_one_database_let_one_claim_win(db: TestDb) {
        // Two writers (two processes, or two replicas of a service) on one database.
        let (a, b) = (open(&db).await, open(&db).await);
        let mut tasks = Vec::new();
        for n in 0..16u64 {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                store
                    .append_all(vec![claiming(&format!("r-{n}"), n, &["shared-key"])])
                    .await
            }));
        }
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        let won = outcomes.iter().filter(|o| o.is_ok()).count();
        let refused = outcomes
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    Err(EventStoreError::Duplicate { .. } | EventStoreError::Unavailable(_))
                )
            })
            .count();
        // A writer that lost a race for the database's lock may be told to retry; two claims
        // of one key never both pass.
        assert_eq!(won, 1, "{outcomes:?}");
        assert_eq!(won + refused, 16, "{outcomes:?}");
    }

    async fn an_append_cannot_claim_a_key_twice_or_without_events(db: TestDb) {
        let store = open(&db).await;
        let twice = store
            .append_all(vec![claiming("a", 1, &["k", "k"])])
            .await;
        assert!(matches!(twice, Err(EventStoreError::Invalid(_))), "{twice:?}");
        let across = store
            .append_all(vec![claiming("a", 1, &["k"]), claiming("b", 2, &["k"])])
            .await;
        assert!(matches!(across, Err(EventStoreError::Invalid(_))), "{across:?}");
        let empty = store
            .append_all(vec![StreamAppend {
                stream: "c".into(),
                expected_version: 0,
                events: Vec::new(),
                claims: vec!["k".into()],
                readers: Vec::new(),
            }])
            .await;
        assert!(matches!(empty, Err(EventStoreError::Invalid(_))), "{empty:?}");
        let long = "k".repeat(513);
        for bad in ["", "nul\0inside", long.as_str()] {
            let refused = store.append_all(vec![claiming("e", 4, &[bad])]).await;
            assert!(matches!(refused, Err(EventStoreError::Invalid(_))), "{refused:?}");
        }
        // None of it was written: the key is still free.
        store
            .append_all(vec![claiming("d", 3, &["k"])])
            .await
            .expect("the key is free");
    }

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
                seen.extend(payload_numbers(&batch));
                d.settle(Settlement::Ack);
            }
            seen
        });
        let relay = relay_on(&store, bus, 7, Duration::from_secs(1));
        let mut relayed = 0;
        while relayed < 50 {
            relayed += relay.relay_once().await.unwrap();
        }
        assert_eq!(consumer.await.unwrap(), (0..50).collect::<Vec<u64>>());
        assert_eq!(store.outbox_len().await.unwrap(), 0);
    }

    /// A stored row no reader can parse (nested beyond serde's 128 levels), and an event the
    /// read model refuses: each is set aside once, by the relay and by the projector, and every
    /// event behind them is published and projected.
    async fn poison_rows_are_set_aside_and_the_rest_flows_on(db: TestDb) {
        let store = open(&db).await;
        store.append("a", 0, vec![event("a", 1, 1)]).await.unwrap();
        let poison = insert_unreadable_event(&store).await;
        let refused = store.append("b", 0, vec![event("b", 1, UNAPPLIABLE)]).await.unwrap()[0]
            .position;
        let last = store.append("c", 0, vec![event("c", 1, 3)]).await.unwrap()[0].position;
        assert!(poison < refused && refused < last);

        let bus = InProcessBus::new();
        let mut sub = bus.subscribe("q", &["test.*"]).await.unwrap();
        // The bus confirms a publication once it is settled: the consumer runs beside the relay.
        let consumer = tokio::spawn(async move {
            let mut published = Vec::new();
            while published.len() < 3 {
                let d = sub.next().await.unwrap();
                let batch: EventBatch = serde_json::from_slice(&d.body).unwrap();
                published.extend(batch.events.iter().map(|e| e.envelope["payload"]["n"].as_u64()));
                d.settle(Settlement::Ack);
            }
            published
        });
        let relay = relay_on(&store, bus, 100, Duration::from_secs(1));
        assert_eq!(relay.relay_once().await.unwrap(), 4, "three published, one set aside");
        assert_eq!(store.outbox_len().await.unwrap(), 0);
        let published = tokio::time::timeout(Duration::from_secs(30), consumer)
            .await
            .expect("every readable event is published")
            .unwrap();
        assert_eq!(published, vec![Some(1), Some(UNAPPLIABLE), Some(3)]);

        let applied = Arc::new(AtomicUsize::new(0));
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let (reached, mut position) = tokio::sync::watch::channel(0);
        tokio::spawn(run_projector(
            store.clone(),
            Counting {
                checkpoint: Arc::new(AtomicI64::new(0)),
                applied: applied.clone(),
            },
            reached,
            shutdown,
        ));
        tokio::time::timeout(Duration::from_secs(30), position.wait_for(|p| *p >= last))
            .await
            .expect("the projector passes the poison rows")
            .unwrap();
        let _ = stop.send(true);
        assert_eq!(applied.load(Ordering::SeqCst), 2);
        assert_eq!(
            store.set_aside_counts().await.unwrap(),
            vec![("projection:counting".to_string(), 2), ("relay".to_string(), 1)]
        );
        // Setting aside again changes nothing.
        let again = UnreadableEvent { position: poison, reason: "again".into() };
        store.set_aside("relay", &[again]).await.unwrap();
        assert_eq!(store.set_aside_counts().await.unwrap()[1], ("relay".to_string(), 1));
    }

    /// The running relay: first what waited in the outbox (more than one round of it), then
    /// what is committed while it runs, each event once and in commit order.
    async fn the_running_relay_publishes_the_outbox_then_each_commit_once_in_order(db: TestDb) {
        let store = open(&db).await;
        for n in 0..20u64 {
            store.append(&format!("w-{n}"), 0, vec![event(&format!("w-{n}"), 1, n)]).await.unwrap();
        }
        let bus = InProcessBus::new();
        let consumer = published_payloads(&bus, 60).await;
        let relay = relay_on(&store, bus, 7, Duration::from_secs(60));
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let relaying = tokio::spawn(relay.run(shutdown));
        // Commits while the relay runs: single events, and groups of streams in one append.
        for n in 20..40u64 {
            store.append(&format!("r-{n}"), 0, vec![event(&format!("r-{n}"), 1, n)]).await.unwrap();
        }
        for n in (40..60u64).step_by(4) {
            let group = (n..n + 4).map(|k| claiming(&format!("g-{k}"), k, &[])).collect();
            store.append_all(group).await.unwrap();
        }
        let seen = tokio::time::timeout(Duration::from_secs(30), consumer)
            .await
            .expect("every event is published")
            .unwrap();
        assert_eq!(seen, (0..60).collect::<Vec<u64>>());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.outbox_len().await.unwrap() > 0 {
            assert!(std::time::Instant::now() < deadline, "the outbox is never emptied");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stop.send(true);
        relaying.await.unwrap();
    }

    /// After a round that caught up with the writer, the relay lets commits gather for its
    /// linger: five appends made meanwhile go out as one message, not five. A lone commit is
    /// published without waiting.
    async fn commits_made_while_the_relay_lingers_go_out_in_one_round(db: TestDb) {
        let store = open(&db).await;
        let bus = InProcessBus::new();
        let mut sub = bus.subscribe("q", &["test.*"]).await.unwrap();
        let relay = OutboxRelay {
            linger: Duration::from_secs(3),
            ..relay_on(&store, bus, 100, Duration::from_secs(60))
        };
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let relaying = tokio::spawn(relay.run(shutdown));
        let mut next_message = async || {
            let d = sub.next().await.unwrap();
            let batch: EventBatch = serde_json::from_slice(&d.body).unwrap();
            d.settle(Settlement::Ack);
            payload_numbers(&batch).collect::<Vec<_>>()
        };
        store.append("l-0", 0, vec![event("l-0", 1, 0)]).await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(2), next_message())
            .await
            .expect("a lone commit goes out before the linger would have ended");
        assert_eq!(first, [0]);
        for n in 1..=5u64 {
            let stream = format!("l-{n}");
            store.append(&stream, 0, vec![event(&stream, 1, n)]).await.unwrap();
        }
        let gathered = tokio::time::timeout(Duration::from_secs(10), next_message())
            .await
            .expect("the gathered commits are published");
        assert_eq!(gathered, [1, 2, 3, 4, 5], "one message for the five commits");
        let _ = stop.send(true);
        relaying.await.unwrap();
    }

    async fn an_unconfirmed_message_stays_in_the_outbox(db: TestDb) {
        let store = open(&db).await;
        store.append("s", 0, vec![event("s", 1, 0)]).await.unwrap();
        // No queue is bound: the bus cannot route, so nothing may be marked published.
        let relay = relay_on(&store, InProcessBus::new(), 10, Duration::from_secs(1));
        assert!(relay.relay_once().await.is_err());
        assert_eq!(store.outbox_len().await.unwrap(), 1);
    }

    async fn the_feed_hands_over_exactly_what_the_store_reads_back(db: TestDb) {
        let store = open(&db).await;
        let mut early = store.feed();
        let stored = store
            .append_all(vec![claiming("a-1", 1, &[]), claiming("a-2", 2, &[])])
            .await
            .unwrap();
        store.append("a-3", 0, vec![event("a-3", 1, 3)]).await.unwrap();
        // A feed opened after the commits has nothing in memory: it reads the store.
        let mut late = store.feed();
        let read = store.read_after(0, 100).await.unwrap();
        assert_eq!(read.events.len(), 3);
        assert_eq!(read.events[0].position, stored[0][0].position);
        let same = |a: &StoredEvent, b: &StoredEvent| {
            assert_eq!(
                (a.position, &a.envelope, &a.canonical, a.digest, &a.readers),
                (b.position, &b.envelope, &b.canonical, b.digest, &b.readers)
            );
        };
        for feed in [&mut early, &mut late] {
            let batch = feed.read_after(0, 100).await.unwrap();
            assert_eq!(batch.last, read.last);
            assert_eq!(batch.events.len(), 3);
            batch.events.iter().zip(&read.events).for_each(|(a, b)| same(a, b));
            assert!(batch.unreadable.is_empty());
            // Caught up: nothing more, from memory or the store.
            assert!(feed.read_after(read.last, 100).await.unwrap().events.is_empty());
        }
        // From a position behind what the feed holds in memory, the store fills the gap.
        let mut behind = store.feed();
        store.append("a-4", 0, vec![event("a-4", 1, 4)]).await.unwrap();
        let batch = behind.read_after(1, 100).await.unwrap();
        let positions: Vec<i64> = batch.events.iter().map(|e| e.position).collect();
        let expected: Vec<i64> = store.read_after(1, 100).await.unwrap().events.iter().map(|e| e.position).collect();
        assert_eq!(positions, expected);
        assert_eq!(positions.len(), 3);
    }

    async fn appends_wait_while_the_backlog_is_over_its_limit_and_at_most_two_seconds(db: TestDb) {
        let store = open(&db).await;
        store.limit_backlog(2);
        let first = store
            .append("b-1", 0, vec![event("b-1", 1, 1), event("b-1", 2, 2), event("b-1", 3, 3)])
            .await
            .unwrap();
        // Three events wait for the bus, one more than the limit: the next append waits for
        // the relay...
        let waiting = {
            let store = store.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                store.append("b-2", 0, vec![event("b-2", 1, 4)]).await.unwrap();
                started.elapsed()
            })
        };
        let committed = store.committed();
        assert!(
            tokio::time::timeout(Duration::from_millis(300), committed.clone().wait_for(|h| *h > 3))
                .await
                .is_err(),
            "an append over the backlog limit was committed without waiting"
        );
        // ...and goes on once the relay confirms what it published.
        let positions: Vec<i64> = first.iter().map(|e| e.position).collect();
        store.mark_published(&positions).await.unwrap();
        let waited = waiting.await.unwrap();
        assert!(waited < Duration::from_millis(1900), "waited {waited:?}");
        assert_eq!(store.outbox_len().await.unwrap(), 1);

        // With nothing confirmed, an append waits two seconds and is then committed anyway.
        store
            .append("b-3", 0, vec![event("b-3", 1, 5), event("b-3", 2, 6)])
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let last = tokio::time::timeout(
            Duration::from_secs(10),
            store.append("b-4", 0, vec![event("b-4", 1, 7)]),
        )
        .await
        .expect("committed in the end")
        .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(1900));
        assert_eq!(store.outbox_len().await.unwrap(), 4);
        assert_eq!(last[0].position, *store.committed().borrow());
        // Without a limit, nothing waits.
        store.limit_backlog(0);
        let started = std::time::Instant::now();
        store.append("b-5", 0, vec![event("b-5", 1, 8)]).await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(1900));
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

/// Two processes appending to one PostgreSQL store: the relay (in the process holding the
/// lease) follows its own writer's commits in memory, and takes the other's, which show as
/// gaps between them, from the store: every event once, in commit order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_publishes_another_process_appends_between_its_own_once_in_order() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (own, other) = (open(&db).await, open(&db).await);
    let mut feed = own.feed();
    let bus = InProcessBus::new();
    let consumer = published_payloads(&bus, 30).await;
    // The other process's commits do not wake this relay: its sweep finds them.
    let relay = relay_on(&own, bus, 5, Duration::from_millis(50));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let relaying = tokio::spawn(relay.run(shutdown));
    for n in 0..30u64 {
        let (store, stream) = match n % 3 {
            1 => (&other, format!("other-{n}")),
            _ => (&own, format!("own-{n}")),
        };
        store
            .append(&stream, 0, vec![event(&stream, 1, n)])
            .await
            .unwrap();
    }
    let seen = tokio::time::timeout(Duration::from_secs(30), consumer)
        .await
        .expect("every event is published")
        .unwrap();
    assert_eq!(seen, (0..30).collect::<Vec<u64>>());
    // Read round by round, the feed gives the same: its own groups from memory, the other's
    // from the store.
    let stored = own.read_after(0, 100).await.unwrap();
    let (mut fed, mut through) = (Vec::new(), 0);
    while through < stored.last {
        let batch = feed.read_after(through, 100).await.unwrap();
        assert!(batch.last > through, "the feed stops short of the head");
        fed.extend(
            batch
                .events
                .iter()
                .map(|e| (e.position, e.envelope.payload["n"].as_u64())),
        );
        through = batch.last;
    }
    let expected: Vec<_> = stored
        .events
        .iter()
        .map(|e| (e.position, e.envelope.payload["n"].as_u64()))
        .collect();
    assert_eq!(fed, expected);
    assert_eq!(expected.len(), 30);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while own.outbox_len().await.unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the outbox is never emptied"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(true);
    relaying.await.unwrap();
}

/// Writes, as a damaged or hostile store could hold it, an event whose envelope no reader can
/// parse (nested 200 levels deep) and its outbox row; returns its position.
async fn insert_unreadable_event(store: &EventStore) -> i64 {
    let envelope = format!("{{\"payload\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    let digest = "ab".repeat(32);
    let id = uuid::Uuid::now_v7().to_string();
    let position: i64 = match store.database() {
        Database::Sqlite(db) => sqlx::query_scalar(
            "INSERT INTO events (event_id, stream, stream_version, event_type, envelope, digest, recorded_at)
             VALUES (?, 'poison', 1, 'Noted', ?, ?, '2026-01-01T00:00:00.000Z') RETURNING position",
        )
        .bind(&id)
        .bind(&envelope)
        .bind(&digest)
        .fetch_one(&db.writer)
        .await
        .unwrap(),
        Database::Postgres(db) => sqlx::query_scalar(
            "INSERT INTO events (event_id, stream, stream_version, event_type, envelope, digest, recorded_at)
             VALUES ($1::UUID, 'poison', 1, 'Noted', $2, $3, '2026-01-01T00:00:00.000Z') RETURNING position",
        )
        .bind(&id)
        .bind(&envelope)
        .bind(&digest)
        .fetch_one(&db.pool)
        .await
        .unwrap(),
    };
    veritrace_kernel::on_pool!(store.database(), writer, |pool| {
        sqlx::query("INSERT INTO outbox (position) VALUES ($1)")
            .bind(position)
            .execute(pool)
            .await
            .map(|_| ())
            .unwrap()
    });
    position
}

/// A read model that counts what it applies; its checkpoint is shared, as a database's is.
struct Counting {
    checkpoint: Arc<AtomicI64>,
    applied: Arc<AtomicUsize>,
}

/// The payload `n` that [`Counting`] can never apply.
const UNAPPLIABLE: u64 = 666;

#[async_trait::async_trait]
impl Projection for Counting {
    type Error = String;

    fn name(&self) -> &'static str {
        "counting"
    }

    async fn checkpoint(&self) -> Result<i64, String> {
        Ok(self.checkpoint.load(Ordering::SeqCst))
    }

    async fn apply(&self, events: Arc<[StoredEvent]>, through: i64) -> Result<i64, String> {
        if let Some(e) = events
            .iter()
            .find(|e| e.envelope.payload["n"] == UNAPPLIABLE)
        {
            return Err(format!("unappliable at {}", e.position));
        }
        self.applied.fetch_add(events.len(), Ordering::SeqCst);
        self.checkpoint.store(through, Ordering::SeqCst);
        Ok(through)
    }

    fn unappliable(error: &String) -> Option<i64> {
        error.strip_prefix("unappliable at ")?.parse().ok()
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

    fn name(&self) -> &'static str {
        "flaky"
    }

    async fn checkpoint(&self) -> Result<i64, String> {
        self.inner.checkpoint().await
    }

    async fn apply(&self, events: Arc<[StoredEvent]>, through: i64) -> Result<i64, String> {
        if self.failing.load(Ordering::SeqCst) > 0 {
            self.failing.fetch_sub(1, Ordering::SeqCst);
            return Err("the read model is unavailable".into());
        }
        self.inner.apply(events, through).await
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
