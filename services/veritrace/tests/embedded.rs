//! End-to-end tests of the embedded platform, driving the real `veritrace` binary over HTTP.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn genesis_of(data: &Path) -> PathBuf {
    data.join("chain").join("genesis.json")
}

#[test]
fn walkthrough_receipt_is_anchored_within_3s_and_verifies_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(dir.path(), &[]);
    let key = p.key.clone().expect("first start prints the admin key");
    let file = b"%PDF-1.7 signed delivery contract".to_vec();
    let registered = Instant::now();
    let reg = register(&p, &file);
    let event_id = reg["event_id"].as_str().expect("event_id").to_string();
    let receipt =
        anchored_receipt(&p, &key, &event_id, Duration::from_secs(3)).unwrap_or_else(|| {
            panic!(
                "receipt not anchored within 3 s of registration ({:?})",
                registered.elapsed()
            )
        });

    let receipt_path = dir.path().join("receipt.json");
    std::fs::write(&receipt_path, &receipt).expect("write receipt");
    let file_path = dir.path().join("contract.pdf");
    std::fs::write(&file_path, &file).expect("write file");
    let genesis = genesis_of(dir.path());

    let (code, out) = verify_cli(
        &receipt_path,
        &genesis,
        &["--file", file_path.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verified") && out.contains(&event_id), "{out}");
    let (code, out) = verify_cli(&receipt_path, &genesis, &["--digest", &sha256_hex(&file)]);
    assert_eq!(code, 0, "{out}");

    // One byte of the file changed: the content check names the mismatch.
    let mut other = file.clone();
    other[3] ^= 1;
    std::fs::write(&file_path, &other).expect("write file");
    let (code, out) = verify_cli(
        &receipt_path,
        &genesis,
        &["--file", file_path.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("content mismatch"), "{out}");

    // Another chain's genesis: same shape, other chain id.
    let mut g: Value = serde_json::from_slice(&std::fs::read(&genesis).unwrap()).unwrap();
    g["chain_id"] = json!("another-chain");
    let other_genesis = dir.path().join("other-genesis.json");
    std::fs::write(&other_genesis, g.to_string()).unwrap();
    let (code, out) = verify_cli(&receipt_path, &other_genesis, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("another-chain"), "{out}");

    // Same chain id but another validator key: the attestation no longer verifies.
    let mut g: Value = serde_json::from_slice(&std::fs::read(&genesis).unwrap()).unwrap();
    let forged =
        chain_core::keys::SigningKey::generate(chain_core::keys::SignatureAlg::Ed25519).unwrap();
    g["validator_set"]["validators"][0]["public_key"] = json!(forged.public_key_hex());
    std::fs::write(&other_genesis, g.to_string()).unwrap();
    let (code, out) = verify_cli(&receipt_path, &other_genesis, &[]);
    assert_eq!(code, 1, "{out}");

    // Every single-byte change of the receipt fails verification, with a reason.
    let genesis_doc = chain_core::Genesis::parse(&std::fs::read(&genesis).unwrap()).unwrap();
    chain_core::receipt::verify_bytes(&receipt, &genesis_doc)
        .expect("the untouched receipt verifies");
    for i in 0..receipt.len() {
        let mut tampered = receipt.clone();
        tampered[i] ^= 0x01;
        let err = chain_core::receipt::verify_bytes(&tampered, &genesis_doc).expect_err(&format!(
            "flipping byte {i} ({:?}) must fail",
            receipt[i] as char
        ));
        assert!(!err.to_string().is_empty());
    }
    // Changing the event itself is named as such.
    let mut v: Value = serde_json::from_slice(&receipt).unwrap();
    v["event"]["payload"]["title"] = json!("Signed delivery contracT");
    let err =
        chain_core::receipt::verify_bytes(v.to_string().as_bytes(), &genesis_doc).unwrap_err();
    assert!(err.to_string().contains("event digest mismatch"), "{err}");
}

fn problem(status: u16, ctype: &str, v: &Value, expect_status: u16, field: Option<&str>) {
    assert_eq!(status, expect_status, "{v}");
    assert_eq!(ctype, "application/problem+json", "{v}");
    assert_eq!(v["status"], json!(expect_status), "{v}");
    assert!(
        v["type"]
            .as_str()
            .unwrap_or("")
            .starts_with("urn:veritrace:problem:"),
        "{v}"
    );
    if let Some(f) = field {
        let fields: Vec<&str> = v["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(fields.contains(&f), "expected field {f} in {v}");
    }
}

#[test]
fn bad_input_gets_problem_json_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(dir.path(), &[("VERITRACE_HTTP__MAX_BODY_BYTES", "4096")]);
    let key = p.key.clone().unwrap();
    let url = format!("{}/evidence", p.url);
    let good = sha256_hex(b"x");
    let post = |body: &str, key: Option<&str>| call("POST", &url, key, Some(body.as_bytes()));

    let (s, c, v) = post("{\"content_hash\": ", Some(&key));
    problem(s, &c, &v, 400, None);
    let (s, c, v) = post(
        &json!({"content_hash": {"algorithm": "sha-256", "digest": "abcd"}, "title": "t"})
            .to_string(),
        Some(&key),
    );
    problem(s, &c, &v, 422, Some("content_hash.digest"));
    let (s, c, v) = post(
        &json!({"content_hash": {"algorithm": "sha-256", "digest": "zz".repeat(32)}, "title": "t"})
            .to_string(),
        Some(&key),
    );
    problem(s, &c, &v, 422, Some("content_hash.digest"));
    let (s, c, v) = post(
        &json!({"content_hash": {"algorithm": "md5", "digest": good}, "title": "t"}).to_string(),
        Some(&key),
    );
    problem(s, &c, &v, 422, Some("content_hash.algorithm"));
    let (s, c, v) = post(
        &json!({"content_hash": {"algorithm": "sha-256", "digest": good}}).to_string(),
        Some(&key),
    );
    problem(s, &c, &v, 422, Some("title"));
    let big = json!({"content_hash": {"algorithm": "sha-256", "digest": good}, "title": "t", "metadata": {"x": "y".repeat(5000)}});
    let (s, c, v) = post(&big.to_string(), Some(&key));
    problem(s, &c, &v, 413, None);
    let ok_body =
        json!({"content_hash": {"algorithm": "sha-256", "digest": good}, "title": "t"}).to_string();
    let (s, c, v) = post(&ok_body, None);
    problem(s, &c, &v, 401, None);
    let (s, c, v) = post(&ok_body, Some("vt_not-a-key"));
    problem(s, &c, &v, 401, None);

    // A batch with one bad item among good ones names the item and records none of them.
    let batch = json!({"items": [
        {"content_hash": {"algorithm": "sha-256", "digest": good}, "title": "a"},
        {"content_hash": {"algorithm": "sha-256", "digest": "abc"}, "title": "b"},
        {"content_hash": {"algorithm": "sha-256", "digest": good}, "title": "c"},
    ]});
    let (s, c, v) = call(
        "POST",
        &format!("{url}/batch"),
        Some(&key),
        Some(batch.to_string().as_bytes()),
    );
    problem(s, &c, &v, 422, Some("items[1].content_hash.digest"));
    let (s, c, v) = call(
        "POST",
        &format!("{url}/batch"),
        Some(&key),
        Some(br#"{"items": []}"#),
    );
    problem(s, &c, &v, 422, Some("items"));

    // None of the above left anything behind.
    let (s, _, v) = call("GET", &url, Some(&key), None);
    assert_eq!(s, 200);
    assert_eq!(v["items"].as_array().map(Vec::len), Some(0), "{v}");
    let (s, _, v) = call("GET", &format!("{}/metrics", p.url), None, None);
    assert_eq!(s, 200);
    assert!(
        !v.as_str()
            .unwrap_or("")
            .contains("veritrace_events_appended_total{service=\"evidence\"}"),
        "{v}"
    );
}

#[test]
fn a_batch_registration_is_recorded_and_anchored_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(dir.path(), &[]);
    let key = p.key.clone().unwrap();
    let items: Vec<Value> = (0..50)
        .map(|i| json!({"content_hash": {"algorithm": "sha-256", "digest": sha256_hex(format!("file {i}").as_bytes())}, "title": format!("exhibit {i}")}))
        .collect();
    let (s, _, v) = call(
        "POST",
        &format!("{}/evidence/batch", p.url),
        Some(&key),
        Some(json!({ "items": items }).to_string().as_bytes()),
    );
    assert_eq!(s, 201, "{v}");
    let registered = v["items"].as_array().unwrap();
    assert_eq!(registered.len(), 50);
    let genesis =
        chain_core::Genesis::parse(&std::fs::read(genesis_of(dir.path())).unwrap()).unwrap();
    for (i, item) in registered.iter().enumerate() {
        let receipt = anchored_receipt(
            &p,
            &key,
            item["event_id"].as_str().unwrap(),
            Duration::from_secs(10),
        )
        .expect("anchored");
        chain_core::receipt::verify_bytes(&receipt, &genesis).expect("verifies");
        let r: Value = serde_json::from_slice(&receipt).unwrap();
        chain_core::receipt::check_content_digest(
            &r["event"],
            &sha256_hex(format!("file {i}").as_bytes()),
        )
        .expect("the receipt attests the item's own file");
    }
    // Looking a file up by its digest finds its record.
    let (s, _, v) = call(
        "GET",
        &format!("{}/evidence?digest={}", p.url, sha256_hex(b"file 7")),
        Some(&key),
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(v["items"][0]["title"], "exhibit 7", "{v}");
}

#[test]
fn concurrent_writes_at_one_stream_version_one_wins_one_gets_409() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(dir.path(), &[]);
    let key = p.key.clone().unwrap();
    let reg = register(&p, b"exhibit A");
    let id = reg["evidence"]["evidence_id"].as_str().unwrap().to_string();
    let url = format!("{}/evidence/{id}/withdrawal", p.url);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let (url, key, barrier) = (url.clone(), key.clone(), barrier.clone());
            std::thread::spawn(move || {
                let body =
                    json!({"reason": format!("withdrawal {i}"), "expected_version": 1}).to_string();
                barrier.wait();
                call("POST", &url, Some(&key), Some(body.as_bytes()))
            })
        })
        .collect();
    let mut results: Vec<(u16, String, Value)> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    results.sort_by_key(|r| r.0);
    assert_eq!(results[0].0, 200, "{:?}", results[0]);
    let (s, c, v) = &results[1];
    problem(*s, c, v, 409, None);
    assert_eq!(v["type"], "urn:veritrace:problem:version-conflict", "{v}");
    // The record moved exactly one version.
    let (_, _, v) = call("GET", &format!("{}/evidence/{id}", p.url), Some(&key), None);
    assert_eq!(
        (v["version"].as_i64(), v["status"].as_str()),
        (Some(2), Some("withdrawn"))
    );
}

#[test]
fn killed_before_anchoring_the_event_is_anchored_after_restart_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A block interval of an hour: the batch is sealed and submitted but no block is cut.
    let p = up(
        dir.path(),
        &[("VERITRACE_CHAIN__BLOCK_INTERVAL_MS", "3600000")],
    );
    let key = p.key.clone().unwrap();
    // No case_reference: the cases domain files nothing, so the batch holds this event alone.
    let body = json!({
        "content_hash": {"algorithm": "sha-256", "digest": sha256_hex(b"exhibit B")},
        "title": "exhibit B",
    });
    let (status, _, reg) = call(
        "POST",
        &format!("{}/evidence", p.url),
        Some(&key),
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(status, 201, "{reg}");
    let event_id = reg["event_id"].as_str().unwrap().to_string();
    // Wait until the anchoring service holds it (pending), then SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _, v) = call(
            "GET",
            &format!("{}/receipts/{event_id}", p.url),
            Some(&key),
            None,
        );
        if s == 200 {
            assert_eq!(v["status"], "pending", "{v}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "event never reached the anchoring service"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Wait until the schedule has sealed the batch (and so submitted it), then SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, m) = call("GET", &format!("{}/metrics", p.url), None, None);
        if m.as_str()
            .unwrap_or("")
            .contains("veritrace_anchor_batches_sealed_total 1")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the batch was never sealed");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(p); // SIGKILL

    let p = up(dir.path(), &[]);
    assert!(
        p.key.is_none(),
        "the admin key is shown only on the first start"
    );
    let receipt = anchored_receipt(&p, &key, &event_id, Duration::from_secs(15))
        .expect("anchored after restart");
    let genesis =
        chain_core::Genesis::parse(&std::fs::read(genesis_of(dir.path())).unwrap()).unwrap();
    let verified = chain_core::receipt::verify_bytes(&receipt, &genesis).expect("verifies");
    assert_eq!(verified.event_id, event_id);
    drop(p);

    // Exactly one anchor transaction for the batch, and the batch holds the event once.
    let store =
        chain_core::store::BlockStore::open(&dir.path().join("chain").join("blocks.redb")).unwrap();
    let v: Value = serde_json::from_slice(&receipt).unwrap();
    let batch_id = v["transaction"]["batch_id"].as_str().unwrap();
    let mut anchors = 0;
    for h in 1..=store.head().unwrap() {
        for tx in store.block(h).unwrap().unwrap().block.transactions {
            let chain_core::Transaction::Anchor(a) = tx else {
                continue;
            };
            if a.batch_id == batch_id {
                anchors += 1;
            }
        }
    }
    assert_eq!(anchors, 1);
    assert_eq!(v["transaction"]["batch_size"], 1);
}

#[test]
fn a_national_crypto_chain_hashes_with_sm3_and_attests_with_sm2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(
        dir.path(),
        &[
            ("VERITRACE_CHAIN__HASH_ALG", "sm3"),
            ("VERITRACE_CHAIN__SIGNATURE_ALG", "sm2"),
        ],
    );
    let key = p.key.clone().unwrap();
    let genesis_path = genesis_of(dir.path());
    let genesis: Value = serde_json::from_slice(&std::fs::read(&genesis_path).unwrap()).unwrap();
    assert_eq!(
        (
            genesis["hash_alg"].as_str(),
            genesis["signature_alg"].as_str()
        ),
        (Some("sm3"), Some("sm2"))
    );
    let file = b"exhibit C";
    let reg = register(&p, file);
    let event_id = reg["event_id"].as_str().unwrap();
    let receipt = anchored_receipt(&p, &key, event_id, Duration::from_secs(5)).expect("anchored");
    // The event digest is SM3 over the canonical envelope.
    let r: Value = serde_json::from_slice(&receipt).unwrap();
    let canonical = chain_core::canonical::to_canonical_bytes(&r["event"]).unwrap();
    assert_eq!(
        r["event_digest"],
        json!(chain_core::HashAlg::Sm3.hash(&canonical).to_hex())
    );
    assert_eq!(reg["event_digest"], r["event_digest"]);
    let receipt_path = dir.path().join("receipt.json");
    std::fs::write(&receipt_path, &receipt).unwrap();
    let (code, out) = verify_cli(
        &receipt_path,
        &genesis_path,
        &["--digest", &sha256_hex(file)],
    );
    assert_eq!(code, 0, "{out}");
    // An SM2 receipt checked against an Ed25519 genesis of the same chain id fails.
    let mut g = genesis.clone();
    g["signature_alg"] = json!("ed25519");
    g["validator_set"]["validators"][0]["public_key"] = json!(
        chain_core::keys::SigningKey::generate(chain_core::keys::SignatureAlg::Ed25519)
            .unwrap()
            .public_key_hex()
    );
    let other = dir.path().join("ed25519-genesis.json");
    std::fs::write(&other, g.to_string()).unwrap();
    let (code, out) = verify_cli(&receipt_path, &other, &[]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn the_explorer_shows_the_final_block_that_anchors_a_receipt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(dir.path(), &[]);
    let key = p.key.clone().unwrap();
    let reg = register(&p, b"exhibit D");
    let receipt = anchored_receipt(
        &p,
        &key,
        reg["event_id"].as_str().unwrap(),
        Duration::from_secs(5),
    )
    .expect("anchored");
    let r: Value = serde_json::from_slice(&receipt).unwrap();
    let height = r["block_header"]["height"].as_u64().unwrap();

    // Public: no API key.
    let (s, _, head) = call("GET", &format!("{}/chain/head", p.url), None, None);
    assert_eq!(s, 200, "{head}");
    assert!(head["height"].as_u64().unwrap() >= height, "{head}");
    assert_eq!(head["block"]["finality"]["final"], json!(true), "{head}");

    let (s, _, b) = call(
        "GET",
        &format!("{}/chain/blocks/{height}", p.url),
        None,
        None,
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["block"]["block"]["header"], r["block_header"]);
    assert!(
        b["block"]["block"]["transactions"]
            .as_array()
            .unwrap()
            .contains(&r["transaction"])
    );
    assert_eq!(b["finality"]["signers"], json!(["local-validator"]));
    assert_eq!(
        b["transaction_hashes"].as_array().unwrap().len() as u64,
        r["block_header"]["transaction_count"].as_u64().unwrap()
    );

    let (s, _, list) = call(
        "GET",
        &format!("{}/chain/blocks?limit=5", p.url),
        None,
        None,
    );
    assert_eq!(s, 200);
    let heights: Vec<u64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["height"].as_u64().unwrap())
        .collect();
    assert!(
        heights.windows(2).all(|w| w[0] > w[1]) && heights.contains(&height),
        "{heights:?}"
    );

    let (s, c, v) = call("GET", &format!("{}/chain/blocks/999999", p.url), None, None);
    problem(s, &c, &v, 404, None);
    let (s, c, v) = call("GET", &format!("{}/chain/blocks/abc", p.url), None, None);
    problem(s, &c, &v, 422, Some("height"));
    let (s, c, v) = call(
        "GET",
        &format!("{}/chain/blocks?limit=0", p.url),
        None,
        None,
    );
    problem(s, &c, &v, 422, Some("limit"));

    let (s, _, sets) = call(
        "GET",
        &format!("{}/chain/validator-sets", p.url),
        None,
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(
        sets["items"][0]["hash"],
        r["block_header"]["validator_set_hash"]
    );
}

/// `veritrace audit` on the embedded SQLite files while the platform runs: clean, then one
/// payload changed in place is reported as altered.
#[test]
fn audit_reads_the_embedded_stores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(dir.path(), &[]);
    let key = p.key.clone().expect("admin key");
    let mut last = String::new();
    for n in 0..5 {
        let reg = register(&p, format!("audited file {n}").as_bytes());
        last = reg["event_id"].as_str().expect("event_id").to_string();
    }
    anchored_receipt(&p, &key, &last, Duration::from_secs(10)).expect("anchored");
    // Each registration names case 2026-CV-0042: the cases domain files it as an exhibit, an
    // event of its own. Audited with no grace, those must be anchored too.
    let case_file = format!("{}/cases/2026-CV-0042", p.url);
    let deadline = Instant::now() + Duration::from_secs(10);
    let filed = loop {
        let (status, _, v) = call("GET", &case_file, Some(&key), None);
        let exhibits = v["exhibits"].as_array().cloned().unwrap_or_default();
        if status == 200 && exhibits.len() == 5 {
            break exhibits;
        }
        assert!(
            Instant::now() < deadline,
            "the exhibits were never filed: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    for exhibit in &filed {
        let id = exhibit["event_id"].as_str().expect("event_id");
        anchored_receipt(&p, &key, id, Duration::from_secs(10)).expect("the exhibit anchored");
    }
    let audit = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_veritrace"))
            .args(["audit", "--json", "--grace", "0s", "--data-dir"])
            .arg(dir.path())
            .args(["--chain-node", &p.url, "--genesis"])
            .arg(genesis_of(dir.path()))
            .output()
            .expect("run audit");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            out.status.code().unwrap_or(-1),
            report,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, report, stderr) = audit();
    assert_eq!(code, 0, "{report} {stderr}");
    // 5 registrations, and the 5 exhibits the cases domain filed from them.
    assert_eq!(report["checked"]["events"], 10);

    // Another chain's genesis, or a URL that serves no chain, is an audit that cannot be done
    // (status 2, saying why), not a list of false findings.
    let mut other: Value =
        serde_json::from_slice(&std::fs::read(genesis_of(dir.path())).unwrap()).unwrap();
    other["chain_id"] = json!("another-chain");
    let other_genesis = dir.path().join("other-genesis.json");
    std::fs::write(&other_genesis, other.to_string()).unwrap();
    let healthz = format!("{}/healthz", p.url);
    for (node, genesis, says) in [
        (p.url.as_str(), other_genesis.as_path(), "another-chain"),
        (
            healthz.as_str(),
            genesis_of(dir.path()).as_path(),
            "does not serve a chain",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_veritrace"))
            .args(["audit", "--data-dir"])
            .arg(dir.path())
            .args(["--chain-node", node, "--genesis"])
            .arg(genesis)
            .output()
            .expect("run audit");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let changed = rt.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("evidence.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.expect("open evidence.db");
        sqlx::query(
            "UPDATE events SET envelope = replace(envelope, 'Signed delivery contract', 'Signed delivery contracT')
             WHERE position = 2",
        )
        .execute(&pool)
        .await
        .expect("tamper")
        .rows_affected()
    });
    assert_eq!(changed, 1);
    let (code, report, stderr) = audit();
    assert_eq!(code, 1, "{report} {stderr}");
    let findings = report["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{report}");
    assert_eq!(findings[0]["kind"], "altered");
    assert_eq!(findings[0]["position"], 2);
}

/// The anchor keeps the digests of the platform's own events, not copies of their envelopes:
/// a receipt carries the event as its store holds it, and verifies; once that store's copy
/// is changed, its receipt is refused rather than served, and the others still are.
#[test]
fn receipts_take_their_event_from_the_event_store_and_refuse_a_changed_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(dir.path(), &[]);
    let key = p.key.clone().expect("admin key");
    let genesis =
        chain_core::Genesis::parse(&std::fs::read(genesis_of(dir.path())).unwrap()).unwrap();
    let ids: Vec<String> = (0..3)
        .map(|n| {
            let reg = register(&p, format!("kept once {n}").as_bytes());
            reg["event_id"].as_str().expect("event_id").to_string()
        })
        .collect();
    for id in &ids {
        let receipt = anchored_receipt(&p, &key, id, Duration::from_secs(10)).expect("anchored");
        chain_core::receipt::verify_bytes(&receipt, &genesis).expect("the receipt verifies");
        let v: Value = serde_json::from_slice(&receipt).unwrap();
        assert_eq!(v["event"]["id"], json!(id), "{v}");
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let open = |file: &str| {
        let url = format!("sqlite://{}", dir.path().join(file).display());
        rt.block_on(sqlx::SqlitePool::connect(&url)).expect("open")
    };
    let anchor = open("anchor.db");
    let (leaves, copies): (i64, i64) = rt
        .block_on(
            sqlx::query_as(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE envelope <> '') FROM received_leaves",
            )
            .fetch_one(&anchor),
        )
        .expect("leaves");
    assert!(leaves >= 3, "{leaves}");
    assert_eq!(copies, 0, "no leaf copies its envelope");

    let events = open("evidence.db");
    let changed = rt
        .block_on(
            sqlx::query(
                "UPDATE events SET envelope = replace(envelope, 'Signed delivery contract', \
                 'Signed delivery contracT') WHERE event_id = $1",
            )
            .bind(&ids[0])
            .execute(&events),
        )
        .expect("tamper")
        .rows_affected();
    assert_eq!(changed, 1);
    let (text,): (String,) = rt
        .block_on(
            sqlx::query_as("SELECT envelope FROM events WHERE event_id = $1")
                .bind(&ids[0])
                .fetch_one(&events),
        )
        .expect("the changed envelope");
    assert!(text.contains("contracT"), "{text}");
    let (status, ctype, v) = call(
        "GET",
        &format!("{}/receipts/{}", p.url, ids[0]),
        Some(&key),
        None,
    );
    assert_eq!(status, 500, "{v}");
    assert!(ctype.starts_with("application/problem+json"), "{ctype}");
    assert_eq!(v["type"], "urn:veritrace:problem:internal", "{v}");
    let receipt = anchored_receipt(&p, &key, &ids[1], Duration::from_secs(10)).expect("served");
    chain_core::receipt::verify_bytes(&receipt, &genesis).expect("the other receipts verify");
}

/// `{"a":{"a":…1…}}`, `depth` objects deep (0: the number itself).
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!({ "a": inner }))
}

/// Bodies nested 1 to 200 levels deep at every POST endpoint: each is refused with a 4xx
/// problem, or recorded, anchored and verified with its metadata exactly as sent; nothing gets
/// stuck, and an ordinary registration afterwards anchors as usual.
#[test]
fn bodies_nested_at_any_depth_are_refused_or_anchored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(dir.path(), &[]);
    let key = p.key.clone().unwrap();
    let genesis =
        chain_core::Genesis::parse(&std::fs::read(genesis_of(dir.path())).unwrap()).unwrap();
    let first = register(&p, b"the first exhibit");
    let withdraw_url = format!(
        "{}/evidence/{}/withdrawal",
        p.url,
        first["evidence"]["evidence_id"].as_str().unwrap()
    );
    let post = |path: &str, body: &Value| {
        call(
            "POST",
            &if path.starts_with("http") {
                path.to_string()
            } else {
                format!("{}{path}", p.url)
            },
            Some(&key),
            Some(body.to_string().as_bytes()),
        )
    };
    let hash = |depth: usize| json!({"algorithm": "sha-256", "digest": sha256_hex(format!("{depth}").as_bytes())});
    // (event id, the metadata sent)
    let mut recorded: Vec<(String, Value)> = Vec::new();
    for depth in 1..=200usize {
        // Each body is `depth` levels deep in all: the body itself is level 1, and in a batch
        // `items` and its item are levels 2 and 3.
        let single =
            json!({"content_hash": hash(depth), "title": "deep", "metadata": nested(depth - 1)});
        let batch = json!({"items": [{
            "content_hash": hash(depth), "title": "deep in a batch",
            "metadata": nested(depth.saturating_sub(3)),
        }]});
        let requests = [
            ("/evidence", single),
            ("/evidence/batch", batch),
            (
                withdraw_url.as_str(),
                json!({"reason": nested(depth - 1), "expected_version": 1}),
            ),
            (
                "/organisations",
                json!({"name": nested(depth - 1), "role": "member"}),
            ),
        ];
        for (path, body) in requests {
            let (s, c, v) = post(path, &body);
            if (200..300).contains(&s) {
                let events: Vec<Value> = match v["items"].as_array() {
                    Some(items) => items.clone(),
                    None => vec![v.clone()],
                };
                let sent = body
                    .get("items")
                    .map(|i| i[0].clone())
                    .unwrap_or(body.clone());
                for e in events {
                    if let Some(id) = e["event_id"].as_str() {
                        recorded.push((id.to_string(), sent["metadata"].clone()));
                    }
                }
            } else {
                assert!((400..500).contains(&s), "depth {depth} at {path}: {s} {v}");
                assert_eq!(
                    c, "application/problem+json",
                    "depth {depth} at {path}: {v}"
                );
            }
            // Past the bound, the refusal names the depth rule and where it broke.
            if depth > veritrace_kernel::strict_json::MAX_DEPTH {
                assert_eq!(s, 422, "depth {depth} at {path}: {v}");
                assert!(
                    v["errors"][0]["message"]
                        .as_str()
                        .unwrap_or("")
                        .contains("nested deeper"),
                    "{v}"
                );
            }
        }
    }
    // Metadata is an object: depths 2 to 32 alone, 4 to 32 in a batch.
    assert_eq!(recorded.len(), 31 + 29, "{recorded:?}");
    for (event_id, metadata) in &recorded {
        let receipt = anchored_receipt(&p, &key, event_id, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("event {event_id} was recorded but never anchored"));
        chain_core::receipt::verify_bytes(&receipt, &genesis).expect("verifies");
        let r: Value = serde_json::from_slice(&receipt).unwrap();
        assert_eq!(&r["event"]["payload"]["metadata"], metadata, "{event_id}");
    }
    let after = register(&p, b"an ordinary exhibit afterwards");
    anchored_receipt(
        &p,
        &key,
        after["event_id"].as_str().unwrap(),
        Duration::from_secs(10),
    )
    .expect("an ordinary registration still anchors");
}

/// Numbers the canonical form would change, duplicate keys and control characters are refused
/// with 422 naming the field; a number it keeps is read back unchanged from the receipt.
#[test]
fn what_is_recorded_is_exactly_what_was_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(dir.path(), &[]);
    let key = p.key.clone().unwrap();
    let url = format!("{}/evidence", p.url);
    let digest = sha256_hex(b"numbers");
    let body = |metadata: &str| {
        format!(
            r#"{{"content_hash":{{"algorithm":"sha-256","digest":"{digest}"}},"title":"n","metadata":{metadata}}}"#
        )
    };
    for (metadata, field) in [
        (r#"{"m":9007199254740993}"#, "metadata.m"),
        (r#"{"m":9007199254740992}"#, "metadata.m"),
        (r#"{"m":[1e21]}"#, "metadata.m[0]"),
        (r#"{"m":"\u0085"}"#, "metadata.m"),
        (
            r#"{"m":1234567890123456789012345678901234567890}"#,
            "metadata.m",
        ),
        (r#"{"m":[0.1000000000000000000001]}"#, "metadata.m[0]"),
        (r#"{"m":1e400}"#, "metadata.m"),
        (r#"{"m":1,"m":2}"#, "metadata.m"),
        (r#"{"m":"a\u0000b"}"#, "metadata.m"),
    ] {
        let (s, c, v) = call("POST", &url, Some(&key), Some(body(metadata).as_bytes()));
        problem(s, &c, &v, 422, Some(field));
    }
    let dup = format!(
        r#"{{"content_hash":{{"algorithm":"sha-256","digest":"{digest}"}},"title":"a","title":"b"}}"#
    );
    let (s, c, v) = call("POST", &url, Some(&key), Some(dup.as_bytes()));
    problem(s, &c, &v, 422, Some("title"));
    let (s, c, v) = call(
        "POST",
        &format!("{}/organisations", p.url),
        Some(&key),
        Some(br#"{"name":"Bank\u0000","role":"member"}"#),
    );
    problem(s, &c, &v, 422, Some("name"));
    let (s, c, v) = call(
        "GET",
        &format!("{url}?case_reference=a%00b"),
        Some(&key),
        None,
    );
    problem(s, &c, &v, 422, Some("case_reference"));

    // Kept exactly: the receipt's event carries the very values sent.
    let (s, _, v) = call(
        "POST",
        &url,
        Some(&key),
        Some(body(r#"{"one":1.0,"e":1e2}"#).as_bytes()),
    );
    assert_eq!(s, 201, "the same value in another spelling is kept: {v}");
    let kept = r#"{"small":1.5e-7,"safe":-9007199254740991,"tenth":0.1,"tab":"a\tb"}"#;
    let (s, _, v) = call("POST", &url, Some(&key), Some(body(kept).as_bytes()));
    assert_eq!(s, 201, "{v}");
    let receipt = anchored_receipt(
        &p,
        &key,
        v["event_id"].as_str().unwrap(),
        Duration::from_secs(10),
    )
    .expect("anchored");
    let r: Value = serde_json::from_slice(&receipt).unwrap();
    let sent: Value = serde_json::from_str(kept).unwrap();
    assert_eq!(r["event"]["payload"]["metadata"], sent);
}

/// `host:port` of a running platform's URL.
fn authority(p: &Running) -> String {
    p.url.trim_start_matches("http://").to_string()
}

/// Reads what the server sends until it closes the connection or `within` passes.
fn read_until_closed(stream: &mut std::net::TcpStream, within: Duration) -> String {
    use std::io::Read;
    stream.set_read_timeout(Some(within)).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response with a `content-length` body, leaving the connection open.
fn read_one_response(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "the connection closed early"
        );
        out.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&out).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    out.extend(body);
    String::from_utf8_lossy(&out).into_owned()
}

/// A client that sends a request's head and never its body is answered 408 problem+json within
/// `http.body_timeout_ms` and disconnected; one that sends nothing is disconnected within
/// `http.request_head_timeout_ms`.
#[test]
fn slow_clients_are_answered_408_and_disconnected() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(
        dir.path(),
        &[
            ("VERITRACE_HTTP__BODY_TIMEOUT_MS", "1000"),
            ("VERITRACE_HTTP__REQUEST_HEAD_TIMEOUT_MS", "1000"),
        ],
    );
    let key = p.key.clone().unwrap();
    let mut stream = std::net::TcpStream::connect(authority(&p)).unwrap();
    let started = Instant::now();
    write!(
        stream,
        "POST /evidence HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"title\""
    )
    .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10));
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(
        answer.contains("urn:veritrace:problem:request-timeout"),
        "{answer}"
    );
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");

    let mut idle = std::net::TcpStream::connect(authority(&p)).unwrap();
    let started = Instant::now();
    let _ = read_until_closed(&mut idle, Duration::from_secs(10));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The server is unaffected.
    let (s, _, _) = call("GET", &format!("{}/healthz", p.url), None, None);
    assert_eq!(s, 200);
}

/// One client may hold `http.max_connections_per_client` connections; a request on one more
/// is answered 429 and that connection closed, and closing others makes room again.
#[test]
fn one_client_holds_a_bounded_number_of_connections() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(
        dir.path(),
        &[("VERITRACE_HTTP__MAX_CONNECTIONS_PER_CLIENT", "4")],
    );
    // Each held connection serves a request first, so the server has surely counted it.
    let held: Vec<_> = (0..4)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(authority(&p)).unwrap();
            write!(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let answer = read_one_response(&mut c);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            c
        })
        .collect();
    let mut extra = std::net::TcpStream::connect(authority(&p)).unwrap();
    write!(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let answer = read_until_closed(&mut extra, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer.contains("urn:veritrace:problem:too-many-connections"),
        "{answer}"
    );
    drop(held);
    // The server notices the closed connections on its next read of them.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _, v) = call("GET", &format!("{}/healthz", p.url), None, None);
        if s == 200 {
            break;
        }
        assert_eq!(s, 429, "{v}");
        assert!(
            Instant::now() < deadline,
            "no room after the connections closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A first start whose port is taken creates nothing (so no admin key is made and lost); the
/// next start shows the key; `veritrace admin-key` mints another that works.
#[test]
fn the_admin_key_is_never_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_veritrace"))
        .args(["up", "--data-dir"])
        .arg(&data)
        .args(["--bind", &taken.local_addr().unwrap().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on"), "{err}");
    assert!(
        !data.exists(),
        "a start that cannot serve created {}",
        data.display()
    );
    drop(taken);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_veritrace"))
        .args(["admin-key", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no identity store"));

    let p = up(&data, &[]);
    let first = p.key.clone().expect("the first real start shows the key");
    let minted = run_ok(&["admin-key", "--data-dir", data.to_str().unwrap()]);
    let key = minted
        .split_whitespace()
        .find(|w| w.starts_with("vt_"))
        .unwrap_or_else(|| panic!("{minted}"))
        .to_string();
    assert_ne!(key, first);
    for k in [&first, &key] {
        let (s, _, v) = call("GET", &format!("{}/organisations/me", p.url), Some(k), None);
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["role"], "admin", "{v}");
    }
}

/// A POST with an `Idempotency-Key`: status, body, and whether the answer was replayed.
fn post_once(p: &Running, key: &str, path: &str, idem: &str, body: &Value) -> (u16, Value, bool) {
    let mut resp = agent()
        .post(&format!("{}{path}", p.url))
        .header("Content-Type", "application/json")
        .header("Authorization", &format!("Bearer {key}"))
        .header("Idempotency-Key", idem)
        .send(body.to_string().as_bytes())
        .expect("request");
    let replayed = resp
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let (status, _, v) = read_response(&mut resp);
    (status, v, replayed)
}

#[test]
fn a_retried_post_gets_the_first_answer_and_records_nothing_new_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(dir.path(), &[]);
    let admin = p.key.clone().unwrap();
    let file = b"exhibit retried";
    let body = json!({
        "content_hash": {"algorithm": "sha-256", "digest": sha256_hex(file)},
        "title": "Retried exhibit",
    });
    let (s, first, replayed) = post_once(&p, &admin, "/evidence", "reg-1", &body);
    assert_eq!((s, replayed), (201, false), "{first}");
    assert!(first["event_id"].is_string(), "{first}");
    let (s, again, replayed) = post_once(&p, &admin, "/evidence", "reg-1", &body);
    assert_eq!((s, replayed), (201, true), "{again}");
    assert_eq!(again, first);

    // The same key with another body, or on another path: 422, and nothing recorded.
    let mut other = body.clone();
    other["title"] = json!("Another title");
    let (s, v, _) = post_once(&p, &admin, "/evidence", "reg-1", &other);
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        v["type"], "urn:veritrace:problem:idempotency-key-reused",
        "{v}"
    );
    let (s, v, _) = post_once(&p, &admin, "/evidence/batch", "reg-1", &body);
    assert_eq!(s, 422, "{v}");

    // Keys belong to an organisation: another may use the same one for its own request.
    let (s, _, org) = call(
        "POST",
        &format!("{}/organisations", p.url),
        Some(&admin),
        Some(json!({"name": "Second registrant"}).to_string().as_bytes()),
    );
    assert_eq!(s, 201, "{org}");
    let member = org["api_key"].as_str().unwrap().to_string();
    let (s, theirs, replayed) = post_once(&p, &member, "/evidence", "reg-1", &body);
    assert_eq!((s, replayed), (201, false), "{theirs}");
    assert_ne!(theirs["event_id"], first["event_id"]);

    // A refused request releases its key: corrected, it goes through under the same key.
    let (s, v, _) = post_once(
        &p,
        &admin,
        "/evidence",
        "reg-2",
        &json!({"title": "no hash"}),
    );
    assert_eq!(s, 422, "{v}");
    let mut second = body.clone();
    second["title"] = json!("Second exhibit");
    let (s, v, _) = post_once(&p, &admin, "/evidence", "reg-2", &second);
    assert_eq!(s, 201, "{v}");

    // Eight clients send one request at once: one records it, the others hear its answer or
    // that it is still being answered.
    let mut third = body.clone();
    third["title"] = json!("Third exhibit");
    let answers: Vec<(u16, Value, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| post_once(&p, &admin, "/evidence", "reg-3", &third)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let recorded: Vec<&Value> = answers
        .iter()
        .filter(|a| a.0 == 201)
        .map(|a| &a.1)
        .collect();
    assert!(!recorded.is_empty(), "{answers:?}");
    assert!(
        recorded
            .iter()
            .all(|v| v["event_id"] == recorded[0]["event_id"]),
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|a| a.0 == 201 && !a.2).count(),
        1,
        "{answers:?}"
    );
    for (s, v, _) in answers.iter().filter(|a| a.0 != 201) {
        assert_eq!(*s, 409, "{v}");
        assert_eq!(
            v["type"], "urn:veritrace:problem:idempotency-key-in-use",
            "{v}"
        );
    }

    // A withdrawal retried moves the record once.
    let id = first["evidence"]["evidence_id"]
        .as_str()
        .unwrap()
        .to_string();
    let withdraw = json!({"reason": "filed in error", "expected_version": 1});
    let path = format!("/evidence/{id}/withdrawal");
    let (s, w1, _) = post_once(&p, &admin, &path, "wd-1", &withdraw);
    assert_eq!(s, 200, "{w1}");
    let (s, w2, replayed) = post_once(&p, &admin, &path, "wd-1", &withdraw);
    assert_eq!((s, replayed), (200, true), "{w2}");
    assert_eq!(w1, w2);

    // SIGKILL and restart: the keys and their answers are still there.
    drop(p);
    let p = up(dir.path(), &[]);
    let (s, after, replayed) = post_once(&p, &admin, "/evidence", "reg-1", &body);
    assert_eq!((s, replayed), (201, true), "{after}");
    assert_eq!(after["event_id"], first["event_id"]);
    let (s, v, _) = post_once(&p, &admin, "/evidence", "reg-1", &other);
    assert_eq!(s, 422, "{v}");

    // Exactly what was asked for is recorded: one record per organisation for this file,
    // the second and third exhibits once each, and the withdrawal once.
    let digest = sha256_hex(file);
    let (_, _, list) = call(
        "GET",
        &format!("{}/evidence?digest={digest}", p.url),
        Some(&admin),
        None,
    );
    let titles: Vec<&str> = list
        .as_array()
        .or_else(|| list["items"].as_array())
        .expect("a list")
        .iter()
        .filter_map(|r| r["title"].as_str())
        .collect();
    let mut sorted = titles.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "Retried exhibit",
            "Retried exhibit",
            "Second exhibit",
            "Third exhibit"
        ],
        "{list}"
    );
    let (_, _, record) = call(
        "GET",
        &format!("{}/evidence/{id}", p.url),
        Some(&admin),
        None,
    );
    assert_eq!(record["version"], 2, "{record}");
}

/// `veritrace bench` reports, beside its rates, each sampled event's 201-to-anchored latency,
/// the rate over each tenth of the run, what the process used and its storage's ceiling.
#[test]
fn bench_reports_latency_to_anchored_rates_per_stretch_and_its_ceiling() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_veritrace"))
        .args(["bench", "--events", "2000", "--concurrency", "4"])
        .args(["--batch", "50", "--json"])
        .output()
        .expect("run veritrace bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .expect("the last line is the JSON report");
    assert_eq!(report["events"], 2000);
    // Every event sampled (2,000 is under the cap), each found anchored after its 201.
    assert_eq!(report["samples"], 2000, "{report}");
    let anchored = &report["anchored_after_201_ms"];
    let ms = |k: &str| anchored[k].as_f64().unwrap_or(-1.0);
    assert!(
        0.0 <= ms("p50") && ms("p50") <= ms("p99") && ms("p99") <= ms("max"),
        "{report}"
    );
    // Ten stretches of 200 events each, captured and anchored.
    assert_eq!(report["stretch"], 200);
    let stretches = |k: &str| report[k].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(stretches("capture_per_stretch"), 10, "{report}");
    assert_eq!(stretches("end_to_end_per_stretch"), 10, "{report}");
    assert!(report["peak_rss_bytes"].as_u64().unwrap_or(0) > 0);
    // The ceiling rewrote every row of the run, and their envelopes are real ones.
    assert_eq!(report["ceiling"]["rows"], 2000);
    assert!(report["ceiling"]["rows_per_sec"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(report["ceiling"]["envelope_bytes"].as_f64().unwrap_or(0.0) > 100.0);
    assert!(stdout.contains("201 to anchored"), "{stdout}");
}
