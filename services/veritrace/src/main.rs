use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use veritrace::cli::{BenchArgs, BenchTarget, ChainCommand, Cli, Command};
use veritrace::verify::{self, Subject};
use veritrace_kernel::config::Config;

mod process_memory;

fn main() -> ExitCode {
    process_memory::configure();
    let cli = Cli::parse();
    match cli.command {
        Command::Verify {
            receipt,
            genesis,
            file,
            digest,
        } => {
            let subject = match (&file, &digest) {
                (Some(f), _) => Subject::File(f),
                (_, Some(d)) => Subject::Digest(d),
                _ => Subject::None,
            };
            match verify::run(&receipt, &genesis, subject) {
                Ok(v) => {
                    print!("{}", verify::summary(&v));
                    ExitCode::SUCCESS
                }
                Err(e) => match e.code() {
                    Some(code) => {
                        eprintln!("NOT VERIFIED ({code}): {e}");
                        ExitCode::from(1)
                    }
                    None => {
                        eprintln!("error: {e}");
                        ExitCode::from(2)
                    }
                },
            }
        }
        Command::Up {
            config,
            data_dir,
            bind,
        } => {
            let mut cfg = match load_config(config, bind) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if let Some(d) = data_dir {
                cfg.data_dir = d;
            }
            if cfg.database.url.is_some() || cfg.amqp.url.is_some() {
                eprintln!(
                    "error: `up` runs the embedded mode; database.url and amqp.url are for \
                     `veritrace serve <service>`"
                );
                return ExitCode::from(2);
            }
            runtime(|| up(cfg))
        }
        Command::Serve {
            service,
            config,
            data_dir,
            bind,
        } => {
            let mut cfg = match load_config(config, bind) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if let Some(d) = data_dir {
                cfg.data_dir = d;
            }
            if let Err(e) = veritrace::serve::check(service, &cfg) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            runtime(|| veritrace::serve::run(service, cfg))
        }
        Command::Audit(opts) => {
            let json = opts.json;
            let rt = match new_runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match rt.block_on(veritrace::audit::command(opts)) {
                Ok(report) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&report).unwrap_or_default()
                        );
                    } else {
                        print!("{report}");
                    }
                    if report.clean {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("error: the audit could not be done: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::AdminKey { config, data_dir } => {
            let mut cfg = match load_config(config, None) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if let Some(d) = data_dir {
                cfg.data_dir = d;
            }
            // A store that refuses the key says why on standard error.
            veritrace_kernel::telemetry::init_tracing("warn");
            print_or_fail(veritrace::admin_key::mint(&cfg))
        }
        Command::DeadLetters { command } => print_or_fail(veritrace::dead_letters::run(command)),
        Command::Probe { url, timeout_secs } => {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(std::time::Duration::from_secs(timeout_secs.max(1))))
                .build()
                .into();
            match agent.get(&url).call() {
                Ok(resp) if resp.status().is_success() => ExitCode::SUCCESS,
                Ok(mut resp) => {
                    let body = resp.body_mut().read_to_string().unwrap_or_default();
                    eprintln!("{url}: {} {}", resp.status(), body.trim());
                    ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("{url}: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Node { config } => runtime(|| node(config)),
        Command::Chain { command } => {
            use veritrace::governance;
            let done = match command {
                ChainCommand::Init(opts) => veritrace::network::init(&opts)
                    .map(|r| veritrace::network::summary(&r, &opts.dir)),
                ChainCommand::Join(o) => governance::join(&o),
                ChainCommand::Propose(o) => governance::propose(&o),
                ChainCommand::Approve(o) => governance::approve(&o),
                ChainCommand::Submit(o) => governance::submit(&o),
            };
            match done {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Bench(BenchArgs {
            target: Some(BenchTarget::Chain(opts)),
            ..
        }) => match veritrace::bench_chain::run(&opts) {
            Ok(report) => {
                print!("{report}");
                if opts.json {
                    println!("{}", report.to_json());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        Command::Bench(BenchArgs {
            target: Some(BenchTarget::Distributed(opts)),
            ..
        }) => runtime(|| async move {
            // sqlx reports the bench's own DROP DATABASE as a slow statement.
            veritrace_kernel::telemetry::init_tracing("warn,sqlx=error");
            let json = opts.json;
            let report = veritrace::bench_distributed::run(opts).await?;
            print!("{report}");
            if json {
                println!("{}", serde_json::to_string(&report)?);
            }
            Ok(())
        }),
        Command::Bench(BenchArgs {
            target: Some(BenchTarget::Provenance(opts)),
            ..
        }) => runtime(|| async move {
            veritrace_kernel::telemetry::init_tracing("warn,sqlx=error");
            let report = veritrace::bench::provenance::run(&opts).await?;
            print!("{report}");
            if opts.json {
                println!("{}", serde_json::to_string(&report)?);
            }
            Ok(())
        }),
        Command::Bench(BenchArgs {
            target: None,
            events,
            concurrency,
            batch,
            rate,
            json,
        }) => runtime(|| async move {
            // The ceiling's read of the whole run is one long statement, not a slow one.
            veritrace_kernel::telemetry::init_tracing("warn,sqlx=error");
            let report = veritrace::bench::run(veritrace::bench::BenchOptions {
                domain: veritrace::domains::benchmarked()?,
                events,
                concurrency,
                batch,
                rate,
            })
            .await?;
            print!("{report}");
            if json {
                println!("{}", serde_json::to_string(&report)?);
            }
            Ok(())
        }),
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The configuration (`--config` or the defaults' search), with `--bind` applied.
fn load_config(file: Option<PathBuf>, bind: Option<String>) -> Result<Config, ExitCode> {
    let mut cfg = Config::load(file.as_deref()).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    if let Some(b) = bind {
        cfg.http.bind = b;
    }
    Ok(cfg)
}

/// Runs a command that prints a text when it succeeds; exit status 2, after saying why, when
/// it fails.
fn print_or_fail<E: std::fmt::Display>(
    command: impl std::future::Future<Output = Result<String, E>>,
) -> ExitCode {
    let rt = match new_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(command) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The tokio runtime commands run on; exit status 2 (after saying why) when it cannot start.
fn new_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::from(2)
        })
}

fn runtime<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), BoxError>>,
{
    let rt = match new_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(f()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn node(config: PathBuf) -> Result<(), BoxError> {
    // The consensus library is chatty at info: its warnings, and this node's own progress.
    veritrace_kernel::telemetry::init_tracing(
        &std::env::var("VERITRACE_LOG")
            .unwrap_or_else(|_| "warn,veritrace=info,chain_node=info".into()),
    );
    let running = veritrace::node::start(&config).await?;
    println!(
        "validator {} of chain {} is up",
        running.node.name(),
        running.genesis.chain_id
    );
    println!("  node API       http://{}", running.api);
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // The stores are written so that a kill at any point loses nothing decided.
    tokio::select! {
        stop = veritrace::serve::stop_signal() => stop?,
        reason = running.node.halted() => {
            running.stop().await;
            return Err(format!("the validator stopped: {reason}").into());
        }
    }
    println!("stopping");
    running.stop().await;
    Ok(())
}

async fn up(cfg: Config) -> Result<(), BoxError> {
    veritrace_kernel::telemetry::init_tracing(&cfg.log);
    let mode = match cfg.chain.nodes.len() {
        0 => "embedded mode".to_string(),
        n => format!("consortium chain through {n} validator node(s)"),
    };
    let platform = veritrace::platform::Platform::start(cfg).await?;
    let url = platform.base_url();
    println!(
        "Veritrace is up ({mode}), chain {}",
        platform.genesis.chain_id
    );
    println!("  API            {url}");
    println!("  API docs       {url}/docs/");
    println!("  metrics        {url}/metrics");
    println!("  genesis        {}", platform.genesis_path.display());
    match &platform.new_admin_key {
        Some(key) => {
            println!("  admin API key  {key}");
            println!(
                "                 (shown once: store it now; it is not kept in clear anywhere)"
            );
        }
        None => println!(
            "  admin API key  (created on first start; `veritrace admin-key` mints another)"
        ),
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    veritrace::serve::stop_signal().await?;
    println!("stopping");
    platform.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn bench(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        let cli = Cli::try_parse_from(["veritrace", "bench"].iter().chain(args))?;
        match cli.command {
            Command::Bench(b) => Ok(b),
            _ => panic!("not the bench command"),
        }
    }

    #[test]
    fn bench_keeps_its_flags_and_takes_a_chain_target() {
        let b = bench(&[]).expect("bare bench");
        assert!(b.target.is_none());
        assert_eq!((b.events, b.concurrency, b.batch), (20_000, 64, 1));
        let b = bench(&["--events", "10", "--concurrency", "2", "--batch", "5"]).expect("flags");
        assert!(b.target.is_none());
        assert_eq!((b.events, b.concurrency, b.batch), (10, 2, 5));

        let Some(BenchTarget::Chain(c)) = bench(&["chain"]).expect("chain").target else {
            panic!("chain target");
        };
        assert_eq!(
            (
                c.validators,
                c.block_interval_ms,
                c.duration_secs,
                c.rate,
                c.base_port
            ),
            (4, 1000, 30, 200, 27600)
        );
        assert!(!c.json);
        let Some(BenchTarget::Chain(c)) = bench(&[
            "chain",
            "--rate",
            "50",
            "--duration-secs",
            "5",
            "--hash-alg",
            "sm3",
            "--signature-alg",
            "sm2",
            "--json",
        ])
        .expect("chain flags")
        .target
        else {
            panic!("chain target");
        };
        assert_eq!((c.rate, c.duration_secs), (50, 5));
        assert_eq!(c.hash_alg, chain_core::HashAlg::Sm3);
        assert!(c.json);

        // The embedded bench's flags do not mix with a target, nor the other way round.
        assert!(bench(&["--events", "10", "chain"]).is_err());
        assert!(bench(&["chain", "--events", "10"]).is_err());
        assert!(bench(&["chain", "--hash-alg", "md5"]).is_err());
    }
}
