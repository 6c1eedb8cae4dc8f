//! What the provenance tests share: a member's key, capturing EPCIS documents, GTINs.

use super::{agent, call, header_text, read_response};
use serde_json::{Value, json};

/// A new member organisation's API key.
pub fn member(base: &str, admin: &str, name: &str) -> String {
    organisation_key(base, admin, name, "member")
}

/// The API key of a new organisation of role `role` (`member`, `auditor`, `court`).
pub fn organisation_key(base: &str, admin: &str, name: &str, role: &str) -> String {
    let body = json!({"name": name, "role": role}).to_string();
    let url = format!("{base}/organisations");
    let (status, _, v) = call("POST", &url, Some(admin), Some(body.as_bytes()));
    assert_eq!(status, 201, "{v}");
    v["api_key"].as_str().expect("api_key").to_owned()
}

/// `POST /capture`: the status, the `Location` and the job.
pub fn capture(
    base: &str,
    key: &str,
    body: &[u8],
    behaviour: Option<&str>,
) -> (u16, String, Value) {
    let mut r = agent()
        .post(&format!("{}/capture", base))
        .header("Content-Type", "application/ld+json")
        .header("Authorization", &format!("Bearer {key}"));
    if let Some(b) = behaviour {
        r = r.header("GS1-Capture-Error-Behaviour", b);
    }
    let mut resp = r.send(body).expect("capture");
    let location = header_text(&resp, "location");
    let (status, _, job) = read_response(&mut resp);
    (status, location, job)
}

pub fn document(events: Vec<Value>) -> Vec<u8> {
    json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
                     {"example": "https://ns.example.com/epcis/"}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-12-01T10:00:00+01:00",
        "epcisBody": {"eventList": events}
    })
    .to_string()
    .into_bytes()
}

pub fn with_check_digit(body: &str) -> String {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// A loaf's journey, captured by one bakery: a flour lot commissioned (1), the loaf baked
/// from it (2), packed on a pallet (3), the pallet shipped (4), the loaf sold under its
/// Digital Link (5); and another product shipped (6), no part of the loaf's history.
pub struct Loaf {
    pub gtin: String,
    pub loaf: &'static str,
    pub loaf_link: String,
    /// The six events' eventIDs, in that order.
    pub ids: Vec<String>,
    pub document: Vec<u8>,
}

impl Loaf {
    pub fn journey() -> Loaf {
        let loaf = "urn:epc:id:sgtin:4012345.033333.B1";
        let gtin = with_check_digit("0401234533333");
        let loaf_link = format!("https://id.gs1.org/01/{gtin}/21/B1");
        let flour = "urn:epc:class:lgtin:4012345.022222.LOT1";
        let pallet = "urn:epc:id:sscc:4012345.0000000007";
        let ids: Vec<String> = (1..=6)
            .map(|n| format!("urn:uuid:3c2b1a00-0000-4000-8000-{n:012}"))
            .collect();
        let at = |day: u32| format!("2026-11-{day:02}T08:00:00+01:00");
        let events = vec![
            json!({"eventID": ids[0], "type": "ObjectEvent", "eventTime": at(1), "eventTimeZoneOffset": "+01:00",
                   "action": "ADD", "bizStep": "commissioning", "epcList": [],
                   "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
                   "quantityList": [{"epcClass": flour, "quantity": 50, "uom": "KGM"}]}),
            json!({"eventID": ids[1], "type": "TransformationEvent", "eventTime": at(2), "eventTimeZoneOffset": "+01:00",
                   "bizStep": "creating_class_instance",
                   "bizLocation": {"id": "urn:epc:id:sgln:4012345.00002.0"},
                   "inputQuantityList": [{"epcClass": flour, "quantity": 0.5, "uom": "KGM"}],
                   "outputEPCList": [loaf]}),
            json!({"eventID": ids[2], "type": "AggregationEvent", "eventTime": at(3), "eventTimeZoneOffset": "+01:00",
                   "action": "ADD", "bizStep": "packing", "parentID": pallet, "childEPCs": [loaf]}),
            json!({"eventID": ids[3], "type": "ObjectEvent", "eventTime": at(4), "eventTimeZoneOffset": "+01:00",
                   "action": "OBSERVE", "bizStep": "shipping", "disposition": "in_transit", "epcList": [pallet]}),
            json!({"eventID": ids[4], "type": "ObjectEvent", "eventTime": at(5), "eventTimeZoneOffset": "+01:00",
                   "action": "OBSERVE", "bizStep": "retail_selling", "disposition": "retail_sold",
                   "epcList": [loaf_link]}),
            json!({"eventID": ids[5], "type": "ObjectEvent", "eventTime": at(6), "eventTimeZoneOffset": "+01:00",
                   "action": "OBSERVE", "bizStep": "shipping", "epcList": ["urn:epc:id:sgtin:4012345.044444.X9"]}),
        ];
        Loaf {
            gtin,
            loaf,
            loaf_link,
            ids,
            document: document(events),
        }
    }
}
