//! What every Veritrace service shares: the event envelope, the event store and its outbox,
//! the bus, configuration, problem+json errors, API-key authentication and telemetry.

pub mod access;
pub mod amqp;
pub mod auth;
pub mod bus;
pub mod config;
pub mod db;
pub mod digest_runs;
pub mod domain;
pub mod envelope;
pub mod event_store;
pub mod http;
pub mod idempotency;
pub mod migrate;
pub mod outbox;
pub mod problem;
pub mod projection;
pub mod reaction;
pub mod read_model;
pub mod receipts;
pub mod storage;
pub mod strict_json;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use envelope::EventEnvelope;
pub use problem::{ApiError, FieldError, Problem};
