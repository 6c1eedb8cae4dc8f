//! Reactions across domains on the in-process bus, on SQLite and PostgreSQL: every event is
//! reacted to exactly once however often it is delivered, and what cannot be handled is
//! dead-lettered, never dropped.

use serde_json::json;
use std::sync::Arc;
use veritrace_kernel::backend_tests;
use veritrace_kernel::bus::{Bus, InProcessBus, Message};
use veritrace_kernel::envelope::{EventEnvelope, now_rfc3339};
use veritrace_kernel::event_store::{EventStore, StoredEvent, StreamAppend};
use veritrace_kernel::migrate;
use veritrace_kernel::reaction::{self, ObservedEvent, React, ReactionError, ReactionSpec};

const TALLY: ReactionSpec = ReactionSpec {
    name: "tally",
    follows: &["source.Noted"],
};

/// Counts every `Noted` of the source domain in one stream, `tally`, at its current version:
/// an event handled twice would be counted twice. Refuses an event whose payload says `poison`.
struct Tally {
    store: EventStore,
}

#[async_trait::async_trait]
impl React for Tally {
    async fn react(
        &self,
        reaction: &str,
        event: &ObservedEvent,
    ) -> Result<Vec<StreamAppend>, ReactionError> {
        assert_eq!(reaction, "tally");
        if event.envelope.payload["poison"] == json!(true) {
            return Err(ReactionError::Poison("a poisoned note".into()));
        }
        if event.envelope.payload["ignore"] == json!(true) {
            return Ok(Vec::new());
        }
        let version = self
            .store
            .read_stream("tally")
            .await
            .map_err(|e| ReactionError::Retry(e.to_string()))?
            .len() as u64;
        let counted = EventEnvelope {
            id: uuid::Uuid::now_v7(),
            service: "counter".into(),
            stream: "tally".into(),
            stream_version: version + 1,
            event_type: "NoteCounted".into(),
            type_version: 1,
            occurred_at: event.envelope.occurred_at.clone(),
            recorded_at: now_rfc3339(),
            organisation: event.envelope.organisation.clone(),
            payload: json!({"note": event.envelope.id}),
        }
        .seal(chain_core::HashAlg::Sha3_256);
        Ok(vec![StreamAppend {
            stream: "tally".into(),
            expected_version: version,
            events: vec![counted],
            claims: Vec::new(),
            readers: event.readers.clone(),
        }])
    }
}

/// A bus message of the source domain carrying `notes`, as its relay would publish it.
fn message(notes: &[EventEnvelope]) -> Message {
    let events: Vec<_> = notes
        .iter()
        .map(|n| json!({"digest": "00".repeat(32), "envelope": n, "readers": [n.organisation]}))
        .collect();
    Message::new("source.Noted", json!({ "events": events }).to_string())
}

fn note(n: u64, payload: serde_json::Value) -> EventEnvelope {
    EventEnvelope {
        id: uuid::Uuid::now_v7(),
        service: "source".into(),
        stream: format!("note-{n}"),
        stream_version: 1,
        event_type: "Noted".into(),
        type_version: 1,
        occurred_at: now_rfc3339(),
        recorded_at: now_rfc3339(),
        organisation: "org-a".into(),
        payload,
    }
}

async fn tally(store: &EventStore) -> Vec<StoredEvent> {
    store.read_stream("tally").await.expect("read")
}

backend_tests! {
    async fn each_event_is_reacted_to_once_however_often_it_is_delivered(db: TestDb) {
        let database = db.open("counter").await;
        migrate::run(&database, "event_store", migrate::EVENT_STORE).await.unwrap();
        let store = EventStore::start(&database).await.unwrap();
        let bus = Arc::new(InProcessBus::new());
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        reaction::start(
            "counter",
            TALLY,
            store.clone(),
            Arc::new(Tally { store: store.clone() }),
            bus.as_ref(),
            shutdown,
        )
        .await
        .expect("subscribed");

        let notes: Vec<EventEnvelope> = (0..5).map(|n| note(n, json!({"n": n}))).collect();
        // Each message delivered three times, the second also inside a larger batch: the
        // in-process bus returns from publish once the reaction acknowledged it.
        for _ in 0..3 {
            bus.publish(vec![message(&notes[..2]), message(&notes[2..])]).await.unwrap();
            bus.publish(vec![message(&notes)]).await.unwrap();
        }
        let counted = tally(&store).await;
        let mut seen: Vec<String> = counted
            .iter()
            .map(|e| e.envelope.payload["note"].as_str().unwrap().to_string())
            .collect();
        seen.sort();
        let mut expected: Vec<String> = notes.iter().map(|n| n.id.to_string()).collect();
        expected.sort();
        assert_eq!(seen, expected, "each note counted exactly once");
        // The derived events carry the access list they were given.
        assert!(counted.iter().all(|e| e.readers == vec!["org-a".to_string()]));

        // Concurrent deliveries of one new note: still once.
        let late = note(9, json!({"n": 9}));
        let mut sends = Vec::new();
        for _ in 0..4 {
            let (bus, late) = (bus.clone(), late.clone());
            sends.push(tokio::spawn(async move { bus.publish(vec![message(&[late])]).await }));
        }
        for s in sends {
            s.await.unwrap().unwrap();
        }
        assert_eq!(tally(&store).await.len(), 6);

        // An event the reaction ignores records nothing; a poisoned one dead-letters its
        // message (the events before it in the message stay handled, once); a body that is not
        // an event batch is dead-lettered too. Nothing is dropped silently.
        let ignored = note(10, json!({"ignore": true}));
        let after_ignored = note(11, json!({"n": 11}));
        bus.publish(vec![message(&[ignored, after_ignored.clone()])]).await.unwrap();
        assert_eq!(tally(&store).await.len(), 7);
        let before_poison = note(12, json!({"n": 12}));
        bus.publish(vec![message(&[before_poison.clone(), note(13, json!({"poison": true}))])])
            .await
            .unwrap();
        bus.publish(vec![Message::new("source.Noted", "not json")]).await.unwrap();
        assert_eq!(bus.dead_letters().len(), 2);
        bus.publish(vec![message(&[before_poison, after_ignored])]).await.unwrap();
        let counted = tally(&store).await;
        assert_eq!(counted.len(), 8, "{counted:?}");
    }
}
