use super::proposals::{EarlyProposal, KeptProposals, PartialStream, stream_height};
use super::shared::Shared;
use super::{NodeError, state_err};
use crate::blocks::{MAX_BLOCK_TRANSACTIONS, Parent, build_block, encode_block};
use crate::context::{BlockId, ChainContext, Height, ProposalPart};
use chain_core::Digest;
use chain_core::block::{Block, Transaction};
use chain_core::governance::GovernanceError;
use malachitebft_app::engine::host::Next;
use malachitebft_app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app::types::core::{ExtendedCommitCertificate, Round, VoteExtensions};
use malachitebft_app::types::{LocallyProposedValue, PeerId, ProposedValue};
use malachitebft_app_channel::{AppMsg, Channels, NetworkMsg};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Size of one proposal data part.
const PART_BYTES: usize = 256 * 1024;
pub(super) struct Host {
    pub(super) shared: Arc<Shared>,
    pub(super) block_interval: Duration,
    pub(super) current: Height,
    pub(super) streams: HashMap<(PeerId, StreamId), PartialStream>,
    pub(super) early: BTreeMap<Height, Vec<EarlyProposal>>,
    /// Bytes held in `streams`.
    pub(super) open_bytes: usize,
    /// Bytes held in `early`.
    pub(super) early_bytes: usize,
    /// The round the engine is in.
    pub(super) round: Round,
    /// Valid proposals written to the consensus store, per round, for one height.
    pub(super) kept: KeptProposals,
    /// (peer id, height) already reported for flooding.
    pub(super) flooding_reported: HashSet<(String, u64)>,
}

impl Host {
    pub(super) fn new(shared: Arc<Shared>, block_interval: Duration) -> Host {
        Host {
            shared,
            block_interval,
            current: Height(0),
            streams: HashMap::new(),
            early: BTreeMap::new(),
            open_bytes: 0,
            early_bytes: 0,
            round: Round::new(0),
            kept: KeptProposals::default(),
            flooding_reported: HashSet::new(),
        }
    }

    pub(super) async fn run(mut self, mut channels: Channels<ChainContext>) {
        if self.shared.misbehaviour.flood_proposal_streams {
            tokio::spawn(flood_proposal_streams(
                self.shared.clone(),
                channels.network.clone(),
            ));
        }
        while let Some(msg) = channels.consensus.recv().await {
            self.handle(msg, &channels).await;
            if self.shared.halted.borrow().is_some() {
                // Nothing more is answered: the engine waits, the node's owner stops it.
                return;
            }
        }
        tracing::error!("the consensus engine stopped");
        self.shared.halt("the consensus engine stopped".into());
    }

    /// Answers one message of the engine. Every arm replies, or halts the node when it cannot
    /// go on safely (an unanswered request would stall the engine without saying why).
    pub(super) async fn handle(
        &mut self,
        msg: AppMsg<ChainContext>,
        channels: &Channels<ChainContext>,
    ) {
        let s = self.shared.clone();
        match msg {
            AppMsg::ConsensusReady { reply } => match s.store.head() {
                Ok(head) => {
                    let start = Height(head + 1);
                    self.current = start;
                    tracing::info!(height = %start, "consensus ready");
                    let _ = reply.send((start, s.params(start.0, self.block_interval)));
                }
                Err(err) => s.halt(format!("cannot read the block store's head: {err}")),
            },
            AppMsg::StartedRound {
                height,
                round,
                reply_value,
                ..
            } => {
                let values = self.started_height(height, round);
                let _ = reply_value.send(values);
            }
            AppMsg::GetValue {
                height,
                round,
                reply,
                ..
            } => match self.value_to_propose(height, round) {
                Ok((block, hash)) => {
                    let value = LocallyProposedValue::new(height, round, BlockId::from(hash));
                    let _ = reply.send(value);
                    self.stream(channels, height, round, Round::Nil, &block)
                        .await;
                }
                // No value to answer with: the round's propose timeout passes it on.
                Err(err) => tracing::error!(%err, %height, %round, "building a proposal failed"),
            },
            AppMsg::RestreamProposal {
                height,
                round,
                valid_round,
                value_id,
                ..
            } => match s.undecided(&value_id.digest()) {
                Ok(Some(block)) => {
                    self.stream(channels, height, round, valid_round, &block)
                        .await
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(%err, %height, "reading a block to stream again failed")
                }
            },
            AppMsg::ReceivedProposalPart {
                from,
                published_by,
                part,
                reply,
            } => {
                // Parts of one proposal can reach us through different neighbours: group them
                // by their publisher, not by the peer that relayed each one.
                let value = self
                    .received_part(published_by.unwrap_or(from), part)
                    .unwrap_or_else(|err| {
                        tracing::error!(%err, "keeping a received proposal failed");
                        None
                    });
                let _ = reply.send(value);
            }
            AppMsg::Decided {
                certificate,
                extensions,
                reply,
            } => {
                let height = certificate.height;
                let cert = ExtendedCommitCertificate::from_commit_certificate_and_extensions(
                    certificate,
                    extensions,
                );
                // Acknowledged only once committed; a failed commit stops the node rather than
                // have the engine move on (or restart a height it has voted at).
                match s.commit(&cert) {
                    Ok(()) => {
                        let _ = reply.send(());
                    }
                    Err(err) => s.halt(format!(
                        "committing the block decided at {height} failed: {err}"
                    )),
                }
            }
            AppMsg::Finalized {
                certificate,
                evidence,
                reply,
                ..
            } => {
                let height = certificate.height;
                s.record_evidence(height.0, &evidence);
                let cert = ExtendedCommitCertificate::from_commit_certificate_and_extensions(
                    certificate,
                    VoteExtensions::default(),
                );
                // Committed when decided; committing again is a no-op that makes sure.
                match s.commit(&cert) {
                    Ok(()) => {
                        self.current = Height(height.0 + 1);
                        let next = Next::Start(
                            self.current,
                            s.params(self.current.0, self.block_interval),
                        );
                        let _ = reply.send(next);
                    }
                    Err(err) => s.halt(format!(
                        "committing the block finalised at {height} failed: {err}"
                    )),
                }
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let _ = reply.send(s.decided_values(range.start().0, range.end().0));
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                let _ = reply.send(Height(1));
            }
            AppMsg::ProcessSyncedValue {
                height,
                round,
                proposer,
                value_bytes,
                reply,
            } => {
                let _ = reply.send(s.synced_value(height, round, proposer, &value_bytes));
            }
            AppMsg::ExtendVote { reply, .. } => {
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtensions { reply, .. } => {
                let _ = reply.send(Vec::new());
            }
        }
    }

    /// A new height (or round) started: drops streams that can no longer complete and hands
    /// the engine the proposals that arrived for this height early.
    pub(super) fn started_height(
        &mut self,
        height: Height,
        round: Round,
    ) -> Vec<ProposedValue<ChainContext>> {
        // Not tied to a change of `current`: `Finalized` moves it to the next height first.
        self.flooding_reported.retain(|(_, h)| *h >= height.0);
        self.round = round;
        self.current = height;
        let stale: Vec<_> = self
            .streams
            .keys()
            .filter(|(_, id)| stream_height(id).is_none_or(|h| h < height.0))
            .cloned()
            .collect();
        for key in stale {
            self.drop_stream(&key);
        }
        let mut values = Vec::new();
        for p in self.early.remove(&height).unwrap_or_default() {
            match self.proposed_value(height, p.round, p.valid_round, p.proposer, &p.bytes) {
                Ok(Some(v)) => values.push(v),
                Ok(None) => {}
                Err(err) => tracing::error!(%err, %height, "keeping an early proposal failed"),
            }
        }
        self.early.retain(|h, _| *h > height);
        self.early_bytes = self.early.values().flatten().map(|p| p.bytes.len()).sum();
        values
    }

    /// The block to propose at `height` and `round`: the one already proposed there if the
    /// signed record holds one (a restart that lost the write-ahead log must not propose a
    /// second block), else a new one, kept as undecided.
    pub(super) fn value_to_propose(
        &self,
        height: Height,
        round: Round,
    ) -> Result<(Block, Digest), NodeError> {
        let s = &self.shared;
        if let Some(id) = s
            .record
            .proposal_at(height.0, round.as_i64())
            .map_err(state_err)?
        {
            let hash = id.digest();
            let block = s.undecided(&hash)?.ok_or_else(|| {
                NodeError::State(format!(
                    "block {hash} proposed at height {height}, round {round} is no longer kept"
                ))
            })?;
            tracing::info!(%height, %round, block = %hash, "proposing again the block proposed before a restart");
            return Ok((block, hash));
        }
        let (block, hash) = self.build(height)?;
        s.save_undecided(&hash, &block)?;
        Ok((block, hash))
    }

    /// Builds this node's proposal for `height` from its mempool.
    pub(super) fn build(&self, height: Height) -> Result<(Block, Digest), NodeError> {
        let s = &self.shared;
        let (parent_hash, parent_time) = s.parent_of(height.0)?;
        let txs: Vec<(Digest, Transaction)> = {
            let mut pool = s.mempool();
            // Another proposer may have included some of them already.
            let committed: HashSet<Digest> = pool
                .order
                .iter()
                .filter(|(h, _)| s.is_committed(h))
                .map(|(h, _)| *h)
                .collect();
            pool.order.retain(|(h, _)| !committed.contains(h));
            pool.seen.retain(|h| !committed.contains(h));
            // At most one validator-set change, and only one this height may commit; a change
            // that can never be committed any more (too late, or approved for a replaced set)
            // leaves the mempool.
            let mut dead = HashSet::new();
            for (h, t) in &pool.order {
                if let Transaction::ValidatorSetChange(c) = t {
                    match s.check_change(c, height.0) {
                        Ok(()) | Err(GovernanceError::Pending(_)) => {}
                        Err(err) => {
                            tracing::warn!(%err, tx = %h, "dropping a validator-set change that can no longer be committed");
                            dead.insert(*h);
                        }
                    }
                }
            }
            pool.order.retain(|(h, _)| !dead.contains(h));
            pool.seen.retain(|h| !dead.contains(h));
            let mut taken = false;
            pool.order
                .iter()
                .filter(|(_, t)| match t {
                    Transaction::ValidatorSetChange(c) => {
                        let ok = !taken && s.check_change(c, height.0).is_ok();
                        taken |= ok;
                        ok
                    }
                    Transaction::Anchor(_) => true,
                })
                .take(MAX_BLOCK_TRANSACTIONS)
                .cloned()
                .collect()
        };
        let parent = Parent {
            chain_id: &s.genesis.chain_id,
            hash_alg: s.alg,
            height: height.0 - 1,
            hash: parent_hash,
            time: parent_time.as_deref(),
            validator_set_hash: s.set_hash_at(height.0),
        };
        let (mut block, mut hash) =
            build_block(&parent, &s.name, txs, chrono::Utc::now()).map_err(state_err)?;
        if s.misbehaviour.bad_transaction_root {
            // A forged root: the block hash commits to it, the transactions do not.
            block.header.transaction_root = s.alg.hash(b"forged transaction root");
            hash = block.header.hash(s.alg).map_err(state_err)?;
            tracing::warn!(height = %height, block = %hash, "misbehaving: proposing a block with a forged transaction root");
        }
        Ok((block, hash))
    }

    pub(super) async fn stream(
        &self,
        channels: &Channels<ChainContext>,
        height: Height,
        round: Round,
        valid_round: Round,
        block: &Block,
    ) {
        let messages = proposal_messages(self.shared.me, height, round, valid_round, block);
        for m in messages {
            if channels
                .network
                .send(NetworkMsg::PublishProposalPart(m))
                .await
                .is_err()
            {
                tracing::error!("the network actor is gone; the proposal was not streamed");
                return;
            }
        }
    }
}

/// A proposal as the stream of messages that carries it: Init, the block's encoding in parts
/// of [`PART_BYTES`], Fin, then the stream's end. The stream id is the height and the round,
/// big-endian, so a receiver knows the height before the Init part arrives.
pub(super) fn proposal_messages(
    proposer: crate::context::Address,
    height: Height,
    round: Round,
    valid_round: Round,
    block: &Block,
) -> Vec<StreamMessage<ProposalPart>> {
    let mut id = height.0.to_be_bytes().to_vec();
    id.extend_from_slice(&round.as_i64().to_be_bytes());
    let stream_id = StreamId::new(id.into());
    let bytes = encode_block(block);
    let mut parts = vec![ProposalPart::Init {
        height,
        round,
        valid_round,
        proposer,
    }];
    parts.extend(
        bytes
            .chunks(PART_BYTES)
            .map(|c| ProposalPart::Data(c.to_vec())),
    );
    parts.push(ProposalPart::Fin);
    let n = parts.len() as u64;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| StreamMessage::new(stream_id.clone(), i as u64, StreamContent::Data(p)))
        .chain(std::iter::once(StreamMessage::new(
            stream_id.clone(),
            n,
            StreamContent::Fin,
        )))
        .collect()
}

/// Misbehaviour for resilience tests: publishes, ten times a second, two proposal streams that
/// never complete (an Init part and 512 KiB of data, no Fin), for heights up to eight ahead of
/// this node's head — what a peer flooding the others with proposals looks like.
async fn flood_proposal_streams(
    shared: Arc<Shared>,
    network: tokio::sync::mpsc::Sender<NetworkMsg<ChainContext>>,
) {
    tracing::warn!("misbehaving: flooding the network with proposal streams that never end");
    let mut n: u64 = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let head = shared.store.head().unwrap_or(0);
        for _ in 0..2 {
            n += 1;
            let height = Height(head + 1 + n % 8);
            let mut id = height.0.to_be_bytes().to_vec();
            id.extend_from_slice(&(u64::MAX - n).to_be_bytes());
            let stream_id = StreamId::new(id.into());
            let parts = [
                ProposalPart::Init {
                    height,
                    round: Round::new(0),
                    valid_round: Round::Nil,
                    proposer: shared.me,
                },
                ProposalPart::Data(vec![0xAA; PART_BYTES]),
                ProposalPart::Data(vec![0x55; PART_BYTES]),
            ];
            for (i, p) in parts.into_iter().enumerate() {
                let m = StreamMessage::new(stream_id.clone(), i as u64, StreamContent::Data(p));
                if network
                    .send(NetworkMsg::PublishProposalPart(m))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}
