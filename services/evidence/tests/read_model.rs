//! The evidence service's write and read sides on SQLite and on PostgreSQL: commands append
//! events, the projector builds the read model, queries answer from it, and a restart resumes
//! from the checkpoint without projecting anything twice.

use chain_core::{ContentHashAlg, HashAlg};
use std::sync::Arc;
use std::time::Duration;
use veritrace_evidence::EvidenceService;
use veritrace_evidence::domain::{self, RegisterEvidence};
use veritrace_evidence::projections::EvidenceFilter;
use veritrace_kernel::auth::{Organisation, Role};
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

fn org(name: &str) -> Organisation {
    Organisation {
        organisation_id: format!("org-{name}"),
        name: name.into(),
        role: Role::Member,
    }
}

fn digest(n: u32) -> String {
    ContentHashAlg::Sha256
        .hash_reader(format!("file {n}").as_bytes())
        .expect("hash")
}

async fn register(svc: &EvidenceService, who: &Organisation, n: u32) -> String {
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
    svc.record(who, &id, 0, event).await.expect("recorded");
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
            svc.record(&court, &ids[0], record.version, event).await.expect("withdrawn");
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
        assert_eq!(svc.read_model.checkpoint().await.expect("checkpoint"), 7);
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
