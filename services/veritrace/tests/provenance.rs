//! Provenance through the EPCIS 2.0 REST binding, as a trading partner uses it against
//! `veritrace up` (issue 19): GS1's own example documents captured and read back page by page,
//! the same event never stored twice, an invalid document storing nothing, the query
//! parameters on a fixture with known answers, and each EPCIS event's own receipt verified
//! offline.

mod common;

use common::deployment::{Deployment, one_deployment_at_a_time, wait_until};

use common::epcis::{Loaf, capture, document, member, organisation_key, with_check_digit};
use common::{agent, anchored_receipt, call, header_text, read_response, segment, up, verify_cli};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `../shared/conformance` beside the project (or `VERITRACE_CONFORMANCE_DIR`).
fn conformance() -> PathBuf {
    let dir = std::env::var_os("VERITRACE_CONFORMANCE_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
        PathBuf::from,
    );
    assert!(
        dir.join("epcis").is_dir(),
        "the conformance data is missing at {} (set VERITRACE_CONFORMANCE_DIR)",
        dir.display()
    );
    dir
}

/// Every GS1 example document: the `*.jsonld` of `epcis/` and of its example folders.
fn gs1_examples() -> Vec<(String, Vec<u8>)> {
    let root = conformance().join("epcis");
    let mut files = Vec::new();
    for folder in [
        "",
        "AssociationEvent",
        "WithDigitalLinkID",
        "WithErrorDeclaration",
        "WithFullCombinationOfFields",
        "WithSensorData",
    ] {
        let dir = root.join(folder);
        for entry in std::fs::read_dir(&dir).expect("example folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "jsonld") {
                let name = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.push((name, std::fs::read(&path).expect("example")));
            }
        }
    }
    files.sort();
    assert!(files.len() >= 40, "only {} GS1 examples found", files.len());
    files
}

/// The reference implementation's canonical hash of each event of each GS1 example, by file
/// and index (`event-hash/derived-gs1-examples-hashes.json`).
fn reference_hashes() -> BTreeMap<(String, usize), String> {
    let path = conformance().join("epcis/event-hash/derived-gs1-examples-hashes.json");
    let d: Value = serde_json::from_slice(&std::fs::read(path).expect("hashes")).expect("json");
    let mut hashes = BTreeMap::new();
    for file in d["files"].as_array().expect("files") {
        for e in file["events"].as_array().into_iter().flatten() {
            if let Some(h) = e["canonical_hash_cbv20_sha256"].as_str() {
                let name = file["file"].as_str().expect("file").to_owned();
                hashes.insert(
                    (name, e["index"].as_u64().expect("index") as usize),
                    h.to_owned(),
                );
            }
        }
    }
    hashes
}

/// A member organisation's key, made with `admin`'s.
/// `GET` a path: status, the `Link` header and the body.
fn get(base: &str, key: &str, path: &str) -> (u16, String, Value) {
    let mut resp = agent()
        .get(&format!("{}{path}", base))
        .header("Authorization", &format!("Bearer {key}"))
        .call()
        .expect("get");
    let link = header_text(&resp, "link");
    let (status, _, body) = read_response(&mut resp);
    (status, link, body)
}

/// Every event `GET /events?{query}` answers, following `Link: rel="next"` page by page.
fn all_events(base: &str, key: &str, query: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut path = format!("/events?{query}");
    for _ in 0..10_000 {
        let (status, link, doc) = get(base, key, &path);
        assert_eq!(status, 200, "{path}: {doc}");
        assert_eq!(doc["type"], "EPCISQueryDocument", "{doc}");
        let page = doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            .as_array()
            .expect("eventList")
            .clone();
        events.extend(page);
        let Some(next) = link
            .strip_prefix('<')
            .and_then(|l| l.split_once(">; rel=\"next\""))
            .map(|(url, _)| url.to_owned())
        else {
            return events;
        };
        path = next;
    }
    panic!("paging never ends");
}

/// Whether two JSON values hold the same members and values: numbers by value (`26.0` is
/// `26`), times by instant (a member named like a time whose texts parse as RFC 3339).
fn same_content(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) => {
            x == y
                || matches!(
                    (chrono::DateTime::parse_from_rfc3339(x), chrono::DateTime::parse_from_rfc3339(y)),
                    (Ok(s), Ok(t)) if s == t
                )
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(s, t)| same_content(s, t))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_content(v, w)))
        }
        _ => a == b,
    }
}

/// The GS1 examples an EPCIS repository cannot hold together: each reuses an eventID of an
/// earlier file (in name order) for another event, which the platform refuses, as an eventID
/// names one event for good. They are captured into a second repository.
const REUSED_EVENT_IDS: &[&str] = &[
    "Example-Type-sourceOrDestination,measurement,bizTransaction.jsonld",
    "WithFullCombinationOfFields/object_event_all_possible_fields.jsonld",
    "WithSensorData/SensorDataExample17.jsonld",
];

/// Captures `examples` into `p`, expecting each to succeed, and returns the events stored,
/// by eventID, as captured (with the eventID the platform named it by).
fn capture_examples(
    base: &str,
    key: &str,
    examples: &[&(String, Vec<u8>)],
) -> BTreeMap<String, Value> {
    let hashes = reference_hashes();
    let mut expected = BTreeMap::new();
    for (name, body) in examples {
        let (status, location, job) = capture(base, key, body, None);
        assert_eq!(status, 202, "{name}: {job}");
        assert_eq!(
            location,
            format!("/capture/{}", job["captureID"].as_str().unwrap())
        );
        assert_eq!(job["success"], true, "{name}: {job}");
        assert_eq!(job["running"], false);
        let (status, _, again) = get(base, key, &location);
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["success"], true);
        let doc: Value = serde_json::from_slice(body).expect("example json");
        let list = doc["epcisBody"]["eventList"]
            .as_array()
            .or_else(|| doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"].as_array())
            .expect("events");
        for (i, event) in list.iter().enumerate() {
            let mut event = event.clone();
            let id = match event["eventID"].as_str() {
                Some(id) => id.to_owned(),
                None => {
                    // Named by its canonical hash: the reference implementation's, where it
                    // could compute one (services/epcis/tests/event_hash.rs pins the others).
                    let captured = job["captured"].as_array().expect("captured");
                    let h = match hashes.get(&(name.clone(), i)) {
                        Some(h) => h.clone(),
                        None if captured.len() == list.len() => {
                            captured[i].as_str().expect("id").to_owned()
                        }
                        None => panic!("{name} event {i}: no name to expect"),
                    };
                    assert!(
                        h.starts_with("ni:///sha-256;") && h.ends_with("?ver=CBV2.0"),
                        "{h}"
                    );
                    event["eventID"] = json!(h);
                    h
                }
            };
            // Stored by this job, or recognised as stored before (the same event under
            // another eventID: the same canonical hash).
            if job["captured"].as_array().unwrap().contains(&json!(id)) {
                expected.insert(id, event);
            }
        }
        let captured = job["captured"].as_array().unwrap().len();
        let already = job["alreadyCaptured"].as_array().unwrap();
        assert_eq!(captured + already.len(), list.len(), "{name}: {job}");
        for id in already {
            assert!(
                expected.contains_key(id.as_str().unwrap()),
                "{name}: {id} stored before"
            );
        }
    }
    expected
}

/// Every event `p` serves is one of `expected`, with the same content, and every one of
/// `expected` is served.
fn assert_served(base: &str, key: &str, expected: &BTreeMap<String, Value>) {
    let served = all_events(base, key, "perPage=7");
    assert_eq!(
        served.len(),
        expected.len(),
        "one served event per captured event"
    );
    for mut event in served {
        let id = event["eventID"].as_str().expect("eventID").to_owned();
        let record_time = event
            .as_object_mut()
            .and_then(|m| m.remove("recordTime"))
            .expect("recordTime");
        assert!(chrono::DateTime::parse_from_rfc3339(record_time.as_str().unwrap()).is_ok());
        let mut want = expected
            .get(&id)
            .unwrap_or_else(|| panic!("{id} was not captured"))
            .clone();
        want.as_object_mut().unwrap().remove("recordTime");
        assert!(
            same_content(&event, &want),
            "{id}:\nserved {event}\ncaptured {want}"
        );
    }
}

/// The GS1 examples that are themselves invalid, refused with the exact reason: the status,
/// the field and what the reason says.
const INVALID_EXAMPLES: &[(&str, u16, &str, &str)] = &[
    // Its one event carries `eventID` twice (a `ni:///` hash and a `urn:uuid:`): a JSON
    // parser would silently keep one of them, and which one names the event. The platform's
    // JSON edge refuses duplicate keys in any body.
    (
        "AssociationEvent/AssociationEvent-h.jsonld",
        422,
        "epcisBody.eventList[0].eventID",
        "duplicate key",
    ),
    // Its @context redefines `cbvmda`, a term the EPCIS context protects, which JSON-LD
    // forbids (a JSON-LD processor refuses the document), and then uses `cbvmda:` members,
    // whose meaning is thereby contradictory: their canonical event hash cannot be computed.
    (
        "WithFullCombinationOfFields/transformation_event_all_possible_fields.jsonld",
        202,
        "",
        "cbvmda",
    ),
];

/// Captures each invalid example into `p` and checks it is refused for its reason, nothing of
/// it stored.
fn assert_invalid_examples_refused(base: &str, key: &str, examples: &[&(String, Vec<u8>)]) {
    for (name, body) in examples {
        let (_, status, field, says) = INVALID_EXAMPLES
            .iter()
            .find(|(n, ..)| n == name)
            .expect("a known invalid example");
        let (got, _, answer) = capture(base, key, body, None);
        assert_eq!(got, *status, "{name}: {answer}");
        let errors = answer["errors"].as_array().expect("errors");
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == *field
                    && e["message"].as_str().is_some_and(|m| m.contains(says))),
            "{name}: {answer}"
        );
        if *status == 202 {
            assert_eq!(answer["success"], false, "{name}: {answer}");
            assert_eq!(answer["captured"], json!([]), "{name}: {answer}");
        }
    }
}

#[test]
fn every_gs1_example_is_captured_and_read_back_page_by_page_as_captured() {
    let examples = gs1_examples();
    let (invalid, valid): (Vec<_>, Vec<_>) = examples
        .iter()
        .partition(|(name, _)| INVALID_EXAMPLES.iter().any(|(n, ..)| n == name));
    assert_eq!(invalid.len(), INVALID_EXAMPLES.len());
    let (first, second): (Vec<_>, Vec<_>) = valid
        .into_iter()
        .partition(|(name, _)| !REUSED_EVENT_IDS.contains(&name.as_str()));
    assert_eq!(second.len(), REUSED_EVENT_IDS.len());

    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &[]);
    let key = member(&p.url, p.key.as_deref().unwrap(), "Grower");
    let expected = capture_examples(&p.url, &key, &first);
    assert_served(&p.url, &key, &expected);
    // The files that reuse an eventID for other content: refused here, naming the event.
    for (name, body) in &second {
        let (status, _, job) = capture(&p.url, &key, body, None);
        assert_eq!(status, 202);
        assert_eq!(job["success"], false, "{name}: {job}");
        assert_eq!(job["captured"], json!([]), "rollback stores nothing: {job}");
        let errors = job["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["field"] == "/eventID"
                && e["message"].as_str().unwrap().contains("other content")),
            "{name}: {job}"
        );
    }
    assert_invalid_examples_refused(&p.url, &key, &invalid);
    assert_served(&p.url, &key, &expected);

    let dir2 = tempfile::tempdir().unwrap();
    let p2 = up(dir2.path(), &[]);
    let key2 = member(&p2.url, p2.key.as_deref().unwrap(), "Grower");
    let expected2 = capture_examples(&p2.url, &key2, &second);
    assert_served(&p2.url, &key2, &expected2);
}

/// A small document: ObjectEvents each naming one SGTIN, with `extra` members.
fn object_event(serial: &str, event_time: &str, extra: Value) -> Value {
    let mut e = json!({
        "type": "ObjectEvent",
        "eventTime": event_time,
        "eventTimeZoneOffset": "+01:00",
        "epcList": [format!("urn:epc:id:sgtin:4012345.011111.{serial}")],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        e[k] = v.clone();
    }
    e
}

fn event_ids(base: &str, key: &str, query: &str) -> Vec<String> {
    all_events(base, key, query)
        .iter()
        .map(|e| e["eventID"].as_str().expect("eventID").to_owned())
        .collect()
}

#[test]
fn the_same_event_is_stored_once_and_an_invalid_document_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &[]);
    let key = member(&p.url, p.key.as_deref().unwrap(), "Packer");
    let named = object_event(
        "1",
        "2026-11-30T08:00:00+01:00",
        json!({"eventID": "urn:uuid:9b3c0d6e-1a2b-4c3d-8e4f-000000000001"}),
    );
    let unnamed = object_event(
        "2",
        "2026-11-30T09:00:00+01:00",
        json!({"example:lot": "L-7"}),
    );
    let (status, _, job) = capture(
        &p.url,
        &key,
        &document(vec![named.clone(), unnamed.clone()]),
        None,
    );
    assert_eq!((status, &job["success"]), (202, &json!(true)), "{job}");
    let stored = event_ids(&p.url, &key, "");
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0], "urn:uuid:9b3c0d6e-1a2b-4c3d-8e4f-000000000001");
    assert!(stored[1].starts_with("ni:///sha-256;") && stored[1].ends_with("?ver=CBV2.0"));

    // Again, whole: both recognised, nothing new.
    let (_, _, job) = capture(
        &p.url,
        &key,
        &document(vec![named.clone(), unnamed.clone()]),
        None,
    );
    assert_eq!(job["success"], true, "{job}");
    assert_eq!(job["captured"], json!([]));
    assert_eq!(job["alreadyCaptured"], json!(stored));
    // The unnamed event under an eventID of its own: the same canonical hash, the same event.
    let mut renamed = unnamed.clone();
    renamed["eventID"] = json!("urn:uuid:9b3c0d6e-1a2b-4c3d-8e4f-000000000099");
    let (_, _, job) = capture(&p.url, &key, &document(vec![renamed]), None);
    assert_eq!(job["alreadyCaptured"], json!([stored[1]]), "{job}");
    // The named event's id on other content: refused, naming it.
    let mut other = named.clone();
    other["bizStep"] = json!("receiving");
    let (_, _, job) = capture(&p.url, &key, &document(vec![other]), None);
    assert_eq!(job["success"], false);
    assert_eq!(job["errors"][0]["eventIndex"], 0);
    assert_eq!(job["errors"][0]["field"], "/eventID");
    assert_eq!(event_ids(&p.url, &key, ""), stored, "nothing new stored");

    // One invalid event rejects the document: nothing of it is stored.
    let good = object_event("3", "2026-11-30T10:00:00+01:00", json!({}));
    let bad = object_event(
        "4",
        "2026-11-30T11:00:00+01:00",
        json!({"bizStep": "juggling"}),
    );
    let (status, location, job) = capture(
        &p.url,
        &key,
        &document(vec![good.clone(), bad.clone()]),
        None,
    );
    assert_eq!(status, 202);
    assert_eq!(job["success"], false);
    assert_eq!(job["captureErrorBehaviour"], "rollback");
    assert_eq!(job["errors"].as_array().unwrap().len(), 1, "{job}");
    assert_eq!(job["errors"][0]["eventIndex"], 1);
    assert_eq!(job["errors"][0]["field"], "/bizStep");
    assert_eq!(event_ids(&p.url, &key, ""), stored, "nothing of it stored");
    let (_, _, again) = get(&p.url, &key, &location);
    assert_eq!(again["errors"], job["errors"]);
    // Under `proceed`: the valid one is stored, the other reported.
    let (_, _, job) = capture(&p.url, &key, &document(vec![good, bad]), Some("proceed"));
    assert_eq!(job["success"], false);
    assert_eq!(job["captured"].as_array().unwrap().len(), 1, "{job}");
    assert_eq!(event_ids(&p.url, &key, "").len(), 3);
    // Not an EPCIS document, a bad header, another organisation's view.
    let (status, _, problem) = capture(&p.url, &key, br#"{"type": "Invoice"}"#, None);
    assert_eq!(status, 422, "{problem}");
    let (status, _, problem) = capture(&p.url, &key, &document(vec![]), Some("sometimes"));
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "GS1-Capture-Error-Behaviour");
    let stranger = member(&p.url, p.key.as_deref().unwrap(), "Stranger");
    assert_eq!(event_ids(&p.url, &stranger, ""), Vec::<String>::new());
    assert_eq!(get(&p.url, &stranger, &location).0, 404);
}

#[test]
fn query_parameters_select_exactly_the_right_events() {
    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &[]);
    let key = member(&p.url, p.key.as_deref().unwrap(), "Distributor");
    let id = |n: u32| format!("urn:uuid:5e1f2a3b-0000-4000-8000-{n:012}");
    let events = vec![
        object_event("1", "2026-11-01T08:00:00+01:00", json!({"eventID": id(1)})),
        object_event(
            "2",
            "2026-11-02T08:00:00+01:00",
            json!({"eventID": id(2), "bizStep": "receiving", "disposition": "in_progress", "action": "ADD"}),
        ),
        object_event(
            "3",
            "2026-11-03T08:00:00+01:00",
            json!({"eventID": id(3), "readPoint": {"id": "urn:epc:id:sgln:4012345.00002.0"}, "bizLocation": {"id": "urn:epc:id:sgln:4012345.00002.0"}}),
        ),
        json!({
            "eventID": id(4), "type": "AggregationEvent", "eventTime": "2026-11-04T08:00:00+01:00",
            "eventTimeZoneOffset": "+01:00", "action": "ADD", "bizStep": "packing",
            "parentID": "urn:epc:id:sscc:4012345.0000000001",
            "childEPCs": ["urn:epc:id:sgtin:4012345.011111.1", "urn:epc:id:sgtin:4012345.011111.2"],
        }),
        json!({
            "eventID": id(5), "type": "TransformationEvent", "eventTime": "2026-11-05T08:00:00+01:00",
            "eventTimeZoneOffset": "+01:00", "bizStep": "commissioning",
            "inputEPCList": ["urn:epc:id:sgtin:4012345.011111.3"],
            "outputEPCList": ["urn:epc:id:sgtin:4012345.099999.10"],
        }),
    ];
    let (_, _, job) = capture(&p.url, &key, &document(events), None);
    assert_eq!(job["success"], true, "{job}");
    let ids = |ns: &[u32]| ns.iter().map(|n| id(*n)).collect::<Vec<_>>();
    for (query, want) in [
        ("", ids(&[1, 2, 3, 4, 5])),
        ("eventType=ObjectEvent", ids(&[1, 2, 3])),
        (
            "eventType=AggregationEvent|TransformationEvent",
            ids(&[4, 5]),
        ),
        (
            "GE_eventTime=2026-11-02T07:00:00Z&LT_eventTime=2026-11-04T07:00:00Z",
            ids(&[2, 3]),
        ),
        (
            "GE_eventTime=2026-11-02T08:00:00%2B01:00",
            ids(&[2, 3, 4, 5]),
        ),
        ("LT_recordTime=2000-01-01T00:00:00Z", ids(&[])),
        ("GE_recordTime=2000-01-01T00:00:00Z", ids(&[1, 2, 3, 4, 5])),
        ("EQ_bizStep=shipping", ids(&[1, 3])),
        (
            "EQ_bizStep=urn:epcglobal:cbv:bizstep:receiving|packing",
            ids(&[2, 4]),
        ),
        ("EQ_disposition=in_progress", ids(&[2])),
        ("EQ_action=ADD", ids(&[2, 4])),
        ("EQ_readPoint=urn:epc:id:sgln:4012345.00002.0", ids(&[3])),
        ("EQ_bizLocation=urn:epc:id:sgln:4012345.00002.0", ids(&[3])),
        ("MATCH_epc=urn:epc:id:sgtin:4012345.011111.1", ids(&[1, 4])),
        (
            "MATCH_epc=urn:epc:idpat:sgtin:4012345.011111.*",
            ids(&[1, 2, 3, 4]),
        ),
        (
            "MATCH_anyEPC=urn:epc:id:sgtin:4012345.011111.3",
            ids(&[3, 5]),
        ),
        ("MATCH_anyEPC=urn:epc:id:sscc:4012345.0000000001", ids(&[4])),
        (
            "MATCH_parentID=urn:epc:id:sscc:4012345.0000000001",
            ids(&[4]),
        ),
        (
            "MATCH_inputEPC=urn:epc:id:sgtin:4012345.011111.3",
            ids(&[5]),
        ),
        (
            "MATCH_outputEPC=urn:epc:idpat:sgtin:4012345.099999.*",
            ids(&[5]),
        ),
        (
            "EQ_eventID=urn:uuid:5e1f2a3b-0000-4000-8000-000000000002",
            ids(&[2]),
        ),
        (
            "eventType=ObjectEvent&EQ_bizStep=shipping&MATCH_epc=urn:epc:id:sgtin:4012345.011111.3",
            ids(&[3]),
        ),
        ("perPage=1", ids(&[1, 2, 3, 4, 5])),
    ] {
        assert_eq!(event_ids(&p.url, &key, query), want, "{query}");
    }
    let (status, link, _) = get(&p.url, &key, "/events?perPage=2&eventType=ObjectEvent");
    assert_eq!(status, 200);
    assert!(
        link.contains("nextPageToken=") && link.contains("eventType=ObjectEvent"),
        "{link}"
    );

    for (query, field) in [
        ("eventType=Thing", "eventType"),
        ("GE_eventTime=yesterday", "GE_eventTime"),
        ("EQ_action=LOOK", "EQ_action"),
        ("perPage=0", "perPage"),
        ("nextPageToken=zz", "nextPageToken"),
        ("EQ_color=red", "EQ_color"),
    ] {
        let (status, _, problem) = get(&p.url, &key, &format!("/events?{query}"));
        assert_eq!(status, 400, "{query}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }

    // One event, its receipt named; the event types; one EPC's events; the vocabularies.
    let (status, link, doc) = get(&p.url, &key, &format!("/events/{}", segment(&id(2))));
    assert_eq!(status, 200, "{doc}");
    assert!(link.contains("rel=\"receipt\""), "{link}");
    assert_eq!(
        doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]["eventID"],
        id(2)
    );
    assert_eq!(get(&p.url, &key, "/events/urn%3Auuid%3Anone").0, 404);
    let (_, _, types) = get(&p.url, &key, "/eventTypes");
    assert_eq!(
        types,
        json!(["AggregationEvent", "ObjectEvent", "TransformationEvent"])
    );
    let (_, _, doc) = get(
        &p.url,
        &key,
        "/epcs/urn%3Aepc%3Aid%3Asgtin%3A4012345.011111.3/events",
    );
    let listed: Vec<&str> = doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventID"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [id(3), id(5)]);
    let (_, _, steps) = get(&p.url, &key, "/bizSteps");
    assert!(steps.as_array().unwrap().contains(&json!("shipping")));
    let (_, _, dispositions) = get(&p.url, &key, "/dispositions");
    assert!(
        dispositions
            .as_array()
            .unwrap()
            .contains(&json!("in_transit"))
    );
}

#[test]
fn each_epcis_event_has_its_own_receipt_which_verifies_offline() {
    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &[]);
    let key = member(&p.url, p.key.as_deref().unwrap(), "Mill");
    let events: Vec<Value> = (1..=3)
        .map(|i| object_event(&i.to_string(), "2026-11-30T08:00:00+01:00", json!({})))
        .collect();
    let (_, _, job) = capture(&p.url, &key, &document(events), None);
    assert_eq!(job["success"], true, "{job}");
    let genesis = dir.path().join("chain").join("genesis.json");
    let mut receipts = std::collections::BTreeSet::new();
    for event_id in job["captured"].as_array().unwrap() {
        let encoded = segment(event_id.as_str().unwrap());
        let (status, link, _) = get(&p.url, &key, &format!("/events/{encoded}"));
        assert_eq!(status, 200);
        let receipt_path = link
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .map(|(u, _)| u.to_owned())
            .expect("a receipt link");
        let record_id = receipt_path.rsplit('/').next().unwrap().to_owned();
        assert!(receipts.insert(record_id.clone()), "one receipt per event");
        let receipt =
            anchored_receipt(&p, &key, &record_id, Duration::from_secs(20)).expect("anchored");
        let file = dir.path().join(format!("{record_id}.json"));
        std::fs::write(&file, &receipt).unwrap();
        let (code, out) = verify_cli(&file, &genesis, &[]);
        assert_eq!(code, 0, "{out}");
        let parsed: Value = serde_json::from_slice(&receipt).unwrap();
        assert_eq!(parsed["event"]["payload"]["event_id"], *event_id);
    }
    assert_eq!(receipts.len(), 3);
}

/// An error declaration (EPCIS 2.0 §7.4.1.2: the event again, under its eventID, with
/// `errorDeclaration`) follows the event it declares erroneous: the event is served as
/// declared, with the declaration's own receipt; declaring it again changes nothing.
#[test]
fn an_error_declaration_follows_its_event_and_is_served_in_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &[]);
    let key = member(&p.url, p.key.as_deref().unwrap(), "Cooperative");
    let id = "urn:uuid:7a1b2c3d-0000-4000-8000-00000000d001";
    let event = object_event("9", "2026-11-30T08:00:00+01:00", json!({"eventID": id}));
    let (_, _, job) = capture(&p.url, &key, &document(vec![event.clone()]), None);
    assert_eq!(job["captured"], json!([id]), "{job}");
    let (_, before, _) = get(&p.url, &key, &format!("/events/{}", segment(id)));

    let mut declaration = event.clone();
    declaration["errorDeclaration"] = json!({
        "declarationTime": "2026-12-01T09:00:00+01:00",
        "reason": "incorrect_data",
        "correctiveEventIDs": ["urn:uuid:7a1b2c3d-0000-4000-8000-00000000d002"],
    });
    let (_, _, job) = capture(&p.url, &key, &document(vec![declaration.clone()]), None);
    assert_eq!(
        (&job["success"], &job["captured"]),
        (&json!(true), &json!([id])),
        "{job}"
    );
    let (status, after, doc) = get(&p.url, &key, &format!("/events/{}", segment(id)));
    assert_eq!(status, 200);
    let served = &doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0];
    assert_eq!(
        served["errorDeclaration"]["reason"], "incorrect_data",
        "{doc}"
    );
    assert_ne!(before, after, "the declaration has a receipt of its own");
    assert_eq!(all_events(&p.url, &key, "").len(), 1, "still one event");
    // The same declaration again is the same event: nothing new.
    let (_, _, job) = capture(&p.url, &key, &document(vec![declaration]), None);
    assert_eq!(
        (&job["captured"], &job["alreadyCaptured"]),
        (&json!([]), &json!([id])),
        "{job}"
    );
}

/// `veritrace serve provenance` on PostgreSQL and RabbitMQ: GS1 examples captured, read back
/// page by page as captured, the same document again stored once, and every EPCIS event
/// anchored by the anchoring service, its receipt served there.
#[test]
fn distributed_capture_and_query_on_postgresql_with_every_event_anchored() {
    let _one = one_deployment_at_a_time();
    let Some(mut d) = Deployment::new() else {
        return;
    };
    for service in ["identity", "anchor"] {
        d.start(service);
    }
    // The provenance service reads its events' receipts from the anchor with an auditor's key,
    // to verify them for its product pages.
    let auditor = organisation_key(&d.url("identity"), &d.key(), "Pages", "auditor");
    d.env.insert(
        "provenance",
        vec![("VERITRACE_HTTP__RECEIPTS_API_KEY".into(), auditor)],
    );
    d.start("provenance");
    let base = d.url("provenance");
    let key = member(&d.url("identity"), &d.key(), "Grower");
    let examples = gs1_examples();
    let chosen: Vec<&(String, Vec<u8>)> = examples
        .iter()
        .filter(|(name, _)| {
            [
                "Example_9.6.1-ObjectEvent.jsonld",
                "Example_9.6.3-AggregationEvent.jsonld",
                "Example_9.6.4-TransformationEvent.jsonld",
                "WithSensorData/SensorDataExample1.jsonld",
                "WithDigitalLinkID/Example_9.6.2-ObjectEventWithDigitalLink.jsonld",
            ]
            .contains(&name.as_str())
        })
        .collect();
    assert_eq!(chosen.len(), 5);
    let expected = capture_examples(&base, &key, &chosen);
    assert_served(&base, &key, &expected);
    let (_, _, job) = capture(&base, &key, &chosen[0].1, None);
    assert_eq!(job["captured"], json!([]), "{job}");
    // A query on PostgreSQL: the events naming one EPC in epcList or childEPCs.
    let epc = "urn:epc:id:sgtin:0614141.107346.2017";
    let naming: Vec<String> = expected
        .iter()
        .filter(|(_, e)| {
            ["epcList", "childEPCs"]
                .iter()
                .any(|m| e[*m].as_array().is_some_and(|l| l.contains(&json!(epc))))
        })
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!naming.is_empty());
    let mut found = event_ids(&base, &key, &format!("MATCH_epc={epc}"));
    found.sort();
    assert_eq!(found, naming);

    // Every EPCIS event's receipt, at the anchor, anchored.
    let agent = agent();
    for event_id in expected.keys() {
        let (status, link, _) = get(&base, &key, &format!("/events/{}", segment(event_id)));
        assert_eq!(status, 200);
        let receipt_url = link
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .map(|(u, _)| u.to_owned())
            .expect("a receipt link");
        assert!(receipt_url.starts_with(&d.url("anchor")), "{receipt_url}");
        wait_until(
            Duration::from_secs(30),
            "the receipt is anchored",
            || {
                let mut resp = agent
                    .get(&receipt_url)
                    .header("Authorization", &format!("Bearer {key}"))
                    .call()
                    .ok()?;
                let (status, _, v) = read_response(&mut resp);
                (status == 200 && v["status"] == "anchored").then_some(())
            },
            || d.logs(),
        );
    }

    // The product page, published by the grower, verifies each receipt it fetched from the
    // anchor; a receipt downloads from the page.
    let gtin = "10614141073464";
    let body = json!({"published": true}).to_string();
    let url = format!("{base}/products/{gtin}/publication");
    let (status, _, v) = call("PUT", &url, Some(&key), Some(body.as_bytes()));
    assert_eq!(status, 200, "{v}");
    let page = agent
        .get(&format!("{base}/01/{gtin}/21/2017"))
        .header("Accept", "text/html")
        .call()
        .expect("the page")
        .body_mut()
        .read_to_string()
        .expect("html");
    let shown = page.matches(r#"data-check="event""#).count();
    assert!(shown > 0, "{page}");
    assert_eq!(
        page.matches(r#"data-state="verified""#).count(),
        shown,
        "{page}"
    );
    let href = page
        .split("?receipt=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a receipt link");
    let mut resp = agent
        .get(&format!("{base}/01/{gtin}/21/2017?receipt={href}"))
        .call()
        .expect("the receipt");
    let (status, _, receipt) = read_response(&mut resp);
    assert_eq!((status, &receipt["status"]), (200, &json!("anchored")));
}

/// `veritrace bench provenance`: capture documents captured until every event (and each
/// job's outcome) is anchored, each sampled EPCIS event found anchored after its capture's
/// answer, and the evidence bench run beside it with the same load.
#[test]
fn bench_provenance_reports_both_domains_in_one_run() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_veritrace"))
        .args(["bench", "provenance", "--events", "600", "--batch", "200"])
        .args(["--concurrency", "2", "--json"])
        .output()
        .expect("run veritrace bench provenance");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .expect("the last line is the JSON report");
    for (domain, part) in [
        ("provenance", &report["provenance"]),
        ("evidence", &report["evidence"]),
    ] {
        assert_eq!(part["domain"], domain, "{report}");
        assert_eq!(part["events"], 600, "{report}");
        assert_eq!(part["batch"], 200, "{report}");
        assert_eq!(
            part["samples"], 600,
            "every event sampled and found anchored: {report}"
        );
        assert!(
            part["end_to_end_secs"].as_f64().unwrap_or(0.0) > 0.0,
            "{report}"
        );
    }
    assert!(stdout.contains("x the evidence bench's"), "{stdout}");
}

/// A GS1 check digit appended to `body` (mod 10, weights 3 and 1 from the right).
/// A loaf's history: its own events under either spelling of its key (SGTIN URN, Digital
/// Link), the pallet it was packed on and that pallet's shipping, the flour lot it was baked
/// from; nothing of another product. Its Digital Link resolves to a linkset; a GTIN with a
/// wrong check digit, or one no event names, is not found.
#[test]
fn a_products_history_follows_its_container_and_its_ingredients() {
    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &[]);
    let key = member(&p.url, p.key.as_deref().unwrap(), "Bakery");
    let Loaf {
        gtin,
        loaf,
        loaf_link,
        ids,
        document,
    } = Loaf::journey();
    let id = |n: usize| ids[n - 1].clone();
    let (_, _, job) = capture(&p.url, &key, &document, None);
    assert_eq!(job["success"], true, "{job}");

    for product in [loaf.to_string(), loaf_link.clone()] {
        let query = format!("product={}", segment(&product));
        let (status, _, history) = get(&p.url, &key, &format!("/traceability?{query}"));
        assert_eq!(status, 200, "{history}");
        assert_eq!(history["digitalLink"], json!(loaf_link));
        let seen: Vec<(String, String, u64)> = history["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["event"]["eventID"].as_str().unwrap().to_owned(),
                    e["relation"].as_str().unwrap().to_owned(),
                    e["depth"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (id(1), "transformed_from".into(), 1),
                (id(2), "product".into(), 0),
                (id(3), "product".into(), 0),
                (id(4), "aggregated_into".into(), 1),
                (id(5), "product".into(), 0),
            ],
            "{history}"
        );
        for e in history["events"].as_array().unwrap() {
            assert!(e["receiptUrl"].as_str().unwrap().starts_with("/receipts/"));
        }
    }
    // Another organisation reads nothing of it.
    let stranger = member(&p.url, p.key.as_deref().unwrap(), "Stranger");
    let query = format!("product={}", segment(loaf));
    assert_eq!(
        get(&p.url, &stranger, &format!("/traceability?{query}")).0,
        404
    );

    // The Digital Link resolves, publicly, to a linkset, once the brand owner has published
    // the product: not before.
    let resolve = format!("{}/01/{gtin}/21/B1", p.url);
    assert_eq!(call("GET", &resolve, None, None).0, 404);
    let publish = json!({"published": true}).to_string();
    let url = format!("{}/products/{gtin}/publication", p.url);
    assert_eq!(
        call("PUT", &url, Some(&key), Some(publish.as_bytes())).0,
        200
    );
    let mut resp = agent()
        .get(&format!("{}/01/{gtin}/21/B1", p.url))
        .call()
        .expect("resolve");
    let (status, ctype, linkset) = read_response(&mut resp);
    assert_eq!(status, 200, "{linkset}");
    assert_eq!(ctype, "application/linkset+json");
    assert_eq!(linkset["linkset"][0]["anchor"], json!(loaf_link));
    assert!(
        linkset["linkset"][0]["https://gs1.org/voc/traceability"][0]["href"]
            .as_str()
            .unwrap()
            .starts_with("/traceability?product=")
    );
    let wrong_check = format!("{}{}", &gtin[..13], (gtin.as_bytes()[13] - b'0' + 1) % 10);
    for (path, status) in [
        (format!("/01/{gtin}"), 200),
        (format!("/01/{wrong_check}/21/B1"), 404),
        (
            format!("/01/{}/21/B1", with_check_digit("0401234599999")),
            404,
        ),
        (format!("/01/{gtin}/21/B2"), 404),
    ] {
        let mut resp = agent()
            .get(&format!("{}{path}", p.url))
            .call()
            .expect("get");
        let (got, ctype, body) = read_response(&mut resp);
        assert_eq!(got, status, "{path}: {body}");
        if status != 200 {
            assert_eq!(ctype, "application/problem+json", "{path}");
        }
    }
}

/// The same document captured by eight partners' requests at once, half of its events
/// without an eventID: each event is stored exactly once, and every job says so (each event
/// captured by one job, recognised as captured before by the others).
#[test]
fn concurrent_captures_of_the_same_events_store_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &[]);
    let key = member(&p.url, p.key.as_deref().unwrap(), "Packhouse");
    let events: Vec<Value> = (0..20)
        .map(|i| {
            let extra = if i % 2 == 0 {
                json!({"eventID": format!("urn:uuid:6b2a1c00-0000-4000-8000-{i:012}")})
            } else {
                json!({})
            };
            object_event(&format!("R{i}"), "2026-11-30T08:00:00+01:00", extra)
        })
        .collect();
    let body = document(events);
    let jobs: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| capture(&p.url, &key, &body, None)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let (status, _, job) = h.join().expect("a client");
                assert_eq!(status, 202, "{job}");
                job
            })
            .collect()
    });
    let stored = event_ids(&p.url, &key, "perPage=100");
    assert_eq!(stored.len(), 20, "each event stored once: {stored:?}");
    let mut captured_by = std::collections::BTreeMap::<String, usize>::new();
    for job in &jobs {
        assert_eq!(job["success"], true, "{job}");
        let captured = job["captured"].as_array().unwrap();
        let already = job["alreadyCaptured"].as_array().unwrap();
        assert_eq!(captured.len() + already.len(), 20, "{job}");
        for id in captured {
            *captured_by
                .entry(id.as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(captured_by.len(), 20, "every event captured by some job");
    assert!(captured_by.values().all(|n| *n == 1), "{captured_by:?}");
}

/// A capture shares its events with trading partners (`Veritrace-Share-With`): each of them
/// reads the events, with their receipts; another organisation does not; an unknown
/// organisation or a malformed list is refused and stores nothing.
#[test]
fn events_shared_at_capture_are_read_by_those_partners_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &[]);
    let admin = p.key.as_deref().unwrap();
    let grower = member(&p.url, admin, "Grower");
    let retailer = member(&p.url, admin, "Retailer");
    let stranger = member(&p.url, admin, "Stranger");
    let (_, _, me) = call(
        "GET",
        &format!("{}/organisations/me", p.url),
        Some(&retailer),
        None,
    );
    let retailer_id = me["organisation_id"].as_str().expect("id").to_owned();
    let share = |value: &str, serial: &str| {
        let body = document(vec![object_event(
            serial,
            "2026-11-30T08:00:00+01:00",
            json!({}),
        )]);
        let mut resp = agent()
            .post(&format!("{}/capture", p.url))
            .header("Content-Type", "application/ld+json")
            .header("Authorization", &format!("Bearer {grower}"))
            .header("Veritrace-Share-With", value)
            .send(&body[..])
            .expect("capture");
        read_response(&mut resp)
    };
    let (status, _, job) = share(&retailer_id, "S1");
    assert_eq!((status, &job["success"]), (202, &json!(true)), "{job}");
    let event_id = job["captured"][0].as_str().expect("an event").to_owned();
    let record = job["receiptUrls"][&event_id]
        .as_str()
        .expect("a receipt url")
        .to_owned();
    let path = format!("/events/{}", segment(&event_id));
    assert_eq!(
        get(&p.url, &retailer, &path).0,
        200,
        "shared with the retailer"
    );
    assert_eq!(get(&p.url, &stranger, &path).0, 404, "not with a stranger");
    assert!(
        anchored_receipt(
            &p,
            &retailer,
            record.rsplit('/').next().unwrap(),
            Duration::from_secs(20)
        )
        .is_some(),
        "the retailer reads its receipt too"
    );
    let unknown = "00000000-0000-4000-8000-000000000000";
    for (value, status) in [
        (unknown, 404),
        ("not-an-id", 422),
        (&format!("{retailer_id}, {retailer_id}")[..], 422),
    ] {
        let (got, _, v) = share(value, "S2");
        assert_eq!(got, status, "{value}: {v}");
    }
    // Nothing of the refused captures was stored.
    let (_, _, v) = get(
        &p.url,
        &grower,
        "/events?MATCH_epc=urn:epc:id:sgtin:4012345.011111.S2",
    );
    assert_eq!(
        v["epcisBody"]["queryResults"]["resultsBody"]["eventList"],
        json!([])
    );
}

/// The binding's resources by value: each event type, business step, disposition, read point,
/// business location and EPC has its events, with exactly the events of that value; the
/// listings name the values of the caller's events only.
#[test]
fn each_value_resource_holds_exactly_the_events_of_that_value() {
    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &[]);
    let admin = p.key.as_deref().unwrap();
    let key = member(&p.url, admin, "Packer");
    let stranger = member(&p.url, admin, "Stranger");
    let id = |n: u32| format!("urn:uuid:7a000000-0000-4000-8000-{n:012}");
    let at = |n: u32, rp: &str, loc: &str| {
        json!({"readPoint": {"id": format!("urn:epc:id:sgln:4012345.0000{rp}.0")},
               "bizLocation": {"id": format!("urn:epc:id:sgln:4012345.0000{loc}.0")},
               "eventID": id(n)})
    };
    let events = vec![
        object_event("V1", "2026-11-01T08:00:00+01:00", at(1, "1", "8")),
        object_event("V2", "2026-11-02T08:00:00+01:00", {
            let mut e = at(2, "2", "8");
            e["bizStep"] = json!("receiving");
            e["disposition"] = json!("in_progress");
            e
        }),
        json!({"eventID": id(3), "type": "AggregationEvent", "eventTime": "2026-11-03T08:00:00+01:00",
               "eventTimeZoneOffset": "+01:00", "action": "ADD", "bizStep": "packing",
               "parentID": "urn:epc:id:sscc:4012345.0000000042",
               "childEPCs": ["urn:epc:id:sgtin:4012345.011111.V1"]}),
    ];
    let (_, _, job) = capture(&p.url, &key, &document(events), None);
    assert_eq!(job["success"], true, "{job}");
    let ids = |path: &str| {
        let (status, _, v) = get(&p.url, &key, path);
        assert_eq!(status, 200, "{path}: {v}");
        v["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["eventID"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let sgln = |n: &str| segment(&format!("urn:epc:id:sgln:4012345.0000{n}.0"));
    for (path, expected) in [
        (
            "/eventTypes/ObjectEvent/events".to_string(),
            vec![id(1), id(2)],
        ),
        ("/eventTypes/AggregationEvent/events".into(), vec![id(3)]),
        ("/bizSteps/shipping/events".into(), vec![id(1)]),
        (
            format!(
                "/bizSteps/{}/events",
                segment("urn:epcglobal:cbv:bizstep:receiving")
            ),
            vec![id(2)],
        ),
        ("/dispositions/in_transit/events".into(), vec![id(1)]),
        (format!("/readPoints/{}/events", sgln("2")), vec![id(2)]),
        (
            format!("/bizLocations/{}/events", sgln("8")),
            vec![id(1), id(2)],
        ),
        (
            "/bizSteps/packing/events?eventType=ObjectEvent".into(),
            vec![],
        ),
    ] {
        assert_eq!(ids(&path), expected, "{path}");
    }
    for path in [
        "/eventTypes/ObjectEvent",
        "/bizSteps/shipping",
        "/dispositions/in_transit",
    ] {
        let (status, _, v) = get(&p.url, &key, path);
        assert_eq!((status, &v), (200, &json!(["events"])), "{path}");
    }
    assert_eq!(get(&p.url, &key, "/eventTypes/NoSuchEvent").0, 404);
    let (_, _, points) = get(&p.url, &key, "/readPoints");
    assert_eq!(
        points,
        json!([
            "urn:epc:id:sgln:4012345.00001.0",
            "urn:epc:id:sgln:4012345.00002.0"
        ])
    );
    let (_, _, epcs) = get(&p.url, &key, "/epcs");
    assert_eq!(
        epcs,
        json!([
            "urn:epc:id:sgtin:4012345.011111.V1",
            "urn:epc:id:sgtin:4012345.011111.V2",
            "urn:epc:id:sscc:4012345.0000000042"
        ])
    );
    // Another organisation's listings hold none of it.
    for path in ["/epcs", "/readPoints", "/bizLocations"] {
        assert_eq!(get(&p.url, &stranger, path).2, json!([]), "{path}");
    }
    let (status, _, _) = call(
        "DELETE",
        &format!("{}/nextPageToken/3", p.url),
        Some(&key),
        None,
    );
    assert_eq!(status, 204);
}

/// `POST /events` captures one event (201 with its `Location`; the same event again is not
/// stored twice; an invalid one is a 422 naming the field); `GET /capture` lists the caller's
/// jobs, page by page, and no one else's.
#[test]
fn one_event_is_captured_by_post_events_and_jobs_are_listed_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let p = up(dir.path(), &[]);
    let admin = p.key.as_deref().unwrap();
    let key = member(&p.url, admin, "Single");
    let stranger = member(&p.url, admin, "Stranger");
    let post_event = |event: &Value| {
        let mut resp = agent()
            .post(&format!("{}/events", p.url))
            .header("Content-Type", "application/ld+json")
            .header("Authorization", &format!("Bearer {key}"))
            .send(event.to_string().as_bytes())
            .expect("post");
        let location = header_text(&resp, "location");
        let (status, _, v) = read_response(&mut resp);
        (status, location, v)
    };
    let event = object_event("E1", "2026-11-30T08:00:00+01:00", json!({}));
    let (status, location, job) = post_event(&event);
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["captured"].as_array().map(Vec::len), Some(1), "{job}");
    let (status, _, found) = get(&p.url, &key, &location);
    assert_eq!(status, 200, "{location}: {found}");
    let (status, again, job) = post_event(&event);
    assert_eq!((status, &again), (201, &location), "{job}");
    assert_eq!(
        job["alreadyCaptured"].as_array().map(Vec::len),
        Some(1),
        "{job}"
    );
    let mut bad = event.clone();
    bad["bizStep"] = json!("no_such_step");
    bad["eventID"] = json!("urn:uuid:9b000000-0000-4000-8000-000000000001");
    let (status, _, problem) = post_event(&bad);
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["errors"].to_string().contains("bizStep"),
        "{problem}"
    );
    assert_eq!(
        get(
            &p.url,
            &key,
            &format!(
                "/events/{}",
                segment("urn:uuid:9b000000-0000-4000-8000-000000000001")
            )
        )
        .0,
        404
    );

    // Three jobs so far; a page of two, then the rest.
    let (status, link, first) = get(&p.url, &key, "/capture?perPage=2");
    assert_eq!(status, 200, "{first}");
    assert_eq!(first.as_array().map(Vec::len), Some(2));
    let next = link
        .strip_prefix('<')
        .and_then(|l| l.split_once('>'))
        .map(|(u, _)| u.to_owned())
        .expect("a next link");
    let (_, link, rest) = get(&p.url, &key, &next);
    assert_eq!(rest.as_array().map(Vec::len), Some(1), "{rest}");
    assert!(link.is_empty(), "no page after the last");
    assert_eq!(rest[0]["success"], false, "the invalid one, last");
    assert_eq!(get(&p.url, &stranger, "/capture").2, json!([]));
    assert_eq!(get(&p.url, &key, "/capture?perPage=0").0, 422);
}
