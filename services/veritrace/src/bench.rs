//! `veritrace bench`: events per second from capture (HTTP, the benchmarked domain's commands) to anchored
//! receipt, on the embedded platform, on this machine.

use crate::platform::Platform;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use veritrace_kernel::config::Config;

pub struct BenchOptions {
    pub events: usize,
    pub concurrency: usize,
    /// Events per request: 1 uses the domain's single command, more its batch command.
    pub batch: usize,
}

pub struct BenchReport {
    pub events: usize,
    pub concurrency: usize,
    pub batch: usize,
    pub cores: usize,
    pub capture_secs: f64,
    pub end_to_end_secs: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub blocks: u64,
}

impl BenchReport {
    pub fn capture_rate(&self) -> f64 {
        self.events as f64 / self.capture_secs
    }
    pub fn end_to_end_rate(&self) -> f64 {
        self.events as f64 / self.end_to_end_secs
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "veritrace bench (embedded mode): {} events, {} concurrent HTTP clients, {} per request, {} cores",
            self.events, self.concurrency, self.batch, self.cores
        )?;
        writeln!(
            f,
            "  capture      {:>8.0} events/s  ({:.2} s; latency p50 {:.1} ms, p99 {:.1} ms)",
            self.capture_rate(),
            self.capture_secs,
            self.latency_p50_ms,
            self.latency_p99_ms
        )?;
        writeln!(
            f,
            "  end to end   {:>8.0} events/s  (every receipt anchored {:.2} s after the first request; {} blocks)",
            self.end_to_end_rate(),
            self.end_to_end_secs,
            self.blocks
        )
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
    let domain = crate::domains::benchmarked()?;
    let (events, concurrency, batch) = (
        opts.events.max(1),
        opts.concurrency.max(1),
        opts.batch.clamp(1, 1000),
    );

    let started = Instant::now();
    let latencies =
        tokio::task::spawn_blocking(move || load(domain, &url, &key, events, concurrency, batch))
            .await??;
    let capture_secs = started.elapsed().as_secs_f64();

    // Wait for the anchoring service to report every leaf in a final block.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, anchored) = platform.anchor.store.progress().await?;
        if anchored as usize >= events {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {anchored} of {events} events anchored after 120 s").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let end_to_end_secs = started.elapsed().as_secs_f64();
    let blocks = chain_core::ChainClient::head(platform.chain.as_ref()).await?;
    platform.stop().await;

    let mut sorted = latencies;
    sorted.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
    Ok(BenchReport {
        events,
        concurrency,
        batch,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        capture_secs,
        end_to_end_secs,
        latency_p50_ms: pct(0.50),
        latency_p99_ms: pct(0.99),
        blocks,
    })
}

/// `concurrency` client threads record `events` events of `domain`, `batch` per request;
/// returns each request's latency in milliseconds.
pub(crate) fn load(
    domain: &'static dyn veritrace_kernel::domain::Domain,
    base: &str,
    key: &str,
    events: usize,
    concurrency: usize,
    batch: usize,
) -> Result<Vec<f64>, BoxError> {
    let auth = format!("Bearer {key}");
    let threads: Vec<_> = (0..concurrency)
        .map(|t| {
            let (base, auth) = (base.to_string(), auth.clone());
            let n = events / concurrency + usize::from(t < events % concurrency);
            std::thread::spawn(move || -> Result<Vec<f64>, String> {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut out = Vec::new();
                let mut i = 0;
                while i < n {
                    let k = batch.min(n - i);
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
                    let _ = resp.body_mut().read_to_vec();
                    if status.as_u16() != 201 {
                        return Err(format!("{url} answered {status}"));
                    }
                    out.push(start.elapsed().as_secs_f64() * 1000.0);
                    i += k;
                }
                Ok(out)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(events);
    for t in threads {
        all.extend(t.join().map_err(|_| "a client thread panicked")??);
    }
    Ok(all)
}
