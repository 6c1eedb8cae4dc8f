use super::shared::Shared;
use chain_core::block::Transaction;

impl Shared {
    pub(super) fn forward(&self, tx: &Transaction) {
        for peer in &self.peers {
            let url = format!("{}/chain/transactions", peer.api);
            let r = self
                .http
                .post(&url)
                .header("x-veritrace-forwarded", "1")
                .send_json(tx);
            if let Err(err) = r {
                tracing::debug!(peer = %peer.name, %err, "passing a transaction on failed");
            }
        }
    }
}
