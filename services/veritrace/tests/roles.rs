//! Roles over the whole API (issue 17, acceptance 7): every operation of the OpenAPI document
//! answered for each kind of caller, as one explicit table; and API keys minted, rotated and
//! revoked over the API, a revoked key refused at once (embedded mode: one process).
//!
//! The callers: no key; the admin; member A's writer key and a reader key A's writer minted;
//! member B's writer (a party that may not read A's records); an auditor; a court.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// The callers of the matrix, in the order of [`expected`]'s rows.
const CALLERS: [&str; 7] = [
    "no key", "admin", "A writer", "A reader", "B writer", "auditor", "court",
];

/// What each caller gets from one operation of the OpenAPI document, in [`CALLERS`] order; None
/// for an operation this table does not know (the matrix test then fails: a new endpoint joins
/// the table). The path parameters are A's: its organisation, its record, that record's
/// registration event; a caller that may not see them gets the 404 of an unknown one.
#[rustfmt::skip]
fn expected(method: &str, path: &str) -> Option<[u16; 7]> {
    const PUBLIC: [u16; 7] = [200; 7];
    const KEYED: [u16; 7] = [401, 200, 200, 200, 200, 200, 200];
    Some(match (method, path) {
        //                                                                 none adm  A-w  A-r  B-w  aud  court
        ("post", "/organisations")                                      => [401, 201, 403, 403, 403, 403, 403],
        ("get",  "/organisations/me")                                   => [401, 200, 200, 200, 200, 200, 200],
        ("get",  "/organisations/{organisation_id}")                    => [401, 200, 200, 200, 404, 200, 200],
        ("get",  "/organisations/{organisation_id}/keys")               => [401, 200, 200, 200, 404, 404, 404],
        ("post", "/organisations/{organisation_id}/keys")               => [401, 201, 201, 403, 404, 404, 404],
        ("post", "/organisations/{organisation_id}/keys/{key_id}/revocation")
                                                                        => [401, 200, 200, 403, 404, 404, 404],
        ("get",  "/evidence")                                           => [401, 200, 200, 200, 200, 200, 200],
        ("post", "/evidence")                                           => [401, 201, 201, 403, 201, 403, 403],
        ("post", "/evidence/batch")                                     => [401, 201, 201, 403, 201, 403, 403],
        ("get",  "/evidence/{evidence_id}")                             => [401, 200, 200, 200, 404, 200, 200],
        ("get",  "/evidence/{evidence_id}/receipt")                     => [401, 200, 200, 200, 404, 200, 200],
        ("get",  "/cases/{case_reference}")                             => [401, 200, 200, 200, 404, 200, 200],
        ("post", "/evidence/{evidence_id}/withdrawal")                  => [401, 403, 200, 403, 404, 403, 403],
        ("post", "/evidence/{evidence_id}/sharing")                     => [401, 403, 200, 403, 404, 403, 403],
        ("get",  "/receipts/{event_id}")                                => [401, 200, 200, 200, 404, 200, 200],
        ("get",  "/receipts/by-digest/{event_digest}")                  => [401, 200, 200, 200, 404, 200, 200],
        ("get",  "/chain/head")                                         => PUBLIC,
        ("get",  "/chain/blocks")                                       => PUBLIC,
        ("get",  "/chain/blocks/{height}")                              => PUBLIC,
        ("get",  "/chain/validator-sets")                               => PUBLIC,
        ("get",  "/chain/validator-set-changes")                        => PUBLIC,
        // Provenance: a partner reads the EPCIS events it captured; courts read none of them.
        ("post", "/capture")                                            => [401, 202, 202, 403, 202, 403, 403],
        ("get",  "/capture/{captureID}")                                => [401, 200, 200, 200, 404, 200, 404],
        ("get",  "/capture")                                            => [401, 200, 200, 200, 200, 200, 200],
        ("post", "/events")                                             => [401, 201, 201, 403, 201, 403, 403],
        ("get",  "/events")                                             => [401, 200, 200, 200, 200, 200, 200],
        ("get",  "/events/{eventID}")                                   => [401, 200, 200, 200, 404, 200, 404],
        ("get",  "/eventTypes")                                         => [401, 200, 200, 200, 200, 200, 200],
        ("get",  "/epcs/{epc}/events")                                  => [401, 200, 200, 200, 200, 200, 200],
        ("get",  "/bizSteps")                                           => [401, 200, 200, 200, 200, 200, 200],
        ("get",  "/dispositions")                                       => [401, 200, 200, 200, 200, 200, 200],
        ("get",  "/traceability")                                       => [401, 200, 200, 200, 404, 200, 404],
        ("get",  "/01/{gtin}")                                          => PUBLIC,
        // The binding's resources by value: anyone with a key, each reading its own events.
        ("get",  "/eventTypes/{eventType}")                             => KEYED,
        ("get",  "/eventTypes/{eventType}/events")                      => KEYED,
        ("get",  "/epcs")                                               => KEYED,
        ("get",  "/epcs/{epc}")                                         => KEYED,
        ("get",  "/bizSteps/{bizStep}")                                 => KEYED,
        ("get",  "/bizSteps/{bizStep}/events")                          => KEYED,
        ("get",  "/bizLocations")                                       => KEYED,
        ("get",  "/bizLocations/{bizLocation}")                         => KEYED,
        ("get",  "/bizLocations/{bizLocation}/events")                  => KEYED,
        ("get",  "/readPoints")                                         => KEYED,
        ("get",  "/readPoints/{readPoint}")                             => KEYED,
        ("get",  "/readPoints/{readPoint}/events")                      => KEYED,
        ("get",  "/dispositions/{disposition}")                         => KEYED,
        ("get",  "/dispositions/{disposition}/events")                  => KEYED,
        ("delete", "/nextPageToken/{token}")                            => [401, 204, 204, 204, 204, 204, 204],
        // Publication: A captured the GTIN's event and published it first; only A changes it.
        ("get",  "/products/{gtin}/publication")                        => PUBLIC,
        ("put",  "/products/{gtin}/publication")                        => [401, 403, 200, 403, 403, 403, 403],
        // Named queries and subscriptions: each organisation its own (a reader's key reads by
        // webhook too); another organisation's are unknown to it.
        ("get",  "/queries")                                            => [401, 200, 200, 200, 200, 200, 200],
        ("post", "/queries")                                            => [401, 201, 201, 201, 201, 201, 201],
        ("get",  "/queries/{queryName}")                                => [401, 404, 200, 200, 404, 404, 404],
        ("delete", "/queries/{queryName}")                              => [401, 404, 204, 204, 404, 404, 404],
        ("get",  "/queries/{queryName}/events")                         => [401, 404, 200, 200, 404, 404, 404],
        ("get",  "/queries/{queryName}/subscriptions")                  => [401, 404, 200, 200, 404, 404, 404],
        ("post", "/queries/{queryName}/subscriptions")                  => [401, 404, 201, 201, 404, 404, 404],
        ("get",  "/queries/{queryName}/subscriptions/{subscriptionID}") => [401, 404, 200, 200, 404, 404, 404],
        ("delete", "/queries/{queryName}/subscriptions/{subscriptionID}")
                                                                        => [401, 404, 204, 204, 404, 404, 404],
        _ => return None,
    })
}

/// Routes the platform serves outside the OpenAPI document: none needs a key.
const UNDOCUMENTED_PUBLIC: [&str; 15] = [
    "/",
    "/verify",
    "/verify/qr.svg?algorithm=sha-256&digest=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "/assets/court/court.js",
    "/assets/verifier/verify.js",
    "/assets/vendor/crypto.js",
    "/explorer",
    "/explorer/validators",
    "/explorer/misbehaviour",
    "/chain/genesis",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs/",
];

/// A key that was never minted: refused (401) wherever a key is needed, ignored elsewhere.
const BOGUS_KEY: &str = "vt_0000000000000000000000000000000000000000000000000000000000000000";

const PROBLEM_JSON: &str = "application/problem+json";

/// An organisation and one of its keys.
#[derive(Clone)]
struct Party {
    id: String,
    key: String,
    key_id: String,
}

/// The running platform and its callers.
struct World {
    p: Running,
    admin: String,
    a: Party,
    a_reader: Party,
    b: Party,
    auditor: Party,
    court: Party,
}

/// A capture: its job, its one EPCIS event, the EPC that event names and that EPC's GTIN.
struct Captured {
    capture_id: String,
    event_id: String,
    epc: String,
    gtin: String,
}

/// A capture document of one ObjectEvent.
fn epcis_document(event_id: &str, epc: &str) -> Value {
    json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-11-30T08:00:00Z",
        "epcisBody": {"eventList": [epcis_event(event_id, epc)]}
    })
}

/// One ObjectEvent naming `epc`.
fn epcis_event(event_id: &str, epc: &str) -> Value {
    json!({
        "eventID": event_id, "type": "ObjectEvent",
        "eventTime": "2026-11-30T08:00:00+01:00", "eventTimeZoneOffset": "+01:00",
        "action": "OBSERVE", "bizStep": "shipping", "epcList": [epc],
    })
}

/// A registration: its record, event, event digest and the file's digest.
struct Registered {
    evidence_id: String,
    event_id: String,
    event_digest: String,
    content_digest: String,
}

fn send(url: &str, method: &str, key: Option<&str>, body: Option<&Value>) -> (u16, String, Value) {
    let body = body.map(Value::to_string);
    call(method, url, key, body.as_deref().map(str::as_bytes))
}

fn assert_problem(what: &str, status: u16, ctype: &str, v: &Value) {
    assert_eq!(ctype, PROBLEM_JSON, "{what}: {status} {v}");
    assert_eq!(v["status"], json!(status), "{what}: {v}");
    assert!(
        v["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:veritrace:problem:")),
        "{what}: {v}"
    );
}

impl World {
    /// Creates a named query of A's; its name.
    fn named_query(&self, name: &str) -> String {
        let body = json!({"name": name, "query": {"EQ_bizStep": ["shipping"]}});
        let (status, _, v) = send(
            &self.url("/queries"),
            "POST",
            Some(&self.a.key),
            Some(&body),
        );
        assert_eq!(status, 201, "{v}");
        name.to_string()
    }

    /// Subscribes A to [`A_QUERY`]; the subscription's id.
    fn subscription(&self) -> String {
        let url = self.url(&format!("/queries/{A_QUERY}/subscriptions"));
        let (status, _, v) = send(&url, "POST", Some(&self.a.key), Some(&QUIET_HOOK));
        assert_eq!(status, 201, "{v}");
        text(&v["subscriptionID"])
    }

    fn start(dir: &Path) -> World {
        let p = up(dir, &[]);
        let admin = p.key.clone().expect("a first start prints the admin key");
        let admin_org = get_ok(&p.url, "/organisations/me", &admin);
        assert_eq!(admin_org["role"], "admin", "{admin_org}");
        let a = organisation(&p.url, &admin, "Member A", "member", "writer");
        let a_reader = mint(&p.url, &a.key, &a.id, "reader");
        let b = organisation(&p.url, &admin, "Member B", "member", "writer");
        let auditor = organisation(&p.url, &admin, "Regulator", "auditor", "auditor");
        let court = organisation(&p.url, &admin, "District Court", "court", "court");
        World {
            p,
            admin,
            a,
            a_reader,
            b,
            auditor,
            court,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.p.url)
    }

    /// Registers a file named `name` with `key`.
    fn register(&self, key: &str, name: &str) -> Registered {
        let content_digest = sha256_hex(name.as_bytes());
        let (status, _, v) = send(
            &self.url("/evidence"),
            "POST",
            Some(key),
            Some(&registration(&content_digest)),
        );
        assert_eq!(status, 201, "register {name}: {v}");
        Registered {
            evidence_id: text(&v["evidence"]["evidence_id"]),
            event_id: text(&v["event_id"]),
            event_digest: text(&v["event_digest"]),
            content_digest,
        }
    }

    /// Captures, for `key`, an EPCIS document of one ObjectEvent naming an SGTIN of serial
    /// `serial`.
    fn capture(&self, key: &str, serial: &str) -> Captured {
        let event_id = format!("urn:uuid:{}", uuid::Uuid::now_v7());
        let epc = format!("urn:epc:id:sgtin:4012345.011111.{serial}");
        let (status, _, v) = send(
            &self.url("/capture"),
            "POST",
            Some(key),
            Some(&epcis_document(&event_id, &epc)),
        );
        assert_eq!((status, &v["success"]), (202, &json!(true)), "capture: {v}");
        Captured {
            capture_id: text(&v["captureID"]),
            event_id,
            epc,
            // 0 4012345 11111 and its check digit.
            gtin: "04012345111118".into(),
        }
    }

    /// The record's current version, as the admin reads it.
    fn version(&self, evidence_id: &str) -> u64 {
        let v = get_ok(
            &self.p.url,
            &format!("/evidence/{evidence_id}"),
            &self.admin,
        );
        v["version"].as_u64().expect("version")
    }
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

fn get_ok(base: &str, path: &str, key: &str) -> Value {
    let (status, _, v) = call("GET", &format!("{base}{path}"), Some(key), None);
    assert_eq!(status, 200, "GET {path}: {v}");
    v
}

/// The case of the records the matrix reads.
const CASE: &str = "2026-CV-0042";

fn registration(content_digest: &str) -> Value {
    registration_in(content_digest, CASE)
}

fn registration_in(content_digest: &str, case_reference: &str) -> Value {
    json!({
        "content_hash": {"algorithm": "sha-256", "digest": content_digest},
        "title": "Signed delivery contract",
        "case_reference": case_reference,
    })
}

/// Creates an organisation of `role` with the admin key; its first key must be of `key_role`.
fn organisation(base: &str, admin: &str, name: &str, role: &str, key_role: &str) -> Party {
    let (status, _, v) = send(
        &format!("{base}/organisations"),
        "POST",
        Some(admin),
        Some(&json!({"name": name, "role": role})),
    );
    assert_eq!(status, 201, "create {name}: {v}");
    assert_eq!(v["organisation"]["role"], role, "{v}");
    assert_eq!(v["key"]["role"], key_role, "{v}");
    let id = text(&v["organisation"]["organisation_id"]);
    assert_eq!(v["key"]["organisation_id"], json!(id), "{v}");
    Party {
        id,
        key: text(&v["api_key"]),
        key_id: text(&v["key"]["key_id"]),
    }
}

/// Mints a key of `role` for organisation `org` with `key`.
fn mint(base: &str, key: &str, org: &str, role: &str) -> Party {
    let (status, _, v) = send(
        &format!("{base}/organisations/{org}/keys"),
        "POST",
        Some(key),
        Some(&json!({"role": role})),
    );
    assert_eq!(status, 201, "mint a {role} key for {org}: {v}");
    assert_eq!(v["key"]["role"], role, "{v}");
    assert_eq!(v["key"]["organisation_id"], json!(org), "{v}");
    Party {
        id: org.to_string(),
        key: text(&v["api_key"]),
        key_id: text(&v["key"]["key_id"]),
    }
}

/// `template` with each `{name}` replaced by its value.
fn fill(template: &str, params: &[(String, String)]) -> String {
    let mut path = template.to_string();
    for (name, value) in params {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    assert!(!path.contains('{'), "unfilled parameter in {path}");
    path
}

/// The names of `template`'s path parameters.
fn parameters(template: &str) -> Vec<String> {
    template
        .split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name.to_string()))
        .collect()
}

/// A problem document with each parameter's value replaced by its name: two answers that
/// differ only in the ids they were asked about read the same.
fn masked(v: &Value, params: &[(String, String)]) -> String {
    let mut s = v.to_string();
    for (name, value) in params {
        s = s.replace(value.as_str(), &format!("{{{name}}}"));
    }
    s
}

/// What the matrix calls: the platform, A's records, and how to fill each operation in.
struct Matrix<'w> {
    w: &'w World,
    /// A's record that every read is about (anchored).
    record: Registered,
    /// A's record the withdrawal calls are about.
    to_withdraw: Registered,
    /// A's record the sharing calls are about.
    to_share: Registered,
    /// A's EPCIS capture every provenance read is about.
    captured: Captured,
    /// A subscription of A's to [`A_QUERY`].
    subscription_id: String,
    calls: std::cell::Cell<u32>,
}

/// A's named query, which the query and subscription reads are about.
const A_QUERY: &str = "a-shipments";

/// A subscription whose deliveries go nowhere (they fail, and are tried again later).
static QUIET_HOOK: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| json!({"dest": "http://127.0.0.1:9/hook", "stream": true}));

impl Matrix<'_> {
    fn next(&self) -> u32 {
        self.calls.set(self.calls.get() + 1);
        self.calls.get()
    }

    /// The path parameters and body of one call of `method template` by `caller`: about A's
    /// organisation and record, with a fresh body where the call changes state (a new key to
    /// revoke, the record's current version), so that no call's answer depends on the ones
    /// before it.
    fn prepare(
        &self,
        method: &str,
        template: &str,
        caller: &str,
    ) -> (Vec<(String, String)>, Option<Value>) {
        let w = self.w;
        let n = self.next();
        let params = parameters(template)
            .into_iter()
            .map(|name| {
                let value = match name.as_str() {
                    "organisation_id" => w.a.id.clone(),
                    // A key of A's to revoke, new for each call.
                    "key_id" => mint(&w.p.url, &w.a.key, &w.a.id, "reader").key_id,
                    "evidence_id" if template.ends_with("/withdrawal") => {
                        self.to_withdraw.evidence_id.clone()
                    }
                    "evidence_id" if template.ends_with("/sharing") => {
                        self.to_share.evidence_id.clone()
                    }
                    "evidence_id" => self.record.evidence_id.clone(),
                    "event_id" => self.record.event_id.clone(),
                    "event_digest" => self.record.event_digest.clone(),
                    // The case of A's records, and of no other party's.
                    "case_reference" => CASE.to_string(),
                    "height" => "1".to_string(),
                    "captureID" => self.captured.capture_id.clone(),
                    "eventID" => self.captured.event_id.clone(),
                    "epc" => self.captured.epc.clone(),
                    "gtin" => self.captured.gtin.clone(),
                    // A query (and a subscription) of A's to delete, new for each call.
                    "queryName" if method == "delete" && template == "/queries/{queryName}" => {
                        w.named_query(&format!("doomed-{n}"))
                    }
                    "queryName" => A_QUERY.to_string(),
                    "eventType" => "ObjectEvent".to_string(),
                    "bizStep" => "shipping".to_string(),
                    "disposition" => "in_transit".to_string(),
                    "readPoint" | "bizLocation" => "urn:epc:id:sgln:4012345.00001.0".to_string(),
                    "token" => "1".to_string(),
                    "subscriptionID" if method == "delete" => w.subscription(),
                    "subscriptionID" => self.subscription_id.clone(),
                    other => panic!("no value for parameter {other} of {template}"),
                };
                (name, value)
            })
            .collect();
        let body = match (method, template) {
            ("get" | "delete", _) => None,
            ("put", "/products/{gtin}/publication") => Some(json!({"published": true})),
            ("post", "/queries") => Some(json!({"name": format!("q{n}"), "query": {}})),
            // A new event each call.
            ("post", "/events") => Some(epcis_event(
                &format!("urn:uuid:{}", uuid::Uuid::now_v7()),
                &format!("urn:epc:id:sgtin:4012345.011111.E{n}"),
            )),
            ("post", "/queries/{queryName}/subscriptions") => Some(QUIET_HOOK.clone()),
            ("post", "/organisations") => Some(json!({
                "name": format!("Organisation {n} created by {caller}"),
                "role": "member",
            })),
            ("post", "/organisations/{organisation_id}/keys") => Some(json!({"role": "reader"})),
            ("post", "/organisations/{organisation_id}/keys/{key_id}/revocation") => None,
            // In a case of their own: what others register does not change who reads A's case.
            ("post", "/evidence") => Some(registration_in(
                &sha256_hex(format!("registered by {caller} ({n})").as_bytes()),
                &format!("2026-CV-R{n}"),
            )),
            ("post", "/evidence/batch") => Some(json!({"items": [registration_in(
                &sha256_hex(format!("batch of {caller} ({n})").as_bytes()),
                &format!("2026-CV-B{n}"),
            )]})),
            ("post", "/evidence/{evidence_id}/withdrawal") => Some(json!({
                "reason": "filed in error",
                "expected_version": w.version(&self.to_withdraw.evidence_id),
            })),
            // A new event each call, so that none is already captured.
            ("post", "/capture") => Some(epcis_document(
                &format!("urn:uuid:{}", uuid::Uuid::now_v7()),
                &format!("urn:epc:id:sgtin:4012345.011111.C{n}"),
            )),
            ("post", "/evidence/{evidence_id}/sharing") => Some(json!({
                "organisation_id": w.auditor.id,
                "expected_version": w.version(&self.to_share.evidence_id),
            })),
            _ => panic!("no body for {method} {template}"),
        };
        (params, body)
    }

    /// The query string of a call: a listing looks A's record's file up by its digest.
    fn query(&self, method: &str, template: &str) -> String {
        match (method, template) {
            ("get", "/evidence") => format!("?digest={}", self.record.content_digest),
            ("get", "/traceability") => format!("?product={}", self.captured.epc),
            _ => String::new(),
        }
    }
}

/// The value of a path parameter that names nothing.
fn unknown(name: &str) -> String {
    let id = uuid::Uuid::now_v7();
    match name {
        "event_digest" => sha256_hex(id.as_bytes()),
        "key_id" => id.simple().to_string(),
        "height" => u32::MAX.to_string(),
        _ => id.to_string(),
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

#[test]
fn every_operation_answers_each_caller_as_the_role_matrix_says() {
    let doc: Value =
        serde_json::from_str(&veritrace::openapi::document_json()).expect("the document");
    let mut operations: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if METHODS.contains(&method.as_str()) {
                operations.push((method.clone(), path.clone()));
            }
        }
    }
    let unknown_operations: Vec<String> = operations
        .iter()
        .filter(|(m, p)| expected(m, p).is_none())
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();
    assert!(
        unknown_operations.is_empty(),
        "the OpenAPI document holds operations the role matrix does not know; add them to \
         `expected`: {unknown_operations:?}"
    );
    assert!(operations.len() >= 18, "{operations:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let w = World::start(dir.path());
    let record = w.register(&w.a.key, "the record everyone reads or not");
    anchored_receipt(&w.p, &w.a.key, &record.event_id, Duration::from_secs(10))
        .expect("A's record is anchored");
    let m = Matrix {
        record,
        to_withdraw: w.register(&w.a.key, "the record A withdraws"),
        to_share: w.register(&w.a.key, "the record A shares"),
        captured: w.capture(&w.a.key, "1001"),
        subscription_id: {
            w.named_query(A_QUERY);
            w.subscription()
        },
        calls: Default::default(),
        w: &w,
    };
    // A publishes its product's page, so that it owns the GTIN whatever order the
    // publication's operations run in.
    let publication = w.url(&format!("/products/{}/publication", m.captured.gtin));
    let published = json!({"published": true}).to_string();
    let (status, _, v) = call(
        "PUT",
        &publication,
        Some(&w.a.key),
        Some(published.as_bytes()),
    );
    assert_eq!(status, 200, "{v}");
    // A's case file holds its three records once the cases domain has filed them.
    let case_file = w.url(&format!("/cases/{CASE}"));
    let filed = || {
        let (status, _, v) = call("GET", &case_file, Some(&w.admin), None);
        (status == 200 && v["exhibits"].as_array().map_or(0, |x| x.len()) == 3).then_some(())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while filed().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "A's records are not filed in {CASE}: {:?}",
            call("GET", &case_file, Some(&w.admin), None)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let keys: [Option<&str>; 8] = [
        None,
        Some(w.admin.as_str()),
        Some(w.a.key.as_str()),
        Some(w.a_reader.key.as_str()),
        Some(w.b.key.as_str()),
        Some(w.auditor.key.as_str()),
        Some(w.court.key.as_str()),
        Some(BOGUS_KEY),
    ];

    let mut undocumented = Vec::new();
    for (method, template) in &operations {
        let row = expected(method, template).expect("known");
        for (i, key) in keys.iter().enumerate() {
            // A key that is not one: what no key gets where a key is needed (401), and what
            // anyone gets where none is.
            let (caller, want) = match CALLERS.get(i) {
                Some(caller) => (*caller, row[i]),
                None => ("a bogus key", row[0]),
            };
            let (params, body) = m.prepare(method, template, caller);
            let path = fill(template, &params);
            let query = m.query(method, template);
            let what = format!("{} {path}{query} as {caller}", method.to_uppercase());
            let (status, ctype, v) = send(
                &w.url(&format!("{path}{query}")),
                &method.to_uppercase(),
                *key,
                body.as_ref(),
            );
            assert_eq!(status, want, "{what}: {v}");
            if (400..500).contains(&status) {
                assert_problem(&what, status, &ctype, &v);
            }
            let documented = doc["paths"][template][method]["responses"]
                .get(status.to_string())
                .is_some();
            if !documented {
                undocumented.push(format!("{what}: {status}"));
            }
            if status == 404 {
                // The same question about ids that name nothing: the same answer, but for
                // the ids, so a 404 does not tell that the record (or organisation) exists.
                let strangers: Vec<(String, String)> = params
                    .iter()
                    .map(|(name, _)| (name.clone(), unknown(name)))
                    .collect();
                let other = format!("{}{query}", fill(template, &strangers));
                let (s, c, u) = send(&w.url(&other), &method.to_uppercase(), *key, body.as_ref());
                assert_eq!(s, 404, "{} {other} as {caller}: {u}", method.to_uppercase());
                assert_eq!(c, ctype, "{what}");
                assert_eq!(
                    masked(&v, &params),
                    masked(&u, &strangers),
                    "{what}: a 404 about an existing one must read as one about an unknown one"
                );
            }
            if status == 200 {
                let reads_record = i < CALLERS.len()
                    && expected("get", "/evidence/{evidence_id}").expect("known")[i] == 200;
                match (method.as_str(), template.as_str()) {
                    ("get", "/evidence") => {
                        let ids: Vec<&str> = v["items"]
                            .as_array()
                            .expect("items")
                            .iter()
                            .filter_map(|r| r["evidence_id"].as_str())
                            .collect();
                        assert_eq!(
                            ids,
                            if reads_record {
                                vec![m.record.evidence_id.as_str()]
                            } else {
                                vec![]
                            },
                            "{what}: lists exactly what the caller may read"
                        );
                    }
                    ("get", "/evidence/{evidence_id}") => {
                        assert_eq!(v["evidence_id"], json!(m.record.evidence_id), "{what}")
                    }
                    ("get", "/cases/{case_reference}") => {
                        let ids: Vec<&str> = v["exhibits"]
                            .as_array()
                            .expect("exhibits")
                            .iter()
                            .filter_map(|x| x["evidence_id"].as_str())
                            .collect();
                        assert!(ids.contains(&m.record.evidence_id.as_str()), "{what}: {v}");
                        assert_eq!(ids.len(), 3, "{what}: A's three records: {v}");
                    }
                    (
                        "get",
                        "/receipts/{event_id}"
                        | "/receipts/by-digest/{event_digest}"
                        | "/evidence/{evidence_id}/receipt",
                    ) => {
                        assert_eq!(v["event"]["id"], json!(m.record.event_id), "{what}");
                        assert_eq!(v["status"], "anchored", "{what}");
                    }
                    ("get", "/organisations/{organisation_id}/keys") => {
                        let keys = v.as_array().expect("keys");
                        assert!(
                            keys.iter().all(|k| k["organisation_id"] == json!(w.a.id)),
                            "{what}: {v}"
                        );
                        assert!(keys.iter().all(|k| k.get("api_key").is_none()), "{v}");
                    }
                    _ => {}
                }
            }
        }
    }

    // The routes outside the document need no key, and a bogus key changes nothing there.
    for path in UNDOCUMENTED_PUBLIC {
        for (i, key) in keys.iter().enumerate() {
            let caller = CALLERS.get(i).copied().unwrap_or("a bogus key");
            let (status, _, v) = call("GET", &w.url(path), *key, None);
            assert_eq!(status, 200, "GET {path} as {caller}: {v}");
        }
    }

    // Last, so that every answer above is checked first: each status the matrix saw is one
    // the document states for that operation.
    assert!(
        undocumented.is_empty(),
        "answers the OpenAPI document does not state for their operation:\n{}",
        undocumented.join("\n")
    );
}

#[test]
fn keys_are_rotated_and_revoked_by_whom_they_may_be_and_a_revoked_key_stops_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = World::start(dir.path());
    let record = w.register(&w.a.key, "A's contract");
    let me = w.url("/organisations/me");
    let evidence = w.url(&format!("/evidence/{}", record.evidence_id));
    let receipt = w.url(&format!("/receipts/{}", record.event_id));
    let keys_of_a = w.url(&format!("/organisations/{}/keys", w.a.id));
    let revoke = |org: &str, key_id: &str, key: &str| {
        send(
            &w.url(&format!("/organisations/{org}/keys/{key_id}/revocation")),
            "POST",
            Some(key),
            None,
        )
    };
    // The four calls a key is checked on, with what a working key of A's writer gets.
    let checks = |key: &str| -> Vec<(String, u16, String, Value)> {
        let mut out = Vec::new();
        let (s, c, v) = call("GET", &me, Some(key), None);
        out.push(("GET /organisations/me".to_string(), s, c, v));
        let body = registration(&sha256_hex(uuid::Uuid::now_v7().as_bytes()));
        let (s, c, v) = send(&w.url("/evidence"), "POST", Some(key), Some(&body));
        out.push(("POST /evidence".to_string(), s, c, v));
        let (s, c, v) = call("GET", &evidence, Some(key), None);
        out.push(("GET /evidence/{id}".to_string(), s, c, v));
        let (s, c, v) = call("GET", &receipt, Some(key), None);
        out.push(("GET /receipts/{id}".to_string(), s, c, v));
        out
    };

    // The old key works, and has been checked (so it is in the key cache) before it is revoked.
    anchored_receipt(&w.p, &w.a.key, &record.event_id, Duration::from_secs(10))
        .expect("A reads its receipt");
    for ((what, s, _, v), want) in checks(&w.a.key).into_iter().zip([200, 201, 200, 200]) {
        assert_eq!(s, want, "the old key, before: {what}: {v}");
    }

    // Rotation: A's writer mints its successor, which revokes it.
    let new = mint(&w.p.url, &w.a.key, &w.a.id, "writer");
    let (s, _, v) = revoke(&w.a.id, &w.a.key_id, &new.key);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["key_id"], json!(w.a.key_id), "{v}");
    let revoked_at = v["revoked_at"].clone();
    assert!(revoked_at.is_string(), "{v}");
    for (what, s, c, v) in checks(&w.a.key) {
        assert_eq!(s, 401, "the revoked key, at once: {what}: {v}");
        assert_problem(&what, s, &c, &v);
    }
    for ((what, s, _, v), want) in checks(&new.key).into_iter().zip([200, 201, 200, 200]) {
        assert_eq!(s, want, "its successor: {what}: {v}");
    }
    let (s, _, v) = call("GET", &me, Some(&new.key), None);
    assert_eq!((s, &v["key_id"]), (200, &json!(new.key_id)), "{v}");
    assert_eq!(v["role"], "writer", "{v}");
    // Revoking it again changes nothing; the list shows it revoked, its successor not.
    let (s, _, v) = revoke(&w.a.id, &w.a.key_id, &new.key);
    assert_eq!((s, &v["revoked_at"]), (200, &revoked_at), "{v}");
    let listed = get_ok(
        &w.p.url,
        &format!("/organisations/{}/keys", w.a.id),
        &new.key,
    );
    let revoked_of = |key_id: &str| {
        listed
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["key_id"] == json!(key_id))
            .unwrap_or_else(|| panic!("key {key_id} listed in {listed}"))["revoked_at"]
            .clone()
    };
    assert_eq!(revoked_of(&w.a.key_id), revoked_at);
    assert_eq!(revoked_of(&new.key_id), Value::Null);
    assert_eq!(revoked_of(&w.a_reader.key_id), Value::Null);

    // A reader key revokes no other key of its organisation, but itself.
    let (s, c, v) = revoke(&w.a.id, &new.key_id, &w.a_reader.key);
    assert_eq!(s, 403, "{v}");
    assert_problem("a reader revoking A's writer key", s, &c, &v);
    let (s, _, v) = call("GET", &me, Some(&new.key), None);
    assert_eq!(s, 200, "the writer key still works: {v}");
    let (s, c, v) = send(
        &keys_of_a,
        "POST",
        Some(&w.a_reader.key),
        Some(&json!({"role": "reader"})),
    );
    assert_eq!(s, 403, "a reader mints no key: {v}");
    assert_problem("a reader minting", s, &c, &v);
    let (s, _, v) = revoke(&w.a.id, &w.a_reader.key_id, &w.a_reader.key);
    assert_eq!(s, 200, "a reader key revokes itself: {v}");
    let (s, c, v) = call("GET", &me, Some(&w.a_reader.key), None);
    assert_eq!(s, 401, "{v}");
    assert_problem("the revoked reader key", s, &c, &v);

    // Another member neither lists nor revokes A's keys: a 404, as for no organisation.
    let (s, c, v) = call("GET", &keys_of_a, Some(&w.b.key), None);
    assert_eq!(s, 404, "{v}");
    assert_problem("B listing A's keys", s, &c, &v);
    let (s, c, v) = revoke(&w.a.id, &new.key_id, &w.b.key);
    assert_eq!(s, 404, "{v}");
    assert_problem("B revoking A's key", s, &c, &v);
    let (s, _, v) = send(
        &keys_of_a,
        "POST",
        Some(&w.b.key),
        Some(&json!({"role": "writer"})),
    );
    assert_eq!(s, 404, "B minting a key for A: {v}");
    let (s, _, v) = call("GET", &me, Some(&new.key), None);
    assert_eq!(s, 200, "A's key still works: {v}");

    // An auditor's and a court's keys mint their own role only; the admin mints only roles
    // the organisation may hold.
    for party in [&w.auditor, &w.court] {
        let role = get_ok(&w.p.url, "/organisations/me", &party.key)["role"].clone();
        let own = w.url(&format!("/organisations/{}/keys", party.id));
        let (s, _, v) = send(&own, "POST", Some(&party.key), Some(&json!({})));
        assert_eq!((s, &v["key"]["role"]), (201, &role), "{v}");
        let (s, c, v) = send(
            &own,
            "POST",
            Some(&party.key),
            Some(&json!({"role": "writer"})),
        );
        assert_eq!(s, 403, "{role} minting a writer key: {v}");
        assert_problem("minting another role", s, &c, &v);
        let (s, c, v) = send(
            &own,
            "POST",
            Some(&w.admin),
            Some(&json!({"role": "writer"})),
        );
        assert_eq!(s, 409, "the admin minting a writer key for a {role}: {v}");
        assert_problem("a role the organisation may not hold", s, &c, &v);
    }

    // The admin's last working key cannot be revoked; once it has a successor, it can.
    let admin = get_ok(&w.p.url, "/organisations/me", &w.admin);
    let admin_org = text(&admin["organisation_id"]);
    let admin_key_id = text(&admin["key_id"]);
    let (s, c, v) = revoke(&admin_org, &admin_key_id, &w.admin);
    assert_eq!(s, 409, "the admin's last key: {v}");
    assert_problem("revoking the admin's last key", s, &c, &v);
    let (s, _, v) = call("GET", &me, Some(&w.admin), None);
    assert_eq!(s, 200, "{v}");
    let successor = mint(&w.p.url, &w.admin, &admin_org, "admin");
    let (s, _, v) = revoke(&admin_org, &admin_key_id, &successor.key);
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = call("GET", &me, Some(&w.admin), None);
    assert_eq!(s, 401, "the admin's revoked key: {v}");
    let (s, c, v) = revoke(&admin_org, &successor.key_id, &successor.key);
    assert_eq!(s, 409, "the admin's last key again: {v}");
    assert_problem("revoking the admin's last key", s, &c, &v);
}
