//! An EPCIS event in words, for the consumer's page: what happened, when (in the time zone
//! where it happened), where and why. Pure; what a word cannot say, the identifier says.

use chrono::{DateTime, FixedOffset};
use serde_json::Value;
use veritrace_epcis::identifiers::{gs1_check_digit, parse_epc_uri};
use veritrace_epcis::vocabulary::{biz_step_key, disposition_key};

/// What happened: the business step in words where the event names one, else its type and
/// action.
pub fn what(event: &Value) -> String {
    if let Some(step) = text(event, "bizStep") {
        return words(&biz_step_key(step));
    }
    let action = text(event, "action").unwrap_or_default();
    match (text(event, "type").unwrap_or_default(), action) {
        ("ObjectEvent", "ADD") => "Created".into(),
        ("ObjectEvent", "DELETE") => "Taken out of use".into(),
        ("ObjectEvent", _) => "Seen".into(),
        ("AggregationEvent", "ADD") => "Packed".into(),
        ("AggregationEvent", "DELETE") => "Unpacked".into(),
        ("AggregationEvent", _) => "Seen packed".into(),
        ("TransformationEvent", _) => "Made".into(),
        ("TransactionEvent", _) => "Part of a business transaction".into(),
        ("AssociationEvent", _) => "Associated".into(),
        (other, _) => other.to_owned(),
    }
}

/// The event's type and action, as the standard names them (`ObjectEvent · OBSERVE`).
pub fn kind(event: &Value) -> String {
    match (text(event, "type"), text(event, "action")) {
        (Some(t), Some(a)) => format!("{t} · {a}"),
        (Some(t), None) => t.to_owned(),
        _ => "event".to_owned(),
    }
}

/// When, as a reader where it happened reads it: `15 January 2026, 08:00 (UTC+01:00)`, in the
/// event's `eventTimeZoneOffset`; the time as written if it cannot be read.
pub fn when(event: &Value) -> String {
    let Some(written) = text(event, "eventTime") else {
        return "unknown time".into();
    };
    let Ok(t) = DateTime::parse_from_rfc3339(written) else {
        return written.to_owned();
    };
    let zone = text(event, "eventTimeZoneOffset")
        .and_then(|o| DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{o}")).ok())
        .map(|d| *d.offset())
        .unwrap_or(*t.offset());
    let local = t.with_timezone(&zone);
    format!(
        "{} (UTC{})",
        local.format("%-d %B %Y, %H:%M"),
        offset_text(zone)
    )
}

fn offset_text(zone: FixedOffset) -> String {
    let s = zone.local_minus_utc();
    let sign = if s < 0 { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", s.abs() / 3600, s.abs() % 3600 / 60)
}

/// Where: the business location, else the read point; a GLN in its 13 digits.
pub fn place(event: &Value) -> Option<String> {
    ["bizLocation", "readPoint"]
        .iter()
        .find_map(|m| event.get(*m)?.get("id")?.as_str())
        .map(location)
}

/// A location identifier in words: an SGLN as `GLN 4012345000016` (with its extension when
/// not 0), anything else as written.
pub fn location(id: &str) -> String {
    let Ok(uri) = parse_epc_uri(id) else {
        return id.to_owned();
    };
    match (uri.scheme(), uri.components()) {
        ("sgln", [prefix, reference, extension]) => {
            let digits = format!("{prefix}{reference}");
            let Some(check) = gs1_check_digit(&digits) else {
                return id.to_owned();
            };
            match extension.as_str() {
                "0" => format!("GLN {digits}{check}"),
                ext => format!("GLN {digits}{check}, {ext}"),
            }
        }
        _ => id.to_owned(),
    }
}

/// Why: the disposition in words (`In transit`), if the event names one.
pub fn why(event: &Value) -> Option<String> {
    text(event, "disposition").map(|d| words(&disposition_key(d)))
}

/// A vocabulary key in words: `in_transit` as `In transit`; a URI by its last segment.
fn words(key: &str) -> String {
    let last = key.rsplit(['/', ':', '#']).next().unwrap_or(key);
    let spaced = last.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => key.to_owned(),
    }
}

fn text<'a>(event: &'a Value, member: &str) -> Option<&'a str> {
    event.get(member)?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_reads_as_what_when_where_and_why() {
        let e = json!({
            "type": "ObjectEvent", "action": "OBSERVE",
            "eventTime": "2026-01-15T07:00:00.000Z", "eventTimeZoneOffset": "+01:00",
            "bizStep": "urn:epcglobal:cbv:bizstep:shipping",
            "disposition": "https://ref.gs1.org/cbv/Disp-in_transit",
            "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
            "bizLocation": {"id": "urn:epc:id:sgln:0614141.00777.7"},
        });
        assert_eq!(what(&e), "Shipping");
        assert_eq!(kind(&e), "ObjectEvent · OBSERVE");
        assert_eq!(when(&e), "15 January 2026, 08:00 (UTC+01:00)");
        // The business location before the read point; a GLN with its check digit.
        assert_eq!(place(&e).as_deref(), Some("GLN 0614141007776, 7"));
        assert_eq!(why(&e).as_deref(), Some("In transit"));
    }

    #[test]
    fn what_cannot_be_put_in_words_is_shown_as_written() {
        let e = json!({"type": "AggregationEvent", "action": "ADD",
                       "eventTime": "yesterday", "readPoint": {"id": "https://example.com/dock/4"},
                       "disposition": "https://example.com/disp/Quarantined_Lot"});
        assert_eq!(what(&e), "Packed");
        assert_eq!(when(&e), "yesterday");
        assert_eq!(place(&e).as_deref(), Some("https://example.com/dock/4"));
        assert_eq!(why(&e).as_deref(), Some("Quarantined Lot"));
        assert_eq!(
            location("urn:epc:id:sgln:4012345.00001.0"),
            "GLN 4012345000016"
        );
        let west = json!({"eventTime": "2026-03-01T02:30:00Z", "eventTimeZoneOffset": "-05:30"});
        assert_eq!(when(&west), "28 February 2026, 21:00 (UTC-05:30)");
    }
}
