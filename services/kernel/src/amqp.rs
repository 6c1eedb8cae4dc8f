//! The distributed mode's bus: RabbitMQ through lapin (ADR 0002 §2.3).
//!
//! Topology, all names prefixed by `amqp.namespace` (`<ns>`):
//!
//! - `<ns>.events`: topic exchange, durable; every message goes there, routed by its key.
//! - `<ns>.dead-letters`: direct exchange, durable.
//! - `<ns>.<queue>`: a consumer's quorum queue, bound to `<ns>.events` with its patterns. A
//!   message rejected, or returned more than `amqp.delivery_limit` times, is dead-lettered
//!   at least once to `<ns>.dead-letters` with key `<ns>.<queue>`, hence into
//! - `<ns>.<queue>.dlq`: quorum queue bound to `<ns>.dead-letters` with key `<ns>.<queue>`.
//!
//! Declarations are idempotent and repeated on every new connection, so the order in which
//! processes (or the broker) start does not matter. Arguments are fixed in code: changing one
//! needs a new queue name, since the broker refuses a redeclaration with other arguments.
//!
//! Reconnection is ours, not lapin's auto-recovery: the publisher opens a new connection on
//! the next `publish` after a failure (the outbox relay already retries with backoff), and
//! each subscription has a supervisor task that reconnects forever. Every lapin future runs
//! under a timeout, because some can hang when the server closes the connection (lapin#409).

use crate::bus::{Bus, BusError, Delivery, Message, Settlement, Subscription};
use crate::config::AmqpConfig;
use crate::telemetry::Metrics;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{
    Acker, BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
    ExchangeKind,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::{Instant, timeout, timeout_at};

/// Opening a TCP connection and the AMQP handshake. A publish while the broker is down fails
/// after at most this long (the relay keeps the events and retries).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Any other broker round trip (declarations, qos, consume, acks).
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// Used when the URL sets none: the server's 60 s would leave a dead peer undetected long.
const DEFAULT_HEARTBEAT_SECS: u16 = 10;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// AMQP names are short strings.
const MAX_NAME_BYTES: usize = 255;

/// What the bus needs from `AmqpConfig`, validated.
struct Settings {
    uri: AMQPUri,
    namespace: String,
    prefetch: u16,
    delivery_limit: u32,
    confirm_timeout: Duration,
    reconnect_max: Duration,
}

impl Settings {
    fn events_exchange(&self) -> String {
        format!("{}.events", self.namespace)
    }

    fn dead_letter_exchange(&self) -> String {
        format!("{}.dead-letters", self.namespace)
    }

    fn queue_name(&self, queue: &str) -> String {
        format!("{}.{queue}", self.namespace)
    }

    fn dead_letter_queue_name(&self, queue: &str) -> String {
        format!("{}.{queue}.dlq", self.namespace)
    }
}

/// The publishing connection and its confirm-mode channel.
struct Link {
    connection: Connection,
    channel: Channel,
}

impl Link {
    fn usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

/// Whether each of the bus's connections is up, for `/readyz` and `/metrics`
/// (`veritrace_bus_connected`, `veritrace_bus_reconnects_total`, labelled by connection:
/// `publisher` or `consumer <queue>`).
#[derive(Default)]
struct Links {
    /// Connection name → (connected now, ever connected).
    state: std::sync::Mutex<BTreeMap<String, (bool, bool)>>,
    metrics: Option<Arc<Metrics>>,
}

const PUBLISHER: &str = "publisher";
const CONSUMER: &str = "consumer ";

fn consumer_link(queue: &str) -> String {
    format!("{CONSUMER}{queue}")
}

impl Links {
    fn up(&self, connection: &str) {
        let reconnect = self.set(connection, Some(true));
        if let Some(m) = &self.metrics {
            m.bus_connected.with_label_values(&[connection]).set(1);
            if reconnect {
                m.bus_reconnects.with_label_values(&[connection]).inc();
            }
        }
    }

    fn down(&self, connection: &str) {
        self.set(connection, Some(false));
        if let Some(m) = &self.metrics {
            m.bus_connected.with_label_values(&[connection]).set(0);
        }
    }

    /// A subscription ended: its connection no longer counts.
    fn gone(&self, connection: &str) {
        self.set(connection, None);
        if let Some(m) = &self.metrics {
            m.bus_connected.with_label_values(&[connection]).set(0);
        }
    }

    /// Records the state; returns whether `Some(true)` is a reconnection.
    fn set(&self, connection: &str, connected: Option<bool>) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        match connected {
            None => {
                state.remove(connection);
                false
            }
            Some(connected) => {
                let entry = state.entry(connection.to_string()).or_default();
                let reconnect = connected && entry.1;
                *entry = (connected, entry.1 || connected);
                reconnect
            }
        }
    }
}

/// [`Bus`] over RabbitMQ. Cheap to clone: clones share the publishing connection.
#[derive(Clone)]
pub struct AmqpBus {
    settings: Arc<Settings>,
    /// Publishes are serialised on one channel; `None` until the first publish and after any
    /// failure, so the next one reconnects.
    publisher: Arc<Mutex<Option<Link>>>,
    links: Arc<Links>,
}

impl std::fmt::Debug for AmqpBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it carries the password.
        f.debug_struct("AmqpBus")
            .field("namespace", &self.settings.namespace)
            .finish_non_exhaustive()
    }
}

/// Why a connection, channel or declaration failed.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("{0} timed out after {1:?}")]
    Timeout(&'static str, Duration),
    #[error("{0}: {1}")]
    Lapin(&'static str, lapin::Error),
}

impl LinkError {
    /// The broker refused what we asked (a queue declared elsewhere with other arguments, no
    /// permission on the vhost or a name): retrying cannot help.
    fn refused(&self) -> bool {
        let LinkError::Lapin(_, e) = self else {
            return false;
        };
        let lapin::ErrorKind::ProtocolError(amqp) = e.kind() else {
            return false;
        };
        matches!(
            amqp.kind(),
            AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED | AMQPSoftError::ACCESSREFUSED)
                | AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED)
        )
    }

    fn into_bus_error(self) -> BusError {
        if self.refused() {
            BusError::Config(self.to_string())
        } else {
            BusError::Unavailable(self.to_string())
        }
    }
}

/// Runs a lapin future under a timeout.
async fn within<T>(
    what: &'static str,
    limit: Duration,
    future: impl Future<Output = lapin::Result<T>>,
) -> Result<T, LinkError> {
    match timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(LinkError::Lapin(what, e)),
        Err(_) => Err(LinkError::Timeout(what, limit)),
    }
}

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

async fn connect(settings: &Settings, role: &str) -> Result<Connection, LinkError> {
    let name = format!("veritrace {} {role}", settings.namespace);
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    within(
        "connect",
        CONNECT_TIMEOUT,
        Connection::connect_uri(settings.uri.clone(), properties),
    )
    .await
}

async fn declare_exchanges(channel: &Channel, settings: &Settings) -> Result<(), LinkError> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    within(
        "declare the events exchange",
        RPC_TIMEOUT,
        channel.exchange_declare(
            settings.events_exchange().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        ),
    )
    .await?;
    within(
        "declare the dead-letter exchange",
        RPC_TIMEOUT,
        channel.exchange_declare(
            settings.dead_letter_exchange().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        ),
    )
    .await
}

/// Declares a consumer queue, its dead-letter queue and their bindings (after the exchanges).
async fn declare_queue(
    channel: &Channel,
    settings: &Settings,
    queue: &str,
    bindings: &[String],
) -> Result<(), LinkError> {
    declare_exchanges(channel, settings).await?;
    let name = settings.queue_name(queue);
    let dlq = settings.dead_letter_queue_name(queue);
    let dlx = settings.dead_letter_exchange();

    // The dead-letter queue first, so nothing is dead-lettered into a void.
    let mut quorum = FieldTable::default();
    quorum.insert("x-queue-type".into(), long_string("quorum"));
    within(
        "declare the dead-letter queue",
        RPC_TIMEOUT,
        channel.queue_declare(dlq.as_str().into(), durable_queue(), quorum.clone()),
    )
    .await?;
    within(
        "bind the dead-letter queue",
        RPC_TIMEOUT,
        channel.queue_bind(
            dlq.as_str().into(),
            dlx.as_str().into(),
            name.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await?;

    let mut arguments = quorum;
    arguments.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(i64::from(settings.delivery_limit)),
    );
    arguments.insert("x-dead-letter-exchange".into(), long_string(&dlx));
    arguments.insert("x-dead-letter-routing-key".into(), long_string(&name));
    // At-least-once dead-lettering needs reject-publish; with no length limit set it never
    // rejects a publish.
    arguments.insert(
        "x-dead-letter-strategy".into(),
        long_string("at-least-once"),
    );
    arguments.insert("x-overflow".into(), long_string("reject-publish"));
    within(
        "declare the queue",
        RPC_TIMEOUT,
        channel.queue_declare(name.as_str().into(), durable_queue(), arguments),
    )
    .await?;
    let events = settings.events_exchange();
    for pattern in bindings {
        within(
            "bind the queue",
            RPC_TIMEOUT,
            channel.queue_bind(
                name.as_str().into(),
                events.as_str().into(),
                pattern.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
    }
    Ok(())
}

/// ±20 % around `delay`, so consumers of a restarted broker do not reconnect in lockstep.
fn jittered(delay: Duration) -> Duration {
    let r = getrandom::u32().unwrap_or(u32::MAX / 2);
    delay.mul_f64(0.8 + 0.4 * (f64::from(r) / f64::from(u32::MAX)))
}

impl AmqpBus {
    /// Checks the configuration; does not connect (a domain service must start, and take
    /// writes into its outbox, while RabbitMQ is down). Errors only for a missing or invalid
    /// URL, `amqps://` (no TLS in this build), or unusable names and timeouts.
    pub fn new(config: &AmqpConfig) -> Result<AmqpBus, BusError> {
        let url = config
            .url
            .as_deref()
            .ok_or_else(|| BusError::Config("amqp.url is not set".into()))?;
        let mut uri: AMQPUri = url.parse().map_err(|e: String| {
            // The parser may quote the URL, password included.
            BusError::Config(format!(
                "amqp.url is not an amqp:// URL: {}",
                e.replace(url, "<amqp.url>")
            ))
        })?;
        if uri.scheme == AMQPScheme::AMQPS {
            return Err(BusError::Config(
                "amqp.url: amqps:// (TLS) is not supported by this build; use amqp://".into(),
            ));
        }
        if uri.query.heartbeat.is_none() {
            uri.query.heartbeat = Some(DEFAULT_HEARTBEAT_SECS);
        }
        let namespace = config.namespace.trim().to_string();
        if namespace.is_empty() {
            return Err(BusError::Config("amqp.namespace is empty".into()));
        }
        if config.confirm_timeout_ms == 0 {
            return Err(BusError::Config(
                "amqp.confirm_timeout_ms must be > 0".into(),
            ));
        }
        let settings = Settings {
            uri,
            namespace,
            prefetch: config.prefetch,
            delivery_limit: config.delivery_limit,
            confirm_timeout: Duration::from_millis(config.confirm_timeout_ms),
            reconnect_max: Duration::from_millis(config.reconnect_max_ms.max(100)),
        };
        if settings.dead_letter_exchange().len() > MAX_NAME_BYTES {
            return Err(BusError::Config("amqp.namespace is too long".into()));
        }
        Ok(AmqpBus {
            settings: Arc::new(settings),
            publisher: Arc::new(Mutex::new(None)),
            links: Arc::new(Links::default()),
        })
    }

    /// Reports the state of this bus's connections in `metrics`. Call before using the bus.
    pub fn observed_by(mut self, metrics: Arc<Metrics>) -> AmqpBus {
        self.links = Arc::new(Links {
            state: std::sync::Mutex::default(),
            metrics: Some(metrics),
        });
        self
    }

    /// The queues this bus consumes from whose connection is down right now (reconnecting).
    /// Empty when every subscription is connected, or when there is none.
    pub fn disconnected_consumers(&self) -> Vec<String> {
        let Ok(state) = self.links.state.lock() else {
            return vec!["(unknown: the connection registry is poisoned)".into()];
        };
        state
            .iter()
            .filter(|(_, (connected, _))| !connected)
            .filter_map(|(name, _)| name.strip_prefix(CONSUMER))
            .map(str::to_string)
            .collect()
    }

    /// The broker's name of a consumer queue: `<namespace>.<queue>`.
    pub fn queue_name(&self, queue: &str) -> String {
        self.settings.queue_name(queue)
    }

    /// Where a queue's rejected messages go: `<namespace>.<queue>.dlq`.
    pub fn dead_letter_queue_name(&self, queue: &str) -> String {
        self.settings.dead_letter_queue_name(queue)
    }

    /// `<namespace>.events`, the exchange every message is published to.
    pub fn events_exchange(&self) -> String {
        self.settings.events_exchange()
    }

    /// `<namespace>.dead-letters`.
    pub fn dead_letter_exchange(&self) -> String {
        self.settings.dead_letter_exchange()
    }

    /// Declares a consumer queue (with its dead-letter queue and bindings, as `subscribe` does)
    /// without consuming from it, so a publisher can make sure its messages are kept before
    /// the consumer first starts.
    pub async fn declare_queue(&self, queue: &str, bindings: &[&str]) -> Result<(), BusError> {
        self.check_queue(queue, bindings)?;
        let bindings: Vec<String> = bindings.iter().map(|b| b.to_string()).collect();
        let mut link = self.publisher.lock().await;
        let channel = self.publishing_channel(&mut link).await?;
        let result = declare_queue(&channel, &self.settings, queue, &bindings).await;
        if result.is_err() {
            // A refused declaration closes the channel; either way start afresh.
            *link = None;
            self.links.down(PUBLISHER);
        }
        result.map_err(LinkError::into_bus_error)
    }

    fn check_queue(&self, queue: &str, bindings: &[&str]) -> Result<(), BusError> {
        if queue.is_empty() {
            return Err(BusError::Config("empty queue name".into()));
        }
        if self.dead_letter_queue_name(queue).len() > MAX_NAME_BYTES {
            return Err(BusError::Config(format!("queue name {queue} is too long")));
        }
        if let Some(b) = bindings.iter().find(|b| b.len() > MAX_NAME_BYTES) {
            return Err(BusError::Config(format!("binding {b} is too long")));
        }
        Ok(())
    }

    /// The open publishing channel, after (re)connecting if needed.
    async fn publishing_channel(&self, link: &mut Option<Link>) -> Result<Channel, BusError> {
        if let Some(l) = link.as_ref().filter(|l| l.usable()) {
            return Ok(l.channel.clone());
        }
        *link = None;
        let opened = match self.open_publisher().await {
            Ok(opened) => opened,
            Err(e) => {
                self.links.down(PUBLISHER);
                return Err(e.into_bus_error());
            }
        };
        self.links.up(PUBLISHER);
        let channel = opened.channel.clone();
        *link = Some(opened);
        Ok(channel)
    }

    async fn open_publisher(&self) -> Result<Link, LinkError> {
        let connection = connect(&self.settings, "publisher").await?;
        let channel = within("open a channel", RPC_TIMEOUT, connection.create_channel()).await?;
        within(
            "enable publisher confirms",
            RPC_TIMEOUT,
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        declare_exchanges(&channel, &self.settings).await?;
        tracing::info!(namespace = %self.settings.namespace, "AMQP publisher connected");
        Ok(Link {
            connection,
            channel,
        })
    }

    /// Sends every message, then awaits every confirm, all within `confirm_timeout`.
    async fn publish_on(&self, channel: &Channel, messages: &[Message]) -> Result<(), BusError> {
        let limit = self.settings.confirm_timeout;
        let deadline = Instant::now() + limit;
        let exchange = self.settings.events_exchange();
        let base = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let unavailable =
            |what: &str, e: &dyn std::fmt::Display| BusError::Unavailable(format!("{what}: {e}"));
        let timed_out = || BusError::Unavailable(format!("not confirmed within {limit:?}"));

        let mut confirms = Vec::with_capacity(messages.len());
        for message in messages {
            if message.routing_key.len() > MAX_NAME_BYTES {
                return Err(BusError::NotConfirmed(format!(
                    "routing key longer than {MAX_NAME_BYTES} bytes: {}",
                    message.routing_key
                )));
            }
            if message
                .message_id
                .as_ref()
                .is_some_and(|id| id.len() > MAX_NAME_BYTES)
            {
                return Err(BusError::NotConfirmed(format!(
                    "message id longer than {MAX_NAME_BYTES} bytes"
                )));
            }
            let properties = match &message.message_id {
                Some(id) => base.clone().with_message_id(ShortString::from(id.as_str())),
                None => base.clone(),
            };
            let confirm = timeout_at(
                deadline,
                channel.basic_publish(
                    exchange.as_str().into(),
                    ShortString::from(message.routing_key.as_str()),
                    options,
                    &message.body,
                    properties,
                ),
            )
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| unavailable("publish", &e))?;
            confirms.push((&message.routing_key, confirm));
        }

        // Every confirm is awaited even after a refusal, so none is left pending on the
        // channel; the first refusal is reported.
        let mut refusal = None;
        for (routing_key, confirm) in confirms {
            let confirmation = timeout_at(deadline, confirm)
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| unavailable("publisher confirm", &e))?;
            let outcome = match confirmation {
                Confirmation::Ack(None) => continue,
                Confirmation::Ack(Some(_)) => BusError::Unroutable(routing_key.clone()),
                Confirmation::Nack(_) => BusError::NotConfirmed(format!(
                    "the broker refused the message with key {routing_key}"
                )),
                Confirmation::NotRequested => {
                    BusError::NotConfirmed("publisher confirms are not enabled".into())
                }
            };
            refusal.get_or_insert(outcome);
        }
        refusal.map_or(Ok(()), Err)
    }
}

/// A message in a dead-letter queue, as an operator sees it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DeadLetter {
    /// The routing key it was first published with (the dead-lettering replaced it).
    pub routing_key: String,
    pub message_id: Option<String>,
    /// Why the broker dead-lettered it: `rejected` (its consumer could never process it) or
    /// `delivery_limit` (returned too many times).
    pub reason: Option<String>,
    pub body_bytes: usize,
    /// The body's first 200 characters, as text.
    pub body_preview: String,
}

fn header<'a>(properties: &'a BasicProperties, key: &str) -> Option<&'a AMQPValue> {
    properties.headers().as_ref()?.inner().get(key)
}

impl DeadLetter {
    fn from_delivery(delivery: &lapin::message::Delivery) -> DeadLetter {
        let properties = &delivery.properties;
        // The `x-death` entry of the first dead-lettering lists the keys it was published with.
        let first_key = match header(properties, "x-death") {
            Some(AMQPValue::FieldArray(deaths)) => deaths.as_slice().last().and_then(|d| match d {
                AMQPValue::FieldTable(t) => match t.inner().get("routing-keys") {
                    Some(AMQPValue::FieldArray(keys)) => match keys.as_slice().first() {
                        Some(AMQPValue::LongString(k)) => Some(k.to_string()),
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            }),
            _ => None,
        };
        let reason = match header(properties, "x-first-death-reason") {
            Some(AMQPValue::LongString(r)) => Some(r.to_string()),
            _ => None,
        };
        DeadLetter {
            routing_key: first_key.unwrap_or_else(|| delivery.routing_key.to_string()),
            message_id: properties.message_id().as_ref().map(|id| id.to_string()),
            reason,
            body_bytes: delivery.data.len(),
            body_preview: String::from_utf8_lossy(&delivery.data)
                .chars()
                .take(200)
                .collect(),
        }
    }
}

/// The next message of `queue`, unacknowledged (it returns to the queue unless acked).
async fn take_one(
    channel: &Channel,
    queue: &str,
) -> Result<Option<lapin::message::BasicGetMessage>, BusError> {
    within(
        "read the dead-letter queue",
        RPC_TIMEOUT,
        channel.basic_get(queue.into(), BasicGetOptions { no_ack: false }),
    )
    .await
    .map_err(LinkError::into_bus_error)
}

impl AmqpBus {
    /// A channel on a connection of its own, for an operator's command.
    async fn operator_channel(&self) -> Result<(Connection, Channel), BusError> {
        let open = async {
            let connection = connect(&self.settings, "operator").await?;
            let channel =
                within("open a channel", RPC_TIMEOUT, connection.create_channel()).await?;
            Ok::<_, LinkError>((connection, channel))
        };
        open.await.map_err(LinkError::into_bus_error)
    }

    /// How many messages `queue`'s dead-letter queue holds.
    async fn dead_letter_count(&self, channel: &Channel, queue: &str) -> Result<u32, BusError> {
        let dlq = self.dead_letter_queue_name(queue);
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        within(
            "look up the dead-letter queue",
            RPC_TIMEOUT,
            channel.queue_declare(dlq.as_str().into(), passive, FieldTable::default()),
        )
        .await
        .map(|q| q.message_count())
        .map_err(|e| match e {
            LinkError::Lapin(_, ref err)
                if matches!(
                    err.kind(),
                    lapin::ErrorKind::ProtocolError(amqp)
                        if amqp.kind() == &AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)
                ) =>
            {
                BusError::Config(format!("there is no dead-letter queue {dlq}"))
            }
            other => other.into_bus_error(),
        })
    }

    /// How many messages `queue`'s dead-letter queue holds, and the first `limit` of them,
    /// which stay where they are.
    pub async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<(u32, Vec<DeadLetter>), BusError> {
        self.check_queue(queue, &[])?;
        let (connection, channel) = self.operator_channel().await?;
        let total = self.dead_letter_count(&channel, queue).await?;
        let dlq = self.dead_letter_queue_name(queue);
        let mut seen = Vec::new();
        while seen.len() < limit {
            let Some(message) = take_one(&channel, &dlq).await? else {
                break;
            };
            seen.push(DeadLetter::from_delivery(&message.delivery));
        }
        // Unacknowledged, they all return to the queue when the connection closes.
        let _ = timeout(RPC_TIMEOUT, connection.close(200, "OK".into())).await;
        Ok((total, seen))
    }

    /// Publishes up to `limit` messages of `queue`'s dead-letter queue again, to the events
    /// exchange with the routing key they were first published with (and their message id),
    /// for its consumers to process once the cause is fixed. Each is removed from the
    /// dead-letter queue only after the broker confirmed its new copy; a failure stops the
    /// replay and leaves the rest (and the failed one) where they were. Returns how many were
    /// replayed. Consumers are idempotent, so a replay interrupted between the confirm and the
    /// removal only repeats one message.
    pub async fn replay_dead_letters(&self, queue: &str, limit: usize) -> Result<usize, BusError> {
        self.check_queue(queue, &[])?;
        let (connection, channel) = self.operator_channel().await?;
        let result = self.replay_on(&channel, queue, limit).await;
        let _ = timeout(RPC_TIMEOUT, connection.close(200, "OK".into())).await;
        result
    }

    async fn replay_on(
        &self,
        channel: &Channel,
        queue: &str,
        limit: usize,
    ) -> Result<usize, BusError> {
        self.dead_letter_count(channel, queue).await?;
        within(
            "enable publisher confirms",
            RPC_TIMEOUT,
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await
        .map_err(LinkError::into_bus_error)?;
        let dlq = self.dead_letter_queue_name(queue);
        let mut replayed = 0;
        while replayed < limit {
            let Some(message) = take_one(channel, &dlq).await? else {
                break;
            };
            let letter = DeadLetter::from_delivery(&message.delivery);
            let again = Message {
                routing_key: letter.routing_key.clone(),
                body: message.delivery.data.clone(),
                message_id: letter.message_id.clone(),
            };
            self.publish_on(channel, std::slice::from_ref(&again))
                .await?;
            within(
                "remove the replayed message",
                RPC_TIMEOUT,
                message.delivery.acker.ack(BasicAckOptions::default()),
            )
            .await
            .map_err(LinkError::into_bus_error)?;
            replayed += 1;
        }
        Ok(replayed)
    }
}

#[async_trait::async_trait]
impl Bus for AmqpBus {
    /// Returns once the broker confirmed every message (for a quorum queue: a majority of its
    /// replicas has it). A message no queue is bound for is `Unroutable` (it is `mandatory`);
    /// no connection, a lost one, or no confirm within `confirm_timeout` is `Unavailable`, and
    /// the next call reconnects. Messages before a failure may have been delivered: the caller
    /// publishes them again, and consumers are idempotent.
    async fn publish(&self, messages: Vec<Message>) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut link = self.publisher.lock().await;
        let channel = self.publishing_channel(&mut link).await?;
        let result = self.publish_on(&channel, &messages).await;
        if let Err(BusError::Unavailable(reason)) = &result {
            tracing::warn!(%reason, "AMQP publish failed; reconnecting on the next publish");
            // Dropping the connection closes it (if it is still open at all).
            *link = None;
            self.links.down(PUBLISHER);
        }
        result
    }

    /// Declares `<namespace>.<queue>` (and its dead-letter queue) and consumes from it on a
    /// connection of its own, which a supervisor task re-opens forever, with backoff, whenever
    /// it is lost: the returned `Subscription` keeps yielding deliveries across broker
    /// restarts, until it is dropped.
    ///
    /// Returns once the first attempt finished: when the broker answered, the queue exists
    /// (a publish right after routes to it). When the broker cannot be reached it still returns
    /// `Ok` and the supervisor keeps trying; it fails only with `Config`, for names too long or
    /// a declaration the broker refused (e.g. the queue exists with other arguments).
    ///
    /// Settlement: `Ack` acks; `DeadLetter` rejects without requeue (to the dead-letter queue
    /// at once); `Retry`, or a `Delivery` dropped unsettled, nacks with requeue, which counts
    /// towards `amqp.delivery_limit`.
    async fn subscribe(&self, queue: &str, bindings: &[&str]) -> Result<Subscription, BusError> {
        self.check_queue(queue, bindings)?;
        // The broker sends at most `prefetch` unacknowledged deliveries, so this never blocks
        // for long.
        let (tx, rx) = mpsc::channel(usize::from(self.settings.prefetch.max(1)));
        let (first_tx, first_rx) = oneshot::channel();
        let supervisor = Supervisor {
            settings: self.settings.clone(),
            links: self.links.clone(),
            queue: queue.to_string(),
            bindings: bindings.iter().map(|b| b.to_string()).collect(),
            tx,
        };
        tokio::spawn(supervisor.run(first_tx));
        match first_rx.await {
            Ok(Err(e @ BusError::Config(_))) => Err(e),
            // Unreachable: the supervisor keeps trying and has logged why.
            _ => Ok(Subscription::new(rx)),
        }
    }
}

/// Owns one subscription's consumer connection.
struct Supervisor {
    settings: Arc<Settings>,
    links: Arc<Links>,
    queue: String,
    bindings: Vec<String>,
    tx: mpsc::Sender<Delivery>,
}

/// Why forwarding stopped.
enum Ended {
    /// The `Subscription` was dropped.
    Unsubscribed,
    Lost(String),
}

impl Supervisor {
    async fn run(self, first: oneshot::Sender<Result<(), BusError>>) {
        let link = consumer_link(&self.queue);
        self.supervise(first, &link).await;
        self.links.gone(&link);
    }

    async fn supervise(&self, first: oneshot::Sender<Result<(), BusError>>, link: &str) {
        let queue = self.settings.queue_name(&self.queue);
        let mut first = Some(first);
        let mut backoff = FIRST_BACKOFF;
        let mut lost = false;
        loop {
            if self.tx.is_closed() {
                return;
            }
            match self.open().await {
                Ok((connection, consumer)) => {
                    self.links.up(link);
                    if let Some(first) = first.take() {
                        let _ = first.send(Ok(()));
                    }
                    if lost {
                        tracing::info!(%queue, "AMQP consumer reconnected");
                    } else {
                        tracing::info!(%queue, "AMQP consumer connected");
                    }
                    backoff = FIRST_BACKOFF;
                    match self.forward(consumer).await {
                        Ended::Unsubscribed => {
                            // Unsettled deliveries return to the queue.
                            let _ = timeout(RPC_TIMEOUT, connection.close(200, "OK".into())).await;
                            return;
                        }
                        Ended::Lost(reason) => {
                            self.links.down(link);
                            tracing::warn!(
                                %queue,
                                %reason,
                                "AMQP consumer connection lost; reconnecting"
                            );
                            lost = true;
                        }
                    }
                }
                Err(e) => {
                    self.links.down(link);
                    let refused = e.refused();
                    let error = e.to_string();
                    if let Some(first) = first.take() {
                        let _ = first.send(Err(e.into_bus_error()));
                        if refused {
                            // `subscribe` returns the error; nothing is left to supervise.
                            return;
                        }
                    }
                    if refused {
                        tracing::error!(
                            %queue,
                            %error,
                            retry_in = ?backoff,
                            "the broker refused the queue declaration; retrying"
                        );
                    } else {
                        tracing::warn!(
                            %queue,
                            %error,
                            retry_in = ?backoff,
                            "AMQP consumer cannot connect; retrying"
                        );
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(jittered(backoff)) => {}
                _ = self.tx.closed() => return,
            }
            backoff = (backoff * 2).min(self.settings.reconnect_max);
        }
    }

    async fn open(&self) -> Result<(Connection, Consumer), LinkError> {
        let connection = connect(&self.settings, &format!("consumer {}", self.queue)).await?;
        let channel = within("open a channel", RPC_TIMEOUT, connection.create_channel()).await?;
        declare_queue(&channel, &self.settings, &self.queue, &self.bindings).await?;
        // Per consumer: quorum queues refuse global QoS.
        within(
            "set the prefetch",
            RPC_TIMEOUT,
            channel.basic_qos(self.settings.prefetch, BasicQosOptions { global: false }),
        )
        .await?;
        let consumer = within(
            "consume",
            RPC_TIMEOUT,
            channel.basic_consume(
                self.settings.queue_name(&self.queue).into(),
                // Empty: the broker names the consumer.
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
        Ok((connection, consumer))
    }

    /// Hands deliveries to the `Subscription` until the consumer or the subscription ends.
    async fn forward(&self, mut consumer: Consumer) -> Ended {
        loop {
            let next = tokio::select! {
                next = consumer.next() => next,
                _ = self.tx.closed() => return Ended::Unsubscribed,
            };
            let delivery = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(e)) => return Ended::Lost(e.to_string()),
                None => return Ended::Lost("the broker cancelled the consumer".into()),
            };
            let message_id = delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.to_string());
            let (ours, outcome) =
                Delivery::new(delivery.routing_key.to_string(), delivery.data, message_id);
            tokio::spawn(settle(delivery.acker, outcome));
            if self.tx.send(ours).await.is_err() {
                return Ended::Unsubscribed;
            }
        }
    }
}

/// Waits for the consumer's decision on one delivery and tells the broker.
async fn settle(acker: Acker, outcome: oneshot::Receiver<Settlement>) {
    let (what, result) = match outcome.await {
        Ok(Settlement::Ack) => (
            "ack",
            within("ack", RPC_TIMEOUT, acker.ack(BasicAckOptions::default())).await,
        ),
        Ok(Settlement::DeadLetter) => (
            "reject",
            within(
                "reject",
                RPC_TIMEOUT,
                acker.reject(BasicRejectOptions { requeue: false }),
            )
            .await,
        ),
        // Dropped unsettled: the consumer could not decide, so it comes back, as for Retry.
        Ok(Settlement::Retry) | Err(_) => (
            "nack",
            within(
                "nack",
                RPC_TIMEOUT,
                acker.nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                }),
            )
            .await,
        ),
    };
    match result {
        Ok(true) => {}
        // Its channel closed (or is closing): the broker returns the message to the queue and
        // delivers it again, which consumers tolerate.
        Ok(false) => tracing::debug!(what, "delivery settled after its channel closed"),
        Err(LinkError::Lapin(_, e))
            if matches!(
                e.kind(),
                lapin::ErrorKind::InvalidChannelState(..)
                    | lapin::ErrorKind::InvalidConnectionState(_)
            ) =>
        {
            tracing::debug!(what, error = %e, "delivery settled after its channel closed")
        }
        Err(e) => tracing::warn!(
            what,
            error = %e,
            "cannot settle a delivery; the broker will redeliver it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: Option<&str>) -> AmqpConfig {
        AmqpConfig {
            url: url.map(str::to_string),
            ..AmqpConfig::default()
        }
    }

    #[test]
    fn new_validates_without_connecting() {
        let bus = AmqpBus::new(&config(Some("amqp://guest:guest@127.0.0.1:1/%2f")))
            .expect("no broker needed");
        assert_eq!(bus.queue_name("anchor.events"), "veritrace.anchor.events");
        assert_eq!(
            bus.dead_letter_queue_name("anchor.events"),
            "veritrace.anchor.events.dlq"
        );
        // An IP host is kept (not replaced by the parser's `localhost` default).
        assert_eq!(bus.settings.uri.authority.host, "127.0.0.1");
        assert_eq!(bus.settings.uri.authority.port, 1);
        assert_eq!(bus.settings.uri.query.heartbeat, Some(10));

        for bad in [
            None,
            Some("amqps://h/%2f"),
            Some("http://h/"),
            Some("not a url"),
        ] {
            assert!(
                matches!(AmqpBus::new(&config(bad)), Err(BusError::Config(_))),
                "{bad:?} accepted"
            );
        }
        let err = AmqpBus::new(&config(Some("nope://u:secret@h/")))
            .expect_err("bad scheme")
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn jitter_stays_within_20_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_millis(1000));
            assert!(d >= Duration::from_millis(800) && d <= Duration::from_millis(1200));
        }
    }
}
