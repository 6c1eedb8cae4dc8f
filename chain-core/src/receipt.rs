//! Receipts and their verification: the light client. It needs the genesis document and the
//! receipt, nothing else: no network, no trust in the operator. `docs/receipts.md` specifies
//! every step below so that it can be written again in another language.

use crate::attestation::{Attestation, verify_attestation};
use crate::block::{BlockHeader, Transaction};
use crate::canonical::canonical_digest;
use crate::genesis::Genesis;
use crate::governance::{CommittedChange, ValidatorSetChange, ValidatorSetHistory};
use crate::hash::{ContentHash, ContentHashAlg, Digest};
use crate::keys::parse_public_key;
use crate::merkle::{InclusionError, InclusionProof, leaf_hash};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The receipt format this verifier reads.
pub const RECEIPT_VERSION: u32 = 1;

/// A receipt, as served by `GET /receipts/{event_id}` and written to a file by clients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Receipt {
    /// The event is recorded but not yet anchored: not a proof of anything yet.
    Pending(PendingReceipt),
    /// Complete and final: everything needed to verify, offline, forever.
    Anchored(Box<AnchoredReceipt>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingReceipt {
    pub version: u32,
    pub event_id: String,
    pub event_digest: Digest,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchoredReceipt {
    pub version: u32,
    /// The event envelope exactly as recorded; its digest is `H(JCS(event))`.
    pub event: serde_json::Value,
    pub event_digest: Digest,
    /// Proof that the event digest is a leaf of the anchored batch.
    pub batch_proof: LeafProof,
    /// The transaction that anchored the batch root, and its proof of inclusion in the block.
    pub transaction: Transaction,
    pub transaction_proof: LeafProof,
    /// Every validator-set change in force at the block's height, oldest first: the chain of
    /// sets from the genesis set to the one that attests the block.
    pub validator_set_changes: Vec<ValidatorSetChange>,
    /// The block header and the attestations that make it final.
    pub block_header: BlockHeader,
    pub attestations: Vec<Attestation>,
}

/// Position of a leaf and its RFC 9162 audit path; the tree size comes from the structure
/// that commits to the root (the anchor transaction or the block header).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeafProof {
    pub leaf_index: u64,
    pub path: Vec<Digest>,
}

/// What a verified receipt proves: the event existed, exactly as in the receipt, no later than
/// `block_time`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifiedReceipt {
    pub chain_id: String,
    pub height: u64,
    pub block_hash: Digest,
    pub block_time: String,
    pub event_id: String,
    pub event_type: String,
    pub event_digest: Digest,
    pub batch_root: Digest,
    pub signers: Vec<String>,
    pub signed_power: u64,
    pub total_power: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the receipt is not a well-formed receipt: {0}")]
    Malformed(String),
    #[error("the receipt is pending: it proves nothing yet; fetch it again once anchored")]
    Pending,
    #[error("receipt version {0} is not supported (this verifier reads version {RECEIPT_VERSION})")]
    Version(u32),
    #[error("the receipt is from chain {receipt:?} but the genesis is of chain {genesis:?}")]
    ChainMismatch { receipt: String, genesis: String },
    #[error(
        "event digest mismatch: the event hashes to {computed} but the receipt states {stated}; the event or its digest was altered"
    )]
    EventDigest { computed: Digest, stated: Digest },
    #[error("the event envelope lacks its {0:?} field")]
    EventField(&'static str),
    #[error("the batch proof does not place the event in the anchored batch: {0}")]
    BatchProof(InclusionError),
    #[error("the transaction proof does not place the anchor transaction in the block: {0}")]
    TransactionProof(InclusionError),
    #[error(
        "the block's validator set {stated} is not the set in force at its height, {expected}; the block header was altered or is signed by a set not (or no longer) in force"
    )]
    ValidatorSet { stated: Digest, expected: Digest },
    #[error("validator-set change #{index} does not follow from the set before it: {reason}")]
    ValidatorSetChange { index: usize, reason: String },
    #[error("the block time {0:?} is not an RFC 3339 UTC time")]
    BlockTime(String),
    #[error("attestation by {0:?}: no such validator in the validator set")]
    UnknownValidator(String),
    #[error("attestation by {0:?} appears twice")]
    DuplicateAttestation(String),
    #[error(
        "attestation by {validator:?} does not match block {block_hash} at height {height}: {reason}; the block header or the signature was altered"
    )]
    BadSignature {
        validator: String,
        block_hash: Digest,
        height: u64,
        reason: String,
    },
    #[error("the attestations carry {signed} of {total} voting power; more than 2/3 is needed")]
    NoQuorum { signed: u64, total: u64 },
    #[error("the genesis validator {0:?} has an invalid public key")]
    GenesisKey(String),
    #[error("the event attests no document: its payload has no content_hash")]
    NoContentHash,
    #[error(
        "content mismatch: the document's {algorithm} digest is {actual}, the event attests {attested}"
    )]
    ContentMismatch {
        algorithm: ContentHashAlg,
        actual: String,
        attested: String,
    },
    #[error("the given digest is not a {algorithm} digest: {reason}")]
    BadDigest {
        algorithm: ContentHashAlg,
        reason: String,
    },
}

impl VerifyError {
    /// A stable short name of the failure, used by the published test vectors.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Malformed(_) => "malformed",
            VerifyError::Pending => "pending",
            VerifyError::Version(_) => "version",
            VerifyError::ChainMismatch { .. } => "chain-mismatch",
            VerifyError::EventDigest { .. } => "event-digest",
            VerifyError::EventField(_) => "event-field",
            VerifyError::BatchProof(_) => "batch-proof",
            VerifyError::TransactionProof(_) => "transaction-proof",
            VerifyError::ValidatorSet { .. } => "validator-set",
            VerifyError::ValidatorSetChange { .. } => "validator-set-change",
            VerifyError::BlockTime(_) => "block-time",
            VerifyError::UnknownValidator(_) => "unknown-validator",
            VerifyError::DuplicateAttestation(_) => "duplicate-attestation",
            VerifyError::BadSignature { .. } => "bad-signature",
            VerifyError::NoQuorum { .. } => "no-quorum",
            VerifyError::GenesisKey(_) => "genesis-key",
            VerifyError::NoContentHash => "no-content-hash",
            VerifyError::ContentMismatch { .. } => "content-mismatch",
            VerifyError::BadDigest { .. } => "bad-digest",
        }
    }
}

impl Receipt {
    /// Parses a receipt strictly: unknown fields, missing fields and duplicate object keys are
    /// all errors, so that no byte of a receipt can change without the verifier noticing.
    pub fn parse(bytes: &[u8]) -> Result<Receipt, VerifyError> {
        let value: strict::StrictValue =
            serde_json::from_slice(bytes).map_err(|e| VerifyError::Malformed(e.to_string()))?;
        // The version decides the shape, so it is read first: a newer receipt is reported as
        // such, not as malformed.
        if let Some(v) = value.0.get("version").and_then(|v| v.as_u64())
            && v != u64::from(RECEIPT_VERSION)
        {
            return Err(VerifyError::Version(u32::try_from(v).unwrap_or(u32::MAX)));
        }
        serde_json::from_value(value.0).map_err(|e| VerifyError::Malformed(e.to_string()))
    }
}

/// Verifies receipt bytes against a genesis document.
pub fn verify_bytes(bytes: &[u8], genesis: &Genesis) -> Result<VerifiedReceipt, VerifyError> {
    match Receipt::parse(bytes)? {
        Receipt::Pending(_) => Err(VerifyError::Pending),
        Receipt::Anchored(r) => verify(&r, genesis),
    }
}

/// Verifies an anchored receipt against a genesis document. Every check is listed, in this
/// order, in `docs/receipts.md`.
pub fn verify(r: &AnchoredReceipt, genesis: &Genesis) -> Result<VerifiedReceipt, VerifyError> {
    let alg = genesis.hash_alg;
    if r.version != RECEIPT_VERSION {
        return Err(VerifyError::Version(r.version));
    }
    // 1. The chain.
    let Transaction::Anchor(anchor) = &r.transaction else {
        return Err(VerifyError::Malformed(
            "the receipt's transaction is not an anchor transaction".into(),
        ));
    };
    for chain in [&r.block_header.chain_id, &anchor.chain_id] {
        if chain != &genesis.chain_id {
            return Err(VerifyError::ChainMismatch {
                receipt: chain.clone(),
                genesis: genesis.chain_id.clone(),
            });
        }
    }
    // 2. The event.
    let computed =
        canonical_digest(alg, &r.event).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    if computed != r.event_digest {
        return Err(VerifyError::EventDigest {
            computed,
            stated: r.event_digest,
        });
    }
    let event_id = str_field(&r.event, "id")?;
    let event_type = str_field(&r.event, "type")?;
    // 3. Event digest -> batch root (anchored by the transaction).
    InclusionProof {
        leaf_index: r.batch_proof.leaf_index,
        tree_size: anchor.batch_size,
        path: r.batch_proof.path.clone(),
    }
    .verify(alg, &leaf_hash(alg, &r.event_digest.0), &anchor.batch_root)
    .map_err(VerifyError::BatchProof)?;
    // 4. Transaction -> block's transaction root.
    let tx_hash = r
        .transaction
        .hash(alg)
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    InclusionProof {
        leaf_index: r.transaction_proof.leaf_index,
        tree_size: r.block_header.transaction_count,
        path: r.transaction_proof.path.clone(),
    }
    .verify(
        alg,
        &leaf_hash(alg, &tx_hash.0),
        &r.block_header.transaction_root,
    )
    .map_err(VerifyError::TransactionProof)?;
    // 5. The validator sets from genesis to the block, each change approved by the set
    // before it; the block header names the last of them.
    let history = follow_changes(genesis, &r.validator_set_changes, r.block_header.height)?;
    let set = &history.latest().set;
    let expected = history.latest().hash;
    if r.block_header.validator_set_hash != expected {
        return Err(VerifyError::ValidatorSet {
            stated: r.block_header.validator_set_hash,
            expected,
        });
    }
    let time = &r.block_header.time;
    if !is_block_time(time) {
        return Err(VerifyError::BlockTime(time.clone()));
    }
    if r.block_header.height == 0 {
        return Err(VerifyError::Malformed(
            "block height 0 is the genesis, not a block".into(),
        ));
    }
    if set.get(&r.block_header.proposer).is_none() {
        return Err(VerifyError::Malformed(format!(
            "block proposer {:?} is not in the validator set",
            r.block_header.proposer
        )));
    }
    // 6. Attestations by more than 2/3 of the voting power.
    let block_hash = r
        .block_header
        .hash(alg)
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let height = r.block_header.height;
    let mut seen = HashSet::new();
    let mut signed_power = 0u64;
    let mut signers = Vec::new();
    for att in &r.attestations {
        let v = set
            .get(&att.validator)
            .ok_or_else(|| VerifyError::UnknownValidator(att.validator.clone()))?;
        if !seen.insert(att.validator.as_str()) {
            return Err(VerifyError::DuplicateAttestation(att.validator.clone()));
        }
        let key = parse_public_key(genesis.signature_alg, &v.public_key)
            .map_err(|_| VerifyError::GenesisKey(v.name.clone()))?;
        verify_attestation(&key, att, &genesis.chain_id, height, &block_hash).map_err(|e| {
            VerifyError::BadSignature {
                validator: att.validator.clone(),
                block_hash,
                height,
                reason: e.to_string(),
            }
        })?;
        signed_power = signed_power.saturating_add(v.power);
        signers.push(v.name.clone());
    }
    let total_power = set.total_power();
    if !set.is_quorum(signed_power) {
        return Err(VerifyError::NoQuorum {
            signed: signed_power,
            total: total_power,
        });
    }
    Ok(VerifiedReceipt {
        chain_id: genesis.chain_id.clone(),
        height,
        block_hash,
        block_time: time.clone(),
        event_id,
        event_type,
        event_digest: r.event_digest,
        batch_root: anchor.batch_root,
        signers,
        signed_power,
        total_power,
    })
}

/// Follows a receipt's validator-set changes from the genesis set; each change must take effect
/// after the one before it, no later than `height`, and verify against the set it replaces.
fn follow_changes(
    genesis: &Genesis,
    changes: &[ValidatorSetChange],
    height: u64,
) -> Result<ValidatorSetHistory, VerifyError> {
    let mut history =
        ValidatorSetHistory::new(genesis).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    for (index, change) in changes.iter().enumerate() {
        if change.chain_id != genesis.chain_id {
            return Err(VerifyError::ChainMismatch {
                receipt: change.chain_id.clone(),
                genesis: genesis.chain_id.clone(),
            });
        }
        let committed = CommittedChange {
            // Where a change was committed is not part of what a receipt proves.
            committed_height: 0,
            transaction_hash: Digest([0; 32]),
            change: change.clone(),
        };
        history
            .follow(committed, height)
            .map_err(|e| VerifyError::ValidatorSetChange {
                index,
                reason: e.to_string(),
            })?;
    }
    Ok(history)
}

/// How much of a validator set's power validly attested a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finality {
    pub signed_power: u64,
    pub total_power: u64,
    /// More than 2/3 of the power attested.
    pub is_final: bool,
    /// Validators whose attestation verified.
    pub signers: Vec<String>,
}

/// Checks every attestation of a block against `set`, the validator set in force at its height
/// (invalid, unknown and repeated attestations count for nothing).
pub fn block_finality(
    genesis: &Genesis,
    set: &crate::genesis::ValidatorSet,
    block: &crate::block::CommittedBlock,
) -> Finality {
    let mut signers: Vec<String> = Vec::new();
    let mut signed_power = 0u64;
    for (_, v) in counted_attestations(genesis, set, block) {
        signed_power = signed_power.saturating_add(v.power);
        signers.push(v.name.clone());
    }
    Finality {
        signed_power,
        total_power: set.total_power(),
        is_final: set.is_quorum(signed_power),
        signers,
    }
}

/// The attestations of a block that count against `set`, in the block's order: by a validator
/// of the set, with a valid signature, the first of each validator. A receipt carries only
/// these: one junk attestation served by a node must not make a receipt fail as a whole.
pub fn valid_attestations(
    genesis: &Genesis,
    set: &crate::genesis::ValidatorSet,
    block: &crate::block::CommittedBlock,
) -> Vec<crate::attestation::Attestation> {
    counted_attestations(genesis, set, block)
        .into_iter()
        .map(|(att, _)| att.clone())
        .collect()
}

fn counted_attestations<'a>(
    genesis: &Genesis,
    set: &'a crate::genesis::ValidatorSet,
    block: &'a crate::block::CommittedBlock,
) -> Vec<(
    &'a crate::attestation::Attestation,
    &'a crate::genesis::Validator,
)> {
    let header = &block.block.header;
    let mut counted: Vec<(&crate::attestation::Attestation, &crate::genesis::Validator)> =
        Vec::new();
    for att in &block.attestations {
        let Some(v) = set.get(&att.validator) else {
            continue;
        };
        if counted.iter().any(|(_, seen)| seen.name == v.name) {
            continue;
        }
        let Ok(key) = parse_public_key(genesis.signature_alg, &v.public_key) else {
            continue;
        };
        if verify_attestation(&key, att, &genesis.chain_id, header.height, &block.hash).is_ok() {
            counted.push((att, v));
        }
    }
    counted
}

/// Exactly `YYYY-MM-DDTHH:MM:SS.sssZ`, a valid UTC time.
pub fn is_block_time(t: &str) -> bool {
    let b = t.as_bytes();
    let shape = b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    // chrono admits a leap second (60); block times never carry one.
    shape
        && &t[17..19] < "60"
        && chrono::NaiveDateTime::parse_from_str(&t[..23], "%Y-%m-%dT%H:%M:%S%.3f").is_ok()
}

fn str_field(event: &serde_json::Value, name: &'static str) -> Result<String, VerifyError> {
    event
        .get(name)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or(VerifyError::EventField(name))
}

/// The document hash an event attests (`payload.content_hash`), if any.
pub fn attested_content(event: &serde_json::Value) -> Result<ContentHash, VerifyError> {
    let v = event
        .get("payload")
        .and_then(|p| p.get("content_hash"))
        .ok_or(VerifyError::NoContentHash)?;
    serde_json::from_value(v.clone())
        .map_err(|e| VerifyError::Malformed(format!("content_hash: {e}")))
}

/// Checks that the event attests the document whose digest is `digest_hex` (any hex case).
pub fn check_content_digest(
    event: &serde_json::Value,
    digest_hex: &str,
) -> Result<ContentHash, VerifyError> {
    let attested = attested_content(event)?;
    let given = ContentHash::normalized(attested.algorithm, digest_hex).map_err(|e| {
        VerifyError::BadDigest {
            algorithm: attested.algorithm,
            reason: e.to_string(),
        }
    })?;
    if given.digest != attested.digest {
        return Err(VerifyError::ContentMismatch {
            algorithm: attested.algorithm,
            actual: given.digest,
            attested: attested.digest,
        });
    }
    Ok(attested)
}

mod strict {
    //! JSON values that refuse duplicate object keys (RFC 8259 leaves them undefined; two
    //! verifiers must never read two different documents out of one receipt).

    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Number, Value};
    use std::fmt;

    pub struct StrictValue(pub Value);

    impl<'de> Deserialize<'de> for StrictValue {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(StrictVisitor).map(StrictValue)
        }
    }

    struct StrictVisitor;

    impl<'de> Visitor<'de> for StrictVisitor {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
            Number::from_f64(v)
                .map(Value::Number)
                .ok_or_else(|| E::custom("non-finite number"))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_string()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            while let Some(StrictValue(v)) = seq.next_element()? {
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let StrictValue(v) = map.next_value()?;
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format!("duplicate key {key:?}")));
                }
                out.insert(key, v);
            }
            Ok(Value::Object(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_time_form_is_exact() {
        assert!(is_block_time("2026-11-25T09:30:00.123Z"));
        for bad in [
            "2026-11-25T09:30:00Z",
            "2026-11-25t09:30:00.123Z",
            "2026-11-25 09:30:00.123Z",
            "2026-11-25T09:30:00.123+00:00",
            "2026-13-25T09:30:00.123Z",
            "2026-11-25T09:30:60.123Z",
        ] {
            assert!(!is_block_time(bad), "{bad}");
        }
    }

    #[test]
    fn newer_versions_are_named() {
        let err =
            Receipt::parse(br#"{"status":"anchored","version":2,"new_field":1}"#).unwrap_err();
        assert_eq!(err, VerifyError::Version(2));
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let err = Receipt::parse(
            br#"{"status":"pending","version":1,"version":1,"event_id":"x","event_digest":"00"}"#,
        )
        .unwrap_err();
        assert!(matches!(err, VerifyError::Malformed(m) if m.contains("duplicate key")));
    }

    #[test]
    fn pending_receipts_are_not_proofs() {
        let d = "ab".repeat(32);
        let text =
            format!(r#"{{"status":"pending","version":1,"event_id":"e","event_digest":"{d}"}}"#);
        assert!(matches!(
            Receipt::parse(text.as_bytes()),
            Ok(Receipt::Pending(_))
        ));
        let unknown = format!(
            r#"{{"status":"pending","version":1,"event_id":"e","event_digest":"{d}","x":1}}"#
        );
        assert!(matches!(
            Receipt::parse(unknown.as_bytes()),
            Err(VerifyError::Malformed(_))
        ));
    }
}
