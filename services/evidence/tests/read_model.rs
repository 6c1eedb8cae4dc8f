//! The evidence service's write and read sides on SQLite and on PostgreSQL: commands append
//! events, the projector builds the read model, queries answer from it, and a restart resumes
//! from the checkpoint without projecting anything twice.

use chain_core::{ContentHashAlg, HashAlg};
use std::sync::Arc;
use std::time::Duration;
use veritrace_evidence::EvidenceService;
use veritrace_evidence::RecordChange;
use veritrace_evidence::domain::{self, RegisterEvidence};
use veritrace_evidence::projections::EvidenceFilter;
use veritrace_kernel::auth::{Caller, OrganisationRole, Role};
use veritrace_kernel::backend_tests;
use veritrace_kernel::telemetry::Metrics;
use veritrace_kernel::testing::TestDb;

async fn start(db: &TestDb) -> (Arc<EvidenceService>, tokio::sync::watch::Sender<bool>) {
    // Embedded: event store and read model in two files; PostgreSQL: one schema.
    let (store, read) = match db.backend() {
        "sqlite" => (db.open("evidence").await, db.open("evidence-read").await),
        _ => {
            let d = db.open("evidence").await;
            (d.clone(), d)
        }
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let svc = EvidenceService::start(
        &store,
        &read,
        HashAlg::Sha3_256,
        Arc::new(Metrics::new().expect("metrics")),
        stop_rx,
    )
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
        },
    )
    .expect("valid registration");
    let change = RecordChange {
        evidence_id: id.clone(),
        expected_version: 0,
        event,
        readers: domain::readers(&[]),
    };
    svc.record(who, change).await.expect("recorded");
    id
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
            };
            svc.record(&court, change).await.expect("shared");
            let readable = |reader: &str| {
                let svc = svc.clone();
                let reader = reader.to_string();
                async move {
                    let mut ids: Vec<String> = svc
                        .read_model
                        .list(EvidenceFilter {
                            readable_by: Some(vec![reader]),
                            limit: 100,
                            ..Default::default()
                        })
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
            let shared = svc.read_model.get(ids[1].clone()).await.expect("get").expect("projected");
            assert_eq!(shared.shared_with, vec!["org-bank".to_string()]);
            assert_eq!(shared.version, 2);
            let view = svc.read_model.get(ids[0].clone()).await.expect("get").expect("projected");
            assert_eq!(view.status, "withdrawn");
            assert_eq!(view.version, 2);
            // Folded from its stream (what a command answers while the read model lags), the
            // record is exactly the projected one.
            for id in &ids {
                let events = svc
                    .store
                    .read_stream(&veritrace_evidence::stream_of(id))
                    .await
                    .expect("stream");
                let projected = svc.read_model.get(id.clone()).await.expect("get");
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
        assert_eq!(svc.read_model.checkpoint().await.expect("checkpoint"), 8);
        let by_digest = svc
            .read_model
            .list(EvidenceFilter { digest: Some(digest(3)), limit: 10, ..Default::default() })
            .await
            .expect("list");
        assert_eq!(by_digest.len(), 1);
        assert_eq!(by_digest[0].evidence_id, ids[3]);
        let case_1 = svc
            .read_model
            .list(EvidenceFilter { case_reference: Some("case-1".into()), limit: 10, ..Default::default() })
            .await
            .expect("list");
        assert_eq!(case_1.len(), 3);
        // A write after the restart is projected too.
        let late = register(&svc, &court, 99).await;
        let view = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(v) = svc.read_model.get(late.clone()).await.expect("get") {
                    return v;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the late registration is projected");
        assert_eq!(view.status, "registered");
    }
}
