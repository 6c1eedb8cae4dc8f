//! The evidence service's write and read sides on SQLite and on PostgreSQL: commands append
//! events, the projector builds the read model, queries answer from it, and a restart resumes
//! from the checkpoint without projecting anything twice. Events stored at an older version of
//! their type read as the current one everywhere, and the read model's migrations keep what
//! was projected before them.

use chain_core::{ContentHashAlg, HashAlg};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use veritrace_evidence::EvidenceService;
use veritrace_evidence::RecordChange;
use veritrace_evidence::domain::{self, RegisterEvidence};
use veritrace_evidence::projections::{self, EvidenceFilter, EvidenceView};
use veritrace_kernel::EventEnvelope;
use veritrace_kernel::auth::{Caller, OrganisationRole, Role};
use veritrace_kernel::backend_tests;
use veritrace_kernel::migrate::{self, Migration};
use veritrace_kernel::testing::{EventSchemas, TestDb};

async fn start(db: &TestDb) -> (Arc<EvidenceService>, tokio::sync::watch::Sender<bool>) {
    let (context, stop) = db.domain_context(domain::SERVICE).await;
    let svc = EvidenceService::start(&context)
        .await
        .expect("start the evidence service");
    (svc, stop)
}

fn org(name: &str) -> Caller {
    Caller {
        organisation_id: format!("org-{name}"),
        name: name.into(),
        organisation_role: OrganisationRole::Member,
        key_id: format!("key-{name}"),
        role: Role::Writer,
    }
}

fn digest(n: u32) -> String {
    ContentHashAlg::Sha256
        .hash_reader(format!("file {n}").as_bytes())
        .expect("hash")
}

async fn register(svc: &EvidenceService, who: &Caller, n: u32) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    let event = domain::decide_register(
        &id,
        RegisterEvidence {
            algorithm: ContentHashAlg::Sha256,
            digest: digest(n),
            title: format!("file {n}"),
            case_reference: Some(format!("case-{}", n % 2)),
            metadata: None,
            file_name: None,
            size_bytes: None,
        },
    )
    .expect("valid registration");
    let change = RecordChange {
        evidence_id: id.clone(),
        expected_version: 0,
        event,
        readers: domain::readers(&[]),
        occurred_at: None,
    };
    svc.record(who, change).await.expect("recorded");
    id
}

/// Waits until the read model shows record `id`.
async fn projected(svc: &EvidenceService, id: &str) -> EvidenceView {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(v) = projections::get(svc.read_model(), id.to_string())
                .await
                .expect("get")
            {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{id} is projected"))
}

/// A registration as the service wrote it before `EvidenceRegistered` version 2: type_version
/// 1, `occurred_at` the recording time, and a payload without `file_name` and `size_bytes`.
fn registered_v1(id: &str, organisation: &str) -> EventEnvelope {
    let at = "2025-06-01T08:00:00.125Z";
    EventEnvelope {
        id: uuid::Uuid::now_v7(),
        service: domain::SERVICE.into(),
        stream: veritrace_evidence::stream_of(id),
        stream_version: 1,
        event_type: "EvidenceRegistered".into(),
        type_version: 1,
        occurred_at: at.into(),
        recorded_at: at.into(),
        organisation: organisation.into(),
        payload: json!({
            "evidence_id": id,
            "content_hash": {"algorithm": "sha-256", "digest": digest(1)},
            "title": "a file registered at version 1",
            "case_reference": "case-v1",
        }),
    }
}

backend_tests! {
    async fn commands_project_into_queries_and_survive_a_restart(db: TestDb) {
        let court = org("court");
        let ids = {
            let (svc, stop) = start(&db).await;
            let mut ids = Vec::new();
            for n in 0..6 {
                ids.push(register(&svc, &court, n).await);
            }
            // Withdraw one: the read model shows the new status and version.
            let record = svc.load(&ids[0]).await.expect("load").expect("exists");
            let event = domain::decide_withdraw(&record, &court.organisation_id, "filed in error")
                .expect("the owner may withdraw");
            let change = RecordChange {
                evidence_id: ids[0].clone(),
                expected_version: record.version,
                event,
                readers: record.readers(),
                occurred_at: None,
            };
            svc.record(&court, change).await.expect("withdrawn");
            // Shared with another party: the record is readable by it, the registrant and
            // every court, and by no one else.
            let record = svc.load(&ids[1]).await.expect("load").expect("exists");
            let event = domain::decide_share(&record, &court.organisation_id, "org-bank")
                .expect("the owner may share");
            let change = RecordChange {
                evidence_id: ids[1].clone(),
                expected_version: record.version,
                readers: domain::readers(&["org-bank".to_string()]),
                event,
                occurred_at: None,
            };
            svc.record(&court, change).await.expect("shared");
            let readable = |reader: &str| {
                let svc = svc.clone();
                let reader = reader.to_string();
                async move {
                    let filter = EvidenceFilter {
                        readable_by: Some(vec![reader]),
                        limit: 100,
                        ..Default::default()
                    };
                    let mut ids: Vec<String> = projections::list(svc.read_model(), filter)
                        .await
                        .expect("list")
                        .into_iter()
                        .map(|v| v.evidence_id)
                        .collect();
                    ids.sort();
                    ids
                }
            };
            let mut all = ids.clone();
            all.sort();
            assert_eq!(readable("org-court").await, all);
            assert_eq!(readable("role:court").await, all);
            assert_eq!(readable("org-bank").await, vec![ids[1].clone()]);
            assert!(readable("org-other").await.is_empty());
            let shared = projections::get(svc.read_model(), ids[1].clone()).await.expect("get").expect("projected");
            assert_eq!(shared.shared_with, vec!["org-bank".to_string()]);
            assert_eq!(shared.version, 2);
            let view = projections::get(svc.read_model(), ids[0].clone()).await.expect("get").expect("projected");
            assert_eq!(view.status, "withdrawn");
            assert_eq!(view.version, 2);
            // Folded from its stream (what a command answers while the read model lags), the
            // record is exactly the projected one.
            for id in &ids {
                let events = svc
                    .storage
                    .store
                    .read_stream(&veritrace_evidence::stream_of(id))
                    .await
                    .expect("stream");
                let projected = projections::get(svc.read_model(), id.clone()).await.expect("get");
                assert_eq!(
                    veritrace_evidence::projections::EvidenceView::from_stream(&events),
                    projected,
                    "{id}"
                );
            }
            let _ = stop.send(true);
            ids
        };

        // A new process over the same stores: the checkpoint holds, nothing is projected twice.
        let (svc, _stop) = start(&db).await;
        assert_eq!(svc.read_model().checkpoint().await.expect("checkpoint"), 8);
        let by_digest = projections::list(svc.read_model(), EvidenceFilter { digest: Some(digest(3)), limit: 10, ..Default::default() })
            .await
            .expect("list");
        assert_eq!(by_digest.len(), 1);
        assert_eq!(by_digest[0].evidence_id, ids[3]);
        let case_1 = projections::list(svc.read_model(), EvidenceFilter { case_reference: Some("case-1".into()), limit: 10, ..Default::default() })
            .await
            .expect("list");
        assert_eq!(case_1.len(), 3);
        // A write after the restart is projected too.
        let late = register(&svc, &court, 99).await;
        let view = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(v) = projections::get(svc.read_model(), late.clone()).await.expect("get") {
                    return v;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the late registration is projected");
        assert_eq!(view.status, "registered");
    }

    /// A registration stored at version 1 (before `file_name` and `size_bytes`) reads as
    /// version 2 without them: in the projection, in the fold of its stream and in the record
    /// a command is decided on; new registrations are written at version 2, with their
    /// business time.
    async fn a_registration_stored_at_v1_reads_as_v2_everywhere(db: TestDb) {
        let (svc, _stop) = start(&db).await;
        let court = org("court");
        let old_id = uuid::Uuid::now_v7().to_string();
        let old = registered_v1(&old_id, &court.organisation_id);
        let sealed = old.clone().seal(HashAlg::Sha3_256);
        svc.storage.store
            .append(&old.stream, 0, vec![sealed])
            .await
            .expect("append the v1 event");

        let view = projected(&svc, &old_id).await;
        assert_eq!(view.title, "a file registered at version 1");
        assert_eq!(view.case_reference.as_deref(), Some("case-v1"));
        assert_eq!((view.file_name.as_deref(), view.size_bytes), (None, None));
        assert_eq!(view.occurred_at, old.occurred_at);
        assert_eq!(view.registered_at, old.recorded_at);
        assert_eq!(view.version, 1);
        let events = svc.storage.store.read_stream(&old.stream).await.expect("stream");
        assert_eq!(events[0].envelope.type_version, 1, "stored as written");
        assert_eq!(EvidenceView::from_stream(&events), Some(view));

        // A command on it is decided on the record folded from the v1 event.
        let record = svc.load(&old_id).await.expect("load").expect("the fold sees it");
        assert_eq!((record.version, record.owner.as_str()), (1, "org-court"));
        let event = domain::decide_withdraw(&record, &court.organisation_id, "superseded")
            .expect("the owner may withdraw");
        let change = RecordChange {
            evidence_id: old_id.clone(),
            expected_version: record.version,
            event,
            readers: record.readers(),
            occurred_at: None,
        };
        svc.record(&court, change).await.expect("withdrawn");
        let view = projections::get(svc.read_model(), old_id.clone()).await.expect("get").expect("projected");
        assert_eq!((view.status.as_str(), view.version), ("withdrawn", 2));
        let events = svc.storage.store.read_stream(&old.stream).await.expect("stream");
        assert_eq!(EvidenceView::from_stream(&events), Some(view));

        // A new registration is written at version 2, with the file's name and size and the
        // time the fact happened, as given.
        let new_id = uuid::Uuid::now_v7().to_string();
        let event = domain::decide_register(
            &new_id,
            RegisterEvidence {
                algorithm: ContentHashAlg::Sha256,
                digest: digest(2),
                title: "a file registered at version 2".into(),
                case_reference: None,
                metadata: None,
                file_name: Some("contract.pdf".into()),
                size_bytes: Some(9_007_199_254_740_991),
            },
        )
        .expect("valid");
        let change = RecordChange {
            evidence_id: new_id.clone(),
            expected_version: 0,
            event,
            readers: domain::readers(&[]),
            occurred_at: Some("2026-01-31T09:30:00.250Z".into()),
        };
        let stored = svc.record(&court, change).await.expect("recorded");
        assert_eq!(stored.envelope.type_version, 2);
        assert_eq!(stored.envelope.occurred_at, "2026-01-31T09:30:00.250Z");
        assert_ne!(stored.envelope.recorded_at, stored.envelope.occurred_at);
        let view = projected(&svc, &new_id).await;
        assert_eq!(view.file_name.as_deref(), Some("contract.pdf"));
        assert_eq!(view.size_bytes, Some(9_007_199_254_740_991));
        assert_eq!(view.occurred_at, "2026-01-31T09:30:00.250Z");
        assert_eq!(view.registered_at, stored.envelope.recorded_at);
        let events = svc.storage.store.read_stream(&stored.envelope.stream).await.expect("stream");
        assert_eq!(EvidenceView::from_stream(&events), Some(view));

        // Every stored event matches the schema of its own version, and read as the current
        // version, the current one's.
        let schemas = EventSchemas::of(veritrace_evidence::DOMAIN).expect("schemas");
        let events = schemas.check_store(&svc.storage.store).await.expect("every event matches");
        assert_eq!(events.len(), 3);
        for e in &events {
            schemas.check_upcast(&e.envelope).expect("upcast, it matches the current version");
        }
    }

    /// Records projected before migration 3 keep their registration time as the time the
    /// registered fact happened (what their events' `occurred_at` holds), without a file name
    /// or size; and after migration 4 the readers they had (`evidence_readers`), now in the
    /// kernel's `record_readers`.
    async fn migrations_3_and_4_keep_what_was_projected_before_them(db: TestDb) {
        let read = db.open("evidence").await;
        migrate::run(&read, domain::SERVICE, &veritrace_evidence::MIGRATIONS[..2])
            .await
            .expect("migrations 1 and 2");
        let insert = "INSERT INTO evidence_records (evidence_id, organisation, algorithm, digest, \
            title, status, registered_at, registered_event_id, version) VALUES ('e-old', 'org-a', \
            'sha-256', 'ab', 'old', 'registered', '2025-01-02T03:04:05.678Z', 'ev-1', 1); \
            INSERT INTO evidence_readers (evidence_id, reader) VALUES ('e-old', 'org-a'), \
            ('e-old', 'org-b'), ('e-old', 'role:court')";
        let seed = [Migration { version: 1, name: "old record", sqlite: insert, postgres: insert }];
        migrate::run(&read, "test_seed", &seed).await.expect("seed");
        migrate::run(&read, domain::SERVICE, veritrace_evidence::MIGRATIONS)
            .await
            .expect("migrations 3 and 4");
        let model = projections::Model::open(&read).await.expect("open");
        let view = projections::get(&model, "e-old".into()).await.expect("get").expect("kept");
        assert_eq!(view.occurred_at, "2025-01-02T03:04:05.678Z");
        assert_eq!(view.occurred_at, view.registered_at);
        assert_eq!((view.file_name, view.size_bytes), (None, None));
        assert_eq!(view.shared_with, vec!["org-b".to_string()]);
        assert_eq!(view.readers, ["org-a", "org-b", "role:court"]);
        let readable = |reader: &str| EvidenceFilter {
            readable_by: Some(vec![reader.to_string()]),
            limit: 10,
            ..Default::default()
        };
        for (reader, count) in [("org-b", 1), ("role:court", 1), ("org-c", 0)] {
            let found = projections::list(&model, readable(reader)).await.expect("list");
            assert_eq!(found.len(), count, "{reader}");
        }
    }
}
