//! Judicial evidence: a party registers the hash of a file (never the file); it may later
//! withdraw the registration, which stays on record. Pure code: commands are decided against
//! the record rebuilt from its events.

use chain_core::{ContentHash, ContentHashAlg};
use serde::{Deserialize, Serialize};
use veritrace_kernel::FieldError;
use veritrace_kernel::domain::{self as kernel_domain, EventType};
use veritrace_kernel::envelope::EventEnvelope;
use veritrace_kernel::strict_json::check_text_field;

pub const SERVICE: &str = "evidence";
pub const MAX_TITLE_CHARS: usize = 300;
pub const MAX_CASE_REFERENCE_CHARS: usize = 100;
pub const MAX_REASON_CHARS: usize = 1000;
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
pub const MAX_FILE_NAME_CHARS: usize = 255;
/// The largest `size_bytes`: 2^53 − 1, the largest integer every JSON reader keeps exactly.
pub const MAX_SIZE_BYTES: u64 = 9_007_199_254_740_991;

/// Every event type the domain records, at every version it reads, with the published schema
/// of its payload (`schemas/events/evidence/<type>.v<version>.schema.json`): what other domains
/// may rely on. It writes the newest version of each type; older ones are read, upcast.
pub const EVENT_TYPES: &[EventType] = &[
    veritrace_kernel::event_type!(
        "evidence",
        "EvidenceRegistered",
        1,
        upcast = registered_v1_to_v2
    ),
    veritrace_kernel::event_type!("evidence", "EvidenceRegistered", 2),
    veritrace_kernel::event_type!("evidence", "EvidenceWithdrawn", 1),
    veritrace_kernel::event_type!("evidence", "EvidenceShared", 1),
];

/// `EvidenceRegistered` v2 is v1 with two optional members more, `file_name` and `size_bytes`:
/// a v1 payload reads as a v2 one without them (and one that has them was never v1).
fn registered_v1_to_v2(payload: serde_json::Value) -> Result<serde_json::Value, String> {
    for member in ["file_name", "size_bytes"] {
        if payload.get(member).is_some() {
            return Err(format!("version 1 has no `{member}`"));
        }
    }
    Ok(payload)
}

/// Most organisations a registration is shared with.
pub const MAX_SHARED_WITH: usize = 16;

/// The events of an evidence record; each is the payload of an envelope whose `type` is the
/// variant name, at the current version of that type ([`EvidenceEvent::type_version`],
/// [`EVENT_TYPES`]); events stored at an older version read as the current one
/// ([`EvidenceEvent::from_parts`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum EvidenceEvent {
    EvidenceRegistered(EvidenceRegistered),
    EvidenceWithdrawn(EvidenceWithdrawn),
    EvidenceShared(EvidenceShared),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRegistered {
    pub evidence_id: String,
    pub content_hash: ContentHash,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The file's name, as the party gave it (since v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The file's size in bytes, as the party gave it (since v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceWithdrawn {
    pub evidence_id: String,
    pub reason: String,
}

/// The registrant lets another organisation (the opposing party, an expert) read the
/// registration and its receipts from now on. Courts read every registration anyway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceShared {
    pub evidence_id: String,
    pub organisation_id: String,
}

impl EvidenceEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            EvidenceEvent::EvidenceRegistered(_) => "EvidenceRegistered",
            EvidenceEvent::EvidenceWithdrawn(_) => "EvidenceWithdrawn",
            EvidenceEvent::EvidenceShared(_) => "EvidenceShared",
        }
    }

    /// The version of its type it is written at: the current one ([`EVENT_TYPES`]).
    pub fn type_version(&self) -> u32 {
        match self {
            EvidenceEvent::EvidenceRegistered(_) => 2,
            EvidenceEvent::EvidenceWithdrawn(_) | EvidenceEvent::EvidenceShared(_) => 1,
        }
    }

    pub fn payload(&self) -> serde_json::Value {
        let v = match self {
            EvidenceEvent::EvidenceRegistered(e) => serde_json::to_value(e),
            EvidenceEvent::EvidenceWithdrawn(e) => serde_json::to_value(e),
            EvidenceEvent::EvidenceShared(e) => serde_json::to_value(e),
        };
        v.unwrap_or(serde_json::Value::Null)
    }

    /// The event an envelope's `type`, `type_version` and `payload` hold, at whatever version
    /// it was stored: an older one is upcast to the current one first
    /// ([`veritrace_kernel::domain::upcast`]). Fails naming the type for a type or version the
    /// domain does not read, or a payload that is not one of it.
    pub fn from_parts(
        event_type: &str,
        type_version: u32,
        payload: &serde_json::Value,
    ) -> Result<Self, String> {
        let payload = kernel_domain::upcast(EVENT_TYPES, event_type, type_version, payload)?;
        let mut parts = serde_json::Map::new();
        parts.insert("type".into(), event_type.into());
        parts.insert("payload".into(), payload.into_owned());
        serde_json::from_value(serde_json::Value::Object(parts))
            .map_err(|e| format!("{event_type} v{type_version}: {e}"))
    }

    /// The event of a stored envelope ([`EvidenceEvent::from_parts`]).
    pub fn from_envelope(envelope: &EventEnvelope) -> Result<Self, String> {
        Self::from_parts(
            &envelope.event_type,
            envelope.type_version,
            &envelope.payload,
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceStatus {
    Registered,
    Withdrawn,
}

/// An evidence record, rebuilt from its events.
#[derive(Clone, Debug, PartialEq)]
pub struct EvidenceRecord {
    pub evidence_id: String,
    pub owner: String,
    pub content_hash: ContentHash,
    pub status: EvidenceStatus,
    /// The organisations it is shared with, in the order they were added.
    pub shared_with: Vec<String>,
    pub version: u64,
}

impl EvidenceRecord {
    /// Folds a stream's events, each with the organisation that recorded it.
    pub fn replay<'a>(
        events: impl IntoIterator<Item = (&'a EvidenceEvent, &'a str)>,
    ) -> Option<Self> {
        let mut record: Option<EvidenceRecord> = None;
        for (event, organisation) in events {
            record = match (record.take(), event) {
                (None, EvidenceEvent::EvidenceRegistered(e)) => Some(EvidenceRecord {
                    evidence_id: e.evidence_id.clone(),
                    owner: organisation.to_string(),
                    content_hash: e.content_hash.clone(),
                    status: EvidenceStatus::Registered,
                    shared_with: Vec::new(),
                    version: 1,
                }),
                (Some(mut r), EvidenceEvent::EvidenceWithdrawn(_)) => {
                    r.status = EvidenceStatus::Withdrawn;
                    r.version += 1;
                    Some(r)
                }
                (Some(mut r), EvidenceEvent::EvidenceShared(s)) => {
                    if !r.shared_with.contains(&s.organisation_id) {
                        r.shared_with.push(s.organisation_id.clone());
                    }
                    r.version += 1;
                    Some(r)
                }
                // Orders `decide_*` never produces; versions still count every event.
                (Some(mut r), EvidenceEvent::EvidenceRegistered(_)) => {
                    r.version += 1;
                    Some(r)
                }
                (None, EvidenceEvent::EvidenceWithdrawn(_) | EvidenceEvent::EvidenceShared(_)) => {
                    None
                }
            };
        }
        record
    }

    /// Who may read it besides its registrant (who always may): the organisations it is
    /// shared with, and every court. Each of its events carries this access list.
    pub fn readers(&self) -> Vec<String> {
        readers(&self.shared_with)
    }
}

/// The access list of a registration shared with `shared_with`: those, and every court.
pub fn readers(shared_with: &[String]) -> Vec<String> {
    let mut readers = shared_with.to_vec();
    readers.push(veritrace_kernel::access::COURTS.to_string());
    readers
}

/// What a caller asks to register, before validation.
#[derive(Clone, Debug)]
pub struct RegisterEvidence {
    pub algorithm: ContentHashAlg,
    pub digest: String,
    pub title: String,
    pub case_reference: Option<String>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub file_name: Option<String>,
    pub size_bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvidenceError {
    #[error("invalid command")]
    Invalid(Vec<FieldError>),
    #[error("evidence {0} was registered by another organisation")]
    NotOwner(String),
    #[error("evidence {0} is already withdrawn")]
    AlreadyWithdrawn(String),
    #[error("evidence {0} is already shared with organisation {1}")]
    AlreadyShared(String, String),
}

/// The platform's one rule for text fields ([`check_text_field`]); the value is recorded as
/// sent, never trimmed, so that the receipt shows exactly what the party sent.
fn check_text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
    if let Err(message) = check_text_field(value, max) {
        errors.push(FieldError::new(field, message));
    }
}

pub fn decide_register(
    evidence_id: &str,
    cmd: RegisterEvidence,
) -> Result<EvidenceEvent, EvidenceError> {
    let mut errors = Vec::new();
    let content_hash = match ContentHash::normalized(cmd.algorithm, &cmd.digest) {
        Ok(h) => Some(h),
        Err(e) => {
            errors.push(FieldError::new("content_hash.digest", e.to_string()));
            None
        }
    };
    check_text("title", &cmd.title, MAX_TITLE_CHARS, &mut errors);
    if let Some(c) = &cmd.case_reference {
        check_text("case_reference", c, MAX_CASE_REFERENCE_CHARS, &mut errors);
    }
    if let Some(m) = &cmd.metadata {
        let size = serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > MAX_METADATA_BYTES {
            errors.push(FieldError::new(
                "metadata",
                format!("must serialise to at most {MAX_METADATA_BYTES} bytes, got {size}"),
            ));
        }
    }
    if let Some(f) = &cmd.file_name {
        check_text("file_name", f, MAX_FILE_NAME_CHARS, &mut errors);
    }
    if let Some(n) = cmd.size_bytes
        && n > MAX_SIZE_BYTES
    {
        errors.push(FieldError::new(
            "size_bytes",
            format!("must be at most {MAX_SIZE_BYTES} (2^53 - 1)"),
        ));
    }
    match (content_hash, errors.is_empty()) {
        (Some(content_hash), true) => Ok(EvidenceEvent::EvidenceRegistered(EvidenceRegistered {
            evidence_id: evidence_id.to_string(),
            content_hash,
            title: cmd.title,
            case_reference: cmd.case_reference,
            metadata: cmd.metadata,
            file_name: cmd.file_name,
            size_bytes: cmd.size_bytes,
        })),
        _ => Err(EvidenceError::Invalid(errors)),
    }
}

pub fn decide_withdraw(
    record: &EvidenceRecord,
    caller: &str,
    reason: &str,
) -> Result<EvidenceEvent, EvidenceError> {
    if record.owner != caller {
        return Err(EvidenceError::NotOwner(record.evidence_id.clone()));
    }
    let mut errors = Vec::new();
    check_text("reason", reason, MAX_REASON_CHARS, &mut errors);
    if !errors.is_empty() {
        return Err(EvidenceError::Invalid(errors));
    }
    if record.status == EvidenceStatus::Withdrawn {
        return Err(EvidenceError::AlreadyWithdrawn(record.evidence_id.clone()));
    }
    Ok(EvidenceEvent::EvidenceWithdrawn(EvidenceWithdrawn {
        evidence_id: record.evidence_id.clone(),
        reason: reason.to_string(),
    }))
}

/// Shares a registration with `organisation_id` (which the caller has checked exists): only
/// its registrant may, with another organisation, once each.
pub fn decide_share(
    record: &EvidenceRecord,
    caller: &str,
    organisation_id: &str,
) -> Result<EvidenceEvent, EvidenceError> {
    if record.owner != caller {
        return Err(EvidenceError::NotOwner(record.evidence_id.clone()));
    }
    if organisation_id == record.owner {
        return Err(EvidenceError::Invalid(vec![FieldError::new(
            "organisation_id",
            "is the registrant, who always reads it",
        )]));
    }
    if record.shared_with.iter().any(|o| o == organisation_id) {
        return Err(EvidenceError::AlreadyShared(
            record.evidence_id.clone(),
            organisation_id.to_string(),
        ));
    }
    if record.shared_with.len() >= MAX_SHARED_WITH {
        return Err(EvidenceError::Invalid(vec![FieldError::new(
            "organisation_id",
            format!("a registration is shared with at most {MAX_SHARED_WITH} organisations"),
        )]));
    }
    Ok(EvidenceEvent::EvidenceShared(EvidenceShared {
        evidence_id: record.evidence_id.clone(),
        organisation_id: organisation_id.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(digest: &str) -> RegisterEvidence {
        RegisterEvidence {
            algorithm: ContentHashAlg::Sha256,
            digest: digest.into(),
            title: " Contract scan ".into(),
            case_reference: None,
            metadata: None,
            file_name: None,
            size_bytes: None,
        }
    }

    #[test]
    fn register_normalises_and_validates() {
        let e = decide_register("e1", cmd(&"AB".repeat(32))).unwrap();
        let EvidenceEvent::EvidenceRegistered(r) = &e else {
            panic!()
        };
        assert_eq!(r.content_hash.digest, "ab".repeat(32));
        // Text is recorded exactly as sent: the receipt shows what the party sent.
        assert_eq!(r.title, " Contract scan ");
        let err = decide_register("e1", cmd("abc")).unwrap_err();
        assert!(matches!(err, EvidenceError::Invalid(f) if f[0].field == "content_hash.digest"));
        let mut c = cmd(&"ab".repeat(32));
        c.title = "  ".into();
        assert!(
            matches!(decide_register("e1", c), Err(EvidenceError::Invalid(f)) if f[0].field == "title")
        );
    }

    #[test]
    fn withdraw_rules_and_replay() {
        let reg = decide_register("e1", cmd(&"ab".repeat(32))).unwrap();
        let record = EvidenceRecord::replay([(&reg, "org-a")]).unwrap();
        assert_eq!(record.version, 1);
        assert_eq!(
            decide_withdraw(&record, "org-b", "x"),
            Err(EvidenceError::NotOwner("e1".into()))
        );
        let w = decide_withdraw(&record, "org-a", "filed in error").unwrap();
        let record = EvidenceRecord::replay([(&reg, "org-a"), (&w, "org-a")]).unwrap();
        assert_eq!(
            (record.status, record.version),
            (EvidenceStatus::Withdrawn, 2)
        );
        assert_eq!(
            decide_withdraw(&record, "org-a", "again"),
            Err(EvidenceError::AlreadyWithdrawn("e1".into()))
        );
        // Events survive their envelope round trip.
        let back = EvidenceEvent::from_parts(w.event_type(), w.type_version(), &w.payload());
        assert_eq!(back, Ok(w));
    }

    /// Each event is written at the current version of its type, the newest declared.
    #[test]
    fn events_are_written_at_the_current_version_of_their_type() {
        let reg = decide_register("e1", cmd(&"ab".repeat(32))).unwrap();
        let record = EvidenceRecord::replay([(&reg, "org-a")]).unwrap();
        let events = [
            reg,
            decide_share(&record, "org-a", "org-b").unwrap(),
            decide_withdraw(&record, "org-a", "r").unwrap(),
        ];
        for e in &events {
            assert_eq!(
                Some(e.type_version()),
                kernel_domain::current_version(EVENT_TYPES, e.event_type()),
                "{e:?}"
            );
        }
        assert_eq!(kernel_domain::check_event_types(EVENT_TYPES), Ok(()));
        let written: Vec<_> = EVENT_TYPES
            .iter()
            .filter(|t| t.is_current())
            .map(|t| (t.name, t.version))
            .collect();
        assert_eq!(
            written,
            [
                ("EvidenceRegistered", 2),
                ("EvidenceWithdrawn", 1),
                ("EvidenceShared", 1)
            ]
        );
    }

    /// A registration stored at version 1 reads as version 2 without the file's name and size;
    /// a "v1" payload with them was never v1, and versions the domain never wrote are refused.
    #[test]
    fn stored_v1_registrations_read_as_v2() {
        let mut c = cmd(&"ab".repeat(32));
        c.case_reference = Some("2026-CV-0042".into());
        let EvidenceEvent::EvidenceRegistered(v2) = decide_register("e1", c).unwrap() else {
            panic!()
        };
        let v1 = serde_json::json!({
            "evidence_id": "e1",
            "content_hash": {"algorithm": "sha-256", "digest": "ab".repeat(32)},
            "title": " Contract scan ",
            "case_reference": "2026-CV-0042",
        });
        assert_eq!(
            EvidenceEvent::from_parts("EvidenceRegistered", 1, &v1),
            Ok(EvidenceEvent::EvidenceRegistered(v2.clone()))
        );
        let mut with_file = v1.clone();
        with_file["file_name"] = "contract.pdf".into();
        let err = EvidenceEvent::from_parts("EvidenceRegistered", 1, &with_file).unwrap_err();
        assert!(err.contains("version 1 has no `file_name`"), "{err}");
        let read = EvidenceEvent::from_parts("EvidenceRegistered", 2, &with_file).unwrap();
        assert_eq!(
            read,
            EvidenceEvent::EvidenceRegistered(EvidenceRegistered {
                file_name: Some("contract.pdf".into()),
                ..v2
            })
        );
        for (event_type, version) in [
            ("EvidenceRegistered", 3),
            ("EvidenceRegistered", 0),
            ("EvidenceWithdrawn", 2),
            ("EvidenceAmended", 1),
        ] {
            let err = EvidenceEvent::from_parts(event_type, version, &v1).unwrap_err();
            assert!(err.contains(event_type), "{err}");
        }
    }

    mod schemas {
        use super::*;
        use serde_json::{Value, json};
        use veritrace_kernel::EventEnvelope;
        use veritrace_kernel::strict_json::{TEXT_FIELD_PATTERN, value_schema};
        use veritrace_kernel::testing::EventSchemas;

        const ID: &str = "0190a000-0000-7000-8000-000000000002";
        type Edit = dyn Fn(&mut Value);

        fn envelope(event_type: &str, payload: Value) -> EventEnvelope {
            let type_version = kernel_domain::current_version(EVENT_TYPES, event_type).unwrap_or(1);
            EventEnvelope {
                id: uuid::Uuid::now_v7(),
                service: SERVICE.into(),
                stream: format!("evidence-{ID}"),
                stream_version: 1,
                event_type: event_type.into(),
                type_version,
                occurred_at: "2026-01-01T00:00:00.000Z".into(),
                recorded_at: "2026-01-01T00:00:00.000Z".into(),
                organisation: "org-a".into(),
                payload,
            }
        }

        fn checked(event: &EvidenceEvent) -> Result<(), String> {
            let schemas = EventSchemas::new(SERVICE, EVENT_TYPES).expect("the schemas compile");
            schemas.check(&envelope(event.event_type(), event.payload()))
        }

        /// Whatever `decide_*` accepts, at the edges of every rule, matches its schema.
        #[test]
        fn every_event_decided_matches_its_schema() {
            let mut events = Vec::new();
            for (i, alg) in ContentHashAlg::ALL.into_iter().enumerate() {
                let digest = "Ab".repeat(alg.digest_len());
                let metadata = json!({
                    "exhibit": i, "pages": [1, 2.5, -9007199254740991_i64], "sealed": true,
                    "note": "tab\tand\nline breaks, 中文, ☃", "nested": {"deeper": {"none": null}},
                    "": "an empty key"
                });
                events.push(
                    decide_register(
                        ID,
                        RegisterEvidence {
                            algorithm: alg,
                            digest,
                            title: format!(" {} ", "証".repeat(MAX_TITLE_CHARS - 2)),
                            case_reference: Some("c".repeat(MAX_CASE_REFERENCE_CHARS)),
                            metadata: metadata.as_object().cloned(),
                            file_name: Some(if i % 2 == 0 {
                                format!("{}\t", "ф".repeat(MAX_FILE_NAME_CHARS - 1))
                            } else {
                                "x".into()
                            }),
                            size_bytes: Some([0, 1, MAX_SIZE_BYTES, 4096][i % 4]),
                        },
                    )
                    .unwrap(),
                );
            }
            let minimal = decide_register(ID, cmd(&"ab".repeat(32))).unwrap();
            let record = EvidenceRecord::replay([(&minimal, "org-a")]).unwrap();
            let withdrawn = decide_withdraw(
                &record,
                "org-a",
                &format!("x{}", " ".repeat(MAX_REASON_CHARS - 1)),
            )
            .unwrap();
            events.extend([minimal, withdrawn]);
            for e in &events {
                assert_eq!(checked(e), Ok(()), "{e:?}");
            }
        }

        /// What the domain refuses, or never records, its schema refuses too: the schemas
        /// constrain, they do not just describe.
        #[test]
        fn payloads_that_break_a_rule_break_the_schema() {
            let good = decide_register(ID, cmd(&"ab".repeat(32)))
                .unwrap()
                .payload();
            let registered = |edit: &Edit| {
                let mut p = good.clone();
                edit(&mut p);
                envelope("EvidenceRegistered", p)
            };
            let schemas = EventSchemas::new(SERVICE, EVENT_TYPES).unwrap();
            assert_eq!(schemas.check(&registered(&|_| {})), Ok(()));
            let broken: &[(&str, &Edit)] = &[
                ("unknown member", &|p| p["note"] = json!("x")),
                ("unknown content_hash member", &|p| {
                    p["content_hash"]["salt"] = json!("x")
                }),
                ("missing title", &|p| {
                    p.as_object_mut().unwrap().remove("title");
                }),
                ("digest too short", &|p| {
                    p["content_hash"]["digest"] = json!("ab".repeat(31))
                }),
                ("sha-512 digest of 32 bytes", &|p| {
                    p["content_hash"]["algorithm"] = json!("sha-512")
                }),
                ("upper-case digest", &|p| {
                    p["content_hash"]["digest"] = json!("AB".repeat(32))
                }),
                ("unknown algorithm", &|p| {
                    p["content_hash"]["algorithm"] = json!("md5")
                }),
                ("blank title", &|p| p["title"] = json!(" \t ")),
                ("title too long", &|p| {
                    p["title"] = json!("t".repeat(MAX_TITLE_CHARS + 1))
                }),
                ("control character", &|p| p["title"] = json!("a\u{7}b")),
                ("empty case reference", &|p| p["case_reference"] = json!("")),
                ("null metadata", &|p| p["metadata"] = json!(null)),
                ("unsafe integer", &|p| {
                    p["metadata"] = json!({"n": 9007199254740992_i64})
                }),
                ("control character in metadata", &|p| {
                    p["metadata"] = json!({"k": ["\u{1b}"]})
                }),
                ("evidence id not a UUIDv7", &|p| {
                    p["evidence_id"] = json!("e1")
                }),
                ("blank file name", &|p| p["file_name"] = json!(" ")),
                ("file name too long", &|p| {
                    p["file_name"] = json!("f".repeat(MAX_FILE_NAME_CHARS + 1))
                }),
                ("null file name", &|p| p["file_name"] = json!(null)),
                ("negative size", &|p| p["size_bytes"] = json!(-1)),
                ("unsafe size", &|p| {
                    p["size_bytes"] = json!(MAX_SIZE_BYTES + 1)
                }),
                ("fractional size", &|p| p["size_bytes"] = json!(1.5)),
                ("size as a string", &|p| p["size_bytes"] = json!("1")),
            ];
            for (what, edit) in broken {
                let e = registered(edit);
                assert!(schemas.check(&e).is_err(), "{what}: {}", e.payload);
            }
            // What serde refuses on reading, the schema refuses on publishing.
            assert!(
                EvidenceEvent::from_parts(
                    "EvidenceRegistered",
                    2,
                    &registered(broken[0].1).payload
                )
                .is_err()
            );
            // Version 1 stays as it was published: without the members v2 added.
            let mut v1 = registered(&|p| p["file_name"] = json!("contract.pdf"));
            assert_eq!(schemas.check(&v1), Ok(()));
            v1.type_version = 1;
            assert!(schemas.check(&v1).unwrap_err().contains("file_name"));
            v1.payload.as_object_mut().unwrap().remove("file_name");
            assert_eq!(schemas.check(&v1), Ok(()));
            let withdrawn = envelope(
                "EvidenceWithdrawn",
                json!({"evidence_id": ID, "reason": "r".repeat(MAX_REASON_CHARS + 1)}),
            );
            assert!(schemas.check(&withdrawn).is_err());
            // A type or version the domain does not declare has no schema to pass.
            let mut v3 = registered(&|_| {});
            v3.type_version = 3;
            assert!(
                schemas
                    .check(&v3)
                    .unwrap_err()
                    .contains("declares no schema")
            );
            let other = envelope("EvidenceAmended", good.clone());
            assert!(
                schemas
                    .check(&other)
                    .unwrap_err()
                    .contains("declares no schema")
            );
        }

        /// The schemas state the domain's constants, the platform's text and value rules and
        /// the receipt's content hash, not copies that could drift.
        #[test]
        fn schemas_state_the_rules_of_the_code() {
            let schema = |name: &str, version: u32| -> Value {
                let t = EVENT_TYPES
                    .iter()
                    .find(|t| t.name == name && t.version == version)
                    .expect(name);
                serde_json::from_str(t.schema).unwrap()
            };
            let registered = schema("EvidenceRegistered", 2);
            let withdrawn = schema("EvidenceWithdrawn", 1);
            for (s, field, max) in [
                (&registered, "title", MAX_TITLE_CHARS),
                (&registered, "case_reference", MAX_CASE_REFERENCE_CHARS),
                (&registered, "file_name", MAX_FILE_NAME_CHARS),
                (&withdrawn, "reason", MAX_REASON_CHARS),
            ] {
                let f = &s["properties"][field];
                assert_eq!(f["maxLength"], json!(max), "{field}");
                assert_eq!(f["pattern"], json!(TEXT_FIELD_PATTERN), "{field}");
            }
            // The kernel's value schema, its self-reference moved into this document.
            let mut value = value_schema();
            rewrite_refs(&mut value);
            assert_eq!(
                as_f64s(registered["$defs"]["jsonValue"].clone()),
                as_f64s(value)
            );
            let receipt: Value =
                serde_json::from_str(include_str!("../../../../schemas/receipt.schema.json"))
                    .unwrap();
            assert_eq!(
                registered["$defs"]["contentHash"],
                receipt["$defs"]["contentHash"]
            );
            let algorithms: Vec<&str> = ContentHashAlg::ALL.iter().map(|a| a.name()).collect();
            assert_eq!(
                registered["$defs"]["contentHash"]["properties"]["algorithm"]["enum"],
                json!(algorithms)
            );
            assert!(
                registered["properties"]["metadata"]["description"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("at most {MAX_METADATA_BYTES} bytes"))
            );
            let size = &registered["properties"]["size_bytes"];
            assert_eq!(
                (&size["type"], &size["minimum"], &size["maximum"]),
                (&json!("integer"), &json!(0), &json!(MAX_SIZE_BYTES))
            );
            // Version 2 is version 1 and two optional members: the upcast adds nothing else.
            let v1 = schema("EvidenceRegistered", 1);
            let mut v2 = registered.clone();
            for member in ["file_name", "size_bytes"] {
                assert!(v1["properties"][member].is_null(), "{member}");
                v2["properties"].as_object_mut().unwrap().remove(member);
            }
            for part in [
                "type",
                "additionalProperties",
                "required",
                "properties",
                "$defs",
            ] {
                assert_eq!(v1[part], v2[part], "{part}");
            }
        }

        fn rewrite_refs(v: &mut Value) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m.iter_mut() {
                        if k == "$ref" {
                            *x = json!("#/$defs/jsonValue");
                        } else {
                            rewrite_refs(x);
                        }
                    }
                }
                Value::Array(a) => a.iter_mut().for_each(rewrite_refs),
                _ => {}
            }
        }

        /// Numbers compared by value (the kernel writes its bounds as doubles).
        fn as_f64s(v: Value) -> Value {
            match v {
                Value::Number(n) => json!(n.as_f64()),
                Value::Array(a) => Value::Array(a.into_iter().map(as_f64s).collect()),
                Value::Object(m) => {
                    Value::Object(m.into_iter().map(|(k, x)| (k, as_f64s(x))).collect())
                }
                other => other,
            }
        }
    }
}
