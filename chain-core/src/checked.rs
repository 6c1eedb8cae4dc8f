//! A block as a client may use it: one a node served, checked against the genesis and the
//! validator sets before anything in it is believed. A node can answer anything; what passes
//! here is a block whose header hashes to its hash, whose transactions are the ones its header
//! commits to, and which a quorum of the set in force at its height validly attested.

use crate::block::{CommittedBlock, transaction_tree};
use crate::genesis::Genesis;
use crate::governance::ValidatorSetHistory;
use crate::hash::Digest;
use crate::receipt::{is_block_time, valid_attestations};

/// Why a block a node served is not used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockCheckError {
    #[error("height 0 is the genesis, not a block")]
    GenesisHeight,
    #[error("block {asked} was asked for but the block is at height {got}")]
    Height { asked: u64, got: u64 },
    #[error("the block is of chain {block:?} but the genesis is of chain {genesis:?}")]
    Chain { block: String, genesis: String },
    #[error("the block time {0:?} is not an RFC 3339 UTC time with milliseconds")]
    Time(String),
    #[error("the block states hash {stated} but its header hashes to {computed}")]
    Hash { stated: Digest, computed: Digest },
    #[error("the header states {stated} transactions and the block carries {actual}")]
    TransactionCount { stated: u64, actual: usize },
    #[error("the header states transaction root {stated} but the transactions give {computed}")]
    TransactionRoot { stated: Digest, computed: Digest },
    #[error(
        "the header names validator set {stated} but the set in force at its height is {expected}"
    )]
    ValidatorSet { stated: Digest, expected: Digest },
    #[error("the proposer {0:?} is not a validator of the set in force")]
    Proposer(String),
    #[error(
        "the valid attestations carry {signed} of {total} voting power; more than 2/3 is needed"
    )]
    NoQuorum { signed: u64, total: u64 },
    #[error("canonical form: {0}")]
    Canonical(String),
}

impl BlockCheckError {
    /// True when the block may be genuine and the client's validator sets stale: learning the
    /// chain's latest validator-set changes may make it pass.
    pub fn may_need_newer_sets(&self) -> bool {
        matches!(self, BlockCheckError::ValidatorSet { .. })
    }
}

/// Checks `block`, served as the chain's block at `height`, against the genesis and the
/// validator sets `sets` (each change verified from the genesis), and returns it with its
/// attestations reduced to the ones that count (`receipt::valid_attestations`): junk beside
/// them is dropped, never passed on.
///
/// Every hash is recomputed with the genesis' hash algorithm, so a block hashed with another
/// one fails the hash check. What is checked is what a receipt's verification needs of the
/// block (`docs/receipts.md` §10), and that the transactions are the ones the header commits
/// to; the link to the previous block is not checked (a receipt does not establish it either).
pub fn checked_block(
    genesis: &Genesis,
    sets: &ValidatorSetHistory,
    height: u64,
    mut block: CommittedBlock,
) -> Result<CommittedBlock, BlockCheckError> {
    let alg = genesis.hash_alg;
    let header = &block.block.header;
    if height == 0 || header.height == 0 {
        return Err(BlockCheckError::GenesisHeight);
    }
    if header.height != height {
        return Err(BlockCheckError::Height {
            asked: height,
            got: header.height,
        });
    }
    if header.chain_id != genesis.chain_id {
        return Err(BlockCheckError::Chain {
            block: header.chain_id.clone(),
            genesis: genesis.chain_id.clone(),
        });
    }
    if !is_block_time(&header.time) {
        return Err(BlockCheckError::Time(header.time.clone()));
    }
    let computed = header
        .hash(alg)
        .map_err(|e| BlockCheckError::Canonical(e.to_string()))?;
    if computed != block.hash {
        return Err(BlockCheckError::Hash {
            stated: block.hash,
            computed,
        });
    }
    let transactions = &block.block.transactions;
    if header.transaction_count != transactions.len() as u64 {
        return Err(BlockCheckError::TransactionCount {
            stated: header.transaction_count,
            actual: transactions.len(),
        });
    }
    let tx_hashes = transactions
        .iter()
        .map(|t| t.hash(alg))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BlockCheckError::Canonical(e.to_string()))?;
    let root = transaction_tree(alg, &tx_hashes).root();
    if root != header.transaction_root {
        return Err(BlockCheckError::TransactionRoot {
            stated: header.transaction_root,
            computed: root,
        });
    }
    let epoch = sets.at(height);
    if header.validator_set_hash != epoch.hash {
        return Err(BlockCheckError::ValidatorSet {
            stated: header.validator_set_hash,
            expected: epoch.hash,
        });
    }
    if epoch.set.get(&header.proposer).is_none() {
        return Err(BlockCheckError::Proposer(header.proposer.clone()));
    }
    let attestations = valid_attestations(genesis, &epoch.set, &block);
    let signed = attestations
        .iter()
        .filter_map(|a| epoch.set.get(&a.validator))
        .fold(0u64, |acc, v| acc.saturating_add(v.power));
    if !epoch.set.is_quorum(signed) {
        return Err(BlockCheckError::NoQuorum {
            signed,
            total: epoch.set.total_power(),
        });
    }
    block.attestations = attestations;
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attestation::{Attestation, attest};
    use crate::block::{AnchorTx, Block, BlockHeader, Transaction};
    use crate::genesis::{SignatureAlg, Validator, ValidatorSet};
    use crate::governance::{CommittedChange, ValidatorSetChange};
    use crate::hash::HashAlg;
    use crate::keys::SigningKey;

    const ALG: HashAlg = HashAlg::Sha3_256;

    fn keys(n: u8) -> Vec<SigningKey> {
        (1..=n)
            .map(|i| SigningKey::from_secret(SignatureAlg::Ed25519, &[i; 32]).expect("key"))
            .collect()
    }

    fn set_of(keys: &[SigningKey]) -> ValidatorSet {
        ValidatorSet {
            validators: keys
                .iter()
                .enumerate()
                .map(|(i, k)| Validator {
                    name: format!("v{}", i + 1),
                    organisation: format!("org {}", i + 1),
                    public_key: k.public_key_hex(),
                    power: 1,
                })
                .collect(),
        }
    }

    fn genesis(keys: &[SigningKey]) -> Genesis {
        Genesis::create(
            Some("checked-test"),
            "x",
            ALG,
            SignatureAlg::Ed25519,
            set_of(&keys[..4]).validators,
        )
        .expect("genesis")
    }

    fn anchor(i: u64) -> Transaction {
        Transaction::Anchor(AnchorTx {
            chain_id: "checked-test".into(),
            batch_id: format!("batch-{i}"),
            batch_root: ALG.hash(&i.to_be_bytes()),
            batch_size: 1,
        })
    }

    /// Block `height` of three transactions, attested by `signers` (indexes into `keys`, named
    /// by `set`), with header hash and transaction root as an honest node computes them.
    fn block(
        keys: &[SigningKey],
        set: &ValidatorSet,
        height: u64,
        signers: &[usize],
    ) -> CommittedBlock {
        let transactions = vec![anchor(1), anchor(2), anchor(3)];
        let hashes: Vec<Digest> = transactions
            .iter()
            .map(|t| t.hash(ALG).expect("hash"))
            .collect();
        let header = BlockHeader {
            chain_id: "checked-test".into(),
            height,
            previous_hash: ALG.hash(b"previous"),
            time: "2026-12-02T09:30:00.123Z".into(),
            transaction_root: transaction_tree(ALG, &hashes).root(),
            transaction_count: hashes.len() as u64,
            validator_set_hash: set.hash(ALG).expect("set hash"),
            proposer: set.validators[0].name.clone(),
        };
        resealed(
            keys,
            set,
            CommittedBlock {
                block: Block {
                    header,
                    transactions,
                },
                hash: Digest([0; 32]),
                attestations: Vec::new(),
            },
            signers,
        )
    }

    /// The block with its hash recomputed and attested again, as a quorum of liars would.
    fn resealed(
        keys: &[SigningKey],
        set: &ValidatorSet,
        mut b: CommittedBlock,
        signers: &[usize],
    ) -> CommittedBlock {
        b.hash = b.block.header.hash(ALG).expect("hash");
        b.attestations = signers
            .iter()
            .map(|i| {
                attest(
                    &keys[*i],
                    &set.validators[*i].name,
                    "checked-test",
                    b.block.header.height,
                    &b.hash,
                )
            })
            .collect();
        b
    }

    #[test]
    fn an_honest_block_passes_whole() {
        let k = keys(4);
        let g = genesis(&k);
        let sets = ValidatorSetHistory::new(&g).unwrap();
        let b = block(&k, &g.validator_set, 7, &[0, 1, 2, 3]);
        assert_eq!(checked_block(&g, &sets, 7, b.clone()), Ok(b));
    }

    #[test]
    fn every_tamper_is_refused() {
        let k = keys(4);
        let g = genesis(&k);
        let sets = ValidatorSetHistory::new(&g).unwrap();
        let good = block(&k, &g.validator_set, 7, &[0, 1, 2]);
        let check = |b: CommittedBlock| checked_block(&g, &sets, 7, b);

        // A header field changed after attesting: the stated hash is not the header's.
        let mut b = good.clone();
        b.block.header.time = "2026-12-02T09:30:00.124Z".into();
        assert!(matches!(check(b), Err(BlockCheckError::Hash { .. })));
        // ... and with the hash recomputed too, the attestations no longer verify.
        let mut b = good.clone();
        b.block.header.previous_hash = ALG.hash(b"fork");
        b.hash = b.block.header.hash(ALG).unwrap();
        assert_eq!(
            check(b),
            Err(BlockCheckError::NoQuorum {
                signed: 0,
                total: 4
            })
        );

        // A transaction swapped for another.
        let mut b = good.clone();
        b.block.transactions[1] = anchor(9);
        assert!(matches!(
            check(b),
            Err(BlockCheckError::TransactionRoot { .. })
        ));
        // Two swapped in place: same set, another order, another root.
        let mut b = good.clone();
        b.block.transactions.swap(0, 2);
        assert!(matches!(
            check(b),
            Err(BlockCheckError::TransactionRoot { .. })
        ));

        // A transaction dropped.
        let mut b = good.clone();
        b.block.transactions.pop();
        assert_eq!(
            check(b),
            Err(BlockCheckError::TransactionCount {
                stated: 3,
                actual: 2
            })
        );

        // Another height's block, genuine as it is.
        let other = block(&k, &g.validator_set, 8, &[0, 1, 2]);
        assert_eq!(
            check(other.clone()),
            Err(BlockCheckError::Height { asked: 7, got: 8 })
        );
        assert_eq!(
            checked_block(&g, &sets, 0, other),
            Err(BlockCheckError::GenesisHeight)
        );

        // Another chain.
        let mut b = good.clone();
        b.block.header.chain_id = "other-chain".into();
        assert!(matches!(
            check(resealed(&k, &g.validator_set, b, &[0, 1, 2])),
            Err(BlockCheckError::Chain { .. })
        ));

        // Another hash algorithm: the stated hash is not the genesis algorithm's.
        let mut b = good.clone();
        b.hash = b.block.header.hash(HashAlg::Sm3).unwrap();
        assert!(matches!(check(b), Err(BlockCheckError::Hash { .. })));

        // A header naming another validator set, attested by the validators all the same.
        let mut b = good.clone();
        b.block.header.validator_set_hash = ALG.hash(b"another set");
        assert!(matches!(
            check(resealed(&k, &g.validator_set, b, &[0, 1, 2])),
            Err(BlockCheckError::ValidatorSet { .. })
        ));

        // A proposer from outside the set.
        let mut b = good.clone();
        b.block.header.proposer = "intruder".into();
        assert_eq!(
            check(resealed(&k, &g.validator_set, b, &[0, 1, 2])),
            Err(BlockCheckError::Proposer("intruder".into()))
        );

        // A time a receipt verifier refuses.
        let mut b = good.clone();
        b.block.header.time = "2026-12-02T09:30:00Z".into();
        assert!(matches!(
            check(resealed(&k, &g.validator_set, b, &[0, 1, 2])),
            Err(BlockCheckError::Time(_))
        ));
    }

    #[test]
    fn junk_attestations_are_kept_out_and_a_missing_quorum_refused() {
        let k = keys(5);
        let g = genesis(&k);
        let sets = ValidatorSetHistory::new(&g).unwrap();
        let good = block(&k, &g.validator_set, 7, &[0, 1, 2]);

        let mut served = good.clone();
        let garbage = Attestation {
            validator: "v4".into(),
            signature: "00".repeat(64),
        };
        let malformed = Attestation {
            validator: "v4".into(),
            signature: "not hex".into(),
        };
        let stranger = attest(&k[4], "v5", "checked-test", 7, &good.hash);
        let repeated = good.attestations[0].clone();
        // Another height's signature by a validator of the set.
        let replayed = attest(&k[3], "v4", "checked-test", 8, &good.hash);
        served
            .attestations
            .splice(1..1, [garbage, malformed, stranger, repeated, replayed]);
        let checked = checked_block(&g, &sets, 7, served).expect("a quorum remains");
        assert_eq!(checked, good, "only the valid attestations, in their order");

        // Two valid attestations of four: refused, whatever junk is beside them.
        let mut short = block(&k, &g.validator_set, 7, &[0, 1]);
        short.attestations.push(Attestation {
            validator: "v3".into(),
            signature: "11".repeat(64),
        });
        assert_eq!(
            checked_block(&g, &sets, 7, short),
            Err(BlockCheckError::NoQuorum {
                signed: 2,
                total: 4
            })
        );
    }

    #[test]
    fn a_block_is_checked_against_the_set_in_force_at_its_height() {
        let k = keys(5);
        let g = genesis(&k);
        let five = set_of(&k);
        let mut change =
            ValidatorSetChange::propose(&g, &g.validator_set, 10, five.clone()).expect("change");
        for (i, key) in k.iter().take(3).enumerate() {
            change
                .approve(ALG, &format!("v{}", i + 1), key)
                .expect("approve");
        }
        let committed = CommittedChange {
            committed_height: 8,
            transaction_hash: ALG.hash(b"change"),
            change,
        };
        let genesis_only = ValidatorSetHistory::new(&g).unwrap();
        let sets = ValidatorSetHistory::from_changes(&g, &[committed]).unwrap();

        // Before the change, the genesis set attests; from it on, the five.
        let before = block(&k, &g.validator_set, 9, &[0, 1, 2]);
        assert!(checked_block(&g, &sets, 9, before).is_ok());
        let after = block(&k, &five, 10, &[0, 1, 2, 4]);
        assert!(checked_block(&g, &sets, 10, after.clone()).is_ok());
        // A client that has not learned the change yet is told so.
        let err = checked_block(&g, &genesis_only, 10, after).unwrap_err();
        assert!(err.may_need_newer_sets(), "{err}");
        // The old set's signatures on a block of the new set's height: refused.
        let stale = block(&k, &g.validator_set, 10, &[0, 1, 2, 3]);
        assert!(matches!(
            checked_block(&g, &sets, 10, stale),
            Err(BlockCheckError::ValidatorSet { .. })
        ));
        // Three of five is not more than 2/3.
        let three = block(&k, &five, 10, &[0, 1, 2]);
        assert_eq!(
            checked_block(&g, &sets, 10, three),
            Err(BlockCheckError::NoQuorum {
                signed: 3,
                total: 5
            })
        );
    }
}
