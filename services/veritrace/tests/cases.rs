//! The cases domain reacting to the evidence domain's events (issue 17, item 6 and acceptance
//! 5): every registration that names a case becomes an exhibit of that case's file, once; a
//! withdrawal marks it withdrawn; a sharing lets the party read it. Embedded (one process, the
//! in-process bus) and distributed (separate processes, RabbitMQ stopped and started, the cases
//! process SIGKILLed mid-stream).

mod common;

use common::deployment::{Deployment, ServerGuard, agent, one_deployment_at_a_time, wait_until};
use common::{Running, anchored_receipt, call, segment, sha256_hex, up};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const CASE: &str = "2026-CV-0042";
/// A case reference as a court may write it: spaces, a slash, a non-ASCII letter.
const OTHER_CASE: &str = "Tribunal de Paris n° 42/2026";

struct Party {
    id: String,
    key: String,
}

/// A registration: its evidence id and event id.
struct Registered {
    evidence_id: String,
    event_id: String,
}

fn post(p: &Running, path: &str, key: &str, body: Value) -> (u16, Value) {
    let (status, _, v) = call(
        "POST",
        &format!("{}{path}", p.url),
        Some(key),
        Some(body.to_string().as_bytes()),
    );
    (status, v)
}

fn organisation(p: &Running, admin: &str, name: &str, role: &str) -> Party {
    let (status, v) = post(
        p,
        "/organisations",
        admin,
        json!({"name": name, "role": role}),
    );
    assert_eq!(status, 201, "{v}");
    Party {
        id: v["organisation"]["organisation_id"]
            .as_str()
            .expect("organisation_id")
            .into(),
        key: v["api_key"].as_str().expect("api_key").into(),
    }
}

fn register(p: &Running, who: &Party, file: &str, case: Option<&str>) -> Registered {
    let mut body = json!({
        "content_hash": {"algorithm": "sha-256", "digest": sha256_hex(file.as_bytes())},
        "title": file,
    });
    if let Some(case) = case {
        body["case_reference"] = json!(case);
    }
    let (status, v) = post(p, "/evidence", &who.key, body);
    assert_eq!(status, 201, "{v}");
    Registered {
        evidence_id: v["evidence"]["evidence_id"].as_str().unwrap().into(),
        event_id: v["event_id"].as_str().unwrap().into(),
    }
}

/// `GET /cases/{case}`: (status, content type, body).
fn case_file(p: &Running, key: &str, case: &str) -> (u16, String, Value) {
    call(
        "GET",
        &format!("{}/cases/{}", p.url, segment(case)),
        Some(key),
        None,
    )
}

/// The exhibits of a case file: (evidence id, status), in the order served.
fn exhibits(file: &Value) -> Vec<(String, String)> {
    file["exhibits"]
        .as_array()
        .map(|x| {
            x.iter()
                .map(|e| {
                    (
                        e["evidence_id"].as_str().unwrap_or("").to_string(),
                        e["status"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn registered(r: &Registered) -> (String, String) {
    (r.evidence_id.clone(), "registered".into())
}

fn withdrawn(r: &Registered) -> (String, String) {
    (r.evidence_id.clone(), "withdrawn".into())
}

#[test]
fn embedded_case_files_hold_each_exhibit_once_and_show_each_caller_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(dir.path(), &[]);
    let admin = p.key.clone().expect("the admin key");
    let a = organisation(&p, &admin, "Claimant", "member");
    let b = organisation(&p, &admin, "Defendant", "member");
    let c = organisation(&p, &admin, "Bystander", "member");
    let auditor = organisation(&p, &admin, "Regulator", "auditor");
    let court = organisation(&p, &admin, "District Court", "court");

    let a1 = register(&p, &a, "the signed contract", Some(CASE));
    let a2 = register(&p, &a, "an invoice", Some(CASE));
    let a3 = register(&p, &a, "a memo of no case", None);
    let b1 = register(&p, &b, "the defendant's letter", Some(CASE));
    let b2 = register(&p, &b, "a statement", Some(OTHER_CASE));
    // A shares its contract with B, and withdraws its invoice.
    let (status, v) = post(
        &p,
        &format!("/evidence/{}/sharing", a1.evidence_id),
        &a.key,
        json!({"organisation_id": b.id, "expected_version": 1}),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = post(
        &p,
        &format!("/evidence/{}/withdrawal", a2.evidence_id),
        &a.key,
        json!({"reason": "filed in error", "expected_version": 1}),
    );
    assert_eq!(status, 200, "{v}");

    // The reaction runs after each evidence event is published: wait until all of it is in.
    let all = vec![registered(&b1), withdrawn(&a2), registered(&a1)];
    let of_b = vec![registered(&b1), registered(&a1)];
    for (who, key, want) in [("the admin", &admin, &all), ("B", &b.key, &of_b)] {
        wait_until(
            Duration::from_secs(20),
            &format!("{who}'s view of the case file"),
            || {
                let (status, _, v) = case_file(&p, key, CASE);
                (status == 200 && exhibits(&v) == *want).then_some(())
            },
            || format!("{:?}", case_file(&p, key, CASE)),
        );
    }

    // Each caller reads exactly what it may: the court, the auditor and the admin every
    // exhibit; A its own; B its own and the one A shared with it (newest registration first).
    let of_a = vec![withdrawn(&a2), registered(&a1)];
    for (who, key, want) in [
        ("the admin", &admin, &all),
        ("the court", &court.key, &all),
        ("the auditor", &auditor.key, &all),
        ("A", &a.key, &of_a),
        ("B", &b.key, &of_b),
    ] {
        let (status, _, v) = case_file(&p, key, CASE);
        assert_eq!(status, 200, "{who}: {v}");
        assert_eq!(v["case_reference"], CASE, "{who}");
        assert_eq!(exhibits(&v), *want, "{who}: {v}");
    }
    // C reads nothing of the case: the same 404 as for a case that does not exist.
    let (status, ctype, v) = case_file(&p, &c.key, CASE);
    assert_eq!(status, 404, "{v}");
    assert_eq!(ctype, "application/problem+json");
    let (status, _, unknown) = case_file(&p, &c.key, "2026-CV-9999");
    assert_eq!(status, 404, "{unknown}");
    assert_eq!(
        v.to_string().replace(CASE, "{case}"),
        unknown.to_string().replace("2026-CV-9999", "{case}"),
        "a case one may not read reads as one that does not exist"
    );
    // The other case, named with spaces, a slash and a non-ASCII letter.
    let (status, _, v) = case_file(&p, &court.key, OTHER_CASE);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["case_reference"], OTHER_CASE);
    assert_eq!(exhibits(&v), vec![registered(&b2)]);
    assert_eq!(case_file(&p, &a.key, OTHER_CASE).0, 404);
    // A reference that breaks the text rules is refused, naming it.
    let (status, _, v) = case_file(&p, &admin, " ");
    assert_eq!(status, 422, "{v}");
    assert!(v.to_string().contains("case_reference"), "{v}");

    // What an exhibit says: the registration it comes from, with both receipts.
    let (_, _, file) = case_file(&p, &court.key, CASE);
    let shown = |r: &Registered| -> Value {
        file["exhibits"]
            .as_array()
            .and_then(|x| x.iter().find(|e| e["evidence_id"] == json!(r.evidence_id)))
            .cloned()
            .unwrap_or_else(|| panic!("{} in {file}", r.evidence_id))
    };
    let (status, _, record) = call(
        "GET",
        &format!("{}/evidence/{}", p.url, a1.evidence_id),
        Some(&admin),
        None,
    );
    assert_eq!(status, 200, "{record}");
    let exhibit = shown(&a1);
    assert_eq!(exhibit["registrant"], json!(a.id));
    assert_eq!(
        exhibit["content_hash"],
        json!({"algorithm": "sha-256", "digest": sha256_hex(b"the signed contract")})
    );
    assert_eq!(exhibit["title"], "the signed contract");
    assert_eq!(exhibit["registered_at"], record["registered_at"]);
    assert_eq!(exhibit["registered_event_id"], json!(a1.event_id));
    assert_eq!(
        exhibit["registration_receipt_url"],
        json!(format!("/receipts/{}", a1.event_id))
    );
    let filed_by = exhibit["event_id"].as_str().expect("event_id").to_string();
    assert_eq!(
        exhibit["receipt_url"],
        json!(format!("/receipts/{filed_by}"))
    );
    assert!(exhibit.get("withdrawn_at").is_none(), "{exhibit}");
    let gone = shown(&a2);
    assert_eq!(gone["withdrawal_reason"], "filed in error");
    assert!(gone["withdrawn_at"].is_string(), "{gone}");
    // The filing is anchored; its receipt is A's and the courts', not a stranger's.
    for key in [&a.key, &court.key] {
        anchored_receipt(&p, key, &filed_by, Duration::from_secs(20))
            .expect("the exhibit's receipt is anchored");
    }
    let (status, _, v) = call(
        "GET",
        &format!("{}/receipts/{filed_by}", p.url),
        Some(&c.key),
        None,
    );
    assert_eq!(status, 404, "{v}");
    drop(p); // the platform stops; its stores are ours to read

    // Each fact was recorded once in the cases store, and nothing for the memo of no case.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let events = rt.block_on(async {
        let db = veritrace_kernel::db::Database::open(&veritrace_kernel::domain::event_store_file(
            dir.path(),
            "cases",
        ))
        .await
        .expect("open the cases store");
        let store = veritrace_kernel::event_store::EventStore::start(&db)
            .await
            .expect("the cases store");
        store.read_after(0, 1000).await.expect("read").events
    });
    let mut recorded: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in &events {
        let evidence_id = e.envelope.payload["evidence_id"]
            .as_str()
            .unwrap_or("")
            .to_string();
        *recorded
            .entry((e.envelope.event_type.clone(), evidence_id))
            .or_default() += 1;
    }
    let once = |t: &str, r: &Registered| ((t.to_string(), r.evidence_id.clone()), 1);
    assert_eq!(
        recorded,
        BTreeMap::from([
            once("CaseExhibitAdded", &a1),
            once("CaseExhibitAdded", &a2),
            once("CaseExhibitAdded", &b1),
            once("CaseExhibitAdded", &b2),
            once("CaseExhibitShared", &a1),
            once("CaseExhibitWithdrawn", &a2),
        ]),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e.envelope.payload["evidence_id"] != json!(a3.evidence_id))
    );
}

/// Polls `probe` every 10 ms (finer than `wait_until`: a fault is injected while a stream of a
/// second or so is in flight), or panics after `within`.
fn poll<T>(within: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Acceptance 5: the cases service reacts to the evidence service's events while RabbitMQ is
/// stopped and started and the cases process is SIGKILLed mid-stream; every registration that
/// names a case is filed exactly once, and every event of both domains anchored exactly once.
#[test]
fn distributed_reactions_happen_exactly_once_across_a_broker_restart_and_a_sigkill() {
    let _one = one_deployment_at_a_time();
    let Some(d) = Deployment::new() else {
        return;
    };
    d.start_all();
    const CASES: [&str; 3] = ["2026-CV-0100", "2026-CV-0101", "2026-CV-0102"];
    let case_of = |j: usize| Some(CASES[j % CASES.len()].to_string());
    let filed =
        || d.try_sql_i64("SELECT COUNT(*) FROM cases.events WHERE event_type = 'CaseExhibitAdded'");
    let mut rabbit = ServerGuard::rabbitmq();

    // 150 registrations in one request, so that they reach the cases service as one stream.
    let mut registrations = d.register_in_cases(150, 150, "react-1", case_of);
    // (a) The broker shut down while the cases service files them.
    let at_stop = poll(
        Duration::from_secs(60),
        "cases filing the first 150",
        || filed().filter(|n| (1..150).contains(n)),
    );
    rabbit.stop();
    // 100 more while the broker is down: they wait in the evidence outbox.
    registrations.extend(d.register_in_cases(100, 50, "react-2", case_of));
    rabbit.start();
    // (b) The cases process SIGKILLed while it files what the restarted broker delivers (the
    // first stream redelivered, its acknowledgement lost with the broker, then the 100).
    let at_kill = poll(
        Duration::from_secs(120),
        "cases filing after the broker restarted",
        || filed().filter(|n| (151..250).contains(n)),
    );
    d.kill("cases");
    // 25 while it is down, waiting in its queue; 25 once it is back.
    registrations.extend(d.register_in_cases(25, 25, "react-3", case_of));
    d.start("cases");
    registrations.extend(d.register_in_cases(25, 25, "react-4", case_of));
    let total = registrations.len() as i64;
    assert_eq!(total, 300);
    eprintln!("filed {at_stop} when the broker stopped, {at_kill} when cases was killed");

    wait_until(
        Duration::from_secs(120),
        "every registration filed",
        || (filed() == Some(total)).then_some(()),
        || format!("{:?} filed{}", filed(), d.logs()),
    );
    // Both domains' events anchored exactly once: 300 registrations, 300 filings.
    d.wait_all_anchored(2 * total, Duration::from_secs(120));
    let evidence_events: Vec<String> = registrations.iter().map(|(_, e)| e.clone()).collect();
    d.assert_exactly_once(&evidence_events);
    assert_eq!(d.sql_i64("SELECT COUNT(*) FROM cases.events"), total);
    assert_eq!(d.sql_i64("SELECT COUNT(*) FROM anchor.leaves"), 2 * total);

    // Each registration filed once, by its own event: the filing names the registration event
    // and its evidence, and the inbox holds each registration event once.
    let payload = |member: &str| format!("(c.envelope::jsonb -> 'payload' ->> '{member}')");
    assert_eq!(
        d.sql_i64(&format!(
            "SELECT COUNT(DISTINCT {}) FROM cases.events c",
            payload("evidence_id")
        )),
        total,
        "every evidence id filed exactly once"
    );
    assert_eq!(
        d.sql_i64(&format!(
            "SELECT COUNT(*) FROM cases.events c JOIN evidence.events e
             ON e.event_id::TEXT = {} AND e.envelope::jsonb -> 'payload' ->> 'evidence_id' = {}",
            payload("registered_event_id"),
            payload("evidence_id")
        )),
        total,
        "each filing names its registration"
    );
    for chunk in registrations.chunks(100) {
        let ids = chunk
            .iter()
            .map(|(evidence_id, _)| format!("'{evidence_id}'"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            d.sql_i64(&format!(
                "SELECT COUNT(*) FROM cases.events c WHERE {} IN ({ids})",
                payload("evidence_id")
            )),
            chunk.len() as i64,
            "a registration is not filed"
        );
    }
    assert_eq!(
        d.sql_i64("SELECT COUNT(*) FROM cases.claims WHERE claim_key LIKE 'inbox:exhibits:%'"),
        total,
        "one inbox entry per registration event"
    );

    // The case files, as the cases service serves them, link to the anchor's receipts.
    let agent = agent();
    let mut listed = 0;
    for (c, case) in CASES.into_iter().enumerate() {
        // Registration j of each request went to case j % 3.
        let want = [150, 100, 25, 25]
            .iter()
            .map(|n| (0..*n).filter(|j| j % CASES.len() == c).count())
            .sum::<usize>();
        let url = format!("{}/cases/{case}", d.url("cases"));
        let file = wait_until(
            Duration::from_secs(30),
            "the case file projected",
            || {
                let mut resp = agent
                    .get(&url)
                    .header("Authorization", &format!("Bearer {}", d.key()))
                    .call()
                    .ok()?;
                let v: Value = resp.body_mut().read_json().ok()?;
                (v["exhibits"].as_array()?.len() == want).then_some(v)
            },
            || {
                let (s, _, v) = call("GET", &url, Some(&d.key()), None);
                let n = v["exhibits"].as_array().map_or(0, |x| x.len());
                format!("{s}: {n} exhibits, of {want}")
            },
        );
        let first = &file["exhibits"][0];
        let event_id = first["event_id"].as_str().expect("event_id");
        assert_eq!(
            first["receipt_url"],
            json!(format!("{}/receipts/{event_id}", d.url("anchor")))
        );
        listed += file["exhibits"].as_array().map_or(0, |x| x.len());
        if case == CASES[0] {
            d.receipt_verifies(event_id);
        }
    }
    assert_eq!(listed as i64, total);
}
