use super::shared::{CERTIFICATES, Shared, UNDECIDED};
use super::{CommitStep, NodeError, state_err};
use crate::codec::WireCertificate;
use crate::context::ChainContext;
use crate::signing::SignedRecord;
use chain_core::Digest;
use chain_core::attestation::attest;
use chain_core::block::{CommittedBlock, Transaction};
use chain_core::governance::CommittedChange;
use malachitebft_app::types::core::ExtendedCommitCertificate;
use redb::ReadableDatabase;
use std::collections::HashSet;

impl Shared {
    /// Commits a decided block, then — and only then — attests it. A height is decided once,
    /// so this node never attests two blocks at one height.
    ///
    /// Three writes, ordered so that a crash between any two leaves a node that can serve
    /// sync for every committed height: the commit certificate first (consensus store), then
    /// the block with this node's attestation (block store, one transaction with its index),
    /// then the undecided blocks are cleared. A crash after the first write only leaves a
    /// certificate above the head, which the height's new decision overwrites.
    pub(super) fn commit(
        &self,
        certificate: &ExtendedCommitCertificate<ChainContext>,
    ) -> Result<(), NodeError> {
        let height = certificate.height.0;
        let hash = certificate.value_id.digest();
        if let Some(existing) = self.store.block(height)? {
            if existing.hash != hash {
                // Would mean the library decided twice at one height: refuse to go on.
                return Err(NodeError::State(format!(
                    "height {height} already holds block {}, consensus decided {hash}",
                    existing.hash
                )));
            }
            // Committed before (a decision delivered twice). A store written before the
            // certificate came first may lack it: write it now.
            if self.certificate(height)?.is_none() {
                self.save_certificate(certificate)?;
            }
            return Ok(());
        }
        let block = self
            .undecided(&hash)?
            .ok_or_else(|| NodeError::State(format!("decided block {hash} is unknown")))?;
        let tx_hashes = block
            .transactions
            .iter()
            .map(|t| t.hash(self.alg))
            .collect::<Result<Vec<_>, _>>()
            .map_err(state_err)?;
        // Only a member of the height's set attests (a validator added later, or removed,
        // follows the chain without signing).
        let member = self
            .sets()
            .at(height)
            .set
            .get(&self.name)
            .is_some_and(|v| v.public_key == self.key.public_key_hex());
        let attestations = if member {
            vec![attest(
                &self.key,
                &self.name,
                &self.genesis.chain_id,
                height,
                &hash,
            )]
        } else {
            Vec::new()
        };
        let changes: Vec<CommittedChange> = block
            .transactions
            .iter()
            .zip(&tx_hashes)
            .filter_map(|(t, h)| match t {
                Transaction::ValidatorSetChange(c) => Some(CommittedChange {
                    committed_height: height,
                    transaction_hash: *h,
                    change: c.clone(),
                }),
                Transaction::Anchor(_) => None,
            })
            .collect();
        self.crash_point(CommitStep::BeforeCertificate, height);
        self.save_certificate(certificate)?;
        self.crash_point(CommitStep::AfterCertificate, height);
        self.store.append(
            &CommittedBlock {
                block,
                hash,
                attestations,
            },
            &tx_hashes,
        )?;
        self.crash_point(CommitStep::AfterBlock, height);
        for c in changes {
            let effective = c.change.effective_height;
            // Checked when the block was validated; a failure here is a bug worth stopping on.
            self.sets().follow(c, u64::MAX).map_err(state_err)?;
            tracing::info!(height, effective, "validator-set change committed");
        }
        {
            let tx = self.state.begin_write().map_err(state_err)?;
            {
                let mut undecided = tx.open_table(UNDECIDED).map_err(state_err)?;
                undecided.retain(|_, _| false).map_err(state_err)?;
            }
            SignedRecord::forget_below(&tx, height + 1).map_err(state_err)?;
            tx.commit().map_err(state_err)?;
        }
        self.crash_point(CommitStep::AfterCleanup, height);
        {
            let done: HashSet<Digest> = tx_hashes.into_iter().collect();
            let mut pool = self.mempool();
            pool.order.retain(|(h, _)| !done.contains(h));
            pool.seen.retain(|h| !done.contains(h));
        }
        tracing::debug!(height, block = %hash, "block committed and attested");
        self.refresh_final_head()?;
        self.committed_head.send_if_modified(|c| {
            let advanced = height > *c;
            if advanced {
                *c = height;
            }
            advanced
        });
        Ok(())
    }

    fn save_certificate(
        &self,
        certificate: &ExtendedCommitCertificate<ChainContext>,
    ) -> Result<(), NodeError> {
        let bytes = borsh::to_vec(&WireCertificate::from(certificate)).map_err(state_err)?;
        let tx = self.state.begin_write().map_err(state_err)?;
        {
            let mut certs = tx.open_table(CERTIFICATES).map_err(state_err)?;
            certs
                .insert(certificate.height.0, bytes.as_slice())
                .map_err(state_err)?;
        }
        tx.commit().map_err(state_err)
    }

    /// A deliberate crash at `step` of committing `height`, when the node was asked for one
    /// (kill tests of the commit's writes; a build without the `byzantine` feature refuses
    /// such a configuration).
    fn crash_point(&self, step: CommitStep, height: u64) {
        if self.misbehaviour.crash_in_commit == Some((step, height)) {
            tracing::error!(
                ?step,
                height,
                "misbehaving: crashing in the middle of a commit"
            );
            std::process::abort();
        }
    }

    pub(super) fn certificate(
        &self,
        height: u64,
    ) -> Result<Option<ExtendedCommitCertificate<ChainContext>>, NodeError> {
        let tx = self.state.begin_read().map_err(state_err)?;
        let t = tx.open_table(CERTIFICATES).map_err(state_err)?;
        match t.get(height).map_err(state_err)? {
            Some(v) => {
                let w: WireCertificate = borsh::from_slice(v.value()).map_err(state_err)?;
                Ok(Some(w.into()))
            }
            None => Ok(None),
        }
    }

    /// Attested power of a committed block, counted the way verifiers count it.
    pub(super) fn is_final(&self, block: &CommittedBlock) -> bool {
        let set = self.sets().at(block.block.header.height).set.clone();
        chain_core::receipt::block_finality(&self.genesis, &set, block).is_final
    }

    pub(super) fn refresh_final_head(&self) -> Result<(), NodeError> {
        let head = self.store.head()?;
        let mut h = *self.final_head.borrow();
        while h < head {
            match self.store.block(h + 1)? {
                Some(b) if self.is_final(&b) => h += 1,
                _ => break,
            }
        }
        // Workers refresh concurrently: finality only ever moves forward.
        self.final_head.send_if_modified(|f| {
            let advanced = h > *f;
            if advanced {
                *f = h;
            }
            advanced
        });
        Ok(())
    }
}
