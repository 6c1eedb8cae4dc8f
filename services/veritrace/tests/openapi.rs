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

/// Every registered domain documents its routes, and the served document holds them all.
#[test]
fn every_registered_domain_is_in_the_document() {
    let doc: serde_json::Value =
        serde_json::from_str(&veritrace::openapi::document_json()).unwrap();
    for domain in veritrace::domains::DOMAINS {
        let part = domain.openapi();
        assert!(
            !part.paths.paths.is_empty(),
            "domain {} documents no route",
            domain.name()
        );
        for path in part.paths.paths.keys() {
            assert!(
                doc["paths"].get(path).is_some(),
                "{path} of domain {} is not in the document",
                domain.name()
            );
        }
    }
}

/// The text rules the document states are the kernel's own, and every problem is documented
/// as `application/problem+json`.
#[test]
fn the_document_states_the_edge_rules() {
    let doc: serde_json::Value =
        serde_json::from_str(&veritrace::openapi::document_json()).unwrap();
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("RegisterEvidenceRequest", "title"),
        ("RegisterEvidenceRequest", "case_reference"),
        ("WithdrawEvidenceRequest", "reason"),
        ("CreateOrganisation", "name"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["pattern"],
            veritrace_kernel::strict_json::TEXT_FIELD_PATTERN,
            "{schema}.{field}"
        );
    }
    assert_eq!(
        schemas[veritrace_kernel::strict_json::VALUE_SCHEMA_NAME],
        veritrace_kernel::strict_json::value_schema()
    );
    let text = doc.to_string();
    assert!(
        !text.contains(
            r##"{"application/json":{"schema":{"$ref":"#/components/schemas/Problem"}}}"##
        )
    );
    // Every operation with a body documents what the edge answers to a bad one.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("requestBody").is_some() {
                for status in ["400", "408", "413", "415", "422", "429"] {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}

/// The edge refuses control characters in every string of a body, so every string a request
/// body documents says so (a pattern), or is narrower still (a format or an enumeration):
/// a client generating requests from the document never sends one the edge must refuse.
#[test]
fn every_string_a_request_body_takes_states_what_text_it_accepts() {
    let doc: serde_json::Value =
        serde_json::from_str(&veritrace::openapi::document_json()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let mut unstated = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(content) = op["requestBody"]["content"].as_object() else {
                continue;
            };
            for media in content.values() {
                let at = format!("{method} {path}");
                strings_without_rule(schemas, &media["schema"], &at, 0, &mut unstated);
            }
        }
    }
    assert!(
        unstated.is_empty(),
        "strings with no stated rule: {unstated:?}"
    );
}

fn strings_without_rule(
    schemas: &serde_json::Value,
    schema: &serde_json::Value,
    at: &str,
    depth: usize,
    unstated: &mut Vec<String>,
) {
    if depth > 16 {
        return; // a recursive schema (a JSON value) states its rule at its root
    }
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.rsplit('/').next().unwrap_or_default();
        return strings_without_rule(
            schemas,
            &schemas[name],
            &format!("{at} > {name}"),
            depth + 1,
            unstated,
        );
    }
    let is_string = match &schema["type"] {
        serde_json::Value::String(t) => t == "string",
        serde_json::Value::Array(ts) => ts.iter().any(|t| t == "string"),
        _ => false,
    };
    if is_string
        && ["pattern", "format", "enum"]
            .iter()
            .all(|k| schema.get(k).is_none())
    {
        unstated.push(at.to_owned());
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            strings_without_rule(
                schemas,
                property,
                &format!("{at}.{name}"),
                depth + 1,
                unstated,
            );
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for branch in schema[key].as_array().into_iter().flatten() {
            strings_without_rule(schemas, branch, at, depth + 1, unstated);
        }
    }
    if let Some(items) = schema.get("items") {
        strings_without_rule(schemas, items, &format!("{at}[]"), depth + 1, unstated);
    }
}
