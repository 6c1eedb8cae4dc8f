//! Consensus signatures. Each signed string starts with its own purpose tag and the chain id,
//! so a consensus vote can never pass for a block attestation (`veritrace/block/v1`) or for a
//! vote of another chain, and the other way round.

use crate::context::{BlockId, ChainContext, Proposal, Signature, ValidatorKey, Vote};
use async_trait::async_trait;
use borsh::BorshSerialize;
use chain_core::keys::SigningKey;
use malachitebft_app_channel::app::types::core::{
    Round, SignedMessage, ValidatorProof, VoteExtensionScope, VoteType,
};
use malachitebft_signing::{Error, Signer, VerificationResult, Verifier};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::sync::Arc;

pub const VOTE_TAG: &[u8] = b"veritrace/consensus/vote/v1";
pub const PROPOSAL_TAG: &[u8] = b"veritrace/consensus/proposal/v1";
pub const VOTE_EXTENSION_TAG: &[u8] = b"veritrace/consensus/vote-extension/v1";
pub const VALIDATOR_PROOF_TAG: &[u8] = b"veritrace/consensus/validator-proof/v1";

/// `tag || u8 len(chain_id) || chain_id || borsh(body)`.
pub fn signing_bytes<T: BorshSerialize>(tag: &[u8], chain_id: &str, body: &T) -> Vec<u8> {
    let id = chain_id.as_bytes();
    let mut m = Vec::with_capacity(tag.len() + 1 + id.len() + 128);
    m.extend_from_slice(tag);
    m.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(id);
    // Writing into a Vec cannot fail.
    let _ = body.serialize(&mut m);
    m
}

#[derive(Clone)]
pub struct ChainVerifier {
    pub chain_id: String,
}

fn check(
    key: &ValidatorKey,
    message: &[u8],
    signature: &Signature,
) -> Result<VerificationResult, Error> {
    Ok(VerificationResult::from_bool(
        key.key.verify(message, &signature.0),
    ))
}

#[async_trait]
impl Verifier<ChainContext> for ChainVerifier {
    async fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &Signature,
        public_key: &ValidatorKey,
    ) -> Result<VerificationResult, Error> {
        let body = (
            &vote.vote_type,
            &vote.height,
            &vote.round,
            &vote.value,
            &vote.validator,
        );
        check(
            public_key,
            &signing_bytes(VOTE_TAG, &self.chain_id, &body),
            signature,
        )
    }

    async fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &Signature,
        public_key: &ValidatorKey,
    ) -> Result<VerificationResult, Error> {
        check(
            public_key,
            &signing_bytes(PROPOSAL_TAG, &self.chain_id, proposal),
            signature,
        )
    }

    async fn verify_signed_vote_extension(
        &self,
        scope: &VoteExtensionScope<ChainContext>,
        _extension: &(),
        signature: &Signature,
        public_key: &ValidatorKey,
    ) -> Result<VerificationResult, Error> {
        let body = (
            &scope.height,
            &scope.round,
            &scope.value_id,
            &scope.validator_address,
        );
        check(
            public_key,
            &signing_bytes(VOTE_EXTENSION_TAG, &self.chain_id, &body),
            signature,
        )
    }

    async fn verify_validator_proof(
        &self,
        proof: &ValidatorProof<ChainContext>,
    ) -> Result<VerificationResult, Error> {
        let Ok(key) = ValidatorKey::decode(&proof.public_key) else {
            return Ok(VerificationResult::Invalid);
        };
        check(
            &key,
            &signing_bytes(VALIDATOR_PROOF_TAG, &self.chain_id, &proof.preimage()),
            &proof.signature,
        )
    }
}

/// What this validator signed at each height and round, kept in its consensus store and
/// checked before it signs again: a restart that lost or reset the consensus library's
/// write-ahead log still never makes it sign two different votes or proposals for one
/// height, round and kind.
const SIGNED: TableDefinition<(u64, i64, u8), &[u8]> = TableDefinition::new("signed_messages");

/// Which message a [`SIGNED`] row records.
const PREVOTE: u8 = 0;
const PRECOMMIT: u8 = 1;
const PROPOSAL: u8 = 2;

/// The persisted last-signed record: every vote and proposal this validator signed, by height,
/// round and kind, until the height is committed.
pub struct SignedRecord {
    db: Arc<Database>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignRefusal {
    #[error(
        "already signed a different {kind} at height {height}, round {round}; refusing to sign a conflicting one"
    )]
    Conflict {
        kind: &'static str,
        height: u64,
        round: i64,
    },
    #[error("the record of signed messages cannot be read or written: {0}")]
    Store(String),
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        PREVOTE => "prevote",
        PRECOMMIT => "precommit",
        _ => "proposal",
    }
}

impl SignedRecord {
    /// Opens the record in `db` (the node's consensus store), creating its table.
    pub fn open(db: Arc<Database>) -> Result<SignedRecord, SignRefusal> {
        let tx = db.begin_write().map_err(store_err)?;
        tx.open_table(SIGNED).map_err(store_err)?;
        tx.commit().map_err(store_err)?;
        Ok(SignedRecord { db })
    }

    /// Records that `content` is signed at (height, round, kind), durably, unless something
    /// else was signed there already: then that earlier content comes back, and nothing is
    /// recorded. Signing the same content again is allowed (a message resent after a restart).
    fn claim(
        &self,
        height: u64,
        round: i64,
        kind: u8,
        content: &[u8],
    ) -> Result<Option<Vec<u8>>, SignRefusal> {
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut t = tx.open_table(SIGNED).map_err(store_err)?;
            if let Some(prior) = t.get((height, round, kind)).map_err(store_err)? {
                if prior.value() == content {
                    return Ok(None);
                }
                return Ok(Some(prior.value().to_vec()));
            }
            t.insert((height, round, kind), content)
                .map_err(store_err)?;
        }
        tx.commit().map_err(store_err)?;
        Ok(None)
    }

    /// The block this validator proposed at `height` and `round`, if it did.
    pub fn proposal_at(&self, height: u64, round: i64) -> Result<Option<BlockId>, SignRefusal> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let t = tx.open_table(SIGNED).map_err(store_err)?;
        let Some(content) = t.get((height, round, PROPOSAL)).map_err(store_err)? else {
            return Ok(None);
        };
        let (value, _pol_round): (BlockId, Round) =
            borsh::from_slice(content.value()).map_err(store_err)?;
        Ok(Some(value))
    }

    /// Forgets what was signed below `height` (committed heights are never voted on again).
    pub fn forget_below(tx: &redb::WriteTransaction, height: u64) -> Result<(), SignRefusal> {
        let mut t = tx.open_table(SIGNED).map_err(store_err)?;
        t.retain(|(h, _, _), _| h >= height).map_err(store_err)
    }
}

fn store_err<E: std::fmt::Display>(e: E) -> SignRefusal {
    SignRefusal::Store(e.to_string())
}

/// Signs this validator's votes and proposals with its chain key (Ed25519 or SM2).
#[derive(Clone)]
pub struct ChainSigner {
    pub chain_id: String,
    pub key: std::sync::Arc<SigningKey>,
    /// Checked and extended before each vote or proposal is signed; `None` signs anything
    /// (the deliberately equivocating test validator's second voice only).
    pub record: Option<Arc<SignedRecord>>,
}

fn refused(refusal: SignRefusal) -> Error {
    tracing::error!(%refusal, "not signing");
    Error::from_source(refusal)
}

impl ChainSigner {
    fn sign(&self, tag: &[u8], body: &impl BorshSerialize) -> Signature {
        Signature(self.key.sign(&signing_bytes(tag, &self.chain_id, body)))
    }
}

#[async_trait]
impl Signer<ChainContext> for ChainSigner {
    async fn sign_vote(&self, vote: Vote) -> Result<SignedMessage<ChainContext, Vote>, Error> {
        let body = (
            &vote.vote_type,
            &vote.height,
            &vote.round,
            &vote.value,
            &vote.validator,
        );
        if let Some(record) = &self.record {
            let kind = match vote.vote_type {
                VoteType::Prevote => PREVOTE,
                VoteType::Precommit => PRECOMMIT,
            };
            let content = borsh::to_vec(&vote.value).map_err(Error::from_source)?;
            let prior = record
                .claim(vote.height.0, vote.round.as_i64(), kind, &content)
                .map_err(refused)?;
            if let Some(prior) = prior {
                // Already voted otherwise here (a write-ahead log lost or reset): the earlier
                // vote is sent again, never a second, different one.
                let value = borsh::from_slice(&prior).map_err(Error::from_source)?;
                tracing::warn!(
                    height = %vote.height,
                    round = %vote.round,
                    kind = kind_name(kind),
                    "asked to vote differently where this validator has voted; repeating its vote"
                );
                let earlier = Vote { value, ..vote };
                let body = (
                    &earlier.vote_type,
                    &earlier.height,
                    &earlier.round,
                    &earlier.value,
                    &earlier.validator,
                );
                let signature = self.sign(VOTE_TAG, &body);
                return Ok(SignedMessage::new(earlier, signature));
            }
        }
        let signature = self.sign(VOTE_TAG, &body);
        Ok(SignedMessage::new(vote, signature))
    }

    async fn sign_proposal(
        &self,
        proposal: Proposal,
    ) -> Result<SignedMessage<ChainContext, Proposal>, Error> {
        if let Some(record) = &self.record {
            let content = borsh::to_vec(&(&proposal.value, &proposal.pol_round))
                .map_err(Error::from_source)?;
            let prior = record
                .claim(
                    proposal.height.0,
                    proposal.round.as_i64(),
                    PROPOSAL,
                    &content,
                )
                .map_err(refused)?;
            // The host proposes again what the record holds (`proposal_at`); anything else
            // would be a second proposal for one round.
            if prior.is_some() {
                return Err(refused(SignRefusal::Conflict {
                    kind: "proposal",
                    height: proposal.height.0,
                    round: proposal.round.as_i64(),
                }));
            }
        }
        let signature = self.sign(PROPOSAL_TAG, &proposal);
        Ok(SignedMessage::new(proposal, signature))
    }

    async fn sign_vote_extension(
        &self,
        scope: VoteExtensionScope<ChainContext>,
        extension: (),
    ) -> Result<SignedMessage<ChainContext, ()>, Error> {
        let body = (
            &scope.height,
            &scope.round,
            &scope.value_id,
            &scope.validator_address,
        );
        let signature = self.sign(VOTE_EXTENSION_TAG, &body);
        Ok(SignedMessage::new(extension, signature))
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<ChainContext>, Error> {
        let preimage = ValidatorProof::<ChainContext>::signing_bytes(&public_key, &peer_id);
        let signature = self.sign(VALIDATOR_PROOF_TAG, &preimage);
        Ok(ValidatorProof::new(public_key, peer_id, signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Address, BlockId, Height};
    use malachitebft_app_channel::app::types::core::{NilOrVal, Round};

    fn signer(dir: &std::path::Path) -> ChainSigner {
        let db = Arc::new(Database::create(dir.join("consensus.redb")).expect("store"));
        ChainSigner {
            chain_id: "test-chain".into(),
            key: Arc::new(
                SigningKey::generate(chain_core::keys::SignatureAlg::Ed25519).expect("key"),
            ),
            record: Some(Arc::new(SignedRecord::open(db).expect("record"))),
        }
    }

    fn vote(vote_type: VoteType, round: u32, value: NilOrVal<BlockId>) -> Vote {
        Vote {
            vote_type,
            height: Height(7),
            round: Round::new(round),
            value,
            validator: Address([1; 32]),
            extension: None,
        }
    }

    #[tokio::test]
    async fn a_conflicting_vote_is_never_signed_the_earlier_one_is_repeated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = signer(dir.path());
        let block = NilOrVal::Val(BlockId([9; 32]));
        let first = s
            .sign_vote(vote(VoteType::Prevote, 0, block))
            .await
            .expect("first prevote");
        // The same vote again (resent after a restart): the same signature.
        let again = s
            .sign_vote(vote(VoteType::Prevote, 0, block))
            .await
            .expect("same prevote");
        assert_eq!(first.signature, again.signature);
        // Another value at the same height, round and kind: the earlier vote comes back.
        let repeated = s
            .sign_vote(vote(VoteType::Prevote, 0, NilOrVal::Nil))
            .await
            .expect("the earlier vote");
        assert_eq!(repeated.message.value, block);
        assert_eq!(repeated.signature, first.signature);
        // Another kind or another round is a different message.
        s.sign_vote(vote(VoteType::Precommit, 0, NilOrVal::Nil))
            .await
            .expect("precommit");
        s.sign_vote(vote(VoteType::Prevote, 1, NilOrVal::Nil))
            .await
            .expect("next round");
    }

    #[tokio::test]
    async fn the_record_outlives_the_process_and_forgets_committed_heights() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = {
            let s = signer(dir.path());
            s.sign_vote(vote(
                VoteType::Precommit,
                2,
                NilOrVal::Val(BlockId([3; 32])),
            ))
            .await
            .expect("precommit");
            s.key.clone()
        };
        // Reopened, as after a restart: still refuses the conflicting vote.
        let db = Arc::new(Database::create(dir.path().join("consensus.redb")).expect("store"));
        let record = Arc::new(SignedRecord::open(db.clone()).expect("record"));
        let s = ChainSigner {
            chain_id: "test-chain".into(),
            key,
            record: Some(record),
        };
        let repeated = s
            .sign_vote(vote(VoteType::Precommit, 2, NilOrVal::Nil))
            .await
            .expect("the earlier vote");
        assert_eq!(repeated.message.value, NilOrVal::Val(BlockId([3; 32])));
        // Once height 7 is committed its record goes.
        let tx = db.begin_write().expect("write");
        SignedRecord::forget_below(&tx, 8).expect("forget");
        tx.commit().expect("commit");
        s.sign_vote(vote(VoteType::Precommit, 2, NilOrVal::Nil))
            .await
            .expect("nothing recorded below the committed head");
    }

    #[tokio::test]
    async fn a_conflicting_proposal_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = signer(dir.path());
        let proposal = |id: u8| Proposal {
            height: Height(3),
            round: Round::new(0),
            value: BlockId([id; 32]),
            pol_round: Round::Nil,
            validator: Address([1; 32]),
        };
        s.sign_proposal(proposal(1)).await.expect("proposal");
        s.sign_proposal(proposal(1)).await.expect("the same again");
        assert!(s.sign_proposal(proposal(2)).await.is_err());
        let record = s.record.as_ref().expect("record");
        assert_eq!(
            record.proposal_at(3, 0).expect("read"),
            Some(BlockId([1; 32]))
        );
        assert_eq!(record.proposal_at(3, 1).expect("read"), None);
    }
}
