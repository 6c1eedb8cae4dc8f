//! The published event schemas (`schemas/events/<domain>/<Type>.v<version>.schema.json`), the
//! contract between domains: every registered domain declares a schema for every event type it
//! records, at every version it reads (`Domain::event_types`), every schema file is declared,
//! each compiles, every event the platform records matches the schema of its type and version,
//! which is the current one, and events of older versions read as the current one.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use veritrace::domains::DOMAINS;
use veritrace_kernel::EventEnvelope;
use veritrace_kernel::db::Database;
use veritrace_kernel::domain::{Domain, EventType, event_store_file};
use veritrace_kernel::event_store::EventStore;
use veritrace_kernel::testing::EventSchemas;

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn domain(service: &str) -> &'static dyn Domain {
    veritrace::domains::find(service)
        .unwrap_or_else(|| panic!("no registered domain records events of service {service:?}"))
}

fn schemas_of(service: &str) -> EventSchemas {
    EventSchemas::of(domain(service)).unwrap_or_else(|e| panic!("{e}"))
}

/// The envelope as `schemas/receipt.schema.json` publishes it (`$defs/event`).
fn envelope_validator() -> jsonschema::Validator {
    let receipt = load(&repo().join("schemas/receipt.schema.json"));
    let schema =
        json!({"$schema": DRAFT_2020_12, "$ref": "#/$defs/event", "$defs": receipt["$defs"]});
    jsonschema::validator_for(&schema).expect("the envelope schema compiles")
}

#[test]
fn every_event_type_has_its_schema_file_and_every_file_is_declared() {
    let root = repo().join("schemas/events");
    let receipt = load(&repo().join("schemas/receipt.schema.json"));
    let names: BTreeSet<&str> = DOMAINS.iter().map(|d| d.name()).collect();
    for entry in std::fs::read_dir(&root).expect("schemas/events/") {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        assert!(
            entry.file_type().unwrap().is_dir() && names.contains(name.as_str()),
            "schemas/events/{name} is not the directory of a registered domain"
        );
    }
    for d in DOMAINS {
        let types = d.event_types();
        assert!(!types.is_empty(), "{} declares no event type", d.name());
        let dir = root.join(d.name());
        let files: BTreeSet<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let declared: BTreeSet<String> = types.iter().map(EventType::file_name).collect();
        let undeclared: Vec<_> = files.difference(&declared).collect();
        let missing: Vec<_> = declared.difference(&files).collect();
        assert!(
            undeclared.is_empty() && missing.is_empty(),
            "{}: files no event type declares: {undeclared:?}; declared without a file: {missing:?}",
            d.name()
        );
        for t in types {
            let path = dir.join(t.file_name());
            let what = format!("{}/{}", d.name(), t.file_name());
            assert!(
                t.version >= 1
                    && t.name.starts_with(|c: char| c.is_ascii_uppercase())
                    && t.name.chars().all(|c| c.is_ascii_alphanumeric()),
                "{what}: types are PascalCase names, versions count from 1"
            );
            // The declared text is the file (compiled in by `event_type!`).
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                t.schema,
                "{what}: the compiled-in schema is not the file"
            );
            let schema = load(&path);
            assert_eq!(schema["$schema"], DRAFT_2020_12, "{what}");
            assert_eq!(schema["$id"], json!(t.schema_id(d.name())), "{what}");
            assert_eq!(schema["type"], "object", "{what}: payloads are objects");
            assert!(
                schema["description"]
                    .as_str()
                    .is_some_and(|s| s.contains("schemas/receipt.schema.json")),
                "{what}: the description names where the envelope is described"
            );
            // A payload attesting a document carries `content_hash` exactly as receipts
            // describe it: verifiers read it there (docs/receipts.md §11).
            if !schema["properties"]["content_hash"].is_null() {
                assert_eq!(
                    schema["properties"]["content_hash"],
                    json!({"$ref": "#/$defs/contentHash"}),
                    "{what}"
                );
                assert_eq!(
                    schema["$defs"]["contentHash"], receipt["$defs"]["contentHash"],
                    "{what}"
                );
            }
        }
        // Every schema parses, is a draft 2020-12 schema and compiles; no type and version
        // is declared twice.
        EventSchemas::of(*d).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Appends `envelope` to `store` as a new stream's first event.
async fn append(store: &EventStore, envelope: EventEnvelope) {
    let stream = envelope.stream.clone();
    let sealed = envelope.seal(chain_core::HashAlg::Sha3_256);
    store
        .append(&stream, 0, vec![sealed])
        .await
        .expect("append");
}

fn post(p: &Running, path: &str, body: Value) -> (u16, Value) {
    let (status, _, v) = call(
        "POST",
        &format!("{}{path}", p.url),
        p.key.as_deref(),
        Some(body.to_string().as_bytes()),
    );
    (status, v)
}

/// Every command of every domain, through the API of the embedded platform; then every event
/// in every domain's event store is checked against the schema of its type and version, and
/// against the envelope's.
#[test]
fn every_event_the_embedded_platform_records_matches_its_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(dir.path(), &[]);
    let mut answered: BTreeSet<String> = BTreeSet::new();
    let mut event_id = |v: &Value| {
        let id = v["event_id"].as_str().expect("event_id").to_string();
        answered.insert(id);
    };

    // Evidence: a registration per content-hash algorithm, at the edges of every rule, with
    // the time the fact happened in several offsets.
    let mut evidence_ids = Vec::new();
    let occurred = [
        ("2025-11-30T10:30:00.25+01:00", "2025-11-30T09:30:00.250Z"),
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"),
        ("2025-12-31T19:00:00.1239-05:00", "2026-01-01T00:00:00.123Z"),
    ];
    let mut occurred_event = None;
    for (i, alg) in chain_core::ContentHashAlg::ALL.into_iter().enumerate() {
        let file_name = [format!("{}.pdf", "ф".repeat(251)), "x".into()][i % 2].clone();
        let size_bytes = [0, 9007199254740991_i64, 1][i % 3];
        let mut body = json!({
            "content_hash": {"algorithm": alg.name(), "digest": "A1".repeat(alg.digest_len())},
            "title": format!(" {} ", "証".repeat(298)),
            "case_reference": "2026-CV-0042",
            "metadata": {
                "exhibit": i, "weight": 2.5, "min": -9007199254740991_i64, "sealed": false,
                "note": "tab\tand\nlines, ☃", "parties": [{"name": "A"}, null], "": {}
            },
            "file_name": file_name,
            "size_bytes": size_bytes,
        });
        if let Some((given, _)) = occurred.get(i) {
            body["occurred_at"] = json!(given);
        }
        let (status, v) = post(&p, "/evidence", body);
        assert_eq!(status, 201, "{v}");
        event_id(&v);
        if let Some((_, kept)) = occurred.get(i) {
            assert_eq!(v["evidence"]["occurred_at"], json!(kept), "{v}");
            occurred_event.get_or_insert((v["event_id"].clone(), *kept));
        } else {
            assert_eq!(
                v["evidence"]["occurred_at"], v["evidence"]["registered_at"],
                "{v}"
            );
        }
        evidence_ids.push(v["evidence"]["evidence_id"].as_str().unwrap().to_string());
    }
    // The time the fact happened is what the event carries, hashed and anchored.
    let (event, kept) = occurred_event.expect("a registration with occurred_at");
    let receipt = anchored_receipt(
        &p,
        p.key.as_deref().unwrap(),
        event.as_str().unwrap(),
        std::time::Duration::from_secs(10),
    )
    .expect("anchored");
    let receipt: Value = serde_json::from_slice(&receipt).unwrap();
    assert_eq!(receipt["event"]["occurred_at"], json!(kept));
    assert_eq!(receipt["event"]["type_version"], json!(2));
    assert_ne!(receipt["event"]["recorded_at"], json!(kept));
    // A time later than the recording time plus the clock skew, or before 1970, or without
    // its offset is refused, naming the field (in a batch, the item's), and records nothing.
    let future = chrono::Utc::now() + chrono::TimeDelta::minutes(6);
    let item = |occurred_at: Value| {
        json!({
            "content_hash": {"algorithm": "sha-256", "digest": sha256_hex(b"refused")},
            "title": "refused",
            "occurred_at": occurred_at,
        })
    };
    for bad in [
        json!(future.to_rfc3339()),
        json!("1969-12-31T23:59:59.999Z"),
        json!("2026-01-31T09:30:00"),
        json!("yesterday"),
    ] {
        let (status, v) = post(&p, "/evidence", item(bad.clone()));
        assert_eq!(status, 422, "{bad}: {v}");
        assert_eq!(v["errors"][0]["field"], "occurred_at", "{v}");
        let good = item(Value::Null);
        let (status, v) = post(
            &p,
            "/evidence/batch",
            json!({"items": [good, item(bad.clone())]}),
        );
        assert_eq!(status, 422, "{bad}: {v}");
        assert_eq!(v["errors"][0]["field"], "items[1].occurred_at", "{v}");
    }
    let (status, v) = post(&p, "/evidence", item(json!(future.to_rfc3339())));
    assert!(
        status == 422
            && v["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("future"),
        "{v}"
    );
    // A batch, each item with only what is required.
    let items: Vec<Value> = (0..3)
        .map(|i| {
            json!({
                "content_hash": {"algorithm": "sha-256", "digest": sha256_hex(format!("batch {i}").as_bytes())},
                "title": format!("batch item {i}"),
            })
        })
        .collect();
    let (status, v) = post(&p, "/evidence/batch", json!({ "items": items }));
    assert_eq!(status, 201, "{v}");
    for item in v["items"].as_array().expect("items") {
        event_id(item);
    }
    // A withdrawal.
    let (status, v) = post(
        &p,
        &format!("/evidence/{}/withdrawal", evidence_ids[0]),
        json!({"reason": "filed in error", "expected_version": 1}),
    );
    assert!(status == 200 || status == 202, "{status}: {v}");
    event_id(&v);
    // A sharing with another organisation.
    let (status, org) = post(&p, "/organisations", json!({"name": "Opposing party"}));
    assert_eq!(status, 201, "{org}");
    let (status, v) = post(
        &p,
        &format!("/evidence/{}/sharing", evidence_ids[1]),
        json!({"organisation_id": org["organisation"]["organisation_id"], "expected_version": 1}),
    );
    assert!(status == 200 || status == 202, "{status}: {v}");
    event_id(&v);
    // Refused commands record nothing.
    let (status, v) = post(
        &p,
        &format!("/evidence/{}/withdrawal", evidence_ids[0]),
        json!({"reason": "again", "expected_version": 2}),
    );
    assert_eq!(status, 409, "{v}");
    assert_eq!(
        answered.len(),
        chain_core::ContentHashAlg::ALL.len() + 3 + 1 + 1
    );
    // Provenance: a GS1 example capture (extensions, sensor data, events with and without an
    // eventID), an error declaration following its event, and a job with errors.
    let examples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/epcis");
    for file in [
        "Example_9.6.1-ObjectEvent.jsonld",
        "WithSensorData/SensorDataExample1.jsonld",
        "WithErrorDeclaration/ErrorDeclarationAndCorrectiveEvent.jsonld",
    ] {
        let doc: Value =
            serde_json::from_slice(&std::fs::read(examples.join(file)).expect("a GS1 example"))
                .expect("json");
        let (status, v) = post(&p, "/capture", doc);
        assert_eq!((status, &v["success"]), (202, &json!(true)), "{file}: {v}");
    }
    let mut declared: Value = serde_json::from_slice(
        &std::fs::read(examples.join("Example_9.6.1-ObjectEvent.jsonld")).expect("example"),
    )
    .expect("json");
    declared["epcisBody"]["eventList"][0]["errorDeclaration"] =
        json!({"declarationTime": "2026-01-01T00:00:00Z", "reason": "incorrect_data"});
    declared["epcisBody"]["eventList"][1]["bizStep"] = json!("no_such_step");
    let (status, v) = post(&p, "/capture", declared);
    assert_eq!((status, &v["success"]), (202, &json!(false)), "{v}");
    assert_eq!(v["captured"].as_array().map(Vec::len), Some(0), "{v}");
    // A brand owner publishes the history of a product it captured, and withdraws it.
    let publication = format!("{}/products/10614141073464/publication", p.url);
    for published in [true, false] {
        let body = json!({ "published": published }).to_string();
        let (status, _, v) = call("PUT", &publication, p.key.as_deref(), Some(body.as_bytes()));
        assert_eq!((status, &v["published"]), (200, &json!(published)), "{v}");
    }
    // The cases domain files the exhibits in reaction, after the answers: wait until the
    // withdrawal and the sharing have reached the case file too.
    let case_file = format!("{}/cases/2026-CV-0042", p.url);
    let exhibit = |key: &str, id: &str| -> Option<Value> {
        let (status, _, v) = call("GET", &case_file, Some(key), None);
        (status == 200).then_some(())?;
        v["exhibits"]
            .as_array()?
            .iter()
            .find(|x| x["evidence_id"] == json!(id))
            .cloned()
    };
    let admin = p.key.clone().expect("admin key");
    let party = org["api_key"]
        .as_str()
        .expect("the party's key")
        .to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while exhibit(&admin, &evidence_ids[0]).is_none_or(|x| x["status"] != "withdrawn")
        || exhibit(&party, &evidence_ids[1]).is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the case file never showed them"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(p); // the platform stops; its stores are ours to read

    let envelope = envelope_validator();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut recorded = BTreeSet::new();
        for d in DOMAINS {
            let schemas = EventSchemas::of(*d).unwrap_or_else(|e| panic!("{e}"));
            let db = Database::open(&event_store_file(dir.path(), d.name()))
                .await
                .expect("open the event store");
            let store = EventStore::start(&db).await.expect("event store");
            let events = schemas
                .check_store(&store)
                .await
                .unwrap_or_else(|failures| panic!("{}: {failures:#?}", d.name()));
            let mut seen: BTreeMap<(&str, u32), usize> = BTreeMap::new();
            let current =
                |name: &str| veritrace_kernel::domain::current_version(d.event_types(), name);
            for e in &events {
                let errors: Vec<String> = envelope
                    .iter_errors(&serde_json::to_value(&*e.envelope).unwrap())
                    .map(|err| format!("{}: {err}", err.instance_path()))
                    .collect();
                assert!(errors.is_empty(), "envelope {}: {errors:?}", e.envelope.id);
                recorded.insert(e.envelope.id.to_string());
                if let Some(t) = d
                    .event_types()
                    .iter()
                    .find(|t| t.name == e.envelope.event_type)
                {
                    *seen.entry((t.name, e.envelope.type_version)).or_default() += 1;
                }
                // The platform writes each type at its current version only; older ones are
                // read, never written.
                assert_eq!(
                    Some(e.envelope.type_version),
                    current(&e.envelope.event_type),
                    "event {} ({}) is not at the current version of its type",
                    e.envelope.id,
                    e.envelope.event_type
                );
            }
            // The commands above reach every declared event type at its current version: a
            // domain's new type or version needs its command here. Older versions are read
            // only (each with its upcast, held by `EventSchemas::of`): the domain's tests store
            // one and read it back upcast, and the receipt vectors below carry some.
            for t in d.event_types().iter().filter(|t| t.is_current()) {
                assert!(
                    seen.contains_key(&(t.name, t.version)),
                    "no {} v{} of {} was recorded: exercise the command that records it",
                    t.name,
                    t.version,
                    d.name()
                );
            }

            // The check reads the store for real: an event that breaks its schema, or whose
            // type has no schema, is named.
            let mut bad = (*events[0].envelope).clone();
            bad.id = uuid::Uuid::now_v7();
            bad.stream = format!("{}-schema-test", d.name());
            bad.stream_version = 1;
            bad.payload["unknown_member"] = json!(true);
            append(&store, bad.clone()).await;
            let mut undeclared = bad.clone();
            undeclared.id = uuid::Uuid::now_v7();
            undeclared.stream = format!("{}-schema-test-2", d.name());
            undeclared.event_type = "NeverDeclared".into();
            undeclared.payload = events[0].envelope.payload.clone();
            append(&store, undeclared.clone()).await;
            let failures = schemas.check_store(&store).await.unwrap_err();
            assert_eq!(failures.len(), 2, "{failures:#?}");
            assert!(failures[0].contains(&bad.id.to_string()), "{failures:#?}");
            assert!(failures[0].contains("unknown_member"), "{failures:#?}");
            assert!(failures[1].contains("declares no schema"), "{failures:#?}");
        }
        // Every event the API answered with is in a store, and was checked.
        let unchecked: Vec<_> = answered.difference(&recorded).collect();
        assert!(
            unchecked.is_empty(),
            "answered but not found: {unchecked:?}"
        );
    });
}

/// The events in the published receipt vectors are events as the platform records them (at
/// the version they were recorded at, perhaps an older one), and read as the current version
/// of their type they match its schema. The edge vectors' events, of the service `vectors`,
/// are shaped for the edge they test instead.
#[test]
fn the_receipt_vectors_carry_events_that_match_their_schemas() {
    let dir = repo().join("schemas/vectors");
    let manifest = load(&dir.join("manifest.json"));
    let mut checked = 0;
    for entry in manifest.as_array().expect("manifest") {
        if entry["expect"] != "verified" {
            continue; // tampered vectors break things on purpose
        }
        let receipt = load(&dir.join(entry["receipt"].as_str().unwrap()));
        if receipt["event"]["service"] == "vectors" {
            continue; // the edge vectors' events belong to no platform service
        }
        let event: EventEnvelope =
            serde_json::from_value(receipt["event"].clone()).expect("an envelope");
        schemas_of(&event.service)
            .check_upcast(&event)
            .unwrap_or_else(|e| panic!("{}: {e}", entry["receipt"]));
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} verified vectors");
}

/// A payload that breaks its schema is refused, and so is an event whose type or version has
/// no schema: the schemas constrain, and a missing one fails.
#[test]
fn events_that_break_or_lack_their_schema_are_refused() {
    let vector = load(&repo().join("schemas/vectors/sha3-256/valid-1.receipt.json"));
    let good: EventEnvelope = serde_json::from_value(vector["event"].clone()).unwrap();
    let schemas = schemas_of(&good.service);
    assert_eq!(schemas.check(&good), Ok(()));

    let broken = |edit: &dyn Fn(&mut EventEnvelope)| {
        let mut e = good.clone();
        edit(&mut e);
        schemas.check(&e).expect_err(&format!("{}", e.payload))
    };
    let err = broken(&|e| e.payload["unknown"] = json!(1));
    assert!(
        err.contains("breaks its schema") && err.contains("unknown"),
        "{err}"
    );
    let err = broken(&|e| e.payload["content_hash"]["digest"] = json!("ab".repeat(16)));
    assert!(err.contains("payload/content_hash/digest"), "{err}");
    broken(&|e| e.payload["title"] = json!(""));
    broken(&|e| e.payload = json!(null));
    let err = broken(&|e| e.type_version = 99);
    assert!(err.contains("declares no schema"), "{err}");
    let err = broken(&|e| e.event_type = "EvidenceAmended".into());
    assert!(err.contains("declares no schema"), "{err}");
    let err = broken(&|e| e.service = "finance".into());
    assert!(err.contains("finance"), "{err}");

    // A domain that leaves a type out of its declaration has it refused.
    let declared = domain(&good.service).event_types();
    let without: Vec<EventType> = declared
        .iter()
        .filter(|t| t.name != good.event_type)
        .copied()
        .collect();
    assert!(without.len() < declared.len());
    let partial = EventSchemas::new(&good.service, &without).unwrap();
    assert!(
        partial
            .check(&good)
            .unwrap_err()
            .contains("declares no schema")
    );

    // A declaration whose schema is not JSON, not a schema, or twice, is refused.
    let t = declared[0];
    let not_json = EventType { schema: "{", ..t };
    assert!(
        EventSchemas::new("x", &[not_json])
            .unwrap_err()
            .contains("not JSON")
    );
    let not_a_schema = EventType {
        schema: r#"{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": 5}"#,
        ..t
    };
    assert!(
        EventSchemas::new("x", &[not_a_schema])
            .unwrap_err()
            .contains("not a valid schema")
    );
    let older_draft = EventType {
        schema: r#"{"$schema": "http://json-schema.org/draft-07/schema#"}"#,
        ..t
    };
    assert!(
        EventSchemas::new("x", &[older_draft])
            .unwrap_err()
            .contains("2020-12")
    );
    assert!(
        EventSchemas::new("x", &[t, t])
            .unwrap_err()
            .contains("twice")
    );
}
