//! Tracing and Prometheus metrics.

use actix_web::{HttpResponse, web};
use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Installs the global `tracing` subscriber (once; later calls are no-ops). Logs go to
/// standard error, so that standard output carries only what a command prints for its user
/// (the banner, a report); in colour only when standard error is a terminal.
pub fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(quiet_libraries(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Libraries whose routine start-up lines ("Job creator created", "starting 2 workers",
/// PostgreSQL's "schema … already exists, skipping" notices) are not news to an operator.
const QUIET_LIBRARIES: [&str; 3] = [
    "tokio_cron_scheduler",
    "actix_server",
    "sqlx::postgres::notice",
];

/// `filter` with [`QUIET_LIBRARIES`] held to warnings, except those the filter names itself.
fn quiet_libraries(filter: &str) -> String {
    let mut out = filter.to_string();
    for lib in QUIET_LIBRARIES {
        if !filter.contains(lib) {
            out.push_str(&format!(",{lib}=warn"));
        }
    }
    out
}

/// The platform's metrics, served at `/metrics`.
pub struct Metrics {
    pub registry: Registry,
    pub http_responses: IntCounterVec,
    pub events_appended: IntCounterVec,
    pub events_published: IntCounterVec,
    pub leaves_received: IntCounter,
    pub batches_sealed: IntCounter,
    pub batches_anchored: IntCounter,
    pub chain_height: IntGauge,
    /// 1 while the AMQP connection is open, by connection (`publisher`, `consumer <queue>`).
    pub bus_connected: IntGaugeVec,
    /// Connections opened again after being lost, by connection.
    pub bus_reconnects: IntCounterVec,
    /// Events a consumer of the event store could not process and set aside, by consumer
    /// (`relay`, `projection:<read model>`).
    pub events_set_aside: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let http_responses = IntCounterVec::new(
            Opts::new(
                "veritrace_http_responses_total",
                "HTTP responses by status class",
            ),
            &["status"],
        )?;
        let events_appended = IntCounterVec::new(
            Opts::new(
                "veritrace_events_appended_total",
                "Events committed to the event store",
            ),
            &["service"],
        )?;
        let events_published = IntCounterVec::new(
            Opts::new(
                "veritrace_events_published_total",
                "Events confirmed by the bus",
            ),
            &["service"],
        )?;
        let leaves_received = IntCounter::new(
            "veritrace_anchor_leaves_received_total",
            "Event digests persisted as batch leaves (duplicates excluded)",
        )?;
        let batches_sealed =
            IntCounter::new("veritrace_anchor_batches_sealed_total", "Batches sealed")?;
        let batches_anchored = IntCounter::new(
            "veritrace_anchor_batches_anchored_total",
            "Batches whose anchor transaction is in a final block",
        )?;
        let chain_height =
            IntGauge::new("veritrace_chain_height", "Height of the last final block")?;
        let bus_connected = IntGaugeVec::new(
            Opts::new(
                "veritrace_bus_connected",
                "1 while the AMQP connection is open",
            ),
            &["connection"],
        )?;
        let bus_reconnects = IntCounterVec::new(
            Opts::new(
                "veritrace_bus_reconnects_total",
                "AMQP connections opened again after being lost",
            ),
            &["connection"],
        )?;
        let events_set_aside = IntCounterVec::new(
            Opts::new(
                "veritrace_events_set_aside_total",
                "Events a consumer could not process and set aside (listed in set_aside_events)",
            ),
            &["consumer"],
        )?;
        registry.register(Box::new(events_set_aside.clone()))?;
        registry.register(Box::new(bus_connected.clone()))?;
        registry.register(Box::new(bus_reconnects.clone()))?;
        registry.register(Box::new(http_responses.clone()))?;
        registry.register(Box::new(events_appended.clone()))?;
        registry.register(Box::new(events_published.clone()))?;
        registry.register(Box::new(leaves_received.clone()))?;
        registry.register(Box::new(batches_sealed.clone()))?;
        registry.register(Box::new(batches_anchored.clone()))?;
        registry.register(Box::new(chain_height.clone()))?;
        Ok(Metrics {
            registry,
            http_responses,
            events_appended,
            events_published,
            leaves_received,
            batches_sealed,
            batches_anchored,
            chain_height,
            bus_connected,
            bus_reconnects,
            events_set_aside,
        })
    }
}

/// `GET /metrics`, Prometheus text format.
pub async fn metrics_endpoint(metrics: web::Data<Metrics>) -> HttpResponse {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&metrics.registry.gather(), &mut buf) {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(buf),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}
