//! The HTTP load of every `veritrace bench` mode: concurrent clients recording the benchmarked
//! domain's events through its API, as fast as answered or at an offered rate, timing each
//! request and noting when a sample of the events was answered 201.

use super::connection;
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// At most this many events are sampled for the 201-to-anchored latency, spread evenly.
pub const MAX_SAMPLES: usize = 20_000;

/// What to send.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub events: usize,
    /// Concurrent clients, each with its own keep-alive connection.
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

/// Runs `load` against `base` (`http://host:port`) with the API key `key`; fails on the first
/// answer other than 201 (or 202, a capture job complete when it answers). The clients run as
/// tasks on one thread of their own ([`connection`]), so that the load takes as little as
/// it can of the cores it shares with what it measures.
pub fn run(
    domain: &'static dyn veritrace_kernel::domain::Domain,
    base: &str,
    key: &str,
    load: Load,
) -> Result<LoadOutcome, BoxError> {
    let plan = Plan {
        domain,
        base: base.to_string(),
        authority: connection::authority_of(base)?,
        headers: format!("Authorization: Bearer {key}\r\n"),
        load: Load {
            concurrency: load.concurrency.max(1),
            ..load
        },
        sample_every: load.events.div_ceil(MAX_SAMPLES).max(1),
        started: Instant::now(),
    };
    let thread = std::thread::Builder::new()
        .name("bench-load".into())
        .spawn(move || -> Result<LoadOutcome, String> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the load's runtime: {e}"))?
                .block_on(drive(std::sync::Arc::new(plan)))
        })?;
    Ok(thread.join().map_err(|_| "the load's thread panicked")??)
}

/// What every client shares.
struct Plan {
    domain: &'static dyn veritrace_kernel::domain::Domain,
    base: String,
    authority: String,
    /// Header lines sent with every request.
    headers: String,
    load: Load,
    /// One event in this many is sampled for the 201-to-anchored latency.
    sample_every: usize,
    started: Instant,
}

/// Runs every client to its end; the first to fail stops the load.
async fn drive(plan: std::sync::Arc<Plan>) -> Result<LoadOutcome, String> {
    let Load {
        events,
        concurrency,
        ..
    } = plan.load;
    let mut clients = tokio::task::JoinSet::new();
    for t in 0..concurrency {
        let n = events / concurrency + usize::from(t < events % concurrency);
        clients.spawn(client(plan.clone(), t, n));
    }
    let mut all = LoadOutcome::default();
    while let Some(done) = clients.join_next().await {
        let out = done.map_err(|e| format!("a client failed: {e}"))??;
        all.request_ms.extend(out.request_ms);
        all.answered.extend(out.answered);
        all.samples.extend(out.samples);
        all.recorded += out.recorded;
    }
    all.answered.sort();
    Ok(all)
}

/// Client `t`: `n` events over one keep-alive connection, as fast as answered or at its share
/// of the offered rate.
async fn client(plan: std::sync::Arc<Plan>, t: usize, n: usize) -> Result<LoadOutcome, String> {
    let domain = plan.domain;
    let batch = plan.load.batch;
    // Each client offers its share of the rate.
    let per_client = plan
        .load
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| r / plan.load.concurrency as f64);
    let mut connection = connection::Connection::new(&plan.authority);
    let mut out = LoadOutcome::default();
    let mut i = 0;
    while i < n {
        let k = batch.min(n - i);
        if let Some(r) = per_client {
            // Open loop: request i is due when the client's share of the rate reaches its
            // first event; a late request goes at once.
            let due = plan.started + Duration::from_secs_f64(i as f64 / r);
            tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        }
        let (path, body) = domain
            .bench_request(&format!("{t}/{i}"), k)
            .ok_or_else(|| format!("domain {} offers no load", domain.name()))?;
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let answer = connection.post_json(&path, &plan.headers, &body).await?;
        let at = Utc::now();
        if !matches!(answer.status, 201 | 202) {
            let text = String::from_utf8_lossy(&answer.body);
            return Err(format!(
                "{}{path} answered {}: {}",
                plan.base,
                answer.status,
                text.chars().take(300).collect::<String>()
            ));
        }
        out.request_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        out.answered.push((plan.started.elapsed(), k));
        out.recorded += domain.bench_recorded(k);
        let sampled = |j: usize| (t + i + j).is_multiple_of(plan.sample_every);
        // Only an answer holding a sampled event is read.
        if (0..domain.bench_recorded(k)).any(sampled) {
            let ids = serde_json::from_slice(&answer.body)
                .ok()
                .and_then(|v| domain.bench_event_ids(&v))
                .unwrap_or_else(|| event_ids(&answer.body));
            out.samples.extend(
                ids.into_iter()
                    .enumerate()
                    .filter(|(j, _)| sampled(*j))
                    .map(|(_, id)| (id, at)),
            );
        }
        i += k;
    }
    Ok(out)
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
