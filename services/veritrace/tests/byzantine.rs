//! Byzantine validators among four honest-majority processes on loopback (needs the
//! `byzantine` feature, which lets a node misbehave on request): one that sends conflicting
//! votes, one that proposes blocks with a forged transaction root. The honest validators catch
//! the faulty one, keep finalising, and keep one chain.

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

/// Waits until an honest node reports `kind` misbehaviour by `validator`; returns the reports.
fn wait_for_report(net: &Network, honest: &[usize], validator: &str, kind: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reports: Vec<Value> = honest
            .iter()
            .filter_map(|i| net.get(*i, "/chain/misbehaviour"))
            .flat_map(|v| v["items"].as_array().cloned().unwrap_or_default())
            .collect();
        if reports
            .iter()
            .any(|r| r["validator"] == validator && r["kind"] == kind)
        {
            return reports;
        }
        assert!(
            Instant::now() < deadline,
            "no honest node reported {kind} by {validator}: {reports:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_validator_sending_conflicting_votes_is_caught_and_one_chain_is_kept() {
    let _serial = one_network_at_a_time();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut net = Network::init(&tmp.path().join("net"), 31600, "sha3-256", "ed25519");
    net.configure(3, "[misbehaviour]\nequivocate_votes = true\n");
    for i in 0..4 {
        net.start(i);
    }
    let all = [0, 1, 2, 3];
    net.wait_for_height(&all, 4, Duration::from_secs(90));
    let reports = wait_for_report(&net, &[0, 1, 2], "validator-4", "conflicting-votes");
    // Only the faulty validator is accused.
    assert!(
        reports.iter().all(|r| r["validator"] == "validator-4"),
        "{reports:?}"
    );
    // Its conflicting votes do not stop finality, nor split the chain.
    let h = net.max_head(&all);
    net.wait_for_height(&all, h + 3, Duration::from_secs(60));
    net.assert_one_chain(&all);

    // The explorer of a platform anchoring on this consortium asks every node, and shows the
    // reports of each.
    let nodes = serde_json::to_string(&net.apis).expect("json");
    let genesis = net.genesis();
    let platform = common::up(
        &tmp.path().join("platform"),
        &[
            ("VERITRACE_CHAIN__NODES", nodes.as_str()),
            ("VERITRACE_CHAIN__GENESIS", genesis.to_str().expect("utf-8")),
        ],
    );
    let mut page = common::agent()
        .get(&format!("{}/explorer/misbehaviour", platform.url))
        .call()
        .expect("misbehaviour page");
    assert_eq!(page.status(), 200);
    let html = page.body_mut().read_to_string().expect("html");
    assert_eq!(html.matches(r#"data-check="node""#).count(), 4, "{html}");
    assert!(
        html.contains(
            r#"data-check="report" data-validator="validator-4" data-kind="conflicting-votes""#
        ),
        "{html}"
    );
}

#[test]
fn blocks_with_a_forged_transaction_root_are_voted_down_and_never_final() {
    let _serial = one_network_at_a_time();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut net = Network::init(&tmp.path().join("net"), 32600, "sha3-256", "ed25519");
    net.configure(3, "[misbehaviour]\nbad_transaction_root = true\n");
    for i in 0..4 {
        net.start(i);
    }
    let honest = [0, 1, 2];
    let reports = wait_for_report(&net, &honest, "validator-4", "invalid-proposal");
    assert!(
        reports.iter().any(|r| r["detail"]
            .as_str()
            .is_some_and(|d| d.contains("transaction root"))),
        "{reports:?}"
    );
    // The faulty validator has had its turns as proposer; the honest ones carried on.
    let all = [0, 1, 2, 3];
    net.wait_for_height(&honest, 9, Duration::from_secs(120));
    let top = net.max_head(&honest);
    net.wait_for_height(&all, top, Duration::from_secs(60));
    net.assert_one_chain(&all);
    for h in 1..=top {
        let block = net
            .get(0, &format!("/chain/blocks/{h}"))
            .expect("final block");
        assert_ne!(
            block["block"]["block"]["header"]["proposer"], "validator-4",
            "height {h}: a block of the faulty proposer became final"
        );
    }
}

/// A validator killed between each pair of the writes that commit a block (a deliberate abort
/// at each step, at a height ahead of the chain) restarts, catches up and keeps voting without
/// ever signing two different votes; afterwards it alone serves a wiped validator every height
/// through sync.
#[test]
fn a_validator_killed_at_any_step_of_a_commit_recovers_and_serves_sync() {
    let _serial = one_network_at_a_time();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut net = Network::init(&tmp.path().join("net"), 24600, "sha3-256", "ed25519");
    let config = net.dir.join(&net.names[3]).join("node.toml");
    let honest_config = std::fs::read_to_string(&config).expect("node.toml");
    let all = [0, 1, 2, 3];
    for i in 0..3 {
        net.start(i);
    }
    for step in [
        "before-certificate",
        "after-certificate",
        "after-block",
        "after-cleanup",
    ] {
        // Crash at a height the chain has not reached yet.
        net.kill(3);
        let at = net.max_head(&[0, 1, 2]) + 3;
        std::fs::write(
            &config,
            format!(
                "{honest_config}\n[misbehaviour]\ncrash_in_commit = \"{step}\"\ncrash_at_height = {at}\n"
            ),
        )
        .expect("write node.toml");
        net.start(3);
        // Aborted at the failpoint (SIGABRT), not exited for some other reason.
        let status = net.wait_for_exit(3, Duration::from_secs(90));
        assert_eq!(
            status.and_then(|s| s.signal()),
            Some(6),
            "validator-4 did not crash {step} of committing height {at}: {status:?}"
        );
        std::fs::write(&config, &honest_config).expect("write node.toml");
        net.start(3);
        // It restarts from what the crash left, catches up and follows the chain again.
        net.wait_for_height(&all, at + 2, Duration::from_secs(90));
        net.assert_one_chain(&all);
    }
    // Its votes never conflicted, in any restart.
    for i in 0..3 {
        let reports = net.get(i, "/chain/misbehaviour").expect("misbehaviour");
        assert_eq!(
            reports["items"],
            serde_json::json!([]),
            "validator-{} saw misbehaviour",
            i + 1
        );
    }
    // It serves sync for every height: with two validators down, a third one wiped can only
    // catch up from it.
    net.kill(0);
    net.kill(1);
    net.kill(2);
    let top = net.final_head(3).expect("validator-4 answers");
    assert!(top > 4, "validator-4's final head {top}");
    std::fs::remove_dir_all(net.data_dir(2)).expect("wipe validator-3");
    net.start(2);
    net.wait_for_height(&[2], top, Duration::from_secs(90));
    net.assert_one_chain(&[2, 3]);
}

/// Resident memory of a process, in bytes (Linux).
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A validator publishing proposal streams that never complete, for heights ahead, at about
/// 10 MB/s: the others keep what the bounds allow (a few tens of MiB), report it for
/// flooding, and keep finalising.
#[test]
fn a_peer_flooding_proposal_streams_is_bounded_and_reported() {
    let _serial = one_network_at_a_time();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut net = Network::init(&tmp.path().join("net"), 23600, "sha3-256", "ed25519");
    for i in 0..3 {
        net.start(i);
    }
    let honest = [0, 1, 2];
    net.wait_for_height(&honest, 2, Duration::from_secs(60));
    let pid = net.pid(0).expect("validator-1 runs");
    let memory_before = resident_bytes(pid);
    let disk_before = dir_bytes(&net.data_dir(0));
    net.configure(3, "[misbehaviour]\nflood_proposal_streams = true\n");
    net.start(3);
    let reports = wait_for_report(&net, &honest, "validator-4", "flooding");
    assert!(
        reports.iter().all(|r| r["validator"] == "validator-4"),
        "{reports:?}"
    );
    // 40 s of flooding: about 400 MB published. Held, without bounds, until each height
    // passes; with them, at most 16 MiB of open streams from one peer and 32 MiB of
    // proposals for heights ahead.
    let h = net.max_head(&honest);
    let started = Instant::now();
    let mut peak = memory_before;
    while started.elapsed() < Duration::from_secs(40) {
        peak = peak.max(resident_bytes(pid));
        std::thread::sleep(Duration::from_millis(250));
    }
    let grown = peak.saturating_sub(memory_before);
    assert!(
        grown < 200 << 20,
        "validator-1 grew by {} MiB under the flood",
        grown >> 20
    );
    let disk_grown = dir_bytes(&net.data_dir(0)).saturating_sub(disk_before);
    assert!(
        disk_grown < 64 << 20,
        "validator-1's data grew by {} MiB under the flood",
        disk_grown >> 20
    );
    // Finality went on meanwhile.
    net.wait_for_height(&honest, h + 5, Duration::from_secs(60));
    net.assert_one_chain(&[0, 1, 2, 3]);
}
