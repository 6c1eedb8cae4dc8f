//! A service's view of its own events' receipts: fetched from the anchoring service (in the
//! same process when embedded, over HTTP when distributed) and checked here with the verifier
//! anyone runs offline, against the consortium's genesis. A page may call an event verified
//! only when this check passed; the operator's word is not enough.

use chain_core::genesis::Genesis;
use chain_core::receipt::{VerifyError, verify_bytes};
use serde::Serialize;
use std::sync::Arc;

/// Where a service reads receipts.
#[async_trait::async_trait]
pub trait ReceiptSource: Send + Sync {
    /// The receipt of the platform event `event_id` as the anchoring service serves it (its
    /// JSON bytes, pending or anchored); None while the anchoring service has not received the
    /// event.
    async fn receipt(&self, event_id: &str) -> Result<Option<Vec<u8>>, String>;
}

/// What a check of one event's receipt found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ReceiptState {
    /// Anchored in a final block; every check of `docs/receipts.md` passed.
    Verified {
        height: u64,
        block_time: String,
        signers: usize,
    },
    /// Recorded, not yet anchored (or not yet at the anchoring service): no proof yet.
    Pending,
    /// The receipt failed a check. Never shown as verified.
    Failed { reason: String },
    /// The anchoring service could not be asked.
    Unavailable { reason: String },
}

/// Receipts and the genesis they are checked against.
#[derive(Clone)]
pub struct Receipts {
    source: Arc<dyn ReceiptSource>,
    genesis: Arc<Genesis>,
}

impl Receipts {
    pub fn new(source: Arc<dyn ReceiptSource>, genesis: Genesis) -> Receipts {
        Receipts {
            source,
            genesis: Arc::new(genesis),
        }
    }

    /// The receipt's bytes as served, unchecked (for downloading: the reader checks them).
    /// The genesis document receipts are verified against.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    pub async fn fetch(&self, event_id: &str) -> Result<Option<Vec<u8>>, String> {
        self.source.receipt(event_id).await
    }

    /// Fetches the receipt of `event_id` and verifies it.
    pub async fn check(&self, event_id: &str) -> ReceiptState {
        match self.source.receipt(event_id).await {
            Err(reason) => ReceiptState::Unavailable { reason },
            Ok(None) => ReceiptState::Pending,
            Ok(Some(bytes)) => self.verify(event_id, &bytes),
        }
    }

    /// Verifies receipt bytes said to be `event_id`'s.
    pub fn verify(&self, event_id: &str, bytes: &[u8]) -> ReceiptState {
        match verify_bytes(bytes, &self.genesis) {
            Ok(v) if v.event_id == event_id => ReceiptState::Verified {
                height: v.height,
                block_time: v.block_time,
                signers: v.signers.len(),
            },
            Ok(v) => ReceiptState::Failed {
                reason: format!("the receipt is event {}'s, not {event_id}'s", v.event_id),
            },
            Err(VerifyError::Pending) => ReceiptState::Pending,
            Err(e) => ReceiptState::Failed {
                reason: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Served(HashMap<String, Result<Vec<u8>, String>>);

    #[async_trait::async_trait]
    impl ReceiptSource for Served {
        async fn receipt(&self, event_id: &str) -> Result<Option<Vec<u8>>, String> {
            self.0.get(event_id).cloned().transpose()
        }
    }

    fn genesis() -> Genesis {
        use chain_core::genesis::{SignatureAlg, Validator};
        let key = chain_core::keys::SigningKey::from_secret(SignatureAlg::Ed25519, &[7; 32])
            .expect("a key");
        Genesis::create(
            None,
            "test",
            chain_core::HashAlg::Sha3_256,
            SignatureAlg::Ed25519,
            vec![Validator {
                name: "v".into(),
                organisation: "org".into(),
                public_key: key.public_key_hex(),
                power: 1,
            }],
        )
        .expect("genesis")
    }

    #[tokio::test]
    async fn only_a_receipt_that_verifies_is_verified() {
        let digest = "0".repeat(64);
        let pending = format!(
            r#"{{"version":1,"status":"pending","event_id":"waiting","event_digest":"{digest}"}}"#
        );
        let served = Served(HashMap::from([
            ("down".to_string(), Err("connection refused".to_string())),
            ("garbled".to_string(), Ok(b"{not json".to_vec())),
            ("waiting".to_string(), Ok(pending.into_bytes())),
        ]));
        let receipts = Receipts::new(Arc::new(served), genesis());
        assert_eq!(receipts.check("unknown").await, ReceiptState::Pending);
        assert_eq!(receipts.check("waiting").await, ReceiptState::Pending);
        assert!(matches!(
            receipts.check("down").await,
            ReceiptState::Unavailable { reason } if reason == "connection refused"
        ));
        assert!(matches!(
            receipts.check("garbled").await,
            ReceiptState::Failed { .. }
        ));
    }
}
