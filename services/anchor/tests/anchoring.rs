//! The anchoring service on a real SQLite file and a real PostgreSQL schema, the in-process bus
//! and a solo validator: idempotent leaves, poison handling, sealing by size, and receipts that
//! verify.

use chain_core::attestation::Attestation;
use chain_core::genesis::{Genesis, SignatureAlg, Validator, ValidatorSet};
use chain_core::receipt::{Receipt, verify};
use chain_core::solo::SoloNode;
use chain_core::store::BlockStore;
use chain_core::{
    ChainClient, ChainError, CommittedBlock, CommittedChange, Digest, HashAlg, Transaction,
    TxLocation,
};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use veritrace_anchor::AnchorService;
use veritrace_kernel::EventEnvelope;
use veritrace_kernel::backend_tests;
use veritrace_kernel::bus::{Bus, InProcessBus, Message};
use veritrace_kernel::config::AnchorConfig;
use veritrace_kernel::envelope::now_rfc3339;
use veritrace_kernel::telemetry::Metrics;

fn sealed(n: u64) -> veritrace_kernel::envelope::SealedEnvelope {
    EventEnvelope {
        id: uuid::Uuid::now_v7(),
        service: "evidence".into(),
        stream: format!("evidence-{n}"),
        stream_version: 1,
        event_type: "EvidenceRegistered".into(),
        type_version: 1,
        occurred_at: now_rfc3339(),
        recorded_at: now_rfc3339(),
        organisation: "org".into(),
        payload: json!({"n": n}),
    }
    .seal(HashAlg::Sha3_256)
}

fn message(events: &[(&veritrace_kernel::envelope::SealedEnvelope, Option<&str>)]) -> Message {
    let events: Vec<_> = events
        .iter()
        .map(|(e, digest)| {
            json!({
                "digest": digest.map(str::to_string).unwrap_or_else(|| e.digest.to_hex()),
                "envelope": serde_json::from_str::<serde_json::Value>(&e.canonical).unwrap(),
            })
        })
        .collect();
    Message::new(
        "evidence.EvidenceRegistered",
        json!({ "events": events }).to_string().into_bytes(),
    )
}

/// A one-validator chain whose solo validator cuts a block every 20 ms while this lives.
struct SoloChain {
    genesis: Genesis,
    node: Arc<SoloNode>,
    stop: tokio::sync::watch::Receiver<bool>,
    _stopper: tokio::sync::watch::Sender<bool>,
    _blocks: tempfile::TempDir,
}

fn solo_chain(chain_id: &str) -> SoloChain {
    let dir = tempfile::tempdir().unwrap();
    let key = chain_core::keys::SigningKey::generate(SignatureAlg::Ed25519).unwrap();
    let genesis = Genesis {
        chain_id: chain_id.into(),
        genesis_time: now_rfc3339(),
        hash_alg: HashAlg::Sha3_256,
        signature_alg: SignatureAlg::Ed25519,
        validator_set: ValidatorSet {
            validators: vec![Validator {
                name: "v1".into(),
                organisation: "o1".into(),
                public_key: key.public_key_hex(),
                power: 1,
            }],
        },
    };
    let store = BlockStore::open(&dir.path().join("blocks.redb")).unwrap();
    let node = Arc::new(SoloNode::open(genesis.clone(), key, store).unwrap());
    let (stopper, stop) = tokio::sync::watch::channel(false);
    {
        let (node, rx) = (node.clone(), stop.clone());
        tokio::spawn(async move { node.run(Duration::from_millis(20), rx).await });
    }
    SoloChain {
        genesis,
        node,
        stop,
        _stopper: stopper,
        _blocks: dir,
    }
}

/// An anchoring service with `config` on `test_db`, started on an in-process bus, with the
/// solo chain it anchors on.
async fn started(
    test_db: &veritrace_kernel::testing::TestDb,
    chain_id: &str,
    config: AnchorConfig,
) -> (SoloChain, Arc<AnchorService>, InProcessBus) {
    let solo = solo_chain(chain_id);
    let db = test_db.open("anchor").await;
    let anchor = AnchorService::open(
        &db,
        solo.node.clone(),
        config,
        Arc::new(Metrics::new().unwrap()),
    )
    .await
    .unwrap();
    let bus = InProcessBus::new();
    anchor.start(&bus, solo.stop.clone()).await.unwrap();
    (solo, anchor, bus)
}

/// Waits until `total` leaves are received and all anchored, or fails after 10 s with `what`.
async fn all_anchored(anchor: &AnchorService, total: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (received, anchored) = anchor.store.progress().await.unwrap();
        assert!(
            received <= total,
            "{what}: {received} leaves received of {total}"
        );
        if received == total && anchored == total {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {received} received, {anchored} anchored"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

backend_tests! {
    async fn a_partial_batch_is_sealed_once_its_oldest_leaf_waited_seal_after_ms(test_db: TestDb) {
        let config = AnchorConfig {
            max_batch_size: 1000,
            seal_after_ms: 50,
            seal_when_quiet_ms: 0,
            // Never within this test: only the wait can seal.
            seal_interval_secs: 3600,
            ..AnchorConfig::default()
        };
        let (_solo, anchor, bus) = started(&test_db, "anchor-seal-after", config).await;
        for round in 0..2u64 {
            let events: Vec<_> = (0..2).map(|i| sealed(10 * round + i)).collect();
            bus.publish(vec![message(&[(&events[0], None), (&events[1], None)])])
                .await
                .unwrap();
            let what = format!("round {round}: a batch of 2 of 1000");
            all_anchored(&anchor, 2 * (round as i64 + 1), &what).await;
        }
    }

    async fn a_burst_is_sealed_once_its_leaves_stop_arriving(test_db: TestDb) {
        let config = AnchorConfig {
            max_batch_size: 1000,
            // Neither the oldest leaf's wait nor the schedule within this test: only the quiet
            // after the burst can seal.
            seal_after_ms: 3_600_000,
            seal_when_quiet_ms: 50,
            seal_interval_secs: 3600,
            ..AnchorConfig::default()
        };
        let (_solo, anchor, bus) = started(&test_db, "anchor-seal-quiet", config).await;
        let events: Vec<_> = (0..3).map(sealed).collect();
        bus.publish(vec![message(&[(&events[0], None), (&events[1], None)])])
            .await
            .unwrap();
        bus.publish(vec![message(&[(&events[2], None)])]).await.unwrap();
        all_anchored(&anchor, 3, "a burst of 3 of 1000").await;
    }

    async fn leaves_are_idempotent_poison_is_set_aside_and_receipts_verify(test_db: TestDb) {
        let solo = solo_chain("anchor-test");
        let (genesis, node, stop_rx) = (solo.genesis.clone(), solo.node.clone(), solo.stop.clone());
        let db = test_db.open("anchor").await;
        let config = AnchorConfig {
            max_batch_size: 3,
            // Long enough that only the size rule can seal during this test's first part.
            seal_after_ms: 0,
            seal_when_quiet_ms: 0,
            seal_interval_secs: 3600,
            resubmit_after_ms: 10_000,
        };
        let anchor = AnchorService::open(&db, node.clone(), config, Arc::new(Metrics::new().unwrap()))
            .await
            .unwrap();
        let bus = InProcessBus::new();
        anchor.start(&bus, stop_rx.clone()).await.unwrap();

        let events: Vec<_> = (0..4).map(sealed).collect();
        // The same two events twice: two leaves.
        bus.publish(vec![message(&[(&events[0], None), (&events[1], None)])])
            .await
            .unwrap();
        bus.publish(vec![message(&[(&events[0], None), (&events[1], None)])])
            .await
            .unwrap();
        // A good event beside one whose stated digest is wrong: the good one is kept.
        let mut mixed = message(&[
            (&events[2], None),
            (&events[3], Some(&"00".repeat(32))),
        ]);
        mixed.message_id = Some("evidence:3-4".into());
        bus.publish(vec![mixed]).await.unwrap();
        // Not an event batch at all: dead-lettered, and the bus carries on.
        bus.publish(vec![Message::new("evidence.X", b"not json".to_vec())])
        .await
        .unwrap();
        assert_eq!(bus.dead_letters().len(), 1);
        let rejections = anchor.store.rejections().await.unwrap();
        let kept: Vec<(&str, Option<&str>)> = rejections
            .iter()
            .map(|(key, id, _)| (key.as_str(), id.as_deref()))
            .collect();
        assert_eq!(
            kept,
            [
                ("evidence.EvidenceRegistered", Some("evidence:3-4")),
                ("evidence.X", None)
            ]
        );
        assert!(rejections[0].2.contains("stated digest"), "{rejections:?}");
        // Who may read each receipt is as the publisher said; a publisher from before access
        // lists said nothing, and its events are the recording organisation's.
        let leaf = anchor.store.leaf_by_event(&events[0].envelope.id.to_string()).await.unwrap().unwrap();
        assert_eq!(leaf.readers, vec!["org".to_string()]);
        let shared = sealed(9);
        let mut with_readers = message(&[(&shared, None)]);
        let mut body: serde_json::Value = serde_json::from_slice(&with_readers.body).unwrap();
        body["events"][0]["readers"] = json!(["org", "holder", "role:court"]);
        with_readers.body = body.to_string().into_bytes();
        bus.publish(vec![with_readers]).await.unwrap();
        let leaf = anchor.store.leaf_by_event(&shared.envelope.id.to_string()).await.unwrap().unwrap();
        assert_eq!(leaf.readers, vec!["org".to_string(), "holder".into(), "role:court".into()]);

        // Three leaves make a full batch: sealed by size and anchored without waiting for the schedule.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (total, anchored) = anchor.store.progress().await.unwrap();
            assert_eq!(total, 4, "duplicates and rejected events are not leaves");
            if anchored >= 3 {
                break;
            }
            assert!(Instant::now() < deadline, "batch not anchored");
            // Polled: the anchoring service records the block it saw in its own database.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for e in &events[..3] {
            let by_id = anchor
                .store
                .leaf_by_event(&e.envelope.id.to_string())
                .await
                .unwrap()
                .unwrap();
            let by_digest = anchor
                .store
                .leaf_by_digest(&e.digest)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(by_id.event_id, by_digest.event_id);
            let Receipt::Anchored(r) = anchor.receipt(&by_id).await.unwrap() else {
                panic!("not anchored")
            };
            let verified = verify(&r, &genesis).unwrap();
            assert_eq!(verified.event_digest, e.digest);
        }
        assert!(
            anchor
                .store
                .leaf_by_digest(&events[3].digest)
                .await
                .unwrap()
                .is_none()
        );
    }
}

/// A chain client that lies as a node's API could: while `lying`, it names the transaction
/// after the right one as a batch's location; always, it serves each block with junk
/// attestations in front of the real one (an unknown validator's, and a forged one); while
/// `altering`, it serves each block with another time in its header under the stated hash, so
/// the attestations still match the stated hash but not the header.
struct LyingChain {
    inner: Arc<SoloNode>,
    lying: std::sync::atomic::AtomicBool,
    altering: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl ChainClient for LyingChain {
    fn genesis(&self) -> &Genesis {
        self.inner.genesis()
    }
    async fn submit(&self, tx: Transaction) -> Result<Digest, ChainError> {
        self.inner.submit(tx).await
    }
    async fn locate(&self, tx_hash: &Digest) -> Result<Option<TxLocation>, ChainError> {
        let lying = self.lying.load(std::sync::atomic::Ordering::SeqCst);
        Ok(self.inner.locate(tx_hash).await?.map(|l| TxLocation {
            index: if lying { l.index + 1 } else { l.index },
            ..l
        }))
    }
    async fn block(&self, height: u64) -> Result<Option<CommittedBlock>, ChainError> {
        Ok(self.inner.block(height).await?.map(|mut b| {
            let mut forged = b.attestations[0].clone();
            forged.signature = "00".repeat(64);
            let unknown = Attestation {
                validator: "nobody".into(),
                signature: b.attestations[0].signature.clone(),
            };
            b.attestations.splice(0..0, [forged, unknown]);
            if self.altering.load(std::sync::atomic::Ordering::SeqCst) {
                b.block.header.time = "2000-01-01T00:00:00.000Z".into();
            }
            b
        }))
    }
    async fn head(&self) -> Result<u64, ChainError> {
        self.inner.head().await
    }
    async fn validator_set_changes(&self) -> Result<Vec<CommittedChange>, ChainError> {
        self.inner.validator_set_changes().await
    }
    async fn wait_for_block_after(&self, height: u64) {
        self.inner.wait_for_block_after(height).await
    }
}

/// The anchor takes no location on a chain's word: a wrong one is never recorded, one planted
/// in the store is forgotten when a receipt is asked for, and a receipt carries only the
/// attestations that verify, so it verifies whatever junk a node served beside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_chain_neither_misplaces_a_batch_nor_spoils_its_receipts() {
    let solo = solo_chain("lying-test");
    let (genesis, node, stop_rx) = (solo.genesis.clone(), solo.node.clone(), solo.stop.clone());
    let chain = Arc::new(LyingChain {
        inner: node.clone(),
        lying: std::sync::atomic::AtomicBool::new(true),
        altering: std::sync::atomic::AtomicBool::new(false),
    });
    let test_db = veritrace_kernel::testing::TestDb::sqlite().await;
    let db = test_db.open("anchor").await;
    let config = AnchorConfig {
        max_batch_size: 3,
        seal_after_ms: 0,
        seal_when_quiet_ms: 0,
        seal_interval_secs: 3600,
        resubmit_after_ms: 100,
    };
    let anchor = AnchorService::open(
        &db,
        chain.clone(),
        config,
        Arc::new(Metrics::new().unwrap()),
    )
    .await
    .unwrap();
    let bus = InProcessBus::new();
    anchor.start(&bus, stop_rx.clone()).await.unwrap();
    let events: Vec<_> = (0..3).map(sealed).collect();
    bus.publish(vec![message(&[
        (&events[0], None),
        (&events[1], None),
        (&events[2], None),
    ])])
    .await
    .unwrap();

    // The batch is sealed and its transaction final on the chain...
    let deadline = Instant::now() + Duration::from_secs(10);
    let batch = loop {
        if let Some(b) = anchor.store.unanchored().await.unwrap().pop()
            && node.locate(&b.tx_hash).await.unwrap().is_some()
        {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "the batch never reached a final block"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // ...but while the chain names a wrong location, none is recorded.
    assert!(anchor.anchor_round().await.unwrap() >= 1);
    assert_eq!(anchor.store.progress().await.unwrap(), (3, 0));
    let leaf = anchor
        .store
        .leaf_by_event(&events[0].envelope.id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        anchor.receipt(&leaf).await.unwrap(),
        Receipt::Pending(_)
    ));

    // A wrong location already in the store is forgotten as soon as a receipt needs it.
    let right = node.locate(&batch.tx_hash).await.unwrap().unwrap();
    anchor
        .store
        .mark_anchored(&batch.batch_id, right.height, right.index + 7)
        .await
        .unwrap();
    assert!(matches!(
        anchor.receipt(&leaf).await.unwrap(),
        Receipt::Pending(_)
    ));
    assert_eq!(anchor.store.progress().await.unwrap(), (3, 0));

    // Told the truth, the anchor records the location, and every receipt verifies with the one
    // attestation that counts, the junk left out.
    chain
        .lying
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while anchor.store.progress().await.unwrap() != (3, 3) {
        assert!(Instant::now() < deadline, "batch not anchored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for e in &events {
        let leaf = anchor
            .store
            .leaf_by_event(&e.envelope.id.to_string())
            .await
            .unwrap()
            .unwrap();
        let Receipt::Anchored(r) = anchor.receipt(&leaf).await.unwrap() else {
            panic!("not anchored")
        };
        assert_eq!(r.attestations.len(), 1);
        verify(&r, &genesis).expect("the receipt verifies");
    }

    // A block whose header was altered under its stated hash: its attestations match the
    // stated hash, so they count, but the receipt would not verify. It is not served: the
    // receipt says pending until the chain serves the block as it is.
    chain
        .altering
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let leaf = anchor
        .store
        .leaf_by_event(&events[1].envelope.id.to_string())
        .await
        .unwrap()
        .unwrap();
    for _ in 0..3 {
        assert!(matches!(
            anchor.receipt(&leaf).await.unwrap(),
            Receipt::Pending(_)
        ));
    }
    chain
        .altering
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = loop {
        if let Receipt::Anchored(r) = anchor.receipt(&leaf).await.unwrap() {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the receipt never anchored again"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    verify(&r, &genesis).expect("the receipt verifies");
}
