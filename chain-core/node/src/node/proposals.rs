use super::host::Host;
use super::{NodeError, state_err};
use crate::blocks::decode_block;
use crate::context::{Address, BlockId, ChainContext, Height, ProposalPart};
use malachitebft_app::streaming::{StreamContent, StreamMessage};
use malachitebft_app::types::core::{Round, Validity};
use malachitebft_app::types::{PeerId, ProposedValue};
use std::collections::BTreeMap;

/// A proposal being received part by part.
#[derive(Default)]
pub(super) struct PartialStream {
    pub(super) parts: BTreeMap<u64, ProposalPart>,
    pub(super) fin: Option<u64>,
}

/// A complete proposal received for a height this node has not reached yet.
pub(super) struct EarlyProposal {
    pub(super) round: Round,
    pub(super) valid_round: Round,
    pub(super) proposer: Address,
    pub(super) bytes: Vec<u8>,
}

impl Host {
    pub(super) fn received_part(
        &mut self,
        from: PeerId,
        part: StreamMessage<ProposalPart>,
    ) -> Result<Option<ProposedValue<ChainContext>>, NodeError> {
        let key = (from, part.stream_id.clone());
        let entry = self.streams.entry(key.clone()).or_default();
        match part.content {
            StreamContent::Fin => entry.fin = Some(part.sequence),
            StreamContent::Data(p) => {
                // A stream is small; cap it so a faulty peer cannot grow it without bound.
                if entry.parts.len() > 4096 {
                    self.streams.remove(&key);
                    return Ok(None);
                }
                entry.parts.insert(part.sequence, p);
            }
        }
        let complete = matches!(entry.fin, Some(f) if entry.parts.len() as u64 == f);
        if !complete {
            return Ok(None);
        }
        let Some(stream) = self.streams.remove(&key) else {
            return Ok(None);
        };
        let mut parts = stream.parts.into_values();
        let Some(ProposalPart::Init {
            height,
            round,
            valid_round,
            proposer,
        }) = parts.next()
        else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        for p in parts {
            match p {
                ProposalPart::Data(d) => bytes.extend_from_slice(&d),
                ProposalPart::Fin => break,
                ProposalPart::Init { .. } => return Ok(None),
            }
        }
        if height < self.current {
            return Ok(None);
        }
        if height > self.current {
            self.early.entry(height).or_default().push(EarlyProposal {
                round,
                valid_round,
                proposer,
                bytes,
            });
            return Ok(None);
        }
        self.proposed_value(height, round, valid_round, proposer, &bytes)
    }

    /// Judges a complete proposal for the current height.
    pub(super) fn proposed_value(
        &self,
        height: Height,
        round: Round,
        valid_round: Round,
        proposer: Address,
        bytes: &[u8],
    ) -> Result<Option<ProposedValue<ChainContext>>, NodeError> {
        let s = &self.shared;
        let Ok(block) = decode_block(bytes) else {
            tracing::warn!(%height, %round, "undecodable proposal");
            return Ok(None);
        };
        let hash = block.header.hash(s.alg).map_err(state_err)?;
        let validity = match s.judge(height.0, &block, valid_round == Round::Nil) {
            None => return Ok(None),
            Some(Ok(_)) => Validity::Valid,
            Some(Err(reason)) => {
                s.observe(
                    s.validator_name(height.0, &proposer),
                    height.0,
                    "invalid-proposal",
                    format!("round {round}, block {hash}: {reason}"),
                );
                Validity::Invalid
            }
        };
        if validity == Validity::Valid {
            s.save_undecided(&hash, &block)?;
        }
        Ok(Some(ProposedValue {
            height,
            round,
            valid_round,
            proposer,
            value: BlockId::from(hash),
            validity,
        }))
    }
}
