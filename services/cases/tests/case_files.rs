//! Case files on SQLite and PostgreSQL: evidence events, as the evidence relay publishes them,
//! delivered on the in-process bus (each more than once, some concurrently) are filed exactly
//! once, and the read model serves each caller the exhibits it may read.

use chain_core::HashAlg;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use veritrace_cases::CasesService;
use veritrace_cases::domain::{EXHIBITS, SERVICE, stream_of};
use veritrace_cases::projections::{self, CaseFilter};
use veritrace_kernel::EventEnvelope;
use veritrace_kernel::auth::{Caller, OrganisationRole, Role};
use veritrace_kernel::backend_tests;
use veritrace_kernel::bus::{Bus, InProcessBus, Message};
use veritrace_kernel::envelope::now_rfc3339;
use veritrace_kernel::event_store::StoredEvent;
use veritrace_kernel::reaction;
use veritrace_kernel::testing::{EventSchemas, TestDb};

const CASE: &str = "2026-CV-0042";

struct Started {
    svc: Arc<CasesService>,
    bus: Arc<InProcessBus>,
    _stop: tokio::sync::watch::Sender<bool>,
}

async fn start(db: &TestDb) -> Started {
    let (context, stop) = db.domain_context(SERVICE).await;
    let stop_rx = context.shutdown.clone();
    let svc = CasesService::start(&context)
        .await
        .expect("start the cases service");
    let bus = Arc::new(InProcessBus::new());
    reaction::start(
        SERVICE,
        EXHIBITS,
        svc.storage.store.clone(),
        svc.clone(),
        bus.as_ref(),
        stop_rx,
    )
    .await
    .expect("subscribed");
    Started {
        svc,
        bus,
        _stop: stop,
    }
}

fn organisation() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// An evidence event, as the evidence service records it, and who may read it.
struct Published {
    envelope: EventEnvelope,
    readers: Vec<String>,
}

fn evidence_event(
    organisation: &str,
    evidence_id: &str,
    version: u64,
    event_type: &str,
    payload: Value,
    readers: &[&str],
) -> Published {
    let mut all = vec![organisation.to_string()];
    all.extend(readers.iter().map(|r| r.to_string()));
    Published {
        envelope: EventEnvelope {
            id: uuid::Uuid::now_v7(),
            service: "evidence".into(),
            stream: format!("evidence-{evidence_id}"),
            stream_version: version,
            event_type: event_type.into(),
            type_version: 1,
            occurred_at: now_rfc3339(),
            recorded_at: now_rfc3339(),
            organisation: organisation.into(),
            payload,
        },
        readers: all,
    }
}

fn registration(organisation: &str, case: Option<&str>, title: &str) -> (String, Published) {
    let evidence_id = uuid::Uuid::now_v7().to_string();
    let mut payload = json!({
        "evidence_id": evidence_id,
        "content_hash": {"algorithm": "sha-256", "digest": HashAlg::Sha256.hash(title.as_bytes()).to_hex()},
        "title": title,
    });
    if let Some(c) = case {
        payload["case_reference"] = json!(c);
    }
    let event = evidence_event(
        organisation,
        &evidence_id,
        1,
        "EvidenceRegistered",
        payload,
        &["role:court"],
    );
    (evidence_id, event)
}

/// One bus message carrying `events`, as the evidence relay publishes them.
fn message(events: &[&Published]) -> Message {
    let routing_key = format!("evidence.{}", events[0].envelope.event_type);
    let events: Vec<Value> = events
        .iter()
        .map(|e| json!({"digest": "00".repeat(32), "envelope": e.envelope, "readers": e.readers}))
        .collect();
    Message::new(&routing_key, json!({ "events": events }).to_string())
}

fn caller(organisation_id: &str, organisation_role: OrganisationRole, role: Role) -> Caller {
    Caller {
        organisation_id: organisation_id.into(),
        name: organisation_id.into(),
        organisation_role,
        key_id: format!("key-{organisation_id}"),
        role,
    }
}

/// The exhibits of `case` that `c` may read: (evidence id, status), newest first.
async fn case_file(svc: &CasesService, c: &Caller, case: &str) -> Vec<(String, String)> {
    let filter = CaseFilter {
        case_reference: case.into(),
        readable_by: c.reads_as(),
        limit: 1000,
    };
    projections::exhibits(svc.read_model(), filter)
        .await
        .expect("query")
        .into_iter()
        .filter(|x| c.may_read(&x.readers))
        .map(|x| (x.row.evidence_id, x.row.status))
        .collect()
}

/// Every event of the cases store, once the projector has applied them all.
async fn projected(svc: &CasesService) -> Vec<StoredEvent> {
    tokio::time::timeout(Duration::from_secs(20), svc.storage.caught_up())
        .await
        .expect("the projector catches up");
    svc.storage
        .store
        .read_after(0, 10_000)
        .await
        .expect("read the store")
        .events
}

backend_tests! {
    async fn evidence_events_are_filed_in_their_case_exactly_once(db: TestDb) {
        let s = start(&db).await;
        let (a, b, stranger) = (organisation(), organisation(), organisation());
        let (a1, reg_a1) = registration(&a, Some(CASE), "A's contract");
        let (a2, reg_a2) = registration(&a, Some(CASE), "A's invoice");
        let (b1, reg_b1) = registration(&b, Some(CASE), "B's letter");
        let (_, reg_a_no_case) = registration(&a, None, "A's file of no case");
        let (other, reg_other) = registration(&b, Some("2026-CV-0099"), "B's other case");
        // A shares a1 with B, then withdraws a2; B withdraws evidence that is no exhibit.
        let share = evidence_event(&a, &a1, 2, "EvidenceShared",
            json!({"evidence_id": a1, "organisation_id": b}), &[b.as_str(), "role:court"]);
        let withdraw = evidence_event(&a, &a2, 2, "EvidenceWithdrawn",
            json!({"evidence_id": a2, "reason": "filed in error"}), &["role:court"]);
        let stray = uuid::Uuid::now_v7().to_string();
        let withdraw_stray = evidence_event(&b, &stray, 2, "EvidenceWithdrawn",
            json!({"evidence_id": stray, "reason": "never filed"}), &["role:court"]);

        // Every message delivered twice, the registrations also in one larger batch, and the
        // sharing four times at once: at least once, in any grouping.
        for _ in 0..2 {
            s.bus.publish(vec![
                message(&[&reg_a1, &reg_a2]),
                message(&[&reg_b1, &reg_a_no_case, &reg_other]),
            ]).await.unwrap();
            s.bus.publish(vec![message(&[&reg_a1, &reg_a2, &reg_b1])]).await.unwrap();
        }
        let mut sends = Vec::new();
        for _ in 0..4 {
            let (bus, m) = (s.bus.clone(), message(&[&share]));
            sends.push(tokio::spawn(async move { bus.publish(vec![m]).await }));
        }
        for send in sends {
            send.await.unwrap().unwrap();
        }
        for _ in 0..2 {
            s.bus.publish(vec![message(&[&withdraw, &withdraw_stray])]).await.unwrap();
        }
        assert!(s.bus.dead_letters().is_empty(), "{:?}", s.bus.dead_letters());

        let events = projected(&s.svc).await;
        let kinds: Vec<(String, String)> = events
            .iter()
            .map(|e| (e.envelope.stream.clone(), e.envelope.event_type.clone()))
            .collect();
        let mut expected = vec![
            (stream_of(&a1), "CaseExhibitAdded".to_string()),
            (stream_of(&a2), "CaseExhibitAdded".to_string()),
            (stream_of(&b1), "CaseExhibitAdded".to_string()),
            (stream_of(&other), "CaseExhibitAdded".to_string()),
            (stream_of(&a1), "CaseExhibitShared".to_string()),
            (stream_of(&a2), "CaseExhibitWithdrawn".to_string()),
        ];
        let mut got = kinds.clone();
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "each fact filed once");
        // Each event matches its published schema, and carries the evidence event's readers.
        let schemas = EventSchemas::new(SERVICE, veritrace_cases::domain::EVENT_TYPES).unwrap();
        for e in &events {
            schemas.check(&e.envelope).unwrap_or_else(|why| panic!("{why}"));
        }
        let added_a1 = events
            .iter()
            .find(|e| e.envelope.stream == stream_of(&a1) && e.envelope.stream_version == 1)
            .expect("a1 filed");
        assert_eq!(added_a1.readers, [a.clone(), "role:court".into()]);
        assert_eq!(added_a1.envelope.organisation, a);
        assert_eq!(added_a1.envelope.payload["registered_event_id"], json!(reg_a1.envelope.id));
        let shared_a1 = events
            .iter()
            .find(|e| e.envelope.event_type == "CaseExhibitShared")
            .expect("shared");
        assert_eq!(shared_a1.readers, [a.clone(), b.clone(), "role:court".into()]);

        // Who reads what of the case file.
        let court = caller(&organisation(), OrganisationRole::Court, Role::Court);
        let auditor = caller(&organisation(), OrganisationRole::Auditor, Role::Auditor);
        let a_reads = caller(&a, OrganisationRole::Member, Role::Reader);
        let b_writes = caller(&b, OrganisationRole::Member, Role::Writer);
        let stranger = caller(&stranger, OrganisationRole::Member, Role::Writer);
        let registered = |id: &str| (id.to_string(), "registered".to_string());
        let withdrawn = |id: &str| (id.to_string(), "withdrawn".to_string());
        let all = {
            // Newest registration first: b1, then a2, then a1 (registered in that order
            // reversed; ties broken by the id, which grows with time too).
            vec![registered(&b1), withdrawn(&a2), registered(&a1)]
        };
        assert_eq!(case_file(&s.svc, &court, CASE).await, all);
        assert_eq!(case_file(&s.svc, &auditor, CASE).await, all);
        assert_eq!(case_file(&s.svc, &a_reads, CASE).await, vec![withdrawn(&a2), registered(&a1)]);
        assert_eq!(
            case_file(&s.svc, &b_writes, CASE).await,
            vec![registered(&b1), registered(&a1)],
            "B reads its own exhibit and the one A shared with it"
        );
        assert!(case_file(&s.svc, &stranger, CASE).await.is_empty());
        assert_eq!(case_file(&s.svc, &court, "2026-CV-0099").await, vec![registered(&other)]);
        assert!(case_file(&s.svc, &a_reads, "2026-CV-0099").await.is_empty());
        assert!(case_file(&s.svc, &court, "2026-CV-0000").await.is_empty());
    }

    async fn events_it_cannot_read_are_dead_lettered_not_filed(db: TestDb) {
        let s = start(&db).await;
        let a = organisation();
        let (_, good) = registration(&a, Some(CASE), "a good one");
        let (_, mut newer) = registration(&a, Some(CASE), "a version it does not know");
        newer.envelope.type_version = 3;
        let (_, mut broken) = registration(&a, Some(CASE), "a broken one");
        broken.envelope.payload["content_hash"]["digest"] = json!("abc");
        s.bus.publish(vec![message(&[&good]), message(&[&newer]), message(&[&broken])])
            .await
            .unwrap();
        s.bus.publish(vec![Message::new("evidence.EvidenceRegistered", "not json")])
            .await
            .unwrap();
        assert_eq!(s.bus.dead_letters().len(), 3, "the unknown version, the broken payload, the non-batch");
        let events = projected(&s.svc).await;
        assert_eq!(events.len(), 1, "only the good registration is filed: {events:?}");
        assert_eq!(events[0].envelope.payload["title"], "a good one");
    }
}
