//! `veritrace bench`: events per second from capture (HTTP, the benchmarked domain's commands) to
//! anchored receipt, on the embedded platform, on this machine; with the latency from each
//! event's 201 to its receipt being anchored, the rate over each stretch of the run, what the
//! process used, and in the same run the ceiling of its own storage ([`ceiling`]).

pub mod ceiling;
pub mod connection;
pub mod load;
pub mod measures;
pub mod provenance;

use crate::platform::Platform;
use chrono::{DateTime, Utc};
use load::{Load, LoadOutcome};
use measures::{ProcessUse, Spread};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use veritrace_kernel::config::Config;

pub struct BenchOptions {
    /// The domain whose commands make the load ([`crate::domains::benchmarked`] by default).
    pub domain: &'static dyn veritrace_kernel::domain::Domain,
    pub events: usize,
    pub concurrency: usize,
    /// Events per request: 1 uses the domain's single command, more its batch command.
    pub batch: usize,
    /// Events per second offered; `None` sends as fast as the platform answers.
    pub rate: Option<f64>,
}

#[derive(Debug, serde::Serialize)]
pub struct BenchReport {
    /// The domain whose commands made the load.
    pub domain: &'static str,
    pub events: usize,
    pub concurrency: usize,
    pub batch: usize,
    pub offered_rate: Option<f64>,
    pub cores: usize,
    pub capture_secs: f64,
    pub end_to_end_secs: f64,
    /// Request latency (HTTP round trip to the 201).
    pub request_ms: Option<Spread>,
    /// From an event's 201 to its receipt being anchored, over the sampled events.
    pub anchored_after_201_ms: Option<Spread>,
    pub samples: usize,
    pub blocks: u64,
    /// Events per stretch (a tenth of the run, 100,000 from 500,000 up). End to end counts
    /// by block (one a second by default): stretches one block closes share its rate.
    pub stretch: usize,
    pub capture_per_stretch: Vec<f64>,
    pub end_to_end_per_stretch: Vec<f64>,
    pub peak_rss_bytes: u64,
    /// Bytes the process wrote to storage from the first request to the last anchored receipt.
    pub written_bytes: u64,
    pub ceiling: Option<ceiling::Ceiling>,
}

impl BenchReport {
    pub fn capture_rate(&self) -> f64 {
        self.events as f64 / self.capture_secs
    }
    pub fn end_to_end_rate(&self) -> f64 {
        self.events as f64 / self.end_to_end_secs
    }
}

fn rates(r: &[f64]) -> String {
    let all: Vec<String> = r.iter().map(|r| format!("{r:.0}")).collect();
    let departure = measures::largest_departure(r)
        .map(|d| format!(" (largest departure from the mean {:.0} %)", d * 100.0))
        .unwrap_or_default();
    format!("{}{departure}", all.join(" "))
}

pub(crate) fn spread(s: &Option<Spread>) -> String {
    s.map(|s| s.to_string()).unwrap_or_else(|| "none".into())
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let offered = self
            .offered_rate
            .map(|r| format!(", {r:.0} events/s offered"))
            .unwrap_or_default();
        writeln!(
            f,
            "veritrace bench (embedded mode, {}): {} events, {} concurrent HTTP clients, {} per request{offered}, {} cores",
            self.domain, self.events, self.concurrency, self.batch, self.cores
        )?;
        writeln!(
            f,
            "  capture      {:>8.0} events/s  ({:.2} s; request {})",
            self.capture_rate(),
            self.capture_secs,
            spread(&self.request_ms)
        )?;
        writeln!(
            f,
            "  end to end   {:>8.0} events/s  (every receipt anchored {:.2} s after the first request; {} blocks)",
            self.end_to_end_rate(),
            self.end_to_end_secs,
            self.blocks
        )?;
        writeln!(
            f,
            "  201 to anchored  {} ({} events sampled)",
            spread(&self.anchored_after_201_ms),
            self.samples
        )?;
        writeln!(
            f,
            "  per {} events, capture    {}",
            self.stretch,
            rates(&self.capture_per_stretch)
        )?;
        writeln!(
            f,
            "  per {} events, end to end {}",
            self.stretch,
            rates(&self.end_to_end_per_stretch)
        )?;
        writeln!(
            f,
            "  peak RSS {:.0} MB; written to storage {:.0} MB, {:.0} bytes per event",
            self.peak_rss_bytes as f64 / 1e6,
            self.written_bytes as f64 / 1e6,
            self.written_bytes as f64 / self.events as f64
        )?;
        if let Some(c) = &self.ceiling {
            writeln!(
                f,
                "  ceiling      {:>8.0} rows/s    (raw SQLite inserts of {} of the run's event rows, {} per transaction; envelopes {:.0} bytes)",
                c.rows_per_sec,
                c.rows,
                ceiling::ROWS_PER_COMMIT,
                c.envelope_bytes
            )?;
        }
        Ok(())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub async fn run(opts: BenchOptions) -> Result<BenchReport, BoxError> {
    let dir = std::env::temp_dir().join(format!("veritrace-bench-{}", uuid::Uuid::now_v7()));
    let result = run_in(&dir, &opts).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(dir: &std::path::Path, opts: &BenchOptions) -> Result<BenchReport, BoxError> {
    let mut config = Config {
        data_dir: PathBuf::from(dir),
        log: "warn".into(),
        ..Config::default()
    };
    config.http.bind = "127.0.0.1:0".into();
    let platform = Platform::start(config).await?;
    let key = platform
        .new_admin_key
        .clone()
        .ok_or("a fresh data directory has an admin key")?;
    let url = platform.base_url();
    let domain = opts.domain;
    let load = Load {
        events: opts.events.max(1),
        concurrency: opts.concurrency.max(1),
        batch: opts.batch.clamp(1, 1000),
        rate: opts.rate,
    };
    let events = load.events;

    let used_before = ProcessUse::now();
    let wall_start = Utc::now();
    let started = Instant::now();
    let outcome =
        tokio::task::spawn_blocking(move || load::run(domain, &url, &key, load)).await??;
    let capture_secs = started.elapsed().as_secs_f64();
    let recorded = outcome.recorded;

    // Every leaf in a final block; a longer run is given longer.
    let deadline = Instant::now() + Duration::from_secs(120).max(started.elapsed());
    loop {
        let (_, anchored) = platform.anchor.store.progress().await?;
        if anchored as usize >= recorded {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {anchored} of {recorded} events anchored {:.0} s after the last 201",
                started.elapsed().as_secs_f64() - capture_secs
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let end_to_end_secs = started.elapsed().as_secs_f64();
    let used = ProcessUse::now();
    let store = &platform.anchor.store;
    let anchored_after_201_ms = anchored_latency(store, &outcome.samples).await?;
    let timeline = since(wall_start, store.anchoring_timeline().await?);
    let blocks = chain_core::ChainClient::head(platform.chain.as_ref()).await?;
    platform.stop().await;

    let ceiling = ceiling::measure(
        &veritrace_kernel::domain::event_store_file(dir, domain.name()),
        &dir.join("ceiling.db"),
    )
    .await?;
    let stretch = measures::stretch(events);
    let LoadOutcome {
        request_ms,
        answered,
        samples,
        ..
    } = outcome;
    Ok(BenchReport {
        domain: domain.name(),
        events,
        concurrency: load.concurrency,
        batch: load.batch,
        offered_rate: opts.rate,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        capture_secs,
        end_to_end_secs,
        request_ms: Spread::of(request_ms),
        anchored_after_201_ms,
        samples: samples.len(),
        blocks,
        stretch,
        capture_per_stretch: measures::rate_per_stretch(&answered, stretch),
        end_to_end_per_stretch: measures::rate_per_stretch(&timeline, stretch),
        peak_rss_bytes: used.peak_rss,
        written_bytes: used.written.saturating_sub(used_before.written),
        ceiling: Some(ceiling),
    })
}

/// The spread of (anchored − 201) over the sampled events, in milliseconds. `anchored_at` is
/// kept to the millisecond, truncated, so a difference within that is counted as 0.
pub(crate) async fn anchored_latency(
    store: &veritrace_anchor::store::AnchorStore,
    samples: &[(String, DateTime<Utc>)],
) -> Result<Option<Spread>, BoxError> {
    let answered: std::collections::HashMap<&str, DateTime<Utc>> =
        samples.iter().map(|(id, at)| (id.as_str(), *at)).collect();
    let mut latencies = Vec::with_capacity(samples.len());
    let ids: Vec<String> = samples.iter().map(|(id, _)| id.clone()).collect();
    for chunk in ids.chunks(5_000) {
        for (id, anchored_at) in store.anchored_at(chunk).await? {
            let anchored = DateTime::parse_from_rfc3339(&anchored_at)
                .map_err(|e| format!("anchored_at {anchored_at:?}: {e}"))?;
            if let Some(at) = answered.get(id.as_str()) {
                let ms = (anchored.with_timezone(&Utc) - *at)
                    .num_microseconds()
                    .unwrap_or(0);
                latencies.push((ms as f64 / 1000.0).max(0.0));
            }
        }
    }
    if latencies.len() != samples.len() {
        return Err(format!(
            "{} of {} sampled events have no anchored batch",
            samples.len() - latencies.len(),
            samples.len()
        )
        .into());
    }
    Ok(Spread::of(latencies))
}

/// `(anchored_at, size)` as (time since `start`, size); times before `start` count as 0.
fn since(start: DateTime<Utc>, timeline: Vec<(String, i64)>) -> Vec<(Duration, usize)> {
    timeline
        .into_iter()
        .filter_map(|(at, size)| {
            let at = DateTime::parse_from_rfc3339(&at).ok()?.with_timezone(&Utc);
            let d = (at - start).to_std().unwrap_or(Duration::ZERO);
            Some((d, size.max(0) as usize))
        })
        .collect()
}
