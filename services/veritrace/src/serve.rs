//! `veritrace serve <service>`: one service per process (distributed mode), on PostgreSQL (its
//! own schema) and RabbitMQ.

use crate::platform::{
    ChainState, Readiness, Routes, http_server, listen, read_genesis, start_chain,
};
use crate::receipt_source::AnchorOverHttp;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use veritrace_anchor::AnchorService;
use veritrace_kernel::amqp::AmqpBus;
use veritrace_kernel::auth::Identity;
use veritrace_kernel::bus::Bus;
use veritrace_kernel::config::Config;
use veritrace_kernel::db::Database;
use veritrace_kernel::domain::{Domain, DomainContext};
use veritrace_kernel::idempotency::IdempotencyKeys;
use veritrace_kernel::migrate::{self, MigrateError, Migration};
use veritrace_kernel::outbox::OutboxRelay;
use veritrace_kernel::receipts::Receipts;
use veritrace_kernel::telemetry::Metrics;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The services `veritrace serve` runs; each keeps its tables in the schema of its name.
#[derive(Clone, Copy)]
pub enum Service {
    /// Organisations and API keys (`/organisations`); other services read its keys.
    Identity,
    /// Anchoring: consumes every event, seals batches, anchors them, serves receipts and the
    /// chain explorer.
    Anchor,
    /// A registered domain (`crate::domains`), its projector and its outbox relay.
    Domain(&'static dyn Domain),
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Identity => "identity",
            Service::Anchor => "anchor",
            Service::Domain(d) => d.name(),
        }
    }

    /// Every service, the registered domains included.
    pub fn all() -> Vec<Service> {
        let mut all = vec![Service::Identity, Service::Anchor];
        all.extend(crate::domains::DOMAINS.iter().map(|d| Service::Domain(*d)));
        all
    }

    pub fn parse(name: &str) -> Option<Service> {
        Service::all().into_iter().find(|s| s.name() == name)
    }

    pub fn is_domain(self) -> bool {
        matches!(self, Service::Domain(_))
    }

    fn summary(self) -> &'static str {
        match self {
            Service::Identity => "organisations and API keys (`/organisations`)",
            Service::Anchor => {
                "anchoring: seals batches of every domain's events, anchors them, serves receipts and the chain explorer"
            }
            Service::Domain(d) => d.summary(),
        }
    }
}

impl PartialEq for Service {
    fn eq(&self, other: &Service) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Service {}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The argument of `veritrace serve`: one of [`Service::all`].
pub fn service_parser() -> impl clap::builder::TypedValueParser<Value = Service> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        Service::all()
            .into_iter()
            .map(|s| PossibleValue::new(s.name()).help(s.summary())),
    )
    .try_map(|name| Service::parse(&name).ok_or_else(|| format!("no service {name:?}")))
}

/// What `service` needs from the configuration, checked before anything starts.
pub fn check(service: Service, config: &Config) -> Result<(), String> {
    let mut missing = Vec::new();
    if config.database.url.is_none() {
        missing.push("database.url (VERITRACE_DATABASE__URL)");
    }
    if (service.is_domain() || service == Service::Anchor) && config.amqp.url.is_none() {
        missing.push("amqp.url (VERITRACE_AMQP__URL)");
    }
    if service.is_domain() && config.chain.genesis.is_none() {
        // Its hash profile decides every event digest.
        missing.push("chain.genesis (VERITRACE_CHAIN__GENESIS)");
    }
    if !missing.is_empty() {
        return Err(format!(
            "`serve {}` needs {}",
            service.name(),
            missing.join(", ")
        ));
    }
    veritrace_kernel::http::ReceiptLinks::new(config.http.receipts_url.as_deref())?;
    if service == Service::Anchor
        && !config.chain.nodes.is_empty()
        && config.chain.genesis.is_none()
    {
        return Err(
            "chain.nodes is set: chain.genesis must name the consortium's genesis file".into(),
        );
    }
    Ok(())
}

/// A running service.
pub struct Served {
    pub addr: SocketAddr,
    /// The admin API key, printed once by the identity service on its first start.
    pub new_admin_key: Option<String>,
    /// The chain id and genesis file the service anchors on or checks receipts against.
    pub chain: Option<(String, std::path::PathBuf)>,
    server: actix_web::dev::ServerHandle,
    shutdown: watch::Sender<bool>,
    /// The domain it runs, if it is a domain service.
    domains: Vec<Arc<dyn veritrace_kernel::domain::RunningDomain>>,
}

impl Served {
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.shutdown.send(true);
        crate::platform::stopped(&self.domains).await;
    }
}

/// Migrates `db`, waiting for PostgreSQL while it does not answer (services may start before
/// the database in a deployment).
async fn migrate_when_up(
    db: &Database,
    component: &str,
    migrations: &[Migration],
    shutdown: &watch::Receiver<bool>,
) -> Result<(), BoxError> {
    let mut backoff = Duration::from_millis(200);
    loop {
        match migrate::run(db, component, migrations).await {
            Ok(()) => return Ok(()),
            Err(e) if is_waitable(&e) => {
                tracing::warn!(error = %e, "database not reachable yet; retrying");
                if *shutdown.borrow() {
                    return Err(e.into());
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_waitable(e: &MigrateError) -> bool {
    e.is_transient()
}

/// Starts `service` as configured. `check` must have passed.
pub async fn start(service: Service, config: Config) -> Result<Served, BoxError> {
    check(service, &config)?;
    let listener = listen(&config)?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let metrics = Arc::new(Metrics::new()?);
    let name = service.name();
    let identity_db = Database::postgres(&config.database, "identity", name)?;
    let identity = Identity::new(&identity_db);
    let mut new_admin_key = None;
    let mut chain_of_service = None;
    let mut readiness = Readiness {
        databases: vec![identity_db.clone()],
        ..Readiness::default()
    };
    let mut routes = Routes {
        identity: identity.clone(),
        organisations: false,
        idempotency: None,
        domains: Vec::new(),
        anchor: None,
        metrics: metrics.clone(),
        readiness: Readiness::default(),
    };
    match service {
        Service::Identity => {
            migrate_when_up(&identity_db, "identity", migrate::IDENTITY, &shutdown_rx).await?;
            migrate_when_up(
                &identity_db,
                "idempotency",
                migrate::IDEMPOTENCY,
                &shutdown_rx,
            )
            .await?;
            routes.organisations = true;
            routes.idempotency = Some(IdempotencyKeys::configured(
                identity_db.clone(),
                &config.http,
            ));
        }
        Service::Domain(domain) => {
            let genesis_path = config.chain.genesis.clone().ok_or("chain.genesis")?;
            let genesis = read_genesis(&genesis_path)?;
            chain_of_service = Some((genesis.chain_id.clone(), genesis_path));
            if config.http.receipts_url.is_none() {
                tracing::warn!(
                    "http.receipts_url is not set: answers link to /receipts/… on this service, \
                     which only a gateway routing /receipts to the anchor makes work"
                );
            }
            let db = Database::postgres(&config.database, name, name)?;
            migrate_when_up(&db, "event_store", migrate::EVENT_STORE, &shutdown_rx).await?;
            migrate_when_up(&db, name, domain.migrations(), &shutdown_rx).await?;
            migrate_when_up(&db, "idempotency", migrate::IDEMPOTENCY, &shutdown_rx).await?;
            routes.idempotency = Some(IdempotencyKeys::configured(db.clone(), &config.http));
            let running = domain
                .start(DomainContext {
                    events: db.clone(),
                    read_model: db.clone(),
                    hash_alg: genesis.hash_alg,
                    metrics: metrics.clone(),
                    shutdown: shutdown_rx.clone(),
                    receipts: receipts_over_http(&config.http, &genesis),
                })
                .await?;
            let bus = AmqpBus::new(&config.amqp)?.observed_by(metrics.clone());
            // The anchor's queue exists before its first start, so nothing published while it
            // is down is unroutable.
            if let Err(e) = bus
                .declare_queue(veritrace_anchor::QUEUE, veritrace_anchor::BINDINGS)
                .await
            {
                tracing::warn!(error = %e, "cannot declare the anchor queue yet; the relay retries");
            }
            // Likewise every domain's reaction queues: an event published before the reacting
            // service first starts waits in its queue.
            for other in crate::domains::DOMAINS {
                for spec in other.reactions() {
                    if let Err(e) = bus
                        .declare_queue(&spec.queue(other.name()), spec.follows)
                        .await
                    {
                        tracing::warn!(error = %e, queue = %spec.queue(other.name()), "cannot declare a reaction queue yet");
                    }
                }
            }
            veritrace_kernel::reaction::start_domain(domain, running.clone(), &bus, &shutdown_rx)
                .await?;
            let relay = OutboxRelay {
                store: running.event_store().clone(),
                bus: Arc::new(bus) as Arc<dyn Bus>,
                batch_size: config.outbox.batch_size.max(1),
                sweep_interval: Duration::from_millis(config.outbox.sweep_interval_ms.max(10)),
                linger: Duration::from_millis(config.outbox.linger_ms),
            };
            tokio::spawn(relay.run(shutdown_rx.clone()));
            readiness.event_stores.push(running.event_store().clone());
            routes.domains.push(running);
            readiness.databases.push(db);
        }
        Service::Anchor => {
            let (genesis, genesis_path, chain) = start_chain(&config, shutdown_rx.clone())?;
            chain_of_service = Some((genesis.chain_id.clone(), genesis_path));
            let db = Database::postgres(&config.database, name, name)?;
            migrate_when_up(&db, name, veritrace_anchor::MIGRATIONS, &shutdown_rx).await?;
            let anchor =
                AnchorService::open(&db, chain.clone(), config.anchor.clone(), metrics.clone())
                    .await?;
            let bus = AmqpBus::new(&config.amqp)?.observed_by(metrics.clone());
            anchor.start(&bus, shutdown_rx.clone()).await?;
            routes.anchor = Some((anchor, ChainState::new(genesis, chain)?));
            readiness.databases.push(db);
            readiness.consumer_bus = Some(bus);
        }
    }
    if let Some(keys) = &routes.idempotency {
        tokio::spawn(keys.clone().sweep_hourly(shutdown_rx.clone()));
    }
    routes.readiness = readiness;
    let domains = routes.domains.clone();
    let (server, addr) = http_server(&config, routes, listener)?;
    if service == Service::Identity {
        // Once the server can serve: the key is then always shown.
        new_admin_key = identity.bootstrap_admin().await?;
    }
    let handle = server.handle();
    tokio::spawn(server);
    Ok(Served {
        addr,
        new_admin_key,
        chain: chain_of_service,
        server: handle,
        shutdown,
        domains,
    })
}

/// `veritrace serve`: start, print the banner tests and operators wait for, run until SIGINT
/// or SIGTERM.
pub async fn run(service: Service, config: Config) -> Result<(), BoxError> {
    veritrace_kernel::telemetry::init_tracing(&config.log);
    let db = config
        .database
        .url
        .as_deref()
        .map(veritrace_kernel::db::redact)
        .unwrap_or_default();
    let served = start(service, config).await?;
    let url = format!("http://{}", served.addr);
    println!("Veritrace {} is up (distributed mode)", service.name());
    println!("  API            {url}");
    println!("  API docs       {url}/docs/");
    println!("  metrics        {url}/metrics");
    if let Some((chain_id, genesis)) = &served.chain {
        println!("  chain          {chain_id}");
        println!("  genesis        {}", genesis.display());
    }
    match (&served.new_admin_key, service) {
        (Some(key), _) => {
            println!("  admin API key  {key}");
            println!(
                "                 (shown once: store it now; it is not kept in clear anywhere)"
            );
        }
        (None, Service::Identity) => println!(
            "  admin API key  (created on first start; `veritrace admin-key` mints another)"
        ),
        (None, _) => {}
    }
    // Last line of the banner: what tests and supervisors wait for.
    println!("  database       {db}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    stop_signal().await?;
    println!("stopping");
    served.stop().await;
    Ok(())
}

/// Resolves on SIGINT (a terminal) or SIGTERM (a supervisor): both stop a process cleanly.
pub async fn stop_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

/// A domain service's way to its events' receipts: the anchor over HTTP, where configured.
fn receipts_over_http(
    http: &veritrace_kernel::config::HttpConfig,
    genesis: &chain_core::genesis::Genesis,
) -> Option<Receipts> {
    let url = http
        .receipts_internal_url
        .as_deref()
        .or(http.receipts_url.as_deref())
        .filter(|u| !u.trim().is_empty())?;
    let key = http.receipts_api_key.clone().filter(|k| !k.is_empty());
    let source = AnchorOverHttp::new(url, key);
    Some(Receipts::new(Arc::new(source), genesis.clone()))
}
