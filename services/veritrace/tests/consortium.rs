//! A consortium of four validators, each a separate `veritrace node` process on loopback:
//! blocks finalise and receipts verify; with one validator killed blocks keep finalising; with
//! two killed none does and no fork appears; a returning validator catches up and finality
//! resumes. Once with the default profile, once with the national-crypto one.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn scenario(base_port: u16, hash: &str, sig: &str) {
    let _serial = one_network_at_a_time();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut net = Network::init(&tmp.path().join("net"), base_port, hash, sig);
    for i in 0..4 {
        net.start(i);
    }
    let all = [0, 1, 2, 3];
    net.wait_for_height(&all, 2, Duration::from_secs(90));

    // A validator's one POST endpoint refuses bodies nested at any depth with a problem (none
    // is a transaction), past 32 levels by the depth rule; the chain finalises on regardless.
    let submit = format!("{}/chain/transactions", net.apis[0]);
    for depth in 1..=200usize {
        let body = (1..depth).fold(
            serde_json::json!(1),
            |inner, _| serde_json::json!({ "a": inner }),
        );
        let (status, ctype, v) = call("POST", &submit, None, Some(body.to_string().as_bytes()));
        assert!((400..500).contains(&status), "depth {depth}: {status} {v}");
        assert_eq!(ctype, "application/problem+json", "depth {depth}: {v}");
        if depth > 32 {
            assert_eq!(status, 422, "depth {depth}: {v}");
        }
    }

    // Receipts from a platform that anchors on the consortium verify against its genesis.
    let nodes = serde_json::to_string(&net.apis).expect("json");
    let genesis = net.genesis();
    let platform = up(
        &tmp.path().join("platform"),
        &[
            ("VERITRACE_CHAIN__NODES", nodes.as_str()),
            ("VERITRACE_CHAIN__GENESIS", genesis.to_str().expect("utf-8")),
        ],
    );
    let receipt = receipt_verifies(&platform, &genesis, tmp.path(), b"first contract");
    assert_eq!(
        receipt["block_header"]["validator_set_hash"]
            .as_str()
            .map(str::len),
        Some(64)
    );

    // One validator down: 3 of 4 still finalise.
    net.kill(3);
    let h0 = net.max_head(&[0, 1, 2]);
    net.wait_for_height(&[0, 1, 2], h0 + 3, Duration::from_secs(60));

    // Two down: no quorum, so nothing finalises. Watching a window of several block
    // intervals and round timeouts is the only way to see that nothing happens.
    net.kill(2);
    std::thread::sleep(Duration::from_secs(2));
    let stalled = net.max_head(&[0, 1]);
    let watch_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < watch_until {
        let h = net.max_head(&[0, 1]);
        assert!(
            h <= stalled,
            "a block finalised with half the validators: {h} > {stalled}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // The validator that missed the most returns: it catches up and finality resumes.
    net.start(3);
    net.wait_for_height(&[0, 1, 3], stalled + 2, Duration::from_secs(90));
    receipt_verifies(&platform, &genesis, tmp.path(), b"second contract");

    // The last one returns too; all four hold one chain.
    net.start(2);
    let top = net.max_head(&[0, 1, 3]);
    net.wait_for_height(&all, top, Duration::from_secs(90));
    net.assert_one_chain(&all);
}

#[test]
fn four_validators_finalise_survive_one_failure_stall_at_two_and_catch_up() {
    scenario(28600, "sha3-256", "ed25519");
}

#[test]
fn the_same_with_sm3_and_sm2() {
    scenario(29600, "sm3", "sm2");
}
