//! `veritrace bench distributed`: events per second from capture to anchored receipt with each
//! service its own process on PostgreSQL and RabbitMQ, beside the raw rate of plain INSERTs and
//! of COPY into the same PostgreSQL, measured in the same run (ADR 0002 §2.11).

use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPoolOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(clap::Args, Debug, Clone)]
pub struct DistributedBenchOptions {
    /// A PostgreSQL server URL of a role that may create databases (its database is only used
    /// to create and drop the bench's own, `vt_bench_<id>`).
    #[arg(long, env = "VERITRACE_BENCH_DATABASE_URL")]
    pub database_url: String,
    #[arg(long, env = "VERITRACE_BENCH_AMQP_URL")]
    pub amqp_url: String,
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Events per request of the benchmarked domain (1 to 1000; its batch command above 1).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Rows of the raw INSERT baseline.
    #[arg(long, default_value_t = 50_000)]
    pub raw_rows: usize,
    /// Connections of the raw INSERT baseline, each inserting single rows, one commit each.
    #[arg(long, default_value_t = 16)]
    pub raw_clients: usize,
    /// Rows of the raw COPY baseline.
    #[arg(long, default_value_t = 200_000)]
    pub copy_rows: usize,
    /// Also print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct DistributedBenchReport {
    pub events: usize,
    pub concurrency: usize,
    pub batch: usize,
    pub cores: usize,
    pub postgres: String,
    pub capture_events_per_sec: f64,
    pub end_to_end_events_per_sec: f64,
    pub raw_insert_rows_per_sec: f64,
    pub raw_copy_rows_per_sec: f64,
    /// End-to-end events/s over raw INSERT rows/s.
    pub ratio_to_raw_insert: f64,
    /// Request latency (HTTP round trip to the 201).
    pub request_ms: Option<crate::bench::measures::Spread>,
    /// From an event's 201 to its receipt being anchored, over the sampled events.
    pub anchored_after_201_ms: Option<crate::bench::measures::Spread>,
    /// CPU seconds each part used from the first request to the last anchored receipt, and
    /// the seconds of CPU the machine had meanwhile (cores × wall time): what the run was
    /// spent on, hence what limits it.
    pub cpu_seconds: std::collections::BTreeMap<String, f64>,
    pub cpu_available_seconds: f64,
    /// The run's own RabbitMQ namespace, deleted with its queues once the run ends.
    pub amqp_namespace: String,
}

impl std::fmt::Display for DistributedBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "veritrace bench distributed: {} events, {} HTTP clients, {} per request, {} cores",
            self.events, self.concurrency, self.batch, self.cores
        )?;
        writeln!(f, "  {}", self.postgres)?;
        writeln!(
            f,
            "  raw INSERT   {:>8.0} rows/s    (single-row INSERTs, one commit each)",
            self.raw_insert_rows_per_sec
        )?;
        writeln!(
            f,
            "  raw COPY     {:>8.0} rows/s    (one COPY ... FROM STDIN)",
            self.raw_copy_rows_per_sec
        )?;
        writeln!(
            f,
            "  capture      {:>8.0} events/s  (request {})",
            self.capture_events_per_sec,
            crate::bench::spread(&self.request_ms)
        )?;
        writeln!(
            f,
            "  end to end   {:>8.0} events/s  (first request to every receipt anchored)",
            self.end_to_end_events_per_sec
        )?;
        writeln!(
            f,
            "  201 to anchored  {}",
            crate::bench::spread(&self.anchored_after_201_ms)
        )?;
        writeln!(
            f,
            "  end to end / raw INSERT = {:.2} (target 1.5)",
            self.ratio_to_raw_insert
        )?;
        let used: Vec<String> = self
            .cpu_seconds
            .iter()
            .map(|(k, v)| format!("{k} {v:.1}"))
            .collect();
        writeln!(
            f,
            "  CPU seconds  {} (of {:.1} available)",
            used.join(", "),
            self.cpu_available_seconds
        )
    }
}

/// The bench's database, dropped at the end however the run ends.
struct BenchDatabase {
    server_url: String,
    name: String,
}

/// Deletes the run's queues (each consumer's and its dead-letter queue) and exchanges from the
/// broker. The namespace is the run's alone, and a reaction queue whose service the bench does
/// not start would otherwise keep every event it follows for good.
async fn delete_namespace(amqp_url: &str, namespace: &str) -> Result<(), BoxError> {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let bus = veritrace_kernel::amqp::AmqpBus::new(&veritrace_kernel::config::AmqpConfig {
        url: Some(amqp_url.to_string()),
        namespace: namespace.to_string(),
        ..Default::default()
    })?;
    let mut consumers = vec![veritrace_anchor::QUEUE.to_string()];
    for domain in crate::domains::DOMAINS {
        consumers.extend(domain.reactions().iter().map(|r| r.queue(domain.name())));
    }
    let queues = consumers
        .iter()
        .flat_map(|q| [bus.queue_name(q), bus.dead_letter_queue_name(q)]);
    let connection =
        lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default()).await?;
    // A channel each, closed once its deletion is confirmed: a refused deletion closes its
    // channel, and closing the connection over channels still closing fails spuriously.
    for queue in queues {
        let channel = connection.create_channel().await?;
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await?;
        let _ = channel.close(200, "OK".into()).await;
    }
    for exchange in [bus.events_exchange(), bus.dead_letter_exchange()] {
        let channel = connection.create_channel().await?;
        channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await?;
        let _ = channel.close(200, "OK".into()).await;
    }
    // Everything is deleted by now; how the connection ends changes nothing.
    let _ = connection.close(200, "OK".into()).await;
    Ok(())
}

impl BenchDatabase {
    fn url(&self) -> String {
        veritrace_kernel::db::with_database(&self.server_url, &self.name)
    }

    async fn drop_now(&self) {
        if let Ok(mut conn) = PgConnection::connect(&self.server_url).await {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

/// Child services, killed when dropped.
struct Services(Vec<Child>);

impl Drop for Services {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub async fn run(opts: DistributedBenchOptions) -> Result<DistributedBenchReport, BoxError> {
    let mut server = PgConnection::connect(&opts.database_url)
        .await
        .map_err(|e| {
            format!(
                "PostgreSQL at {}: {e}",
                veritrace_kernel::db::redact(&opts.database_url)
            )
        })?;
    let postgres: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(&mut server)
        .await?;
    let db = BenchDatabase {
        server_url: opts.database_url.clone(),
        name: format!("vt_bench_{}", uuid::Uuid::now_v7().simple()),
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE {} TEMPLATE template0",
        db.name
    )))
    .execute(&mut server)
    .await?;
    let _ = server.close().await;
    let dir = std::env::temp_dir().join(format!("veritrace-bench-{}", uuid::Uuid::now_v7()));
    let namespace = format!("vt-bench-{}", uuid::Uuid::now_v7().simple());
    let result = run_in(&opts, &db, &dir, &namespace, postgres).await;
    db.drop_now().await;
    if let Err(e) = delete_namespace(&opts.amqp_url, &namespace).await {
        eprintln!("warning: the bench's RabbitMQ queues ({namespace}.*) were not all deleted: {e}");
    }
    // Kept after a failure: the services' logs are there.
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run_in(
    opts: &DistributedBenchOptions,
    db: &BenchDatabase,
    dir: &Path,
    namespace: &str,
    postgres: String,
) -> Result<DistributedBenchReport, BoxError> {
    let url = db.url();
    let (raw_insert, raw_copy) = raw_baseline(&url, opts).await?;

    std::fs::create_dir_all(dir)?;
    let ports = [free_port()?, free_port()?, free_port()?];
    let mut services = Services(Vec::new());
    let mut names = Vec::new();
    let mut key = None;
    let domain = crate::domains::benchmarked()?;
    for (service, port) in ["identity", "anchor", domain.name()].into_iter().zip(ports) {
        let env = vec![
            ("VERITRACE_DATABASE__URL", url.clone()),
            ("VERITRACE_AMQP__URL", opts.amqp_url.clone()),
            ("VERITRACE_AMQP__NAMESPACE", namespace.to_string()),
            ("VERITRACE_HTTP__BIND", format!("127.0.0.1:{port}")),
            (
                "VERITRACE_DATA_DIR",
                dir.join("anchor").display().to_string(),
            ),
            (
                "VERITRACE_CHAIN__GENESIS",
                dir.join("anchor/chain/genesis.json").display().to_string(),
            ),
            ("VERITRACE_LOG", "warn".into()),
        ];
        let (child, admin_key) = spawn_service(service, &env, &dir.join(format!("{service}.log")))?;
        names.push((service.to_string(), child.id()));
        services.0.push(child);
        key = key.or(admin_key);
    }
    let key = key.ok_or("the identity service printed no admin key")?;
    let domain_url = format!("http://127.0.0.1:{}", ports[2]);
    let (events, concurrency, batch) = (
        opts.events.max(1),
        opts.concurrency.max(1),
        opts.batch.clamp(1, 1000),
    );

    let parts = |names: &[(String, u32)]| {
        let mut cpu = std::collections::BTreeMap::new();
        for (name, pid) in names {
            cpu.insert(name.clone(), cpu_seconds(*pid));
        }
        cpu.insert("postgres".into(), cpu_of_command("postgres"));
        cpu.insert("rabbitmq".into(), cpu_of_command("beam.smp"));
        cpu.insert("load generator".into(), cpu_seconds(std::process::id()));
        cpu
    };
    let cpu_before = parts(&names);
    let started = Instant::now();
    let load = crate::bench::load::Load {
        events,
        concurrency,
        batch,
        rate: None,
    };
    let outcome = tokio::task::spawn_blocking(move || {
        crate::bench::load::run(domain, &domain_url, &key, load)
    })
    .await??;
    let capture_secs = started.elapsed().as_secs_f64();

    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let anchored: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(size), 0)::BIGINT FROM anchor.batches WHERE block_height IS NOT NULL",
        )
        .fetch_one(&pool)
        .await?;
        if anchored as usize >= events {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {anchored} of {events} events anchored after 600 s (logs in {})",
                dir.display()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let end_to_end_secs = started.elapsed().as_secs_f64();
    let anchor_db = veritrace_kernel::db::Database::postgres(
        &veritrace_kernel::config::DatabaseConfig {
            url: Some(url.clone()),
            ..Default::default()
        },
        "anchor",
        "bench",
    )?;
    let anchored_after_201_ms = crate::bench::anchored_latency(
        &veritrace_anchor::store::AnchorStore::new(&anchor_db),
        &outcome.samples,
    )
    .await?;
    let mut cpu = parts(&names);
    for (k, v) in cpu.iter_mut() {
        *v -= cpu_before.get(k).copied().unwrap_or(0.0);
    }
    pool.close().await;
    drop(services);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    let end_to_end = events as f64 / end_to_end_secs;
    Ok(DistributedBenchReport {
        events,
        concurrency,
        batch,
        cores,
        postgres,
        capture_events_per_sec: events as f64 / capture_secs,
        end_to_end_events_per_sec: end_to_end,
        raw_insert_rows_per_sec: raw_insert,
        raw_copy_rows_per_sec: raw_copy,
        ratio_to_raw_insert: end_to_end / raw_insert,
        request_ms: crate::bench::measures::Spread::of(outcome.request_ms),
        anchored_after_201_ms,
        cpu_seconds: cpu,
        cpu_available_seconds: cores as f64 * end_to_end_secs,
        amqp_namespace: namespace.to_string(),
    })
}

/// User + system CPU seconds of a process so far (Linux `/proc`; 0 elsewhere). Clock ticks are
/// taken as 100 per second, Linux's `USER_HZ` on every common architecture.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// CPU seconds of every process whose command name is `comm` (a server's processes).
fn cpu_of_command(comm: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .map(cpu_seconds)
        .sum()
}

/// A row like an event's: 600-byte envelope, its digest, a stream of its own.
fn raw_row(i: usize) -> (String, String, String, String) {
    let id = uuid::Uuid::now_v7().to_string();
    let envelope = format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(580));
    let digest = chain_core::HashAlg::Sha3_256
        .hash(envelope.as_bytes())
        .to_hex();
    (id, format!("raw-{i}"), envelope, digest)
}

/// Raw INSERT and COPY rates on a table shaped and indexed like `events`.
async fn raw_baseline(url: &str, opts: &DistributedBenchOptions) -> Result<(f64, f64), BoxError> {
    let clients = opts.raw_clients.max(1);
    let pool = PgPoolOptions::new()
        .max_connections(clients as u32)
        .min_connections(clients as u32)
        .connect(url)
        .await?;
    sqlx::raw_sql(
        "CREATE TABLE raw_events (
            position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id UUID NOT NULL UNIQUE,
            stream TEXT NOT NULL,
            stream_version BIGINT NOT NULL,
            event_type TEXT NOT NULL,
            envelope TEXT NOT NULL,
            digest TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            UNIQUE (stream, stream_version))",
    )
    .execute(&pool)
    .await?;
    let rows = opts.raw_rows.max(clients);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (pool, next) = (pool.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= rows {
                        return Ok::<_, sqlx::Error>(());
                    }
                    let (id, stream, envelope, digest) = raw_row(i);
                    sqlx::query(
                        "INSERT INTO raw_events (event_id, stream, stream_version, event_type, envelope, digest, recorded_at)
                         VALUES ($1::UUID, $2, 1, 'Raw', $3, $4, '2026-01-01T00:00:00Z')",
                    )
                    .bind(id)
                    .bind(stream)
                    .bind(envelope)
                    .bind(digest)
                    .execute(&pool)
                    .await?;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let insert_rate = rows as f64 / started.elapsed().as_secs_f64();

    sqlx::query("TRUNCATE raw_events").execute(&pool).await?;
    let copy_rows = opts.copy_rows.max(1);
    let mut data = Vec::with_capacity(copy_rows * 720);
    for i in 0..copy_rows {
        let (id, stream, envelope, digest) = raw_row(i);
        data.extend_from_slice(
            format!("{id}\t{stream}\t1\tRaw\t{envelope}\t{digest}\t2026-01-01T00:00:00Z\n")
                .as_bytes(),
        );
    }
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY raw_events (event_id, stream, stream_version, event_type, envelope, digest, recorded_at) FROM STDIN",
        )
        .await?;
    copy.send(data).await?;
    let copied = copy.finish().await?;
    let copy_rate = copied as f64 / started.elapsed().as_secs_f64();
    drop(conn);
    sqlx::query("DROP TABLE raw_events").execute(&pool).await?;
    pool.close().await;
    Ok((insert_rate, copy_rate))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `veritrace serve <service>` (this executable) and waits for the end of its banner.
/// Returns the child and the admin key it printed, if any.
fn spawn_service(
    service: &str,
    env: &[(&str, String)],
    log: &Path,
) -> Result<(Child, Option<String>), BoxError> {
    let exe: PathBuf = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args(["serve", service])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log)?));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut key = None;
    let mut up = false;
    for line in lines.by_ref() {
        let line = line?;
        if let Some(k) = line.trim().strip_prefix("admin API key") {
            key = Some(k.trim().to_string());
        }
        if line.trim_start().starts_with("database") {
            up = true;
            break;
        }
    }
    if !up {
        let _ = child.kill();
        return Err(format!("{service} did not start; see {}", log.display()).into());
    }
    std::thread::spawn(move || for _ in lines {});
    Ok((child, key))
}
