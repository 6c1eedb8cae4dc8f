//! The event envelope: what is hashed, batched and anchored for every event of every service.

use crate::problem::FieldError;
use chain_core::canonical::CanonicalObject;
use chain_core::{Digest, HashAlg};
/// The time types of [`now`], [`envelope_time`] and [`business_time`], for callers without chrono.
pub use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventEnvelope {
    /// UUIDv7: time-ordered, and its 74 random bits keep a leaf hash from revealing a
    /// low-entropy payload.
    pub id: Uuid,
    /// The service that recorded it (`evidence`, `finance`...).
    pub service: String,
    /// The aggregate's stream, e.g. `evidence-0193...`.
    pub stream: String,
    /// Position in the stream, from 1.
    pub stream_version: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Version of the event type's payload schema.
    pub type_version: u32,
    /// When the fact happened, as stated by the caller or the service (RFC 3339 UTC).
    pub occurred_at: String,
    /// When the service accepted it (RFC 3339 UTC).
    pub recorded_at: String,
    /// The organisation that recorded it.
    pub organisation: String,
    pub payload: serde_json::Value,
}

/// An envelope with its canonical bytes and digest, computed once.
#[derive(Clone, Debug)]
pub struct SealedEnvelope {
    pub envelope: EventEnvelope,
    /// RFC 8785 canonical JSON text.
    pub canonical: String,
    pub digest: Digest,
}

impl EventEnvelope {
    /// Its canonical text and digest. Every envelope has both: its members are text, whole
    /// numbers and a JSON value.
    pub fn seal(self, alg: HashAlg) -> SealedEnvelope {
        let bytes = self.canonical_bytes();
        let digest = alg.hash(&bytes);
        // JCS output is UTF-8 by construction.
        let canonical = String::from_utf8(bytes).unwrap_or_default();
        SealedEnvelope {
            envelope: self,
            canonical,
            digest,
        }
    }

    /// The RFC 8785 bytes of the envelope, written member by member in key order: what
    /// `to_canonical_bytes(&self)` gives, at a fraction of its cost (every event is sealed
    /// twice, by its service and by the anchor).
    fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(384);
        let mut id = Uuid::encode_buffer();
        CanonicalObject::new(&mut out)
            .str("id", self.id.hyphenated().encode_lower(&mut id))
            .str("occurred_at", &self.occurred_at)
            .str("organisation", &self.organisation)
            .value("payload", &self.payload)
            .str("recorded_at", &self.recorded_at)
            .str("service", &self.service)
            .str("stream", &self.stream)
            .number("stream_version", self.stream_version as f64)
            .str("type", &self.event_type)
            .number("type_version", f64::from(self.type_version))
            .finish();
        out
    }
}

/// Now as RFC 3339 UTC with milliseconds, the one time format of envelopes.
pub fn now_rfc3339() -> String {
    envelope_time(now())
}

/// Now, as a recording time for [`envelope_time`] and [`business_time`].
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// `t` in the one time format of envelopes: RFC 3339 in UTC, milliseconds (finer digits are
/// dropped, not rounded) and an upper-case `Z`, `YYYY-MM-DDTHH:MM:SS.sssZ`.
pub fn envelope_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// How far after its recording time a business time may lie: the caller's clock and the
/// service's may differ by this much. Later than that, the fact has not happened yet.
pub const MAX_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Checks a business time given by a caller for the envelope's `occurred_at` (when the fact
/// happened: a document signed, goods shipped), against `recorded_at`, the time the service
/// records the event (at the latest: a time checked now holds for any later recording), and
/// writes it in the envelope's format ([`envelope_time`]).
///
/// Accepted: an RFC 3339 date-time with an explicit offset, `Z` or `±hh:mm` (`T` and `Z` in
/// either case, any number of fractional digits, of which milliseconds are kept), e.g.
/// `2026-01-31T10:30:00.250+01:00`, which becomes `2026-01-31T09:30:00.250Z`. Refused, with a
/// [`FieldError`] naming `field`: anything else (a local time without offset, a date alone, a
/// day or time that does not exist, a leap second `:60`, which UTC milliseconds cannot hold),
/// a time before 1970-01-01T00:00:00Z, and one later than `recorded_at` plus
/// [`MAX_CLOCK_SKEW`].
pub fn business_time(
    field: &str,
    given: &str,
    recorded_at: DateTime<Utc>,
) -> Result<String, FieldError> {
    let refuse = |message: String| FieldError::new(field, message);
    let t = parse_rfc3339(given).map_err(|m| refuse(m.to_string()))?;
    if t < DateTime::UNIX_EPOCH {
        return Err(refuse(format!(
            "is before 1970-01-01T00:00:00Z (it is {} in UTC)",
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )));
    }
    let latest = recorded_at + MAX_CLOCK_SKEW;
    if t > latest {
        return Err(refuse(format!(
            "is in the future: {} is later than the recording time {} \
             plus {} minutes of clock skew",
            envelope_time(t),
            envelope_time(recorded_at),
            MAX_CLOCK_SKEW.as_secs() / 60
        )));
    }
    Ok(envelope_time(t))
}

const RFC3339_EXPECTED: &str = "must be an RFC 3339 date-time with its offset from UTC, `Z` or \
     ±hh:mm, e.g. 2026-01-31T09:30:00Z or 2026-01-31T10:30:00.250+01:00";

/// `YYYY-MM-DDTHH:MM:SS[.f+](Z|±HH:MM)`, as an instant.
fn parse_rfc3339(s: &str) -> Result<DateTime<Utc>, &'static str> {
    let b = s.as_bytes();
    let number = |from: usize, len: usize| -> Option<u32> {
        b.get(from..from + len)?.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    let fields = (
        number(0, 4),
        number(5, 2),
        number(8, 2),
        number(11, 2),
        number(14, 2),
        number(17, 2),
    );
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = fields
    else {
        return Err(RFC3339_EXPECTED);
    };
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return Err(RFC3339_EXPECTED);
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(RFC3339_EXPECTED);
        }
        millis = fraction[..digits]
            .iter()
            .chain(b"00")
            .take(3)
            .fold(0, |n, c| n * 10 + u32::from(c - b'0'));
        rest = &fraction[digits..];
    }
    let offset_minutes: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
            if [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) =>
        {
            let digit = |c: &u8| i64::from(c - b'0');
            let (hours, minutes) = (digit(h1) * 10 + digit(h2), digit(m1) * 10 + digit(m2));
            if hours > 23 || minutes > 59 {
                return Err("has an offset beyond ±23:59");
            }
            let sign = if *sign == b'-' { -1 } else { 1 };
            sign * (hours * 60 + minutes)
        }
        [] => return Err("must state its offset from UTC: `Z` or ±hh:mm"),
        _ => return Err(RFC3339_EXPECTED),
    };
    if second == 60 {
        return Err("is a leap second (:60), which the envelope's UTC time cannot hold");
    }
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month, day)
        .ok_or("is not a day of the calendar")?;
    let time = chrono::NaiveTime::from_hms_milli_opt(hour, minute, second, millis)
        .ok_or("is not a time of day")?;
    Ok(date.and_time(time).and_utc() - chrono::TimeDelta::minutes(offset_minutes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_is_sealed_over_its_rfc8785_bytes() {
        // Text with what RFC 8785 escapes or sorts apart, and numbers past 2^53.
        const TEXTS: &[&str] = &[
            "",
            "evidence",
            "a\"b\\c/d",
            "\u{0}\u{8}\t\n\u{b}\u{c}\r\u{1f}\u{7f}",
            "é€\u{e000}\u{ffff}",
            "😀\u{10ffff}",
            "2026-03-01T12:00:00.000Z",
        ];
        let mut n: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            n ^= n << 13;
            n ^= n >> 7;
            n ^= n << 17;
            n
        };
        for _ in 0..2_000 {
            let texts: Vec<String> = (0..10)
                .map(|_| TEXTS[(next() % TEXTS.len() as u64) as usize].to_owned())
                .collect();
            let mut texts = texts.into_iter();
            let mut text = move || texts.next().unwrap_or_default();
            let payload = serde_json::json!({
                text(): text(),
                "€": [1e21, -0.0, 0.1, 9_007_199_254_740_993u64, null, true],
                "\u{ffff}": {"😀": text(), "": {}},
                "size_bytes": 123_456,
            });
            let envelope = EventEnvelope {
                id: Uuid::now_v7(),
                service: text(),
                stream: text(),
                stream_version: next() >> (next() % 64),
                event_type: text(),
                type_version: next() as u32,
                occurred_at: text(),
                recorded_at: text(),
                organisation: text(),
                payload,
            };
            let expected = chain_core::canonical::to_canonical_bytes(&envelope).unwrap();
            let sealed = envelope.seal(HashAlg::Sha3_256);
            assert_eq!(sealed.canonical.as_bytes(), expected.as_slice());
            assert_eq!(sealed.digest, HashAlg::Sha3_256.hash(&expected));
        }
    }

    fn at(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t).unwrap().to_utc()
    }

    const RECORDED: &str = "2026-03-01T12:00:00.000Z";

    fn checked(given: &str) -> Result<String, FieldError> {
        business_time("occurred_at", given, at(RECORDED))
    }

    #[test]
    fn business_times_are_normalised_to_the_envelope_format() {
        for (given, kept) in [
            ("2026-01-31T09:30:00Z", "2026-01-31T09:30:00.000Z"),
            ("2026-01-31t09:30:00z", "2026-01-31T09:30:00.000Z"),
            ("2026-01-31T10:30:00.25+01:00", "2026-01-31T09:30:00.250Z"),
            (
                "2026-01-31T04:00:00.123456789-05:30",
                "2026-01-31T09:30:00.123Z",
            ),
            ("2026-01-31T09:30:00.9999Z", "2026-01-31T09:30:00.999Z"),
            ("2026-01-31T09:30:00-00:00", "2026-01-31T09:30:00.000Z"),
            ("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00.000Z"),
            ("2024-02-29T23:59:59.5+23:59", "2024-02-29T00:00:59.500Z"),
            ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"),
            ("1969-12-31T19:00:00-05:00", "1970-01-01T00:00:00.000Z"),
            (RECORDED, RECORDED),
            // Up to the clock skew after the recording time, the clocks may just differ.
            ("2026-03-01T12:05:00.000Z", "2026-03-01T12:05:00.000Z"),
            ("2026-03-01T13:05:00+01:00", "2026-03-01T12:05:00.000Z"),
        ] {
            assert_eq!(checked(given).as_deref(), Ok(kept), "{given}");
        }
        // What it writes it reads back unchanged, in the format of `now_rfc3339`.
        let now = now_rfc3339();
        assert_eq!(
            business_time("t", &now, Utc::now()).as_deref(),
            Ok(now.as_str())
        );
    }

    #[test]
    fn malformed_early_and_future_times_are_refused_naming_the_field() {
        for (given, why) in [
            ("", "RFC 3339"),
            ("2026-01-31", "RFC 3339"),
            ("2026-01-31T09:30:00", "offset"),
            ("2026-01-31T09:30", "RFC 3339"),
            ("2026-01-31 09:30:00Z", "RFC 3339"),
            ("2026-01-31T09:30:00+0100", "RFC 3339"),
            ("2026-01-31T09:30:00+01", "RFC 3339"),
            ("2026-01-31T09:30:00.Z", "RFC 3339"),
            ("2026-01-31T09:30:00ZZ", "RFC 3339"),
            ("2026-01-31T09:30:00 Z", "RFC 3339"),
            ("+2026-01-31T09:30:00Z", "RFC 3339"),
            ("26-01-31T09:30:00Z", "RFC 3339"),
            ("2026-1-31T09:30:00Z", "RFC 3339"),
            ("２０２６-01-31T09:30:00Z", "RFC 3339"),
            ("2026-01-31T09:30:00+24:00", "±23:59"),
            ("2026-01-31T09:30:00+01:60", "±23:59"),
            ("2026-02-29T09:30:00Z", "day of the calendar"),
            ("2026-13-01T09:30:00Z", "day of the calendar"),
            ("2026-01-00T09:30:00Z", "day of the calendar"),
            ("2026-01-31T24:00:00Z", "time of day"),
            ("2026-01-31T09:60:00Z", "time of day"),
            ("2016-12-31T23:59:60Z", "leap second"),
            ("1969-12-31T23:59:59.999Z", "before 1970"),
            ("1970-01-01T00:30:00+01:00", "before 1970"),
            ("0000-01-01T00:00:00Z", "before 1970"),
            ("2026-03-01T12:05:00.001Z", "in the future"),
            ("2026-03-01T12:00:00-00:06", "in the future"),
            ("9999-12-31T23:59:59Z", "in the future"),
            ("9999-12-31T23:59:59-23:59", "in the future"),
        ] {
            let err = checked(given).expect_err(given);
            assert_eq!(err.field, "occurred_at", "{given}");
            assert!(err.message.contains(why), "{given}: {}", err.message);
        }
        let err = checked("2026-03-02T00:00:00Z").unwrap_err();
        assert!(
            err.message
                .contains("2026-03-01T12:00:00.000Z plus 5 minutes"),
            "{}",
            err.message
        );
    }
}
