//! Governance on a live consortium: a fifth organisation joins and is voted in, then one of the
//! original four is voted out. Receipts from after both changes verify from the original
//! genesis file alone, and a receipt whose block is attested by the removed set after its
//! removal fails.

mod common;

use chain_core::attestation::attest;
use chain_core::{Digest, Genesis};
use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Drafts a change with `chain propose`, has `approvers` sign it, submits it and waits until
/// it is final; returns its effective height.
fn change_set(net: &Network, file: &str, edit: &[&str], approvers: &[&str]) -> u64 {
    let genesis = net.genesis();
    let path = net.dir.join(file);
    let mut args = vec![
        "chain",
        "propose",
        "--node",
        &net.apis[0],
        "--genesis",
        genesis.to_str().expect("utf-8"),
        "--out",
        path.to_str().expect("utf-8"),
        "--effective-in",
        "8",
    ];
    args.extend_from_slice(edit);
    run_ok(&args);
    let submit = |wait: bool| {
        let mut a = vec![
            "chain",
            "submit",
            path.to_str().expect("utf-8"),
            "--node",
            &net.apis[1],
            "--genesis",
            genesis.to_str().expect("utf-8"),
        ];
        if wait {
            a.push("--wait");
        }
        std::process::Command::new(env!("CARGO_BIN_EXE_veritrace"))
            .args(&a)
            .output()
            .expect("run submit")
    };
    for (i, name) in approvers.iter().enumerate() {
        if i == 1 {
            // One approval is not a quorum: submitting now is refused, naming what is missing.
            let early = submit(false);
            assert!(!early.status.success());
            let err = String::from_utf8_lossy(&early.stderr);
            assert!(err.contains("more needed"), "{err}");
        }
        let config = net.dir.join(name).join("node.toml");
        run_ok(&[
            "chain",
            "approve",
            path.to_str().expect("utf-8"),
            "--config",
            config.to_str().expect("utf-8"),
        ]);
    }
    let done = submit(true);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let change: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("change file")).expect("json");
    change["effective_height"]
        .as_u64()
        .expect("effective height")
}

fn signing_key(dir: &Path, name: &str, g: &Genesis) -> chain_core::keys::SigningKey {
    chain_core::keys::load_or_create(&dir.join(name).join("validator.key"), g.signature_alg)
        .expect("validator key")
}

#[test]
fn a_fifth_validator_joins_one_leaves_and_receipts_still_verify_from_genesis() {
    let _serial = one_network_at_a_time();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut net = Network::init(&tmp.path().join("net"), 30600, "sha3-256", "ed25519");
    for i in 0..4 {
        net.start(i);
    }
    net.wait_for_height(&[0, 1, 2, 3], 2, Duration::from_secs(90));
    let genesis_path = net.genesis();
    let genesis =
        Genesis::parse(&std::fs::read(&genesis_path).expect("genesis")).expect("valid genesis");
    let nodes = serde_json::to_string(&net.apis).expect("json");
    let platform = up(
        &tmp.path().join("platform"),
        &[
            ("VERITRACE_CHAIN__NODES", nodes.as_str()),
            (
                "VERITRACE_CHAIN__GENESIS",
                genesis_path.to_str().expect("utf-8"),
            ),
        ],
    );
    let before = receipt_verifies(&platform, &genesis_path, tmp.path(), b"before any change");
    assert_eq!(before["validator_set_changes"], serde_json::json!([]));

    // A fifth organisation joins with its own keys and is voted in by three of the four.
    net.join("validator-5", 30605, 30705);
    net.start(4);
    let entry = net.dir.join("validator-5").join("validator.json");
    let added = change_set(
        &net,
        "add-5.json",
        &["--add", entry.to_str().expect("utf-8")],
        &["validator-1", "validator-2", "validator-3"],
    );
    let all = [0, 1, 2, 3, 4];
    net.wait_for_height(&all, added + 2, Duration::from_secs(120));
    // The newcomer signs the blocks of its set.
    let signed_by_5 = net
        .get(4, &format!("/chain/blocks/{}", added + 1))
        .expect("block after the change");
    let signers: Vec<&str> = signed_by_5["block"]["attestations"]
        .as_array()
        .expect("attestations")
        .iter()
        .filter_map(|a| a["validator"].as_str())
        .collect();
    assert!(signers.contains(&"validator-5"), "{signers:?}");

    // Validator 4 is voted out; four of the five approve (3 of 5 would not be enough).
    let removed = change_set(
        &net,
        "remove-4.json",
        &["--remove", "validator-4"],
        &["validator-1", "validator-2", "validator-3", "validator-5"],
    );
    net.wait_for_height(&[0, 1, 2, 4], removed + 1, Duration::from_secs(120));
    net.kill(3);
    let history = net.get(0, "/chain/validator-sets").expect("history");
    let items = history["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    assert_eq!(items[1]["from_height"].as_u64(), Some(added));
    assert_eq!(items[2]["from_height"].as_u64(), Some(removed));

    // A new receipt, from a block of the third set, verifies from the original genesis alone.
    let after = receipt_verifies(&platform, &genesis_path, tmp.path(), b"after both changes");
    let height = after["block_header"]["height"].as_u64().expect("height");
    assert!(height >= removed);
    assert_eq!(
        after["validator_set_changes"].as_array().map(Vec::len),
        Some(2)
    );
    let signers: Vec<&str> = after["attestations"]
        .as_array()
        .expect("attestations")
        .iter()
        .filter_map(|a| a["validator"].as_str())
        .collect();
    assert!(!signers.contains(&"validator-4"), "{signers:?}");
    // The first receipt, fetched again, still verifies (no change was in force at its block).
    let before_id = before["event"]["id"].as_str().expect("id");
    let again = anchored_receipt(
        &platform,
        platform.key.as_deref().expect("key"),
        before_id,
        Duration::from_secs(5),
    )
    .expect("first receipt");
    let again_path = tmp.path().join("before-again.json");
    std::fs::write(&again_path, &again).expect("write");
    assert_eq!(verify_cli(&again_path, &genesis_path, &[]).0, 0);

    // Forgery: the removed set (validator-1..5, including validator-4) attests a block after
    // its removal. Its signatures are genuine and a quorum of that set, yet the receipt names
    // the removal, so the block had to come from the set after it.
    let alg = genesis.hash_alg;
    let removed_set_hash: Digest = items[1]["hash"]
        .as_str()
        .expect("hash")
        .parse()
        .expect("digest");
    let mut forged = after.clone();
    forged["block_header"]["validator_set_hash"] = Value::String(removed_set_hash.to_hex());
    let header: chain_core::BlockHeader =
        serde_json::from_value(forged["block_header"].clone()).expect("header");
    let block_hash = header.hash(alg).expect("hash");
    let attestations: Vec<_> = ["validator-1", "validator-2", "validator-4", "validator-5"]
        .iter()
        .map(|n| {
            attest(
                &signing_key(&net.dir, n, &genesis),
                n,
                &genesis.chain_id,
                height,
                &block_hash,
            )
        })
        .collect();
    forged["attestations"] = serde_json::to_value(&attestations).expect("json");
    let forged_path = tmp.path().join("forged.json");
    std::fs::write(&forged_path, serde_json::to_vec(&forged).expect("json")).expect("write");
    let (code, out) = verify_cli(&forged_path, &genesis_path, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("(validator-set)"), "{out}");

    // Dropping the removal from the receipt does not help the genuine block either: its header
    // names the set after the removal.
    let mut truncated = after.clone();
    truncated["validator_set_changes"]
        .as_array_mut()
        .expect("changes")
        .pop();
    let truncated_path = tmp.path().join("truncated.json");
    std::fs::write(
        &truncated_path,
        serde_json::to_vec(&truncated).expect("json"),
    )
    .expect("write");
    let (code, out) = verify_cli(&truncated_path, &genesis_path, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("(validator-set)"), "{out}");

    // An approval altered in the receipt breaks the chain of sets.
    let mut bad_approval = after.clone();
    let sig = bad_approval["validator_set_changes"][0]["approvals"][0]["signature"]
        .as_str()
        .expect("signature")
        .to_string();
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    bad_approval["validator_set_changes"][0]["approvals"][0]["signature"] =
        Value::String(format!("{flipped}{}", &sig[1..]));
    let bad_path = tmp.path().join("bad-approval.json");
    std::fs::write(&bad_path, serde_json::to_vec(&bad_approval).expect("json")).expect("write");
    let (code, out) = verify_cli(&bad_path, &genesis_path, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("(validator-set-change)"), "{out}");

    // The three remaining original validators and the newcomer keep one chain.
    let top = net.max_head(&[0, 1, 2, 4]);
    net.wait_for_height(&[0, 1, 2, 4], top, Duration::from_secs(60));
    net.assert_one_chain(&[0, 1, 2, 4]);
}
