//! `AmqpBus` against a real RabbitMQ (`VERITRACE_TEST_AMQP_URL`, default the local broker that
//! `scripts/services start` runs). An unreachable broker fails these tests, naming
//! `scripts/test`; `VERITRACE_TEST_BACKENDS=sqlite` skips them, saying so.
//!
//! Each test works in a namespace of its own (`vt-test-<uuid>`) and deletes its exchanges and
//! queues at the end. The reconnection test stops the broker's application, so it takes the
//! broker lock exclusively; the others share it.

use lapin::options::{
    BasicGetOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;
use veritrace_kernel::amqp::AmqpBus;
use veritrace_kernel::bus::{Bus, BusError, Delivery, Message, Settlement, Subscription};
use veritrace_kernel::config::AmqpConfig;
use veritrace_kernel::telemetry::Metrics;

/// Shared by tests that need the broker up; taken exclusively by the one that restarts it.
static BROKER: RwLock<()> = RwLock::const_new(());

const DEADLINE: Duration = Duration::from_secs(30);
const DELIVERY_LIMIT: u32 = 3;

fn amqp_url() -> String {
    std::env::var("VERITRACE_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The URL without its credentials, for messages.
fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// A connection of the test's own, to inspect and clean up what the bus declared.
struct Broker {
    url: String,
    connection: Connection,
}

impl Broker {
    async fn channel(&self) -> Channel {
        self.connection
            .create_channel()
            .await
            .expect("open an inspection channel")
    }

    /// Ready messages in a queue (not those delivered and unacknowledged).
    async fn ready(&self, queue: &str) -> u32 {
        let channel = self.channel().await;
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("the queue exists");
        let _ = channel.close(200, "OK".into()).await;
        declared.message_count()
    }

    /// Takes one message off a queue, if there is one.
    async fn get(&self, queue: &str) -> Option<lapin::message::BasicGetMessage> {
        let channel = self.channel().await;
        let message = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get");
        let _ = channel.close(200, "OK".into()).await;
        message
    }
}

/// Connects to the test broker; `None` (after saying so) when the run is SQLite-only.
async fn broker(test: &str) -> Option<Broker> {
    // The bus's reconnection logs, shown for failed tests (`RUST_LOG` to change the level).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "veritrace_kernel=info".into()),
        )
        .with_test_writer()
        .try_init();
    if std::env::var("VERITRACE_TEST_BACKENDS").as_deref() == Ok("sqlite") {
        println!("SKIPPED {test}: it needs RabbitMQ, and VERITRACE_TEST_BACKENDS=sqlite");
        return None;
    }
    let url = amqp_url();
    let connected = tokio::time::timeout(
        Duration::from_secs(10),
        Connection::connect(&url, ConnectionProperties::default()),
    )
    .await;
    match connected {
        Ok(Ok(connection)) => Some(Broker { url, connection }),
        Ok(Err(e)) => unreachable_broker(&url, &e.to_string()),
        Err(_) => unreachable_broker(&url, "no answer within 10 s"),
    }
}

fn unreachable_broker(url: &str, why: &str) -> ! {
    panic!(
        "RabbitMQ is not reachable at {} ({why}). Run the tests through scripts/test, which \
         installs and starts it (scripts/services start), point VERITRACE_TEST_AMQP_URL at a \
         broker, or set VERITRACE_TEST_BACKENDS=sqlite to skip the RabbitMQ tests.",
        shown(url)
    )
}

fn config(url: &str, namespace: &str) -> AmqpConfig {
    AmqpConfig {
        url: Some(url.to_string()),
        namespace: namespace.to_string(),
        prefetch: 8,
        delivery_limit: DELIVERY_LIMIT,
        confirm_timeout_ms: 5000,
        reconnect_max_ms: 1000,
    }
}

/// A bus in a fresh namespace, whose exchanges and queues are deleted when it is dropped
/// (also after a failed assertion).
struct TestBus {
    bus: AmqpBus,
    metrics: Arc<Metrics>,
    namespace: String,
    url: String,
    queues: Vec<String>,
}

impl TestBus {
    fn new(broker: &Broker, queues: &[&str]) -> TestBus {
        let namespace = format!("vt-test-{}", uuid::Uuid::now_v7().simple());
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let bus = AmqpBus::new(&config(&broker.url, &namespace))
            .expect("valid configuration")
            .observed_by(metrics.clone());
        TestBus {
            metrics,
            namespace,
            url: broker.url.clone(),
            queues: queues
                .iter()
                .flat_map(|q| [bus.queue_name(q), bus.dead_letter_queue_name(q)])
                .collect(),
            bus,
        }
    }
}

impl TestBus {
    /// Publishes one message and expects the broker's confirm.
    async fn send(&self, routing_key: &str, body: &str) {
        self.bus
            .publish(vec![message(routing_key, body)])
            .await
            .expect("confirmed");
    }

    /// `veritrace_bus_connected` of one connection.
    fn connected(&self, connection: &str) -> i64 {
        self.metrics
            .bus_connected
            .with_label_values(&[connection])
            .get()
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let url = self.url.clone();
        let queues = std::mem::take(&mut self.queues);
        let exchanges = [self.bus.events_exchange(), self.bus.dead_letter_exchange()];
        // Drop cannot await: a thread of its own with a small runtime does the deleting.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the cleanup");
            runtime.block_on(async move {
                let work = async {
                    let connection =
                        Connection::connect(&url, ConnectionProperties::default()).await?;
                    // Best effort, each on a fresh channel: an error closes the channel.
                    for queue in queues {
                        let channel = connection.create_channel().await?;
                        let _ = channel
                            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                            .await;
                    }
                    for exchange in exchanges {
                        let channel = connection.create_channel().await?;
                        let _ = channel
                            .exchange_delete(
                                exchange.as_str().into(),
                                ExchangeDeleteOptions::default(),
                            )
                            .await;
                    }
                    connection.close(200, "OK".into()).await
                };
                if let Err(e) = tokio::time::timeout(Duration::from_secs(20), work).await {
                    eprintln!("cleanup did not finish: {e}");
                }
            });
        });
        let _ = cleanup.join();
    }
}

fn message(routing_key: &str, body: &str) -> Message {
    Message::new(routing_key, body.as_bytes())
}

async fn next(subscription: &mut Subscription) -> Delivery {
    tokio::time::timeout(DEADLINE, subscription.next())
        .await
        .expect("a delivery within the deadline")
        .expect("the subscription is open")
}

/// Polls `probe` every 50 ms until it yields a value; fails after `deadline`.
async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A message header, for the report: strings as text.
fn header(properties: &lapin::BasicProperties, key: &str) -> String {
    match properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(key))
    {
        Some(AMQPValue::LongString(s)) => s.to_string(),
        Some(other) => format!("{other:?}"),
        None => "(none)".into(),
    }
}

#[tokio::test]
async fn publish_returns_after_the_confirm_and_the_consumer_gets_the_message() {
    let _shared = BROKER.read().await;
    let Some(broker) = broker("publish_returns_after_the_confirm").await else {
        return;
    };
    let t = TestBus::new(&broker, &["q"]);
    t.bus.declare_queue("q", &["t.*"]).await.expect("declare");

    let mut first = message("t.first", r#"{"n":1}"#);
    first.message_id = Some("test:1-1".into());
    t.bus.publish(vec![first]).await.expect("confirmed");
    // Confirmed means enqueued: no waiting needed before the queue shows it.
    assert_eq!(broker.ready(&t.bus.queue_name("q")).await, 1);

    let mut subscription = t.bus.subscribe("q", &["t.*"]).await.expect("subscribe");
    let d = next(&mut subscription).await;
    assert_eq!(d.routing_key, "t.first");
    assert_eq!(d.body, br#"{"n":1}"#);
    assert_eq!(d.message_id.as_deref(), Some("test:1-1"));
    // Dropped unsettled: it comes back.
    drop(d);
    let d = next(&mut subscription).await;
    assert_eq!(d.body, br#"{"n":1}"#);
    d.settle(Settlement::Ack);

    t.bus
        .publish(vec![
            message("t.second", r#"{"n":2}"#),
            message("t.third", r#"{"n":3}"#),
        ])
        .await
        .expect("confirmed");
    for (key, body) in [("t.second", r#"{"n":2}"#), ("t.third", r#"{"n":3}"#)] {
        let d = next(&mut subscription).await;
        assert_eq!(
            (d.routing_key.as_str(), d.body.as_slice()),
            (key, body.as_bytes())
        );
        d.settle(Settlement::Ack);
    }
    drop(subscription);
}

#[tokio::test]
async fn a_message_no_queue_is_bound_for_is_unroutable() {
    let _shared = BROKER.read().await;
    let Some(broker) = broker("a_message_no_queue_is_bound_for_is_unroutable").await else {
        return;
    };
    let t = TestBus::new(&broker, &["q"]);
    // No queue at all yet: the exchange exists (the publisher declares it) but routes nowhere.
    let result = t.bus.publish(vec![message("t.a", "{}")]).await;
    assert!(
        matches!(&result, Err(BusError::Unroutable(k)) if k == "t.a"),
        "{result:?}"
    );

    t.bus.declare_queue("q", &["t.*"]).await.expect("declare");
    let result = t
        .bus
        .publish(vec![message("t.a", "{}"), message("other.b", "{}")])
        .await;
    assert!(
        matches!(&result, Err(BusError::Unroutable(k)) if k == "other.b"),
        "{result:?}"
    );
    // The channel survives a returned message.
    t.bus
        .publish(vec![message("t.c", "{}")])
        .await
        .expect("routable");
    assert_eq!(broker.ready(&t.bus.queue_name("q")).await, 2);
}

#[tokio::test]
async fn subscribing_to_a_queue_declared_with_other_arguments_is_a_configuration_error() {
    let _shared = BROKER.read().await;
    let Some(broker) = broker("subscribing_with_other_arguments").await else {
        return;
    };
    let t = TestBus::new(&broker, &["q"]);
    t.bus.declare_queue("q", &["t.*"]).await.expect("declare");
    let other = AmqpBus::new(&AmqpConfig {
        delivery_limit: DELIVERY_LIMIT + 1,
        ..config(&broker.url, &t.namespace)
    })
    .expect("valid configuration");
    let result = other.subscribe("q", &["t.*"]).await;
    assert!(
        matches!(&result, Err(BusError::Config(_))),
        "{:?}",
        result.as_ref().map(|_| "subscribed")
    );
    // The refused declaration left the first bus's publisher alone.
    t.send("t.a", "{}").await;
}

#[tokio::test]
async fn a_dead_lettered_delivery_goes_to_the_dlq_at_once() {
    let _shared = BROKER.read().await;
    let Some(broker) = broker("a_dead_lettered_delivery_goes_to_the_dlq_at_once").await else {
        return;
    };
    let t = TestBus::new(&broker, &["q"]);
    let mut subscription = t.bus.subscribe("q", &["t.#"]).await.expect("subscribe");
    t.send("t.poison", "not an event batch").await;
    let d = next(&mut subscription).await;
    assert_eq!(d.body, b"not an event batch");
    d.settle(Settlement::DeadLetter);

    let dlq = t.bus.dead_letter_queue_name("q");
    let dead = wait_for("the message in the DLQ", DEADLINE, || broker.get(&dlq)).await;
    assert_eq!(dead.delivery.data, b"not an event batch");
    assert_eq!(dead.delivery.routing_key.as_str(), t.bus.queue_name("q"));
    println!(
        "dead-lettered: x-first-death-reason={}",
        header(&dead.delivery.properties, "x-first-death-reason")
    );

    // Not redelivered: the next delivery is the marker published after it.
    t.send("t.marker", "marker").await;
    let d = next(&mut subscription).await;
    assert_eq!(d.body, b"marker");
    d.settle(Settlement::Ack);
    assert!(broker.get(&dlq).await.is_none(), "dead-lettered once only");
}

#[tokio::test]
async fn dead_letters_are_listed_in_place_and_replayed_with_their_first_routing_key() {
    let _shared = BROKER.read().await;
    let Some(broker) = broker("dead_letters_are_listed_and_replayed").await else {
        return;
    };
    let t = TestBus::new(&broker, &["q"]);
    let mut subscription = t.bus.subscribe("q", &["t.#"]).await.expect("subscribe");
    let mut poison = message("t.poison", "not yet processable");
    poison.message_id = Some("test:7-9".into());
    t.bus.publish(vec![poison]).await.expect("confirmed");
    next(&mut subscription).await.settle(Settlement::DeadLetter);

    let (total, letters) = wait_for("the message in the DLQ", DEADLINE, || async {
        let listed = t.bus.dead_letters("q", 10).await.expect("list");
        (listed.0 == 1 && listed.1.len() == 1).then_some(listed)
    })
    .await;
    assert_eq!(total, 1);
    let letter = &letters[0];
    assert_eq!(
        letter.routing_key, "t.poison",
        "the first key, not the DLX's"
    );
    assert_eq!(letter.message_id.as_deref(), Some("test:7-9"));
    assert_eq!(letter.reason.as_deref(), Some("rejected"));
    assert_eq!(
        (letter.body_bytes, letter.body_preview.as_str()),
        (19, "not yet processable")
    );
    // Listing leaves it in place.
    let (again, _) = t.bus.dead_letters("q", 10).await.expect("list again");
    assert_eq!(again, 1);

    assert_eq!(t.bus.replay_dead_letters("q", 10).await.expect("replay"), 1);
    let d = next(&mut subscription).await;
    assert_eq!(
        (
            d.routing_key.as_str(),
            d.body.as_slice(),
            d.message_id.as_deref()
        ),
        ("t.poison", &b"not yet processable"[..], Some("test:7-9"))
    );
    d.settle(Settlement::Ack);
    wait_for("an empty DLQ", DEADLINE, || async {
        (t.bus.dead_letters("q", 1).await.expect("list").0 == 0).then_some(())
    })
    .await;
    assert_eq!(t.bus.replay_dead_letters("q", 10).await.expect("replay"), 0);

    // A queue that was never declared has no dead-letter queue: said so, not an empty list.
    assert!(matches!(
        t.bus.dead_letters("never-declared", 1).await,
        Err(BusError::Config(e)) if e.contains("no dead-letter queue")
    ));
}

#[derive(Default)]
struct Seen {
    poison: u32,
    good: HashMap<Vec<u8>, u32>,
}

#[tokio::test]
async fn a_message_retried_past_the_delivery_limit_is_dead_lettered_while_others_flow() {
    let _shared = BROKER.read().await;
    let Some(broker) = broker("a_message_retried_past_the_delivery_limit").await else {
        return;
    };
    let t = TestBus::new(&broker, &["q"]);
    let mut subscription = t.bus.subscribe("q", &["t.#"]).await.expect("subscribe");

    let good: Vec<String> = (0..20).map(|i| format!("good-{i}")).collect();
    let mut messages: Vec<Message> = good[..10].iter().map(|b| message("t.good", b)).collect();
    messages.push(message("t.poison", "poison"));
    messages.extend(good[10..].iter().map(|b| message("t.good", b)));
    t.bus.publish(messages).await.expect("confirmed");

    let seen = Arc::new(Mutex::new(Seen::default()));
    let consumer = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(d) = subscription.next().await {
                let mut s = seen.lock().expect("not poisoned");
                if d.body == b"poison" {
                    s.poison += 1;
                    d.settle(Settlement::Retry);
                } else {
                    *s.good.entry(d.body.clone()).or_default() += 1;
                    d.settle(Settlement::Ack);
                }
            }
        })
    };

    let dlq = t.bus.dead_letter_queue_name("q");
    let dead = wait_for("the retried message in the DLQ", DEADLINE, || {
        broker.get(&dlq)
    })
    .await;
    assert_eq!(dead.delivery.data, b"poison");
    println!(
        "dead-lettered after retries: x-delivery-count={} x-first-death-reason={}",
        header(&dead.delivery.properties, "x-delivery-count"),
        header(&dead.delivery.properties, "x-first-death-reason"),
    );
    wait_for("every good message", DEADLINE, || {
        let all = seen.lock().expect("not poisoned").good.len() == good.len();
        async move { all.then_some(()) }
    })
    .await;
    consumer.abort();
    let s = std::mem::take(&mut *seen.lock().expect("not poisoned"));
    println!(
        "delivery_limit={DELIVERY_LIMIT}: the retried message was delivered {} times",
        s.poison
    );
    // The first delivery, then one per return (nack with requeue) up to the limit.
    assert_eq!(
        s.poison,
        DELIVERY_LIMIT + 1,
        "deliveries of the retried message, limit {DELIVERY_LIMIT}"
    );
    assert!(s.good.values().all(|&n| n == 1), "{:?}", s.good);
    assert_eq!(broker.ready(&t.bus.queue_name("q")).await, 0);
}

/// Restarts the broker application if it is dropped while stopped (a failed assertion).
struct StoppedBroker {
    stopped: bool,
}

fn rabbitmqctl(command: &str) {
    let status = std::process::Command::new("rabbitmqctl")
        .args(["-q", command])
        .status()
        .unwrap_or_else(|e| panic!("run rabbitmqctl {command}: {e}"));
    assert!(status.success(), "rabbitmqctl {command}: {status}");
}

impl StoppedBroker {
    async fn stop() -> StoppedBroker {
        tokio::task::spawn_blocking(|| rabbitmqctl("stop_app"))
            .await
            .expect("stop_app");
        StoppedBroker { stopped: true }
    }

    async fn start(mut self) {
        self.stopped = false;
        tokio::task::spawn_blocking(|| rabbitmqctl("start_app"))
            .await
            .expect("start_app");
    }
}

impl Drop for StoppedBroker {
    fn drop(&mut self) {
        if self.stopped {
            rabbitmqctl("start_app");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_survives_a_broker_restart() {
    let _exclusive = BROKER.write().await;
    let Some(broker) = broker("the_subscription_survives_a_broker_restart").await else {
        return;
    };
    let t = TestBus::new(&broker, &["q"]);
    let mut subscription = t.bus.subscribe("q", &["t.#"]).await.expect("subscribe");
    t.send("t.before", "before").await;
    let d = next(&mut subscription).await;
    assert_eq!(d.body, b"before");
    d.settle(Settlement::Ack);
    drop(broker);

    assert!(t.bus.disconnected_consumers().is_empty());
    assert_eq!(t.connected("consumer q"), 1);
    assert_eq!(t.connected("publisher"), 1);

    let stopped = StoppedBroker::stop().await;
    // The consumer's loss is noticed and reported (`/readyz` of the anchor reads this).
    wait_for("the consumer reported down", DEADLINE, || async {
        (t.bus.disconnected_consumers() == ["q"]).then_some(())
    })
    .await;
    assert_eq!(t.connected("consumer q"), 0);
    // Down: publishing fails promptly (no hang), and says the bus is unavailable.
    let started = Instant::now();
    let result = t.bus.publish(vec![message("t.down", "down")]).await;
    assert!(
        matches!(result, Err(BusError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    println!(
        "publish while stopped: {result:?} after {:?}",
        started.elapsed()
    );
    stopped.start().await;

    // The publisher reconnects on a later call; until the queue is back it may still fail.
    let mut failures = Vec::new();
    let restarted = Instant::now();
    while let Err(e) = t.bus.publish(vec![message("t.after", "after")]).await {
        failures.push(e.to_string());
        assert!(
            restarted.elapsed() < Duration::from_secs(90),
            "no confirmed publish after the restart: {failures:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("publish failures while the broker came back: {failures:?}");

    // The same subscription, its supervisor having reconnected, delivers it.
    let d = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let d = subscription.next().await.expect("the subscription is open");
            if d.body == b"after" {
                return d;
            }
            // A copy of "before" the broker had not yet seen acknowledged comes again.
            d.settle(Settlement::Ack);
        }
    })
    .await
    .expect("the message published after the restart arrives");
    assert_eq!(d.routing_key, "t.after");
    d.settle(Settlement::Ack);
    assert!(t.bus.disconnected_consumers().is_empty());
    for connection in ["consumer q", "publisher"] {
        assert_eq!(t.connected(connection), 1, "{connection}");
        let reconnects = t
            .metrics
            .bus_reconnects
            .with_label_values(&[connection])
            .get();
        assert!(reconnects >= 1, "{connection}: {reconnects} reconnects");
    }
}

#[tokio::test]
async fn without_a_broker_the_bus_starts_and_publish_fails_fast() {
    // A closed port: refused at once.
    let bus = AmqpBus::new(&config(
        "amqp://guest:guest@127.0.0.1:1/%2f",
        "vt-test-down",
    ))
    .expect("no broker needed to start");
    let started = Instant::now();
    let result = bus.publish(vec![message("t.a", "{}")]).await;
    assert!(
        matches!(result, Err(BusError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    // Subscribing does not fail either: its supervisor keeps trying in the background.
    let subscription = tokio::time::timeout(Duration::from_secs(10), bus.subscribe("q", &["#"]))
        .await
        .expect("subscribe returns")
        .expect("subscribe succeeds while the broker is down");
    drop(subscription);

    // A peer that accepts TCP and never speaks AMQP: the connect timeout ends the wait.
    // (Never accepting is enough: the kernel completes the handshake from the backlog.)
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("address").port();
    let bus = AmqpBus::new(&config(
        &format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
        "vt-test-silent",
    ))
    .expect("valid configuration");
    let started = Instant::now();
    let result = bus.publish(vec![message("t.a", "{}")]).await;
    assert!(
        matches!(result, Err(BusError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}
