//! Configuration: built-in defaults that work embedded, then a TOML file, then `VERITRACE_*`
//! environment variables (`VERITRACE_HTTP__BIND=0.0.0.0:8080` sets `http.bind`).

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded mode keeps its SQLite files, block store and keys.
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub chain: ChainConfig,
    pub anchor: AnchorConfig,
    pub outbox: OutboxConfig,
    /// PostgreSQL, for the distributed mode (`veritrace serve`). Unset: embedded SQLite files.
    pub database: DatabaseConfig,
    /// RabbitMQ, for the distributed mode. Unset: the in-process bus.
    pub amqp: AmqpConfig,
    /// `tracing` filter, e.g. `info` or `veritrace_anchor=debug,info`.
    pub log: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub bind: String,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Actix worker threads; 0 means one per core.
    pub workers: usize,
    /// Where receipts are served when not by this process: in distributed mode, the anchor's
    /// public URL (`https://anchor.example`), so that a domain service's answers link to
    /// `<receipts_url>/receipts/{event_id}`. Unset: relative links (`/receipts/{event_id}`).
    pub receipts_url: Option<String>,
    /// Where a domain service itself fetches its events' receipts, when `receipts_url` (the
    /// public URL) does not reach the anchor from where the service runs (compose:
    /// `http://anchor:8080`). Unset: `receipts_url`.
    pub receipts_internal_url: Option<String>,
    /// The API key a domain service reads its own events' receipts with from the anchor,
    /// to verify them itself (the provenance product page): an auditor's key. Unset: such
    /// pages say the receipts could not be checked.
    pub receipts_api_key: Option<String>,
    /// A client must send its first request's head (line and headers) within this time of
    /// connecting; otherwise it is answered 408 and disconnected. (Later requests on a kept-alive
    /// connection are bounded by the keep-alive timeout until their first byte only.)
    pub request_head_timeout_ms: u64,
    /// A client must send a request's whole body within this time of its head; otherwise it
    /// is answered 408 problem+json and disconnected.
    pub body_timeout_ms: u64,
    /// Open connections one client address may hold; the requests of further connections are
    /// answered 429 problem+json and those connections closed.
    pub max_connections_per_client: usize,
    /// How long an `Idempotency-Key` and the answer it replays are kept (at least 24).
    pub idempotency_retention_hours: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// A solo validator cuts at most one block per interval while transactions wait (none
    /// while none wait). A receipt waits for its block: at 1,000 ms, half of them waited over
    /// 0.65 s from the 201 in `veritrace bench`, at 250 ms 0.17 s. At 100 ms the last events
    /// of a burst wait at most a tenth of a second for a block, and a block (a header, the
    /// batches' anchor transactions, one attestation) costs little beside the events it anchors.
    pub block_interval_ms: u64,
    /// Chain id for a genesis created on first start; a random one when unset.
    pub chain_id: Option<String>,
    /// Hash profile of a genesis created on first start (`sha3-256`, `sha-256`, `sm3`).
    pub hash_alg: chain_core::HashAlg,
    /// Signature scheme of a genesis created on first start (`ed25519`, `sm2`).
    pub signature_alg: chain_core::genesis::SignatureAlg,
    /// Consortium validators' API URLs (`http://host:port`). Empty: the embedded solo
    /// validator. Set: anchor transactions go to the first node that answers.
    pub nodes: Vec<String>,
    /// The consortium's genesis file; required with `nodes` (it is what receipts are checked
    /// against, so it is configured, never fetched from a node).
    pub genesis: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AnchorConfig {
    /// A batch is sealed when this many leaves wait...
    pub max_batch_size: usize,
    /// ...or when the oldest waiting leaf has waited this long (0: only by size and schedule)...
    pub seal_after_ms: u64,
    /// ...or when no leaf has arrived for this long (0: never): when a burst ends, its last
    /// leaves catch the next block instead of waiting out `seal_after_ms`...
    pub seal_when_quiet_ms: u64,
    /// ...or on this schedule (whole seconds, at least 1), whichever comes first. The schedule
    /// also seals what waited through a restart.
    pub seal_interval_secs: u64,
    /// Batches not yet in a block are submitted again after this long.
    pub resubmit_after_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Most events carried by one bus message.
    pub batch_size: usize,
    /// The relay also sweeps on this schedule, in case a wake-up was missed.
    pub sweep_interval_ms: u64,
    /// After a round that caught up with the writer, the relay lets the next commits gather
    /// this long before publishing them, so that under load each round carries many events
    /// (0: publish every commit at once). A round that finds a full batch goes on at once.
    pub linger_ms: u64,
    /// Embedded mode: appends wait (up to two seconds each) while more committed events than
    /// this wait for the in-process bus, so capture cannot run ahead of anchoring by more
    /// (0: no limit). The distributed mode keeps capturing through a broker outage instead.
    pub max_backlog: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:5432/veritrace`. Each service keeps its tables in its own
    /// schema of this database.
    pub url: Option<String>,
    /// Connections of a service's write pool.
    pub max_connections: u32,
    /// Connections of a service's read-model pool.
    pub read_connections: u32,
    /// A request waiting longer than this for a connection is answered 503.
    pub acquire_timeout_ms: u64,
    /// Server-side limit on any one statement.
    pub statement_timeout_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpConfig {
    /// `amqp://user:password@host:5672/%2f?heartbeat=10`.
    pub url: Option<String>,
    /// Prefix of every exchange and queue name (`<namespace>.events`, ...).
    pub namespace: String,
    /// Unacknowledged deliveries a consumer holds at once.
    pub prefetch: u16,
    /// Deliveries of one message before it is dead-lettered (`x-delivery-limit`).
    pub delivery_limit: u32,
    /// A publish not confirmed by the broker within this long fails (and is retried).
    pub confirm_timeout_ms: u64,
    /// Cap of the reconnection backoff.
    pub reconnect_max_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            max_connections: 8,
            read_connections: 4,
            acquire_timeout_ms: 2000,
            statement_timeout_ms: 10_000,
        }
    }
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: None,
            namespace: "veritrace".into(),
            prefetch: 32,
            delivery_limit: 20,
            confirm_timeout_ms: 30_000,
            reconnect_max_ms: 5000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            http: HttpConfig::default(),
            chain: ChainConfig::default(),
            anchor: AnchorConfig::default(),
            outbox: OutboxConfig::default(),
            database: DatabaseConfig::default(),
            amqp: AmqpConfig::default(),
            log: "info".into(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            bind: "127.0.0.1:8080".into(),
            max_body_bytes: 256 * 1024,
            workers: 0,
            receipts_url: None,
            receipts_internal_url: None,
            receipts_api_key: None,
            request_head_timeout_ms: 5_000,
            body_timeout_ms: 10_000,
            max_connections_per_client: 256,
            idempotency_retention_hours: 24,
        }
    }
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            block_interval_ms: 100,
            chain_id: None,
            hash_alg: chain_core::HashAlg::Sha3_256,
            signature_alg: chain_core::genesis::SignatureAlg::Ed25519,
            nodes: Vec::new(),
            genesis: None,
        }
    }
}

impl Default for AnchorConfig {
    fn default() -> Self {
        AnchorConfig {
            max_batch_size: 20_000,
            seal_after_ms: 200,
            seal_when_quiet_ms: 60,
            seal_interval_secs: 1,
            resubmit_after_ms: 10_000,
        }
    }
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            batch_size: 1000,
            sweep_interval_ms: 1000,
            linger_ms: 5,
            max_backlog: 10_000,
        }
    }
}

/// One consortium validator's configuration (`node.toml`, written by `veritrace chain init`).
/// Relative paths are relative to the file's own directory.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The validator's name in the genesis.
    pub name: String,
    pub organisation: String,
    /// Block store and node state.
    pub data_dir: PathBuf,
    pub genesis: PathBuf,
    /// The validator's private key; it never leaves this directory.
    pub key: PathBuf,
    /// Ed25519 key of the node's peer-to-peer identity (transport authentication only).
    pub p2p_key: PathBuf,
    /// `host:port` the consensus engine listens on for peers.
    pub listen: String,
    /// The node's HTTP API (transaction submission, explorer, attestations), `host:port`.
    pub api: String,
    pub block_interval_ms: u64,
    /// The other validators.
    pub peers: Vec<PeerConfig>,
    /// Deliberate misbehaviour, for resilience tests only (honoured only by a build with the
    /// `byzantine` feature; any other build refuses to start with it set).
    #[serde(default, skip_serializing_if = "Misbehaviour::is_none")]
    pub misbehaviour: Misbehaviour,
}

/// What a misbehaving validator does.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Misbehaviour {
    /// Send, for every vote, a second conflicting one (signed: an equivocation).
    pub equivocate_votes: bool,
    /// Propose blocks whose transaction root does not match their transactions.
    pub bad_transaction_root: bool,
    /// Abort the process at this step of committing block `crash_at_height`
    /// (`before-certificate`, `after-certificate`, `after-block` or `after-cleanup`): kill
    /// tests of the commit's writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crash_in_commit: Option<String>,
    pub crash_at_height: u64,
    /// Publish proposal streams that never complete, for heights ahead, ten times a second
    /// (tests of the bounds on what a peer can make a node hold).
    pub flood_proposal_streams: bool,
}

impl Misbehaviour {
    pub fn is_none(&self) -> bool {
        *self == Misbehaviour::default()
    }
}

/// Another validator of the consortium, as a node reaches it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub name: String,
    /// Its consensus `host:port`.
    pub address: String,
    /// Its peer-to-peer identity; a connection from anyone else is refused.
    pub peer_id: String,
    /// Its API `host:port`.
    pub api: String,
}

impl NodeConfig {
    /// Reads a node file; `VERITRACE_NODE__*` variables override its keys.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        if !path.exists() {
            return Err(ConfigError(format!("{} does not exist", path.display())));
        }
        Figment::from(Toml::file(path))
            .merge(Env::prefixed("VERITRACE_NODE__"))
            .extract()
            .map_err(|e| ConfigError(e.to_string()))
    }
}

/// `VERITRACE_*` variables that are not configuration keys: the config file's path, the node
/// file's overrides, and the test suite's and bench's own settings. Any other unknown variable
/// is an error, so a mistyped key never goes unnoticed.
fn is_reserved(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "config"
        || key.starts_with("node.")
        || key.starts_with("test_")
        || key.starts_with("bench_")
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Defaults, then `file` (or `$VERITRACE_CONFIG`, or `./veritrace.toml` if present), then
    /// the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let env_file = std::env::var_os("VERITRACE_CONFIG").map(PathBuf::from);
        let file = file.map(Path::to_path_buf).or(env_file);
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError(format!("{} does not exist", path.display())));
                }
                fig = fig.merge(Toml::file(path));
            }
            None => fig = fig.merge(Toml::file("veritrace.toml")),
        }
        fig = fig.merge(
            Env::prefixed("VERITRACE_")
                .split("__")
                .filter(|key| !is_reserved(key.as_str())),
        );
        fig.extract().map_err(|e| ConfigError(e.to_string()))
    }
}

#[cfg(test)]
// figment's Jail fixes the closure's error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("v.toml", "log = \"debug\"\n[http]\nbind = \"0.0.0.0:9\"\n")?;
            jail.set_env("VERITRACE_HTTP__BIND", "127.0.0.1:7");
            jail.set_env("VERITRACE_ANCHOR__MAX_BATCH_SIZE", "5");
            let c = Config::load(Some(Path::new("v.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.log, "debug");
            assert_eq!(c.http.bind, "127.0.0.1:7");
            assert_eq!(c.anchor.max_batch_size, 5);
            assert_eq!(c.chain, ChainConfig::default());
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("VERITRACE_HTTP__BINDD", "x");
            assert!(Config::load(None).is_err());
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("VERITRACE_HTPP__BIND", "x");
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }

    /// Every configuration key the README and the deployment guide name (`http.bind`, or as
    /// `VERITRACE_HTTP__BIND`) is one `Config` has.
    #[test]
    fn the_keys_the_docs_name_exist() {
        fn keys(prefix: &str, v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
            if let serde_json::Value::Object(map) = v {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    keys(&key, v, out);
                    out.insert(key);
                }
            }
        }
        let mut known = std::collections::BTreeSet::new();
        keys(
            "",
            &serde_json::to_value(Config::default()).unwrap(),
            &mut known,
        );
        let sections = ["http", "chain", "anchor", "outbox", "database", "amqp"];
        // Names of that form that are tables or queues, not keys.
        let not_keys = [
            "anchor.events",
            "anchor.rejected_events",
            "anchor.leaves",
            "anchor.batches",
        ];
        let docs = [
            ("README.md", include_str!("../../../README.md")),
            (
                "docs/deployment.md",
                include_str!("../../../docs/deployment.md"),
            ),
        ];
        let mut named = 0;
        for (doc, text) in docs {
            for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')) {
                let word = word.trim_end_matches('.');
                let key = if let Some(var) = word.strip_prefix("VERITRACE_") {
                    let key = var.to_ascii_lowercase().replace("__", ".");
                    // Variables of other kinds (passwords, an image name), and prefixes.
                    if is_reserved(&key) || !var.contains("__") || key.ends_with('.') {
                        continue;
                    }
                    key
                } else if sections.iter().any(|s| {
                    word.strip_prefix(s)
                        .is_some_and(|rest| rest.starts_with('.') && rest.len() > 1)
                }) && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
                {
                    word.to_string()
                } else {
                    continue;
                };
                // File names of the walk-throughs (`anchor.out`) are not keys either.
                let file = [".out", ".err", ".json", ".sh", ".db", ".toml", ".log"]
                    .iter()
                    .any(|ext| key.ends_with(ext));
                if not_keys.contains(&key.as_str()) || file {
                    continue;
                }
                named += 1;
                assert!(
                    known.contains(&key),
                    "{doc} names `{key}`, which is not a configuration key"
                );
            }
        }
        assert!(
            named > 30,
            "the docs name {named} keys: is the scan still finding them?"
        );
    }

    #[test]
    fn reserved_variables_are_not_keys() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("VERITRACE_TEST_DATABASE_URL", "postgres://x");
            jail.set_env("VERITRACE_BENCH_AMQP_URL", "amqp://x");
            jail.set_env("VERITRACE_NODE__NAME", "v1");
            jail.set_env("VERITRACE_DATABASE__URL", "postgres://db/veritrace");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.database.url.as_deref(), Some("postgres://db/veritrace"));
            Ok(())
        });
    }
}
