//! The event envelope: what is hashed, batched and anchored for every event of every service.

use chain_core::canonical::{CanonicalError, to_canonical_bytes};
use chain_core::{Digest, HashAlg};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventEnvelope {
    /// UUIDv7: time-ordered, and its 74 random bits keep a leaf hash from revealing a
    /// low-entropy payload.
    pub id: Uuid,
    /// The service that recorded it (`evidence`, `finance`...).
    pub service: String,
    /// The aggregate's stream, e.g. `evidence-0193...`.
    pub stream: String,
    /// Position in the stream, from 1.
    pub stream_version: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Version of the event type's payload schema.
    pub type_version: u32,
    /// When the fact happened, as stated by the caller or the service (RFC 3339 UTC).
    pub occurred_at: String,
    /// When the service accepted it (RFC 3339 UTC).
    pub recorded_at: String,
    /// The organisation that recorded it.
    pub organisation: String,
    pub payload: serde_json::Value,
}

/// An envelope with its canonical bytes and digest, computed once.
#[derive(Clone, Debug)]
pub struct SealedEnvelope {
    pub envelope: EventEnvelope,
    /// RFC 8785 canonical JSON text.
    pub canonical: String,
    pub digest: Digest,
}

impl EventEnvelope {
    pub fn seal(self, alg: HashAlg) -> Result<SealedEnvelope, CanonicalError> {
        let bytes = to_canonical_bytes(&self)?;
        let digest = alg.hash(&bytes);
        // JCS output is UTF-8 by construction.
        let canonical = String::from_utf8(bytes).unwrap_or_default();
        Ok(SealedEnvelope {
            envelope: self,
            canonical,
            digest,
        })
    }
}

/// Now as RFC 3339 UTC with milliseconds, the one time format of envelopes.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
