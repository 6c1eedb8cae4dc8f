//! The HTTP load of every `veritrace bench` mode: client threads recording the benchmarked
//! domain's events through its API, as fast as answered or at an offered rate, timing each
//! request and noting when a sample of the events was answered 201.

use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// At most this many events are sampled for the 201-to-anchored latency, spread evenly.
pub const MAX_SAMPLES: usize = 20_000;

/// What to send.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub events: usize,
    /// Client threads, each with its own keep-alive connection.
    pub concurrency: usize,
    /// Events per request: 1 uses the domain's single command, more its batch command.
    pub batch: usize,
    /// Events per second offered, spread over the clients; `None` sends each request as soon
    /// as the last was answered.
    pub rate: Option<f64>,
}

/// What the load saw.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Each request's latency, in milliseconds.
    pub request_ms: Vec<f64>,
    /// When each request was answered (since the load started) and how many events it held.
    pub answered: Vec<(Duration, usize)>,
    /// Sampled events: their `event_id` and when their 201 was read (wall clock, to compare
    /// with the anchor's `anchored_at`).
    pub samples: Vec<(String, DateTime<Utc>)>,
    /// Every event the requests recorded ([`Domain::bench_recorded`]), which the anchor is to
    /// anchor.
    ///
    /// [`Domain::bench_recorded`]: veritrace_kernel::domain::Domain::bench_recorded
    pub recorded: usize,
}

/// Runs `load` against `base` with the API key `key`; fails on the first answer other than
/// 201 (or 202, a capture job complete when it answers).
pub fn run(
    domain: &'static dyn veritrace_kernel::domain::Domain,
    base: &str,
    key: &str,
    load: Load,
) -> Result<LoadOutcome, BoxError> {
    let Load {
        events,
        concurrency,
        batch,
        rate,
    } = load;
    let concurrency = concurrency.max(1);
    let sample_every = events.div_ceil(MAX_SAMPLES).max(1);
    // Each client offers its share of the rate.
    let per_client = rate.filter(|r| *r > 0.0).map(|r| r / concurrency as f64);
    let auth = format!("Bearer {key}");
    let started = Instant::now();
    let threads: Vec<_> = (0..concurrency)
        .map(|t| {
            let (base, auth) = (base.to_string(), auth.clone());
            let n = events / concurrency + usize::from(t < events % concurrency);
            std::thread::spawn(move || -> Result<LoadOutcome, String> {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut out = LoadOutcome::default();
                let mut i = 0;
                while i < n {
                    let k = batch.min(n - i);
                    if let Some(r) = per_client {
                        // Open loop: request i is due when the client's share of the rate
                        // reaches its first event; a late request goes at once.
                        let due = started + Duration::from_secs_f64(i as f64 / r);
                        std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    }
                    let (path, body) = domain
                        .bench_request(&format!("{t}/{i}"), k)
                        .ok_or_else(|| format!("domain {} offers no load", domain.name()))?;
                    let url = format!("{base}{path}");
                    let start = Instant::now();
                    let mut resp = agent
                        .post(&url)
                        .header("Authorization", &auth)
                        .send_json(&body)
                        .map_err(|e| e.to_string())?;
                    // Reading the body to its end lets the client reuse the connection.
                    let status = resp.status();
                    let answer = resp.body_mut().read_to_vec().unwrap_or_default();
                    let at = Utc::now();
                    if !matches!(status.as_u16(), 201 | 202) {
                        return Err(format!("{url} answered {status}"));
                    }
                    out.request_ms.push(start.elapsed().as_secs_f64() * 1000.0);
                    out.answered.push((started.elapsed(), k));
                    out.recorded += domain.bench_recorded(k);
                    let ids = serde_json::from_slice(&answer)
                        .ok()
                        .and_then(|v| domain.bench_event_ids(&v))
                        .unwrap_or_else(|| event_ids(&answer));
                    out.samples.extend(
                        ids.into_iter()
                            .enumerate()
                            .filter(|(j, _)| (t + i + j) % sample_every == 0)
                            .map(|(_, id)| (id, at)),
                    );
                    i += k;
                }
                Ok(out)
            })
        })
        .collect();
    let mut all = LoadOutcome::default();
    for t in threads {
        let out = t.join().map_err(|_| "a client thread panicked")??;
        all.request_ms.extend(out.request_ms);
        all.answered.extend(out.answered);
        all.samples.extend(out.samples);
        all.recorded += out.recorded;
    }
    all.answered.sort();
    Ok(all)
}

/// Every `event_id` string member anywhere in a command's JSON answer (a
/// single command answers one, a batch one per item, in item order).
pub fn event_ids(answer: &[u8]) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match v {
                        serde_json::Value::String(s) if k == "event_id" => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(answer) {
        walk(&v, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_found_in_single_and_batch_answers() {
        let single = br#"{"record_id":"r1","event_id":"a","receipt_url":"/r/a"}"#;
        assert_eq!(event_ids(single), ["a"]);
        let batch = br#"{"items":[{"event_id":"a","x":{"event_id":"b"}},{"event_id":"c"}]}"#;
        assert_eq!(event_ids(batch), ["a", "b", "c"]);
        assert!(event_ids(b"not json").is_empty());
        assert!(event_ids(br#"{"event_id":7}"#).is_empty());
    }
}
