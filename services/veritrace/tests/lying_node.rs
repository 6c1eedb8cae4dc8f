//! Issue 16, acceptance 3: a platform anchored on a four-validator consortium, whose first
//! chain node is a stub in front of a validator's API that lies: it names wrong locations for
//! transactions, serves every block with junk attestations beside the real ones, and (in the
//! second phase) serves blocks whose transactions were altered. Every receipt the platform
//! issues still verifies offline against the genesis, and the stub's lies were served.

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// What the stub did; the test asserts the lies were served, so that it could fail.
#[derive(Default)]
struct Lies {
    /// Wrong locations answered.
    locations: AtomicUsize,
    /// ... of which named a transaction that exists (another batch's).
    locations_of_other_transactions: AtomicUsize,
    /// Blocks served with junk attestations beside the real ones.
    junk_attestations: AtomicUsize,
    /// Blocks served with altered transactions.
    altered_blocks: AtomicUsize,
    /// From the second phase on, alter the transactions of every block served and lie about
    /// every location, not only about transactions the validator has not finalised yet.
    alter: AtomicBool,
}

/// A stub HTTP/1.1 node API in front of `target`: it forwards every request and rewrites the
/// answers it lies about. One request per connection (it answers `Connection: close`).
struct LyingProxy {
    url: String,
    lies: Arc<Lies>,
    stop: Arc<AtomicBool>,
}

impl LyingProxy {
    fn start(target: &str) -> LyingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stub");
        let url = format!("http://{}", listener.local_addr().expect("stub address"));
        let lies = Arc::new(Lies::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (target, l, s) = (target.to_string(), lies.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (target, lies) = (target.clone(), l.clone());
                std::thread::spawn(move || serve(stream, &target, &lies));
            }
        });
        LyingProxy { url, lies, stop }
    }

    fn count(&self, what: &AtomicUsize) -> usize {
        what.load(Ordering::SeqCst)
    }
}

impl Drop for LyingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn serve(stream: TcpStream, target: &str, lies: &Lies) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return;
    };
    let (method, path) = (method.to_string(), path.to_string());
    let (mut length, mut content_type) = (0usize, None);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "content-type" => content_type = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }

    let agent = agent();
    let url = format!("{target}{path}");
    let forwarded = if method == "GET" {
        agent.get(&url).call()
    } else {
        agent
            .post(&url)
            .header(
                "Content-Type",
                content_type.as_deref().unwrap_or("application/json"),
            )
            .send(&body[..])
    };
    let (mut status, mut ctype, mut answer) = match forwarded {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let ctype = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_string();
            let bytes = resp.body_mut().read_to_vec().unwrap_or_default();
            (status, ctype, bytes)
        }
        Err(_) => (502, "text/plain".into(), b"bad gateway".to_vec()),
    };

    let mut served = None;
    if method == "GET"
        && let Some(hash) = path.strip_prefix("/chain/transactions/")
    {
        let real: Option<Value> = (status == 200)
            .then(|| serde_json::from_slice(&answer).ok())
            .flatten();
        if let Some(lie) = wrong_location(lies, target, hash, real.as_ref()) {
            (status, ctype, answer) = (200, "application/json".into(), lie.0.to_string().into());
            served = Some(lie.1);
        }
    } else if method == "GET"
        && path.starts_with("/chain/blocks/")
        && status == 200
        && let Ok(mut detail) = serde_json::from_slice::<Value>(&answer)
    {
        add_junk_attestations(&mut detail["block"]);
        let mut kinds = vec![&lies.junk_attestations];
        if lies.alter.load(Ordering::SeqCst) {
            alter_transactions(&mut detail["block"]["block"]);
            kinds.push(&lies.altered_blocks);
        }
        answer = detail.to_string().into_bytes();
        served = Some(kinds);
    }

    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        404 => "Not Found",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.len()
    );
    let mut stream = &stream;
    if stream.write_all(head.as_bytes()).is_ok()
        && stream.write_all(&answer).is_ok()
        && stream.flush().is_ok()
    {
        for counter in served.unwrap_or_default() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The stub's answer about transaction `hash` whose real location is `real` (None while the
/// validator has not finalised it), and what to count once it is served: where another
/// transaction on the chain really is when there is one, else the next index of the real block
/// or block 1. Before the second phase, a finalised transaction's location is told truly, so
/// that the stub stays the node the platform asks first.
fn wrong_location<'a>(
    lies: &'a Lies,
    target: &str,
    hash: &str,
    real: Option<&Value>,
) -> Option<(Value, Vec<&'a AtomicUsize>)> {
    if real.is_some() && !lies.alter.load(Ordering::SeqCst) {
        return None;
    }
    if let Some(other) = another_transaction(target, hash) {
        return Some((
            other,
            vec![&lies.locations, &lies.locations_of_other_transactions],
        ));
    }
    let lie = match real {
        Some(r) => json!({ "height": r["height"], "index": r["index"].as_u64().unwrap_or(0) + 1 }),
        None => json!({ "height": 1, "index": 0 }),
    };
    Some((lie, vec![&lies.locations]))
}

/// The location of the newest transaction other than `hash` on the validator's chain, found
/// through its API (each block detail lists its transaction hashes).
fn another_transaction(target: &str, hash: &str) -> Option<Value> {
    let (_, _, head) = try_call(&format!("{target}/chain/head"))?;
    let top = head["height"].as_u64()?;
    (1..=top).rev().take(1_000).find_map(|height| {
        let (status, _, detail) = try_call(&format!("{target}/chain/blocks/{height}"))?;
        if status != 200 {
            return None;
        }
        let index = detail["transaction_hashes"]
            .as_array()?
            .iter()
            .position(|h| h.as_str() != Some(hash))?;
        Some(json!({ "height": height, "index": index }))
    })
}

/// Puts junk in front of a committed block's real attestations: a validator of the set with a
/// garbage signature, an unknown validator with a real signature, and a repeat of a real one.
fn add_junk_attestations(block: &mut Value) {
    let Some(atts) = block["attestations"].as_array_mut() else {
        return;
    };
    let Some(real) = atts.first().cloned() else {
        return;
    };
    atts.insert(
        0,
        json!({ "validator": "validator-2", "signature": "ab".repeat(64) }),
    );
    atts.insert(
        1,
        json!({ "validator": "validator-99", "signature": real["signature"] }),
    );
    atts.insert(2, real);
}

/// Alters a block's transactions and leaves its header as it was: the first transaction gets
/// another batch root, or a forged one is added to an empty block.
fn alter_transactions(block: &mut Value) {
    let chain_id = block["header"]["chain_id"].clone();
    let Some(txs) = block["transactions"].as_array_mut() else {
        return;
    };
    match txs.first_mut() {
        Some(tx) if tx["type"] == "anchor" => tx["batch_root"] = json!("cd".repeat(32)),
        _ => txs.insert(
            0,
            json!({
                "type": "anchor",
                "chain_id": chain_id,
                "batch_id": "forged-by-the-stub",
                "batch_root": "cd".repeat(32),
                "batch_size": 1,
            }),
        ),
    }
}

/// Registers a document and waits for its anchored receipt (the platform answers pending until
/// it has one that verifies).
fn anchored(platform: &Running, doc: &[u8]) -> Vec<u8> {
    let key = platform.key.clone().expect("admin key");
    let event = register(platform, doc);
    let event_id = event["event_id"].as_str().expect("event id");
    anchored_receipt(platform, &key, event_id, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no anchored receipt for {event_id} within 60 s"))
}

fn platform(dir: &std::path::Path, nodes: &[String], genesis: &std::path::Path) -> Running {
    let nodes = serde_json::to_string(nodes).expect("json");
    up(
        dir,
        &[
            ("VERITRACE_CHAIN__NODES", nodes.as_str()),
            ("VERITRACE_CHAIN__GENESIS", genesis.to_str().expect("utf-8")),
        ],
    )
}

#[test]
fn every_receipt_verifies_although_the_first_node_lies() {
    let _serial = one_network_at_a_time();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut net = Network::init(&tmp.path().join("net"), 25600, "sha3-256", "ed25519");
    for i in 0..4 {
        net.start(i);
    }
    net.wait_for_height(&[0, 1, 2, 3], 2, Duration::from_secs(90));
    let genesis_path = net.genesis();
    let genesis = chain_core::Genesis::parse(&std::fs::read(&genesis_path).expect("genesis"))
        .expect("a valid genesis");

    // The stub is listed first: a platform asks it first, and keeps asking it first while
    // the blocks it serves pass (junk attestations are left out of them).
    let stub = LyingProxy::start(&net.apis[0]);
    let mut nodes = vec![stub.url.clone()];
    nodes.extend(net.apis[1..].iter().cloned());

    // Phase 1: wrong locations for transactions not yet final, junk attestations in every
    // block. One document at a time, so that there are several batches and the stub names
    // real transactions of other batches.
    let mut receipts = Vec::new();
    {
        let p = platform(&tmp.path().join("platform-1"), &nodes, &genesis_path);
        for i in 0..3 {
            receipts.push(anchored(&p, format!("contract {i}").as_bytes()));
        }
    }
    assert!(
        stub.count(&stub.lies.locations) >= 1,
        "the stub named no wrong location"
    );
    assert!(
        stub.count(&stub.lies.locations_of_other_transactions) >= 1,
        "the stub never named another batch's transaction"
    );
    assert!(
        stub.count(&stub.lies.junk_attestations) >= 1,
        "the stub served no block with junk attestations"
    );

    // Phase 2: a fresh platform (which asks the stub first again) while the stub also alters
    // the transactions of every block and lies about every location.
    stub.lies.alter.store(true, Ordering::SeqCst);
    let located_before = stub.count(&stub.lies.locations);
    {
        let p = platform(&tmp.path().join("platform-2"), &nodes, &genesis_path);
        for i in 3..5 {
            receipts.push(anchored(&p, format!("contract {i}").as_bytes()));
        }
    }
    assert!(
        stub.count(&stub.lies.altered_blocks) >= 1,
        "the stub served no block with altered transactions"
    );
    assert!(
        stub.count(&stub.lies.locations) > located_before,
        "the stub named no wrong location in the second phase"
    );

    // Every receipt verifies offline, and carries only the real attestations of a quorum.
    for (i, receipt) in receipts.iter().enumerate() {
        let verified = chain_core::receipt::verify_bytes(receipt, &genesis)
            .unwrap_or_else(|e| panic!("receipt {i} does not verify: {} ({e})", e.code()));
        assert!(verified.signers.len() >= 3, "{:?}", verified.signers);
        let path = tmp.path().join(format!("receipt-{i}.json"));
        std::fs::write(&path, receipt).expect("write receipt");
        let (code, out) = verify_cli(&path, &genesis_path, &[]);
        assert_eq!(code, 0, "receipt {i}: {out}");
    }
    eprintln!(
        "stub lies served: {} locations ({} of other transactions), {} blocks with junk attestations, {} with altered transactions",
        stub.count(&stub.lies.locations),
        stub.count(&stub.lies.locations_of_other_transactions),
        stub.count(&stub.lies.junk_attestations),
        stub.count(&stub.lies.altered_blocks),
    );
}
