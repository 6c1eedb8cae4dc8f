//! What a capture document becomes: each valid event named (its eventID, or its canonical hash
//! where it has none) and timed, each fault reported by event and field, the same event twice
//! in one document kept once; then, with what the store holds already, what to append under
//! the job's error behaviour (`GS1-Capture-Error-Behaviour`): `rollback` stores the whole
//! document or nothing of it, `proceed` the valid events.

use super::CaptureJobCompleted;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;
use veritrace_epcis::document::CaptureDocument;
use veritrace_epcis::event_hash::{Namespaces, canonical_event_hash};
use veritrace_kernel::envelope::{DateTime, Utc, business_time};

/// `GS1-Capture-Error-Behaviour`: what a capture does with a document holding invalid events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorBehaviour {
    /// Store every event or none (the default).
    #[default]
    Rollback,
    /// Store the valid events, report the others.
    Proceed,
}

impl ErrorBehaviour {
    /// The header's value; absent is `rollback`.
    pub fn from_header(value: Option<&str>) -> Result<ErrorBehaviour, String> {
        match value.map(str::trim) {
            None => Ok(ErrorBehaviour::Rollback),
            Some(v) if v.eq_ignore_ascii_case("rollback") => Ok(ErrorBehaviour::Rollback),
            Some(v) if v.eq_ignore_ascii_case("proceed") => Ok(ErrorBehaviour::Proceed),
            Some(v) => Err(format!("must be `rollback` or `proceed`, got {v:?}")),
        }
    }
}

/// One fault of a capture: the event (by its index in the document's event list, and its
/// eventID where it has one) and the field (a JSON pointer from the event, or from the
/// document where `event_index` is null).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureError {
    pub event_index: Option<usize>,
    pub event_id: Option<String>,
    pub field: String,
    pub message: String,
}

/// A valid event of the document, named and timed.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedEvent {
    pub index: usize,
    pub event_id: String,
    pub canonical_hash: String,
    /// Its `eventTime` in UTC to the millisecond: the envelope's `occurred_at`.
    pub occurred_at: String,
    /// As sent.
    pub event: serde_json::Value,
    /// The version its stream is at: 0 for a new event; for an error declaration (an event
    /// with `errorDeclaration`, sent under the eventID of the event it declares erroneous,
    /// EPCIS 2.0 §7.4.1.2), the version of that event's stream, which it follows.
    pub expected_version: u64,
}

impl PlannedEvent {
    /// Whether it declares an earlier event erroneous.
    pub fn is_error_declaration(&self) -> bool {
        self.event.get("errorDeclaration").is_some()
    }
}

/// A capture job being decided: the document's valid events, and what keeps the others (and
/// maybe all) from being stored.
#[derive(Clone, Debug, PartialEq)]
pub struct CapturePlan {
    pub capture_id: String,
    pub behaviour: ErrorBehaviour,
    pub event_count: usize,
    /// The document's `@context`, which every stored event keeps.
    pub context: serde_json::Value,
    events: Vec<PlannedEvent>,
    already_captured: Vec<String>,
    errors: Vec<CaptureError>,
}

/// Names and times each valid event of `document` and reports each fault; an event repeated
/// in the document (same eventID and content, or same canonical hash) is kept once.
pub fn plan_capture(
    document: &CaptureDocument,
    capture_id: &str,
    behaviour: ErrorBehaviour,
    recorded_at: DateTime<Utc>,
) -> CapturePlan {
    let namespaces = Namespaces::from_context(&document.context);
    let mut plan = CapturePlan {
        capture_id: capture_id.to_owned(),
        behaviour,
        event_count: document.events.len(),
        context: document.context.clone(),
        events: Vec::new(),
        already_captured: Vec::new(),
        errors: document
            .document_faults
            .iter()
            .map(|f| CaptureError {
                event_index: None,
                event_id: None,
                field: f.field.clone(),
                message: f.message.clone(),
            })
            .collect(),
    };
    for captured in &document.events {
        let given_id = captured.event.get("eventID").and_then(|v| v.as_str());
        let fault = |field: &str, message: String| CaptureError {
            event_index: Some(captured.index),
            event_id: given_id.map(str::to_owned),
            field: field.to_owned(),
            message,
        };
        if !captured.faults.is_empty() {
            plan.errors.extend(
                captured
                    .faults
                    .iter()
                    .map(|f| fault(&f.field, f.message.clone())),
            );
            continue;
        }
        let canonical_hash = match canonical_event_hash(&captured.event, &namespaces) {
            Ok(h) => h,
            Err(e) => {
                plan.errors.push(fault(
                    "",
                    format!("its canonical event hash cannot be computed: {e}"),
                ));
                continue;
            }
        };
        let event_time = captured
            .event
            .get("eventTime")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let occurred_at = match business_time("eventTime", event_time, recorded_at) {
            Ok(t) => t,
            Err(e) => {
                plan.errors.push(fault("/eventTime", e.message));
                continue;
            }
        };
        plan.events.push(PlannedEvent {
            index: captured.index,
            event_id: given_id.map_or_else(|| canonical_hash.clone(), str::to_owned),
            canonical_hash,
            occurred_at,
            event: captured.event.clone(),
            expected_version: 0,
        });
    }
    plan.keep_each_event_once();
    plan
}

impl CapturePlan {
    /// Within the document: a second event with the same eventID and content, or the same
    /// canonical hash, is the same event, stored once; the same eventID on different content
    /// is refused.
    fn keep_each_event_once(&mut self) {
        let mut by_id: HashMap<String, (usize, String)> = HashMap::new();
        let mut by_hash: HashMap<String, String> = HashMap::new();
        let mut kept = Vec::with_capacity(self.events.len());
        for e in std::mem::take(&mut self.events) {
            if let Some((first, hash)) = by_id.get(&e.event_id) {
                if *hash != e.canonical_hash {
                    self.errors.push(CaptureError {
                        event_index: Some(e.index),
                        event_id: Some(e.event_id.clone()),
                        field: "/eventID".into(),
                        message: format!(
                            "event {first} of this document has the same eventID with other content"
                        ),
                    });
                }
                continue;
            }
            if let Some(holder) = by_hash.get(&e.canonical_hash) {
                self.already_captured.push(holder.clone());
                continue;
            }
            by_id.insert(e.event_id.clone(), (e.index, e.canonical_hash.clone()));
            by_hash.insert(e.canonical_hash.clone(), e.event_id.clone());
            kept.push(e);
        }
        self.events = kept;
    }

    /// The store holds an event under `event_id` already, at stream version `version`, with
    /// canonical hash `stored_hash` (`declared`: it is an error declaration itself). The same
    /// event is not stored again, unless this one declares it erroneous, which then follows it
    /// in its stream; other content under the same id is refused.
    pub fn found_stored(
        &mut self,
        event_id: &str,
        stored_hash: &str,
        version: u64,
        declared: bool,
    ) {
        let Some(at) = self.events.iter().position(|e| e.event_id == event_id) else {
            return;
        };
        let same = self.events[at].canonical_hash == stored_hash;
        if same && self.events[at].is_error_declaration() && !declared {
            self.events[at].expected_version = version;
            return;
        }
        let e = self.events.remove(at);
        if same {
            self.already_captured.push(e.event_id);
        } else {
            self.errors.push(CaptureError {
                event_index: Some(e.index),
                event_id: Some(e.event_id),
                field: "/eventID".into(),
                message: "an event with this eventID and other content is stored already; \
                          an eventID names one event for good"
                    .into(),
            });
        }
    }

    /// The store holds the event with canonical hash `canonical_hash` under another eventID,
    /// `holder`: the same event, not stored again.
    pub fn found_hash_claimed(&mut self, canonical_hash: &str, holder: &str) {
        if let Some(at) = self
            .events
            .iter()
            .position(|e| e.canonical_hash == canonical_hash)
        {
            self.events.remove(at);
            self.already_captured.push(holder.to_owned());
        }
    }

    /// The valid events, whether or not they will be stored.
    pub fn events(&self) -> &[PlannedEvent] {
        &self.events
    }

    /// What to store: under `rollback` nothing if anything is wrong, else the valid events
    /// not stored already.
    pub fn to_store(&self) -> &[PlannedEvent] {
        if self.behaviour == ErrorBehaviour::Rollback && !self.errors.is_empty() {
            &[]
        } else {
            &self.events
        }
    }

    /// The job's outcome once [`CapturePlan::to_store`] is stored, each event by the id
    /// `record_ids` gives its platform event (in the same order).
    pub fn completed(&self, record_ids: &[String]) -> CaptureJobCompleted {
        CaptureJobCompleted {
            capture_id: self.capture_id.clone(),
            error_behaviour: self.behaviour,
            success: self.errors.is_empty(),
            event_count: self.event_count,
            captured: self
                .to_store()
                .iter()
                .zip(record_ids)
                .map(|(e, record_id)| super::CapturedRecord {
                    event_id: e.event_id.clone(),
                    record_id: record_id.clone(),
                })
                .collect(),
            already_captured: self.already_captured.clone(),
            errors: self.errors.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use veritrace_epcis::document::read_capture_document;

    fn event(serial: &str, extra: Value) -> Value {
        let mut e = json!({
            "type": "ObjectEvent",
            "eventTime": "2026-11-30T08:00:00+01:00",
            "eventTimeZoneOffset": "+01:00",
            "epcList": [format!("urn:epc:id:sgtin:4012345.011111.{serial}")],
            "action": "OBSERVE",
            "bizStep": "shipping",
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            e[k] = v.clone();
        }
        e
    }

    fn ids_for(p: &CapturePlan) -> Vec<String> {
        (0..p.to_store().len()).map(|i| format!("r{i}")).collect()
    }

    fn captured_ids(job: &CaptureJobCompleted) -> Vec<&str> {
        job.captured.iter().map(|c| c.event_id.as_str()).collect()
    }

    fn plan(events: Vec<Value>, behaviour: ErrorBehaviour) -> CapturePlan {
        let doc = json!({
            "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2026-12-01T10:00:00Z",
            "epcisBody": {"eventList": events},
        });
        let doc = read_capture_document(&doc).expect("an EPCIS document");
        plan_capture(&doc, "job", behaviour, veritrace_kernel::envelope::now())
    }

    #[test]
    fn events_are_named_timed_and_kept_once_per_document() {
        let named = event("1", json!({"eventID": "urn:uuid:a"}));
        let unnamed = event("2", json!({}));
        let p = plan(
            vec![
                named.clone(),
                unnamed.clone(),
                named.clone(),
                unnamed.clone(),
            ],
            ErrorBehaviour::Rollback,
        );
        let ids: Vec<&str> = p.to_store().iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids[0], "urn:uuid:a");
        assert!(ids[1].starts_with("ni:///sha-256;"), "{ids:?}");
        assert_eq!(ids.len(), 2, "each kept once");
        assert_eq!(p.to_store()[0].occurred_at, "2026-11-30T07:00:00.000Z");
        // The same id on other content, in one document, is refused.
        let mut other = named.clone();
        other["bizStep"] = json!("receiving");
        let p = plan(vec![named, other], ErrorBehaviour::Proceed);
        let job = p.completed(&ids_for(&p));
        assert_eq!(captured_ids(&job), ["urn:uuid:a"]);
        assert_eq!(job.captured[0].record_id, "r0");
        assert_eq!(
            (job.errors[0].event_index, job.errors[0].field.as_str()),
            (Some(1), "/eventID")
        );
    }

    #[test]
    fn rollback_stores_nothing_of_a_document_with_a_fault_and_proceed_the_rest() {
        let events = vec![
            event("1", json!({})),
            event("2", json!({"bizStep": "juggling"})),
        ];
        let p = plan(events.clone(), ErrorBehaviour::Rollback);
        assert!(p.to_store().is_empty());
        let job = p.completed(&ids_for(&p));
        assert!(!job.success && job.captured.is_empty());
        assert_eq!(
            (job.errors[0].event_index, job.errors[0].field.as_str()),
            (Some(1), "/bizStep")
        );
        let p = plan(events, ErrorBehaviour::Proceed);
        assert_eq!(p.to_store().len(), 1);
        assert!(!p.completed(&ids_for(&p)).success);
        // A time in the future is refused, naming eventTime.
        let future = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
        let p = plan(
            vec![event("3", json!({"eventTime": future}))],
            ErrorBehaviour::Rollback,
        );
        assert_eq!(p.completed(&ids_for(&p)).errors[0].field, "/eventTime");
    }

    #[test]
    fn what_the_store_holds_decides_again() {
        let declared = event(
            "3",
            json!({"eventID": "urn:uuid:d", "errorDeclaration": {"declarationTime": "2026-11-30T09:00:00Z"}}),
        );
        let mut p = plan(
            vec![
                event("1", json!({"eventID": "urn:uuid:a"})),
                event("2", json!({"eventID": "urn:uuid:b"})),
                declared,
            ],
            ErrorBehaviour::Rollback,
        );
        let hash = |p: &CapturePlan, i: usize| p.events()[i].canonical_hash.clone();
        let a = hash(&p, 0);
        p.found_stored("urn:uuid:a", &a, 1, false); // the same event: not again
        p.found_stored("urn:uuid:b", "ni:///other", 1, false); // other content: refused
        let d = hash(&p, 0);
        p.found_stored("urn:uuid:d", &d, 1, false); // a declaration follows its event
        let job = p.completed(&ids_for(&p));
        assert_eq!(job.already_captured, ["urn:uuid:a"]);
        assert_eq!(job.errors.len(), 1);
        assert!(job.errors[0].message.contains("other content"));
        assert!(p.to_store().is_empty(), "rollback: nothing");
        assert_eq!(p.events()[0].expected_version, 1);
        // The same canonical hash held under another id: the same event.
        let mut p = plan(vec![event("5", json!({}))], ErrorBehaviour::Rollback);
        let h = hash(&p, 0);
        p.found_hash_claimed(&h, "urn:uuid:holder");
        assert!(p.to_store().is_empty());
        assert!(p.completed(&ids_for(&p)).success);
        assert_eq!(
            p.completed(&ids_for(&p)).already_captured,
            ["urn:uuid:holder"]
        );
    }
}
