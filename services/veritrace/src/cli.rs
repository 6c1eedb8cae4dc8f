//! The command line, in the library so that tests (the compose file's check among them) parse
//! arguments exactly as the binary does.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Veritrace: records business facts as events, anchors them on a consortium chain, and
/// issues receipts anyone can verify offline.
#[derive(Parser)]
#[command(version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the whole platform in one process (embedded mode: SQLite, in-process bus, a
    /// single-validator chain), with its data under ./data.
    Up {
        /// Configuration file (TOML); VERITRACE_* environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Data directory (overrides `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to listen on (overrides `http.bind`), e.g. 127.0.0.1:8080.
        #[arg(long)]
        bind: Option<String>,
    },
    /// Run one service (distributed mode: PostgreSQL, RabbitMQ); `database.url`, `amqp.url`
    /// and the chain come from the configuration.
    Serve {
        #[arg(value_parser = crate::serve::service_parser())]
        service: crate::serve::Service,
        /// Configuration file (TOML); VERITRACE_* environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Data directory (overrides `data_dir`): where `serve anchor` without `chain.nodes`
        /// keeps its solo validator's key, block store and genesis.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to listen on (overrides `http.bind`).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Recompute every event digest and batch root from the stores and compare them with the
    /// chain; list every altered, missing or extra row. Exit 0 clean, 1 findings, 2 when the
    /// audit could not be done.
    Audit(crate::audit::AuditOptions),
    /// Mint a new admin API key in the identity store of a data directory (embedded) or of
    /// `database.url` (distributed), for the host's operator who lost the first one.
    AdminKey {
        /// Configuration file (TOML); VERITRACE_* environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Data directory (overrides `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Inspect a consumer's dead-letter queue, or publish its messages again (distributed mode).
    DeadLetters {
        #[command(subcommand)]
        command: crate::dead_letters::DeadLetterCommand,
    },
    /// GET a URL and exit 0 on a 2xx answer, 1 otherwise (saying why): a container
    /// healthcheck (`veritrace probe http://127.0.0.1:8080/readyz`) that needs no curl.
    Probe {
        url: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout_secs: u64,
    },
    /// Verify a receipt offline against the chain's genesis document.
    Verify {
        /// The receipt (JSON), as served by GET /receipts/{event_id}.
        receipt: PathBuf,
        /// The genesis document of the chain the receipt claims.
        #[arg(long)]
        genesis: PathBuf,
        /// Also check that the event attests this file.
        #[arg(long, conflicts_with = "digest")]
        file: Option<PathBuf>,
        /// Also check that the event attests a document with this digest (hex).
        #[arg(long)]
        digest: Option<String>,
    },
    /// Run one consortium validator (its key, block store and node API), as configured by
    /// the node.toml that `veritrace chain init` wrote.
    Node {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Consortium chain administration.
    Chain {
        #[command(subcommand)]
        command: ChainCommand,
    },
    /// Measure events/s from capture to anchored receipt on this machine (embedded mode);
    /// `bench chain` measures a local consortium's finality, `bench distributed` the
    /// distributed mode against raw PostgreSQL rates.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
// The embedded bench's flags stay on `bench` itself, so they cannot be mixed with a target.
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub target: Option<BenchTarget>,
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Events per request (1 to 1000; more than 1 uses the domain's batch command).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Events per second to offer, spread over the clients (a sustained load below capacity,
    /// to measure latency at it); without it each client sends as fast as it is answered.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Also print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum BenchTarget {
    /// Start a throw-away consortium of `veritrace node` processes on loopback, submit anchor
    /// transactions at a steady rate and measure final blocks/s and submit-to-finality latency.
    Chain(crate::bench_chain::ChainBenchOptions),
    /// Start identity, anchor and the benchmarked domain as separate `veritrace serve` processes on
    /// PostgreSQL and RabbitMQ, measure events/s from capture to anchored receipt, and in the
    /// same run the raw INSERT and COPY rates of that PostgreSQL.
    Distributed(crate::bench_distributed::DistributedBenchOptions),
    /// Capture EPCIS documents (1,000 events each) on the embedded platform until every event
    /// is anchored, then run the evidence bench with the same load: both rates, side by side.
    Provenance(crate::bench::provenance::ProvenanceBenchOptions),
}

#[derive(Subcommand)]
pub enum ChainCommand {
    /// Write a genesis and one node directory (key + node.toml) per validator.
    Init(crate::network::InitOptions),
    /// Create a new validator's node directory (its own keys) in a network directory.
    Join(crate::governance::JoinOptions),
    /// Draft a validator-set change (add, remove, re-weight) from the chain's current set.
    Propose(crate::governance::ProposeOptions),
    /// Sign a drafted change with this validator's key.
    Approve(crate::governance::ApproveOptions),
    /// Submit a change whose approvals carry more than 2/3 of the current set's power.
    Submit(crate::governance::SubmitOptions),
}
