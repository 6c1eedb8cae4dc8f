//! The chain explorer's pages and the platform's root page, in headless Chromium at desktop
//! size and at 390×844: they show the same blocks, transactions, attestations, batches and
//! validators as the JSON API, live figures and misbehaviour reports, and pass axe-core's
//! checks with no console errors.

mod common;

use common::browser::{audit_page, browser_checks_run, checked};
use common::{anchored_receipt, call, sha256_hex, up};
use serde_json::{Value, json};
use std::time::Duration;

fn get(url: &str) -> Value {
    let (status, _, v) = call("GET", url, None, None);
    assert_eq!(status, 200, "{url}: {v}");
    v
}

fn attribute<'a>(element: &'a Value, name: &str) -> &'a str {
    element["attributes"][format!("data-{name}")]
        .as_str()
        .unwrap_or_else(|| panic!("data-{name} on {element}"))
}

#[test]
fn the_explorer_shows_what_the_api_serves() {
    if !browser_checks_run("the_explorer_shows_what_the_api_serves") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &[]);
    let admin = p.key.as_deref().unwrap();
    let body = json!({"name": "Claimant Ltd", "role": "member"}).to_string();
    let (status, _, org) = call(
        "POST",
        &format!("{}/organisations", p.url),
        Some(admin),
        Some(body.as_bytes()),
    );
    assert_eq!(status, 201, "{org}");
    let key = org["api_key"].as_str().unwrap();
    let body = json!({"content_hash": {"algorithm": "sha-256", "digest": sha256_hex(b"explorer exhibit")}, "title": "Explorer exhibit"}).to_string();
    let (status, _, registered) = call(
        "POST",
        &format!("{}/evidence", p.url),
        Some(key),
        Some(body.as_bytes()),
    );
    assert_eq!(status, 201, "{registered}");
    let receipt = anchored_receipt(
        &p,
        key,
        registered["event_id"].as_str().unwrap(),
        Duration::from_secs(60),
    )
    .expect("anchored");
    let receipt: Value = serde_json::from_slice(&receipt).unwrap();
    let height = receipt["block_header"]["height"].as_u64().unwrap();
    let batch_id = receipt["transaction"]["batch_id"].as_str().unwrap();

    // The root page leads to each page.
    let root = audit_page(&format!("{}/", p.url), "root");
    let links: Vec<&str> = checked(&root, "link")
        .iter()
        .map(|l| attribute(l, "to"))
        .collect();
    for to in ["verify", "explorer", "docs", "genesis"] {
        assert!(links.contains(&to), "the root page links {to}: {links:?}");
    }

    // The first page: its head and its blocks are the API's.
    let page = audit_page(&format!("{}/explorer", p.url), "explorer");
    let head = get(&format!("{}/chain/head", p.url));
    let shown_head: u64 = attribute(checked(&page, "head")[0], "height")
        .parse()
        .unwrap();
    assert!(
        shown_head >= height && shown_head <= head["height"].as_u64().unwrap(),
        "head {shown_head}"
    );
    let rows = checked(&page, "block");
    assert_eq!(rows.len() as u64, shown_head.min(20), "recent blocks shown");
    for row in &rows {
        let h = attribute(row, "height");
        let api = get(&format!("{}/chain/blocks/{h}", p.url));
        assert_eq!(
            attribute(row, "hash"),
            api["block"]["hash"],
            "block {h} as the API has it"
        );
    }
    let figures: Vec<&str> = checked(&page, "figure")
        .iter()
        .map(|f| attribute(f, "name"))
        .collect();
    assert_eq!(
        figures,
        [
            "events-per-second",
            "pending-leaves",
            "time-to-anchor",
            "misbehaviour"
        ]
    );

    // The block of the receipt: its transactions and attestations are the API's.
    let page = audit_page(&format!("{}/explorer/blocks/{height}", p.url), "block");
    let api = get(&format!("{}/chain/blocks/{height}", p.url));
    let txs = checked(&page, "transaction");
    let api_txs = api["block"]["block"]["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), api_txs.len());
    for (shown, tx) in txs.iter().zip(api_txs) {
        assert_eq!(attribute(shown, "batch"), tx["batch_id"], "{tx}");
    }
    assert!(txs.iter().any(|t| attribute(t, "batch") == batch_id));
    let signers: Vec<&str> = checked(&page, "attestation")
        .iter()
        .map(|a| attribute(a, "validator"))
        .collect();
    let api_signers: Vec<&str> = api["block"]["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["validator"].as_str().unwrap())
        .collect();
    assert_eq!(signers, api_signers);

    // The batch: its size and root are the anchor transaction's.
    let page = audit_page(&format!("{}/explorer/batches/{batch_id}", p.url), "batch");
    let batch = checked(&page, "batch")[0];
    assert_eq!(
        attribute(batch, "size"),
        receipt["transaction"]["batch_size"].to_string()
    );
    assert_eq!(
        attribute(batch, "root"),
        receipt["transaction"]["batch_root"]
    );

    // The validator sets and their validators are the API's.
    let page = audit_page(&format!("{}/explorer/validators", p.url), "validators");
    let sets = get(&format!("{}/chain/validator-sets", p.url));
    let shown: Vec<(String, String, String)> = checked(&page, "validator")
        .iter()
        .map(|v| {
            (
                attribute(v, "name").to_string(),
                attribute(v, "power").to_string(),
                attribute(v, "key").to_string(),
            )
        })
        .collect();
    let api_validators: Vec<(String, String, String)> = sets["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["validator_set"]["validators"].as_array().unwrap().clone())
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["power"].to_string(),
                v["public_key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(shown, api_validators);
    assert_eq!(
        checked(&page, "validator-set").len(),
        sets["items"].as_array().unwrap().len()
    );

    // One validator: nobody to misbehave, and the page says so.
    let page = audit_page(&format!("{}/explorer/misbehaviour", p.url), "misbehaviour");
    assert_eq!(checked(&page, "no-reports").len(), 1);

    // A block that does not exist is the explorer's own 404.
    let missing = common::browser::open_page(&format!("{}/explorer/blocks/999999", p.url), None);
    assert_eq!(missing["status"], 404);
    assert_eq!(attribute(checked(&missing, "problem")[0], "status"), "404");
}
