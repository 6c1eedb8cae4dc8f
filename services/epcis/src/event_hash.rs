//! The CBV 2.0 canonical event hash: `ni:///sha-256;<hex>?ver=CBV2.0`.
//!
//! An EPCIS event may arrive without an `eventID`, and the same event may be captured twice in
//! different spellings (JSON member order, time zone, EPC URN or GS1 Digital Link, bare CBV word
//! or URN). CBV 2.0 §8.9 names an event by hashing a *pre-hash string* that is the same for every
//! spelling. This module builds that string exactly as the reference implementation
//! (`RalphTro/epcis-event-hash-generator`, whose test vectors and derived GS1 example hashes are
//! the truth here) and hashes it with SHA-256.
//!
//! How the pre-hash string is made:
//! 1. the event's members become a tree of `name`, `text`, `children`; member names in a
//!    namespace declared by the document become `{iri}local`, CURIE values become IRIs, bare CBV
//!    words in vocabulary fields become their Web URI (`shipping` →
//!    `https://ref.gs1.org/cbv/BizStep-shipping`), JSON lists become repeated members and the
//!    XML element names (`epcList` → `epc`, `quantityList` → `quantityElement`, …);
//! 2. the standard fields are written in the canonical order (`EVENT_FIELDS`), each value
//!    normalised (UTC millisecond times, CBV URNs as Web URIs, numbers without trailing zeros,
//!    GS1 keys as constrained canonical Digital Links) and repeated members sorted;
//! 3. whatever the canonical order does not consume (business transactions, sources,
//!    destinations, ILMD, user extensions, leftovers of nested extensions) is appended, sorted;
//!    `eventID`, `recordTime`, `errorDeclaration` and `type` are never part of it.
//!
//! Where the reference implementation is an accident rather than a rule, this module says so
//! next to the code (look for "reference implementation") and chooses:
//! - a JSON number or boolean is written as Python writes it (`True`, `12.5`), as the reference
//!   hashes do;
//! - prefixes come from the document's own `@context` only (not from the standard EPCIS
//!   context), as the reference hashes do: `cbvmda:lotNumber` stays as written unless the
//!   document declares `cbvmda`; a document that redefines a protected standard prefix (which
//!   JSON-LD forbids) is refused rather than hashed under either meaning;
//! - business transaction, source and destination entries are written `type` first, then the
//!   identifier (the XML order; the reference follows JSON member order, which `serde_json`
//!   does not keep and which agrees for every published example);
//! - timestamps round half up at the fourth decimal, as CBV 2.0 states (the reference rounds
//!   microseconds half to even and fails on a carry into the next second);
//! - bare words are expanded only in the fields the EPCIS context types as vocabularies (the
//!   reference replaces any string of the document that ends a CBV URI seen anywhere in the
//!   document, so one event's hash could depend on another event);
//! - EPC URIs with a 12-digit company prefix and an empty reference (`urn:epc:id:grai:CP..S`)
//!   are converted as the EPC Tag Data Standard reads them (the reference's patterns miss them).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Why an event's canonical hash could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventHashError {
    /// The event is not a JSON object.
    #[error("an EPCIS event must be a JSON object, found {found}")]
    EventNotAnObject {
        /// The JSON kind found instead.
        found: &'static str,
    },
    /// The event has no `type` member.
    #[error("the event has no `type` member naming its event type (ObjectEvent, …)")]
    MissingEventType,
    /// The event's `type` is not a non-empty string.
    #[error("the event's `type` must be a non-empty string naming its event type, found {found}")]
    InvalidEventType {
        /// The JSON found instead.
        found: String,
    },
    /// A standard time member does not hold a date-time with a UTC offset.
    #[error(
        "member `{member}` holds `{value}`, which is not a date-time with a UTC offset \
         (xsd:dateTimeStamp, e.g. 2024-05-01T10:00:00.000+02:00)"
    )]
    InvalidTimestamp {
        /// Path of the member, e.g. `sensorElementList.sensorReport.time`.
        member: String,
        /// The value found.
        value: String,
    },
    /// The `@context` gives a protected prefix of the EPCIS context another IRI.
    #[error(
        "the @context redefines the protected EPCIS prefix `{prefix}` as <{declared}> while the \
         EPCIS 2.0 context fixes it as <{standard}>; JSON-LD rejects such a document and the \
         meaning of its `{prefix}:` members is ambiguous"
    )]
    ProtectedPrefixRedefined {
        /// The prefix, e.g. `cbvmda`.
        prefix: String,
        /// The IRI the document declares.
        declared: String,
        /// The IRI the EPCIS context protects.
        standard: String,
    },
    /// A member nests deeper than any EPCIS event reasonably does.
    #[error("member `{member}` nests deeper than {limit} levels")]
    NestingTooDeep {
        /// The member at which the limit was reached.
        member: String,
        /// The limit.
        limit: usize,
    },
    /// A document holds no event list where EPCIS 2.0 puts one.
    #[error(
        "the document has no event list (epcisBody.eventList, \
         epcisBody.queryResults.resultsBody.eventList or epcisBody.event)"
    )]
    NoEventList,
    /// One event of a document failed.
    #[error("event {index} of the document: {source}")]
    InDocumentEvent {
        /// Position of the event in the document's event list.
        index: usize,
        /// Why it failed.
        #[source]
        source: Box<EventHashError>,
    },
}

/// Namespace prefixes declared by a document's `@context` (prefix -> IRI), used to expand
/// user extension members and CURIE values.
///
/// Only the document's own declarations count: the standard EPCIS context's prefixes (`gs1`,
/// `cbvmda`, …) are not added, because the reference hashes leave undeclared CURIEs as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    prefixes: BTreeMap<String, String>,
}

/// The prefixes the EPCIS 2.0 context defines and protects, with their IRIs.
const PROTECTED_PREFIXES: [(&str, &str); 8] = [
    ("epcis", "https://ref.gs1.org/epcis/"),
    ("cbv", "https://ref.gs1.org/cbv/"),
    ("cbvmda", "urn:epcglobal:cbv:mda:"),
    ("gs1", "https://gs1.org/voc/"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("owl", "http://www.w3.org/2002/07/owl#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("dcterms", "http://purl.org/dc/terms/"),
];

impl Namespaces {
    /// The prefixes declared by `context`: a context URL (declares nothing), an object of term
    /// definitions, or an array mixing both. A term counts as a prefix when it is defined by an
    /// IRI string, or by an object with `@id` and `"@prefix": true`; keyword aliases and other
    /// term definitions (e.g. `{"@type": "xsd:integer"}`) are not prefixes. (The reference
    /// implementation reads arrays only, and fails on object term definitions; no published
    /// example has an object `@context`.)
    pub fn from_context(context: &Value) -> Namespaces {
        Namespaces::default().with_context(context)
    }

    /// These prefixes with those of `context` declared over them (an event's own `@context`).
    pub fn with_context(&self, context: &Value) -> Namespaces {
        let mut namespaces = self.clone();
        let definitions = match context {
            Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
            Value::Object(definitions) => vec![definitions],
            _ => Vec::new(),
        };
        for (term, definition) in definitions.into_iter().flatten() {
            if let Some(iri) = prefix_iri(term, definition) {
                namespaces.prefixes.insert(term.clone(), iri.to_owned());
            }
        }
        namespaces
    }

    /// These prefixes with `prefix` declared as `iri`.
    pub fn with_prefix(mut self, prefix: impl Into<String>, iri: impl Into<String>) -> Namespaces {
        self.prefixes.insert(prefix.into(), iri.into());
        self
    }

    /// The IRI declared for `prefix`.
    pub fn iri(&self, prefix: &str) -> Option<&str> {
        self.prefixes.get(prefix).map(String::as_str)
    }

    /// A member name with a declared prefix as `{iri}local`; any other name as it is.
    fn expand_member_name(&self, name: &str) -> String {
        match self.split_curie(name) {
            Some((iri, local)) => format!("{{{iri}}}{local}"),
            None => name.to_owned(),
        }
    }

    /// A value with a declared prefix as `iri` + `local`; any other value as it is.
    fn expand_value<'a>(&self, value: &'a str) -> Cow<'a, str> {
        match self.split_curie(value) {
            Some((iri, local)) => Cow::Owned(format!("{iri}{local}")),
            None => Cow::Borrowed(value),
        }
    }

    fn split_curie<'a>(&'a self, text: &'a str) -> Option<(&'a str, &'a str)> {
        let (prefix, local) = text.split_once(':')?;
        Some((self.iri(prefix)?, local))
    }

    /// Refuses a redefinition of a protected EPCIS prefix (declaring the same IRI is allowed).
    fn ensure_protected_prefixes_kept(&self) -> Result<(), EventHashError> {
        for (prefix, standard) in PROTECTED_PREFIXES {
            if let Some(declared) = self.iri(prefix).filter(|declared| *declared != standard) {
                return Err(EventHashError::ProtectedPrefixRedefined {
                    prefix: prefix.to_owned(),
                    declared: declared.to_owned(),
                    standard: standard.to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// The IRI a context term declares as a prefix, if it declares one.
fn prefix_iri<'a>(term: &str, definition: &'a Value) -> Option<&'a str> {
    if term.starts_with('@') {
        return None;
    }
    let iri = match definition {
        Value::String(iri) => iri.as_str(),
        Value::Object(expanded) if expanded.get("@prefix") == Some(&Value::Bool(true)) => {
            expanded.get("@id")?.as_str()?
        }
        _ => return None,
    };
    (!iri.starts_with('@')).then_some(iri)
}

/// Event members a repository declares as its own bookkeeping, left out of the hash.
///
/// This is the reference implementation's convention: the document (or, in a query document,
/// `epcisBody.queryResults`) carries a member `<prefix>:ignoreFields` listing event members by
/// CURIE, e.g. `"repository-x:ignoreFields": ["repository-x:hash", "example:captureID"]`.
/// Only namespaced (user extension) members can be ignored; a standard field never is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoredMembers {
    /// Expanded member names, `{iri}local`.
    names: BTreeSet<String>,
}

impl IgnoredMembers {
    /// The members `document` declares as ignored, expanded with `namespaces`.
    pub fn from_document(document: &Value, namespaces: &Namespaces) -> IgnoredMembers {
        let query_results = document.pointer("/epcisBody/queryResults");
        let declaring_objects = [Some(document), query_results]
            .into_iter()
            .flatten()
            .filter_map(Value::as_object);
        let mut names = BTreeSet::new();
        for object in declaring_objects {
            for (key, listed) in object {
                let declares_ignored = namespaces.expand_member_name(key).starts_with('{')
                    && key.ends_with(":ignoreFields");
                if !declares_ignored {
                    continue;
                }
                let listed_names = listed.as_array().into_iter().flatten();
                for curie in listed_names.filter_map(Value::as_str) {
                    let expanded = namespaces.expand_member_name(curie);
                    if expanded.starts_with('{') {
                        names.insert(expanded);
                    }
                }
            }
        }
        IgnoredMembers { names }
    }

    /// Whether the member named `expanded_name` (`{iri}local`) is ignored.
    pub fn contains(&self, expanded_name: &str) -> bool {
        self.names.contains(expanded_name)
    }

    /// Whether nothing is ignored.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The canonical pre-hash string of one event (as in the reference implementation's
/// `.prehashes` files).
pub fn pre_hash(event: &Value, namespaces: &Namespaces) -> Result<String, EventHashError> {
    pre_hash_excluding(event, namespaces, &IgnoredMembers::default())
}

/// [`pre_hash`] leaving out the members a repository declares as its own ([`IgnoredMembers`]).
pub fn pre_hash_excluding(
    event: &Value,
    namespaces: &Namespaces,
    ignored: &IgnoredMembers,
) -> Result<String, EventHashError> {
    let object = event.as_object().ok_or(EventHashError::EventNotAnObject {
        found: json_kind(event),
    })?;
    let event_type = event_type(object)?;
    let namespaces = match object.get("@context") {
        Some(own_context) => Cow::Owned(namespaces.with_context(own_context)),
        None => Cow::Borrowed(namespaces),
    };
    namespaces.ensure_protected_prefixes_kept()?;

    let mut members = tree::event_members(object, &namespaces, ignored)?;
    let standard_fields = render::in_canonical_order(&mut members, EVENT_FIELDS, "")?;
    members.retain(|member| !NEVER_HASHED.contains(&member.name.as_str()));
    let remaining = render::generic(&members);
    Ok(format!(
        "eventType={event_type}{standard_fields}{remaining}"
    ))
}

/// `ni:///sha-256;…?ver=CBV2.0` of the event.
pub fn canonical_event_hash(
    event: &Value,
    namespaces: &Namespaces,
) -> Result<String, EventHashError> {
    pre_hash(event, namespaces).map(|pre_hash| hash_of_pre_hash(&pre_hash))
}

/// [`canonical_event_hash`] leaving out the members a repository declares as its own.
pub fn canonical_event_hash_excluding(
    event: &Value,
    namespaces: &Namespaces,
    ignored: &IgnoredMembers,
) -> Result<String, EventHashError> {
    pre_hash_excluding(event, namespaces, ignored).map(|pre_hash| hash_of_pre_hash(&pre_hash))
}

/// The `ni:///sha-256;…?ver=CBV2.0` name of a pre-hash string.
pub fn hash_of_pre_hash(pre_hash: &str) -> String {
    let digest = Sha256::digest(pre_hash.as_bytes());
    let mut name = String::with_capacity(14 + 64 + 11);
    name.push_str("ni:///sha-256;");
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = write!(name, "{byte:02x}");
    }
    name.push_str("?ver=CBV2.0");
    name
}

/// The events of an EPCIS document or query document, in document order.
pub fn document_events(document: &Value) -> Result<Vec<&Value>, EventHashError> {
    let body = document
        .get("epcisBody")
        .ok_or(EventHashError::NoEventList)?;
    let list = body
        .get("eventList")
        .or_else(|| body.pointer("/queryResults/resultsBody/eventList"));
    match (list, body.get("event")) {
        (Some(Value::Array(events)), _) => Ok(events.iter().collect()),
        (None, Some(single)) => Ok(vec![single]),
        _ => Err(EventHashError::NoEventList),
    }
}

/// The pre-hash string of every event of a document, with the document's namespaces and
/// ignored members.
pub fn document_pre_hashes(document: &Value) -> Result<Vec<String>, EventHashError> {
    let context = document.get("@context").unwrap_or(&Value::Null);
    let namespaces = Namespaces::from_context(context);
    let ignored = IgnoredMembers::from_document(document, &namespaces);
    document_events(document)?
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            pre_hash_excluding(event, &namespaces, &ignored).map_err(|source| {
                EventHashError::InDocumentEvent {
                    index,
                    source: Box::new(source),
                }
            })
        })
        .collect()
}

/// The canonical hash of every event of a document, in document order.
pub fn document_event_hashes(document: &Value) -> Result<Vec<String>, EventHashError> {
    let pre_hashes = document_pre_hashes(document)?;
    Ok(pre_hashes
        .iter()
        .map(|pre_hash| hash_of_pre_hash(pre_hash))
        .collect())
}

fn event_type(event: &Map<String, Value>) -> Result<&str, EventHashError> {
    match event.get("type") {
        None => Err(EventHashError::MissingEventType),
        Some(Value::String(name)) if !name.trim().is_empty() => Ok(name),
        Some(Value::String(blank)) => Err(EventHashError::InvalidEventType {
            found: format!("{blank:?}"),
        }),
        Some(other) => Err(EventHashError::InvalidEventType {
            found: json_kind(other).to_owned(),
        }),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Top-level members that never enter the hash: the event's own identity and bookkeeping.
const NEVER_HASHED: [&str; 4] = ["recordTime", "eventID", "type", "errorDeclaration"];

/// A standard field in the canonical order, with the canonical order of its children.
struct Field {
    name: &'static str,
    children: &'static [Field],
}

const fn leaf(name: &'static str) -> Field {
    Field {
        name,
        children: &[],
    }
}

const QUANTITY_ELEMENT: &[Field] = &[Field {
    name: "quantityElement",
    children: &[leaf("epcClass"), leaf("quantity"), leaf("uom")],
}];

const EPC: &[Field] = &[leaf("epc")];

const SENSOR_METADATA: &[Field] = &[
    leaf("time"),
    leaf("startTime"),
    leaf("endTime"),
    leaf("deviceID"),
    leaf("deviceMetadata"),
    leaf("rawData"),
    leaf("dataProcessingMethod"),
    leaf("bizRules"),
];

const SENSOR_REPORT: &[Field] = &[
    leaf("type"),
    leaf("exception"),
    leaf("deviceID"),
    leaf("deviceMetadata"),
    leaf("rawData"),
    leaf("dataProcessingMethod"),
    leaf("time"),
    leaf("microorganism"),
    leaf("chemicalSubstance"),
    leaf("value"),
    leaf("component"),
    leaf("stringValue"),
    leaf("booleanValue"),
    leaf("hexBinaryValue"),
    leaf("uriValue"),
    leaf("minValue"),
    leaf("maxValue"),
    leaf("meanValue"),
    leaf("sDev"),
    leaf("percRank"),
    leaf("percValue"),
    leaf("uom"),
    leaf("coordinateReferenceSystem"),
];

/// The canonical order of the standard fields (the reference implementation's `PROP_ORDER`).
///
/// `bizTransactionList`, `sourceList` and `destinationList` are listed there too, but its
/// matching never applies to their entries, so they are written with the remaining members;
/// they are left out here for that reason.
const EVENT_FIELDS: &[Field] = &[
    leaf("eventTime"),
    leaf("eventTimeZoneOffset"),
    leaf("certificationInfo"),
    leaf("parentID"),
    Field {
        name: "epcList",
        children: EPC,
    },
    Field {
        name: "inputEPCList",
        children: EPC,
    },
    Field {
        name: "childEPCs",
        children: EPC,
    },
    Field {
        name: "quantityList",
        children: QUANTITY_ELEMENT,
    },
    Field {
        name: "childQuantityList",
        children: QUANTITY_ELEMENT,
    },
    Field {
        name: "inputQuantityList",
        children: QUANTITY_ELEMENT,
    },
    Field {
        name: "outputEPCList",
        children: EPC,
    },
    Field {
        name: "outputQuantityList",
        children: QUANTITY_ELEMENT,
    },
    leaf("action"),
    leaf("transformationID"),
    leaf("bizStep"),
    leaf("disposition"),
    Field {
        name: "persistentDisposition",
        children: &[leaf("set"), leaf("unset")],
    },
    Field {
        name: "readPoint",
        children: &[leaf("id")],
    },
    Field {
        name: "bizLocation",
        children: &[leaf("id")],
    },
    Field {
        name: "sensorElementList",
        children: &[Field {
            name: "sensorElement",
            children: &[
                Field {
                    name: "sensorMetadata",
                    children: SENSOR_METADATA,
                },
                Field {
                    name: "sensorReport",
                    children: SENSOR_REPORT,
                },
            ],
        }],
    },
];

/// The event as a tree shaped like its EPCIS XML form.
mod tree {
    use super::{EventHashError, IgnoredMembers, Namespaces, vocabulary};
    use serde_json::{Map, Value};

    /// Deeper than any EPCIS event; guards the recursion against hostile input.
    const MAX_DEPTH: usize = 128;

    /// Lists whose entries are a type and an identifier, written in that order, never sorted.
    const TYPED_REFERENCE_LISTS: [&str; 3] =
        ["bizTransactionList", "sourceList", "destinationList"];

    /// Members that are commentary, not event data.
    const COMMENTARY: [&str; 3] = ["#text", "rdfs:comment", "comment"];

    /// One member (or one entry of a JSON list member): its name, its text, its children.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(super) struct Node {
        pub(super) name: String,
        pub(super) text: String,
        pub(super) children: Vec<Node>,
    }

    impl Node {
        fn leaf(name: &str, text: String) -> Node {
            Node {
                name: name.to_owned(),
                text,
                children: Vec::new(),
            }
        }

        fn branch(name: String, children: Vec<Node>) -> Node {
            Node {
                name,
                text: String::new(),
                children,
            }
        }
    }

    /// The event's members, without commentary, its own `@context` and ignored members.
    pub(super) fn event_members(
        event: &Map<String, Value>,
        namespaces: &Namespaces,
        ignored: &IgnoredMembers,
    ) -> Result<Vec<Node>, EventHashError> {
        let builder = Builder { namespaces };
        // The event's own @context says how to read the event; it is not event data.
        let data = event.iter().filter(|(key, _)| {
            *key != "@context" && !ignored.contains(&namespaces.expand_member_name(key))
        });
        builder.members(data, &mut Vec::new(), 0)
    }

    struct Builder<'n> {
        namespaces: &'n Namespaces,
    }

    impl Builder<'_> {
        /// `path` holds the raw member names from the event down to here, which decide
        /// whether a bare word is a CBV vocabulary word.
        fn members<'v>(
            &self,
            members: impl Iterator<Item = (&'v String, &'v Value)>,
            path: &mut Vec<&'v str>,
            depth: usize,
        ) -> Result<Vec<Node>, EventHashError> {
            let mut nodes = Vec::new();
            for (key, value) in members {
                if COMMENTARY.contains(&key.as_str()) || key.starts_with("@xmlns") {
                    continue;
                }
                let name = self.namespaces.expand_member_name(key);
                path.push(key);
                match value {
                    // A JSON list is the same member repeated, as in XML.
                    Value::Array(items) => {
                        for item in items {
                            nodes.push(self.node(name.clone(), item, path, depth + 1)?);
                        }
                    }
                    _ => nodes.push(self.node(name, value, path, depth + 1)?),
                }
                path.pop();
            }
            Ok(regroup_as_xml(nodes))
        }

        fn node<'v>(
            &self,
            name: String,
            value: &'v Value,
            path: &mut Vec<&'v str>,
            depth: usize,
        ) -> Result<Node, EventHashError> {
            if depth > MAX_DEPTH {
                return Err(EventHashError::NestingTooDeep {
                    member: path.join("."),
                    limit: MAX_DEPTH,
                });
            }
            let node = match value {
                Value::String(text) => Node::leaf(&name, self.value_text(text, path)),
                // Written as the reference implementation (Python) writes them.
                Value::Number(number) => Node::leaf(&name, number.to_string()),
                Value::Bool(true) => Node::leaf(&name, "True".to_owned()),
                Value::Bool(false) => Node::leaf(&name, "False".to_owned()),
                Value::Null => Node::leaf(&name, "None".to_owned()),
                Value::Object(object) => {
                    let text = object.get("#text").and_then(Value::as_str).unwrap_or("");
                    Node {
                        name,
                        text: text.to_owned(),
                        children: self.members(object.iter(), path, depth)?,
                    }
                }
                // A list inside a list: its entries have no name of their own.
                Value::Array(items) => {
                    let entries = items
                        .iter()
                        .map(|item| self.node(String::new(), item, path, depth + 1))
                        .collect::<Result<_, _>>()?;
                    Node::branch(name, entries)
                }
            };
            Ok(node)
        }

        fn value_text(&self, text: &str, path: &[&str]) -> String {
            let expanded = vocabulary::expand_bare_word(path, text);
            let text = expanded.as_deref().unwrap_or(text);
            self.namespaces.expand_value(text).into_owned()
        }
    }

    /// Reshapes one level of JSON members the way the same event reads in XML: a `…List`
    /// member becomes one list element holding its entries, `childEPCs` entries become `epc`,
    /// and JSON names that differ from XML are renamed.
    fn regroup_as_xml(nodes: Vec<Node>) -> Vec<Node> {
        let mut kept = Vec::with_capacity(nodes.len());
        let mut lists: Vec<(String, Vec<Node>)> = Vec::new();
        let mut child_epcs = Vec::new();
        for node in nodes {
            if let Some(entry_name) = node.name.strip_suffix("List") {
                let entry = Node {
                    name: entry_name.to_owned(),
                    ..node.clone()
                };
                match lists.iter_mut().find(|(list, _)| *list == node.name) {
                    Some((_, entries)) => entries.push(entry),
                    None => lists.push((node.name, vec![entry])),
                }
            } else if node.name == "childEPCs" {
                child_epcs.push(Node::leaf("epc", node.text));
            } else {
                kept.push(node);
            }
        }
        for (list, entries) in lists {
            let entries = if TYPED_REFERENCE_LISTS.contains(&list.as_str()) {
                entries.into_iter().map(typed_reference).collect()
            } else {
                entries
            };
            kept.push(Node::branch(list, entries));
        }
        if !child_epcs.is_empty() {
            kept.push(Node::branch("childEPCs".to_owned(), child_epcs));
        }
        for node in &mut kept {
            rename_as_xml(node);
            node.children.iter_mut().for_each(rename_as_xml);
        }
        kept
    }

    /// JSON names whose XML element is named otherwise.
    fn rename_as_xml(node: &mut Node) {
        let xml_name = match node.name.as_str() {
            "inputEPC" | "outputEPC" => "epc",
            "inputQuantity" | "outputQuantity" | "childQuantity" => "quantityElement",
            "quantity" if !node.children.is_empty() => "quantityElement",
            _ => return,
        };
        node.name = xml_name.to_owned();
    }

    /// A business transaction, source or destination entry: an unnamed pair of its `type` and
    /// its identifier (`bizTransaction`, `source`, `destination`), in that order. Other members
    /// of the entry are not hashed (nor are they by the reference implementation).
    fn typed_reference(entry: Node) -> Node {
        let identifier_name = entry.name.clone();
        if entry.children.is_empty() {
            // A bare identifier where an object was expected.
            return Node::branch(
                String::new(),
                vec![Node::leaf(&identifier_name, entry.text)],
            );
        }
        let mut type_node = None;
        let mut identifier = None;
        for child in entry.children {
            if child.name == "type" && type_node.is_none() {
                type_node = Some(child);
            } else if child.name == identifier_name && identifier.is_none() {
                identifier = Some(child);
            }
        }
        Node::branch(
            String::new(),
            type_node.into_iter().chain(identifier).collect(),
        )
    }
}

/// Writing the tree as the pre-hash string.
mod render {
    use super::tree::Node;
    use super::{EventHashError, Field, timestamp, value};

    /// Writes the standard fields of `nodes` in the canonical order of `fields`, consuming
    /// what it writes: a written member leaves `nodes` once nothing of it remains unwritten.
    pub(super) fn in_canonical_order(
        nodes: &mut Vec<Node>,
        fields: &[Field],
        path: &str,
    ) -> Result<String, EventHashError> {
        let extensions = take_nested_extensions(nodes);
        let mut written = String::new();
        for field in fields {
            let mut pieces = Vec::new();
            let mut unfinished = Vec::with_capacity(nodes.len());
            for mut node in nodes.drain(..) {
                if node.name == field.name {
                    let piece = field_piece(&mut node, field, path)?;
                    if !piece.is_empty() {
                        pieces.push(piece);
                    }
                    if node.children.is_empty() {
                        continue;
                    }
                }
                unfinished.push(node);
            }
            *nodes = unfinished;
            pieces.sort();
            pieces.iter().for_each(|piece| written.push_str(piece));
        }
        written.push_str(&generic(&extensions));
        Ok(written)
    }

    /// User extensions of a nested standard field (`readPoint`, `sensorReport`, …), written
    /// after that field's standard children.
    ///
    /// The reference implementation's rule, kept because its hashes depend on it: only at a
    /// level with more than one member, none named like `eventTime` or `action` (so never at
    /// the event's top level), and only namespaces whose IRI ends with `/`. Extensions it does
    /// not take stay in the tree and are written with the event's remaining members.
    fn take_nested_extensions(nodes: &mut Vec<Node>) -> Vec<Node> {
        let top_level = nodes
            .iter()
            .any(|node| node.name.contains("eventTime") || node.name.contains("action"));
        if nodes.len() <= 1 || top_level {
            return Vec::new();
        }
        let is_extension = |node: &Node| node.name.contains('{') && node.name.contains("/}");
        let (extensions, standard) = nodes.drain(..).partition(is_extension);
        *nodes = standard;
        extensions
    }

    /// `name=value` followed by the field's standard children, or nothing when both are empty.
    fn field_piece(node: &mut Node, field: &Field, path: &str) -> Result<String, EventHashError> {
        let member_path = if path.is_empty() {
            field.name.to_owned()
        } else {
            format!("{path}.{}", field.name)
        };
        let children = if field.children.is_empty() {
            String::new()
        } else {
            in_canonical_order(&mut node.children, field.children, &member_path)?
        };
        let value = standard_value(&node.name, &node.text, &member_path)?;
        if value.is_empty() && children.is_empty() {
            return Ok(String::new());
        }
        Ok(format!("{}{}{children}", node.name, assignment(&value)))
    }

    fn standard_value(name: &str, text: &str, path: &str) -> Result<String, EventHashError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(String::new());
        }
        let lowercase = name.to_lowercase();
        if lowercase.contains("time") && !lowercase.contains("offset") {
            return timestamp::canonical(text).ok_or_else(|| EventHashError::InvalidTimestamp {
                member: path.to_owned(),
                value: text.to_owned(),
            });
        }
        Ok(value::canonical(text))
    }

    fn assignment(value: &str) -> String {
        if value.is_empty() {
            String::new()
        } else {
            format!("={value}")
        }
    }

    /// Writes members outside the canonical order: each as `name=value` followed by its
    /// children, the pieces sorted, except in a business transaction, source or destination
    /// entry, whose type comes before its identifier.
    pub(super) fn generic(nodes: &[Node]) -> String {
        let mut pieces: Vec<String> = nodes.iter().map(generic_piece).collect();
        let keeps_order = nodes.iter().any(|node| {
            matches!(
                node.name.as_str(),
                "bizTransaction" | "source" | "destination"
            )
        });
        if !keeps_order {
            pieces.sort();
        }
        pieces.concat()
    }

    fn generic_piece(node: &Node) -> String {
        let text = node.text.trim();
        let value = if text.is_empty() {
            String::new()
        } else {
            value::canonical(text)
        };
        format!(
            "{}{}{}",
            node.name,
            assignment(&value),
            generic(&node.children)
        )
    }
}

/// Bare CBV 2.0 words in vocabulary fields, expanded as the EPCIS 2.0 JSON-LD context does;
/// the words are [`crate::vocabulary`]'s standard values.
mod vocabulary {
    use crate::vocabulary::Vocabulary;

    const CBV: &str = "https://ref.gs1.org/cbv/";
    const GS1_VOC: &str = "https://gs1.org/voc/";

    /// The Web URI of `word` when the member at `path` (raw member names from the event down)
    /// is a vocabulary field of the EPCIS context and `word` one of its bare words.
    pub(super) fn expand_bare_word(path: &[&str], word: &str) -> Option<String> {
        let (vocabulary, iri_prefix) = match path {
            ["bizStep"] => (Vocabulary::BizStep, format!("{CBV}BizStep-")),
            ["disposition"] | ["persistentDisposition", "set" | "unset"] => {
                (Vocabulary::Disposition, format!("{CBV}Disp-"))
            }
            ["bizTransactionList", "type"] => {
                (Vocabulary::BizTransactionType, format!("{CBV}BTT-"))
            }
            ["sourceList" | "destinationList", "type"] => {
                (Vocabulary::SourceDestinationType, format!("{CBV}SDT-"))
            }
            ["sensorElementList", "sensorReport", "type"] => {
                (Vocabulary::MeasurementType, GS1_VOC.to_owned())
            }
            ["sensorElementList", "sensorReport", "exception"] => {
                (Vocabulary::SensorAlertType, GS1_VOC.to_owned())
            }
            ["sensorElementList", "sensorReport", "component"] => {
                (Vocabulary::Component, format!("{CBV}Comp-"))
            }
            _ => return None,
        };
        let words = vocabulary.standard_values();
        words.contains(&word).then(|| format!("{iri_prefix}{word}"))
    }
}

/// Canonical form of a value that is not a time.
mod value {
    use super::{digital_link, number};

    /// CBV URNs as Web URIs, numbers without trailing zeros, GS1 keys as canonical Digital
    /// Links; anything else as it is.
    pub(super) fn canonical(text: &str) -> String {
        let text = cbv_urns_as_web_uris(text);
        let text = number::canonical(&text).unwrap_or(text);
        digital_link::canonical(&text).unwrap_or(text)
    }

    /// CBV 1.x URNs of the standard vocabularies as CBV 2.0 Web URIs, wherever they occur.
    fn cbv_urns_as_web_uris(text: &str) -> String {
        const URN_TO_WEB_URI: [(&str, &str); 5] = [
            (
                "urn:epcglobal:cbv:bizstep:",
                "https://ref.gs1.org/cbv/BizStep-",
            ),
            ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
            ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"),
            ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-"),
            ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
        ];
        URN_TO_WEB_URI
            .iter()
            .fold(text.to_owned(), |text, (urn, web_uri)| {
                text.replace(urn, web_uri)
            })
    }
}

/// Numbers written as the reference implementation writes them (Python `float`, then `int`
/// when integral): `1.0` → `1`, `+2.50` → `2.5`, `1e-5` → `1e-05`, `007` → `7`.
mod number {
    /// The canonical text of `text` when it reads as a finite number.
    pub(super) fn canonical(text: &str) -> Option<String> {
        let number = parse(text)?;
        if number.fract() == 0.0 {
            // Exact integer digits; `+ 0.0` turns -0 into 0.
            return Some(format!("{:.0}", number + 0.0));
        }
        Some(shortest_repr(number))
    }

    /// Python's float syntax: Rust's, plus `_` between digits. Infinities and NaN are not
    /// numbers here (the reference implementation fails on them or leaves them as written).
    fn parse(text: &str) -> Option<f64> {
        let bytes = text.as_bytes();
        let separators_between_digits = bytes.iter().enumerate().all(|(at, byte)| {
            *byte != b'_'
                || (at > 0
                    && bytes[at - 1].is_ascii_digit()
                    && bytes.get(at + 1).is_some_and(u8::is_ascii_digit))
        });
        if !separators_between_digits || !bytes.iter().any(u8::is_ascii_digit) {
            return None;
        }
        let number: f64 = text.replace('_', "").parse().ok()?;
        number.is_finite().then_some(number)
    }

    /// Python's `repr` of a non-integral float: shortest round-trip digits, positional from
    /// 1e-4 to 1e16, scientific (`1.5e-07`) outside.
    fn shortest_repr(number: f64) -> String {
        let scientific = format!("{number:e}");
        let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let (sign, mantissa) = match mantissa.strip_prefix('-') {
            Some(magnitude) => ("-", magnitude),
            None => ("", mantissa),
        };
        let digits = mantissa.replace('.', "");
        let point = exponent + 1;
        if -4 < point && point <= 16 {
            let fixed = match usize::try_from(point) {
                Ok(point) if point >= digits.len() => {
                    format!("{digits}{}.0", "0".repeat(point - digits.len()))
                }
                Ok(point) if point > 0 => format!("{}.{}", &digits[..point], &digits[point..]),
                _ => format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize)),
            };
            return format!("{sign}{fixed}");
        }
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{first}{fraction}e{exponent_sign}{:02}",
            exponent.unsigned_abs()
        )
    }

    #[cfg(test)]
    mod tests {
        use super::canonical;

        #[test]
        fn numbers_are_written_as_python_writes_them() {
            let cases = [
                ("1", "1"),
                ("1.0", "1"),
                ("+2.50", "2.5"),
                ("-0", "0"),
                ("007", "7"),
                ("1_000", "1000"),
                ("1e3", "1000"),
                ("0.0001", "0.0001"),
                ("0.00012", "0.00012"),
                ("1e-05", "1e-05"),
                ("1.5e-7", "1.5e-07"),
                ("200.5", "200.5"),
                ("0.1", "0.1"),
                ("12345678901234567890", "12345678901234567168"),
                ("1e16", "10000000000000000"),
                ("1234567890123456.5", "1234567890123456.5"),
                ("-13.2", "-13.2"),
            ];
            for (text, expected) in cases {
                assert_eq!(canonical(text).as_deref(), Some(expected), "{text}");
            }
        }

        #[test]
        fn non_numbers_stay_as_written() {
            for text in [
                "",
                "abc",
                "1_",
                "_1",
                "1__0",
                "inf",
                "-Infinity",
                "nan",
                "1e400",
                ".",
            ] {
                assert_eq!(canonical(text), None, "{text}");
            }
        }
    }
}

/// Times in UTC with millisecond precision.
mod timestamp {
    use chrono::{DateTime, TimeDelta, Timelike, Utc};

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, rounding half up at the fourth decimal (CBV 2.0 §8.9).
    pub(super) fn canonical(text: &str) -> Option<String> {
        let parsed = DateTime::parse_from_rfc3339(text)
            .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
            .ok()?;
        let utc = parsed.with_timezone(&Utc);
        let nanos = utc.nanosecond();
        let truncated = utc.with_nanosecond(nanos / 1_000_000 * 1_000_000)?;
        let rounded = if (nanos / 100_000) % 10 >= 5 {
            truncated.checked_add_signed(TimeDelta::milliseconds(1))?
        } else {
            truncated
        };
        Some(rounded.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
    }

    #[cfg(test)]
    mod tests {
        use super::canonical;

        #[test]
        fn times_become_utc_milliseconds() {
            let cases = [
                (
                    "2022-02-16T20:33:31.116000-06:00",
                    "2022-02-17T02:33:31.116Z",
                ),
                ("2019-10-21T14:45:00Z", "2019-10-21T14:45:00.000Z"),
                ("2023-02-02T11:04:03.1414Z", "2023-02-02T11:04:03.141Z"),
                ("2023-02-02T11:04:03.1415Z", "2023-02-02T11:04:03.142Z"),
                ("2023-02-02T11:04:03.1425Z", "2023-02-02T11:04:03.143Z"),
                ("2023-12-31T23:59:59.9996Z", "2024-01-01T00:00:00.000Z"),
                ("2023-03-27T11:30:00.0Z", "2023-03-27T11:30:00.000Z"),
                ("2020-01-14T00:00:00+0100", "2020-01-13T23:00:00.000Z"),
            ];
            for (text, expected) in cases {
                assert_eq!(canonical(text).as_deref(), Some(expected), "{text}");
            }
        }

        #[test]
        fn times_without_offset_are_not_timestamps() {
            for text in ["2020-01-14T00:00:00", "2020-01-14", "yesterday", ""] {
                assert_eq!(canonical(text), None, "{text}");
            }
        }
    }
}

/// GS1 keys as constrained canonical GS1 Digital Link URIs (CBV 2.0 §8.9: EPC URIs, EPC class
/// and pattern URIs converted; Digital Links moved to `https://id.gs1.org`, query string
/// stripped, finest identification level only).
mod digital_link {
    const CANONICAL_ORIGIN: &str = "https://id.gs1.org";

    /// The constrained canonical Digital Link of `uri`, if it conveys a GS1 key.
    pub(super) fn canonical(uri: &str) -> Option<String> {
        // Every convertible URI has a dot (the reference implementation tests this first).
        if !uri.contains('.') {
            return None;
        }
        if let Some(epc) = uri.strip_prefix("urn:epc:") {
            return epc::to_digital_link_path(epc).map(|path| format!("{CANONICAL_ORIGIN}/{path}"));
        }
        web::constrained_canonical(uri)
    }

    /// GS1 check digit (GenSpecs §7.9.1) appended to `digits`.
    fn with_check_digit(digits: &str) -> String {
        let weighted_sum: u32 = digits
            .bytes()
            .rev()
            .enumerate()
            .map(|(position, digit)| {
                let weight = if position % 2 == 0 { 3 } else { 1 };
                char::from(digit).to_digit(10).unwrap_or(0) * weight
            })
            .sum();
        format!("{digits}{}", (10 - weighted_sum % 10) % 10)
    }

    fn all_digits(text: &str) -> bool {
        text.bytes().all(|byte| byte.is_ascii_digit())
    }

    /// EPC pure identity, class and pattern URIs (TDS 2.x), after `urn:epc:`.
    mod epc {
        use super::{all_digits, with_check_digit};

        pub(super) fn to_digital_link_path(epc: &str) -> Option<String> {
            let (kind, rest) = epc.split_once(':')?;
            let (scheme, body) = rest.split_once(':')?;
            match (kind, scheme) {
                ("id", "sgtin") => sgtin(body),
                ("id", "sscc") => sscc(body),
                ("id", "sgln") => sgln(body),
                ("id", "grai") => grai(body),
                ("id", "giai") => company_prefixed("8004", body),
                ("id", "gsrn") => whole_key("8018", body, 17),
                ("id", "gsrnp") => whole_key("8017", body, 17),
                ("id", "gdti") => gdti(body),
                ("id", "cpi") => cpi(body),
                ("id", "sgcn") => sgcn(body),
                ("id", "ginc") => company_prefixed("401", body),
                ("id", "gsin") => whole_key("402", body, 16),
                ("id", "itip") => itip(body),
                ("id", "upui") => upui(body),
                ("id", "pgln") => whole_key("417", body, 12),
                ("class", "lgtin") => lgtin(body),
                ("idpat", scheme) => pattern(scheme, body),
                _ => None,
            }
        }

        /// `CP.REF…` where the GS1 company prefix has 6 to 12 digits and with the reference
        /// makes `key_digits` digits: `(company prefix, reference, rest)`. The reference may be
        /// empty (12-digit prefix of a GLN, GRAI, GDTI, SGCN), as TDS allows.
        fn split_key(body: &str, key_digits: usize) -> Option<(&str, &str, &str)> {
            let (company_prefix, after) = body.split_once('.')?;
            let prefix_fits = (6..=12).contains(&company_prefix.len())
                && company_prefix.len() <= key_digits
                && all_digits(company_prefix);
            if !prefix_fits {
                return None;
            }
            let reference_len = key_digits - company_prefix.len();
            let reference = after.get(..reference_len)?;
            all_digits(reference).then(|| (company_prefix, reference, &after[reference_len..]))
        }

        /// GTIN-14: indicator digit, company prefix, item reference, check digit.
        fn gtin(company_prefix: &str, indicator_and_item: &str) -> String {
            let (indicator, item) = indicator_and_item.split_at(1);
            with_check_digit(&format!("{indicator}{company_prefix}{item}"))
        }

        fn sgtin(body: &str) -> Option<String> {
            let (company_prefix, item, rest) = split_key(body, 13)?;
            let serial = component(rest.strip_prefix('.')?, 1, 20)?;
            Some(format!("01/{}/21/{}", gtin(company_prefix, item), serial))
        }

        fn sscc(body: &str) -> Option<String> {
            let (company_prefix, reference, rest) = split_key(body, 17)?;
            if !rest.is_empty() {
                return None;
            }
            let (extension, serial) = reference.split_at(1);
            Some(format!(
                "00/{}",
                with_check_digit(&format!("{extension}{company_prefix}{serial}"))
            ))
        }

        fn sgln(body: &str) -> Option<String> {
            let (company_prefix, location, rest) = split_key(body, 12)?;
            let extension = rest.strip_prefix('.')?;
            let encoded = component(extension, 1, 20)?;
            let gln = with_check_digit(&format!("{company_prefix}{location}"));
            if extension == "0" {
                return Some(format!("414/{gln}"));
            }
            Some(format!("414/{gln}/254/{encoded}"))
        }

        fn grai(body: &str) -> Option<String> {
            let (company_prefix, asset_type, rest) = split_key(body, 12)?;
            let serial = component(rest.strip_prefix('.')?, 1, 16)?;
            let key = with_check_digit(&format!("0{company_prefix}{asset_type}"));
            Some(format!("8003/{key}{serial}"))
        }

        fn gdti(body: &str) -> Option<String> {
            let (company_prefix, document_type, rest) = split_key(body, 12)?;
            let serial = component(rest.strip_prefix('.')?, 0, 19)?;
            let key = with_check_digit(&format!("{company_prefix}{document_type}"));
            Some(format!("253/{key}{serial}"))
        }

        fn sgcn(body: &str) -> Option<String> {
            let (company_prefix, coupon, rest) = split_key(body, 12)?;
            let serial = rest.strip_prefix('.')?;
            if !(1..=12).contains(&serial.len()) || !all_digits(serial) {
                return None;
            }
            let key = with_check_digit(&format!("{company_prefix}{coupon}"));
            Some(format!("255/{key}{serial}"))
        }

        fn cpi(body: &str) -> Option<String> {
            let (company_prefix, after) = body.split_once('.')?;
            let (part, serial) = after.split_once('.')?;
            let part = component_part(company_prefix, part)?;
            if !(1..=12).contains(&serial.len()) || !all_digits(serial) {
                return None;
            }
            Some(format!("8010/{part}/8011/{serial}"))
        }

        fn itip(body: &str) -> Option<String> {
            let (company_prefix, item, rest) = split_key(body, 13)?;
            let (piece, total, serial) = piece_and_total(rest)?;
            let serial = component(serial.strip_prefix('.')?, 1, 20)?;
            let key = gtin(company_prefix, item);
            Some(format!("8006/{key}{piece}{total}/21/{serial}"))
        }

        fn upui(body: &str) -> Option<String> {
            let (company_prefix, item, rest) = split_key(body, 13)?;
            let tpx = component(rest.strip_prefix('.')?, 1, 28)?;
            Some(format!("01/{}/235/{tpx}", gtin(company_prefix, item)))
        }

        fn lgtin(body: &str) -> Option<String> {
            let (company_prefix, item, rest) = split_key(body, 13)?;
            let lot = component(rest.strip_prefix('.')?, 1, 20)?;
            Some(format!("01/{}/10/{lot}", gtin(company_prefix, item)))
        }

        /// Keys made of the company prefix and a reference only (GSRN, GSIN, PGLN).
        fn whole_key(application_identifier: &str, body: &str, digits: usize) -> Option<String> {
            let (company_prefix, reference, rest) = split_key(body, digits)?;
            if !rest.is_empty() {
                return None;
            }
            let key = with_check_digit(&format!("{company_prefix}{reference}"));
            Some(format!("{application_identifier}/{key}"))
        }

        /// Keys made of the company prefix and a free reference (GIAI, GINC): up to 30
        /// characters in all.
        fn company_prefixed(application_identifier: &str, body: &str) -> Option<String> {
            let (company_prefix, reference) = body.split_once('.')?;
            if !(6..=12).contains(&company_prefix.len()) || !all_digits(company_prefix) {
                return None;
            }
            let reference = component(reference, 1, 30 - company_prefix.len())?;
            Some(format!(
                "{application_identifier}/{company_prefix}{reference}"
            ))
        }

        /// EPC pattern URIs that name one class of objects (`…:CP.REF.*`).
        fn pattern(scheme: &str, body: &str) -> Option<String> {
            if scheme == "cpi" {
                let (company_prefix, after) = body.split_once('.')?;
                let part = component_part(company_prefix, after.strip_suffix(".*")?)?;
                return Some(format!("8010/{part}"));
            }
            let key_digits = match scheme {
                "sgtin" | "itip" | "upui" => 13,
                "grai" | "gdti" | "sgcn" => 12,
                _ => return None,
            };
            let (company_prefix, reference, rest) = split_key(body, key_digits)?;
            match scheme {
                "sgtin" | "upui" => {
                    (rest == ".*").then(|| format!("01/{}", gtin(company_prefix, reference)))
                }
                "itip" => {
                    let (piece, total, rest) = piece_and_total(rest)?;
                    let key = gtin(company_prefix, reference);
                    (rest == ".*").then(|| format!("8006/{key}{piece}{total}"))
                }
                _ => {
                    let (application_identifier, filler) = match scheme {
                        "grai" => ("8003", "0"),
                        "gdti" => ("253", ""),
                        _ => ("255", ""),
                    };
                    let key = with_check_digit(&format!("{filler}{company_prefix}{reference}"));
                    (rest == ".*").then(|| format!("{application_identifier}/{key}"))
                }
            }
        }

        /// `.PP.TT` of an ITIP: piece and total, two digits each, and what follows.
        fn piece_and_total(rest: &str) -> Option<(&str, &str, &str)> {
            let rest = rest.strip_prefix('.')?;
            let (piece, rest) = (rest.get(..2)?, rest.get(2..)?);
            let rest = rest.strip_prefix('.')?;
            let (total, rest) = (rest.get(..2)?, rest.get(2..)?);
            (all_digits(piece) && all_digits(total)).then_some((piece, total, rest))
        }

        /// A CPI's company prefix and component/part reference (`0-9 A-Z -` and a few
        /// escapes), up to 30 characters in all, percent-encoded for a Digital Link.
        fn component_part(company_prefix: &str, part: &str) -> Option<String> {
            if !(6..=12).contains(&company_prefix.len()) || !all_digits(company_prefix) {
                return None;
            }
            let length = escaped_length(part, is_cpi_character, is_cpi_escape)?;
            if !(1..=30 - company_prefix.len()).contains(&length) {
                return None;
            }
            Some(percent_encode(&format!("{company_prefix}{part}")))
        }

        /// A serial, lot or similar component of GS1 AI encodable characters (as escaped in an
        /// EPC URI), `min..=max` characters long, percent-encoded for a Digital Link.
        fn component(text: &str, min: usize, max: usize) -> Option<String> {
            let length = escaped_length(text, is_epc_character, is_epc_escape)?;
            (min..=max).contains(&length).then(|| percent_encode(text))
        }

        /// Characters of `text`, counting `%XX` as one; `None` if any is not allowed.
        fn escaped_length(
            text: &str,
            is_plain: fn(u8) -> bool,
            is_escape: fn(u8, u8) -> bool,
        ) -> Option<usize> {
            let bytes = text.as_bytes();
            let mut at = 0;
            let mut length = 0;
            while at < bytes.len() {
                if bytes[at] == b'%' {
                    let (high, low) = (*bytes.get(at + 1)?, *bytes.get(at + 2)?);
                    if !is_escape(high, low) {
                        return None;
                    }
                    at += 3;
                } else if is_plain(bytes[at]) {
                    at += 1;
                } else {
                    return None;
                }
                length += 1;
            }
            Some(length)
        }

        fn is_epc_character(byte: u8) -> bool {
            byte.is_ascii_alphanumeric() || b"!')(*+,.:;=_-".contains(&byte)
        }

        /// The escapes an EPC URI uses for `"`, `%`, `&`, `/`, `<`, `>`, `?` and the like.
        fn is_epc_escape(high: u8, low: u8) -> bool {
            let hex = low.is_ascii_hexdigit();
            match high {
                b'2' => hex && !matches!(low, b'0' | b'3' | b'4'),
                b'3' => hex,
                b'4' | b'6' => hex && low != b'0',
                b'5' => low.is_ascii_digit() || matches!(low, b'A' | b'a' | b'F' | b'f'),
                b'7' => low.is_ascii_digit() || matches!(low, b'A' | b'a'),
                _ => false,
            }
        }

        fn is_cpi_character(byte: u8) -> bool {
            byte.is_ascii_digit() || byte.is_ascii_uppercase() || byte == b'-'
        }

        fn is_cpi_escape(high: u8, low: u8) -> bool {
            match high {
                b'2' => matches!(low, b'3' | b'd' | b'f' | b'D' | b'F'),
                b'3' => low.is_ascii_digit(),
                b'4' => low.is_ascii_hexdigit() && low != b'0',
                b'5' => low.is_ascii_digit() || matches!(low, b'A' | b'a'),
                _ => false,
            }
        }

        /// The characters a Digital Link must percent-encode that an EPC URI writes plainly.
        fn percent_encode(text: &str) -> String {
            let mut encoded = String::with_capacity(text.len());
            for character in text.chars() {
                match character {
                    '!' => encoded.push_str("%21"),
                    '(' => encoded.push_str("%28"),
                    ')' => encoded.push_str("%29"),
                    '*' => encoded.push_str("%2A"),
                    '+' => encoded.push_str("%2B"),
                    ',' => encoded.push_str("%2C"),
                    ':' => encoded.push_str("%3A"),
                    other => encoded.push(other),
                }
            }
            encoded
        }
    }

    /// GS1 Digital Link URIs on any domain.
    mod web {
        use super::{CANONICAL_ORIGIN, all_digits};

        /// Primary keys and key qualifiers a Digital Link path may start from, numeric or named.
        const KEY_SEGMENTS: [&str; 28] = [
            "01", "gtin", "8006", "itip", "8010", "cpid", "414", "gln", "417", "party", "8017",
            "gsrnp", "8018", "gsrn", "255", "gcn", "00", "sscc", "253", "gdti", "401", "ginc",
            "402", "gsin", "8003", "grai", "8004", "giai",
        ];

        /// Named path segments and their application identifiers.
        const NAMED_SEGMENTS: [(&str, &str); 17] = [
            ("/gtin/", "/01/"),
            ("/itip/", "/8006/"),
            ("/cpid/", "/8010/"),
            ("/gln/", "/414/"),
            ("/party/", "/417/"),
            ("/gsrnp/", "/8017/"),
            ("/gsrn/", "/8018/"),
            ("/gcn/", "/255/"),
            ("/sscc/", "/00/"),
            ("/gdti/", "/253/"),
            ("/ginc/", "/401/"),
            ("/gsin/", "/402/"),
            ("/grai/", "/8003/"),
            ("/giai/", "/8004/"),
            ("/cpv/", "/22/"),
            ("/lot/", "/10/"),
            ("/ser/", "/21/"),
        ];

        /// Primary keys in the order the reference implementation looks for them when it
        /// moves a Digital Link to the canonical domain.
        const PRIMARY_KEYS: [&str; 14] = [
            "00", "01", "253", "255", "401", "402", "414", "417", "8003", "8004", "8006", "8010",
            "8017", "8018",
        ];

        pub(super) fn constrained_canonical(uri: &str) -> Option<String> {
            if !is_digital_link(uri) {
                return None;
            }
            let without_query = uri.split('?').next().unwrap_or(uri);
            let numeric = NAMED_SEGMENTS
                .iter()
                .fold(without_query.to_owned(), |link, (name, ai)| {
                    link.replace(name, ai)
                });
            let canonical = on_canonical_origin(numeric);
            let canonical = gtin_padded(canonical);
            let canonical = without_cpv(canonical);
            let canonical = without_lot_when_serialised(canonical);
            is_constrained(&canonical).then_some(canonical)
        }

        /// `http(s):` with, before any query or fragment, a key segment followed by at least
        /// four digits and one more character that is not `/`.
        fn is_digital_link(uri: &str) -> bool {
            let Some(after_scheme) = uri
                .strip_prefix("https:")
                .or_else(|| uri.strip_prefix("http:"))
            else {
                return false;
            };
            let head_len = after_scheme.find(['?', '#']).unwrap_or(after_scheme.len());
            let bytes = after_scheme.as_bytes();
            KEY_SEGMENTS.iter().any(|key| {
                let segment = format!("/{key}/");
                (0..head_len).any(|at| {
                    bytes[at..].starts_with(segment.as_bytes())
                        && starts_with_key_value(&bytes[at + segment.len()..])
                })
            })
        }

        /// Four digits, then a character that is not `/`.
        fn starts_with_key_value(bytes: &[u8]) -> bool {
            bytes.len() > 4 && bytes[..4].iter().all(u8::is_ascii_digit) && bytes[4] != b'/'
        }

        fn on_canonical_origin(link: String) -> String {
            let already = link
                .strip_prefix(CANONICAL_ORIGIN)
                .and_then(|path| path.strip_prefix('/'))
                .is_some_and(|path| {
                    PRIMARY_KEYS.iter().any(|key| {
                        path.strip_prefix(key)
                            .and_then(|rest| rest.strip_prefix('/'))
                            .is_some_and(|value| starts_with_key_value(value.as_bytes()))
                    })
                });
            if already {
                return link;
            }
            PRIMARY_KEYS
                .iter()
                .find_map(|key| link.find(&format!("/{key}/")))
                .map_or(link.clone(), |at| {
                    format!("{CANONICAL_ORIGIN}{}", &link[at..])
                })
        }

        /// GTIN-8, -12 and -13 written as GTIN-14.
        fn gtin_padded(link: String) -> String {
            let Some(value) = link.strip_prefix("https://id.gs1.org/01/") else {
                return link;
            };
            let leading_digits = value.bytes().take_while(u8::is_ascii_digit).count();
            let padding = match leading_digits {
                14.. => return link,
                13 => "0",
                12 => "00",
                8..=11 => "000000",
                _ => return link,
            };
            link.replace("/01/", &format!("/01/{padding}"))
        }

        /// `https://id.gs1.org/01/<gtin>` or `…/8006/<itip>`: where the key ends.
        fn item_key_end(link: &str) -> Option<usize> {
            let (prefix_len, digits) = if link.starts_with("https://id.gs1.org/01/") {
                ("https://id.gs1.org/01/".len(), 14)
            } else if link.starts_with("https://id.gs1.org/8006/") {
                ("https://id.gs1.org/8006/".len(), 18)
            } else {
                return None;
            };
            let key = link.get(prefix_len..prefix_len + digits)?;
            all_digits(key).then_some(prefix_len + digits)
        }

        /// Drops a consumer product variant (`/22/…`) after a GTIN or ITIP.
        fn without_cpv(link: String) -> String {
            let Some(key_end) = item_key_end(&link) else {
                return link;
            };
            let Some(after_cpv_key) = link[key_end..].strip_prefix("/22/") else {
                return link;
            };
            let fits = after_cpv_key.len() <= 20
                && after_cpv_key
                    .bytes()
                    .all(|byte| byte == b'/' || is_value_character(byte));
            if !fits {
                return link;
            }
            let qualifiers = after_cpv_key
                .find('/')
                .map_or("", |at| &after_cpv_key[at..]);
            format!("{}{qualifiers}", &link[..key_end])
        }

        /// Drops the lot (`/10/…`) when a serial (`/21/…`) identifies the instance.
        fn without_lot_when_serialised(link: String) -> String {
            let Some(key_end) = item_key_end(&link) else {
                return link;
            };
            let serial = link[key_end..]
                .strip_prefix("/10/")
                .and_then(|after| after.split_once('/'))
                .filter(|(lot, _)| is_value(lot, 20))
                .and_then(|(_, rest)| rest.strip_prefix("21/"))
                .filter(|serial| is_value(serial, 20));
            match serial {
                Some(serial) => format!("{}/21/{serial}", &link[..key_end]),
                None => link,
            }
        }

        /// Whether `link` is one of the constrained canonical forms CBV 2.0 §8.9 allows.
        fn is_constrained(link: &str) -> bool {
            let Some(path) = link.strip_prefix("https://id.gs1.org/") else {
                return false;
            };
            let Some((key, value)) = path.split_once('/') else {
                return false;
            };
            match key {
                "00" => is_digits(value, 18),
                "01" => is_keyed(value, 14, &[("/21/", 20), ("/10/", 20), ("/235/", 28)]),
                "253" => digits_then(value, 13, |rest| is_value(rest, 17)),
                "255" => digits_then(value, 13, |rest| rest.len() <= 12 && all_digits(rest)),
                "401" | "8004" => is_value(value, 30),
                "402" => is_digits(value, 17),
                "414" => is_keyed(value, 13, &[("/254/", 20)]),
                "417" => is_digits(value, 13),
                "8003" => digits_then(value, 14, |rest| is_value(rest, 16)),
                "8006" => is_keyed(value, 18, &[("/21/", 20), ("/10/", 20)]),
                "8010" => is_cpid_with_serial(value) || is_cpid(value),
                "8017" | "8018" => is_digits(value, 18),
                _ => false,
            }
        }

        /// `digits` digits, alone or followed by one of `qualifiers` and its value.
        fn is_keyed(value: &str, digits: usize, qualifiers: &[(&str, usize)]) -> bool {
            digits_then(value, digits, |rest| {
                rest.is_empty()
                    || qualifiers.iter().any(|(qualifier, max)| {
                        rest.strip_prefix(qualifier)
                            .is_some_and(|qualified| is_value(qualified, *max))
                    })
            })
        }

        fn digits_then(value: &str, digits: usize, rest_fits: impl Fn(&str) -> bool) -> bool {
            match value.get(..digits) {
                Some(key) => all_digits(key) && rest_fits(&value[digits..]),
                None => false,
            }
        }

        fn is_digits(value: &str, digits: usize) -> bool {
            value.len() == digits && all_digits(value)
        }

        /// Up to `max` characters of those a canonical Digital Link value keeps unescaped.
        fn is_value(value: &str, max: usize) -> bool {
            value.len() <= max && value.bytes().all(is_value_character)
        }

        fn is_value_character(byte: u8) -> bool {
            byte.is_ascii_alphanumeric() || b"\"'-._;<=>?".contains(&byte)
        }

        fn is_cpid(value: &str) -> bool {
            value.len() <= 30
                && value.bytes().all(|byte| {
                    byte.is_ascii_digit() || byte.is_ascii_uppercase() || b"#-/".contains(&byte)
                })
        }

        fn is_cpid_with_serial(value: &str) -> bool {
            value.match_indices("/8011/").any(|(at, separator)| {
                let serial = &value[at + separator.len()..];
                is_cpid(&value[..at]) && serial.len() <= 12 && all_digits(serial)
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::{canonical, with_check_digit};

        #[test]
        fn check_digits_follow_gs1_genspecs() {
            assert_eq!(with_check_digit("1061414107346"), "10614141073464");
            assert_eq!(with_check_digit("061414107346"), "0614141073467");
            assert_eq!(with_check_digit("10614141234567890"), "106141412345678908");
        }

        #[test]
        fn epc_uris_become_canonical_digital_links() {
            let cases = [
                (
                    "urn:epc:id:sgtin:0614141.107346.2017",
                    "https://id.gs1.org/01/10614141073464/21/2017",
                ),
                (
                    "urn:epc:id:sgtin:4012345.011111.A!B",
                    "https://id.gs1.org/01/04012345111118/21/A%21B",
                ),
                (
                    "urn:epc:id:sscc:0614141.1234567890",
                    "https://id.gs1.org/00/106141412345678908",
                ),
                (
                    "urn:epc:id:sgln:0614141.07346.1234",
                    "https://id.gs1.org/414/0614141073467/254/1234",
                ),
                (
                    "urn:epc:id:sgln:0012345.11111.0",
                    "https://id.gs1.org/414/0012345111112",
                ),
                (
                    "urn:epc:class:lgtin:4023333.055555.ABC123",
                    "https://id.gs1.org/01/04023333555555/10/ABC123",
                ),
                (
                    "urn:epc:idpat:sgtin:4012345.012345.*",
                    "https://id.gs1.org/01/04012345123456",
                ),
                (
                    "urn:epc:id:giai:4012345.ABC",
                    "https://id.gs1.org/8004/4012345ABC",
                ),
                (
                    "urn:epc:id:cpi:4012345.ABC.123",
                    "https://id.gs1.org/8010/4012345ABC/8011/123",
                ),
            ];
            for (uri, expected) in cases {
                assert_eq!(canonical(uri).as_deref(), Some(expected), "{uri}");
            }
        }

        #[test]
        fn digital_links_are_constrained_and_canonical() {
            let cases = [
                (
                    "https://id.gs1.de/01/04012345999990/21/XYZ-1234",
                    "https://id.gs1.org/01/04012345999990/21/XYZ-1234",
                ),
                (
                    "https://example.com/gtin/4012345999990/lot/L1/ser/S1?x=1",
                    "https://id.gs1.org/01/04012345999990/21/S1",
                ),
                (
                    "https://id.gs1.org/01/04012345999990/22/V1/10/L1",
                    "https://id.gs1.org/01/04012345999990/10/L1",
                ),
                (
                    "https://id.gs1.org/00/040123451111111127",
                    "https://id.gs1.org/00/040123451111111127",
                ),
            ];
            for (uri, expected) in cases {
                assert_eq!(canonical(uri).as_deref(), Some(expected), "{uri}");
            }
        }

        #[test]
        fn other_values_are_not_gs1_keys() {
            for value in [
                "http://transaction.acme.com/po/12345678",
                "urn:epcglobal:cbv:bt:0614141073467:1152",
                "urn:epc:id:sgtin:0614141.107346",
                "https://id.gs1.org/01/04012345999990/21/AB%2F1",
                "no dot here",
            ] {
                assert_eq!(canonical(value), None, "{value}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn namespaces() -> Namespaces {
        Namespaces::from_context(&json!([
            "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
            {"example": "https://ns.example.com/epcis/"}
        ]))
    }

    #[test]
    fn member_order_and_spelling_do_not_change_the_hash() {
        let first = json!({
            "type": "ObjectEvent", "action": "OBSERVE", "bizStep": "shipping",
            "epcList": ["urn:epc:id:sgtin:0614141.107346.2018", "urn:epc:id:sgtin:0614141.107346.2017"],
            "eventTime": "2022-02-16T20:33:31.116-06:00", "eventTimeZoneOffset": "-06:00"
        });
        let second = json!({
            "eventTimeZoneOffset": "-06:00", "eventTime": "2022-02-17T02:33:31.1160Z",
            "epcList": ["https://id.gs1.org/01/10614141073464/21/2017", "urn:epc:id:sgtin:0614141.107346.2018"],
            "bizStep": "urn:epcglobal:cbv:bizstep:shipping", "action": "OBSERVE", "type": "ObjectEvent",
            "eventID": "urn:uuid:6f2a4f8e-0000-4000-8000-000000000000", "recordTime": "2024-01-01T00:00:00Z"
        });
        let first_hash = canonical_event_hash(&first, &namespaces());
        assert_eq!(first_hash, canonical_event_hash(&second, &namespaces()));
        assert!(
            first_hash
                .is_ok_and(|hash| hash.starts_with("ni:///sha-256;") && hash.len() == 14 + 64 + 11)
        );
    }

    #[test]
    fn extensions_are_expanded_and_appended() {
        let event = json!({
            "type": "ObjectEvent", "action": "OBSERVE", "eventTime": "2020-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+00:00", "example:b": "2", "example:a": {"example:c": "x:y"},
            "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.0", "example:floor": "3"}
        });
        assert_eq!(
            pre_hash(&event, &namespaces()).as_deref(),
            Ok(
                "eventType=ObjectEventeventTime=2020-01-01T00:00:00.000ZeventTimeZoneOffset=+00:00\
                action=OBSERVEreadPointid=https://id.gs1.org/414/0614141073467\
                {https://ns.example.com/epcis/}floor=3\
                {https://ns.example.com/epcis/}a{https://ns.example.com/epcis/}c=x:y\
                {https://ns.example.com/epcis/}b=2"
            )
        );
    }

    #[test]
    fn bad_input_is_named_not_panicked_on() {
        assert_eq!(
            pre_hash(&json!([1]), &namespaces()),
            Err(EventHashError::EventNotAnObject { found: "an array" })
        );
        assert_eq!(
            pre_hash(&json!({"action": "ADD"}), &namespaces()),
            Err(EventHashError::MissingEventType)
        );
        let bad_time = json!({"type": "ObjectEvent", "eventTime": "yesterday"});
        assert!(matches!(
            pre_hash(&bad_time, &namespaces()),
            Err(EventHashError::InvalidTimestamp { member, .. }) if member == "eventTime"
        ));
        let mut deep = json!("leaf");
        for _ in 0..200 {
            deep = json!({ "example:nested": deep });
        }
        let mut nested_lists = json!("leaf");
        for _ in 0..200 {
            nested_lists = json!([nested_lists]);
        }
        for nested in [deep, nested_lists] {
            let deep_event = json!({"type": "ObjectEvent", "example:root": nested});
            assert!(matches!(
                pre_hash(&deep_event, &namespaces()),
                Err(EventHashError::NestingTooDeep { .. })
            ));
        }
    }

    #[test]
    fn protected_prefixes_keep_their_meaning() {
        let same = Namespaces::from_context(&json!([{"gs1": "https://gs1.org/voc/"}]));
        let event = json!({"type": "ObjectEvent", "gs1:x": "1"});
        assert!(pre_hash(&event, &same).is_ok());
        let redefined = Namespaces::from_context(&json!({"cbvmda": "http://example.com/cbvmda/"}));
        assert!(matches!(
            pre_hash(&event, &redefined),
            Err(EventHashError::ProtectedPrefixRedefined { prefix, .. }) if prefix == "cbvmda"
        ));
    }

    #[test]
    fn an_events_own_context_declares_prefixes_without_being_hashed() {
        let with_own_context = json!({
            "@context": {"own": "https://own.example/"}, "type": "ObjectEvent", "own:x": "1"
        });
        assert_eq!(
            pre_hash(&with_own_context, &Namespaces::default()).as_deref(),
            Ok("eventType=ObjectEvent{https://own.example/}x=1")
        );
    }
}
