use super::proposals::{EarlyProposal, PartialStream};
use super::shared::Shared;
use super::{NodeError, state_err};
use crate::blocks::{MAX_BLOCK_TRANSACTIONS, Parent, build_block, decode_block, encode_block};
use crate::context::{BlockId, ChainContext, Height, ProposalPart};
use chain_core::Digest;
use chain_core::block::{Block, Transaction};
use chain_core::governance::GovernanceError;
use malachitebft_app::engine::host::{Next, SyncedValueOutcome};
use malachitebft_app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app::types::core::{
    CommitCertificate, ExtendedCommitCertificate, Round, Validity, VoteExtensions,
};
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
}

impl Host {
    pub(super) async fn run(mut self, mut channels: Channels<ChainContext>) {
        while let Some(msg) = channels.consensus.recv().await {
            if let Err(err) = self.handle(msg, &channels).await {
                tracing::error!(%err, "consensus host");
            }
        }
        tracing::error!("the consensus engine stopped");
    }

    pub(super) async fn handle(
        &mut self,
        msg: AppMsg<ChainContext>,
        channels: &Channels<ChainContext>,
    ) -> Result<(), NodeError> {
        let s = self.shared.clone();
        match msg {
            AppMsg::ConsensusReady { reply } => {
                let start = Height(s.store.head()? + 1);
                self.current = start;
                tracing::info!(height = %start, "consensus ready");
                let _ = reply.send((start, s.params(start.0, self.block_interval)));
            }
            AppMsg::StartedRound {
                height,
                round,
                reply_value,
                ..
            } => {
                self.current = height;
                // Streams of past heights never complete now: drop them (a stream id starts
                // with the big-endian height it proposes for).
                self.streams.retain(|(_, id), _| {
                    let b = id.to_bytes();
                    b.get(..8)
                        .and_then(|h| <[u8; 8]>::try_from(h).ok())
                        .is_some_and(|h| u64::from_be_bytes(h) >= height.0)
                });
                let mut values = Vec::new();
                for p in self.early.remove(&height).unwrap_or_default() {
                    if let Some(v) =
                        self.proposed_value(height, p.round, p.valid_round, p.proposer, &p.bytes)?
                    {
                        values.push(v);
                    }
                }
                self.early.retain(|h, _| *h > height);
                let _ = round;
                let _ = reply_value.send(values);
            }
            AppMsg::GetValue {
                height,
                round,
                reply,
                ..
            } => {
                let (block, hash) = self.build(height)?;
                s.save_undecided(&hash, &block)?;
                let value = LocallyProposedValue::new(height, round, BlockId::from(hash));
                let _ = reply.send(value);
                self.stream(channels, height, round, Round::Nil, &block)
                    .await;
            }
            AppMsg::RestreamProposal {
                height,
                round,
                valid_round,
                value_id,
                ..
            } => {
                if let Some(block) = s.undecided(&value_id.digest())? {
                    self.stream(channels, height, round, valid_round, &block)
                        .await;
                }
            }
            AppMsg::ReceivedProposalPart {
                from,
                published_by,
                part,
                reply,
            } => {
                // Parts of one proposal can reach us through different neighbours: group them
                // by their publisher, not by the peer that relayed each one.
                let value = self.received_part(published_by.unwrap_or(from), part)?;
                let _ = reply.send(value);
            }
            AppMsg::Decided {
                certificate,
                extensions,
                reply,
            } => {
                let cert = ExtendedCommitCertificate::from_commit_certificate_and_extensions(
                    certificate,
                    extensions,
                );
                let r = s.commit(&cert);
                let _ = reply.send(());
                r?;
            }
            AppMsg::Finalized {
                certificate,
                evidence,
                reply,
                ..
            } => {
                s.record_evidence(certificate.height.0, &evidence);
                let next = self.finalized(certificate, VoteExtensions::default());
                let _ = reply.send(next);
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let mut values = Vec::new();
                for h in range.start().0..=range.end().0 {
                    let (Some(b), Some(cert)) = (s.store.block(h)?, s.certificate(h)?) else {
                        break;
                    };
                    values.push(malachitebft_app::types::sync::RawDecidedValue::new(
                        encode_block(&b.block).into(),
                        cert,
                    ));
                }
                let _ = reply.send(values);
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
                let outcome = match decode_block(&value_bytes) {
                    Err(_) => SyncedValueOutcome::PeerFault,
                    Ok(block) => match s.judge(height.0, &block, false) {
                        None => SyncedValueOutcome::LocalTransientError,
                        Some(Err(reason)) => {
                            tracing::warn!(%height, %reason, "a peer served an invalid block");
                            SyncedValueOutcome::PeerFault
                        }
                        Some(Ok(hash)) => {
                            s.save_undecided(&hash, &block)?;
                            SyncedValueOutcome::Verdict(ProposedValue {
                                height,
                                round,
                                valid_round: Round::Nil,
                                // The certificate and our own check of the block are what
                                // count; the proposer is informative only.
                                proposer,
                                value: BlockId::from(hash),
                                validity: Validity::Valid,
                            })
                        }
                    },
                };
                let _ = reply.send(outcome);
            }
            AppMsg::ExtendVote { reply, .. } => {
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtensions { reply, .. } => {
                let _ = reply.send(Vec::new());
            }
        }
        Ok(())
    }

    pub(super) fn finalized(
        &mut self,
        certificate: CommitCertificate<ChainContext>,
        extensions: VoteExtensions<ChainContext>,
    ) -> Next<ChainContext> {
        let s = &self.shared;
        let height = certificate.height;
        let cert = ExtendedCommitCertificate::from_commit_certificate_and_extensions(
            certificate,
            extensions,
        );
        match s.commit(&cert) {
            Ok(()) => {
                self.current = Height(height.0 + 1);
                Next::Start(self.current, s.params(self.current.0, self.block_interval))
            }
            Err(err) => {
                tracing::error!(%err, %height, "committing the decided block failed; restarting the height");
                Next::Restart(height, s.params(height.0, self.block_interval))
            }
        }
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
        let mut id = height.0.to_be_bytes().to_vec();
        id.extend_from_slice(&round.as_i64().to_be_bytes());
        let stream_id = StreamId::new(id.into());
        let bytes = encode_block(block);
        let mut parts = vec![ProposalPart::Init {
            height,
            round,
            valid_round,
            proposer: self.shared.me,
        }];
        parts.extend(
            bytes
                .chunks(PART_BYTES)
                .map(|c| ProposalPart::Data(c.to_vec())),
        );
        parts.push(ProposalPart::Fin);
        let n = parts.len() as u64;
        let messages = parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| StreamMessage::new(stream_id.clone(), i as u64, StreamContent::Data(p)))
            .chain(std::iter::once(StreamMessage::new(
                stream_id.clone(),
                n,
                StreamContent::Fin,
            )));
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
