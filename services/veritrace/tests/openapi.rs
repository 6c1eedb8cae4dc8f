//! `openapi/veritrace.json` is generated from the handlers; this fails when the two drift.
//! `VERITRACE_BLESS=1 cargo test -p veritrace --test openapi` rewrites it.

use std::path::Path;

#[test]
fn committed_openapi_document_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi/veritrace.json");
    let generated = veritrace::openapi::document_json();
    if std::env::var_os("VERITRACE_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/veritrace.json is stale: rerun with VERITRACE_BLESS=1 and commit it"
    );
    // Every route the evidence and receipt services serve is documented.
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    for p in [
        "/evidence",
        "/evidence/{evidence_id}",
        "/evidence/{evidence_id}/withdrawal",
        "/receipts/{event_id}",
        "/receipts/by-digest/{event_digest}",
        "/organisations",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} is not documented");
    }
}
