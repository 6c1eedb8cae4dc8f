//! Value sync: serving decided blocks to validators catching up, and judging the blocks they
//! serve us.

use super::shared::Shared;
use crate::blocks::{decode_block, encode_block};
use crate::context::{Address, BlockId, ChainContext, Height};
use malachitebft_app::engine::host::SyncedValueOutcome;
use malachitebft_app::types::ProposedValue;
use malachitebft_app::types::core::{Round, Validity};
use malachitebft_app::types::sync::RawDecidedValue;

impl Shared {
    /// The committed blocks `from..=to` with their commit certificates, up to the first height
    /// that lacks either (a reply shorter than asked tells the peer to ask elsewhere).
    pub(super) fn decided_values(&self, from: u64, to: u64) -> Vec<RawDecidedValue<ChainContext>> {
        let mut values = Vec::new();
        for h in from..=to {
            let found = self
                .store
                .block(h)
                .map_err(|e| e.to_string())
                .and_then(|b| Ok((b, self.certificate(h).map_err(|e| e.to_string())?)));
            match found {
                Ok((Some(b), Some(cert))) => {
                    values.push(RawDecidedValue::new(encode_block(&b.block).into(), cert))
                }
                Ok(_) => break,
                Err(err) => {
                    tracing::error!(%err, height = h, "reading a decided block to serve failed");
                    break;
                }
            }
        }
        values
    }

    /// Judges a block a peer served for `height` through sync.
    pub(super) fn synced_value(
        &self,
        height: Height,
        round: Round,
        proposer: Address,
        value_bytes: &[u8],
    ) -> SyncedValueOutcome<ChainContext> {
        let Ok(block) = decode_block(value_bytes) else {
            return SyncedValueOutcome::PeerFault;
        };
        match self.judge(height.0, &block, false) {
            None => SyncedValueOutcome::LocalTransientError,
            Some(Err(reason)) => {
                tracing::warn!(%height, %reason, "a peer served an invalid block");
                SyncedValueOutcome::PeerFault
            }
            Some(Ok(hash)) => {
                if let Err(err) = self.save_undecided(&hash, &block) {
                    tracing::error!(%err, %height, "keeping a synced block failed");
                    return SyncedValueOutcome::LocalTransientError;
                }
                SyncedValueOutcome::Verdict(ProposedValue {
                    height,
                    round,
                    valid_round: Round::Nil,
                    // The certificate and our own check of the block are what count; the
                    // proposer is informative only.
                    proposer,
                    value: BlockId::from(hash),
                    validity: Validity::Valid,
                })
            }
        }
    }
}
