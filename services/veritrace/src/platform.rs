//! The embedded platform: chain node, anchoring service, domain services and the HTTP API in
//! one process, with SQLite files, the block store and keys under the data directory.

use actix_web::dev::{ServerHandle, Service};
use actix_web::{App, HttpResponse, HttpServer, web};
use chain_core::ChainClient;
use chain_core::genesis::{Genesis, Validator};
use chain_core::keys;
use chain_core::solo::SoloNode;
use chain_core::store::BlockStore;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use veritrace_anchor::AnchorService;
use veritrace_anchor::envelopes::EventStoreEnvelopes;
use veritrace_kernel::amqp::AmqpBus;
use veritrace_kernel::auth::Identity;
use veritrace_kernel::bus::{Bus, InProcessBus};
use veritrace_kernel::config::Config;
use veritrace_kernel::db::Database;
use veritrace_kernel::domain::{
    Domain, DomainContext, RunningDomain, event_store_file, read_model_file,
};
use veritrace_kernel::event_store::EventStore;
use veritrace_kernel::http::{
    BodyLimit, BodyTimeout, ClientConnections, ReceiptLinks, refuse_excess_connections,
};
use veritrace_kernel::idempotency::{IdempotencyKeys, idempotent};
use veritrace_kernel::migrate;
use veritrace_kernel::outbox::OutboxRelay;
use veritrace_kernel::receipts::Receipts;
use veritrace_kernel::telemetry::{Metrics, metrics_endpoint};
use veritrace_kernel::{ApiError, resource};

pub struct Platform {
    pub addr: SocketAddr,
    /// The admin API key, only on the first start of a data directory.
    pub new_admin_key: Option<String>,
    pub genesis_path: PathBuf,
    pub genesis: Genesis,
    pub identity: Identity,
    pub anchor: Arc<AnchorService>,
    /// The registered domains, started.
    pub domains: Vec<Arc<dyn RunningDomain>>,
    pub chain: Arc<dyn ChainClient>,
    server: ServerHandle,
    shutdown: watch::Sender<bool>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Loads the node's genesis and key, creating both on the first start.
fn load_chain(config: &Config) -> Result<(Genesis, PathBuf, keys::SigningKey), BoxError> {
    let dir = config.data_dir.join("chain");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("genesis.json");
    let key_path = dir.join("validator.key");
    // An existing chain keeps its profile whatever the configuration says now.
    let existing = if path.exists() {
        Some(Genesis::parse(&std::fs::read(&path)?)?)
    } else {
        None
    };
    let alg = existing
        .as_ref()
        .map(|g| g.signature_alg)
        .unwrap_or(config.chain.signature_alg);
    let key = keys::load_or_create(&key_path, alg)?;
    let genesis = if let Some(genesis) = existing {
        genesis
    } else {
        let genesis = Genesis::create(
            config.chain.chain_id.as_deref(),
            "veritrace-local",
            config.chain.hash_alg,
            alg,
            vec![Validator {
                name: "local-validator".into(),
                organisation: "local".into(),
                public_key: key.public_key_hex(),
                power: 1,
            }],
        )?;
        genesis.write_new(&path)?;
        genesis
    };
    Ok((genesis, path, key))
}

/// The chain the anchoring service writes to: the configured consortium (`chain.nodes` and
/// `chain.genesis`), or else a solo validator in this process, under `data_dir/chain`.
pub fn start_chain(
    config: &Config,
    shutdown: watch::Receiver<bool>,
) -> Result<(Genesis, PathBuf, Arc<dyn ChainClient>), BoxError> {
    if config.chain.nodes.is_empty() {
        let (genesis, genesis_path, key) = load_chain(config)?;
        let store = BlockStore::open(&config.data_dir.join("chain").join("blocks.redb"))?;
        let solo = Arc::new(SoloNode::open(genesis.clone(), key, store)?);
        let node = solo.clone();
        let interval = Duration::from_millis(config.chain.block_interval_ms.max(1));
        tokio::spawn(async move { node.run(interval, shutdown).await });
        Ok((genesis, genesis_path, solo as Arc<dyn ChainClient>))
    } else {
        // A consortium: its genesis is configured (it is what receipts are checked against),
        // and anchor transactions go to its validators.
        let path =
            config.chain.genesis.clone().ok_or(
                "chain.nodes is set: chain.genesis must name the consortium's genesis file",
            )?;
        let genesis = read_genesis(&path)?;
        let remote = chain_node::RemoteChain::new(genesis.clone(), config.chain.nodes.clone())?;
        Ok((genesis, path, Arc::new(remote) as Arc<dyn ChainClient>))
    }
}

pub fn read_genesis(path: &Path) -> Result<Genesis, BoxError> {
    Ok(Genesis::parse(&std::fs::read(path).map_err(|e| {
        format!("cannot read the genesis {}: {e}", path.display())
    })?)?)
}

impl Platform {
    pub async fn start(config: Config) -> Result<Platform, BoxError> {
        // The port first: a start that cannot serve creates nothing, so the admin key of a
        // new data directory is never made where it cannot be shown.
        let listener = listen(&config)?;
        let data = config.data_dir.clone();
        std::fs::create_dir_all(&data)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let metrics = Arc::new(Metrics::new()?);

        let (genesis, genesis_path, chain) = start_chain(&config, shutdown_rx.clone())?;

        let identity_db = Database::open(&data.join("identity.db")).await?;
        migrate::run(&identity_db, "identity", migrate::IDENTITY).await?;
        let identity = Identity::new(&identity_db);
        let idempotency_db = Database::open(&data.join("idempotency.db")).await?;
        migrate::run(&idempotency_db, "idempotency", migrate::IDEMPOTENCY).await?;
        let idempotency = IdempotencyKeys::configured(idempotency_db, &config.http);
        tokio::spawn(idempotency.clone().sweep_hourly(shutdown_rx.clone()));

        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let anchor_db = Database::open(&data.join("anchor.db")).await?;
        // The domains' event stores keep every envelope; the anchor keeps their digests.
        let envelopes = Arc::new(EventStoreEnvelopes::new(
            crate::domains::DOMAINS.iter().map(|d| d.name().to_string()),
        ));
        let anchor = AnchorService::open_beside(
            &anchor_db,
            chain.clone(),
            config.anchor.clone(),
            metrics.clone(),
            Some(envelopes.clone()),
        )
        .await?;
        // The anchor subscribes before any relay publishes.
        anchor.start(bus.as_ref(), shutdown_rx.clone()).await?;

        let mut domains = Vec::new();
        for domain in crate::domains::DOMAINS {
            let receipts = Receipts::new(anchor.clone(), genesis.clone());
            let running =
                start_embedded_domain(*domain, &data, &genesis, receipts, &metrics, &shutdown_rx)
                    .await?;
            envelopes.attach(domain.name(), running.event_store().database().clone());
            veritrace_kernel::reaction::start_domain(
                *domain,
                running.clone(),
                bus.as_ref(),
                &shutdown_rx,
            )
            .await?;
            domains.push(running);
        }
        // Once every queue exists: the relays publish.
        for running in &domains {
            running
                .event_store()
                .limit_backlog(config.outbox.max_backlog);
            let relay = OutboxRelay {
                store: running.event_store().clone(),
                bus: bus.clone(),
                batch_size: config.outbox.batch_size.max(1),
                sweep_interval: Duration::from_millis(config.outbox.sweep_interval_ms.max(10)),
                linger: Duration::from_millis(config.outbox.linger_ms),
            };
            tokio::spawn(relay.run(shutdown_rx.clone()));
        }

        let state = ChainState::new(genesis.clone(), chain.clone())?;
        let (server, addr) = http_server(
            &config,
            Routes {
                identity: identity.clone(),
                organisations: true,
                idempotency: Some(idempotency),
                domains: domains.clone(),
                anchor: Some((anchor.clone(), state)),
                metrics: metrics.clone(),
                readiness: Readiness {
                    event_stores: domains.iter().map(|d| d.event_store().clone()).collect(),
                    ..Readiness::default()
                },
            },
            listener,
        )?;
        // Last, once everything else has started: the key is then always shown.
        let new_admin_key = identity.bootstrap_admin().await?;
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Platform {
            addr,
            new_admin_key,
            genesis_path,
            genesis,
            identity,
            anchor,
            domains,
            chain,
            server: handle,
            shutdown,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, lets in-flight ones finish, then stops the background tasks.
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.shutdown.send(true);
        stopped(&self.domains).await;
    }
}

/// Waits, up to a bound, for each domain's own background work to stop after the shutdown.
pub async fn stopped(domains: &[Arc<dyn RunningDomain>]) {
    let all = futures_util::future::join_all(domains.iter().map(|d| d.stopped()));
    if tokio::time::timeout(Duration::from_secs(15), all)
        .await
        .is_err()
    {
        tracing::warn!("a domain's background work did not stop within 15 s; exiting anyway");
    }
}

/// Starts `domain` on its SQLite files under `data`.
async fn start_embedded_domain(
    domain: &'static dyn Domain,
    data: &Path,
    genesis: &Genesis,
    receipts: Receipts,
    metrics: &Arc<Metrics>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Arc<dyn RunningDomain>, BoxError> {
    let name = domain.name();
    let events = Database::open(&event_store_file(data, name)).await?;
    let read_model = Database::open(&read_model_file(data, name)).await?;
    migrate::run(&events, "event_store", migrate::EVENT_STORE).await?;
    migrate::run(&read_model, name, domain.migrations()).await?;
    domain
        .start(DomainContext {
            events,
            read_model,
            hash_alg: genesis.hash_alg,
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            receipts: Some(receipts),
        })
        .await
}

/// What the chain pages (`/`, `/chain/genesis`, the explorer) read.
#[derive(Clone)]
pub struct ChainState {
    genesis: Genesis,
    chain: Arc<dyn ChainClient>,
    templates: Arc<tera::Tera>,
}

impl ChainState {
    pub fn new(genesis: Genesis, chain: Arc<dyn ChainClient>) -> Result<Self, BoxError> {
        Ok(ChainState {
            genesis,
            chain,
            templates: Arc::new(templates()?),
        })
    }
}

/// The routes one process serves: all of them embedded, one service's in distributed mode.
/// API-key checks always need `identity`.
pub struct Routes {
    pub identity: Identity,
    /// `/organisations` (the identity service's own routes).
    pub organisations: bool,
    /// Where the `Idempotency-Key`s of this process's POSTs are kept (none: it has no POSTs).
    pub idempotency: Option<IdempotencyKeys>,
    /// The domains this process runs.
    pub domains: Vec<Arc<dyn RunningDomain>>,
    /// Receipts, the explorer, the chain pages.
    pub anchor: Option<(Arc<AnchorService>, ChainState)>,
    pub metrics: Arc<Metrics>,
    /// What `/readyz` checks (distributed mode; embedded files are always there).
    pub readiness: Readiness,
}

/// What a process needs to do its work: `/readyz` is 503 while any of it is unreachable.
#[derive(Default)]
pub struct Readiness {
    pub databases: Vec<Database>,
    /// Event stores whose events set aside `/readyz` reports (still ready: everything behind
    /// them flows on, but an operator should look).
    pub event_stores: Vec<EventStore>,
    /// The bus the process consumes from (the anchor's). A domain service's bus is not listed:
    /// it takes writes into its outbox while the broker is down.
    pub consumer_bus: Option<AmqpBus>,
}

fn templates() -> Result<tera::Tera, tera::Error> {
    let mut t = tera::Tera::default();
    t.add_raw_template(
        "index.html",
        include_str!("../../../frontend/templates/index.html"),
    )?;
    Ok(t)
}

async fn index(state: web::Data<ChainState>) -> Result<HttpResponse, ApiError> {
    let mut ctx = tera::Context::new();
    ctx.insert("chain_id", &state.genesis.chain_id);
    ctx.insert("hash_alg", state.genesis.hash_alg.name());
    ctx.insert("validators", &state.genesis.validator_set.validators.len());
    ctx.insert("height", &state.chain.head().await.unwrap_or(0));
    let html = state
        .templates
        .render("index.html", &ctx)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

async fn genesis_document(state: web::Data<ChainState>) -> HttpResponse {
    HttpResponse::Ok().json(&state.genesis)
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// 200 once every database of the process answers and its consumers are connected, 503
/// problem+json saying which is not until then.
async fn ready(readiness: web::Data<Readiness>) -> Result<HttpResponse, ApiError> {
    if let Some(bus) = &readiness.consumer_bus {
        let down = bus.disconnected_consumers();
        if !down.is_empty() {
            return Err(ApiError::Unavailable(format!(
                "bus: not connected to consume from {}",
                down.join(", ")
            )));
        }
    }
    for db in readiness.databases.iter() {
        veritrace_kernel::on_pool!(db, reader, |pool| {
            sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
        })
        .map_err(|e| ApiError::unavailable("a database", e))?;
    }
    let mut set_aside = serde_json::Map::new();
    for store in readiness.event_stores.iter() {
        let counts = store
            .set_aside_counts()
            .await
            .map_err(|e| ApiError::unavailable("an event store", e))?;
        for (consumer, n) in counts {
            set_aside.insert(consumer, n.into());
        }
    }
    if set_aside.is_empty() {
        return Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "ready",
        "set_aside_events": set_aside,
        "attention": "events that could not be processed were set aside (table set_aside_events, \
                      logged at error level); every other event flows on",
    })))
}

/// Listens on `http.bind`, saying where when it cannot.
pub fn listen(config: &Config) -> Result<std::net::TcpListener, BoxError> {
    std::net::TcpListener::bind(&config.http.bind).map_err(|e| {
        format!(
            "cannot listen on {} (http.bind): {e}; stop what holds that address, or choose another with --bind",
            config.http.bind
        )
        .into()
    })
}

/// The HTTP server of `routes` on `listener` (from [`listen`]), not yet running.
pub fn http_server(
    config: &Config,
    routes: Routes,
    listener: std::net::TcpListener,
) -> Result<(actix_web::dev::Server, SocketAddr), BoxError> {
    let limit = BodyLimit(config.http.max_body_bytes);
    let body_timeout = BodyTimeout(Duration::from_millis(config.http.body_timeout_ms.max(1)));
    let connections = ClientConnections::new(config.http.max_connections_per_client);
    let receipt_links = ReceiptLinks::new(config.http.receipts_url.as_deref())?;
    let identity = web::Data::new(routes.identity);
    let organisations = routes.organisations;
    let idempotency = routes.idempotency.map(web::Data::new);
    let domains = routes.domains;
    let anchor = routes.anchor.map(|(anchor, state)| {
        let explorer = web::Data::new(crate::explorer::Explorer {
            chain: state.chain.clone(),
            anchor: Some(anchor.clone()),
        });
        (web::Data::from(anchor), web::Data::new(state), explorer)
    });
    let explorer_templates = web::Data::new(crate::explorer::pages::ExplorerTemplates(
        crate::explorer::pages::templates()?,
    ));
    let metrics = routes.metrics;
    let metrics_data = web::Data::from(metrics.clone());
    let readiness = web::Data::new(routes.readiness);
    let mut server = HttpServer::new(move || {
        let metrics = metrics.clone();
        let (domains, anchor) = (domains.clone(), anchor.clone());
        let mut app = App::new();
        if let Some(keys) = idempotency.clone() {
            app = app.app_data(keys);
        }
        app.app_data(limit)
            .app_data(body_timeout)
            .app_data(receipt_links.clone())
            .app_data(identity.clone())
            .app_data(metrics_data.clone())
            .app_data(readiness.clone())
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|err, _| ApiError::field("query", err.to_string()).into()),
            )
            .app_data(
                web::PathConfig::default()
                    .error_handler(|err, _| ApiError::field("path", err.to_string()).into()),
            )
            .wrap(actix_web::middleware::from_fn(idempotent))
            .wrap_fn(refuse_excess_connections)
            .wrap_fn(move |req, srv| {
                let metrics = metrics.clone();
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    let class = format!("{}xx", res.status().as_u16() / 100);
                    metrics
                        .http_responses
                        .with_label_values(&[class.as_str()])
                        .inc();
                    Ok(res)
                }
            })
            .wrap(tracing_actix_web::TracingLogger::default())
            .configure(|cfg| {
                if organisations {
                    veritrace_kernel::auth::configure(cfg);
                }
                for domain in domains {
                    domain.configure(cfg);
                }
                if let Some((anchor, state, explorer)) = anchor {
                    cfg.app_data(anchor)
                        .app_data(state)
                        .app_data(explorer)
                        .app_data(explorer_templates.clone())
                        .service(resource!("/", get => index))
                        .service(resource!("/chain/genesis", get => genesis_document));
                    veritrace_anchor::http::configure(cfg);
                    crate::explorer::configure(cfg);
                    crate::explorer::pages::configure(cfg);
                }
            })
            .configure(crate::openapi::configure)
            .service(resource!("/healthz", get => health))
            .service(resource!("/readyz", get => ready))
            .service(resource!("/metrics", get => metrics_endpoint))
            .default_service(web::to(veritrace_kernel::http::not_found))
    })
    .on_connect(move |conn, data| connections.on_connect(conn, data))
    .client_request_timeout(Duration::from_millis(
        config.http.request_head_timeout_ms.max(1),
    ))
    .disable_signals()
    .shutdown_timeout(10);
    if config.http.workers > 0 {
        server = server.workers(config.http.workers);
    }
    let server = server.listen(listener)?;
    let addr = *server
        .addrs()
        .first()
        .ok_or("the HTTP server bound no address")?;
    Ok((server.run(), addr))
}

/// Path of the data directory's genesis document.
pub fn genesis_path(data_dir: &Path) -> PathBuf {
    data_dir.join("chain").join("genesis.json")
}
