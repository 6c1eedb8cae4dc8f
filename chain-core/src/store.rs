//! The block store: committed blocks and the transaction index, in redb.

use crate::block::{CommittedBlock, Transaction};
use crate::chain::TxLocation;
use crate::governance::CommittedChange;
use crate::hash::Digest;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const TX_INDEX: TableDefinition<&[u8; 32], (u64, u32)> = TableDefinition::new("tx_index");
/// Committed validator-set changes by effective height (JSON `CommittedChange`).
const SET_CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("validator_set_changes");

#[derive(Debug, thiserror::Error)]
#[error("block store: {0}")]
pub struct StoreError(String);

fn e<E: std::fmt::Display>(err: E) -> StoreError {
    StoreError(err.to_string())
}

pub struct BlockStore {
    db: Database,
}

impl BlockStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(e)?;
        }
        let db = Database::create(path).map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError(format!(
                "{} is in use by another process (is another `veritrace` running on this data \
                 directory?)",
                path.display()
            )),
            other => StoreError(format!("cannot open {}: {other}", path.display())),
        })?;
        let tx = db.begin_write().map_err(e)?;
        tx.open_table(BLOCKS).map_err(e)?;
        tx.open_table(TX_INDEX).map_err(e)?;
        tx.open_table(SET_CHANGES).map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(BlockStore { db })
    }

    /// Height of the last committed block (0 when only genesis exists).
    pub fn head(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(e)?;
        let t = tx.open_table(BLOCKS).map_err(e)?;
        Ok(t.last().map_err(e)?.map(|(k, _)| k.value()).unwrap_or(0))
    }

    pub fn block(&self, height: u64) -> Result<Option<CommittedBlock>, StoreError> {
        let tx = self.db.begin_read().map_err(e)?;
        let t = tx.open_table(BLOCKS).map_err(e)?;
        match t.get(height).map_err(e)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(e)?)),
            None => Ok(None),
        }
    }

    pub fn locate(&self, tx_hash: &Digest) -> Result<Option<TxLocation>, StoreError> {
        let tx = self.db.begin_read().map_err(e)?;
        let t = tx.open_table(TX_INDEX).map_err(e)?;
        Ok(t.get(&tx_hash.0).map_err(e)?.map(|v| {
            let (height, index) = v.value();
            TxLocation { height, index }
        }))
    }

    /// Every committed validator-set change, oldest first.
    pub fn validator_set_changes(&self) -> Result<Vec<CommittedChange>, StoreError> {
        let tx = self.db.begin_read().map_err(e)?;
        let t = tx.open_table(SET_CHANGES).map_err(e)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(e)? {
            let (_, v) = row.map_err(e)?;
            out.push(serde_json::from_slice(v.value()).map_err(e)?);
        }
        Ok(out)
    }

    /// Replaces the attestations of a committed block (attestations arrive after the block:
    /// each validator signs once the block is decided).
    pub fn set_attestations(
        &self,
        height: u64,
        attestations: &[crate::attestation::Attestation],
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(e)?;
        {
            let mut blocks = tx.open_table(BLOCKS).map_err(e)?;
            let mut block: CommittedBlock = match blocks.get(height).map_err(e)? {
                Some(v) => serde_json::from_slice(v.value()).map_err(e)?,
                None => return Err(StoreError(format!("no block at height {height}"))),
            };
            block.attestations = attestations.to_vec();
            let bytes = serde_json::to_vec(&block).map_err(e)?;
            blocks.insert(height, bytes.as_slice()).map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(())
    }

    /// Appends the next block and indexes its transactions, atomically and durably.
    pub fn append(&self, block: &CommittedBlock, tx_hashes: &[Digest]) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(block).map_err(e)?;
        let height = block.block.header.height;
        let tx = self.db.begin_write().map_err(e)?;
        {
            let mut blocks = tx.open_table(BLOCKS).map_err(e)?;
            let head = blocks
                .last()
                .map_err(e)?
                .map(|(k, _)| k.value())
                .unwrap_or(0);
            if height != head + 1 {
                return Err(StoreError(format!(
                    "block {height} does not follow head {head}"
                )));
            }
            blocks.insert(height, bytes.as_slice()).map_err(e)?;
            let mut index = tx.open_table(TX_INDEX).map_err(e)?;
            for (i, h) in tx_hashes.iter().enumerate() {
                let i = u32::try_from(i).map_err(e)?;
                index.insert(&h.0, (height, i)).map_err(e)?;
            }
            let mut changes = tx.open_table(SET_CHANGES).map_err(e)?;
            for (t, h) in block.block.transactions.iter().zip(tx_hashes) {
                if let Transaction::ValidatorSetChange(c) = t {
                    let record = CommittedChange {
                        committed_height: height,
                        transaction_hash: *h,
                        change: c.clone(),
                    };
                    let bytes = serde_json::to_vec(&record).map_err(e)?;
                    changes
                        .insert(c.effective_height, bytes.as_slice())
                        .map_err(e)?;
                }
            }
        }
        tx.commit().map_err(e)?;
        Ok(())
    }
}
