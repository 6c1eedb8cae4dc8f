//! `veritrace bench chain`: how fast a consortium finalises anchor transactions on this
//! machine. It initialises a throw-away network, runs its validators as `veritrace node` child
//! processes on loopback, submits anchor transactions at a fixed rate round-robin over the
//! validators, and watches one validator's final head to time every transaction from its
//! submission to the moment its block is seen final.

use crate::network::{self, InitOptions, parse_profile};
use chain_core::HashAlg;
use chain_core::block::{AnchorTx, Transaction};
use chain_core::genesis::SignatureAlg;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use veritrace_kernel::config::NodeConfig;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The design target: finality p99 at most this, at a 1 s block interval.
pub const TARGET_P99_MS: f64 = 2000.0;
pub const TARGET_BLOCK_INTERVAL_MS: u64 = 1000;
/// Final height every validator must reach before the load starts, so that start-up rounds
/// (peers connecting, first proposals) do not count as latency.
const READY_HEIGHT: u64 = 2;
const READY_WITHIN: Duration = Duration::from_secs(120);
/// How often the watcher asks for the final head: the resolution of the finality times.
const POLL: Duration = Duration::from_millis(20);
/// Submitting threads per validator, so one slow answer does not hold up the whole schedule.
const SUBMITTERS_PER_NODE: usize = 2;
/// How long the watched validator may fail to answer before the run is abandoned.
const WATCH_PATIENCE: Duration = Duration::from_secs(10);

/// What `veritrace bench chain` takes.
#[derive(clap::Args, Clone, Debug)]
pub struct ChainBenchOptions {
    /// Number of validators, each a `veritrace node` process.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    #[arg(long, default_value_t = 1000)]
    pub block_interval_ms: u64,
    /// How long transactions are submitted, in seconds.
    #[arg(long, default_value_t = 30)]
    pub duration_secs: u64,
    /// Anchor transactions submitted per second, spread round-robin over the validators.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// Validator i listens for peers on `base_port + i` and serves its API on
    /// `base_port + 100 + i`, on 127.0.0.1.
    #[arg(long, default_value_t = 27600)]
    pub base_port: u16,
    /// sha3-256, sha-256 or sm3.
    #[arg(long, default_value = "sha3-256", value_parser = parse_profile::<HashAlg>)]
    pub hash_alg: HashAlg,
    /// ed25519 or sm2.
    #[arg(long, default_value = "ed25519", value_parser = parse_profile::<SignatureAlg>)]
    pub signature_alg: SignatureAlg,
    /// Seconds to wait once submission stops for the last transactions to become final;
    /// those still not final then are reported as lost.
    #[arg(long, default_value_t = 10)]
    pub grace_secs: u64,
    /// Also print the figures as one JSON line (after the text report).
    #[arg(long)]
    pub json: bool,
    /// A fault in the last validator, from the moment every validator is ready: `down` kills
    /// it (its API port then refuses connections), `silent` kills it and puts in its place on
    /// its API port something that accepts connections and never answers. Transactions go to
    /// the others.
    #[arg(long, value_enum, default_value_t = Fault::None)]
    pub fault: Fault,
    /// Keep the network directory (genesis, keys, data, each validator's node.log) after the
    /// run, for diagnosis. The validators log at VERITRACE_LOG if set, else at warn.
    #[arg(long)]
    pub keep_dir: bool,
}

/// A fault the benchmark puts in one validator.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Every validator runs.
    #[default]
    None,
    /// One validator is down: its API refuses connections.
    Down,
    /// One validator's API accepts connections and never answers.
    Silent,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Down => "down",
            Fault::Silent => "silent",
        }
    }
}

/// The figures of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainBenchReport {
    pub validators: usize,
    pub hash_alg: String,
    pub signature_alg: String,
    pub block_interval_ms: u64,
    /// Offered load, transactions per second, for `duration_secs`.
    pub rate: u32,
    pub duration_secs: u64,
    pub cores: usize,
    /// From the first submission to the end of the load (the configured duration, or longer
    /// if the submitters fell behind their schedule).
    pub window_secs: f64,
    /// Transactions a validator accepted (202).
    pub submitted: usize,
    /// Submissions refused or failed; they are not timed.
    pub refused: usize,
    pub first_refusal: Option<String>,
    /// Blocks seen final within the window.
    pub blocks_in_window: usize,
    /// Submitted transactions seen final within the window.
    pub finalised_in_window: usize,
    /// Submitted transactions seen final by the end of the grace period.
    pub finalised: usize,
    /// Submission to finality, nearest-rank percentiles over every accepted transaction: one
    /// never seen final counts as infinitely slow, so losses cannot flatter the figures.
    /// None when nothing was accepted.
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    /// Accepted transactions not final by the end of the grace period.
    pub lost: usize,
    pub grace_secs: u64,
    /// The validator whose final head was watched.
    pub watched: String,
    pub fault: Fault,
    /// The largest gap seen at the watched validator between its committed head and its final
    /// head (blocks committed, waiting for attestations). None if never read.
    pub max_unfinal_blocks: Option<u64>,
}

/// Whether a run meets "finality p99 ≤ 2 s at a 1 s block interval".
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Met,
    Missed(String),
    /// The run used another block interval, so it neither meets nor misses the target.
    NotApplicable(String),
}

impl ChainBenchReport {
    /// The validator the fault was put in: the last one.
    pub fn faulty(&self) -> String {
        format!("validator-{}", self.validators)
    }

    pub fn blocks_per_sec(&self) -> f64 {
        per_sec(self.blocks_in_window, self.window_secs)
    }

    pub fn finalised_per_sec(&self) -> f64 {
        per_sec(self.finalised_in_window, self.window_secs)
    }

    /// Submission attempts per second actually achieved.
    pub fn submitted_per_sec(&self) -> f64 {
        per_sec(self.submitted + self.refused, self.window_secs)
    }

    pub fn target(&self) -> Target {
        if self.block_interval_ms != TARGET_BLOCK_INTERVAL_MS {
            return Target::NotApplicable(format!(
                "the target is set for a {TARGET_BLOCK_INTERVAL_MS} ms block interval, this run used {} ms",
                self.block_interval_ms
            ));
        }
        // A transaction that never finalises or was never accepted has no latency, so the
        // percentiles alone would flatter such a run.
        if self.refused > 0 {
            return Target::Missed(format!("{} submissions refused", self.refused));
        }
        if self.lost > 0 {
            return Target::Missed(format!("{} transactions never became final", self.lost));
        }
        match self.latency_p99_ms {
            None => Target::Missed("no transaction was accepted".into()),
            Some(p99) if p99 > TARGET_P99_MS => {
                Target::Missed(format!("finality p99 {p99:.0} ms > {TARGET_P99_MS:.0} ms"))
            }
            Some(_) => Target::Met,
        }
    }

    /// The figures as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let (target, target_detail) = match self.target() {
            Target::Met => ("met", None),
            Target::Missed(why) => ("missed", Some(why)),
            Target::NotApplicable(why) => ("not_applicable", Some(why)),
        };
        serde_json::json!({
            "bench": "chain",
            "validators": self.validators,
            "hash_alg": self.hash_alg,
            "signature_alg": self.signature_alg,
            "block_interval_ms": self.block_interval_ms,
            "offered_tx_per_sec": self.rate,
            "duration_secs": self.duration_secs,
            "cores": self.cores,
            "window_secs": self.window_secs,
            "submitted": self.submitted,
            "submitted_tx_per_sec": self.submitted_per_sec(),
            "refused": self.refused,
            "first_refusal": self.first_refusal,
            "final_blocks_in_window": self.blocks_in_window,
            "final_blocks_per_sec": self.blocks_per_sec(),
            "finalised_in_window": self.finalised_in_window,
            "finalised_tx_per_sec": self.finalised_per_sec(),
            "finalised": self.finalised,
            "finality_p50_ms": finite(self.latency_p50_ms),
            "finality_p99_ms": finite(self.latency_p99_ms),
            "finality_max_ms": finite(self.latency_max_ms),
            "lost": self.lost,
            "grace_secs": self.grace_secs,
            "watched": self.watched,
            "fault": self.fault.name(),
            "max_unfinal_blocks": self.max_unfinal_blocks,
            "target": target,
            "target_detail": target_detail,
        })
    }
}

fn per_sec(n: usize, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

fn ms(v: Option<f64>) -> String {
    match v {
        None => "n/a".into(),
        Some(v) if v.is_finite() => format!("{v:.0} ms"),
        Some(_) => "not final".into(),
    }
}

/// JSON has no infinity: a latency of a transaction never final is null (`lost` counts them).
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

impl std::fmt::Display for ChainBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "veritrace bench chain: {} validators ({}, {}), {} ms block interval, {} anchor tx/s offered for {} s, {} cores",
            self.validators,
            self.hash_alg,
            self.signature_alg,
            self.block_interval_ms,
            self.rate,
            self.duration_secs,
            self.cores
        )?;
        // Falling behind means the latencies were measured at a lower load than offered.
        let behind = if self.submitted_per_sec() < 0.95 * f64::from(self.rate) {
            ", BELOW the offered rate"
        } else {
            ""
        };
        writeln!(
            f,
            "  submitted   {:>8} tx      ({:.0} tx/s achieved{behind}; {} refused{})",
            self.submitted,
            self.submitted_per_sec(),
            self.refused,
            self.first_refusal
                .as_deref()
                .map(|e| format!(", first: {e}"))
                .unwrap_or_default()
        )?;
        writeln!(
            f,
            "  blocks      {:>8.2} final blocks/s  ({} in the {:.1} s window)",
            self.blocks_per_sec(),
            self.blocks_in_window,
            self.window_secs
        )?;
        writeln!(
            f,
            "  finalised   {:>8.0} tx/s    ({} final within the window, {} by the end of the grace period)",
            self.finalised_per_sec(),
            self.finalised_in_window,
            self.finalised
        )?;
        writeln!(
            f,
            "  finality    p50 {}, p99 {}, max {}  (submission to block seen final at {})",
            ms(self.latency_p50_ms),
            ms(self.latency_p99_ms),
            ms(self.latency_max_ms),
            self.watched
        )?;
        writeln!(
            f,
            "  lost        {:>8} tx      (not final {} s after submission stopped)",
            self.lost, self.grace_secs
        )?;
        writeln!(
            f,
            "  unfinal     {:>8} blocks  (largest gap between committed and final head at {})",
            self.max_unfinal_blocks
                .map_or("n/a".to_string(), |n| n.to_string()),
            self.watched
        )?;
        match self.fault {
            Fault::None => {}
            Fault::Down => writeln!(f, "  fault       {} down", self.faulty())?,
            Fault::Silent => writeln!(
                f,
                "  fault       {} silent (its API accepts connections, never answers)",
                self.faulty()
            )?,
        }
        let goal = format!(
            "finality p99 <= {:.0} s at a {:.0} s block interval",
            TARGET_P99_MS / 1000.0,
            TARGET_BLOCK_INTERVAL_MS as f64 / 1000.0
        );
        match self.target() {
            Target::Met => writeln!(f, "  target      met: {goal}"),
            Target::Missed(why) => writeln!(f, "  target      MISSED: {goal} ({why})"),
            Target::NotApplicable(why) => {
                writeln!(f, "  target      not applicable: {goal} ({why})")
            }
        }
    }
}

/// The value at percentile `p` (0 to 1) of ascending `sorted`, by nearest rank: the smallest
/// value with at least `p` of the values at or below it. None for no values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Runs the benchmark: a fresh network, the load, the grace period, the figures. The network
/// (processes and directory) is gone when this returns, whatever the outcome.
pub fn run(opts: &ChainBenchOptions) -> Result<ChainBenchReport, BoxError> {
    if opts.duration_secs == 0 || opts.rate == 0 {
        return Err("--duration-secs and --rate must be at least 1".into());
    }
    let total = opts
        .duration_secs
        .checked_mul(u64::from(opts.rate))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n <= 10_000_000)
        .ok_or("--duration-secs × --rate must stay within 10 million transactions")?;

    let mut net = LocalNetwork::start(opts)?;
    eprintln!(
        "started {} validators under {}; waiting for final height {READY_HEIGHT}",
        net.names.len(),
        net.dir.display()
    );
    let agent = agent();
    net.wait_ready(&agent)?;
    let _silent = net.put_fault(opts.fault)?;
    eprintln!(
        "submitting {} anchor tx/s for {} s, then waiting up to {} s for finality",
        opts.rate, opts.duration_secs, opts.grace_secs
    );

    // Transactions go to the validators that run.
    let apis = net.healthy_apis();
    let chain_id = net.chain_id.clone();
    let alg = opts.hash_alg;
    // All roots of a run derive from this (random part of a v7 UUID), so they differ from run
    // to run and, with the transaction's own batch id, from each other.
    let run_nonce = uuid::Uuid::now_v7();
    let threads = apis.len() * SUBMITTERS_PER_NODE;
    let interval_secs = 1.0 / f64::from(opts.rate);
    let stop = AtomicBool::new(false);
    let seen = Mutex::new(Seen::default());
    let baseline = get_json::<Head>(&agent, &format!("{}/chain/head", apis[0]))
        .map_err(|e| format!("the watched validator does not answer: {e}"))?
        .height;
    let t0 = Instant::now();

    let (submissions, end_of_load, watched) = std::thread::scope(|s| {
        // Whatever happens below, the watcher stops before the scope joins it.
        let _stop = StopOnDrop(&stop);
        let watcher = s.spawn(|| watch(&agent, &apis[0], baseline, &stop, &seen));
        let submitters: Vec<_> = (0..threads)
            .map(|i| {
                let share = Share {
                    api: &apis[i % apis.len()],
                    chain_id: &chain_id,
                    alg,
                    run_nonce: run_nonce.as_bytes(),
                    first: i,
                    step: threads,
                    total,
                    t0,
                    interval_secs,
                };
                s.spawn(move || submit_share(&share))
            })
            .collect();
        let mut submissions = Vec::with_capacity(threads);
        for h in submitters {
            submissions.push(h.join().map_err(|_| "a submitting thread panicked")?);
        }
        let end_of_load = Instant::now();

        let deadline = end_of_load + Duration::from_secs(opts.grace_secs);
        while Instant::now() < deadline && !watcher.is_finished() {
            let all_final = {
                let seen = lock(&seen);
                submissions
                    .iter()
                    .flat_map(|s: &Submissions| &s.accepted)
                    .all(|(hash, _)| seen.txs.contains_key(hash))
            };
            if all_final {
                break;
            }
            net.check_alive()?;
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
        let watched = watcher
            .join()
            .map_err(|_| "the finality watcher panicked")?;
        Ok::<_, BoxError>((submissions, end_of_load, watched))
    })?;
    watched?;
    // A validator that crashed under load would make the figures meaningless.
    net.check_alive()?;

    let seen = seen.into_inner().unwrap_or_else(|p| p.into_inner());
    let window_end = (t0 + Duration::from_secs(opts.duration_secs)).max(end_of_load);
    let mut latencies = Vec::new();
    let (mut submitted, mut refused, mut finalised_in_window) = (0, 0, 0);
    let mut first_refusal = None;
    for s in submissions {
        submitted += s.accepted.len();
        refused += s.refused;
        first_refusal = first_refusal.or(s.first_refusal);
        for (hash, at) in &s.accepted {
            match seen.txs.get(hash) {
                Some(final_at) => {
                    latencies.push(final_at.saturating_duration_since(*at).as_secs_f64() * 1000.0);
                    finalised_in_window += usize::from(*final_at <= window_end);
                }
                None => latencies.push(f64::INFINITY),
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let finalised = latencies.iter().filter(|l| l.is_finite()).count();
    Ok(ChainBenchReport {
        validators: net.apis.len(),
        hash_alg: opts.hash_alg.name().to_string(),
        signature_alg: signature_name(opts.signature_alg).to_string(),
        block_interval_ms: opts.block_interval_ms,
        rate: opts.rate,
        duration_secs: opts.duration_secs,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        window_secs: (window_end - t0).as_secs_f64(),
        submitted,
        refused,
        first_refusal,
        blocks_in_window: seen.blocks.iter().filter(|at| **at <= window_end).count(),
        finalised_in_window,
        finalised,
        latency_p50_ms: percentile(&latencies, 0.50),
        latency_p99_ms: percentile(&latencies, 0.99),
        latency_max_ms: latencies.last().copied(),
        lost: submitted - finalised,
        grace_secs: opts.grace_secs,
        watched: net.names[0].clone(),
        fault: opts.fault,
        max_unfinal_blocks: seen.max_unfinal,
    })
}

fn signature_name(alg: SignatureAlg) -> &'static str {
    match alg {
        SignatureAlg::Ed25519 => "ed25519",
        SignatureAlg::Sm2 => "sm2",
    }
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The throw-away network: its directory and validator processes, both gone on drop.
struct LocalNetwork {
    dir: PathBuf,
    chain_id: String,
    names: Vec<String>,
    apis: Vec<String>,
    logs: Vec<PathBuf>,
    children: Vec<Child>,
    keep_dir: bool,
    /// The validator the fault was put in, no longer expected to run.
    faulty: Option<usize>,
}

impl Drop for LocalNetwork {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if self.keep_dir {
            eprintln!("kept the network directory {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl LocalNetwork {
    fn start(opts: &ChainBenchOptions) -> Result<LocalNetwork, BoxError> {
        let dir =
            std::env::temp_dir().join(format!("veritrace-bench-chain-{}", uuid::Uuid::now_v7()));
        // Owned from here on, so a failed init or spawn still removes what was written.
        let mut net = LocalNetwork {
            dir: dir.clone(),
            chain_id: String::new(),
            names: Vec::new(),
            apis: Vec::new(),
            logs: Vec::new(),
            children: Vec::new(),
            keep_dir: opts.keep_dir,
            faulty: None,
        };
        let log_level = std::env::var("VERITRACE_LOG").unwrap_or_else(|_| "warn".into());
        let init = network::init(&InitOptions {
            dir,
            validators: opts.validators,
            organisations: Vec::new(),
            chain_id: None,
            hash_alg: opts.hash_alg,
            signature_alg: opts.signature_alg,
            base_port: opts.base_port,
            block_interval_ms: opts.block_interval_ms,
            hosts: Vec::new(),
            if_missing: false,
        })?;
        net.chain_id = init.genesis.chain_id.clone();
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot locate the veritrace executable: {e}"))?;
        for config in &init.node_configs {
            let node = NodeConfig::load(config)?;
            let log_path = config.with_file_name("node.log");
            let log = File::create(&log_path)
                .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
            let log_err = log
                .try_clone()
                .map_err(|e| format!("cannot share {}: {e}", log_path.display()))?;
            let child = Command::new(&exe)
                .args(["node", "--config"])
                .arg(config)
                .env("VERITRACE_LOG", &log_level)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .spawn()
                .map_err(|e| format!("cannot start {} {}: {e}", exe.display(), node.name))?;
            net.children.push(child);
            net.names.push(node.name);
            net.apis.push(format!("http://{}", node.api));
            net.logs.push(log_path);
        }
        Ok(net)
    }

    /// An error naming the first validator that has exited, with the end of its log.
    fn check_alive(&mut self) -> Result<(), BoxError> {
        for (i, c) in self.children.iter_mut().enumerate() {
            if Some(i) == self.faulty {
                continue;
            }
            if let Some(status) = c
                .try_wait()
                .map_err(|e| format!("cannot check on {}: {e}", self.names[i]))?
            {
                return Err(format!(
                    "validator {} exited ({status}); the end of its log:\n{}",
                    self.names[i],
                    log_tail(&self.logs[i], 15)
                )
                .into());
            }
        }
        Ok(())
    }

    fn healthy_apis(&self) -> Vec<String> {
        (0..self.apis.len())
            .filter(|i| Some(*i) != self.faulty)
            .map(|i| self.apis[i].clone())
            .collect()
    }

    /// Puts `fault` in the last validator. A silent one's stand-in keeps its port while the
    /// returned value lives.
    fn put_fault(&mut self, fault: Fault) -> Result<Option<SilentApi>, BoxError> {
        if fault == Fault::None {
            return Ok(None);
        }
        let last = self.children.len() - 1;
        if last == 0 {
            return Err("--fault needs at least 2 validators".into());
        }
        let child = &mut self.children[last];
        child
            .kill()
            .map_err(|e| format!("cannot stop {}: {e}", self.names[last]))?;
        let _ = child.wait();
        self.faulty = Some(last);
        eprintln!("{} is {}", self.names[last], fault.name());
        if fault == Fault::Down {
            return Ok(None);
        }
        let addr = self.apis[last].trim_start_matches("http://");
        Ok(Some(SilentApi::listen(addr)?))
    }

    fn wait_ready(&mut self, agent: &ureq::Agent) -> Result<(), BoxError> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            self.check_alive()?;
            let heads: Vec<Option<u64>> = self
                .apis
                .iter()
                .map(|api| {
                    get_json::<Head>(agent, &format!("{api}/chain/head"))
                        .ok()
                        .map(|h| h.height)
                })
                .collect();
            if heads.iter().all(|h| h.is_some_and(|h| h >= READY_HEIGHT)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the validators did not all reach final height {READY_HEIGHT} within {} s (final heads: {heads:?}; logs under {})",
                    READY_WITHIN.as_secs(),
                    self.dir.display()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Something on a validator's API port that accepts connections and never answers: what a
/// hung process or a black-holing proxy looks like to its peers.
struct SilentApi {
    stop: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SilentApi {
    fn listen(addr: &str) -> Result<SilentApi, BoxError> {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot take over {addr} for the silent validator: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("{addr}: {e}"))?;
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            // Held open, never read from nor written to.
            let mut held = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => held.push(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(SilentApi {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for SilentApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The last `n` lines of a log file, for error messages.
fn log_tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

#[derive(Deserialize)]
struct Head {
    height: u64,
}

/// A validator's `/healthz`.
#[derive(Deserialize)]
struct NodeHealth {
    committed_head: u64,
    final_head: u64,
}

#[derive(Deserialize)]
struct BlockDetail {
    transaction_hashes: Vec<String>,
}

#[derive(Deserialize)]
struct Submitted {
    hash: String,
}

fn get_json<T: DeserializeOwned>(agent: &ureq::Agent, url: &str) -> Result<T, String> {
    let mut resp = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(format!("{url}: status {status}"));
    }
    resp.body_mut()
        .read_json::<T>()
        .map_err(|e| format!("{url}: {e}"))
}

/// What the watcher saw after the baseline height: when each block was seen final, and when
/// each transaction in them was.
#[derive(Default)]
struct Seen {
    blocks: Vec<Instant>,
    txs: HashMap<String, Instant>,
    max_unfinal: Option<u64>,
}

/// Polls `api`'s final head until `stop`, reading every new final block. A block's time is
/// when the head first covered it, even if reading the block itself took a retry.
fn watch(
    agent: &ureq::Agent,
    api: &str,
    baseline: u64,
    stop: &AtomicBool,
    seen: &Mutex<Seen>,
) -> Result<(), String> {
    let mut read = baseline;
    // (height reached, when), for heads not fully read yet.
    let mut heads: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut last_answer = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match get_json::<Head>(agent, &format!("{api}/chain/head")) {
            Ok(head) => {
                let at = Instant::now();
                last_answer = at;
                if head.height > heads.back().map_or(read, |(h, _)| *h) {
                    heads.push_back((head.height, at));
                }
            }
            Err(e) if last_answer.elapsed() > WATCH_PATIENCE => {
                return Err(format!("the watched validator stopped answering: {e}"));
            }
            Err(_) => {}
        }
        if let Ok(health) = get_json::<NodeHealth>(agent, &format!("{api}/healthz")) {
            let gap = health.committed_head.saturating_sub(health.final_head);
            let mut seen = lock(seen);
            seen.max_unfinal = Some(seen.max_unfinal.map_or(gap, |m| m.max(gap)));
        }
        while let Some(&(reached, at)) = heads.front() {
            if read >= reached {
                heads.pop_front();
                continue;
            }
            let height = read + 1;
            let Ok(block) = get_json::<BlockDetail>(agent, &format!("{api}/chain/blocks/{height}"))
            else {
                break; // retried on the next poll
            };
            let mut seen = lock(seen);
            seen.blocks.push(at);
            for tx in block.transaction_hashes {
                seen.txs.entry(tx).or_insert(at);
            }
            read = height;
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// One submitting thread's part of the schedule: transactions `first`, `first + step`, ...
/// below `total`, transaction k due `k × interval` after `t0`, all to one validator.
struct Share<'a> {
    api: &'a str,
    chain_id: &'a str,
    alg: HashAlg,
    run_nonce: &'a [u8],
    first: usize,
    step: usize,
    total: usize,
    t0: Instant,
    interval_secs: f64,
}

struct Submissions {
    /// Hash and submission time of every accepted transaction.
    accepted: Vec<(String, Instant)>,
    refused: usize,
    first_refusal: Option<String>,
}

fn submit_share(share: &Share) -> Submissions {
    let http = agent();
    let mut out = Submissions {
        accepted: Vec::new(),
        refused: 0,
        first_refusal: None,
    };
    for k in (share.first..share.total).step_by(share.step) {
        let due = share.t0 + Duration::from_secs_f64(k as f64 * share.interval_secs);
        // Behind schedule, the transaction goes at once: the offered rate is kept when the
        // validator catches up, and the report shows the rate achieved.
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let batch_id = uuid::Uuid::now_v7().to_string();
        let tx = Transaction::Anchor(AnchorTx {
            chain_id: share.chain_id.to_string(),
            batch_root: share
                .alg
                .hash_parts(&[share.run_nonce, batch_id.as_bytes()]),
            batch_id,
            batch_size: 1 + (k % 1000) as u64,
        });
        // The hash is known before sending, so the watcher can never see the transaction
        // final before the submitter knows what to look for.
        let result = tx
            .hash(share.alg)
            .map_err(|e| format!("cannot hash the transaction: {e}"))
            .and_then(|hash| {
                let at = Instant::now();
                let answered = post_tx(&http, share.api, &tx)?;
                if answered == hash.to_hex() {
                    Ok((answered, at))
                } else {
                    Err(format!(
                        "{} answered hash {answered}, expected {hash}",
                        share.api
                    ))
                }
            });
        match result {
            Ok(accepted) => out.accepted.push(accepted),
            Err(e) => {
                out.refused += 1;
                out.first_refusal.get_or_insert(e);
            }
        }
    }
    out
}

fn post_tx(agent: &ureq::Agent, api: &str, tx: &Transaction) -> Result<String, String> {
    let url = format!("{api}/chain/transactions");
    let mut resp = agent
        .post(&url)
        .send_json(tx)
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    if status != 202 {
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        return Err(format!("{url} answered {status}: {body}"));
    }
    resp.body_mut()
        .read_json::<Submitted>()
        .map(|s| s.hash)
        .map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ChainBenchReport {
        ChainBenchReport {
            validators: 4,
            hash_alg: "sha3-256".into(),
            signature_alg: "ed25519".into(),
            block_interval_ms: 1000,
            rate: 200,
            duration_secs: 20,
            cores: 2,
            window_secs: 20.0,
            submitted: 4000,
            refused: 0,
            first_refusal: None,
            blocks_in_window: 20,
            finalised_in_window: 3800,
            finalised: 4000,
            latency_p50_ms: Some(1100.0),
            latency_p99_ms: Some(1900.0),
            latency_max_ms: Some(2100.0),
            lost: 0,
            grace_secs: 10,
            watched: "validator-1".into(),
            fault: Fault::None,
            max_unfinal_blocks: Some(1),
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7.0], 0.0), Some(7.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.50), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&v, 1.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        // With few values p99 is the maximum: one slow transaction in ten is not hidden.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 0.99), Some(10.0));
        assert_eq!(percentile(&ten, 0.5), Some(5.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
        // A lost transaction sorts last, as infinitely slow.
        let mut lost = vec![f64::INFINITY, 3.0, 1.0, 2.0];
        lost.sort_by(|a, b| a.total_cmp(b));
        assert_eq!(percentile(&lost, 0.5), Some(2.0));
        assert_eq!(percentile(&lost, 0.99), Some(f64::INFINITY));
    }

    #[test]
    fn rates_are_over_the_window() {
        let r = report();
        assert_eq!(r.blocks_per_sec(), 1.0);
        assert_eq!(r.finalised_per_sec(), 190.0);
        assert_eq!(r.submitted_per_sec(), 200.0);
        assert_eq!(per_sec(5, 0.0), 0.0);
    }

    #[test]
    fn target_needs_p99_within_two_seconds_and_nothing_lost() {
        assert_eq!(report().target(), Target::Met);
        let at_limit = ChainBenchReport {
            latency_p99_ms: Some(2000.0),
            ..report()
        };
        assert_eq!(at_limit.target(), Target::Met);
        let slow = ChainBenchReport {
            latency_p99_ms: Some(2001.0),
            ..report()
        };
        assert!(matches!(slow.target(), Target::Missed(m) if m.contains("2001 ms")));
        let lost = ChainBenchReport {
            lost: 3,
            ..report()
        };
        assert!(matches!(lost.target(), Target::Missed(m) if m.contains("3 transactions")));
        let refused = ChainBenchReport {
            refused: 1,
            ..report()
        };
        assert!(matches!(refused.target(), Target::Missed(_)));
        let nothing = ChainBenchReport {
            finalised: 0,
            finalised_in_window: 0,
            latency_p50_ms: None,
            latency_p99_ms: None,
            latency_max_ms: None,
            ..report()
        };
        assert!(matches!(nothing.target(), Target::Missed(m) if m.contains("no transaction")));
        let mostly_lost = ChainBenchReport {
            finalised: 100,
            lost: 3900,
            latency_p50_ms: Some(f64::INFINITY),
            latency_p99_ms: Some(f64::INFINITY),
            latency_max_ms: Some(f64::INFINITY),
            ..report()
        };
        assert!(matches!(mostly_lost.target(), Target::Missed(m) if m.contains("3900")));
        let other_interval = ChainBenchReport {
            block_interval_ms: 500,
            ..report()
        };
        assert!(
            matches!(other_interval.target(), Target::NotApplicable(m) if m.contains("500 ms"))
        );
    }

    #[test]
    fn report_names_the_figures_and_the_verdict() {
        let text = report().to_string();
        assert!(text.starts_with("veritrace bench chain: 4 validators (sha3-256, ed25519), 1000 ms block interval, 200 anchor tx/s offered for 20 s, 2 cores\n"), "{text}");
        assert!(
            text.contains("1.00 final blocks/s  (20 in the 20.0 s window)"),
            "{text}"
        );
        assert!(text.contains("190 tx/s"), "{text}");
        assert!(
            text.contains("p50 1100 ms, p99 1900 ms, max 2100 ms"),
            "{text}"
        );
        assert!(text.contains("block seen final at validator-1"), "{text}");
        assert!(
            text.contains("target      met: finality p99 <= 2 s at a 1 s block interval"),
            "{text}"
        );
        assert!(text.contains("unfinal            1 blocks"), "{text}");
        assert_eq!(text.lines().count(), 8);
        let silent = ChainBenchReport {
            fault: Fault::Silent,
            ..report()
        }
        .to_string();
        assert!(
            silent.contains("fault       validator-4 silent"),
            "{silent}"
        );

        let missed = ChainBenchReport {
            lost: 2,
            refused: 1,
            first_refusal: Some("connection refused".into()),
            ..report()
        }
        .to_string();
        assert!(
            missed.contains("1 refused, first: connection refused"),
            "{missed}"
        );
        assert!(missed.contains("target      MISSED"), "{missed}");
        assert!(!missed.contains("BELOW"), "{missed}");

        let behind = ChainBenchReport {
            window_secs: 25.0,
            ..report()
        }
        .to_string();
        assert!(
            behind.contains("160 tx/s achieved, BELOW the offered rate"),
            "{behind}"
        );

        let none = ChainBenchReport {
            latency_p50_ms: None,
            latency_p99_ms: None,
            latency_max_ms: None,
            ..report()
        }
        .to_string();
        assert!(none.contains("p50 n/a, p99 n/a, max n/a"), "{none}");

        let lost = ChainBenchReport {
            lost: 50,
            finalised: 3950,
            latency_p99_ms: Some(f64::INFINITY),
            latency_max_ms: Some(f64::INFINITY),
            ..report()
        }
        .to_string();
        assert!(
            lost.contains("p50 1100 ms, p99 not final, max not final"),
            "{lost}"
        );
    }

    #[test]
    fn json_is_one_line_with_the_verdict() {
        let json = report().to_json();
        let line = json.to_string();
        assert!(!line.contains('\n'));
        assert_eq!(json["target"], "met");
        assert_eq!(json["target_detail"], serde_json::Value::Null);
        assert_eq!(json["finality_p99_ms"], 1900.0);
        assert_eq!(json["final_blocks_per_sec"], 1.0);
        assert_eq!(json["lost"], 0);
        let missed = ChainBenchReport {
            latency_p99_ms: Some(2500.0),
            ..report()
        }
        .to_json();
        assert_eq!(missed["target"], "missed");
        assert!(
            missed["target_detail"]
                .as_str()
                .is_some_and(|d| d.contains("2500"))
        );
        let lost = ChainBenchReport {
            lost: 1,
            latency_max_ms: Some(f64::INFINITY),
            ..report()
        }
        .to_json();
        assert_eq!(lost["finality_max_ms"], serde_json::Value::Null);
        assert_eq!(lost["finality_p99_ms"], 1900.0);
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = std::env::temp_dir().join(format!("veritrace-tail-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("node.log");
        std::fs::write(&path, "a\nb\nc\nd\n").expect("write log");
        assert_eq!(log_tail(&path, 2), "c\nd");
        assert_eq!(log_tail(&path, 10), "a\nb\nc\nd");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(log_tail(&dir.join("missing.log"), 2).starts_with("(cannot read"));
    }
}
