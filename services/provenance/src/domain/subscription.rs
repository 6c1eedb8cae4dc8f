//! Named queries and their subscriptions, as the EPCIS 2.0 REST binding has them (`/queries`):
//! what a request may say, how a schedule becomes a cron expression, how a delivery is signed
//! and named, and how long a failed one waits. Pure.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::Duration;

/// Most events one webhook delivery carries; more follow in the next.
pub const DELIVERY_EVENTS: i64 = 100;

/// A query's name: 1 to 64 letters, digits, `_`, `-` or `.`, so it sits in a URL as it is.
pub fn check_query_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 64 letters, digits, `_`, `-` or `.`".into())
    }
}

/// A named query's filters (the SimpleEventQuery parameters: a list as an array or a
/// pipe-delimited string, a time as a string) as the `name=value` pairs `GET /events` reads.
pub fn query_pairs(query: &serde_json::Value) -> Result<Vec<(String, String)>, String> {
    let members = query
        .as_object()
        .ok_or("must be an object of SimpleEventQuery parameters")?;
    members
        .iter()
        .map(|(name, value)| {
            let is_time = name.starts_with("GE_") || name.starts_with("LT_");
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(list) if !is_time => list
                    .iter()
                    .map(|v| match v.as_str() {
                        Some(item) if !item.is_empty() && !item.contains('|') => Ok(item),
                        _ => Err(format!(
                            "{name}: each value of a list is a non-empty string without `|`"
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join("|"),
                _ if is_time => return Err(format!("{name}: must be one date-time, as a string")),
                _ => return Err(format!("{name}: must be a string or a list of strings")),
            };
            Ok((name.clone(), text))
        })
        .collect()
}

/// When a scheduled subscription runs, as the binding spells it, each field as cron has it:
/// `*`, or a comma list of numbers within the field's range, each optionally stepped, and
/// steps `*/n` (`5`, `0,30`, `*/10`, `0/30`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    // Each field absent or a string: an explicit null is refused, as the request's schema
    // (schedule_request_schema) says.
    /// 0-59.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub second: Option<String>,
    /// 0-59.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub minute: Option<String>,
    /// 0-23.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub hour: Option<String>,
    /// 1-31.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub day_of_month: Option<String>,
    /// 1-12.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub month: Option<String>,
    /// 0-6, Sunday 0.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub day_of_week: Option<String>,
}

impl Schedule {
    /// The 6-field cron expression (`sec min hour day-of-month month day-of-week`). A field
    /// left out is `0` when finer than the finest field given (`{"hour": "1"}` is 01:00:00
    /// every day, not every second of that hour), `*` otherwise.
    pub fn cron(&self) -> Result<String, String> {
        let fields = [
            ("second", &self.second, 0, 59),
            ("minute", &self.minute, 0, 59),
            ("hour", &self.hour, 0, 23),
            ("dayOfMonth", &self.day_of_month, 1, 31),
            ("month", &self.month, 1, 12),
            ("dayOfWeek", &self.day_of_week, 0, 6),
        ];
        let finest = fields.iter().position(|f| f.1.is_some()).ok_or(
            "names no field: give at least one of second, minute, hour, dayOfMonth, month, dayOfWeek",
        )?;
        let mut out = Vec::with_capacity(6);
        for (i, (name, value, min, max)) in fields.iter().enumerate() {
            match value {
                Some(v) if is_cron_field(v, *min, *max) => out.push(v.clone()),
                Some(v) => {
                    return Err(format!(
                        "{name}: {v:?} is not `*`, `*/n` or numbers from {min} to {max} separated by commas"
                    ));
                }
                None if i < finest => out.push(min.to_string()),
                None => out.push("*".into()),
            }
        }
        Ok(out.join(" "))
    }
}

/// [`Schedule`] as a request states it: each field absent or a string, at least one.
pub fn schedule_request_schema() -> serde_json::Value {
    let field = |pattern: &str| serde_json::json!({"type": "string", "pattern": pattern});
    let mut properties = serde_json::Map::new();
    for (name, pattern) in SCHEDULE_PATTERNS {
        properties.insert(name.to_string(), field(pattern));
    }
    serde_json::json!({"type": "object", "minProperties": 1, "additionalProperties": false,
                       "properties": properties})
}

/// The member names of a schedule and the pattern of each (what [`Schedule::cron`] takes).
const SCHEDULE_PATTERNS: [(&str, &str); 6] = [
    ("second", SECOND_PATTERN),
    ("minute", SECOND_PATTERN),
    ("hour", HOUR_PATTERN),
    ("dayOfMonth", DAY_OF_MONTH_PATTERN),
    ("month", MONTH_PATTERN),
    ("dayOfWeek", DAY_OF_WEEK_PATTERN),
];

/// Each schedule field's language as a pattern ([`is_cron_field`]).
const SECOND_PATTERN: &str = r"^(?:\*|(?:\*/(?:[1-9]|[1-5][0-9])|[1-5]?[0-9](?:/(?:[1-9]|[1-5][0-9]))?)(?:,(?:\*/(?:[1-9]|[1-5][0-9])|[1-5]?[0-9](?:/(?:[1-9]|[1-5][0-9]))?))*)$";
const HOUR_PATTERN: &str = r"^(?:\*|(?:\*/(?:[1-9]|1[0-9]|2[0-3])|(?:1?[0-9]|2[0-3])(?:/(?:[1-9]|1[0-9]|2[0-3]))?)(?:,(?:\*/(?:[1-9]|1[0-9]|2[0-3])|(?:1?[0-9]|2[0-3])(?:/(?:[1-9]|1[0-9]|2[0-3]))?))*)$";
const DAY_OF_MONTH_PATTERN: &str = r"^(?:\*|(?:\*/(?:[1-9]|[12][0-9]|3[01])|(?:[1-9]|[12][0-9]|3[01])(?:/(?:[1-9]|[12][0-9]|3[01]))?)(?:,(?:\*/(?:[1-9]|[12][0-9]|3[01])|(?:[1-9]|[12][0-9]|3[01])(?:/(?:[1-9]|[12][0-9]|3[01]))?))*)$";
const MONTH_PATTERN: &str = r"^(?:\*|(?:\*/(?:[1-9]|1[0-2])|(?:[1-9]|1[0-2])(?:/(?:[1-9]|1[0-2]))?)(?:,(?:\*/(?:[1-9]|1[0-2])|(?:[1-9]|1[0-2])(?:/(?:[1-9]|1[0-2]))?))*)$";
const DAY_OF_WEEK_PATTERN: &str =
    r"^(?:\*|(?:\*/[1-6]|[0-6](?:/[1-6])?)(?:,(?:\*/[1-6]|[0-6](?:/[1-6])?))*)$";

/// A member that is there holds a string (absent is `None` by `default`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// `*` alone, or a comma list of terms, each a number from `min` to `max` (no leading
/// zeros) optionally stepped `/n`, or `*/n` (n from 1 to `max`).
fn is_cron_field(v: &str, min: u32, max: u32) -> bool {
    let number = |t: &str, lo: u32| {
        !t.is_empty()
            && t.len() <= 2
            && t.bytes().all(|b| b.is_ascii_digit())
            && (t == "0" || !t.starts_with('0'))
            && t.parse::<u32>().is_ok_and(|n| (lo..=max).contains(&n))
    };
    v == "*"
        || v.split(',').all(|term| match term.split_once('/') {
            Some((base, step)) => (base == "*" || number(base, min)) && number(step, 1),
            None => number(term, min),
        })
}

/// A webhook's destination: an absolute `http://` or `https://` URL.
pub fn check_dest(dest: &str) -> Result<(), String> {
    let rest = dest
        .strip_prefix("https://")
        .or_else(|| dest.strip_prefix("http://"))
        .ok_or("must be an http:// or https:// URL")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // What the request's schema refuses too: white space (U+FEFF included) and controls.
    let refused = |c: char| c.is_whitespace() || c.is_control() || c == '\u{FEFF}';
    if host.is_empty() || dest.len() > 2048 || dest.chars().any(refused) {
        return Err(
            "must be an absolute URL with a host, without spaces, of at most 2,048 characters"
                .into(),
        );
    }
    Ok(())
}

/// The `GS1-Signature` of a delivery: `sha256=` and the hex HMAC-SHA256 of the body, keyed
/// with the subscription's `signatureToken`.
pub fn signature(token: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A delivery's name: the subscription and the positions it carries, so that a delivery sent
/// again (its acknowledgement lost in a crash) has the same name, and a receiver can tell.
pub fn delivery_id(subscription_id: &str, after: i64, through: i64) -> String {
    format!("{subscription_id}/{after}-{through}")
}

/// How long a subscription waits after its `attempts`-th failed delivery in a row: 1 s,
/// doubling, at most a minute.
pub fn backoff(attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(6);
    Duration::from_secs(1 << exponent).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_destinations_are_checked() {
        assert!(check_query_name("myQuery_2.v1").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_query_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_dest("https://client.example.com/queryCallback").is_ok());
        assert!(check_dest("http://127.0.0.1:9000/hook?x=1").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "https:///path",
            "http://a b",
            "client.example.com",
        ] {
            assert!(check_dest(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_named_query_reads_as_the_parameters_of_get_events() {
        let pairs = query_pairs(&json!({"EQ_bizStep": ["shipping", "receiving"],
                                        "eventType": "ObjectEvent", "perPage": "5"}))
        .expect("pairs");
        assert_eq!(
            pairs,
            [
                ("EQ_bizStep".to_string(), "shipping|receiving".to_string()),
                ("eventType".into(), "ObjectEvent".into()),
                ("perPage".into(), "5".into()),
            ]
        );
        for bad in [
            json!(["x"]),
            json!({"EQ_action": [1]}),
            json!({"EQ_action": true}),
            json!({"EQ_bizStep": 5}),
            json!({"EQ_bizStep": null}),
            json!({"EQ_bizStep": ["a|b"]}),
            json!({"EQ_bizStep": [""]}),
            json!({"GE_eventTime": ["2026-01-01T00:00:00Z"]}),
        ] {
            assert!(query_pairs(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_schedule_fills_finer_fields_with_zero_and_coarser_with_any() {
        let at = |s: Schedule| s.cron();
        let daily = Schedule {
            hour: Some("1".into()),
            minute: Some("5".into()),
            ..Schedule::default()
        };
        assert_eq!(at(daily).as_deref(), Ok("0 5 1 * * *"));
        let every = Schedule {
            second: Some("0/30".into()),
            ..Schedule::default()
        };
        assert_eq!(at(every).as_deref(), Ok("0/30 * * * * *"));
        let monthly = Schedule {
            day_of_month: Some("1,15".into()),
            ..Schedule::default()
        };
        assert_eq!(at(monthly).as_deref(), Ok("0 0 0 1,15 * *"));
        assert!(at(Schedule::default()).is_err());
        for bad in [
            "60", "1,,2", "*/0", "05", "1-5", "*/60", "", "*/", "0/", "*,5", "5,*",
        ] {
            let s = Schedule {
                second: Some(bad.into()),
                ..Schedule::default()
            };
            assert!(at(s).is_err(), "{bad:?}");
        }
        assert!(
            at(Schedule {
                hour: Some("one".into()),
                ..Schedule::default()
            })
            .is_err()
        );
    }

    #[test]
    fn deliveries_are_signed_named_and_retried_ever_later() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(delivery_id("s", 4, 9), "s/4-9");
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(0).as_secs(), 1);
    }
}
