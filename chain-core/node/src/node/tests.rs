//! The host's handlers against real stores in a temporary directory, without the engine.

use super::host::{Host, proposal_messages};
use super::proposals::{MAX_HEIGHTS_AHEAD, MAX_STREAM_BYTES, MAX_STREAMS_PER_PEER};
use super::shared::Shared;
use super::{Misbehaviour, NodeSettings, open_shared};
use crate::context::{BlockId, ChainContext, Height, ProposalPart};
use chain_core::block::{AnchorTx, Transaction};
use chain_core::genesis::Validator;
use chain_core::keys::{SignatureAlg, SigningKey};
use chain_core::{Genesis, HashAlg};
use malachitebft_app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app::types::PeerId;
use malachitebft_app::types::core::{
    CommitCertificate, ExtendedCommitCertificate, Round, Validity,
};
use std::sync::Arc;
use std::time::Duration;

struct Fixture {
    _dir: tempfile::TempDir,
    keys: Vec<Arc<SigningKey>>,
    genesis: Genesis,
}

impl Fixture {
    fn new() -> Fixture {
        let keys: Vec<Arc<SigningKey>> = (0..4)
            .map(|_| Arc::new(SigningKey::generate(SignatureAlg::Ed25519).expect("key")))
            .collect();
        let genesis = Genesis::create(
            Some("host-test"),
            "x",
            HashAlg::Sha3_256,
            SignatureAlg::Ed25519,
            keys.iter()
                .enumerate()
                .map(|(i, k)| Validator {
                    name: format!("validator-{}", i + 1),
                    organisation: format!("Organisation {}", i + 1),
                    public_key: k.public_key_hex(),
                    power: 1,
                })
                .collect(),
        )
        .expect("genesis");
        Fixture {
            _dir: tempfile::tempdir().expect("tempdir"),
            keys,
            genesis,
        }
    }

    /// Validator `i`'s state, opened from its own directory.
    fn shared(&self, i: usize) -> Arc<Shared> {
        open_shared(&NodeSettings {
            name: format!("validator-{}", i + 1),
            genesis: self.genesis.clone(),
            key: self.keys[i].clone(),
            p2p_secret: [i as u8 + 1; 32],
            data_dir: self._dir.path().join(format!("v{i}")),
            listen: "/ip4/127.0.0.1/tcp/0".into(),
            // Two configured peers, whose publications get budgets of their own.
            peers: [3u8, 4]
                .iter()
                .map(|n| super::Peer {
                    name: format!("peer-{n}"),
                    p2p: format!("/ip4/127.0.0.1/tcp/1/p2p/{}", peer(*n)),
                    api: "http://127.0.0.1:1".into(),
                })
                .collect(),
            block_interval: Duration::from_millis(500),
            misbehaviour: Misbehaviour::default(),
        })
        .expect("open the node's stores")
    }

    fn host(&self, i: usize) -> Host {
        Host::new(self.shared(i), Duration::from_millis(500))
    }
}

impl Fixture {
    /// The fixture's index of the validator whose turn it is at `height`, round 0, and the
    /// index of another one.
    fn turn(&self, height: u64) -> (usize, usize) {
        let s = self.shared(3);
        let address = s
            .scheduled_proposer(height, Round::new(0))
            .expect("a proposer");
        let i = self
            .keys
            .iter()
            .position(|k| {
                let key =
                    crate::context::ValidatorKey::parse(SignatureAlg::Ed25519, &k.public_key_hex())
                        .expect("key");
                crate::context::Address::of_key(HashAlg::Sha3_256, &key.bytes) == address
            })
            .expect("the proposer is a validator");
        (i, (i + 1) % 4)
    }
}

fn peer(n: u8) -> PeerId {
    // An identity multihash of 32 bytes.
    let mut bytes = vec![0x00, 32];
    bytes.extend_from_slice(&[n; 32]);
    PeerId::from_bytes(&bytes).expect("peer id")
}

fn anchor(chain_id: &str, n: u64) -> Transaction {
    Transaction::Anchor(AnchorTx {
        chain_id: chain_id.into(),
        batch_id: format!("batch-{n}"),
        batch_root: HashAlg::Sha3_256.hash(&n.to_be_bytes()),
        batch_size: 1,
    })
}

/// A stream for `height` that never completes: its Init part only.
fn init_part(height: u64, round: i64) -> StreamMessage<ProposalPart> {
    let mut id = height.to_be_bytes().to_vec();
    id.extend_from_slice(&round.to_be_bytes());
    StreamMessage::new(
        StreamId::new(id.into()),
        0,
        StreamContent::Data(ProposalPart::Init {
            height: Height(height),
            round: Round::new(round as u32),
            valid_round: Round::Nil,
            proposer: crate::context::Address([0; 32]),
        }),
    )
}

fn observed(host: &Host, kind: &str) -> Vec<String> {
    host.shared
        .observed
        .lock()
        .expect("lock")
        .iter()
        .filter(|o| o.kind == kind)
        .map(|o| o.detail.clone())
        .collect()
}

#[tokio::test]
async fn a_proposal_streamed_by_one_validator_is_judged_valid_by_another() {
    let f = Fixture::new();
    let (turn, other) = f.turn(1);
    let proposer = f.host(turn);
    let mut receiver = f.host(other);
    receiver.current = Height(1);
    proposer
        .shared
        .accept(anchor("host-test", 1))
        .expect("accepted");
    let (block, hash) = proposer.build(Height(1)).expect("build");
    assert_eq!(block.transactions.len(), 1);
    let messages = proposal_messages(
        proposer.shared.me,
        Height(1),
        Round::new(0),
        Round::Nil,
        &block,
    );
    let mut verdict = None;
    for m in messages {
        if let Some(v) = receiver.received_part(peer(1), m).expect("received") {
            verdict = Some(v);
        }
    }
    let v = verdict.expect("a verdict once the stream is complete");
    assert_eq!(v.validity, Validity::Valid);
    assert_eq!(v.value, BlockId::from(hash));
    // Kept for the commit, and nothing left open.
    assert!(receiver.shared.undecided(&hash).expect("read").is_some());
    assert_eq!(receiver.open_bytes, 0);
    assert!(receiver.streams.is_empty());
}

#[tokio::test]
async fn a_forged_transaction_root_is_judged_invalid_and_reported() {
    let f = Fixture::new();
    let (turn, other) = f.turn(1);
    let proposer = f.host(turn);
    let mut receiver = f.host(other);
    receiver.current = Height(1);
    proposer
        .shared
        .accept(anchor("host-test", 2))
        .expect("accepted");
    let (mut block, _) = proposer.build(Height(1)).expect("build");
    block.header.transaction_root = HashAlg::Sha3_256.hash(b"forged");
    let mut verdict = None;
    for m in proposal_messages(
        proposer.shared.me,
        Height(1),
        Round::new(0),
        Round::Nil,
        &block,
    ) {
        verdict = verdict.or(receiver.received_part(peer(1), m).expect("received"));
    }
    assert_eq!(verdict.expect("verdict").validity, Validity::Invalid);
    assert_eq!(observed(&receiver, "invalid-proposal").len(), 1);
}

#[tokio::test]
async fn streams_for_heights_far_ahead_are_dropped_and_reported_once() {
    let f = Fixture::new();
    let mut host = f.host(0);
    host.current = Height(5);
    for round in 0..3 {
        let far = init_part(5 + MAX_HEIGHTS_AHEAD + 1, round);
        assert!(
            host.received_part(peer(2), far)
                .expect("received")
                .is_none()
        );
    }
    assert!(host.streams.is_empty());
    assert_eq!(host.open_bytes, 0);
    let reports = observed(&host, "flooding");
    assert_eq!(reports.len(), 1, "{reports:?}");
    // Within the window, a stream is kept.
    host.received_part(peer(2), init_part(5 + MAX_HEIGHTS_AHEAD, 0))
        .expect("received");
    assert_eq!(host.streams.len(), 1);
}

#[tokio::test]
async fn a_peer_holds_only_so_many_streams_and_bytes() {
    let f = Fixture::new();
    let mut host = f.host(0);
    host.current = Height(5);
    for round in 0..MAX_STREAMS_PER_PEER as i64 {
        host.received_part(peer(3), init_part(5, round))
            .expect("received");
    }
    assert_eq!(host.streams.len(), MAX_STREAMS_PER_PEER);
    host.received_part(peer(3), init_part(5, 99))
        .expect("received");
    assert_eq!(host.streams.len(), MAX_STREAMS_PER_PEER);
    assert_eq!(observed(&host, "flooding").len(), 1);
    // Another peer is not held back by the first one's streams.
    host.received_part(peer(4), init_part(5, 0))
        .expect("received");
    assert_eq!(host.streams.len(), MAX_STREAMS_PER_PEER + 1);
    // Publishers that are not configured peers share one budget, whatever their number.
    for n in 0..MAX_STREAMS_PER_PEER as u8 + 4 {
        host.received_part(peer(100 + n), init_part(5, 0))
            .expect("received");
    }
    assert_eq!(host.streams.len(), 2 * MAX_STREAMS_PER_PEER + 1);

    // A proposal growing past its bound is dropped whole.
    let mut id = 5u64.to_be_bytes().to_vec();
    id.extend_from_slice(&1i64.to_be_bytes());
    let big = |seq: u64| {
        StreamMessage::new(
            StreamId::new(id.clone().into()),
            seq,
            StreamContent::Data(ProposalPart::Data(vec![0; 1 << 20])),
        )
    };
    for seq in 1..=(MAX_STREAM_BYTES >> 20) as u64 + 1 {
        host.received_part(peer(4), big(seq)).expect("received");
    }
    let held: usize = host.streams.values().map(|s| s.bytes).sum();
    assert_eq!(host.open_bytes, held);
    assert!(held < MAX_STREAM_BYTES, "{held}");
}

#[tokio::test]
async fn a_new_height_lets_go_of_the_streams_of_past_ones() {
    let f = Fixture::new();
    let mut host = f.host(0);
    host.current = Height(5);
    host.received_part(peer(5), init_part(5, 0))
        .expect("received");
    host.received_part(peer(5), init_part(6, 0))
        .expect("received");
    assert!(host.open_bytes > 0);
    let _ = host.started_height(Height(6), Round::new(0));
    assert_eq!(host.streams.len(), 1);
    let _ = host.started_height(Height(7), Round::new(0));
    assert!(host.streams.is_empty());
    assert_eq!(host.open_bytes, 0);
}

fn certificate(height: u64, hash: chain_core::Digest) -> ExtendedCommitCertificate<ChainContext> {
    ExtendedCommitCertificate::from_commit_certificate_and_extensions(
        CommitCertificate::new(
            Height(height),
            Round::new(0),
            BlockId::from(hash),
            Vec::new(),
        ),
        Default::default(),
    )
}

#[tokio::test]
async fn a_commit_stores_certificate_and_attested_block_and_serves_them_to_sync() {
    let f = Fixture::new();
    let host = f.host(0);
    let s = &host.shared;
    s.accept(anchor("host-test", 3)).expect("accepted");
    let (block, hash) = host.build(Height(1)).expect("build");
    s.save_undecided(&hash, &block).expect("save");
    assert!(s.decided_values(1, 1).is_empty());
    s.commit(&certificate(1, hash)).expect("commit");
    let stored = s.store.block(1).expect("read").expect("committed");
    assert_eq!(stored.hash, hash);
    assert_eq!(stored.attestations.len(), 1, "its own attestation");
    assert!(s.certificate(1).expect("read").is_some());
    // The mempool no longer holds what was committed, nor the undecided table the block.
    assert!(s.mempool().order.is_empty());
    assert!(s.undecided(&hash).expect("read").is_none());
    // Sync serves what is committed, and stops at the first height without it.
    assert_eq!(s.decided_values(1, 3).len(), 1);
    // Committing again is a no-op; another block at the same height is refused.
    s.commit(&certificate(1, hash)).expect("again");
    let other = HashAlg::Sha3_256.hash(b"another block");
    assert!(s.commit(&certificate(1, other)).is_err());
}

#[tokio::test]
async fn a_block_left_without_its_certificate_gets_it_when_committed_again() {
    let f = Fixture::new();
    let host = f.host(0);
    let s = &host.shared;
    let (block, hash) = host.build(Height(1)).expect("build");
    s.save_undecided(&hash, &block).expect("save");
    s.commit(&certificate(1, hash)).expect("commit");
    // As a store written before the certificate came first could be left.
    {
        let tx = s.state.begin_write().expect("write");
        {
            let mut t = tx.open_table(super::shared::CERTIFICATES).expect("table");
            t.remove(1u64).expect("remove");
        }
        tx.commit().expect("commit");
    }
    assert!(s.decided_values(1, 1).is_empty());
    s.commit(&certificate(1, hash)).expect("commit again");
    assert_eq!(s.decided_values(1, 1).len(), 1);
}

#[tokio::test]
async fn a_halted_node_says_why_once() {
    let f = Fixture::new();
    let s = f.shared(0);
    s.halt("first reason".into());
    s.halt("second reason".into());
    assert_eq!(s.halted.borrow().as_deref(), Some("first reason"));
}

#[tokio::test]
async fn a_corrupt_store_is_refused_naming_the_file() {
    let f = Fixture::new();
    for file in ["blocks.redb", "consensus.redb"] {
        let dir = f._dir.path().join(format!("corrupt-{file}"));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(file), vec![0x5a; 8192]).expect("garbage");
        let opened = open_shared(&NodeSettings {
            name: "validator-1".into(),
            genesis: f.genesis.clone(),
            key: f.keys[0].clone(),
            p2p_secret: [1; 32],
            data_dir: dir,
            listen: "/ip4/127.0.0.1/tcp/0".into(),
            peers: Vec::new(),
            block_interval: Duration::from_millis(500),
            misbehaviour: Misbehaviour::default(),
        });
        let err = opened.err().expect("refused").to_string();
        assert!(err.contains(file), "{err}");
    }
}

#[tokio::test]
async fn only_the_proposer_whose_turn_it_is_is_heard_and_a_round_keeps_two_blocks_at_most() {
    let f = Fixture::new();
    let (turn, other) = f.turn(1);
    let mut receiver = f.host(other);
    receiver.current = Height(1);
    // Not its turn: no verdict, nothing kept.
    let wrong = f.host((turn + 2) % 4);
    wrong
        .shared
        .accept(anchor("host-test", 7))
        .expect("accepted");
    let (block, hash) = wrong.build(Height(1)).expect("build");
    let mut verdict = None;
    for m in proposal_messages(
        wrong.shared.me,
        Height(1),
        Round::new(0),
        Round::Nil,
        &block,
    ) {
        verdict = verdict.or(receiver.received_part(peer(7), m).expect("received"));
    }
    assert!(verdict.is_none());
    assert!(receiver.shared.undecided(&hash).expect("read").is_none());
    // The proposer whose turn it is: three different blocks for one round, the third not kept.
    let proposer = f.host(turn);
    let mut verdicts = Vec::new();
    for n in 0..3u64 {
        proposer
            .shared
            .accept(anchor("host-test", 100 + n))
            .expect("accepted");
        let (block, _) = proposer.build(Height(1)).expect("build");
        let mut verdict = None;
        for m in proposal_messages(
            proposer.shared.me,
            Height(1),
            Round::new(0),
            Round::Nil,
            &block,
        ) {
            verdict = verdict.or(receiver.received_part(peer(8), m).expect("received"));
        }
        verdicts.push(verdict.is_some());
    }
    assert_eq!(verdicts, [true, true, false]);
    // Heights later, the bound is the new height's: it never runs out.
    for height in 2..40 {
        assert!(receiver.kept_admits(height));
    }
}

#[tokio::test]
async fn a_proposer_restarted_at_a_round_it_proposed_in_proposes_the_same_block() {
    use malachitebft_signing::Signer;
    let f = Fixture::new();
    let (turn, _) = f.turn(1);
    let host = f.host(turn);
    host.shared
        .accept(anchor("host-test", 11))
        .expect("accepted");
    let (_, first) = host
        .value_to_propose(Height(1), Round::new(0))
        .expect("a block");
    let signer = crate::signing::ChainSigner {
        chain_id: "host-test".into(),
        key: f.keys[turn].clone(),
        record: Some(host.shared.record.clone()),
    };
    signer
        .sign_proposal(crate::context::Proposal {
            height: Height(1),
            round: Round::new(0),
            value: BlockId::from(first),
            pol_round: Round::Nil,
            validator: host.shared.me,
        })
        .await
        .expect("signed");
    // More transactions arrive; asked again for round 0 (as after a restart that lost the
    // write-ahead log), the node proposes what it signed, not a new block.
    host.shared
        .accept(anchor("host-test", 12))
        .expect("accepted");
    let (_, again) = host
        .value_to_propose(Height(1), Round::new(0))
        .expect("the same block");
    assert_eq!(again, first);
    let (_, next_round) = host
        .value_to_propose(Height(1), Round::new(1))
        .expect("a new block");
    assert_ne!(next_round, first);
}
