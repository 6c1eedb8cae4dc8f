//! Provenance as events: each EPCIS event captured is one event of the platform
//! ([`EpcisEventCaptured`], in a stream of its own, so that it has a receipt of its own), and
//! each capture job closes with one more ([`CaptureJobCompleted`]). Pure code: what a capture
//! document becomes is decided here ([`plan_capture`]); the service looks up what is stored
//! already and appends.

pub mod capture;
pub mod publication;
pub mod subscription;

pub use capture::{CaptureError, CapturePlan, ErrorBehaviour, PlannedEvent, plan_capture};
pub use publication::{ProductPublished, ProductWithdrawn};

use serde::{Deserialize, Serialize};
use sha2::Digest;
use veritrace_kernel::domain::EventType;

pub const SERVICE: &str = "provenance";

/// Every event type the domain records, with the published schema of its payload
/// (`schemas/events/provenance/<type>.v<version>.schema.json`).
pub const EVENT_TYPES: &[EventType] = &[
    veritrace_kernel::event_type!("provenance", "EpcisEventCaptured", 1),
    veritrace_kernel::event_type!("provenance", "CaptureJobCompleted", 1),
    veritrace_kernel::event_type!("provenance", "ProductPublished", 1),
    veritrace_kernel::event_type!("provenance", "ProductWithdrawn", 1),
];

/// Most events one capture document may hold (`GS1-EPCIS-Capture-Limit`).
pub const CAPTURE_LIMIT: usize = 10_000;

/// An EPCIS event as captured, exactly as the capture document held it, with the names the
/// platform gives it. Stream `epcis-<sha-256 of event_id>` ([`event_stream`]), version 1: one
/// event id, one stream, so the same id cannot be stored twice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpcisEventCaptured {
    /// The capture job that brought it.
    pub capture_id: String,
    /// Its `eventID` as sent, or, where it came without one, its canonical hash.
    pub event_id: String,
    /// The CBV 2.0 canonical event hash (`ni:///sha-256;…?ver=CBV2.0`): the same event sent
    /// again, under any eventID or none, is recognised by it.
    pub canonical_hash: String,
    /// The capture document's `@context`, which gives the event's extension members and
    /// CURIEs their meaning (null if the document had none).
    pub context: serde_json::Value,
    /// The EPCIS event, every member as sent (without an `eventID` if it came without one:
    /// `event_id` names it).
    pub event: serde_json::Value,
}

/// A capture job's outcome: what it stored, what was stored already, and each event refused,
/// by event and field. Stream `capture-<capture_id>`, version 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureJobCompleted {
    pub capture_id: String,
    pub error_behaviour: ErrorBehaviour,
    /// Whether every event of the document is stored now (newly, or from before).
    pub success: bool,
    /// How many events the document held.
    pub event_count: usize,
    /// The events this job stored, in document order: each EPCIS eventID with the id of
    /// the EpcisEventCaptured that holds it (its receipt's name).
    pub captured: Vec<CapturedRecord>,
    /// Events of the document stored before (the same eventID with the same content, or the
    /// same canonical hash): stored once, not again.
    pub already_captured: Vec<String>,
    pub errors: Vec<CaptureError>,
}

/// An EPCIS event a job stored: its eventID and the platform event that holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapturedRecord {
    pub event_id: String,
    /// The id of its EpcisEventCaptured: `/receipts/{record_id}` serves its receipt.
    pub record_id: String,
}

/// The events of the domain, by the envelope's `type`.
#[derive(Clone, Debug, PartialEq)]
pub enum ProvenanceEvent {
    EpcisEventCaptured(EpcisEventCaptured),
    CaptureJobCompleted(CaptureJobCompleted),
    ProductPublished(ProductPublished),
    ProductWithdrawn(ProductWithdrawn),
}

impl ProvenanceEvent {
    /// Reads a stored event's payload, upcast to the current version of its type.
    pub fn from_parts(
        event_type: &str,
        type_version: u32,
        payload: &serde_json::Value,
    ) -> Result<ProvenanceEvent, String> {
        let payload =
            veritrace_kernel::domain::upcast(EVENT_TYPES, event_type, type_version, payload)?;
        let read = |e: serde_json::Error| format!("{event_type} v{type_version}: {e}");
        match event_type {
            "EpcisEventCaptured" => serde_json::from_value(payload.into_owned())
                .map(ProvenanceEvent::EpcisEventCaptured)
                .map_err(read),
            "CaptureJobCompleted" => serde_json::from_value(payload.into_owned())
                .map(ProvenanceEvent::CaptureJobCompleted)
                .map_err(read),
            "ProductPublished" => serde_json::from_value(payload.into_owned())
                .map(ProvenanceEvent::ProductPublished)
                .map_err(read),
            "ProductWithdrawn" => serde_json::from_value(payload.into_owned())
                .map(ProvenanceEvent::ProductWithdrawn)
                .map_err(read),
            other => Err(format!("{other}: not an event type of {SERVICE}")),
        }
    }

    pub fn event_type(&self) -> &'static str {
        match self {
            ProvenanceEvent::EpcisEventCaptured(_) => "EpcisEventCaptured",
            ProvenanceEvent::CaptureJobCompleted(_) => "CaptureJobCompleted",
            ProvenanceEvent::ProductPublished(_) => "ProductPublished",
            ProvenanceEvent::ProductWithdrawn(_) => "ProductWithdrawn",
        }
    }

    pub fn payload(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            ProvenanceEvent::EpcisEventCaptured(e) => serde_json::to_value(e),
            ProvenanceEvent::CaptureJobCompleted(j) => serde_json::to_value(j),
            ProvenanceEvent::ProductPublished(p) => serde_json::to_value(p),
            ProvenanceEvent::ProductWithdrawn(w) => serde_json::to_value(w),
        }
    }
}

/// The stream of the EPCIS event `event_id`: `epcis-` and the SHA-256 of the id in hex, since
/// an id is any URI, of any length.
pub fn event_stream(event_id: &str) -> String {
    format!(
        "epcis-{}",
        hex::encode(sha2::Sha256::digest(event_id.as_bytes()))
    )
}

/// The stream of capture job `capture_id`.
pub fn job_stream(capture_id: &str) -> String {
    format!("capture-{capture_id}")
}

/// The business key an EPCIS event claims: its canonical hash, so that the same event under
/// another eventID is refused by the store itself, however captures interleave.
pub fn hash_claim(canonical_hash: &str) -> String {
    format!("epcis-hash:{canonical_hash}")
}

/// The event as the query interface answers it: as captured, with its `eventID` (the one
/// given it if it came without) and its `recordTime` (when the platform recorded it).
pub fn event_as_served(captured: &EpcisEventCaptured, record_time: &str) -> serde_json::Value {
    let mut event = captured.event.clone();
    if let Some(members) = event.as_object_mut() {
        members
            .entry("eventID")
            .or_insert_with(|| serde_json::Value::String(captured.event_id.clone()));
        members.insert(
            "recordTime".into(),
            serde_json::Value::String(record_time.to_owned()),
        );
    }
    event
}

/// A capture document of `count` ObjectEvents for `veritrace bench`, each naming an SGTIN of
/// its own (its serial from `seed` and its index), none with an eventID.
pub fn bench_document(seed: &str, count: usize) -> serde_json::Value {
    let events: Vec<serde_json::Value> = (0..count)
        .map(|i| {
            let serial = hex::encode(&sha2::Sha256::digest(format!("{seed}/{i}").as_bytes())[..10]);
            serde_json::json!({
                "type": "ObjectEvent",
                "eventTime": "2026-01-15T08:00:00.000+01:00",
                "eventTimeZoneOffset": "+01:00",
                "epcList": [format!("urn:epc:id:sgtin:4012345.011111.{serial}")],
                "action": "OBSERVE",
                "bizStep": "shipping",
                "disposition": "in_transit",
                "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
            })
        })
        .collect();
    serde_json::json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-01-15T08:00:00.000+01:00",
        "epcisBody": {"eventList": events},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn streams_are_named_by_digest_and_id() {
        let s = event_stream("urn:uuid:6d3f1e0a-0000-4000-8000-000000000001");
        assert!(s.starts_with("epcis-") && s.len() == 6 + 64, "{s}");
        assert_ne!(
            s,
            event_stream("urn:uuid:6d3f1e0a-0000-4000-8000-000000000002")
        );
        assert_eq!(job_stream("abc"), "capture-abc");
    }

    #[test]
    fn an_event_is_served_with_its_id_and_record_time_and_nothing_else_changed() {
        let captured = EpcisEventCaptured {
            capture_id: "c".into(),
            event_id: "ni:///sha-256;00?ver=CBV2.0".into(),
            canonical_hash: "ni:///sha-256;00?ver=CBV2.0".into(),
            context: json!(null),
            event: json!({"type": "ObjectEvent", "recordTime": "2000-01-01T00:00:00Z",
                          "example:x": {"y": 1.5}}),
        };
        let served = event_as_served(&captured, "2026-12-03T00:00:00.000Z");
        assert_eq!(
            served,
            json!({"type": "ObjectEvent", "eventID": "ni:///sha-256;00?ver=CBV2.0",
                   "recordTime": "2026-12-03T00:00:00.000Z", "example:x": {"y": 1.5}})
        );
        let mut with_id = captured.clone();
        with_id.event["eventID"] = json!("urn:uuid:given");
        assert_eq!(event_as_served(&with_id, "t")["eventID"], "urn:uuid:given");
    }

    #[test]
    fn payloads_read_back_as_written() {
        let job = ProvenanceEvent::CaptureJobCompleted(CaptureJobCompleted {
            capture_id: "c".into(),
            error_behaviour: ErrorBehaviour::Proceed,
            success: false,
            event_count: 2,
            captured: vec![CapturedRecord {
                event_id: "a".into(),
                record_id: "r".into(),
            }],
            already_captured: vec![],
            errors: vec![CaptureError {
                event_index: Some(1),
                event_id: None,
                field: "/bizStep".into(),
                message: "not a CBV business step".into(),
            }],
        });
        let payload = job.payload().unwrap();
        assert_eq!(payload["error_behaviour"], "proceed");
        assert_eq!(
            ProvenanceEvent::from_parts(job.event_type(), 1, &payload).unwrap(),
            job
        );
        assert!(ProvenanceEvent::from_parts("Other", 1, &payload).is_err());
    }
}
