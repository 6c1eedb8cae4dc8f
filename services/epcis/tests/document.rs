//! Capture documents: every GS1 example document of the conformance folder is judged (valid,
//! or refused with its exact fault), each kind of fault is caught at its event and field, user
//! vocabularies pass, and events are kept exactly as sent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use veritrace_epcis::document::{
    CaptureDocument, CapturedEvent, DocumentError, DocumentKind, EpcRole, Fault, event_type,
    identifiers_of, read_capture_document,
};
use veritrace_epcis::vocabulary::{Vocabulary, biz_step_key};

// ---------------------------------------------------------------------------------------------
// The conformance folder
// ---------------------------------------------------------------------------------------------

/// `VERITRACE_CONFORMANCE_DIR`, else `shared/conformance` beside the repository.
fn conformance_dir() -> PathBuf {
    let dir = match std::env::var_os("VERITRACE_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    assert!(
        dir.join("epcis").is_dir(),
        "the conformance folder is not at {} (it should hold epcis/); set \
         VERITRACE_CONFORMANCE_DIR to where it is",
        dir.display()
    );
    dir
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
}

/// The GS1 example documents, by path from `epcis/`: the `*.jsonld` at the top and in the
/// example folders (not the hash vectors, schema, context or REST binding).
fn gs1_example_files() -> BTreeSet<String> {
    let epcis = conformance_dir().join("epcis");
    let mut files = BTreeSet::new();
    for folder in [
        "",
        "AssociationEvent",
        "WithDigitalLinkID",
        "WithErrorDeclaration",
        "WithFullCombinationOfFields",
        "WithSensorData",
    ] {
        let entries = std::fs::read_dir(epcis.join(folder))
            .unwrap_or_else(|error| panic!("cannot list epcis/{folder}: {error}"));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path
                .extension()
                .is_some_and(|extension| extension == "jsonld")
            {
                let name = path.strip_prefix(&epcis).expect("under epcis/");
                files.insert(name.to_string_lossy().into_owned());
            }
        }
    }
    files
}

fn read_example(name: &str) -> (Value, CaptureDocument) {
    let body = read_json(&conformance_dir().join("epcis").join(name));
    let document = read_capture_document(&body)
        .unwrap_or_else(|error| panic!("{name} should be an EPCIS document: {error}"));
    (body, document)
}

// ---------------------------------------------------------------------------------------------
// Every GS1 example
// ---------------------------------------------------------------------------------------------

/// What a GS1 example should come to.
enum Expected {
    Valid,
    /// Refused, with exactly these faults: `(event index, field, part of the message)`.
    #[allow(dead_code)] // no GS1 example is invalid today; kept for the day one is
    Refused(&'static [(usize, &'static str, &'static str)]),
}

/// Every GS1 example, judged. All of them are valid EPCIS 2.0 capture documents: each passes
/// GS1's JSON Schema and the CBV and identifier checks. Notes where one might think otherwise:
const EXAMPLES: &[(&str, Expected)] = &[
    (
        "AssociationEvent/AssociationEvent-a.jsonld",
        Expected::Valid,
    ),
    (
        "AssociationEvent/AssociationEvent-b.jsonld",
        Expected::Valid,
    ),
    (
        "AssociationEvent/AssociationEvent-c.jsonld",
        Expected::Valid,
    ),
    // An AssociationEvent with action DELETE and no children: the schema's third alternative
    // (DELETE needs no childEPCs or childQuantityList).
    (
        "AssociationEvent/AssociationEvent-d.jsonld",
        Expected::Valid,
    ),
    (
        "AssociationEvent/AssociationEvent-e.jsonld",
        Expected::Valid,
    ),
    (
        "AssociationEvent/AssociationEvent-f.jsonld",
        Expected::Valid,
    ),
    (
        "AssociationEvent/AssociationEvent-g.jsonld",
        Expected::Valid,
    ),
    (
        "AssociationEvent/AssociationEvent-h.jsonld",
        Expected::Valid,
    ),
    // A query document: its events are at epcisBody.queryResults.resultsBody.eventList.
    ("EPCISQueryDocument.jsonld", Expected::Valid),
    // Trips the CBV 2.0 hash reference implementation (a Python error, "can only concatenate
    // str (not dict) to str", on its `rail:` extensions; event-hash/derived-…json), not
    // capture: its @context is present (its last member), its first event's bizStep
    // is a user vocabulary URI, the second's business transaction type too
    // (urn:gs1:epcisapp:rail:btt:passage), and the `rail:` extension members — one holding a
    // boolean where the others hold strings — are kept as sent. Accepted.
    (
        "Example-TransactionEvents-2020_07_03y.jsonld",
        Expected::Valid,
    ),
    (
        "Example-Type-sourceOrDestination,measurement,bizTransaction.jsonld",
        Expected::Valid,
    ),
    (
        "Example_9.6.1-ObjectEvent-with-pseudo-SBDH-headers.jsonld",
        Expected::Valid,
    ),
    ("Example_9.6.1-ObjectEvent.jsonld", Expected::Valid),
    ("Example_9.6.1-with-comment.jsonld", Expected::Valid),
    ("Example_9.6.2-ObjectEvent.jsonld", Expected::Valid),
    // childQuantityList holds an EPC pattern (urn:epc:idpat:sgtin:4012345.098765.*): a class.
    ("Example_9.6.3-AggregationEvent.jsonld", Expected::Valid),
    ("Example_9.6.4-TransformationEvent.jsonld", Expected::Valid),
    ("PersistentDisposition-example.jsonld", Expected::Valid),
    // Digital Links with their check digits right: GTINs 70614141123451, 04012345987652, …
    (
        "WithDigitalLinkID/Example_9.6.1-ObjectEventWithDigitalLink.jsonld",
        Expected::Valid,
    ),
    (
        "WithDigitalLinkID/Example_9.6.2-ObjectEventWithDigitalLink.jsonld",
        Expected::Valid,
    ),
    (
        "WithDigitalLinkID/Example_9.6.3-AggregationEventWithDigitalLink.jsonld",
        Expected::Valid,
    ),
    (
        "WithDigitalLinkID/Example_9.6.4-TransformationEventWithDigitalLink.jsonld",
        Expected::Valid,
    ),
    (
        "WithErrorDeclaration/ErrorDeclarationAndCorrectiveEvent.jsonld",
        Expected::Valid,
    ),
    (
        "WithErrorDeclaration/Example_9.6.1-ObjectEvent-with-error-declaration.jsonld",
        Expected::Valid,
    ),
    (
        "WithFullCombinationOfFields/aggregation_event_all_possible_fields.jsonld",
        Expected::Valid,
    ),
    // Its sensor report's component is the compact IRI cbv:Comp-latitude, the GS1 Web URI of
    // the standard value `latitude`.
    (
        "WithFullCombinationOfFields/association_event_all_possible_fields.jsonld",
        Expected::Valid,
    ),
    (
        "WithFullCombinationOfFields/object_event_all_possible_fields.jsonld",
        Expected::Valid,
    ),
    (
        "WithFullCombinationOfFields/transaction_event_all_possible_fields.jsonld",
        Expected::Valid,
    ),
    // Trips the hash reference implementation: its @context redefines `cbvmda`, a term the
    // EPCIS context protects, which a JSON-LD processor refuses. Capture validates the JSON
    // binding (GS1's schema and the CBV), not JSON-LD expansion, and keeps @context as sent;
    // everything the schema and CBV check is right. Accepted.
    (
        "WithFullCombinationOfFields/transformation_event_all_possible_fields.jsonld",
        Expected::Valid,
    ),
    ("WithSensorData/SensorDataExample1.jsonld", Expected::Valid),
    ("WithSensorData/SensorDataExample10.jsonld", Expected::Valid),
    ("WithSensorData/SensorDataExample11.jsonld", Expected::Valid),
    // An errorDeclaration without reason (optional), with extension members.
    ("WithSensorData/SensorDataExample12.jsonld", Expected::Valid),
    ("WithSensorData/SensorDataExample13.jsonld", Expected::Valid),
    // 14–16: a GRAI Digital Link on another host with a serial
    // (https://id.example.com/8003/040123450007718765: filler 0, GRAI 401234500077, check
    // digit 1, serial 8765).
    ("WithSensorData/SensorDataExample14.jsonld", Expected::Valid),
    ("WithSensorData/SensorDataExample15.jsonld", Expected::Valid),
    // Its read point is a geo: URI, a private identifier.
    ("WithSensorData/SensorDataExample16.jsonld", Expected::Valid),
    ("WithSensorData/SensorDataExample17.jsonld", Expected::Valid),
    ("WithSensorData/SensorDataExample1b.jsonld", Expected::Valid),
    ("WithSensorData/SensorDataExample2.jsonld", Expected::Valid),
    // An empty epcList with sensor data and a read point: the schema allows it.
    ("WithSensorData/SensorDataExample3.jsonld", Expected::Valid),
    ("WithSensorData/SensorDataExample4.jsonld", Expected::Valid),
    ("WithSensorData/SensorDataExample5.jsonld", Expected::Valid),
    ("WithSensorData/SensorDataExample6.jsonld", Expected::Valid),
    ("WithSensorData/SensorDataExample7.jsonld", Expected::Valid),
    ("WithSensorData/SensorDataExample8.jsonld", Expected::Valid),
    ("WithSensorData/SensorDataExample9.jsonld", Expected::Valid),
];

fn all_faults(document: &CaptureDocument) -> Vec<String> {
    let document_faults = document
        .document_faults
        .iter()
        .map(|fault| format!("document {fault}"));
    let event_faults = document.events.iter().flat_map(|event| {
        event
            .faults
            .iter()
            .map(move |fault| format!("event {} {fault}", event.index))
    });
    document_faults.chain(event_faults).collect()
}

#[test]
fn every_gs1_example_document_is_judged_as_expected() {
    let listed: BTreeSet<String> = EXAMPLES
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    assert_eq!(
        gs1_example_files(),
        listed,
        "EXAMPLES must name every GS1 example document, no more"
    );
    for (name, expected) in EXAMPLES {
        let (body, document) = read_example(name);
        assert!(!document.events.is_empty(), "{name} has events");
        match expected {
            Expected::Valid => assert!(
                document.is_valid(),
                "{name} should be valid, but: {:#?}",
                all_faults(&document)
            ),
            Expected::Refused(faults) => {
                assert!(document.document_faults.is_empty(), "{name}");
                let found: Vec<(usize, &str, &str)> = document
                    .events
                    .iter()
                    .flat_map(|event| {
                        event.faults.iter().map(|fault| {
                            (event.index, fault.field.as_str(), fault.message.as_str())
                        })
                    })
                    .collect();
                assert_eq!(found.len(), faults.len(), "{name}: {found:#?}");
                for ((index, field, message), (expected_index, expected_field, part)) in
                    found.iter().zip(*faults)
                {
                    assert_eq!((index, field), (expected_index, expected_field), "{name}");
                    assert!(
                        message.contains(part),
                        "{name}: '{message}' should say '{part}'"
                    );
                }
            }
        }
        // Validation keeps each event exactly as sent.
        let sent = body
            .pointer(document.kind.event_list_pointer())
            .and_then(Value::as_array)
            .expect("the event list");
        let kept: Vec<&Value> = document.events.iter().map(|event| &event.event).collect();
        assert_eq!(kept, sent.iter().collect::<Vec<_>>(), "{name}");
    }
}

#[test]
fn a_query_document_is_read_from_its_results_body() {
    let (body, document) = read_example("EPCISQueryDocument.jsonld");
    assert_eq!(document.kind, DocumentKind::EpcisQueryDocument);
    assert_eq!(document.context, body["@context"]);
    assert_eq!(document.events.len(), 2);
    let second = &document.events[1];
    assert_eq!(second.index, 1);
    assert_eq!(second.event_type(), Some("ObjectEvent"));
    assert_eq!(
        second.event_id(),
        Some(
            "ni:///sha-256;00e1e6eba3a7cc6125be4793a631f0af50f8322e0ab5f2c0bab994a11cec1d79?ver=CBV2.0"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Each kind of fault
// ---------------------------------------------------------------------------------------------

fn document_of(events: Vec<Value>) -> Value {
    json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-05-01T10:00:00Z",
        "epcisBody": {"eventList": events}
    })
}

/// A valid ObjectEvent, to be spoiled one member at a time.
fn object_event() -> Value {
    json!({
        "type": "ObjectEvent",
        "eventID": "urn:uuid:0a7c6fbe-8a52-4e6a-9a3c-6ad5a3c2b001",
        "eventTime": "2024-05-01T10:00:00.000+02:00",
        "eventTimeZoneOffset": "+02:00",
        "action": "OBSERVE",
        "epcList": [
            "urn:epc:id:sgtin:0614141.107346.2017",
            "https://id.gs1.org/01/70614141123451/21/2018",
            "urn:epc:id:sgtin:0614141.107346.2019"
        ],
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"}
    })
}

fn object_event_with(member: &str, value: Value) -> Value {
    let mut event = object_event();
    event[member] = value;
    event
}

fn object_event_without(member: &str) -> Value {
    let mut event = object_event();
    event.as_object_mut().expect("an object").remove(member);
    event
}

/// Reads a one-event document; returns that event.
fn captured(event: Value) -> CapturedEvent {
    let document = read_capture_document(&document_of(vec![event])).expect("an EPCIS document");
    assert!(
        document.document_faults.is_empty(),
        "{:?}",
        document.document_faults
    );
    document.events.into_iter().next().expect("one event")
}

/// Asserts the event has exactly one fault, at `field`, saying `part`.
fn assert_single_fault(event: &CapturedEvent, field: &str, part: &str) {
    assert_eq!(
        event.faults.len(),
        1,
        "one fault expected: {:#?}",
        event.faults
    );
    let Fault {
        field: found,
        message,
    } = &event.faults[0];
    assert_eq!(found, field, "{message}");
    assert!(message.contains(part), "'{message}' should say '{part}'");
}

#[test]
fn a_valid_event_has_no_fault() {
    let event = captured(object_event());
    assert!(event.is_valid(), "{:#?}", event.faults);
}

#[test]
fn a_time_without_offset_is_refused() {
    let event = captured(object_event_with(
        "eventTime",
        json!("2024-05-01T10:00:00.000"),
    ));
    assert_single_fault(&event, "/eventTime", "has no UTC offset");

    let mut declared = object_event();
    declared["errorDeclaration"] =
        json!({"declarationTime": "2024-05-02T10:00:00", "reason": "incorrect_data"});
    declared["recordTime"] = json!("2024-05-01T11:00:00+02:00");
    assert_single_fault(
        &captured(declared),
        "/errorDeclaration/declarationTime",
        "has no UTC offset",
    );

    let sensor = object_event_with(
        "sensorElementList",
        json!([{"sensorReport": [
            {"type": "Temperature", "value": 4.5, "uom": "CEL", "time": "2024-05-01T09:00:00Z"},
            {"type": "Temperature", "value": 4.6, "uom": "CEL", "time": "2024-05-01T09:10:00"}
        ]}]),
    );
    assert_single_fault(
        &captured(sensor),
        "/sensorElementList/0/sensorReport/1/time",
        "has no UTC offset",
    );

    let malformed = captured(object_event_with(
        "eventTime",
        json!("2024-02-30T10:00:00Z"),
    ));
    assert_single_fault(&malformed, "/eventTime", "is not an RFC 3339 date and time");
}

#[test]
fn a_time_zone_offset_out_of_range_is_refused() {
    let event = captured(object_event_with("eventTimeZoneOffset", json!("+14:30")));
    assert_single_fault(&event, "/eventTimeZoneOffset", "from -13:59 to +14:00");
}

#[test]
fn a_bare_biz_step_that_is_not_cbv_is_refused_naming_the_vocabulary() {
    let event = captured(object_event_with("bizStep", json!("shiping")));
    assert_single_fault(
        &event,
        "/bizStep",
        "'shiping' is not a CBV 2.0 business step (bizStep)",
    );

    let mut disposition = object_event();
    disposition["persistentDisposition"] =
        json!({"set": ["completeness_verified"], "unset": ["complete"]});
    assert_single_fault(
        &captured(disposition),
        "/persistentDisposition/unset/0",
        "disposition",
    );

    let mut types = object_event();
    types["bizTransactionList"] =
        json!([{"type": "purchase_order", "bizTransaction": "urn:x:po:1"}]);
    types["sourceList"] =
        json!([{"type": "owning_party", "source": "urn:epc:id:pgln:0614141.00001"}]);
    types["destinationList"] =
        json!([{"type": "owner", "destination": "urn:epc:id:pgln:0614141.00002"}]);
    let event = captured(types);
    let fields: Vec<&str> = event
        .faults
        .iter()
        .map(|fault| fault.field.as_str())
        .collect();
    assert_eq!(
        fields,
        ["/destinationList/0/type", "/bizTransactionList/0/type"]
    );
    assert!(
        event.faults[1]
            .message
            .contains("business transaction type")
    );

    let mut reason = object_event();
    reason["errorDeclaration"] =
        json!({"declarationTime": "2024-05-02T10:00:00Z", "reason": "wrong"});
    assert_single_fault(
        &captured(reason),
        "/errorDeclaration/reason",
        "error reason",
    );
}

#[test]
fn standard_values_in_urn_and_web_uri_spellings_are_accepted() {
    // GS1's schema refuses `urn:epcglobal:cbv:…` as a user value; capture accepts the CBV URN
    // as a spelling of the standard value, and indexes it as the bare word.
    let mut event = object_event_with("bizStep", json!("urn:epcglobal:cbv:bizstep:shipping"));
    event["disposition"] = json!("https://ref.gs1.org/cbv/Disp-in_transit");
    event["bizTransactionList"] =
        json!([{"type": "urn:epcglobal:cbv:btt:po", "bizTransaction": "urn:x:po:1"}]);
    event["sensorElementList"] = json!([{"sensorReport": [
        {"type": "https://gs1.org/voc/Temperature", "value": 4.5, "uom": "CEL", "component": "cbv:Comp-x"}
    ]}]);
    let captured = captured(event);
    assert!(captured.is_valid(), "{:#?}", captured.faults);
    assert_eq!(
        biz_step_key(captured.event["bizStep"].as_str().unwrap_or_default()),
        "shipping"
    );
}

#[test]
fn a_user_vocabulary_uri_is_accepted_as_sent() {
    let user_step = "http://epcis.example.org/hc/bizstep/summarising_discharge";
    let mut event = object_event_with("bizStep", json!(user_step));
    event["disposition"] = json!("urn:example:disp:quarantined");
    event["bizTransactionList"] =
        json!([{"type": "urn:gs1:epcisapp:rail:btt:passage", "bizTransaction": "urn:x:1"}]);
    event["sensorElementList"] =
        json!([{"sensorReport": [{"type": "example:someSensorProperty", "stringValue": "x"}]}]);
    let captured = captured(event);
    assert!(captured.is_valid(), "{:#?}", captured.faults);
    assert_eq!(captured.event["bizStep"], user_step);
    assert_eq!(Vocabulary::BizStep.key(user_step), user_step);
}

#[test]
fn a_malformed_sgtin_is_refused_at_its_place_in_the_list() {
    let mut event = object_event();
    event["epcList"][2] = json!("urn:epc:id:sgtin:0614141.10734.2019");
    assert_single_fault(&captured(event), "/epcList/2", "must make 13 digits");

    // An ObjectEvent has no parentID, and this one is malformed besides: both are said.
    let parent = object_event_with("parentID", json!("urn:epc:id:sscc:0614141.123456789"));
    let messages: Vec<String> = captured(parent)
        .faults
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[0].starts_with("/parentID: ") && messages[0].contains("must make 17 digits"));
    assert!(messages[1].starts_with("/parentID: member 'parentID' is not allowed here"));
}

#[test]
fn a_digital_link_with_a_wrong_check_digit_is_refused() {
    let mut event = object_event();
    event["epcList"][1] = json!("https://id.gs1.org/01/70614141123452/21/2018");
    assert_single_fault(&captured(event), "/epcList/1", "should end in 1");

    let location = object_event_with(
        "readPoint",
        json!({"id": "https://id.gs1.org/414/9506000134308"}),
    );
    assert_single_fault(&captured(location), "/readPoint/id", "should end in 7");

    let class = object_event_with(
        "quantityList",
        json!([{"epcClass": "https://example.com/01/04012345987653", "quantity": 3}]),
    );
    assert_single_fault(
        &captured(class),
        "/quantityList/0/epcClass",
        "should end in 2",
    );
}

#[test]
fn an_identifier_at_the_wrong_level_is_refused() {
    let mut event = object_event();
    event["epcList"][0] = json!("urn:epc:class:lgtin:4012345.012345.998877");
    assert_single_fault(&captured(event), "/epcList/0", "names a class of objects");

    let class = object_event_with(
        "quantityList",
        json!([{"epcClass": "urn:epc:id:sgtin:0614141.107346.2017", "quantity": 1}]),
    );
    assert_single_fault(
        &captured(class),
        "/quantityList/0/epcClass",
        "names one object",
    );
}

#[test]
fn a_missing_required_member_is_refused_at_the_member() {
    assert_single_fault(
        &captured(object_event_without("eventTimeZoneOffset")),
        "/eventTimeZoneOffset",
        "required member is missing",
    );
    assert_single_fault(
        &captured(object_event_without("eventTime")),
        "/eventTime",
        "required member is missing",
    );
    assert_single_fault(
        &captured(object_event_without("action")),
        "/action",
        "required member is missing",
    );

    // An ObjectEvent names its objects (epcList or quantityList) or carries sensor data with a
    // read point: the schema's alternatives, reported at the event.
    let mut nothing = object_event_without("epcList");
    nothing
        .as_object_mut()
        .expect("an object")
        .remove("readPoint");
    let event = captured(nothing);
    assert_single_fault(
        &event,
        "",
        "(/epcList is missing) or (/quantityList is missing)",
    );

    let transformation = json!({
        "type": "TransformationEvent",
        "eventTime": "2024-05-01T10:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "action": "ADD",
        "inputEPCList": ["urn:epc:id:sgtin:0614141.107346.2017"],
        "outputEPCList": ["urn:epc:id:sgtin:0614141.107346.2018"]
    });
    assert_single_fault(
        &captured(transformation),
        "/action",
        "member 'action' is not allowed here",
    );
}

#[test]
fn an_unknown_event_type_is_refused() {
    let event = captured(object_event_with("type", json!("QuantityEvent")));
    assert_single_fault(
        &event,
        "/type",
        "'QuantityEvent' is not an EPCIS 2.0 event type",
    );
    let extension = captured(object_event_with(
        "type",
        json!("https://example.com/MyEvent"),
    ));
    assert_single_fault(&extension, "/type", "is not an EPCIS 2.0 event type");
    assert_single_fault(
        &captured(object_event_without("type")),
        "/type",
        "required member is missing",
    );
    assert_single_fault(
        &captured(json!("ObjectEvent")),
        "",
        "an event is a JSON object",
    );
}

#[test]
fn a_member_the_event_does_not_define_needs_a_uri_name() {
    let event = captured(object_event_with("myField", json!("x")));
    assert_single_fault(&event, "/myField", "member 'myField' is not allowed here");
    let quantity = object_event_with(
        "quantityList",
        json!([{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 2, "example:note": "x"}]),
    );
    assert_single_fault(
        &captured(quantity),
        "/quantityList/0/example:note",
        "admits no other",
    );
}

#[test]
fn faults_are_reported_per_event_and_the_valid_events_stay_valid() {
    let mut faulty = object_event_with("bizStep", json!("shiping"));
    faulty["eventID"] = json!("urn:uuid:0a7c6fbe-8a52-4e6a-9a3c-6ad5a3c2b002");
    faulty["epcList"][2] = json!("urn:epc:id:sgtin:0614141.107346.");
    let document =
        read_capture_document(&document_of(vec![object_event(), faulty])).expect("a document");
    assert!(!document.is_valid());
    assert!(document.events[0].is_valid());
    let invalid: Vec<&CapturedEvent> = document.invalid_events().collect();
    assert_eq!(invalid.len(), 1);
    let event = invalid[0];
    assert_eq!(event.index, 1);
    assert_eq!(
        event.event_id(),
        Some("urn:uuid:0a7c6fbe-8a52-4e6a-9a3c-6ad5a3c2b002")
    );
    assert_eq!(event.event_type(), Some("ObjectEvent"));
    let fields: Vec<&str> = event
        .faults
        .iter()
        .map(|fault| fault.field.as_str())
        .collect();
    assert_eq!(fields, ["/epcList/2", "/bizStep"]);
}

#[test]
fn document_faults_are_the_documents() {
    let mut body = document_of(vec![object_event()]);
    let members = body.as_object_mut().expect("an object");
    members.remove("@context");
    members.insert("creationDate".to_owned(), json!("2024-05-01T10:00:00"));
    let document = read_capture_document(&body).expect("still an EPCIS document");
    assert!(!document.is_valid());
    assert!(document.events[0].is_valid());
    assert_eq!(document.context, Value::Null);
    let faults: BTreeMap<&str, &str> = document
        .document_faults
        .iter()
        .map(|fault| (fault.field.as_str(), fault.message.as_str()))
        .collect();
    assert_eq!(faults.len(), 2, "{faults:#?}");
    assert!(faults["/@context"].contains("required member is missing"));
    assert!(faults["/creationDate"].contains("has no UTC offset"));
}

#[test]
fn what_is_not_an_epcis_document_is_an_error() {
    let cases = [
        (json!([1, 2]), DocumentError::NotAnObject),
        (json!({"epcisBody": {}}), DocumentError::MissingType),
        (
            object_event(),
            DocumentError::NotADocument("ObjectEvent".to_owned()),
        ),
        (
            json!({"type": "EPCISDocument", "epcisBody": {"events": []}}),
            DocumentError::NoEventList {
                kind: "EPCISDocument",
                pointer: "/epcisBody/eventList",
            },
        ),
        (
            json!({"type": "EPCISQueryDocument", "epcisBody": {"eventList": []}}),
            DocumentError::NoEventList {
                kind: "EPCISQueryDocument",
                pointer: "/epcisBody/queryResults/resultsBody/eventList",
            },
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(read_capture_document(&body), Err(expected));
    }
}

// ---------------------------------------------------------------------------------------------
// Events kept exactly
// ---------------------------------------------------------------------------------------------

#[test]
fn extensions_are_kept_byte_for_byte() {
    for name in [
        "WithFullCombinationOfFields/transformation_event_all_possible_fields.jsonld",
        "Example-TransactionEvents-2020_07_03y.jsonld",
        "WithSensorData/SensorDataExample12.jsonld",
    ] {
        let (body, document) = read_example(name);
        for event in &document.events {
            let sent = &body["epcisBody"]["eventList"][event.index];
            assert_eq!(
                serde_json::to_vec(&event.event).expect("serialisable"),
                serde_json::to_vec(sent).expect("serialisable"),
                "{name} event {}",
                event.index
            );
        }
    }
    let (_, document) = read_example("Example-TransactionEvents-2020_07_03y.jsonld");
    let vehicles = &document.events[1].event["rail:vehicle"];
    assert_eq!(vehicles[0]["rail:vehicleUniquelyIdentified"], json!("true"));
    assert_eq!(vehicles[2]["rail:vehicleUniquelyIdentified"], json!(true));
    let (_, document) =
        read_example("WithFullCombinationOfFields/transformation_event_all_possible_fields.jsonld");
    let event = &document.events[0].event;
    assert_eq!(event["ilmd"]["cbvmda:lotNumber"], json!("ABC123"));
    assert_eq!(
        event["sensorElementList"][0]["sensorReport"][0]["sDev"],
        json!(0.1)
    );
    assert_eq!(event["ext1:float"], json!("20"));
    assert_eq!(
        event["certificationInfo"],
        json!("https://accreditation-council.example.org/certificate/ABC12345")
    );
}

// ---------------------------------------------------------------------------------------------
// For the query side
// ---------------------------------------------------------------------------------------------

#[test]
fn identifiers_of_an_event_come_with_their_roles() {
    let (_, document) =
        read_example("Example-Type-sourceOrDestination,measurement,bizTransaction.jsonld");
    let event = &document.events[0].event;
    assert_eq!(event_type(event), Some("AssociationEvent"));
    assert_eq!(
        identifiers_of(event),
        [
            (
                EpcRole::Parent,
                "urn:epc:id:grai:4012345.55555.98765".to_owned()
            ),
            (EpcRole::Child, "urn:epc:id:giai:4000001.12345".to_owned()),
            (EpcRole::Child, "urn:epc:id:giai:4000001.12346".to_owned()),
            (
                EpcRole::ChildEpcClass,
                "urn:epc:class:lgtin:4023333.002000.998877".to_owned()
            ),
        ]
    );
    let (_, document) = read_example("Example_9.6.4-TransformationEvent.jsonld");
    let roles: Vec<EpcRole> = identifiers_of(&document.events[0].event)
        .into_iter()
        .map(|(role, _)| role)
        .collect();
    assert_eq!(
        roles,
        [
            EpcRole::Input,
            EpcRole::Input,
            EpcRole::Output,
            EpcRole::Output,
            EpcRole::Output,
            EpcRole::Output,
            EpcRole::InputEpcClass,
            EpcRole::InputEpcClass,
            EpcRole::InputEpcClass,
        ]
    );
}

#[test]
fn match_parameters_name_the_roles_of_the_epcis_query_semantics() {
    use EpcRole::*;
    assert_eq!(EpcRole::matched_by("MATCH_epc"), Some(&[Epc, Child][..]));
    assert_eq!(EpcRole::matched_by("MATCH_parentID"), Some(&[Parent][..]));
    assert_eq!(EpcRole::matched_by("MATCH_inputEPC"), Some(&[Input][..]));
    assert_eq!(EpcRole::matched_by("MATCH_outputEPC"), Some(&[Output][..]));
    assert_eq!(
        EpcRole::matched_by("MATCH_anyEPC"),
        Some(&[Epc, Child, Parent, Input, Output][..])
    );
    assert_eq!(
        EpcRole::matched_by("MATCH_anyEPCClass"),
        Some(&[EpcClass, ChildEpcClass, InputEpcClass, OutputEpcClass][..])
    );
    assert_eq!(EpcRole::matched_by("EQ_bizStep"), None);
    assert!(ChildEpcClass.is_class() && !Child.is_class());
}

// ---------------------------------------------------------------------------------------------
// The vendored schema and context
// ---------------------------------------------------------------------------------------------

fn vendored_schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/epcis/EPCIS-JSON-Schema.json")
}

#[test]
fn the_vendored_schema_is_gs1s_unmodified() {
    let vendored = std::fs::read(vendored_schema_path()).expect("the vendored schema");
    let conformance = std::fs::read(conformance_dir().join("epcis/schema/EPCIS-JSON-Schema.json"))
        .expect("the conformance copy of the schema");
    assert!(
        vendored == conformance,
        "schemas/epcis/EPCIS-JSON-Schema.json differs from GS1's"
    );
}

fn collect_patterns(value: &Value, patterns: &mut BTreeSet<String>) {
    match value {
        Value::Object(members) => {
            for (name, member) in members {
                match (name.as_str(), member) {
                    ("pattern", Value::String(pattern)) => {
                        patterns.insert(pattern.clone());
                    }
                    _ => collect_patterns(member, patterns),
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_patterns(item, patterns)),
        _ => {}
    }
}

#[test]
fn every_regular_expression_of_the_schema_compiles_and_means_what_gs1_meant() {
    let schema = read_json(&vendored_schema_path());
    let mut patterns = BTreeSet::new();
    collect_patterns(&schema, &mut patterns);
    assert!(patterns.len() >= 8, "{patterns:?}");
    for pattern in &patterns {
        let validator = jsonschema::validator_for(&json!({"type": "string", "pattern": pattern}));
        assert!(
            validator.is_ok(),
            "pattern {pattern} does not compile: {:?}",
            validator.err()
        );
    }
    // The negative look-aheads work (fancy-regex), not just compile.
    let other_uri = jsonschema::validator_for(
        &json!({"pattern": "^(?!(urn:epcglobal:cbv|https?:\\/\\/ns\\.gs1\\.org/cbv\\/))"}),
    )
    .expect("compiles");
    assert!(!other_uri.is_valid(&json!("urn:epcglobal:cbv:bizstep:shipping")));
    assert!(!other_uri.is_valid(&json!("https://ns.gs1.org/cbv/BizStep-shipping")));
    assert!(other_uri.is_valid(&json!("https://example.com/bizstep/x")));
    let offset = jsonschema::validator_for(
        &json!({"pattern": "^([+]|[-])((0[0-9]|1[0-3]):([0-5][0-9])|14:00)$"}),
    )
    .expect("compiles");
    assert!(offset.is_valid(&json!("+14:00")) && !offset.is_valid(&json!("+14:30")));
}

/// The keys of the `@context` of `definition` in the EPCIS JSON-LD context.
fn context_terms(definition: &Value) -> BTreeSet<String> {
    let context = &definition["@context"];
    let scoped = match context {
        // persistentDisposition's context is an array: the dispositions first.
        Value::Array(contexts) => &contexts[0],
        other => other,
    };
    scoped
        .as_object()
        .expect("a scoped context")
        .keys()
        .filter(|key| !key.starts_with('@'))
        .cloned()
        .collect()
}

fn schema_enum(schema: &Value, definition: &str) -> BTreeSet<String> {
    let alternatives = schema["definitions"][definition]["anyOf"]
        .as_array()
        .expect("anyOf");
    let values = alternatives
        .iter()
        .find_map(|alternative| alternative["enum"].as_array())
        .expect("an enum");
    values
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_vocabularies_are_those_of_the_gs1_context_and_schema() {
    let epcis = conformance_dir().join("epcis");
    let context = read_json(&epcis.join("context/epcis-context.jsonld"));
    let context = &context["@context"];
    let schema = read_json(&epcis.join("schema/EPCIS-JSON-Schema.json"));
    let sensor_report = &context["sensorElementList"]["@context"]["sensorReport"]["@context"];
    let cases = [
        (
            Vocabulary::BizStep,
            context_terms(&context["bizStep"]),
            "bizStep",
        ),
        (
            Vocabulary::Disposition,
            context_terms(&context["disposition"]),
            "disposition",
        ),
        (
            Vocabulary::Disposition,
            context_terms(&context["persistentDisposition"]),
            "disposition",
        ),
        (
            Vocabulary::ErrorReason,
            context_terms(&context["errorDeclaration"]["@context"]["reason"]),
            "error-reason",
        ),
        (
            Vocabulary::BizTransactionType,
            context_terms(&context["bizTransactionList"]["@context"]["type"]),
            "bizTransaction-type",
        ),
        (
            Vocabulary::SourceDestinationType,
            context_terms(&context["sourceList"]["@context"]["type"]),
            "source-dest-type",
        ),
        (
            Vocabulary::SourceDestinationType,
            context_terms(&context["destinationList"]["@context"]["type"]),
            "source-dest-type",
        ),
        (
            Vocabulary::MeasurementType,
            context_terms(&sensor_report["type"]),
            "measurementType",
        ),
        (
            Vocabulary::SensorAlertType,
            context_terms(&sensor_report["exception"]),
            "sensorAlertType",
        ),
        (
            Vocabulary::Component,
            context_terms(&sensor_report["component"]),
            "component",
        ),
    ];
    for (vocabulary, in_context, schema_definition) in cases {
        let ours: BTreeSet<String> = vocabulary
            .standard_values()
            .iter()
            .map(|v| (*v).to_owned())
            .collect();
        assert_eq!(ours, in_context, "{vocabulary} against the JSON-LD context");
        assert_eq!(
            ours,
            schema_enum(&schema, schema_definition),
            "{vocabulary} against the schema"
        );
    }
    // The context's expansions are our Web URIs: `cbv:BizStep-shipping` is
    // https://ref.gs1.org/cbv/BizStep-shipping.
    assert_eq!(context["cbv"], "https://ref.gs1.org/cbv/");
    let compact = context["bizStep"]["@context"]["shipping"]
        .as_str()
        .expect("a term");
    let expanded = compact.replacen("cbv:", "https://ref.gs1.org/cbv/", 1);
    assert_eq!(Vocabulary::BizStep.web_uri("shipping"), Some(expanded));
}
