//! The court's side of evidence: the verification page (`/verify`) in headless Chromium, as a
//! clerk uses it. A registered file dropped on it is hashed in the browser, never sent (the
//! network log holds no byte of it), looked up by digest with the court's key, and its receipt
//! verified in the browser, every step green; the certificate prints on one A4 page with a QR
//! code of the page's link; a file nobody registered is said to be not registered; receipts
//! with one altered byte fail at the step, and with the code, `veritrace verify` names; the
//! page passes axe-core's checks, has no console errors, works by keyboard and on a phone.

mod common;

use common::browser::{browser_checks_run, screenshot_path};
use common::{agent, call, sha256_hex, up, verify_cli};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

fn organisation(base: &str, admin: &str, name: &str, role: &str) -> String {
    let body = json!({"name": name, "role": role}).to_string();
    let (status, _, v) = call(
        "POST",
        &format!("{base}/organisations"),
        Some(admin),
        Some(body.as_bytes()),
    );
    assert_eq!(status, 201, "{v}");
    v["api_key"].as_str().expect("api_key").to_string()
}

/// A file of `len` bytes that appears nowhere else: a marker, then pseudo-random bytes.
fn evidence_file(marker: &str, len: usize) -> Vec<u8> {
    let mut bytes = marker.as_bytes().to_vec();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ marker.len() as u64;
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push((x & 0xff) as u8);
    }
    bytes
}

/// Polls the registration's receipt until it is anchored.
fn anchored(base: &str, key: &str, evidence_id: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, v) = call(
            "GET",
            &format!("{base}/evidence/{evidence_id}/receipt"),
            Some(key),
            None,
        );
        if status == 200 && v["status"] == "anchored" {
            return serde_json::to_vec(&v).expect("json");
        }
        assert!(Instant::now() < deadline, "not anchored: {status} {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `text` with the character `offset` places after the first `needle` changed (a hex digit or
/// a letter to its neighbour).
fn tamper(text: &str, needle: &str, offset: usize) -> String {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in receipt"))
        + offset;
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] = match bytes[at] {
        b'0'..=b'8' | b'a'..=b'e' | b'A'..=b'Y' => bytes[at] + 1,
        b'9' | b'f' => b'0',
        other => panic!("unexpected byte {other} to tamper"),
    };
    String::from_utf8(bytes).expect("utf-8")
}

/// What `veritrace verify` says of a receipt file: its failure code, or None when it verifies.
fn cli_code(receipt: &Path, genesis: &Path) -> Option<String> {
    let (status, text) = verify_cli(receipt, genesis, &[]);
    if status == 0 {
        return None;
    }
    let rest = text
        .split("NOT VERIFIED (")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    Some(rest[..rest.find(')').expect("code")].to_string())
}

#[test]
fn a_court_verifies_a_registered_file_in_its_browser_without_sending_it() {
    if !browser_checks_run("a_court_verifies_a_registered_file_in_its_browser_without_sending_it") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &[]);
    let admin = p.key.as_deref().unwrap();
    let claimant = organisation(&p.url, admin, "Claimant Ltd", "member");
    let court = organisation(&p.url, admin, "District Court", "court");

    // Eight files registered in one request, so their batch has paths to alter.
    let files: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            evidence_file(
                &format!("court-page exhibit {i} {}", uuid::Uuid::now_v7()),
                6000,
            )
        })
        .collect();
    let items: Vec<Value> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            // Exhibit 5 by its SM3 digest, as a party under the national-crypto rules has it.
            let content_hash = if i == 5 {
                json!({"algorithm": "sm3", "digest": chain_core::ContentHashAlg::Sm3.hash_reader(&f[..]).unwrap()})
            } else {
                json!({"algorithm": "sha-256", "digest": sha256_hex(f)})
            };
            json!({
                "content_hash": content_hash,
                "title": format!("Exhibit {i}: signed delivery contract"),
                "case_reference": "2026-CV-0042",
                "file_name": format!("exhibit-{i}.pdf"),
            })
        })
        .collect();
    let body = json!({ "items": items }).to_string();
    let (status, _, v) = call(
        "POST",
        &format!("{}/evidence/batch", p.url),
        Some(&claimant),
        Some(body.as_bytes()),
    );
    assert_eq!(status, 201, "{v}");
    let evidence_id = v["items"][3]["evidence_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string();
    let receipt = anchored(&p.url, &court, &evidence_id);
    let receipt_text = String::from_utf8(receipt).unwrap();
    let parsed: Value = serde_json::from_str(&receipt_text).unwrap();
    assert!(
        parsed["transaction"]["batch_size"].as_u64().unwrap() > 1,
        "one batch: {parsed}"
    );

    let work = tempfile::tempdir().unwrap();
    let registered = work.path().join("exhibit-3.pdf");
    std::fs::write(&registered, &files[3]).unwrap();
    let registered_sm3 = work.path().join("exhibit-5.pdf");
    std::fs::write(&registered_sm3, &files[5]).unwrap();
    let unregistered = work.path().join("never-registered.pdf");
    let never = evidence_file(&format!("never registered {}", uuid::Uuid::now_v7()), 5000);
    std::fs::write(&unregistered, &never).unwrap();
    let genesis = dir.path().join("chain/genesis.json");

    // The receipt, and copies with one byte altered in its event, batch path, block header and
    // first signature.
    let path0 = parsed["batch_proof"]["path"][0]
        .as_str()
        .unwrap()
        .to_string();
    let signature = parsed["attestations"][0]["signature"]
        .as_str()
        .unwrap()
        .to_string();
    let variants = [
        ("intact", receipt_text.clone()),
        ("event", tamper(&receipt_text, "\"title\":\"Exhibit 3", 9)),
        ("path", tamper(&receipt_text, &path0, 7)),
        ("header", tamper(&receipt_text, "\"height\":", 9)),
        ("signature", tamper(&receipt_text, &signature, 30)),
    ];
    let mut receipts = Vec::new();
    let mut cli = std::collections::BTreeMap::new();
    for (name, text) in &variants {
        let path = work.path().join(format!("receipt-{name}.json"));
        std::fs::write(&path, text).unwrap();
        cli.insert(name.to_string(), cli_code(&path, &genesis));
        receipts.push(json!({"name": name, "path": path}));
    }
    assert_eq!(cli["intact"], None, "the receipt verifies with the CLI");

    let out = screenshot_path("court");
    std::fs::create_dir_all(&out).unwrap();
    let scenario = json!({
        "url": p.url, "key": court, "registered": registered, "registeredDigest": sha256_hex(&files[3]),
        "unregistered": unregistered, "registeredSm3": registered_sm3, "receipts": receipts,
        "out": out, "timeoutMs": 90000,
    });
    let scenario_path = work.path().join("scenario.json");
    std::fs::write(&scenario_path, scenario.to_string()).unwrap();
    let seen = common::browser::court_check(&scenario_path);

    assert_eq!(
        (seen["status"].as_u64(), seen["lang"].as_str()),
        (Some(200), Some("en"))
    );
    assert_eq!(seen["consoleErrors"], json!([]), "console errors");
    // A file registered by its SM3 digest is found and verified the same way.
    let sm3 = &seen["registeredSm3"];
    assert_eq!(sm3["verdict"], "verified", "{sm3:#}");
    assert!(
        sm3["cards"][0]["text"]
            .as_str()
            .unwrap()
            .contains("sm3 digest"),
        "{sm3:#}"
    );
    assert!(
        sm3["cards"][0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "document" && s["status"] == "pass"),
        "{sm3:#}"
    );

    // 1. The registered file: verified in the browser, every step green.
    let r = &seen["registered"];
    assert_eq!(r["verdict"], "verified", "{r:#}");
    let cards = r["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 1, "{r:#}");
    let card = cards[0]["text"].as_str().unwrap();
    assert!(card.contains(&evidence_id), "{card}");
    assert!(
        card.contains("Claimant Ltd (organisation "),
        "who registered it: {card}"
    );
    let steps = cards[0]["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    for id in [
        "parse",
        "event-digest",
        "batch-path",
        "transaction-path",
        "validator-set",
        "attestations",
        "quorum",
        "document",
    ] {
        assert!(ids.contains(&id), "step {id} shown: {ids:?}");
    }
    assert!(
        steps.iter().all(|s| s["status"] == "pass"),
        "every step green: {steps:#?}"
    );
    assert!(r["certificateReady"].as_bool().unwrap());

    // No request carried the file: not its bytes, nor their base64 or hex.
    let file = &files[3];
    let marker = &file[..40];
    let encodings = [base64(&file[..300]), hex_of(&file[..200])];
    let network = seen["network"].as_array().unwrap();
    assert!(
        network
            .iter()
            .any(|r| r["url"].as_str().unwrap().contains("/evidence?")),
        "the lookup is in the log: {network:#?}"
    );
    for request in network {
        let body = request["body"]
            .as_str()
            .map(|b| hex::decode(b).expect("hex body"))
            .unwrap_or_default();
        let url = request["url"].as_str().unwrap();
        let headers = request["headers"].to_string();
        assert!(
            !contains(&body, marker),
            "request body carries the file: {url}"
        );
        for e in &encodings {
            assert!(
                !url.contains(e.as_str())
                    && !headers.contains(e.as_str())
                    && !contains(&body, e.as_bytes()),
                "request carries an encoding of the file: {url}"
            );
        }
    }

    // 4. The certificate: its QR code is this page's link for the file, and it prints on one
    // A4 page.
    let c = &seen["certificate"];
    let link = format!("{}/verify#sha-256:{}", p.url, sha256_hex(file));
    assert_eq!(c["link"], link.as_str());
    assert!(c["qrLoaded"].as_bool().unwrap(), "{c}");
    let text = c["text"].as_str().unwrap();
    for fact in [
        sha256_hex(file),
        evidence_id.clone(),
        parsed["block_header"]["height"].to_string(),
        "Attested by".to_string(),
        "Claimant Ltd".to_string(),
    ] {
        assert!(text.contains(&fact), "certificate shows {fact}: {text}");
    }
    let mut qr = agent()
        .get(&format!("{}{}", p.url, c["qrSrc"].as_str().unwrap()))
        .call()
        .expect("qr");
    let svg = qr.body_mut().read_to_string().unwrap();
    assert_eq!(
        svg,
        veritrace_label::LabelCode::encode(&link)
            .unwrap()
            .svg(&link, 4)
    );
    let printed = &seen["printed"];
    assert_eq!(printed["pages"], 1, "{printed}");
    let (w, h) = (
        printed["width"].as_f64().unwrap(),
        printed["height"].as_f64().unwrap(),
    );
    assert!(
        (w - 595.0).abs() <= 2.0 && (h - 842.0).abs() <= 2.0,
        "A4: {printed}"
    );

    // 6. On a phone nothing scrolls sideways; the keyboard reaches and presses the button.
    assert!(
        seen["phone"]["scrollWidth"].as_u64() <= seen["phone"]["viewportWidth"].as_u64(),
        "{}",
        seen["phone"]
    );
    assert_eq!(seen["focusedBeforeEnter"], "lookup");
    assert_eq!(seen["byKeyboard"]["verdict"], "verified");

    // 2. A file nobody registered says so.
    let u = &seen["unregistered"];
    assert_eq!(u["verdict"], "not-registered", "{u:#}");
    assert!(u["text"].as_str().unwrap().contains("Not registered"));

    // 2. Each altered receipt fails at the step and with the code `veritrace verify` names.
    for (got, (name, _)) in seen["receipts"].as_array().unwrap().iter().zip(&variants) {
        assert_eq!(got["name"], *name);
        let card = &got["cards"][0];
        match &cli[*name] {
            None => assert_eq!(got["verdict"], "verified", "{got:#}"),
            Some(code) => {
                assert_eq!(got["verdict"], "failed", "{name}: {got:#}");
                assert_eq!(got["code"], code.as_str(), "{name}: the CLI says {code}");
                let failed: Vec<&Value> = card["steps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["status"] == "fail")
                    .collect();
                assert_eq!(failed.len(), 1, "{name}: one failed step {card:#}");
            }
        }
    }
    let expected_steps = [
        ("event", "event-digest"),
        ("path", "batch-path"),
        ("header", "attestations"),
        ("signature", "attestations"),
    ];
    for (name, step) in expected_steps {
        let got = seen["receipts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap();
        let failed = got["cards"][0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["status"] == "fail")
            .unwrap();
        assert_eq!(failed["id"], step, "{name}");
    }

    // 6. axe-core finds nothing, whatever the page shows.
    for (state, violations) in seen["accessibility"].as_object().unwrap() {
        assert_eq!(violations, &json!([]), "axe-core on the {state} page");
    }
    for shot in [
        "court-verified-desktop.png",
        "court-verified-390x844.png",
        "court-failed-desktop.png",
        "evidence-certificate.pdf",
        "evidence-certificate-print.png",
    ] {
        assert!(out.join(shot).is_file(), "{shot} kept in {}", out.display());
    }
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A registration whose batch is not anchored yet: its receipt is pending, and the page says
/// "registered, not yet anchored", never verified.
#[test]
fn a_registration_not_yet_anchored_is_said_so_and_never_verified() {
    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &common::SEALING_HELD_OFF);
    let admin = p.key.as_deref().unwrap();
    let claimant = organisation(&p.url, admin, "Claimant Ltd", "member");
    let court = organisation(&p.url, admin, "District Court", "court");
    let file = evidence_file(&format!("pending exhibit {}", uuid::Uuid::now_v7()), 3000);
    let body = json!({"content_hash": {"algorithm": "sha-256", "digest": sha256_hex(&file)}, "title": "Pending exhibit"}).to_string();
    let (status, _, registered) = call(
        "POST",
        &format!("{}/evidence", p.url),
        Some(&claimant),
        Some(body.as_bytes()),
    );
    assert_eq!(status, 201, "{registered}");
    let evidence_id = registered["evidence"]["evidence_id"].as_str().unwrap();
    let (status, _, receipt) = call(
        "GET",
        &format!("{}/evidence/{evidence_id}/receipt", p.url),
        Some(&court),
        None,
    );
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(
        receipt,
        json!({"status": "pending", "version": 1, "event_id": registered["event_id"], "event_digest": registered["event_digest"]})
    );

    if !browser_checks_run("a_registration_not_yet_anchored_is_said_so_and_never_verified") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("pending.pdf");
    std::fs::write(&path, &file).unwrap();
    let out = screenshot_path("court-pending");
    std::fs::create_dir_all(&out).unwrap();
    let scenario = json!({
        "url": p.url, "key": court, "registered": path, "registeredDigest": sha256_hex(&file),
        "unregistered": path, "receipts": [], "out": out, "timeoutMs": 90000,
    });
    let scenario_path = work.path().join("scenario.json");
    std::fs::write(&scenario_path, scenario.to_string()).unwrap();
    let seen = common::browser::court_check(&scenario_path);
    let r = &seen["registered"];
    assert_eq!(
        (&r["verdict"], &r["code"]),
        (&json!("pending"), &json!("pending")),
        "{r:#}"
    );
    assert!(
        r["text"].as_str().unwrap().contains("not yet anchored"),
        "{r:#}"
    );
    assert_eq!(r["certificateReady"], false);
    assert_eq!(seen["consoleErrors"], json!([]));
}
