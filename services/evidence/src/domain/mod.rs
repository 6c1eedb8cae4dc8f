//! Judicial evidence: a party registers the hash of a file (never the file); it may later
//! withdraw the registration, which stays on record. Pure code: commands are decided against
//! the record rebuilt from its events.

use chain_core::{ContentHash, ContentHashAlg};
use serde::{Deserialize, Serialize};
use veritrace_kernel::FieldError;
use veritrace_kernel::strict_json::check_text_field;

pub const SERVICE: &str = "evidence";
pub const MAX_TITLE_CHARS: usize = 300;
pub const MAX_CASE_REFERENCE_CHARS: usize = 100;
pub const MAX_REASON_CHARS: usize = 1000;
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// The events of an evidence record; each is the payload of an envelope whose `type` is the
/// variant name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum EvidenceEvent {
    EvidenceRegistered(EvidenceRegistered),
    EvidenceWithdrawn(EvidenceWithdrawn),
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
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceWithdrawn {
    pub evidence_id: String,
    pub reason: String,
}

impl EvidenceEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            EvidenceEvent::EvidenceRegistered(_) => "EvidenceRegistered",
            EvidenceEvent::EvidenceWithdrawn(_) => "EvidenceWithdrawn",
        }
    }

    pub fn payload(&self) -> serde_json::Value {
        let v = match self {
            EvidenceEvent::EvidenceRegistered(e) => serde_json::to_value(e),
            EvidenceEvent::EvidenceWithdrawn(e) => serde_json::to_value(e),
        };
        v.unwrap_or(serde_json::Value::Null)
    }

    pub fn from_parts(event_type: &str, payload: &serde_json::Value) -> Result<Self, String> {
        serde_json::from_value(serde_json::json!({"type": event_type, "payload": payload}))
            .map_err(|e| format!("{event_type}: {e}"))
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
                    version: 1,
                }),
                (Some(mut r), EvidenceEvent::EvidenceWithdrawn(_)) => {
                    r.status = EvidenceStatus::Withdrawn;
                    r.version += 1;
                    Some(r)
                }
                // Orders `decide_*` never produces; versions still count every event.
                (Some(mut r), EvidenceEvent::EvidenceRegistered(_)) => {
                    r.version += 1;
                    Some(r)
                }
                (None, EvidenceEvent::EvidenceWithdrawn(_)) => None,
            };
        }
        record
    }
}

/// What a caller asks to register, before validation.
#[derive(Clone, Debug)]
pub struct RegisterEvidence {
    pub algorithm: ContentHashAlg,
    pub digest: String,
    pub title: String,
    pub case_reference: Option<String>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvidenceError {
    #[error("invalid command")]
    Invalid(Vec<FieldError>),
    #[error("evidence {0} was registered by another organisation")]
    NotOwner(String),
    #[error("evidence {0} is already withdrawn")]
    AlreadyWithdrawn(String),
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
    match (content_hash, errors.is_empty()) {
        (Some(content_hash), true) => Ok(EvidenceEvent::EvidenceRegistered(EvidenceRegistered {
            evidence_id: evidence_id.to_string(),
            content_hash,
            title: cmd.title,
            case_reference: cmd.case_reference,
            metadata: cmd.metadata,
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
        let back = EvidenceEvent::from_parts(w.event_type(), &w.payload()).unwrap();
        assert_eq!(back, w);
    }
}
