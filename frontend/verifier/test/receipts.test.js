// Hand-made adversarial receipts and genesis documents, derived from the published vectors by
// text edits: strict parsing (§3.3), the version and shape steps (§10 steps 1–3), and the
// public API's contract (steps, result, codes).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { sha3_256 } from '../../vendor/crypto.js';
import { toHex, utf8 } from '../bytes.js';
import { checkDocument, parseGenesis, verifyReceipt } from '../verify.js';
import { MAX_NESTING, parseStrictJson } from '../strict-json.js';

const vectors = new URL('../../../schemas/vectors/', import.meta.url);
const text = (path) => readFileSync(new URL(path, vectors), 'utf8');
const VALID = text('sha3-256/valid-1.receipt.json');
const GENESIS_TEXT = text('genesis-sha3-256.json');
const GENESIS = parseGenesis(GENESIS_TEXT);
const codeOf = (receipt, genesis = GENESIS) => verifyReceipt(receipt, genesis).code;

/** Replaces exactly one occurrence of `from` in the valid receipt. */
function edit(from, to, base = VALID) {
  assert.equal(base.split(from).length, 2, `expected one ${from}`);
  return base.replace(from, to);
}

test('the valid receipt verifies, with 14 passed steps and the §10 step 14 report', () => {
  const out = verifyReceipt(utf8(VALID), GENESIS);
  assert.equal(out.ok, true);
  assert.equal(out.code, null);
  assert.equal(out.steps.length, 14);
  assert.ok(out.steps.every((s) => s.status === 'pass' && s.detail));
  assert.deepEqual(Object.keys(out.result).sort(), ['batch_root', 'block_hash', 'block_time', 'chain_id', 'event_digest', 'event_id', 'event_type', 'height', 'signed_power', 'signers', 'total_power']);
  assert.equal(out.result.height, 1n);
  assert.deepEqual(out.result.signers, ['validator-1', 'validator-2', 'validator-3']);
  assert.equal(out.result.signed_power, 3n);
  assert.equal(out.receipt.event.type, 'EvidenceRegistered');
  // Accepts the genesis object itself as well as parseGenesis' result.
  assert.equal(verifyReceipt(VALID, GENESIS.genesis).ok, true);
});

test('§3.3 free bytes: whitespace, member order, escape spellings still verify', () => {
  const spaced = VALID.replace(/,"/g, ' ,\n\t"').replace(/":/g, '" :\r\n ');
  assert.equal(codeOf(spaced), null);
  const reordered = JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(VALID)).reverse()));
  assert.equal(codeOf(reordered), null);
  assert.equal(codeOf(edit('"proposer":"validator-1"', '"proposer":"\\u0076alidator\\u002D1"')), null);
  assert.equal(codeOf(edit('"title":"Exhibit 2', '"title":"\\u0045xhibit 2')), null);
});

test('§3.3 the attestations are a set: reorder verifies; a duplicate or a missing third fails', () => {
  const r = JSON.parse(VALID);
  assert.equal(codeOf(JSON.stringify({ ...r, attestations: [...r.attestations].reverse() })), null);
  assert.equal(codeOf(JSON.stringify({ ...r, attestations: r.attestations.slice(0, 2) })), 'no-quorum');
  assert.equal(codeOf(JSON.stringify({ ...r, attestations: [...r.attestations, r.attestations[0]] })), 'duplicate-attestation');
  assert.equal(codeOf(JSON.stringify({ ...r, attestations: [] })), 'no-quorum');
});

test('strict parsing: duplicate keys anywhere, including deep in event', () => {
  assert.equal(codeOf(edit('"evidence_id":', '"title":"again","evidence_id":')), 'malformed');
  assert.equal(codeOf(edit('"algorithm":"sha-256"', '"algorithm":"sha-256","\\u0061lgorithm":"sha-256"')), 'malformed');
  assert.equal(codeOf(edit('"status":"anchored"', '"status":"anchored","status":"anchored"')), 'malformed');
  assert.equal(codeOf(edit('"payload":{', '"payload":{"deep":[{"a":{"b":[{"x":1,"x":1}]}}],')), 'malformed');
});

test('strict parsing: numbers beyond a finite double and bad literals', () => {
  assert.equal(codeOf(edit('"stream_version":1', '"stream_version":1e400')), 'malformed');
  assert.equal(codeOf(edit('"stream_version":1', '"stream_version":-1e400')), 'malformed');
  assert.equal(codeOf(edit('"stream_version":1', '"stream_version":01')), 'malformed');
  assert.equal(codeOf(edit('"stream_version":1', '"stream_version":1.')), 'malformed');
  assert.equal(codeOf(edit('"stream_version":1', '"stream_version":+1')), 'malformed');
  assert.equal(codeOf(edit('"stream_version":1', '"stream_version":NaN')), 'malformed');
  // Inside event, 1.0 and 1e0 are the number 1: same digest, verifies.
  assert.equal(codeOf(edit('"stream_version":1', '"stream_version":1.0')), null);
  assert.equal(codeOf(edit('"stream_version":1', '"stream_version":1e0')), null);
  assert.equal(codeOf(edit('"stream_version":1', '"stream_version":10E-1')), null);
});

test('§3.2 integers: 1.0, 1e0, -0, signs and values beyond u64 are malformed where an integer is required', () => {
  for (const spelling of ['1.0', '1e0', '1E0', '-1', '-0', '1.5', '"1"', 'null', 'true', '[1]']) {
    assert.equal(codeOf(edit('"height":1', `"height":${spelling}`)), 'malformed', `height ${spelling}`);
  }
  assert.equal(codeOf(edit('"batch_size":5', '"batch_size":5.0')), 'malformed');
  assert.equal(codeOf(edit('"batch_proof":{"leaf_index":2', '"batch_proof":{"leaf_index":18446744073709551616')), 'malformed');
  // 2^64 − 1 is a u64: the shape passes, the batch proof does not.
  assert.equal(codeOf(edit('"batch_proof":{"leaf_index":2', '"batch_proof":{"leaf_index":18446744073709551615')), 'batch-proof');
  assert.equal(codeOf(edit('"batch_size":5', '"batch_size":0')), 'batch-proof');
  assert.equal(codeOf(edit('"transaction_count":2', '"transaction_count":0')), 'transaction-proof');
});

test('strict parsing: lone surrogate escapes are malformed, pairs are fine', () => {
  for (const s of ['\\ud800', '\\udc00', '\\ud800\\u0041', '\\ud800x', '\\udbff\\ud800', '\\ude00\\ud83d', 'a\\uD800']) {
    assert.equal(codeOf(edit('"title":"Exhibit 2', `"title":"${s}Exhibit 2`)), 'malformed', s);
    assert.throws(() => parseStrictJson(`["${s}"]`), /surrogate/, s);
  }
  assert.equal(parseStrictJson('["\\ud83d\\ude00"]')[0], '\u{1f600}');
  assert.equal(parseStrictJson('["\\uD83D\\uDE00"]')[0], '\u{1f600}');
  // A lone surrogate code unit in a string input (no escape) is refused too.
  assert.equal(codeOf(edit('"title":"Exhibit 2', '"title":"\ud800Exhibit 2')), 'malformed');
});

test('strict parsing: BOM, invalid UTF-8, control characters, trailing text', () => {
  const bytes = utf8(VALID);
  const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...bytes]);
  assert.equal(codeOf(withBom), 'malformed');
  assert.equal(codeOf(`\ufeff${VALID}`), 'malformed');
  for (const bad of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]) {
    const at = VALID.indexOf('Exhibit 2');
    const corrupted = new Uint8Array([...utf8(VALID.slice(0, at)), ...bad, ...utf8(VALID.slice(at))]);
    assert.equal(codeOf(corrupted), 'malformed', bad.join(' '));
  }
  assert.equal(codeOf(edit('"title":"Exhibit 2', '"title":"Exhibit\t2')), 'malformed');
  assert.equal(codeOf(edit('"title":"Exhibit 2', '"title":"Exhibit\\x2')), 'malformed');
  assert.equal(codeOf(`${VALID} x`), 'malformed');
  assert.equal(codeOf(`${VALID}\n`), null);
  assert.equal(codeOf(VALID.replace(/}$/, ',}')), 'malformed');
  assert.equal(codeOf(''), 'malformed');
  assert.equal(codeOf('[]'), 'malformed');
  assert.equal(codeOf('null'), 'malformed');
});

test('nesting: 127 levels are read, an array or object at level 128 is malformed', () => {
  assert.equal(MAX_NESTING, 127);
  const nested = (depth) => '['.repeat(depth) + ']'.repeat(depth);
  assert.doesNotThrow(() => parseStrictJson(nested(127)));
  assert.throws(() => parseStrictJson(nested(128)), /nested/);
  assert.doesNotThrow(() => parseStrictJson(`${'{"a":'.repeat(126)}[1]${'}'.repeat(126)}`));
  assert.throws(() => parseStrictJson(`${'{"a":'.repeat(127)}[]${'}'.repeat(127)}`), /nested/);
  // Scalars do not count: a string at level 128 inside 127 arrays is fine.
  assert.doesNotThrow(() => parseStrictJson(`${'['.repeat(127)}"x"${']'.repeat(127)}`));
  // In a receipt: the receipt is level 1, event 2, payload 3, so arrays in the payload start
  // at level 4: 124 of them reach level 127, 125 reach level 128.
  assert.equal(codeOf(edit('"payload":{', `"payload":{"deep":${nested(125)},`)), 'malformed');
  assert.equal(codeOf(edit('"payload":{', `"payload":{"deep":${nested(124)},`)), 'event-digest');
});

test('§3.1 digests: upper case or wrong length is malformed', () => {
  const r = JSON.parse(VALID);
  const swap = (hex) => hex.replace(/[a-f]/, (c) => c.toUpperCase());
  assert.equal(codeOf(JSON.stringify({ ...r, event_digest: swap(r.event_digest) })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...r, event_digest: r.event_digest.slice(2) })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...r, transaction: { ...r.transaction, batch_root: swap(r.transaction.batch_root) } })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...r, batch_proof: { ...r.batch_proof, path: [swap(r.batch_proof.path[0]), ...r.batch_proof.path.slice(1)] } })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...r, block_header: { ...r.block_header, previous_hash: swap(r.block_header.previous_hash) } })), 'malformed');
});

test('step 2: any integer version other than 1 is `version`, whatever else the receipt holds', () => {
  assert.equal(codeOf(edit('"version":1', '"version":2')), 'version');
  assert.equal(codeOf('{"version":2}'), 'version');
  assert.equal(codeOf('{"version":0,"status":"weird","extra":[]}'), 'version');
  assert.equal(codeOf('{"version":18446744073709551615}'), 'version');
  // Not a §3.2 integer literal (or beyond u64): left to step 3, malformed.
  for (const v of ['"2"', '1.0', '2.0', '-1', '-0', '1e0', '18446744073709551616', 'null']) {
    assert.equal(codeOf(edit('"version":1', `"version":${v}`)), 'malformed', v);
  }
});

test('step 3: status, unknown and missing fields, null, the anchor type, change members', () => {
  const r = JSON.parse(VALID);
  const without = (key) => JSON.stringify(Object.fromEntries(Object.entries(r).filter(([k]) => k !== key)));
  for (const key of Object.keys(r)) assert.equal(codeOf(without(key)), 'malformed', `without ${key}`);
  assert.equal(codeOf(JSON.stringify({ ...r, extra: 1 })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...r, status: 'Anchored' })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...r, status: 1 })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...r, batch_proof: null })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...r, transaction: { ...r.transaction, type: 'validator_set_change' } })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...r, transaction: { ...r.transaction, extra: 'x' } })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...r, block_header: { ...r.block_header, proposer: null } })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...r, attestations: [{ ...r.attestations[0], extra: 1 }] })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...r, attestations: [{ ...r.attestations[0], signature: 7 }] })), 'malformed');
  // Later steps, not step 3: these have their own codes.
  assert.equal(codeOf(JSON.stringify({ ...r, attestations: [{ ...r.attestations[0], signature: 'zz' }, ...r.attestations.slice(1)] })), 'bad-signature');
  assert.equal(codeOf(JSON.stringify({ ...r, block_header: { ...r.block_header, chain_id: 'Not A Chain Id!' } })), 'chain-mismatch');
  assert.equal(codeOf(JSON.stringify({ ...r, block_header: { ...r.block_header, time: 'yesterday' } })), 'block-time'); // signed too, but step 10 comes before step 12
});

test('step 3 with validator-set changes: shape here, rules at step 9', () => {
  const governed = JSON.parse(text('sha3-256/governed.receipt.json'));
  const change = governed.validator_set_changes[0];
  const withChange = (c) => JSON.stringify({ ...governed, validator_set_changes: [c] });
  assert.equal(codeOf(withChange(change)), null);
  assert.equal(codeOf(withChange({ ...change, type: 'validator_set_change' })), 'malformed');
  assert.equal(codeOf(withChange({ ...change, approvals: 'none' })), 'malformed');
  const validators = change.validator_set.validators;
  assert.equal(codeOf(withChange({ ...change, validator_set: { validators: [{ ...validators[0], extra: 1 }, ...validators.slice(1)] } })), 'malformed');
  assert.equal(codeOf(withChange({ ...change, validator_set: { validators: [{ ...validators[0], power: '1' }, ...validators.slice(1)] } })), 'malformed');
  // Rules broken: step 9.4 (the change's approvals no longer cover the edited set either, but
  // 9.4 comes first).
  assert.equal(codeOf(withChange({ ...change, validator_set: { validators: [] } })), 'validator-set-change');
  assert.equal(codeOf(withChange({ ...change, validator_set: { validators: [{ ...validators[0], power: 0 }, ...validators.slice(1)] } })), 'validator-set-change');
  assert.equal(codeOf(withChange({ ...change, validator_set: { validators: [{ ...validators[0], name: 'bad name' }, ...validators.slice(1)] } })), 'validator-set-change');
  assert.equal(codeOf(withChange({ ...change, validator_set: { validators: [...validators, validators[0]] } })), 'validator-set-change');
  assert.equal(codeOf(withChange({ ...change, effective_height: 0 })), 'validator-set-change');
  assert.equal(codeOf(withChange({ ...change, chain_id: 'other' })), 'chain-mismatch');
  assert.equal(codeOf(withChange({ ...change, approvals: [] })), 'validator-set-change');
  assert.equal(codeOf(withChange({ ...change, approvals: [...change.approvals, change.approvals[0]] })), 'validator-set-change');
  assert.equal(codeOf(withChange({ ...change, approvals: [{ ...change.approvals[0], signature: change.approvals[0].signature.toUpperCase() }, ...change.approvals.slice(1)] })), 'validator-set-change');
});

test('event: any JSON value passes step 3; step 6 judges it', () => {
  const r = JSON.parse(VALID);
  const digestOf = (json) => toHex(sha3_256(utf8(json)));
  assert.equal(codeOf(JSON.stringify({ ...r, event: null, event_digest: digestOf('null') })), 'event-field');
  assert.equal(codeOf(JSON.stringify({ ...r, event: null })), 'event-digest');
  assert.equal(codeOf(JSON.stringify({ ...r, event: [1, 2], event_digest: digestOf('[1,2]') })), 'event-field');
  assert.equal(codeOf(JSON.stringify({ ...r, event: { id: 'x', type: 7 }, event_digest: digestOf('{"id":"x","type":7}') })), 'event-field');
  // A minimal event with string id and type passes step 6 (then fails the batch proof).
  assert.equal(codeOf(JSON.stringify({ ...r, event: { type: 't', id: 'x' }, event_digest: digestOf('{"id":"x","type":"t"}') })), 'batch-proof');
});

test('pending receipts: their own exact shape, then `pending`', () => {
  const pending = text('sha3-256/pending.receipt.json');
  assert.equal(codeOf(pending), 'pending');
  const p = JSON.parse(pending);
  assert.equal(codeOf(JSON.stringify({ ...p, event: {} })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...p, event_digest: p.event_digest.toUpperCase() })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...p, event_id: 5 })), 'malformed');
  assert.equal(codeOf(JSON.stringify({ ...p, version: 3 })), 'version');
  const out = verifyReceipt(pending, GENESIS);
  assert.deepEqual(out.steps.map((s) => s.status), ['pass', 'pass', 'pass', 'fail', ...Array(10).fill('not-run')]);
  assert.equal(out.receipt.status, 'pending');
});

test('genesis: an invalid genesis is `genesis` and no receipt step runs', () => {
  const g = JSON.parse(GENESIS_TEXT);
  const bad = [
    GENESIS_TEXT.replace('"chain_id"', '"chain_id":"x","chain_id"'),
    JSON.stringify({ ...g, extra: 1 }),
    JSON.stringify({ ...g, signature_alg: 'ecdsa' }),
    JSON.stringify({ ...g, hash_alg: 'SHA3-256' }),
    JSON.stringify({ ...g, chain_id: '-starts-with-dash' }),
    JSON.stringify({ ...g, chain_id: 'a'.repeat(65) }),
    JSON.stringify({ ...g, genesis_time: 5 }),
    JSON.stringify({ ...g, validator_set: { validators: [{ ...g.validator_set.validators[0], power: 9007199254740992 }] } }),
    JSON.stringify({ ...g, validator_set: { validators: [{ ...g.validator_set.validators[0], power: 1.0 }] } }).replace('"power":1', '"power":1.0'),
    '{',
  ];
  for (const doc of bad) {
    const parsed = parseGenesis(doc);
    assert.equal(parsed.ok, false, doc);
    assert.equal(parsed.code, 'genesis');
    const out = verifyReceipt(VALID, parsed);
    assert.equal(out.code, 'genesis');
    assert.ok(out.steps.every((s) => s.status === 'not-run'));
  }
  // The sum limit is 2^53 − 1 exactly.
  const v = g.validator_set.validators;
  const heavy = JSON.stringify({ ...g, validator_set: { validators: [{ ...v[0], power: 9007199254740989 }, v[1], v[2]] } });
  assert.equal(parseGenesis(heavy).ok, true);
  assert.equal(parseGenesis(heavy.replace('9007199254740989', '9007199254740990')).ok, false);
  // A look-alike object that parseGenesis did not validate is refused.
  assert.equal(verifyReceipt(VALID, JSON.parse(GENESIS_TEXT)).code, 'genesis');
  assert.equal(verifyReceipt(VALID, { ok: true, genesis: { ...GENESIS.genesis } }).code, 'genesis');
});

test('§11 documents: digests given by hand, algorithms, missing content hashes', () => {
  const event = verifyReceipt(VALID, GENESIS).receipt.event;
  const digest = event.payload.content_hash.digest;
  assert.equal(checkDocument(event, { digestHex: digest }).ok, true);
  assert.equal(checkDocument(event, { digestHex: digest.toUpperCase() }).ok, true);
  assert.equal(checkDocument(event, { digestHex: digest, algorithm: 'sha-256' }).ok, true);
  assert.equal(checkDocument(event, { digestHex: digest, algorithm: 'sha3-256' }).code, 'content-mismatch');
  assert.equal(checkDocument(event, { digestHex: `${digest.slice(1)}0` }).code, 'content-mismatch');
  assert.equal(checkDocument(event, { digestHex: digest.slice(2) }).code, 'bad-digest');
  assert.equal(checkDocument(event, { digestHex: `${digest.slice(1)}g` }).code, 'bad-digest');
  assert.equal(checkDocument(event, { digestHex: '' }).code, 'bad-digest');
  assert.equal(checkDocument(event, { bytes: readFileSync(new URL('documents/exhibit-2.txt', vectors)) }).ok, true);
  assert.equal(checkDocument(event, { bytes: utf8('something else') }).code, 'content-mismatch');
  assert.equal(checkDocument({ ...event, payload: {} }, { digestHex: digest }).code, 'no-content-hash');
  assert.equal(checkDocument({ ...event, payload: 'text' }, { digestHex: digest }).code, 'no-content-hash');
  assert.equal(checkDocument(null, { digestHex: digest }).code, 'no-content-hash');
  const ch = event.payload.content_hash;
  const withHash = (c) => ({ ...event, payload: { ...event.payload, content_hash: c } });
  assert.equal(checkDocument(withHash(null), { digestHex: digest }).code, 'malformed');
  assert.equal(checkDocument(withHash({ ...ch, algorithm: 'md5' }), { digestHex: digest }).code, 'malformed');
  // SM3 documents (GB/T 32905-2016 example 1: "abc").
  const sm3Abc = { algorithm: 'sm3', digest: '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0' };
  assert.equal(checkDocument(withHash(sm3Abc), { bytes: utf8('abc') }).ok, true);
  assert.equal(checkDocument(withHash(sm3Abc), { bytes: utf8('abd') }).code, 'content-mismatch');
  assert.equal(checkDocument(withHash(sm3Abc), { digestHex: sm3Abc.digest.toUpperCase(), algorithm: 'sm3' }).ok, true);
  assert.equal(checkDocument(withHash({ ...ch, extra: 1 }), { digestHex: digest }).code, 'malformed');
  assert.equal(checkDocument(withHash({ algorithm: ch.algorithm }), { digestHex: digest }).code, 'malformed');
  // An attested digest in upper case can never match (§11 step 3).
  assert.equal(checkDocument(withHash({ ...ch, digest: ch.digest.toUpperCase() }), { digestHex: digest }).code, 'content-mismatch');
});
