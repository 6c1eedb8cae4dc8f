//! Collecting the other validators' attestations until each committed block is final.
//!
//! One worker per peer, each with a short timeout and its own backoff: a peer that is slow,
//! silent or gone delays only its own attestations, never the others', so finality keeps pace
//! with commits as long as more than 2/3 of the power answers.

use super::shared::Shared;
use super::{NodeError, Peer};
use chain_core::attestation::verify_attestation;
use chain_core::block::CommittedBlock;
use chain_core::{Attestation, Digest};
use std::sync::Arc;
use std::time::Duration;

/// Most committed heights one worker asks a peer about in one pass.
const MAX_HEIGHTS_PER_PASS: u64 = 64;
/// Longest a peer is given to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// Longest one request to a peer may take, whatever the block interval.
const MAX_REQUEST_TIME: Duration = Duration::from_secs(1);
/// Backoff after a peer failed to answer: doubles from the first to the last.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const LAST_BACKOFF: Duration = Duration::from_secs(5);
/// How soon a peer that answered, but has not attested a height yet, is asked again.
const NOT_YET_RETRY: Duration = Duration::from_millis(100);

/// An HTTP client for talking to peers: a connection refused or a request unanswered costs
/// at most a short, bounded time.
pub(super) fn peer_agent(block_interval: Duration) -> ureq::Agent {
    let request_time = block_interval.clamp(CONNECT_TIMEOUT, MAX_REQUEST_TIME);
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(request_time))
        .build()
        .into()
}

/// Starts one attestation worker per peer.
pub(super) fn spawn_collectors(shared: &Arc<Shared>, block_interval: Duration) {
    for peer in shared.peers.clone() {
        let agent = peer_agent(block_interval);
        tokio::spawn(collect_from(shared.clone(), peer, agent));
    }
}

/// What a peer said about one height.
#[derive(Debug, PartialEq, Eq)]
enum PeerAnswer {
    /// Its copy of our block, with the attestations it holds.
    Attestations(Vec<Attestation>),
    /// It answered, but has not committed that block (yet), or holds another one.
    NotYet,
    /// No usable answer: refused, timed out, or not a block.
    Unreachable(String),
}

/// Backoff per peer: doubles while the peer fails, resets once it answers.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            next: FIRST_BACKOFF,
        }
    }

    fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(LAST_BACKOFF);
        wait
    }

    fn answered(&mut self) {
        self.next = FIRST_BACKOFF;
    }
}

/// Pulls one peer's attestations for every committed block that is not final yet and that the
/// peer, as a member of its height's set, should have signed.
async fn collect_from(shared: Arc<Shared>, peer: Peer, agent: ureq::Agent) {
    let mut committed = shared.committed_head.subscribe();
    let mut backoff = Backoff::new();
    loop {
        let s = shared.clone();
        let name = peer.name.clone();
        let wanted = tokio::task::spawn_blocking(move || s.awaiting_attestation_of(&name)).await;
        let wanted = match wanted {
            Ok(Ok(wanted)) => wanted,
            Ok(Err(err)) => {
                tracing::warn!(%err, peer = %peer.name, "reading blocks that await attestations failed");
                Vec::new()
            }
            Err(err) => {
                tracing::warn!(%err, "attestation task failed");
                Vec::new()
            }
        };
        if wanted.is_empty() {
            // Nothing to ask this peer until the next commit (or finality moves on).
            let _ = tokio::time::timeout(LAST_BACKOFF, committed.changed()).await;
            continue;
        }
        let mut wait = None;
        for (height, hash) in wanted {
            let (s, p, a) = (shared.clone(), peer.clone(), agent.clone());
            let outcome = tokio::task::spawn_blocking(move || {
                let answer = peer_attestations(&a, &p, height, &hash);
                let PeerAnswer::Attestations(offered) = &answer else {
                    return Ok::<_, NodeError>(answer);
                };
                s.merge_attestations(height, offered)?;
                s.refresh_final_head()?;
                // A copy without a valid attestation of the peer's own is no answer yet (it
                // may sign with another key, or lie): asked again after a pause, not at once.
                let signed = s
                    .store
                    .block(height)?
                    .is_some_and(|b| b.attestations.iter().any(|x| x.validator == p.name));
                Ok(if signed { answer } else { PeerAnswer::NotYet })
            })
            .await;
            match outcome {
                Ok(Ok(PeerAnswer::Attestations(_))) => backoff.answered(),
                Ok(Ok(PeerAnswer::NotYet)) => {
                    backoff.answered();
                    // Later heights are less likely to be there yet: ask again shortly.
                    wait = Some(NOT_YET_RETRY);
                    break;
                }
                Ok(Ok(PeerAnswer::Unreachable(err))) => {
                    let pause = backoff.failed();
                    tracing::debug!(peer = %peer.name, height, %err, backoff_ms = pause.as_millis() as u64, "a peer did not answer for its attestation");
                    wait = Some(pause);
                    break;
                }
                Ok(Err(err)) => {
                    tracing::warn!(%err, height, "storing attestations failed");
                    wait = Some(backoff.failed());
                    break;
                }
                Err(err) => {
                    tracing::warn!(%err, "attestation task failed");
                    wait = Some(backoff.failed());
                    break;
                }
            }
        }
        if let Some(wait) = wait {
            // A new commit does not cut a backoff short: a silent peer stays asked rarely.
            tokio::time::sleep(wait).await;
        }
    }
}

impl Shared {
    /// The committed, not yet final blocks (at most [`MAX_HEIGHTS_PER_PASS`]) that lack an
    /// attestation of `peer` although it is a validator of their height's set.
    fn awaiting_attestation_of(&self, peer: &str) -> Result<Vec<(u64, Digest)>, NodeError> {
        let final_head = *self.final_head.borrow();
        let head = self.store.head()?;
        let mut wanted = Vec::new();
        for height in (final_head + 1)..=head.min(final_head + MAX_HEIGHTS_PER_PASS) {
            if self.sets().at(height).set.get(peer).is_none() {
                continue;
            }
            let Some(block) = self.store.block(height)? else {
                break;
            };
            if self.is_final(&block) || block.attestations.iter().any(|a| a.validator == peer) {
                continue;
            }
            wanted.push((height, block.hash));
        }
        Ok(wanted)
    }

    /// Adds the valid attestations among `offered` to the committed block at `height`.
    pub(super) fn merge_attestations(
        &self,
        height: u64,
        offered: &[Attestation],
    ) -> Result<bool, NodeError> {
        // Workers of different peers merge into the same block: one at a time, so that none
        // overwrites another's additions.
        let _merging = self.merging.lock().unwrap_or_else(|p| p.into_inner());
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
}

/// Fetches a peer's copy of block `height`; its attestations count only if it is the same
/// block as ours (each is verified again when merged).
fn peer_attestations(agent: &ureq::Agent, peer: &Peer, height: u64, hash: &Digest) -> PeerAnswer {
    let url = format!("{}/chain/blocks/{height}", peer.api);
    let mut resp = match agent.get(&url).call() {
        Ok(resp) => resp,
        Err(err) => return PeerAnswer::Unreachable(err.to_string()),
    };
    match resp.status().as_u16() {
        200 => {}
        404 => return PeerAnswer::NotYet,
        status => return PeerAnswer::Unreachable(format!("status {status}")),
    }
    let detail = match resp.body_mut().read_json::<serde_json::Value>() {
        Ok(detail) => detail,
        Err(err) => return PeerAnswer::Unreachable(err.to_string()),
    };
    let Some(block) = detail.get("block") else {
        return PeerAnswer::Unreachable("no block in the answer".into());
    };
    match serde_json::from_value::<CommittedBlock>(block.clone()) {
        Ok(b) if b.hash == *hash => PeerAnswer::Attestations(b.attestations),
        Ok(_) => PeerAnswer::NotYet,
        Err(err) => PeerAnswer::Unreachable(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_limit_and_resets_on_an_answer() {
        let mut b = Backoff::new();
        let waits: Vec<Duration> = (0..8).map(|_| b.failed()).collect();
        assert_eq!(waits[0], FIRST_BACKOFF);
        assert_eq!(waits[1], FIRST_BACKOFF * 2);
        assert!(waits.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*waits.last().unwrap(), LAST_BACKOFF);
        b.answered();
        assert_eq!(b.failed(), FIRST_BACKOFF);
    }

    #[test]
    fn a_silent_peer_costs_at_most_the_request_limit() {
        // A listener that accepts connections and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
        let peer = Peer {
            name: "silent".into(),
            p2p: String::new(),
            api: format!("http://{addr}"),
        };
        let agent = peer_agent(Duration::from_millis(500));
        let started = std::time::Instant::now();
        let answer = peer_attestations(&agent, &peer, 1, &Digest([0; 32]));
        let took = started.elapsed();
        assert!(matches!(answer, PeerAnswer::Unreachable(_)), "{answer:?}");
        assert!(took < Duration::from_millis(1500), "took {took:?}");
        drop(held);
    }

    #[test]
    fn a_refusing_peer_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let peer = Peer {
            name: "gone".into(),
            p2p: String::new(),
            api: format!("http://{addr}"),
        };
        let answer = peer_attestations(
            &peer_agent(Duration::from_millis(500)),
            &peer,
            1,
            &Digest([0; 32]),
        );
        assert!(matches!(answer, PeerAnswer::Unreachable(_)), "{answer:?}");
    }
}
