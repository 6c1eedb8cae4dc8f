//! Who reads what, on both backends: the embedded platform (SQLite) and the distributed
//! services (PostgreSQL, RabbitMQ). A record shared by its registrant A with B is read by A, B,
//! the auditor, the admin and courts, and is a 404 for C, exactly as an unknown one; a party
//! added later reads the record, and the receipts of the events from its grant on.

mod common;

use common::deployment::{Deployment, one_deployment_at_a_time, wait_until};
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Where one deployment serves each part of the API, and its admin key.
struct Api {
    identity: String,
    evidence: String,
    anchor: String,
    admin: String,
}

/// An organisation's id and its first key.
struct Party {
    id: String,
    key: String,
}

impl Api {
    fn organisation(&self, name: &str, role: &str) -> Party {
        let body = json!({"name": name, "role": role}).to_string();
        let url = format!("{}/organisations", self.identity);
        let (s, _, v) = call("POST", &url, Some(&self.admin), Some(body.as_bytes()));
        assert_eq!(s, 201, "{v}");
        Party {
            id: v["organisation"]["organisation_id"]
                .as_str()
                .unwrap()
                .into(),
            key: v["api_key"].as_str().unwrap().into(),
        }
    }

    fn record(&self, key: &str, id: &str) -> u16 {
        call(
            "GET",
            &format!("{}/evidence/{id}", self.evidence),
            Some(key),
            None,
        )
        .0
    }

    fn receipt(&self, key: &str, event_id: &str) -> (u16, Value) {
        let url = format!("{}/receipts/{event_id}", self.anchor);
        let (s, _, v) = call("GET", &url, Some(key), None);
        (s, v)
    }

    /// Waits until the anchor holds `event_id` (the admin reads every receipt).
    fn reached_anchor(&self, event_id: &str) {
        wait_until(
            Duration::from_secs(30),
            "the event reaches the anchor",
            || (self.receipt(&self.admin, event_id).0 == 200).then_some(()),
            || format!("{:?}", self.receipt(&self.admin, event_id)),
        );
    }

    fn listed(&self, key: &str, digest: &str) -> Vec<String> {
        let url = format!("{}/evidence?digest={digest}", self.evidence);
        let (s, _, v) = call("GET", &url, Some(key), None);
        assert_eq!(s, 200, "{v}");
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|r| r["evidence_id"].as_str().unwrap().to_string())
            .collect()
    }

    fn share(&self, key: &str, id: &str, with: &Party, expected_version: u64) -> Value {
        let body = json!({"organisation_id": with.id, "expected_version": expected_version});
        let url = format!("{}/evidence/{id}/sharing", self.evidence);
        let (s, _, v) = call("POST", &url, Some(key), Some(body.to_string().as_bytes()));
        assert_eq!(s, 200, "{v}");
        v
    }
}

fn matrix(api: &Api) {
    let a = api.organisation("Registrant A", "member");
    let b = api.organisation("Opposing party B", "member");
    let c = api.organisation("Stranger C", "member");
    let d = api.organisation("Expert D", "member");
    let auditor = api.organisation("Regulator", "auditor");
    let court = api.organisation("District court", "court");

    let file = b"witness statement, signed";
    let digest = sha256_hex(file);
    let body = json!({
        "content_hash": {"algorithm": "sha-256", "digest": digest},
        "title": "Witness statement",
    });
    let url = format!("{}/evidence", api.evidence);
    let (s, _, reg) = call(
        "POST",
        &url,
        Some(&a.key),
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(s, 201, "{reg}");
    let id = reg["evidence"]["evidence_id"].as_str().unwrap().to_string();
    let registered = reg["event_id"].as_str().unwrap().to_string();
    let shared_b = api.share(&a.key, &id, &b, 1);
    assert_eq!(shared_b["evidence"]["shared_with"], json!([b.id]));
    let shared_b = shared_b["event_id"].as_str().unwrap().to_string();
    api.reached_anchor(&registered);
    api.reached_anchor(&shared_b);

    // The record: A, B, the auditor, the court and the admin read it; C and D (not yet) do not,
    // and their 404 is the one an unknown record gets.
    for (who, key) in [
        ("A", &a.key),
        ("B", &b.key),
        ("auditor", &auditor.key),
        ("court", &court.key),
        ("admin", &api.admin),
    ] {
        assert_eq!(api.record(key, &id), 200, "{who} reads the record");
        assert_eq!(
            api.listed(key, &digest),
            vec![id.clone()],
            "{who} finds it by digest"
        );
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    for (who, key) in [("C", &c.key), ("D", &d.key)] {
        let url = format!("{}/evidence/{id}", api.evidence);
        let (s, _, hidden) = call("GET", &url, Some(key), None);
        let url = format!("{}/evidence/{unknown}", api.evidence);
        let (_, _, absent) = call("GET", &url, Some(key), None);
        assert_eq!(s, 404, "{who}: {hidden}");
        assert_eq!(
            hidden["detail"].as_str().map(|t| t.replace(&id, "ID")),
            absent["detail"].as_str().map(|t| t.replace(&unknown, "ID")),
            "{who} cannot tell the record exists"
        );
        assert!(
            api.listed(key, &digest).is_empty(),
            "{who} finds nothing by digest"
        );
        // Nor can it act on it: a command on a record it cannot read is a 404 too.
        let withdraw = json!({"reason": "not mine", "expected_version": 2}).to_string();
        let url = format!("{}/evidence/{id}/withdrawal", api.evidence);
        assert_eq!(
            call("POST", &url, Some(key), Some(withdraw.as_bytes())).0,
            404,
            "{who}"
        );
    }
    // B reads it but may not act on it as the registrant does.
    let share_again = json!({"organisation_id": c.id, "expected_version": 2}).to_string();
    let url = format!("{}/evidence/{id}/sharing", api.evidence);
    let (s, _, v) = call("POST", &url, Some(&b.key), Some(share_again.as_bytes()));
    assert_eq!(s, 403, "{v}");

    // Receipts: the registration's for A, the courts, the auditor and the admin (B was granted
    // the record later); the sharing's for B too; none for C.
    let expect = |event: &str, who: &str, key: &str, status: u16| {
        let (s, v) = api.receipt(key, event);
        assert_eq!(s, status, "{who}, receipt of {event}: {v}");
    };
    for (who, key, registration, sharing) in [
        ("A", &a.key, 200, 200),
        ("B", &b.key, 404, 200),
        ("C", &c.key, 404, 404),
        ("D", &d.key, 404, 404),
        ("auditor", &auditor.key, 200, 200),
        ("court", &court.key, 200, 200),
        ("admin", &api.admin, 200, 200),
    ] {
        expect(&registered, who, key, registration);
        expect(&shared_b, who, key, sharing);
    }

    // D is added later: from then on it reads the record and the receipts of the events from
    // its grant on, not the earlier ones.
    let shared_d = api.share(&a.key, &id, &d, 2);
    let mut with = vec![b.id.clone(), d.id.clone()];
    with.sort();
    assert_eq!(shared_d["evidence"]["shared_with"], json!(with));
    let shared_d = shared_d["event_id"].as_str().unwrap().to_string();
    api.reached_anchor(&shared_d);
    assert_eq!(api.record(&d.key, &id), 200);
    assert_eq!(api.listed(&d.key, &digest), vec![id.clone()]);
    expect(&shared_d, "D", &d.key, 200);
    expect(&registered, "D", &d.key, 404);
    expect(&shared_b, "D", &d.key, 404);
    // Those who read the record read the new event's receipt too; C still reads nothing.
    for (who, key) in [("A", &a.key), ("B", &b.key), ("auditor", &auditor.key)] {
        expect(&shared_d, who, key, 200);
    }
    expect(&shared_d, "C", &c.key, 404);
    assert_eq!(api.record(&c.key, &id), 404);
}

#[test]
fn embedded_records_and_receipts_are_read_by_their_parties_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = up(dir.path(), &[]);
    matrix(&Api {
        identity: p.url.clone(),
        evidence: p.url.clone(),
        anchor: p.url.clone(),
        admin: p.key.clone().expect("the admin key"),
    });
}

#[test]
fn distributed_records_and_receipts_are_read_by_their_parties_only() {
    let _one = one_deployment_at_a_time();
    let Some(d) = Deployment::new() else {
        return;
    };
    d.start_all();
    matrix(&Api {
        identity: d.url("identity"),
        evidence: d.url("evidence"),
        anchor: d.url("anchor"),
        admin: d.key(),
    });
}
