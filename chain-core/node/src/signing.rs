//! Consensus signatures. Each signed string starts with its own purpose tag and the chain id,
//! so a consensus vote can never pass for a block attestation (`veritrace/block/v1`) or for a
//! vote of another chain, and the other way round.

use crate::context::{ChainContext, Proposal, Signature, ValidatorKey, Vote};
use async_trait::async_trait;
use borsh::BorshSerialize;
use chain_core::keys::SigningKey;
use malachitebft_app_channel::app::types::core::{
    SignedMessage, ValidatorProof, VoteExtensionScope,
};
use malachitebft_signing::{Error, Signer, VerificationResult, Verifier};

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

/// Signs this validator's votes and proposals with its chain key (Ed25519 or SM2).
#[derive(Clone)]
pub struct ChainSigner {
    pub chain_id: String,
    pub key: std::sync::Arc<SigningKey>,
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
        let signature = self.sign(VOTE_TAG, &body);
        Ok(SignedMessage::new(vote, signature))
    }

    async fn sign_proposal(
        &self,
        proposal: Proposal,
    ) -> Result<SignedMessage<ChainContext, Proposal>, Error> {
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
