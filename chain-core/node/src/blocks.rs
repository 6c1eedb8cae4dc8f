//! What makes a block acceptable to an honest validator, and how a proposer builds one.
//! Pure functions over the chain state they are given; no I/O.

use chain_core::block::{Block, BlockHeader, Transaction, transaction_tree};
use chain_core::receipt::is_block_time;
use chain_core::{Digest, HashAlg, ValidatorSetChange};
use std::collections::HashSet;

/// Most transactions one block carries.
pub const MAX_BLOCK_TRANSACTIONS: usize = 10_000;

/// How far ahead of a validator's clock a proposed block's time may be.
pub const MAX_CLOCK_DRIFT_MS: i64 = 2_000;

/// The state a block at `height` must build on.
pub struct Parent<'a> {
    pub chain_id: &'a str,
    pub hash_alg: HashAlg,
    pub height: u64,
    pub hash: Digest,
    /// `None` for the genesis (block 1 has no time to follow).
    pub time: Option<&'a str>,
    /// Hash of the validator set in force at `height + 1`, the new block's height.
    pub validator_set_hash: Digest,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockError {
    #[error("block is for chain {0:?}")]
    Chain(String),
    #[error("block height {got} where {expected} is next")]
    Height { got: u64, expected: u64 },
    #[error("block does not follow the previous block")]
    Previous,
    #[error("block time {0:?} is not an RFC 3339 UTC time with milliseconds")]
    Time(String),
    #[error("block time {0} is before the previous block")]
    TimeBeforeParent(String),
    #[error("block time {0} is ahead of this validator's clock")]
    TimeAhead(String),
    #[error("block names validator set {0}, not the set in force")]
    ValidatorSet(Digest),
    #[error("proposer {0:?} is not a validator")]
    Proposer(String),
    #[error("block states {stated} transactions and carries {actual}")]
    TransactionCount { stated: u64, actual: usize },
    #[error("block carries more than {MAX_BLOCK_TRANSACTIONS} transactions")]
    TooManyTransactions,
    #[error("block transaction root {stated} does not match its transactions ({computed})")]
    TransactionRoot { stated: Digest, computed: Digest },
    #[error("block carries more than one validator-set change")]
    TwoSetChanges,
    #[error("transaction {index}: {reason}")]
    Transaction { index: usize, reason: String },
    #[error("block is not canonical JSON of a block: {0}")]
    Encoding(String),
}

/// Checks a transaction on its own (the chain state is checked by the caller).
pub fn check_transaction(chain_id: &str, tx: &Transaction) -> Result<(), String> {
    if tx.chain_id() != chain_id {
        return Err(format!(
            "transaction names chain {:?}, this is {chain_id:?}",
            tx.chain_id()
        ));
    }
    match tx {
        Transaction::Anchor(a) => {
            if a.batch_size == 0 || a.batch_id.is_empty() || a.batch_id.len() > 64 {
                return Err("anchor transaction needs a batch id and at least one leaf".into());
            }
        }
        // Approvals and timing depend on the chain state: `validate_block`'s caller checks.
        Transaction::ValidatorSetChange(_) => {}
    }
    Ok(())
}

/// The bytes a block travels as: its JSON, as stored.
pub fn encode_block(block: &Block) -> Vec<u8> {
    // Serialising our own plain structs cannot fail.
    serde_json::to_vec(block).unwrap_or_default()
}

pub fn decode_block(bytes: &[u8]) -> Result<Block, BlockError> {
    serde_json::from_slice(bytes).map_err(|e| BlockError::Encoding(e.to_string()))
}

/// Validates `block` as the next block after `parent`; returns its hash and transaction hashes.
/// `is_committed` tells whether a transaction hash is already on the chain; `check_change`
/// whether a validator-set change may be committed at this height. `now` is checked
/// against the block time only for fresh proposals (a block fetched while catching up is
/// already decided and may be old).
pub fn validate_block(
    parent: &Parent<'_>,
    block: &Block,
    is_validator: impl Fn(&str) -> bool,
    is_committed: impl Fn(&Digest) -> bool,
    check_change: impl Fn(&ValidatorSetChange) -> Result<(), String>,
    now: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(Digest, Vec<Digest>), BlockError> {
    let h = &block.header;
    if h.chain_id != parent.chain_id {
        return Err(BlockError::Chain(h.chain_id.clone()));
    }
    if h.height != parent.height + 1 {
        return Err(BlockError::Height {
            got: h.height,
            expected: parent.height + 1,
        });
    }
    if h.previous_hash != parent.hash {
        return Err(BlockError::Previous);
    }
    if !is_block_time(&h.time) {
        return Err(BlockError::Time(h.time.clone()));
    }
    // Same fixed-width format, so string order is time order.
    if let Some(pt) = parent.time
        && h.time.as_str() < pt
    {
        return Err(BlockError::TimeBeforeParent(h.time.clone()));
    }
    if let Some(now) = now {
        let t = chrono::DateTime::parse_from_rfc3339(&h.time)
            .map_err(|_| BlockError::Time(h.time.clone()))?;
        if t.timestamp_millis() > now.timestamp_millis() + MAX_CLOCK_DRIFT_MS {
            return Err(BlockError::TimeAhead(h.time.clone()));
        }
    }
    if h.validator_set_hash != parent.validator_set_hash {
        return Err(BlockError::ValidatorSet(h.validator_set_hash));
    }
    if !is_validator(&h.proposer) {
        return Err(BlockError::Proposer(h.proposer.clone()));
    }
    if block.transactions.len() > MAX_BLOCK_TRANSACTIONS {
        return Err(BlockError::TooManyTransactions);
    }
    if h.transaction_count != block.transactions.len() as u64 {
        return Err(BlockError::TransactionCount {
            stated: h.transaction_count,
            actual: block.transactions.len(),
        });
    }
    let mut hashes = Vec::with_capacity(block.transactions.len());
    let mut seen = HashSet::with_capacity(block.transactions.len());
    let mut changes = 0;
    for (index, tx) in block.transactions.iter().enumerate() {
        check_transaction(parent.chain_id, tx)
            .map_err(|reason| BlockError::Transaction { index, reason })?;
        if let Transaction::ValidatorSetChange(c) = tx {
            changes += 1;
            if changes > 1 {
                return Err(BlockError::TwoSetChanges);
            }
            check_change(c).map_err(|reason| BlockError::Transaction { index, reason })?;
        }
        let hash = tx
            .hash(parent.hash_alg)
            .map_err(|e| BlockError::Transaction {
                index,
                reason: e.to_string(),
            })?;
        if !seen.insert(hash) {
            return Err(BlockError::Transaction {
                index,
                reason: "appears twice in the block".into(),
            });
        }
        if is_committed(&hash) {
            return Err(BlockError::Transaction {
                index,
                reason: "is already on the chain".into(),
            });
        }
        hashes.push(hash);
    }
    let computed = transaction_tree(parent.hash_alg, &hashes).root();
    if computed != h.transaction_root {
        return Err(BlockError::TransactionRoot {
            stated: h.transaction_root,
            computed,
        });
    }
    let hash = h
        .hash(parent.hash_alg)
        .map_err(|e| BlockError::Encoding(e.to_string()))?;
    Ok((hash, hashes))
}

/// Builds the next block from `transactions` (already filtered by the caller).
pub fn build_block(
    parent: &Parent<'_>,
    proposer: &str,
    transactions: Vec<(Digest, Transaction)>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Block, Digest), BlockError> {
    let hashes: Vec<Digest> = transactions.iter().map(|(h, _)| *h).collect();
    let header = BlockHeader {
        chain_id: parent.chain_id.to_string(),
        height: parent.height + 1,
        previous_hash: parent.hash,
        time: block_time(parent.time, now),
        transaction_root: transaction_tree(parent.hash_alg, &hashes).root(),
        transaction_count: hashes.len() as u64,
        validator_set_hash: parent.validator_set_hash,
        proposer: proposer.to_string(),
    };
    let hash = header
        .hash(parent.hash_alg)
        .map_err(|e| BlockError::Encoding(e.to_string()))?;
    Ok((
        Block {
            header,
            transactions: transactions.into_iter().map(|(_, t)| t).collect(),
        },
        hash,
    ))
}

/// `now` in RFC 3339 UTC with milliseconds, never earlier than the previous block's time.
pub fn block_time(previous: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> String {
    let t = match previous.and_then(|p| chrono::DateTime::parse_from_rfc3339(p).ok()) {
        Some(p) if p > now => p.with_timezone(&chrono::Utc),
        _ => now,
    };
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chain_core::block::AnchorTx;

    fn anchor(i: u64) -> (Digest, Transaction) {
        let tx = Transaction::Anchor(AnchorTx {
            chain_id: "c".into(),
            batch_id: format!("batch-{i}"),
            batch_root: HashAlg::Sha3_256.hash(&i.to_be_bytes()),
            batch_size: 1,
        });
        (tx.hash(HashAlg::Sha3_256).expect("hash"), tx)
    }

    fn parent() -> Parent<'static> {
        Parent {
            chain_id: "c",
            hash_alg: HashAlg::Sha3_256,
            height: 4,
            hash: HashAlg::Sha3_256.hash(b"block 4"),
            time: Some("2026-11-25T10:00:00.000Z"),
            validator_set_hash: HashAlg::Sha3_256.hash(b"set"),
        }
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-11-25T10:00:01.000Z")
            .expect("time")
            .with_timezone(&chrono::Utc)
    }

    fn check(block: &Block) -> Result<(Digest, Vec<Digest>), BlockError> {
        validate_block(
            &parent(),
            block,
            |n| n == "v1",
            |_| false,
            |_| Ok(()),
            Some(now()),
        )
    }

    #[test]
    fn a_built_block_validates_and_every_forgery_is_named() {
        let (block, hash) =
            build_block(&parent(), "v1", vec![anchor(1), anchor(2)], now()).expect("build");
        assert_eq!(check(&block).expect("valid").0, hash);

        let mut b = block.clone();
        b.header.transaction_root = HashAlg::Sha3_256.hash(b"other");
        assert!(matches!(check(&b), Err(BlockError::TransactionRoot { .. })));

        let mut b = block.clone();
        b.transactions.pop();
        assert!(matches!(
            check(&b),
            Err(BlockError::TransactionCount { .. })
        ));

        let mut b = block.clone();
        b.transactions[1] = b.transactions[0].clone();
        assert!(matches!(
            check(&b),
            Err(BlockError::Transaction { index: 1, .. })
        ));

        let mut b = block.clone();
        b.header.previous_hash = HashAlg::Sha3_256.hash(b"fork");
        assert_eq!(check(&b), Err(BlockError::Previous));

        let mut b = block.clone();
        b.header.height = 6;
        assert!(matches!(check(&b), Err(BlockError::Height { .. })));

        let mut b = block.clone();
        b.header.proposer = "intruder".into();
        assert!(matches!(check(&b), Err(BlockError::Proposer(_))));

        let mut b = block.clone();
        b.header.time = "2026-11-25T09:59:59.999Z".into();
        assert!(matches!(check(&b), Err(BlockError::TimeBeforeParent(_))));

        let mut b = block.clone();
        b.header.time = "2026-11-25T10:00:03.001Z".into();
        assert!(matches!(check(&b), Err(BlockError::TimeAhead(_))));

        let mut b = block.clone();
        b.header.validator_set_hash = HashAlg::Sha3_256.hash(b"other set");
        assert!(matches!(check(&b), Err(BlockError::ValidatorSet(_))));

        let mut b = block;
        b.header.chain_id = "other".into();
        assert!(matches!(check(&b), Err(BlockError::Chain(_))));
    }

    #[test]
    fn a_committed_transaction_cannot_be_included_again() {
        let (block, _) = build_block(&parent(), "v1", vec![anchor(1)], now()).expect("build");
        let committed = anchor(1).0;
        let r = validate_block(
            &parent(),
            &block,
            |_| true,
            |h| *h == committed,
            |_| Ok(()),
            None,
        );
        assert!(matches!(r, Err(BlockError::Transaction { index: 0, .. })));
    }

    #[test]
    fn validator_set_changes_are_checked_and_one_per_block() {
        let change = |h: u64| {
            let c = ValidatorSetChange {
                chain_id: "c".into(),
                effective_height: h,
                previous_set_hash: HashAlg::Sha3_256.hash(b"set"),
                validator_set: chain_core::ValidatorSet { validators: vec![] },
                approvals: vec![],
            };
            let tx = Transaction::ValidatorSetChange(c);
            (tx.hash(HashAlg::Sha3_256).expect("hash"), tx)
        };
        let refuse = |c: &ValidatorSetChange| {
            if c.effective_height < 7 {
                Err("too soon".to_string())
            } else {
                Ok(())
            }
        };
        let validate = |txs| {
            let (block, _) = build_block(&parent(), "v1", txs, now()).expect("build");
            validate_block(&parent(), &block, |_| true, |_| false, refuse, None)
        };
        assert!(validate(vec![anchor(1), change(9)]).is_ok());
        assert_eq!(
            validate(vec![change(6)]),
            Err(BlockError::Transaction {
                index: 0,
                reason: "too soon".into()
            })
        );
        assert_eq!(
            validate(vec![change(9), change(10)]),
            Err(BlockError::TwoSetChanges)
        );
    }
}
