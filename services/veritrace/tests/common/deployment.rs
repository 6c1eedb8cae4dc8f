//! A distributed deployment for tests: `veritrace serve identity|anchor|evidence|cases` as child
//! processes on a database and an AMQP namespace of their own, against the real PostgreSQL
//! and RabbitMQ that `scripts/services` starts.
#![allow(dead_code)] // each test binary uses its own subset

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use veritrace_kernel::testing::TestDb;

pub const SERVICES: [&str; 4] = ["identity", "anchor", "evidence", "cases"];

/// Services a test starts by name ([`Deployment::start`]), not with [`SERVICES`].
pub const OTHER_SERVICES: [&str; 1] = ["provenance"];

/// The services that keep an event store (each in the schema of its name): every event in them
/// is anchored once.
pub const DOMAINS: [&str; 3] = ["evidence", "cases", "provenance"];

/// Polls `probe` every 50 ms until it returns `Some`, or panics after `within` with the last
/// value `describe` gives.
pub fn wait_until<T>(
    within: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {within:?} waiting for {what}; last seen: {}",
                describe()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct Deployment {
    pub rt: tokio::runtime::Runtime,
    pub db: Option<TestDb>,
    pub pool: sqlx::PgPool,
    pub namespace: String,
    pub dir: tempfile::TempDir,
    pub ports: HashMap<&'static str, u16>,
    children: std::sync::Mutex<HashMap<&'static str, Child>>,
    /// Every service started at least once: the domains among them have their schema.
    started: std::sync::Mutex<std::collections::BTreeSet<&'static str>>,
    key: std::sync::Mutex<Option<String>>,
    /// Overrides per service (`VERITRACE_*` variables), applied at each (re)start.
    pub env: HashMap<&'static str, Vec<(String, String)>>,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let children =
            std::mem::take(&mut *self.children.lock().unwrap_or_else(|p| p.into_inner()));
        for (_, mut c) in children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.pool_close();
        // The database goes with `db`; the namespace's queues with a best-effort delete.
        let ns = self.namespace.clone();
        for q in [
            format!("{ns}.anchor.events"),
            format!("{ns}.anchor.events.dlq"),
            format!("{ns}.cases.exhibits"),
            format!("{ns}.cases.exhibits.dlq"),
        ] {
            let _ = Command::new("rabbitmqctl")
                .args(["-q", "delete_queue", &q])
                .output();
        }
    }
}

impl Deployment {
    /// A fresh database and namespace; nothing started yet. `None` when the server tests are
    /// switched off (`VERITRACE_TEST_BACKENDS=sqlite`).
    pub fn new() -> Option<Deployment> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let db = rt.block_on(TestDb::postgres())?;
        let url = db.config().url.expect("a PostgreSQL test database");
        let pool = {
            let _in_runtime = rt.enter();
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(5))
                .connect_lazy(&url)
                .expect("test pool")
        };
        let mut ports = HashMap::new();
        for s in SERVICES.into_iter().chain(OTHER_SERVICES) {
            ports.insert(s, free_port());
        }
        Some(Deployment {
            rt,
            db: Some(db),
            pool,
            namespace: format!("vt-{}", uuid::Uuid::now_v7().simple()),
            dir: tempfile::tempdir().expect("tempdir"),
            ports,
            children: Default::default(),
            started: Default::default(),
            key: Default::default(),
            env: HashMap::new(),
        })
    }

    fn pool_close(&self) {
        let pool = self.pool.clone();
        self.rt.block_on(async move { pool.close().await });
    }

    pub fn database_url(&self) -> String {
        self.db
            .as_ref()
            .and_then(|d| d.config().url)
            .expect("database url")
    }

    pub fn url(&self, service: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports[service])
    }

    /// `veritrace probe <service>/readyz`, the containers' healthcheck: (exit code, stderr).
    pub fn probe(&self, service: &str) -> (i32, String) {
        probe(&format!("{}/readyz", self.url(service)))
    }

    /// `GET /readyz` of a service: (status, body).
    pub fn readyz(&self, service: &str) -> (u16, Value) {
        get(&agent(), &format!("{}/readyz", self.url(service)))
    }

    pub fn genesis(&self) -> PathBuf {
        self.dir
            .path()
            .join("anchor")
            .join("chain")
            .join("genesis.json")
    }

    pub fn log_path(&self, service: &str) -> PathBuf {
        self.dir.path().join(format!("{service}.log"))
    }

    /// The last lines each service logged, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for s in SERVICES {
            let text = std::fs::read_to_string(self.log_path(s)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            out.push_str(&format!("\n--- {s} ---\n{tail}"));
        }
        out
    }

    pub fn service_env(&self, service: &'static str) -> Vec<(String, String)> {
        let mut env = vec![
            ("VERITRACE_DATABASE__URL".to_string(), self.database_url()),
            (
                "VERITRACE_AMQP__URL".into(),
                veritrace_kernel::testing::amqp_url(),
            ),
            ("VERITRACE_AMQP__NAMESPACE".into(), self.namespace.clone()),
            ("VERITRACE_LOG".into(), "warn".into()),
            (
                "VERITRACE_HTTP__BIND".into(),
                format!("127.0.0.1:{}", self.ports[service]),
            ),
            ("VERITRACE_HTTP__WORKERS".into(), "2".into()),
        ];
        match service {
            "anchor" => {
                env.push((
                    "VERITRACE_DATA_DIR".into(),
                    self.dir.path().join("anchor").display().to_string(),
                ));
                env.push(("VERITRACE_CHAIN__BLOCK_INTERVAL_MS".into(), "200".into()));
            }
            "evidence" | "cases" | "provenance" => {
                env.push((
                    "VERITRACE_CHAIN__GENESIS".into(),
                    self.genesis().display().to_string(),
                ));
                env.push(("VERITRACE_HTTP__RECEIPTS_URL".into(), self.url("anchor")));
            }
            _ => {}
        }
        if let Some(extra) = self.env.get(service) {
            for (k, v) in extra {
                env.retain(|(key, _)| key != k);
                env.push((k.clone(), v.clone()));
            }
        }
        env
    }

    /// Starts `service` and waits for its banner.
    /// The admin API key the identity service printed on its first start.
    pub fn key(&self) -> String {
        self.key
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .expect("the identity service printed the admin key")
    }

    pub fn start(&self, service: &'static str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(service))
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_veritrace"));
        cmd.args(["serve", service])
            .current_dir(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for (k, v) in self.service_env(service) {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start veritrace serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut up = false;
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let Some(k) = line.trim().strip_prefix("admin API key") {
                *self.key.lock().unwrap_or_else(|p| p.into_inner()) = Some(k.trim().to_string());
            }
            if line.contains("is up (distributed mode)") {
                up = true;
            }
            // The banner's last line.
            if up && line.trim_start().starts_with("database") {
                break;
            }
        }
        assert!(up, "{service} did not start: {}", self.logs());
        self.children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(service, child);
        self.started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(service);
    }

    /// The domains started so far, whose schemas hold an event store.
    pub fn domains(&self) -> Vec<&'static str> {
        let started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        DOMAINS
            .into_iter()
            .filter(|d| started.contains(d))
            .collect()
    }

    /// `SELECT COUNT(*)` of `table` summed over every started domain's schema (`{}` stands
    /// for the schema); None when a query fails.
    fn count_in_domains(&self, table: &str) -> Option<i64> {
        self.domains().iter().try_fold(0, |sum, d| {
            let table = table.replace("{}", d);
            Some(sum + self.try_sql_i64(&format!("SELECT COUNT(*) FROM {table}"))?)
        })
    }

    /// identity, anchor, evidence, cases.
    pub fn start_all(&self) {
        for s in SERVICES {
            self.start(s);
        }
        self.key();
    }

    pub fn kill(&self, service: &str) {
        let child = self
            .children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(service);
        if let Some(mut c) = child {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    pub fn sql_i64(&self, sql: &str) -> i64 {
        let pool = self.pool.clone();
        let sql = sql.to_string();
        self.rt
            .block_on(async move {
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&pool)
                    .await
            })
            .expect("test query")
    }

    pub fn try_sql_i64(&self, sql: &str) -> Option<i64> {
        let pool = self.pool.clone();
        let sql = sql.to_string();
        self.rt
            .block_on(async move {
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&pool)
                    .await
            })
            .ok()
    }

    pub fn execute(&self, sql: &str) -> u64 {
        let pool = self.pool.clone();
        let sql = sql.to_string();
        self.rt
            .block_on(async move {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .map(|r| r.rows_affected())
            })
            .expect("test statement")
    }

    /// (events stored, leaves, leaves in anchored batches, outbox rows), events and outbox rows
    /// over every domain started.
    pub fn progress(&self) -> (i64, i64, i64, i64) {
        (
            self.count_in_domains("{}.events").unwrap_or(-1),
            self.try_sql_i64("SELECT COUNT(*) FROM anchor.leaves").unwrap_or(-1),
            self.try_sql_i64(
                "SELECT COALESCE(SUM(size), 0)::BIGINT FROM anchor.batches WHERE block_height IS NOT NULL",
            )
            .unwrap_or(-1),
            self.count_in_domains("{}.outbox").unwrap_or(-1),
        )
    }

    /// Registers `n` documents through `POST /evidence/batch` (`per_request` at a time);
    /// returns the event ids of the 201 answers. Panics on any other answer.
    pub fn register(&self, n: usize, per_request: usize, tag: &str) -> Vec<String> {
        self.register_in_cases(n, per_request, tag, |_| None)
            .into_iter()
            .map(|(_, event_id)| event_id)
            .collect()
    }

    /// As [`Deployment::register`], document `j` in the case `case_of(j)` names (none: no
    /// `case_reference`); returns (evidence id, event id) of each.
    pub fn register_in_cases(
        &self,
        n: usize,
        per_request: usize,
        tag: &str,
        case_of: impl Fn(usize) -> Option<String>,
    ) -> Vec<(String, String)> {
        let agent = agent();
        let key = self.key();
        let mut ids = Vec::with_capacity(n);
        let mut i = 0;
        while i < n {
            let k = per_request.min(n - i);
            let items: Vec<Value> = (i..i + k)
                .map(|j| {
                    let mut item = json!({
                        "content_hash": {"algorithm": "sha-256", "digest": digest_of(tag, j)},
                        "title": format!("document {tag}-{j}"),
                    });
                    if let Some(case) = case_of(j) {
                        item["case_reference"] = json!(case);
                    }
                    item
                })
                .collect();
            let (status, body) = post(
                &agent,
                &format!("{}/evidence/batch", self.url("evidence")),
                &key,
                &json!({ "items": items }),
            );
            assert_eq!(status, 201, "{body}{}", self.logs());
            for item in body["items"].as_array().expect("items") {
                let id = item["event_id"].as_str().expect("event_id");
                // Receipts are the anchor's: the evidence service links there.
                assert_eq!(
                    item["receipt_url"],
                    format!("{}/receipts/{id}", self.url("anchor")),
                    "{item}"
                );
                let evidence_id = item["evidence_id"].as_str().expect("evidence_id");
                ids.push((evidence_id.to_string(), id.to_string()));
            }
            i += k;
        }
        ids
    }

    /// Waits until every stored event is a leaf of an anchored batch and the outbox is empty.
    pub fn wait_all_anchored(&self, expected: i64, within: Duration) {
        wait_until(
            within,
            "every event anchored",
            || {
                let (events, leaves, anchored, outbox) = self.progress();
                (events >= expected && leaves == events && anchored == events && outbox == 0)
                    .then_some(())
            },
            || format!("(events, leaves, anchored, outbox) = {:?}", self.progress()),
        );
    }

    /// The exactly-once oracle: every acknowledged id is stored once, and each stored event (of
    /// every domain started) is one leaf, in one anchored batch.
    pub fn assert_exactly_once(&self, acknowledged: &[String]) {
        let domains = self.domains();
        let events = self.count_in_domains("{}.events").expect("count events");
        let distinct = self.sql_i64(&format!(
            "SELECT COUNT(DISTINCT event_id) FROM ({}) e",
            domains
                .iter()
                .map(|d| format!("SELECT event_id FROM {d}.events"))
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        ));
        let leaves = self.sql_i64("SELECT COUNT(*) FROM anchor.leaves");
        let leaf_ids = self.sql_i64("SELECT COUNT(DISTINCT event_id) FROM anchor.leaves");
        let unsealed = self.sql_i64("SELECT COUNT(*) FROM anchor.leaves WHERE batch_id IS NULL");
        let unanchored =
            self.sql_i64("SELECT COUNT(*) FROM anchor.batches WHERE block_height IS NULL");
        let foreign = self.sql_i64(&format!(
            "SELECT COUNT(*) FROM anchor.leaves l WHERE {}",
            domains
                .iter()
                .map(|d| format!(
                    "NOT EXISTS (SELECT 1 FROM {d}.events e WHERE e.event_id::TEXT = l.event_id)"
                ))
                .collect::<Vec<_>>()
                .join(" AND ")
        ));
        assert_eq!(events, distinct);
        assert_eq!(leaves, events, "one leaf per event");
        assert_eq!(leaf_ids, leaves);
        assert_eq!(foreign, 0, "no leaf without its event");
        assert_eq!(unsealed, 0);
        assert_eq!(unanchored, 0, "every batch anchored");
        // Every acknowledged registration is stored (checked in chunks of 1,000 ids).
        for chunk in acknowledged.chunks(1000) {
            let list = chunk
                .iter()
                .map(|id| format!("'{id}'"))
                .collect::<Vec<_>>()
                .join(",");
            let found = self.sql_i64(&format!(
                "SELECT COUNT(*) FROM evidence.events WHERE event_id::TEXT IN ({list})"
            ));
            assert_eq!(
                found,
                chunk.len() as i64,
                "an acknowledged event is missing"
            );
        }
    }

    /// Fetches the anchored receipt of `event_id` from the anchor service (where the evidence
    /// service's `receipt_url` leads, checked by `register`) and verifies it
    /// offline with `veritrace verify` against the genesis.
    pub fn receipt_verifies(&self, event_id: &str) {
        let agent = agent();
        let url = format!("{}/receipts/{event_id}", self.url("anchor"));
        let auth = format!("Bearer {}", self.key());
        let receipt = wait_until(
            Duration::from_secs(30),
            "an anchored receipt",
            || {
                let mut resp = agent.get(&url).header("Authorization", &auth).call().ok()?;
                let body: Value = resp.body_mut().read_json().ok()?;
                (body["status"] == "anchored").then_some(body)
            },
            || url.clone(),
        );
        let path = self.dir.path().join(format!("{event_id}.receipt.json"));
        std::fs::write(&path, receipt.to_string()).expect("write receipt");
        let out = Command::new(env!("CARGO_BIN_EXE_veritrace"))
            .arg("verify")
            .arg(&path)
            .arg("--genesis")
            .arg(self.genesis())
            .output()
            .expect("run verify");
        assert!(
            out.status.success(),
            "receipt of {event_id} does not verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

pub fn digest_of(tag: &str, j: usize) -> String {
    chain_core::ContentHashAlg::Sha256
        .hash_reader(format!("{tag}-{j}").as_bytes())
        .expect("hash")
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// POSTs JSON; (status, body). A transport error is status 0.
pub fn post(agent: &ureq::Agent, url: &str, key: &str, body: &Value) -> (u16, Value) {
    answer(
        agent
            .post(url)
            .header("Content-Type", "application/json")
            .header("Authorization", &format!("Bearer {key}"))
            .send(body.to_string().as_bytes()),
    )
}

/// `veritrace probe <url>`: (exit code, stderr).
pub fn probe(url: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_veritrace"))
        .args(["probe", url, "--timeout-secs", "5"])
        .output()
        .expect("run veritrace probe");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// GETs; (status, body). A transport error is status 0.
pub fn get(agent: &ureq::Agent, url: &str) -> (u16, Value) {
    answer(agent.get(url).call())
}

/// Status and body (JSON when it parses, else text, with `_content_type` added to objects).
fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    match response {
        Ok(mut resp) => {
            let (status, ctype, mut v) = super::read_response(&mut resp);
            if let Value::Object(m) = &mut v {
                m.insert("_content_type".into(), Value::String(ctype));
            }
            (status, v)
        }
        Err(e) => (0, Value::String(e.to_string())),
    }
}

/// Servers the tests stop and start; restarted by the guard if a test panics midway.
pub fn rabbitmq_stop() {
    let out = Command::new("rabbitmqctl")
        .args(["-q", "shutdown"])
        .output()
        .expect("rabbitmqctl");
    assert!(out.status.success(), "rabbitmqctl shutdown failed");
}

pub fn rabbitmq_start() {
    let _ = Command::new("rabbitmq-server")
        .arg("-detached")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    wait_until(
        Duration::from_secs(120),
        "RabbitMQ to answer",
        || {
            Command::new("rabbitmq-diagnostics")
                .args(["-q", "ping"])
                .output()
                .ok()
                .filter(|o| o.status.success())
        },
        || "rabbitmq-diagnostics ping fails".into(),
    );
    let _ = Command::new("rabbitmqctl")
        .args(["-q", "await_startup"])
        .output();
}

pub fn pg_cluster() -> Vec<String> {
    std::env::var("VERITRACE_TEST_PG_CLUSTER")
        .unwrap_or_else(|_| "15 main".into())
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

pub fn postgres_stop() {
    let c = pg_cluster();
    let out = Command::new("pg_ctlcluster")
        .args([&c[0], &c[1], "stop", "-m", "immediate"])
        .output()
        .expect("pg_ctlcluster");
    assert!(
        out.status.success(),
        "pg_ctlcluster stop: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn postgres_start() {
    let c = pg_cluster();
    let _ = Command::new("pg_ctlcluster")
        .args([&c[0], &c[1], "start"])
        .output();
    wait_until(
        Duration::from_secs(60),
        "PostgreSQL to answer",
        || {
            Command::new("pg_isready")
                .args(["-q", "-h", "127.0.0.1"])
                .status()
                .ok()
                .filter(|s| s.success())
        },
        || "pg_isready fails".into(),
    );
}

/// Stops and starts a shared server; starts it again when dropped if a test stopped it and did
/// not get to restart it (a failed assertion, say).
pub struct ServerGuard {
    stop: fn(),
    start: fn(),
    stopped: bool,
}

impl ServerGuard {
    pub fn rabbitmq() -> ServerGuard {
        ServerGuard {
            stop: rabbitmq_stop,
            start: rabbitmq_start,
            stopped: false,
        }
    }

    pub fn postgres() -> ServerGuard {
        ServerGuard {
            stop: postgres_stop,
            start: postgres_start,
            stopped: false,
        }
    }

    pub fn stop(&mut self) {
        self.stopped = true;
        (self.stop)();
    }

    pub fn start(&mut self) {
        (self.start)();
        self.stopped = false;
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if self.stopped {
            (self.start)();
        }
    }
}

/// Messages waiting in a queue, per `rabbitmqctl list_queues`.
pub fn queue_depth(queue: &str) -> Option<i64> {
    let out = Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "name", "messages"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next()? == queue).then(|| parts.next()?.parse().ok())?
    })
}

/// Fault tests restart shared servers: one at a time.
pub fn one_deployment_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
