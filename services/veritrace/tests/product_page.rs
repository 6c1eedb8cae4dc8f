//! The consumer's side of provenance: a product's page behind its GS1 Digital Link, opened as
//! a phone opens it (headless Chromium, 390×844, JavaScript off), showing the journey its
//! brand owner made public with every anchored event's receipt verified by the server; each
//! receipt downloadable from the page and verified again offline by `veritrace verify`; a
//! friendly page for a code that names nothing public, problem+json for an API client.

mod common;

use common::browser::{browser_checks_run, checked, open_page, screenshot_path};
use common::epcis::{Loaf, capture, member, with_check_digit};
use common::{agent, anchored_receipt, call, read_response, up, verify_cli};
use serde_json::Value;
use std::time::Duration;

/// `GET` a public path with an `Accept` header: status, content type, body.
fn fetch(url: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let mut resp = agent()
        .get(url)
        .header("Accept", accept)
        .call()
        .expect("get");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = resp.body_mut().read_to_vec().expect("body");
    (status, ctype, body)
}

const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// `PUT /products/{gtin}/publication` as `key`: publish or withdraw.
fn publication(base: &str, key: &str, gtin: &str, published: bool) -> (u16, Value) {
    let url = format!("{base}/products/{gtin}/publication");
    let body = serde_json::json!({ "published": published }).to_string();
    let (status, _, v) = call("PUT", &url, Some(key), Some(body.as_bytes()));
    (status, v)
}

/// The platform event of each EPCIS event a capture job stored, from its `receiptUrls`.
fn record_ids(job: &Value) -> std::collections::BTreeMap<String, String> {
    job["receiptUrls"]
        .as_object()
        .expect("receiptUrls")
        .iter()
        .map(|(event_id, url)| {
            let url = url.as_str().expect("url");
            (event_id.clone(), url.rsplit('/').next().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn a_products_page_shows_its_verified_journey_in_a_phone_browser() {
    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &[]);
    let admin = p.key.as_deref().unwrap();
    let bakery = member(&p.url, admin, "Bakery");
    let rival = member(&p.url, admin, "Rival");
    let loaf = Loaf::journey();
    let (status, _, job) = capture(&p.url, &bakery, &loaf.document, None);
    assert_eq!(
        (status, &job["success"]),
        (202, &Value::Bool(true)),
        "{job}"
    );
    let records = record_ids(&job);
    let page_url = format!("{}/01/{}/21/B1", p.url, loaf.gtin);

    // Not public until its brand owner publishes it: the page is the friendly 404.
    let (status, ctype, html) = fetch(&page_url, BROWSER);
    assert_eq!((status, ctype.as_str()), (404, "text/html; charset=utf-8"));
    assert!(String::from_utf8_lossy(&html).contains("We could not find this product"));

    let (status, published) = publication(&p.url, &bakery, &loaf.gtin, true);
    assert_eq!(status, 200, "{published}");
    assert_eq!(published["published"], true);
    let (status, refused) = publication(&p.url, &rival, &loaf.gtin, true);
    assert_eq!(
        status, 403,
        "another organisation cannot take the GTIN: {refused}"
    );
    let (status, _, public) = {
        let mut resp = agent()
            .get(&format!("{}/products/{}/publication", p.url, loaf.gtin))
            .call()
            .expect("get");
        read_response(&mut resp)
    };
    assert_eq!(
        (status, &public["brandOwner"]),
        (200, &published["brandOwner"])
    );

    // The loaf's own journey: events 1 to 5 (6 names another product).
    let journey: Vec<&String> = loaf.ids[..5].iter().collect();
    for event_id in &journey {
        anchored_receipt(&p, &bakery, &records[*event_id], Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{event_id} anchored"));
    }

    if browser_checks_run("a_products_page_shows_its_verified_journey_in_a_phone_browser") {
        let shot = screenshot_path("product-page-390x844.png");
        let page = open_page(&page_url, Some(&shot));
        eprintln!("screenshot of the product page: {}", shot.display());
        assert_eq!(page["status"], 200, "{page}");
        assert_eq!(page["lang"], "en");
        assert_eq!(page["viewportWidth"], 390, "a phone's width: {page}");
        assert!(
            page["scrollWidth"].as_u64() <= Some(390),
            "nothing wider than the phone: {page}"
        );
        let events = checked(&page, "event");
        let shown: Vec<&str> = events
            .iter()
            .map(|e| e["attributes"]["data-event-id"].as_str().unwrap())
            .collect();
        assert_eq!(shown, journey, "the journey, oldest first");
        for e in &events {
            assert_eq!(e["attributes"]["data-state"], "verified", "{e}");
            assert!(
                e["text"]
                    .as_str()
                    .unwrap()
                    .contains("Anchored and verified")
            );
        }
        let summary = checked(&page, "summary");
        assert_eq!(summary[0]["attributes"]["data-verified"], "5", "{page}");
        let text = page["text"].as_str().unwrap();
        for words in [
            "Commissioning",
            "Shipping",
            "In transit",
            "GLN 4012345000016",
        ] {
            assert!(text.contains(words), "{words:?} on the page: {text}");
        }
        assert!(
            std::fs::metadata(&shot)
                .map(|m| m.len() > 1000)
                .unwrap_or(false)
        );

        // Unknown and malformed codes: the friendly page, as a 404.
        let unknown = with_check_digit("0401234599999");
        for path in [format!("/01/{unknown}"), "/01/123".to_string()] {
            let page = open_page(&format!("{}{path}", p.url), None);
            assert_eq!(page["status"], 404, "{path}: {page}");
            assert_eq!(checked(&page, "not-found").len(), 1, "{path}: {page}");
            assert!(page["scrollWidth"].as_u64() <= Some(390), "{page}");
        }
    }

    // Each receipt the page links downloads without a key and verifies offline.
    let (_, _, html) = fetch(&page_url, BROWSER);
    // Tera escapes `/` in attributes.
    let html = String::from_utf8(html).unwrap().replace("&#x2F;", "/");
    assert_eq!(html.matches(r#"data-state="verified""#).count(), 5);
    let genesis = dir.path().join("chain").join("genesis.json");
    for event_id in &journey {
        let href = format!("/01/{}/21/B1?receipt={}", loaf.gtin, records[*event_id]);
        assert!(html.contains(&format!(r#"href="{href}""#)), "{href} linked");
        let (status, ctype, receipt) = fetch(&format!("{}{href}", p.url), "*/*");
        assert_eq!((status, ctype.as_str()), (200, "application/json"));
        let file = dir.path().join("receipt.json");
        std::fs::write(&file, &receipt).unwrap();
        let (code, out) = verify_cli(&file, &genesis, &[]);
        assert_eq!(code, 0, "{out}");
        let parsed: Value = serde_json::from_slice(&receipt).unwrap();
        assert_eq!(parsed["event"]["payload"]["event_id"], **event_id);
    }
    // Not the receipt of an event off the page.
    let other = format!("{page_url}?receipt={}", records[&loaf.ids[5]]);
    let (status, ctype, _) = fetch(&other, "*/*");
    assert_eq!((status, ctype.as_str()), (404, "application/problem+json"));

    // An API client gets problem+json for an unknown product, and a linkset for this one.
    let unknown = with_check_digit("0401234599999");
    let (status, ctype, _) = fetch(&format!("{}/01/{unknown}", p.url), "application/json");
    assert_eq!((status, ctype.as_str()), (404, "application/problem+json"));
    let (status, ctype, _) = fetch(&page_url, "application/json");
    assert_eq!((status, ctype.as_str()), (200, "application/linkset+json"));

    // Its label: the QR code of this page, as SVG and PNG.
    let (status, ctype, svg) = fetch(&format!("{page_url}?label=svg"), "*/*");
    assert_eq!((status, ctype.as_str()), (200, "image/svg+xml"));
    assert!(
        String::from_utf8_lossy(&svg).contains(&page_url),
        "titled by its URL"
    );
    let (status, ctype, png) = fetch(&format!("{page_url}?label=png"), "*/*");
    assert_eq!((status, ctype.as_str()), (200, "image/png"));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // Withdrawn, the page is gone again, and so are its receipts.
    let (status, withdrawn) = publication(&p.url, &bakery, &loaf.gtin, false);
    assert_eq!(
        (status, &withdrawn["published"]),
        (200, &Value::Bool(false))
    );
    assert_eq!(fetch(&page_url, BROWSER).0, 404);
    let first = format!("{page_url}?receipt={}", records[&loaf.ids[0]]);
    assert_eq!(fetch(&first, "*/*").0, 404);
}

/// Events whose batch is not anchored yet show as such, never as verified.
#[test]
fn events_not_yet_anchored_are_shown_pending_never_verified() {
    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &common::SEALING_HELD_OFF);
    let bakery = member(&p.url, p.key.as_deref().unwrap(), "Bakery");
    let loaf = Loaf::journey();
    let (_, _, job) = capture(&p.url, &bakery, &loaf.document, None);
    assert_eq!(job["success"], true, "{job}");
    assert_eq!(publication(&p.url, &bakery, &loaf.gtin, true).0, 200);
    let (status, _, html) = fetch(&format!("{}/01/{}/21/B1", p.url, loaf.gtin), BROWSER);
    let html = String::from_utf8(html).unwrap();
    assert_eq!(status, 200);
    assert_eq!(html.matches(r#"data-state="pending""#).count(), 5, "{html}");
    assert!(!html.contains(r#"data-state="verified""#));
    assert!(html.contains("Recorded, not yet anchored"));
}
