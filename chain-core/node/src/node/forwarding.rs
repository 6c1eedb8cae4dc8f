//! Passing transactions on to the other validators, so that whoever proposes next includes
//! them. One bounded queue and one worker per peer: a slow or silent peer fills only its own
//! queue (the excess is dropped; the submitter resubmits until committed) and never holds up
//! the others or the node's blocking threads.

use super::Peer;
use super::attestations::peer_agent;
use chain_core::block::Transaction;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Transactions waiting for one peer.
const QUEUE_LENGTH: usize = 4096;
/// Pause after a peer failed to take a transaction.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(500);

/// The queues of every peer.
pub(super) struct Forwarding {
    queues: Vec<(String, mpsc::Sender<Arc<Transaction>>)>,
}

impl Forwarding {
    /// Starts one forwarding worker per peer.
    pub(super) fn start(peers: &[Peer], block_interval: Duration) -> Forwarding {
        let queues = peers
            .iter()
            .map(|peer| {
                let (tx, rx) = mpsc::channel(QUEUE_LENGTH);
                tokio::spawn(forward_to(peer.clone(), peer_agent(block_interval), rx));
                (peer.name.clone(), tx)
            })
            .collect();
        Forwarding { queues }
    }

    /// Queues `tx` for every peer; a full queue drops it for that peer.
    pub(super) fn pass_on(&self, tx: Transaction) {
        let tx = Arc::new(tx);
        for (peer, queue) in &self.queues {
            if queue.try_send(tx.clone()).is_err() {
                tracing::debug!(%peer, "a peer's transaction queue is full; dropped for it");
            }
        }
    }
}

async fn forward_to(peer: Peer, agent: ureq::Agent, mut queue: mpsc::Receiver<Arc<Transaction>>) {
    let url = format!("{}/chain/transactions", peer.api);
    while let Some(tx) = queue.recv().await {
        let (agent, url) = (agent.clone(), url.clone());
        let sent = tokio::task::spawn_blocking(move || {
            agent
                .post(&url)
                .header("x-veritrace-forwarded", "1")
                .send_json(&*tx)
                .map(|_| ())
        })
        .await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::debug!(peer = %peer.name, %err, "passing a transaction on failed");
                tokio::time::sleep(PAUSE_AFTER_FAILURE).await;
            }
            Err(err) => tracing::warn!(%err, "forwarding task failed"),
        }
    }
}
