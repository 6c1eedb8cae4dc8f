//! The bus between services: a topic exchange with durable queues. AMQP (RabbitMQ) in
//! distributed deployments; [`InProcessBus`] in the embedded mode, behind the same trait.
//!
//! Contract, for every implementation: `publish` returns only once every message is durably
//! accepted (for the in-process bus: once the consumer acknowledged it, i.e. persisted it); a
//! consumer acknowledges a delivery only after persisting its effect; a rejected delivery goes
//! to the dead-letter list, never silently away.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(Clone, Debug)]
pub struct Message {
    /// `<service>.<EventType>`, e.g. `evidence.EvidenceRegistered`.
    pub routing_key: String,
    pub body: Vec<u8>,
    /// Names what the message carries, for logs and for an operator looking at a queue: the
    /// outbox sets `<service>:<first>-<last position>`. Republished copies carry the same id.
    pub message_id: Option<String>,
}

impl Message {
    /// A message without an id.
    pub fn new(routing_key: impl Into<String>, body: impl Into<Vec<u8>>) -> Message {
        Message {
            routing_key: routing_key.into(),
            body: body.into(),
            message_id: None,
        }
    }
}

#[derive(Debug, thiserror::Error, Clone)]
pub enum BusError {
    #[error("no queue is bound for routing key {0}")]
    Unroutable(String),
    #[error("the bus did not confirm the message: {0}")]
    NotConfirmed(String),
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// Retrying cannot help: a bad URL, or the broker refused a declaration.
    #[error("bus misconfigured: {0}")]
    Config(String),
}

/// What a consumer decides about a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Persisted: remove it from the queue.
    Ack,
    /// Cannot be processed now (e.g. storage down): deliver again later.
    Retry,
    /// Can never be processed (poison): move it to the dead-letter queue.
    DeadLetter,
}

pub struct Delivery {
    pub routing_key: String,
    pub body: Vec<u8>,
    /// The publisher's [`Message::message_id`], when it set one.
    pub message_id: Option<String>,
    settle: oneshot::Sender<Settlement>,
}

impl Delivery {
    /// A delivery for a bus implementation, with the receiver its settlement arrives on (an
    /// error there means the consumer dropped it unsettled).
    pub(crate) fn new(
        routing_key: String,
        body: Vec<u8>,
        message_id: Option<String>,
    ) -> (Delivery, oneshot::Receiver<Settlement>) {
        let (settle, outcome) = oneshot::channel();
        (
            Delivery {
                routing_key,
                body,
                message_id,
                settle,
            },
            outcome,
        )
    }

    pub fn settle(self, outcome: Settlement) {
        let _ = self.settle.send(outcome);
    }
}

/// A queue's stream of deliveries.
pub struct Subscription {
    rx: mpsc::Receiver<Delivery>,
}

impl Subscription {
    pub(crate) fn new(rx: mpsc::Receiver<Delivery>) -> Self {
        Subscription { rx }
    }

    pub async fn next(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }
}

#[async_trait::async_trait]
pub trait Bus: Send + Sync {
    /// Publishes all messages and returns once each is confirmed.
    async fn publish(&self, messages: Vec<Message>) -> Result<(), BusError>;
    /// Declares a durable queue bound to `bindings` (topic patterns, `*` one word, `#` any
    /// number of words) and consumes from it.
    async fn subscribe(&self, queue: &str, bindings: &[&str]) -> Result<Subscription, BusError>;
}

/// AMQP topic matching: words separated by `.`, `*` matches one word, `#` zero or more.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match (p.first(), k.first()) {
            (None, None) => true,
            (Some(&"#"), _) => go(&p[1..], k) || (!k.is_empty() && go(p, &k[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &k[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &k[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    go(&p, &k)
}

struct Queue {
    name: String,
    bindings: Vec<String>,
    tx: mpsc::Sender<Delivery>,
}

/// The embedded mode's bus. Queues live in memory, so a message counts as confirmed only once
/// its consumer acknowledged it: until then the publisher's outbox still holds it, and a crash
/// loses nothing.
#[derive(Clone, Default)]
pub struct InProcessBus {
    queues: Arc<Mutex<Vec<Queue>>>,
    dead_letters: Arc<Mutex<Vec<Message>>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages that consumers rejected as unprocessable.
    pub fn dead_letters(&self) -> Vec<Message> {
        self.dead_letters
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    async fn deliver(&self, tx: mpsc::Sender<Delivery>, message: &Message) -> Result<(), BusError> {
        let mut backoff = Duration::from_millis(50);
        loop {
            let (delivery, outcome) = Delivery::new(
                message.routing_key.clone(),
                message.body.clone(),
                message.message_id.clone(),
            );
            tx.send(delivery)
                .await
                .map_err(|_| BusError::NotConfirmed("the consumer has stopped".into()))?;
            match outcome.await {
                Ok(Settlement::Ack) => return Ok(()),
                Ok(Settlement::DeadLetter) => {
                    if let Ok(mut d) = self.dead_letters.lock() {
                        d.push(message.clone());
                    }
                    tracing::error!(routing_key = %message.routing_key, "message dead-lettered");
                    return Ok(());
                }
                Ok(Settlement::Retry) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(_) => {
                    return Err(BusError::NotConfirmed(
                        "the consumer dropped the delivery unsettled".into(),
                    ));
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, messages: Vec<Message>) -> Result<(), BusError> {
        for message in &messages {
            let targets: Vec<mpsc::Sender<Delivery>> = {
                let queues = self
                    .queues
                    .lock()
                    .map_err(|_| BusError::Unavailable("queue registry poisoned".into()))?;
                queues
                    .iter()
                    .filter(|q| {
                        q.bindings
                            .iter()
                            .any(|b| topic_matches(b, &message.routing_key))
                    })
                    .map(|q| q.tx.clone())
                    .collect()
            };
            if targets.is_empty() {
                return Err(BusError::Unroutable(message.routing_key.clone()));
            }
            for tx in targets {
                self.deliver(tx, message).await?;
            }
        }
        Ok(())
    }

    async fn subscribe(&self, queue: &str, bindings: &[&str]) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::channel(64);
        let mut queues = self
            .queues
            .lock()
            .map_err(|_| BusError::Unavailable("queue registry poisoned".into()))?;
        // One consumer per queue in-process: a new subscription replaces the old one.
        queues.retain(|q| q.name != queue);
        queues.push(Queue {
            name: queue.to_string(),
            bindings: bindings.iter().map(|b| b.to_string()).collect(),
            tx,
        });
        Ok(Subscription { rx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns() {
        assert!(topic_matches("#", "evidence.EvidenceRegistered"));
        assert!(topic_matches("evidence.*", "evidence.EvidenceRegistered"));
        assert!(!topic_matches("evidence.*", "finance.VoucherIssued"));
        assert!(topic_matches(
            "*.EvidenceRegistered",
            "evidence.EvidenceRegistered"
        ));
        assert!(topic_matches("evidence.#", "evidence"));
        assert!(!topic_matches("*", "a.b"));
    }

    #[tokio::test]
    async fn publish_waits_for_the_consumer_and_dead_letters_poison() {
        let bus = InProcessBus::new();
        assert!(matches!(
            bus.publish(vec![Message::new("a.b", vec![])]).await,
            Err(BusError::Unroutable(_))
        ));
        let mut sub = bus.subscribe("q", &["a.*"]).await.unwrap();
        let consumer = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(d) = sub.next().await {
                seen.push(d.body.clone());
                let outcome = if d.body == b"poison" {
                    Settlement::DeadLetter
                } else {
                    Settlement::Ack
                };
                d.settle(outcome);
                if seen.len() == 2 {
                    break;
                }
            }
            seen
        });
        bus.publish(vec![
            Message::new("a.b", b"poison".to_vec()),
            Message::new("a.c", b"good".to_vec()),
        ])
        .await
        .unwrap();
        assert_eq!(
            consumer.await.unwrap(),
            vec![b"poison".to_vec(), b"good".to_vec()]
        );
        assert_eq!(bus.dead_letters().len(), 1);
    }
}
