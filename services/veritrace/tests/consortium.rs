//! A consortium of four validators, each a separate `veritrace node` process on loopback:
//! blocks finalise and receipts verify; with one validator killed blocks keep finalising; with
//! two killed none does and no fork appears; a returning validator catches up and finality
//! resumes. Once with the default profile, once with the national-crypto one.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The scenarios run one after the other: eight validators on two cores would measure the
/// machine, not the protocol.
static ONE_NETWORK_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Network {
    dir: PathBuf,
    apis: Vec<String>,
    nodes: Vec<Option<Child>>,
}

impl Drop for Network {
    fn drop(&mut self) {
        for c in self.nodes.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Network {
    fn init(dir: &Path, base_port: u16, hash: &str, sig: &str) -> Network {
        let out = Command::new(env!("CARGO_BIN_EXE_veritrace"))
            .args(["chain", "init", "--dir"])
            .arg(dir)
            .args(["--validators", "4", "--base-port", &base_port.to_string()])
            .args(["--hash-alg", hash, "--signature-alg", sig])
            .output()
            .expect("chain init");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Network {
            dir: dir.to_path_buf(),
            apis: (1..=4)
                .map(|i| format!("http://127.0.0.1:{}", base_port + 100 + i))
                .collect(),
            nodes: (0..4).map(|_| None).collect(),
        }
    }

    fn genesis(&self) -> PathBuf {
        self.dir.join("genesis.json")
    }

    fn start(&mut self, i: usize) {
        let node_dir = self.dir.join(format!("validator-{}", i + 1));
        let child = Command::new(env!("CARGO_BIN_EXE_veritrace"))
            .args(["node", "--config"])
            .arg(node_dir.join("node.toml"))
            .env("VERITRACE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start veritrace node");
        self.nodes[i] = Some(child);
    }

    /// SIGKILL: the node gets no chance to tidy up.
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            c.kill().expect("kill");
            c.wait().expect("reap");
        }
    }

    fn get(&self, i: usize, path: &str) -> Option<Value> {
        let (status, _, v) = try_call(&format!("{}{path}", self.apis[i]))?;
        (status == 200).then_some(v)
    }

    /// The node's final head, if it answers.
    fn final_head(&self, i: usize) -> Option<u64> {
        self.get(i, "/chain/head")?["height"].as_u64()
    }

    fn block_hash(&self, i: usize, height: u64) -> Option<String> {
        self.get(i, &format!("/chain/blocks/{height}"))
            .and_then(|v| v["block"]["hash"].as_str().map(str::to_string))
    }

    /// Waits until every listed node's final head reaches `height`.
    fn wait_for_height(&self, nodes: &[usize], height: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let heads: Vec<Option<u64>> = nodes.iter().map(|i| self.final_head(*i)).collect();
            if heads.iter().all(|h| h.is_some_and(|h| h >= height)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nodes {nodes:?} did not reach final height {height} within {within:?}: {heads:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn max_head(&self, nodes: &[usize]) -> u64 {
        nodes
            .iter()
            .filter_map(|i| self.final_head(*i))
            .max()
            .unwrap_or(0)
    }

    /// Every node holds the same block at every height they all have: one chain, no fork.
    fn assert_one_chain(&self, nodes: &[usize]) {
        let top = nodes
            .iter()
            .map(|i| self.final_head(*i).expect("node answers"))
            .min()
            .unwrap_or(0);
        assert!(top > 0);
        for h in 1..=top {
            let hashes: Vec<Option<String>> =
                nodes.iter().map(|i| self.block_hash(*i, h)).collect();
            assert!(hashes[0].is_some(), "height {h} missing");
            assert!(
                hashes.iter().all(|x| *x == hashes[0]),
                "fork at height {h}: {hashes:?}"
            );
        }
    }
}

fn try_call(url: &str) -> Option<(u16, String, Value)> {
    let a: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let mut resp = a.get(url).call().ok()?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().ok()?;
    Some((status, String::new(), serde_json::from_str(&text).ok()?))
}

/// Registers a document through a platform anchored on the consortium and checks its receipt
/// offline against the consortium's genesis.
fn receipt_verifies(p: &Running, genesis: &Path, work: &Path, doc: &[u8]) -> Value {
    let key = p.key.clone().expect("admin key");
    let v = register(p, doc);
    let event_id = v["event_id"].as_str().expect("event id").to_string();
    let receipt = anchored_receipt(p, &key, &event_id, Duration::from_secs(20))
        .expect("the receipt is anchored on the consortium");
    let path = work.join(format!("{event_id}.json"));
    std::fs::write(&path, &receipt).expect("write receipt");
    let doc_path = work.join(format!("{event_id}.bin"));
    std::fs::write(&doc_path, doc).expect("write document");
    let (code, out) = verify_cli(
        &path,
        genesis,
        &["--file", doc_path.to_str().expect("utf-8")],
    );
    assert_eq!(code, 0, "{out}");
    let parsed: Value = serde_json::from_slice(&receipt).expect("receipt json");
    let signers = parsed["attestations"]
        .as_array()
        .expect("attestations")
        .len();
    assert!(
        signers >= 3,
        "more than 2/3 of 4 validators attest: {signers}"
    );
    parsed
}

fn scenario(base_port: u16, hash: &str, sig: &str) {
    let _serial = ONE_NETWORK_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut net = Network::init(&tmp.path().join("net"), base_port, hash, sig);
    for i in 0..4 {
        net.start(i);
    }
    let all = [0, 1, 2, 3];
    net.wait_for_height(&all, 2, Duration::from_secs(90));

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
