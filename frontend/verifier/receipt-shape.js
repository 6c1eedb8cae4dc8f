// The receipt's version (docs/receipts.md §10 step 2) and shape (§7, §10 step 3).
//
// Step 3 checks only what the spec gives to it: the status, required and unknown fields, JSON
// types, integer literals and their u64 range, the digest form of digest fields,
// `transaction.type` = "anchor", and `version`. Everything else (signature form, chain ids,
// block time, sizes of 0, path lengths, validator-set rules, height 0, the proposer) belongs to
// a later step with its own code, so it is deliberately not looked at here.

import { ShapeError, asArray, asDigest, asString, readArray, readDigest, readObject, readString, readU64, u64FromJson } from './fields.js';
import { isJsonObject, toPlain } from './strict-json.js';
import { readValidatorSetShape } from './validator-set.js';

export const RECEIPT_VERSION = 1n;

const PENDING_FIELDS = ['status', 'version', 'event_id', 'event_digest'];
const ANCHORED_FIELDS = [
  'status', 'version', 'event', 'event_digest', 'batch_proof', 'transaction', 'transaction_proof',
  'block_header', 'attestations', 'validator_set_changes',
];
const LEAF_PROOF_FIELDS = ['leaf_index', 'path'];
const TRANSACTION_FIELDS = ['type', 'chain_id', 'batch_id', 'batch_root', 'batch_size'];
const HEADER_FIELDS = [
  'chain_id', 'height', 'previous_hash', 'time', 'transaction_root', 'transaction_count',
  'validator_set_hash', 'proposer',
];
const SIGNATURE_FIELDS = ['validator', 'signature']; // attestations and approvals alike
const CHANGE_FIELDS = ['chain_id', 'effective_height', 'previous_set_hash', 'validator_set', 'approvals'];

/**
 * Step 2: the integer `version` of a top-level object when it is a §3.2 integer literal other
 * than 1, else null (a `version` of another form is left to step 3).
 */
export function unsupportedVersion(tree) {
  if (!isJsonObject(tree) || !tree.has('version')) return null;
  const version = u64FromJson(tree.get('version'));
  return version !== undefined && version !== RECEIPT_VERSION ? version : null;
}

/**
 * Step 3: reads a parsed receipt as one of the two shapes of §7. Throws ShapeError.
 * Returns { receipt, raw }: `receipt` is the typed receipt (u64 fields as BigInt, `event` as
 * plain JavaScript) for callers to show; `raw` holds the parsed JSON of what gets hashed
 * (event, transaction, block header, the sets of the changes), so hashes are taken over
 * exactly what was parsed.
 */
export function readReceiptShape(tree) {
  if (!isJsonObject(tree)) throw new ShapeError('the receipt must be a JSON object');
  if (!tree.has('status')) throw new ShapeError('the receipt lacks the field "status"');
  const status = tree.get('status');
  if (status === 'pending') return readPending(tree);
  if (status === 'anchored') return readAnchored(tree);
  throw new ShapeError(`status must be "pending" or "anchored", not ${typeof status === 'string' ? JSON.stringify(status) : 'a non-string'}`);
}

function readVersion(r) {
  const version = readU64(r, 'version', 'receipt');
  // Step 2 has already reported any other integer as `version`; this guards the order.
  if (version !== RECEIPT_VERSION) throw new ShapeError(`version must be 1, not ${version}`);
  return version;
}

function readPending(tree) {
  const r = readObject(tree, 'the pending receipt', PENDING_FIELDS);
  const receipt = {
    status: 'pending',
    version: readVersion(r),
    event_id: readString(r, 'event_id', 'receipt'),
    event_digest: readDigest(r, 'event_digest', 'receipt'),
  };
  return { receipt, raw: null };
}

function readAnchored(tree) {
  const r = readObject(tree, 'the anchored receipt', ANCHORED_FIELDS);
  const version = readVersion(r);
  // `event` may be any JSON value, null included: §10 step 6 judges it, not the shape.
  const eventRaw = r.get('event');
  const event_digest = readDigest(r, 'event_digest', 'receipt');
  const batch_proof = readLeafProof(r.get('batch_proof'), 'batch_proof');
  const transaction = readTransaction(r.get('transaction'));
  const transaction_proof = readLeafProof(r.get('transaction_proof'), 'transaction_proof');
  const block_header = readBlockHeader(r.get('block_header'));
  const attestations = readArray(r, 'attestations', 'receipt')
    .map((a, i) => readSignatureEntry(a, `attestations[${i}]`));
  const changes = readArray(r, 'validator_set_changes', 'receipt')
    .map((c, i) => readChange(c, `validator_set_changes[${i}]`));
  const receipt = {
    status: 'anchored',
    version,
    event: toPlain(eventRaw),
    event_digest,
    batch_proof,
    transaction,
    transaction_proof,
    block_header,
    attestations,
    validator_set_changes: changes.map((c) => c.change),
  };
  const raw = {
    event: eventRaw,
    transaction: r.get('transaction'),
    block_header: r.get('block_header'),
    change_sets: changes.map((c) => c.rawSet),
  };
  return { receipt, raw };
}

// LeafProof (§7.3). No limit on the path length here: a long path fails inclusion (§8.4).
function readLeafProof(value, path) {
  const p = readObject(value, path, LEAF_PROOF_FIELDS);
  return {
    leaf_index: readU64(p, 'leaf_index', path),
    path: readArray(p, 'path', path).map((d, i) => asDigest(d, `${path}.path[${i}]`)),
  };
}

// Transaction (§7.3). Any `type` but "anchor" is malformed; `batch_size` 0 is left to step 7.
function readTransaction(value) {
  const t = readObject(value, 'transaction', TRANSACTION_FIELDS);
  const type = readString(t, 'type', 'transaction');
  if (type !== 'anchor') throw new ShapeError(`transaction.type must be "anchor", not ${JSON.stringify(type)}`);
  return {
    type,
    chain_id: readString(t, 'chain_id', 'transaction'),
    batch_id: readString(t, 'batch_id', 'transaction'),
    batch_root: readDigest(t, 'batch_root', 'transaction'),
    batch_size: readU64(t, 'batch_size', 'transaction'),
  };
}

// BlockHeader (§7.3). Time, height 0 and the proposer are checked at steps 10 and 11.
function readBlockHeader(value) {
  const h = readObject(value, 'block_header', HEADER_FIELDS);
  const at = 'block_header';
  return {
    chain_id: readString(h, 'chain_id', at),
    height: readU64(h, 'height', at),
    previous_hash: readDigest(h, 'previous_hash', at),
    time: readString(h, 'time', at),
    transaction_root: readDigest(h, 'transaction_root', at),
    transaction_count: readU64(h, 'transaction_count', at),
    validator_set_hash: readDigest(h, 'validator_set_hash', at),
    proposer: readString(h, 'proposer', at),
  };
}

// Attestation or approval: two strings. The signature's form is checked when it is verified.
function readSignatureEntry(value, path) {
  const e = readObject(value, path, SIGNATURE_FIELDS);
  return {
    validator: asString(e.get('validator'), `${path}.validator`),
    signature: asString(e.get('signature'), `${path}.signature`),
  };
}

// ValidatorSetChange (§7.3), without `type`. The set's rules are step 9.4's.
function readChange(value, path) {
  const c = readObject(value, path, CHANGE_FIELDS);
  const change = {
    chain_id: readString(c, 'chain_id', path),
    effective_height: readU64(c, 'effective_height', path),
    previous_set_hash: readDigest(c, 'previous_set_hash', path),
    validator_set: readValidatorSetShape(c.get('validator_set'), `${path}.validator_set`),
    approvals: asArray(c.get('approvals'), `${path}.approvals`)
      .map((a, i) => readSignatureEntry(a, `${path}.approvals[${i}]`)),
  };
  return { change, rawSet: c.get('validator_set') };
}
