//! Case files for courts: every evidence registration that names a case becomes an exhibit of
//! that case's file; a withdrawn registration is marked withdrawn there; a registration shared
//! with another party lets that party read the exhibit too. Pure code: what the evidence
//! service published is read by its published schemas (`schemas/events/evidence/`, never its
//! Rust types), and each reaction is decided against the exhibit rebuilt from its own stream.

use chain_core::{ContentHash, ContentHashAlg};
use serde::{Deserialize, Serialize};
use veritrace_kernel::EventEnvelope;
use veritrace_kernel::domain::EventType;
use veritrace_kernel::reaction::ReactionSpec;
use veritrace_kernel::strict_json::check_text_field;

pub const SERVICE: &str = "cases";

/// The service whose events the case files follow.
pub const EVIDENCE: &str = "evidence";

/// The bounds of the evidence schemas' text members that an exhibit carries (the contract:
/// `schemas/events/evidence/`), restated here because no domain crate imports another.
pub const MAX_CASE_REFERENCE_CHARS: usize = 100;
pub const MAX_TITLE_CHARS: usize = 300;
pub const MAX_REASON_CHARS: usize = 1000;

/// The one reaction: evidence registrations, withdrawals and sharings, kept in case files.
pub const EXHIBITS: ReactionSpec = ReactionSpec {
    name: "exhibits",
    follows: &[
        "evidence.EvidenceRegistered",
        "evidence.EvidenceWithdrawn",
        "evidence.EvidenceShared",
    ],
};

/// Every event type the domain records, with the published schema of its payload
/// (`schemas/events/cases/<type>.v<version>.schema.json`).
pub const EVENT_TYPES: &[EventType] = &[
    veritrace_kernel::event_type!("cases", "CaseExhibitAdded", 1),
    veritrace_kernel::event_type!("cases", "CaseExhibitWithdrawn", 1),
    veritrace_kernel::event_type!("cases", "CaseExhibitShared", 1),
];

/// The events of an exhibit's stream, `exhibit-<evidence_id>`; each is the payload of an
/// envelope whose `type` is the variant name (`type_version` 1, [`EVENT_TYPES`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum CaseEvent {
    CaseExhibitAdded(CaseExhibitAdded),
    CaseExhibitWithdrawn(CaseExhibitWithdrawn),
    CaseExhibitShared(CaseExhibitShared),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseExhibitAdded {
    pub case_reference: String,
    pub evidence_id: String,
    /// The organisation that registered the evidence.
    pub registrant: String,
    pub content_hash: ContentHash,
    pub title: String,
    /// The evidence service's `EvidenceRegistered` this exhibit comes from.
    pub registered_event_id: String,
    /// When the evidence service recorded that registration.
    pub registered_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseExhibitWithdrawn {
    pub case_reference: String,
    pub evidence_id: String,
    pub reason: String,
    /// The evidence service's `EvidenceWithdrawn` this comes from.
    pub withdrawn_event_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseExhibitShared {
    pub case_reference: String,
    pub evidence_id: String,
    /// The organisation that reads the exhibit from now on.
    pub organisation_id: String,
    /// The evidence service's `EvidenceShared` this comes from.
    pub shared_event_id: String,
}

impl CaseEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            CaseEvent::CaseExhibitAdded(_) => "CaseExhibitAdded",
            CaseEvent::CaseExhibitWithdrawn(_) => "CaseExhibitWithdrawn",
            CaseEvent::CaseExhibitShared(_) => "CaseExhibitShared",
        }
    }

    pub fn payload(&self) -> serde_json::Value {
        let v = match self {
            CaseEvent::CaseExhibitAdded(e) => serde_json::to_value(e),
            CaseEvent::CaseExhibitWithdrawn(e) => serde_json::to_value(e),
            CaseEvent::CaseExhibitShared(e) => serde_json::to_value(e),
        };
        v.unwrap_or(serde_json::Value::Null)
    }

    pub fn from_parts(event_type: &str, payload: &serde_json::Value) -> Result<Self, String> {
        serde_json::from_value(serde_json::json!({"type": event_type, "payload": payload}))
            .map_err(|e| format!("{event_type}: {e}"))
    }

    pub fn evidence_id(&self) -> &str {
        match self {
            CaseEvent::CaseExhibitAdded(e) => &e.evidence_id,
            CaseEvent::CaseExhibitWithdrawn(e) => &e.evidence_id,
            CaseEvent::CaseExhibitShared(e) => &e.evidence_id,
        }
    }
}

/// The stream of the exhibit that evidence `evidence_id` is (or would be): one stream per
/// exhibit, so that a withdrawal or a sharing, which does not name the case, finds its case.
pub fn stream_of(evidence_id: &str) -> String {
    format!("exhibit-{evidence_id}")
}

/// What an evidence event says, as far as case files care.
#[derive(Clone, Debug, PartialEq)]
pub enum EvidenceFact {
    Registered {
        content_hash: ContentHash,
        title: String,
        case_reference: Option<String>,
    },
    Withdrawn {
        reason: String,
    },
    Shared {
        organisation_id: String,
    },
}

/// An evidence event, read by its published schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub evidence_id: String,
    pub fact: EvidenceFact,
    /// The evidence event's id, organisation (who recorded it) and recording time.
    pub event_id: String,
    pub organisation: String,
    pub recorded_at: String,
}

impl Observation {
    /// Whether deciding on it needs its exhibit's state: a registration naming no case files
    /// nothing, whatever the state (most registrations: deciding them must cost no read).
    pub fn needs_exhibit(&self) -> bool {
        !matches!(
            self.fact,
            EvidenceFact::Registered {
                case_reference: None,
                ..
            }
        )
    }
}

/// Why an event delivered to the reaction cannot be read; it is dead-lettered, not guessed at.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UnreadableEvent {
    #[error("{service}.{event_type} v{version} is not an event case files follow")]
    NotFollowed {
        service: String,
        event_type: String,
        version: u32,
    },
    #[error("{event_type} v{version}: {field} {message}")]
    Invalid {
        event_type: String,
        version: u32,
        field: String,
        message: String,
    },
}

/// `EvidenceRegistered` v1 and v2 (v2 adds optional members, ignored here): only what an
/// exhibit needs. Unknown members are not refused: the schema of each version is the
/// producer's to enforce, and a newer version's additions must not stop the reader.
#[derive(Deserialize)]
struct RegisteredPayload {
    evidence_id: String,
    content_hash: RawContentHash,
    title: String,
    #[serde(default)]
    case_reference: Option<String>,
}

#[derive(Deserialize)]
struct RawContentHash {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
struct WithdrawnPayload {
    evidence_id: String,
    reason: String,
}

#[derive(Deserialize)]
struct SharedPayload {
    evidence_id: String,
    organisation_id: String,
}

/// The versions of each evidence event type this reader knows.
fn follows_version(event_type: &str, version: u32) -> bool {
    matches!(
        (event_type, version),
        ("EvidenceRegistered", 1 | 2) | ("EvidenceWithdrawn", 1) | ("EvidenceShared", 1)
    )
}

/// Reads an evidence event by its published schema: its type and version must be one this
/// reader knows, and the members it uses must hold to that schema's rules (anything else is
/// refused rather than filed).
pub fn observe(envelope: &EventEnvelope) -> Result<Observation, UnreadableEvent> {
    let event_type = envelope.event_type.as_str();
    let version = envelope.type_version;
    if envelope.service != EVIDENCE || !follows_version(event_type, version) {
        return Err(UnreadableEvent::NotFollowed {
            service: envelope.service.clone(),
            event_type: event_type.to_string(),
            version,
        });
    }
    let invalid = |field: &str, message: String| UnreadableEvent::Invalid {
        event_type: event_type.to_string(),
        version,
        field: field.to_string(),
        message,
    };
    let payload = |e: serde_json::Error| invalid("payload", e.to_string());
    let (evidence_id, fact) = match event_type {
        "EvidenceRegistered" => {
            let p = RegisteredPayload::deserialize(&envelope.payload).map_err(payload)?;
            let algorithm =
                ContentHashAlg::from_name(&p.content_hash.algorithm).ok_or_else(|| {
                    invalid(
                        "content_hash.algorithm",
                        format!("{:?} is not a known algorithm", p.content_hash.algorithm),
                    )
                })?;
            let content_hash = ContentHash::normalized(algorithm, &p.content_hash.digest)
                .map_err(|e| invalid("content_hash.digest", e.to_string()))?;
            if content_hash.digest != p.content_hash.digest {
                return Err(invalid(
                    "content_hash.digest",
                    "must be lowercase hex".into(),
                ));
            }
            check_text_field(&p.title, MAX_TITLE_CHARS).map_err(|m| invalid("title", m))?;
            if let Some(c) = &p.case_reference {
                check_text_field(c, MAX_CASE_REFERENCE_CHARS)
                    .map_err(|m| invalid("case_reference", m))?;
            }
            // The registrant is named in the exhibit's payload: an organisation id, as the
            // identity service makes them.
            check_uuid_v7(&envelope.organisation).map_err(|m| invalid("organisation", m))?;
            (
                p.evidence_id,
                EvidenceFact::Registered {
                    content_hash,
                    title: p.title,
                    case_reference: p.case_reference,
                },
            )
        }
        "EvidenceWithdrawn" => {
            let p = WithdrawnPayload::deserialize(&envelope.payload).map_err(payload)?;
            check_text_field(&p.reason, MAX_REASON_CHARS).map_err(|m| invalid("reason", m))?;
            (p.evidence_id, EvidenceFact::Withdrawn { reason: p.reason })
        }
        _ => {
            let p = SharedPayload::deserialize(&envelope.payload).map_err(payload)?;
            check_uuid_v7(&p.organisation_id).map_err(|m| invalid("organisation_id", m))?;
            (
                p.evidence_id,
                EvidenceFact::Shared {
                    organisation_id: p.organisation_id,
                },
            )
        }
    };
    // It names the exhibit's stream: nothing but the id the schema allows.
    check_uuid_v7(&evidence_id).map_err(|m| invalid("evidence_id", m))?;
    Ok(Observation {
        evidence_id,
        fact,
        event_id: envelope.id.to_string(),
        organisation: envelope.organisation.clone(),
        recorded_at: envelope.recorded_at.clone(),
    })
}

/// A UUIDv7 in lowercase hyphenated form, as the schemas require of ids.
fn check_uuid_v7(s: &str) -> Result<(), String> {
    match uuid::Uuid::parse_str(s) {
        Ok(u) if u.get_version_num() == 7 && u.hyphenated().to_string() == s => Ok(()),
        _ => Err(format!(
            "must be a UUIDv7 in lowercase hyphenated form, got {s:?}"
        )),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExhibitStatus {
    Registered,
    Withdrawn,
}

impl ExhibitStatus {
    pub fn name(self) -> &'static str {
        match self {
            ExhibitStatus::Registered => "registered",
            ExhibitStatus::Withdrawn => "withdrawn",
        }
    }
}

/// An exhibit, rebuilt from its stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Exhibit {
    pub case_reference: String,
    pub evidence_id: String,
    pub registrant: String,
    pub status: ExhibitStatus,
    /// The organisations the registration was shared with, in order.
    pub shared_with: Vec<String>,
    /// Its stream's version.
    pub version: u64,
}

impl Exhibit {
    /// Folds an exhibit's stream.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a CaseEvent>) -> Option<Exhibit> {
        let mut exhibit: Option<Exhibit> = None;
        for event in events {
            exhibit = match (exhibit.take(), event) {
                (None, CaseEvent::CaseExhibitAdded(a)) => Some(Exhibit {
                    case_reference: a.case_reference.clone(),
                    evidence_id: a.evidence_id.clone(),
                    registrant: a.registrant.clone(),
                    status: ExhibitStatus::Registered,
                    shared_with: Vec::new(),
                    version: 1,
                }),
                (Some(mut x), CaseEvent::CaseExhibitWithdrawn(_)) => {
                    x.status = ExhibitStatus::Withdrawn;
                    x.version += 1;
                    Some(x)
                }
                (Some(mut x), CaseEvent::CaseExhibitShared(s)) => {
                    if !x.shared_with.contains(&s.organisation_id) {
                        x.shared_with.push(s.organisation_id.clone());
                    }
                    x.version += 1;
                    Some(x)
                }
                // Orders `decide` never produces; versions still count every event.
                (Some(mut x), CaseEvent::CaseExhibitAdded(_)) => {
                    x.version += 1;
                    Some(x)
                }
                (None, _) => None,
            };
        }
        exhibit
    }
}

/// What the case files record in answer to `observed`, given the exhibit its evidence already
/// is (None: none yet). None: nothing to record, because the registration names no case, the
/// evidence is no exhibit, or the fact is in the file already (a redelivery decided again).
pub fn decide(observed: &Observation, exhibit: Option<&Exhibit>) -> Option<CaseEvent> {
    match (&observed.fact, exhibit) {
        (
            EvidenceFact::Registered {
                content_hash,
                title,
                case_reference: Some(case_reference),
            },
            None,
        ) => Some(CaseEvent::CaseExhibitAdded(CaseExhibitAdded {
            case_reference: case_reference.clone(),
            evidence_id: observed.evidence_id.clone(),
            registrant: observed.organisation.clone(),
            content_hash: content_hash.clone(),
            title: title.clone(),
            registered_event_id: observed.event_id.clone(),
            registered_at: observed.recorded_at.clone(),
        })),
        (EvidenceFact::Withdrawn { reason }, Some(x)) if x.status == ExhibitStatus::Registered => {
            Some(CaseEvent::CaseExhibitWithdrawn(CaseExhibitWithdrawn {
                case_reference: x.case_reference.clone(),
                evidence_id: x.evidence_id.clone(),
                reason: reason.clone(),
                withdrawn_event_id: observed.event_id.clone(),
            }))
        }
        (EvidenceFact::Shared { organisation_id }, Some(x))
            if *organisation_id != x.registrant && !x.shared_with.contains(organisation_id) =>
        {
            Some(CaseEvent::CaseExhibitShared(CaseExhibitShared {
                case_reference: x.case_reference.clone(),
                evidence_id: x.evidence_id.clone(),
                organisation_id: organisation_id.clone(),
                shared_event_id: observed.event_id.clone(),
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use veritrace_kernel::testing::EventSchemas;

    const EVIDENCE_ID: &str = "0190a000-0000-7000-8000-000000000002";
    const REGISTRANT: &str = "0190a000-0000-7000-8000-00000000000a";
    const PARTY: &str = "0190a000-0000-7000-8000-00000000000b";

    /// A change to a payload, and what it breaks.
    type Edit = dyn Fn(&mut Value);

    fn evidence_event(event_type: &str, version: u32, payload: Value) -> EventEnvelope {
        EventEnvelope {
            id: uuid::Uuid::now_v7(),
            service: EVIDENCE.into(),
            stream: format!("evidence-{EVIDENCE_ID}"),
            stream_version: 1,
            event_type: event_type.into(),
            type_version: version,
            occurred_at: "2026-03-01T09:00:00.000Z".into(),
            recorded_at: "2026-03-01T09:00:00.125Z".into(),
            organisation: REGISTRANT.into(),
            payload,
        }
    }

    fn registered(case_reference: Option<&str>) -> Value {
        let mut p = json!({
            "evidence_id": EVIDENCE_ID,
            "content_hash": {"algorithm": "sha-256", "digest": "ab".repeat(32)},
            "title": "Signed delivery contract",
            "metadata": {"pages": 3},
        });
        if let Some(c) = case_reference {
            p["case_reference"] = json!(c);
        }
        p
    }

    fn observed(event_type: &str, payload: Value) -> Observation {
        observe(&evidence_event(event_type, 1, payload)).expect("readable")
    }

    /// The stream `decide` builds from `observations`, deciding each against the exhibit
    /// folded so far, as the reaction does.
    fn filed(observations: &[Observation]) -> Vec<CaseEvent> {
        let mut events = Vec::new();
        for o in observations {
            let exhibit = Exhibit::replay(&events);
            if let Some(e) = decide(o, exhibit.as_ref()) {
                events.push(e);
            }
        }
        events
    }

    #[test]
    fn a_registration_naming_a_case_becomes_its_exhibit_once() {
        let registration = observed("EvidenceRegistered", registered(Some("2026-CV-0042")));
        let Some(CaseEvent::CaseExhibitAdded(added)) = decide(&registration, None) else {
            panic!("an exhibit is added")
        };
        assert_eq!(
            added,
            CaseExhibitAdded {
                case_reference: "2026-CV-0042".into(),
                evidence_id: EVIDENCE_ID.into(),
                registrant: REGISTRANT.into(),
                content_hash: ContentHash::normalized(ContentHashAlg::Sha256, &"ab".repeat(32))
                    .unwrap(),
                title: "Signed delivery contract".into(),
                registered_event_id: registration.event_id.clone(),
                registered_at: "2026-03-01T09:00:00.125Z".into(),
            }
        );
        // The same registration delivered again: already in the file.
        let events = filed(&[registration.clone(), registration.clone()]);
        assert_eq!(events.len(), 1);
        let exhibit = Exhibit::replay(&events).unwrap();
        assert_eq!(
            (
                exhibit.status,
                exhibit.version,
                exhibit.case_reference.as_str()
            ),
            (ExhibitStatus::Registered, 1, "2026-CV-0042")
        );
        assert_eq!(decide(&registration, Some(&exhibit)), None);
    }

    #[test]
    fn a_registration_without_a_case_files_nothing() {
        let registration = observed("EvidenceRegistered", registered(None));
        assert_eq!(decide(&registration, None), None);
        // Decided without reading the exhibit's stream: whatever the state, nothing is filed.
        assert!(!registration.needs_exhibit());
        let filed_one = filed(&[observed(
            "EvidenceRegistered",
            registered(Some("2026-CV-0042")),
        )]);
        let exhibit = Exhibit::replay(&filed_one).expect("an exhibit");
        assert_eq!(decide(&registration, Some(&exhibit)), None);
        assert!(observed("EvidenceRegistered", registered(Some("2026-CV-0042"))).needs_exhibit());
        // Its withdrawal and sharing then find no exhibit, and file nothing either.
        let withdrawal = observed(
            "EvidenceWithdrawn",
            json!({"evidence_id": EVIDENCE_ID, "reason": "filed in error"}),
        );
        let sharing = observed(
            "EvidenceShared",
            json!({"evidence_id": EVIDENCE_ID, "organisation_id": PARTY}),
        );
        assert!(filed(&[registration, withdrawal, sharing]).is_empty());
    }

    #[test]
    fn a_withdrawal_marks_the_exhibit_withdrawn_once() {
        let registration = observed("EvidenceRegistered", registered(Some("2026-CV-0042")));
        let withdrawal = observed(
            "EvidenceWithdrawn",
            json!({"evidence_id": EVIDENCE_ID, "reason": "filed in error"}),
        );
        let events = filed(&[registration, withdrawal.clone(), withdrawal.clone()]);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(
            events[1],
            CaseEvent::CaseExhibitWithdrawn(CaseExhibitWithdrawn {
                case_reference: "2026-CV-0042".into(),
                evidence_id: EVIDENCE_ID.into(),
                reason: "filed in error".into(),
                withdrawn_event_id: withdrawal.event_id.clone(),
            })
        );
        let exhibit = Exhibit::replay(&events).unwrap();
        assert_eq!(
            (exhibit.status, exhibit.version),
            (ExhibitStatus::Withdrawn, 2)
        );
        // Decided against nothing filed, a withdrawal is nothing.
        assert_eq!(decide(&withdrawal, None), None);
    }

    #[test]
    fn a_sharing_lets_the_party_in_once_and_never_the_registrant() {
        let registration = observed("EvidenceRegistered", registered(Some("2026-CV-0042")));
        let sharing = observed(
            "EvidenceShared",
            json!({"evidence_id": EVIDENCE_ID, "organisation_id": PARTY}),
        );
        let to_registrant = observed(
            "EvidenceShared",
            json!({"evidence_id": EVIDENCE_ID, "organisation_id": REGISTRANT}),
        );
        let events = filed(&[
            registration,
            sharing.clone(),
            sharing.clone(),
            to_registrant,
        ]);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(
            events[1],
            CaseEvent::CaseExhibitShared(CaseExhibitShared {
                case_reference: "2026-CV-0042".into(),
                evidence_id: EVIDENCE_ID.into(),
                organisation_id: PARTY.into(),
                shared_event_id: sharing.event_id.clone(),
            })
        );
        assert_eq!(Exhibit::replay(&events).unwrap().shared_with, [PARTY]);
    }

    #[test]
    fn registrations_of_v1_and_v2_read_alike_and_other_members_are_ignored() {
        let mut v2 = registered(Some("2026-CV-0042"));
        v2["file_name"] = json!("contract.pdf");
        v2["size_bytes"] = json!(52_133);
        v2["a_member_of_some_later_change"] = json!({"x": 1});
        let one = observe(&evidence_event(
            "EvidenceRegistered",
            1,
            registered(Some("2026-CV-0042")),
        ))
        .unwrap();
        let two = observe(&evidence_event("EvidenceRegistered", 2, v2)).unwrap();
        assert_eq!(one.fact, two.fact);
    }

    #[test]
    fn events_it_cannot_read_are_refused_naming_why() {
        let refused = |e: EventEnvelope| observe(&e).unwrap_err().to_string();
        let good = registered(Some("2026-CV-0042"));
        assert!(
            refused(evidence_event("EvidenceRegistered", 3, good.clone()))
                .contains("EvidenceRegistered v3 is not an event case files follow")
        );
        assert!(
            refused(evidence_event("EvidenceAmended", 1, good.clone())).contains("not an event")
        );
        let mut other_service = evidence_event("EvidenceRegistered", 1, good.clone());
        other_service.service = "finance".into();
        assert!(refused(other_service).contains("finance.EvidenceRegistered"));
        let broken: &[(&str, &Edit)] = &[
            ("payload", &|p| {
                p.as_object_mut().unwrap().remove("title");
            }),
            ("evidence_id", &|p| p["evidence_id"] = json!("../../etc")),
            ("evidence_id", &|p| {
                p["evidence_id"] = json!(EVIDENCE_ID.to_uppercase())
            }),
            ("content_hash.digest", &|p| {
                p["content_hash"]["digest"] = json!("ab".repeat(31))
            }),
            ("content_hash.digest", &|p| {
                p["content_hash"]["digest"] = json!("AB".repeat(32))
            }),
            ("content_hash.algorithm", &|p| {
                p["content_hash"]["algorithm"] = json!("md5")
            }),
            ("title", &|p| p["title"] = json!(" ")),
            ("case_reference", &|p| {
                p["case_reference"] = json!("c".repeat(MAX_CASE_REFERENCE_CHARS + 1))
            }),
            ("case_reference", &|p| {
                p["case_reference"] = json!("a\u{7}b")
            }),
        ];
        for (field, edit) in broken {
            let mut p = good.clone();
            edit(&mut p);
            let why = refused(evidence_event("EvidenceRegistered", 1, p.clone()));
            assert!(why.contains(field), "{p}: {why}");
        }
        let mut not_an_organisation = evidence_event("EvidenceRegistered", 1, good);
        not_an_organisation.organisation = "org-a".into();
        assert!(refused(not_an_organisation).contains("organisation"));
        assert!(
            refused(evidence_event(
                "EvidenceWithdrawn",
                1,
                json!({"evidence_id": EVIDENCE_ID, "reason": ""})
            ))
            .contains("reason")
        );
        assert!(
            refused(evidence_event(
                "EvidenceShared",
                1,
                json!({"evidence_id": EVIDENCE_ID, "organisation_id": "someone"})
            ))
            .contains("organisation_id")
        );
    }

    mod schemas {
        use super::*;

        fn envelope(event: &CaseEvent) -> EventEnvelope {
            EventEnvelope {
                id: uuid::Uuid::now_v7(),
                service: SERVICE.into(),
                stream: stream_of(event.evidence_id()),
                stream_version: 1,
                event_type: event.event_type().into(),
                type_version: 1,
                occurred_at: "2026-01-01T00:00:00.000Z".into(),
                recorded_at: "2026-01-01T00:00:00.000Z".into(),
                organisation: REGISTRANT.into(),
                payload: event.payload(),
            }
        }

        /// Whatever `decide` files, at the edges of every rule it copies from the evidence
        /// schemas, matches its own schema, and reads back as itself.
        #[test]
        fn every_event_decided_matches_its_schema() {
            let schemas = EventSchemas::new(SERVICE, EVENT_TYPES).expect("the schemas compile");
            let mut events = Vec::new();
            for alg in ContentHashAlg::ALL {
                let mut p = registered(Some(&format!(
                    " {}",
                    "證".repeat(MAX_CASE_REFERENCE_CHARS - 1)
                )));
                p["content_hash"] =
                    json!({"algorithm": alg.name(), "digest": "0f".repeat(alg.digest_len())});
                p["title"] = json!(format!("{}\t", "t".repeat(MAX_TITLE_CHARS - 1)));
                let registration = observed("EvidenceRegistered", p);
                let withdrawal = observed(
                    "EvidenceWithdrawn",
                    json!({"evidence_id": EVIDENCE_ID, "reason": "r\n".repeat(MAX_REASON_CHARS / 2)}),
                );
                let sharing = observed(
                    "EvidenceShared",
                    json!({"evidence_id": EVIDENCE_ID, "organisation_id": PARTY}),
                );
                events.extend(filed(&[registration, sharing, withdrawal]));
            }
            assert_eq!(events.len(), 3 * ContentHashAlg::ALL.len());
            for e in &events {
                assert_eq!(schemas.check(&envelope(e)), Ok(()), "{e:?}");
                assert_eq!(
                    CaseEvent::from_parts(e.event_type(), &e.payload()).as_ref(),
                    Ok(e)
                );
            }
        }

        /// What the code never records, the schemas refuse.
        #[test]
        fn payloads_that_break_a_rule_break_the_schema() {
            let schemas = EventSchemas::new(SERVICE, EVENT_TYPES).unwrap();
            let events = filed(&[
                observed("EvidenceRegistered", registered(Some("2026-CV-0042"))),
                observed(
                    "EvidenceShared",
                    json!({"evidence_id": EVIDENCE_ID, "organisation_id": PARTY}),
                ),
                observed(
                    "EvidenceWithdrawn",
                    json!({"evidence_id": EVIDENCE_ID, "reason": "filed in error"}),
                ),
            ]);
            assert_eq!(events.len(), 3);
            let breaks: &[(&str, &Edit)] = &[
                ("unknown member", &|p| p["note"] = json!("x")),
                ("missing case", &|p| {
                    p.as_object_mut().unwrap().remove("case_reference");
                }),
                ("blank case", &|p| p["case_reference"] = json!("  ")),
                ("long case", &|p| {
                    p["case_reference"] = json!("c".repeat(MAX_CASE_REFERENCE_CHARS + 1))
                }),
                ("evidence id", &|p| p["evidence_id"] = json!("e1")),
            ];
            for e in &events {
                for (what, edit) in breaks {
                    let mut envelope = envelope(e);
                    edit(&mut envelope.payload);
                    assert!(
                        schemas.check(&envelope).is_err(),
                        "{what}: {}",
                        envelope.payload
                    );
                }
            }
            let mut added = envelope(&events[0]);
            added.payload["registered_at"] = json!("2026-01-01T00:00:00Z");
            assert!(
                schemas.check(&added).is_err(),
                "a time without milliseconds"
            );
            added.payload = events[0].payload();
            added.payload["content_hash"]["digest"] = json!("AB".repeat(32));
            assert!(schemas.check(&added).is_err(), "an upper-case digest");
            added.payload = events[0].payload();
            added.payload["registrant"] = json!("org-a");
            assert!(schemas.check(&added).is_err(), "a registrant that is no id");
            // What serde refuses on reading, the schema refused on publishing.
            let mut unknown = events[0].payload();
            unknown["note"] = json!("x");
            assert!(CaseEvent::from_parts("CaseExhibitAdded", &unknown).is_err());
        }

        /// The schemas state the bounds the code copies from the evidence schemas, and the
        /// receipt's content hash: not copies that could drift.
        #[test]
        fn schemas_state_the_rules_of_the_code() {
            let schema = |name: &str| -> Value {
                let t = EVENT_TYPES.iter().find(|t| t.name == name).expect(name);
                serde_json::from_str(t.schema).unwrap()
            };
            // The evidence schemas at their current versions: what a registration holds now.
            let evidence = |name: &str, version: u32| -> Value {
                let path = format!(
                    "{}/../../schemas/events/evidence/{name}.v{version}.schema.json",
                    env!("CARGO_MANIFEST_DIR")
                );
                serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).unwrap()
            };
            let (added, withdrawn) = (schema("CaseExhibitAdded"), schema("CaseExhibitWithdrawn"));
            let (registration, withdrawal) = (
                evidence("EvidenceRegistered", 2),
                evidence("EvidenceWithdrawn", 1),
            );
            for (ours, theirs, field, max) in [
                (&added, &registration, "title", MAX_TITLE_CHARS),
                (
                    &added,
                    &registration,
                    "case_reference",
                    MAX_CASE_REFERENCE_CHARS,
                ),
                (&withdrawn, &withdrawal, "reason", MAX_REASON_CHARS),
            ] {
                let (o, t) = (&ours["properties"][field], &theirs["properties"][field]);
                assert_eq!(o["maxLength"], json!(max), "{field}");
                assert_eq!(t["maxLength"], json!(max), "{field}: the evidence schema");
                assert_eq!(o["pattern"], t["pattern"], "{field}");
                assert_eq!(
                    o["pattern"],
                    json!(veritrace_kernel::strict_json::TEXT_FIELD_PATTERN)
                );
            }
            assert_eq!(
                added["$defs"]["contentHash"],
                registration["$defs"]["contentHash"]
            );
        }
    }
}
