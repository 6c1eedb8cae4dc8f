//! What the end-to-end tests share: starting `veritrace up`, calling its API, registering
//! evidence, waiting for receipts and running `veritrace verify`.
#![allow(dead_code)] // each test binary uses its own subset

pub mod browser;
pub mod deployment;
pub mod epcis;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Running {
    pub child: Child,
    pub url: String,
    pub key: Option<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Settings under which `veritrace up` seals no batch during a test: only when 100,000 events
/// wait, or hourly. Its receipts stay pending.
pub const SEALING_HELD_OFF: [(&str, &str); 4] = [
    ("VERITRACE_ANCHOR__MAX_BATCH_SIZE", "100000"),
    ("VERITRACE_ANCHOR__SEAL_AFTER_MS", "0"),
    ("VERITRACE_ANCHOR__SEAL_WHEN_QUIET_MS", "0"),
    ("VERITRACE_ANCHOR__SEAL_INTERVAL_SECS", "3600"),
];

/// Starts `veritrace up` on a free port and waits for its banner.
pub fn up(data: &Path, env: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_veritrace"));
    cmd.args(["up", "--data-dir"])
        .arg(data)
        .args(["--bind", "127.0.0.1:0"])
        .env("VERITRACE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start veritrace up");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut url, mut key) = (None, None);
    while let Some(Ok(line)) = lines.next() {
        if let Some(u) = line.trim().strip_prefix("API ")
            && url.is_none()
        {
            url = Some(u.trim().to_string());
        }
        if let Some(k) = line.trim().strip_prefix("admin API key") {
            let k = k.trim();
            if k.starts_with("vt_") {
                key = Some(k.to_string());
            }
        }
        if line.contains("admin API key") {
            break;
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        url: url.expect("the banner names the API URL"),
        key,
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

pub fn call(
    method: &str,
    url: &str,
    key: Option<&str>,
    body: Option<&[u8]>,
) -> (u16, String, Value) {
    let a = agent();
    let mut resp = match (method, body) {
        ("GET", _) => {
            let mut r = a.get(url);
            if let Some(k) = key {
                r = r.header("Authorization", &format!("Bearer {k}"));
            }
            r.call().expect("request")
        }
        ("DELETE", _) => {
            let mut r = a.delete(url);
            if let Some(k) = key {
                r = r.header("Authorization", &format!("Bearer {k}"));
            }
            r.call().expect("request")
        }
        ("PUT", b) => {
            let mut r = a.put(url).header("Content-Type", "application/json");
            if let Some(k) = key {
                r = r.header("Authorization", &format!("Bearer {k}"));
            }
            r.send(b.unwrap_or(b"")).expect("request")
        }
        (_, b) => {
            let mut r = a.post(url).header("Content-Type", "application/json");
            if let Some(k) = key {
                r = r.header("Authorization", &format!("Bearer {k}"));
            }
            r.send(b.unwrap_or(b"")).expect("request")
        }
    };
    read_response(&mut resp)
}

/// Status, content type and body (JSON when it parses, else the text).
/// A response header's value as text, empty when absent.
pub fn header_text(resp: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub fn read_response(resp: &mut ureq::http::Response<ureq::Body>) -> (u16, String, Value) {
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        ctype,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `s` as one URL path segment: every byte but the unreserved ones percent-encoded.
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    chain_core::ContentHashAlg::Sha256
        .hash_reader(data)
        .expect("hash")
}

pub fn register(p: &Running, file: &[u8]) -> Value {
    let body = json!({
        "content_hash": {"algorithm": "sha-256", "digest": sha256_hex(file)},
        "title": "Signed delivery contract",
        "case_reference": "2026-CV-0042",
    });
    let (status, _, v) = call(
        "POST",
        &format!("{}/evidence", p.url),
        p.key.as_deref(),
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(status, 201, "{v}");
    v
}

/// Polls the receipt until it is anchored or the deadline passes.
pub fn anchored_receipt(
    p: &Running,
    key: &str,
    event_id: &str,
    within: Duration,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let (status, _, v) = call(
            "GET",
            &format!("{}/receipts/{event_id}", p.url),
            Some(key),
            None,
        );
        if status == 200 && v["status"] == "anchored" {
            return Some(serde_json::to_vec(&v).expect("json"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

pub fn verify_cli(receipt: &Path, genesis: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_veritrace"))
        .arg("verify")
        .arg(receipt)
        .arg("--genesis")
        .arg(genesis)
        .args(extra)
        .output()
        .expect("run verify");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// A consortium of `veritrace node` processes on loopback.
pub struct Network {
    pub dir: PathBuf,
    pub names: Vec<String>,
    pub apis: Vec<String>,
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
    /// A network of four validators on `base_port`+i (p2p) and `base_port`+100+i (API). Keep
    /// `base_port` below 32668: Linux hands out ports from 32768 up to outgoing connections, so
    /// a validator there may find its port taken. Each test file uses its own range.
    pub fn init(dir: &Path, base_port: u16, hash: &str, sig: &str) -> Network {
        assert!(
            base_port + 104 < 32768,
            "base port {base_port} reaches the ephemeral range"
        );
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
            names: (1..=4).map(|i| format!("validator-{i}")).collect(),
            apis: (1..=4)
                .map(|i| format!("http://127.0.0.1:{}", base_port + 100 + i))
                .collect(),
            nodes: (0..4).map(|_| None).collect(),
        }
    }

    pub fn genesis(&self) -> PathBuf {
        self.dir.join("genesis.json")
    }

    /// Starts node `i` (stopping it first if it runs: a second process could not bind its
    /// ports, and the first would outlive the test).
    pub fn start(&mut self, i: usize) {
        self.kill(i);
        let node_dir = self.dir.join(&self.names[i]);
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

    /// Adds a validator with `veritrace chain join` (not started).
    pub fn join(&mut self, name: &str, p2p_port: u16, api_port: u16) {
        run_ok(&[
            "chain",
            "join",
            "--dir",
            self.dir.to_str().expect("utf-8"),
            "--name",
            name,
            "--organisation",
            &format!("Organisation of {name}"),
            "--p2p-port",
            &p2p_port.to_string(),
            "--api-port",
            &api_port.to_string(),
        ]);
        self.names.push(name.to_string());
        self.apis.push(format!("http://127.0.0.1:{api_port}"));
        self.nodes.push(None);
    }

    /// Appends TOML to validator `i`'s node.toml (before it starts).
    pub fn configure(&self, i: usize, toml: &str) {
        let path = self.dir.join(&self.names[i]).join("node.toml");
        let mut text = std::fs::read_to_string(&path).expect("node.toml");
        text.push('\n');
        text.push_str(toml);
        std::fs::write(&path, text).expect("write node.toml");
    }

    /// SIGKILL: the node gets no chance to tidy up.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            c.kill().expect("kill");
            c.wait().expect("reap");
        }
    }

    /// Waits for node `i`'s process to exit on its own; its exit status, if it did in time.
    pub fn wait_for_exit(
        &mut self,
        i: usize,
        within: Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let status = match self.nodes[i].as_mut() {
                Some(c) => c.try_wait().expect("wait"),
                None => return None,
            };
            if status.is_some() {
                self.nodes[i] = None;
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Node `i`'s process id, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].as_ref().map(|c| c.id())
    }

    /// Node `i`'s data directory (its block store, consensus store and write-ahead log).
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.join(&self.names[i]).join("data")
    }

    pub fn get(&self, i: usize, path: &str) -> Option<Value> {
        let (status, _, v) = try_call(&format!("{}{path}", self.apis[i]))?;
        (status == 200).then_some(v)
    }

    /// The node's final head, if it answers.
    pub fn final_head(&self, i: usize) -> Option<u64> {
        self.get(i, "/chain/head")?["height"].as_u64()
    }

    pub fn block_hash(&self, i: usize, height: u64) -> Option<String> {
        self.get(i, &format!("/chain/blocks/{height}"))
            .and_then(|v| v["block"]["hash"].as_str().map(str::to_string))
    }

    /// Waits until every listed node's final head reaches `height`.
    pub fn wait_for_height(&self, nodes: &[usize], height: u64, within: Duration) {
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

    pub fn max_head(&self, nodes: &[usize]) -> u64 {
        nodes
            .iter()
            .filter_map(|i| self.final_head(*i))
            .max()
            .unwrap_or(0)
    }

    /// Every node holds the same block at every height they all have: one chain, no fork.
    pub fn assert_one_chain(&self, nodes: &[usize]) {
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

pub fn try_call(url: &str) -> Option<(u16, String, Value)> {
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
pub fn receipt_verifies(p: &Running, genesis: &Path, work: &Path, doc: &[u8]) -> Value {
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

/// Runs the binary and returns its stdout; panics with its stderr when it fails.
pub fn run_ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_veritrace"))
        .args(args)
        .output()
        .expect("run veritrace");
    assert!(
        out.status.success(),
        "veritrace {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Networks run one after the other: eight validators on two cores would measure the machine,
/// not the protocol.
pub fn one_network_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}
