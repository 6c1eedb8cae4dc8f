use super::shared::Shared;
use super::{NodeError, Peer};
use chain_core::attestation::verify_attestation;
use chain_core::block::CommittedBlock;
use chain_core::{Attestation, Digest};
use std::sync::Arc;
use std::time::Duration;

impl Shared {
    /// Adds the valid attestations among `offered` to the committed block at `height`.
    pub(super) fn merge_attestations(
        &self,
        height: u64,
        offered: &[Attestation],
    ) -> Result<bool, NodeError> {
        let Some(mut block) = self.store.block(height)? else {
            return Ok(false);
        };
        let set = self.sets().at(height).set.clone();
        let mut added = false;
        for att in offered {
            if block
                .attestations
                .iter()
                .any(|a| a.validator == att.validator)
            {
                continue;
            }
            let Some(v) = set.get(&att.validator) else {
                continue;
            };
            let Ok(key) =
                chain_core::keys::parse_public_key(self.genesis.signature_alg, &v.public_key)
            else {
                continue;
            };
            if verify_attestation(&key, att, &self.genesis.chain_id, height, &block.hash).is_ok() {
                block.attestations.push(att.clone());
                added = true;
            }
        }
        if added {
            self.store.set_attestations(height, &block.attestations)?;
        }
        Ok(added)
    }

    /// Fetches a peer's copy of block `height` and returns its attestations if it is the same
    /// block as ours.
    pub(super) fn peer_attestations(
        &self,
        peer: &Peer,
        height: u64,
        hash: &Digest,
    ) -> Vec<Attestation> {
        let url = format!("{}/chain/blocks/{height}", peer.api);
        let Ok(mut resp) = self.http.get(&url).call() else {
            return Vec::new();
        };
        if resp.status() != 200 {
            return Vec::new();
        }
        let Ok(detail) = resp.body_mut().read_json::<serde_json::Value>() else {
            return Vec::new();
        };
        let Some(block) = detail.get("block") else {
            return Vec::new();
        };
        match serde_json::from_value::<CommittedBlock>(block.clone()) {
            Ok(b) if b.hash == *hash => b.attestations,
            _ => Vec::new(),
        }
    }
}

/// Pulls the other validators' attestations for every committed block that is not final yet.
pub(super) async fn collect_attestations(shared: Arc<Shared>) {
    loop {
        let final_head = *shared.final_head.borrow();
        let head = shared.store.head().unwrap_or(final_head);
        if head > final_head {
            let s = shared.clone();
            let r = tokio::task::spawn_blocking(move || -> Result<(), NodeError> {
                for height in (final_head + 1)..=head.min(final_head + 64) {
                    let Some(block) = s.store.block(height)? else {
                        break;
                    };
                    if s.is_final(&block) {
                        continue;
                    }
                    for peer in &s.peers {
                        if block.attestations.iter().any(|a| a.validator == peer.name) {
                            continue;
                        }
                        let offered = s.peer_attestations(peer, height, &block.hash);
                        s.merge_attestations(height, &offered)?;
                    }
                }
                s.refresh_final_head()
            })
            .await;
            match r {
                Ok(Err(err)) => tracing::warn!(%err, "collecting attestations failed"),
                Err(err) => tracing::warn!(%err, "attestation task failed"),
                Ok(Ok(())) => {}
            }
        }
        let pending = shared.store.head().unwrap_or(0) > *shared.final_head.borrow();
        let wait = if pending {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        let _ = tokio::time::timeout(wait, shared.committed.notified()).await;
    }
}
