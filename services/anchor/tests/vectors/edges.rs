//! Vectors for the edges of the specification that the receipts of one ordinary chain never
//! reach: strict parsing (duplicate keys, `-0`, lone surrogates, nesting), JSON spellings that
//! must still verify, signature encodings that must not (non-canonical Ed25519 S, small-order
//! R, SM2 r and s out of range), weighted voting power, height 0, a proposer outside the set,
//! block-time edges, an event that is not an envelope, a pending receipt, invalid genesis
//! documents, and the schema's old over-strictness (cases §10 gives another code than
//! `malformed`).

use super::{Entry, envelope, genesis, key, site};
use chain_core::attestation::attest;
use chain_core::block::{Block, BlockHeader, CommittedBlock, transaction_tree};
use chain_core::genesis::Genesis;
use chain_core::keys::{SignatureAlg, SigningKey};
use chain_core::{Digest, HashAlg, Receipt};
use serde_json::{Value, json};
use veritrace_anchor::domain::{EventLeaf, anchor_transaction, assemble_receipt, batch_tree};

/// The block a one-event receipt is anchored in.
struct BlockSpec<'a> {
    height: u64,
    time: &'a str,
    proposer: &'a str,
    /// Indices into the keys; validator `i` is named `validator-{i + 1}`.
    signers: &'a [usize],
}

const ORDINARY: BlockSpec<'static> = BlockSpec {
    height: 1,
    time: "2026-01-01T00:00:01.000Z",
    proposer: "validator-1",
    signers: &[0, 1, 2],
};

/// A receipt of `event` alone in its batch, in a block of one anchor transaction.
fn one_event_receipt(
    alg: HashAlg,
    g: &Genesis,
    keys: &[SigningKey],
    event: Value,
    digest: Digest,
    spec: &BlockSpec<'_>,
) -> String {
    let tree = batch_tree(alg, &[digest]);
    let tx = anchor_transaction(
        &g.chain_id,
        "0190a000-0000-7000-8000-0000000000d0",
        tree.root(),
        1,
    );
    let tx_hash = tx.hash(alg).expect("transaction hash");
    let header = BlockHeader {
        chain_id: g.chain_id.clone(),
        height: spec.height,
        previous_hash: g.hash().expect("genesis hash"),
        time: spec.time.into(),
        transaction_root: transaction_tree(alg, &[tx_hash]).root(),
        transaction_count: 1,
        validator_set_hash: g.validator_set.hash(alg).expect("set hash"),
        proposer: spec.proposer.into(),
    };
    let hash = header.hash(alg).expect("block hash");
    let attestations = spec
        .signers
        .iter()
        .map(|i| {
            attest(
                &keys[*i],
                &format!("validator-{}", i + 1),
                &g.chain_id,
                spec.height,
                &hash,
            )
        })
        .collect();
    let block = CommittedBlock {
        block: Block {
            header,
            transactions: vec![tx],
        },
        hash,
        attestations,
    };
    let receipt = assemble_receipt(
        alg,
        EventLeaf {
            event,
            digest,
            index: 0,
        },
        &tree,
        site(alg, &block, 0),
        Vec::new(),
    )
    .expect("assemble");
    serde_json::to_string(&Receipt::Anchored(Box::new(receipt))).expect("serialize")
}

/// Event `n` of the service `vectors`, which no platform service is: its payloads are shaped
/// for the edge they test, not by a domain's event schema.
fn event_with(alg: HashAlg, n: u128, payload: Value) -> (Value, Digest) {
    let mut e = envelope(n);
    e.service = "vectors".into();
    e.stream = format!("vectors-{n}");
    e.event_type = "EdgeCase".into();
    e.payload = payload;
    let sealed = e.seal(alg);
    let value = serde_json::from_str(&sealed.canonical).expect("canonical JSON");
    (value, sealed.digest)
}

/// `text` with the one occurrence of `from` replaced.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
    text.replacen(from, to, 1)
}

/// `text` with the first occurrence of `from` replaced.
fn replace_first(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not found");
    text.replacen(from, to, 1)
}

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The first attestation signature of a receipt.
fn first_signature(text: &str) -> String {
    let at = text.find("\"signature\":\"").expect("a signature") + 13;
    text[at..at + 128].to_string()
}

/// The Ed25519 group order L, little-endian.
const ED25519_L_LE: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The SM2 group order n, big-endian.
const SM2_N: &str = "fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123";

/// `a + b` over 32-byte little-endian integers (the caller keeps the sum below 2^256).
fn add_le(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut carry = 0u16;
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let s = u16::from(*x) + u16::from(*y) + carry;
            carry = s >> 8;
            (s & 0xff) as u8
        })
        .collect()
}

/// `a - b` over 32-byte big-endian integers, `a ≥ b`.
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut borrow = 0i16;
    let mut out: Vec<u8> = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .map(|(x, y)| {
            let mut d = i16::from(*x) - i16::from(*y) - borrow;
            borrow = i16::from(d < 0);
            if d < 0 {
                d += 256;
            }
            d as u8
        })
        .collect();
    out.reverse();
    out
}

/// Signature encodings that a strict verifier rejects, each replacing the first attestation's.
fn signature_encodings(sig: SignatureAlg, valid: &str) -> Vec<(&'static str, String, String)> {
    let bytes = from_hex(valid);
    let (first, second) = bytes.split_at(32);
    match sig {
        SignatureAlg::Ed25519 => {
            let mut small_order_r = vec![0u8; 64];
            small_order_r[0] = 1; // the identity point, of order 1
            vec![
                (
                    "signature-s-not-canonical",
                    to_hex(&[first, &add_le(second, &ED25519_L_LE)].concat()),
                    "an Ed25519 signature whose S is the valid S plus the group order L (S ≥ L, non-canonical)".into(),
                ),
                (
                    "signature-r-small-order",
                    to_hex(&small_order_r),
                    "an Ed25519 signature whose R is the identity point (small order) and S = 0".into(),
                ),
            ]
        }
        SignatureAlg::Sm2 => {
            let n = from_hex(SM2_N);
            vec![
                (
                    "signature-r-zero",
                    to_hex(&[&[0u8; 32][..], second].concat()),
                    "an SM2 signature with r = 0".to_string(),
                ),
                (
                    "signature-r-n",
                    to_hex(&[&n[..], second].concat()),
                    "an SM2 signature with r = n, the group order".to_string(),
                ),
                (
                    "signature-s-n",
                    to_hex(&[first, &n[..]].concat()),
                    "an SM2 signature with s = n, the group order".to_string(),
                ),
                (
                    "signature-r-plus-s-n",
                    to_hex(&[first, &sub_be(&n, first)].concat()),
                    "an SM2 signature with r + s = n (t = 0)".to_string(),
                ),
            ]
        }
    }
}

/// Every edge entry of one profile. `valid1` is the text of `<profile>/valid-1.receipt.json`.
pub fn entries(
    profile: &str,
    alg: HashAlg,
    sig: SignatureAlg,
    g: &Genesis,
    g_name: &str,
    keys: &[SigningKey],
    valid1: &str,
) -> (Vec<Entry>, Vec<(String, Vec<u8>)>) {
    let mut out = Vec::new();
    let mut push = |name: &str, text: String, code: Option<&'static str>, description: String| {
        out.push(Entry::new(
            format!("{profile}/{name}.receipt.json"),
            Some(text),
            g_name,
            code,
            description,
        ));
    };

    // Strict parsing and JSON spellings, on a receipt whose event holds numbers and an emoji.
    let (event, digest) = event_with(
        alg,
        20,
        json!({"count": 0, "ratio": 0.5, "title": "Exhibit 20 \u{1F600}"}),
    );
    let numbers = one_event_receipt(alg, g, keys, event, digest, &ORDINARY);
    push(
        "json-numbers",
        numbers.clone(),
        None,
        "a valid receipt whose event holds the numbers 0 and 0.5 and a character outside the BMP"
            .into(),
    );
    for (name, from, to, what) in [
        (
            "json-spelling-negative-zero",
            "\"count\":0",
            "\"count\":-0",
            "the event's 0 written as -0 (the same double)",
        ),
        (
            "json-spelling-exponent",
            "\"ratio\":0.5",
            "\"ratio\":5e-1",
            "the event's 0.5 written as 5e-1",
        ),
        (
            "json-spelling-underflow",
            "\"count\":0",
            "\"count\":1e-400",
            "the event's 0 written as 1e-400, which rounds to the double 0",
        ),
        (
            "json-spelling-escape",
            "\u{1F600}",
            "\\ud83d\\ude00",
            "the event's emoji written as a surrogate-pair escape",
        ),
        (
            "json-spelling-fraction",
            "\"stream_version\":1",
            "\"stream_version\":1.0",
            "the event's stream_version 1 written as 1.0 (event members are hashed as doubles)",
        ),
    ] {
        push(
            name,
            replace_once(&numbers, from, to),
            None,
            format!("json-numbers with {what}: verifies"),
        );
    }
    for (name, from, to, what) in [
        (
            "strict-duplicate-key",
            "\"version\":1",
            "\"version\":1,\"version\":1",
            "its version member twice",
        ),
        (
            "strict-duplicate-key-in-event",
            "\"count\":0",
            "\"count\":0,\"count\":0",
            "a member of the event's payload twice",
        ),
        (
            "strict-negative-zero-integer",
            "\"batch_proof\":{\"leaf_index\":0",
            "\"batch_proof\":{\"leaf_index\":-0",
            "a leaf_index written -0 (not a non-negative integer literal)",
        ),
        (
            "strict-integer-fraction",
            "\"height\":1",
            "\"height\":1.0",
            "the block height written 1.0",
        ),
        (
            "strict-duplicate-key-escaped",
            "\"count\":0",
            "\"count\":0,\"\\u0063ount\":0",
            "a member of the event's payload twice, once with its name escaped (keys compare after unescaping)",
        ),
        (
            "strict-version-beyond-u64",
            "\"version\":1",
            "\"version\":18446744073709551616",
            "a version of 2^64, beyond the u64 range (not an integer of §3.2, so malformed, not version)",
        ),
        (
            "strict-lone-surrogate",
            "\u{1F600}",
            "\\ud83d",
            "a lone high-surrogate escape in the event",
        ),
    ] {
        push(
            name,
            replace_once(&numbers, from, to),
            Some("malformed"),
            format!("json-numbers with {what}"),
        );
    }
    let hex = digest.to_hex();
    let letter = hex
        .find(|c: char| c.is_ascii_alphabetic())
        .expect("a hex letter");
    let upper = format!(
        "{}{}{}",
        &hex[..letter],
        hex[letter..=letter].to_uppercase(),
        &hex[letter + 1..]
    );
    push(
        "strict-upper-case-digest",
        replace_once(&numbers, &hex, &upper),
        Some("malformed"),
        "json-numbers with one letter of event_digest in upper case (a digest is lowercase hex)"
            .into(),
    );
    // Nesting: the receipt is level 1 and its event level 2, so a payload of k nested arrays
    // reaches level k + 2.
    for (levels, code) in [(127usize, None), (128, Some("malformed"))] {
        let mut payload = json!([]);
        for _ in 0..levels - 3 {
            payload = json!([payload]);
        }
        let (event, digest) = event_with(alg, 21, payload);
        push(
            &format!("nesting-{levels}"),
            one_event_receipt(alg, g, keys, event, digest, &ORDINARY),
            code,
            format!(
                "an event payload of nested arrays reaching level {levels} of the receipt (at most 127 are parsed)"
            ),
        );
    }

    // Events that are not envelopes: they verify as far as their digest, and then need an id
    // and a type.
    let null_digest = alg.hash(b"null");
    push(
        "event-null",
        one_event_receipt(alg, g, keys, Value::Null, null_digest, &ORDINARY),
        Some("event-field"),
        "an event that is JSON null, with the digest of `null`: not malformed, but it has no id"
            .into(),
    );
    let (mut no_id, _) = event_with(alg, 22, json!({}));
    no_id.as_object_mut().expect("object").remove("id");
    let no_id_digest = chain_core::canonical::canonical_digest(alg, &no_id).expect("digest");
    push(
        "event-without-id",
        one_event_receipt(alg, g, keys, no_id, no_id_digest, &ORDINARY),
        Some("event-field"),
        "an envelope without its id member, its digest computed over what is there".into(),
    );

    // The block: height 0, a proposer outside the set, block times at their edges.
    let (event, digest) = event_with(alg, 23, json!({"title": "Exhibit 23"}));
    let block = |spec: &BlockSpec<'_>| one_event_receipt(alg, g, keys, event.clone(), digest, spec);
    push(
        "height-0",
        block(&BlockSpec {
            height: 0,
            ..ORDINARY
        }),
        Some("malformed"),
        "a block at height 0, signed by every validator: height 0 is the genesis, not a block"
            .into(),
    );
    push(
        "proposer-outside-set",
        block(&BlockSpec {
            proposer: "validator-9",
            ..ORDINARY
        }),
        Some("malformed"),
        "a block signed by every validator whose proposer is not in the validator set".into(),
    );
    for (name, time, code) in [
        ("time-leap-day", "2024-02-29T23:59:59.999Z", None),
        ("time-century-leap-day", "2000-02-29T00:00:00.000Z", None),
        ("time-year-0000", "0000-01-01T00:00:00.000Z", None),
        ("time-year-0000-leap-day", "0000-02-29T12:00:00.000Z", None),
        ("time-year-9999", "9999-12-31T23:59:59.999Z", None),
        (
            "time-not-leap-day",
            "2026-02-29T00:00:00.000Z",
            Some("block-time"),
        ),
        (
            "time-century-not-leap-day",
            "2100-02-29T00:00:00.000Z",
            Some("block-time"),
        ),
        (
            "time-april-31",
            "2026-04-31T00:00:00.000Z",
            Some("block-time"),
        ),
        (
            "time-hour-24",
            "2026-01-01T24:00:00.000Z",
            Some("block-time"),
        ),
        (
            "time-leap-second",
            "2026-12-31T23:59:60.000Z",
            Some("block-time"),
        ),
        (
            "time-lower-case-z",
            "2026-01-01T00:00:01.000z",
            Some("block-time"),
        ),
        (
            "time-lower-case-t",
            "2026-01-01t00:00:01.000Z",
            Some("block-time"),
        ),
        ("time-space", "2026-01-01 00:00:01.000Z", Some("block-time")),
        (
            "time-no-milliseconds",
            "2026-01-01T00:00:01Z",
            Some("block-time"),
        ),
        (
            "time-microseconds",
            "2026-01-01T00:00:01.000000Z",
            Some("block-time"),
        ),
        (
            "time-offset",
            "2026-01-01T00:00:01.000+00:00",
            Some("block-time"),
        ),
    ] {
        push(
            name,
            block(&BlockSpec { time, ..ORDINARY }),
            code,
            format!("a block signed by every validator with the time {time:?}"),
        );
    }

    // Signature encodings with exactly one accepted form.
    let signature = first_signature(valid1);
    for (name, forged, description) in signature_encodings(sig, &signature) {
        push(
            name,
            replace_once(valid1, &signature, &forged),
            Some("bad-signature"),
            format!("valid-1 with its first attestation replaced by {description}"),
        );
    }

    // Cases that the schema once called malformed and §10 does not.
    let attestations_at = valid1.find("\"attestations\":[").expect("attestations") + 16;
    let attestations_end = attestations_at + valid1[attestations_at..].find(']').expect("end");
    push(
        "attestations-empty",
        format!(
            "{}{}",
            &valid1[..attestations_at],
            &valid1[attestations_end..]
        ),
        Some("no-quorum"),
        "valid-1 with no attestations".into(),
    );
    push(
        "signature-upper-case",
        replace_once(valid1, &signature, &signature.to_uppercase()),
        Some("bad-signature"),
        "valid-1 with its first attestation's signature in upper-case hex".into(),
    );
    push(
        "batch-size-zero",
        replace_once(valid1, "\"batch_size\":5", "\"batch_size\":0"),
        Some("batch-proof"),
        "valid-1 with batch_size 0".into(),
    );
    push(
        "chain-id-upper-case",
        replace_first(
            valid1,
            "\"chain_id\":\"veritrace",
            "\"chain_id\":\"Veritrace",
        ),
        Some("chain-mismatch"),
        "valid-1 with the first letter of a chain_id in upper case".into(),
    );

    // A document hashed with SM3 (§11), whatever the chain's profile: its file beside it.
    let mut documents = Vec::new();
    let sm3_file = super::exhibit(26);
    let sm3_digest = chain_core::ContentHashAlg::Sm3
        .hash_reader(sm3_file.as_bytes())
        .expect("hash");
    let (event, digest) = event_with(
        alg,
        26,
        json!({"content_hash": {"algorithm": "sm3", "digest": sm3_digest}, "title": "Exhibit 26"}),
    );
    let name = format!("{profile}/document-sm3.receipt.json");
    push(
        "document-sm3",
        one_event_receipt(alg, g, keys, event, digest, &ORDINARY),
        None,
        "a valid receipt whose event attests a document by its SM3 digest".into(),
    );
    for (document, code, what) in [
        ("exhibit-26", None, "the document it attests"),
        (
            "exhibit-2",
            Some("content-mismatch"),
            "another exhibit's document",
        ),
    ] {
        let mut e = Entry::new(
            name.clone(),
            None,
            g_name,
            code,
            format!("document-sm3 and {what}, documents/{document}.txt, hashed with SM3 (§11)"),
        );
        e.document = Some(format!("documents/{document}.txt"));
        documents.push(e);
    }

    // A pending receipt proves nothing.
    let pending = json!({
        "status": "pending", "version": 1,
        "event_id": "019b0000-0000-7000-8000-000000000018",
        "event_digest": event_with(alg, 24, json!({})).1,
    });
    push(
        "pending",
        serde_json::to_string(&pending).expect("serialize"),
        Some("pending"),
        "a pending receipt: recorded, not anchored, not a proof".into(),
    );

    let (weighted, weighted_files) = weighted_entries(profile, alg, sig, g);
    out.extend(documents);
    out.extend(weighted);
    let (invalid, mut files) = invalid_genesis_entries(profile, sig, g);
    out.extend(invalid);
    files.extend(weighted_files);
    (out, files)
}

/// A chain whose four validators hold 5, 1, 1 and 1 of 8 votes: more than 16/3 must sign.
fn weighted_entries(
    profile: &str,
    alg: HashAlg,
    sig: SignatureAlg,
    g: &Genesis,
) -> (Vec<Entry>, Vec<(String, Vec<u8>)>) {
    let keys: Vec<SigningKey> = (1..=4).map(|n| key(sig, n)).collect();
    let mut weighted = genesis(alg, &g.chain_id, &keys);
    weighted.validator_set.validators[0].power = 5;
    let name = format!("genesis-weighted-{profile}.json");
    let (event, digest) = event_with(alg, 25, json!({"title": "Exhibit 25"}));
    let entries = [
        (
            "weighted-heavy-and-one",
            &[0usize, 1][..],
            None,
            "validator-1 (power 5) and validator-2 (power 1): 6 of 8 votes",
        ),
        (
            "weighted-three-light",
            &[1, 2, 3][..],
            Some("no-quorum"),
            "validators 2, 3 and 4 (power 1 each): 3 of 8 votes",
        ),
        (
            "weighted-heavy-alone",
            &[0][..],
            Some("no-quorum"),
            "validator-1 alone (power 5): 5 of 8 votes, not more than 2/3",
        ),
    ]
    .into_iter()
    .map(|(n, signers, code, what)| {
        let spec = BlockSpec {
            signers,
            ..ORDINARY
        };
        Entry::new(
            format!("{profile}/{n}.receipt.json"),
            Some(one_event_receipt(
                alg,
                &weighted,
                &keys,
                event.clone(),
                digest,
                &spec,
            )),
            &name,
            code,
            format!("a chain of weighted voting power, attested by {what}"),
        )
    })
    .collect();
    let bytes = serde_json::to_vec_pretty(&weighted).expect("serialize");
    (entries, vec![(name, bytes)])
}

/// Genesis documents that break a rule of §5 each; verifying any receipt against one fails
/// with the code `genesis`.
fn invalid_genesis_entries(
    profile: &str,
    sig: SignatureAlg,
    g: &Genesis,
) -> (Vec<Entry>, Vec<(String, Vec<u8>)>) {
    let edit = |f: &dyn Fn(&mut Genesis)| {
        let mut v = g.clone();
        f(&mut v);
        serde_json::to_vec_pretty(&v).expect("serialize")
    };
    let pretty = serde_json::to_string_pretty(g).expect("serialize");
    let mut docs: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "duplicate-name",
            edit(&|v| v.validator_set.validators[1].name = "validator-1".into()),
            "two validators named validator-1",
        ),
        (
            "duplicate-public-key",
            edit(&|v| {
                v.validator_set.validators[1].public_key =
                    v.validator_set.validators[0].public_key.clone()
            }),
            "two validators with one key",
        ),
        (
            "power-zero",
            edit(&|v| v.validator_set.validators[2].power = 0),
            "a validator of power 0",
        ),
        (
            "total-power",
            edit(&|v| v.validator_set.validators[0].power = 9_007_199_254_740_991),
            "a total power above 2^53 - 1",
        ),
        (
            "no-validators",
            edit(&|v| v.validator_set.validators.clear()),
            "an empty validator set",
        ),
        (
            "chain-id",
            edit(&|v| v.chain_id = "Veritrace-vectors".into()),
            "an upper-case letter in chain_id",
        ),
        (
            "validator-name",
            edit(&|v| v.validator_set.validators[0].name = "validator 1".into()),
            "a space in a validator name",
        ),
        (
            "duplicate-member",
            pretty
                .replacen(
                    "\"chain_id\":",
                    "\"chain_id\": \"veritrace-other\",\n  \"chain_id\":",
                    1,
                )
                .into_bytes(),
            "its chain_id member twice",
        ),
        (
            "unknown-member",
            pretty
                .replacen("\"chain_id\":", "\"note\": \"x\",\n  \"chain_id\":", 1)
                .into_bytes(),
            "a member the specification does not define",
        ),
        (
            "hash-alg",
            pretty
                .replacen(
                    &format!("\"hash_alg\": \"{}\"", g.hash_alg.name()),
                    "\"hash_alg\": \"sha-512\"",
                    1,
                )
                .into_bytes(),
            "an unsupported hash_alg",
        ),
    ];
    match sig {
        SignatureAlg::Ed25519 => {
            // 0x01 || 0^31 is the identity; y = p (0xed ff .. ff 7f) is y = 0 written
            // non-canonically.
            let identity = format!("01{}", "00".repeat(31));
            let y_is_p = format!("ed{}7f", "ff".repeat(30));
            docs.push((
                "small-order-key",
                edit(&|v| v.validator_set.validators[0].public_key = identity.clone()),
                "an Ed25519 key of small order (the identity)",
            ));
            docs.push((
                "non-canonical-key",
                edit(&|v| v.validator_set.validators[0].public_key = y_is_p.clone()),
                "an Ed25519 key whose y is written as p (non-canonical)",
            ));
            docs.push((
                "sm2-key-form",
                edit(&|v| {
                    v.validator_set.validators[0].public_key = format!("04{}", "ab".repeat(64))
                }),
                "a 130-character (SM2-form) key in an Ed25519 genesis",
            ));
        }
        SignatureAlg::Sm2 => {
            docs.push((
                "off-curve-key",
                edit(&|v| {
                    let k = &mut v.validator_set.validators[0].public_key;
                    let last = u8::from_str_radix(&k[128..], 16).expect("hex");
                    k.replace_range(128.., &format!("{:02x}", last ^ 1));
                }),
                "an SM2 key whose y is off the curve",
            ));
            docs.push((
                "compressed-key",
                edit(&|v| {
                    let k = &mut v.validator_set.validators[0].public_key;
                    *k = format!("02{}", &k[2..66]);
                }),
                "an SM2 key in compressed form",
            ));
            docs.push((
                "ed25519-key-form",
                edit(&|v| {
                    v.validator_set.validators[0].public_key =
                        v.validator_set.validators[0].public_key[2..66].to_string()
                }),
                "a 64-character (Ed25519-form) key in an SM2 genesis",
            ));
        }
    }
    let mut entries = Vec::new();
    let mut files = Vec::new();
    for (what, bytes, description) in docs {
        let name = format!("genesis-invalid-{what}-{profile}.json");
        entries.push(Entry::new(
            format!("{profile}/valid-1.receipt.json"),
            None,
            &name,
            Some("genesis"),
            format!("valid-1 checked against a genesis with {description}"),
        ));
        files.push((name, bytes));
    }
    (entries, files)
}
