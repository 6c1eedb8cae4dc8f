use super::host::Host;
use super::{NodeError, state_err};
use crate::blocks::decode_block;
use crate::context::{Address, BlockId, ChainContext, Height, ProposalPart};
use chain_core::Digest;
use malachitebft_app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app::types::core::{Round, Validity};
use malachitebft_app::types::{PeerId, ProposedValue};
use std::collections::{BTreeMap, HashSet};

/// Bounds on what other peers can make this node hold while proposals stream in: beyond them
/// a part is dropped and the peer reported for `flooding` (once per peer and height).
/// Heights beyond the current one whose proposal streams are kept.
pub(super) const MAX_HEIGHTS_AHEAD: u64 = 2;
/// Incomplete streams kept per configured peer, and for all other publishers together.
pub(super) const MAX_STREAMS_PER_PEER: usize = 8;
/// Bytes of one proposal: a block of 10,000 anchor transactions is well under this.
pub(super) const MAX_STREAM_BYTES: usize = 8 << 20;
/// Parts of one proposal (an honest one has `MAX_STREAM_BYTES / PART_BYTES` + 2 at most).
pub(super) const MAX_STREAM_PARTS: usize = 64;
/// Bytes of one configured peer's incomplete streams, and of all other publishers' together.
pub(super) const MAX_PEER_BYTES: usize = 16 << 20;
/// Bytes of every incomplete stream together, whatever the number of peers.
pub(super) const MAX_OPEN_BYTES: usize = 128 << 20;
/// Bytes of the complete proposals kept for heights not reached yet.
pub(super) const MAX_EARLY_BYTES: usize = 32 << 20;
/// Rounds beyond the engine's current one whose proposals are kept.
pub(super) const MAX_ROUNDS_AHEAD: u32 = 4;
/// Distinct blocks written to the consensus store per round (an honest proposer makes one; two
/// is an equivocation the engine reports). Cleared when the height is committed.
pub(super) const MAX_BLOCKS_PER_ROUND: usize = 2;

/// The valid proposals written to the consensus store for one height, by round.
#[derive(Default)]
pub(super) struct KeptProposals {
    height: u64,
    by_round: BTreeMap<u32, HashSet<Digest>>,
}

impl KeptProposals {
    /// Whether block `hash` of `round` at `height` may be written (and notes it): the same
    /// block again is free, a new one counts against the round's bound.
    fn admit(&mut self, height: u64, round: u32, hash: Digest) -> bool {
        if self.height != height {
            self.height = height;
            self.by_round.clear();
        }
        let blocks = self.by_round.entry(round).or_default();
        if blocks.contains(&hash) {
            return true;
        }
        if blocks.len() >= MAX_BLOCKS_PER_ROUND {
            return false;
        }
        blocks.insert(hash);
        true
    }
}

/// A proposal being received part by part.
#[derive(Default)]
pub(super) struct PartialStream {
    pub(super) parts: BTreeMap<u64, ProposalPart>,
    pub(super) fin: Option<u64>,
    pub(super) bytes: usize,
}

/// A complete proposal received for a height this node has not reached yet.
pub(super) struct EarlyProposal {
    pub(super) round: Round,
    pub(super) valid_round: Round,
    pub(super) proposer: Address,
    pub(super) bytes: Vec<u8>,
}

/// The height a stream proposes for: its id starts with it, big-endian.
pub(super) fn stream_height(id: &StreamId) -> Option<u64> {
    let b = id.to_bytes();
    b.get(..8)
        .and_then(|h| <[u8; 8]>::try_from(h).ok())
        .map(u64::from_be_bytes)
}

fn part_bytes(content: &StreamContent<ProposalPart>) -> usize {
    match content {
        StreamContent::Data(ProposalPart::Data(d)) => d.len(),
        // Init and Fin are a few dozen bytes; counted so that no part is free.
        _ => 64,
    }
}

impl Host {
    /// Whether a first block of round 0 at `height` would be kept (tests).
    #[cfg(test)]
    pub(super) fn kept_admits(&mut self, height: u64) -> bool {
        self.kept
            .admit(height, 0, chain_core::Digest([height as u8; 32]))
    }

    pub(super) fn received_part(
        &mut self,
        from: PeerId,
        part: StreamMessage<ProposalPart>,
    ) -> Result<Option<ProposedValue<ChainContext>>, NodeError> {
        let current = self.current.0;
        let height = match stream_height(&part.stream_id) {
            Some(h) if h < current => return Ok(None),
            Some(h) if h <= current + MAX_HEIGHTS_AHEAD => h,
            Some(h) => {
                self.flooding(&from, format!("a proposal stream for height {h}"));
                return Ok(None);
            }
            None => {
                self.flooding(&from, "a proposal stream without a height".into());
                return Ok(None);
            }
        };
        let key = (from, part.stream_id.clone());
        let size = part_bytes(&part.content);
        if let Some(excess) = self.over_bounds(&key, size) {
            self.drop_stream(&key);
            self.flooding(&from, format!("{excess} (height {height})"));
            return Ok(None);
        }
        let entry = self.streams.entry(key.clone()).or_default();
        entry.bytes += size;
        self.open_bytes += size;
        match part.content {
            StreamContent::Fin => entry.fin = Some(part.sequence),
            StreamContent::Data(p) => {
                entry.parts.insert(part.sequence, p);
            }
        }
        let complete = matches!(entry.fin, Some(f) if entry.parts.len() as u64 == f);
        if !complete {
            return Ok(None);
        }
        let Some(stream) = self.drop_stream(&key) else {
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
        // The Init part names the height the proposal is for; it must be the stream's.
        if height.0 != stream_height(&key.1).unwrap_or(0) || height < self.current {
            return Ok(None);
        }
        if height > self.current {
            if self.early_bytes + bytes.len() > MAX_EARLY_BYTES {
                self.flooding(
                    &from,
                    format!(
                        "more than {MAX_EARLY_BYTES} bytes of proposals for heights not reached"
                    ),
                );
                return Ok(None);
            }
            self.early_bytes += bytes.len();
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

    /// Which bound adding `size` bytes to stream `key` would break, if any.
    fn over_bounds(&self, key: &(PeerId, StreamId), size: usize) -> Option<String> {
        // A configured peer has a budget of its own; every other publisher (any identity can
        // connect) shares one, so that many identities cannot fill the node between them.
        let bucket = |p: &PeerId| self.is_configured_peer(p).then_some(*p);
        let mine = bucket(&key.0);
        let (mut peer_streams, mut peer_bytes) = (0, 0);
        for ((p, _), s) in &self.streams {
            if bucket(p) == mine {
                peer_streams += 1;
                peer_bytes += s.bytes;
            }
        }
        match self.streams.get(key) {
            None if peer_streams >= MAX_STREAMS_PER_PEER => Some(format!(
                "more than {MAX_STREAMS_PER_PEER} proposal streams open"
            )),
            Some(s) if s.bytes + size > MAX_STREAM_BYTES => {
                Some(format!("a proposal of more than {MAX_STREAM_BYTES} bytes"))
            }
            Some(s) if s.parts.len() >= MAX_STREAM_PARTS => {
                Some(format!("a proposal of more than {MAX_STREAM_PARTS} parts"))
            }
            _ if peer_bytes + size > MAX_PEER_BYTES => Some(format!(
                "more than {MAX_PEER_BYTES} bytes of proposal streams open"
            )),
            _ if self.open_bytes + size > MAX_OPEN_BYTES => Some(format!(
                "more than {MAX_OPEN_BYTES} bytes of proposal streams open over all peers"
            )),
            _ => None,
        }
    }

    /// Whether `peer` is one of the validators this node is configured with.
    fn is_configured_peer(&self, peer: &PeerId) -> bool {
        let suffix = format!("/p2p/{peer}");
        self.shared.peers.iter().any(|p| p.p2p.ends_with(&suffix))
    }

    /// Forgets a stream, returning it.
    pub(super) fn drop_stream(&mut self, key: &(PeerId, StreamId)) -> Option<PartialStream> {
        let stream = self.streams.remove(key)?;
        self.open_bytes -= stream.bytes.min(self.open_bytes);
        Some(stream)
    }

    /// Reports `peer` for flooding, once per height.
    fn flooding(&mut self, peer: &PeerId, detail: String) {
        let id = peer.to_string();
        if !self.flooding_reported.insert((id.clone(), self.current.0)) {
            return;
        }
        let name = self
            .shared
            .peers
            .iter()
            .find(|p| p.p2p.ends_with(&format!("/p2p/{id}")))
            .map(|p| p.name.clone())
            .unwrap_or_else(|| format!("peer {id}"));
        self.shared
            .observe(name, self.current.0, "flooding", detail);
    }

    /// Judges a complete proposal for the current height.
    pub(super) fn proposed_value(
        &mut self,
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
        // Only the proposer whose turn it is, in a round not far ahead, gets a hearing: any
        // other proposal would be ignored by the engine, so it is neither judged nor kept.
        let Some(r) = round.as_u32() else {
            return Ok(None);
        };
        if s.scheduled_proposer(height.0, round) != Some(proposer) {
            tracing::debug!(%height, %round, "a proposal from a validator whose turn it is not");
            return Ok(None);
        }
        if height == self.current
            && r > self
                .round
                .as_u32()
                .unwrap_or(0)
                .saturating_add(MAX_ROUNDS_AHEAD)
        {
            tracing::debug!(%height, %round, "a proposal for a round far ahead");
            return Ok(None);
        }
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
            if !self.kept.admit(height.0, r, hash) {
                tracing::warn!(%height, %round, "a third block from one proposer in one round; not kept");
                return Ok(None);
            }
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
