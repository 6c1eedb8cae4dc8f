//! The hot path of anchoring, per event and per batch: canonicalisation, hashing, tree
//! building, and checking receipts. `cargo bench -p chain-core`.

use chain_core::canonical::to_canonical_bytes;
use chain_core::merkle::{InclusionProof, leaf_hash};
use chain_core::{HashAlg, MerkleTree};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn envelope() -> serde_json::Value {
    serde_json::json!({
        "id": "019b0000-0000-7000-8000-000000000002",
        "service": "evidence",
        "stream": "evidence-0190a000-0000-7000-8000-000000000002",
        "stream_version": 1,
        "type": "EvidenceRegistered",
        "type_version": 1,
        "occurred_at": "2026-01-01T00:00:00.500Z",
        "recorded_at": "2026-01-01T00:00:00.500Z",
        "organisation": "0190a000-0000-7000-8000-00000000000a",
        "payload": {
            "evidence_id": "0190a000-0000-7000-8000-000000000002",
            "content_hash": {"algorithm": "sha-256", "digest": "4732050e455b707de62f1e02f558a13ff9f7dbd8c8622b45a6edd2ea01b5690f"},
            "title": "Exhibit 2: signed delivery contract"
        }
    })
}

fn per_event(c: &mut Criterion) {
    let env = envelope();
    let bytes = to_canonical_bytes(&env).unwrap();
    let mut g = c.benchmark_group("per_event");
    g.throughput(Throughput::Elements(1));
    g.bench_function("canonicalise", |b| {
        b.iter(|| to_canonical_bytes(black_box(&env)).unwrap())
    });
    for alg in [HashAlg::Sha3_256, HashAlg::Sha256] {
        g.bench_function(format!("hash/{alg}"), |b| {
            b.iter(|| alg.hash(black_box(&bytes)))
        });
    }
    g.finish();
}

fn per_batch(c: &mut Criterion) {
    let alg = HashAlg::Sha3_256;
    let leaves: Vec<_> = (0u32..10_000).map(|i| alg.hash(&i.to_be_bytes())).collect();
    let mut g = c.benchmark_group("batch_of_10000");
    g.throughput(Throughput::Elements(leaves.len() as u64));
    g.bench_function("build_tree", |b| {
        b.iter(|| MerkleTree::from_data(alg, leaves.iter().map(|d| d.0.as_slice())).root())
    });
    let tree = MerkleTree::from_data(alg, leaves.iter().map(|d| d.0.as_slice()));
    let root = tree.root();
    let proofs: Vec<_> = (0..leaves.len())
        .map(|i| InclusionProof {
            leaf_index: i as u64,
            tree_size: leaves.len() as u64,
            path: tree.inclusion_path(i).unwrap(),
        })
        .collect();
    g.bench_function("verify_every_inclusion_proof", |b| {
        b.iter(|| {
            for (p, l) in proofs.iter().zip(&leaves) {
                p.verify(alg, &leaf_hash(alg, &l.0), &root).unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, per_event, per_batch);
criterion_main!(benches);
