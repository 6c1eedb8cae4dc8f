//! A capture document (`POST /capture`), read and validated whole: an `EPCISDocument` (events at
//! `epcisBody.eventList`) or an `EPCISQueryDocument` (events at
//! `epcisBody.queryResults.resultsBody.eventList`).
//!
//! Validation runs in two layers, and reports every fault with its event (index, eventID, type)
//! and field (a JSON pointer from the event), so that a document is stored whole or refused
//! whole, and with `GS1-Capture-Error-Behaviour: proceed` the valid events are stored and the
//! invalid ones reported:
//!
//! 1. structure, with GS1's own JSON Schema for EPCIS 2.0 (vendored unmodified in
//!    `schemas/epcis/`, compiled once). Its regular expressions, negative look-aheads included,
//!    compile with the `jsonschema` crate's default engine (`fancy-regex`); a test proves it;
//! 2. what the schema cannot say: CBV 2.0 vocabularies ([`crate::vocabulary`]), EPC URIs and
//!    Digital Links well-formed and at the right level ([`crate::identifiers`]), times with
//!    their UTC offset, the action each event type requires, the five event types.
//!
//! Where both layers speak of one field, the semantic fault, which says more, replaces the
//! schema's. Vocabulary fields are the semantic layer's alone: the schema refuses the CBV URN
//! spelling (`urn:epcglobal:cbv:bizstep:shipping`) and the GS1 Web URI of a measurement type,
//! which capture accepts as spellings of the standard values.
//!
//! Validation never rewrites nor drops a member: each event is kept exactly as sent
//! (extensions, user vocabularies, sensor data, certificationInfo).

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::{Map, Value};

use crate::identifiers::{
    IdentifierError, check_absolute_uri, check_class_identifier, check_identifier,
    check_instance_identifier,
};
use crate::vocabulary::Vocabulary;

/// GS1's JSON Schema for EPCIS 2.0, unmodified (see `schemas/epcis/README.md`).
const EPCIS_JSON_SCHEMA: &str = include_str!("../../../schemas/epcis/EPCIS-JSON-Schema.json");

static EPCIS_SCHEMA: LazyLock<Validator> = LazyLock::new(|| {
    // The schema is part of the build, not input: a failure here is a defect of the build,
    // caught by the tests before any document arrives.
    let schema: Value =
        serde_json::from_str(EPCIS_JSON_SCHEMA).expect("the vendored EPCIS JSON Schema is JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the vendored EPCIS JSON Schema compiles")
});

/// The EPCIS 2.0 event types capture accepts.
pub const EVENT_TYPES: [&str; 5] = [
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
];

const ACTIONS: [&str; 3] = ["ADD", "OBSERVE", "DELETE"];

// ---------------------------------------------------------------------------------------------
// What a read gives
// ---------------------------------------------------------------------------------------------

/// The two document types capture takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    EpcisDocument,
    EpcisQueryDocument,
}

impl DocumentKind {
    /// The `type` member that names it.
    pub fn type_name(self) -> &'static str {
        match self {
            DocumentKind::EpcisDocument => "EPCISDocument",
            DocumentKind::EpcisQueryDocument => "EPCISQueryDocument",
        }
    }

    /// The JSON pointer of its event list.
    pub fn event_list_pointer(self) -> &'static str {
        match self {
            DocumentKind::EpcisDocument => "/epcisBody/eventList",
            DocumentKind::EpcisQueryDocument => "/epcisBody/queryResults/resultsBody/eventList",
        }
    }
}

/// A capture document, read and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureDocument {
    pub kind: DocumentKind,
    /// The top-level `@context`, kept as sent (`Null` if absent, which is a document fault).
    pub context: Value,
    /// The events in document order.
    pub events: Vec<CapturedEvent>,
    /// Faults of the document itself, not of an event (`field` is a JSON pointer from the
    /// document). Any one refuses the whole document, whatever the capture error behaviour:
    /// there is no event to blame.
    pub document_faults: Vec<Fault>,
}

impl CaptureDocument {
    /// Whether the document and every event in it are valid: capture may store it whole.
    pub fn is_valid(&self) -> bool {
        self.document_faults.is_empty() && self.events.iter().all(CapturedEvent::is_valid)
    }

    /// The events that have faults.
    pub fn invalid_events(&self) -> impl Iterator<Item = &CapturedEvent> {
        self.events.iter().filter(|event| !event.is_valid())
    }
}

/// One event of a capture document, exactly as sent, with its faults.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedEvent {
    /// Its index in the document's event list.
    pub index: usize,
    /// The event exactly as sent: nothing rewritten, nothing dropped.
    pub event: Value,
    /// Its faults, `field` a JSON pointer from the event (`/bizStep`, `/epcList/2`).
    pub faults: Vec<Fault>,
}

impl CapturedEvent {
    pub fn is_valid(&self) -> bool {
        self.faults.is_empty()
    }

    /// Its `eventID`, if it has one.
    pub fn event_id(&self) -> Option<&str> {
        self.event.get("eventID").and_then(Value::as_str)
    }

    /// Its `type`, if it has one.
    pub fn event_type(&self) -> Option<&str> {
        event_type(&self.event)
    }
}

/// One fault: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fault {
    /// A JSON pointer (RFC 6901) from the event, or from the document for a document fault;
    /// `""` is the event (or document) itself.
    pub field: String,
    pub message: String,
}

impl Fault {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Fault {
        Fault {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = if self.field.is_empty() {
            "(whole)"
        } else {
            &self.field
        };
        write!(formatter, "{field}: {}", self.message)
    }
}

/// The body is not an EPCIS capture document at all: nothing in it can be reported event by
/// event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("the body is not a JSON object, so not an EPCIS document")]
    NotAnObject,
    #[error("the body has no string member 'type', so it is not an EPCIS document")]
    MissingType,
    #[error(
        "'{0}' is not an EPCIS document type: capture takes an EPCISDocument or an \
         EPCISQueryDocument"
    )]
    NotADocument(String),
    #[error("an {kind} carries its events in an array at {pointer}, and this one has none")]
    NoEventList {
        kind: &'static str,
        pointer: &'static str,
    },
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Reads and validates a capture document whole. `Err` only if the body is not an EPCIS
/// document at all; every other fault is reported in the [`CaptureDocument`], by event and
/// field.
pub fn read_capture_document(body: &Value) -> Result<CaptureDocument, DocumentError> {
    let document = body.as_object().ok_or(DocumentError::NotAnObject)?;
    let kind = document_kind(document)?;
    let pointer = kind.event_list_pointer();
    let event_values =
        body.pointer(pointer)
            .and_then(Value::as_array)
            .ok_or(DocumentError::NoEventList {
                kind: kind.type_name(),
                pointer,
            })?;

    let mut schema_faults = SchemaFaults::of(body, pointer, event_values.len());
    let document_faults = merge_faults(
        document_semantic_faults(document),
        schema_faults.document,
        |_| false,
    );

    let events = event_values
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let schema = std::mem::take(&mut schema_faults.events[index]);
            CapturedEvent {
                index,
                event: event.clone(),
                faults: event_faults(event, schema),
            }
        })
        .collect();

    Ok(CaptureDocument {
        kind,
        context: document.get("@context").cloned().unwrap_or(Value::Null),
        events,
        document_faults,
    })
}

fn document_kind(document: &Map<String, Value>) -> Result<DocumentKind, DocumentError> {
    let type_name = document
        .get("type")
        .and_then(Value::as_str)
        .ok_or(DocumentError::MissingType)?;
    [
        DocumentKind::EpcisDocument,
        DocumentKind::EpcisQueryDocument,
    ]
    .into_iter()
    .find(|kind| kind.type_name() == type_name)
    .ok_or_else(|| DocumentError::NotADocument(type_name.to_owned()))
}

/// The semantic faults of the document's own members.
fn document_semantic_faults(document: &Map<String, Value>) -> Vec<Fault> {
    let mut sink = FaultSink::default();
    if let Some(creation_date) = document.get("creationDate") {
        check_time(&mut sink, "/creationDate".to_owned(), creation_date);
    }
    sink.faults
}

/// An event's faults: semantic checks first; then the schema's, except where the semantic
/// layer already faulted the field or owns it (vocabularies), or found the event beyond
/// structural checking (not an object, no known type).
fn event_faults(event: &Value, schema_faults: Vec<SchemaFault>) -> Vec<Fault> {
    let semantic = semantic_faults(event);
    if semantic.skip_schema {
        return semantic.faults;
    }
    merge_faults(semantic.faults, schema_faults, is_vocabulary_field)
}

/// The semantic faults, then the schema's that add to them: none at a field the semantic
/// layer faulted or `owned` claims (but a member the object does not define is always said),
/// none twice, and no failed `anyOf` one of whose alternatives fails only at fields already
/// faulted (mending those faults mends it).
fn merge_faults(
    semantic: Vec<Fault>,
    schema: Vec<SchemaFault>,
    owned: impl Fn(&str) -> bool,
) -> Vec<Fault> {
    let semantic_fields: HashSet<String> = semantic.iter().map(|f| f.field.clone()).collect();
    let (plain, alternatives): (Vec<SchemaFault>, Vec<SchemaFault>) = schema
        .into_iter()
        .filter(|f| {
            f.unexpected_member
                || !(semantic_fields.contains(&f.fault.field) || owned(&f.fault.field))
        })
        .partition(|f| f.alternatives.is_empty());
    let mut seen: HashSet<Fault> = semantic.iter().cloned().collect();
    let mut merged = semantic;
    for schema_fault in plain {
        if seen.insert(schema_fault.fault.clone()) {
            merged.push(schema_fault.fault);
        }
    }
    let faulted: HashSet<&str> = merged.iter().map(|f| f.field.as_str()).collect();
    let explained = |fields: &Vec<String>| {
        !fields.is_empty() && fields.iter().all(|field| faulted.contains(field.as_str()))
    };
    let unexplained: Vec<Fault> = alternatives
        .into_iter()
        .filter(|f| !f.alternatives.iter().any(explained))
        .map(|f| f.fault)
        .collect();
    for fault in unexplained {
        if seen.insert(fault.clone()) {
            merged.push(fault);
        }
    }
    merged
}

/// Whether `field` (a pointer from the event) holds a vocabulary value, which only the
/// semantic layer judges.
fn is_vocabulary_field(field: &str) -> bool {
    let segments: Vec<&str> = field.split('/').skip(1).collect();
    let is_index =
        |segment: &str| !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
    match segments.as_slice() {
        ["bizStep"] | ["disposition"] | ["errorDeclaration", "reason"] => true,
        ["persistentDisposition", "set" | "unset", index] => is_index(index),
        [
            "bizTransactionList" | "sourceList" | "destinationList",
            index,
            "type",
        ] => is_index(index),
        [
            "sensorElementList",
            element,
            "sensorReport",
            report,
            "type" | "exception" | "component",
        ] => is_index(element) && is_index(report),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Layer 1: GS1's JSON Schema
// ---------------------------------------------------------------------------------------------

/// A fault the schema found, before it meets the semantic ones.
#[derive(Debug, Clone)]
struct SchemaFault {
    fault: Fault,
    /// For a failed `anyOf`: the fields each of its alternatives fails at.
    alternatives: Vec<Vec<String>>,
    /// A member the object does not define: a fault of its own, whatever else is said of the
    /// member's value.
    unexpected_member: bool,
}

impl SchemaFault {
    /// The fault with its field (and its alternatives' fields) made relative to `base`.
    fn relative_to(mut self, base: &str) -> SchemaFault {
        let relative = |pointer: &str| match pointer.strip_prefix(base) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
            _ => pointer.to_owned(),
        };
        self.fault.field = relative(&self.fault.field);
        for fields in &mut self.alternatives {
            for field in fields.iter_mut() {
                *field = relative(field);
            }
        }
        self
    }
}

/// The schema's faults, sorted to the document or to the event they are in.
struct SchemaFaults {
    document: Vec<SchemaFault>,
    events: Vec<Vec<SchemaFault>>,
}

impl SchemaFaults {
    fn of(body: &Value, event_list_pointer: &str, event_count: usize) -> SchemaFaults {
        let mut faults = SchemaFaults {
            document: Vec::new(),
            events: vec![Vec::new(); event_count],
        };
        for error in EPCIS_SCHEMA.iter_errors(body) {
            for schema_fault in describe_schema_error(&error) {
                match event_index(&schema_fault.fault.field, event_list_pointer, event_count) {
                    Some(index) => {
                        let base = format!("{event_list_pointer}/{index}");
                        faults.events[index].push(schema_fault.relative_to(&base));
                    }
                    None => faults.document.push(schema_fault),
                }
            }
        }
        faults
    }
}

/// The index of the event `pointer` is in (`/epcisBody/eventList/3/bizStep` → 3), if any.
fn event_index(pointer: &str, event_list_pointer: &str, event_count: usize) -> Option<usize> {
    let rest = pointer
        .strip_prefix(event_list_pointer)?
        .strip_prefix('/')?;
    let index: usize = rest.split('/').next()?.parse().ok()?;
    (index < event_count).then_some(index)
}

/// One schema error as faults, fields as absolute JSON pointers. A missing or unexpected
/// member is reported at the member's own pointer, not at its object's.
fn describe_schema_error(error: &ValidationError<'_>) -> Vec<SchemaFault> {
    let path = error.instance_path().as_str();
    let at = |pointer: String, message: String| SchemaFault {
        fault: Fault::new(pointer, message),
        alternatives: Vec::new(),
        unexpected_member: false,
    };
    let unexpected_member = |pointer: String, message: String| SchemaFault {
        unexpected_member: true,
        ..at(pointer, message)
    };
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            vec![at(child_pointer(path, name), MISSING.to_owned())]
        }
        ValidationErrorKind::PropertyNames { error: name_error } => {
            let name = name_error.instance().as_str().unwrap_or_default();
            let message = format!(
                "member '{name}' is not allowed here: this object does not define it, and an \
                 extension member is named by an absolute URI or a compact IRI (prefix:name)"
            );
            vec![unexpected_member(child_pointer(path, name), message)]
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|name| {
                let message =
                    format!("member '{name}' is not allowed here: this object admits no other");
                unexpected_member(child_pointer(path, name), message)
            })
            .collect(),
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            let alternatives: Vec<Vec<Fault>> = context
                .iter()
                .map(|errors| {
                    let faults = errors.iter().flat_map(describe_schema_error);
                    faults.map(|schema_fault| schema_fault.fault).collect()
                })
                .collect();
            let message = format!("{NONE_OF} {}", describe_alternatives(path, &alternatives));
            let alternatives = alternatives
                .into_iter()
                .map(|faults| faults.into_iter().map(|fault| fault.field).collect())
                .collect();
            vec![SchemaFault {
                alternatives,
                ..at(path.to_owned(), message)
            }]
        }
        _ => vec![at(path.to_owned(), brief_schema_message(error))],
    }
}

const MISSING: &str = "required member is missing";
const NONE_OF: &str = "matches none of the forms the EPCIS schema allows here:";

/// The alternatives of a failed `anyOf`, each with what fails in it, fields relative to `base`:
/// `(/epcList is missing) or (/quantityList is missing)`.
fn describe_alternatives(base: &str, alternatives: &[Vec<Fault>]) -> String {
    let described: Vec<String> = alternatives
        .iter()
        .map(|faults| {
            let faults: Vec<String> = faults
                .iter()
                .map(|Fault { field, message }| {
                    let message = match message.strip_prefix(NONE_OF) {
                        Some(nested) => format!("either{nested}"),
                        None => message.clone(),
                    };
                    let relative = field.strip_prefix(base).unwrap_or(field);
                    match (relative.is_empty(), message == MISSING) {
                        (true, _) => message,
                        (false, true) => format!("{relative} is missing"),
                        (false, false) => format!("{relative}: {message}"),
                    }
                })
                .collect();
            format!("({})", faults.join("; "))
        })
        .collect();
    described.join(" or ")
}

/// A schema error in words, without quoting a whole object back.
fn brief_schema_message(error: &ValidationError<'_>) -> String {
    let value = quoted_scalar(error.instance());
    match error.kind() {
        ValidationErrorKind::Type { kind } => format!("{value}must be {}", type_names(kind)),
        ValidationErrorKind::Enum { options } => format!("{value}must be one of {options}"),
        ValidationErrorKind::Format { format } => format!("{value}is not a valid {format}"),
        ValidationErrorKind::Pattern { pattern } => format!("{value}does not match {pattern}"),
        ValidationErrorKind::MinItems { limit } => format!("must hold at least {limit} item(s)"),
        ValidationErrorKind::UniqueItems => {
            "holds the same item twice: its items are unique".to_owned()
        }
        ValidationErrorKind::Not { .. } | ValidationErrorKind::FalseSchema => {
            "is not allowed here".to_owned()
        }
        _ => {
            let message = error.to_string();
            match message.char_indices().nth(300) {
                Some((cut, _)) => format!("{}…", &message[..cut]),
                None => message,
            }
        }
    }
}

/// `'value' ` for a string, number or boolean; nothing for an object or array (too long to
/// quote back).
fn quoted_scalar(value: &Value) -> String {
    match value {
        Value::String(text) => format!("'{text}' "),
        Value::Number(_) | Value::Bool(_) | Value::Null => format!("{value} "),
        Value::Array(_) | Value::Object(_) => String::new(),
    }
}

fn type_names(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(json_type) => format!("a JSON {json_type}"),
        TypeKind::Multiple(types) => {
            let names: Vec<String> = types
                .iter()
                .map(|json_type| json_type.to_string())
                .collect();
            format!("a JSON {}", names.join(" or "))
        }
    }
}

/// `parent` + `/` + `name` escaped as RFC 6901 requires.
fn child_pointer(parent: &str, name: &str) -> String {
    format!("{parent}/{}", name.replace('~', "~0").replace('/', "~1"))
}

// ---------------------------------------------------------------------------------------------
// Layer 2: what the schema cannot say
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct FaultSink {
    faults: Vec<Fault>,
}

impl FaultSink {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.faults.push(Fault::new(field, message));
    }
}

struct SemanticFaults {
    faults: Vec<Fault>,
    /// The event is beyond structural checking (not an object, no known type): the schema's
    /// faults would only repeat the one given.
    skip_schema: bool,
}

fn semantic_faults(event: &Value) -> SemanticFaults {
    let mut sink = FaultSink::default();
    let Some(object) = event.as_object() else {
        sink.add("", "an event is a JSON object");
        return SemanticFaults {
            faults: sink.faults,
            skip_schema: true,
        };
    };
    let Some(event_type) = checked_event_type(&mut sink, object) else {
        return SemanticFaults {
            faults: sink.faults,
            skip_schema: true,
        };
    };
    check_event_times(&mut sink, object);
    check_action(&mut sink, event_type, object);
    check_event_id(&mut sink, object);
    check_what(&mut sink, object);
    check_where(&mut sink, object);
    check_why(&mut sink, object);
    check_error_declaration(&mut sink, object);
    check_sensor_elements(&mut sink, object);
    SemanticFaults {
        faults: sink.faults,
        skip_schema: false,
    }
}

/// The event's type if it is one of the five; a fault otherwise.
fn checked_event_type<'a>(sink: &mut FaultSink, object: &'a Map<String, Value>) -> Option<&'a str> {
    let known = EVENT_TYPES.join(", ");
    match object.get("type") {
        None => sink.add(
            "/type",
            format!("required member is missing: an event names its type ({known})"),
        ),
        Some(Value::String(name)) if EVENT_TYPES.contains(&name.as_str()) => return Some(name),
        Some(Value::String(name)) => sink.add(
            "/type",
            format!("'{name}' is not an EPCIS 2.0 event type: capture accepts {known}"),
        ),
        Some(_) => sink.add("/type", format!("the type is a string, one of {known}")),
    }
    None
}

fn check_event_times(sink: &mut FaultSink, object: &Map<String, Value>) {
    for member in ["eventTime", "recordTime"] {
        if let Some(value) = object.get(member) {
            check_time(sink, format!("/{member}"), value);
        }
    }
    if let Some(offset) = object.get("eventTimeZoneOffset") {
        let is_valid = offset.as_str().is_some_and(is_time_zone_offset);
        if !is_valid {
            sink.add(
                "/eventTimeZoneOffset",
                format!(
                    "{}is not a time zone offset: ±hh:mm, from -13:59 to +14:00 (e.g. +02:00)",
                    quoted_scalar(offset)
                ),
            );
        }
    }
}

/// `±hh:mm` as EPCIS allows it: hours 00 to 13 with any minutes, or 14:00.
fn is_time_zone_offset(offset: &str) -> bool {
    let bytes = offset.as_bytes();
    let [sign, h1, h2, b':', m1, m2] = bytes else {
        return false;
    };
    if !matches!(sign, b'+' | b'-') || ![h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let hours = (h1 - b'0') * 10 + (h2 - b'0');
    let minutes = (m1 - b'0') * 10 + (m2 - b'0');
    minutes < 60 && (hours < 14 || (hours == 14 && minutes == 0))
}

fn check_action(sink: &mut FaultSink, event_type: &str, object: &Map<String, Value>) {
    // A TransformationEvent has no action: the schema says so of any member it does not define.
    if event_type == "TransformationEvent" {
        return;
    }
    match object.get("action") {
        None => sink.add(
            "/action",
            format!(
                "required member is missing: every {event_type} states its action (ADD, \
                 OBSERVE or DELETE)"
            ),
        ),
        Some(Value::String(action)) if ACTIONS.contains(&action.as_str()) => {
            if event_type == "ObjectEvent" && action != "ADD" && object.contains_key("ilmd") {
                sink.add(
                    "/ilmd",
                    format!(
                        "an ObjectEvent carries ilmd (instance/lot master data) only when it \
                         creates the objects, with action ADD, not {action}"
                    ),
                );
            }
        }
        Some(other) => sink.add(
            "/action",
            format!(
                "{}is not an action: ADD, OBSERVE or DELETE",
                quoted_scalar(other)
            ),
        ),
    }
}

fn check_event_id(sink: &mut FaultSink, object: &Map<String, Value>) {
    if let Some(event_id) = object.get("eventID") {
        check_uri(sink, "/eventID".to_owned(), event_id, check_absolute_uri);
    }
}

/// What: the EPCs and classes, each at the level its list requires.
fn check_what(sink: &mut FaultSink, object: &Map<String, Value>) {
    for list in ["epcList", "childEPCs", "inputEPCList", "outputEPCList"] {
        for_each_item(object, list, |field, value| {
            check_uri(sink, field, value, check_instance_identifier)
        });
    }
    if let Some(parent) = object.get("parentID") {
        check_uri(
            sink,
            "/parentID".to_owned(),
            parent,
            check_instance_identifier,
        );
    }
    for list in [
        "quantityList",
        "childQuantityList",
        "inputQuantityList",
        "outputQuantityList",
    ] {
        for_each_item(object, list, |field, element| {
            if let Some(class) = element.get("epcClass") {
                check_uri(
                    sink,
                    format!("{field}/epcClass"),
                    class,
                    check_class_identifier,
                );
            }
        });
    }
    if let Some(transformation_id) = object.get("transformationID") {
        check_uri(
            sink,
            "/transformationID".to_owned(),
            transformation_id,
            check_identifier,
        );
    }
}

/// Where: read point and business location (locations name one place), sources and
/// destinations.
fn check_where(sink: &mut FaultSink, object: &Map<String, Value>) {
    for member in ["readPoint", "bizLocation"] {
        if let Some(id) = object.get(member).and_then(|location| location.get("id")) {
            check_uri(sink, format!("/{member}/id"), id, check_instance_identifier);
        }
    }
    for (list, id_member) in [("sourceList", "source"), ("destinationList", "destination")] {
        for_each_item(object, list, |field, element| {
            if let Some(kind) = element.get("type") {
                check_vocabulary(
                    sink,
                    format!("{field}/type"),
                    Vocabulary::SourceDestinationType,
                    kind,
                );
            }
            if let Some(id) = element.get(id_member) {
                check_uri(
                    sink,
                    format!("{field}/{id_member}"),
                    id,
                    check_instance_identifier,
                );
            }
        });
    }
}

/// Why: business step, disposition, persistent disposition, business transactions.
fn check_why(sink: &mut FaultSink, object: &Map<String, Value>) {
    if let Some(biz_step) = object.get("bizStep") {
        check_vocabulary(sink, "/bizStep".to_owned(), Vocabulary::BizStep, biz_step);
    }
    if let Some(disposition) = object.get("disposition") {
        check_vocabulary(
            sink,
            "/disposition".to_owned(),
            Vocabulary::Disposition,
            disposition,
        );
    }
    if let Some(persistent) = object
        .get("persistentDisposition")
        .and_then(Value::as_object)
    {
        for list in ["set", "unset"] {
            for_each_item(persistent, list, |field, value| {
                let field = format!("/persistentDisposition{field}");
                check_vocabulary(sink, field, Vocabulary::Disposition, value)
            });
        }
    }
    for_each_item(object, "bizTransactionList", |field, element| {
        if let Some(kind) = element.get("type") {
            check_vocabulary(
                sink,
                format!("{field}/type"),
                Vocabulary::BizTransactionType,
                kind,
            );
        }
        if let Some(id) = element.get("bizTransaction") {
            check_uri(
                sink,
                format!("{field}/bizTransaction"),
                id,
                check_identifier,
            );
        }
    });
}

fn check_error_declaration(sink: &mut FaultSink, object: &Map<String, Value>) {
    let Some(declaration) = object.get("errorDeclaration").and_then(Value::as_object) else {
        return;
    };
    if let Some(time) = declaration.get("declarationTime") {
        check_time(sink, "/errorDeclaration/declarationTime".to_owned(), time);
    }
    if let Some(reason) = declaration.get("reason") {
        check_vocabulary(
            sink,
            "/errorDeclaration/reason".to_owned(),
            Vocabulary::ErrorReason,
            reason,
        );
    }
    for_each_item(declaration, "correctiveEventIDs", |field, value| {
        let field = format!("/errorDeclaration{field}");
        check_uri(sink, field, value, check_absolute_uri)
    });
}

fn check_sensor_elements(sink: &mut FaultSink, object: &Map<String, Value>) {
    for_each_item(object, "sensorElementList", |element_field, element| {
        if let Some(metadata) = element.get("sensorMetadata").and_then(Value::as_object) {
            for member in ["time", "startTime", "endTime"] {
                if let Some(time) = metadata.get(member) {
                    check_time(
                        sink,
                        format!("{element_field}/sensorMetadata/{member}"),
                        time,
                    );
                }
            }
            if let Some(device) = metadata.get("deviceID") {
                check_uri(
                    sink,
                    format!("{element_field}/sensorMetadata/deviceID"),
                    device,
                    check_identifier,
                );
            }
        }
        let Some(element) = element.as_object() else {
            return;
        };
        for_each_item(element, "sensorReport", |report_field, report| {
            let field = |member: &str| format!("{element_field}{report_field}/{member}");
            if let Some(time) = report.get("time") {
                check_time(sink, field("time"), time);
            }
            if let Some(device) = report.get("deviceID") {
                check_uri(sink, field("deviceID"), device, check_identifier);
            }
            for (member, vocabulary) in [
                ("type", Vocabulary::MeasurementType),
                ("exception", Vocabulary::SensorAlertType),
                ("component", Vocabulary::Component),
            ] {
                if let Some(value) = report.get(member) {
                    check_vocabulary(sink, field(member), vocabulary, value);
                }
            }
        });
    });
}

/// Calls `check` with `(/{list}/{index}, item)` for each item of the array `object[list]`
/// (nothing if it is absent or not an array: the schema says so).
fn for_each_item(object: &Map<String, Value>, list: &str, mut check: impl FnMut(String, &Value)) {
    if let Some(items) = object.get(list).and_then(Value::as_array) {
        for (index, item) in items.iter().enumerate() {
            check(format!("/{list}/{index}"), item);
        }
    }
}

fn check_vocabulary(sink: &mut FaultSink, field: String, vocabulary: Vocabulary, value: &Value) {
    match value.as_str() {
        Some(text) => {
            if let Err(error) = vocabulary.classify(text) {
                sink.add(field, error.to_string());
            }
        }
        None => sink.add(
            field,
            format!("a {vocabulary} is a string: a standard word or an absolute URI"),
        ),
    }
}

/// Checks a string member with an identifier check; a non-string is left to the schema,
/// which names its type.
fn check_uri<T>(
    sink: &mut FaultSink,
    field: String,
    value: &Value,
    check: impl Fn(&str) -> Result<T, IdentifierError>,
) {
    if let Some(text) = value.as_str()
        && let Err(error) = check(text)
    {
        sink.add(field, error.to_string());
    }
}

/// Checks a time: RFC 3339 with a `T`, and with its UTC offset (`Z` or ±hh:mm).
fn check_time(sink: &mut FaultSink, field: String, value: &Value) {
    let Some(text) = value.as_str() else {
        sink.add(
            field,
            "a time is a string: RFC 3339 with its UTC offset (e.g. 2024-05-01T10:00:00+02:00)",
        );
        return;
    };
    match time_fault(text) {
        None => {}
        Some(TimeFault::NoOffset) => sink.add(
            field,
            format!(
                "'{text}' has no UTC offset: an EPCIS time carries one ('Z' or ±hh:mm, e.g. \
                 2024-05-01T10:00:00+02:00), or it names no instant"
            ),
        ),
        Some(TimeFault::Malformed) => sink.add(
            field,
            format!(
                "'{text}' is not an RFC 3339 date and time with UTC offset (e.g. \
                 2024-05-01T10:00:00.000+02:00)"
            ),
        ),
    }
}

/// What is wrong with a time; the missing offset told apart, as the common mistake.
enum TimeFault {
    NoOffset,
    Malformed,
}

fn time_fault(text: &str) -> Option<TimeFault> {
    // `YYYY-MM-DDTHH:MM:SS`, then an optional fraction, then the offset.
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() >= 19
        && bytes[..19]
            .iter()
            .enumerate()
            .all(|(position, byte)| match position {
                4 | 7 => *byte == b'-',
                10 => *byte == b'T',
                13 | 16 => *byte == b':',
                _ => byte.is_ascii_digit(),
            });
    if !shape_ok {
        return Some(TimeFault::Malformed);
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Some(TimeFault::Malformed);
        }
        rest = &fraction[digits..];
    }
    if rest.is_empty() {
        return Some(TimeFault::NoOffset);
    }
    let offset_ok = rest == "Z" || is_time_zone_offset(rest);
    // chrono checks the calendar (no 30 February, no hour 24).
    if !offset_ok || chrono::DateTime::parse_from_rfc3339(text).is_err() {
        return Some(TimeFault::Malformed);
    }
    None
}

// ---------------------------------------------------------------------------------------------
// For the query side
// ---------------------------------------------------------------------------------------------

/// An event's `type`, if it has one.
pub fn event_type(event: &Value) -> Option<&str> {
    event.get("type").and_then(Value::as_str)
}

/// The role an identifier plays in an event, as the EPCIS 2.0 query parameters (REST binding,
/// query semantics §8.2.7.1) distinguish them:
///
/// - `MATCH_epc` matches [`Epc`](EpcRole::Epc) and [`Child`](EpcRole::Child) (`epcList`,
///   `childEPCs`);
/// - `MATCH_parentID` matches [`Parent`](EpcRole::Parent);
/// - `MATCH_inputEPC` / `MATCH_outputEPC` match [`Input`](EpcRole::Input) /
///   [`Output`](EpcRole::Output);
/// - `MATCH_anyEPC` matches all five instance roles: `epcList`, `childEPCs`, `parentID`,
///   `inputEPCList`, `outputEPCList`;
/// - `MATCH_epcClass` matches [`EpcClass`](EpcRole::EpcClass) and
///   [`ChildEpcClass`](EpcRole::ChildEpcClass) (`quantityList`, `childQuantityList`);
/// - `MATCH_inputEPCClass` / `MATCH_outputEPCClass` match the input / output quantity classes;
/// - `MATCH_anyEPCClass` matches all four class roles.
///
/// [`EpcRole::matched_by`] gives these sets by parameter name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EpcRole {
    /// In `epcList`.
    Epc,
    /// The `parentID`.
    Parent,
    /// In `childEPCs`.
    Child,
    /// In `inputEPCList`.
    Input,
    /// In `outputEPCList`.
    Output,
    /// An `epcClass` of `quantityList`.
    EpcClass,
    /// An `epcClass` of `childQuantityList`.
    ChildEpcClass,
    /// An `epcClass` of `inputQuantityList`.
    InputEpcClass,
    /// An `epcClass` of `outputQuantityList`.
    OutputEpcClass,
}

impl EpcRole {
    /// The roles an EPCIS query parameter (`MATCH_epc`, `MATCH_anyEPC`, …) matches; `None` for
    /// a name that is not a `MATCH_` parameter of identifiers.
    pub fn matched_by(parameter: &str) -> Option<&'static [EpcRole]> {
        use EpcRole::*;
        Some(match parameter {
            "MATCH_epc" => &[Epc, Child],
            "MATCH_parentID" => &[Parent],
            "MATCH_inputEPC" => &[Input],
            "MATCH_outputEPC" => &[Output],
            "MATCH_anyEPC" => &[Epc, Child, Parent, Input, Output],
            "MATCH_epcClass" => &[EpcClass, ChildEpcClass],
            "MATCH_inputEPCClass" => &[InputEpcClass],
            "MATCH_outputEPCClass" => &[OutputEpcClass],
            "MATCH_anyEPCClass" => &[EpcClass, ChildEpcClass, InputEpcClass, OutputEpcClass],
            _ => return None,
        })
    }

    /// Whether the role holds classes (an `epcClass`), not single objects.
    pub fn is_class(self) -> bool {
        matches!(
            self,
            EpcRole::EpcClass
                | EpcRole::ChildEpcClass
                | EpcRole::InputEpcClass
                | EpcRole::OutputEpcClass
        )
    }
}

/// Every identifier of an event's "what" with its role, in the order the event lists them:
/// `epcList`, `parentID`, `childEPCs`, `inputEPCList`, `outputEPCList`, then the `epcClass` of
/// `quantityList`, `childQuantityList`, `inputQuantityList`, `outputQuantityList`. As written
/// (not normalised); members that are not strings are skipped.
pub fn identifiers_of(event: &Value) -> Vec<(EpcRole, String)> {
    let mut identifiers = Vec::new();
    let strings = |member: &str| -> Vec<String> {
        match event.get(member) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(single)) => vec![single.clone()],
            _ => Vec::new(),
        }
    };
    for (member, role) in [
        ("epcList", EpcRole::Epc),
        ("parentID", EpcRole::Parent),
        ("childEPCs", EpcRole::Child),
        ("inputEPCList", EpcRole::Input),
        ("outputEPCList", EpcRole::Output),
    ] {
        identifiers.extend(strings(member).into_iter().map(|id| (role, id)));
    }
    for (member, role) in [
        ("quantityList", EpcRole::EpcClass),
        ("childQuantityList", EpcRole::ChildEpcClass),
        ("inputQuantityList", EpcRole::InputEpcClass),
        ("outputQuantityList", EpcRole::OutputEpcClass),
    ] {
        let classes = event
            .get(member)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|element| element.get("epcClass").and_then(Value::as_str));
        identifiers.extend(classes.map(|class| (role, class.to_owned())));
    }
    identifiers
}
